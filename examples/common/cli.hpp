// SPDX-License-Identifier: MIT
// Numbers on the examples' command lines (echo, cp, corio-http, corio-kv, the laboratory): one
// strict parser with a range check, whose error names the option and the range it wants.
#pragma once

#include <charconv>
#include <chrono>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace cli {

/// The program whose command line is read: its name starts every error message, and its usage
/// function ends a bad command line (prints the usage, then exits with the status it is given).
struct program {
    const char* name;          // "corio-http"
    void (*usage)(int status); // prints the usage and exits; must not return
};

/// `text` as a whole decimal number in [min, max]: digits only (no sign, no spaces, nothing
/// after them); nullopt for anything else, an overflow included.
[[nodiscard]] inline std::optional<unsigned long long>
parse_unsigned(std::string_view text, unsigned long long min, unsigned long long max) noexcept {
    unsigned long long v = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || ptr != end || v < min || v > max)
        return std::nullopt;
    return v;
}

/// Prints `<program>: <flag> wants a number up to <max>, got '<text>'` (`in [<min>, <max>]`
/// when min > 0) to stderr, then calls the program's usage(2).
[[noreturn]] inline void bad_number(const program& p, const char* flag, const char* text,
                                    unsigned long long min, unsigned long long max) {
    if (min == 0)
        std::fprintf(stderr, "%s: %s wants a number up to %llu, got '%s'\n", p.name, flag, max,
                     text);
    else
        std::fprintf(stderr, "%s: %s wants a number in [%llu, %llu], got '%s'\n", p.name, flag, min,
                     max, text);
    p.usage(2);
    std::exit(2); // usage() exits already; this keeps the promise of [[noreturn]] if it did not
}

/// The value `text` of option `flag` as a T in [min, max] (T given explicitly:
/// `unsigned_option<std::uint16_t>(p, "--port", text, 0, 65535)`). A bad value ends the program
/// through bad_number().
template <std::unsigned_integral T>
[[nodiscard]] T unsigned_option(const program& p, const char* flag, const char* text,
                                std::type_identity_t<T> min = 0,
                                std::type_identity_t<T> max = std::numeric_limits<T>::max()) {
    std::optional<unsigned long long> v = parse_unsigned(text, min, max);
    if (!v)
        bad_number(p, flag, text, min, max);
    return static_cast<T>(*v);
}

/// The value `text` of option `flag` as a whole number of Duration's unit in [0, max]
/// (`duration_option<std::chrono::milliseconds>(p, "--drain-ms", text, 24h)`; the error message
/// gives max in that unit too). A bad value ends the program through bad_number().
template <class Duration>
[[nodiscard]] Duration duration_option(const program& p, const char* flag, const char* text,
                                       std::type_identity_t<Duration> max) {
    static_assert(std::is_integral_v<typename Duration::rep>, "a whole number of units");
    auto limit = static_cast<unsigned long long>(max.count());
    auto count = unsigned_option<unsigned long long>(p, flag, text, 0, limit);
    return Duration(static_cast<typename Duration::rep>(count));
}

} // namespace cli
