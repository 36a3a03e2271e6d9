// SPDX-License-Identifier: MIT
// Range header parsing (see range.hpp).
#include "examples/http/range.hpp"

#include "examples/http/request_parser.hpp"

#include <limits>

namespace corio_http {

namespace {

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

/// Digits only, at least one; saturates at UINT64_MAX.
bool parse_number(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty())
        return false;
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        unsigned d = static_cast<unsigned>(c - '0');
        v = v > (max - d) / 10 ? max : v * 10 + d;
    }
    out = v;
    return true;
}

} // namespace

byte_range parse_range(std::string_view header, std::uint64_t size) noexcept {
    using kind = byte_range::kind;
    header = trim(header);
    if (header.size() < 6 || !iequals(header.substr(0, 6), "bytes="))
        return {};
    std::string_view spec = trim(header.substr(6));
    if (spec.find(',') != std::string_view::npos)
        return {}; // several ranges: the whole body
    std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos)
        return {};
    std::string_view a = trim(spec.substr(0, dash));
    std::string_view b = trim(spec.substr(dash + 1));
    if (a.empty()) {
        std::uint64_t n = 0;
        if (!parse_number(b, n))
            return {};
        if (n == 0 || size == 0)
            return {kind::unsatisfiable};
        return {kind::satisfiable, n >= size ? 0 : size - n, size - 1};
    }
    std::uint64_t first = 0;
    if (!parse_number(a, first))
        return {};
    std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
    if (!b.empty()) {
        if (!parse_number(b, last))
            return {};
        if (last < first)
            return {}; // invalid: ignored
    }
    if (first >= size)
        return {kind::unsatisfiable};
    return {kind::satisfiable, first, last >= size ? size - 1 : last};
}

} // namespace corio_http
