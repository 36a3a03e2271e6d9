// SPDX-License-Identifier: MIT
// The request-head parser: a line at a time, each check made when its line is complete.
#include "examples/http/request_parser.hpp"

#include <algorithm>
#include <cstring>

namespace corio_http {

namespace {

constexpr std::size_t k_max_leading_empty_lines = 4;

/// RFC 9110 tchar.
bool is_token_char(unsigned char c) noexcept {
    if (c >= '0' && c <= '9')
        return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool is_token(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return is_token_char(static_cast<unsigned char>(c));
    });
}

/// Field-value characters: HTAB, SP, VCHAR, obs-text.
bool is_value_char(unsigned char c) noexcept {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/// Request-target characters: visible ASCII.
bool is_target_char(unsigned char c) noexcept {
    return c > 0x20 && c < 0x7f;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

/// True when the comma-separated `list` holds `token` (ASCII case ignored).
bool has_token(std::string_view list, std::string_view token) noexcept {
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (iequals(item, token))
            return true;
        if (comma == std::string_view::npos)
            break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

/// Content-Length: 1 to 19 digits (fits in 63 bits); anything else is a syntax error.
bool parse_length(std::string_view text, std::uint64_t& out) noexcept {
    if (text.empty() || text.size() > 19)
        return false;
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

} // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        unsigned char x = static_cast<unsigned char>(a[i]);
        unsigned char y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z')
            x = static_cast<unsigned char>(x | 0x20);
        if (y >= 'A' && y <= 'Z')
            y = static_cast<unsigned char>(y | 0x20);
        if (x != y)
            return false;
    }
    return true;
}

// Nothing reserved up front: the field list grows with the first requests and keeps its capacity
// (64 fields reserved per connection were 1 KiB of every idle keep-alive connection).
request_parser::request_parser(parse_limits limits) : m_limits(limits) {}

void request_parser::reset() noexcept {
    m_phase = phase::request_line;
    m_pos = 0;
    m_empty_lines = 0;
    m_header_bytes = 0;
    m_target_at = 0;
    m_target_len = 0;
    m_fields.clear();
    m_request = request{};
    m_error = 0;
}

parse_status request_parser::fail(int status) noexcept {
    m_error = status;
    m_phase = phase::done;
    return parse_status::error;
}

parse_status request_parser::feed(std::string_view bytes) {
    if (m_phase == phase::done)
        return m_error != 0 ? parse_status::error : parse_status::complete;
    for (;;) {
        const char* start = bytes.data() + m_pos;
        std::size_t avail = bytes.size() - m_pos;
        const void* found = avail == 0 ? nullptr : std::memchr(start, '\n', avail);
        if (found == nullptr) {
            // An incomplete line is refused only when its complete form would be too.
            if (m_phase == phase::request_line) {
                if (avail > m_limits.max_request_line + 1)
                    return fail(414);
            } else if (avail >= 1 && !(avail == 1 && *start == '\r') &&
                       m_header_bytes + avail + 1 > m_limits.max_header_bytes) {
                return fail(431);
            }
            return parse_status::need_more;
        }
        std::size_t raw = static_cast<std::size_t>(static_cast<const char*>(found) - start);
        bool has_cr = raw > 0 && start[raw - 1] == '\r';
        std::size_t len = has_cr ? raw - 1 : raw;
        std::size_t at = m_pos;
        if (m_phase == phase::request_line) {
            if (len > m_limits.max_request_line)
                return fail(414);
            if (!has_cr)
                return fail(400);
            m_pos = at + raw + 1;
            if (len == 0) {
                if (++m_empty_lines > k_max_leading_empty_lines)
                    return fail(400);
                continue;
            }
            if (!parse_request_line(bytes, at, len))
                return parse_status::error;
            m_phase = phase::headers;
            continue;
        }
        if (len == 0) {
            if (!has_cr)
                return fail(400);
            m_pos = at + raw + 1;
            return finish(bytes);
        }
        if (m_header_bytes + len + 2 > m_limits.max_header_bytes)
            return fail(431);
        if (m_fields.size() + 1 > m_limits.max_headers)
            return fail(431);
        if (!has_cr)
            return fail(400);
        m_header_bytes += len + 2;
        if (!parse_header_line(bytes, at, len))
            return parse_status::error;
        m_pos = at + raw + 1;
    }
}

bool request_parser::parse_request_line(std::string_view bytes, std::size_t at, std::size_t len) {
    std::string_view line = bytes.substr(at, len);
    std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) {
        fail(400);
        return false;
    }
    std::string_view method_text = line.substr(0, sp1);
    std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
        fail(400);
        return false;
    }
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    bool target_ok = !target.empty() && std::all_of(target.begin(), target.end(), [](char c) {
        return is_target_char(static_cast<unsigned char>(c));
    });
    if (!is_token(method_text) || !target_ok) {
        fail(400);
        return false;
    }
    // HTTP-version = "HTTP/" DIGIT "." DIGIT
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9') {
        fail(400);
        return false;
    }
    if (version[5] != '1') {
        fail(505);
        return false;
    }
    m_request.version_minor = version[7] == '0' ? 0 : 1;

    if (method_text == "GET") {
        m_request.method = method::get;
    } else if (method_text == "HEAD") {
        m_request.method = method::head;
    } else {
        static constexpr std::string_view known[] = {"POST",    "PUT",   "DELETE", "CONNECT",
                                                     "OPTIONS", "TRACE", "PATCH"};
        bool is_known =
            std::find(std::begin(known), std::end(known), method_text) != std::end(known);
        fail(is_known ? 405 : 501);
        return false;
    }

    std::size_t target_at = at + sp1 + 1;
    if (target.front() != '/') {
        // absolute-form: keep the path (and query) after the authority.
        std::size_t skip = starts_with_nocase(target, "http://")    ? 7
                           : starts_with_nocase(target, "https://") ? 8
                                                                    : 0;
        if (skip == 0) {
            fail(400);
            return false;
        }
        std::size_t slash = target.find('/', skip);
        if (slash == skip || slash == std::string_view::npos) {
            // No authority, or no path: "http://host" means "/", which has no bytes of its own
            // in the buffer; refuse the rare form rather than point outside it.
            fail(400);
            return false;
        }
        target_at += slash;
        target.remove_prefix(slash);
    }
    m_target_at = static_cast<std::uint32_t>(target_at);
    m_target_len = static_cast<std::uint32_t>(target.size());
    return true;
}

