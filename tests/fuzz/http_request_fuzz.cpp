// SPDX-License-Identifier: MIT
// libFuzzer target of corio-http's request parser. The input is the byte stream (so corpus files
// are plain requests); its last byte also picks the limits and the split sizes. Invariants: parsing
// the stream whole and in random pieces gives the same outcome; a complete request's views lie
// inside the input, head_size is within it, limits hold; errors carry one of the documented
// statuses.
#include "examples/http/path_jail.hpp"
#include "examples/http/range.hpp"
#include "examples/http/request_parser.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace corio_http;

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() &&
                            part.data() + part.size() <= whole.data() + whole.size());
}

void check_jail(std::string_view target) {
    decoded_target d = decode_target(target);
    if (d.status != 0) {
        check(d.status == 400);
        return;
    }
    std::string_view p = d.path;
    check(p.find('\0') == std::string_view::npos && p.find('\\') == std::string_view::npos);
    if (p.empty())
        return;
    check(p.front() != '/' && p.back() != '/');
    std::size_t start = 0;
    for (;;) {
        std::size_t slash = p.find('/', start);
        std::string_view seg =
            p.substr(start, slash == std::string_view::npos ? p.npos : slash - start);
        check(!seg.empty() && seg != "." && seg != "..");
        if (slash == std::string_view::npos)
            break;
        start = slash + 1;
    }
}

struct outcome {
    parse_status status;
    int error;
    std::size_t head_size;
};

outcome run_whole(request_parser& p, std::string_view text) {
    parse_status s = p.feed(text);
    return {s, s == parse_status::error ? p.error_status() : 0,
            s == parse_status::complete ? p.parsed().head_size : 0};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    unsigned seed = data[size - 1];
    std::string_view text(reinterpret_cast<const char*>(data), size);
    parse_limits limits;
    limits.max_request_line = (seed & 1) ? 64 : 4096;
    limits.max_headers = (seed & 2) ? 4 : 100;
    limits.max_header_bytes = (seed & 4) ? 128 : 8192;
    limits.max_body = (seed & 8) ? 16 : 1 << 20;

    // Several requests back to back, as a connection would (pipelining).
    std::string_view rest = text;
    for (int round = 0; round < 8; ++round) {
        request_parser whole(limits);
        outcome w = run_whole(whole, rest);
        if (w.status == parse_status::error) {
            int e = w.error;
            check(e == 400 || e == 405 || e == 413 || e == 414 || e == 431 || e == 501 || e == 505);
        }
        if (w.status == parse_status::complete) {
            const request& r = whole.parsed();
            check(r.head_size <= rest.size());
            check(inside(r.target, rest) && !r.target.empty() && r.target.front() == '/');
            check(r.headers.size() <= limits.max_headers);
            check(r.content_length <= limits.max_body);
            for (const header_field& h : r.headers)
                check(inside(h.name, rest) && inside(h.value, rest) && !h.name.empty());
            check_jail(r.target);
            std::uint64_t size = (seed & 16) ? 0 : (seed & 32) ? 1000 : (5ULL << 30);
            byte_range range = parse_range(r.range, size);
            if (range.what == byte_range::kind::satisfiable)
                check(range.first <= range.last && range.last < size);
        }

        // The same bytes in pieces whose sizes come from the seed.
        request_parser pieces(limits);
        unsigned state = seed * 2654435761u + static_cast<unsigned>(round);
        std::size_t fed = 0;
        outcome p{parse_status::need_more, 0, 0};
        for (;;) {
            state = state * 1103515245u + 12345u;
            fed = std::min(rest.size(), fed + 1 + (state >> 16) % 17);
            p = run_whole(pieces, rest.substr(0, fed));
            if (p.status != parse_status::need_more || fed == rest.size())
                break;
        }
        check(p.status == w.status);
        check(p.error == w.error);
        check(p.head_size == w.head_size);

        if (w.status != parse_status::complete)
            break;
        std::uint64_t skip = whole.parsed().head_size + whole.parsed().content_length;
        if (skip >= rest.size())
            break;
        rest.remove_prefix(static_cast<std::size_t>(skip));
    }
    return 0;
}
