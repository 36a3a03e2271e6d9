// SPDX-License-Identifier: MIT
// What a cross-shard call costs (issue 13): on_shard() between two shards, against the same
// lanes each awaiting a local NOP through its own ring, and against the raw twin: two threads
// bouncing IORING_OP_MSG_RING messages between two rings by hand. 32 lanes in flight each (the
// server shape), one benchmark iteration per completed call; real time (the shards are threads).
#include <corio/runtime/shard.hpp>
#include <corio/runtime/uring_op.hpp>

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <time.h>

namespace {

constexpr unsigned k_lanes = 32;

struct lanes_shared {
    benchmark::State* state = nullptr;
    std::atomic<bool> done{false};
    std::uint64_t completed = 0; // shard 0 only
    bool cross = true;           // on_shard(1, ...) or a local NOP
    corio::io_context_stats caller;  // shard 0's loop, at the end
    corio::io_context_stats callee;  // shard 1's loop, at the end
    std::int64_t cpu_ns = 0;         // both shard threads' CPU time, start to end
};

/// CPU time of the calling thread so far.
std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

corio::task<void> one_step(lanes_shared* shared) {
    if (shared->cross) {
        auto call = corio::on_shard(1, [] { return 1; });
        int one = co_await call;
        shared->completed += static_cast<std::uint64_t>(one);
    } else {
        corio::result<void> r = co_await corio::nop();
        shared->completed += r ? 1 : 0;
    }
}

// Lane 0 drives the benchmark loop; the others keep one call in flight each until it is done.
corio::task<void> pacer(lanes_shared* shared) {
    for (auto _ : *shared->state)
        co_await one_step(shared);
    shared->done = true;
}

corio::task<void> lane(lanes_shared* shared) {
    while (!shared->done.load(std::memory_order_relaxed))
        co_await one_step(shared);
}

corio::task<void> lanes_main(lanes_shared* shared, corio::shard& s) {
    if (s.id() != 0)
        co_return; // shard 1 serves the calls until every main has returned
    corio::task_scope scope;
    scope.spawn(s.context(), pacer(shared));
    for (unsigned i = 1; i < k_lanes; ++i)
        scope.spawn(s.context(), lane(shared));
    co_await scope.join();
    shared->caller = s.context().stats();
    shared->callee =
        co_await corio::on_shard(1, [] { return corio::shard::current()->context().stats(); });
    shared->cpu_ns = thread_cpu_ns() + co_await corio::on_shard(1, [] { return thread_cpu_ns(); });
}

void run_lanes(benchmark::State& state, bool cross, std::chrono::microseconds idle_poll = {}) {
    corio::shard_options options;
    options.count = 2;
    options.cpus = {0, 1};
    options.idle_poll = idle_poll;
    corio::shard_group group(options);
    lanes_shared shared;
    shared.state = &state;
    shared.cross = cross;
    group.run([&shared](corio::shard& s) { return lanes_main(&shared, s); });
    state.SetItemsProcessed(static_cast<std::int64_t>(shared.completed));
    state.SetLabel(group.uses_msg_ring() ? "msg_ring" : "eventfd");
    // Where the time goes: kernel entries and loop turns per call on each side (a sleep and a
    // wake-up cost an entry each).
    double calls = static_cast<double>(std::max<std::uint64_t>(shared.completed, 1));
    state.counters["enters_0"] = static_cast<double>(shared.caller.kernel_enters) / calls;
    state.counters["enters_1"] = static_cast<double>(shared.callee.kernel_enters) / calls;
    state.counters["turns_0"] = static_cast<double>(shared.caller.loop_turns) / calls;
    state.counters["turns_1"] = static_cast<double>(shared.callee.loop_turns) / calls;
    // CPU per call on both shards together: what a call costs whatever else the machine runs
    // (real time per call also counts the wake-up latency between cores).
    state.counters["cpu_ns"] = static_cast<double>(shared.cpu_ns) / calls;
}

void BM_shard_call_cross_32lanes(benchmark::State& state) { run_lanes(state, true); }
BENCHMARK(BM_shard_call_cross_32lanes)->UseRealTime();

// The same, with the shards looking at their inboxes for up to 50 us before they sleep
// (shard_options::idle_poll): the calls go without sleeps and wake-ups.
void BM_shard_call_cross_32lanes_idle_poll(benchmark::State& state) {
    run_lanes(state, true, std::chrono::microseconds(50));
}
BENCHMARK(BM_shard_call_cross_32lanes_idle_poll)->UseRealTime();

void BM_shard_local_nop_32lanes(benchmark::State& state) { run_lanes(state, false); }
BENCHMARK(BM_shard_local_nop_32lanes)->UseRealTime();

// ----- the raw twin: MSG_RING by hand between two rings, 32 messages in flight -----

constexpr std::uint64_t k_stop = ~std::uint64_t{0};

void bounce_back(io_uring* mine, int peer_fd) {
    for (;;) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_wait_cqe(mine, &cqe) != 0)
            return;
        unsigned head;
        unsigned seen = 0;
        bool stop = false;
        io_uring_for_each_cqe(mine, head, cqe) {
            ++seen;
            if (cqe->user_data == 0)
                continue; // our own MSG_RING's completion
            if (cqe->user_data == k_stop) {
                stop = true;
                continue;
            }
            io_uring_sqe* sqe = io_uring_get_sqe(mine);
            io_uring_prep_msg_ring(sqe, peer_fd, 0, cqe->user_data, 0);
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
            io_uring_sqe_set_data64(sqe, 0);
        }
        io_uring_cq_advance(mine, seen);
        io_uring_submit(mine);
        if (stop)
            return;
    }
}

