// SPDX-License-Identifier: MIT
// The listening socket of the example servers (echo, corio-http, corio-kv): --bind ADDR and
// --port N to a bound listener, with one wording of the errors and one exit status for all three.
#pragma once

#include <corio/corio.hpp>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace example {

/// Binds ADDR:PORT (an IPv6 ADDR such as `::1` is bracketed for the parser). On failure prints
/// `PROGRAM: --bind ADDR: why` (exit status 2) or `PROGRAM: cannot listen on ADDR:PORT: why`
/// (exit status 1) on stderr, stores the status in `*status` and returns nothing. `options`:
/// SO_REUSEPORT for the listeners of several shards (examples/common/shards.hpp).
inline std::optional<corio::net::tcp_listener>
bind_listener(const char* program, const std::string& bind, std::uint16_t port, int* status,
              corio::net::listen_options options = {}) {
    std::string where = bind.find(':') != std::string::npos ? "[" + bind + "]" : bind;
    corio::result<corio::net::socket_address> addr =
        corio::net::socket_address::parse(where + ":" + std::to_string(port));
    if (!addr) {
        std::fprintf(stderr, "%s: --bind %s: %s\n", program, bind.c_str(),
                     addr.error().message().c_str());
        *status = 2;
        return std::nullopt;
    }
    corio::result<corio::net::tcp_listener> listener =
        corio::net::tcp_listener::bind(*addr, options);
    if (!listener) {
        std::fprintf(stderr, "%s: cannot listen on %s: %s\n", program, addr->to_string().c_str(),
                     listener.error().message().c_str());
        *status = 1;
        return std::nullopt;
    }
    return std::move(*listener);
}

/// Prints `listening on PORT` (what the tests and the benchmark scripts wait for) and flushes.
inline void announce(const corio::net::tcp_listener& listener) {
    std::printf("listening on %u\n", listener.local_address().value().port());
    std::fflush(stdout);
}

} // namespace example
