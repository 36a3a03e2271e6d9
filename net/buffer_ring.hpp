// SPDX-License-Identifier: MIT
// Receiving into runtime-owned buffers: a provided-buffer ring shared with the kernel, multishot
// recv that picks buffers from it, and move-only leases that put each buffer back when dropped.
#pragma once

#include <corio/net/detail/buffer_group.hpp>
#include <corio/net/detail/multishot.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/timer.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace corio::net {

class basic_socket;

/// How the completions of a buffer_ring take its buffers.
enum class buffer_use {
    whole,       ///< every completion takes a whole buffer, however few bytes it carries
    incremental, ///< completions take only the bytes they carry (IOU_PBUF_RING_INC, kernel
                 ///< 6.12+), many small reads sharing a buffer; whole where the kernel (or the
                 ///< epoll backend) lacks it: see buffer_ring::is_incremental()
};

/// A provided-buffer ring (kernel 5.19+): `count` buffers of `buffer_size` bytes registered with
/// the io_context's ring under one buffer group. A recv that selects from it needs no buffer of
/// its own while it waits, so idle connections cost no buffer memory. The memory stays until the
/// ring, every lease and every recv_stream using it are gone; all must go before the io_context.
class buffer_ring {
public:
    /// Sets the ring up (mmap, register). `count` is a power of two up to 32768. `group_id` -1
    /// picks a free group id. `use` incremental probes the kernel for it and falls back to
    /// whole buffers. Throws std::system_error naming the failing call.
    buffer_ring(io_context& ctx, unsigned count, std::uint32_t buffer_size, int group_id = -1,
                buffer_use use = buffer_use::incremental);
    ~buffer_ring() { m_group->unref(); }
    buffer_ring(const buffer_ring&) = delete;
    buffer_ring& operator=(const buffer_ring&) = delete;

    /// The buffer group id SQEs select from.
    [[nodiscard]] std::uint16_t group_id() const noexcept { return m_group->id(); }
    /// The number of buffers in the ring.
    [[nodiscard]] unsigned count() const noexcept { return m_group->count(); }
    /// The size of each buffer in bytes: the most one recv completion delivers.
    [[nodiscard]] std::uint32_t buffer_size() const noexcept { return m_group->buffer_size(); }
    /// Buffers the kernel can pick now (neither leased nor queued in a stream).
    [[nodiscard]] unsigned available() const noexcept { return m_group->available(); }
    /// Bytes of the ring one recv_stream may hold in chunks its consumer has not taken yet;
    /// at the limit the stream stops reading until the consumer catches up (with incremental
    /// consumption on Linux 6.17+ the kernel ends the multishot recv at that many bytes;
    /// otherwise the stream reads with one recv SQE per buffer, re-armed under the limit). Chunks count at
    /// their size when consumption is incremental, a whole buffer each otherwise. Default: 1/64
    /// of the ring, at most 64 KiB, at least one buffer.
    [[nodiscard]] std::uint32_t stream_limit() const noexcept { return m_group->stream_limit(); }
    /// Sets stream_limit() for every stream of this ring (from their next arm on). At least one
    /// buffer: a smaller value is raised to buffer_size().
    void set_stream_limit(std::uint32_t bytes) noexcept {
        m_group->set_stream_limit(bytes < buffer_size() ? buffer_size() : bytes);
    }
    /// True when the kernel consumes the buffers incrementally (IOU_PBUF_RING_INC, kernel
    /// 6.12+; probed at construction, false before and on the epoll backend): a completion then
    /// takes only the bytes it carries, later completions continue in the same buffer, and a
    /// buffer goes back into the ring when the kernel has filled it and every lease of it is
    /// gone. Without it, every completion takes a whole buffer however few bytes it carries.
    [[nodiscard]] bool is_incremental() const noexcept { return m_group->is_incremental(); }

    /// For recv_stream.
    [[nodiscard]] detail::buffer_group& group() const noexcept { return *m_group; }

private:
    detail::buffer_group* m_group; // shared with leases and streams
};

