// SPDX-License-Identifier: MIT
// The Range request header (RFC 9110 §14): one byte range per request is honoured.
#pragma once

#include <cstdint>
#include <string_view>

namespace corio_http {

/// What a Range header asks of a representation of `size` bytes.
struct byte_range {
    enum class kind : unsigned char {
        none,          ///< no usable Range (absent, not bytes, bad syntax, several ranges): 200
        satisfiable,   ///< bytes [first, last] (both inclusive, within the size): 206
        unsatisfiable, ///< nothing of it lies within the size: 416
    };
    kind what = kind::none;
    std::uint64_t first = 0; ///< first byte (satisfiable only)
    std::uint64_t last = 0;  ///< last byte, inclusive (satisfiable only)

    [[nodiscard]] std::uint64_t length() const noexcept { return last - first + 1; }
};

/// Interprets `header` (the Range value, "" when absent) for a body of `size` bytes.
/// Accepted: "bytes=a-b" (b clamped to size-1), "bytes=a-", "bytes=-n" (the last n bytes; all of
/// them when n >= size). A first byte at or past the end, "-0", or any range of an empty body is
/// unsatisfiable. A header with several ranges is answered with the whole body (200): allowed by
/// the RFC, and it spares multipart/byteranges. Malformed headers (a > b, no digits, another
/// unit) are ignored as the RFC permits. Numbers too large for 64 bits saturate.
[[nodiscard]] byte_range parse_range(std::string_view header, std::uint64_t size) noexcept;

} // namespace corio_http
