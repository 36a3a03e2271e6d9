// SPDX-License-Identifier: MIT
// Tutorial step 1 (docs/tutorial.md): a first task. A coroutine that waits on a timer, another
// that awaits it, and sync_wait, the bridge from main() into the loop.
// Try: build/debug/examples/tutorial/step1_first_task
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

using namespace std::chrono_literals;

// A task is a coroutine: `co_await` suspends it here and gives the thread back to the loop,
// which resumes it when the timer's completion arrives.
corio::task<int> slow_answer() {
    corio::result<void> slept = co_await corio::sleep_for(100ms);
    slept.value(); // errors are values; value() throws std::system_error if there is one
    co_return 42;
}

// `who` is taken by value: the frame keeps its own copy across every suspension.
corio::task<void> greet(std::string who) {
    std::printf("hello, %s: thinking...\n", who.c_str());
    int answer = co_await slow_answer(); // runs slow_answer to its end, then goes on
    std::printf("the answer is %d\n", answer);
}

int main() {
    corio::task<void> t = greet("tutorial"); // lazy: nothing has run yet
    std::printf("task created\n");
    corio::sync_wait(std::move(t)); // a loop on this thread runs it to completion
    std::printf("done\n");
}
