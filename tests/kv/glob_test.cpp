// SPDX-License-Identifier: MIT
// KEYS pattern matching with Redis's stringmatch semantics.
#include "glob.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("star and question mark match any run and any one character") {
    CHECK_FALSE(kv::glob_match("*", "")); // as Redis's stringmatchlen (KEYS * lists "" itself)
    CHECK(kv::glob_match("*", "anything"));
    CHECK(kv::glob_match("h?llo", "hello"));
    CHECK_FALSE(kv::glob_match("h?llo", "hllo"));
    CHECK(kv::glob_match("h*llo", "hllo"));
    CHECK(kv::glob_match("h*llo", "heeeello"));
    CHECK(kv::glob_match("user:*:name", "user:42:name"));
    CHECK_FALSE(kv::glob_match("user:*:name", "user:42:mail"));
}

TEST_CASE("classes, ranges and negation") {
    CHECK(kv::glob_match("h[ae]llo", "hello"));
    CHECK(kv::glob_match("h[ae]llo", "hallo"));
    CHECK_FALSE(kv::glob_match("h[ae]llo", "hillo"));
    CHECK(kv::glob_match("h[^e]llo", "hallo"));
    CHECK_FALSE(kv::glob_match("h[^e]llo", "hello"));
    CHECK(kv::glob_match("h[a-b]llo", "hbllo"));
    CHECK_FALSE(kv::glob_match("h[a-b]llo", "hcllo"));
    CHECK(kv::glob_match("h[b-a]llo", "hallo")); // a reversed range works both ways
    // An unterminated class, as in redis-server 7.0: empty (matches nothing), or negated
    // (matches any one character).
    CHECK_FALSE(kv::glob_match("a[", "a["));
    CHECK(kv::glob_match("a[^", "a["));
}

TEST_CASE("a backslash escapes the next character") {
    CHECK(kv::glob_match("a\\*b", "a*b"));
    CHECK_FALSE(kv::glob_match("a\\*b", "axb"));
    CHECK(kv::glob_match("a\\?", "a?"));
    CHECK(kv::glob_match("[\\]]", "]"));
}

TEST_CASE("matching is binary safe and case sensitive") {
    CHECK(kv::glob_match(std::string("a\0*", 3), std::string("a\0bc", 4)));
    CHECK_FALSE(kv::glob_match("A*", "abc"));
}

TEST_CASE("many stars against a long non-matching text stay fast") {
    std::string pattern;
    for (int i = 0; i < 30; ++i)
        pattern += "*a";
    pattern += "b";
    CHECK_FALSE(kv::glob_match(pattern, std::string(5000, 'a')));
}
