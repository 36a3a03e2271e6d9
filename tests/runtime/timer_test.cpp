// SPDX-License-Identifier: MIT
#include <corio/runtime/timer.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_all.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/support/pipe.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using corio::test::pipe_pair;

namespace {

task<std::chrono::nanoseconds> timed_sleep(std::chrono::milliseconds d) {
    auto start = std::chrono::steady_clock::now();
    result<void> r = co_await sleep_for(d);
    r.value();
    co_return std::chrono::steady_clock::now() - start;
}

task<bool> past_deadline() {
    result<void> r = co_await sleep_until(std::chrono::steady_clock::now() - 1s);
    co_return r.has_value();
}

task<void> sleep_then_log(std::chrono::milliseconds d, std::vector<int>* log) {
    result<void> r = co_await sleep_for(d);
    r.value();
    log->push_back(static_cast<int>(d.count()));
}

task<void> staggered(std::vector<int>* log) {
    auto all = when_all(sleep_then_log(60ms, log), sleep_then_log(20ms, log),
                        sleep_then_log(40ms, log));
    co_await all;
}

task<result<uring_completion>> read_with_deadline(int fd, char* byte,
                                                  std::chrono::milliseconds limit) {
    auto prep = [fd, byte](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, byte, 1, -1); };
    auto read = with_timeout(submit(prep), limit);
    result<uring_completion> r = co_await read;
    co_return r;
}

} // namespace

TEST_CASE("sleep_for waits at least its duration") {
    CHECK(sync_wait(timed_sleep(20ms)) >= 20ms);
}

TEST_CASE("sleep_until a past instant completes at once with success") {
    CHECK(sync_wait(past_deadline()));
}

TEST_CASE("concurrent timers fire in deadline order") {
    std::vector<int> log;
    sync_wait(staggered(&log));
    CHECK(log == std::vector<int>{20, 40, 60});
}

TEST_CASE("with_timeout fails a read that never completes with ETIMEDOUT") {
    pipe_pair pipe;
    char byte = 0;
    io_context ctx;
    result<uring_completion> r = sync_wait(ctx, read_with_deadline(pipe.read_end, &byte, 10ms));
    CHECK(r == std::errc::timed_out);
    CHECK(ctx.stats().ops_in_flight == 0); // both the read and its link timeout completed
}

TEST_CASE("with_timeout passes a read that completes in time through untouched") {
    pipe_pair pipe;
    char sent = 'k', byte = 0;
    REQUIRE(::write(pipe.write_end, &sent, 1) == 1);
    result<uring_completion> r = sync_wait(read_with_deadline(pipe.read_end, &byte, 1h));
    REQUIRE(r.has_value());
    CHECK(r->res == 1);
    CHECK(byte == 'k');
}

namespace {
/// An op with a member named like io_op's own: with_timeout must not write into it.
struct shadowing_nop : detail::basic_op<shadowing_nop> {
    unsigned m_flags = 7; // deliberately shadows io_op::m_flags
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_nop(sqe); }
    result<unsigned> await_resume() const noexcept { return m_flags; }
};

task<result<unsigned>> shadowed_with_deadline() {
    auto op = with_timeout(shadowing_nop{}, 1h);
    result<unsigned> r = co_await op;
    co_return r;
}
} // namespace

TEST_CASE("with_timeout stores the completion in io_op even when the op shadows its names") {
    // Regression: timed_op wrote m_op.m_flags by name and clobbered the op's own member.
    result<unsigned> r = sync_wait(shadowed_with_deadline());
    REQUIRE(r.has_value());
    CHECK(*r == 7);
}

namespace {
/// An op that is complete before it starts (as ops that refuse a misuse are).
struct already_done : detail::basic_op<already_done> {
    [[nodiscard]] bool await_ready() const noexcept { return true; }
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_nop(sqe); }
    result<int> await_resume() const noexcept { return 5; }
};

task<std::uint64_t> deadline_on_ready_op(int* value) {
    std::uint64_t before = io_context::current().stats().submitted;
    auto op = with_timeout(already_done{}, 1h);
    result<int> r = co_await op;
    *value = r.value_or(-1);
    result<void> flush = co_await nop(); // anything queued by the line above is submitted now
    flush.value();
    co_return io_context::current().stats().submitted - before;
}
} // namespace

TEST_CASE("with_timeout submits nothing for an op that is ready without the ring") {
    // Regression: timed_op ignored the inner op's await_ready and submitted the op anyway.
    int value = 0;
    CHECK(sync_wait(deadline_on_ready_op(&value)) == 1); // only the flushing nop
    CHECK(value == 5);
}

// ----- the loop's user-space timer queue -----

