// SPDX-License-Identifier: MIT
#include <corio/runtime/when_all.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include "tests/support/counted.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using corio::test::counted;

namespace {

task<int> now(int v) { co_return v; }

task<int> after_nops(int v, int nops, std::vector<int>* log) {
    for (int i = 0; i < nops; ++i) {
        result<void> r = co_await nop();
        r.value();
    }
    log->push_back(v);
    co_return v;
}

task<void> nothing(std::vector<int>* log) {
    log->push_back(0);
    co_return;
}

task<std::string> text() {
    result<void> r = co_await nop();
    r.value();
    co_return "text";
}

task<std::tuple<int, std::monostate, std::string, int>> mixed(std::vector<int>* log) {
    auto all = when_all(after_nops(3, 3, log), nothing(log), text(), now(9));
    auto values = co_await all;
    co_return values;
}

task<std::vector<int>> many(int n, std::vector<int>* log) {
    std::vector<task<int>> tasks;
    for (int i = 0; i < n; ++i)
        tasks.push_back(after_nops(i, n - i, log));
    auto all = when_all(std::move(tasks));
    std::vector<int> values = co_await all;
    co_return values;
}

task<int> fail_after_nop() {
    result<void> r = co_await nop();
    r.value();
    throw std::runtime_error("first failure");
}

task<int> sleeper(std::error_code* seen, counted witness) {
    result<void> r = co_await sleep_for(1h);
    *seen = r.error();
    co_return witness.value;
}

task<std::string> failing_group(std::error_code* seen) {
    try {
        auto all = when_all(sleeper(seen, counted(1)), fail_after_nop());
        auto values = co_await all;
        co_return "no exception " + std::to_string(std::get<0>(values));
    } catch (const std::runtime_error& e) {
        co_return e.what();
    }
}

task<std::size_t> empty_group() {
    auto all = when_all(std::vector<task<int>>{});
    std::vector<int> values = co_await all;
    co_return values.size();
}

} // namespace

TEST_CASE("when_all returns every value in argument order, whatever the finishing order") {
    std::vector<int> log;
    auto [a, b, c, d] = sync_wait(mixed(&log));
    CHECK(a == 3);
    CHECK(b == std::monostate{});
    CHECK(c == "text");
    CHECK(d == 9);
    CHECK(log == std::vector<int>{0, 3}); // nothing() finished inline, before the nops
}

TEST_CASE("when_all over a vector keeps input order and all run concurrently") {
    std::vector<int> log;
    std::vector<int> values = sync_wait(many(5, &log));
    CHECK(values == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(log == std::vector<int>{4, 3, 2, 1, 0}); // fewest nops finishes first
}

TEST_CASE("when_all of no tasks completes at once with no values") {
    CHECK(sync_wait(empty_group()) == 0);
}

TEST_CASE("when_all cancels the siblings of a failing task, waits for them, and rethrows") {
    counted::reset();
    std::error_code seen;
    CHECK(sync_wait(failing_group(&seen)) == "first failure");
    CHECK(seen == std::errc::operation_canceled);
    CHECK(counted::alive() == 0);
}
