// SPDX-License-Identifier: MIT
// Tutorial step 2 (docs/tutorial.md): several tasks at once on one thread. when_all waits for
// all of them, when_any for the first (and cancels the rest), timeout() puts a deadline on any.
// Try: build/debug/examples/tutorial/step2_concurrency
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using std::chrono::milliseconds;

const auto t0 = std::chrono::steady_clock::now();

long ms_since_start() {
    auto d = std::chrono::steady_clock::now() - t0;
    return static_cast<long>(std::chrono::duration_cast<milliseconds>(d).count());
}

// Stands in for any slow I/O (a query, a download): it waits `delay`, then answers.
corio::task<std::string> fetch(std::string what, milliseconds delay) {
    corio::result<void> slept = co_await corio::sleep_for(delay);
    if (!slept) { // cancelled: the timer ended early with errc::operation_canceled
        std::printf("%5ld ms  %s: cancelled (%s)\n", ms_since_start(), what.c_str(),
                    slept.error().message().c_str());
        co_return "";
    }
    std::printf("%5ld ms  %s: done\n", ms_since_start(), what.c_str());
    co_return what + " page";
}

corio::task<int> demo() {
    // All at once: 200 ms in total, not 300. Values come back in argument order.
    auto both = corio::when_all(fetch("users", 200ms), fetch("orders", 100ms));
    auto [users, orders] = co_await both;
    std::printf("%5ld ms  when_all: %s, %s\n", ms_since_start(), users.c_str(), orders.c_str());

    // The first to finish wins; the other one is cancelled, and waited for, before we go on.
    std::vector<corio::task<std::string>> mirrors;
    mirrors.push_back(fetch("mirror A", 300ms));
    mirrors.push_back(fetch("mirror B", 50ms));
    auto race = corio::when_any(std::move(mirrors));
    auto [index, page] = co_await race;
    std::printf("%5ld ms  when_any: #%zu won with %s\n", ms_since_start(), index, page.c_str());

    // A deadline for any task: on expiry the task is cancelled, and errc::timed_out returned.
    auto limited = corio::timeout(fetch("slow report", 10s), 100ms);
    corio::result<std::string> report = co_await std::move(limited);
    std::printf("%5ld ms  timeout: %s\n", ms_since_start(),
                report ? report->c_str() : report.error().message().c_str());
    co_return report == std::errc::timed_out ? 0 : 1;
}

int main() {
    return corio::sync_wait(demo());
}
