// SPDX-License-Identifier: MIT
// The epoll backend (see detail/epoll_backend.hpp): the kernel's side of io_uring, played in user
// space on readiness notifications. Sockets, pipes, eventfds and signalfds are tried with a
// non-blocking syscall and, on EAGAIN, wait for their edge (EPOLLET, registered once per fd);
// regular files go to blocking threads (epoll cannot wait for a disk); timeouts live in a heap.
#include <corio/runtime/detail/epoll_backend.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <csignal>
#include <system_error>

namespace corio::detail {

namespace {

/// attempt()'s answer for "not ready: keep waiting".
constexpr int k_again = INT_MIN;
/// The epoll data of the blocking threads' eventfd (a descriptor is never this large).
constexpr std::uint64_t k_done_tag = ~std::uint64_t{0};
/// CQEs one multishot op posts per wake-up before the others get their turn (the kernel's
/// multishot recv retries a similar bounded number of times).
constexpr unsigned k_multishot_batch = 32;

/// IORING_RECVSEND_BUNDLE (sqe->ioprio; Linux 6.10, unnamed in liburing 2.3).
constexpr unsigned k_recvsend_bundle = 1u << 4;
/// Waits in a row that may skip epoll because CQEs are waiting: then one looks anyway, so a
/// task that keeps completing at once cannot starve the sockets.
constexpr unsigned k_max_skipped_polls = 8;
constexpr int k_max_events = 256;

[[nodiscard]] int errno_res() noexcept { return -errno; }

[[nodiscard]] std::int64_t timespec_ns(const __kernel_timespec& ts) noexcept {
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[nodiscard]] bool is_reading_poll(unsigned events) noexcept {
    return events & (POLLIN | POLLPRI | POLLRDHUP) || !(events & POLLOUT);
}

/// Whether a completion with `res` breaks an IOSQE_IO_LINK chain, as the kernel decides it: an
/// error, or a short count where the op promised the whole length.
[[nodiscard]] bool breaks_link(const io_uring_sqe& sqe, int res) noexcept {
    if (res < 0)
        return true;
    switch (sqe.opcode) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_SPLICE:
        return static_cast<unsigned>(res) != sqe.len;
    case IORING_OP_SEND:
    case IORING_OP_RECV:
        return (sqe.msg_flags & MSG_WAITALL) && static_cast<unsigned>(res) != sqe.len;
    default:
        return false;
    }
}

/// Makes `fd` non-blocking (connect and accept have no per-call MSG_DONTWAIT). 0 or -errno.
int make_nonblocking(int fd) noexcept {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0)
        return errno_res();
    if (!(flags & O_NONBLOCK) && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return errno_res();
    return 0;
}

[[nodiscard]] void* address(std::uint64_t a) noexcept { return reinterpret_cast<void*>(a); }

/// An op run to completion on a blocking thread: the syscall the SQE describes.
int run_blocking(const io_uring_sqe& s) noexcept {
    long rc = -1;
    const auto off = static_cast<off_t>(s.off); // -1 (all bits set): the file position
    switch (s.opcode) {
    case IORING_OP_READ: {
        iovec v{address(s.addr), s.len};
        rc = ::preadv2(s.fd, &v, 1, off, static_cast<int>(s.rw_flags));
        break;
    }
    case IORING_OP_WRITE: {
        iovec v{address(s.addr), s.len};
        rc = ::pwritev2(s.fd, &v, 1, off, static_cast<int>(s.rw_flags));
        break;
    }
    case IORING_OP_READV:
        rc = ::preadv2(s.fd, static_cast<const iovec*>(address(s.addr)), static_cast<int>(s.len),
                       off, static_cast<int>(s.rw_flags));
        break;
    case IORING_OP_WRITEV:
        rc = ::pwritev2(s.fd, static_cast<const iovec*>(address(s.addr)),
                        static_cast<int>(s.len), off, static_cast<int>(s.rw_flags));
        break;
    case IORING_OP_FSYNC:
        rc = (s.fsync_flags & IORING_FSYNC_DATASYNC) ? ::fdatasync(s.fd) : ::fsync(s.fd);
        break;
    case IORING_OP_FALLOCATE:
        rc = ::fallocate(s.fd, static_cast<int>(s.len), off, static_cast<off_t>(s.addr));
        break;
    case IORING_OP_OPENAT:
        rc = ::openat(s.fd, static_cast<const char*>(address(s.addr)),
                      static_cast<int>(s.open_flags), static_cast<mode_t>(s.len));
        break;
    case IORING_OP_OPENAT2:
        rc = ::syscall(SYS_openat2, s.fd, address(s.addr), address(s.off),
                       static_cast<std::size_t>(s.len));
        break;
    case IORING_OP_STATX:
        rc = ::statx(s.fd, static_cast<const char*>(address(s.addr)),
                     static_cast<int>(s.statx_flags), s.len,
                     static_cast<struct statx*>(address(s.off)));
        break;
    case IORING_OP_UNLINKAT:
        rc = ::unlinkat(s.fd, static_cast<const char*>(address(s.addr)),
                        static_cast<int>(s.unlink_flags));
        break;
    case IORING_OP_RENAMEAT:
        rc = ::renameat2(s.fd, static_cast<const char*>(address(s.addr)),
                         static_cast<int>(s.len), static_cast<const char*>(address(s.off)),
                         s.rename_flags);
        break;
    case IORING_OP_MKDIRAT:
        rc = ::mkdirat(s.fd, static_cast<const char*>(address(s.addr)),
                       static_cast<mode_t>(s.len));
        break;
    case IORING_OP_SPLICE: {
        auto in_off = static_cast<loff_t>(s.splice_off_in);
        auto out_off = static_cast<loff_t>(s.off);
        rc = ::splice(s.splice_fd_in, s.splice_off_in == ~0ull ? nullptr : &in_off, s.fd,
                      s.off == ~0ull ? nullptr : &out_off, s.len, s.splice_flags);
        break;
    }
    // Readiness ops on descriptors epoll refuses (EPERM: a regular file given to recv, say):
    // the blocking call, as a thread-per-connection server would make it.
    case IORING_OP_RECV:
        rc = ::recv(s.fd, address(s.addr), s.len, static_cast<int>(s.msg_flags));
        break;
    case IORING_OP_SEND:
        rc = ::send(s.fd, address(s.addr), s.len, static_cast<int>(s.msg_flags));
        break;
    case IORING_OP_RECVMSG:
        rc = ::recvmsg(s.fd, static_cast<msghdr*>(address(s.addr)), static_cast<int>(s.msg_flags));
        break;
    case IORING_OP_SENDMSG:
        rc = ::sendmsg(s.fd, static_cast<const msghdr*>(address(s.addr)),
                       static_cast<int>(s.msg_flags));
        break;
    default:
        return -EOPNOTSUPP;
    }
    return rc < 0 ? errno_res() : static_cast<int>(rc);
}

/// splice(2) into a socket raises SIGPIPE when the peer is gone, and unlike send(2) it has no
/// MSG_NOSIGNAL; io_uring never raises it. So the signal is blocked around the call and a
/// SIGPIPE this call raised is taken back before the mask is restored.
long splice_without_sigpipe(int fd_in, int fd_out, std::size_t len, unsigned flags) noexcept {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t previous;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
    sigset_t pending;
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    long n = ::splice(fd_in, nullptr, fd_out, nullptr, len, flags);
    const int err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        timespec no_wait{};
        (void)::sigtimedwait(&pipe_only, nullptr, &no_wait);
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    errno = err;
    return n;
}

enum class descriptor_kind { socket, pollable, blocking };

/// Where a READ/WRITE-family op on `fd` runs: sockets and pipe-like descriptors wait for
/// readiness, regular files and block devices (which are always "ready") go to a thread.
descriptor_kind kind_of(int fd) noexcept {
    struct stat st{};
    if (::fstat(fd, &st) != 0)
        return descriptor_kind::blocking; // the thread reports the error (EBADF)
    if (S_ISSOCK(st.st_mode))
        return descriptor_kind::socket;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        return descriptor_kind::blocking;
    return descriptor_kind::pollable;
}

} // namespace

