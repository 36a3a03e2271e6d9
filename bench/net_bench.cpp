// SPDX-License-Identifier: MIT
// net micro benchmarks: a 64-byte ping-pong over a Unix socketpair, written with corio coroutines
// and as a hand-made liburing state machine on a ring set up exactly like io_context's (same
// flags, same size, ring fd registered). One item is one round trip: four recv/send ops.
#include <corio/net/buffer_ring.hpp>
#include <corio/net/unix_socket.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/when_all.hpp>
#include "bench/support/raw_ring.hpp"

#include <benchmark/benchmark.h>
#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <system_error>
#include <utility>

namespace {

using corio::bench::corio_ring_flags;
using corio::bench::count_loop;
using corio::bench::label_flags;
using corio::bench::raw_ring;

constexpr std::size_t k_message = 64; // bytes per ping and per pong

using corio::net::unix_stream;

std::pair<int, int> raw_socketpair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        throw std::system_error(errno, std::system_category(), "bench: socketpair");
    return {fds[0], fds[1]};
}

// ----- corio: two coroutines, each reading like blocking code -----

corio::task<void> pinger(benchmark::State* state, unix_stream* s, std::uint64_t* failures) {
    std::array<std::byte, k_message> out{};
    std::array<std::byte, k_message> in{};
    for (auto _ : *state) {
        corio::result<std::size_t> sent = co_await s->send_some(out);
        corio::result<std::size_t> got = co_await s->recv_some(in);
        if (!sent || !got || *got != k_message) {
            ++*failures;
            break;
        }
    }
    corio::result<void> shut = co_await s->shutdown(); // the ponger sees EOF and stops
    (void)shut;
}

corio::task<void> ponger(unix_stream* s, std::uint64_t* failures) {
    std::array<std::byte, k_message> buffer{};
    for (;;) {
        corio::result<std::size_t> got = co_await s->recv_some(buffer);
        if (!got || *got == 0)
            co_return; // EOF: the pinger is done
        corio::result<std::size_t> sent = co_await s->send_some(std::span(buffer).first(*got));
        if (!sent) {
            ++*failures;
            co_return;
        }
    }
}

corio::task<void> pingpong(benchmark::State* state, std::uint64_t* failures) {
    auto pair = unix_stream::pair();
    auto& [a, b] = pair.value();
    auto both = corio::when_all(ponger(&b, failures), pinger(state, &a, failures));
    co_await both;
}

void BM_net_pingpong_corio(benchmark::State& state) {
    corio::io_context ctx;
    std::uint64_t failures = 0;
    corio::sync_wait(ctx, pingpong(&state, &failures));
    if (failures != 0)
        state.SkipWithError("a recv or send failed");
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(k_message));
    label_flags(state);
    count_loop(state, ctx, static_cast<double>(state.iterations()));
}
BENCHMARK(BM_net_pingpong_corio);

// ----- raw liburing: the same four ops per round trip as an explicit state machine -----

enum class raw_op : std::uint64_t { ping_send = 1, ping_recv, pong_recv, pong_send };

void queue_op(io_uring* ring, raw_op op, int fd, void* buffer, std::size_t len) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (op == raw_op::ping_send || op == raw_op::pong_send)
        io_uring_prep_send(sqe, fd, buffer, len, MSG_NOSIGNAL);
    else
        io_uring_prep_recv(sqe, fd, buffer, len, 0);
    io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(op));
}

/// The raw twin's state: a ring like io_context's, the socketpair, and the pong side's recv
/// that stays armed between round trips.
class raw_pingpong {
public:
    raw_pingpong() {
        auto [a, b] = raw_socketpair();
        m_a = a;
        m_b = b;
        queue_op(m_ring.get(), raw_op::pong_recv, m_b, m_pong.data(), k_message);
    }
    ~raw_pingpong() {
        ::close(m_a);
        ::close(m_b);
    }
    raw_pingpong(const raw_pingpong&) = delete;
    raw_pingpong& operator=(const raw_pingpong&) = delete;

