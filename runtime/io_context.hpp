// SPDX-License-Identifier: MIT
// io_context: the loop. One thread, one io_uring. Each turn submits what was queued, reaps the
// completions in a batch, then resumes the coroutines they made ready.
#pragma once

#include <corio/runtime/detail/counters.hpp>
#include <corio/runtime/detail/ready_queue.hpp>
#include <corio/runtime/stop.hpp>

#include <liburing.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <exception>
#include <memory>
#include <mutex>

namespace corio {

class task_scope;

namespace detail {
struct io_op;
class offload_pool;
} // namespace detail

/// How the ring is set up. The defaults suit servers; tests shrink the rings to force the
/// SQ-full and CQ-overflow paths.
struct io_context_options {
    unsigned sq_entries = 256; ///< submission queue size (the kernel rounds up to a power of 2)
    unsigned cq_entries = 0;   ///< completion queue size; 0 lets the kernel pick 2 × sq_entries
    bool defer_taskrun = true; ///< try SINGLE_ISSUER|DEFER_TASKRUN first (falls back when refused)
    unsigned offload_threads = 2; ///< threads of the pool behind offload(), started on first use
};

/// Counters a user can read at any time (a stats dump, a test's assertions).
struct io_context_stats {
    std::uint64_t loop_turns = 0;      ///< turns of the loop
    std::uint64_t submitted = 0;       ///< SQEs the kernel accepted
    std::uint64_t completed = 0;       ///< CQEs reaped (internal ones included)
    std::uint64_t kernel_enters = 0;   ///< io_uring_enter calls made by the loop
    std::uint64_t cq_overflows = 0;    ///< times the kernel reported a CQ overflow (recovered)
    std::uint64_t sq_full_flushes = 0; ///< submits forced because the SQ was full
    std::uint64_t enter_retries = 0;   ///< EINTR/EAGAIN/EBUSY from io_uring_enter, retried
    std::size_t ops_in_flight = 0;     ///< operations whose final completion is still due
    std::size_t live_tasks = 0;        ///< corio task frames alive on this thread
    std::size_t frame_bytes = 0;       ///< bytes in those frames (as the compiler sized them)
    std::size_t peak_frame_bytes = 0;  ///< the most frame bytes alive at once on this thread
    std::size_t spawned_tasks = 0;     ///< detached tasks owned by this context, not yet done
};

/// The event loop. Not thread-safe: create it, run it and destroy it on one thread (the ring is
/// set up with IORING_SETUP_SINGLE_ISSUER). Destroying it cancels every operation in flight and
/// waits for their completions, so no buffer is ever left with the kernel.
class io_context {
public:
    using options = io_context_options;

    /// Sets up the ring. Throws std::system_error naming io_uring and the errno on failure.
    explicit io_context(options opts = {});
    ~io_context();
    io_context(const io_context&) = delete;
    io_context& operator=(const io_context&) = delete;

    /// The context running on this thread (or the most recently created one). Asserts one exists.
    [[nodiscard]] static io_context& current() noexcept {
        assert(t_current && "no corio::io_context on this thread");
        return *t_current;
    }

    /// The context running on this thread (or the most recently created one), or null: for
    /// destructors that may run outside any loop and must then fall back to plain syscalls.
    [[nodiscard]] static io_context* current_or_null() noexcept { return t_current; }

    /// Runs until stop() is called or nothing is left to do: no operation in flight, nothing
    /// ready, no offloaded job outstanding.
    void run();

    /// Makes run() (or a sync_wait on this context) return after the current turn.
    void stop() noexcept { m_stop_requested = true; }

    /// Runs until `done` becomes true. Throws std::logic_error when nothing can make it true
    /// (no operation in flight, nothing ready: a deadlock).
    void run_until(const bool& done);

    /// Handler for an exception that escapes a task spawned on this context. The default prints
    /// it and calls std::terminate: such an exception is never silently lost.
    void set_unhandled_exception_handler(std::function<void(std::exception_ptr)> handler);

    /// The counters. Cheap: a copy of a small struct.
    [[nodiscard]] io_context_stats stats() const noexcept;

    /// Cancellation for everything started on this context: requested when it is destroyed.
    [[nodiscard]] stop_token root_token() noexcept { return m_root_stop.token(); }

    /// The ring itself, for code that prepares SQEs corio does not wrap (see uring_op.hpp).
    [[nodiscard]] io_uring* native_handle() noexcept { return &m_ring; }

    /// The flags the ring was finally set up with (after falling back on refused ones).
    [[nodiscard]] unsigned ring_flags() const noexcept { return m_ring_flags; }

    // ----- for awaitables (runtime internals and extensions) -----

