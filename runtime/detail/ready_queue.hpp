// SPDX-License-Identifier: MIT
// The loop's FIFO of coroutines to resume. Intrusive: each entry lives in the awaiting frame, so
// making a coroutine ready never allocates.
#pragma once

#include <coroutine>
#include <utility>

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
    ready_queue() noexcept = default;
    ready_queue(ready_queue&& other) noexcept { splice(other); }
    ready_queue& operator=(ready_queue&& other) noexcept {
        if (this != &other) {
            m_head = nullptr;
            m_tail_link = &m_head;
            splice(other);
        }
        return *this;
    }
    ready_queue(const ready_queue&) = delete;
    ready_queue& operator=(const ready_queue&) = delete;

    [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }

    /// Appends `node`: three stores, no branch (this runs once per completion).
    void push(ready_node* node) noexcept {
        node->m_next = nullptr;
        *m_tail_link = node;
        m_tail_link = &node->m_next;
    }

    [[nodiscard]] ready_node* pop() noexcept {
        ready_node* node = m_head;
        if (node) {
            m_head = node->m_next;
            if (!m_head)
                m_tail_link = &m_head;
        }
        return node;
    }

    /// Empties the queue and returns its oldest entry; the rest follow through m_next (read it
    /// before resuming an entry: the entry lives in the frame it resumes).
    [[nodiscard]] ready_node* release_all() noexcept {
        ready_node* head = m_head;
        m_head = nullptr;
        m_tail_link = &m_head;
        return head;
    }

    /// Moves every entry out, leaving this queue empty (a turn resumes only what was ready when
    /// it began, so a coroutine that keeps yielding cannot starve I/O).
    [[nodiscard]] ready_queue take_all() noexcept { return std::move(*this); }

    /// Appends every entry of `other` (in order) and empties it.
    void splice(ready_queue& other) noexcept {
        if (other.empty())
            return;
        *m_tail_link = other.m_head;
        m_tail_link = other.m_tail_link;
        other.m_head = nullptr;
        other.m_tail_link = &other.m_head;
    }

private:
    ready_node* m_head = nullptr;           // oldest entry
    ready_node** m_tail_link = &m_head;     // the link the next push writes (the newest entry's
                                            // m_next, or m_head when empty)
};

} // namespace corio::detail
