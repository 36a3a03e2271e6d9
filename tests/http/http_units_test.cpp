// SPDX-License-Identifier: MIT
// The small modules of corio-http: path decoding (the jail's first half), Range parsing, HTTP
// dates, MIME types and response heads.
#include "examples/http/http_date.hpp"
#include "examples/http/mime.hpp"
#include "examples/http/path_jail.hpp"
#include "examples/http/range.hpp"
#include "examples/http/response.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace corio_http;

TEST_CASE("a target decodes into a relative path without dots or empty segments") {
    CHECK(decode_target("/").path == "");
    CHECK(decode_target("/").status == 0);
    CHECK(decode_target("/").trailing_slash);
    CHECK(decode_target("/a/b.txt").path == "a/b.txt");
    CHECK_FALSE(decode_target("/a/b.txt").trailing_slash);
    CHECK(decode_target("//a///./b/").path == "a/b");
    CHECK(decode_target("//a///./b/").trailing_slash);
    CHECK(decode_target("/a%20b%41.txt?x=../..").path == "a bA.txt");
    CHECK(decode_target("/%7euser/").path == "~user");
    CHECK(decode_target("/caf%C3%A9").path == "caf\xc3\xa9");
    CHECK(decode_target("/...").path == "..."); // not a dot-dot segment
    CHECK(decode_target("/a..b").path == "a..b");
}

TEST_CASE("traversal, encoded separators, NUL and control bytes are refused with 400") {
    const char* bad[] = {
        "/..",    "/../etc/passwd", "/a/../b", "/a/..",    "/%2e%2e/x", "/%2E%2E",
        "/.%2e/", "/a%2fb",         "/a%2Fb",  "/%2f",     "/a\\b",     "/a%5cb",
        "/a%5Cb", "/a%00b",         "/%00",    "/a%0ab",   "/a%7fb",    "/%",
        "/%4",    "/%zz",           "/a%g0",   "relative", "",          "/a/%2e%2e",
    };
    for (const char* target : bad) {
        INFO(target);
        CHECK(decode_target(target).status == 400);
    }
}

TEST_CASE("a single byte range is satisfiable, clamped, or unsatisfiable; others are ignored") {
    using kind = byte_range::kind;
    auto r = parse_range("bytes=0-99", 1000);
    CHECK(r.what == kind::satisfiable);
    CHECK(r.first == 0);
    CHECK(r.last == 99);
    CHECK(r.length() == 100);
    r = parse_range("bytes=990-2000", 1000);
    CHECK((r.what == kind::satisfiable && r.first == 990 && r.last == 999));
    r = parse_range("bytes=500-", 1000);
    CHECK((r.what == kind::satisfiable && r.first == 500 && r.last == 999));
    r = parse_range("bytes=-100", 1000);
    CHECK((r.what == kind::satisfiable && r.first == 900 && r.last == 999));
    r = parse_range("bytes=-5000", 1000);
    CHECK((r.what == kind::satisfiable && r.first == 0 && r.last == 999));
    r = parse_range("Bytes=7-7 ", 1000);
    CHECK((r.what == kind::satisfiable && r.first == 7 && r.last == 7));
    r = parse_range("bytes=4294967296-4294967305", 5ULL << 30);
    CHECK((r.what == kind::satisfiable && r.first == 4294967296ULL && r.length() == 10));
    r = parse_range("bytes=0-99999999999999999999999", 10);
    CHECK((r.what == kind::satisfiable && r.last == 9));

    CHECK(parse_range("bytes=1000-", 1000).what == kind::unsatisfiable);
    CHECK(parse_range("bytes=1000-1001", 1000).what == kind::unsatisfiable);
    CHECK(parse_range("bytes=99999999999999999999999-", 1000).what == kind::unsatisfiable);
    CHECK(parse_range("bytes=-0", 1000).what == kind::unsatisfiable);
    CHECK(parse_range("bytes=0-0", 0).what == kind::unsatisfiable);
    CHECK(parse_range("bytes=-5", 0).what == kind::unsatisfiable);

    CHECK(parse_range("", 1000).what == kind::none);
    CHECK(parse_range("bytes=5-3", 1000).what == kind::none);
    CHECK(parse_range("bytes=0-1,5-6", 1000).what == kind::none);
    CHECK(parse_range("items=0-1", 1000).what == kind::none);
    CHECK(parse_range("bytes=a-b", 1000).what == kind::none);
    CHECK(parse_range("bytes=-", 1000).what == kind::none);
    CHECK(parse_range("bytes=1", 1000).what == kind::none);
    CHECK(parse_range("bytes=+1-2", 1000).what == kind::none);
}

TEST_CASE("HTTP dates format as IMF-fixdate and parse back") {
    CHECK(format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK(format_http_date(951782400) == "Tue, 29 Feb 2000 00:00:00 GMT");
    CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777);
    CHECK(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT") == 951782400);
    CHECK_FALSE(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").has_value());
    CHECK_FALSE(parse_http_date("Sun Nov  6 08:49:37 1994").has_value());
    CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC").has_value());
    CHECK_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT").has_value());
    CHECK_FALSE(parse_http_date("").has_value());
    date_cache dates;
    std::string_view now = dates.now();
    CHECK(now.size() == 29);
    CHECK(parse_http_date(now).has_value());
}

TEST_CASE("Content-Type follows the extension, ignoring case") {
    CHECK(mime_type("a/index.html") == "text/html; charset=utf-8");
    CHECK(mime_type("x.CSS") == "text/css; charset=utf-8");
    CHECK(mime_type("p.png") == "image/png");
    CHECK(mime_type("noext") == "application/octet-stream");
    CHECK(mime_type("dir.d/noext") == "application/octet-stream");
    CHECK(mime_type(".hidden") == "application/octet-stream");
    CHECK(mime_type("a.unknownext") == "application/octet-stream");
}

TEST_CASE("a response head lists its fields in a fixed order") {
    std::string out;
    response_head h;
    h.status = 206;
    h.content_type = "text/plain; charset=utf-8";
    h.content_length = 10;
    h.last_modified = "Sun, 06 Nov 1994 08:49:37 GMT";
    h.accept_ranges = true;
    h.range = response_head::range_kind::partial;
    h.range_first = 5;
    h.range_last = 14;
    h.range_total = 100;
    append_head(out, h, "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK(out ==
          "HTTP/1.1 206 Partial Content\r\nServer: corio-http\r\n"
          "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 10\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
          "Accept-Ranges: bytes\r\nContent-Range: bytes 5-14/100\r\n"
          "Connection: keep-alive\r\n\r\n");
    out.clear();
    response_head e;
    e.status = 416;
    e.range = response_head::range_kind::unsatisfiable;
    e.range_total = 100;
    e.keep_alive = false;
    e.allow_get_head = true;
    append_head(out, e, "D");
    CHECK(out == "HTTP/1.1 416 Range Not Satisfiable\r\nServer: corio-http\r\nDate: D\r\n"
                 "Content-Length: 0\r\nContent-Range: bytes */100\r\nAllow: GET, HEAD\r\n"
                 "Connection: close\r\n\r\n");
    CHECK(error_body(404) ==
          "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body>"
          "</html>\n");
}
