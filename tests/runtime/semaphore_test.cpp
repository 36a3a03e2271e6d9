// SPDX-License-Identifier: MIT
#include <corio/runtime/semaphore.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/when_all.hpp>
#include "tests/support/sync_support.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

using namespace corio;
using log_t = std::vector<std::string>;

namespace {

using test::outcome;

task<void> acquirer(semaphore* sem, log_t* log, std::string name) {
    result<void> r = co_await sem->acquire();
    log->push_back(name + " " + outcome(r));
}

task<void> fifo_handoff(log_t* log) {
    semaphore sem(0);
    task_scope scope;
    for (int i = 1; i <= 3; ++i)
        scope.spawn(acquirer(&sem, log, std::to_string(i)));
    co_await test::yield();
    log->push_back("release 2");
    sem.release(2);
    log->push_back("available " + std::to_string(sem.available()));
    co_await test::yield();
    log->push_back("release 2");
    sem.release(2);
    log->push_back("available " + std::to_string(sem.available()));
    co_await scope.join();
}

task<void> no_barging(log_t* log) {
    semaphore sem(0);
    task_scope scope;
    scope.spawn(acquirer(&sem, log, "waiter"));
    co_await test::yield();
    sem.release();
    log->push_back(sem.try_acquire() ? "late arriver took it" : "late arriver refused");
    log->push_back("available " + std::to_string(sem.available()));
    co_await scope.join();
}

task<void> fast_path(log_t* log) {
    io_context& ctx = io_context::current();
    semaphore sem(2);
    std::uint64_t turns = ctx.stats().loop_turns;
    result<void> a = co_await sem.acquire();
    result<void> b = co_await sem.acquire();
    log->push_back(outcome(a) + " " + outcome(b));
    log->push_back(ctx.stats().loop_turns == turns ? "no turn" : "turned");
    log->push_back(sem.try_acquire() ? "try ok" : "try refused");
    sem.release(2);
    log->push_back(sem.try_acquire() ? "try ok" : "try refused");
    log->push_back("available " + std::to_string(sem.available()));
}

task<void> cancel_middle(log_t* log) {
    semaphore sem(0);
    task_scope outer;
    task_scope inner;
    outer.spawn(acquirer(&sem, log, "1"));
    inner.spawn(acquirer(&sem, log, "2"));
    outer.spawn(acquirer(&sem, log, "3"));
    co_await test::yield();
    inner.request_stop();
    co_await inner.join();
    sem.release(3);
    log->push_back("available " + std::to_string(sem.available()));
    co_await outer.join();
}

task<void> bounded_worker(semaphore* sem, int* active, int* peak, int* done) {
    result<void> r = co_await sem->acquire();
    r.value();
    ++*active;
    *peak = *active > *peak ? *active : *peak;
    co_await test::yield();
    co_await test::yield();
    --*active;
    ++*done;
    sem->release();
}

task<void> bounded(int* peak, int* done) {
    semaphore sem(3);
    int active = 0;
    task_scope scope;
    for (int i = 0; i < 10; ++i)
        scope.spawn(bounded_worker(&sem, &active, peak, done));
    co_await scope.join();
}

test::probe acquire_in_probe(semaphore* sem, bool* resumed) {
    [[maybe_unused]] result<void> r = co_await sem->acquire();
    *resumed = true;
}

} // namespace

TEST_CASE("semaphore hands units to waiters in FIFO order") {
    log_t log;
    sync_wait(fifo_handoff(&log));
    CHECK(log ==
          log_t{"release 2", "available 0", "1 ok", "2 ok", "release 2", "available 1", "3 ok"});
}

TEST_CASE("a released unit goes to the oldest waiter, not to a later try_acquire") {
    log_t log;
    sync_wait(no_barging(&log));
    CHECK(log == log_t{"late arriver refused", "available 0", "waiter ok"});
}

TEST_CASE("semaphore acquire takes an available unit without a loop turn") {
    log_t log;
    sync_wait(fast_path(&log));
    CHECK(log == log_t{"ok ok", "no turn", "try refused", "try ok", "available 1"});
}

TEST_CASE("a cancelled acquire resumes with operation_canceled and takes no unit") {
    log_t log;
    sync_wait(cancel_middle(&log));
    CHECK(log == log_t{"2 canceled", "available 1", "1 ok", "3 ok"});
}

TEST_CASE("semaphore of 3 keeps at most 3 of 10 yielding tasks inside") {
    int peak = 0;
    int done = 0;
    sync_wait(bounded(&peak, &done));
    CHECK(peak == 3);
    CHECK(done == 10);
}

TEST_CASE("an acquire whose frame is destroyed while waiting unlinks itself") {
    io_context ctx;
    semaphore sem(0);
    stop_source stop;
    bool resumed = false;
    {
        test::probe p = acquire_in_probe(&sem, &resumed);
        p.start(stop.token());
        CHECK_FALSE(p.done());
    }
    stop.request_stop();
    sem.release();
    CHECK(sem.available() == 1); // the unit was not handed to the destroyed waiter
    ctx.run();
    CHECK_FALSE(resumed);
}
