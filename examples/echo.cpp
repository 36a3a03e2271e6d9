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
#include "examples/common/stop_signals.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
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
    std::uint64_t accepted = 0;     // connections accepted
    std::uint64_t rejected = 0;     // closed at once: over --max-connections
    std::uint64_t timed_out = 0;    // closed by --idle-timeout-ms: silent, or not reading
    std::uint64_t bytes = 0;        // bytes echoed
    std::size_t active = 0;         // connections open now
    bool stopping = false;          // SIGINT/SIGTERM seen
    net::tcp_listener* listener = nullptr; // closed to stop accepting
    net::buffer_ring* ring = nullptr;      // the shared ring, with --provided-buffers
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
corio::task<void> echo_with_own_buffer(net::tcp_stream conn, const options* opt,
                                       server_state* state) {
    std::vector<std::byte> buffer(opt->buffer_size);
    for (;;) {
        auto recv = corio::with_timeout(conn.recv_some(buffer), opt->idle_timeout);
        corio::result<std::size_t> n = co_await recv;
        if (!n || *n == 0) {
            state->timed_out += n == std::errc::timed_out;
            break;
        }
        auto send = send_all_within(&conn, std::span(buffer).first(*n), opt->idle_timeout);
        corio::result<void> sent = co_await std::move(send);
        if (!sent) {
            state->timed_out += sent == std::errc::timed_out; // a peer that stopped reading
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
corio::task<void> echo_with_ring(net::tcp_stream conn, const options* opt, server_state* state) {
    net::recv_stream chunks = conn.recv_multishot(*state->ring);
    for (;;) {
        auto next = corio::timeout(next_chunk(&chunks), opt->idle_timeout);
        corio::result<net::buffer_lease> lease = co_await std::move(next);
        if (!lease || lease->empty()) {
            state->timed_out += lease == std::errc::timed_out;
            break;
        }
        auto send = send_all_within(&conn, lease->data(), opt->idle_timeout);
        corio::result<void> sent = co_await std::move(send);
        if (!sent) {
            state->timed_out += sent == std::errc::timed_out; // a peer that stopped reading
            break;
        }
        state->bytes += lease->size();
    }
    corio::result<void> closed = co_await conn.close(); // ends the stream's armed recv too
    (void)closed;
}

corio::task<void> serve(net::tcp_stream conn, const options* opt, server_state* state) {
    ++state->active;
    corio::task<void> session = state->ring ? echo_with_ring(std::move(conn), opt, state)
                                            : echo_with_own_buffer(std::move(conn), opt, state);
    co_await std::move(session);
    --state->active;
}

// ----- signals and statistics -----

/// Open fds, counted on the offload pool (listing a directory is blocking work).
struct count_open_fds {
    long operator()() const {
        DIR* dir = ::opendir("/proc/self/fd");
        if (!dir)
            return -1;
        long n = 0;
        while (const dirent* entry = ::readdir(dir))
            n += entry->d_name[0] != '.';
        ::closedir(dir);
        return n - 1; // the directory's own fd
    }
};

corio::task<void> dump_stats(const options* opt, const server_state* state) {
    auto counting = corio::offload(count_open_fds{});
    long fds = co_await counting;
    corio::io_context_stats s = corio::io_context::current().stats();
    std::size_t buffered = state->ring ? std::size_t{state->ring->count()} * opt->buffer_size
                                       : state->active * opt->buffer_size;
    std::printf("stats: connections=%zu accepted=%llu rejected=%llu timed_out=%llu "
                "bytes_echoed=%llu live_tasks=%zu ops_in_flight=%zu open_fds=%ld "
                "cq_overflows=%llu bytes_buffered=%zu stalls=%llu longest_stall_ms=%lld\n",
                state->active, static_cast<unsigned long long>(state->accepted),
                static_cast<unsigned long long>(state->rejected),
                static_cast<unsigned long long>(state->timed_out),
                static_cast<unsigned long long>(state->bytes), s.live_tasks, s.ops_in_flight,
                fds, static_cast<unsigned long long>(s.cq_overflows), buffered, static_cast<unsigned long long>(s.stalls), static_cast<long long>(s.longest_stall.count() / 1000));
    std::fflush(stdout);
}

/// SIGUSR1 dumps the stats; the first SIGINT/SIGTERM stops accepting (closing the listener ends
/// the accept loop), a second one exits at once (stop_signals::watcher). Runs until cancelled.
corio::task<void> watch_signals(corio::signal_set* signals, const options* opt,
                                server_state* state) {
    stop_signals::watcher watcher(*signals, "echo");
    for (;;) {
        auto next = watcher.next();
        stop_signals::event e = co_await std::move(next);
        if (e.what == stop_signals::request::done)
            co_return;
        if (e.what == stop_signals::request::stats) {
            corio::dump_tasks(); // stderr: every live task and what it waits on
            co_await dump_stats(opt, state);
            continue;
        }
        std::printf("signal %d: draining %zu connections\n", e.signo, state->active);
        std::fflush(stdout);
        state->stopping = true;
        corio::result<void> closed = co_await state->listener->close();
        (void)closed; // closing cannot fail in a way that matters here
    }
}

corio::task<void> tick_stats(const options* opt, const server_state* state) {
    for (;;) {
        corio::result<void> slept = co_await corio::sleep_for(opt->stats_interval);
        if (!slept)
            co_return;
        co_await dump_stats(opt, state);
    }
}

corio::task<void> join(corio::task_scope* scope) { co_await scope->join(); }

// ----- the server -----

corio::task<int> run_server(options opt, corio::signal_set* signals) {
    corio::result<net::socket_address> addr =
        net::socket_address::parse(opt.bind + ":" + std::to_string(opt.port));
    if (!addr) {
        std::fprintf(stderr, "echo: --bind %s: %s\n", opt.bind.c_str(),
                     addr.error().message().c_str());
        co_return 2;
    }
    corio::result<net::tcp_listener> listener = net::tcp_listener::bind(*addr);
    if (!listener) {
        std::fprintf(stderr, "echo: cannot listen on %s: %s\n", addr->to_string().c_str(),
                     listener.error().message().c_str());
        co_return 1;
    }
    std::printf("listening on %u\n", listener->local_address().value().port());
    std::fflush(stdout);

    server_state state;
    state.listener = &*listener;
    std::unique_ptr<net::buffer_ring> ring;
    if (opt.provided_buffers > 0) {
        ring = std::make_unique<net::buffer_ring>(corio::io_context::current(),
                                                  opt.provided_buffers,
                                                  static_cast<std::uint32_t>(opt.buffer_size));
        state.ring = ring.get();
    }

    corio::task_scope signal_scope; // the watcher, to the very end: a second signal exits at once
    corio::task_scope control;      // stats ticker
    corio::task_scope connections;  // one task per connection
    signal_scope.spawn(watch_signals(signals, &opt, &state));
    if (opt.stats_interval.count() > 0)
        control.spawn(tick_stats(&opt, &state));

    {
        net::tcp_accept_stream incoming = listener->accept_multishot();
        for (;;) {
            corio::result<net::tcp_stream> conn = co_await incoming.next();
            if (!conn) {
                if (!state.stopping)
                    std::fprintf(stderr, "echo: accept: %s\n", conn.error().message().c_str());
                break; // the listener was closed (draining) or broke
            }
            ++state.accepted;
            if (state.active >= opt.max_connections) {
                ++state.rejected; // bounded memory: refuse rather than grow
                continue;         // destroying the stream closes it
            }
            connections.spawn(serve(std::move(*conn), &opt, &state));
        }
    }

    // Drain: connections get --drain-ms to finish, then whatever is left is cancelled.
    auto drain = corio::timeout(join(&connections), opt.drain);
    corio::result<void> drained = co_await std::move(drain);
    if (!drained)
        std::printf("drain: cancelled the connections still open after %lld ms\n",
                    static_cast<long long>(opt.drain.count()));
    control.request_stop();
    co_await control.join();
    co_await dump_stats(&opt, &state);
    signal_scope.request_stop();
    co_await signal_scope.join();
    co_return 0;
}

// ----- command line -----

[[noreturn]] void usage(int status) {
    std::fprintf(status == 0 ? stdout : stderr,
                 "usage: echo [--port N] [--bind ADDR] [--sq-entries N] [--cq-entries N]\n"
                 "            [--buffer-size BYTES] [--provided-buffers N] [--max-connections N]\n"
                 "            [--idle-timeout-ms MS] [--drain-ms MS] [--stats-interval-ms MS]\n"
                 "  --port 0 picks an ephemeral port and prints `listening on PORT`.\n"
                 "%s",
                 stop_signals::k_usage);
    std::exit(status);
}

constexpr cli::program k_cli{"echo", usage};

options parse_args(int argc, char** argv) {
    using ms = std::chrono::milliseconds;
    options opt;
    for (int i = 1; i < argc; ++i) {
        std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h")
            usage(0);
        if (i + 1 >= argc)
            usage(2);
        const char* name = argv[i];
        const char* value = argv[++i];
        if (flag == "--port")
            opt.port = cli::unsigned_option<std::uint16_t>(k_cli, name, value, 0, 65535);
        else if (flag == "--bind")
            opt.bind = value;
        else if (flag == "--sq-entries")
            opt.sq_entries = cli::unsigned_option<unsigned>(k_cli, name, value, 0, 32768);
        else if (flag == "--cq-entries")
            opt.cq_entries = cli::unsigned_option<unsigned>(k_cli, name, value, 0, 65536);
        else if (flag == "--buffer-size")
            opt.buffer_size = cli::unsigned_option<std::size_t>(k_cli, name, value, 1, 1 << 24);
        else if (flag == "--provided-buffers")
            opt.provided_buffers = cli::unsigned_option<unsigned>(k_cli, name, value, 0, 32768);
        else if (flag == "--max-connections")
            opt.max_connections =
                cli::unsigned_option<std::size_t>(k_cli, name, value, 0, 1'000'000);
        else if (flag == "--idle-timeout-ms")
            opt.idle_timeout = cli::duration_option<ms>(k_cli, name, value, 24h);
        else if (flag == "--drain-ms")
            opt.drain = cli::duration_option<ms>(k_cli, name, value, 24h);
        else if (flag == "--stats-interval-ms")
            opt.stats_interval = cli::duration_option<ms>(k_cli, name, value, 24h);
        else
            usage(2);
    }
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
