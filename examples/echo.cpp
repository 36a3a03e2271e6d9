// SPDX-License-Identifier: MIT
// echo: a TCP echo server on corio. Each connection is one coroutine that reads like the blocking
// thread-per-connection version (recv, then send, until EOF) while one thread and one io_uring
// serve every connection. Its lean siblings for side-by-side comparison (threads, epoll, raw
// io_uring, corio, one CLI) are in examples/lab/echo/. With --provided-buffers N, reads land in
// a shared provided-buffer ring instead of a buffer per connection (multishot recv; idle
// connections then hold no buffer).
// Try: build/debug/examples/echo --port 0   (prints `listening on PORT`), then
//      nc 127.0.0.1 PORT            and   kill -USR1 <pid>   for a stats line.
#include <corio/corio.hpp>
#include "examples/common/cli.hpp"
#include "examples/common/listen.hpp"
#include "examples/common/open_fds.hpp"
#include "examples/common/stop_signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace net = corio::net;
using namespace std::chrono_literals;

namespace {

struct options {
    std::string bind = "0.0.0.0";        // address to listen on
    std::uint16_t port = 7000;           // 0: an ephemeral port, printed
    unsigned sq_entries = 256;           // io_uring submission queue size
    unsigned cq_entries = 0;             // completion queue size (0: kernel default, 2 × SQ)
    std::size_t buffer_size = 4096;      // bytes per read (per connection, or per ring buffer)
    unsigned provided_buffers = 0;       // >0: a shared ring of this many buffers (power of 2)
    std::size_t max_connections = 10000; // beyond this, new connections are closed at once
    std::chrono::milliseconds idle_timeout = 60s; // a peer silent (or not reading) this long goes
    std::chrono::milliseconds drain = 2s;         // on SIGINT/SIGTERM: time given to finish
    std::chrono::milliseconds stats_interval = 0ms; // 0: stats only on SIGUSR1
};

struct server_state {
    std::uint64_t bytes = 0;               // bytes echoed
    net::buffer_ring* ring = nullptr;      // the shared ring, with --provided-buffers
    const net::server* server = nullptr;   // connections, accepted, rejected, timed_out
};

// ----- one connection -----

/// Sends all of `data`: std::errc::timed_out when the peer stops reading for `limit` (no send
/// completes within it), or the error of the send that failed.
corio::task<corio::result<void>> send_all_within(net::tcp_stream* conn,
                                                 std::span<const std::byte> data,
                                                 std::chrono::milliseconds limit) {
    while (!data.empty()) {
        auto send = corio::with_timeout(conn->send_some(data), limit);
        corio::result<std::size_t> sent = co_await send;
        if (!sent)
            co_return sent.error();
        data = data.subspan(*sent);
    }
    co_return corio::result<void>{};
}

/// The whole protocol: what arrives goes back. Ends at EOF, on an error, when the peer idles
/// past the timeout, or when the server drains (cancellation).
corio::task<void> echo_with_own_buffer(net::tcp_stream conn, net::server::connection* c,
                                       const options* opt, server_state* state) {
    std::vector<std::byte> buffer(opt->buffer_size);
    for (;;) {
        auto recv = corio::with_timeout(conn.recv_some(buffer), opt->idle_timeout);
        corio::result<std::size_t> n = co_await recv;
        if (!n || *n == 0) {
            if (n == std::errc::timed_out)
                c->count_timeout();
            break;
        }
        auto send = send_all_within(&conn, std::span(buffer).first(*n), opt->idle_timeout);
        corio::result<void> sent = co_await std::move(send);
        if (!sent) {
            if (sent == std::errc::timed_out)
                c->count_timeout(); // a peer that stopped reading
            break;
        }
        state->bytes += *n;
    }
    corio::result<void> closed = co_await conn.close(); // cancels anything left, then closes
    (void)closed;
}

corio::task<corio::result<net::buffer_lease>> next_chunk(net::recv_stream* chunks) {
    corio::result<net::buffer_lease> lease = co_await chunks->next();
    co_return lease;
}

/// The same protocol over a multishot recv into the shared ring.
corio::task<void> echo_with_ring(net::tcp_stream conn, net::server::connection* c,
                                 const options* opt, server_state* state) {
    net::recv_stream chunks = conn.recv_multishot(*state->ring);
    for (;;) {
        auto next = corio::timeout(next_chunk(&chunks), opt->idle_timeout);
        corio::result<net::buffer_lease> lease = co_await std::move(next);
        if (!lease || lease->empty()) {
            if (lease == std::errc::timed_out)
                c->count_timeout();
            break;
        }
        auto send = send_all_within(&conn, lease->data(), opt->idle_timeout);
        corio::result<void> sent = co_await std::move(send);
        if (!sent) {
            if (sent == std::errc::timed_out)
                c->count_timeout(); // a peer that stopped reading
            break;
        }
        state->bytes += lease->size();
    }
    corio::result<void> closed = co_await conn.close(); // ends the stream's armed recv too
    (void)closed;
}

// ----- statistics -----

corio::task<void> dump_stats(const options* opt, const server_state* state) {
    auto counting = corio::offload(example::count_open_fds{});
    long fds = co_await counting;
    corio::io_context_stats s = corio::io_context::current().stats();
    net::server_stats srv = state->server->stats();
    std::size_t buffered = state->ring ? std::size_t{state->ring->count()} * opt->buffer_size
                                       : srv.connections * opt->buffer_size;
    std::printf("stats: connections=%zu accepted=%llu rejected=%llu timed_out=%llu "
                "bytes_echoed=%llu live_tasks=%zu ops_in_flight=%zu open_fds=%ld "
                "cq_overflows=%llu bytes_buffered=%zu stalls=%llu longest_stall_ms=%lld\n",
                srv.connections, static_cast<unsigned long long>(srv.accepted),
                static_cast<unsigned long long>(srv.refused),
                static_cast<unsigned long long>(srv.timed_out),
                static_cast<unsigned long long>(state->bytes), s.live_tasks, s.ops_in_flight,
                fds, static_cast<unsigned long long>(s.cq_overflows), buffered,
                static_cast<unsigned long long>(s.stalls),
                static_cast<long long>(s.longest_stall.count() / 1000));
    std::fflush(stdout);
}

corio::task<void> tick_stats(const options* opt, const server_state* state) {
    for (;;) {
        corio::result<void> slept = co_await corio::sleep_for(opt->stats_interval);
        if (!slept)
            co_return;
        co_await dump_stats(opt, state);
    }
}

/// After the drain (the signals still watched): the drain's outcome and the last stats line.
corio::task<void> finish(const options* opt, const server_state* state) {
    if (state->server->stats().drain_timed_out)
        std::printf("drain: cancelled the connections still open after %lld ms\n",
                    static_cast<long long>(opt->drain.count()));
    co_await dump_stats(opt, state);
}

// ----- the server -----

corio::task<int> run_server(options opt, corio::signal_set* signals) {
    int status = 0;
    std::optional<net::tcp_listener> listener =
        example::bind_listener("echo", opt.bind, opt.port, &status);
    if (!listener)
        co_return status;
    example::announce(*listener);

    server_state state;
    std::unique_ptr<net::buffer_ring> ring;
    if (opt.provided_buffers > 0) {
        ring = std::make_unique<net::buffer_ring>(corio::io_context::current(),
                                                  opt.provided_buffers,
                                                  static_cast<std::uint32_t>(opt.buffer_size));
        state.ring = ring.get();
    }

    // The skeleton (limit, signals, drain) is net::server's; echo is its handler.
    net::server_options so;
    so.name = "echo";
    so.max_connections = opt.max_connections; // beyond it: closed at once (bounded memory)
    so.drain_timeout = opt.drain;
    so.signals = signals;
    so.exit_on_second_signal = true;
    so.on_drain = [&state](int signo) {
        if (signo == 0)
            return; // the listener broke (logged): no signal to report
        std::printf("signal %d: draining %zu connections\n", signo,
                    state.server->stats().connections);
        std::fflush(stdout);
    };
    so.on_stats = [&opt, &state] {
        corio::dump_tasks(); // stderr: every live task and what it waits on
        return dump_stats(&opt, &state);
    };
    so.on_drained = [&opt, &state] { return finish(&opt, &state); };
    net::server srv(
        *listener,
        [&opt, &state](net::tcp_stream conn, net::server::connection* c) {
            return state.ring ? echo_with_ring(std::move(conn), c, &opt, &state)
                              : echo_with_own_buffer(std::move(conn), c, &opt, &state);
        },
        std::move(so));
    state.server = &srv;
    if (opt.stats_interval.count() > 0)
        srv.spawn(tick_stats(&opt, &state));
    net::server_stats done = co_await srv.run();
    (void)done;
    co_return 0;
}

// ----- command line -----

options parse_args(int argc, char** argv) {
    options opt;
    cli::parser p("echo",
                  "A TCP echo server: one coroutine per connection, one thread, one io_uring.",
                  stop_signals::k_usage);
    p.port(opt.port);
    p.text("--bind", opt.bind, "address to listen on").type("ADDR");
    p.number("--sq-entries", opt.sq_entries, 0, 32768, "io_uring SQ entries");
    p.number("--cq-entries", opt.cq_entries, 0, 65536,
             "io_uring CQ entries; 0: the kernel's 2 x SQ");
    p.number("--buffer-size", opt.buffer_size, 1, 1 << 24,
             "bytes per read (per connection, or per ring buffer)")
        .type("BYTES");
    p.number("--provided-buffers", opt.provided_buffers, 0, 32768,
             "> 0: reads go to a shared ring of this many buffers (a power of 2)");
    p.number("--max-connections", opt.max_connections, 0, 1'000'000,
             "beyond this, new connections are closed at once");
    p.duration("--idle-timeout-ms", opt.idle_timeout, 24h,
               "a peer silent (or not reading) this long is closed; 0: never");
    p.duration("--drain-ms", opt.drain, 24h,
               "on SIGINT/SIGTERM: time the connections get to finish");
    p.duration("--stats-interval-ms", opt.stats_interval, 24h,
               "a stats line this often; 0: only on SIGUSR1");
    p.parse(argc, argv);
    if (opt.idle_timeout.count() == 0)
        opt.idle_timeout = std::chrono::hours(24 * 365); // "no timeout"
    return opt;
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse_args(argc, argv);

    try {
        // The signals arrive through a signalfd read in the ring. Blocked before any thread
        // starts (the offload pool), so no thread takes them the old way.
        corio::signal_set signals{SIGINT, SIGTERM, SIGUSR1};
        corio::io_context ctx({.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries});
        return corio::sync_wait(ctx, run_server(opt, &signals));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo: %s\n", e.what());
        return 1;
    }
}
