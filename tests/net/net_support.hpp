// SPDX-License-Identifier: MIT
// Helpers for the net tests: connected loopback pairs, payloads whose every byte can be checked,
// a SIGPIPE counter and a RLIMIT_NOFILE guard.
#pragma once

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/uring_op.hpp>

#include <doctest/doctest.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ostream> // doctest prints std::error_code through it
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace corio::test {

/// Word `w` of payload `seed` (splitmix64): every 8 bytes differ, so a shifted, dropped or
/// repeated chunk never checks out.
[[nodiscard]] inline std::uint64_t pattern_word(std::uint64_t seed, std::uint64_t w) noexcept {
    std::uint64_t x = seed * 0xbf58476d1ce4e5b9ULL + (w + 1) * 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/// Byte `i` of payload `seed`.
[[nodiscard]] inline std::byte pattern_byte(std::uint64_t seed, std::size_t i) noexcept {
    return static_cast<std::byte>(pattern_word(seed, i / 8) >> (8 * (i % 8)));
}

[[nodiscard]] inline std::vector<std::byte> make_payload(std::uint64_t seed, std::size_t size) {
    std::vector<std::byte> out(size);
    for (std::size_t w = 0; w * 8 < size; ++w) {
        std::uint64_t word = pattern_word(seed, w);
        std::memcpy(out.data() + w * 8, &word, std::min<std::size_t>(8, size - w * 8));
    }
    return out;
}

/// The index of the first byte that is not pattern `seed` (from `offset` on), or data.size().
[[nodiscard]] inline std::size_t first_mismatch(std::span<const std::byte> data,
                                                std::uint64_t seed, std::size_t offset = 0) {
    for (std::size_t i = 0; i < data.size(); ++i)
        if (data[i] != pattern_byte(seed, offset + i))
            return i;
    return data.size();
}

[[nodiscard]] inline std::span<const std::byte> bytes_of(const std::string& s) noexcept {
    return std::as_bytes(std::span<const char>(s));
}

[[nodiscard]] inline std::string text_of(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// A listener on 127.0.0.1 with a port the kernel picked.
[[nodiscard]] inline net::tcp_listener loopback_listener(net::listen_options options = {}) {
    result<net::tcp_listener> l = net::tcp_listener::bind(net::socket_address::loopback_v4(0),
                                                          options);
    REQUIRE(l.has_value());
    return std::move(*l);
}

/// A connected pair over loopback: {client, server}. The connect completes before any accept
/// (the kernel finishes the handshake), so the two awaits can run one after the other.
inline task<std::pair<net::tcp_stream, net::tcp_stream>> tcp_pair() {
    net::tcp_listener listener = loopback_listener();
    net::socket_address addr = listener.local_address().value();
    result<net::tcp_stream> client = co_await net::tcp_stream::connect(addr);
    REQUIRE(client.has_value());
    result<net::tcp_stream> server = co_await listener.accept();
    REQUIRE(server.has_value());
    co_return std::pair<net::tcp_stream, net::tcp_stream>(std::move(*client), std::move(*server));
}

/// Yields through the ring until `done()` is true (progress without sleeping). Gives up after
/// `max_turns`: REQUIRE fails instead of hanging the suite.
template <class Predicate>
task<void> turn_until(Predicate done, int max_turns = 1'000'000) {
    for (int i = 0; i < max_turns; ++i) {
        if (done())
            co_return;
        result<void> r = co_await nop();
        r.value();
    }
    FAIL("condition not reached");
}

/// Counts SIGPIPE deliveries while alive (the suite's main ignores SIGPIPE; this installs a
/// counting handler so a signal would be seen rather than hidden).
class sigpipe_counter {
public:
    sigpipe_counter() {
        s_count = 0;
        struct sigaction sa {};
        sa.sa_handler = [](int) { s_count = s_count + 1; };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, &m_previous);
    }
    ~sigpipe_counter() { sigaction(SIGPIPE, &m_previous, nullptr); }
    sigpipe_counter(const sigpipe_counter&) = delete;
    sigpipe_counter& operator=(const sigpipe_counter&) = delete;

    [[nodiscard]] int count() const noexcept { return s_count; }

private:
    static inline volatile std::sig_atomic_t s_count = 0;
    struct sigaction m_previous {};
};

/// Lowers RLIMIT_NOFILE's soft limit for its lifetime.
class nofile_limit {
public:
    explicit nofile_limit(rlim_t soft) {
        REQUIRE(getrlimit(RLIMIT_NOFILE, &m_saved) == 0);
        rlimit lowered = m_saved;
        lowered.rlim_cur = soft;
        REQUIRE(setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    }
    ~nofile_limit() { restore(); }
    nofile_limit(const nofile_limit&) = delete;
    nofile_limit& operator=(const nofile_limit&) = delete;

    void restore() noexcept {
        if (!m_restored)
            setrlimit(RLIMIT_NOFILE, &m_saved);
        m_restored = true;
    }

private:
    rlimit m_saved{};        // the limit before
    bool m_restored = false; // restore() ran
};

} // namespace corio::test
