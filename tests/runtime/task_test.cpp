// SPDX-License-Identifier: MIT
#include "runtime/task.hpp"

#include "runtime/sync_wait.hpp"
#include "runtime/uring_op.hpp"

#include <doctest/doctest.h>

using namespace corio;

namespace {
task<int> answer() { co_return 42; }
task<int> add_one() {
    int v = co_await answer();
    co_return v + 1;
}
task<int> after_nop() {
    result<void> r = co_await nop();
    r.value();
    co_return 7;
}
} // namespace

TEST_CASE("a task returns its value to sync_wait") { CHECK(sync_wait(add_one()) == 43); }

TEST_CASE("a task awaiting a nop resumes with its value") { CHECK(sync_wait(after_nop()) == 7); }
