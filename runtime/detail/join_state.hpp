// SPDX-License-Identifier: MIT
// What when_all and when_any share: start children inline with a stop token of their own, count
// them down through completion hooks, and resume the awaiter once every child has finished.
#pragma once

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/task.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <variant>

namespace corio::detail {

template <class T>
using non_void_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// A task's result as a value (std::monostate for task<void>); rethrows its exception.
template <class T>
non_void_t<T> take_non_void(promise<T>& p) {
    if constexpr (std::is_void_v<T>) {
        p.take_result();
        return {};
    } else {
        return p.take_result();
    }
}

class join_state : protected completion_hook {
public:
    join_state() noexcept { m_on_done = &on_child_done; }
    join_state(const join_state&) = delete;
    join_state& operator=(const join_state&) = delete;
    ~join_state() { unlink_parent(); }

protected:
    /// Called for every finished child (success or exception), before the count drops.
    virtual void child_done(promise_base& child) noexcept = 0;

    /// Links the parent's cancellation to the children's, sets the count, starts each child with
    /// `start(promise, frame)`; returns false when all of them finished inline.
    template <class Promise, class ForEachChild>
    bool start_all(std::coroutine_handle<Promise> parent, std::size_t count,
                   ForEachChild for_each_child) noexcept {
        m_parent_state = stop_access::state(stop_token_of(parent));
        if (m_parent_state) {
            m_parent_link.m_owner = this;
            m_parent_link.m_invoke = [](stop_callback_node* node) noexcept {
                static_cast<parent_link*>(node)->m_owner->m_stop.request_stop();
            };
            m_parent_state->add(&m_parent_link);
        }
        m_pending = count + 1; // +1 while starting: no child can complete the join early
        m_node.m_waiter = parent;
        promise_base* awaiter = task_promise_of(parent);
        for_each_child([this, awaiter](promise_base& p, std::coroutine_handle<> frame) {
            p.m_hook = this;
            p.m_stop = m_stop.token();
            p.m_parent = awaiter;
            frame.resume();
            t_running = awaiter;
        });
        return --m_pending != 0;
    }

    void unlink_parent() noexcept {
        if (m_parent_state)
            m_parent_state->remove(&m_parent_link);
        m_parent_state = nullptr;
    }

    stop_source m_stop;             // cancels the children (when_any: the losers)
    std::exception_ptr m_error;     // first exception a child threw

private:
    static void on_child_done(completion_hook* hook, promise_base& child,
                              std::coroutine_handle<>) noexcept {
        auto* self = static_cast<join_state*>(hook);
        self->child_done(child);
        if (--self->m_pending == 0)
            io_context::current().post(&self->m_node);
    }

    struct parent_link : stop_callback_node {
        join_state* m_owner = nullptr;
    };
    parent_link m_parent_link;             // parent's stop → m_stop
    stop_state* m_parent_state = nullptr;  // where m_parent_link is registered
    std::size_t m_pending = 0;             // children still running (+1 while starting)
    ready_node m_node;                     // the awaiter, queued when the last child is done
};

} // namespace corio::detail
