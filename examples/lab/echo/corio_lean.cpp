// SPDX-License-Identifier: MIT
// lab_echo_corio_lean: the echo job on corio written the lean way (docs/provided_buffers.md,
// examples/echo.cpp's echo_with_ring), the laboratory's "corio lean" row. Reads go to one shared
// ring of 512 provided buffers through a multishot recv, so an idle connection holds no buffer;
// each read carries an idle deadline (no extra frame); a reply goes out in one send that never
// waits, and only what it left waits under the deadline. Compare with echo/corio.cpp (a buffer
// per connection: the fair twin of echo/uring.cpp) and echo/uring.cpp (the hand-written machine).
// The skeleton (signals, accept loop, shutdown) is echo/corio.cpp's. The blocking job's flags are
// refused: that job is lab_echo_corio's.
// Try: lab_echo_corio_lean --port 0   (prints `listening on PORT`), then nc 127.0.0.1 PORT
#include <corio/corio.hpp>
#include "common/lab.hpp"

#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <system_error>

namespace net = corio::net;
using namespace std::chrono_literals;

namespace {

/// Buffers in the shared ring: examples/echo's default. The ring's memory is this many times
/// --buffer-size whatever the number of connections (docs/provided_buffers.md).
constexpr unsigned k_ring_buffers = 512;

/// A peer silent (or not reading) this long is closed: examples/echo's default. The lab's CLI has
/// no flag for it; no benchmark connection idles that long, so only its cost shows.
constexpr std::chrono::milliseconds k_idle_timeout = 60s;

// LAB-HANDLER-BEGIN
/// Sends all of `rest`, each send under the idle deadline (a peer that stops reading goes).
corio::task<corio::result<void>> send_rest(net::tcp_stream* conn, std::span<const std::byte> rest) {
    while (!rest.empty()) {
        auto send = corio::with_timeout(conn->send_some(rest), k_idle_timeout);
        corio::result<std::size_t> sent = co_await send;
        if (!sent)
            co_return sent.error();
        rest = rest.subspan(*sent);
    }
    co_return corio::result<void>{};
}

/// One connection, start to end: each chunk that arrives goes back, until EOF, an error, an idle
/// peer or the shutdown. The chunk stays in its ring buffer (the lease) until it was sent.
corio::task<void> echo(net::tcp_stream conn, net::buffer_ring* ring, lab::stats* stats) {
    net::recv_stream chunks = conn.recv_multishot(*ring);
    for (;;) {
        corio::result<net::buffer_lease> lease = co_await chunks.next(k_idle_timeout);
        if (!lease || lease->empty())
            break;
        std::span<const std::byte> reply = lease->data();
        stats->bytes_in += reply.size();
        // The usual case: the socket has room, one send that never waits is all (no deadline).
        corio::result<std::size_t> quick = co_await conn.send_some(reply, MSG_DONTWAIT);
        if (!quick && quick != std::errc::resource_unavailable_try_again)
            break;
        std::span<const std::byte> rest = reply.subspan(quick ? *quick : 0);
        if (!rest.empty()) {
            auto sending = send_rest(&conn, rest);
            corio::result<void> sent = co_await std::move(sending);
            if (!sent)
                break;
        }
        stats->bytes_out += reply.size();
        ++stats->requests;
    }
    corio::result<void> closed = co_await conn.close(); // ends the stream's armed recv too
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
    // Before the scopes: every stream reading from it is gone when they have joined.
    net::buffer_ring ring(corio::io_context::current(), k_ring_buffers,
                          static_cast<std::uint32_t>(opt.buffer_size));
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
            connections.spawn(echo(std::move(*conn), &ring, &stats));
        }
    }
    connections.request_stop(); // cancels every connection's wait; each closes its socket
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
    lab::options opt = lab::parse_args(argc, argv, "lab_echo_corio_lean", false);
    if (opt.block_every != 0 || opt.block_offload || opt.block_ring) {
        std::fprintf(stderr, "lab_echo_corio_lean: --block-every/--block-fix: the blocking job "
                             "runs lab_echo_corio\n");
        return 2;
    }
    int signal_fd = lab::stop_signal_fd(false);
    int listen_fd = lab::listen_socket(opt, false);
    try {
        corio::io_context ctx({.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries});
        int status = corio::sync_wait(ctx, run_server(opt, listen_fd, signal_fd));
        ::close(signal_fd);
        return status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lab_echo_corio_lean: %s\n", e.what());
        return 1;
    }
}