bool request_parser::parse_header_line(std::string_view bytes, std::size_t at, std::size_t len) {
    std::string_view line = bytes.substr(at, len);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
        fail(400); // also obs-fold (a leading space) and whitespace before the colon
        return false;
    }
    std::size_t v = colon + 1;
    std::size_t end = line.size();
    while (v < end && (line[v] == ' ' || line[v] == '\t'))
        ++v;
    while (end > v && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        --end;
    for (std::size_t i = v; i < end; ++i) {
        if (!is_value_char(static_cast<unsigned char>(line[i]))) {
            fail(400);
            return false;
        }
    }
    m_fields.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(colon),
                        static_cast<std::uint32_t>(at + v), static_cast<std::uint32_t>(end - v)});
    return true;
}

parse_status request_parser::finish(std::string_view bytes) {
    m_views.clear();
    m_views.reserve(m_fields.size());
    for (const field_offsets& f : m_fields)
        m_views.push_back(
            {bytes.substr(f.name_at, f.name_len), bytes.substr(f.value_at, f.value_len)});

    request& r = m_request;
    r.target = bytes.substr(m_target_at, m_target_len);
    r.headers = m_views;
    r.head_size = m_pos;
    int hosts = 0;
    bool have_length = false;
    bool close = false;
    bool keep_alive = false;
    bool chunked = false;
    for (const header_field& h : m_views) {
        if (iequals(h.name, "host")) {
            ++hosts;
            r.host = h.value;
        } else if (iequals(h.name, "content-length")) {
            std::uint64_t n = 0;
            if (!parse_length(h.value, n) || (have_length && n != r.content_length))
                return fail(400);
            have_length = true;
            r.content_length = n;
        } else if (iequals(h.name, "transfer-encoding")) {
            chunked = true;
        } else if (iequals(h.name, "connection")) {
            close = close || has_token(h.value, "close");
            keep_alive = keep_alive || has_token(h.value, "keep-alive");
        } else if (iequals(h.name, "range")) {
            if (r.range.empty())
                r.range = h.value;
        } else if (iequals(h.name, "if-range")) {
            if (r.if_range.empty())
                r.if_range = h.value;
        } else if (iequals(h.name, "if-modified-since")) {
            if (r.if_modified_since.empty())
                r.if_modified_since = h.value;
        }
    }
    if (hosts > 1 || (hosts == 0 && r.version_minor >= 1))
        return fail(400);
    if (chunked)
        return fail(501);
    if (r.content_length > m_limits.max_body)
        return fail(413);
    r.keep_alive = r.version_minor >= 1 ? !close : (keep_alive && !close);
    m_phase = phase::done;
    return parse_status::complete;
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

} // namespace corio_http
