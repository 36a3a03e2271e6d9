// SPDX-License-Identifier: MIT
// The request parser: every outcome and status, limits at exactly the limit and one over, every
// split of the input giving the same result, pipelined requests, and the fuzz corpus replayed.
#include "examples/http/request_parser.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace corio_http;

namespace {

/// The outcome of feeding `text` whole: "complete", "need_more" or the error status.
std::string outcome(request_parser& p, std::string_view text) {
    parse_status s = p.feed(text);
    if (s == parse_status::complete)
        return "complete";
    if (s == parse_status::need_more)
        return "need_more";
    return std::to_string(p.error_status());
}

std::string outcome_of(std::string_view text, parse_limits limits = {}) {
    request_parser p(limits);
    return outcome(p, text);
}

/// Feeds `text` growing one byte at a time; the outcome at the end (or at the first final one).
std::string outcome_bytewise(std::string_view text, parse_limits limits = {}) {
    request_parser p(limits);
    for (std::size_t n = 0; n <= text.size(); ++n) {
        std::string o = outcome(p, text.substr(0, n));
        if (o != "need_more")
            return o + "@" + std::to_string(n);
    }
    return "need_more";
}

} // namespace

TEST_CASE("a GET request is parsed into views of its target, version and headers") {
    request_parser p;
    std::string text = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  t  \r\n"
                       "Range: bytes=0-9\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                       "\r\n";
    REQUIRE(p.feed(text) == parse_status::complete);
    const request& r = p.parsed();
    CHECK(r.method == method::get);
    CHECK(r.target == "/index.html?x=1");
    CHECK(r.version_minor == 1);
    CHECK(r.host == "example.com");
    CHECK(r.range == "bytes=0-9");
    CHECK(r.if_modified_since == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(r.keep_alive);
    CHECK(r.content_length == 0);
    CHECK(r.head_size == text.size());
    REQUIRE(r.headers.size() == 4);
    CHECK(r.headers[1].name == "User-Agent");
    CHECK(r.headers[1].value == "t");
    // zero-copy: the views point into the fed bytes
    CHECK(r.target.data() == text.data() + 4);
}

TEST_CASE("HEAD is parsed, and HTTP/1.0 defaults to close unless keep-alive is asked") {
    request_parser p;
    REQUIRE(p.feed("HEAD / HTTP/1.0\r\n\r\n") == parse_status::complete);
    CHECK(p.parsed().method == method::head);
    CHECK(p.parsed().version_minor == 0);
    CHECK_FALSE(p.parsed().keep_alive);
    CHECK(p.parsed().host.empty());
    p.reset();
    REQUIRE(p.feed("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == parse_status::complete);
    CHECK(p.parsed().keep_alive);
    p.reset();
    REQUIRE(p.feed("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n") ==
            parse_status::complete);
    CHECK_FALSE(p.parsed().keep_alive);
    p.reset();
    REQUIRE(p.feed("GET / HTTP/1.9\r\nHost: a\r\n\r\n") == parse_status::complete);
    CHECK(p.parsed().version_minor == 1);
}

TEST_CASE("an absolute-form target is reduced to its path") {
    request_parser p;
    REQUIRE(p.feed("GET http://example.com/a/b?q HTTP/1.1\r\nHost: example.com\r\n\r\n") ==
            parse_status::complete);
    CHECK(p.parsed().target == "/a/b?q");
    CHECK(outcome_of("GET http://example.com HTTP/1.1\r\nHost: a\r\n\r\n") == "400");
    CHECK(outcome_of("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n") == "400");
}

TEST_CASE("an incomplete head needs more bytes") {
    CHECK(outcome_of("") == "need_more");
    CHECK(outcome_of("GET / HTTP/1.1\r") == "need_more");
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\n") == "need_more");
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\n\r") == "need_more");
}

TEST_CASE("a Content-Length body is reported for discarding, up to max_body") {
    parse_limits limits;
    limits.max_body = 100;
    request_parser p(limits);
    REQUIRE(p.feed("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n") ==
            parse_status::complete);
    CHECK(p.parsed().content_length == 100);
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", limits) == "413");
    CHECK(
        outcome_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") ==
        "complete");
}

TEST_CASE("syntax errors are 400") {
    const char* bad[] = {
        "GET / HTTP/1.1\nHost: a\r\n\r\n",              // bare LF ending the request line
        "GET / HTTP/1.1\r\nHost: a\n\r\n",              // bare LF ending a header
        "GET / HTTP/1.1\r\nHost: a\r\n\n",              // bare LF as the blank line
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",           // two spaces
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",           // trailing space
        "GET /\r\nHost: a\r\n\r\n",                     // no version
        "GET / HTTQ/1.1\r\nHost: a\r\n\r\n",            // not HTTP
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n",           // version too long
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",            // not a token
        "GET a HTTP/1.1\r\nHost: a\r\n\r\n",            // not origin-form
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",            // asterisk-form
        "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",        // control byte in the target
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",           // space before the colon
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", // obs-fold
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",            // no colon
        "GET / HTTP/1.1\r\n: v\r\nHost: a\r\n\r\n",     // empty name
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",         // bare CR in a value
        "GET / HTTP/1.1\r\n\r\n",                       // HTTP/1.1 without Host
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", // two Hosts
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 12345678901234567890\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", // five empty lines first
    };
    for (const char* text : bad) {
        INFO(text);
        CHECK(outcome_of(text) == "400");
    }
    std::string nul = std::string("GET / HTTP/1.1\r\nHost: a") + '\0' + "\r\n\r\n";
    CHECK(outcome_of(nul) == "400");
}

TEST_CASE("up to four empty lines before the request line are skipped") {
    request_parser p;
    std::string text = "\r\n\r\n\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    REQUIRE(p.feed(text) == parse_status::complete);
    CHECK(p.parsed().target == "/x");
    CHECK(p.parsed().head_size == text.size());
}

TEST_CASE("methods: other registered ones are 405, unknown tokens 501") {
    for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT"}) {
        INFO(m);
        CHECK(outcome_of(std::string(m) + " / HTTP/1.1\r\nHost: a\r\n\r\n") == "405");
    }
    CHECK(outcome_of("BREW / HTTP/1.1\r\nHost: a\r\n\r\n") == "501");
    CHECK(outcome_of("get / HTTP/1.1\r\nHost: a\r\n\r\n") == "501"); // methods are case-sensitive
}

TEST_CASE("versions other than 1.x are 505") {
    CHECK(outcome_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == "505");
    CHECK(outcome_of("GET / HTTP/0.9\r\n\r\n") == "505");
}

TEST_CASE("Transfer-Encoding on a request is 501") {
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == "501");
}

TEST_CASE("the request line may be exactly max_request_line bytes, one more is 414") {
    parse_limits limits;
    limits.max_request_line = 32;
    std::string at_limit = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1"; // 32 bytes
    REQUIRE(at_limit.size() == 32);
    CHECK(outcome_of(at_limit + "\r\nHost: a\r\n\r\n", limits) == "complete");
    std::string over = "GET /" + std::string(32 - 13, 'a') + " HTTP/1.1";
    CHECK(outcome_of(over + "\r\nHost: a\r\n\r\n", limits) == "414");
    // Without its end yet: 414 as soon as the line cannot fit any more.
    CHECK(outcome_of(std::string(33, 'a'), limits) == "need_more"); // could still end in CR LF
    CHECK(outcome_of(std::string(34, 'a'), limits) == "414");
}

TEST_CASE("max_headers fields are accepted, one more is 431") {
    parse_limits limits;
    limits.max_headers = 3;
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits) == "complete");
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits) == "431");
}

