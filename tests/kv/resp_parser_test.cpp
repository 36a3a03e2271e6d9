// SPDX-License-Identifier: MIT
// The RESP parser as a unit: multibulk and inline commands, every split of the input, each
// protocol-error class with Redis's text, and declared sizes that are never allocated.
#include "resp_parser.hpp"

#include "reply.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

using strings = std::vector<std::string>;

/// Every command (as strings) in `input` fed at once; "<error:TEXT>" for an error, and
/// "<need more>" when the input ends inside a command.
strings parse_all(std::string_view input, kv::parser_limits limits = {}) {
    kv::resp_parser p(limits);
    strings out;
    std::size_t pos = 0;
    for (;;) {
        kv::parse_status st = p.parse(input.substr(pos));
        if (st == kv::parse_status::need_more) {
            if (pos < input.size())
                out.push_back("<need more>");
            return out;
        }
        if (st == kv::parse_status::error) {
            out.push_back("<error:" + std::string(p.error_text()) + ">");
            return out;
        }
        pos += p.consumed();
        if (st == kv::parse_status::command) {
            std::string joined;
            for (std::string_view a : p.args())
                joined.append(joined.empty() ? "" : "|").append(a);
            out.push_back(joined);
        }
    }
}

/// The same, with the input arriving in two pieces split at `cut` (the buffer grows as a
/// connection's does; the parser is called again on the grown input).
strings parse_split(std::string_view input, std::size_t cut) {
    kv::resp_parser p;
    strings out;
    std::string buffer(input.substr(0, cut));
    std::size_t fed = cut;
    std::size_t pos = 0;
    for (;;) {
        kv::parse_status st = p.parse(std::string_view(buffer).substr(pos));
        if (st == kv::parse_status::need_more) {
            if (fed == input.size()) {
                if (pos < buffer.size())
                    out.push_back("<need more>");
                return out;
            }
            std::string grown = buffer + std::string(input.substr(fed));
            buffer.swap(grown); // a new allocation: the parser must hold offsets, not pointers
            fed = input.size();
            continue;
        }
        if (st == kv::parse_status::error) {
            out.push_back("<error:" + std::string(p.error_text()) + ">");
            return out;
        }
        pos += p.consumed();
        if (st == kv::parse_status::command) {
            std::string joined;
            for (std::string_view a : p.args())
                joined.append(joined.empty() ? "" : "|").append(a);
            out.push_back(joined);
        }
    }
}

} // namespace

TEST_CASE("a multibulk command parses into its arguments") {
    CHECK(parse_all("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") == strings{"GET|k"});
    CHECK(parse_all("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\nab\r\n") == strings{"SET||ab"});
}

TEST_CASE("pipelined commands parse one after another") {
    CHECK(parse_all("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n") ==
          strings{"PING", "ECHO|hi", "PING"});
}

TEST_CASE("binary bulk arguments keep NUL, CR and LF bytes") {
    std::string payload("a\0b\r\nc", 6);
    std::string input = "*2\r\n$4\r\nECHO\r\n$6\r\n" + payload + "\r\n";
    kv::resp_parser p;
    REQUIRE(p.parse(input) == kv::parse_status::command);
    REQUIRE(p.args().size() == 2);
    CHECK(p.args()[1] == payload);
    CHECK(p.consumed() == input.size());
}

TEST_CASE("inline commands split on blanks and honour Redis's quoting") {
    CHECK(parse_all("GET k\r\n") == strings{"GET|k"});
    CHECK(parse_all("  set   a\tb  \n") == strings{"set|a|b"});
    CHECK(parse_all("set a \"\\x41\\n\" \r\n") == strings{"set|a|A\n"});
    CHECK(parse_all("echo 'a\\'b'\r\n") == strings{"echo|a'b"});
    CHECK(parse_all("echo \"a b\" 'c d'\r\n") == strings{"echo|a b|c d"});
}

TEST_CASE("empty requests are skipped: blank lines, *0 and *-1") {
    CHECK(parse_all("\r\n  \r\n*0\r\n*-1\r\nPING\r\n") == strings{"PING"});
}

TEST_CASE("a command split at every byte boundary parses the same") {
    const std::string input = "*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$10\r\n0123456789\r\n"
                              "PING\r\nECHO \"a b\"\r\n*1\r\n$4\r\nPING\r\n";
    const strings whole = parse_all(input);
    REQUIRE(whole == strings{"SET|key:1|0123456789", "PING", "ECHO|a b", "PING"});
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        INFO("cut at " << cut);
        CHECK(parse_split(input, cut) == whole);
    }
}

