// SPDX-License-Identifier: MIT
// Helpers for the kv tests: run commands against an engine and read the raw RESP reply.
#pragma once

#include "commands.hpp"
#include "reply.hpp"
#include "store.hpp"

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace kv::test {

/// A store on a clock the test sets, and an engine on it (optionally logging to `log`).
struct fixture {
    std::int64_t now_ms = 1'700'000'000'000; // the injected Unix time
    store keyspace{[this] { return now_ms; }};
    engine eng{keyspace};
    std::string log; // AOF records, when logging is on

    explicit fixture(bool logging = false) {
        if (logging)
            eng.set_propagation(&log);
    }

    /// The raw RESP reply to `args`.
    std::string run(std::initializer_list<std::string_view> args) {
        std::vector<std::string_view> v(args);
        return run(v);
    }
    std::string run(const std::vector<std::string_view>& args) {
        std::string out;
        reply_writer w(out);
        (void)eng.execute(args, w);
        return out;
    }
};

/// `$n\r\ntext\r\n`.
inline std::string bulk(std::string_view text) {
    return "$" + std::to_string(text.size()) + "\r\n" + std::string(text) + "\r\n";
}

} // namespace kv::test