TEST_CASE("header lines may total exactly max_header_bytes, one more byte is 431") {
    parse_limits limits;
    limits.max_header_bytes = 20;
    // "Host: a\r\n" is 9 bytes, "X: 123456789\r\n" is 14: no. Make 20 exactly: 9 + 11.
    std::string fits = "GET / HTTP/1.1\r\nHost: a\r\nX: 123456\r\n\r\n";
    CHECK(outcome_of(fits, limits) == "complete");
    std::string over = "GET / HTTP/1.1\r\nHost: a\r\nX: 1234567\r\n\r\n";
    CHECK(outcome_of(over, limits) == "431");
    // Incomplete: refused only once the line cannot fit any more.
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nX: 123456\r", limits) == "need_more");
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nX: 1234567", limits) == "need_more");
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nX: 12345678", limits) == "431");
    // At the limit, the blank line still fits.
    CHECK(outcome_of("GET / HTTP/1.1\r\nHost: a\r\nX: 123456\r\n\r", limits) == "need_more");
}

TEST_CASE("every split of a request gives the same outcome as the whole") {
    parse_limits small;
    small.max_request_line = 40;
    small.max_headers = 3;
    small.max_header_bytes = 40;
    small.max_body = 10;
    const std::string cases[] = {
        "GET /a HTTP/1.1\r\nHost: a\r\nRange: bytes=1-2\r\n\r\n",
        "\r\nHEAD / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        "GET /" + std::string(50, 'x') + " HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nA: " + std::string(40, 'v') + "\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
        "GET / HTTP/3.0\r\n\r\n",
        "GET /" + std::string(60, 'x'), // never complete: 414 on the way
    };
    for (const std::string& text : cases) {
        INFO(text);
        std::string whole = outcome_of(text, small);
        std::string bytewise = outcome_bytewise(text, small);
        CHECK(bytewise.substr(0, bytewise.find('@')) == whole.substr(0, whole.find('@')));
        // Every two-piece split too.
        for (std::size_t cut = 0; cut <= text.size(); ++cut) {
            request_parser p(small);
            std::string first = outcome(p, std::string_view(text).substr(0, cut));
            std::string final_outcome = first == "need_more" ? outcome(p, text) : first;
            if (first != "need_more" && whole != first) {
                // A final outcome before the end must be the same as the whole's.
                CHECK(first == whole);
            }
            CHECK(final_outcome == whole);
        }
    }
}

