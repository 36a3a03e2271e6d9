// SPDX-License-Identifier: MIT
#include <corio/runtime/when_any.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;

namespace {

task<int> after_nops(int v, int nops) {
    for (int i = 0; i < nops; ++i) {
        result<void> r = co_await nop();
        r.value();
    }
    co_return v;
}

task<std::string> sleeper(std::vector<std::string>* log) {
    result<void> r = co_await sleep_for(1h);
    log->push_back(r ? "slept" : "cancelled");
    co_return "sleeper";
}

task<std::string> race(std::vector<std::string>* log) {
    auto any = when_any(sleeper(log), after_nops(5, 2));
    auto winner = co_await any;
    log->push_back("resumed");
    if (winner.index != 1)
        co_return "wrong winner";
    co_return std::to_string(std::get<1>(winner.value));
}

task<int> immediate(int v) { co_return v; }

task<std::size_t> inline_winner() {
    auto any = when_any(after_nops(1, 1), immediate(2), immediate(3));
    auto winner = co_await any;
    co_return winner.index * 10 + static_cast<std::size_t>(std::get<1>(winner.value));
}

task<int> fail_after_nop() {
    result<void> r = co_await nop();
    r.value();
    throw std::runtime_error("winner failed");
}

task<std::string> failing_winner(std::vector<std::string>* log) {
    try {
        auto any = when_any(sleeper(log), fail_after_nop());
        auto winner = co_await any;
        co_return "no exception " + std::to_string(winner.index);
    } catch (const std::runtime_error& e) {
        co_return e.what();
    }
}

task<std::pair<std::size_t, int>> vector_race() {
    std::vector<task<int>> tasks;
    tasks.push_back(after_nops(10, 3));
    tasks.push_back(after_nops(20, 1));
    tasks.push_back(after_nops(30, 2));
    auto any = when_any(std::move(tasks));
    auto winner = co_await any;
    co_return winner;
}

task<int> slow_value() {
    result<void> r = co_await sleep_for(1h);
    if (!r)
        throw std::system_error(r.error());
    co_return 1;
}

task<result<int>> fast_result() {
    result<void> r = co_await nop();
    if (!r)
        co_return r.error();
    co_return 8;
}

task<std::string> deadlines() {
    result<int> late = co_await timeout(slow_value(), 5ms);
    result<int> early = co_await timeout(fast_result(), 1h);
    co_return std::string(late == std::errc::timed_out ? "timed_out" : "?") + " " +
        std::to_string(early.value_or(-1));
}

} // namespace

TEST_CASE("when_any returns the first to finish after cancelling and awaiting the loser") {
    std::vector<std::string> log;
    CHECK(sync_wait(race(&log)) == "5");
    CHECK(log == std::vector<std::string>{"cancelled", "resumed"});
}

TEST_CASE("when_any picks the first task that finishes inline") {
    CHECK(sync_wait(inline_winner()) == 12);
}

TEST_CASE("when_any rethrows the winner's exception after the losers finished") {
    std::vector<std::string> log;
    CHECK(sync_wait(failing_winner(&log)) == "winner failed");
    CHECK(log == std::vector<std::string>{"cancelled"});
}

TEST_CASE("when_any over a vector reports the winner's index and value") {
    auto [index, value] = sync_wait(vector_race());
    CHECK(index == 1);
    CHECK(value == 20);
}

TEST_CASE("timeout() cancels a slow task with timed_out and passes a fast result through") {
    CHECK(sync_wait(deadlines()) == "timed_out 8");
}
