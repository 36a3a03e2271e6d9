// SPDX-License-Identifier: MIT
// What every socket shares (an owned fd, options, addresses, cancel and close through the ring)
// and what every stream socket shares (recv/send in their _some/_exact/_all forms, vectored
// send, shutdown, multishot recv). TCP and Unix stream sockets are thin layers on top.
#pragma once

#include <corio/net/address.hpp>
#include <corio/net/buffer_ring.hpp>
#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/detail/transfer_op.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/task.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <coroutine>
#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

namespace corio::net {

namespace detail {
/// The most one recv/send asks for: io_uring's len is 32 bits and res an int (the kernel caps
/// a single transfer at MAX_RW_COUNT anyway). _some is allowed to be partial.
inline constexpr std::size_t k_max_transfer = 0x7ffff000;

[[nodiscard]] inline unsigned clamp_len(std::size_t n) noexcept {
    return static_cast<unsigned>(n < k_max_transfer ? n : k_max_transfer);
}

/// The most iovecs one sendmsg takes (the kernel's UIO_MAXIOV; more gives EMSGSIZE).
inline constexpr std::size_t k_max_iov = 1024;
} // namespace detail

/// IORING_OP_RECV into a caller-owned buffer. Resumes with the byte count (0: orderly EOF).
class [[nodiscard]] recv_op : public corio::detail::basic_op<recv_op> {
public:
    /// Receives on `fd` into `buffer` with MSG_* `flags`.
    recv_op(int fd, std::span<std::byte> buffer, int flags) noexcept
        : m_fd(fd), m_buffer(buffer), m_msg_flags(flags) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_recv(sqe, m_fd, m_buffer.data(), detail::clamp_len(m_buffer.size()),
                           m_msg_flags);
    }
    result<std::size_t> await_resume() const noexcept {
        return corio::detail::result_from_res<std::size_t>(m_res);
    }

private:
    int m_fd;                     // the socket
    std::span<std::byte> m_buffer; // where the kernel writes; the caller's until resumption
    int m_msg_flags;              // MSG_* flags
};

/// IORING_OP_SEND with MSG_NOSIGNAL always: a reset peer gives EPIPE/ECONNRESET, never SIGPIPE.
class [[nodiscard]] send_op : public corio::detail::basic_op<send_op> {
public:
    /// Sends `data` on `fd` with MSG_* `flags` (MSG_NOSIGNAL added).
    send_op(int fd, std::span<const std::byte> data, int flags) noexcept
        : m_fd(fd), m_data(data), m_msg_flags(flags | MSG_NOSIGNAL) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_send(sqe, m_fd, m_data.data(), detail::clamp_len(m_data.size()), m_msg_flags);
    }
    result<std::size_t> await_resume() const noexcept {
        return corio::detail::result_from_res<std::size_t>(m_res);
    }

private:
    int m_fd;                          // the socket
    std::span<const std::byte> m_data; // what the kernel reads; the caller's until resumption
    int m_msg_flags;                   // MSG_* flags, MSG_NOSIGNAL included
};

/// IORING_OP_SENDMSG over caller-owned iovecs, MSG_NOSIGNAL always. One SQE: resumes with the
/// bytes sent, some prefix of the concatenated buffers (maybe all of them). A single iovec goes
/// out as IORING_OP_SEND, which spares the kernel the msghdr (same result).
class [[nodiscard]] sendmsg_op : public corio::detail::basic_op<sendmsg_op> {
public:
    /// Sends the buffers `iov` describes on `fd` with MSG_* `flags` (MSG_NOSIGNAL added). At most
    /// detail::k_max_iov of them per call (the rest is a partial send).
    sendmsg_op(int fd, std::span<const iovec> iov, int flags) noexcept
        : m_fd(fd), m_iov(iov), m_msg_flags(flags | MSG_NOSIGNAL) {}

    void prepare(io_uring_sqe* sqe) noexcept;
    result<std::size_t> await_resume() const noexcept {
        return corio::detail::result_from_res<std::size_t>(m_res);
    }

private:
    int m_fd;                     // the socket
    std::span<const iovec> m_iov; // the caller's buffers (read, never written) until resumption
    int m_msg_flags;              // MSG_* flags, MSG_NOSIGNAL included
    msghdr m_msg{};               // built by prepare() (the op may have moved since construction)
};

