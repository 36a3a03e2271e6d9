// SPDX-License-Identifier: MIT
#include <corio/runtime/mutex.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include "tests/support/sync_support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

using namespace corio;
using log_t = std::vector<std::string>;

namespace {

struct shared_state {
    mutex m;
    bool inside = false;    // some task is in the critical section
    int overlaps = 0;       // times a task found another one inside
    std::vector<int> order; // who entered, in order
};

task<void> critical(shared_state* s, int id) {
    result<mutex::guard> g = co_await s->m.lock();
    REQUIRE(g);
    if (s->inside)
        ++s->overlaps;
    s->inside = true;
    s->order.push_back(id);
    co_await test::yield();
    co_await test::yield();
    s->inside = false;
}

task<void> hundred(shared_state* s) {
    task_scope scope;
    for (int i = 0; i < 100; ++i)
        scope.spawn(critical(s, i));
    co_await scope.join();
}

std::string outcome(const result<mutex::guard>& r) {
    if (r)
        return "locked";
    if (r == std::errc::operation_canceled)
        return "canceled";
    return r.error().message();
}

task<void> locker(mutex* m, log_t* log, std::string name) {
    result<mutex::guard> g = co_await m->lock();
    log->push_back(name + " " + outcome(g));
}

task<void> handoff(log_t* log) {
    mutex m;
    task_scope scope;
    std::optional<mutex::guard> held = m.try_lock();
    log->push_back(held ? "held" : "not held");
    scope.spawn(locker(&m, log, "waiter"));
    co_await test::yield();
    held.reset();
    log->push_back(m.is_locked() ? "still locked" : "unlocked");
    std::optional<mutex::guard> late = m.try_lock();
    log->push_back(late ? "late arriver barged" : "late arriver refused");
    co_await scope.join();
    log->push_back(m.is_locked() ? "still locked" : "unlocked");
}

task<void> cancel_middle(log_t* log) {
    mutex m;
    task_scope outer;
    task_scope inner;
    result<mutex::guard> held = co_await m.lock();
    outer.spawn(locker(&m, log, "1"));
    inner.spawn(locker(&m, log, "2"));
    outer.spawn(locker(&m, log, "3"));
    co_await test::yield();
    inner.request_stop();
    co_await inner.join();
    log->push_back("unlock");
    held->unlock();
    co_await outer.join();
    log->push_back(m.is_locked() ? "still locked" : "unlocked");
}

test::probe lock_in_probe(mutex* m, bool* resumed) {
    [[maybe_unused]] result<mutex::guard> g = co_await m->lock();
    *resumed = true;
}

} // namespace

TEST_CASE("mutex serialises 100 tasks that yield while holding it") {
    shared_state s;
    sync_wait(hundred(&s));
    std::vector<int> expected;
    for (int i = 0; i < 100; ++i)
        expected.push_back(i);
    CHECK(s.overlaps == 0);
    CHECK(s.order == expected); // FIFO: in the order they asked
    CHECK_FALSE(s.m.is_locked());
}

TEST_CASE("try_lock fails while locked and succeeds once the guard is gone") {
    mutex m;
    std::optional<mutex::guard> a = m.try_lock();
    REQUIRE(a);
    CHECK(a->owns_lock());
    CHECK_FALSE(m.try_lock());
    mutex::guard moved = std::move(*a);
    CHECK_FALSE(a->owns_lock());
    a.reset(); // a moved-from guard unlocks nothing
    CHECK(m.is_locked());
    moved.unlock();
    CHECK_FALSE(moved.owns_lock());
    CHECK_FALSE(m.is_locked());
    std::optional<mutex::guard> b = m.try_lock();
    CHECK(b);
}

TEST_CASE("unlock hands the mutex to the oldest waiter so a later try_lock cannot barge") {
    log_t log;
    sync_wait(handoff(&log));
    CHECK(log ==
          log_t{"held", "still locked", "late arriver refused", "waiter locked", "unlocked"});
}

TEST_CASE("a cancelled lock wait resumes with operation_canceled and the next waiter gets it") {
    log_t log;
    sync_wait(cancel_middle(&log));
    CHECK(log == log_t{"2 canceled", "unlock", "1 locked", "3 locked", "unlocked"});
}

TEST_CASE("a lock wait whose frame is destroyed while waiting unlinks itself") {
    io_context ctx;
    mutex m;
    stop_source stop;
    bool resumed = false;
    std::optional<mutex::guard> held = m.try_lock();
    {
        test::probe p = lock_in_probe(&m, &resumed);
        p.start(stop.token());
        CHECK_FALSE(p.done());
    }
    stop.request_stop();
    held.reset();
    CHECK_FALSE(m.is_locked()); // not handed to the destroyed waiter
    ctx.run();
    CHECK_FALSE(resumed);
}