struct epoll_backend::chain {
    std::vector<io_uring_sqe> m_sqes; // linked after the op that owns the chain, in order
};

struct epoll_backend::op {
    enum class where : unsigned char { nowhere, reading, writing, timer, blocking };
    struct timer_part : timer_node {
        op* m_owner = nullptr;              // the op this deadline belongs to
        epoll_backend* m_backend = nullptr; // the backend whose heap holds it
    };

    std::unique_ptr<chain> m_rest;     // what runs after it (IOSQE_IO_LINK / HARDLINK)
    op* m_next = nullptr;              // the fd's wait list
    op* m_prev = nullptr;
    op* m_link_timeout = nullptr;      // the LINK_TIMEOUT armed with this op
    op* m_target = nullptr;            // for a link timeout: the op it limits
    timer_part m_timer;                // TIMEOUT and LINK_TIMEOUT deadline
    std::uint32_t m_done = 0;          // bytes already moved (MSG_WAITALL)
    unsigned m_cqe_flags = 0;          // flags of the final CQE (a selected buffer)
    int m_res = 0;                     // a blocking thread's result
    where m_where = where::nowhere;
    bool m_indexed = false;            // in m_by_user_data
    bool m_socket = true;              // READ/WRITE family: recv/send, not read/write
    bool m_connecting = false;         // CONNECT: connect() returned EINPROGRESS
    // io_uring_sqe's union ends in a zero-length array (for 128-byte SQEs, never set up here):
    // an extension that -Wpedantic reports for any member of that type.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
    io_uring_sqe m_sqe{};              // the request (its SQ slot is reused at once)
#pragma GCC diagnostic pop
};

struct epoll_backend::fd_state {
    op* m_readers = nullptr; // FIFO of ops waiting to read (head)
    op* m_readers_tail = nullptr;
    op* m_writers = nullptr;
    op* m_writers_tail = nullptr;
    bool m_registered = false; // in the epoll set (EPOLLET, both directions)
    bool m_readable = true;    // false once a read found nothing; an edge sets it again
    bool m_writable = true;
    bool m_stream = false;     // SOCK_STREAM: a short transfer means the queue is drained
    bool m_hangup = false;     // EPOLLRDHUP/HUP/ERR seen: EOF or an error is pending, which
                               // no later edge announces (so a short read proves nothing)
};

// ----- set-up and teardown -----

epoll_backend::epoll_backend(unsigned sq_entries, unsigned cq_entries, unsigned blocking_threads)
    : m_thread_count(std::max(1u, blocking_threads)) {
    if (sq_entries == 0 || sq_entries > 32768 || cq_entries > 65536)
        throw std::system_error(EINVAL, std::system_category(),
                                "corio: epoll backend ring sizes (as io_uring_setup checks them)");
    m_sq_entries = std::bit_ceil(std::max(sq_entries, 1u));
    m_cq_entries = std::bit_ceil(std::max(cq_entries != 0 ? cq_entries : 2 * m_sq_entries, 2u));
    m_sq_mask = m_sq_entries - 1;
    m_cq_mask = m_cq_entries - 1;
    m_sqes.resize(m_sq_entries);
    m_sq_array.resize(m_sq_entries);
    for (unsigned i = 0; i < m_sq_entries; ++i)
        m_sq_array[i] = i;
    m_cqes.resize(m_cq_entries);
    m_epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (m_epoll_fd < 0)
        throw std::system_error(errno, std::system_category(), "corio: epoll_create1");
    m_done_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_done_fd < 0) {
        int err = errno;
        ::close(m_epoll_fd);
        throw std::system_error(err, std::system_category(), "corio: eventfd (epoll backend)");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = k_done_tag;
    if (::epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, m_done_fd, &ev) != 0) {
        int err = errno;
        ::close(m_done_fd);
        ::close(m_epoll_fd);
        throw std::system_error(err, std::system_category(), "corio: epoll_ctl (epoll backend)");
    }
}

