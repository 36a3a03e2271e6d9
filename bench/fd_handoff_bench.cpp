// SPDX-License-Identifier: MIT
// What handing a socket from one ring's thread to another's costs (issue 13: one acceptor for
// several shards), by hand with liburing so that only the hand-off differs:
//   plain          the sender creates a regular fd and sends its number in a MSG_RING data
//                  message; the receiver closes it (what corio's --accept one does, through the
//                  shard inbox instead of MSG_RING)
//   direct_install the sender creates a direct descriptor and passes it with
//                  IORING_MSG_SEND_FD (closing its own slot); the receiver turns it into a
//                  regular fd (IORING_OP_FIXED_FD_INSTALL, Linux 6.8) because its socket types use
//                  regular fds, then closes both
//   direct_kept    the same, but the receiver keeps the direct descriptor (what a runtime whose
//                  sockets are registered files would do) and only closes its slot
// Batches of 32 sockets; the receiver acknowledges each batch with one message back. Reported:
// real time and CPU time (both threads) per socket.
#include <benchmark/benchmark.h>
#include <liburing.h>

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace {

constexpr unsigned k_batch = 32;
constexpr unsigned k_table = 256;               // direct descriptor slots per ring
constexpr std::uint8_t k_fixed_fd_install = 54; // IORING_OP_FIXED_FD_INSTALL: liburing 2.3 lacks it

enum class handoff { plain, direct_install, direct_kept };

// user_data of the CQEs each side sees
constexpr std::uint64_t k_ignore = 0;    // our own MSG_RING/close failures: none expected
constexpr std::uint64_t k_created = 1;   // sender: a socket exists
constexpr std::uint64_t k_arrived = 2;   // receiver: a socket arrived (res: fd or slot)
constexpr std::uint64_t k_installed = 3; // receiver: FIXED_FD_INSTALL done (res: fd)
constexpr std::uint64_t k_ack = 4;       // sender: the receiver is done with a batch
constexpr std::uint64_t k_stop = 5;      // receiver: end

std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool setup_ring(io_uring* ring) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(256, ring, &params) != 0)
        return false;
    return io_uring_register_files_sparse(ring, k_table) == 0;
}

void prep_message(io_uring_sqe* sqe, int to_ring, unsigned res, std::uint64_t data) {
    io_uring_prep_msg_ring(sqe, to_ring, res, data, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, k_ignore);
}

/// The receiving thread: takes sockets until k_stop, acknowledging every k_batch of them.
void receive(io_uring* ring, int sender_ring, handoff how, std::int64_t* cpu_ns,
             std::atomic<bool>* ready, std::atomic<int>* failures) {
    ready->store(true);
    unsigned done = 0;
    for (bool stop = false; !stop;) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_wait_cqe(ring, &cqe) != 0)
            break;
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(ring, head, cqe) {
            ++seen;
            std::uint64_t what = cqe->user_data;
            if (what == k_stop) {
                stop = true;
                continue;
            }
            if (cqe->res < 0) {
                failures->fetch_add(1);
                continue;
            }
            bool finished = false;
            if (what == k_arrived && how == handoff::plain) {
                ::close(cqe->res);
                finished = true;
            } else if (what == k_arrived && how == handoff::direct_kept) {
                io_uring_sqe* sqe = io_uring_get_sqe(ring);
                io_uring_prep_close_direct(sqe, static_cast<unsigned>(cqe->res));
                sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
                io_uring_sqe_set_data64(sqe, k_ignore);
                finished = true;
            } else if (what == k_arrived) {
                // Direct descriptor -> regular fd, then the slot goes.
                io_uring_sqe* sqe = io_uring_get_sqe(ring);
                io_uring_prep_rw(k_fixed_fd_install, sqe, cqe->res, nullptr, 0, 0);
                sqe->flags |= IOSQE_FIXED_FILE;
                io_uring_sqe_set_data64(sqe, k_installed);
                sqe = io_uring_get_sqe(ring);
                io_uring_prep_close_direct(sqe, static_cast<unsigned>(cqe->res));
                sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
                io_uring_sqe_set_data64(sqe, k_ignore);
            } else if (what == k_installed) {
                ::close(cqe->res);
                finished = true;
            }
            if (finished && ++done % k_batch == 0)
                prep_message(io_uring_get_sqe(ring), sender_ring, 0, k_ack);
        }
        io_uring_cq_advance(ring, seen);
        io_uring_submit(ring);
    }
    *cpu_ns = thread_cpu_ns();
}

