// SPDX-License-Identifier: MIT
// event: a manual-reset event. Coroutines wait until some code sets it; setting it releases every
// waiter at once and lets later waits through until it is reset.
#pragma once

#include <corio/runtime/detail/wait_list.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/stop.hpp>

#include <coroutine>

namespace corio {

/// A manual-reset event for coroutines on one loop. Not thread-safe (nothing in corio is shared
/// between loops). Must outlive every wait on it.
class event {
public:
    class wait_op;

    /// An event that starts set (`true`) or not set.
    explicit event(bool initially_set = false) noexcept : m_set(initially_set) {}
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    /// Sets the event and ends every current wait with success. The waiters resume on the next
    /// loop turn, oldest first (never inline). Idempotent.
    void set() noexcept {
        m_set = true;
        m_waiters.wake_all();
    }

    /// Clears the event: waits that begin from now on block until the next set().
    void reset() noexcept { m_set = false; }

    /// True between set() and reset().
    [[nodiscard]] bool is_set() const noexcept { return m_set; }

    /// Awaits the event: success at once when it is set, otherwise when set() is next called.
    /// errc::operation_canceled when the awaiting task is cancelled while waiting, or was already
    /// cancelled when the wait began (even if the event is set: a cancelled loop cannot spin).
    [[nodiscard]] inline wait_op wait() noexcept;

private:
    detail::wait_list m_waiters; // coroutines blocked in wait(), oldest first
    bool m_set = false;          // the state
};

/// The awaiter of event::wait(). Lives in the awaiting frame; neither copied nor moved.
class [[nodiscard]] event::wait_op : private detail::wait_node {
public:
    /// Made by event::wait(); `ev` must outlive it.
    explicit wait_op(event& ev) noexcept : m_event(&ev) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
        stop_token token = detail::stop_token_of(waiter);
        if (is_cancelled(token)) {
            set_status(std::errc::operation_canceled);
            return false;
        }
        if (m_event->m_set)
            return false;
        enqueue(m_event->m_waiters, waiter, token);
        return true;
    }

    result<void> await_resume() const noexcept { return status_result(); }

private:
    event* m_event; // the event waited on
};

inline event::wait_op event::wait() noexcept {
    return wait_op(*this);
}

} // namespace corio
