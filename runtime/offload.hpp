// SPDX-License-Identifier: MIT
// offload(fn): run blocking work (name resolution, directory listing, heavy CPU) on a small thread
// pool while the loop keeps turning; the awaiting coroutine resumes on the loop thread.
#pragma once

#include <corio/runtime/detail/offload_pool.hpp>
#include <corio/runtime/io_context.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace corio {

template <class F>
/// The awaiter of offload(): runs `F` on the io_context's offload pool and resumes the awaiting
/// coroutine on the loop thread with its result (or rethrows what it threw). Lives in the awaiting
/// frame; neither copied nor moved.
class [[nodiscard]] offload_op : private detail::offload_job {
public:
    /// What `fn()` returns, and so what the co_await resumes with.
    using value_type = std::invoke_result_t<F&>;

    /// Takes the job; nothing runs until the op is awaited.
    explicit offload_op(F fn) : m_fn(std::move(fn)) {}
    offload_op(const offload_op&) = delete;
    offload_op& operator=(const offload_op&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> waiter) {
        io_context& ctx = io_context::current();
        m_waiter = waiter;
        m_ctx = &ctx;
        m_run = &run;
        detail::offload_pool& pool = ctx.offload_pool();
        ctx.expect_remote();
        pool.submit(this);
    }

    value_type await_resume() {
        if (m_error)
            std::rethrow_exception(m_error);
        if constexpr (!std::is_void_v<value_type>)
            return std::move(*m_value);
    }

private:
    static void run(detail::offload_job* job) noexcept {
        auto* self = static_cast<offload_op*>(job);
        try {
            if constexpr (std::is_void_v<value_type>)
                std::invoke(self->m_fn);
            else
                self->m_value.emplace(std::invoke(self->m_fn));
        } catch (...) {
            self->m_error = std::current_exception();
        }
    }

    struct empty {};
    using storage = std::conditional_t<std::is_void_v<value_type>, empty, std::optional<value_type>>;

    F m_fn;                    // the blocking work
    [[no_unique_address]] storage m_value; // its result, written by the worker
    std::exception_ptr m_error; // what it threw, written by the worker
};

/// Runs `fn()` on the context's offload pool; resumes with its result (or rethrows its exception)
/// on the loop thread. The job cannot be cancelled once started: cancellation of the awaiting
/// task takes effect after it returns.
/// NOTE: pass a named callable, not a capturing lambda written inside the co_await expression
/// (g++ 12 PRs 100611/99576 miscompile such temporaries).
template <class F>
[[nodiscard]] offload_op<std::decay_t<F>> offload(F&& fn) {
    return offload_op<std::decay_t<F>>(std::forward<F>(fn));
}

} // namespace corio
