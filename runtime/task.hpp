// SPDX-License-Identifier: MIT
// task<T>: a lazy coroutine that produces a T (or throws) for the one coroutine that awaits it.
// State that a thread would keep on its stack lives in the task's frame.
#pragma once

#include <corio/runtime/detail/counters.hpp>
#include <corio/runtime/detail/frame_allocator.hpp>
#include <corio/runtime/detail/ready_queue.hpp>
#include <corio/runtime/stop.hpp>

#include <cassert>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace corio {

template <class T = void>
class task;

namespace detail {

struct promise_base;
struct io_op;

/// Cancels the operation a task is suspended on. Registered with the task's stop token when the
/// task starts its first cancellable op and kept until the frame dies: a connection's task pays
/// for the registration once, not on every read and write.
struct op_slot : stop_callback_node {
    std::uintptr_t m_user_data = 0; // the SQE user_data of the op in flight, or 0 between ops
    stop_state* m_state = nullptr;  // where this slot is registered, or null
};

/// Receives a task's completion in place of a continuation: how when_all, when_any, spawn and
/// sync_wait learn that a task they started has finished. Called inside final_suspend, so it
/// may destroy the finished frame.
struct completion_hook {
    void (*m_on_done)(completion_hook*, promise_base&, std::coroutine_handle<>) noexcept = nullptr;
};

/// Where a task is relative to the coroutine that started it.
enum class run_state : unsigned char {
    idle,             // not started, or started by a hook owner
    running_inline,   // its awaiter's await_suspend is still on the stack
    completed_inline, // finished before await_suspend returned: the awaiter does not suspend
    suspended,        // the awaiter suspended; final_suspend transfers to it
};

/// Links a detached task into its task_scope (and schedules its first resumption).
struct scope_entry : ready_node {
    scope_entry* m_prev = nullptr; // neighbours in the scope's list of live tasks
    scope_entry* m_next = nullptr;
};

struct final_awaiter {
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept;
    void await_resume() const noexcept {}
};

struct promise_base {
    promise_base() noexcept { ++t_live_tasks; }
    ~promise_base() {
        if (m_op_slot.m_state)
            m_op_slot.m_state->remove(&m_op_slot);
        --t_live_tasks;
    }
    promise_base(const promise_base&) = delete;
    promise_base& operator=(const promise_base&) = delete;

    static void* operator new(std::size_t bytes) {
        void* frame = frame_allocator::allocate(bytes);
        t_frame_bytes += bytes;
        if (t_frame_bytes > t_frame_bytes_peak)
            t_frame_bytes_peak = t_frame_bytes;
        return frame;
    }
    static void operator delete(void* frame, std::size_t bytes) noexcept {
        t_frame_bytes -= bytes;
        frame_allocator::deallocate(frame, bytes);
    }

    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { m_exception = std::current_exception(); }

    /// The token every operation this task awaits is cancelled through.
    [[nodiscard]] corio::stop_token stop_token() const noexcept { return m_stop; }

    void rethrow_if_exception() const {
        if (m_exception)
            std::rethrow_exception(m_exception);
    }

    std::coroutine_handle<> m_continuation; // the awaiting coroutine (when m_hook is null)
    completion_hook* m_hook = nullptr;      // notified instead of a continuation
    std::exception_ptr m_exception;         // what escaped the body, for the awaiter
    corio::stop_token m_stop;               // inherited from the awaiter or given by the owner
    scope_entry m_scope_entry;              // used only while detached in a task_scope
    op_slot m_op_slot;                      // cancels the op this task waits on
    run_state m_state = run_state::idle;    // see run_state
};

template <class Promise>
std::coroutine_handle<> final_awaiter::await_suspend(std::coroutine_handle<Promise> self) noexcept {
    promise_base& p = self.promise();
    if (p.m_hook) {
        p.m_hook->m_on_done(p.m_hook, p, self); // may destroy the frame: touch nothing after
        return std::noop_coroutine();
    }
    if (p.m_state == run_state::running_inline) {
        // NOTE: symmetric transfer is not a tail call at -O0 or under ASan (g++ 12), so a
        // synchronously completing task hands control back by returning, and its awaiter's
        // bool await_suspend continues without suspending: a loop of a million such awaits
        // keeps a flat stack.
        p.m_state = run_state::completed_inline;
        return std::noop_coroutine();
    }
    return p.m_continuation;
}

template <class T>
struct promise final : promise_base {
    static_assert(!std::is_reference_v<T>, "task<T&> is not supported: return a pointer");

