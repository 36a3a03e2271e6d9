// SPDX-License-Identifier: MIT
// sync_wait: the bridge from ordinary code (main, tests) into the loop.
#pragma once

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/task.hpp>

#include <coroutine>
#include <utility>

namespace corio {

/// Runs `ctx` until `t` finishes and returns its value (or rethrows its exception). Tasks
/// spawned meanwhile keep their state and go on at the next run. stop() does not end a
/// sync_wait: the task's frame may hold buffers the kernel is still using. Throws
/// std::logic_error when `t` waits on something nothing can deliver (a deadlock).
template <class T>
T sync_wait(io_context& ctx, task<T> t) {
    struct done_hook : detail::completion_hook {
        bool done = false; // the task reached final_suspend
    } hook;
    hook.m_on_done = [](detail::completion_hook* h, detail::promise_base&,
                        std::coroutine_handle<>) noexcept { static_cast<done_hook*>(h)->done = true; };
    auto& promise = t.handle().promise();
    promise.m_hook = &hook;
    promise.m_stop = ctx.root_token();
    promise.m_scope_entry.m_waiter = t.handle();
    ctx.post(&promise.m_scope_entry);
    ctx.run_until(hook.done);
    return promise.take_result();
}

/// Runs `t` on a fresh io_context with default options (see sync_wait(io_context&, task<T>)).
template <class T>
T sync_wait(task<T> t) {
    io_context ctx;
    return sync_wait(ctx, std::move(t));
}

} // namespace corio
