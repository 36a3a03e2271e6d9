// SPDX-License-Identifier: MIT
// The per-thread, per-loop queues behind defer_resubmit(): each is drained by a small coroutine
// that the loop resumes from its ready queue like any other waiter.
#include <corio/runtime/detail/resubmit_queue.hpp>

#include <corio/runtime/detail/ready_queue.hpp>
#include <corio/runtime/io_context.hpp>

#include <coroutine>
#include <exception>
#include <memory>
#include <vector>

namespace corio::detail {

namespace {

/// A bare coroutine that never finishes; its owner destroys it.
struct drain_coroutine {
    struct promise_type {
        drain_coroutine get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); }
    };
    std::coroutine_handle<promise_type> m_handle; // the frame, owned by a resubmit_queue
};

class resubmit_queue {
public:
    explicit resubmit_queue(io_context* ctx) : m_ctx(ctx) { m_node.m_waiter = run(this).m_handle; }
    ~resubmit_queue() { m_node.m_waiter.destroy(); }
    resubmit_queue(const resubmit_queue&) = delete;
    resubmit_queue& operator=(const resubmit_queue&) = delete;

    [[nodiscard]] io_context* context() const noexcept { return m_ctx; }

    void push(resubmit_node* node) noexcept {
        node->m_next_resubmit = nullptr;
        (m_tail ? m_tail->m_next_resubmit : m_head) = node;
        m_tail = node;
        if (!m_posted) {
            m_posted = true;
            m_ctx->post(&m_node);
        }
    }

private:
    static drain_coroutine run(resubmit_queue* self) {
        for (;;) { // starts suspended (initial_suspend); each resumption drains once
            self->drain();
            co_await std::suspend_always{};
        }
    }

    void drain() noexcept {
        m_posted = false;
        resubmit_node* node = m_head;
        m_head = m_tail = nullptr;
        while (node) {
            resubmit_node* next = node->m_next_resubmit;
            node->m_resubmit(node);
            node = next;
        }
    }

    io_context* m_ctx;               // the loop this queue posts to
    ready_node m_node;       // posted when the first op arrives in a turn
    resubmit_node* m_head = nullptr; // waiting ops, oldest first
    resubmit_node* m_tail = nullptr;
    bool m_posted = false; // m_node is in the ready queue
};

/// One queue per loop that ever needed one on this thread (a context destroyed leaves its queue
/// idle: teardown runs the loop until the ready queue is empty; a later context at the same
/// address reuses it).
thread_local std::vector<std::unique_ptr<resubmit_queue>> t_queues;

} // namespace

void defer_resubmit(io_context& ctx, resubmit_node* node) noexcept {
    for (const std::unique_ptr<resubmit_queue>& q : t_queues) {
        if (q->context() == &ctx) {
            q->push(node);
            return;
        }
    }
    try {
        t_queues.push_back(std::make_unique<resubmit_queue>(&ctx));
    } catch (...) {
        std::terminate(); // once per loop and thread: out of memory here is not recoverable
    }
    t_queues.back()->push(node);
}

} // namespace corio::detail