    task<T> get_return_object() noexcept;

    template <class U = T>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        m_value.emplace(std::forward<U>(value));
    }

    T take_result() {
        rethrow_if_exception();
        assert(m_value && "task finished without a value");
        return std::move(*m_value);
    }

    std::optional<T> m_value; // the co_returned value
};

template <>
struct promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void take_result() const { rethrow_if_exception(); }
};

template <class T>
struct task_awaiter {
    std::coroutine_handle<promise<T>> m_child; // the task being awaited

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    /// Starts the child inline; returns false (no suspension) if it finished synchronously.
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
        promise<T>& child = m_child.promise();
        child.m_continuation = parent;
        child.m_stop = stop_token_of(parent);
        child.m_state = run_state::running_inline;
        m_child.resume();
        if (child.m_state == run_state::completed_inline)
            return false;
        child.m_state = run_state::suspended;
        return true;
    }

    T await_resume() { return m_child.promise().take_result(); }
};

} // namespace detail

/// A lazy coroutine: nothing runs until it is awaited (or spawned, or passed to sync_wait).
/// Move-only; awaiting it once consumes it. An exception thrown in the body is rethrown from
/// the co_await. The awaiter's stop token is inherited, so cancelling the awaiter cancels the
/// operation this task is waiting on.
template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::promise<T>;
    /// What the task co_returns.
    using value_type = T;

    task() noexcept = default;
    /// Takes over the frame of `other`, which is left empty (valid() is false).
    task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    /// Destroys the frame this task owns, if any, then takes over the frame of `other`.
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            destroy();
            m_handle = std::exchange(other.m_handle, {});
        }
        return *this;
    }
    ~task() { destroy(); }

    /// False for a default-constructed or moved-from task.
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_handle); }

    /// Starts the task inline and resumes the awaiter when it finishes, with its value (or
    /// rethrowing its exception). On an rvalue only (`co_await std::move(t)` for a named task): a
    /// task is awaited once. Asserts that the task is not empty.
    detail::task_awaiter<T> operator co_await() && noexcept {
        assert(m_handle && "awaiting an empty task");
        return {m_handle};
    }

    /// The coroutine handle, for runtime machinery that drives tasks (when_all, spawn).
    [[nodiscard]] std::coroutine_handle<promise_type> handle() const noexcept { return m_handle; }

    /// Gives up ownership of the frame (the caller destroys it).
    [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
        return std::exchange(m_handle, {});
    }

private:
    friend promise_type;
    explicit task(std::coroutine_handle<promise_type> handle) noexcept : m_handle(handle) {}

    void destroy() noexcept {
        if (m_handle)
            m_handle.destroy();
    }

    std::coroutine_handle<promise_type> m_handle; // owned frame, or null
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}

/// What co_await on an `Awaitable` (an op, not a task) produces.
template <class Awaitable>
using await_result_t = decltype(std::declval<Awaitable&>().await_resume());

template <class T>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<task<T>> = true;
} // namespace detail

/// Wraps an op (any awaitable that is not a task, e.g. `stream.send_all(data)`) in a task, for
/// the combinators that take tasks (when_all, when_any, timeout, spawn). The op is moved into the
/// task's frame before it starts; its buffers must outlive the task.
template <class Awaitable>
    requires(!detail::is_task_v<Awaitable>)
[[nodiscard]] task<detail::await_result_t<Awaitable>> as_task(Awaitable op) {
    co_return co_await op;
}

} // namespace corio
