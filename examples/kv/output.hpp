// SPDX-License-Identifier: MIT
// The replies of one corio-kv connection on their way out: commands append to one block while the
// other is being sent, so replies stream out while later commands run, and a send in flight never
// sees its bytes move. Partial sends are the normal case: the cursor may stop anywhere.
#pragma once

#include "reply.hpp"

#include <sys/uio.h>

#include <cstddef>
#include <span>

namespace kv {

/// Two reply_buffers: the one commands append to (filling()) and the one being sent. gather()
/// hands out the unsent part of the latter as iovecs; once it is all sent, the filled block takes
/// its place (unless held). Nothing handed out by gather() changes or moves until consume() or
/// clear(): appends go to the other block.
class output_queue {
public:
    /// The most iovecs one gather() hands out.
    static constexpr std::size_t k_max_iov = 16;

    output_queue() = default;
    output_queue(const output_queue&) = delete;
    output_queue& operator=(const output_queue&) = delete;

    /// Where replies are appended (a stable object: a reply_writer may keep pointing at it).
    [[nodiscard]] reply_buffer& filling() noexcept { return m_fill; }

    /// Bytes produced and not sent yet (both blocks).
    [[nodiscard]] std::size_t pending() const noexcept {
        return m_send.size() - m_sent + m_fill.size();
    }

    /// Keeps the filled block from being sent until release() (replies that must wait, e.g. for
    /// their AOF record to reach the disk).
    void hold() noexcept { m_held = true; }
    /// Lets the filled block be sent again.
    void release() noexcept { m_held = false; }

    /// True when gather() has something to hand out.
    [[nodiscard]] bool has_sendable() const noexcept {
        return m_sent < m_send.size() || (!m_held && !m_fill.empty());
    }

    /// The next bytes to send, as up to `space.size()` iovecs written into `space` (empty when
    /// nothing can be sent now). They stay valid and unchanged until the next consume()/clear().
    [[nodiscard]] std::span<const iovec> gather(std::span<iovec> space);

    /// `n` bytes of what gather() handed out were sent (n may be anything up to their total).
    void consume(std::size_t n);

    /// Drops everything (the connection is going away); returns how many bytes were pending.
    std::size_t clear() noexcept;

private:
    void promote();
    /// The piece the cursor is in: where it starts and how long it is.
    [[nodiscard]] std::span<const char> piece(std::size_t index) const noexcept;
    [[nodiscard]] std::size_t piece_count() const noexcept {
        return 2 * m_send.splices.size() + 1;
    }

    reply_buffer m_send;          // being sent: read-only until it is all sent
    reply_buffer m_fill;          // being appended to
    std::size_t m_sent = 0;       // bytes of m_send already sent
    std::size_t m_piece = 0;      // the cursor: piece 2k is the k-th run of bytes, 2k+1 splice k
    std::size_t m_piece_done = 0; // bytes of that piece already sent
    bool m_held = false;          // see hold()
};

} // namespace kv