/// Receives until the buffer is full: IORING_OP_RECV repeated inside the ring after partial
/// completions, without a coroutine frame; the awaiter resumes once. Resumes with buffer.size(),
/// or the error with transferred() = the bytes already in the buffer; the peer shutting down
/// first is the error io_errc::eof (transferred() 0: it closed between messages). Not for
/// with_timeout() (one SQE only): use timeout(op, d).
class [[nodiscard]] recv_exact_op : public corio::detail::transfer_op<recv_exact_op> {
public:
    /// Made by stream_socket::recv_exact(). Touches no ring until awaited.
    recv_exact_op(int fd, std::span<std::byte> buffer) noexcept : m_fd(fd), m_buffer(buffer) {}

    [[nodiscard]] bool is_settled() const noexcept { return m_buffer.empty(); }
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_recv(sqe, m_fd, m_buffer.data() + m_done,
                           detail::clamp_len(m_buffer.size() - m_done), 0);
    }
    /// Called with res > 0; true while bytes are still due (res == 0, EOF, ends the loop).
    bool advance(int res) noexcept {
        m_done += static_cast<std::size_t>(res);
        return m_done < m_buffer.size();
    }
    transfer_result await_resume() const noexcept {
        if (m_done == m_buffer.size()) [[likely]]
            return m_done;
        if (m_res < 0)
            return {errno_code(-m_res), m_done};
        return {io_errc::eof, m_done}; // res 0: the peer shut down
    }

private:
    int m_fd;                      // the socket
    std::span<std::byte> m_buffer; // where the kernel writes; the caller's until resumption
    std::size_t m_done = 0;        // bytes received so far
};

/// Sends all of `data`: IORING_OP_SEND (MSG_NOSIGNAL) repeated inside the ring after partial
/// completions, without a coroutine frame; the awaiter resumes once, with data.size() or the
/// error with transferred() = the bytes the kernel took before it. Not for with_timeout() (one
/// SQE only): use timeout(op, d).
class [[nodiscard]] send_all_op : public corio::detail::transfer_op<send_all_op> {
public:
    /// Made by stream_socket::send_all(). Touches no ring until awaited.
    send_all_op(int fd, std::span<const std::byte> data) noexcept : m_fd(fd), m_data(data) {}

    [[nodiscard]] bool is_settled() const noexcept { return m_data.empty(); }
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_send(sqe, m_fd, m_data.data() + m_done,
                           detail::clamp_len(m_data.size() - m_done), MSG_NOSIGNAL);
    }
    bool advance(int res) noexcept {
        m_done += static_cast<std::size_t>(res);
        return m_done < m_data.size();
    }
    transfer_result await_resume() const noexcept {
        if (m_done == m_data.size()) [[likely]]
            return m_done;
        if (m_res < 0)
            return {errno_code(-m_res), m_done};
        // A send of a non-empty buffer that moved nothing (res 0) cannot make progress.
        return {std::errc::io_error, m_done};
    }

private:
    int m_fd;                          // the socket
    std::span<const std::byte> m_data; // what the kernel reads; the caller's until resumption
    std::size_t m_done = 0;            // bytes sent so far
};

/// Sends all the buffers `iov` describes, in order: IORING_OP_SENDMSG (MSG_NOSIGNAL) repeated
/// inside the ring after partial completions, without a coroutine frame; the awaiter resumes
/// once, with the total byte count or the error with transferred() = the bytes sent before it.
/// The caller's iovec array is only read, never modified: each SQE points into it directly, up
/// to detail::k_max_iov iovecs. After a partial send that ends inside an iovec, the rest
/// of that one and up to k_window - 1 iovecs after it go out from a copy in the op (128 bytes,
/// the price of leaving the caller's array alone); once a send ends on a boundary again, SQEs
/// point into the caller's array again. When one buffer is left, the SQE is a plain send.
/// Not for with_timeout() (several SQEs): use timeout(op, d).
class [[nodiscard]] sendmsg_all_op : public corio::detail::transfer_op<sendmsg_all_op> {
public:
    /// The iovecs copied per SQE after a send that ended inside an iovec.
    static constexpr std::size_t k_window = 8;

