// SPDX-License-Identifier: MIT
// Runtime micro benchmarks: one trip through the ring with corio next to the same work written by
// hand against liburing (same ring flags, same size, ring fd registered), and the task machinery.
#include <corio/runtime/channel.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/when_all.hpp>
#include <corio/runtime/when_any.hpp>
#include "bench/support/raw_ring.hpp"

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <system_error>
#include <utility>
#include <vector>

namespace {

using corio::bench::corio_ring_flags;
using corio::bench::count_loop;
using corio::bench::label_flags;
using corio::bench::raw_ring;

constexpr std::size_t k_batch = 32; // NOPs in flight in the batched variants

// ----- one NOP at a time -----

corio::task<void> nop_single_loop(benchmark::State* state) {
    for (auto _ : *state) {
        corio::result<void> r = co_await corio::nop();
        if (!r) {
            state->SkipWithError("nop failed");
            break;
        }
    }
}

void BM_runtime_nop_corio_single(benchmark::State& state) {
    corio::io_context ctx;
    corio::sync_wait(ctx, nop_single_loop(&state));
    state.SetItemsProcessed(state.iterations());
    label_flags(state);
    count_loop(state, ctx, static_cast<double>(state.items_processed()));
}
BENCHMARK(BM_runtime_nop_corio_single);

void BM_runtime_nop_raw_single(benchmark::State& state) {
    raw_ring ring;
    io_uring* r = ring.get();
    for (auto _ : state) {
        io_uring_sqe* sqe = io_uring_get_sqe(r);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, 1);
        int rc = io_uring_submit_and_wait(r, 1);
        io_uring_cqe* cqe = nullptr;
        if (rc < 0 || io_uring_peek_cqe(r, &cqe) != 0 || cqe->res < 0) {
            state.SkipWithError("nop failed");
            break;
        }
        io_uring_cqe_seen(r, cqe);
    }
    state.SetItemsProcessed(state.iterations());
    label_flags(state);
}
BENCHMARK(BM_runtime_nop_raw_single);

// ----- 32 NOPs in flight: one batch per iteration -----

corio::task<void> nop_child(std::uint64_t* failures) {
    corio::result<void> r = co_await corio::nop();
    *failures += r ? 0 : 1;
}

// when_all over 32 fresh tasks: pays a frame allocation per NOP plus the vectors.
corio::task<void> nop_batch_when_all_loop(benchmark::State* state) {
    std::uint64_t failures = 0;
    for (auto _ : *state) {
        std::vector<corio::task<void>> tasks;
        tasks.reserve(k_batch);
        for (std::size_t i = 0; i < k_batch; ++i)
            tasks.push_back(nop_child(&failures));
        auto all = corio::when_all(std::move(tasks));
        auto values = co_await all;
        benchmark::DoNotOptimize(values);
    }
    if (failures != 0)
        state->SkipWithError("nop failed");
}

void BM_runtime_nop_corio_batch32_whenall(benchmark::State& state) {
    corio::io_context ctx;
    corio::sync_wait(ctx, nop_batch_when_all_loop(&state));
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(k_batch));
    label_flags(state);
    count_loop(state, ctx, static_cast<double>(state.items_processed()));
}
BENCHMARK(BM_runtime_nop_corio_batch32_whenall);

// 32 fresh tasks spawned into a task_scope and joined: a frame allocation per NOP, no vectors,
// but the children start one loop turn later and the joiner is resumed one turn after them.
corio::task<void> nop_batch_scope_loop(benchmark::State* state) {
    std::uint64_t failures = 0;
    corio::task_scope scope;
    for (auto _ : *state) {
        for (std::size_t i = 0; i < k_batch; ++i)
            scope.spawn(nop_child(&failures));
        co_await scope.join();
    }
    if (failures != 0)
        state->SkipWithError("nop failed");
}