epoll_backend::~epoll_backend() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_work_ready.notify_all();
    for (std::thread& t : m_threads)
        t.join();
    // The loop drained every op before destroying the backend; what is left is recycled memory.
    while (op* o = m_free) {
        m_free = o->m_next;
        delete o;
    }
    ::close(m_done_fd);
    ::close(m_epoll_fd);
}

void epoll_backend::attach(io_uring& ring) noexcept {
    ring = io_uring{};
    ring.sq.khead = &m_sq_head;
    ring.sq.ktail = &m_sq_tail;
    ring.sq.kring_mask = &m_sq_mask;
    ring.sq.kring_entries = &m_sq_entries;
    ring.sq.kflags = &m_sq_flags;
    ring.sq.kdropped = &m_sq_dropped;
    ring.sq.array = m_sq_array.data();
    ring.sq.sqes = m_sqes.data();
    ring.sq.ring_mask = m_sq_mask;
    ring.sq.ring_entries = m_sq_entries;
    ring.cq.khead = &m_cq_head;
    ring.cq.ktail = &m_cq_tail;
    ring.cq.kring_mask = &m_cq_mask;
    ring.cq.kring_entries = &m_cq_entries;
    ring.cq.kflags = &m_cq_flags;
    ring.cq.koverflow = &m_cq_overflow;
    ring.cq.cqes = m_cqes.data();
    ring.cq.ring_mask = m_cq_mask;
    ring.cq.ring_entries = m_cq_entries;
    ring.ring_fd = -1;
    ring.enter_ring_fd = -1;
}

// ----- op records -----

epoll_backend::op* epoll_backend::make_op(const io_uring_sqe& sqe) {
    op* o = m_free;
    if (o) {
        m_free = o->m_next;
    } else {
        o = new op;
        o->m_timer.m_owner = o;
        o->m_timer.m_backend = this;
    }
    o->m_sqe = sqe;
    o->m_done = 0;
    o->m_cqe_flags = 0;
    o->m_socket = true;
    o->m_connecting = false;
    return o;
}

void epoll_backend::free_op(op* o) noexcept {
    if (o->m_rest)
        o->m_rest.reset();
    o->m_prev = nullptr;
    o->m_link_timeout = o->m_target = nullptr;
    o->m_where = op::where::nowhere;
    o->m_next = m_free; // the free list runs through the wait-list link
    m_free = o;
}

void epoll_backend::index(op* o) {
    if (o->m_indexed || o->m_sqe.user_data == 0)
        return;
    m_by_user_data.insert(o->m_sqe.user_data, o);
    o->m_indexed = true;
}

void epoll_backend::unindex(op* o) noexcept {
    if (!o->m_indexed)
        return;
    m_by_user_data.erase(o->m_sqe.user_data, o);
    o->m_indexed = false;
}

// ----- submission -----

unsigned epoll_backend::submit(io_uring& ring) {
    flush_overflow();
    const unsigned tail = ring.sq.sqe_tail;
    unsigned count = 0;
    while (m_sq_head != tail) {
        // The slot stays untouched until submit() returns: start() reads it in place.
        const io_uring_sqe& sqe = m_sqes[m_sq_head & m_sq_mask];
        ++m_sq_head;
        ++count;
        std::unique_ptr<chain> rest;
        if (sqe.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)) {
            // The chain ends at the first SQE without a link flag, or at the end of the batch.
            rest = std::make_unique<chain>();
            bool linked = true;
            while (linked && m_sq_head != tail) {
                const io_uring_sqe& next = m_sqes[m_sq_head & m_sq_mask];
                rest->m_sqes.push_back(next);
                linked = next.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
                ++m_sq_head;
                ++count;
            }
        }
        start(sqe, std::move(rest));
    }
    m_sq_tail = tail;
    ring.sq.sqe_head = tail;
    return count;
}

bool epoll_backend::try_at_once(const io_uring_sqe& sqe) noexcept {
    // The common case of a server, without an op record: a plain recv or send on a stream that is
    // not known to be unready and has nobody queued before it. Anything else takes the general
    // path (which would try the same syscall first).
    const bool sending = sqe.opcode == IORING_OP_SEND;
    if ((!sending && sqe.opcode != IORING_OP_RECV) || sqe.fd < 0 ||
        (sqe.flags & (IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT)) || sqe.ioprio != 0)
        return false;
    fd_state& st = state_of(sqe.fd);
    // The caller's own MSG_DONTWAIT means "never wait": io_uring completes such an op with
    // -EAGAIN instead of arming a poll (REQ_F_NOWAIT), and so must the emulation.
    const bool never_wait = sqe.msg_flags & MSG_DONTWAIT;
    if (sending ? (st.m_writers || !st.m_writable) : (st.m_readers || !st.m_readable)) {
        if (!never_wait)
            return false;
        post(sqe.user_data, -EAGAIN, 0);
        return true;
    }
    const int flags = static_cast<int>(sqe.msg_flags & ~MSG_WAITALL) | MSG_DONTWAIT;
    long n = sending ? ::send(sqe.fd, address(sqe.addr), sqe.len, flags)
                     : ::recv(sqe.fd, address(sqe.addr), sqe.len, flags);
    if (n < 0) {
        if (errno == EAGAIN) {
            (sending ? st.m_writable : st.m_readable) = false; // the general path just waits
            if (!never_wait)
                return false;
            post(sqe.user_data, -EAGAIN, 0);
            return true;
        }
        if (errno == EINTR)
            return false; // nothing moved: the general path tries again
        post(sqe.user_data, errno_res(), 0);
        return true;
    }
    const bool whole = static_cast<std::size_t>(n) == sqe.len;
    if ((sqe.msg_flags & MSG_WAITALL) && !whole && (sending || n > 0)) {
        // Part of an all-or-nothing transfer moved: the rest waits in an op record that knows
        // how far it got (never sent or received twice).
        op* o = make_op(sqe);
        o->m_done = static_cast<std::uint32_t>(n);
        if (st.m_stream && !st.m_hangup)
            (sending ? st.m_writable : st.m_readable) = false;
        start_readiness(o);
        return true;
    }
    if (!whole && st.m_stream && !st.m_hangup)
        (sending ? st.m_writable : st.m_readable) = false;
    post(sqe.user_data, static_cast<int>(n), 0);
    return true;
}

