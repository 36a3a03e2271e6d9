// SPDX-License-Identifier: MIT
// udp_socket: datagrams through the ring. send_to/recv_from are IORING_OP_SENDMSG/RECVMSG whose
// msghdr, iovec and peer address live in the op (in the awaiting frame), as the kernel needs them.
#pragma once

#include <corio/net/address.hpp>
#include <corio/net/socket.hpp>
#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/result.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string_view>

namespace corio::net {

/// One received datagram.
struct datagram {
    std::size_t size = 0;    ///< bytes stored in the buffer
    socket_address from;     ///< the sender
    bool truncated = false;  ///< the datagram was longer than the buffer (MSG_TRUNC): rest lost
};

/// IORING_OP_SENDMSG of one datagram to `to` (MSG_NOSIGNAL). Resumes with the bytes sent.
class [[nodiscard]] send_to_op : public corio::detail::basic_op<send_to_op> {
public:
    /// Sends `data` on `fd` to `to` (the address is copied into the op).
    send_to_op(int fd, std::span<const std::byte> data, const socket_address& to) noexcept
        : m_fd(fd), m_data(data), m_to(to) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        // The pointers are taken here, where the op finally lives (it may have been copied).
        m_iov = {const_cast<std::byte*>(m_data.data()), m_data.size()};
        m_msg = {};
        m_msg.msg_name = m_to.data();
        m_msg.msg_namelen = m_to.size();
        m_msg.msg_iov = &m_iov;
        m_msg.msg_iovlen = 1;
        io_uring_prep_sendmsg(sqe, m_fd, &m_msg, MSG_NOSIGNAL);
    }
    result<std::size_t> await_resume() const noexcept {
        return corio::detail::result_from_res<std::size_t>(m_res);
    }

private:
    int m_fd;                          // the socket
    std::span<const std::byte> m_data; // the payload; the caller's until resumption
    socket_address m_to;               // the destination, read by the kernel
    iovec m_iov{};                     // points at m_data
    msghdr m_msg{};                    // points at m_to and m_iov
};

/// IORING_OP_RECVMSG of one datagram into `buffer`. Resumes with a `datagram`.
class [[nodiscard]] recv_from_op : public corio::detail::basic_op<recv_from_op> {
public:
    /// Receives one datagram on `fd` into `buffer`.
    recv_from_op(int fd, std::span<std::byte> buffer) noexcept : m_fd(fd), m_buffer(buffer) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        m_iov = {m_buffer.data(), m_buffer.size()};
        m_msg = {};
        m_msg.msg_name = m_from.data();
        m_msg.msg_namelen = socket_address::capacity();
        m_msg.msg_iov = &m_iov;
        m_msg.msg_iovlen = 1;
        io_uring_prep_recvmsg(sqe, m_fd, &m_msg, 0);
    }
    result<datagram> await_resume() noexcept {
        if (m_res < 0)
            return errno_code(-m_res);
        m_from.resize(m_msg.msg_namelen);
        return datagram{static_cast<std::size_t>(m_res), m_from, (m_msg.msg_flags & MSG_TRUNC) != 0};
    }

private:
    int m_fd;                      // the socket
    std::span<std::byte> m_buffer; // where the kernel writes; the caller's until resumption
    socket_address m_from;         // the kernel writes the sender here
    iovec m_iov{};                 // points at m_buffer
    msghdr m_msg{};                // points at m_from and m_iov; the kernel updates its lengths
};

/// A UDP socket. Move-only.
class udp_socket : public basic_socket {
public:
    udp_socket() noexcept = default;
    /// Adopts a datagram socket fd.
    explicit udp_socket(int fd) noexcept : basic_socket(fd) {}

    /// A socket bound to `addr` (port 0: the kernel picks one; see local_address()).
    [[nodiscard]] static result<udp_socket> bind(const socket_address& addr) noexcept;
    /// An unbound socket of `family` (AF_INET or AF_INET6): the first send_to binds it.
    [[nodiscard]] static result<udp_socket> open(int family) noexcept;

    /// Sends one datagram to `to`. `data` must stay valid until the co_await returns.
    [[nodiscard]] send_to_op send_to(std::span<const std::byte> data,
                                     const socket_address& to) noexcept {
        return send_to_op(native_handle(), data, to);
    }
    /// send_to() of text; the characters must stay valid until the co_await returns.
    [[nodiscard]] send_to_op send_to(std::string_view text, const socket_address& to) noexcept {
        return send_to(std::as_bytes(std::span<const char>(text)), to);
    }

    /// Receives one datagram (its size, sender, and whether it was truncated).
    [[nodiscard]] recv_from_op recv_from(std::span<std::byte> buffer) noexcept {
        return recv_from_op(native_handle(), buffer);
    }
    /// recv_from() into a char buffer.
    [[nodiscard]] recv_from_op recv_from(std::span<char> buffer) noexcept {
        return recv_from(std::as_writable_bytes(buffer));
    }
};

} // namespace corio::net