TEST_CASE("timer_queue fires every queued node once, in (deadline, queue order), never an erased "
          "one") {
    constexpr int k_nodes = 2'000;
    struct probe : detail::timer_node {
        int id = 0;
        std::vector<int>* log = nullptr;
    };
    std::vector<probe> nodes(k_nodes);
    std::vector<int> log;
    detail::timer_queue queue;
    std::uint64_t state = 12345; // a fixed LCG: deadlines with many ties, same every run
    auto next = [&state] {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<std::int64_t>(state >> 33);
    };
    for (int i = 0; i < k_nodes; ++i) {
        nodes[i].id = i;
        nodes[i].log = &log;
        nodes[i].m_deadline_ns = next() % 500;
        nodes[i].m_fire = [](detail::timer_node* n, bool expired) noexcept {
            CHECK(expired);
            auto* p = static_cast<probe*>(n);
            p->log->push_back(p->id);
        };
        queue.push(&nodes[i]);
    }
    std::vector<bool> erased(k_nodes, false);
    for (int i = 0; i < k_nodes; i += 3) { // every third, from all over the heap
        queue.erase(&nodes[i]);
        erased[i] = true;
    }
    queue.erase(&nodes[0]); // erasing twice is harmless
    REQUIRE(queue.size() == static_cast<std::size_t>(k_nodes - (k_nodes + 2) / 3));
    std::size_t fired = 0;
    for (std::int64_t now = 0; now < 520; now += 7) // time moves on in uneven steps
        fired += queue.fire_expired(now);
    CHECK(queue.empty());
    CHECK(fired == log.size());
    std::vector<int> expected;
    for (int i = 0; i < k_nodes; ++i)
        if (!erased[i])
            expected.push_back(i);
    std::stable_sort(expected.begin(), expected.end(), [&nodes](int a, int b) {
        return nodes[a].m_deadline_ns < nodes[b].m_deadline_ns; // stable: ties keep queue order
    });
    // Within one fire_expired call nodes come out by (deadline, order); across calls too.
    CHECK(log == expected);
}

namespace {

task<void> sleep_into(std::chrono::milliseconds d, result<void>* out) {
    *out = co_await sleep_for(d);
}

task<void> wait_for_timers(std::size_t n) {
    while (io_context::current().stats().timers_pending < n) {
        result<void> r = co_await nop();
        r.value();
    }
}

task<void> cancel_one_sleep(result<void>* cancelled, result<void>* kept) {
    task_scope doomed;
    task_scope spared;
    doomed.spawn(sleep_into(1h, cancelled));
    spared.spawn(sleep_into(1ms, kept));
    co_await wait_for_timers(2);
    doomed.request_stop();
    co_await doomed.join();
    CHECK(io_context::current().stats().timers_pending == 1); // left the queue at once
    co_await spared.join();
}

task<void> read_one(int fd, result<uring_completion>* out) {
    char byte = 0;
    auto prep = [fd, &byte](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &byte, 1, -1); };
    auto read = submit(prep);
    *out = co_await read;
}

task<std::size_t> sleep_beats_a_blocked_read(int fd, result<uring_completion>* read) {
    result<void> slept;
    auto race = when_any(read_one(fd, read), sleep_into(5ms, &slept));
    auto winner = co_await race;
    CHECK(slept.has_value());
    co_return winner.index;
}

task<result<int>> value_soon() {
    result<void> r = co_await nop();
    r.value();
    co_return 42;
}

task<std::uint64_t> timeout_that_the_work_wins(result<int>* out) {
    io_context& ctx = io_context::current();
    std::uint64_t before = ctx.stats().submitted;
    *out = co_await timeout(value_soon(), 1h);
    CHECK(ctx.stats().timers_pending == 0);
    result<void> flush = co_await nop();
    flush.value();
    co_return ctx.stats().submitted - before;
}

} // namespace

TEST_CASE("a cancelled sleep leaves the timer queue at once; the other sleep still fires") {
    result<void> cancelled, kept = std::errc::io_error;
    io_context ctx;
    sync_wait(ctx, cancel_one_sleep(&cancelled, &kept));
    CHECK(cancelled == std::errc::operation_canceled);
    CHECK(kept.has_value());
    CHECK(ctx.stats().timers_pending == 0);
}

TEST_CASE("a timer ends the loop's wait while an op that never completes is in flight") {
    pipe_pair pipe; // nobody writes: the read waits until cancelled
    result<uring_completion> read = std::errc::io_error;
    io_context ctx;
    CHECK(sync_wait(ctx, sleep_beats_a_blocked_read(pipe.read_end, &read)) == 1);
    CHECK(read == std::errc::operation_canceled);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("timeout() whose work finishes first submits the work's SQE and nothing for the timer") {
    io_context_options opts;
    opts.faults = fault_options{}; // counts SQEs exactly
    io_context ctx(opts);
    result<int> value = std::errc::io_error;
    // The nop of the work and the flushing nop: no IORING_OP_TIMEOUT, no cancel for it.
    CHECK(sync_wait(ctx, timeout_that_the_work_wins(&value)) == 2);
    CHECK(value.value_or(0) == 42);
}
