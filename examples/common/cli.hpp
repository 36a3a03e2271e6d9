// SPDX-License-Identifier: MIT
// The command lines of the examples (echo, cp, corio-http, corio-kv, the laboratory) and of
// bench/loadgen, through CLI11: one exit-code mapping (--help exits 0, a bad command line exits 2
// with one line naming the flag), strict whole numbers with a range, durations in whole units.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace cli {

/// `text` as a whole decimal number in [min, max]: digits only (no sign, no spaces, no 0x,
/// nothing after them); nullopt for anything else, an overflow included.
[[nodiscard]] inline std::optional<unsigned long long>
parse_unsigned(std::string_view text, unsigned long long min, unsigned long long max) noexcept {
    unsigned long long v = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || text[0] == '-' || text[0] == '+' || ec != std::errc() || ptr != end ||
        v < min || v > max)
        return std::nullopt;
    return v;
}

/// "up to MAX", or "in [MIN, MAX]" when min > 0: the range as an error message says it.
[[nodiscard]] inline std::string range_text(unsigned long long min, unsigned long long max) {
    if (min == 0)
        return "up to " + std::to_string(max);
    return "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

/// "[MIN-MAX]": the range as the help shows it after an option's text.
[[nodiscard]] inline std::string help_range(unsigned long long min, unsigned long long max) {
    return "[" + std::to_string(min) + "-" + std::to_string(max) + "]";
}

/// A CLI11 check: the value is a whole decimal number in [min, max] (parse_unsigned). Its error
/// reads `--flag: wants a number up to MAX, got 'TEXT'`.
/// NOTE: CLI11's own integer conversion also takes " 5", 0x10 and 0o17; this keeps the old
/// parsers' digits-only rule, so a script's typo fails instead of meaning something else.
[[nodiscard]] inline CLI::Validator number(unsigned long long min, unsigned long long max) {
    auto check = [min, max](std::string& text) -> std::string {
        if (parse_unsigned(text, min, max))
            return {};
        return "wants a number " + range_text(min, max) + ", got '" + text + "'";
    };
    return CLI::Validator(check, "", "number");
}

/// A CLI11 check: the value is one of `words`. Its error reads
/// `--flag: wants always, everysec or no, got 'TEXT'`.
[[nodiscard]] inline CLI::Validator one_of(std::vector<std::string> words) {
    std::string wanted;
    for (std::size_t i = 0; i < words.size(); ++i)
        wanted += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
    auto check = [words, wanted](std::string& text) -> std::string {
        for (const std::string& w : words)
            if (text == w)
                return {};
        return "wants " + wanted + ", got '" + text + "'";
    };
    return CLI::Validator(check, "", "one_of");
}

/// Settings every program shares: a repeated option keeps its last value (scripts append
/// overrides to a default command line, as the hand-written parsers allowed), a wider first help
/// column, and `footer` (a paragraph after the options) unless empty.
inline void configure(CLI::App& app, std::string footer = {}) {
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.get_formatter()->column_width(36);
    while (!footer.empty() && footer.back() == '\n')
        footer.pop_back(); // CLI11 ends the help with a newline of its own
    if (!footer.empty())
        app.footer(footer);
}

/// Prints `<program>: <message>` to stderr and exits 2 (a bad command line), for the checks
/// that run after parse(): a required combination, a value no range can express.
[[noreturn]] inline void fail(const CLI::App& app, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", app.get_name().c_str(), message.c_str());
    std::exit(2);
}

/// Parses the command line: --help/-h prints the help to stdout and exits 0; a bad command line
/// prints one line, `<program>: <what is wrong, naming the flag> (see --help)`, to stderr and
/// exits 2 (CLI11's own exit codes are 1xx).
inline void parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        std::exit(0);
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        what += " (see --help)";
        fail(app, what);
    }
}

/// An option `flag` (`--sq-entries`) stored into `target` as a whole number in [min, max]
/// (T given explicitly or deduced from target); the help shows the range and the default.
template <std::unsigned_integral T>
CLI::Option* add_number(CLI::App& app, const std::string& flag, T& target,
                        std::type_identity_t<T> min, std::type_identity_t<T> max,
                        const std::string& help) {
    return app.add_option(flag, target, help + " " + help_range(min, max))
        ->check(number(min, max))
        ->type_name("N")
        ->capture_default_str();
}

/// An option `flag` (`--drain-ms`) that is a whole number of Duration's unit in [0, max] (the
/// help and the error give max in that unit too).
template <class Duration>
CLI::Option* add_duration(CLI::App& app, const std::string& flag, Duration& target,
                          std::type_identity_t<Duration> max, const std::string& help) {
    static_assert(std::is_integral_v<typename Duration::rep>, "a whole number of units");
    auto limit = static_cast<unsigned long long>(max.count());
    auto store = [&target](unsigned long long count) {
        target = Duration(static_cast<typename Duration::rep>(count));
    };
    return app
        .add_option_function<unsigned long long>(flag, store, help + " " + help_range(0, limit))
        ->check(number(0, limit))
        ->type_name(flag.ends_with("-ms") ? "MS" : "N")
        ->default_str(std::to_string(target.count()));
}

/// `--port N`, 0 picking an ephemeral port that the server prints as `listening on N`.
inline CLI::Option* add_port(CLI::App& app, std::uint16_t& port) {
    return add_number<std::uint16_t>(app, "--port", port, 0, 65535,
                                     "TCP port; 0 picks an ephemeral one, printed as "
                                     "`listening on N`");
}

} // namespace cli