    /// One round trip: ping send → pong recv → pong send → ping recv. False on a failure.
    bool round_trip() {
        io_uring* r = m_ring.get();
        queue_op(r, raw_op::ping_send, m_a, m_out.data(), k_message);
        bool done = false;
        bool failed = false;
        while (!done && !failed) {
            if (io_uring_submit_and_wait(r, 1) < 0)
                return false;
            unsigned head;
            unsigned count = 0;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(r, head, cqe) {
                ++count;
                if (cqe->res <= 0) {
                    failed = true;
                    continue;
                }
                switch (static_cast<raw_op>(cqe->user_data)) {
                case raw_op::ping_send:
                    queue_op(r, raw_op::ping_recv, m_a, m_in.data(), k_message);
                    break;
                case raw_op::ping_recv:
                    done = true;
                    break;
                case raw_op::pong_recv:
                    queue_op(r, raw_op::pong_send, m_b, m_pong.data(),
                             static_cast<std::size_t>(cqe->res));
                    break;
                case raw_op::pong_send:
                    queue_op(r, raw_op::pong_recv, m_b, m_pong.data(), k_message);
                    break;
                }
            }
            io_uring_cq_advance(r, count);
        }
        return !failed;
    }

private:
    raw_ring m_ring;                             // set up like io_context's
    int m_a = -1;                                // the ping end
    int m_b = -1;                                // the pong end
    std::array<std::byte, k_message> m_out{};    // ping payload
    std::array<std::byte, k_message> m_in{};     // ping receive buffer
    std::array<std::byte, k_message> m_pong{};   // pong receive/send buffer
};

void BM_net_pingpong_raw(benchmark::State& state) {
    raw_pingpong pp;
    for (auto _ : state) {
        if (!pp.round_trip()) {
            state.SkipWithError("a recv or send failed");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(k_message));
    label_flags(state);
}
BENCHMARK(BM_net_pingpong_raw);

// ----- corio with the ponger reading through a provided-buffer ring (multishot recv) -----

corio::task<void> ring_ponger(unix_stream* s, corio::net::buffer_ring* ring,
                              std::uint64_t* failures) {
    corio::net::recv_stream chunks = s->recv_multishot(*ring);
    for (;;) {
        corio::result<corio::net::buffer_lease> lease = co_await chunks.next();
        if (!lease || lease->empty())
            co_return;
        corio::result<std::size_t> sent = co_await s->send_some(lease->data());
        if (!sent) {
            ++*failures;
            co_return;
        }
    }
}

corio::task<void> pingpong_multishot(benchmark::State* state, std::uint64_t* failures) {
    corio::net::buffer_ring ring(corio::io_context::current(), 16, 4096);
    auto pair = unix_stream::pair();
    auto& [a, b] = pair.value();
    auto both = corio::when_all(ring_ponger(&b, &ring, failures), pinger(state, &a, failures));
    co_await both;
}

void BM_net_pingpong_corio_multishot(benchmark::State& state) {
    corio::io_context ctx;
    std::uint64_t failures = 0;
    corio::sync_wait(ctx, pingpong_multishot(&state, &failures));
    if (failures != 0)
        state.SkipWithError("a recv or send failed");
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(k_message));
    label_flags(state);
    count_loop(state, ctx, static_cast<double>(state.iterations()));
}
BENCHMARK(BM_net_pingpong_corio_multishot);

// ----- paired: corio and raw alternate in one run, so machine noise hits both alike -----

constexpr int k_batch_round_trips = 256; // round trips per batch; batches alternate A, B, A, B…

corio::task<void> ping_batch(unix_stream* s, int n, std::uint64_t* failures) {
    std::array<std::byte, k_message> out{};
    std::array<std::byte, k_message> in{};
    for (int i = 0; i < n; ++i) {
        corio::result<std::size_t> sent = co_await s->send_some(out);
        corio::result<std::size_t> got = co_await s->recv_some(in);
        if (!sent || !got || *got != k_message) {
            ++*failures;
            co_return;
        }
    }
}

corio::task<void> shut_down(unix_stream* s) {
    corio::result<void> shut = co_await s->shutdown();
    (void)shut;
}

