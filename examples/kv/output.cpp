// SPDX-License-Identifier: MIT
// A connection's outgoing replies (see output.hpp).
#include "output.hpp"

#include <utility>

namespace kv {

namespace {

constexpr std::size_t k_spare_splices = 64; // a spare block keeps at most this many splice slots

/// The piece `index` of `b` (2k: the k-th run of copied bytes, 2k+1: splice k): its size.
std::size_t piece_size(const reply_buffer& b, std::size_t index) noexcept {
    const std::vector<reply_buffer::splice>& s = b.splices;
    std::size_t k = index / 2;
    if (index % 2 == 1)
        return s[k].length;
    std::size_t begin = k == 0 ? 0 : s[k - 1].at;
    std::size_t end = k < s.size() ? s[k].at : b.bytes.size();
    return end - begin;
}

/// Where piece `index` of `b` starts (a splice's value must not have been released).
const char* piece_data(const reply_buffer& b, std::size_t index) noexcept {
    std::size_t k = index / 2;
    if (index % 2 == 1)
        return b.splices[k].value->data();
    return b.bytes.data() + (k == 0 ? 0 : b.splices[k - 1].at);
}

std::size_t piece_count(const reply_buffer& b) noexcept {
    return 2 * b.splices.size() + 1;
}

} // namespace

void output_queue::sync() noexcept {
    std::size_t now = held();
    if (m_total)
        *m_total = *m_total - m_accounted + now;
    m_accounted = now;
}

void output_queue::seal() {
    if (m_spare.empty())
        m_spare.emplace_back();
    std::swap(m_spare.front(), m_fill); // the open block takes the spare's storage
    m_sealed_size += m_spare.front().size();
    m_sealed_held += held_by(m_spare.front());
    m_blocks.splice(m_blocks.end(), m_spare, m_spare.begin());
    if (!m_held)
        m_sendable = m_blocks.size();
}

void output_queue::appended() {
    if (m_fill.size() >= k_block)
        seal();
    sync();
}

void output_queue::release() {
    m_held = false;
    if (!m_fill.empty())
        seal();
    m_sendable = m_blocks.size();
    sync();
}

void output_queue::finish_front() noexcept {
    reply_buffer& b = m_blocks.front();
    m_sealed_size -= b.size();
    m_sealed_held -= held_by(b);
    --m_sendable;
    m_sent = 0;
    m_piece = 0;
    m_piece_done = 0;
    b.clear();
    bool small = b.bytes.capacity() <= k_block && b.splices.capacity() <= k_spare_splices;
    if (m_spare.empty() && small)
        m_spare.splice(m_spare.end(), m_blocks, m_blocks.begin());
    else
        m_blocks.pop_front();
}

std::span<const iovec> output_queue::gather(std::span<iovec> space) {
    if (!m_held && !m_fill.empty()) {
        seal(); // everything produced so far goes in this send if it fits
        sync();
    }
    std::size_t n = 0;
    std::size_t blocks = 0;
    for (auto it = m_blocks.begin(); blocks < m_sendable && n < space.size(); ++it, ++blocks) {
        const reply_buffer& b = *it;
        std::size_t first = blocks == 0 ? m_piece : 0;
        std::size_t skip = blocks == 0 ? m_piece_done : 0;
        for (std::size_t i = first; i < piece_count(b) && n < space.size(); ++i) {
            std::size_t size = piece_size(b, i);
            if (size > skip)
                space[n++] = iovec{const_cast<char*>(piece_data(b, i) + skip), size - skip};
            skip = 0;
        }
    }
    return space.first(n);
}

void output_queue::consume(std::size_t n) {
    while (n > 0) {
        reply_buffer& b = m_blocks.front();
        std::size_t left = piece_size(b, m_piece) - m_piece_done;
        if (n < left) {
            m_piece_done += n;
            m_sent += n;
            break;
        }
        n -= left;
        m_sent += left;
        if (m_piece % 2 == 1)
            b.splices[m_piece / 2].value.reset(); // sent: the store may free this version now
        ++m_piece;
        m_piece_done = 0;
        if (m_sent == b.size())
            finish_front();
    }
    sync();
}

std::size_t output_queue::clear() noexcept {
    std::size_t dropped = pending();
    m_blocks.clear();
    m_fill.clear();
    if (m_fill.bytes.capacity() > k_block)
        std::string().swap(m_fill.bytes);
    if (m_fill.splices.capacity() > k_spare_splices)
        std::vector<reply_buffer::splice>().swap(m_fill.splices);
    m_sendable = 0;
    m_sealed_size = 0;
    m_sealed_held = 0;
    m_sent = 0;
    m_piece = 0;
    m_piece_done = 0;
    m_held = false;
    sync();
    return dropped;
}

} // namespace kv
