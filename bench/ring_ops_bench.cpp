// SPDX-License-Identifier: MIT
// Cheaper ring operations, measured before adopting them (issue 15), with raw liburing on a ring
// set up like io_context's:
// - registered (direct) descriptors: a 64-byte ping-pong over a loopback TCP pair, send and recv
//   on regular fds against the same ops with IOSQE_FIXED_FILE on a registered file table (the
//   kernel then skips the fget/fput per op);
// - bundles (IORING_RECVSEND_BUNDLE, Linux 6.10): a multishot recv of a bulk stream into a ring
//   of 4 KiB provided buffers, one buffer per completion against several per completion.
#include "bench/support/loopback.hpp"
#include "bench/support/raw_ring.hpp"

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <netinet/tcp.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

// NOTE: liburing 2.3 predates bundles (Linux 6.10): the flag has no name there.
constexpr unsigned k_recvsend_bundle = 1u << 4; ///< IORING_RECVSEND_BUNDLE (sqe->ioprio)

std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// Submits what is queued and reaps `n` completions; false if one failed or came up short.
bool reap(io_uring* ring, unsigned n, int expected) {
    if (io_uring_submit_and_wait(ring, n) < 0)
        return false;
    bool ok = true;
    for (unsigned i = 0; i < n; ++i) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_wait_cqe(ring, &cqe) != 0)
            return false;
        ok = ok && cqe->res == expected;
        io_uring_cqe_seen(ring, cqe);
    }
    return ok;
}

/// 64-byte ping-pong: a sends, b receives; b sends, a receives. Four ops per iteration, each pair
/// submitted together (the send completes inline, so the recv finds its bytes).
void run_pingpong(benchmark::State& state, bool fixed) {
    auto [a, b] = corio::bench::loopback_tcp_pair();
    if (a < 0) {
        state.SkipWithError("loopback connection");
        return;
    }
    int one = 1;
    ::setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    corio::bench::raw_ring raw;
    io_uring* ring = raw.get();
    int fa = a;
    int fb = b;
    unsigned char sqe_flags = 0;
    if (fixed) {
        int fds[2] = {a, b};
        if (io_uring_register_files(ring, fds, 2) != 0) {
            state.SkipWithError("io_uring_register_files");
            ::close(a);
            ::close(b);
            return;
        }
        fa = 0;
        fb = 1;
        sqe_flags = IOSQE_FIXED_FILE;
    }
    char out[64];
    char in[64];
    std::memset(out, 'p', sizeof out);
    auto leg = [&](int from, int to) {
        io_uring_sqe* send = io_uring_get_sqe(ring);
        io_uring_prep_send(send, from, out, sizeof out, 0);
        send->flags |= sqe_flags;
        io_uring_sqe* recv = io_uring_get_sqe(ring);
        io_uring_prep_recv(recv, to, in, sizeof in, 0);
        recv->flags |= sqe_flags;
        return reap(ring, 2, static_cast<int>(sizeof out));
    };
    bool ok = true;
    std::int64_t cpu_before = thread_cpu_ns();
    for (auto _ : state) {
        ok = leg(fa, fb) && leg(fb, fa);
        if (!ok)
            break;
    }
    std::int64_t cpu = thread_cpu_ns() - cpu_before;
    ::close(a);
    ::close(b);
    if (!ok) {
        state.SkipWithError("a send or recv failed");
        return;
    }
    corio::bench::label_flags(state);
    double ops = 4.0 * static_cast<double>(state.iterations());
    state.SetItemsProcessed(static_cast<std::int64_t>(ops));
    state.counters["cpu_ns_per_op"] = static_cast<double>(cpu) / ops;
}

void BM_pingpong_regular_fd(benchmark::State& state) {
    run_pingpong(state, false);
}
BENCHMARK(BM_pingpong_regular_fd)->UseRealTime();

void BM_pingpong_registered_fd(benchmark::State& state) {
    run_pingpong(state, true);
}
BENCHMARK(BM_pingpong_registered_fd)->UseRealTime();

/// A provided-buffer ring registered by hand (liburing 2.3 has no io_uring_setup_buf_ring).
struct provided_ring {
    static constexpr unsigned k_count = 256;
    static constexpr unsigned k_size = 4096;
    static constexpr int k_group = 7;

    explicit provided_ring(io_uring* ring) : m_ring(ring) {
        m_bytes = k_count * sizeof(io_uring_buf);
        void* br = ::mmap(nullptr, m_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0);
        m_br = br == MAP_FAILED ? nullptr : static_cast<io_uring_buf_ring*>(br);
        m_data.resize(std::size_t{k_count} * k_size);
        if (!m_br)
            return;
        io_uring_buf_ring_init(m_br);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(m_br);
        reg.ring_entries = k_count;
        reg.bgid = k_group;
        m_ok = io_uring_register_buf_ring(ring, &reg, 0) == 0;
        for (unsigned bid = 0; bid < k_count; ++bid)
            add(static_cast<std::uint16_t>(bid), static_cast<int>(bid));
        io_uring_buf_ring_advance(m_br, static_cast<int>(k_count));
    }
    ~provided_ring() {
        if (m_ok)
            (void)io_uring_unregister_buf_ring(m_ring, k_group);
        if (m_br)
            ::munmap(m_br, m_bytes);
    }
    provided_ring(const provided_ring&) = delete;
    provided_ring& operator=(const provided_ring&) = delete;

