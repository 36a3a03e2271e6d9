// SPDX-License-Identifier: MIT
// tcp_stream: a connected TCP socket. connect (optionally with a timeout), recv/send in their
// _some/_exact/_all forms, shutdown, close through the ring; TCP_NODELAY on by default.
#pragma once

#include <corio/net/address.hpp>
#include <corio/net/connect.hpp>
#include <corio/net/socket.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/timer.hpp>

#include <chrono>

namespace corio::net {

/// Socket options a tcp_stream gets when it is created (connect) or inherits from its listener
/// (accept). Zero means "leave the kernel default".
struct tcp_options {
    bool no_delay = true;        ///< TCP_NODELAY: no Nagle delay for small writes (see DESIGN.md)
    bool keepalive = false;      ///< SO_KEEPALIVE: probe idle connections
    int keepalive_idle_s = 0;    ///< TCP_KEEPIDLE: idle seconds before the first probe
    int keepalive_interval_s = 0; ///< TCP_KEEPINTVL: seconds between probes
    int keepalive_count = 0;     ///< TCP_KEEPCNT: unanswered probes before the reset
    int send_buffer_size = 0;    ///< SO_SNDBUF in bytes
    int recv_buffer_size = 0;    ///< SO_RCVBUF in bytes
};

/// A connected TCP stream. Move-only; see stream_socket for the I/O and basic_socket for
/// close(). Reading returns 0 at orderly EOF; writing never raises SIGPIPE.
class tcp_stream : public stream_socket {
public:
    /// What connect() and listeners configure a new stream with.
    using options_type = tcp_options;

    tcp_stream() noexcept = default;
    /// Adopts a connected TCP socket fd.
    explicit tcp_stream(int fd) noexcept : stream_socket(fd) {}

    /// Connects to `peer` (IPv4 or IPv6). Resumes with the stream or ECONNREFUSED etc.
    [[nodiscard]] static connect_op<tcp_stream> connect(socket_address peer,
                                                        tcp_options options = {}) noexcept {
        return connect_op<tcp_stream>(peer, options);
    }

    /// Connects with a deadline: errc::timed_out when `limit` passes first (the attempt is
    /// cancelled and its socket closed).
    template <class Rep, class Period>
    [[nodiscard]] static timed_op<connect_op<tcp_stream>>
    connect(socket_address peer, std::chrono::duration<Rep, Period> limit,
            tcp_options options = {}) {
        return with_timeout(connect(peer, options), limit);
    }

    /// TCP_NODELAY.
    result<void> set_no_delay(bool on) noexcept;
    /// Whether TCP_NODELAY is on.
    [[nodiscard]] result<bool> no_delay() const noexcept;

    /// SO_KEEPALIVE, with the probe timing when non-zero (seconds, count).
    result<void> set_keepalive(bool on, int idle_s = 0, int interval_s = 0, int count = 0) noexcept;
    /// Whether SO_KEEPALIVE is on.
    [[nodiscard]] result<bool> keepalive() const noexcept;

    /// Applies `options` to socket `fd` (what connect and listeners do).
    static result<void> configure(int fd, const tcp_options& options) noexcept;
};

} // namespace corio::net
