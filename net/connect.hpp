// SPDX-License-Identifier: MIT
// connect_op: creates a socket and connects it through the ring (IORING_OP_CONNECT), resuming
// with the connected stream. Shared by TCP and Unix streams; with_timeout() gives it a deadline.
#pragma once

#include <corio/net/address.hpp>
#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/result.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace corio::net {

/// Awaits a new connection to `peer` as a `Stream`. The socket is created (SOCK_CLOEXEC) and
/// configured with `Stream::configure(fd, options)` when the op starts, so an op cancelled
/// before it starts creates nothing. Errors: ECONNREFUSED, ENETUNREACH, ETIMEDOUT (under
/// with_timeout), ECANCELED, or the socket()/setsockopt() error.
template <class Stream>
class [[nodiscard]] connect_op : public corio::detail::basic_op<connect_op<Stream>> {
public:
    /// The socket options the new stream is configured with (tcp_options, unix_options).
    using options_type = typename Stream::options_type;

    /// Touches nothing yet: the socket is made when the op starts.
    connect_op(socket_address peer, options_type options) noexcept
        : m_peer(peer), m_options(options) {}
    /// Copied only before it starts (with_timeout takes it by value): no fd to share yet.
    connect_op(const connect_op& other) noexcept
        : corio::detail::basic_op<connect_op<Stream>>(other), m_peer(other.m_peer),
          m_options(other.m_options) {}
    connect_op& operator=(const connect_op&) = delete;
    /// Closes a socket that was made but not handed out (failed, cancelled, timed out).
    ~connect_op() {
        if (m_fd >= 0)
            io_context::close_fd(m_fd);
    }

    /// socket(), Stream::configure(), then IORING_OP_CONNECT (a NOP carries a setup error).
    /// Called again after EINTR: the interrupted attempt's socket is closed and a fresh one
    /// connects (a second connect on it would only report EALREADY).
    void prepare(io_uring_sqe* sqe) noexcept {
        if (m_fd >= 0)
            io_context::close_fd(std::exchange(m_fd, -1));
        m_fd = ::socket(m_peer.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (m_fd < 0) {
            m_setup_error = errno;
            io_uring_prep_nop(sqe); // the op still completes through the ring, as always
            return;
        }
        result<void> configured = Stream::configure(m_fd, m_options);
        if (!configured) {
            m_setup_error = configured.error().value();
            io_uring_prep_nop(sqe);
            return;
        }
        io_uring_prep_connect(sqe, m_fd, m_peer.data(), m_peer.size());
    }

    /// The connected stream, or why there is none.
    result<Stream> await_resume() noexcept {
        if (m_setup_error != 0)
            return errno_code(m_setup_error);
        if (this->m_res < 0)
            return errno_code(-this->m_res);
        return Stream(std::exchange(m_fd, -1));
    }

private:
    socket_address m_peer;  // where to connect; the kernel reads it when the SQE is issued
    options_type m_options; // applied to the socket before connecting
    int m_fd = -1;          // the socket until it is handed to the Stream
    int m_setup_error = 0;  // errno of socket()/configure(), which run in prepare()
};

} // namespace corio::net