    void add(std::uint16_t bid, int offset) {
        io_uring_buf_ring_add(m_br, m_data.data() + std::size_t{bid} * k_size, k_size, bid,
                              io_uring_buf_ring_mask(k_count), offset);
    }
    /// Gives `n` buffers back, from `bid` on (a completion's buffers are consecutive ring
    /// entries, and the buffers go back in the order they were taken).
    void recycle(std::uint16_t bid, unsigned n) {
        for (unsigned i = 0; i < n; ++i)
            add(static_cast<std::uint16_t>((bid + i) % k_count), static_cast<int>(i));
        io_uring_buf_ring_advance(m_br, static_cast<int>(n));
    }

    io_uring* m_ring;
    io_uring_buf_ring* m_br = nullptr;
    std::size_t m_bytes = 0;
    std::vector<char> m_data;
    bool m_ok = false;
};

/// A writer thread streams 64 KiB writes into a; the ring receives on b with a multishot recv
/// (with or without bundles), giving every buffer back at once. Per iteration: 1 MiB received.
void run_bulk_recv(benchmark::State& state, bool bundle) {
    auto [a, b] = corio::bench::loopback_tcp_pair();
    if (a < 0) {
        state.SkipWithError("loopback connection");
        return;
    }
    corio::bench::raw_ring raw;
    io_uring* ring = raw.get();
    provided_ring buffers(ring);
    if (!buffers.m_ok) {
        state.SkipWithError("provided-buffer ring (Linux 5.19)");
        ::close(a);
        ::close(b);
        return;
    }
    std::atomic<bool> done{false};
    std::thread writer([fd = a, &done] {
        std::vector<char> block(64 * 1024, 'w');
        while (!done.load(std::memory_order_relaxed))
            if (::send(fd, block.data(), block.size(), MSG_NOSIGNAL) <= 0)
                break;
    });
    auto arm = [&] {
        io_uring_sqe* sqe = io_uring_get_sqe(ring);
        io_uring_prep_recv_multishot(sqe, b, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = provided_ring::k_group;
        if (bundle)
            sqe->ioprio |= k_recvsend_bundle;
    };
    arm();
    constexpr std::uint64_t k_per_iteration = 1 << 20;
    std::uint64_t bytes = 0;
    std::uint64_t cqes = 0;
    bool failed = false;
    std::int64_t cpu_before = thread_cpu_ns();
    for (auto _ : state) {
        std::uint64_t goal = bytes + k_per_iteration;
        while (bytes < goal && !failed) {
            io_uring_cqe* cqe = nullptr;
            if (io_uring_submit_and_wait(ring, 1) < 0 || io_uring_wait_cqe(ring, &cqe) != 0) {
                failed = true;
                break;
            }
            int res = cqe->res;
            unsigned flags = cqe->flags;
            io_uring_cqe_seen(ring, cqe);
            ++cqes;
            if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
                auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
                unsigned used = bundle ? (static_cast<unsigned>(res) + provided_ring::k_size - 1) /
                                             provided_ring::k_size
                                       : 1;
                buffers.recycle(bid, used);
                bytes += static_cast<std::uint64_t>(res);
            } else if (res != -ENOBUFS) {
                failed = true; // EINVAL: bundles need Linux 6.10
            }
            if (!(flags & IORING_CQE_F_MORE) && !failed)
                arm();
        }
    }
    std::int64_t cpu = thread_cpu_ns() - cpu_before;
    done = true;
    ::shutdown(b, SHUT_RDWR);
    ::shutdown(a, SHUT_RDWR);
    writer.join();
    ::close(a);
    ::close(b);
    if (failed) {
        state.SkipWithError("the multishot recv failed (bundles need Linux 6.10)");
        return;
    }
    corio::bench::label_flags(state);
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    double mib = static_cast<double>(bytes) / (1 << 20);
    state.counters["cqes_per_MiB"] = static_cast<double>(cqes) / mib;
    state.counters["receiver_cpu_ns_per_KiB"] = static_cast<double>(cpu) / (mib * 1024.0);
}

void BM_bulk_recv_buffer_per_cqe(benchmark::State& state) {
    run_bulk_recv(state, false);
}
BENCHMARK(BM_bulk_recv_buffer_per_cqe)->UseRealTime();

void BM_bulk_recv_bundle(benchmark::State& state) {
    run_bulk_recv(state, true);
}
BENCHMARK(BM_bulk_recv_bundle)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
