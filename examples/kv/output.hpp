// SPDX-License-Identifier: MIT
// The replies of one corio-kv connection on their way out: commands append to an open block while
// sealed blocks are being sent, so replies stream out while later commands run, a send in flight
// never sees its bytes move, and memory goes back block by block as the peer reads. Partial sends
// are the normal case: the cursor may stop anywhere.
#pragma once

#include "reply.hpp"

#include <sys/uio.h>

#include <cstddef>
#include <list>
#include <span>

namespace kv {

/// Blocks of replies: the open one that commands append to (filling()), and sealed ones waiting
/// to be sent, oldest first. gather() hands out the unsent bytes of the sealed blocks as iovecs
/// (sealing the open block first when it may go); consume() moves past what was sent and frees
/// each block once it is all sent. Nothing handed out by gather() changes or moves until
/// consume()/clear(): appends go to the open block, and blocks are list nodes that never move.
class output_queue {
public:
    /// The most iovecs one gather() hands out.
    static constexpr std::size_t k_max_iov = 16;
    /// An open block is sealed once it holds this much (appended() does it), so a peer reading
    /// a long stream of replies frees them block by block.
    static constexpr std::size_t k_block = 16 * 1024;

    /// A queue that keeps `*total` (when given) up to date with held(): the sum of many queues.
    explicit output_queue(std::size_t* total = nullptr) noexcept : m_total(total) {}
    ~output_queue() { clear(); }
    output_queue(const output_queue&) = delete;
    output_queue& operator=(const output_queue&) = delete;

    /// Where replies are appended (a stable object: a reply_writer may keep pointing at it).
    [[nodiscard]] reply_buffer& filling() noexcept { return m_fill; }

    /// Call after appending through filling(): seals the open block once it is full and
    /// updates the shared total.
    void appended();

    /// Bytes produced and not sent yet.
    [[nodiscard]] std::size_t pending() const noexcept {
        return m_sealed_size - m_sent + m_fill.size();
    }
    /// Memory the pending replies hold: buffer capacities (sent bytes of a block included until
    /// the block is done), plus the spliced values at their full size (counted as if only the
    /// replies kept them alive, which is the case once the store has changed them). An idle
    /// queue holds 0 here, and keeps at most 2 × k_block of storage for reuse.
    [[nodiscard]] std::size_t held() const noexcept {
        return m_sealed_held + (m_fill.empty() ? 0 : held_by(m_fill));
    }

    /// Keeps what is appended from now on from being sent until release() (replies that must
    /// wait, e.g. for their AOF record to reach the disk).
    void hold() noexcept { m_held = true; }
    /// Lets everything appended so far be sent.
    void release();

    /// True when gather() has something to hand out.
    [[nodiscard]] bool has_sendable() const noexcept {
        return m_sendable > 0 || (!m_held && !m_fill.empty());
    }

    /// The next bytes to send, as up to `space.size()` iovecs written into `space` (empty when
    /// nothing can be sent now). They stay valid and unchanged until the next consume()/clear().
    [[nodiscard]] std::span<const iovec> gather(std::span<iovec> space);

    /// `n` bytes of what gather() handed out were sent (n may be anything up to their total).
    void consume(std::size_t n);

    /// Drops everything (no send may be in flight); returns how many bytes were pending.
    std::size_t clear() noexcept;

private:
    static std::size_t held_by(const reply_buffer& b) noexcept {
        return b.bytes.capacity() + b.spliced_bytes + b.splices.capacity() * sizeof(b.splices[0]);
    }
    /// Moves the open block's content to the back of the sealed ones.
    void seal();
    /// The front block is all sent: frees it (or keeps its storage as the spare).
    void finish_front() noexcept;
    /// Brings *m_total up to date.
    void sync() noexcept;

    std::list<reply_buffer> m_blocks; // sealed blocks, oldest (being sent) first
    std::list<reply_buffer> m_spare;  // at most one cleared small block, reused by seal()
    reply_buffer m_fill;              // the open block
    std::size_t m_sendable = 0;       // sealed blocks (from the front) that may be sent
    std::size_t m_sealed_size = 0;    // bytes in the sealed blocks
    std::size_t m_sealed_held = 0;    // held_by() of the sealed blocks, as sealed
    std::size_t m_sent = 0;           // bytes of the front block already sent
    std::size_t m_piece = 0;          // the cursor in the front block: piece 2k is its k-th run
                                      // of copied bytes, 2k+1 its splice k
    std::size_t m_piece_done = 0;     // bytes of that piece already sent
    bool m_held = false;              // see hold()
    std::size_t* m_total = nullptr;   // the shared sum of held(), or null
    std::size_t m_accounted = 0;      // what this queue has added to *m_total
};

} // namespace kv
