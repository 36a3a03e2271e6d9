// SPDX-License-Identifier: MIT
// lab_echo_corio: the echo job on corio. The handler reads like echo/threads.cpp (recv, then
// send it all, until EOF) while one thread and one io_uring serve every connection: the state
// the epoll and uring versions record by hand (echo/epoll.cpp, echo/uring.cpp) lives in the
// coroutine frame. One task per connection, spawned into a task_scope; SIGINT/SIGTERM arrive
// through a signalfd read in the ring, close the listener and cancel the connections.
// Try: lab_echo_corio --port 0   (prints `listening on PORT`), then nc 127.0.0.1 PORT
#include <corio/corio.hpp>
#include "common/lab.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <vector>

namespace net = corio::net;

namespace {

bool g_offload_blocking = false;     // --block-fix offload (the blocking job)
corio::file* g_ring_block = nullptr; // --block-fix ring: --block-file, read through the ring

/// The blocking job's call as an offload() job (the fix: the loop goes on meanwhile).
struct block_job {
    std::uint64_t operator()() const { return lab::block_once(); }
};

/// The blocking job (docs/blocking.md): the blocking call inline (the loop stops: every other
/// connection waits), in the offload pool (--block-fix offload), or, for a cold read of
/// --block-file, the same range read through the ring (--block-fix ring): only this connection
/// waits for the disk.
corio::task<void> block(bool offloaded) {
    if (g_ring_block) {
        lab::cold_range range = lab::next_cold_range();
        auto into = std::as_writable_bytes(std::span(lab::cold_sink(), range.length));
        corio::result<std::size_t> got = co_await g_ring_block->read_at(into, range.offset);
        (void)got;
        co_return;
    }
    if (!offloaded) {
        lab::block_once();
        co_return;
    }
    auto job = corio::offload(block_job{});
    std::uint64_t hash = co_await job;
    (void)hash;
}

// LAB-HANDLER-BEGIN
/// One connection, start to end: read, write it all back, repeat until EOF or an error.
corio::task<void> echo(net::tcp_stream conn, std::size_t buffer_size, lab::stats* stats) {
    std::vector<std::byte> buffer(buffer_size);
    for (;;) {
        corio::result<std::size_t> n = co_await conn.recv_some(buffer);
        if (!n || *n == 0)
            break;
        stats->bytes_in += *n;
        if (lab::should_block())              // LAB-BLOCK: the blocking job (docs/blocking.md)
            co_await block(g_offload_blocking); // LAB-BLOCK
        corio::result<std::size_t> sent = co_await conn.send_all(std::span(buffer).first(*n));
        if (!sent)
            break;
        stats->bytes_out += *sent;
        ++stats->requests;
    }
    corio::result<void> closed = co_await conn.close();
    (void)closed;
}
// LAB-HANDLER-END

/// SIGINT/SIGTERM: closing the listener ends the accept loop.
corio::task<void> watch_signals(int signal_fd, net::tcp_listener* listener) {
    signalfd_siginfo info{};
    auto prep = [signal_fd, &info](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, signal_fd, &info, sizeof info, 0);
    };
    corio::result<corio::uring_completion> got = co_await corio::submit(prep);
    (void)got; // a signal, or cancelled: either way the server goes down
    corio::result<void> closed = co_await listener->close();
    (void)closed;
}

corio::task<int> run_server(lab::options opt, int listen_fd, int signal_fd) {
    net::tcp_listener listener(listen_fd);
    lab::stats stats;
    corio::task_scope control;     // the signal watcher
    corio::task_scope connections; // one task per connection
    control.spawn(watch_signals(signal_fd, &listener));
    {
        net::tcp_accept_stream incoming = listener.accept_multishot();
        for (;;) {
            corio::result<net::tcp_stream> conn = co_await incoming.next();
            if (!conn)
                break; // the listener was closed: stopping
            if (connections.size() >= opt.max_connections)
                continue; // destroying the stream closes it
            ++stats.connections;
            connections.spawn(echo(std::move(*conn), opt.buffer_size, &stats));
        }
    }
    connections.request_stop(); // cancels every connection's recv/send; each closes its socket
    co_await connections.join();
    control.request_stop();
    co_await control.join();
    stats.frame_bytes_peak = corio::io_context::current().stats().peak_frame_bytes;
    stats.stalls = corio::io_context::current().stats().stalls;
    lab::print_stats(stats);
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    lab::options opt = lab::parse_args(argc, argv, "lab_echo_corio", false);
    g_offload_blocking = opt.block_offload;
    corio::file ring_block(opt.block_ring ? ::dup(lab::cold_file()) : -1);
    if (opt.block_ring)
        g_ring_block = &ring_block;
    int signal_fd = lab::stop_signal_fd(false); // before the offload pool can start a thread
    int listen_fd = lab::listen_socket(opt, false);
    try {
        corio::io_context ctx({.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries});
        int status = corio::sync_wait(ctx, run_server(opt, listen_fd, signal_fd));
        ::close(signal_fd);
        return status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lab_echo_corio: %s\n", e.what());
        return 1;
    }
}
