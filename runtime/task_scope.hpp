// SPDX-License-Identifier: MIT
// task_scope (a nursery) and spawn: detached tasks that are still owned, joined and cancelled.
#pragma once

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/task.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <utility>

namespace corio {

/// Owns tasks that run concurrently with the code that spawned them. `join()` waits for all of
/// them. The first exception a child throws cancels its siblings and is rethrown by `join()`
/// (or, in handler mode, is given to the handler). Destroying a scope with live children is a
/// programmer error: it reports and terminates. A scope is tied to the io_context current when
/// it spawns.
class task_scope : private detail::completion_hook {
public:
    /// A scope cancelled only by request_stop() or by the stop token of whoever awaits join().
    task_scope() noexcept;
    /// A scope whose children are also cancelled when `parent` is.
    explicit task_scope(stop_token parent) noexcept;
    /// A scope that hands every escaping exception to `handler` instead of cancelling siblings
    /// (what io_context uses for spawn()).
    task_scope(stop_token parent, std::function<void(std::exception_ptr)> handler) noexcept;
    ~task_scope();
    task_scope(const task_scope&) = delete;
    task_scope& operator=(const task_scope&) = delete;

    /// Takes ownership of `t` and schedules it on the current io_context: it starts on the next
    /// loop turn, with this scope's stop token.
    void spawn(task<void> t) { spawn(io_context::current(), std::move(t)); }

    /// Same, on `ctx` (which need not be the current context yet).
    void spawn(io_context& ctx, task<void> t);

    class join_awaitable;
    /// Waits until every child has finished; rethrows the first exception one of them threw.
    /// Cancelling the awaiter cancels the children (and still waits for them).
    [[nodiscard]] join_awaitable join() noexcept;

    /// Cancels every child: their operations in flight are cancelled, and operations they start
    /// from now on complete at once with ECANCELED.
    void request_stop() noexcept { m_stop.request_stop(); }
    /// The token the children are cancelled through (request_stop() triggers it).
    [[nodiscard]] stop_token token() noexcept { return m_stop.token(); }

    /// Children not finished yet.
    [[nodiscard]] std::size_t size() const noexcept { return m_live; }

    /// Destroys every remaining child frame. Only for io_context teardown, once no operation is
    /// in flight: the frames are suspended on something that can no longer happen.
    void destroy_remaining() noexcept;

private:
    static void on_child_done(detail::completion_hook* hook, detail::promise_base& child,
                              std::coroutine_handle<> frame) noexcept;
    void link(detail::scope_entry* entry) noexcept;
    void unlink(detail::scope_entry* entry) noexcept;

    stop_source m_stop;                              // cancels the children
    struct parent_link : detail::stop_callback_node {
        task_scope* m_scope = nullptr;
    };
    parent_link m_parent_link;                       // parent's stop → m_stop (when given)
    detail::stop_state* m_parent_state = nullptr;    // where m_parent_link is registered
    detail::scope_entry* m_head = nullptr;           // live children
    std::size_t m_live = 0;                          // number of live children
    std::exception_ptr m_first_error;                // first escaping exception (collect mode)
    std::function<void(std::exception_ptr)> m_handler; // handler mode when set
    detail::ready_node* m_joiner = nullptr;          // the join() awaiter waiting, if any
};

/// The awaiter of task_scope::join(). Resumes when the scope has no live child, rethrowing the
/// first exception a child threw (collect mode). Lives in the awaiting frame; neither copied nor
/// moved.
class task_scope::join_awaitable : private detail::stop_callback_node {
public:
    /// Made by join(); waits on `scope`, which must outlive it.
    explicit join_awaitable(task_scope& scope) noexcept : m_scope(&scope) {}
    join_awaitable(const join_awaitable&) = delete;
    join_awaitable& operator=(const join_awaitable&) = delete;
    ~join_awaitable() { unregister(); }

    [[nodiscard]] bool await_ready() const noexcept { return m_scope->m_live == 0; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
        m_node.m_waiter = waiter;
        m_scope->m_joiner = &m_node;
        m_state = detail::stop_access::state(detail::stop_token_of(waiter));
        if (m_state) {
            m_invoke = [](detail::stop_callback_node* node) noexcept {
                static_cast<join_awaitable*>(node)->m_scope->request_stop();
            };
            m_state->add(this);
        }
    }

    void await_resume() {
        unregister();
        if (std::exception_ptr error = std::exchange(m_scope->m_first_error, nullptr))
            std::rethrow_exception(error);
    }

private:
    void unregister() noexcept {
        if (m_state)
            m_state->remove(this);
        m_state = nullptr;
    }

    task_scope* m_scope;                       // the scope being joined
    detail::ready_node m_node;                 // queued when the last child finishes
    detail::stop_state* m_state = nullptr;     // the joiner's stop state, while registered
};

inline task_scope::join_awaitable task_scope::join() noexcept { return join_awaitable(*this); }

/// Starts `t` detached on the current io_context: owned by the context, cancelled when it is
/// destroyed. An exception escaping `t` goes to the context's unhandled-exception handler.
void spawn(task<void> t);

/// Starts `t` detached on `ctx` (see spawn(task<void>)).
void spawn(io_context& ctx, task<void> t);

} // namespace corio
