// SPDX-License-Identifier: MIT
// lab_sync_threads: the synchronisation job (docs/synchronisation.md) with blocking calls and one
// thread per connection, all of them sharing one std::unordered_map behind one std::mutex. The
// threads run on every CPU at once, so the lock is what keeps the map whole; the server counts
// how often a thread found it taken (try_lock failed, then it waited in lock()). With
// --lock-stripes N the map is split in N, a mutex each, the key's hash picking one (sharded
// locks). Compare with sync/corio.cpp: the same service with a map per shard and no lock at all.
// Shutdown as in echo/threads.cpp: sigwait(), shut every connection down, stats, exit 0.
// Try: lab_sync_threads --port 0   (prints `listening on PORT`), then
//      printf 'SET a 1\nGET a\n' | nc -q1 127.0.0.1 PORT
#include "common/kv.hpp"
#include "common/lab.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// LAB-HANDLER-BEGIN
/// A part of the map and the lock that makes sharing it safe.
struct stripe {
    std::mutex mutex;
    lab::kv_map map; // guarded by mutex
};

/// The map every connection thread shares: one stripe (one lock for everything), or more.
struct shared_map {
    explicit shared_map(unsigned n) : stripes(n) {}
    std::vector<stripe> stripes;              // a key's stripe: key_owner(key, stripes.size())
    std::atomic<std::uint64_t> lock_waits{0}; // a thread found its stripe's mutex taken
};

/// Runs one request under its stripe's lock, counting the times another thread held it.
lab::kv_result apply(shared_map& shared, const lab::kv_request& req) {
    stripe& part = shared.stripes[lab::key_owner(req.key, shared.stripes.size())];
    std::unique_lock lock(part.mutex, std::try_to_lock);
    if (!lock.owns_lock()) {
        shared.lock_waits.fetch_add(1, std::memory_order_relaxed);
        lock.lock();
    }
    return part.map.apply(req);
}

/// Sends all of `data` (a blocking send may be partial). False when the peer is gone.
bool send_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t sent = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        done += static_cast<std::size_t>(sent);
    }
    return true;
}

/// One connection, start to end: read request lines, answer them (all the lines of one read in
/// one send), until EOF, an error or a request line that is too long.
void serve(int fd, shared_map& shared, lab::stats& counts) {
    lab::line_input in;
    std::string out;
    for (;;) {
        ssize_t n = ::recv(fd, in.free_space().data(), in.free_space().size(), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        counts.bytes_in += static_cast<std::uint64_t>(n);
        in.received(static_cast<std::size_t>(n));
        out.clear();
        std::string_view line;
        while (in.next_line(line)) {
            lab::kv_request req = lab::parse_kv(line);
            lab::append_kv_reply(out, req, apply(shared, req));
            ++counts.requests;
        }
        bool too_long = in.overflowing();
        if (too_long)
            out += lab::k_too_long;
        in.compact();
        if (!send_all(fd, out))
            return;
        counts.bytes_out += out.size();
        if (too_long)
            return;
    }
}
// LAB-HANDLER-END

struct server {
    explicit server(lab::options o) : opt(std::move(o)), shared(opt.lock_stripes) {}
    lab::options opt;
    shared_map shared;
    std::mutex mutex;                // guards everything below
    std::set<int> open_fds;          // connections to shut down on a stop signal
    std::condition_variable emptied; // signalled when the last connection thread ends
    bool stopping = false;
    lab::stats totals; // connection threads add their counts when they end
};

void connection_thread(server* srv, int fd) {
    lab::stats counts;
    serve(fd, srv->shared, counts);
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
    server state(lab::parse_sync_args(argc, argv, "lab_sync_threads", false));
    server* srv = &state;
    sigset_t stop = lab::block_stop_signals(); // before any thread: all of them inherit the mask
    int listener = lab::listen_socket(srv->opt, false);
    std::thread acceptor(accept_loop, srv, listener);

    int signo = 0;
    sigwait(&stop, &signo);
    std::unique_lock lock(srv->mutex);
    srv->stopping = true;
    ::shutdown(listener, SHUT_RDWR); // wakes accept() with EINVAL
    for (int fd : srv->open_fds)
        ::shutdown(fd, SHUT_RDWR); // wakes recv()/send(): each thread ends and closes
    bool all_ended =
        srv->emptied.wait_for(lock, std::chrono::seconds(1), [&] { return srv->open_fds.empty(); });
    std::string extra =
        " lock_waits=" + std::to_string(srv->shared.lock_waits.load(std::memory_order_relaxed));
    lab::print_stats(srv->totals, extra);
    if (!all_ended)
        std::_Exit(0); // threads still running use `state`: leave without destroying it
    lock.unlock();
    acceptor.join();
    ::close(listener);
    return 0;
}
