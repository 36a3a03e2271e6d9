// SPDX-License-Identifier: MIT
// Helpers for the sync primitive tests: a loop-turn yield, a move-only counted value, and a bare
// coroutine whose frame a test can destroy while it waits (what io_context teardown does).
#pragma once

#include <corio/runtime/result.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/uring_op.hpp>

#include <coroutine>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

namespace corio::test {

/// Yields through the ring: everything posted before it resumes first.
inline task<void> yield() {
    result<void> r = co_await nop();
    r.value();
}

/// A move-only value that counts how many objects of its type are alive.
class move_only {
public:
    static inline int alive = 0; // constructed and not yet destroyed (moved-from included)

    explicit move_only(int value) noexcept : m_value(value) { ++alive; }
    move_only(move_only&& other) noexcept : m_value(std::exchange(other.m_value, -1)) { ++alive; }
    move_only& operator=(move_only&& other) noexcept {
        m_value = std::exchange(other.m_value, -1);
        return *this;
    }
    move_only(const move_only&) = delete;
    move_only& operator=(const move_only&) = delete;
    ~move_only() { --alive; }

    [[nodiscard]] int value() const noexcept { return m_value; }

private:
    int m_value; // the payload; -1 once moved from
};

/// A bare coroutine: starts when start() is called, keeps its frame after finishing, and is
/// destroyed by whoever holds it. Its promise exposes the stop token of a test-owned stop_source,
/// so both the wait-list link and the stop-callback link of an awaiter are exercised when it is
/// destroyed.
struct probe {
    struct promise_type {
        corio::stop_token m_stop; // what awaiters see as this coroutine's token

        probe get_return_object() noexcept {
            return probe{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); }
        [[nodiscard]] corio::stop_token stop_token() const noexcept { return m_stop; }
    };

    explicit probe(std::coroutine_handle<promise_type> h) noexcept : handle(h) {}
    probe(probe&& other) noexcept : handle(std::exchange(other.handle, {})) {}
    probe& operator=(probe&&) = delete;
    /// Runs the body, with `token` as the coroutine's stop token, until its first suspension.
    void start(stop_token token) {
        handle.promise().m_stop = token;
        handle.resume();
    }

    [[nodiscard]] bool done() const noexcept { return handle.done(); }

    ~probe() {
        if (handle)
            handle.destroy();
    }

    std::coroutine_handle<promise_type> handle; // the frame, owned
};

/// A wait's outcome as a log word: "ok", "canceled", or the error's message.
inline std::string outcome(const result<void>& r) {
    if (r)
        return "ok";
    if (r == std::errc::operation_canceled)
        return "canceled";
    return r.error().message();
}

} // namespace corio::test
