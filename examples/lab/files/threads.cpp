// SPDX-License-Identifier: MIT
// lab_files_threads: the file job with blocking calls and one thread per connection. A request
// `GET <name> <offset> <length>\n` is answered `OK <n>\n` plus n bytes of the file (or
// `ERR <reason>\n`), pipelined requests in order. Disk reads are blocking pread()s, which is fine
// here: only this connection's thread waits. The state (request buffer, open file, position) sits
// on the thread's stack. Compare with files/epoll.cpp (the same blocking pread stalls every
// connection) and files/corio.cpp (the same code, reading through the ring). Files are opened
// per request and closed after it, in all four styles.
// Shutdown: as echo/threads.cpp (sigwait, shut every socket down, wait up to 1 s, exit 0).
// Try: lab_files_threads --root DIR --port 0, then printf 'GET name 0 100\n' | nc 127.0.0.1 PORT
#include "common/lab.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

namespace {

struct server {
    lab::options opt;
    int root = -1;                   // --root, for openat
    std::mutex mutex;                // guards everything below
    std::set<int> open_fds;          // connections to shut down on a stop signal
    std::condition_variable emptied; // signalled when the last connection thread ends
    bool stopping = false;
    lab::stats totals; // connection threads add their counts when they end
};

// LAB-HANDLER-BEGIN
/// Sends all of `data` (a blocking send may be partial). False when the peer is gone.
bool send_all(int fd, std::string_view data, lab::stats& counts) {
    while (!data.empty()) {
        ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        data.remove_prefix(static_cast<std::size_t>(sent));
        counts.bytes_out += static_cast<std::uint64_t>(sent);
    }
    return true;
}

/// Answers one request line. False when the connection must close.
bool answer(int fd, std::string_view line, const server& srv, lab::file_buffer& data,
            lab::stats& counts) {
    ++counts.requests;
    lab::file_request req = lab::parse_request(line);
    if (!req.error.empty())
        return send_all(fd, req.error, counts);
    int file = ::openat(srv.root, std::string(req.name).c_str(), lab::file_open_flags(srv.opt));
    if (file < 0)
        return send_all(fd, lab::open_error(errno), counts);
    struct ::stat st {};
    std::uint64_t left = 0;
    std::string_view reply =
        ::fstat(file, &st) == 0 ? lab::plan_reply(st, req, left) : lab::open_error(errno);
    char head[32];
    if (reply.empty())
        reply = {head, lab::format_ok(head, left)};
    bool ok = send_all(fd, reply, counts);
    for (std::uint64_t pos = req.offset; ok && left > 0;) {
        lab::read_step step = lab::next_read(srv.opt, pos, left);
        ssize_t got = ::pread(file, data.data(), step.length, static_cast<off_t>(step.at));
        std::size_t chunk = lab::usable(step, got < 0 ? 0 : static_cast<std::size_t>(got), left);
        if (chunk == 0)
            break; // a read error, or the file shrank under us: close the connection
        ok = send_all(fd, {data.data() + step.skip, chunk}, counts);
        pos += chunk;
        left -= chunk;
    }
    ::close(file);
    return ok && left == 0;
}

/// One connection, start to end: read request lines, answer each in order, until EOF.
void serve(int fd, const server& srv, lab::stats& counts) {
    char requests[lab::k_request_buffer];
    std::size_t have = 0;
    lab::file_buffer data(srv.opt);
    for (;;) {
        auto* nl = static_cast<char*>(std::memchr(requests, '\n', have));
        std::size_t line_length = nl ? static_cast<std::size_t>(nl - requests) : have;
        if (line_length > lab::k_max_request_line) {
            send_all(fd, lab::k_too_long, counts);
            return;
        }
        if (!nl) {
            ssize_t n = ::recv(fd, requests + have, sizeof requests - have, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;
            counts.bytes_in += static_cast<std::uint64_t>(n);
            have += static_cast<std::size_t>(n);
            continue;
        }
        if (!answer(fd, {requests, line_length}, srv, data, counts))
            return;
        have -= line_length + 1;
        std::memmove(requests, nl + 1, have);
    }
}
// LAB-HANDLER-END

void connection_thread(server* srv, int fd) {
    lab::stats counts;
    serve(fd, *srv, counts);
    std::lock_guard lock(srv->mutex);
    srv->open_fds.erase(fd);
    ::close(fd);
    srv->totals.requests += counts.requests;
    srv->totals.bytes_in += counts.bytes_in;
    srv->totals.bytes_out += counts.bytes_out;
    if (srv->open_fds.empty())
        srv->emptied.notify_all();
}

void accept_loop(server* srv, int listener) {
    for (;;) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0)
            return; // EINVAL after the stop signal shut the listener down (or a real error)
        std::lock_guard lock(srv->mutex);
        if (srv->stopping || srv->open_fds.size() >= srv->opt.max_connections) {
            ::close(fd);
            continue;
        }
        srv->open_fds.insert(fd);
        ++srv->totals.connections;
        std::thread(connection_thread, srv, fd).detach();
    }
}

} // namespace

int main(int argc, char** argv) {
    server srv;
    srv.opt = lab::parse_args(argc, argv, "lab_files_threads", true);
    srv.root = lab::open_root(srv.opt);
    sigset_t stop = lab::block_stop_signals(); // before any thread: all of them inherit the mask
    int listener = lab::listen_socket(srv.opt, false);
    std::thread acceptor(accept_loop, &srv, listener);

    int signo = 0;
    sigwait(&stop, &signo);
    {
        std::unique_lock lock(srv.mutex);
        srv.stopping = true;
        ::shutdown(listener, SHUT_RDWR); // wakes accept() with EINVAL
        for (int fd : srv.open_fds)
            ::shutdown(fd, SHUT_RDWR); // wakes recv()/send(): each thread ends and closes
        bool all_ended = srv.emptied.wait_for(lock, std::chrono::seconds(1),
                                              [&] { return srv.open_fds.empty(); });
        lab::print_stats(srv.totals);
        if (!all_ended)
            std::_Exit(0); // threads still running use `srv`: leave without destroying it
    }
    acceptor.join();
    ::close(listener);
    ::close(srv.root);
    return 0;
}
