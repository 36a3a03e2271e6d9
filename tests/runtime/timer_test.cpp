// SPDX-License-Identifier: MIT
#include <corio/runtime/timer.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_all.hpp>
#include "tests/support/pipe.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
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