void run_handoff(benchmark::State& state, handoff how) {
    io_uring sender{};
    io_uring receiver{};
    if (!setup_ring(&sender)) {
        state.SkipWithError("io_uring setup (with a sparse file table)");
        return;
    }
    std::atomic<bool> ready{false};
    std::atomic<bool> receiver_ok{false};
    std::atomic<int> failures{0};
    std::int64_t receiver_cpu = 0;
    std::thread other([&] {
        if (!setup_ring(&receiver)) {
            ready = true;
            return;
        }
        receiver_ok = true;
        receive(&receiver, sender.ring_fd, how, &receiver_cpu, &ready, &failures);
        io_uring_queue_exit(&receiver);
    });
    while (!ready)
        std::this_thread::yield();
    if (!receiver_ok) {
        other.join();
        io_uring_queue_exit(&sender);
        state.SkipWithError("io_uring setup (receiver)");
        return;
    }
    std::int64_t cpu_before = thread_cpu_ns();
    std::uint64_t sockets = 0;
    for (auto _ : state) {
        // Create a batch of sockets.
        for (unsigned i = 0; i < k_batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&sender);
            if (how == handoff::plain)
                io_uring_prep_socket(sqe, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0);
            else
                io_uring_prep_socket_direct_alloc(sqe, AF_INET, SOCK_STREAM, 0, 0);
            io_uring_sqe_set_data64(sqe, k_created);
        }
        io_uring_submit_and_wait(&sender, k_batch);
        // Hand each over as it is created; then wait for the batch's acknowledgement.
        unsigned created = 0;
        bool acked = false;
        while (created < k_batch || !acked) {
            io_uring_cqe* cqe = nullptr;
            io_uring_wait_cqe(&sender, &cqe);
            unsigned head;
            unsigned seen = 0;
            io_uring_for_each_cqe(&sender, head, cqe) {
                ++seen;
                if (cqe->user_data == k_ack) {
                    acked = true;
                    continue;
                }
                if (cqe->user_data == k_ignore && cqe->res < 0) {
                    failures.fetch_add(1); // a hand-off was refused: the batch cannot complete
                    created = k_batch;
                    acked = true;
                    continue;
                }
                if (cqe->user_data != k_created)
                    continue;
                ++created;
                if (cqe->res < 0) {
                    failures.fetch_add(1);
                    acked = true; // the batch cannot complete
                    continue;
                }
                io_uring_sqe* sqe = io_uring_get_sqe(&sender);
                if (how == handoff::plain) {
                    prep_message(sqe, receiver.ring_fd, static_cast<unsigned>(cqe->res), k_arrived);
                    continue;
                }
                // IORING_MSG_SEND_FD: our slot cqe->res into a slot the receiver's ring picks;
                // its CQE carries k_arrived and the slot. Then our own slot is closed.
                io_uring_prep_msg_ring(sqe, receiver.ring_fd, 0, k_arrived, 0);
                sqe->addr = IORING_MSG_SEND_FD;
                sqe->addr3 = static_cast<std::uint64_t>(cqe->res);
                sqe->file_index = IORING_FILE_INDEX_ALLOC;
                sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
                io_uring_sqe_set_data64(sqe, k_ignore);
                sqe = io_uring_get_sqe(&sender);
                io_uring_prep_close_direct(sqe, static_cast<unsigned>(cqe->res));
                sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
                io_uring_sqe_set_data64(sqe, k_ignore);
            }
            io_uring_cq_advance(&sender, seen);
            io_uring_submit(&sender);
        }
        if (failures.load() != 0)
            break;
        sockets += k_batch;
    }
    std::int64_t sender_cpu = thread_cpu_ns() - cpu_before;
    prep_message(io_uring_get_sqe(&sender), receiver.ring_fd, 0, k_stop);
    io_uring_submit(&sender);
    other.join();
    io_uring_queue_exit(&sender);
    if (failures.load() != 0) {
        state.SkipWithError("a hand-off failed (IORING_MSG_SEND_FD or FIXED_FD_INSTALL refused?)");
        return;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(sockets));
    state.counters["cpu_ns"] =
        static_cast<double>(sender_cpu + receiver_cpu) / static_cast<double>(sockets ? sockets : 1);
}

void BM_fd_handoff_plain(benchmark::State& state) {
    run_handoff(state, handoff::plain);
}
BENCHMARK(BM_fd_handoff_plain)->UseRealTime();

void BM_fd_handoff_direct_install(benchmark::State& state) {
    run_handoff(state, handoff::direct_install);
}
BENCHMARK(BM_fd_handoff_direct_install)->UseRealTime();

void BM_fd_handoff_direct_kept(benchmark::State& state) {
    run_handoff(state, handoff::direct_kept);
}
BENCHMARK(BM_fd_handoff_direct_kept)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
