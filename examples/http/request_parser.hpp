// SPDX-License-Identifier: MIT
// The HTTP/1.x request-head parser of corio-http: incremental (fed the growing unconsumed bytes of
// a connection buffer, it resumes where it stopped), zero-copy (the parsed request is views into
// that buffer), limits as parameters, and every failure a status code. No I/O, no allocation per
// request (the header list reuses its capacity, bounded by max_headers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace corio_http {

/// Bounds on what one request head may hold; the parser answers 414/431/413 past them.
struct parse_limits {
    std::size_t max_request_line = 8192;  ///< bytes of the request line, CRLF excluded (414)
    std::size_t max_headers = 100;        ///< header fields (431)
    std::size_t max_header_bytes = 16384; ///< bytes of all header lines, CRLFs included (431)
    std::uint64_t max_body = 1 << 20;     ///< a Content-Length above this is refused (413)
};

/// The methods the parser tells apart. GET and HEAD are served; the other registered ones are
/// refused with 405 (the resource exists but only allows GET, HEAD); any other token gets 501.
enum class method : unsigned char { get, head };

/// One header field: name and value as they appear (value without surrounding whitespace).
struct header_field {
    std::string_view name;
    std::string_view value;
};

/// A parsed request head. Every view points into the buffer given to feed(): valid while those
/// bytes stay where they are.
struct request {
    corio_http::method method = method::get;
    std::string_view target; ///< the request target as sent (origin-form path + query)
    int version_minor = 1;   ///< 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.x, x > 1)
    std::span<const header_field> headers; ///< every field, in order
    std::string_view host;                 ///< the Host value ("" when absent, HTTP/1.0 only)
    std::string_view range;                ///< the Range value, "" when absent
    std::string_view if_range;             ///< the If-Range value, "" when absent
    std::string_view if_modified_since;    ///< the If-Modified-Since value, "" when absent
    std::uint64_t content_length = 0;      ///< body bytes that follow the head (to be discarded)
    bool keep_alive = true;                ///< the connection may carry another request afterwards
    std::size_t head_size = 0;             ///< bytes of the head, final CRLF included
};

/// What feed() found.
enum class parse_status : unsigned char {
    complete,  ///< a whole head: request() is valid
    need_more, ///< the head is not complete yet; feed again with more bytes
    error,     ///< the stream is malformed or over a limit: error_status() says how to answer
};

/// Parses one request head at a time. Usage: feed(bytes) with all unconsumed bytes of the
/// connection (the same start each time, more bytes at the end), until it says complete or
/// error; after complete, skip request().head_size bytes (and the body) and call reset().
///
/// Strictness (documented choices): lines end with CRLF (a bare LF or CR is 400); up to 4
/// empty lines before a request line are skipped; single spaces in the request line; the target
/// must be origin-form ("/..."), absolute-form ("http://host/...") is reduced to its path; HTTP
/// versions other than 1.x are 505; obsolete line folding, whitespace before a colon, control
/// characters and an HTTP/1.1 request without exactly one Host are 400; Transfer-Encoding on a
/// request is 501 (no request bodies are needed here, and refusing it rules out smuggling);
/// Content-Length must be digits, repeated only with the same value.
///
/// Invariant (checked by the fuzzer): feeding a byte stream in any number of pieces gives the
/// same outcome as feeding it at once, because every check is made when its line is complete,
/// and an incomplete line is only refused when its complete form would be refused too.
class request_parser {
public:
    explicit request_parser(parse_limits limits = {});

    /// Parses `bytes`, which start at the first byte of this request and extend the bytes given
    /// to the previous call (if any) since the last reset().
    parse_status feed(std::string_view bytes);

    /// The request after feed() returned complete.
    [[nodiscard]] const request& parsed() const noexcept { return m_request; }
    /// The status to answer after feed() returned error: 400, 405, 413, 414, 431, 501 or 505.
    [[nodiscard]] int error_status() const noexcept { return m_error; }
    /// True when no byte of a request has been seen since the last reset() (for idle timeouts).
    [[nodiscard]] bool is_fresh() const noexcept { return m_pos == 0; }
    /// Forgets the current request; the next feed() starts a new one.
    void reset() noexcept;

    [[nodiscard]] const parse_limits& limits() const noexcept { return m_limits; }

private:
    enum class phase : unsigned char { request_line, headers, done };
    struct field_offsets {
        std::uint32_t name_at, name_len, value_at, value_len;
    };

    parse_status fail(int status) noexcept;
    bool parse_request_line(std::string_view bytes, std::size_t at, std::size_t len);
    bool parse_header_line(std::string_view bytes, std::size_t at, std::size_t len);
    parse_status finish(std::string_view bytes);

    parse_limits m_limits;               // the bounds this parser enforces
    phase m_phase = phase::request_line; // what the next complete line is
    std::size_t m_pos = 0;               // bytes consumed by complete lines so far
    std::size_t m_empty_lines = 0;       // empty lines skipped before the request line
    std::size_t m_header_bytes = 0;      // bytes of the header lines so far
    std::uint32_t m_target_at = 0;       // the target's offset and length in the bytes
    std::uint32_t m_target_len = 0;
    std::vector<field_offsets> m_fields; // the header fields so far (capacity reused)
    std::vector<header_field> m_views;   // the same as views, built on completion
    request m_request;                   // the result (valid after complete)
    int m_error = 0;                     // the status after an error
};

/// The reason phrase of a status code ("Not Found"), "Unknown" for codes it does not know.
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

/// True when `a` and `b` are equal ignoring ASCII case.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

} // namespace corio_http