void BM_runtime_nop_corio_batch32_scope(benchmark::State& state) {
    corio::io_context ctx;
    corio::sync_wait(ctx, nop_batch_scope_loop(&state));
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(k_batch));
    label_flags(state);
    count_loop(state, ctx, static_cast<double>(state.items_processed()));
}
BENCHMARK(BM_runtime_nop_corio_batch32_scope);

void BM_runtime_nop_raw_batch32(benchmark::State& state) {
    raw_ring ring;
    io_uring* r = ring.get();
    std::uint64_t failures = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < k_batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(r);
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, i);
        }
        int rc = io_uring_submit_and_wait(r, k_batch);
        if (rc < 0) {
            state.SkipWithError("submit failed");
            break;
        }
        unsigned head;
        unsigned seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(r, head, cqe) {
            ++seen;
            failures += cqe->res < 0 ? 1 : 0;
        }
        io_uring_cq_advance(r, seen);
    }
    if (failures != 0)
        state.SkipWithError("nop failed");
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(k_batch));
    label_flags(state);
}
BENCHMARK(BM_runtime_nop_raw_batch32);

// ----- 32 long-lived workers, one NOP in flight each: the server shape -----

struct worker_shared {
    benchmark::State* state = nullptr; // driven by the pacer only
    bool done = false;                 // the pacer ran out of iterations
    std::uint64_t nops = 0;            // NOPs completed by all workers
    std::uint64_t failures = 0;        // NOPs that completed with an error
};

// Worker 0 owns the benchmark loop: one iteration is one loop turn in which every worker
// completes one NOP (all 32 are submitted by one io_uring_enter and reaped together).
corio::task<void> nop_pacer(worker_shared* shared) {
    for (auto _ : *shared->state) {
        corio::result<void> r = co_await corio::nop();
        ++shared->nops;
        shared->failures += r ? 0 : 1;
    }
    shared->done = true;
}

corio::task<void> nop_worker(worker_shared* shared) {
    while (!shared->done) {
        corio::result<void> r = co_await corio::nop();
        ++shared->nops;
        shared->failures += r ? 0 : 1;
    }
}

corio::task<void> nop_workers_main(worker_shared* shared) {
    corio::task_scope scope;
    scope.spawn(nop_pacer(shared));
    for (std::size_t i = 1; i < k_batch; ++i)
        scope.spawn(nop_worker(shared));
    co_await scope.join();
}

void BM_runtime_nop_corio_batch32_workers(benchmark::State& state) {
    corio::io_context ctx;
    worker_shared shared;
    shared.state = &state;
    corio::sync_wait(ctx, nop_workers_main(&shared));
    if (shared.failures != 0)
        state.SkipWithError("nop failed");
    state.SetItemsProcessed(static_cast<std::int64_t>(shared.nops));
    label_flags(state);
    count_loop(state, ctx, static_cast<double>(state.items_processed()));
}
BENCHMARK(BM_runtime_nop_corio_batch32_workers);

// The hand-written state machine: each "connection" is a struct its SQE's user_data points at;
// a completion updates it and re-arms it at once; one submit per loop turn carries all re-arms.
struct raw_conn {
    std::uint64_t done = 0; // NOPs this connection completed
};

void arm_nop(io_uring* r, raw_conn* conn) {
    io_uring_sqe* sqe = io_uring_get_sqe(r);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, conn);
}

void BM_runtime_nop_raw_batch32_workers(benchmark::State& state) {
    raw_ring ring;
    io_uring* r = ring.get();
    std::array<raw_conn, k_batch> conns{};
    for (raw_conn& c : conns)
        arm_nop(r, &c);
    std::uint64_t nops = 0;
    std::uint64_t failures = 0;
    for (auto _ : state) {
        int rc = io_uring_submit_and_wait(r, 1);
        if (rc < 0) {
            state.SkipWithError("submit failed");
            break;
        }
        unsigned head;
        unsigned seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(r, head, cqe) {
            ++seen;
            auto* conn = static_cast<raw_conn*>(io_uring_cqe_get_data(cqe));
            failures += cqe->res < 0 ? 1 : 0;
            ++conn->done;
            arm_nop(r, conn);
        }
        io_uring_cq_advance(r, seen);
        nops += seen;
    }
    if (failures != 0)
        state.SkipWithError("nop failed");
    state.SetItemsProcessed(static_cast<std::int64_t>(nops));
    label_flags(state);
}
BENCHMARK(BM_runtime_nop_raw_batch32_workers);

