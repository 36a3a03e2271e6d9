// SPDX-License-Identifier: MIT
// lab_echo_epoll: the echo job as a hand-written epoll state machine. Non-blocking sockets; each
// connection is an explicit struct with a state enum recording where it is in recv-then-send
// (what the thread version keeps on its stack and corio keeps in the coroutine frame), and the
// loop dispatches on readiness. Level-triggered: a connection waits for EPOLLIN while reading and
// is switched to EPOLLOUT only when a send came up short, so the common case costs no epoll_ctl.
// Compare with echo/threads.cpp (the same steps, blocking) and echo/uring.cpp (completions).
// Try: lab_echo_epoll --port 0   (prints `listening on PORT`), then nc 127.0.0.1 PORT
#include "common/lab.hpp"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

// LAB-HANDLER-BEGIN
/// Where a connection is: waiting to read, or part-way through writing a read back.
enum class conn_state { reading, writing };

/// A connection's state, recorded by hand between readiness events.
struct connection {
    int fd = -1;
    conn_state state = conn_state::reading;
    std::vector<char> buffer; // the bytes read, echoed from `sent` to `filled`
    std::size_t filled = 0;   // bytes in buffer from the last read
    std::size_t sent = 0;     // of those, bytes sent so far
};

/// Sends what is left of the buffer. True when it is all out; false (with `failed`) on an error.
bool flush(connection& c, lab::stats& stats, bool& failed) {
    while (c.sent < c.filled) {
        ssize_t n = ::send(c.fd, c.buffer.data() + c.sent, c.filled - c.sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            failed = errno != EAGAIN;
            return false;
        }
        c.sent += static_cast<std::size_t>(n);
        stats.bytes_out += static_cast<std::uint64_t>(n);
    }
    ++stats.requests;
    return true;
}

/// One readiness event of connection `c`. Returns false when the connection is over.
bool on_ready(int epfd, connection& c, lab::stats& stats) {
    bool failed = false;
    if (c.state == conn_state::writing) {
        if (!flush(c, stats, failed))
            return !failed; // still not all out: keep waiting for EPOLLOUT
        c.state = conn_state::reading;
        epoll_event ev{EPOLLIN, {.ptr = &c}};
        return ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) == 0;
    }
    ssize_t n = ::recv(c.fd, c.buffer.data(), c.buffer.size(), 0);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR; // a spurious wake-up is not the end
    if (n == 0)
        return false; // EOF
    stats.bytes_in += static_cast<std::uint64_t>(n);
    if (lab::should_block()) // LAB-BLOCK: the blocking job (docs/blocking.md)
        lab::block_once();   // LAB-BLOCK
    c.filled = static_cast<std::size_t>(n);
    c.sent = 0;
    if (flush(c, stats, failed))
        return true; // all echoed: stay in `reading`
    if (failed)
        return false;
    c.state = conn_state::writing; // the peer is slow: wait until it can take more
    epoll_event ev{EPOLLOUT, {.ptr = &c}};
    return ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) == 0;
}
// LAB-HANDLER-END

} // namespace

int main(int argc, char** argv) {
    lab::options opt = lab::parse_args(argc, argv, "lab_echo_epoll", false);
    int signal_fd = lab::stop_signal_fd(true);
    int listener = lab::listen_socket(opt, true);
    int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    // The listener and the signalfd are told apart from connections by their data.ptr tags.
    int listener_tag = 0;
    int signal_tag = 0;
    epoll_event ev{EPOLLIN, {.ptr = &listener_tag}};
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    ev = {EPOLLIN, {.ptr = &signal_tag}};
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, signal_fd, &ev);

    lab::stats stats;
    std::vector<std::unique_ptr<connection>> by_fd; // owns the connections, indexed by fd
    std::size_t open = 0;
    auto close_connection = [&](connection* c) {
        int fd = c->fd;
        ::close(fd); // also removes it from the epoll set
        by_fd[static_cast<std::size_t>(fd)].reset();
        --open;
    };

    std::vector<epoll_event> events(256);
    for (bool stopping = false; !stopping;) {
        int ready = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), -1);
        for (int i = 0; i < ready; ++i) {
            void* tag = events[static_cast<std::size_t>(i)].data.ptr;
            if (tag == &signal_tag) {
                stopping = true;
            } else if (tag == &listener_tag) {
                // Accept what the backlog holds, up to a batch, so connections cannot starve.
                for (int k = 0; k < 64; ++k) {
                    int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    if (open >= opt.max_connections) {
                        ::close(fd);
                        continue;
                    }
                    auto c = std::make_unique<connection>();
                    c->fd = fd;
                    c->buffer.resize(opt.buffer_size);
                    epoll_event cev{EPOLLIN, {.ptr = c.get()}};
                    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev);
                    if (by_fd.size() <= static_cast<std::size_t>(fd))
                        by_fd.resize(static_cast<std::size_t>(fd) + 1);
                    by_fd[static_cast<std::size_t>(fd)] = std::move(c);
                    ++open;
                    ++stats.connections;
                }
            } else {
                auto* c = static_cast<connection*>(tag);
                if (!on_ready(epfd, *c, stats))
                    close_connection(c);
            }
        }
    }
    for (auto& c : by_fd)
        if (c)
            close_connection(c.get());
    ::close(listener);
    ::close(epfd);
    ::close(signal_fd);
    lab::print_stats(stats);
    return 0;
}
