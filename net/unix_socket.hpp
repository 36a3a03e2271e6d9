// SPDX-License-Identifier: MIT
// Unix stream sockets: unix_stream (connect to a path, or a connected pair) and unix_listener.
// Same I/O as TCP (stream_socket); the address is a path or an abstract `@name`.
#pragma once

#include <corio/net/address.hpp>
#include <corio/net/connect.hpp>
#include <corio/net/listener.hpp>
#include <corio/net/socket.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/timer.hpp>

#include <chrono>
#include <utility>

namespace corio::net {

/// Unix stream sockets have no per-socket options corio sets.
struct unix_options {};

/// A connected Unix stream socket. Move-only; see stream_socket for the I/O.
class unix_stream : public stream_socket {
public:
    /// What connect() and listeners configure a new stream with (nothing, for now).
    using options_type = unix_options;

    unix_stream() noexcept = default;
    /// Adopts a connected AF_UNIX stream socket fd.
    explicit unix_stream(int fd) noexcept : stream_socket(fd) {}

    /// Connects to the listener at `peer` (a Unix address). ENOENT when no socket file exists,
    /// ECONNREFUSED when nobody listens on it.
    [[nodiscard]] static connect_op<unix_stream> connect(socket_address peer) noexcept {
        return connect_op<unix_stream>(peer, {});
    }
    /// Connects with a deadline (errc::timed_out).
    template <class Rep, class Period>
    [[nodiscard]] static timed_op<connect_op<unix_stream>>
    connect(socket_address peer, std::chrono::duration<Rep, Period> limit) {
        return with_timeout(connect(peer), limit);
    }

    /// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two streams connected to each other.
    [[nodiscard]] static result<std::pair<unix_stream, unix_stream>> pair() noexcept;

    /// Nothing to apply (connect_op and listeners call it for every stream type).
    static result<void> configure(int, const unix_options&) noexcept { return {}; }
};

/// A listening Unix stream socket. Binding creates the socket file (EADDRINUSE if it exists:
/// remove a stale one first); abstract names (`@name`) leave no file behind.
using unix_listener = basic_listener<unix_stream>;

/// The multishot accept stream of a unix_listener.
using unix_accept_stream = basic_accept_stream<unix_stream>;

} // namespace corio::net
