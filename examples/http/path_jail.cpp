// SPDX-License-Identifier: MIT
// Percent-decoding and segment checks of the request path (see path_jail.hpp).
#include "examples/http/path_jail.hpp"

namespace corio_http {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

decoded_target refuse() {
    return {400, {}, false};
}

} // namespace

decoded_target decode_target(std::string_view target) {
    std::size_t query = target.find_first_of("?#");
    if (query != std::string_view::npos)
        target = target.substr(0, query);
    if (target.empty() || target.front() != '/')
        return refuse();

    decoded_target out;
    out.path.reserve(target.size());
    std::string segment;
    // Segments are split on literal '/' only: a decoded %2F is refused below, never a separator.
    auto end_segment = [&]() -> bool {
        if (segment == "..")
            return false;
        if (!segment.empty() && segment != ".") {
            if (!out.path.empty())
                out.path += '/';
            out.path += segment;
        }
        segment.clear();
        return true;
    };
    for (std::size_t i = 1; i < target.size(); ++i) {
        char c = target[i];
        if (c == '/') {
            if (!end_segment())
                return refuse();
            continue;
        }
        if (c == '%') {
            if (i + 2 >= target.size())
                return refuse();
            int hi = hex_value(target[i + 1]);
            int lo = hex_value(target[i + 2]);
            if (hi < 0 || lo < 0)
                return refuse();
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
            if (c == '/')
                return refuse();
        }
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '\\')
            return refuse();
        segment += c;
    }
    out.trailing_slash = target.back() == '/';
    if (!end_segment())
        return refuse();
    return out;
}

} // namespace corio_http