void BM_shard_raw_msg_ring_32inflight(benchmark::State& state) {
    io_uring a{};
    io_uring b{};
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(256, &a, &params) != 0) {
        state.SkipWithError("io_uring setup");
        return;
    }
    std::thread other;
    std::atomic<bool> b_ready{false};
    other = std::thread([&] {
        io_uring_params pb{};
        pb.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        io_uring_queue_init_params(256, &b, &pb);
        b_ready = true;
        bounce_back(&b, a.ring_fd);
        io_uring_queue_exit(&b);
    });
    while (!b_ready)
        std::this_thread::yield();
    for (std::uint64_t i = 1; i <= k_lanes; ++i) {
        io_uring_sqe* sqe = io_uring_get_sqe(&a);
        io_uring_prep_msg_ring(sqe, b.ring_fd, 0, i, 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, 0);
    }
    io_uring_submit(&a);
    std::uint64_t completed = 0;
    unsigned pending = 0; // replies reaped but not yet counted by the loop
    for (auto _ : state) {
        while (pending == 0) {
            io_uring_cqe* cqe = nullptr;
            io_uring_wait_cqe(&a, &cqe);
            unsigned head;
            unsigned seen = 0;
            io_uring_for_each_cqe(&a, head, cqe) {
                ++seen;
                if (cqe->user_data == 0)
                    continue;
                ++pending;
                io_uring_sqe* sqe = io_uring_get_sqe(&a);
                io_uring_prep_msg_ring(sqe, b.ring_fd, 0, cqe->user_data, 0);
                sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
                io_uring_sqe_set_data64(sqe, 0);
            }
            io_uring_cq_advance(&a, seen);
            io_uring_submit(&a);
        }
        --pending;
        ++completed;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&a);
    io_uring_prep_msg_ring(sqe, b.ring_fd, 0, k_stop, 0);
    io_uring_sqe_set_data64(sqe, 0);
    io_uring_submit(&a);
    other.join();
    io_uring_queue_exit(&a);
    state.SetItemsProcessed(static_cast<std::int64_t>(completed));
}
BENCHMARK(BM_shard_raw_msg_ring_32inflight)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
