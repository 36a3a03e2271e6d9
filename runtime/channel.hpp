// SPDX-License-Identifier: MIT
// channel<T>: a bounded FIFO queue between coroutines on one loop. Senders wait while it is full
// (backpressure), receivers while it is empty; close() ends the stream.
#pragma once

#include <corio/runtime/detail/wait_list.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/stop.hpp>

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

namespace corio {

/// A bounded multi-producer multi-consumer channel for coroutines on one loop. The ring buffer
/// of `capacity` slots is allocated once, at construction: passing a message never allocates.
/// Values are only ever moved. Order is FIFO across all senders: a value handed straight to a
/// waiting receiver, or pulled from a waiting sender into the freed slot, keeps its place.
/// Capacity 0 makes a rendezvous channel: each send waits until a receiver takes the value.
/// Must outlive every wait on it; destroying it destroys the values still buffered.
template <class T>
class channel {
    // Moves happen inside await_suspend, where an exception would leave a half-done handoff.
    static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                  "channel<T> needs a T whose move constructor and destructor are noexcept");

public:
    class send_op;
    class recv_op;

    /// An open, empty channel buffering up to `capacity` values (0: rendezvous).
    explicit channel(std::size_t capacity)
        : m_slots(capacity ? std::allocator<T>().allocate(capacity) : nullptr),
          m_capacity(capacity) {}
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel() {
        while (m_size > 0)
            std::destroy_at(pop_slot());
        if (m_slots)
            std::allocator<T>().deallocate(m_slots, m_capacity);
    }

    /// Awaits room for `value` and enqueues it (or hands it to a waiting receiver). Waits while
    /// the channel is full. errc::broken_pipe when the channel is closed (also if it closes while
    /// this waits); errc::operation_canceled when the awaiting task is cancelled while waiting,
    /// or was already cancelled when the send began. On any error the value is not enqueued: it
    /// is destroyed with the awaiter. `value` is moved into the awaiter at once: pass an rvalue
    /// (std::move it, or build a temporary); it is never copied.
    [[nodiscard]] send_op send(T&& value) noexcept { return send_op(*this, std::move(value)); }

    /// Awaits the oldest value. Waits while the channel is empty. Values buffered before close()
    /// are still delivered; after that errc::broken_pipe. errc::operation_canceled when the
    /// awaiting task is cancelled while waiting, or was already cancelled when the receive began
    /// (no value is taken then).
    [[nodiscard]] recv_op recv() noexcept { return recv_op(*this); }

    /// Enqueues `value` if that needs no waiting. `value` is moved from only on success; else
    /// errc::resource_unavailable_try_again (full) or errc::broken_pipe (closed).
    [[nodiscard]] result<void> try_send(T&& value) noexcept {
        if (m_closed)
            return std::errc::broken_pipe;
        if (!offer(value))
            return std::errc::resource_unavailable_try_again;
        return {};
    }

    /// The oldest value if one is there now; else errc::resource_unavailable_try_again (empty)
    /// or errc::broken_pipe (closed and drained).
    [[nodiscard]] result<T> try_recv() noexcept {
        std::optional<T> value;
        if (take(value))
            return std::move(*value);
        if (m_closed)
            return std::errc::broken_pipe;
        return std::errc::resource_unavailable_try_again;
    }

    /// Ends the stream: waiting senders resume with errc::broken_pipe (their values are not
    /// enqueued), waiting receivers too (there are waiting receivers only when nothing is
    /// buffered). Buffered values stay receivable. Later sends fail. Idempotent.
    void close() noexcept {
        m_closed = true;
        m_senders.wake_all(std::errc::broken_pipe);
        m_receivers.wake_all(std::errc::broken_pipe);
    }

    /// True once close() was called (values may still be buffered).
    [[nodiscard]] bool is_closed() const noexcept { return m_closed; }

    /// Values buffered now (always 0 for a rendezvous channel).
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }

    /// The number of values the channel buffers before senders wait.
    [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }

private:
    /// Hands `value` to the oldest waiting receiver, or buffers it; false when full.
    inline bool offer(T& value) noexcept;

    /// Moves the oldest value into `out` (refilling the freed slot from the oldest waiting
    /// sender, or taking a rendezvous sender's value directly); false when there is none.
    inline bool take(std::optional<T>& out) noexcept;

    T* pop_slot() noexcept {
        T* slot = m_slots + m_head;
        m_head = (m_head + 1 == m_capacity) ? 0 : m_head + 1;
        --m_size;
        return slot;
    }

    void push_back(T&& value) noexcept {
        std::size_t tail = m_head + m_size;
        if (tail >= m_capacity)
            tail -= m_capacity;
        std::construct_at(m_slots + tail, std::move(value));
        ++m_size;
    }

    T* m_slots;                    // the ring buffer: m_capacity slots, raw storage
    std::size_t m_capacity;        // slots in the ring
    std::size_t m_head = 0;        // slot of the oldest buffered value
    std::size_t m_size = 0;        // buffered values
    bool m_closed = false;         // close() was called
    detail::wait_list m_senders;   // sends waiting for room (only while full), oldest first
    detail::wait_list m_receivers; // receives waiting for a value (only while empty)
};

/// The awaiter of channel<T>::send(). Holds the value until it is taken; lives in the awaiting
/// frame and is neither copied nor moved.
template <class T>
class [[nodiscard]] channel<T>::send_op : private detail::wait_node {
public:
    /// Made by channel::send(); holds `value` until it is taken. `ch` must outlive it.
    send_op(channel& ch, T&& value) noexcept : m_channel(&ch), m_value(std::move(value)) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
        stop_token token = detail::stop_token_of(waiter);
        if (is_cancelled(token)) {
            set_status(std::errc::operation_canceled);
            return false;
        }
        if (m_channel->m_closed) {
            set_status(std::errc::broken_pipe);
            return false;
        }
        if (m_channel->offer(m_value))
            return false;
        enqueue(m_channel->m_senders, waiter, token);
        return true;
    }

    result<void> await_resume() const noexcept { return status_result(); }

private:
    friend class channel;

    channel* m_channel; // the channel sent on
    T m_value;          // the value, until a receiver or the buffer takes it
};

/// The awaiter of channel<T>::recv(). Lives in the awaiting frame; neither copied nor moved.
template <class T>
class [[nodiscard]] channel<T>::recv_op : private detail::wait_node {
public:
    /// Made by channel::recv(); `ch` must outlive it.
    explicit recv_op(channel& ch) noexcept : m_channel(&ch) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
        stop_token token = detail::stop_token_of(waiter);
        if (is_cancelled(token)) {
            set_status(std::errc::operation_canceled);
            return false;
        }
        if (m_channel->take(m_value))
            return false;
        if (m_channel->m_closed) {
            set_status(std::errc::broken_pipe);
            return false;
        }
        enqueue(m_channel->m_receivers, waiter, token);
        return true;
    }

    result<T> await_resume() noexcept {
        if (status() != std::errc{})
            return status();
        assert(m_value && "a receive succeeded without a value");
        return std::move(*m_value);
    }

private:
    friend class channel;

    channel* m_channel;       // the channel received from
    std::optional<T> m_value; // where a sender or the buffer puts the value
};

template <class T>
inline bool channel<T>::offer(T& value) noexcept {
    if (detail::wait_node* node = m_receivers.front()) {
        auto* receiver = static_cast<recv_op*>(node);
        receiver->m_value.emplace(std::move(value));
        receiver->wake();
        return true;
    }
    if (m_size == m_capacity)
        return false;
    push_back(std::move(value));
    return true;
}

template <class T>
inline bool channel<T>::take(std::optional<T>& out) noexcept {
    auto* sender = static_cast<send_op*>(m_senders.front());
    if (m_size > 0) {
        T* slot = pop_slot();
        out.emplace(std::move(*slot));
        std::destroy_at(slot);
        if (sender)
            push_back(std::move(sender->m_value)); // the freed slot goes to the oldest sender
    } else if (sender) {
        out.emplace(std::move(sender->m_value)); // rendezvous: straight from the sender
    } else {
        return false;
    }
    if (sender)
        sender->wake();
    return true;
}

} // namespace corio