/// CPU time of this thread (user + system: with DEFER_TASKRUN the kernel's share of the I/O runs
/// here too).
std::int64_t thread_cpu_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// One item is a corio batch plus a raw batch. Counters: CPU per round trip of each, and their
/// ratio over the whole run (the number to quote: corio CPU / raw CPU).
void BM_net_pingpong_paired(benchmark::State& state) {
    corio::io_context ctx;
    auto pair = unix_stream::pair();
    auto& [a, b] = pair.value();
    std::uint64_t failures = 0;
    corio::spawn(ctx, ponger(&b, &failures)); // stays suspended on its recv between batches
    raw_pingpong raw;
    std::int64_t corio_ns = 0;
    std::int64_t raw_ns = 0;
    for (auto _ : state) {
        std::int64_t t0 = thread_cpu_ns();
        corio::sync_wait(ctx, ping_batch(&a, k_batch_round_trips, &failures));
        std::int64_t t1 = thread_cpu_ns();
        for (int i = 0; i < k_batch_round_trips; ++i)
            if (!raw.round_trip())
                ++failures;
        std::int64_t t2 = thread_cpu_ns();
        corio_ns += t1 - t0;
        raw_ns += t2 - t1;
        if (failures != 0) {
            state.SkipWithError("a recv or send failed");
            break;
        }
    }
    corio::sync_wait(ctx, shut_down(&a));
    auto trips = static_cast<double>(state.iterations()) * k_batch_round_trips;
    if (trips > 0 && raw_ns > 0) {
        state.counters["corio_cpu_ns"] = static_cast<double>(corio_ns) / trips;
        state.counters["raw_cpu_ns"] = static_cast<double>(raw_ns) / trips;
        state.counters["corio_over_raw"] = static_cast<double>(corio_ns) /
                                           static_cast<double>(raw_ns);
    }
    state.SetItemsProcessed(state.iterations() * 2 * k_batch_round_trips);
    label_flags(state);
}
BENCHMARK(BM_net_pingpong_paired);

// ----- paired, through the looping ops: send_all/recv_exact against the same raw twin -----
// The ops that report transferred() on failure: their success path must cost what it did.

corio::task<void> exact_ponger(unix_stream* s, std::uint64_t* failures) {
    std::array<std::byte, k_message> buffer{};
    for (;;) {
        corio::result<std::size_t> got = co_await s->recv_exact(buffer);
        if (!got || *got == 0)
            co_return; // EOF: the pinger is done
        corio::result<std::size_t> sent = co_await s->send_all(buffer);
        if (!sent) {
            ++*failures;
            co_return;
        }
    }
}

corio::task<void> exact_ping_batch(unix_stream* s, int n, std::uint64_t* failures) {
    std::array<std::byte, k_message> out{};
    std::array<std::byte, k_message> in{};
    for (int i = 0; i < n; ++i) {
        corio::result<std::size_t> sent = co_await s->send_all(out);
        corio::result<std::size_t> got = co_await s->recv_exact(in);
        if (!sent || !got || *got != k_message) {
            ++*failures;
            co_return;
        }
    }
}

/// BM_net_pingpong_paired with send_all/recv_exact on both sides (64-byte messages: one SQE
/// each, as in the raw twin). Counters as there.
void BM_net_pingpong_exact_paired(benchmark::State& state) {
    corio::io_context ctx;
    auto pair = unix_stream::pair();
    auto& [a, b] = pair.value();
    std::uint64_t failures = 0;
    corio::spawn(ctx, exact_ponger(&b, &failures));
    raw_pingpong raw;
    std::int64_t corio_ns = 0;
    std::int64_t raw_ns = 0;
    for (auto _ : state) {
        std::int64_t t0 = thread_cpu_ns();
        corio::sync_wait(ctx, exact_ping_batch(&a, k_batch_round_trips, &failures));
        std::int64_t t1 = thread_cpu_ns();
        for (int i = 0; i < k_batch_round_trips; ++i)
            if (!raw.round_trip())
                ++failures;
        std::int64_t t2 = thread_cpu_ns();
        corio_ns += t1 - t0;
        raw_ns += t2 - t1;
        if (failures != 0) {
            state.SkipWithError("a recv or send failed");
            break;
        }
    }
    corio::sync_wait(ctx, shut_down(&a));
    auto trips = static_cast<double>(state.iterations()) * k_batch_round_trips;
    if (trips > 0 && raw_ns > 0) {
        state.counters["corio_cpu_ns"] = static_cast<double>(corio_ns) / trips;
        state.counters["raw_cpu_ns"] = static_cast<double>(raw_ns) / trips;
        state.counters["corio_over_raw"] = static_cast<double>(corio_ns) /
                                           static_cast<double>(raw_ns);
    }
    state.SetItemsProcessed(state.iterations() * 2 * k_batch_round_trips);
    label_flags(state);
}
BENCHMARK(BM_net_pingpong_exact_paired);

} // namespace

BENCHMARK_MAIN();
