// SPDX-License-Identifier: MIT
// echo: a TCP echo server on corio. Each connection is one coroutine that reads like the blocking
// thread-per-connection version (recv, then send, until EOF) while one thread and one io_uring
// serve every connection. Its lean siblings for side-by-side comparison (threads, epoll, raw
// io_uring, corio, one CLI) are in examples/lab/echo/. Reads land in a ring of 512 provided
// buffers shared by every connection (multishot recv: an idle connection holds no buffer, about
// 1.3 KiB in all, docs/provided_buffers.md; a connection whose peer never reads the echo holds at
// most the ring's stream limit); --provided-buffers 0 gives each connection a buffer of its own
// (and a kernel before 5.19 gets that anyway). With --shards N, N loops (threads, --cpus pins them) each
// run this same server on their own SO_REUSEPORT listener of the port; shard 0 owns the signals
// (examples/common/shards.hpp). --shards 1 (the default) is one such loop.
// Try: build/debug/examples/echo --port 0   (prints `listening on PORT`), then
//      nc 127.0.0.1 PORT            and   kill -USR1 <pid>   for a stats line.
#include <corio/corio.hpp>
#include "examples/common/cli.hpp"
#include "examples/common/listen.hpp"
#include "examples/common/open_fds.hpp"
#include "examples/common/shards.hpp"
#include "examples/common/stop_signals.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
#include <system_error>
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
    unsigned provided_buffers = 512;     // >0: a shared ring of this many buffers (power of 2);
                                         // 0: a buffer per connection
    std::size_t max_connections = 10000; // beyond this, new connections are closed at once
    std::chrono::milliseconds idle_timeout = 60s; // a peer silent (or not reading) this long goes
    std::chrono::milliseconds drain = 2s;         // on SIGINT/SIGTERM: time given to finish
    std::chrono::milliseconds stats_interval = 0ms; // 0: stats only on SIGUSR1
    example::shard_flags shards;                    // --shards, --cpus
};

struct server_state {
    std::uint64_t bytes = 0;               // bytes echoed
    net::buffer_ring* ring = nullptr;      // the shared ring, with --provided-buffers
    const net::server* server = nullptr;   // connections, accepted, rejected, timed_out
};

/// One shard's counters at one moment, taken on that shard; a stats line sums them over the
/// shards (open_fds is the process's).
struct snapshot {
    net::server_stats srv;          // connections, accepted, refused, timed_out (summed)
    std::uint64_t bytes = 0;        // bytes echoed
    std::size_t live_tasks = 0;     // task frames alive
    std::size_t ops_in_flight = 0;  // operations due
    std::uint64_t cq_overflows = 0; // CQ overflows recovered
    std::size_t buffered = 0;       // bytes of receive buffers
    std::uint64_t stalls = 0;       // stalled turns
    long long longest_stall_ms = 0; // the longest of them (the maximum over the shards)

    snapshot& operator+=(const snapshot& o) noexcept {
        srv.connections += o.srv.connections;
        srv.accepted += o.srv.accepted;
        srv.refused += o.srv.refused;
        srv.timed_out += o.srv.timed_out;
        bytes += o.bytes;
        live_tasks += o.live_tasks;
        ops_in_flight += o.ops_in_flight;
        cq_overflows += o.cq_overflows;
        buffered += o.buffered;
        stalls += o.stalls;
        longest_stall_ms = std::max(longest_stall_ms, o.longest_stall_ms);
        return *this;
    }
};

/// One shard's part of the server: touched only on that shard's thread.
struct shard_state {
    server_state state; // what the handlers count
    snapshot last;      // taken when its server's run() returned (the final stats line)
    bool done = false;  // `last` is final: the server is gone
};

