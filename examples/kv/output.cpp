// SPDX-License-Identifier: MIT
// A connection's outgoing replies (see output.hpp).
#include "output.hpp"

#include <utility>

namespace kv {

namespace {

constexpr std::size_t k_keep_bytes = 1u << 20; // a block keeps at most this much capacity when idle
constexpr std::size_t k_keep_splices = 1024;   // and this many splice slots

void trim(reply_buffer& b) {
    if (b.bytes.capacity() > k_keep_bytes)
        std::string().swap(b.bytes); // one big reply must not pin memory per idle client
    if (b.splices.capacity() > k_keep_splices)
        std::vector<reply_buffer::splice>().swap(b.splices);
}

} // namespace

std::span<const char> output_queue::piece(std::size_t index) const noexcept {
    const std::vector<reply_buffer::splice>& s = m_send.splices;
    std::size_t k = index / 2;
    if (index % 2 == 1)
        return {s[k].value->data(), s[k].length};
    std::size_t begin = k == 0 ? 0 : s[k - 1].at;
    std::size_t end = k < s.size() ? s[k].at : m_send.bytes.size();
    return {m_send.bytes.data() + begin, end - begin};
}

void output_queue::promote() {
    // m_send is all sent and cleared: the filled block goes out next, its storage is reused.
    std::swap(m_send, m_fill);
    m_sent = 0;
    m_piece = 0;
    m_piece_done = 0;
}

std::span<const iovec> output_queue::gather(std::span<iovec> space) {
    if (m_sent == m_send.size()) {
        if (m_held || m_fill.empty())
            return {};
        promote();
    }
    std::size_t n = 0;
    std::size_t skip = m_piece_done;
    for (std::size_t i = m_piece; i < piece_count() && n < space.size(); ++i) {
        std::span<const char> p = piece(i);
        if (p.size() > skip)
            space[n++] = iovec{const_cast<char*>(p.data() + skip), p.size() - skip};
        skip = 0;
    }
    return space.first(n);
}

void output_queue::consume(std::size_t n) {
    m_sent += n;
    const std::vector<reply_buffer::splice>& s = m_send.splices;
    while (n > 0) {
        std::size_t k = m_piece / 2;
        std::size_t size = m_piece % 2 == 1 ? s[k].length
                                            : (k < s.size() ? s[k].at : m_send.bytes.size()) -
                                                  (k == 0 ? 0 : s[k - 1].at);
        std::size_t left = size - m_piece_done;
        if (n < left) {
            m_piece_done += n;
            break;
        }
        n -= left;
        if (m_piece % 2 == 1)
            m_send.splices[k].value.reset(); // sent: the store may free this version now
        ++m_piece;
        m_piece_done = 0;
    }
    if (m_sent == m_send.size()) {
        m_send.clear();
        trim(m_send);
        m_sent = 0;
        m_piece = 0;
        m_piece_done = 0;
    }
}

std::size_t output_queue::clear() noexcept {
    std::size_t dropped = pending();
    m_send.clear();
    m_fill.clear();
    trim(m_send);
    trim(m_fill);
    m_sent = 0;
    m_piece = 0;
    m_piece_done = 0;
    m_held = false;
    return dropped;
}

} // namespace kv
