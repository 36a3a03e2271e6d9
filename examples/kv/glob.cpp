// SPDX-License-Identifier: MIT
// Glob matching (see glob.hpp), written after Redis's util.c stringmatchlen, including its
// nesting bound: a pattern of many stars cannot make a match take exponential time.
#include "glob.hpp"

#include <cstddef>

namespace kv {

namespace {

/// `skip_longer`: set when a `*` below already failed against every suffix, so every enclosing
/// `*` may stop too (the trick that keeps Redis's matcher polynomial).
bool match(const char* p, std::size_t plen, const char* s, std::size_t slen, bool& skip_longer,
           int nesting) noexcept {
    if (nesting > 1000)
        return false; // Redis bounds the recursion the same way
    while (plen > 0 && slen > 0) {
        switch (p[0]) {
        case '*':
            while (plen > 1 && p[1] == '*') {
                ++p;
                --plen;
            }
            if (plen == 1)
                return true; // a trailing star matches everything
            while (slen > 0) {
                if (match(p + 1, plen - 1, s, slen, skip_longer, nesting + 1))
                    return true;
                if (skip_longer)
                    return false;
                ++s;
                --slen;
            }
            skip_longer = true;
            return false;
        case '?':
            ++s;
            --slen;
            break;
        case '[': {
            ++p;
            --plen;
            bool negate = plen > 0 && p[0] == '^';
            if (negate) {
                ++p;
                --plen;
            }
            bool matched = false;
            for (;;) {
                if (plen == 0) {
                    // An unterminated class: Redis treats the end as the closing bracket.
                    break;
                }
                if (p[0] == '\\' && plen >= 2) {
                    ++p;
                    --plen;
                    if (p[0] == s[0])
                        matched = true;
                } else if (p[0] == ']') {
                    break;
                } else if (plen >= 3 && p[1] == '-') {
                    unsigned char start = static_cast<unsigned char>(p[0]);
                    unsigned char end = static_cast<unsigned char>(p[2]);
                    unsigned char c = static_cast<unsigned char>(s[0]);
                    if (start > end) {
                        unsigned char t = start;
                        start = end;
                        end = t;
                    }
                    p += 2;
                    plen -= 2;
                    if (c >= start && c <= end)
                        matched = true;
                } else if (p[0] == s[0]) {
                    matched = true;
                }
                ++p;
                --plen;
            }
            if (plen == 0) {
                // Redis steps back onto the last character so the loop's advance lands at the
                // end; the class still consumed one character of the text.
                ++plen;
                --p;
            }
            if (negate)
                matched = !matched;
            if (!matched)
                return false;
            ++s;
            --slen;
            break;
        }
        case '\\':
            if (plen >= 2) {
                ++p;
                --plen;
            }
            [[fallthrough]];
        default:
            if (p[0] != s[0])
                return false;
            ++s;
            --slen;
            break;
        }
        ++p;
        --plen;
        if (slen == 0) {
            while (plen > 0 && p[0] == '*') {
                ++p;
                --plen;
            }
            break;
        }
    }
    return plen == 0 && slen == 0;
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    bool skip_longer = false;
    return match(pattern.data(), pattern.size(), text.data(), text.size(), skip_longer, 0);
}

} // namespace kv