    /// Made by stream_socket::send_all(std::span<const iovec>). Touches no ring until awaited.
    sendmsg_all_op(int fd, std::span<const iovec> iov) noexcept : m_fd(fd), m_iov(iov) {
        consume(0); // skips leading empty buffers: all empty means settled
    }

    [[nodiscard]] bool is_settled() const noexcept { return m_index == m_iov.size(); }
    void prepare(io_uring_sqe* sqe) noexcept;
    bool advance(int res) noexcept {
        m_done += static_cast<std::size_t>(res);
        consume(static_cast<std::size_t>(res));
        return m_index < m_iov.size();
    }
    transfer_result await_resume() const noexcept {
        if (m_index == m_iov.size()) [[likely]]
            return m_done;
        if (m_res < 0)
            return {errno_code(-m_res), m_done};
        // A send of a non-empty buffer that moved nothing (res 0) cannot make progress.
        return {std::errc::io_error, m_done};
    }

private:
    /// Moves the position `n` bytes on, past every buffer it completes and past empty ones.
    void consume(std::size_t n) noexcept;

    int m_fd;                     // the socket
    std::span<const iovec> m_iov; // the caller's buffers (read, never written) until resumption
    std::size_t m_index = 0;      // the first buffer not sent completely
    std::size_t m_offset = 0;     // bytes of m_iov[m_index] already sent
    std::size_t m_done = 0;       // bytes sent so far
    msghdr m_msg{};               // the kernel reads it (and its iovecs) until the SQE completes
    iovec m_window[k_window]{};   // the rest of a split iovec and the ones after it
};

/// IORING_OP_SHUTDOWN (kernel 5.11+).
class [[nodiscard]] shutdown_op : public corio::detail::basic_op<shutdown_op> {
public:
    /// Shuts `fd` down in direction `how`.
    shutdown_op(int fd, int how) noexcept : m_fd(fd), m_how(how) {}

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, m_fd, m_how); }
    result<void> await_resume() const noexcept {
        return corio::detail::result_from_res<void>(m_res);
    }

private:
    int m_fd;  // the socket
    int m_how; // SHUT_RD, SHUT_WR or SHUT_RDWR
};

/// Cancels every op in flight on a socket without closing it: IORING_OP_ASYNC_CANCEL with
/// IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL (kernel 5.19+). Resumes with the number of
/// ops cancelled (0 when none was in flight), or an error. Each op cancelled resumes on its own
/// completion with ECANCELED (or with its result, if it completed first); the socket stays open.
/// Only SQEs that reach the kernel before the cancel are hit: a looping op (send_all,
/// recv_exact) whose last SQE had completed goes on with its next one, and a multishot
/// recv_stream on the socket ends (with a sticky ECANCELED).
class [[nodiscard]] cancel_op : public corio::detail::basic_op<cancel_op> {
public:
    /// Cancels the ops on `fd` (a socket that is not open, -1, settles at once with 0).
    explicit cancel_op(int fd) noexcept : m_fd(fd) {}

    [[nodiscard]] bool await_ready() const noexcept { return m_fd < 0; }
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_cancel_fd(sqe, m_fd, IORING_ASYNC_CANCEL_ALL);
    }
    result<std::size_t> await_resume() const noexcept {
        // ENOENT: nothing matched. With CANCEL_ALL the kernels here answer 0 instead; ENOENT
        // is mapped all the same, as the documented "none" answer of an async cancel.
        if (m_fd < 0 || m_res == -ENOENT)
            return std::size_t{0};
        return corio::detail::result_from_res<std::size_t>(m_res);
    }

private:
    int m_fd; // the socket whose ops are cancelled
};

class basic_socket;

/// Closes a socket through the ring: IORING_OP_ASYNC_CANCEL of every op on the fd
/// (IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL), hard-linked to IORING_OP_CLOSE. Ops queued
/// earlier reach the kernel first and are cancelled; the fd number is freed only after that, so a
/// stale op can never act on the socket that reuses the number. Not cancellable: a close always
/// happens. Kernel 5.19+.
class [[nodiscard]] close_op : private corio::detail::io_op {
public:
    /// Closes `socket` (which gives up its fd when the close is submitted).
    explicit close_op(basic_socket& socket) noexcept : m_socket(&socket) {}
    close_op(const close_op&) = delete;
    close_op& operator=(const close_op&) = delete;

