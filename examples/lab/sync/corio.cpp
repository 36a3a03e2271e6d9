// SPDX-License-Identifier: MIT
// lab_sync_corio: the synchronisation job (docs/synchronisation.md) on corio's share-nothing
// shards. `--shards N` loops run on N threads (pinned with `--cpus LIST`), each with its own
// SO_REUSEPORT listener (the kernel spreads the connections over them) and its own part of the
// keyspace (key_hash(key) % N). The requests of a read whose keys another shard owns are sent
// there, together, with `co_await on_shard(owner, ...)` and answered from there: every map is
// touched by one thread only, so there is no lock anywhere. Compare with sync/threads.cpp (one
// map, one mutex).
// `--shards 1` is the single-core baseline: one loop, one map, never a cross-shard call.
// Try: lab_sync_corio --port 0 --shards 2   (prints `listening on PORT`), then
//      printf 'SET a 1\nGET a\n' | nc -q1 127.0.0.1 PORT
#include <corio/corio.hpp>
#include <corio/runtime/shard.hpp>
#include "common/kv.hpp"
#include "common/lab.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <vector>

namespace net = corio::net;

namespace {

/// A shard's counters (touched by its own thread only; summed once the group has stopped).
struct shard_stats {
    lab::stats base;
    std::uint64_t cross_shard = 0; // requests answered by another shard
    std::uint64_t hops = 0;        // on_shard() calls that carried them (one per shard per read)
    bool on_uring = false;         // the shard's loop runs on io_uring (not the epoll backend)
};

/// The keyspace, one part per shard: g_maps[k] is touched only on shard k's thread.
std::vector<lab::kv_map>* g_maps = nullptr;

// LAB-HANDLER-BEGIN
/// The requests of one read that shard `owner` owns, run there in one hop: the payload of
/// on_shard(). It reads the caller's requests (their keys point into the caller's input) and
/// fills the caller's result slots; the caller leaves both alone until it resumes. A named type,
/// not a lambda (DESIGN.md: g++ 12 and temporaries of capturing lambdas in a co_await).
struct on_owner {
    std::span<const lab::kv_request> reqs;
    std::span<lab::kv_result> results;
    void operator()() const {
        lab::kv_map& map = (*g_maps)[corio::shard::current()->id()];
        for (std::size_t i = 0; i < reqs.size(); ++i)
            results[i] = map.apply(reqs[i]);
    }
};

/// One read's requests for one shard, and their results.
struct batch {
    std::vector<lab::kv_request> reqs;
    std::vector<lab::kv_result> results;
    std::size_t replied = 0; // results already appended to the reply
};

/// One connection, start to end: read request lines, answer them from this shard's map and,
/// for the keys other shards own, from theirs (one hop per shard per read, not per request);
/// the replies in request order, all those of one read in one send.
corio::task<void> serve(net::tcp_stream conn, shard_stats* stats) {
    const corio::shard& self = *corio::shard::current();
    lab::line_input in;
    std::string out;
    std::vector<batch> by_owner(self.count());
    std::vector<unsigned> owners; // the owner of each request of this read, in order
    for (;;) {
        corio::result<std::size_t> n =
            co_await conn.recv_some(std::as_writable_bytes(in.free_space()));
        if (!n || *n == 0)
            break;
        stats->base.bytes_in += *n;
        in.received(*n);
        owners.clear();
        for (batch& b : by_owner)
            b.reqs.clear();
        std::string_view line;
        while (in.next_line(line)) {
            lab::kv_request req = lab::parse_kv(line);
            unsigned owner =
                req.op == lab::kv_op::bad ? self.id() : lab::key_owner(req.key, self.count());
            by_owner[owner].reqs.push_back(req);
            owners.push_back(owner);
        }
        for (unsigned owner = 0; owner < by_owner.size(); ++owner) {
            batch& b = by_owner[owner];
            b.results.resize(b.reqs.size());
            b.replied = 0;
            on_owner work{b.reqs, b.results};
            if (b.reqs.empty() || owner == self.id()) {
                work(); // this shard's own keys: no hop, no lock
                continue;
            }
            auto call = corio::on_shard(owner, work);
            co_await call;
            ++stats->hops;
            stats->cross_shard += b.reqs.size();
        }
        out.clear();
        for (unsigned owner : owners) {
            batch& b = by_owner[owner];
            lab::append_kv_reply(out, b.reqs[b.replied], b.results[b.replied]);
            ++b.replied;
        }
        stats->base.requests += owners.size();
        bool too_long = in.overflowing();
        if (too_long)
            out += lab::k_too_long;
        in.compact();
        corio::result<std::size_t> sent = co_await conn.send_all(std::as_bytes(std::span(out)));
        if (!sent)
            break;
        stats->base.bytes_out += *sent;
        if (too_long)
            break;
    }
    corio::result<void> closed = co_await conn.close();
    (void)closed;
}
// LAB-HANDLER-END

/// Shard 0: SIGINT/SIGTERM (a signalfd read in the ring) stops the whole group.
corio::task<void> watch_signals(int signal_fd, corio::shard_group* group) {
    signalfd_siginfo info{};
    auto prep = [signal_fd, &info](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, signal_fd, &info, sizeof info, 0);
    };
    corio::result<corio::uring_completion> got = co_await corio::submit(prep);
    if (got)
        group->request_stop(); // every shard's main sees its stop token
}