// ----- the task machinery alone (no ring) -----

corio::task<int> trivial_value(int v) { co_return v; }

corio::task<void> create_await_loop(benchmark::State* state) {
    int sum = 0;
    for (auto _ : *state) {
        int v = co_await trivial_value(1);
        sum += v;
    }
    benchmark::DoNotOptimize(sum);
}

// Create a task<int>, await it, it completes synchronously: one frame allocation and free.
void BM_runtime_task_create_await(benchmark::State& state) {
    corio::io_context ctx;
    corio::sync_wait(ctx, create_await_loop(&state));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_runtime_task_create_await);

corio::task<void> trivial_void(std::uint64_t* count) {
    ++*count;
    co_return;
}

corio::task<void> spawn_join_loop(benchmark::State* state, std::size_t n) {
    std::uint64_t count = 0;
    corio::task_scope scope;
    for (auto _ : *state) {
        for (std::size_t i = 0; i < n; ++i)
            scope.spawn(trivial_void(&count));
        co_await scope.join();
    }
    benchmark::DoNotOptimize(count);
}

// Spawn N trivial tasks into a task_scope and join them: items are tasks.
void BM_runtime_spawn_join(benchmark::State& state) {
    auto n = static_cast<std::size_t>(state.range(0));
    corio::io_context ctx;
    corio::sync_wait(ctx, spawn_join_loop(&state, n));
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_runtime_spawn_join)->Arg(1)->Arg(32)->Arg(1024);

corio::task<void> when_all_loop(benchmark::State* state, std::size_t n) {
    std::uint64_t count = 0;
    for (auto _ : *state) {
        std::vector<corio::task<void>> tasks;
        tasks.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            tasks.push_back(trivial_void(&count));
        auto all = corio::when_all(std::move(tasks));
        auto values = co_await all;
        benchmark::DoNotOptimize(values);
    }
    benchmark::DoNotOptimize(count);
}

// when_all over a vector of 100 trivial (synchronously completing) tasks: items are tasks.
void BM_runtime_when_all_100(benchmark::State& state) {
    constexpr std::size_t n = 100;
    corio::io_context ctx;
    corio::sync_wait(ctx, when_all_loop(&state, n));
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_runtime_when_all_100);

// ----- channels -----

// Sends a value on `ping` and waits for it to come back on `pong`, once per iteration; closes
// `ping` at the end so the echoer stops.
corio::task<void> ping_loop(benchmark::State* state, corio::channel<int>* ping,
                            corio::channel<int>* pong, std::uint64_t* failures) {
    int value = 0;
    for (auto _ : *state) {
        int out = value;
        corio::result<void> sent = co_await ping->send(std::move(out));
        corio::result<int> back = co_await pong->recv();
        if (!sent || !back) {
            ++*failures;
            break;
        }
        value = *back + 1;
    }
    ping->close();
}

corio::task<void> echo_loop(corio::channel<int>* ping, corio::channel<int>* pong,
                            std::uint64_t* failures) {
    for (;;) {
        corio::result<int> got = co_await ping->recv();
        if (!got)
            co_return; // broken_pipe: the pinger is done
        int back = *got;
        corio::result<void> sent = co_await pong->send(std::move(back));
        if (!sent) {
            ++*failures;
            co_return;
        }
    }
}

corio::task<void> pingpong_main(benchmark::State* state, std::uint64_t* failures) {
    corio::channel<int> ping(1);
    corio::channel<int> pong(1);
    corio::task_scope scope;
    scope.spawn(echo_loop(&ping, &pong, failures));
    scope.spawn(ping_loop(state, &ping, &pong, failures));
    co_await scope.join();
}

