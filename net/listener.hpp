// SPDX-License-Identifier: MIT
// basic_listener<Stream>: a bound, listening stream socket (TCP or Unix) with accept() one at a
// time and a multishot accept stream that re-arms itself and backs off when out of fds.
#pragma once

#include <corio/net/address.hpp>
#include <corio/net/detail/accept_state.hpp>
#include <corio/net/socket.hpp>
#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/result.hpp>

#include <liburing.h>
#include <sys/socket.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace corio::net {

/// How a listener is set up.
struct listen_options {
    int backlog = SOMAXCONN;  ///< listen() backlog: connections the kernel completes unaccepted
    bool reuse_address = true; ///< SO_REUSEADDR (IP only): rebind while old connections linger
    bool reuse_port = false;   ///< SO_REUSEPORT (IP only): several listeners share a port
};

/// IORING_OP_ACCEPT of one connection (SOCK_CLOEXEC). Resumes with the connected Stream.
/// Errors are returned as they come, EMFILE/ENFILE included (accept_stream backs off instead).
template <class Stream>
class [[nodiscard]] accept_op : public corio::detail::basic_op<accept_op<Stream>> {
public:
    /// Accepts on listening socket `fd`.
    explicit accept_op(int fd) noexcept : m_fd(fd) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_accept(sqe, m_fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
    result<Stream> await_resume() const noexcept {
        if (this->m_res < 0)
            return errno_code(-this->m_res);
        return Stream(this->m_res);
    }

private:
    int m_fd; // the listening socket
};

/// Counters of an accept stream.
struct accept_stream_stats {
    std::uint64_t accepted = 0; ///< connections accepted
    std::uint64_t backoffs = 0; ///< back-offs after EMFILE/ENFILE/ENOBUFS/ENOMEM
    std::uint64_t pauses = 0;   ///< pauses because the consumer fell behind
    std::uint64_t arms = 0;     ///< accept SQEs armed (the first one and every re-arm)
};

/// Multishot accept (IORING_ACCEPT_MULTISHOT, kernel 5.19+): one SQE accepts connection after
/// connection into a small queue; next() hands them out. The stream re-arms when the kernel ends
/// the op, pauses when `queue_limit` connections wait unclaimed (the backlog holds the rest), and
/// when the process is out of fds (EMFILE/ENFILE) it waits 10 ms, doubling to 100 ms, through the
/// ring before trying again: the loop keeps serving the connections it has and never spins.
/// One consumer at a time; the listener must outlive the stream and not move meanwhile.
template <class Stream>
class basic_accept_stream {
public:
    class next_op;

    /// A stream on `listener` that pauses at `queue_limit` unclaimed connections. Nothing is
    /// armed before the first next().
    basic_accept_stream(const basic_socket& listener, std::size_t queue_limit)
        : m_state(new detail::accept_state(io_context::current(), listener, queue_limit)) {}
    /// Cancels the armed accept; connections it queued are closed when the kernel is done.
    ~basic_accept_stream() {
        if (m_state)
            m_state->orphan(); // cancels the accept; queued connections are closed
    }
    /// Takes over the stream of `other`, which must not be used afterwards (only destroyed).
    basic_accept_stream(basic_accept_stream&& other) noexcept
        : m_state(std::exchange(other.m_state, nullptr)) {}
    basic_accept_stream& operator=(basic_accept_stream&&) = delete;
    basic_accept_stream(const basic_accept_stream&) = delete;
    basic_accept_stream& operator=(const basic_accept_stream&) = delete;

    /// Awaits the next connection. Errors end the stream and are sticky: ECANCELED after the
    /// listener was closed or the loop torn down, EBADF/EINVAL for a listener that is not open
    /// or not listening. errc::operation_canceled (not sticky) when the awaiting task is
    /// cancelled.
    [[nodiscard]] next_op next() noexcept { return next_op(*m_state); }

    /// Counters of this stream so far (see accept_stream_stats).
    [[nodiscard]] accept_stream_stats stats() const noexcept {
        return {m_state->m_accepted, m_state->m_backoffs, m_state->m_pauses, m_state->arms()};
    }

private:
    detail::accept_state* m_state; // heap: outlives this object while the kernel still has it
};

/// The awaiter of basic_accept_stream::next(). Lives in the awaiting frame.
template <class Stream>
class [[nodiscard]] basic_accept_stream<Stream>::next_op {
public:
    /// Made by basic_accept_stream::next().
    explicit next_op(detail::accept_state& state) noexcept : m_state(&state) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        stop_token token = corio::detail::stop_token_of(h);
        if (token.stop_requested()) {
            m_waiter.m_cancelled = true;
            return false;
        }
        if (m_state->has_item())
            return false;
        m_state->wait(m_waiter, h, token);
        return true;
    }

    result<Stream> await_resume() noexcept {
        if (m_waiter.m_cancelled)
            return std::errc::operation_canceled;
        result<int> fd = m_state->take();
        if (!fd)
            return fd.error();
        return Stream(*fd);
    }

private:
    detail::accept_state* m_state;  // the stream
    detail::stream_waiter m_waiter; // the wait, while suspended
};

namespace detail {
/// socket() + options + bind() + listen(). `configure` applies the stream options that accepted
/// sockets inherit (TCP_NODELAY and the rest on Linux).
result<int> open_listener(const socket_address& addr, const listen_options& options,
                          result<void> (*configure)(int fd, const void* stream_options),
                          const void* stream_options);
} // namespace detail

/// A listening stream socket whose connections arrive as `Stream`s (tcp_stream, unix_stream).
template <class Stream>
class basic_listener : public basic_socket {
public:
    /// The type of the accepted connections.
    using stream_type = Stream;
    /// The multishot accept stream of this listener (see basic_accept_stream).
    using accept_stream = basic_accept_stream<Stream>;

    /// Not open.
    basic_listener() noexcept = default;
    /// Adopts a listening socket fd.
    explicit basic_listener(int fd) noexcept : basic_socket(fd) {}

    /// Binds to `addr` and listens. Port 0 lets the kernel pick a port: read it back with
    /// local_address(). `stream_options` are set on the listener, so every accepted stream
    /// inherits them (no syscall per connection). Errors: EADDRINUSE, EACCES, …
    [[nodiscard]] static result<basic_listener>
    bind(const socket_address& addr, listen_options options = {},
         typename Stream::options_type stream_options = {}) {
        auto configure = [](int fd, const void* o) {
            return Stream::configure(fd, *static_cast<const typename Stream::options_type*>(o));
        };
        result<int> fd = detail::open_listener(addr, options, configure, &stream_options);
        if (!fd)
            return fd.error();
        return basic_listener(*fd);
    }

    /// Accepts one connection (see accept_op).
    [[nodiscard]] accept_op<Stream> accept() noexcept { return accept_op<Stream>(native_handle()); }

    /// A multishot accept stream on this listener (see basic_accept_stream). Nothing is armed
    /// until its first next().
    [[nodiscard]] accept_stream accept_multishot(std::size_t queue_limit = 64) {
        return accept_stream(*this, queue_limit);
    }
};

} // namespace corio::net
