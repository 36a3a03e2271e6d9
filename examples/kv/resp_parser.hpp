// SPDX-License-Identifier: MIT
// The RESP2 request parser of examples/kv: multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
// (`GET k\r\n`, with Redis's quoting) commands, parsed incrementally out of a connection's input
// buffer into views of that buffer. Nothing the client merely declares is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

/// Bounds on what one request may declare. Exceeding one is a protocol error (Redis's texts).
struct parser_limits {
    std::size_t max_bulk_length = 512u << 20; ///< one argument's bytes (Redis: proto-max-bulk-len)
    std::size_t max_arguments = 1u << 20;     ///< arguments of one multibulk command
    std::size_t max_inline_length = 64u << 10; ///< an inline line, or a `*N`/`$N` header line
};

/// What one parse() call found.
enum class parse_status : unsigned char {
    command,   ///< a complete command: its arguments are in args(); consumed() bytes belong to it
    empty,     ///< consumed() bytes held nothing to run (`*0\r\n`, `*-1\r\n`, a blank line)
    need_more, ///< the command is not complete yet; call again with the same bytes and more
    error,     ///< malformed: error_text() has Redis's message; the connection must be closed
};

/// An incremental parser for one connection. Call parse() with the unconsumed input (which must
/// start where the previous complete command ended and may only grow between calls that returned
/// need_more; the buffer may move). The parser keeps offsets, never pointers, between calls, so
/// a long bulk arriving in pieces is scanned once.
class resp_parser {
public:
    explicit resp_parser(parser_limits limits = {}) : m_limits(limits) {}

    /// Parses one request from the front of `input` (see parse_status).
    [[nodiscard]] parse_status parse(std::string_view input);

    /// The arguments of the command just parsed: views into the `input` given to parse(), valid
    /// until that buffer changes.
    [[nodiscard]] const std::vector<std::string_view>& args() const noexcept { return m_args; }

    /// Bytes of input the last command/empty/error result covers (0 after need_more).
    [[nodiscard]] std::size_t consumed() const noexcept { return m_consumed; }

    /// Redis's message for the last error, e.g. "Protocol error: invalid bulk length" (the reply is
    /// "-ERR " + this).
    [[nodiscard]] std::string_view error_text() const noexcept { return m_error; }

    /// Forgets a half-parsed command (the caller dropped its input).
    void reset() noexcept;

    [[nodiscard]] const parser_limits& limits() const noexcept { return m_limits; }

private:
    struct span {
        std::size_t offset; // from the start of the command
        std::size_t length;
    };

    parse_status parse_multibulk(std::string_view input);
    parse_status parse_inline(std::string_view input);
    parse_status fail(std::string_view text);

    parser_limits m_limits;             // what a request may declare
    std::vector<std::string_view> m_args; // the last command's arguments
    std::vector<span> m_spans;          // arguments found so far of the command in progress
    std::vector<std::string> m_inline_args; // unescaped inline arguments (quotes, \x..)
    std::size_t m_pos = 0;              // bytes of the command in progress already scanned
    std::size_t m_expected = 0;         // arguments the multibulk header declared
    std::size_t m_bulk_length = static_cast<std::size_t>(-1); // the bulk waited for, or npos
    bool m_in_command = false;          // a multibulk header was read; arguments follow
    std::size_t m_consumed = 0;         // see consumed()
    std::string_view m_error;           // see error_text()
    std::string m_error_buffer;         // an error text built from the input (expected '$'...)
};

/// Splits an inline line like Redis's sdssplitargs: blanks separate arguments; "double quotes"
/// take \n \r \t \b \a \\ \" and \xHH escapes; 'single quotes' take \'. A closing quote must be
/// followed by a blank or the end. False on unbalanced quotes.
[[nodiscard]] bool split_inline(std::string_view line, std::vector<std::string>& out);

/// Parses a whole decimal int64 the way Redis's string2ll does (no blanks, no '+', no leading
/// zeros, "-0" refused). False when `text` is not exactly such a number.
[[nodiscard]] bool parse_int64(std::string_view text, std::int64_t& out) noexcept;

} // namespace kv
