// SPDX-License-Identifier: MIT
// Cancellation reaches the op in flight, which resumes exactly once, on its own completion.
#include <corio/runtime/stop.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/support/pipe.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using corio::test::pipe_pair;

namespace {

constexpr std::errc k_canceled = std::errc::operation_canceled;

struct outcome {
    int resumed = 0;        // times the op's awaiter resumed
    std::error_code error;  // what it resumed with
};

task<void> sleep_long(outcome* out) {
    result<void> r = co_await sleep_for(1h);
    ++out->resumed;
    out->error = r.error();
}

task<void> read_pipe(int fd, outcome* out) {
    char byte = 0;
    auto prep = [fd, &byte](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &byte, 1, -1); };
    auto read = submit(prep);
    result<uring_completion> r = co_await read;
    ++out->resumed;
    out->error = r.error();
}

/// Until `n` ops are in flight or timers queued (a sleep is a timer, not an op in flight).
task<void> wait_until_in_flight(std::size_t n) {
    io_context& ctx = io_context::current();
    for (;;) {
        io_context_stats s = ctx.stats();
        if (s.ops_in_flight + s.timers_pending >= n)
            break;
        result<void> r = co_await nop();
        r.value();
    }
}

task<void> cancel_many(std::vector<outcome>* outcomes, int fd) {
    task_scope scope;
    for (outcome& o : *outcomes)
        scope.spawn(fd < 0 ? sleep_long(&o) : read_pipe(fd, &o));
    co_await wait_until_in_flight(outcomes->size());
    scope.request_stop();
    co_await scope.join();
}

task<void> nop_into(result<void>* out) { *out = co_await nop(); }

task<void> stop_scope(task_scope* scope) {
    scope->request_stop();
    co_return;
}

task<void> race_nop_with_cancel(result<void>* nop_result) {
    task_scope scope;
    scope.spawn(nop_into(nop_result));
    // Both start on the next turn in spawn order: the nop's SQE is queued before the cancel's,
    // so the kernel completes the nop before the cancel looks for it.
    scope.spawn(stop_scope(&scope));
    co_await scope.join();
}

task<void> nop_after_stop(task_scope* scope, result<void>* out, std::uint64_t* submitted) {
    scope->request_stop();
    std::uint64_t before = io_context::current().stats().submitted;
    *out = co_await nop();
    *submitted = io_context::current().stats().submitted - before;
}

task<void> start_after_stop(result<void>* out, std::uint64_t* submitted) {
    task_scope scope;
    scope.spawn(nop_after_stop(&scope, out, submitted));
    co_await scope.join();
}

task<void> deep(int depth, outcome* out) {
    if (depth == 0) {
        co_await sleep_long(out);
        co_return;
    }
    co_await deep(depth - 1, out);
}

task<void> quick() {
    result<void> r = co_await nop();
    r.value();
}

task<std::size_t> race_deep(outcome* out) {
    auto race = when_any(deep(10, out), quick());
    auto winner = co_await race;
    co_return winner.index;
}

} // namespace

TEST_CASE("cancelling 10,000 pending timers resumes each exactly once with ECANCELED") {
    std::vector<outcome> outcomes(10'000);
    io_context ctx;
    sync_wait(ctx, cancel_many(&outcomes, -1));
    CHECK(std::all_of(outcomes.begin(), outcomes.end(),
                      [](const outcome& o) { return o.resumed == 1 && o.error == k_canceled; }));
    CHECK(ctx.stats().ops_in_flight == 0);
    CHECK(ctx.stats().timers_pending == 0);
}

TEST_CASE("cancelling 10,000 pending pipe reads resumes each once and consumes no data") {
    pipe_pair pipe;
    std::vector<outcome> outcomes(10'000);
    io_context ctx;
    sync_wait(ctx, cancel_many(&outcomes, pipe.read_end));
    CHECK(std::all_of(outcomes.begin(), outcomes.end(),
                      [](const outcome& o) { return o.resumed == 1 && o.error == k_canceled; }));
    // No cancelled read is still attached to the pipe: the next byte reaches a plain read.
    char sent = 'x', got = 0;
    REQUIRE(::write(pipe.write_end, &sent, 1) == 1);
    REQUIRE(::read(pipe.read_end, &got, 1) == 1);
    CHECK(got == 'x');
}

TEST_CASE("an op whose completion beats its cancel resumes once with its own success") {
    result<void> r = std::errc::io_error;
    sync_wait(race_nop_with_cancel(&r));
    CHECK(r.has_value());
}

TEST_CASE("an op started after stop was requested reports ECANCELED without a submission") {
    result<void> r;
    std::uint64_t submitted = 99;
    sync_wait(start_after_stop(&r, &submitted));
    CHECK(r == std::errc::operation_canceled);
    CHECK(submitted == 0);
}

TEST_CASE("cancellation reaches an op ten task levels down") {
    outcome out;
    CHECK(sync_wait(race_deep(&out)) == 1);
    CHECK(out.resumed == 1);
    CHECK(out.error == k_canceled);
}

TEST_CASE("a stop_callback runs once on request_stop and not after it is destroyed") {
    stop_source source;
    int calls = 0;
    {
        stop_callback cb(source.token(), [&calls] { ++calls; });
        CHECK(calls == 0);
    }
    stop_callback kept(source.token(), [&calls] { calls += 10; });
    source.request_stop();
    source.request_stop();
    CHECK(calls == 10);
    stop_callback late(source.token(), [&calls] { calls += 100; });
    CHECK(calls == 110);
    CHECK(source.stop_requested());
    CHECK_FALSE(stop_token{}.stop_possible());
}
