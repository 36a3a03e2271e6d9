// SPDX-License-Identifier: MIT
// The README's code sample, verbatim from the first #include line on (scripts/test.sh compares
// the two); built against the installed corio, so the sample shown always compiles and runs.
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

// A coroutine reads like blocking code; its state lives in its frame while it waits.
corio::task<int> slow_answer() {
    corio::result<void> slept = co_await corio::sleep_for(10ms); // a timer in the loop
    slept.value(); // errors are values; value() throws std::system_error on one
    co_return 42;
}

corio::task<int> run() {
    // Two tasks at once on the one loop thread: about 10 ms in total, not 20.
    auto [a, b] = co_await corio::when_all(slow_answer(), slow_answer());
    // A deadline for any task: on expiry it is cancelled, waited for, and errc::timed_out returned.
    corio::result<int> c = co_await corio::timeout(slow_answer(), 1s);
    co_return a + b + c.value();
}

int main() {
    std::printf("%d\n", corio::sync_wait(run())); // prints 126
}