/// What every shard reads (each its own entries of `shards`, `listeners` and the link).
struct shared {
    const struct options* opt = nullptr;
    corio::signal_set* signals = nullptr; // read on shard 0 only
    example::shard_link* link = nullptr;  // drains, the final stats line
    std::vector<net::tcp_listener>* listeners = nullptr;
    std::vector<shard_state>* shards = nullptr;
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

/// Sends all of `reply`. First one send that never waits (MSG_DONTWAIT): on a socket with room
/// for the reply, the usual case, that is all, with no deadline to arm and cancel (a linked
/// timeout per send was a second SQE and CQE and a kernel timer per round trip). Only what it
/// left waits, in send_all_within() under the deadline.
corio::task<corio::result<void>> send_reply(net::tcp_stream* conn, std::span<const std::byte> reply,
                                            std::chrono::milliseconds limit) {
    corio::result<std::size_t> quick = co_await conn->send_some(reply, MSG_DONTWAIT);
    if (quick)
        reply = reply.subspan(*quick);
    else if (quick != std::errc::resource_unavailable_try_again)
        co_return quick.error();
    if (reply.empty())
        co_return corio::result<void>{};
    auto send = send_all_within(conn, reply, limit);
    corio::result<void> rest = co_await std::move(send);
    co_return rest;
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
        std::span<const std::byte> reply = std::span(buffer).first(*n);
        auto send = send_reply(&conn, reply, opt->idle_timeout);
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

/// The same protocol over a multishot recv into the shared ring. While the peer is silent the
/// connection holds no buffer, and its idle deadline is an entry in the loop's timer queue
/// (next(limit)), not a when_any of two more tasks.
corio::task<void> echo_with_ring(net::tcp_stream conn, net::server::connection* c,
                                 const options* opt, server_state* state) {
    net::recv_stream chunks = conn.recv_multishot(*state->ring);
    for (;;) {
        corio::result<net::buffer_lease> lease = co_await chunks.next(opt->idle_timeout);
        if (!lease || lease->empty()) {
            if (lease == std::errc::timed_out)
                c->count_timeout();
            break;
        }
        std::span<const std::byte> reply = lease->data();
        auto send = send_reply(&conn, reply, opt->idle_timeout);
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

/// Shard `k`'s counters now, on its own thread (its io_context is current).
snapshot take(const options* opt, const shard_state* sh) {
    if (sh->done)
        return sh->last;
    const server_state& state = sh->state;
    corio::io_context_stats s = corio::io_context::current().stats();
    snapshot snap;
    snap.srv = state.server->stats();
    snap.bytes = state.bytes;
    snap.live_tasks = s.live_tasks;
    snap.ops_in_flight = s.ops_in_flight;
    snap.cq_overflows = s.cq_overflows;
    snap.buffered = state.ring ? std::size_t{state.ring->count()} * opt->buffer_size
                               : snap.srv.connections * opt->buffer_size;
    snap.stalls = s.stalls;
    snap.longest_stall_ms = static_cast<long long>(s.longest_stall.count() / 1000);
    return snap;
}

/// On shard k: its counters, once its server has drained when `after_drain`.
corio::task<snapshot> snapshot_of(const shared* sh, unsigned k, bool after_drain) {
    if (after_drain)
        co_await example::wait_drained(&sh->link->at(k));
    co_return take(sh->opt, &(*sh->shards)[k]);
}

/// On shard 0: the stats line, summed over the shards (after every shard drained when `final`).
corio::task<void> dump_stats(const shared* sh, bool final) {
    auto counting = corio::offload(example::count_open_fds{});
    long fds = co_await counting;
    snapshot t;
    for (unsigned k = 0; k < sh->link->size(); ++k) {
        bool after_drain = final && k != 0; // shard 0 is the caller: its drain is done
        auto call =
            corio::on_shard(k, [sh, k, after_drain] { return snapshot_of(sh, k, after_drain); });
        snapshot one = co_await call;
        t += one;
    }
    std::printf("stats: connections=%zu accepted=%llu rejected=%llu timed_out=%llu "
                "bytes_echoed=%llu live_tasks=%zu ops_in_flight=%zu open_fds=%ld "
                "cq_overflows=%llu bytes_buffered=%zu stalls=%llu longest_stall_ms=%lld\n",
                t.srv.connections, static_cast<unsigned long long>(t.srv.accepted),
                static_cast<unsigned long long>(t.srv.refused),
                static_cast<unsigned long long>(t.srv.timed_out),
                static_cast<unsigned long long>(t.bytes), t.live_tasks, t.ops_in_flight, fds,
                static_cast<unsigned long long>(t.cq_overflows), t.buffered,
                static_cast<unsigned long long>(t.stalls), t.longest_stall_ms);
    std::fflush(stdout);
}

corio::task<void> tick_stats(const shared* sh) {
    for (;;) {
        corio::result<void> slept = co_await corio::sleep_for(sh->opt->stats_interval);
        if (!slept)
            co_return;
        co_await dump_stats(sh, false);
    }
}

/// After shard k's drain (on shard 0 the signals are still watched): the drain's outcome, and on
/// shard 0 the last stats line, once every shard drained.
corio::task<void> finish(const shared* sh, unsigned k) {
    const server_state& state = (*sh->shards)[k].state;
    if (state.server->stats().drain_timed_out)
        std::printf("drain: cancelled the connections still open after %lld ms\n",
                    static_cast<long long>(sh->opt->drain.count()));
    if (k == 0)
        co_await dump_stats(sh, true);
    else
        std::fflush(stdout);
}

// ----- the server -----

/// Shard k's server: its own listener (or shard 0's hand-offs), its own connections; shard 0
/// also owns the signals.
corio::task<void> run_shard(const shared* sh, unsigned k) {
    const options& opt = *sh->opt;
    shard_state& mine = (*sh->shards)[k];
    server_state& state = mine.state;
    std::unique_ptr<net::buffer_ring> ring;
    if (opt.provided_buffers > 0) {
        try {
            ring = std::make_unique<net::buffer_ring>(corio::io_context::current(),
                                                      opt.provided_buffers,
                                                      static_cast<std::uint32_t>(opt.buffer_size));
            state.ring = ring.get();
        } catch (const std::system_error& e) {
            // A kernel before 5.19 has no provided-buffer rings: serve all the same.
            std::fprintf(stderr, "echo: %s: a buffer per connection instead\n", e.what());
        }
    }

    // The skeleton (limit, signals, drain) is net::server's; echo is its handler.
    net::server_options so;
    so.name = "echo";
    so.max_connections = opt.max_connections; // beyond it: closed at once (bounded memory)
    so.drain_timeout = opt.drain;
    so.signals = k == 0 ? sh->signals : nullptr;
    so.exit_on_second_signal = true;
    so.on_drain = [sh, k, &state](int signo) {
        int reported = sh->link->on_drain(k, signo); // the other shards drain too
        if (reported == 0)
            return; // the listener broke (logged): no signal to report
        std::size_t open = state.server->stats().connections;
        if (sh->link->size() == 1)
            std::printf("signal %d: draining %zu connections\n", reported, open);
        else
            std::printf("signal %d: draining %zu connections on shard %u\n", reported, open, k);
        std::fflush(stdout);
    };
    if (k == 0)
        so.on_stats = [sh] {
            corio::dump_tasks(); // stderr: every live task of shard 0 and what it waits on
            return dump_stats(sh, false);
        };
    so.on_drained = [sh, k] { return finish(sh, k); };
    std::unique_ptr<net::server> server = sh->link->make_server(
        k, *sh->listeners,
        [&opt, &state](net::tcp_stream conn, net::server::connection* c) {
            return state.ring ? echo_with_ring(std::move(conn), c, &opt, &state)
                              : echo_with_own_buffer(std::move(conn), c, &opt, &state);
        },
        std::move(so));
    net::server& srv = *server;
    state.server = &srv;
    if (k == 0 && opt.stats_interval.count() > 0)
        srv.spawn(tick_stats(sh));
    sh->link->attach(k, &srv);
    net::server_stats done = co_await srv.run();
    (void)done;
    mine.last = take(&opt, &mine); // what the final stats line reads once the server is gone
    mine.done = true;
    state.server = nullptr;
    sh->link->detach(k);
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
             "> 0: reads go to a shared ring of this many buffers (a power of 2; default "
             "512); 0: a buffer per connection");
    p.number("--max-connections", opt.max_connections, 0, 1'000'000,
             "beyond this, new connections are closed at once");
    p.duration("--idle-timeout-ms", opt.idle_timeout, 24h,
               "a peer silent (or not reading) this long is closed; 0: never");
    p.duration("--drain-ms", opt.drain, 24h,
               "on SIGINT/SIGTERM: time the connections get to finish");
    p.duration("--stats-interval-ms", opt.stats_interval, 24h,
               "a stats line this often; 0: only on SIGUSR1");
    example::add_shard_flags(p, opt.shards);
    p.parse(argc, argv);
    if (std::string bad = example::check_cpus(opt.shards.cpus); !bad.empty())
        p.fail(bad);
    if ((opt.provided_buffers & (opt.provided_buffers - 1)) != 0)
        p.fail("--provided-buffers wants 0 or a power of 2, got " +
               std::to_string(opt.provided_buffers));
    if (opt.idle_timeout.count() == 0)
        opt.idle_timeout = std::chrono::hours(24 * 365); // "no timeout"
    return opt;
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse_args(argc, argv);

    try {
        // The signals arrive through a signalfd read in shard 0's ring. Blocked before any thread
        // starts (the shards, the offload pool): they inherit the mask, so none takes them the
        // old way.
        corio::signal_set signals{SIGINT, SIGTERM, SIGUSR1};
        corio::shard_options group_options;
        group_options.count = opt.shards.count;
        group_options.cpus = opt.shards.cpus;
        group_options.context = {.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries};
        corio::shard_group group(std::move(group_options));
        example::shard_link link(group, opt.shards.accept);
        int status = 0;
        std::vector<net::tcp_listener> listeners =
            example::bind_listeners("echo", opt.bind, opt.port,
                                    link.listener_count(), &status);
        if (listeners.empty())
            return status;
        example::announce(listeners[0]);
        std::vector<shard_state> shards(group.size());
        shared sh{&opt, &signals, &link, &listeners, &shards};
        group.run([&sh](corio::shard& s) { return run_shard(&sh, s.id()); });
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo: %s\n", e.what());
        return 1;
    }
}
