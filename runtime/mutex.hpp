// SPDX-License-Identifier: MIT
// mutex: mutual exclusion across suspension points. On one loop nothing runs in parallel, but a
// coroutine that awaits I/O in the middle of an update lets others in; this keeps them out.
#pragma once

#include <corio/runtime/detail/wait_list.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/stop.hpp>

#include <cassert>
#include <coroutine>
#include <optional>
#include <utility>

namespace corio {

/// An asynchronous mutex for coroutines on one loop. Ownership is a move-only `mutex::guard`
/// that unlocks when destroyed. Unlocking hands the mutex straight to the oldest waiter (FIFO),
/// so a coroutine arriving later cannot barge in. Not recursive. Must outlive every guard and
/// every wait on it.
class mutex {
public:
    class guard;
    class lock_op;

    /// An unlocked mutex.
    mutex() noexcept = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;
    ~mutex() { assert(!m_locked && "a corio::mutex was destroyed while locked"); }

    /// Awaits ownership: a guard at once when the mutex is free, otherwise when the holders
    /// before this one have unlocked. errc::operation_canceled (and no ownership) when the
    /// awaiting task is cancelled while waiting, or was already cancelled when the wait began.
    [[nodiscard]] inline lock_op lock() noexcept;

    /// A guard when the mutex is free now, otherwise nothing (never while coroutines wait).
    [[nodiscard]] inline std::optional<guard> try_lock() noexcept;

    /// True while a guard owns the mutex, or a woken waiter is about to.
    [[nodiscard]] bool is_locked() const noexcept { return m_locked; }

private:
    /// Passes ownership to the oldest waiter, or frees the mutex when nobody waits.
    void unlock() noexcept {
        assert(m_locked);
        if (detail::wait_node* next = m_waiters.front()) {
            next->wake(); // stays locked: the waiter owns it now
            return;
        }
        m_locked = false;
    }

    detail::wait_list m_waiters; // coroutines blocked in lock(), oldest first
    bool m_locked = false;       // some guard owns the mutex (or a woken waiter is about to)
};

/// Ownership of a locked mutex. Move-only; unlocks on destruction or unlock().
class [[nodiscard]] mutex::guard {
public:
    /// Takes over ownership from `other`, which then owns nothing.
    guard(guard&& other) noexcept : m_mutex(std::exchange(other.m_mutex, nullptr)) {}
    /// Unlocks what this guard owns, then takes over ownership from `other`.
    guard& operator=(guard&& other) noexcept {
        if (this != &other) {
            unlock();
            m_mutex = std::exchange(other.m_mutex, nullptr);
        }
        return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { unlock(); }

    /// Gives ownership up early (the next waiter, if any, gets it). Idempotent.
    void unlock() noexcept {
        if (m_mutex)
            std::exchange(m_mutex, nullptr)->unlock();
    }

    /// False once unlocked or moved from.
    [[nodiscard]] bool owns_lock() const noexcept { return m_mutex != nullptr; }

private:
    friend class mutex;
    friend class mutex::lock_op;
    explicit guard(mutex& m) noexcept : m_mutex(&m) {}

    mutex* m_mutex; // the mutex owned, or null
};

/// The awaiter of mutex::lock(). Lives in the awaiting frame; neither copied nor moved.
class [[nodiscard]] mutex::lock_op : private detail::wait_node {
public:
    /// Made by mutex::lock(); `m` must outlive it.
    explicit lock_op(mutex& m) noexcept : m_mutex(&m) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
        stop_token token = detail::stop_token_of(waiter);
        if (is_cancelled(token)) {
            set_status(std::errc::operation_canceled);
            return false;
        }
        if (!m_mutex->m_locked) {
            m_mutex->m_locked = true;
            return false;
        }
        enqueue(m_mutex->m_waiters, waiter, token);
        return true;
    }

    result<guard> await_resume() const noexcept {
        if (status() != std::errc{})
            return status();
        return guard(*m_mutex);
    }

private:
    mutex* m_mutex; // the mutex locked
};

inline mutex::lock_op mutex::lock() noexcept {
    return lock_op(*this);
}

inline std::optional<mutex::guard> mutex::try_lock() noexcept {
    if (m_locked)
        return std::nullopt;
    m_locked = true;
    return guard(*this);
}

} // namespace corio
