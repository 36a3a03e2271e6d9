// SPDX-License-Identifier: MIT
// The command lines of the examples (echo, cp, corio-http, corio-kv, the laboratory) and of
// bench/loadgen: one exit-code mapping (--help exits 0, a bad command line exits 2 with one line
// naming the flag), strict whole numbers with a range, durations in whole units, a generated
// --help. CLI11 does the parsing inside cli.cpp alone: its header costs about 3 s of compile time
// per translation unit (-O0), so the programs include only this header.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace CLI {
class App;
class Option;
} // namespace CLI

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

/// `text` as a CPU list, `0,2` or `0-3` or `0-1,6` (whole decimal numbers below max, ranges
/// with low <= high, no CPU twice), in the order written; nullopt for anything else.
[[nodiscard]] std::optional<std::vector<int>> parse_cpu_list(std::string_view text,
                                                             unsigned max = 1024);

/// "up to MAX", or "in [MIN, MAX]" when min > 0: the range as an error message says it.
[[nodiscard]] std::string range_text(unsigned long long min, unsigned long long max);

/// "[MIN-MAX]": the range as the help shows it after an option's text.
[[nodiscard]] std::string help_range(unsigned long long min, unsigned long long max);

/// Checks (and may rewrite) an option's text before it is stored: "" when it is fine, else
/// what is wrong ("wants a number up to 65535, got 'x'"; the error line puts the flag first).
using check_fn = std::function<std::string(std::string& text)>;
/// Stores an option's text (after its check passed) into the program's options.
using store_fn = std::function<void(const std::string& text)>;

/// One option of a parser, to refine after adding it (`p.number(...).type("BYTES")`).
class option {
public:
    explicit option(CLI::Option* o) noexcept : m_option(o) {}
    /// The placeholder the help shows after the flag ("N", "BYTES", "MS", "DIR").
    option& type(const std::string& name);
    /// The command line is refused without it.
    option& required();
    /// The default the help shows ("=VALUE").
    option& default_text(const std::string& text);

private:
    CLI::Option* m_option; // owned by the parser's CLI::App
};

/// A program's command line. Add its options (each stores into the caller's variables, which
/// must outlive parse()), then parse(). A repeated option keeps its last value (scripts append
/// overrides to a default command line, as the hand-written parsers allowed).
class parser {
public:
    /// `program` starts every error line; `description` heads --help, `footer` (when not empty)
    /// ends it.
    parser(std::string program, std::string description, std::string footer = {});
    ~parser();
    parser(const parser&) = delete;
    parser& operator=(const parser&) = delete;

    /// An option `flag` whose text passes `check` (which may rewrite it) and goes to `store`.
    /// The building block of the others; shows `default_shown` in --help unless empty.
    option add(const std::string& flag, const std::string& help, check_fn check, store_fn store,
               const std::string& default_shown = {});

    /// A whole number in [min, max] stored into `target` (T given explicitly or deduced).
    template <std::unsigned_integral T>
    option number(const std::string& flag, T& target, std::type_identity_t<T> min,
                  std::type_identity_t<T> max, const std::string& help) {
        auto store = [&target](const std::string& text) {
            target = static_cast<T>(parse_unsigned(text, 0, ~0ULL).value());
        };
        return add(flag, help + " " + help_range(min, max), number_check(min, max), store,
                   std::to_string(target))
            .type("N");
    }

    /// A whole number of Duration's unit in [0, max] (the help and the error give max in that
    /// unit too). Shows "MS" after a flag ending in -ms.
    template <class Duration>
    option duration(const std::string& flag, Duration& target, std::type_identity_t<Duration> max,
                    const std::string& help) {
        static_assert(std::is_integral_v<typename Duration::rep>, "a whole number of units");
        auto limit = static_cast<unsigned long long>(max.count());
        auto store = [&target](const std::string& text) {
            target = Duration(
                static_cast<typename Duration::rep>(parse_unsigned(text, 0, ~0ULL).value()));
        };
        return add(flag, help + " " + help_range(0, limit), number_check(0, limit), store,
                   std::to_string(target.count()))
            .type(flag.ends_with("-ms") ? "MS" : "N");
    }

    /// `--port N`, 0 picking an ephemeral port that the server prints as `listening on N`.
    option port(std::uint16_t& target);

    /// A CPU list (parse_cpu_list: `0,1`, `0-3`) stored into `target` in the order written.
    option cpu_list(const std::string& flag, std::vector<int>& target, const std::string& help);

    /// Any text (an address, a file name); the help shows target's value as the default when it
    /// is not empty.
    option text(const std::string& flag, std::string& target, const std::string& help);

    /// One of `words` (`--appendfsync always|everysec|no`), handed to `store`.
    option word(const std::string& flag, std::vector<std::string> words, store_fn store,
                const std::string& help);

    /// A flag without a value (`--direct`): sets `target`.
    option flag(const std::string& flag, bool& target, const std::string& help);

    /// A required positional argument (cp's SRC and DST), in the order added.
    option positional(const std::string& name, std::string& target, const std::string& help);

    /// Parses the command line: --help/-h prints the help to stdout and exits 0; a bad command
    /// line prints one line, `<program>: <what is wrong, naming the flag> (see --help)`, to
    /// stderr and exits 2 (CLI11's own exit codes are 1xx).
    void parse(int argc, char** argv);

    /// Prints `<program>: <message>` to stderr and exits 2, for the checks after parse(): a
    /// required combination, a value no range can express.
    [[noreturn]] void fail(const std::string& message) const;

    /// The check of number(): a whole decimal number in [min, max] (parse_unsigned).
    /// NOTE: CLI11's own integer conversion also takes " 5", 0x10 and 0o17; this keeps the old
    /// parsers' digits-only rule, so a script's typo fails instead of meaning something else.
    [[nodiscard]] static check_fn number_check(unsigned long long min, unsigned long long max);

private:
    std::string m_program;           // "corio-http"
    std::unique_ptr<CLI::App> m_app; // the CLI11 parser (cli.cpp)
};

} // namespace cli