void epoll_backend::start(const io_uring_sqe& sqe, std::unique_ptr<chain> rest) {
    if (!rest && try_at_once(sqe))
        return;
    op* o = make_op(sqe);
    o->m_rest = std::move(rest);
    // A LINK_TIMEOUT right behind the op is armed with it, not after it.
    if (o->m_rest && !o->m_rest->m_sqes.empty() &&
        o->m_rest->m_sqes.front().opcode == IORING_OP_LINK_TIMEOUT) {
        op* limit = make_op(o->m_rest->m_sqes.front());
        o->m_rest->m_sqes.erase(o->m_rest->m_sqes.begin());
        limit->m_target = o;
        o->m_link_timeout = limit;
    }
    if (sqe.flags & IOSQE_FIXED_FILE) {
        finish(o, -EOPNOTSUPP); // registered files are an io_uring feature
        return;
    }
    switch (sqe.opcode) {
    case IORING_OP_NOP:
        finish(o, 0);
        return;
    case IORING_OP_ASYNC_CANCEL:
        finish(o, cancel(sqe));
        return;
    case IORING_OP_CLOSE:
        forget_fd(sqe.fd);
        finish(o, ::close(sqe.fd) == 0 ? 0 : errno_res());
        return;
    case IORING_OP_SHUTDOWN:
        finish(o, ::shutdown(sqe.fd, static_cast<int>(sqe.len)) == 0 ? 0 : errno_res());
        return;
    case IORING_OP_TIMEOUT:
        start_timeout(o);
        return;
    case IORING_OP_LINK_TIMEOUT:
        finish(o, -EINVAL); // not behind an op
        return;
    case IORING_OP_RECV:
        if (sqe.file_index != 0 || (sqe.ioprio & k_recvsend_bundle)) {
            // A multishot recv's byte cap (`optlen`, Linux 6.17) or a bundle (6.10): refused as
            // an older kernel refuses them; the caller arms without (net::recv_stream does).
            finish(o, -EINVAL);
            return;
        }
        start_readiness(o);
        return;
    case IORING_OP_SEND:
    case IORING_OP_RECVMSG:
    case IORING_OP_SENDMSG:
    case IORING_OP_POLL_ADD:
        start_readiness(o);
        return;
    case IORING_OP_ACCEPT:
    case IORING_OP_CONNECT:
        if (int rc = make_nonblocking(sqe.fd); rc < 0) {
            finish(o, rc);
            return;
        }
        start_readiness(o);
        return;
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READV:
    case IORING_OP_WRITEV:
        switch (kind_of(sqe.fd)) {
        case descriptor_kind::socket:
            start_readiness(o);
            return;
        case descriptor_kind::pollable:
            o->m_socket = false;
            if (int rc = make_nonblocking(sqe.fd); rc < 0) {
                finish(o, rc);
                return;
            }
            start_readiness(o);
            return;
        case descriptor_kind::blocking:
            start_blocking(o);
            return;
        }
        return;
    case IORING_OP_SPLICE:
        if (kind_of(sqe.splice_fd_in) == descriptor_kind::blocking ||
            kind_of(sqe.fd) == descriptor_kind::blocking) {
            start_blocking(o);
            return;
        }
        o->m_socket = false;
        // SPLICE_F_NONBLOCK covers the pipe only: a blocking socket would still block the loop.
        if (int rc = make_nonblocking(sqe.fd); rc < 0) {
            finish(o, rc);
            return;
        }
        start_readiness(o);
        return;
    case IORING_OP_FSYNC:
    case IORING_OP_FALLOCATE:
    case IORING_OP_OPENAT:
    case IORING_OP_OPENAT2:
    case IORING_OP_STATX:
    case IORING_OP_UNLINKAT:
    case IORING_OP_RENAMEAT:
    case IORING_OP_MKDIRAT:
        start_blocking(o);
        return;
    default:
        finish(o, -EOPNOTSUPP);
        return;
    }
}

namespace {
[[nodiscard]] bool waits_to_read(const io_uring_sqe& sqe) noexcept {
    switch (sqe.opcode) {
    case IORING_OP_RECV:
    case IORING_OP_RECVMSG:
    case IORING_OP_ACCEPT:
    case IORING_OP_READ:
    case IORING_OP_READV:
        return true;
    case IORING_OP_POLL_ADD:
        return is_reading_poll(sqe.poll32_events);
    default:
        return false;
    }
}
} // namespace

inline epoll_backend::fd_state& epoll_backend::state_of(int fd) {
    auto index = static_cast<std::size_t>(fd);
    if (index >= m_fds.size()) [[unlikely]]
        m_fds.resize(std::max<std::size_t>(index + 1, m_fds.size() * 2));
    return m_fds[index];
}

void epoll_backend::start_readiness(op* o) {
    const int fd = o->m_sqe.fd;
    if (fd < 0) {
        finish(o, -EBADF);
        return;
    }
    fd_state& st = state_of(fd);
    const bool reading = waits_to_read(o->m_sqe);
    // Behind other waiters (FIFO: two sends never interleave), or known not ready: no syscall.
    const bool queued_behind = reading ? st.m_readers != nullptr : st.m_writers != nullptr;
    const bool ready = reading ? st.m_readable : st.m_writable;
    if (!queued_behind && (ready || o->m_sqe.opcode == IORING_OP_CONNECT)) {
        int res = attempt(o);
        if (res != k_again) {
            finish(o, res, o->m_cqe_flags);
            return;
        }
    }
    park(o);
}