/// A shard's main: accept on its own listener until the group stops, then end its connections.
corio::task<void> shard_main(corio::shard& s, net::tcp_listener* listener, int signal_fd,
                             std::size_t max_connections, shard_stats* stats) {
    corio::task_scope control;     // the signal watcher (shard 0)
    corio::task_scope connections; // one task per connection
    stats->on_uring = s.context().backend() == corio::backend_kind::io_uring;
    if (s.id() == 0)
        control.spawn(watch_signals(signal_fd, &s.group()));
    {
        net::tcp_accept_stream incoming = listener->accept_multishot();
        for (;;) {
            corio::result<net::tcp_stream> conn = co_await incoming.next();
            if (!conn)
                break; // the group's stop cancelled the accept
            if (connections.size() >= max_connections) // per shard
                continue; // destroying the stream closes it
            ++stats->base.connections;
            connections.spawn(serve(std::move(*conn), stats));
        }
    }
    connections.request_stop(); // cancels every connection's recv/send; each closes its socket
    co_await connections.join();
    control.request_stop();
    co_await control.join();
    corio::result<void> closed = co_await listener->close();
    (void)closed;
}

/// One SO_REUSEPORT listener per shard, all on one port (--port, or the ephemeral port the
/// first one got). Exits 1 when a bind fails.
std::vector<net::tcp_listener> listen_all(const lab::options& opt) {
    std::vector<net::tcp_listener> out;
    std::uint16_t port = opt.port;
    for (unsigned k = 0; k < opt.shards; ++k) {
        corio::result<net::socket_address> addr =
            net::socket_address::parse(opt.bind + ":" + std::to_string(port));
        if (!addr) {
            std::fprintf(stderr, "lab_sync_corio: --bind wants an IPv4 address, got '%s'\n",
                         opt.bind.c_str());
            std::exit(2);
        }
        net::listen_options how;
        how.backlog = 4096;
        how.reuse_port = true;
        corio::result<net::tcp_listener> listener = net::tcp_listener::bind(*addr, how);
        if (!listener) {
            std::fprintf(stderr, "lab_sync_corio: cannot listen on %s: %s\n",
                         addr->to_string().c_str(), listener.error().message().c_str());
            std::exit(1);
        }
        if (k == 0)
            port = listener->local_address().value().port();
        out.push_back(std::move(*listener));
    }
    std::printf("listening on %u\n", port);
    std::fflush(stdout);
    return out;
}

} // namespace

int main(int argc, char** argv) {
    lab::options opt = lab::parse_sync_args(argc, argv, "lab_sync_corio", true);
    int signal_fd = lab::stop_signal_fd(false); // blocks the signals first: shards inherit that
    std::vector<net::tcp_listener> listeners = listen_all(opt);
    std::vector<lab::kv_map> maps(opt.shards);
    g_maps = &maps;
    std::vector<shard_stats> stats(opt.shards);
    bool msg_ring = false; // the kernel passes MSG_RING wake-ups (used between io_uring loops)
    try {
        corio::shard_options shards;
        shards.count = opt.shards;
        shards.cpus = opt.cpus;
        shards.context.sq_entries = opt.sq_entries;
        shards.context.cq_entries = opt.cq_entries;
        corio::shard_group group(shards);
        group.run([&](corio::shard& s) {
            return shard_main(s, &listeners[s.id()], signal_fd, opt.max_connections,
                              &stats[s.id()]);
        });
        msg_ring = group.uses_msg_ring();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lab_sync_corio: %s\n", e.what());
        return 1;
    }
    ::close(signal_fd);
    lab::stats total;
    std::uint64_t cross = 0;
    std::uint64_t hops = 0;
    for (const shard_stats& s : stats) {
        total.connections += s.base.connections;
        total.requests += s.base.requests;
        total.bytes_in += s.base.bytes_in;
        total.bytes_out += s.base.bytes_out;
        cross += s.cross_shard;
        hops += s.hops;
        msg_ring = msg_ring && s.on_uring; // NOTE: uses_msg_ring() does not look at the backend
    }
    lab::print_stats(
        total, " cross_shard=" + std::to_string(cross) + " hops=" + std::to_string(hops) +
                   " shards=" + std::to_string(opt.shards) + " msg_ring=" + (msg_ring ? "1" : "0"));
    return 0;
}