// Two tasks bounce a value through two channels of capacity 1: items are round trips (two
// messages, two resumptions, no ring work).
void BM_runtime_channel_pingpong(benchmark::State& state) {
    corio::io_context ctx;
    std::uint64_t failures = 0;
    corio::sync_wait(ctx, pingpong_main(&state, &failures));
    if (failures != 0)
        state.SkipWithError("channel operation failed");
    state.SetItemsProcessed(state.iterations());
    count_loop(state, ctx, static_cast<double>(state.items_processed()));
}
BENCHMARK(BM_runtime_channel_pingpong);

} // namespace

// ----- a deadline per operation, with many other deadlines pending -----
// timeout(work, d) around a NOP while Arg other timers wait (10,000 idle connections, each with
// an idle deadline). corio keeps timers in a user-space heap; the raw twin does what a kernel
// timer per deadline costs: an IORING_OP_TIMEOUT beside each NOP and an IORING_OP_TIMEOUT_REMOVE
// when the NOP wins, which the kernel serves by walking its list of pending timeouts.

corio::task<void> sleep_an_hour() {
    [[maybe_unused]] corio::result<void> r = co_await corio::sleep_for(std::chrono::hours(1));
}

corio::task<corio::result<void>> one_nop() {
    corio::result<void> r = co_await corio::nop();
    co_return r;
}

corio::task<void> timeout_nop_loop(benchmark::State* state, std::size_t idle) {
    corio::task_scope sleepers;
    for (std::size_t i = 0; i < idle; ++i)
        sleepers.spawn(sleep_an_hour());
    for (auto _ : *state) {
        corio::result<void> r = co_await corio::timeout(one_nop(), std::chrono::hours(1));
        if (!r) {
            state->SkipWithError("nop failed");
            break;
        }
    }
    sleepers.request_stop();
    co_await sleepers.join();
}

void BM_runtime_timeout_nop_corio(benchmark::State& state) {
    corio::io_context ctx;
    corio::sync_wait(ctx, timeout_nop_loop(&state, static_cast<std::size_t>(state.range(0))));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_runtime_timeout_nop_corio)->Arg(0)->Arg(1000)->Arg(10000);

void BM_runtime_timeout_nop_raw_kernel_timers(benchmark::State& state) {
    raw_ring ring;
    io_uring* r = ring.get();
    __kernel_timespec hour{.tv_sec = 3600, .tv_nsec = 0};
    auto idle = static_cast<std::uint64_t>(state.range(0));
    for (std::uint64_t i = 0; i < idle; ++i) { // user_data 1000+: the idle deadlines
        io_uring_sqe* sqe = io_uring_get_sqe(r);
        if (!sqe) {
            io_uring_submit(r);
            sqe = io_uring_get_sqe(r);
        }
        io_uring_prep_timeout(sqe, &hour, 0, 0);
        io_uring_sqe_set_data64(sqe, 1000 + i);
    }
    io_uring_submit(r);
    for (auto _ : state) {
        io_uring_sqe* sqe = io_uring_get_sqe(r);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, 1);
        sqe = io_uring_get_sqe(r);
        io_uring_prep_timeout(sqe, &hour, 0, 0);
        io_uring_sqe_set_data64(sqe, 2);
        io_uring_submit_and_wait(r, 1); // the NOP (the timeout waits an hour)
        sqe = io_uring_get_sqe(r);
        io_uring_prep_timeout_remove(sqe, 2, 0);
        io_uring_sqe_set_data64(sqe, 3);
        // NOP, removed timeout (ECANCELED) and the remove itself: three completions.
        unsigned seen = 0;
        io_uring_submit_and_wait(r, 2);
        while (seen < 3) {
            io_uring_cqe* cqe = nullptr;
            if (io_uring_wait_cqe(r, &cqe) != 0) {
                state.SkipWithError("wait failed");
                return;
            }
            io_uring_cqe_seen(r, cqe);
            ++seen;
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_runtime_timeout_nop_raw_kernel_timers)->Arg(0)->Arg(1000)->Arg(10000);

BENCHMARK_MAIN();