void epoll_backend::park(op* o) noexcept {
    const int fd = o->m_sqe.fd;
    fd_state& st = m_fds[static_cast<std::size_t>(fd)];
    if (!st.m_registered && !register_fd(fd, st)) {
        // epoll refuses this descriptor (EPERM: it is always "ready", like /dev/zero): block on
        // a thread instead, as a thread-per-connection server would.
        start_blocking(o);
        return;
    }
    const bool reading = waits_to_read(o->m_sqe);
    op*& head = reading ? st.m_readers : st.m_writers;
    op*& tail = reading ? st.m_readers_tail : st.m_writers_tail;
    o->m_prev = tail;
    o->m_next = nullptr;
    (tail ? tail->m_next : head) = o;
    tail = o;
    o->m_where = reading ? op::where::reading : op::where::writing;
    try {
        index(o);
        if (o->m_link_timeout)
            start_timeout(o->m_link_timeout);
    } catch (...) {
        unpark(o);
        finish(o, -ENOMEM);
    }
}

void epoll_backend::unpark(op* o) noexcept {
    fd_state& st = m_fds[static_cast<std::size_t>(o->m_sqe.fd)];
    const bool reading = o->m_where == op::where::reading;
    op*& head = reading ? st.m_readers : st.m_writers;
    op*& tail = reading ? st.m_readers_tail : st.m_writers_tail;
    (o->m_prev ? o->m_prev->m_next : head) = o->m_next;
    (o->m_next ? o->m_next->m_prev : tail) = o->m_prev;
    o->m_next = o->m_prev = nullptr;
    o->m_where = op::where::nowhere;
}

bool epoll_backend::register_fd(int fd, fd_state& st) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    if (::epoll_ctl(m_epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST)
        return false;
    st.m_registered = true;
    int type = 0;
    socklen_t len = sizeof type;
    st.m_stream = ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    return true;
}

void epoll_backend::start_blocking(op* o) {
    o->m_where = op::where::blocking;
    try {
        index(o);
        if (m_threads.empty()) {
            m_threads.reserve(m_thread_count);
            for (unsigned i = 0; i < m_thread_count; ++i)
                m_threads.emplace_back([this] { worker_main(); });
        }
        {
            std::lock_guard lock(m_mutex);
            m_queued.push_back(o);
        }
        if (o->m_link_timeout)
            start_timeout(o->m_link_timeout);
    } catch (...) {
        if (!m_threads.empty() && !take_back_queued(o))
            return; // a thread runs it: it completes as usual
        o->m_where = op::where::nowhere;
        finish(o, -ENOMEM);
        return;
    }
    m_work_ready.notify_one();
}

void epoll_backend::start_timeout(op* o) {
    const auto* ts = static_cast<const __kernel_timespec*>(address(o->m_sqe.addr));
    std::int64_t deadline = timespec_ns(*ts);
    const unsigned flags = o->m_sqe.timeout_flags;
    if (!(flags & IORING_TIMEOUT_ABS)) {
        deadline += monotonic_now_ns();
    } else if (flags & IORING_TIMEOUT_REALTIME) {
        timespec now_real{};
        ::clock_gettime(CLOCK_REALTIME, &now_real);
        deadline = deadline - (now_real.tv_sec * 1'000'000'000 + now_real.tv_nsec) +
                   monotonic_now_ns();
    }
    o->m_timer.m_deadline_ns = deadline;
    o->m_timer.m_fire = &on_timer;
    o->m_where = op::where::timer;
    m_timeouts.push(&o->m_timer);
    index(o); // a link timeout, too, can be cancelled by its own user_data
}

// ----- cancellation -----

int epoll_backend::cancel(const io_uring_sqe& sqe) {
    const unsigned flags = sqe.cancel_flags;
    std::vector<op*> targets;
    if (flags & IORING_ASYNC_CANCEL_ANY) {
        targets = m_by_user_data.values();
    } else if (flags & IORING_ASYNC_CANCEL_FD) {
        for (op* o : m_by_user_data.values())
            if (o->m_where != op::where::timer && o->m_sqe.fd == sqe.fd) {
                targets.push_back(o);
                if (!(flags & IORING_ASYNC_CANCEL_ALL))
                    break;
            }
    } else if (op* o = m_by_user_data.find(sqe.addr)) {
        targets.push_back(o);
    }
    int cancelled = 0;
    bool busy = false;
    for (op* o : targets) {
        if (o->m_where == op::where::blocking && !take_back_queued(o)) {
            busy = true; // a thread runs it: it cannot be stopped, it ends on its own
            continue;
        }
        cancel_op(o, -ECANCELED);
        ++cancelled;
    }
    if (cancelled == 0)
        return busy ? -EALREADY : -ENOENT;
    return (flags & (IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY)) ? cancelled : 0;
}

void epoll_backend::cancel_op(op* o, int res) noexcept {
    switch (o->m_where) {
    case op::where::reading:
    case op::where::writing:
        unpark(o);
        break;
    case op::where::timer:
        m_timeouts.erase(&o->m_timer);
        break;
    case op::where::blocking: // taken off the queue by the caller
    case op::where::nowhere:
        break;
    }
    o->m_where = op::where::nowhere;
    if (o->m_target) { // a link timeout on its own: the op it limits goes on without it
        o->m_target->m_link_timeout = nullptr;
        unindex(o);
        post(o->m_sqe.user_data, res, 0);
        free_op(o);
        return;
    }
    // An op that already moved bytes reports them, as the kernel does.
    finish(o, o->m_done > 0 ? static_cast<int>(o->m_done) : res);
}

void epoll_backend::forget_fd(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= m_fds.size())
        return;
    for (;;) {
        fd_state& st = m_fds[static_cast<std::size_t>(fd)];
        op* o = st.m_readers ? st.m_readers : st.m_writers;
        if (!o)
            break;
        cancel_op(o, -ECANCELED);
    }
    m_fds[static_cast<std::size_t>(fd)] = fd_state{};
}

// ----- completion -----

