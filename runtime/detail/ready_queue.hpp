// SPDX-License-Identifier: MIT
// The loop's FIFO of coroutines to resume. Intrusive: each entry lives in the awaiting frame, so
// making a coroutine ready never allocates.
#pragma once

#include <coroutine>

namespace corio::detail {

/// Tag for constructors that leave fields to be written before first use (hot-path ops).
struct uninitialized_t {};

/// One entry of the ready queue: a suspended coroutine and the link to the next entry.
struct ready_node {
    ready_node() noexcept : m_next(nullptr) {}
    explicit ready_node(uninitialized_t) noexcept {}

    ready_node* m_next;                   // next entry while queued
    std::coroutine_handle<> m_waiter;     // what to resume
};

class ready_queue {
public:
    [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }

    void push(ready_node* node) noexcept {
        node->m_next = nullptr;
        (m_tail ? m_tail->m_next : m_head) = node;
        m_tail = node;
    }

    [[nodiscard]] ready_node* pop() noexcept {
        ready_node* node = m_head;
        if (node) {
            m_head = node->m_next;
            if (!m_head)
                m_tail = nullptr;
        }
        return node;
    }

    /// Moves every entry out, leaving this queue empty (a turn resumes only what was ready when
    /// it began, so a coroutine that keeps yielding cannot starve I/O).
    [[nodiscard]] ready_queue take_all() noexcept {
        ready_queue out;
        out.m_head = m_head;
        out.m_tail = m_tail;
        m_head = m_tail = nullptr;
        return out;
    }

    /// Appends every entry of `other` (in order) and empties it.
    void splice(ready_queue& other) noexcept {
        if (other.empty())
            return;
        (m_tail ? m_tail->m_next : m_head) = other.m_head;
        m_tail = other.m_tail;
        other.m_head = other.m_tail = nullptr;
    }

private:
    ready_node* m_head = nullptr; // oldest entry
    ready_node* m_tail = nullptr; // newest entry
};

} // namespace corio::detail
