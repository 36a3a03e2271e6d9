// SPDX-License-Identifier: MIT
// task_scope: ownership, cancellation and joining of detached tasks.
#include <corio/runtime/task_scope.hpp>

#include <cstdio>

namespace corio {

task_scope::task_scope() noexcept { m_on_done = &on_child_done; }

task_scope::task_scope(stop_token parent) noexcept : task_scope() {
    m_parent_state = detail::stop_access::state(parent);
    if (!m_parent_state)
        return;
    m_parent_link.m_scope = this;
    m_parent_link.m_invoke = [](detail::stop_callback_node* node) noexcept {
        static_cast<parent_link*>(node)->m_scope->request_stop();
    };
    m_parent_state->add(&m_parent_link);
}

task_scope::task_scope(stop_token parent, std::function<void(std::exception_ptr)> handler) noexcept
    : task_scope(parent) {
    m_handler = std::move(handler);
}

task_scope::~task_scope() {
    if (m_live != 0) {
        std::fprintf(stderr, "corio: task_scope destroyed with %zu running tasks: co_await "
                             "scope.join() before it goes out of scope\n", m_live);
        std::terminate();
    }
    if (m_parent_state)
        m_parent_state->remove(&m_parent_link);
}

void task_scope::spawn(io_context& ctx, task<void> t) {
    auto frame = t.release();
    assert(frame && "spawning an empty task");
    detail::promise<void>& promise = frame.promise();
    promise.m_hook = this;
    promise.m_stop = m_stop.token();
    promise.m_scope_entry.m_waiter = frame;
    link(&promise.m_scope_entry);
    ctx.post(&promise.m_scope_entry);
}

void task_scope::on_child_done(detail::completion_hook* hook, detail::promise_base& child,
                               std::coroutine_handle<> frame) noexcept {
    auto* self = static_cast<task_scope*>(hook);
    self->unlink(&child.m_scope_entry);
    if (std::exception_ptr error = child.m_exception) {
        if (self->m_handler) {
            self->m_handler(error);
        } else {
            if (!self->m_first_error)
                self->m_first_error = error;
            self->request_stop(); // the siblings' work is moot now
        }
    }
    frame.destroy();
    if (self->m_live == 0 && self->m_joiner)
        io_context::current().post(std::exchange(self->m_joiner, nullptr));
}

void task_scope::link(detail::scope_entry* entry) noexcept {
    entry->m_prev = nullptr;
    entry->m_next = m_head;
    if (m_head)
        m_head->m_prev = entry;
    m_head = entry;
    ++m_live;
}

void task_scope::unlink(detail::scope_entry* entry) noexcept {
    (entry->m_prev ? entry->m_prev->m_next : m_head) = entry->m_next;
    if (entry->m_next)
        entry->m_next->m_prev = entry->m_prev;
    --m_live;
}

void task_scope::destroy_remaining() noexcept {
    while (detail::scope_entry* entry = m_head) {
        unlink(entry);
        entry->m_waiter.destroy();
    }
}

} // namespace corio