void epoll_backend::post(std::uint64_t user_data, int res, unsigned flags) noexcept {
    if (user_data == 0)
        return; // internal (a cancel the loop sent for itself): never reaped
    if (m_overflow.empty() && m_cq_tail - m_cq_head < m_cq_entries) {
        io_uring_cqe& cqe = m_cqes[m_cq_tail & m_cq_mask];
        cqe.user_data = user_data;
        cqe.res = res;
        cqe.flags = flags;
        ++m_cq_tail;
        return;
    }
    try {
        m_overflow.push_back(io_uring_cqe{user_data, res, flags});
        ++m_cq_overflow;
    } catch (...) {
        std::terminate(); // a lost completion would leave a coroutine suspended forever
    }
}

void epoll_backend::flush_overflow() noexcept {
    while (!m_overflow.empty() && m_cq_tail - m_cq_head < m_cq_entries) {
        m_cqes[m_cq_tail & m_cq_mask] = m_overflow.front();
        m_overflow.pop_front();
        ++m_cq_tail;
    }
}

void epoll_backend::finish(op* o, int res, unsigned flags) noexcept {
    unindex(o);
    post(o->m_sqe.user_data, res, flags);
    if (op* limit = o->m_link_timeout) {
        if (limit->m_where == op::where::timer)
            m_timeouts.erase(&limit->m_timer);
        unindex(limit);
        post(limit->m_sqe.user_data, -ECANCELED, 0);
        free_op(limit);
    }
    const bool failed = breaks_link(o->m_sqe, res) && !(o->m_sqe.flags & IOSQE_IO_HARDLINK);
    std::unique_ptr<chain> rest = std::move(o->m_rest);
    free_op(o);
    if (rest)
        continue_chain(std::move(rest), failed);
}

void epoll_backend::continue_chain(std::unique_ptr<chain> rest, bool failed) noexcept {
    if (rest->m_sqes.empty())
        return;
    if (failed) {
        for (const io_uring_sqe& sqe : rest->m_sqes)
            post(sqe.user_data, -ECANCELED, 0);
        return;
    }
    io_uring_sqe next = rest->m_sqes.front();
    rest->m_sqes.erase(rest->m_sqes.begin());
    if (rest->m_sqes.empty())
        rest.reset();
    try {
        start(next, std::move(rest));
    } catch (...) {
        post(next.user_data, -ENOMEM, 0);
    }
}

// ----- readiness -----

int epoll_backend::attempt(op* o) noexcept {
    io_uring_sqe& s = o->m_sqe;
    fd_state& st = m_fds[static_cast<std::size_t>(s.fd)];
    switch (s.opcode) {
    case IORING_OP_RECV:
        return attempt_recv(o);
    case IORING_OP_ACCEPT:
        if (s.ioprio & IORING_ACCEPT_MULTISHOT)
            return attempt_multishot(o);
        for (;;) {
            int fd = ::accept4(s.fd, static_cast<sockaddr*>(address(s.addr)),
                               static_cast<socklen_t*>(address(s.off)),
                               static_cast<int>(s.accept_flags));
            if (fd >= 0)
                return fd;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                st.m_readable = false;
                return k_again;
            }
            return errno_res();
        }
    case IORING_OP_CONNECT: {
        if (!o->m_connecting) {
            if (::connect(s.fd, static_cast<const sockaddr*>(address(s.addr)),
                          static_cast<socklen_t>(s.off)) == 0)
                return 0;
            if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
                return errno_res();
            o->m_connecting = true;
            st.m_writable = false;
            return k_again;
        }
        pollfd p{s.fd, POLLOUT, 0};
        if (::poll(&p, 1, 0) <= 0)
            return k_again;
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            return errno_res();
        return -err;
    }
    case IORING_OP_POLL_ADD: {
        pollfd p{s.fd, static_cast<short>(s.poll32_events), 0};
        int n = ::poll(&p, 1, 0);
        if (n < 0)
            return errno_res();
        if (n == 0 || p.revents == 0)
            return k_again;
        return p.revents;
    }
    default:
        break;
    }
    // The stream-like rest: one syscall, progress kept across waits for MSG_WAITALL.
    const bool reading = waits_to_read(s);
    for (;;) {
        long n = -1;
        const int flags = static_cast<int>(s.msg_flags & ~MSG_WAITALL) | MSG_DONTWAIT;
        std::size_t wanted = 0;
        switch (s.opcode) {
        case IORING_OP_SEND:
            wanted = s.len - o->m_done;
            n = ::send(s.fd, static_cast<const char*>(address(s.addr)) + o->m_done, wanted, flags);
            break;
        case IORING_OP_RECVMSG:
            n = ::recvmsg(s.fd, static_cast<msghdr*>(address(s.addr)), flags);
            break;
        case IORING_OP_SENDMSG:
            n = ::sendmsg(s.fd, static_cast<const msghdr*>(address(s.addr)), flags);
            break;
        case IORING_OP_READ:
        case IORING_OP_WRITE:
            wanted = s.len;
            if (s.opcode == IORING_OP_READ)
                n = o->m_socket ? ::recv(s.fd, address(s.addr), s.len, MSG_DONTWAIT)
                                : ::read(s.fd, address(s.addr), s.len);
            else
                n = o->m_socket ? ::send(s.fd, address(s.addr), s.len, MSG_DONTWAIT | MSG_NOSIGNAL)
                                : ::write(s.fd, address(s.addr), s.len);
            break;
        case IORING_OP_READV:
        case IORING_OP_WRITEV: {
            const auto* iov = static_cast<const iovec*>(address(s.addr));
            const auto count = static_cast<int>(s.len);
            if (o->m_socket) {
                msghdr msg{};
                msg.msg_iov = const_cast<iovec*>(iov);
                msg.msg_iovlen = s.len;
                n = s.opcode == IORING_OP_READV
                        ? ::recvmsg(s.fd, &msg, MSG_DONTWAIT)
                        : ::sendmsg(s.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            } else {
                n = s.opcode == IORING_OP_READV ? ::readv(s.fd, iov, count)
                                                : ::writev(s.fd, iov, count);
            }
            break;
        }
        case IORING_OP_SPLICE:
            wanted = s.len;
            n = splice_without_sigpipe(s.splice_fd_in, s.fd, s.len,
                                       s.splice_flags | SPLICE_F_NONBLOCK);
            break;
        default:
            return -EOPNOTSUPP;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                (reading ? st.m_readable : st.m_writable) = false;
                if (s.msg_flags & MSG_DONTWAIT) // the caller's: never wait (see try_at_once)
                    return o->m_done > 0 ? static_cast<int>(o->m_done) : -EAGAIN;
                return k_again;
            }
            return o->m_done > 0 ? static_cast<int>(o->m_done) : errno_res();
        }
        if (s.opcode == IORING_OP_SEND && (s.msg_flags & MSG_WAITALL)) {
            o->m_done += static_cast<std::uint32_t>(n);
            if (o->m_done == s.len)
                return static_cast<int>(o->m_done);
            if (st.m_hangup)
                continue; // the next send reports the error
            st.m_writable = false; // a short send on a stream: the buffer is full
            return k_again;
        }
        // A short transfer on a stream socket means its queue is drained (reading) or full
        // (writing): the next op waits for the edge instead of paying for an EAGAIN.
        if (st.m_stream && !st.m_hangup && wanted != 0 && static_cast<std::size_t>(n) < wanted)
            (reading ? st.m_readable : st.m_writable) = false;
        return static_cast<int>(n);
    }
}