TEST_CASE("each protocol error gets Redis's text") {
    CHECK(parse_all("*x\r\n") == strings{"<error:Protocol error: invalid multibulk length>"});
    CHECK(parse_all("*01\r\n") == strings{"<error:Protocol error: invalid multibulk length>"});
    CHECK(parse_all("*2147483648\r\n") ==
          strings{"<error:Protocol error: invalid multibulk length>"});
    CHECK(parse_all("*1\r\n$x\r\n") == strings{"<error:Protocol error: invalid bulk length>"});
    CHECK(parse_all("*1\r\n$-1\r\n") == strings{"<error:Protocol error: invalid bulk length>"});
    CHECK(parse_all("*1\r\n$ 4\r\nping\r\n") ==
          strings{"<error:Protocol error: invalid bulk length>"});
    CHECK(parse_all("*1\r\n:4\r\n") == strings{"<error:Protocol error: expected '$', got ':'>"});
    CHECK(parse_all("*1\r\n$4\r\nPINGxx") ==
          strings{"<error:Protocol error: expected CRLF after bulk data>"});
    CHECK(parse_all("set \"a b\r\n") ==
          strings{"<error:Protocol error: unbalanced quotes in request>"});
    CHECK(parse_all("set \"a\"b c\r\n") ==
          strings{"<error:Protocol error: unbalanced quotes in request>"});
}

TEST_CASE("a line that never ends is refused past the inline limit") {
    kv::parser_limits limits;
    limits.max_inline_length = 100;
    CHECK(parse_all(std::string(100, 'a'), limits) == strings{"<need more>"});
    CHECK(parse_all(std::string(101, 'a'), limits) ==
          strings{"<error:Protocol error: too big inline request>"});
    CHECK(parse_all("*" + std::string(101, '1'), limits) ==
          strings{"<error:Protocol error: too big mbulk count string>"});
    CHECK(parse_all("*1\r\n$" + std::string(101, '1'), limits) ==
          strings{"<error:Protocol error: too big bulk count string>"});
}

TEST_CASE("absurd nesting is one protocol error, not recursion") {
    std::string nested;
    for (int i = 0; i < 10000; ++i)
        nested += "*1\r\n";
    CHECK(parse_all(nested) == strings{"<error:Protocol error: expected '$', got '*'>"});
}

TEST_CASE("a declared huge bulk is refused over the limit and never reserved under it") {
    kv::parser_limits limits;
    limits.max_bulk_length = 1000;
    CHECK(parse_all("*1\r\n$1001\r\n", limits) ==
          strings{"<error:Protocol error: invalid bulk length>"});

    // Under the limit: the parser waits for the bytes and holds nothing but offsets.
    kv::resp_parser p; // default limit: 512 MiB
    std::string input = "*2\r\n$4\r\nECHO\r\n$500000000\r\nabc";
    CHECK(p.parse(input) == kv::parse_status::need_more);
    CHECK(p.args().capacity() < 16); // nothing sized by the declaration
    // A declared count of a million arguments reserves nothing either.
    kv::resp_parser q;
    CHECK(q.parse("*1000000\r\n$1\r\na\r\n") == kv::parse_status::need_more);
    CHECK(q.args().capacity() < 16);
}

TEST_CASE("more arguments than the limit is an invalid multibulk length") {
    kv::parser_limits limits;
    limits.max_arguments = 3;
    CHECK(parse_all("*4\r\n", limits) == strings{"<error:Protocol error: invalid multibulk length>"});
    CHECK(parse_all("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", limits) == strings{"a|b|c"});
}

TEST_CASE("parse_int64 follows Redis's string2ll") {
    std::int64_t v = 0;
    CHECK((kv::parse_int64("0", v) && v == 0));
    CHECK((kv::parse_int64("-9223372036854775808", v) && v == INT64_MIN));
    CHECK((kv::parse_int64("9223372036854775807", v) && v == INT64_MAX));
    CHECK_FALSE(kv::parse_int64("9223372036854775808", v));
    CHECK_FALSE(kv::parse_int64("-0", v));
    CHECK_FALSE(kv::parse_int64("01", v));
    CHECK_FALSE(kv::parse_int64("+1", v));
    CHECK_FALSE(kv::parse_int64(" 1", v));
    CHECK_FALSE(kv::parse_int64("", v));
}

TEST_CASE("the reply writer encodes every RESP2 type") {
    std::string out;
    kv::reply_writer w(out);
    w.simple("OK");
    w.error("ERR a\r\nb");
    w.integer(-42);
    w.bulk(std::string_view("a\0b", 3));
    w.null();
    w.array(2);
    CHECK(out == std::string("+OK\r\n-ERR a  b\r\n:-42\r\n$3\r\na\0b\r\n$-1\r\n*2\r\n", 40));
}