TEST_CASE("pipelined requests are parsed one after the other from one buffer") {
    std::string text = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                       "HEAD /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                       "GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                       "GET /4 HT";
    request_parser p;
    std::string_view rest = text;
    std::vector<std::string> seen;
    for (;;) {
        parse_status s = p.feed(rest);
        if (s != parse_status::complete)
            break;
        const request& r = p.parsed();
        seen.push_back(std::string(r.target) + (r.keep_alive ? "+" : "-"));
        rest.remove_prefix(r.head_size + r.content_length);
        p.reset();
    }
    CHECK(seen == std::vector<std::string>{"/1+", "/2+", "/3-"});
    CHECK(rest == "GET /4 HT");
}

TEST_CASE("after an error the parser stays in error until reset") {
    request_parser p;
    CHECK(p.feed("BAD\r\n") == parse_status::error);
    CHECK(p.error_status() == 400);
    CHECK(p.feed("BAD\r\nmore") == parse_status::error);
    p.reset();
    CHECK(p.is_fresh());
    CHECK(p.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == parse_status::complete);
}

TEST_CASE("reason phrases name the statuses the server sends") {
    CHECK(reason_phrase(200) == "OK");
    CHECK(reason_phrase(206) == "Partial Content");
    CHECK(reason_phrase(416) == "Range Not Satisfiable");
    CHECK(reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(reason_phrase(299) == "Unknown");
}

TEST_CASE("every file of the fuzz corpus parses without a crash, and whole equals bytewise") {
    std::filesystem::path dir =
        std::filesystem::path(CORIO_SOURCE_ROOT) / "tests" / "fuzz" / "corpus" / "http_request";
    REQUIRE(std::filesystem::is_directory(dir));
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        INFO(entry.path().filename().string());
        parse_limits limits;
        limits.max_request_line = 256;
        limits.max_headers = 16;
        limits.max_header_bytes = 512;
        limits.max_body = 1024;
        std::string whole = outcome_of(text, limits);
        std::string bytewise = outcome_bytewise(text, limits);
        CHECK(bytewise.substr(0, bytewise.find('@')) == whole);
        ++files;
    }
    CHECK(files >= 24);
}
