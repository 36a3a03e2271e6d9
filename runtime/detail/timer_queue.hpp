// SPDX-License-Identifier: MIT
// The loop's timers, kept in user space: a binary min-heap of deadlines whose entries live in the
// awaiting frames. The ring only learns the earliest deadline, as the timeout of the wait that
// ends a turn: adding or cancelling a timer never costs an SQE, and never makes the kernel walk
// its timeout list (IORING_OP_TIMEOUT cancellation is linear in the timeouts pending: at 10,000
// idle connections each with a deadline it took most of the loop's CPU).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace corio::detail {

/// One deadline in a timer_queue. Lives in the awaiting frame; must not move while queued.
struct timer_node {
    /// Called with `expired` true when the deadline passed, false when the loop is torn down
    /// with the timer still queued. The node is out of the queue by then.
    using fire_fn = void (*)(timer_node*, bool expired) noexcept;

    static constexpr std::size_t k_not_queued = std::numeric_limits<std::size_t>::max();

    std::int64_t m_deadline_ns = 0;          // CLOCK_MONOTONIC (steady_clock), nanoseconds
    std::uint64_t m_sequence = 0;            // ties on the deadline fire in the order queued
    std::size_t m_heap_index = k_not_queued; // position in the heap while queued
    fire_fn m_fire = nullptr;

    [[nodiscard]] bool queued() const noexcept { return m_heap_index != k_not_queued; }
};

/// A binary min-heap of timer_node pointers ordered by (deadline, sequence). Push and erase are
/// O(log n); the earliest deadline is O(1). The vector keeps its capacity, so a steady number of
/// timers allocates nothing.
class timer_queue {
public:
    [[nodiscard]] bool empty() const noexcept { return m_heap.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return m_heap.size(); }
    /// The earliest deadline. Not empty() only.
    [[nodiscard]] std::int64_t earliest() const noexcept { return m_heap.front()->m_deadline_ns; }

    /// Queues `node` (its m_deadline_ns and m_fire set). Throws std::bad_alloc when the heap
    /// cannot grow; the node is then not queued.
    void push(timer_node* node);
    /// Takes a queued `node` out (a cancelled timer). No-op when it is not queued.
    void erase(timer_node* node) noexcept;
    /// Takes out every node due at `now_ns` and calls m_fire(node, true) on each, earliest
    /// first. A fire function may push or erase other nodes. Returns how many fired.
    std::size_t fire_expired(std::int64_t now_ns) noexcept;
    /// Takes out every node and calls m_fire(node, false) on each (teardown).
    void abandon_all() noexcept;

private:
    [[nodiscard]] static bool before(const timer_node* a, const timer_node* b) noexcept {
        return a->m_deadline_ns < b->m_deadline_ns ||
               (a->m_deadline_ns == b->m_deadline_ns && a->m_sequence < b->m_sequence);
    }
    void place(timer_node* node, std::size_t index) noexcept {
        m_heap[index] = node;
        node->m_heap_index = index;
    }
    void sift_up(std::size_t index) noexcept;
    void sift_down(std::size_t index) noexcept;
    timer_node* pop_front() noexcept;

    std::vector<timer_node*> m_heap;
    std::uint64_t m_next_sequence = 0;
};

/// Now on CLOCK_MONOTONIC (std::chrono::steady_clock), in nanoseconds: the timers' clock.
[[nodiscard]] std::int64_t monotonic_now_ns() noexcept;

} // namespace corio::detail