/// Received bytes in one buffer of a buffer_ring (all of it, or with incremental consumption a
/// piece of it). Move-only; dropping it (destruction, reset(), assignment) returns the buffer to
/// the ring for the kernel to fill again (once no other lease holds a piece of it).
class buffer_lease {
public:
    /// An empty lease: what recv_stream::next() gives at orderly EOF.
    buffer_lease() noexcept = default;
    /// Takes a piece of buffer `bid` of `group`: `size` received bytes from `offset` on (what
    /// recv_stream does; the piece was counted by buffer_group::received()).
    buffer_lease(detail::buffer_group& group, std::uint16_t bid, std::uint32_t size,
                 std::uint32_t offset = 0) noexcept
        : m_group(&group), m_bid(bid), m_size(size), m_offset(offset) {
        group.ref();
    }
    /// Moving transfers the buffer; the moved-from lease is empty.
    buffer_lease(buffer_lease&& other) noexcept
        : m_group(std::exchange(other.m_group, nullptr)), m_bid(other.m_bid),
          m_size(std::exchange(other.m_size, 0)), m_offset(other.m_offset) {}
    /// Returns this lease's buffer, then takes `other`'s.
    buffer_lease& operator=(buffer_lease&& other) noexcept {
        if (this != &other) {
            reset();
            m_group = std::exchange(other.m_group, nullptr);
            m_bid = other.m_bid;
            m_size = std::exchange(other.m_size, 0);
            m_offset = other.m_offset;
        }
        return *this;
    }
    buffer_lease(const buffer_lease&) = delete;
    buffer_lease& operator=(const buffer_lease&) = delete;
    /// Returns the buffer to its ring.
    ~buffer_lease() { reset(); }

    /// The received bytes. Valid until the lease is dropped.
    [[nodiscard]] std::span<std::byte> data() const noexcept {
        return m_group ? std::span<std::byte>(m_group->buffer(m_bid) + m_offset, m_size)
                       : std::span<std::byte>();
    }
    /// The number of received bytes (0 for an empty lease).
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    /// True for an empty lease: orderly EOF from recv_stream::next(), or moved from.
    [[nodiscard]] bool empty() const noexcept { return m_size == 0; }
    /// The buffer id the kernel reported (for tests and statistics).
    [[nodiscard]] std::uint16_t buffer_id() const noexcept { return m_bid; }

    /// Returns the buffer to its ring now.
    void reset() noexcept {
        if (detail::buffer_group* g = std::exchange(m_group, nullptr)) {
            g->release(m_bid);
            g->unref();
        }
        m_size = 0;
    }

private:
    detail::buffer_group* m_group = nullptr; // the ring the buffer goes back to; null when empty
    std::uint16_t m_bid = 0;                 // the buffer's id in that ring
    std::uint32_t m_size = 0;                // bytes received into it
    std::uint32_t m_offset = 0;              // where they start (incremental rings share buffers)
};

namespace detail {

/// The state of a multishot recv: buffers received and not yet handed out, EOF, errors, and the
/// wait for a buffer when the ring ran dry.
class recv_state final : public multishot_state, private starved_node {
public:
    /// `socket` is read at every arm: once it is closed (fd -1) arming fails with EBADF instead
    /// of reaching a socket that reused the fd number.
    recv_state(io_context& ctx, const basic_socket& socket, buffer_group& group);
    ~recv_state() override;

    /// Called by next() before suspending: is something ready?
    [[nodiscard]] bool has_item() const noexcept {
        return !m_queue.empty() || m_error || m_eof;
    }
    /// The oldest item: a lease, an empty lease at EOF, or the error.
    [[nodiscard]] result<buffer_lease> take() noexcept;
    /// Registers the consumer and makes sure something will wake it.
    void wait(stream_waiter& waiter, std::coroutine_handle<> h, stop_token token);
    /// wait(), and wakes the consumer with m_timed_out set once `limit_ns` pass with nothing to
    /// take while the stream could read (time spent waiting for a ring buffer does not count).
    /// Throws std::bad_alloc before registering anything.
    void wait_within(stream_waiter& waiter, std::coroutine_handle<> h, stop_token token,
                     std::int64_t limit_ns);

    std::uint64_t m_starvations = 0; // ENOBUFS completions (ring empty: slowed down)
    std::uint64_t m_pauses = 0;      // stops because the queued bytes reached the stream limit
    std::uint64_t m_received = 0;    // bytes received
    std::uint64_t m_completions = 0; // completions that carried bytes (a bundle: several chunks)

private:
    struct item {
        std::uint16_t bid = 0;    // the buffer the kernel filled
        std::uint32_t size = 0;   // bytes in it
        std::uint32_t offset = 0; // where they start in it
    };

