// SPDX-License-Identifier: MIT
// semaphore: a counting semaphore for coroutines, fair by construction: a released unit goes to
// the oldest waiter directly, so a coroutine arriving later cannot take it first.
#pragma once

#include <corio/runtime/detail/wait_list.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/stop.hpp>

#include <coroutine>
#include <cstddef>

namespace corio {

/// A counting semaphore for coroutines on one loop (bounding concurrency: "at most N uploads at
/// a time"). Waiters are served in FIFO order. Must outlive every wait on it.
class semaphore {
public:
    class acquire_op;

    /// A semaphore holding `initial` units.
    explicit semaphore(std::size_t initial) noexcept : m_available(initial) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    /// Awaits one unit: success at once when one is available, otherwise when a release() hands
    /// one over. errc::operation_canceled (and no unit taken) when the awaiting task is cancelled
    /// while waiting, or was already cancelled when the wait began.
    [[nodiscard]] inline acquire_op acquire() noexcept;

    /// Takes a unit if one is available now. Never succeeds while coroutines wait.
    [[nodiscard]] bool try_acquire() noexcept {
        if (m_available == 0)
            return false;
        --m_available;
        return true;
    }

    /// Returns `n` units: each goes to the oldest waiter (which resumes on the next loop turn);
    /// what no waiter takes becomes available.
    void release(std::size_t n = 1) noexcept {
        for (; n > 0 && !m_waiters.empty(); --n)
            m_waiters.front()->wake();
        m_available += n;
    }

    /// Units that can be taken now (0 whenever coroutines wait).
    [[nodiscard]] std::size_t available() const noexcept { return m_available; }

private:
    detail::wait_list m_waiters; // coroutines blocked in acquire(), oldest first
    std::size_t m_available;     // units not held by anyone (0 while m_waiters is not empty)
};

/// The awaiter of semaphore::acquire(). Lives in the awaiting frame; neither copied nor moved.
class [[nodiscard]] semaphore::acquire_op : private detail::wait_node {
public:
    /// Made by semaphore::acquire(); `sem` must outlive it.
    explicit acquire_op(semaphore& sem) noexcept : m_sem(&sem) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
        stop_token token = detail::stop_token_of(waiter);
        if (is_cancelled(token)) {
            set_status(std::errc::operation_canceled);
            return false;
        }
        if (m_sem->try_acquire())
            return false;
        enqueue(m_sem->m_waiters, waiter, token);
        return true;
    }

    /// Success means the caller holds one unit and owes a release().
    result<void> await_resume() const noexcept { return status_result(); }

private:
    semaphore* m_sem; // the semaphore acquired from
};

inline semaphore::acquire_op semaphore::acquire() noexcept {
    return acquire_op(*this);
}

} // namespace corio
