// SPDX-License-Identifier: MIT
// tcp_listener: a listening TCP socket; accept() one connection at a time or accept_multishot()
// for a stream of them (see listener.hpp).
#pragma once

#include <corio/net/listener.hpp>
#include <corio/net/tcp_stream.hpp>

namespace corio::net {

/// A TCP listener. `tcp_listener::bind(socket_address::loopback_v4(0))` binds an ephemeral port;
/// accepted streams inherit TCP_NODELAY and the other tcp_options from the listener.
using tcp_listener = basic_listener<tcp_stream>;

/// The multishot accept stream of a tcp_listener.
using tcp_accept_stream = basic_accept_stream<tcp_stream>;

} // namespace corio::net
