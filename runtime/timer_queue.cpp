// SPDX-License-Identifier: MIT
// The loop's user-space timer heap (see detail/timer_queue.hpp).
#include <corio/runtime/detail/timer_queue.hpp>

#include <time.h>

#include <cassert>

namespace corio::detail {

std::int64_t monotonic_now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts); // the vDSO: no system call
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void timer_queue::push(timer_node* node) {
    assert(!node->queued());
    m_heap.push_back(node); // the only step that can throw: nothing changed yet if it does
    node->m_sequence = m_next_sequence++;
    place(node, m_heap.size() - 1);
    sift_up(node->m_heap_index);
}

void timer_queue::erase(timer_node* node) noexcept {
    if (!node->queued())
        return;
    std::size_t index = node->m_heap_index;
    node->m_heap_index = timer_node::k_not_queued;
    timer_node* last = m_heap.back();
    m_heap.pop_back();
    if (last == node)
        return; // it was the last slot
    place(last, index);
    // The moved node may belong above or below the hole: one of the two moves it.
    if (index > 0 && before(last, m_heap[(index - 1) / 2]))
        sift_up(index);
    else
        sift_down(index);
}

timer_node* timer_queue::pop_front() noexcept {
    timer_node* front = m_heap.front();
    erase(front);
    return front;
}

std::size_t timer_queue::fire_expired(std::int64_t now_ns) noexcept {
    std::size_t fired = 0;
    while (!m_heap.empty() && m_heap.front()->m_deadline_ns <= now_ns) {
        timer_node* node = pop_front();
        node->m_fire(node, true);
        ++fired;
    }
    return fired;
}

void timer_queue::abandon_all() noexcept {
    while (!m_heap.empty()) {
        timer_node* node = pop_front();
        node->m_fire(node, false);
    }
}

void timer_queue::sift_up(std::size_t index) noexcept {
    timer_node* node = m_heap[index];
    while (index > 0) {
        std::size_t parent = (index - 1) / 2;
        if (!before(node, m_heap[parent]))
            break;
        place(m_heap[parent], index);
        index = parent;
    }
    place(node, index);
}

void timer_queue::sift_down(std::size_t index) noexcept {
    timer_node* node = m_heap[index];
    const std::size_t size = m_heap.size();
    for (;;) {
        std::size_t child = 2 * index + 1;
        if (child >= size)
            break;
        if (child + 1 < size && before(m_heap[child + 1], m_heap[child]))
            ++child;
        if (!before(m_heap[child], node))
            break;
        place(m_heap[child], index);
        index = child;
    }
    place(node, index);
}

} // namespace corio::detail
