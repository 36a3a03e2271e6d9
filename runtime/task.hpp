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
#if __has_include(<source_location>)
#include <source_location>
#endif
#include <utility>

namespace corio {

template <class T = void>
class task;

namespace detail {

struct promise_base;
struct io_op;
template <class T>
struct task_awaiter;

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

/// Where a co_await is written: file, line and enclosing function, captured for free by a
/// defaulted argument of the promise's await_transform (g++ 12 and clang 14 both record the
/// co_await line). On g++ it is std::source_location (one pointer); clang 14 has no
/// std::source_location, so the three values are kept as they are.
struct await_site {
#if defined(__cpp_lib_source_location)
    std::source_location m_location; // the co_await expression (empty: none recorded yet)

    static constexpr await_site
    current(std::source_location location = std::source_location::current()) noexcept {
        return {location};
    }
    [[nodiscard]] const char* file() const noexcept { return m_location.file_name(); }
    [[nodiscard]] const char* function() const noexcept { return m_location.function_name(); }
    [[nodiscard]] unsigned line() const noexcept { return m_location.line(); }
#else
    const char* m_file = "";     // the co_await expression's file ("" when none recorded yet)
    const char* m_function = ""; // its enclosing function
    unsigned m_line = 0;         // its line

    static constexpr await_site current(const char* file = __builtin_FILE(),
                                        const char* function = __builtin_FUNCTION(),
                                        unsigned line = __builtin_LINE()) noexcept {
        return {file, function, line};
    }
    [[nodiscard]] const char* file() const noexcept { return m_file; }
    [[nodiscard]] const char* function() const noexcept { return m_function; }
    [[nodiscard]] unsigned line() const noexcept { return m_line; }
#endif
};

/// The name of an awaitable type, for the task dump ("what does this task wait on").
template <class Awaitable>
const char* awaitable_name() noexcept {
    return __PRETTY_FUNCTION__; // parsed when printed: never on the hot path
}

/// Links a detached task into its task_scope (and schedules its first resumption).
struct scope_entry : ready_node {
    scope_entry* m_prev = nullptr; // neighbours in the scope's list of live tasks
    scope_entry* m_next = nullptr;
};

/// CORIO_AWAIT_SITES: whether tasks record the file:line of each co_await (the await chain of
/// the stall report and of dump_tasks). It routes every co_await in a task through the promise's
/// await_transform, which costs about 8 instructions per awaited op on g++ 12 (callgrind, NOP
/// benchmark: 127 against 119; docs/blocking.md): on by default except under NDEBUG (release
/// builds), where the chain names the tasks without their lines. Define it to 0 or 1 for the
/// whole program (the library included) to choose.
#ifndef CORIO_AWAIT_SITES
#ifdef NDEBUG
#define CORIO_AWAIT_SITES 0
#else
#define CORIO_AWAIT_SITES 1
#endif
#endif

/// What a task's await_transform hands the compiler for an awaitable that is not a task: a
/// reference to it. NOTE: g++ 12 copies the awaiter when await_transform returns a reference
/// (offload_op, which cannot be copied, stops compiling), so a small wrapper goes by value; the
/// awaitable itself stays where it is (a temporary of the co_await lives until it returns).
template <class Awaitable>
struct forward_awaiter {
    Awaitable& m_awaitable; // the operand of the co_await
    promise_base* m_task;   // the awaiting task: marked running again when it resumes

    [[nodiscard]] bool await_ready() { return m_awaitable.await_ready(); }
    template <class Promise>
    auto await_suspend(std::coroutine_handle<Promise> waiter) {
        return m_awaitable.await_suspend(waiter);
    }
    decltype(auto) await_resume() {
        t_running = m_task;
        return m_awaitable.await_resume();
    }
};

/// A task's first resumption marks it as the one running (the stall report's innermost task).
struct initial_awaiter {
    promise_base* m_self; // the task being started
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    inline void await_resume() const noexcept;
};

struct final_awaiter {
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept;
    void await_resume() const noexcept {}
};

struct promise_base {
    promise_base() noexcept {
        ++t_live_tasks;
        // The registry of live tasks (dump_tasks, the stall report): newest first.
        m_live_next = t_tasks;
        if (t_tasks)
            t_tasks->m_live_prev = this;
        t_tasks = this;
    }
    ~promise_base() {
        if (m_op_slot.m_state)
            m_op_slot.m_state->remove(&m_op_slot);
        --t_live_tasks;
        (m_live_prev ? m_live_prev->m_live_next : t_tasks) = m_live_next;
        if (m_live_next)
            m_live_next->m_live_prev = m_live_prev;
        if (t_running == this)
            t_running = nullptr;
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

    initial_awaiter initial_suspend() noexcept { return {this}; }
    final_awaiter final_suspend() const noexcept { return {}; }

#if CORIO_AWAIT_SITES
    /// Awaiting a task: remembers where (the await chain of the stall report and the dump).
    template <class T>
    task_awaiter<T> await_transform(task<T>&& child,
                                    await_site site = await_site::current()) noexcept {
        m_site = site;
        m_waits_on = nullptr;
        return std::move(child).operator co_await();
    }

    /// Any other awaitable is awaited as it is (through a reference); the site and the kind of
    /// what is awaited are kept for the task dump (two stores of constants).
    template <class Awaitable>
    forward_awaiter<std::remove_reference_t<Awaitable>>
    await_transform(Awaitable&& awaitable, await_site site = await_site::current()) noexcept {
        m_site = site;
        m_waits_on = &awaitable_name<std::remove_cvref_t<Awaitable>>;
        return {awaitable, this};
    }
#endif
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
    promise_base* m_parent = nullptr;       // the task awaiting this one (null: a root, or
                                            // awaited by a coroutine that is not a task)
    await_site m_site;                      // its latest co_await: where it waits, or where it
                                            // last resumed from while it runs
    const char* (*m_waits_on)() noexcept = nullptr; // the awaitable type there (null: a task)
    void* m_frame = nullptr;                // its coroutine frame (the stall report's lookup)
    promise_base* m_live_prev = nullptr;    // neighbours in this thread's list of live tasks
    promise_base* m_live_next = nullptr;
};

inline void initial_awaiter::await_resume() const noexcept { t_running = m_self; }

/// The corio task whose code a coroutine handle runs, or null for any other coroutine.
template <class Promise>
[[nodiscard]] promise_base* task_promise_of(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (std::is_base_of_v<promise_base, Promise>)
        return &h.promise();
    else
        return nullptr;
}

template <class Promise>
std::coroutine_handle<> final_awaiter::await_suspend(std::coroutine_handle<Promise> self) noexcept {
    promise_base& p = self.promise();
    if (p.m_hook) {
        t_running = nullptr;
        p.m_hook->m_on_done(p.m_hook, p, self); // may destroy the frame: touch nothing after
        return std::noop_coroutine();
    }
    t_running = p.m_parent; // the awaiter runs next (or, past a hook, the loop)
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
        child.m_parent = task_promise_of(parent);
        child.m_state = run_state::running_inline;
        m_child.resume();
        t_running = child.m_parent;
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
    auto handle = std::coroutine_handle<promise<T>>::from_promise(*this);
    m_frame = handle.address();
    return task<T>(handle);
}
inline task<void> promise<void>::get_return_object() noexcept {
    auto handle = std::coroutine_handle<promise<void>>::from_promise(*this);
    m_frame = handle.address();
    return task<void>(handle);
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
