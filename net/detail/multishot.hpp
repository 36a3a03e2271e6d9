// SPDX-License-Identifier: MIT
// The machinery behind multishot streams (accept, recv): one SQE that keeps producing CQEs into a
// small queue, one consumer that awaits items, re-arming when the kernel ends the op, and a state
// that outlives its owner until the kernel has let go of it.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/detail/ready_queue.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/stop.hpp>

#include <liburing.h>

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>

namespace corio::net::detail {

class multishot_state;

/// A coroutine that runs its state's service() each time it is posted. Completion handlers run
/// while the loop reaps the CQ and must not take SQEs (a full SQ would submit and reap inside the
/// reap); they post this instead, and the ring work happens on the loop's next resume pass.
struct service_routine {
    struct promise_type {
        service_routine get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        // The routine ends only when service() freed its state: the frame frees itself.
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); }
    };
    std::coroutine_handle<promise_type> m_handle; // the suspended routine
};

/// The consumer blocked in a stream's next(). Lives in the awaiting frame.
struct stream_waiter : corio::detail::stop_callback_node {
    corio::detail::ready_node m_node;            // posted to resume the consumer
    multishot_state* m_state = nullptr;          // the stream waited on, while waiting
    corio::detail::stop_state* m_stop = nullptr; // where the stop callback is registered
    bool m_cancelled = false;                    // resumed by cancellation, not by an item
    bool m_timed_out = false;                    // resumed by the stream's idle deadline

    stream_waiter() noexcept = default;
    stream_waiter(const stream_waiter&) noexcept : stop_callback_node() {}
    stream_waiter& operator=(const stream_waiter&) = delete;
    ~stream_waiter() { leave(); }

    /// Blocks on `state` until it wakes this waiter or `token` is stopped.
    void enqueue(multishot_state& state, std::coroutine_handle<> waiter, stop_token token) noexcept;
    /// Stops waiting (the frame is destroyed while suspended, or the wait ended).
    void leave() noexcept;
    void unregister_stop() noexcept;
};

/// What a multishot stream shares: arming, the consumer, deferred ring work, orphaning. Heap
/// allocated; the public stream object owns it until its destructor calls orphan(), after which
/// the state frees itself once no CQE can refer to it any more.
class multishot_state : public corio::detail::io_op {
public:
    explicit multishot_state(io_context& ctx);
    virtual ~multishot_state();
    multishot_state(const multishot_state&) = delete;
    multishot_state& operator=(const multishot_state&) = delete;

    /// The owner is gone: cancels what is in flight; the state frees itself when it is done.
    void orphan() noexcept;

    /// SQEs this stream has armed (first arm and re-arms).
    [[nodiscard]] std::uint64_t arms() const noexcept { return m_arms; }
    [[nodiscard]] bool is_armed() const noexcept { return m_armed; }

protected:
    friend struct stream_waiter;
    friend service_routine run_service(multishot_state* state);

    /// Fills in the multishot SQE.
    virtual void prepare(io_uring_sqe* sqe) noexcept = 0;
    /// One CQE of the multishot op (runs while reaping: no ring work, post instead).
    virtual void on_cqe(int res, unsigned flags) noexcept = 0;
    /// Ring work requested with request_service(); runs from the loop's ready queue.
    virtual void service() = 0;
    /// The waiting consumer left without an item (its task was cancelled).
    virtual void on_waiter_left() noexcept {}
    /// Orphaned: cancel any extra op of the derived state (a timer).
    virtual void on_orphaned() noexcept {}

    /// Takes an SQE and arms the multishot op. Only outside reaping (next(), service()).
    void arm();
    /// Asks for service() to run soon. Safe anywhere, including while reaping.
    void request_service() noexcept;
    /// Resumes the waiting consumer, if any (it then takes the item itself).
    void wake() noexcept;
    /// The derived state started or finished an extra op pointing into it (a timer).
    void extra_op_started() noexcept { ++m_kernel_refs; }
    void extra_op_finished() noexcept;
    /// Frees the state if it is orphaned and nothing refers to it any more.
    void free_if_done() noexcept;

    io_context* m_loop;                  // the loop the stream belongs to
    stream_waiter* m_waiter = nullptr;   // the consumer blocked in next(), if any
    bool m_armed = false;                // the multishot SQE is live (no final CQE yet)
    bool m_orphaned = false;             // the owner is gone
    std::uint64_t m_arms = 0;            // times arm() ran

private:
    static void on_complete(corio::detail::io_op* op, int res, unsigned flags) noexcept;
    bool run_service_once();

    std::size_t m_kernel_refs = 0;       // ops in flight that point into this state
    bool m_service_queued = false;       // m_service_node is in the ready queue
    bool m_in_service = false;           // service() is on the stack
    service_routine m_routine;           // runs service() when posted
    corio::detail::ready_node m_service_node; // posts m_routine
};

/// A FIFO of small values that grows only when full. The first `Inline` slots live in the object
/// itself: a connection's stream rarely holds more than one completion, and a heap block per
/// stream cost 136 bytes of every idle connection (docs/provided_buffers.md).
template <class T, std::size_t Inline = 16>
class small_queue {
    static_assert(Inline > 0 && (Inline & (Inline - 1)) == 0, "a power-of-two inline capacity");

public:
    small_queue() noexcept = default;
    small_queue(const small_queue&) = delete;
    small_queue& operator=(const small_queue&) = delete;

    [[nodiscard]] bool empty() const noexcept { return m_size == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }

    void push(T value) {
        if (m_size == m_capacity)
            grow();
        slots()[(m_head + m_size) & (m_capacity - 1)] = value;
        ++m_size;
    }
    T pop() noexcept {
        assert(m_size > 0);
        T value = slots()[m_head];
        m_head = (m_head + 1) & (m_capacity - 1);
        --m_size;
        return value;
    }

private:
    T* slots() noexcept { return m_heap ? m_heap.get() : m_inline; }

    void grow() {
        std::size_t bigger_capacity = m_capacity * 2;
        auto bigger = std::make_unique<T[]>(bigger_capacity);
        T* old = slots();
        for (std::size_t i = 0; i < m_size; ++i)
            bigger[i] = old[(m_head + i) & (m_capacity - 1)];
        m_heap = std::move(bigger);
        m_capacity = bigger_capacity;
        m_head = 0;
    }

    T m_inline[Inline]{};            // the slots until the queue first outgrows them
    std::unique_ptr<T[]> m_heap;     // the slots once it did (a power of two of them)
    std::size_t m_capacity = Inline; // slots in use: Inline, or the heap block's size
    std::size_t m_head = 0;          // index of the oldest item
    std::size_t m_size = 0;          // items queued
};

} // namespace corio::net::detail
