// SPDX-License-Identifier: MIT
// What the sync primitives (event, semaphore, channel, mutex) share: an intrusive FIFO of waiting
// coroutines whose entries live in the awaiters, and the cancellation that unlinks one of them.
#pragma once

#include <corio/runtime/detail/ready_queue.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/stop.hpp>

#include <cassert>
#include <coroutine>
#include <system_error>

namespace corio::detail {

class wait_list;

/// One coroutine waiting on a sync primitive. It lives in the awaiter (so in the waiting frame):
/// waiting never allocates. A wait ends exactly once, either by its primitive (wake) or by its
/// stop token (cancel); both unlink it from the list and from the stop state, record the outcome
/// and post the coroutine to the loop. The destructor unlinks a wait that never ended, so a frame
/// destroyed while waiting (io_context teardown) leaves no dangling node behind.
class wait_node : private stop_callback_node {
public:
    wait_node() noexcept = default;
    wait_node(const wait_node&) = delete;
    wait_node& operator=(const wait_node&) = delete;
    ~wait_node() { detach(); }

    /// True when stop was requested on `token`: a wait that would begin now ends at once with
    /// operation_canceled instead (the awaiter's await_suspend returns false).
    [[nodiscard]] static bool is_cancelled(stop_token token) noexcept {
        return token.stop_requested();
    }

    /// Queues this wait at the back of `list` and arms its cancellation through `token`.
    inline void enqueue(wait_list& list, std::coroutine_handle<> waiter, stop_token token) noexcept;

    /// Ends the wait with `status` (errc{} for success) and posts the waiter to its loop.
    inline void wake(std::errc status = {}) noexcept;

    /// How the wait ended: errc{} for success.
    [[nodiscard]] std::errc status() const noexcept { return m_status; }

    /// Records an outcome without ever having waited (the awaiter completes without suspending).
    void set_status(std::errc status) noexcept { m_status = status; }

    /// The status as a result<void>.
    [[nodiscard]] result<void> status_result() const noexcept {
        if (m_status == std::errc{})
            return {};
        return m_status;
    }

private:
    friend class wait_list;

    inline void detach() noexcept;
    static inline void on_stop(stop_callback_node* node) noexcept;

    ready_node m_ready;           // what the loop resumes when the wait ends
    io_context* m_ctx = nullptr;  // the loop the waiter runs on
    wait_node* m_older = nullptr; // neighbours in the wait list while queued
    wait_node* m_newer = nullptr;
    wait_list* m_list = nullptr;  // the list this wait is queued in, or null
    stop_state* m_stop = nullptr; // where the cancellation is registered, or null
    std::errc m_status{};         // the outcome: errc{} for success
};

/// The waiters of one primitive, oldest first. Never allocates. Destroying a list that still has
/// waiters is a programmer error (they would unlink themselves from freed memory later).
class wait_list {
public:
    wait_list() noexcept = default;
    wait_list(const wait_list&) = delete;
    wait_list& operator=(const wait_list&) = delete;
    ~wait_list() {
        assert(empty() && "a sync primitive was destroyed while coroutines wait on it");
    }

    /// True when nobody waits.
    [[nodiscard]] bool empty() const noexcept { return m_oldest == nullptr; }

    /// The oldest waiter, or null.
    [[nodiscard]] wait_node* front() const noexcept { return m_oldest; }

    /// Ends every wait with `status`, oldest first (they resume in that order on the next turn).
    void wake_all(std::errc status = {}) noexcept {
        while (wait_node* node = m_oldest)
            node->wake(status);
    }

private:
    friend class wait_node;

    void push_back(wait_node* node) noexcept {
        assert(node->m_list == nullptr && "an awaiter was awaited twice");
        node->m_list = this;
        node->m_newer = nullptr;
        node->m_older = m_newest;
        (m_newest ? m_newest->m_newer : m_oldest) = node;
        m_newest = node;
    }

    void remove(wait_node* node) noexcept {
        (node->m_older ? node->m_older->m_newer : m_oldest) = node->m_newer;
        (node->m_newer ? node->m_newer->m_older : m_newest) = node->m_older;
        node->m_older = node->m_newer = nullptr;
        node->m_list = nullptr;
    }

    wait_node* m_oldest = nullptr; // the next to be woken
    wait_node* m_newest = nullptr; // the latest arrival
};

inline void wait_node::enqueue(wait_list& list, std::coroutine_handle<> waiter,
                               stop_token token) noexcept {
    m_ready.m_waiter = waiter;
    m_ctx = &io_context::current();
    list.push_back(this);
    m_stop = stop_access::state(token);
    if (!m_stop)
        return;
    m_invoke = &on_stop;
    m_stop->add(this); // runs on_stop at once if stop was requested meanwhile: still one ending
}

inline void wait_node::wake(std::errc status) noexcept {
    detach();
    m_status = status;
    m_ctx->post(&m_ready);
}

inline void wait_node::detach() noexcept {
    if (m_list)
        m_list->remove(this);
    if (m_stop)
        m_stop->remove(this);
    m_stop = nullptr;
}

inline void wait_node::on_stop(stop_callback_node* node) noexcept {
    auto* self = static_cast<wait_node*>(node);
    self->m_stop = nullptr; // the stop state unlinked the callback before invoking it
    self->wake(std::errc::operation_canceled);
}

} // namespace corio::detail
