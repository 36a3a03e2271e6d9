// SPDX-License-Identifier: MIT
// lab_files_epoll: the file job as a hand-written epoll state machine (protocol: see
// files/threads.cpp). Each connection is an explicit struct: its request buffer, the reply in
// progress (open file, position, bytes left) and what is being sent, with a state enum saying
// whether it waits to read or to write. Level-triggered, EPOLLOUT only while a send is stuck.
// TRICKY: epoll cannot wait for a disk read - regular files are always "ready" - so the pread()
// below BLOCKS THE WHOLE LOOP while the disk works (run with --direct to make every read hit the
// disk): every other connection waits, and its p99 shows it. The way out under epoll is a thread
// pool handing results back through an eventfd, with yet more state per connection; that is what
// io_uring (files/uring.cpp) and corio (files/corio.cpp) make unnecessary. This file shows the
// blocking version on purpose. Files are opened per request and closed after it.
// Try: lab_files_epoll --root DIR --port 0, then printf 'GET name 0 100\n' | nc 127.0.0.1 PORT
#include "common/lab.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

// LAB-HANDLER-BEGIN
/// What a connection waits for: a readable socket (more request bytes) or a writable one.
enum class conn_state { reading, writing };

/// A connection's state, recorded by hand between readiness events.
struct connection {
    explicit connection(const lab::options& opt) : data(opt) {}
    int fd = -1;
    conn_state state = conn_state::reading;
    char requests[lab::k_request_buffer]; // request bytes received, not yet answered
    std::size_t have = 0;                 // bytes in `requests`
    int file = -1;                        // the file of the reply in progress
    std::uint64_t pos = 0;                // its next byte to send
    std::uint64_t left = 0;               // bytes of it still to send
    lab::file_buffer data;                // file bytes read, being sent
    char head[32];                        // an `OK <n>\n` being sent
    const char* out = nullptr;            // what is being sent now
    std::size_t out_left = 0;             // bytes of it not sent yet
    bool close_after = false;             // close once `out` is sent (after `ERR too long`)
};

void send_next(connection& c, std::string_view what) {
    c.out = what.data();
    c.out_left = what.size();
}

/// Starts the reply to one request line: a header or an error to send, maybe an open file.
void start_reply(connection& c, std::string_view line, int root, const lab::options& opt,
                 lab::stats& stats) {
    ++stats.requests;
    lab::file_request req = lab::parse_request(line);
    if (!req.error.empty())
        return send_next(c, req.error);
    c.file = ::openat(root, std::string(req.name).c_str(), lab::file_open_flags(opt));
    if (c.file < 0)
        return send_next(c, lab::open_error(errno));
    struct ::stat st {};
    c.left = 0;
    std::string_view refused =
        ::fstat(c.file, &st) == 0 ? lab::plan_reply(st, req, c.left) : lab::open_error(errno);
    if (!refused.empty())
        return send_next(c, refused);
    c.pos = req.offset;
    send_next(c, {c.head, lab::format_ok(c.head, c.left)});
}

/// Runs connection `c` as far as it can go without waiting: sends, reads the file (blocking!),
/// starts the next buffered request. Leaves it waiting for EPOLLIN or EPOLLOUT. False: close it.
bool advance(int epfd, connection& c, int root, const lab::options& opt, lab::stats& stats) {
    for (;;) {
        if (c.out_left > 0) {
            ssize_t n = ::send(c.fd, c.out, c.out_left, MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN)
                break; // wait for EPOLLOUT
            if (n < 0)
                return false;
            c.out += n;
            c.out_left -= static_cast<std::size_t>(n);
            stats.bytes_out += static_cast<std::uint64_t>(n);
            continue;
        }
        if (c.close_after)
            return false;
        if (c.left > 0) { // the next chunk: a blocking read, the whole loop waits for the disk
            lab::read_step step = lab::next_read(opt, c.pos, c.left);
            ssize_t got = ::pread(c.file, c.data.data(), step.length, static_cast<off_t>(step.at));
            std::size_t chunk =
                lab::usable(step, got < 0 ? 0 : static_cast<std::size_t>(got), c.left);
            if (chunk == 0)
                return false; // the file shrank under us
            send_next(c, {c.data.data() + step.skip, chunk});
            c.pos += chunk;
            c.left -= chunk;
            continue;
        }
        if (c.file >= 0) { // the reply is complete
            ::close(c.file);
            c.file = -1;
        }
        auto* nl = static_cast<char*>(std::memchr(c.requests, '\n', c.have));
        std::size_t line_length = nl ? static_cast<std::size_t>(nl - c.requests) : c.have;
        if (line_length > lab::k_max_request_line) {
            send_next(c, lab::k_too_long);
            c.close_after = true;
            continue;
        }
        if (!nl) { // wait for more request bytes
            if (c.state == conn_state::reading)
                return true;
            c.state = conn_state::reading;
            epoll_event ev{EPOLLIN, {.ptr = &c}};
            return ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) == 0;
        }
        start_reply(c, {c.requests, line_length}, root, opt, stats);
        c.have -= line_length + 1;
        std::memmove(c.requests, nl + 1, c.have);
    }
    if (c.state == conn_state::writing)
        return true;
    c.state = conn_state::writing;
    epoll_event ev{EPOLLOUT, {.ptr = &c}};
    return ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) == 0;
}

/// One readiness event of connection `c`. False when the connection is over.
bool on_ready(int epfd, connection& c, int root, const lab::options& opt, lab::stats& stats) {
    if (c.state == conn_state::reading) {
        ssize_t n = ::recv(c.fd, c.requests + c.have, sizeof c.requests - c.have, 0);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR; // a spurious wake-up is not the end
        if (n == 0)
            return false; // EOF
        stats.bytes_in += static_cast<std::uint64_t>(n);
        c.have += static_cast<std::size_t>(n);
    }
    return advance(epfd, c, root, opt, stats);
}
// LAB-HANDLER-END

} // namespace

int main(int argc, char** argv) {
    lab::options opt = lab::parse_args(argc, argv, "lab_files_epoll", true);
    int root = lab::open_root(opt);
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
        if (c->file >= 0)
            ::close(c->file);
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
                    auto c = std::make_unique<connection>(opt);
                    c->fd = fd;
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
                if (!on_ready(epfd, *c, root, opt, stats))
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
    ::close(root);
    lab::print_stats(stats);
    return 0;
}
