// SPDX-License-Identifier: MIT
// The RESP2 request parser (see resp_parser.hpp). Error texts and number rules follow Redis 7's
// networking.c (processInlineBuffer, processMultibulkBuffer) and util.c (string2ll).
#include "resp_parser.hpp"

#include <climits>
#include <cstring>

namespace kv {

namespace {

constexpr std::size_t npos = static_cast<std::size_t>(-1);

bool is_blank(char c) noexcept {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0' || c == '\v' || c == '\f';
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// Where "\r" is in `input` from `from`, or npos.
std::size_t find_cr(std::string_view input, std::size_t from) noexcept {
    if (from >= input.size())
        return npos;
    const void* cr = std::memchr(input.data() + from, '\r', input.size() - from);
    return cr ? static_cast<std::size_t>(static_cast<const char*>(cr) - input.data()) : npos;
}

} // namespace

bool parse_int64(std::string_view text, std::int64_t& out) noexcept {
    if (text.empty() || text.size() > 20)
        return false;
    if (text.size() == 1 && text[0] == '0') {
        out = 0;
        return true;
    }
    std::size_t i = 0;
    bool negative = false;
    if (text[0] == '-') {
        negative = true;
        if (++i == text.size())
            return false;
    }
    if (text[i] < '1' || text[i] > '9')
        return false;
    std::uint64_t v = 0;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (c < '0' || c > '9')
            return false;
        auto digit = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (negative) {
        if (v > static_cast<std::uint64_t>(INT64_MAX) + 1)
            return false;
        out = static_cast<std::int64_t>(0 - v);
    } else {
        if (v > static_cast<std::uint64_t>(INT64_MAX))
            return false;
        out = static_cast<std::int64_t>(v);
    }
    return true;
}

bool split_inline(std::string_view line, std::vector<std::string>& out) {
    out.clear();
    std::size_t i = 0;
    const std::size_t n = line.size();
    for (;;) {
        while (i < n && is_blank(line[i]))
            ++i;
        if (i == n)
            return true;
        std::string current;
        bool in_double = false;
        bool in_single = false;
        bool done = false;
        while (!done) {
            if (in_double) {
                if (i == n)
                    return false; // unterminated quotes
                char c = line[i];
                if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
                    hex_value(line[i + 3]) >= 0) {
                    current.push_back(
                        static_cast<char>(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
                    i += 3;
                } else if (c == '\\' && i + 1 < n) {
                    ++i;
                    switch (line[i]) {
                    case 'n': current.push_back('\n'); break;
                    case 'r': current.push_back('\r'); break;
                    case 't': current.push_back('\t'); break;
                    case 'b': current.push_back('\b'); break;
                    case 'a': current.push_back('\a'); break;
                    default: current.push_back(line[i]); break;
                    }
                } else if (c == '"') {
                    // The closing quote must be followed by a blank or the end.
                    if (i + 1 < n && !is_blank(line[i + 1]))
                        return false;
                    done = true;
                } else {
                    current.push_back(c);
                }
            } else if (in_single) {
                if (i == n)
                    return false;
                char c = line[i];
                if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
                    ++i;
                    current.push_back('\'');
                } else if (c == '\'') {
                    if (i + 1 < n && !is_blank(line[i + 1]))
                        return false;
                    done = true;
                } else {
                    current.push_back(c);
                }
            } else {
                if (i == n)
                    break;
                char c = line[i];
                if (is_blank(c)) {
                    done = true;
                } else if (c == '"') {
                    in_double = true;
                } else if (c == '\'') {
                    in_single = true;
                } else {
                    current.push_back(c);
                }
            }
            if (i < n)
                ++i;
        }
        out.push_back(std::move(current));
    }
}

void resp_parser::reset() noexcept {
    m_spans.clear();
    m_pos = 0;
    m_expected = 0;
    m_bulk_length = npos;
    m_in_command = false;
}

parse_status resp_parser::fail(std::string_view text) {
    m_error = text;
    m_consumed = 0;
    reset();
    return parse_status::error;
}

parse_status resp_parser::parse(std::string_view input) {
    m_consumed = 0;
    if (input.empty())
        return parse_status::need_more;
    if (m_in_command || input[0] == '*')
        return parse_multibulk(input);
    return parse_inline(input);
}

parse_status resp_parser::parse_inline(std::string_view input) {
    std::size_t from = m_pos;
    const void* nl = std::memchr(input.data() + from, '\n', input.size() - from);
    if (!nl) {
        if (input.size() > m_limits.max_inline_length)
            return fail("Protocol error: too big inline request");
        m_pos = input.size(); // scanned: the next call starts at the new bytes
        return parse_status::need_more;
    }
    std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - input.data());
    m_pos = 0;
    if (end > m_limits.max_inline_length)
        return fail("Protocol error: too big inline request");
    std::string_view line = input.substr(0, end);
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    if (!split_inline(line, m_inline_args))
        return fail("Protocol error: unbalanced quotes in request");
    m_consumed = end + 1;
    if (m_inline_args.empty())
        return parse_status::empty;
    m_args.clear();
    for (const std::string& a : m_inline_args)
        m_args.emplace_back(a);
    return parse_status::command;
}

parse_status resp_parser::parse_multibulk(std::string_view input) {
    if (!m_in_command) {
        std::size_t cr = find_cr(input, 1);
        if (cr == npos) {
            if (input.size() > m_limits.max_inline_length)
                return fail("Protocol error: too big mbulk count string");
            return parse_status::need_more;
        }
        if (cr + 1 >= input.size())
            return parse_status::need_more; // the '\n' is still to come
        std::int64_t count = 0;
        if (input[cr + 1] != '\n' || !parse_int64(input.substr(1, cr - 1), count) ||
            count > INT_MAX || (count > 0 && static_cast<std::uint64_t>(count) >
                                                 m_limits.max_arguments))
            return fail("Protocol error: invalid multibulk length");
        if (count <= 0) {
            m_consumed = cr + 2;
            reset();
            return parse_status::empty;
        }
        m_in_command = true;
        m_expected = static_cast<std::size_t>(count);
        m_pos = cr + 2;
        m_bulk_length = npos;
        m_spans.clear();
    }
    while (m_spans.size() < m_expected) {
        if (m_bulk_length == npos) {
            if (m_pos >= input.size())
                return parse_status::need_more;
            if (input[m_pos] != '$') {
                m_error_buffer = "Protocol error: expected '$', got ' '";
                char got = input[m_pos];
                m_error_buffer[m_error_buffer.size() - 2] = (got == '\r' || got == '\n') ? ' ' : got;
                return fail(m_error_buffer);
            }
            std::size_t cr = find_cr(input, m_pos + 1);
            if (cr == npos) {
                if (input.size() - m_pos > m_limits.max_inline_length)
                    return fail("Protocol error: too big bulk count string");
                return parse_status::need_more;
            }
            if (cr + 1 >= input.size())
                return parse_status::need_more;
            std::int64_t length = 0;
            if (input[cr + 1] != '\n' || !parse_int64(input.substr(m_pos + 1, cr - m_pos - 1),
                                                      length) ||
                length < 0 || static_cast<std::uint64_t>(length) > m_limits.max_bulk_length)
                return fail("Protocol error: invalid bulk length");
            m_bulk_length = static_cast<std::size_t>(length);
            m_pos = cr + 2;
        }
        if (input.size() - m_pos < m_bulk_length + 2)
            return parse_status::need_more;
        if (input[m_pos + m_bulk_length] != '\r' || input[m_pos + m_bulk_length + 1] != '\n')
            return fail("Protocol error: expected CRLF after bulk data");
        m_spans.push_back({m_pos, m_bulk_length});
        m_pos += m_bulk_length + 2;
        m_bulk_length = npos;
    }
    m_args.clear();
    for (const span& s : m_spans)
        m_args.push_back(input.substr(s.offset, s.length));
    m_consumed = m_pos;
    reset();
    return parse_status::command;
}

} // namespace kv
