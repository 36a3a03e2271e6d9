// SPDX-License-Identifier: MIT
// Response head formatting with std::to_chars (no locale, no allocation beyond the buffer's).
#include "examples/http/response.hpp"

#include "examples/http/request_parser.hpp"

#include <charconv>

namespace corio_http {

namespace {

void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    out.append(buf, end);
}

} // namespace

void append_head(std::string& out, const response_head& head, std::string_view date) {
    out += "HTTP/1.1 ";
    append_number(out, static_cast<std::uint64_t>(head.status));
    out += ' ';
    out += reason_phrase(head.status);
    out += "\r\nServer: corio-http\r\nDate: ";
    out += date;
    if (!head.content_type.empty()) {
        out += "\r\nContent-Type: ";
        out += head.content_type;
    }
    out += "\r\nContent-Length: ";
    append_number(out, head.content_length);
    if (!head.last_modified.empty()) {
        out += "\r\nLast-Modified: ";
        out += head.last_modified;
    }
    if (head.accept_ranges)
        out += "\r\nAccept-Ranges: bytes";
    if (head.range == response_head::range_kind::partial) {
        out += "\r\nContent-Range: bytes ";
        append_number(out, head.range_first);
        out += '-';
        append_number(out, head.range_last);
        out += '/';
        append_number(out, head.range_total);
    } else if (head.range == response_head::range_kind::unsatisfiable) {
        out += "\r\nContent-Range: bytes */";
        append_number(out, head.range_total);
    }
    if (head.allow_get_head)
        out += "\r\nAllow: GET, HEAD";
    if (!head.location.empty()) {
        out += "\r\nLocation: ";
        out += head.location;
    }
    out += head.keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
}

std::string error_body(int status) {
    std::string code = std::to_string(status) + " " + std::string(reason_phrase(status));
    return "<html><head><title>" + code + "</title></head><body><h1>" + code +
           "</h1></body></html>\n";
}

} // namespace corio_http