int epoll_backend::attempt_recv(op* o) noexcept {
    io_uring_sqe& s = o->m_sqe;
    fd_state& st = m_fds[static_cast<std::size_t>(s.fd)];
    const int flags = static_cast<int>(s.msg_flags & ~MSG_WAITALL) | MSG_DONTWAIT;
    if (!(s.flags & IOSQE_BUFFER_SELECT)) {
        const bool all = s.msg_flags & MSG_WAITALL;
        for (;;) {
            std::size_t wanted = s.len - o->m_done;
            long n = ::recv(s.fd, static_cast<char*>(address(s.addr)) + o->m_done, wanted, flags);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN) {
                    st.m_readable = false;
                    return k_again;
                }
                return o->m_done > 0 ? static_cast<int>(o->m_done) : errno_res();
            }
            if (st.m_stream && !st.m_hangup && static_cast<std::size_t>(n) < wanted)
                st.m_readable = false;
            if (!all || n == 0)
                return static_cast<int>(o->m_done + static_cast<std::size_t>(n));
            o->m_done += static_cast<std::uint32_t>(n);
            if (o->m_done == s.len)
                return static_cast<int>(o->m_done);
            if (!st.m_readable)
                return k_again;
        }
    }
    // A provided buffer per receive, taken as the kernel takes it: from the head of the group's
    // ring, only once data is there (an EAGAIN consumes nothing).
    const bool multishot = s.ioprio & IORING_RECV_MULTISHOT;
    auto group = m_buffer_rings.find(s.buf_group);
    if (group == m_buffer_rings.end())
        return -ENOBUFS;
    buffer_ring_state& ring = group->second;
    for (unsigned posted = 0;;) {
        const std::uint16_t tail = io_uring_smp_load_acquire(&ring.m_ring->tail);
        if (ring.m_head == tail) {
            // ENOBUFS only with bytes to read, as the kernel answers a recv armed with
            // IORING_RECVSEND_POLL_FIRST (which net::recv_stream sets when the ring is empty):
            // a silent socket waits for readiness.
            char probe = 0;
            long n = ::recv(s.fd, &probe, 1, flags | MSG_PEEK);
            if (n < 0 && errno == EAGAIN) {
                st.m_readable = false;
                return k_again;
            }
            if (n < 0 && errno != EINTR)
                return errno_res();
            return n == 0 ? 0 : -ENOBUFS;
        }
        const io_uring_buf& buf = ring.m_ring->bufs[ring.m_head & ring.m_mask];
        std::size_t wanted = s.len != 0 ? std::min<std::size_t>(s.len, buf.len) : buf.len;
        long n = ::recv(s.fd, address(buf.addr), wanted, flags);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                st.m_readable = false;
                return k_again;
            }
            return errno_res();
        }
        if (n == 0)
            return 0; // end of stream: no buffer used
        ++ring.m_head;
        const unsigned cqe_flags =
            IORING_CQE_F_BUFFER | (static_cast<unsigned>(buf.bid) << IORING_CQE_BUFFER_SHIFT);
        if (!multishot) {
            o->m_cqe_flags = cqe_flags;
            return static_cast<int>(n);
        }
        post(s.user_data, static_cast<int>(n), cqe_flags | IORING_CQE_F_MORE);
        if (st.m_stream && !st.m_hangup && static_cast<std::size_t>(n) < wanted) {
            st.m_readable = false;
            return k_again;
        }
        if (++posted == k_multishot_batch) {
            m_retry_fds.push_back(s.fd); // still readable: go on next turn, after the others
            return k_again;
        }
    }
}

int epoll_backend::attempt_multishot(op* o) noexcept {
    io_uring_sqe& s = o->m_sqe;
    for (unsigned posted = 0;;) {
        int fd = ::accept4(s.fd, nullptr, nullptr, static_cast<int>(s.accept_flags));
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN) {
                m_fds[static_cast<std::size_t>(s.fd)].m_readable = false;
                return k_again;
            }
            return errno_res(); // EMFILE and the like end the multishot, as in the kernel
        }
        post(s.user_data, fd, IORING_CQE_F_MORE);
        if (++posted == k_multishot_batch) {
            m_retry_fds.push_back(s.fd);
            return k_again;
        }
    }
}

void epoll_backend::run_waiters(int fd, bool reading) noexcept {
    for (;;) {
        fd_state& st = m_fds[static_cast<std::size_t>(fd)];
        op* o = reading ? st.m_readers : st.m_writers;
        if (!o || !(reading ? st.m_readable : st.m_writable))
            return;
        int res = attempt(o);
        if (res == k_again)
            return;
        unpark(o);
        finish(o, res, o->m_cqe_flags);
    }
}

