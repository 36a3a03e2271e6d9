// SPDX-License-Identifier: MIT
#include <corio/runtime/event.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/support/sync_support.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corio;
using log_t = std::vector<std::string>;

namespace {

using test::outcome;

task<void> waiter(event* ev, log_t* log, std::string name) {
    result<void> r = co_await ev->wait();
    log->push_back(name + " " + outcome(r));
}

task<int> waiter_int(event* ev, log_t* log, std::string name) {
    result<void> r = co_await ev->wait();
    log->push_back(name + " " + outcome(r));
    co_return 0;
}

task<int> after_yield() {
    co_await test::yield();
    co_return 7;
}

task<void> wake_three(log_t* log) {
    event ev;
    task_scope scope;
    for (int i = 1; i <= 3; ++i)
        scope.spawn(waiter(&ev, log, std::to_string(i)));
    co_await test::yield();
    log->push_back(ev.is_set() ? "set?" : "not set");
    ev.set();
    log->push_back(ev.is_set() ? "set" : "not set?");
    co_await scope.join();
}

task<void> set_then_reset(log_t* log) {
    io_context& ctx = io_context::current();
    event ev(true);
    std::uint64_t turns = ctx.stats().loop_turns;
    result<void> r = co_await ev.wait();
    log->push_back(outcome(r));
    log->push_back(ctx.stats().loop_turns == turns ? "no turn" : "turned");
    ev.reset();
    task_scope scope;
    scope.spawn(waiter(&ev, log, "w"));
    co_await test::yield();
    co_await test::yield();
    log->push_back("still waiting");
    ev.set();
    co_await scope.join();
}

task<void> cancel_middle(log_t* log) {
    event ev;
    task_scope outer;
    task_scope inner;
    outer.spawn(waiter(&ev, log, "1"));
    inner.spawn(waiter(&ev, log, "2"));
    outer.spawn(waiter(&ev, log, "3"));
    co_await test::yield();
    inner.request_stop();
    co_await inner.join();
    log->push_back("set");
    ev.set();
    co_await outer.join();
}

task<void> cancelled_before_wait(log_t* log) {
    event ev(true);
    task_scope scope;
    scope.spawn(waiter(&ev, log, "w"));
    scope.request_stop();
    co_await scope.join();
}

task<void> lose_race(log_t* log) {
    event ev;
    auto race = when_any(waiter_int(&ev, log, "w"), after_yield());
    auto winner = co_await race;
    log->push_back("winner " + std::to_string(winner.index) + " " +
                   std::to_string(std::get<1>(winner.value)));
    ev.set(); // nobody waits any more: nothing is posted
    co_await test::yield();
    log->push_back("end");
}

test::probe wait_in_probe(event* ev, bool* resumed) {
    [[maybe_unused]] result<void> r = co_await ev->wait();
    *resumed = true;
}

} // namespace

TEST_CASE("event wakes every waiter in FIFO order") {
    log_t log;
    sync_wait(wake_three(&log));
    CHECK(log == log_t{"not set", "set", "1 ok", "2 ok", "3 ok"});
}

TEST_CASE("a wait on a set event completes without a loop turn and reset makes waits block") {
    log_t log;
    sync_wait(set_then_reset(&log));
    CHECK(log == log_t{"ok", "no turn", "still waiting", "w ok"});
}

TEST_CASE("a cancelled event wait resumes once with operation_canceled and leaves the other "
          "waiters") {
    log_t log;
    sync_wait(cancel_middle(&log));
    CHECK(log == log_t{"2 canceled", "set", "1 ok", "3 ok"});
}

TEST_CASE("an event wait that begins after cancellation fails at once even if the event is set") {
    log_t log;
    sync_wait(cancelled_before_wait(&log));
    CHECK(log == log_t{"w canceled"});
}

TEST_CASE("when_any cancels a losing event wait and a later set wakes nobody") {
    log_t log;
    sync_wait(lose_race(&log));
    CHECK(log == log_t{"w canceled", "winner 1 7", "end"});
}

TEST_CASE("sync_wait on an event nobody sets reports a deadlock and the wait unlinks itself") {
    event ev;
    log_t log;
    CHECK_THROWS_AS(sync_wait(waiter(&ev, &log, "w")), std::logic_error);
    ev.set(); // the destroyed frame no longer waits: nothing to post, no io_context needed
    CHECK(log.empty());
}

TEST_CASE("an event wait whose frame is destroyed while waiting unlinks itself") {
    io_context ctx;
    event ev;
    stop_source stop;
    bool resumed = false;
    {
        test::probe p = wait_in_probe(&ev, &resumed);
        p.start(stop.token());
        CHECK_FALSE(p.done());
    }
    stop.request_stop(); // its stop callback is gone
    ev.set();            // and so is its wait-list entry
    ctx.run();
    CHECK_FALSE(resumed);
}
