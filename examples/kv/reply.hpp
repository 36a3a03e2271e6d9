// SPDX-License-Identifier: MIT
// RESP2 reply encoding into a connection's output buffer (a std::string that is reused, so a
// warmed-up connection appends replies without allocating).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace kv {

/// Appends RESP2 replies to `out`.
class reply_writer {
public:
    explicit reply_writer(std::string& out) noexcept : m_out(&out) {}

    /// `+text\r\n` (text must not contain CR or LF).
    void simple(std::string_view text) {
        m_out->push_back('+');
        m_out->append(text);
        m_out->append("\r\n", 2);
    }
    /// `-text\r\n`; CR and LF inside become spaces, as Redis does.
    void error(std::string_view text) {
        std::size_t start = m_out->size();
        m_out->push_back('-');
        m_out->append(text);
        for (std::size_t i = start; i < m_out->size(); ++i)
            if ((*m_out)[i] == '\r' || (*m_out)[i] == '\n')
                (*m_out)[i] = ' ';
        m_out->append("\r\n", 2);
    }
    /// `:n\r\n`.
    void integer(std::int64_t n) { header(':', n); }
    /// `$len\r\nbytes\r\n` (binary safe).
    void bulk(std::string_view bytes) {
        header('$', static_cast<std::int64_t>(bytes.size()));
        m_out->append(bytes);
        m_out->append("\r\n", 2);
    }
    /// `$-1\r\n`: the null bulk string.
    void null() { m_out->append("$-1\r\n", 5); }
    /// `*n\r\n`: an array of n replies follows.
    void array(std::size_t n) { header('*', static_cast<std::int64_t>(n)); }
    /// `+OK\r\n`.
    void ok() { m_out->append("+OK\r\n", 5); }

    [[nodiscard]] std::string& buffer() noexcept { return *m_out; }

private:
    void header(char type, std::int64_t n) {
        char text[24];
        text[0] = type;
        auto [end, ec] = std::to_chars(text + 1, text + sizeof text - 2, n);
        (void)ec; // 20 digits and a sign always fit
        end[0] = '\r';
        end[1] = '\n';
        m_out->append(text, static_cast<std::size_t>(end + 2 - text));
    }

    std::string* m_out; // the connection's output buffer
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