    /// Closing a socket that is not open succeeds at once.
    [[nodiscard]] bool await_ready() const noexcept;
    /// Queues the linked cancel and close; the socket is no longer open from here on.
    void await_suspend(std::coroutine_handle<> waiter);
    result<void> await_resume() const noexcept {
        return corio::detail::result_from_res<void>(m_res);
    }

private:
    static void on_complete(corio::detail::io_op* op, int res, unsigned flags) noexcept;

    basic_socket* m_socket; // gives up its fd when the close is submitted
};

/// An owned socket fd. Move-only. Destroying an open socket closes it with close(2) at once;
/// prefer `co_await s.close()`, which also cancels the socket's pending ops first (an op still
/// queued on a destroyed socket could otherwise meet a new socket that got the same fd number).
class basic_socket {
public:
    basic_socket() noexcept = default;
    /// Adopts `fd` (closed by this object from now on).
    explicit basic_socket(int fd) noexcept : m_fd(fd) {}
    /// Takes over the fd of `other`, which is left not open.
    basic_socket(basic_socket&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    /// Closes the fd this socket owns with close(2) at once (like the destructor), then takes over
    /// the fd of `other`.
    basic_socket& operator=(basic_socket&& other) noexcept {
        if (this != &other)
            reset(std::exchange(other.m_fd, -1));
        return *this;
    }
    basic_socket(const basic_socket&) = delete;
    basic_socket& operator=(const basic_socket&) = delete;
    ~basic_socket() { reset(-1); }

    /// The fd, or -1.
    [[nodiscard]] int native_handle() const noexcept { return m_fd; }
    /// True while this object owns an fd.
    [[nodiscard]] bool is_open() const noexcept { return m_fd >= 0; }
    /// Gives the fd up without closing it.
    [[nodiscard]] int release() noexcept { return std::exchange(m_fd, -1); }

    /// Cancels every op in flight on this socket, from any task, and leaves it open (see
    /// cancel_op): wakes a task blocked in recv on an idle connection, say, without closing the
    /// socket under it. Resumes with the number of ops cancelled (0: none was in flight).
    [[nodiscard]] cancel_op cancel() const noexcept { return cancel_op(m_fd); }

    /// Closes through the ring after cancelling the socket's pending ops (see close_op).
    /// Afterwards the socket is not open. Await it at once.
    [[nodiscard]] close_op close() noexcept { return close_op(*this); }

    /// getsockname(): for a listener bound to port 0, the port the kernel picked.
    [[nodiscard]] result<socket_address> local_address() const;
    /// getpeername().
    [[nodiscard]] result<socket_address> peer_address() const;

    /// setsockopt() with an int value (a plain syscall: it never blocks).
    result<void> set_option(int level, int name, int value) noexcept;
    /// getsockopt() of an int value.
    [[nodiscard]] result<int> option(int level, int name) const noexcept;

    /// SO_SNDBUF / SO_RCVBUF (the kernel doubles the value and applies its limits).
    result<void> set_send_buffer_size(int bytes) noexcept {
        return set_option(SOL_SOCKET, SO_SNDBUF, bytes);
    }
    /// SO_RCVBUF (the kernel doubles the value and applies its limits).
    result<void> set_recv_buffer_size(int bytes) noexcept {
        return set_option(SOL_SOCKET, SO_RCVBUF, bytes);
    }
    /// SO_SNDBUF as the kernel reports it (twice what was set).
    [[nodiscard]] result<int> send_buffer_size() const noexcept {
        return option(SOL_SOCKET, SO_SNDBUF);
    }
    /// SO_RCVBUF as the kernel reports it (twice what was set).
    [[nodiscard]] result<int> recv_buffer_size() const noexcept {
        return option(SOL_SOCKET, SO_RCVBUF);
    }

    /// SO_LINGER with a zero timeout: the next close sends RST instead of FIN (for tests and for
    /// dropping abusive peers without TIME_WAIT).
    result<void> set_linger_reset() noexcept;

private:
    void reset(int fd) noexcept;

    int m_fd = -1; // the owned socket, or -1
};

/// A connected stream socket (TCP or Unix). All ops take the fd when they are created: await
/// them at once, and never across a close() of the same socket.
class stream_socket : public basic_socket {
public:
    /// basic_socket's constructors: not open, or adopting a connected fd.
    using basic_socket::basic_socket;

