// SPDX-License-Identifier: MIT
// basic_socket and stream_socket: options, addresses, close through the ring, the looping ops.
#include <corio/net/socket.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace corio::net {

// ----- vectored send -----

void sendmsg_op::prepare(io_uring_sqe* sqe) noexcept {
    if (m_iov.size() == 1) {
        io_uring_prep_send(sqe, m_fd, m_iov[0].iov_base, detail::clamp_len(m_iov[0].iov_len),
                           m_msg_flags);
        return;
    }
    m_msg = {};
    // The kernel only reads the iovecs of a sendmsg: the const_cast never leads to a write.
    m_msg.msg_iov = const_cast<iovec*>(m_iov.data());
    m_msg.msg_iovlen = std::min(m_iov.size(), detail::k_max_iov);
    io_uring_prep_sendmsg(sqe, m_fd, &m_msg, static_cast<unsigned>(m_msg_flags));
}

void sendmsg_all_op::prepare(io_uring_sqe* sqe) noexcept {
    const iovec* first = m_iov.data() + m_index;
    std::size_t count = std::min(m_iov.size() - m_index, detail::k_max_iov);
    if (count == 1) {
        // One buffer left (consume() keeps m_offset below its length): a plain send.
        io_uring_prep_send(sqe, m_fd, static_cast<const char*>(first->iov_base) + m_offset,
                           detail::clamp_len(first->iov_len - m_offset), MSG_NOSIGNAL);
        return;
    }
    if (m_offset != 0) {
        // The last send ended inside *first: its rest and the next few go out from the window.
        count = std::min(count, k_window);
        m_window[0].iov_base = static_cast<char*>(first->iov_base) + m_offset;
        m_window[0].iov_len = first->iov_len - m_offset;
        std::copy(first + 1, first + count, m_window + 1);
        first = m_window;
    }
    m_msg = {};
    // The kernel only reads the iovecs of a sendmsg: the const_cast never leads to a write.
    m_msg.msg_iov = const_cast<iovec*>(first);
    m_msg.msg_iovlen = count;
    io_uring_prep_sendmsg(sqe, m_fd, &m_msg, MSG_NOSIGNAL);
}

void sendmsg_all_op::consume(std::size_t n) noexcept {
    while (m_index < m_iov.size()) {
        std::size_t rest = m_iov[m_index].iov_len - m_offset;
        if (n < rest) {
            m_offset += n;
            return;
        }
        n -= rest;
        ++m_index;
        m_offset = 0;
    }
}

// ----- close_op -----

bool close_op::await_ready() const noexcept { return !m_socket->is_open(); }

void close_op::await_suspend(std::coroutine_handle<> waiter) {
    io_context& ctx = io_context::current();
    ctx.reserve_sqes(2); // the cancel and the close must reach the kernel as one linked pair
    int fd = m_socket->release();

    io_uring_sqe* cancel = ctx.get_sqe();
    io_uring_prep_cancel_fd(cancel, fd, IORING_ASYNC_CANCEL_ALL);
    // A hard link: the close runs after the cancel even when there was nothing to cancel
    // (ENOENT), and never before it (the cancel looks the fd up when it runs).
    cancel->flags |= IOSQE_IO_HARDLINK;
    io_uring_sqe_set_data(cancel, nullptr); // internal: the loop ignores its completion
    ctx.note_cancel(cancel);

    io_uring_sqe* close = ctx.get_sqe();
    io_uring_prep_close(close, fd);
    m_waiter = waiter;
    m_complete = &on_complete;
    ctx.track(close, this);
}

void close_op::on_complete(corio::detail::io_op* op, int res, unsigned flags) noexcept {
    op->m_res = res;
    op->m_flags = flags;
    op->m_ctx->post(op);
}

// ----- basic_socket -----

void basic_socket::reset(int fd) noexcept {
    if (m_fd >= 0)
        io_context::close_fd(m_fd);
    m_fd = fd;
}

result<socket_address> basic_socket::local_address() const {
    socket_address addr;
    socklen_t len = socket_address::capacity();
    if (::getsockname(m_fd, addr.data(), &len) != 0)
        return errno_code(errno);
    addr.resize(len);
    return addr;
}

result<socket_address> basic_socket::peer_address() const {
    socket_address addr;
    socklen_t len = socket_address::capacity();
    if (::getpeername(m_fd, addr.data(), &len) != 0)
        return errno_code(errno);
    addr.resize(len);
    return addr;
}

result<void> basic_socket::set_option(int level, int name, int value) noexcept {
    if (::setsockopt(m_fd, level, name, &value, sizeof value) != 0)
        return errno_code(errno);
    return {};
}

result<int> basic_socket::option(int level, int name) const noexcept {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(m_fd, level, name, &value, &len) != 0)
        return errno_code(errno);
    return value;
}

result<void> basic_socket::set_linger_reset() noexcept {
    linger l{.l_onoff = 1, .l_linger = 0};
    if (::setsockopt(m_fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0)
        return errno_code(errno);
    return {};
}

} // namespace corio::net
