// SPDX-License-Identifier: MIT
#include <corio/runtime/task_scope.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_any.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;

namespace {

task<void> log_after_nops(int id, int nops, std::vector<int>* log) {
    for (int i = 0; i < nops; ++i) {
        result<void> r = co_await nop();
        r.value();
    }
    log->push_back(id);
}

task<void> spawn_is_lazy(std::vector<int>* log) {
    task_scope scope;
    scope.spawn(log_after_nops(1, 0, log));
    log->push_back(0); // the child has not run yet: it starts on the next turn
    co_await scope.join();
    log->push_back(2);
}

task<void> sleep_and_log(std::vector<std::string>* log) {
    result<void> r = co_await sleep_for(1h);
    log->push_back(r ? "slept" : "cancelled");
}

task<void> fail_after_nop() {
    result<void> r = co_await nop();
    r.value();
    throw std::runtime_error("child failed");
}

task<std::string> failing_child(std::vector<std::string>* log) {
    task_scope scope;
    scope.spawn(sleep_and_log(log));
    scope.spawn(fail_after_nop());
    try {
        co_await scope.join();
        co_return "joined";
    } catch (const std::runtime_error& e) {
        co_return e.what();
    }
}

task<void> join_children(std::vector<std::string>* log) {
    task_scope scope;
    scope.spawn(sleep_and_log(log));
    scope.spawn(sleep_and_log(log));
    co_await scope.join();
    log->push_back("joined");
}


task<void> nop_only(int nops) {
    for (int i = 0; i < nops; ++i) {
        result<void> r = co_await nop();
        r.value();
    }
}

task<int> cancel_the_joiner_cleanly(std::vector<std::string>* log) {
    auto race = when_any(join_children(log), nop_only(2));
    auto winner = co_await race;
    co_return static_cast<int>(winner.index);
}

} // namespace

TEST_CASE("spawned tasks start on the next turn and join waits for them") {
    std::vector<int> log;
    sync_wait(spawn_is_lazy(&log));
    CHECK(log == std::vector<int>{0, 1, 2});
}

TEST_CASE("a child's exception cancels its siblings and join rethrows it") {
    std::vector<std::string> log;
    CHECK(sync_wait(failing_child(&log)) == "child failed");
    CHECK(log == std::vector<std::string>{"cancelled"});
}

TEST_CASE("cancelling the task that joins a scope cancels the scope's children") {
    std::vector<std::string> log;
    CHECK(sync_wait(cancel_the_joiner_cleanly(&log)) == 1);
    CHECK(log == std::vector<std::string>{"cancelled", "cancelled", "joined"});
}