    /// One recv: up to buffer.size() bytes, at least 1 unless the peer shut down (0: orderly
    /// EOF) or the buffer is empty. Errors: ECONNRESET, ECANCELED (cancelled or socket closed),
    /// ETIMEDOUT under with_timeout. `buffer` must stay valid until the co_await returns.
    [[nodiscard]] recv_op recv_some(std::span<std::byte> buffer, int flags = 0) noexcept {
        return recv_op(native_handle(), buffer, flags);
    }
    /// recv_some() into a char buffer.
    [[nodiscard]] recv_op recv_some(std::span<char> buffer, int flags = 0) noexcept {
        return recv_some(std::as_writable_bytes(buffer), flags);
    }

    /// One send: some prefix of `data` (maybe all of it). MSG_NOSIGNAL: a reset peer gives
    /// EPIPE or ECONNRESET, never a signal.
    [[nodiscard]] send_op send_some(std::span<const std::byte> data, int flags = 0) noexcept {
        return send_op(native_handle(), data, flags);
    }
    /// send_some() of text; the characters must stay valid until the co_await returns.
    [[nodiscard]] send_op send_some(std::string_view text, int flags = 0) noexcept {
        return send_some(std::as_bytes(std::span<const char>(text)), flags);
    }

    /// One sendmsg of the buffers `iov` describes (gather): some prefix of their concatenation
    /// (maybe all of it), at most detail::k_max_iov iovecs' worth. MSG_NOSIGNAL as above. The
    /// iovec array and the bytes must stay valid until the co_await returns; neither is modified.
    [[nodiscard]] sendmsg_op send_some(std::span<const iovec> iov, int flags = 0) noexcept {
        return sendmsg_op(native_handle(), iov, flags);
    }

    /// Receives until `buffer` is full: buffer.size(), or the error, with transferred() = the
    /// bytes already received into the buffer. The peer shutting down first is io_errc::eof
    /// (transferred() == 0: between messages; more: in the middle of one). Other errors as
    /// recv_some. One awaiter however many recv SQEs it takes (no coroutine frame).
    [[nodiscard]] recv_exact_op recv_exact(std::span<std::byte> buffer) noexcept {
        return recv_exact_op(native_handle(), buffer);
    }
    /// recv_exact() into a char buffer.
    [[nodiscard]] recv_exact_op recv_exact(std::span<char> buffer) noexcept {
        return recv_exact(std::as_writable_bytes(buffer));
    }

    /// Sends all of `data` (as many send SQEs as it takes, one awaiter, no coroutine frame):
    /// data.size(), or the error, with transferred() = the bytes the kernel took before it.
    [[nodiscard]] send_all_op send_all(std::span<const std::byte> data) noexcept {
        return send_all_op(native_handle(), data);
    }
    /// send_all() of text; the characters must stay valid until the co_await returns.
    [[nodiscard]] send_all_op send_all(std::string_view text) noexcept {
        return send_all(std::as_bytes(std::span<const char>(text)));
    }

    /// Sends all the buffers `iov` describes, in order (as many sendmsg SQEs as it takes, one
    /// awaiter, no coroutine frame; partial sends may end inside an iovec): the total byte
    /// count, or the error with transferred() = the bytes sent before it. Any number of iovecs. The caller's iovec array is not modified
    /// (see sendmsg_all_op); it and the bytes must stay valid until the co_await returns.
    [[nodiscard]] sendmsg_all_op send_all(std::span<const iovec> iov) noexcept {
        return sendmsg_all_op(native_handle(), iov);
    }

    /// shutdown(): SHUT_WR sends FIN after the queued bytes (the peer reads EOF); the socket
    /// stays open for reading.
    [[nodiscard]] shutdown_op shutdown(int how = SHUT_WR) noexcept {
        return shutdown_op(native_handle(), how);
    }

    /// A multishot recv into `ring` (see recv_stream). The socket must outlive the stream and stay
    /// where it is (not moved) meanwhile.
    [[nodiscard]] recv_stream recv_multishot(buffer_ring& ring) { return recv_stream(*this, ring); }
};

} // namespace corio::net