    /// A free SQE. Never null: when the SQ is full it submits what is queued and retries.
    [[nodiscard]] io_uring_sqe* get_sqe() {
        // liburing's io_uring_get_sqe, minus its per-call checks for SQPOLL (the kernel head
        // moves only inside this thread's io_uring_enter calls here) and SQE128 (never set up).
        // The free-slot check compares with a cached limit instead of reading the kernel's head.
        io_uring_sq& sq = m_ring.sq;
        unsigned tail = sq.sqe_tail;
        if (static_cast<int>(m_sq_full_at - tail) > 0) [[likely]] { // tail before the limit
            sq.sqe_tail = tail + 1;
            return &sq.sqes[tail & sq.ring_mask];
        }
        return get_sqe_slow();
    }

    /// Ensures `n` consecutive SQEs can be taken without an intervening submit (linked chains).
    void reserve_sqes(unsigned n);

    /// Marks `sqe` as belonging to `op`: its completion will be delivered to op->m_complete.
    inline void track(io_uring_sqe* sqe, detail::io_op* op) noexcept; // in detail/io_op.hpp
    /// track() with an explicit user_data: `op`'s address, tagged for plain single-shot ops.
    inline void track(io_uring_sqe* sqe, detail::io_op* op, std::uintptr_t user_data) noexcept;

    /// Queues a coroutine to be resumed by the loop (never resumes inline).
    void post(detail::ready_node* node) noexcept { m_ready.push(node); }

    /// Submits an async cancel aimed at `op`. The op still finishes on its own completion.
    void cancel(detail::io_op* op) { cancel_user_data(reinterpret_cast<std::uintptr_t>(op)); }
    /// Submits an async cancel aimed at the SQE submitted with `user_data`.
    void cancel_user_data(std::uintptr_t user_data);

    /// Thread-safe: queues `node` from another thread (an offload worker) and wakes the loop.
    /// Only valid while an expect_remote() is outstanding for it.
    void post_remote(detail::ready_node* node);

    /// Announces that one post_remote() will come; keeps the loop waiting for it.
    void expect_remote();

    /// The pool behind offload(), started on first use.
    [[nodiscard]] detail::offload_pool& offload_pool();

    /// The scope that owns tasks spawned directly on this context.
    [[nodiscard]] task_scope& root_scope() noexcept { return *m_root_scope; }

private:
    io_uring_sqe* get_sqe_slow();
    /// Re-reads the kernel's SQ head; true when a slot is free now.
    bool refresh_sq_limit() noexcept;
    void setup_ring(const options& opts);
    void turn() {
        ++m_stats.loop_turns;
        enter(m_ready.empty() && m_inflight > 0);
        reap();
        run_ready();
    }
    unsigned reap() noexcept;
    void run_ready();
    void enter(bool wait);
    [[nodiscard]] bool has_work() const noexcept {
        return !m_ready.empty() || m_inflight > 0 || io_uring_sq_ready(&m_ring) > 0;
    }
    void arm_wake();
    static void on_wake(detail::io_op* op, int res, unsigned flags) noexcept;
    void drain_and_close() noexcept;

    static inline thread_local io_context* t_current = nullptr;

    io_uring m_ring{};                  // the submission and completion queues
    unsigned m_sq_full_at = 0;          // the SQ tail at which no slot was free when last read
                                        // (the kernel's head only moves on: a stale limit is safe)
    unsigned m_ring_flags = 0;          // IORING_SETUP_* flags the kernel accepted
    detail::ready_queue m_ready;        // coroutines to resume this turn or the next
    std::size_t m_inflight = 0;         // SQEs whose final CQE is still due (internal ones excluded)
    bool m_stop_requested = false;      // stop() was called
    io_context* m_previous = nullptr;   // the context that was current before this one
    io_context_stats m_stats;           // counters (ops_in_flight/live_tasks filled on read)
    stop_source m_root_stop;            // requested on destruction: reaches every task and op
    std::unique_ptr<task_scope> m_root_scope;  // owner of tasks spawned on the context

    // Cross-thread completions (offload): workers push here and write the eventfd; a read on the
    // eventfd stays armed through the ring while any is outstanding.
    std::mutex m_remote_mutex;          // guards m_remote
    detail::ready_queue m_remote;       // nodes posted by other threads
    std::size_t m_remote_expected = 0;  // post_remote() calls still to come (loop thread only)
    int m_wake_fd = -1;                 // eventfd the workers write
    std::uint64_t m_wake_buffer = 0;    // the kernel writes the eventfd count here
    std::unique_ptr<detail::io_op> m_wake_op;  // the armed eventfd read, or idle
    bool m_wake_armed = false;          // m_wake_op is in flight
    std::unique_ptr<detail::offload_pool> m_offload; // started on first offload()
    options m_options;                  // what the context was created with
};

} // namespace corio
