// SPDX-License-Identifier: MIT
// Is IORING_OP_SEND_ZC worth adopting for large sends (issue 15)? A raw liburing twin pair over a
// loopback TCP connection: the same bytes sent with IORING_OP_SEND and with IORING_OP_SEND_ZC (a
// result CQE with F_MORE, then a notification CQE when the kernel lets go of the pages), a
// reader thread draining the other end. Sizes 4 KiB to 1 MiB; bytes per second and the sender's
// CPU per byte. On loopback the receiving side copies the pages anyway, so this measures the
// overhead of zero-copy where it cannot win; a NIC is needed to see the win.
#include "bench/support/loopback.hpp"

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void run_send(benchmark::State& state, bool zero_copy) {
    const auto size = static_cast<std::size_t>(state.range(0));
    auto [sender, receiver] = corio::bench::loopback_tcp_pair();
    if (sender < 0) {
        state.SkipWithError("loopback connection");
        return;
    }
    io_uring ring{};
    if (io_uring_queue_init(64, &ring, 0) != 0) {
        state.SkipWithError("io_uring setup");
        return;
    }
    std::atomic<bool> done{false};
    std::thread reader([fd = receiver, &done] {
        std::vector<char> sink(1 << 20);
        while (!done.load(std::memory_order_relaxed))
            if (::recv(fd, sink.data(), sink.size(), 0) <= 0)
                break;
    });
    std::vector<char> data(size, 'z');
    std::uint64_t bytes = 0;
    bool failed = false;
    std::int64_t cpu_before = thread_cpu_ns();
    for (auto _ : state) {
        std::size_t off = 0;
        while (off < size && !failed) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring);
            if (zero_copy)
                io_uring_prep_send_zc(sqe, sender, data.data() + off, size - off, 0, 0);
            else
                io_uring_prep_send(sqe, sender, data.data() + off, size - off, 0);
            io_uring_submit(&ring);
            // SEND: one CQE. SEND_ZC: the result (F_MORE when a notification follows), then the
            // notification (F_NOTIF) once the pages are free to reuse.
            bool result_seen = false;
            bool more = false;
            while (!result_seen || more) {
                io_uring_cqe* cqe = nullptr;
                if (io_uring_wait_cqe(&ring, &cqe) != 0) {
                    failed = true;
                    break;
                }
                if (cqe->flags & IORING_CQE_F_NOTIF) {
                    more = false;
                } else {
                    result_seen = true;
                    more = (cqe->flags & IORING_CQE_F_MORE) != 0;
                    if (cqe->res <= 0)
                        failed = true;
                    else
                        off += static_cast<std::size_t>(cqe->res);
                }
                io_uring_cqe_seen(&ring, cqe);
            }
        }
        bytes += size;
    }
    std::int64_t cpu = thread_cpu_ns() - cpu_before;
    done = true;
    ::shutdown(sender, SHUT_RDWR);
    reader.join();
    ::close(sender);
    ::close(receiver);
    io_uring_queue_exit(&ring);
    if (failed) {
        state.SkipWithError("a send failed (SEND_ZC needs Linux 6.0)");
        return;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["sender_cpu_ns_per_KiB"] =
        static_cast<double>(cpu) * 1024.0 / static_cast<double>(bytes ? bytes : 1);
}

void BM_send_copy(benchmark::State& state) {
    run_send(state, false);
}
BENCHMARK(BM_send_copy)->RangeMultiplier(16)->Range(4 << 10, 1 << 20)->UseRealTime();

void BM_send_zero_copy(benchmark::State& state) {
    run_send(state, true);
}
BENCHMARK(BM_send_zero_copy)->RangeMultiplier(16)->Range(4 << 10, 1 << 20)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