    void prepare(io_uring_sqe* sqe) noexcept override;
    void on_cqe(int res, unsigned flags) noexcept override;
    void service() override;
    void on_waiter_left() noexcept override;
    /// Arms the recv, or ends the stream with ECANCELED if its socket was closed.
    void read();
    /// Waiting for a ring buffer: the kernel found bytes to read and no buffer (ENOBUFS).
    [[nodiscard]] bool is_starved() const noexcept { return starved_node::m_linked; }
    /// Makes sure the idle timer fires by `deadline_ns`. Lazy: a timer queued for a later
    /// deadline stays, fires early and re-queues itself (see idle_timer); inline, as it runs
    /// at every timed wait.
    void queue_idle_timer(std::int64_t deadline_ns) {
        if (!m_idle.queued() || m_idle.m_deadline_ns > deadline_ns)
            requeue_idle_timer(deadline_ns);
    }
    void requeue_idle_timer(std::int64_t deadline_ns);
    void on_orphaned() noexcept override;
    static void on_idle_timer(corio::detail::timer_node* node, bool expired) noexcept;

    /// The stream's idle deadline in the loop's timer queue. Lazy: a wait that ends in time
    /// leaves it queued, and the next wait only moves m_wait_deadline_ns. When it fires early
    /// it re-queues itself at the current wait's deadline, so a busy connection costs a heap
    /// operation per idle period, not per read (at 10,000 connections the heap's sift per read
    /// was 3 % of the server's CPU, in cache misses on other connections' deadlines).
    struct idle_timer : corio::detail::timer_node {
        recv_state* m_owner = nullptr; // the stream whose consumer it times out
    };

    const basic_socket* m_socket;    // the connected socket (its fd is read at every arm)
    buffer_group* m_group;           // where buffers come from (a reference held)
    small_queue<item, 2> m_queue;    // filled buffers not yet handed out (two fit in the state)
    std::error_code m_error;         // sticky: the error that ended the stream
    bool m_eof = false;              // sticky: the peer shut its side down
    idle_timer m_idle;               // times out a consumer waiting with a deadline
    std::int64_t m_wait_deadline_ns = 0; // the waiting consumer's deadline (none: INT64_MAX)
    std::int64_t m_wait_limit_ns = 0;    // the idle limit it was given (restarts after starving)
    std::uint32_t m_held = 0;        // ring bytes the queue holds (buffer_group::cost_of)
    bool m_capped = false;           // the armed SQE is a multishot with a byte cap
    bool m_bundled = false;          // ... taking bundles (IORING_RECVSEND_BUNDLE)
    bool m_bulk = false;             // the last completion filled its buffer: bundle next arm
    bool m_read_ahead = false;       // service() should re-arm: a recv ended under the limit
};

} // namespace detail

/// Receiving into a buffer_ring (kernel 5.19+): every chunk of bytes that arrives lands in a ring
/// buffer, handed out by next() as a buffer_lease. On Linux 6.17+ with incremental consumption
/// one multishot SQE stays armed until the stream limit; elsewhere each chunk is one recv SQE. When the ring
/// runs dry (ENOBUFS) the stream stops reading until a lease comes back; the bytes wait in the
/// socket, nothing is lost. A stream whose consumer falls behind stops reading once its queued
/// chunks hold buffer_ring::stream_limit() bytes of the ring, and reads on when the consumer
/// has taken them: a peer that sends and never reads the replies cannot empty the ring for
/// everyone else. One consumer at a time. The socket must stay open while the stream
/// is in use, at the same address (not moved); closing it (close()) ends the stream with
/// ECANCELED, and a stream whose socket was closed never arms again.
class recv_stream {
public:
    class next_op;

    /// Creates the stream; nothing is armed until the first next().
    recv_stream(const basic_socket& socket, buffer_ring& ring);
    /// Cancels the armed recv; the state (and the buffers it queued) goes when the kernel is done.
    ~recv_stream() {
        if (m_state)
            m_state->orphan();
    }
    /// Takes over the stream of `other`, which must not be used afterwards (only destroyed).
    recv_stream(recv_stream&& other) noexcept : m_state(std::exchange(other.m_state, nullptr)) {}
    recv_stream& operator=(recv_stream&&) = delete;
    recv_stream(const recv_stream&) = delete;
    recv_stream& operator=(const recv_stream&) = delete;