void epoll_backend::on_event(int fd, std::uint32_t events) noexcept {
    if (static_cast<std::size_t>(fd) >= m_fds.size())
        return;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        m_fds[static_cast<std::size_t>(fd)].m_hangup = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        m_fds[static_cast<std::size_t>(fd)].m_readable = true;
        run_waiters(fd, true);
    }
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        m_fds[static_cast<std::size_t>(fd)].m_writable = true;
        run_waiters(fd, false);
    }
}

bool epoll_backend::wait(std::int64_t wait_ns) {
    flush_overflow();
    if (!m_retry_fds.empty()) {
        std::vector<int> retry;
        retry.swap(m_retry_fds);
        for (int fd : retry)
            run_waiters(fd, true);
    }
    if (cq_has_entries() || !m_overflow.empty()) {
        if (m_polls_skipped < k_max_skipped_polls || m_by_user_data.empty()) {
            ++m_polls_skipped;
            m_timeouts.fire_expired(monotonic_now_ns());
            return false;
        }
        wait_ns = 0;
    } else if (!m_retry_fds.empty()) {
        wait_ns = 0;
    }
    if (wait_ns == 0 && m_by_user_data.empty()) {
        m_timeouts.fire_expired(monotonic_now_ns());
        return false; // nothing waits on epoll or a thread: no syscall can find anything
    }
    if (!m_timeouts.empty()) {
        std::int64_t until = std::max<std::int64_t>(m_timeouts.earliest() - monotonic_now_ns(), 0);
        wait_ns = wait_ns < 0 ? until : std::min(wait_ns, until);
    }
    m_polls_skipped = 0;
    epoll_event events[k_max_events];
    int n;
    for (;;) {
        if (m_have_pwait2) {
            timespec limit{wait_ns / 1'000'000'000, wait_ns % 1'000'000'000};
            n = ::epoll_pwait2(m_epoll_fd, events, k_max_events, wait_ns < 0 ? nullptr : &limit,
                               nullptr);
            if (n < 0 && errno == ENOSYS) {
                m_have_pwait2 = false;
                continue;
            }
        } else {
            // Milliseconds, rounded up: a timer must never fire early.
            int ms = wait_ns < 0 ? -1
                                 : static_cast<int>(std::min<std::int64_t>(
                                       (wait_ns + 999'999) / 1'000'000, INT_MAX));
            n = ::epoll_wait(m_epoll_fd, events, k_max_events, ms);
        }
        if (n >= 0 || errno != EINTR)
            break;
        n = 0; // a signal: look at timers and return (the loop comes back)
        break;
    }
    for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == k_done_tag) {
            std::uint64_t count = 0;
            [[maybe_unused]] ssize_t r = ::read(m_done_fd, &count, sizeof count);
            collect_finished();
        } else {
            on_event(static_cast<int>(events[i].data.u64), events[i].events);
        }
    }
    m_timeouts.fire_expired(monotonic_now_ns());
    return true;
}

void epoll_backend::on_timer(timer_node* node, bool expired) noexcept {
    auto* part = static_cast<op::timer_part*>(node);
    op* o = part->m_owner;
    epoll_backend* self = part->m_backend;
    o->m_where = op::where::nowhere;
    if (!expired) {
        self->cancel_op(o, -ECANCELED);
        return;
    }
    if (op* target = o->m_target) {
        target->m_link_timeout = nullptr;
        self->unindex(o);
        self->post(o->m_sqe.user_data, -ETIME, 0);
        self->free_op(o);
        if (target->m_where == op::where::blocking && !self->take_back_queued(target))
            return; // running: it ends on its own
        self->cancel_op(target, -ECANCELED);
        return;
    }
    self->finish(o, -ETIME);
}

// ----- blocking work -----

void epoll_backend::worker_main() noexcept {
    // No signal is for these threads: a signal_set's signalfd needs them blocked everywhere,
    // and a SIGPIPE a blocking splice raises here stays pending, harmless, instead of killing.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    for (;;) {
        op* o = nullptr;
        {
            std::unique_lock lock(m_mutex);
            m_work_ready.wait(lock, [this] { return m_stopping || !m_queued.empty(); });
            if (m_queued.empty())
                return; // stopping
            o = m_queued.front();
            m_queued.pop_front();
        }
        int res = run_blocking(o->m_sqe);
        {
            std::lock_guard lock(m_mutex);
            o->m_res = res;
            m_finished.push_back(o);
        }
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t w = ::write(m_done_fd, &one, sizeof one);
    }
}

bool epoll_backend::take_back_queued(op* o) noexcept {
    std::lock_guard lock(m_mutex);
    auto it = std::find(m_queued.begin(), m_queued.end(), o);
    if (it == m_queued.end())
        return false;
    m_queued.erase(it);
    return true;
}

void epoll_backend::collect_finished() noexcept {
    std::vector<op*> done;
    {
        std::lock_guard lock(m_mutex);
        done.swap(m_finished);
    }
    for (op* o : done) {
        o->m_where = op::where::nowhere;
        finish(o, o->m_res);
    }
}

// ----- provided buffers -----

int epoll_backend::register_buffer_ring(const io_uring_buf_reg& reg) {
    // A flag (the kernel's io_uring_buf_reg::flags: IOU_PBUF_RING_MMAP, IOU_PBUF_RING_INC) asks
    // for what the emulation does not do: refused as by a kernel without it, so callers fall back.
    if (reg.ring_entries == 0 || (reg.ring_entries & (reg.ring_entries - 1)) != 0 ||
        reg.ring_entries > 32768 || reg.pad != 0)
        return -EINVAL;
    auto [it, inserted] = m_buffer_rings.try_emplace(reg.bgid);
    if (!inserted)
        return -EEXIST;
    it->second.m_ring = reinterpret_cast<io_uring_buf_ring*>(reg.ring_addr);
    it->second.m_mask = reg.ring_entries - 1;
    it->second.m_head = 0;
    return 0;
}

int epoll_backend::unregister_buffer_ring(unsigned group_id) {
    return m_buffer_rings.erase(group_id) ? 0 : -ENOENT;
}

} // namespace corio::detail
