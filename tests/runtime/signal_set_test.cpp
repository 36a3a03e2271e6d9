// SPDX-License-Identifier: MIT
#include <corio/runtime/signal_set.hpp>

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_all.hpp>

#include <doctest/doctest.h>
#include <pthread.h>

#include <csignal>

using namespace corio;

namespace {

bool is_blocked(int signo) {
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, nullptr, &now);
    return sigismember(&now, signo) == 1;
}

task<result<int>> next_signal(signal_set* signals) {
    result<int> signo = co_await signals->wait();
    co_return signo;
}

/// Raises `signo` in this thread after one trip through the ring, so the waiter is already
/// suspended on its signalfd read when the signal arrives.
task<void> raise_later(int signo) {
    auto yielded = co_await nop();
    (void)yielded;
    REQUIRE(pthread_kill(pthread_self(), signo) == 0);
}

task<result<int>> wait_while_raised(signal_set* signals, int signo) {
    auto both = when_all(next_signal(signals), raise_later(signo));
    auto [got, raised] = co_await both;
    (void)raised;
    co_return got;
}

task<void> record_wait(signal_set* signals, result<int>* out) {
    *out = co_await signals->wait();
}

task<void> cancel_a_wait(signal_set* signals, result<int>* out) {
    task_scope scope;
    scope.spawn(record_wait(signals, out));
    auto yielded = co_await nop(); // the waiter's read is in flight now
    (void)yielded;
    scope.request_stop();
    co_await scope.join();
}

} // namespace

TEST_CASE("a signal already pending is returned by the first wait") {
    REQUIRE_FALSE(is_blocked(SIGUSR1));
    signal_set signals{SIGUSR1, SIGUSR2};
    CHECK(is_blocked(SIGUSR1));
    CHECK(is_blocked(SIGUSR2));
    REQUIRE(pthread_kill(pthread_self(), SIGUSR2) == 0); // blocked: stays pending
    io_context ctx;
    CHECK(sync_wait(ctx, next_signal(&signals)).value() == SIGUSR2);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("a signal that arrives while a task waits resumes it with the signal number") {
    signal_set signals{SIGUSR1};
    io_context ctx;
    CHECK(sync_wait(ctx, wait_while_raised(&signals, SIGUSR1)).value() == SIGUSR1);
    // Each signal is delivered once: a second one is a second wait.
    CHECK(sync_wait(ctx, wait_while_raised(&signals, SIGUSR1)).value() == SIGUSR1);
}

TEST_CASE("stopping a task that waits for a signal resumes it with operation_canceled") {
    signal_set signals{SIGUSR1};
    io_context ctx;
    result<int> got = 0;
    sync_wait(ctx, cancel_a_wait(&signals, &got));
    CHECK(got == std::errc::operation_canceled);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("destroying a signal_set restores the signal mask it found") {
    sigset_t block_usr2;
    sigemptyset(&block_usr2);
    sigaddset(&block_usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block_usr2, nullptr); // blocked before: must stay blocked
    {
        signal_set signals{SIGUSR1, SIGUSR2};
        CHECK(is_blocked(SIGUSR1));
    }
    CHECK_FALSE(is_blocked(SIGUSR1));
    CHECK(is_blocked(SIGUSR2));
    pthread_sigmask(SIG_UNBLOCK, &block_usr2, nullptr);
}

TEST_CASE("a signal_set refuses a signal number that does not exist") {
    CHECK_THROWS_AS(signal_set({SIGUSR1, 4096}), std::system_error);
    CHECK_FALSE(is_blocked(SIGUSR1));
}