    /// Awaits the next chunk: a non-empty lease with bytes in arrival order, an empty lease at
    /// orderly EOF (sticky: later calls give it again), or the error that ended the stream
    /// (sticky too: ECONNRESET, ECANCELED after close(), …). errc::operation_canceled when the
    /// awaiting task is cancelled; the stream stays usable.
    [[nodiscard]] next_op next() noexcept;

    /// next() with an idle deadline: errc::timed_out when nothing (no bytes, EOF or error)
    /// arrives within `limit` of the suspension. Time the stream spends waiting for a ring
    /// buffer (ENOBUFS: the peer did send) does not count: the limit starts again once it can
    /// read. The deadline is one entry per stream in the
    /// loop's user-space timer queue, moved lazily: no SQE, no extra coroutine frame, and no heap
    /// operation per read (timeout() around next() costs three frames and a when_any per read).
    /// After a timeout the stream stays armed and usable: bytes that arrive later go to the next
    /// call. While the stream lives, io_context_stats::timers_pending counts its timer.
    template <class Rep, class Period>
    [[nodiscard]] next_op next(std::chrono::duration<Rep, Period> limit) noexcept;

    /// ENOBUFS completions so far: how often this stream was slowed down by an empty ring.
    [[nodiscard]] std::uint64_t starvations() const noexcept { return m_state->m_starvations; }
    /// How often this stream stopped reading because its queued chunks reached the stream limit
    /// (its consumer fell behind; the bytes waited in the socket).
    [[nodiscard]] std::uint64_t pauses() const noexcept { return m_state->m_pauses; }
    /// Completions that carried bytes. Fewer than the chunks handed out when the kernel fills
    /// several buffers per completion (bundles, Linux 6.10).
    [[nodiscard]] std::uint64_t completions() const noexcept { return m_state->m_completions; }
    /// True while the stream's recv is armed (reading into the ring).
    [[nodiscard]] bool is_armed() const noexcept { return m_state->is_armed(); }
    /// SQEs armed so far (the first and every re-arm).
    [[nodiscard]] std::uint64_t arms() const noexcept { return m_state->arms(); }

private:
    detail::recv_state* m_state; // heap: outlives this object while the kernel still has it
};

/// The awaiter of recv_stream::next() and next(limit). Lives in the awaiting frame.
class [[nodiscard]] recv_stream::next_op {
public:
    /// Made by recv_stream::next(); with `limit_ns` >= 0, by next(limit): the wait also ends that
    /// long after the suspension (the stream keeps the deadline in the loop's timer queue).
    explicit next_op(detail::recv_state& state, std::int64_t limit_ns = -1) noexcept
        : m_state(&state), m_limit_ns(limit_ns) {}
    next_op(const next_op&) = delete;
    next_op& operator=(const next_op&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        stop_token token = corio::detail::stop_token_of(h);
        if (token.stop_requested()) {
            m_waiter.m_cancelled = true;
            return false;
        }
        if (m_state->has_item())
            return false;
        if (m_limit_ns < 0)
            m_state->wait(m_waiter, h, token);
        else
            m_state->wait_within(m_waiter, h, token, m_limit_ns);
        return true;
    }

    result<buffer_lease> await_resume() noexcept {
        if (m_waiter.m_timed_out)
            return std::errc::timed_out;
        if (m_waiter.m_cancelled)
            return std::errc::operation_canceled;
        return m_state->take();
    }

private:
    detail::recv_state* m_state;    // the stream
    std::int64_t m_limit_ns;        // the deadline, relative to the suspension; -1: none
    detail::stream_waiter m_waiter; // the wait, while suspended
};

inline recv_stream::next_op recv_stream::next() noexcept { return next_op(*m_state); }

template <class Rep, class Period>
recv_stream::next_op recv_stream::next(std::chrono::duration<Rep, Period> limit) noexcept {
    return next_op(*m_state, corio::detail::to_ns(limit));
}

} // namespace corio::net
