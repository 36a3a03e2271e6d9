// SPDX-License-Identifier: MIT
// The shared state of a provided-buffer ring: the mmap'd io_uring_buf_ring, the buffers, the count
// of buffers the kernel can still pick, and the streams waiting because it could not (ENOBUFS).
#pragma once

#include <corio/runtime/io_context.hpp>

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace corio::net::detail {

// NOTE: liburing 2.3's headers predate incremental consumption (kernel 6.12): the flag goes into
// io_uring_buf_reg's `pad` (the kernel's `flags`), the CQE flag has no name yet.
inline constexpr std::uint16_t k_pbuf_ring_inc = 2;   ///< IOU_PBUF_RING_INC
inline constexpr unsigned k_cqe_f_buf_more = 1u << 4; ///< IORING_CQE_F_BUF_MORE
// Bundles (Linux 6.10) predate nothing in liburing 2.3 either: the recv flag has no name there.
inline constexpr unsigned k_recvsend_bundle = 1u << 4; ///< IORING_RECVSEND_BUNDLE (sqe->ioprio)

/// A stream that got ENOBUFS and waits for a buffer to come back.
struct starved_node {
    void (*m_wake)(starved_node*) noexcept = nullptr; // called when a buffer returns
    starved_node* m_prev = nullptr;                   // neighbours while starved
    starved_node* m_next = nullptr;
    bool m_linked = false;                            // in the starved list
    bool m_woken = false; // woken for a buffer; counts in waking() until its next completion
};

/// Reference counted: the buffer_ring object, every live lease and every recv stream hold a
/// reference, so the kernel's view of the ring and the memory stay until the last one goes.
class buffer_group {
public:
    /// mmaps and registers `count` buffers of `size` bytes, asking for incremental consumption
    /// when `incremental` (falling back where it is refused). Throws std::system_error.
    buffer_group(io_context& ctx, unsigned count, std::uint32_t size, int group_id,
                 bool incremental);
    buffer_group(const buffer_group&) = delete;
    buffer_group& operator=(const buffer_group&) = delete;

    void ref() noexcept { ++m_refs; }
    /// Drops a reference; the last one unregisters the ring and unmaps the memory.
    void unref() noexcept {
        if (--m_refs == 0)
            delete this;
    }

    [[nodiscard]] std::uint16_t id() const noexcept { return m_id; }
    [[nodiscard]] unsigned count() const noexcept { return m_count; }
    [[nodiscard]] std::uint32_t buffer_size() const noexcept { return m_size; }
    /// Buffers the kernel can pick right now, as far as the completions seen so far tell.
    [[nodiscard]] unsigned available() const noexcept { return m_available; }
    [[nodiscard]] std::byte* buffer(std::uint16_t bid) const noexcept {
        return m_buffers + std::size_t{bid} * m_size;
    }

    /// True when the kernel consumes buffers incrementally (IOU_PBUF_RING_INC, kernel 6.12): a
    /// completion takes only the bytes it received from its buffer, and the next one continues
    /// in the same buffer, so small reads do not pin a whole buffer each.
    [[nodiscard]] bool is_incremental() const noexcept { return m_incremental; }

    /// Bytes of the ring one stream may hold queued (received, not yet taken by its consumer)
    /// before it stops reading: see buffer_ring::stream_limit().
    [[nodiscard]] std::uint32_t stream_limit() const noexcept { return m_stream_limit; }
    void set_stream_limit(std::uint32_t bytes) noexcept { m_stream_limit = bytes; }
    /// What a completion of `bytes` takes from the ring: the bytes themselves when consumption
    /// is incremental, a whole buffer otherwise (a 1-byte read pins all of it).
    [[nodiscard]] std::uint32_t cost_of(std::uint32_t bytes) const noexcept {
        return m_incremental ? bytes : m_size;
    }

    /// Whether a multishot recv may carry a byte cap (`optlen`, Linux 6.17): true until a capped
    /// recv is refused with EINVAL (before 6.17, and on the epoll backend).
    [[nodiscard]] bool takes_recv_cap() const noexcept { return m_takes_recv_cap; }
    void refuse_recv_cap() noexcept { m_takes_recv_cap = false; }


    /// A completion carried `bytes` of buffer `bid` (IORING_CQE_F_BUFFER); `more` is
    /// IORING_CQE_F_BUF_MORE (the kernel goes on filling that buffer). Returns where the bytes
    /// start in the buffer. With `keep`, the bytes become a piece that release() must return;
    /// without, they are dropped (an orphaned stream). The buffer goes back into the ring once
    /// the kernel is done with it and every piece of it is released.
    std::uint32_t received(std::uint16_t bid, std::uint32_t bytes, bool more, bool keep) noexcept;
    /// A bundle's completion (IORING_RECVSEND_BUNDLE): `bytes` from buffer `first` on, across
    /// the ring entries that follow its own (not consecutive buffer ids once buffers came back
    /// out of order), the last one left partly filled with incremental consumption. Calls
    /// `piece(bid, size, offset)` for each buffer's share, in order, after counting it as
    /// received() does.
    template <class Piece>
    void received_bundle(std::uint16_t first, std::uint32_t bytes, bool keep,
                         Piece&& piece) noexcept {
        for (std::uint32_t position = m_position[first]; bytes > 0; ++position) {
            auto bid = m_ring_bids[position & static_cast<unsigned>(m_mask)];
            std::uint32_t room = m_size - m_offsets[bid];
            std::uint32_t size = bytes < room ? bytes : room;
            bytes -= size;
            // The kernel takes whole buffers unless incremental, where it keeps filling the
            // last one (the completion's IORING_CQE_F_BUF_MORE).
            std::uint32_t at = received(bid, size, m_incremental && size < room, keep);
            if (keep)
                piece(bid, size, at);
        }
    }
    /// Returns a piece of buffer `bid` (a dropped lease, a stream's unclaimed chunk).
    void release(std::uint16_t bid) noexcept;
    /// Wakes the oldest starved stream if a buffer is free that no woken stream was promised:
    /// one buffer feeds one stream (waking them all would send each of them back to the kernel
    /// to find the ring empty again).
    void wake_one() noexcept;
    /// A woken stream had its next completion (or gave up): its promised buffer is free again.
    void woken_done(starved_node* node) noexcept;
    /// Woken streams whose re-armed recv has not completed yet.
    [[nodiscard]] unsigned waking() const noexcept { return m_waking; }
    /// Buffers no woken stream was promised: arming now has a chance.
    [[nodiscard]] bool has_unpromised() const noexcept { return m_available > m_waking; }

    void add_starved(starved_node* node) noexcept;
    void remove_starved(starved_node* node) noexcept;

private:
    ~buffer_group();
    /// Registers the ring as group `m_id` with `flags`; 0 or -errno.
    int register_ring(std::uint16_t flags) noexcept;
    /// Puts buffer `bid` back into the ring (all of it) and wakes one starved stream.
    void recycle(std::uint16_t bid) noexcept;

    io_context* m_ctx;                  // the loop the buffer ring is registered with
    io_uring_buf_ring* m_br = nullptr;  // the ring of buffer descriptors shared with the kernel
    std::size_t m_br_bytes = 0;         // mmap'd size of m_br
    std::byte* m_buffers = nullptr;     // count × size bytes, contiguous
    std::size_t m_buffers_bytes = 0;    // mmap'd size of m_buffers
    unsigned m_count;                   // buffers (a power of two)
    std::uint32_t m_size;               // bytes per buffer
    int m_mask;                         // io_uring_buf_ring_mask(m_count)
    std::uint16_t m_id = 0;             // the buffer group id SQEs name
    unsigned m_available;               // buffers in the ring (not leased, not queued)
    unsigned m_waking = 0;              // woken streams not yet completed (see wake_one)
    int m_refs = 1;                     // owners (the creator holds the first)
    bool m_incremental = false;         // registered with IOU_PBUF_RING_INC
    bool m_takes_recv_cap = true;       // see takes_recv_cap()
    // The ring's entries in the order the kernel takes them, to follow a bundle across them.
    std::unique_ptr<std::uint16_t[]> m_ring_bids; // per position (& m_mask): the buffer put there
    std::unique_ptr<std::uint32_t[]> m_position;  // per buffer: the position it was put at
    std::uint32_t m_tail = 0;                    // positions filled (the ring's tail)
    std::uint32_t m_stream_limit = 0;   // see stream_limit(); set by the constructor
    std::unique_ptr<std::uint32_t[]> m_offsets; // per buffer: bytes the kernel filled so far
    std::unique_ptr<std::uint32_t[]> m_pieces;  // per buffer: pieces not yet released
    std::unique_ptr<bool[]> m_out;              // per buffer: out of the ring (kernel done)
    starved_node* m_starved_head = nullptr; // streams waiting for a buffer, oldest first
    starved_node* m_starved_tail = nullptr;
};

} // namespace corio::net::detail
