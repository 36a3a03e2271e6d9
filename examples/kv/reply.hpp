// SPDX-License-Identifier: MIT
// RESP2 reply encoding, into a plain std::string (AOF records, INFO text, units, the fuzzer) or
// into a connection's reply_buffer, where long stored values are spliced in by reference instead
// of copied. Both are reused, so a warmed-up connection appends replies without allocating.
#pragma once

#include "value.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

/// Replies for one connection: bytes copied in, with long stored values spliced in between them by
/// reference. A splice holds its value's buffer (shared ownership): the store may change or drop
/// the key while the reply waits or is being sent, and the reply still sends what was read.
struct reply_buffer {
    /// A value that goes out before bytes[at].
    struct splice {
        std::size_t at;                            ///< position in `bytes` it precedes
        std::size_t length;                        ///< its size (kept after `value` is released)
        std::shared_ptr<const std::string> value;  ///< the bytes; released once sent
    };

    std::string bytes;            ///< the copied parts of the replies
    std::vector<splice> splices;  ///< values spliced in, by ascending `at`
    std::size_t spliced_bytes = 0; ///< total length of the splices

    /// The bytes these replies send.
    [[nodiscard]] std::size_t size() const noexcept { return bytes.size() + spliced_bytes; }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }
    void clear() noexcept {
        bytes.clear();
        splices.clear();
        spliced_bytes = 0;
    }
};

/// Appends RESP2 replies to a std::string or a reply_buffer. With a room set (set_room), a reply
/// that does not fit any more is not written: the writer then reports overflowed() and how many
/// bytes it refused, and the caller closes the connection (its output is broken from there on).
class reply_writer {
public:
    explicit reply_writer(std::string& out) noexcept : m_out(&out) {}
    explicit reply_writer(reply_buffer& out) noexcept : m_out(&out.bytes), m_buffer(&out) {}

    /// `+text\r\n` (text must not contain CR or LF).
    void simple(std::string_view text) {
        if (!take(text.size() + 3))
            return;
        m_out->push_back('+');
        m_out->append(text);
        m_out->append("\r\n", 2);
    }
    /// `-text\r\n`; CR and LF inside become spaces, as Redis does.
    void error(std::string_view text) {
        if (!take(text.size() + 3))
            return;
        std::size_t start = m_out->size();
        m_out->push_back('-');
        m_out->append(text);
        for (std::size_t i = start; i < m_out->size(); ++i)
            if ((*m_out)[i] == '\r' || (*m_out)[i] == '\n')
                (*m_out)[i] = ' ';
        m_out->append("\r\n", 2);
    }
    /// `:n\r\n`.
    void integer(std::int64_t n) { header(':', n, 0); }
    /// `$len\r\nbytes\r\n` (binary safe), copied.
    void bulk(std::string_view bytes) {
        if (!header('$', static_cast<std::int64_t>(bytes.size()), bytes.size() + 2))
            return;
        m_out->append(bytes);
        m_out->append("\r\n", 2);
    }
    /// A stored value as a bulk string: spliced in by reference when it is long and the target is
    /// a reply_buffer, copied otherwise.
    void bulk(const value& v) {
        if (!m_buffer || !v.is_shared()) {
            bulk(v.view());
            return;
        }
        if (!header('$', static_cast<std::int64_t>(v.size()), v.size() + 2))
            return;
        m_buffer->splices.push_back({m_out->size(), v.size(), v.share()});
        m_buffer->spliced_bytes += v.size();
        m_out->append("\r\n", 2);
    }
    /// `$-1\r\n`: the null bulk string.
    void null() {
        if (take(5))
            m_out->append("$-1\r\n", 5);
    }
    /// `*n\r\n`: an array of n replies follows.
    void array(std::size_t n) { header('*', static_cast<std::int64_t>(n), 0); }
    /// Bytes that already are complete replies (made elsewhere: on another shard), copied.
    void raw(std::string_view bytes) {
        if (take(bytes.size()))
            m_out->append(bytes);
    }
    /// `+OK\r\n`.
    void ok() {
        if (take(5))
            m_out->append("+OK\r\n", 5);
    }

    /// From now on at most `bytes` more may be written; what does not fit is refused (see the
    /// class comment). Resets overflowed() and refused().
    void set_room(std::size_t bytes) noexcept {
        m_room = bytes;
        m_refused = 0;
    }
    /// No limit (the default).
    void clear_room() noexcept { set_room(std::numeric_limits<std::size_t>::max()); }
    /// True when a reply was refused since set_room().
    [[nodiscard]] bool overflowed() const noexcept { return m_refused > 0; }
    /// Bytes refused since set_room(): a reply that did not fit, and all after it.
    [[nodiscard]] std::size_t refused() const noexcept { return m_refused; }

    [[nodiscard]] std::string& buffer() noexcept { return *m_out; }

private:
    /// Claims `n` bytes of room: false (and counted as refused) once they do not fit.
    bool take(std::size_t n) noexcept {
        if (m_refused > 0 || n > m_room) {
            m_refused += n;
            return false;
        }
        m_room -= n;
        return true;
    }
    /// Writes `type` n CRLF, claiming room for it and for `payload` bytes that follow it.
    bool header(char type, std::int64_t n, std::size_t payload) {
        char text[24];
        text[0] = type;
        auto [end, ec] = std::to_chars(text + 1, text + sizeof text - 2, n);
        (void)ec; // 20 digits and a sign always fit
        end[0] = '\r';
        end[1] = '\n';
        auto length = static_cast<std::size_t>(end + 2 - text);
        if (!take(length + payload))
            return false;
        m_out->append(text, length);
        return true;
    }

    std::string* m_out;                // where bytes go (a std::string, or a reply_buffer's bytes)
    reply_buffer* m_buffer = nullptr;  // the reply_buffer, when writing to one (splices allowed)
    std::size_t m_room = std::numeric_limits<std::size_t>::max(); // bytes that may still be written
    std::size_t m_refused = 0;         // bytes refused since set_room()
};

/// Appends the multibulk encoding of `args` (an AOF record, or a request a client sends).
template <class Range>
void encode_command(std::string& out, const Range& args) {
    reply_writer w(out);
    std::size_t n = 0;
    for (const auto& a : args) {
        (void)a;
        ++n;
    }
    w.array(n);
    for (const auto& a : args)
        w.bulk(std::string_view(a));
}

} // namespace kv
