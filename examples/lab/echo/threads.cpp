// SPDX-License-Identifier: MIT
// lab_echo_threads: the echo job with blocking calls and one thread per connection. The state of
// a connection (its socket, its buffer, where it is in recv-then-send) lives on its thread's
// stack; the kernel's scheduler is the event loop. Compare with echo/epoll.cpp (the same state
// kept by hand) and echo/corio.cpp (the same code, suspended instead of blocked).
// Shutdown: the main thread waits in sigwait(); on SIGINT/SIGTERM it shuts the listener and
// every connection down (their blocking calls return), waits up to 1 s for the threads to finish,
// prints the stats and exits 0.
// Try: lab_echo_threads --port 0   (prints `listening on PORT`), then nc 127.0.0.1 PORT
#include "common/lab.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace {

struct server {
    lab::options opt;
    std::mutex mutex;                // guards everything below
    std::set<int> open_fds;          // connections to shut down on a stop signal
    std::condition_variable emptied; // signalled when the last connection thread ends
    bool stopping = false;
    lab::stats totals; // connection threads add their counts when they end
};

// LAB-HANDLER-BEGIN
/// Sends all of `data` (a blocking send may be partial). False when the peer is gone.
bool send_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        data += sent;
        size -= static_cast<std::size_t>(sent);
    }
    return true;
}

/// One connection, start to end: read, write it all back, repeat until EOF or an error.
void echo(int fd, std::size_t buffer_size, lab::stats& counts) {
    std::vector<char> buffer(buffer_size);
    for (;;) {
        ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        counts.bytes_in += static_cast<std::uint64_t>(n);
        if (lab::should_block()) // LAB-BLOCK: the blocking job (docs/blocking.md)
            lab::block_once();   // LAB-BLOCK
        if (!send_all(fd, buffer.data(), static_cast<std::size_t>(n)))
            return;
        counts.bytes_out += static_cast<std::uint64_t>(n);
        ++counts.requests;
    }
}
// LAB-HANDLER-END

void connection_thread(server* srv, int fd) {
    lab::stats counts;
    echo(fd, srv->opt.buffer_size, counts);
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
    srv.opt = lab::parse_args(argc, argv, "lab_echo_threads", false);
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
    return 0;
}
