// SPDX-License-Identifier: MIT
// corio-kv: a Redis-protocol (RESP2) key-value server on corio. Each connection is a reader
// coroutine (read what arrived, run every complete command in it, append the replies, send them in
// one send when the socket takes them: pipelining costs one send per batch) and a writer coroutine
// that takes over what a slow reader's socket did not take. Memory stays bounded per client and in
// total (see "one connection" below). Strings only; keys may expire
// (on access and in the background); an append-only file with Redis's fsync policies keeps the
// data across restarts. Compare it with redis-server itself: redis-benchmark and redis-cli work
// unmodified. With --shards N it runs N loops, one thread each, that share nothing: each owns
// the keys that hash to it and forwards the others' commands (see the "shards" section).
// Try: build/debug/examples/kv/corio-kv --port 0   (prints `listening on PORT`), then
//      redis-cli -p PORT set k v; redis-cli -p PORT get k; kill -USR1 <pid> for a stats line.
// NOTE: g++ 12 at -O1 (the ASan build) pairs promise_base::operator new with the ::operator delete
// that its operator delete inlines (frame_allocator) in the cross-shard calls' coroutines
// (shard.hpp, produce) and reports -Wmismatched-new-delete; both are the global functions, so the
// pairing is right. Silenced before the includes: the warning points into frame_allocator.hpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include "aof.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "reply.hpp"
#include "resp_parser.hpp"
#include "store.hpp"

#include <corio/corio.hpp>
#include <corio/runtime/shard.hpp>
#include "examples/common/cli.hpp"
#include "examples/common/shards.hpp"
#include "examples/common/listen.hpp"
#include "examples/common/stop_signals.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
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
    std::string bind = "127.0.0.1";     // address to listen on
    std::uint16_t port = 6379;          // 0: an ephemeral port, printed
    unsigned sq_entries = 1024;         // io_uring submission queue size
    unsigned cq_entries = 0;            // completion queue size (0: kernel default, 2 × SQ)
    std::string dir = ".";              // where the append-only file lives
    bool appendonly = false;            // keep an append-only file
    std::string appendfilename = "appendonly.aof";
    kv::fsync_policy appendfsync = kv::fsync_policy::everysec;
    std::uint64_t rewrite_percentage = 100;     // auto rewrite: growth since the last one, %
    std::uint64_t rewrite_min_size = 64u << 20; // auto rewrite: minimum log size
    std::size_t max_clients = 10000;            // beyond this, new clients get an error
    std::size_t output_limit = 256u << 20;      // a client whose pending replies exceed it is closed
    std::size_t output_budget = 512u << 20;     // all clients' pending replies: beyond it, clients
                                                // with replies pending stop reading (0: no bound)
    std::size_t query_limit = 1u << 30;         // unparsed input a client may have buffered
    std::size_t max_bulk = 512u << 20;          // one argument's bytes
    std::chrono::seconds timeout{0};            // idle clients are closed after this (0: never)
    std::chrono::milliseconds drain{2000};      // on SIGINT/SIGTERM: time given to finish
    unsigned provided_buffers = 0; // >0: multishot recv into a shared ring of this many 16 KiB
                                   // buffers; 0: a 16 KiB buffer per connection (the default:
                                   // docs/provided_buffers.md says why)
    bool aof_repair = false;       // --aof-repair: cut the log at its first bad record, exit
    unsigned shards = 1;           // loops (threads), each owning the keys that hash to it
    std::vector<int> cpus;         // --cpus: shard i runs on cpus[i % size]; empty: not pinned
};

constexpr std::size_t k_read_chunk = 16 * 1024; // bytes asked for per recv (Redis's IOBUF_LEN)
constexpr std::size_t k_flush_chunk = 64 * 1024; // replies pending that go out before more run

struct client;
struct shard_table;
struct flight;

/// Everything the connections of one shard share (the whole server with --shards 1).
struct server final : kv::server_hooks {
    server(const options& o, unsigned id, shard_table* table)
        : opt(o), shard_id(id), shards(table), aof(aof_options(o, id), keyspace) {
        outbox.resize(o.shards);
    }

    /// Shard `id`'s log: DIR/NAME with one shard (as before shards existed), DIR/NAME.<id> with
    /// more.
    static kv::aof_options aof_options(const options& o, unsigned id) {
        std::string path = o.dir + "/" + o.appendfilename;
        if (o.shards > 1)
            path += "." + std::to_string(id);
        return {path, o.appendfsync, o.rewrite_percentage, o.rewrite_min_size};
    }

    const options& opt;
    unsigned shard_id = 0;        // which shard this is
    shard_table* shards;          // all of them (null with --shards 1)
    kv::store keyspace;
    kv::aof_log aof;
    kv::engine engine{keyspace, this};
    std::uint16_t port = 0;
    std::int64_t started_ms = kv::unix_time_ms();
    net::server* front = nullptr;     // accepts and drains; counts clients, accepted, rejected
    std::uint64_t protocol_errors = 0; // closed for malformed input
    std::uint64_t output_limit_closes = 0; // closed for exceeding the output buffer limit
    std::uint64_t query_limit_closes = 0;  // closed for exceeding the query buffer limit
    std::uint64_t timeouts = 0;       // closed for idling
    std::uint64_t send_timeouts = 0;  // closed: replies waited, the peer read nothing for --timeout
    std::uint64_t bytes_in = 0;       // bytes received
    std::uint64_t bytes_out = 0;      // bytes sent
    std::uint64_t routed_commands = 0; // commands sent to the shard that owns their key
    std::uint64_t routed_fan_outs = 0; // commands run on several shards and merged
    std::uint64_t flights = 0;         // messages that carried routed commands
    std::vector<std::shared_ptr<flight>> outbox; // per shard: the message being filled, or null
    std::size_t output_bytes = 0;     // memory of the replies not sent yet (output_queue::held)
    std::size_t input_bytes = 0;      // memory of the clients' input buffers (input::bytes)
    std::size_t paused_readers = 0;   // clients waiting for output_room now
    std::uint64_t output_pauses = 0;  // waits of a client for --max-output-memory
    corio::event output_room;         // pulsed when paused clients may go on (see wake_paused)
    net::buffer_ring* ring = nullptr; // the shared ring, with --provided-buffers

    void info_section(std::string_view section, std::string& out) override;
    bool config_value(std::string_view name, std::string& value) override;
    std::span<const std::string_view> config_names() override;
    std::string start_rewrite() override {
        if (!opt.appendonly)
            return "Background append only file rewriting needs --appendonly yes here";
        return aof.start_rewrite();
    }
};

/// One connection: what its reader and writer tasks share.
struct client {
    server* srv;
    net::tcp_stream* conn;     // the socket (in serve's frame)
    net::server::connection* ctx; // its place in net::server (idle, draining)
    kv::output_queue out;      // replies produced and not yet sent (counted in output_bytes)
    std::array<iovec, kv::output_queue::k_max_iov> iov{}; // what the send in flight reads (one
                                                          // send at a time: reader or writer)
    corio::event writer_wake;  // set when the writer has work, or must end
    bool writer_busy = false;  // the writer owns the sending (replies the socket did not take)
    bool reader_done = false;  // no more replies come: the writer sends the rest and ends
    bool broken = false;       // nothing more goes out (limit crossed, send failed, cancelled)
    bool paused = false;       // the reader waits for output room

    client(server* s, net::tcp_stream* c, net::server::connection* x)
        : srv(s), conn(c), ctx(x), out(&s->output_bytes) {}
    client(const client&) = delete;
    client& operator=(const client&) = delete;
};

void append_line(std::string& out, std::string_view key, std::uint64_t value) {
    out.append(key).append(":").append(std::to_string(value)).append("\r\n");
}

void server::info_section(std::string_view section, std::string& out) {
    if (section == "server") {
        out.append("redis_version:7.0.0\r\ncorio_kv_version:0.1.0\r\nredis_mode:standalone\r\n");
        out.append("multiplexing_api:io_uring\r\n");
        append_line(out, "process_id", static_cast<std::uint64_t>(::getpid()));
        append_line(out, "tcp_port", port);
        append_line(out, "uptime_in_seconds",
                    static_cast<std::uint64_t>((kv::unix_time_ms() - started_ms) / 1000));
    } else if (section == "clients") {
        append_line(out, "connected_clients", front->stats().connections);
        append_line(out, "maxclients", opt.max_clients);
    } else if (section == "stats") {
        corio::io_context_stats s = corio::io_context::current().stats();
        append_line(out, "total_connections_received", front->stats().accepted);
        append_line(out, "rejected_connections", front->stats().refused);
        append_line(out, "total_net_input_bytes", bytes_in);
        append_line(out, "total_net_output_bytes", bytes_out);
        append_line(out, "closed_protocol_error", protocol_errors);
        append_line(out, "closed_output_buffer_limit", output_limit_closes);
        append_line(out, "closed_query_buffer_limit", query_limit_closes);
        append_line(out, "output_buffered_bytes", output_bytes);
        append_line(out, "input_buffered_bytes", input_bytes);
        append_line(out, "output_budget_pauses", output_pauses);
        append_line(out, "closed_timeout", timeouts);
        append_line(out, "closed_send_timeout", send_timeouts);
        if (shards) { // only with shards: the one-shard INFO stays as it was
            append_line(out, "corio_kv_shards", 1); // summed over the shards: their count
            append_line(out, "corio_kv_routed_commands", routed_commands);
            append_line(out, "corio_kv_routed_fan_outs", routed_fan_outs);
            append_line(out, "corio_kv_flights", flights);
        }
        append_line(out, "corio_loop_turns", s.loop_turns);
        append_line(out, "corio_submitted", s.submitted);
        append_line(out, "corio_completed", s.completed);
        append_line(out, "corio_kernel_enters", s.kernel_enters);
        append_line(out, "corio_cq_overflows", s.cq_overflows);
        append_line(out, "corio_sq_full_flushes", s.sq_full_flushes);
        append_line(out, "corio_enter_retries", s.enter_retries);
        append_line(out, "corio_ops_in_flight", s.ops_in_flight);
        append_line(out, "corio_live_tasks", s.live_tasks);
    } else if (section == "persistence") {
        kv::aof_stats a = aof.stats();
        out.append("loading:0\r\n");
        append_line(out, "aof_enabled", opt.appendonly ? 1 : 0);
        append_line(out, "aof_rewrite_in_progress", a.rewriting ? 1 : 0);
        append_line(out, "aof_rewrites", a.rewrites);
        out.append("aof_last_write_status:ok\r\n");
        if (opt.appendonly) {
            out.append("aof_fsync:").append(kv::to_string(opt.appendfsync)).append("\r\n");
            append_line(out, "aof_current_size", a.current_size);
            append_line(out, "aof_base_size", a.base_size);
            append_line(out, "aof_pending_bytes", a.pending);
            append_line(out, "aof_write_batches", a.writes);
            append_line(out, "aof_fsyncs", a.fsyncs);
        }
    }
}

constexpr std::array<std::string_view, 16> k_config_names = {
    "appendfilename", "appendfsync", "appendonly", "auto-aof-rewrite-min-size",
    "auto-aof-rewrite-percentage", "bind", "client-output-buffer-limit",
    "client-query-buffer-limit", "databases", "dir", "max-output-memory", "maxclients", "port",
    "proto-max-bulk-len", "save", "timeout"};

std::span<const std::string_view> server::config_names() { return k_config_names; }

bool server::config_value(std::string_view name, std::string& value) {
    if (name == "appendfilename")
        value = opt.appendfilename;
    else if (name == "appendfsync")
        value = kv::to_string(opt.appendfsync);
    else if (name == "appendonly")
        value = opt.appendonly ? "yes" : "no";
    else if (name == "auto-aof-rewrite-min-size")
        value = std::to_string(opt.rewrite_min_size);
    else if (name == "auto-aof-rewrite-percentage")
        value = std::to_string(opt.rewrite_percentage);
    else if (name == "bind")
        value = opt.bind;
    else if (name == "client-output-buffer-limit")
        value = "normal " + std::to_string(opt.output_limit) + " 0 0";
    else if (name == "client-query-buffer-limit")
        value = std::to_string(opt.query_limit);
    else if (name == "databases")
        value = "1";
    else if (name == "dir")
        value = opt.dir;
    else if (name == "max-output-memory")
        value = std::to_string(opt.output_budget);
    else if (name == "maxclients")
        value = std::to_string(opt.max_clients);
    else if (name == "port")
        value = std::to_string(port);
    else if (name == "proto-max-bulk-len")
        value = std::to_string(opt.max_bulk);
    else if (name == "save")
        value = "";
    else if (name == "timeout")
        value = std::to_string(opt.timeout.count());
    else
        return false;
    return true;
}

/// The numbers of the stats line, for one shard or summed over all of them.
struct shard_stats {
    std::size_t clients = 0;
    std::uint64_t accepted = 0, rejected = 0;
    std::size_t keys = 0;
    std::uint64_t commands = 0, protocol_errors = 0, output_limit_closes = 0,
                  query_limit_closes = 0;
    std::size_t output_bytes = 0, input_bytes = 0;
    std::uint64_t output_pauses = 0, timeouts = 0, send_timeouts = 0;
    std::size_t live_tasks = 0, ops_in_flight = 0;
    std::uint64_t loop_turns = 0, kernel_enters = 0, cq_overflows = 0, aof_size = 0, stalls = 0;
    long long longest_stall_ms = 0; // the longest of any shard

    shard_stats& operator+=(const shard_stats& o) {
        clients += o.clients;
        accepted += o.accepted;
        rejected += o.rejected;
        keys += o.keys;
        commands += o.commands;
        protocol_errors += o.protocol_errors;
        output_limit_closes += o.output_limit_closes;
        query_limit_closes += o.query_limit_closes;
        output_bytes += o.output_bytes;
        input_bytes += o.input_bytes;
        output_pauses += o.output_pauses;
        timeouts += o.timeouts;
        send_timeouts += o.send_timeouts;
        live_tasks += o.live_tasks;
        ops_in_flight += o.ops_in_flight;
        loop_turns += o.loop_turns;
        kernel_enters += o.kernel_enters;
        cq_overflows += o.cq_overflows;
        aof_size += o.aof_size;
        stalls += o.stalls;
        longest_stall_ms = std::max(longest_stall_ms, o.longest_stall_ms);
        return *this;
    }
};

// ----- shards -----
//
// With --shards N > 1 every shard is a loop thread with its own listener on the shared port
// (SO_REUSEPORT), its own keyspace, engine and append only file; a key belongs to shard
// hash(key) % N. A connection runs a command on its own shard when the key is its own, and
// otherwise sends it to the owner (co_await on_shard): the commands that all the connections
// woken in one loop turn have for one owner go in one message (a flight), which the owner runs in
// order and answers with their replies; each connection then writes its replies in request order.
// Ordering: one connection's commands on one key all go to the same owner, in order; commands on
// keys of different shards commute. Commands over several keys or the whole keyspace go to
// every owner concerned and their replies are merged. No lock: a shard's data is touched only
// by its own thread.

/// A meeting point on shard 0: every shard arrives once; the last one lets them all go on.
struct gate {
    unsigned arrived = 0; // shards here so far
    bool failed = false;  // one of them arrived not ok
    corio::event open;    // set by the last one
};

/// What the shards share: a table, written before the shards run and by each shard in its own
/// slot; everything else in it is touched on shard 0 only.
struct shard_table {
    unsigned count = 1;
    corio::shard_group* group = nullptr;
    std::vector<server*> servers; // slot k: shard k's server, set and cleared on shard k
    std::vector<std::pair<std::size_t, std::size_t>> loaded_counts; // slot k: shard k's log's
                                  // records and keys, set on shard k before the `loaded` gate
    gate loaded;                  // every shard has replayed its log (or failed to)
    gate opened;                  // every shard has opened its log for appending (or failed to)
    gate drained;                 // every shard's connections are done: no more forwarding
    gate finished;                // every shard's log is closed; final_sum is complete
    shard_stats final_sum;        // the last stats line, summed
};

unsigned owner_of(std::string_view key, unsigned count) {
    return static_cast<unsigned>(std::hash<std::string_view>{}(key) % count);
}

/// On shard 0.
corio::task<bool> pass_gate(gate* g, unsigned count, bool ok) {
    g->failed = g->failed || !ok;
    if (++g->arrived == count) {
        g->open.set();
    } else {
        auto waiting = g->open.wait();
        corio::result<void> woke = co_await waiting;
        (void)woke;
    }
    co_return !g->failed;
}

/// Arrives at `g` (on shard 0) and waits for every shard: true when all arrived ok.
corio::task<bool> meet(shard_table* t, gate* g, bool ok) {
    auto arrive = [t, g, ok] { return pass_gate(g, t->count, ok); };
    auto call = corio::on_shard(0, std::move(arrive));
    bool all = co_await call;
    co_return all;
}

/// On shard 0: adds a shard's last numbers, then waits with the others.
corio::task<bool> pass_final(shard_table* t, shard_stats mine) {
    t->final_sum += mine;
    auto passing = pass_gate(&t->finished, t->count, true);
    bool all = co_await std::move(passing);
    co_return all;
}

/// Commands for one owner, as the client sent them (RESP): one buffer per batch, not one
/// allocation per command and argument.
struct owner_batch {
    std::string requests; // complete commands, back to back
    std::size_t count = 0;  // how many

    void add(std::string_view raw) {
        requests.append(raw);
        ++count;
    }
    template <class Range>
    void add_command(const Range& args) {
        kv::encode_command(requests, args);
        ++count;
    }
};

/// The replies to an owner_batch, in its order, back to back.
struct batch_reply {
    std::string bytes;
    std::vector<std::size_t> ends; // reply i is bytes[ends[i-1] .. ends[i])
    bool durable = true; // false: the fsync an `always` reply waits for was cancelled

    [[nodiscard]] std::size_t count() const noexcept { return ends.size(); }
    [[nodiscard]] std::string_view reply(std::size_t i) const noexcept {
        std::size_t begin = i == 0 ? 0 : ends[i - 1];
        return std::string_view(bytes).substr(begin, ends[i] - begin);
    }
};

/// On shard k: runs the commands on its keyspace and logs them; under `always` the replies
/// come back once their records are on the disk.
corio::task<batch_reply> run_on_owner(shard_table* t, unsigned k, owner_batch batch) {
    batch_reply out;
    server* srv = t->servers[k];
    kv::reply_writer w(out.bytes);
    kv::parser_limits limits;
    limits.max_bulk_length = std::numeric_limits<std::size_t>::max(); // checked by the sender
    kv::resp_parser parser(limits);
    std::string_view rest = batch.requests;
    for (std::size_t i = 0; i < batch.count; ++i) {
        kv::parse_status st = parser.parse(rest);
        rest.remove_prefix(parser.consumed());
        if (!srv)
            w.error("ERR the server is shutting down");
        else if (st != kv::parse_status::command)
            w.error("ERR internal: a forwarded command did not parse"); // cannot happen
        else
            (void)srv->engine.execute(parser.args(), w);
        out.ends.push_back(out.bytes.size());
    }
    if (srv && srv->opt.appendonly) {
        std::uint64_t seq = srv->aof.commit();
        if (srv->aof.policy() == kv::fsync_policy::always) {
            while (!srv->aof.is_durable(seq)) {
                auto waiting = srv->aof.durable_event().wait();
                corio::result<void> woke = co_await waiting;
                if (!woke)
                    break;
            }
            out.durable = srv->aof.is_durable(seq);
        }
    }
    co_return out;
}

/// One message to one owner, shared by every connection of this shard that has commands for it
/// in one loop turn: many connections' batches cost one cross-shard call (and one wake-up).
struct flight {
    owner_batch batch;   // filled until it is sent
    batch_reply reply;   // once `finished`
    bool finished = false;
    bool failed = false; // the call threw: the connections that wait end
    corio::event done;   // set when finished
};

corio::task<batch_reply> call_owner(shard_table* t, unsigned k, owner_batch batch);

/// Sends the flight once the connections woken in this loop turn have added their commands.
corio::task<void> send_flight(server* srv, unsigned k, std::shared_ptr<flight> f) {
    corio::result<void> turned = co_await corio::nop(); // to the end of this turn
    (void)turned;
    if (srv->outbox[k] == f)
        srv->outbox[k] = nullptr; // the next commands open another one
    ++srv->flights;
    try {
        auto calling = call_owner(srv->shards, k, std::move(f->batch));
        f->reply = co_await std::move(calling);
    } catch (...) {
        f->failed = true;
    }
    f->finished = true;
    f->done.set();
}

/// Runs `batch` on shard k (which may be this one) and returns its replies.
corio::task<batch_reply> call_owner(shard_table* t, unsigned k, owner_batch batch) {
    auto work = [t, k, batch = std::move(batch)]() mutable {
        return run_on_owner(t, k, std::move(batch));
    };
    auto call = corio::on_shard(k, std::move(work));
    batch_reply r = co_await call;
    co_return r;
}

std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    return r;
}

/// Where a command runs.
enum class route_kind : unsigned char {
    here,    // on this shard: no key, or one key of its own, or an error this shard replies
    owner,   // on the shard that owns its one key
    fan_out, // on several shards, replies merged (several keys, or the whole keyspace)
    quit,    // QUIT: the connection's own business
};
struct route {
    route_kind kind = route_kind::here;
    unsigned owner = 0;
};

route route_of(std::span<const std::string_view> args, unsigned count, unsigned self) {
    if (args.empty())
        return {};
    std::string name = lower(args[0].substr(0, 16));
    static constexpr std::string_view single[] = {
        "append", "decr", "decrby", "expire", "expireat", "get", "incr", "incrby", "persist",
        "pexpire", "pexpireat", "pttl", "set", "strlen", "ttl", "type"};
    if (std::find(std::begin(single), std::end(single), name) != std::end(single)) {
        if (args.size() < 2)
            return {}; // the arity error
        unsigned k = owner_of(args[1], count);
        return {k == self ? route_kind::here : route_kind::owner, k};
    }
    if (name == "del" || name == "unlink" || name == "exists" || name == "mget")
        return {args.size() < 2 ? route_kind::here : route_kind::fan_out, 0};
    if (name == "mset")
        return {args.size() < 3 || args.size() % 2 == 0 ? route_kind::here : route_kind::fan_out,
                0};
    if (name == "dbsize" || name == "keys" || name == "flushall" || name == "info" ||
        name == "bgrewriteaof")
        return {route_kind::fan_out, 0};
    if (name == "quit")
        return {route_kind::quit, 0};
    return {};
}

/// The integer of `:n\r\n`.
std::int64_t integer_of(const std::string& reply) {
    std::int64_t v = 0;
    (void)kv::parse_int64(std::string_view(reply).substr(1, reply.size() - 3), v);
    return v;
}

/// The text of a bulk reply `$n\r\ntext\r\n`.
std::string_view bulk_text(const std::string& reply) {
    std::size_t eol = reply.find("\r\n");
    if (reply.empty() || reply[0] != '$' || eol == std::string::npos)
        return {};
    return std::string_view(reply).substr(eol + 2, reply.size() - eol - 4);
}

/// INFO of every shard as one: counters summed, the rest (ports, versions, ...) from shard 0.
std::string merge_info(const std::vector<std::string>& replies) {
    std::vector<std::vector<std::pair<std::string_view, std::string_view>>> fields;
    std::int64_t keys = 0, expires = 0;
    for (const std::string& r : replies) {
        auto& f = fields.emplace_back();
        std::string_view text = bulk_text(r);
        while (!text.empty()) {
            std::size_t eol = text.find("\r\n");
            std::string_view line = text.substr(0, eol);
            text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 2);
            if (line.starts_with("db0:keys=")) {
                std::size_t comma = line.find(',');
                std::size_t ecomma = line.find(',', comma + 1);
                std::int64_t v = 0;
                (void)kv::parse_int64(line.substr(9, comma - 9), v);
                keys += v;
                (void)kv::parse_int64(line.substr(comma + 9, ecomma - comma - 9), v);
                expires += v;
                continue;
            }
            std::size_t colon = line.find(':');
            if (colon != std::string_view::npos)
                f.emplace_back(line.substr(0, colon), line.substr(colon + 1));
        }
    }
    static constexpr std::string_view kept[] = {"process_id", "tcp_port", "uptime_in_seconds",
                                                "maxclients", "aof_enabled", "loading"};
    std::string out;
    std::string_view text = bulk_text(replies[0]);
    while (!text.empty()) {
        std::size_t eol = text.find("\r\n");
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 2);
        if (line.starts_with("db0:keys="))
            continue;
        std::size_t colon = line.find(':');
        std::int64_t sum = 0;
        bool summed = colon != std::string_view::npos &&
                      std::find(std::begin(kept), std::end(kept), line.substr(0, colon)) ==
                          std::end(kept) &&
                      kv::parse_int64(line.substr(colon + 1), sum);
        if (summed) {
            sum = 0;
            std::string_view name = line.substr(0, colon);
            for (const auto& f : fields)
                for (const auto& [n, v] : f) {
                    std::int64_t x = 0;
                    if (n == name && kv::parse_int64(v, x))
                        sum += x;
                }
            out.append(name).append(":").append(std::to_string(sum)).append("\r\n");
        } else {
            out.append(line).append("\r\n");
        }
        if (line == "# Keyspace" && keys > 0)
            out.append("db0:keys=" + std::to_string(keys) + ",expires=" +
                       std::to_string(expires) + ",avg_ttl=0\r\n");
    }
    std::string reply;
    kv::reply_writer w(reply);
    w.bulk(out);
    return reply;
}

/// Runs a command over several keys or the whole keyspace on every shard concerned, merges the
/// replies (args owned: it outlives the input buffer's changes).
corio::task<std::string> fan_out(shard_table* t, std::vector<std::string> args) {
    unsigned n = t->count;
    std::string name = lower(args[0]);
    std::vector<owner_batch> parts(n);
    // where the reply to key i is: (owner, index in its batch) for MGET
    std::vector<std::pair<unsigned, std::size_t>> where;
    if (name == "mget") {
        for (std::size_t i = 1; i < args.size(); ++i) {
            unsigned k = owner_of(args[i], n);
            std::array<std::string_view, 2> get{"GET", args[i]};
            parts[k].add_command(get);
            where.emplace_back(k, parts[k].count - 1);
        }
    } else if (name == "del" || name == "unlink" || name == "exists" || name == "mset") {
        std::size_t step = name == "mset" ? 2 : 1;
        std::vector<std::vector<std::string_view>> per_owner(n);
        for (std::size_t i = 1; i + step - 1 < args.size(); i += step) {
            unsigned k = owner_of(args[i], n);
            if (per_owner[k].empty())
                per_owner[k].push_back(args[0]);
            for (std::size_t j = 0; j < step; ++j)
                per_owner[k].push_back(args[i + j]);
        }
        for (unsigned k = 0; k < n; ++k)
            if (!per_owner[k].empty())
                parts[k].add_command(per_owner[k]);
    } else {
        for (unsigned k = 0; k < n; ++k)
            parts[k].add_command(args);
    }
    std::vector<batch_reply> got(n);
    for (unsigned k = 0; k < n; ++k) {
        if (parts[k].count == 0)
            continue;
        auto calling = call_owner(t, k, std::move(parts[k]));
        got[k] = co_await std::move(calling);
    }
    std::string out;
    kv::reply_writer w(out);
    if (name == "mget") {
        w.array(where.size());
        for (auto [k, i] : where)
            out.append(got[k].reply(i));
        co_return out;
    }
    std::vector<std::string> replies; // one per shard that ran something
    for (unsigned k = 0; k < n; ++k)
        for (std::size_t i = 0; i < got[k].count(); ++i) {
            std::string r(got[k].reply(i));
            if (!r.empty() && r[0] == '-')
                co_return r; // the same error everywhere (a syntax error): no shard changed
            replies.push_back(std::move(r));
        }
    if (name == "del" || name == "unlink" || name == "exists" || name == "dbsize") {
        std::int64_t sum = 0;
        for (const std::string& r : replies)
            sum += integer_of(r);
        w.integer(sum);
    } else if (name == "keys") {
        std::size_t total = 0;
        for (const std::string& r : replies)
            total += static_cast<std::size_t>(integer_of(r.substr(0, r.find("\r\n") + 2)));
        w.array(total);
        for (const std::string& r : replies)
            out.append(r, r.find("\r\n") + 2);
    } else if (name == "info") {
        out = merge_info(replies);
    } else {
        out = replies[0]; // MSET, FLUSHALL, BGREWRITEAOF: each shard said the same
    }
    co_return out;
}

// ----- one connection -----
//
// Two tasks per connection. The reader receives, runs the commands and appends their replies to
// the client's output queue; at each release point (a batch's end, every k_flush_chunk bytes of
// replies, before pausing) it commits the AOF records, and when no send is in flight it offers
// the replies to the socket at once (MSG_DONTWAIT: the common case costs one send, as before).
// What the socket does not take goes to the writer, which sends it while the reader goes on:
// replies stream out as they are produced, and a peer that does not read only delays its writer.
// Memory: each client's pending replies are bounded by --client-output-buffer-limit (crossing it
// closes the client), and all clients' together by --max-output-memory: beyond it a client with
// replies pending stops running commands (and reading) until they drain.

/// Why the reader stopped running commands.
enum class batch_end : unsigned char {
    need_input,     // the input holds no complete command
    flush,          // enough replies piled up: let them go out first
    pause,          // over the output budget with replies of our own pending
    quit,           // QUIT ran
    protocol_error, // malformed input: the error reply is written, the connection ends
    output_limit,   // a reply did not fit the client output buffer limit
    route,          // the next command runs on other shards (route_commands)
    abort,          // end at once (a forwarded `always` write could not be made durable)
};

/// A connection's unparsed input. With a buffer per connection (the default) it is `bytes`,
/// 16 KiB from the start. With the shared ring (--provided-buffers N) the bytes are parsed where
/// the kernel put them (`chunk`); only an incomplete command's tail is copied into `bytes`, which
/// is allocated then and freed once it empties: an idle client holds no input memory. Whatever the
/// parser's arguments view stays put until settle(), which the reader calls only when no argument
/// is in use any more.
struct input {
    std::vector<char> bytes; // own bytes: the whole input per connection, the ring's tails
    std::size_t begin = 0;   // unconsumed own bytes start here
    std::size_t end = 0;     // and end here
    net::buffer_lease chunk; // ring: the chunk parsed in place (only while `bytes` holds nothing)
    std::size_t chunk_begin = 0; // its unconsumed bytes start here
    std::size_t* held;       // the server's total of input memory (server::input_bytes)
    std::size_t counted = 0; // bytes.capacity() as added to *held

    /// `ring`: the input of a ring-mode connection (no buffer until a tail needs one).
    input(std::size_t* total, bool ring) : held(total) {
        if (!ring)
            bytes.resize(k_read_chunk);
        account();
    }
    ~input() { *held -= counted; }
    input(const input&) = delete;
    input& operator=(const input&) = delete;

    [[nodiscard]] std::string_view unparsed() const noexcept {
        if (!chunk.empty()) {
            std::span<const std::byte> d = chunk.data();
            return {reinterpret_cast<const char*>(d.data()) + chunk_begin, d.size() - chunk_begin};
        }
        return {bytes.data() + begin, end - begin};
    }
    /// Unconsumed bytes, wherever they are.
    [[nodiscard]] std::size_t pending() const noexcept { return unparsed().size(); }
    /// The parser covered `n` more bytes. Nothing moves or is freed: its arguments view them.
    void consume(std::size_t n) noexcept {
        if (!chunk.empty())
            chunk_begin += n;
        else
            begin += n;
    }

    /// Ring mode: takes a received chunk. Parsed in place when nothing is pending; behind a
    /// pending tail it is copied (the parser needs the command's bytes contiguous).
    void take(net::buffer_lease got) {
        if (begin == end) {
            begin = end = 0;
            chunk = std::move(got);
            chunk_begin = 0;
            return;
        }
        // In ring mode the vector's size is its content: drop what was consumed, append (the
        // capacity grows geometrically for a large command arriving in many chunks).
        std::span<const std::byte> d = got.data();
        bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(begin));
        const char* from = reinterpret_cast<const char*>(d.data());
        bytes.insert(bytes.end(), from, from + d.size());
        begin = 0;
        end = bytes.size();
        account();
    }

    /// Ring mode, with no parsed argument in use: returns the chunk to the ring, copying its
    /// unconsumed tail (an incomplete command) into own bytes, and frees own bytes that emptied.
    void settle() {
        if (!chunk.empty()) {
            std::string_view rest = unparsed();
            if (!rest.empty()) {
                bytes.assign(rest.begin(), rest.end());
                begin = 0;
                end = rest.size();
            }
            chunk.reset();
            chunk_begin = 0;
        } else if (begin == end && bytes.capacity() > 0) {
            std::vector<char>().swap(bytes); // the command is done: an idle client holds nothing
            begin = end = 0;
        }
        account();
    }

    /// Buffer per connection: where the next read goes. Drops what was consumed, and grows (up
    /// to `cap` bytes) only for a command larger than the buffer.
    std::span<std::byte> room(std::size_t cap) {
        if (begin == end) {
            begin = end = 0;
            if (bytes.size() > 4 * k_read_chunk) {
                bytes.resize(k_read_chunk); // after a big command: an idle client keeps 16 KiB
                bytes.shrink_to_fit();
            }
        } else if (bytes.size() - end < k_read_chunk / 4) {
            if (begin > 0) {
                std::memmove(bytes.data(), bytes.data() + begin, end - begin);
                end -= begin;
                begin = 0;
            }
            if (bytes.size() - end < k_read_chunk / 4 && bytes.size() < cap)
                bytes.resize(std::min(bytes.size() * 2, cap));
        }
        account();
        return std::as_writable_bytes(std::span(bytes)).subspan(end);
    }

private:
    void account() noexcept {
        *held += bytes.capacity() - counted;
        counted = bytes.capacity();
    }
};

bool over_budget(const server* srv) {
    return srv->opt.output_budget > 0 && srv->output_bytes > srv->opt.output_budget;
}

/// Wakes the readers paused for output room once they may go on: when the total is back within
/// the budget, or when `c` (paused) has nothing pending any more.
void wake_paused(server* srv, const client* c) {
    if (srv->paused_readers == 0)
        return;
    if (!over_budget(srv) || (c->paused && (c->out.pending() == 0 || c->broken))) {
        srv->output_room.set(); // every paused reader re-checks its own condition
        srv->output_room.reset();
    }
}

/// `n` bytes of the client's replies went out.
void output_sent(client* c, std::size_t n) {
    c->out.consume(n);
    c->srv->bytes_out += n;
    wake_paused(c->srv, c);
}

/// Drops the client's pending replies (it is closing).
void drop_output(client* c) {
    c->out.clear();
    wake_paused(c->srv, c);
}

/// One line on stderr naming a client closed for a limit, as Redis logs it.
void log_limit_close(const client* c, const char* what, std::size_t bytes, std::size_t limit,
                     const char* flag) {
    corio::result<net::socket_address> peer = c->conn->peer_address();
    std::string name = peer ? peer->to_string() : "(unknown peer)";
    std::fprintf(stderr,
                 "corio-kv: closing client %s: %s of %zu bytes exceeds the limit of %zu (%s)\n",
                 name.c_str(), what, bytes, limit, flag);
    std::fflush(stderr);
}

/// Runs the complete commands at the front of `in`, appending their replies to the client's
/// output, until the input runs out or the replies must go out first. No awaits: a plain function.
batch_end run_commands(client* c, input* in, kv::resp_parser* parser, kv::reply_writer* writer) {
    server* srv = c->srv;
    const options& opt = srv->opt;
    bool hold = opt.appendonly && srv->aof.policy() == kv::fsync_policy::always;
    for (;;) {
        std::size_t before = c->out.pending();
        if (before > 0 && over_budget(srv))
            return batch_end::pause;
        if (before >= k_flush_chunk && !c->writer_busy)
            return batch_end::flush;
        kv::parse_status st = parser->parse(in->unparsed());
        if (st == kv::parse_status::need_more)
            return batch_end::need_input;
        if (opt.output_limit > 0)
            writer->set_room(opt.output_limit - before);
        if (hold)
            c->out.hold(); // no reply before its AOF record is on disk (see the release point)
        if (st == kv::parse_status::error) {
            ++srv->protocol_errors;
            std::string text = "ERR ";
            text.append(parser->error_text());
            writer->error(text);
            c->out.appended();
            return writer->overflowed() ? batch_end::output_limit : batch_end::protocol_error;
        }
        if (srv->shards && st == kv::parse_status::command) {
            route where = route_of(parser->args(), srv->shards->count, srv->shard_id);
            if (where.kind == route_kind::owner || where.kind == route_kind::fan_out)
                return batch_end::route; // not consumed: route_commands parses it again
        }
        in->consume(parser->consumed());
        if (st == kv::parse_status::empty)
            continue;
        kv::exec_result r = srv->engine.execute(parser->args(), *writer);
        c->out.appended();
        if (writer->overflowed())
            return batch_end::output_limit;
        if (r == kv::exec_result::quit)
            return batch_end::quit;
    }
}

/// The most commands one routed batch takes from the input.
constexpr std::size_t k_route_batch = 256;

/// With shards: runs the complete commands at the front of `in` where their keys live, and
/// appends their replies in request order. The commands of one owner go to it in one message;
/// commands of this shard's own keys run here at once (a client sees no difference: commands on
/// different keys of different shards commute). A command over several keys or the whole
/// keyspace runs alone; QUIT, an incomplete command and malformed input end the batch and go
/// back to run_commands.
corio::task<batch_end> route_commands(client* c, input* in, kv::resp_parser* parser,
                                      kv::reply_writer* writer) {
    server* srv = c->srv;
    shard_table* t = srv->shards;
    const unsigned n = t->count;
    struct slot {
        unsigned owner;    // n: made here (in `here`)
        std::size_t index; // the reply's place in its batch
    };
    std::vector<slot> slots;
    // per owner: the flight our commands went into, and where they start in it
    std::vector<std::pair<std::shared_ptr<flight>, std::size_t>> joined(n);
    batch_reply here; // the replies made on this shard
    kv::reply_writer local(here.bytes);
    while (slots.size() < k_route_batch) {
        kv::parse_status st = parser->parse(in->unparsed());
        if (st != kv::parse_status::command)
            break; // need_more, empty, error: run_commands' business
        route where = route_of(parser->args(), n, srv->shard_id);
        if (where.kind == route_kind::quit)
            break;
        if (where.kind == route_kind::fan_out && !slots.empty())
            break; // runs alone, in the next batch
        const std::vector<std::string_view>& args = parser->args();
        std::string_view raw = in->unparsed().substr(0, parser->consumed());
        in->consume(parser->consumed()); // args and raw stay valid: nothing moves before settle()
        if (where.kind == route_kind::fan_out) {
            ++srv->routed_fan_outs;
            std::vector<std::string> owned(args.begin(), args.end());
            auto merging = fan_out(t, std::move(owned));
            std::string merged = co_await std::move(merging);
            here.bytes.append(merged);
            here.ends.push_back(here.bytes.size());
            slots.push_back({n, here.count() - 1});
            break;
        }
        if (where.kind == route_kind::here) {
            (void)srv->engine.execute(args, local); // not QUIT (above)
            here.ends.push_back(here.bytes.size());
            slots.push_back({n, here.count() - 1});
            continue;
        }
        ++srv->routed_commands;
        unsigned k = where.owner;
        if (!joined[k].first) {
            std::shared_ptr<flight>& open = srv->outbox[k];
            if (!open) {
                open = std::make_shared<flight>();
                srv->front->spawn(send_flight(srv, k, open));
            }
            joined[k] = {open, open->batch.count};
        }
        flight& f = *joined[k].first;
        f.batch.add(raw);
        slots.push_back({k, f.batch.count - 1 - joined[k].second});
    }
    for (unsigned k = 0; k < n; ++k) {
        flight* f = joined[k].first.get();
        while (f && !f->finished) {
            auto waiting = f->done.wait();
            corio::result<void> woke = co_await waiting;
            if (!woke)
                co_return batch_end::abort; // cancelled: the connection ends
        }
        if (f && (f->failed || !f->reply.durable))
            co_return batch_end::abort; // no unsynced `always` reply goes out
    }
    const options& opt = srv->opt;
    bool hold = opt.appendonly && srv->aof.policy() == kv::fsync_policy::always;
    for (slot& s : slots) {
        std::size_t before = c->out.pending();
        if (opt.output_limit > 0)
            writer->set_room(before < opt.output_limit ? opt.output_limit - before : 0);
        if (hold)
            c->out.hold(); // the records of the replies made here wait for this shard's fsync
        writer->raw(s.owner == n ? here.reply(s.index)
                                 : joined[s.owner].first->reply.reply(joined[s.owner].second +
                                                                      s.index));
        c->out.appended();
        if (writer->overflowed())
            co_return batch_end::output_limit;
    }
    co_return batch_end::flush;
}

/// Receives, runs commands, hands their replies out (see the section comment).
corio::task<void> read_commands(client* c) {
    server* srv = c->srv;
    const options& opt = srv->opt;
    net::tcp_stream& conn = *c->conn;
    kv::parser_limits limits;
    limits.max_bulk_length = opt.max_bulk;
    kv::resp_parser parser(limits);
    input in(&srv->input_bytes, srv->ring != nullptr);
    kv::reply_writer writer(c->out.filling());
    std::optional<net::recv_stream> chunks;
    if (srv->ring)
        chunks.emplace(conn.recv_multishot(*srv->ring));

    bool abort = false; // end at once: drop the replies still pending
    while (!c->broken) {
        batch_end why = run_commands(c, &in, &parser, &writer);
        if (why == batch_end::route) {
            auto routing = route_commands(c, &in, &parser, &writer);
            why = co_await std::move(routing);
        }
        if (why == batch_end::abort) {
            abort = true;
            break;
        }
        if (why == batch_end::output_limit) {
            ++srv->output_limit_closes; // Redis's client-output-buffer-limit: drop the client
            log_limit_close(c, "output buffer", c->out.pending() + writer.refused(),
                            opt.output_limit, "client-output-buffer-limit");
            abort = true;
            break;
        }
        if (why == batch_end::need_input && in.pending() > opt.query_limit) {
            ++srv->query_limit_closes; // Redis's client-query-buffer-limit
            log_limit_close(c, "query buffer", in.pending(), opt.query_limit,
                            "client-query-buffer-limit");
            abort = true;
            break;
        }
        // No parsed argument is in use now. Before any wait but the inline send of a flush the
        // chunk goes back to the ring (its tail copied): a paused, fsync-waiting or idle client
        // holds no ring buffer, and an idle one no input bytes either.
        if (chunks && (why != batch_end::flush ||
                       (opt.appendonly && srv->aof.policy() == kv::fsync_policy::always)))
            in.settle();

        // Release point: the replies produced so far may go out once their records are logged.
        if (opt.appendonly) {
            std::uint64_t seq = srv->aof.commit();
            if (srv->aof.policy() == kv::fsync_policy::always) {
                while (!srv->aof.is_durable(seq)) {
                    auto waiting = srv->aof.durable_event().wait();
                    corio::result<void> woke = co_await waiting;
                    if (!woke)
                        break; // cancelled (the drain ran out): no unsynced reply goes out
                }
                if (!srv->aof.is_durable(seq)) {
                    abort = true;
                    break;
                }
            }
            c->out.release();
        }
        if (c->broken)
            break;
        if (!c->writer_busy && c->out.has_sendable()) {
            // Inline and non-blocking: a socket with room takes it all in this one send.
            std::span<const iovec> data = c->out.gather(c->iov);
            auto sending = conn.send_some(data, MSG_DONTWAIT);
            corio::result<std::size_t> sent = co_await sending;
            if (sent)
                output_sent(c, *sent);
            if (c->broken)
                break;
            if (c->out.has_sendable()) { // a full socket (or an error the writer will see)
                c->writer_busy = true;
                c->writer_wake.set();
            }
        }
        if (why == batch_end::quit || why == batch_end::protocol_error)
            break;
        if (why == batch_end::flush)
            continue;
        if (why == batch_end::pause) {
            if (c->out.pending() == 0 || !over_budget(srv))
                continue; // the send made room
            ++srv->output_pauses;
            ++srv->paused_readers;
            c->paused = true;
            auto waiting = srv->output_room.wait();
            corio::result<void> woke = co_await waiting;
            c->paused = false;
            --srv->paused_readers;
            if (!woke) {
                abort = true; // cancelled
                break;
            }
            continue;
        }
        if (c->ctx->is_draining())
            break;

        c->ctx->set_idle(in.pending() == 0); // a drain shuts an idle client's read side
        corio::result<std::size_t> n = std::errc::timed_out;
        if (chunks) {
            // Multishot: the recv stays armed; the chunk is parsed where it landed.
            corio::result<net::buffer_lease> lease = std::errc::timed_out;
            if (opt.timeout.count() > 0) {
                // The idle deadline lives in the stream's read: no extra frame, no SQE.
                auto next = chunks->next(opt.timeout);
                lease = co_await next;
            } else {
                auto next = chunks->next();
                lease = co_await next;
            }
            if (lease) {
                n = lease->size(); // 0: EOF
                if (*n > 0)
                    in.take(std::move(*lease));
            } else {
                n = lease.error();
            }
        } else if (opt.timeout.count() > 0) {
            auto room = in.room(opt.query_limit + k_read_chunk);
            auto receiving = corio::with_timeout(conn.recv_some(room), opt.timeout);
            n = co_await receiving;
        } else {
            auto room = in.room(opt.query_limit + k_read_chunk);
            auto receiving = conn.recv_some(room);
            n = co_await receiving;
        }
        c->ctx->set_idle(false);
        if (!n && (n == std::errc::interrupted || n == std::errc::resource_unavailable_try_again ||
                   (n == std::errc::timed_out && c->writer_busy)))
            continue; // EINTR, EAGAIN; or a peer still being sent to is not idle
        if (!n || *n == 0) {
            srv->timeouts += n == std::errc::timed_out;
            break;
        }
        srv->bytes_in += *n;
        if (!chunks)
            in.end += *n;
    }
    if (chunks)
        in.settle(); // the chunk back to the ring now: the writer may go on for a while
    c->reader_done = true;
    if (abort && !c->broken) {
        c->broken = true; // nothing more goes out
        if (c->writer_busy) {
            // The writer's send, stuck on a peer that does not read.
            auto cancelling = conn.cancel();
            corio::result<std::size_t> cancelled = co_await cancelling;
            (void)cancelled;
        }
    }
    c->writer_wake.set(); // the writer sends what is left (unless broken) and ends
}

/// Sends what the reader handed over, for as long as the peer takes its time.
corio::task<void> write_replies(client* c) {
    const options& opt = c->srv->opt;
    net::tcp_stream& conn = *c->conn;
    while (!c->broken) {
        if (!c->writer_busy) {
            if (c->reader_done)
                break;
            auto waiting = c->writer_wake.wait();
            corio::result<void> woke = co_await waiting;
            c->writer_wake.reset();
            if (!woke)
                break; // cancelled: the connection is being torn down
            continue;
        }
        std::span<const iovec> data = c->out.gather(c->iov);
        if (data.empty()) {
            c->writer_busy = false; // all sent, or the rest waits for its AOF record
            continue;
        }
        corio::result<std::size_t> sent = std::errc::timed_out;
        if (opt.timeout.count() > 0) {
            auto sending = corio::with_timeout(conn.send_some(data), opt.timeout);
            sent = co_await sending;
        } else {
            auto sending = conn.send_some(data);
            sent = co_await sending;
        }
        if (sent && *sent > 0) {
            output_sent(c, *sent);
            continue;
        }
        if (sent == std::errc::interrupted || sent == std::errc::resource_unavailable_try_again)
            continue; // nothing went out: again
        c->srv->send_timeouts += sent == std::errc::timed_out;
        // A reset peer, one that read nothing for --timeout, or a send that moved nothing (it
        // cannot make progress): nothing more goes out.
        c->broken = true;
        if (!c->reader_done) {
            auto cancelling = conn.cancel(); // the reader's recv
            corio::result<std::size_t> cancelled = co_await cancelling;
            (void)cancelled;
        }
    }
    c->writer_busy = false;
    if (c->broken)
        drop_output(c); // no send of ours is in flight now; a paused reader wakes and sees it
}

corio::task<void> serve(net::tcp_stream conn, net::server::connection* ctx, server* srv) {
    client self(srv, &conn, ctx);
    corio::task<void> reading = read_commands(&self);
    corio::task<void> writing = write_replies(&self);
    auto both = corio::when_all(std::move(reading), std::move(writing));
    co_await both;
    drop_output(&self);
    corio::result<void> closed = co_await conn.close();
    (void)closed;
}

/// Tells a client over --max-clients why, in full (a short send must not cut the line), then
/// closes it.
corio::task<void> refuse(net::tcp_stream conn) {
    auto send = conn.send_all(std::string_view("-ERR max number of clients reached\r\n"));
    corio::result<std::size_t> sent = co_await send;
    (void)sent;
    corio::result<void> closed = co_await conn.close();
    (void)closed;
}

// ----- background work -----

corio::task<void> expire_keys(server* srv) {
    for (;;) {
        corio::result<void> slept = co_await corio::sleep_for(100ms);
        if (!slept)
            co_return;
        (void)srv->keyspace.active_expire_cycle(25ms);
        if (srv->opt.appendonly)
            srv->aof.commit(); // DEL records of what expired
    }
}

/// On the shard's own thread.
shard_stats snapshot(server* srv) {
    corio::io_context_stats s = corio::io_context::current().stats();
    net::server_stats front = srv->front ? srv->front->stats() : net::server_stats{};
    shard_stats r;
    r.clients = front.connections;
    r.accepted = front.accepted;
    r.rejected = front.refused;
    r.keys = srv->keyspace.size();
    r.commands = srv->engine.commands_processed();
    r.protocol_errors = srv->protocol_errors;
    r.output_limit_closes = srv->output_limit_closes;
    r.query_limit_closes = srv->query_limit_closes;
    r.output_bytes = srv->output_bytes;
    r.input_bytes = srv->input_bytes;
    r.output_pauses = srv->output_pauses;
    r.timeouts = srv->timeouts;
    r.send_timeouts = srv->send_timeouts;
    r.live_tasks = s.live_tasks;
    r.ops_in_flight = s.ops_in_flight;
    r.loop_turns = s.loop_turns;
    r.kernel_enters = s.kernel_enters;
    r.cq_overflows = s.cq_overflows;
    r.aof_size = srv->aof.stats().current_size;
    r.stalls = s.stalls;
    r.longest_stall_ms = static_cast<long long>(s.longest_stall.count() / 1000);
    return r;
}

void print_stats(const shard_stats& r) {
    std::printf("stats: clients=%zu accepted=%llu rejected=%llu keys=%zu commands=%llu "
                "protocol_errors=%llu output_limit_closes=%llu query_limit_closes=%llu "
                "output_bytes=%zu input_bytes=%zu output_pauses=%llu idle_timeouts=%llu "
                "send_timeouts=%llu live_tasks=%zu ops_in_flight=%zu "
                "loop_turns=%llu kernel_enters=%llu cq_overflows=%llu aof_size=%llu stalls=%llu "
                "longest_stall_ms=%lld\n",
                r.clients, static_cast<unsigned long long>(r.accepted),
                static_cast<unsigned long long>(r.rejected), r.keys,
                static_cast<unsigned long long>(r.commands),
                static_cast<unsigned long long>(r.protocol_errors),
                static_cast<unsigned long long>(r.output_limit_closes),
                static_cast<unsigned long long>(r.query_limit_closes), r.output_bytes,
                r.input_bytes,
                static_cast<unsigned long long>(r.output_pauses),
                static_cast<unsigned long long>(r.timeouts),
                static_cast<unsigned long long>(r.send_timeouts), r.live_tasks, r.ops_in_flight,
                static_cast<unsigned long long>(r.loop_turns),
                static_cast<unsigned long long>(r.kernel_enters),
                static_cast<unsigned long long>(r.cq_overflows),
                static_cast<unsigned long long>(r.aof_size),
                static_cast<unsigned long long>(r.stalls), r.longest_stall_ms);
    std::fflush(stdout);
}

/// On shard k: its numbers (zeros once it has ended).
shard_stats snapshot_of(shard_table* t, unsigned k) {
    server* srv = t->servers[k];
    return srv ? snapshot(srv) : shard_stats{};
}

/// The numbers of every shard, summed (this shard's alone without shards).
corio::task<shard_stats> total_stats(server* srv) {
    if (!srv->shards)
        co_return snapshot(srv);
    shard_stats sum;
    shard_table* t = srv->shards;
    for (unsigned k = 0; k < t->count; ++k) {
        auto reading = [t, k] { return snapshot_of(t, k); };
        auto call = corio::on_shard(k, std::move(reading));
        shard_stats one = co_await call;
        sum += one;
    }
    co_return sum;
}

corio::task<void> print_stats_task(server* srv) {
    corio::dump_tasks(); // stderr: every live task and what it waits on (SIGUSR1)
    auto summing = total_stats(srv);
    shard_stats sum = co_await std::move(summing);
    print_stats(sum);
}

/// After the drain (the signals still watched): the drain's outcome, the append only file
/// written and fsynced, the last stats line. With shards, each shard closes its log once every
/// shard's connections are done (none forwards a write any more), and shard 0 prints the sum.
corio::task<void> finish(server* srv) {
    if (srv->front->stats().drain_timed_out)
        std::printf("drain: cancelled the clients still busy after %lld ms\n",
                    static_cast<long long>(srv->opt.drain.count()));
    shard_table* t = srv->shards;
    if (t) {
        auto meeting = meet(t, &t->drained, true);
        bool all = co_await std::move(meeting);
        (void)all;
    }
    if (srv->opt.appendonly)
        co_await srv->aof.close(); // writes what is pending and fsyncs
    if (!t) {
        print_stats(snapshot(srv));
        co_return;
    }
    shard_stats mine = snapshot(srv);
    auto reporting = [t, mine] { return pass_final(t, mine); };
    auto call = corio::on_shard(0, std::move(reporting));
    bool all = co_await call;
    (void)all;
    if (srv->shard_id == 0)
        print_stats(t->final_sum);
}

/// Replays the log (and, with shards, checks that every key is this shard's): 0, or the exit
/// status. `*length`: where appends go.
corio::task<int> load_log(server* srv, std::uint64_t* length) {
    auto loading = srv->aof.load(srv->engine);
    kv::load_report loaded = co_await std::move(loading);
    std::string path = server::aof_options(srv->opt, srv->shard_id).path;
    if (!loaded.message.empty())
        std::fprintf(stderr, "corio-kv: %s\n", loaded.message.c_str());
    if (!loaded.ok)
        co_return 1;
    if (srv->shards) {
        for (const kv::store::node& node : srv->keyspace.nodes()) {
            unsigned k = owner_of(node.first, srv->shards->count);
            if (k == srv->shard_id)
                continue;
            std::fprintf(stderr,
                         "corio-kv: %s holds a key of shard %u, not of shard %u: it was written "
                         "with another --shards than %u; start with that one\n",
                         path.c_str(), k, srv->shard_id, srv->shards->count);
            co_return 1;
        }
    }
    if (srv->shards) // shard 0 prints the sum, in one line
        srv->shards->loaded_counts[srv->shard_id] = {loaded.records, srv->keyspace.size()};
    else
        std::printf("loaded %zu records (%zu keys) from %s\n", loaded.records,
                    srv->keyspace.size(), path.c_str());
    *length = loaded.length;
    co_return 0;
}

/// Opens the log for appending at `length`: 0, or the exit status.
corio::task<int> open_log(server* srv, std::uint64_t length) {
    srv->engine.set_propagation(&srv->aof.buffer());
    auto opening = srv->aof.open(length);
    corio::result<void> result = co_await std::move(opening);
    if (!result) {
        std::fprintf(stderr, "corio-kv: opening the append only file: %s\n",
                     result.error().message().c_str());
        co_return 1;
    }
    co_return 0;
}

/// One shard's server (the whole server with --shards 1: `table` null, and it binds its own
/// listener; with shards `bound` is this shard's, bound on the shared port).
corio::task<int> run_server(options opt, corio::signal_set* signals, shard_table* table,
                            net::tcp_listener* bound) {
    unsigned id = table ? corio::shard::current()->id() : 0;
    server srv(opt, id, table);
    // Bound first (so a taken port fails before any work), accepting only after the replay.
    int status = 0;
    std::optional<net::tcp_listener> listener;
    if (bound)
        listener.emplace(std::move(*bound));
    else
        listener = example::bind_listener("corio-kv", opt.bind, opt.port, &status);
    if (!listener)
        co_return status;
    std::uint64_t log_length = 0;
    if (opt.appendonly) {
        // Replay (refused before the tail: exit, file untouched), then cut a torn tail, append.
        auto loading = load_log(&srv, &log_length);
        status = co_await std::move(loading);
        if (status == 0 && !table) {
            auto opening = open_log(&srv, log_length);
            status = co_await std::move(opening);
        }
        if (status != 0 && !table)
            co_return status;
    }

    std::unique_ptr<net::buffer_ring> ring;
    if (opt.provided_buffers > 0) {
        try {
            ring = std::make_unique<net::buffer_ring>(corio::io_context::current(),
                                                      opt.provided_buffers,
                                                      static_cast<std::uint32_t>(k_read_chunk));
            srv.ring = ring.get();
        } catch (const std::system_error& e) { // a kernel before 5.19: serve without the ring
            std::fprintf(stderr,
                         "corio-kv: no provided-buffer ring (%s): a buffer per connection\n",
                         e.what());
        }
    }
    srv.port = listener->local_address().value().port();

    // The skeleton (limit, signals, drain) is net::server's; corio-kv is its handler.
    net::server_options so;
    so.name = "corio-kv";
    so.max_connections = opt.max_clients;
    so.on_limit = net::limit_policy::refuse; // beyond --max-clients: an error line, then close
    so.refuse = [](net::tcp_stream conn) { return refuse(std::move(conn)); };
    so.drain_timeout = opt.drain;
    so.signals = id == 0 ? signals : nullptr; // shard 0 watches them and drains the others
    so.exit_on_second_signal = true;
    so.on_drain = [&srv](int signo) { // idle clients are then woken (their recv ends)
        shard_table* t = srv.shards;
        if (t && srv.shard_id == 0) {
            for (unsigned k = 1; k < t->count; ++k)
                t->group->post(k, [t, k] {
                    server* s = t->servers[k];
                    if (s && s->front)
                        s->front->drain();
                });
        }
        if (signo == 0)
            return; // the listener broke (logged), or shard 0 asked: no signal to report
        std::printf("signal %d: shutting down, %zu clients\n", signo,
                    srv.front->stats().connections);
        std::fflush(stdout);
    };
    so.on_stats = [&srv] { return print_stats_task(&srv); };
    so.on_drained = [&srv] { return finish(&srv); };
    net::server front(
        *listener,
        [&srv](net::tcp_stream conn, net::server::connection* c) {
            return serve(std::move(conn), c, &srv);
        },
        std::move(so));
    srv.front = &front;
    if (table) {
        // No shard serves before every shard has its keys: a forwarded command finds them.
        // Every shard's log is replayed and checked before any is opened (which may cut it or
        // create it): a refused start changes no file.
        table->servers[id] = &srv;
        auto meeting = meet(table, &table->loaded, status == 0);
        bool all = co_await std::move(meeting);
        bool opened = false;
        if (all && opt.appendonly) {
            auto opening = open_log(&srv, log_length);
            status = co_await std::move(opening);
            opened = status == 0;
            auto meeting_again = meet(table, &table->opened, opened);
            all = co_await std::move(meeting_again);
        }
        if (!all) {
            if (opened)
                co_await srv.aof.close();
            table->servers[id] = nullptr;
            co_return status != 0 ? status : 1;
        }
    }
    if (table && id == 0 && opt.appendonly) {
        std::size_t records = 0, keys = 0;
        for (auto [r, k] : table->loaded_counts) {
            records += r;
            keys += k;
        }
        std::printf("loaded %zu records (%zu keys) from %s.0 to .%u\n", records, keys,
                    std::string(opt.dir + "/" + opt.appendfilename).c_str(), table->count - 1);
    }
    if (id == 0)
        example::announce(*listener);
    front.spawn(expire_keys(&srv));
    net::server_stats done = co_await front.run();
    (void)done;
    srv.front = nullptr;
    if (table)
        table->servers[id] = nullptr;
    co_return 0;
}

/// A shard's main: its server, its exit status in `*status`.
corio::task<void> shard_main(options opt, corio::signal_set* signals, shard_table* table,
                             net::tcp_listener* bound, int* status) {
    auto running = run_server(std::move(opt), signals, table, bound);
    *status = co_await std::move(running);
}

/// Binds shard listener after shard listener on one port (SO_REUSEPORT): the kernel spreads the
/// connections over them. Shard 0's comes first, so port 0 gets an ephemeral port the others
/// then share.
std::vector<net::tcp_listener> bind_shared(const options& opt, unsigned n, int* status) {
    std::vector<net::tcp_listener> listeners;
    std::string where = opt.bind.find(':') != std::string::npos ? "[" + opt.bind + "]" : opt.bind;
    std::uint16_t port = opt.port;
    for (unsigned k = 0; k < n; ++k) {
        corio::result<net::socket_address> addr =
            net::socket_address::parse(where + ":" + std::to_string(port));
        if (!addr) {
            std::fprintf(stderr, "corio-kv: --bind %s: %s\n", opt.bind.c_str(),
                         addr.error().message().c_str());
            *status = 2;
            return {};
        }
        net::listen_options lo;
        lo.reuse_port = true;
        corio::result<net::tcp_listener> l = net::tcp_listener::bind(*addr, lo);
        if (!l) {
            std::fprintf(stderr, "corio-kv: cannot listen on %s: %s\n",
                         addr->to_string().c_str(), l.error().message().c_str());
            *status = 1;
            return {};
        }
        port = l->local_address().value().port();
        listeners.push_back(std::move(*l));
    }
    return listeners;
}

/// Refuses logs written with another shard count than `n` (the keys would sit on the wrong
/// shards); logs of the same count are checked key by key at load.
bool check_log_layout(const options& opt, unsigned n) {
    std::string base = opt.dir + "/" + opt.appendfilename;
    std::error_code ec;
    auto exists = [&ec](const std::string& p) { return std::filesystem::exists(p, ec); };
    std::string found;
    if (n > 1 && exists(base))
        found = base + " (one shard)";
    else if (n == 1 && exists(base + ".0"))
        found = base + ".0 (several shards)";
    else if (n > 1 && exists(base + "." + std::to_string(n)))
        found = base + "." + std::to_string(n) + " (more than " + std::to_string(n) + " shards)";
    if (found.empty())
        return true;
    std::fprintf(stderr,
                 "corio-kv: found %s: the data was written with another --shards than %u; start "
                 "with that one (the key of each log is bound to its shard)\n",
                 found.c_str(), n);
    return false;
}

/// --shards N > 1: binds the shared port, runs the shards, returns the exit status.
int run_sharded(const options& opt, corio::signal_set* signals) {
    unsigned n = opt.shards;
    int status = 0;
    std::vector<net::tcp_listener> listeners = bind_shared(opt, n, &status);
    if (listeners.empty())
        return status;
    shard_table table;
    table.count = n;
    table.servers.assign(n, nullptr);
    table.loaded_counts.assign(n, {0, 0});
    corio::shard_options so;
    so.count = n;
    so.cpus = opt.cpus;
    so.context.sq_entries = opt.sq_entries;
    so.context.cq_entries = opt.cq_entries;
    corio::shard_group group(std::move(so));
    table.group = &group;
    std::vector<int> statuses(n, 0);
    group.run([&opt, signals, &table, &listeners, &statuses](corio::shard& s) {
        return shard_main(opt, signals, &table, &listeners[s.id()], &statuses[s.id()]);
    });
    return *std::max_element(statuses.begin(), statuses.end());
}

// ----- command line -----

// The memory bounds and the append-only file's rules, after the options in --help.
constexpr const char* k_notes =
    "  Memory bounds are in bytes; a close is logged on stderr. Keep --max-output-memory\n"
    "  above --client-output-buffer-limit, so that one client alone meets its own limit first.\n"
    "  An append only file corrupt before its last record stops the start-up\n"
    "  (exit 1, the byte offset printed, the file untouched); a last record a crash\n"
    "  cut short is cut off with a message.\n"
    "  --aof-repair: do not serve; cut DIR/APPENDFILENAME at its first bad record\n"
    "  (every record from there on is dropped; the original is kept as .bak), print\n"
    "  what was cut and exit (redis-check-aof --fix).\n"
    "  --shards N > 1: N loops, each with its own listener on the port (SO_REUSEPORT), its\n"
    "  own keys (a key lives on shard hash(key) mod N; commands on other shards' keys are\n"
    "  forwarded) and its own log DIR/APPENDFILENAME.<shard>; --max-clients is per shard.\n"
    "  Start again with the same --shards: logs of another count are refused.\n";

/// CPUs this process may run on.
unsigned cpus_available() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

options parse_args(int argc, char** argv) {
    options opt;
    constexpr std::uint64_t big = 1ULL << 40;
    cli::parser p("corio-kv", "A Redis-protocol (RESP2) key-value server on corio.",
                  std::string(k_notes) + stop_signals::k_usage);
    p.port(opt.port);
    p.text("--bind", opt.bind, "address to listen on").type("ADDR");
    p.number("--sq-entries", opt.sq_entries, 0, 32768, "io_uring SQ entries");
    p.number("--cq-entries", opt.cq_entries, 0, 65536,
             "io_uring CQ entries; 0: the kernel's 2 x SQ");
    p.text("--dir", opt.dir, "where the append-only file lives").type("DIR");
    p.word(
         "--appendonly", {"yes", "no"},
         [&opt](const std::string& v) { opt.appendonly = v == "yes"; }, "keep an append-only file")
        .default_text("no");
    p.text("--appendfilename", opt.appendfilename, "the append-only file's name in DIR")
        .type("NAME");
    auto fsync = [&opt](const std::string& v) {
        opt.appendfsync = v == "always" ? kv::fsync_policy::always
                          : v == "no"   ? kv::fsync_policy::no
                                        : kv::fsync_policy::everysec;
    };
    p.word("--appendfsync", {"always", "everysec", "no"}, fsync, "when the log is fsynced")
        .default_text("everysec");
    p.number("--auto-aof-rewrite-percentage", opt.rewrite_percentage, 0, 1'000'000,
             "auto rewrite: the log's growth since the last one, %")
        .type("P");
    p.number("--auto-aof-rewrite-min-size", opt.rewrite_min_size, 0, big,
             "auto rewrite: the log's minimum size")
        .type("BYTES");
    p.number("--max-clients", opt.max_clients, 0, 1'000'000,
             "beyond this, new clients get an error");
    p.number("--client-output-buffer-limit", opt.output_limit, 0, big,
             "replies one client has not been sent yet; crossing it closes the client; 0: none")
        .type("BYTES");
    p.number("--client-query-buffer-limit", opt.query_limit, 0, big,
             "one incomplete command's bytes; crossing it closes the client; at least 16 KiB")
        .type("BYTES");
    p.number("--max-output-memory", opt.output_budget, 0, big,
             "all clients' unsent replies; beyond it a client with replies pending stops reading "
             "until they drain, the others go on; 0: none")
        .type("BYTES");
    p.number("--proto-max-bulk-len", opt.max_bulk, 0, big, "one argument's bytes").type("BYTES");
    p.duration("--timeout", opt.timeout, std::chrono::days(365),
               "idle clients are closed after this many seconds; 0: never")
        .type("SECONDS");
    p.duration("--drain-ms", opt.drain, 24h, "on SIGINT/SIGTERM: time the clients get to finish");
    p.number("--provided-buffers", opt.provided_buffers, 0, 32768,
             "multishot recv into a shared ring of this many 16 KiB buffers (a power of two): "
             "an idle client holds no input buffer; 0: a 16 KiB buffer per connection");
    p.flag("--aof-repair", opt.aof_repair,
           "cut the append-only file at its first bad record and exit (see below)");
    p.number("--shards", opt.shards, 0, 1024,
             "loops (threads), each owning the keys that hash to it; 0: one per CPU "
             "(see below)");
    p.cpu_list("--cpus", opt.cpus,
               "pin shard i to the i-th CPU of LIST (0,1 or 0-3; round robin when the list is "
               "shorter); with --shards 0, one shard per CPU listed");
    p.parse(argc, argv);
    if (std::string bad = example::check_cpus(opt.cpus); !bad.empty())
        p.fail(bad);
    if ((opt.provided_buffers & (opt.provided_buffers - 1)) != 0)
        p.fail("--provided-buffers: a power of two (or 0), not " +
               std::to_string(opt.provided_buffers));
    if (opt.shards == 0)
        opt.shards = opt.cpus.empty() ? cpus_available() : static_cast<unsigned>(opt.cpus.size());
    if (opt.query_limit < k_read_chunk)
        opt.query_limit = k_read_chunk;
    if (opt.output_budget > 0 && (opt.output_limit == 0 || opt.output_limit >= opt.output_budget))
        std::fprintf(stderr, "corio-kv: warning: --max-output-memory is not above "
                             "--client-output-buffer-limit: a client that does not read stops at "
                             "the total before it meets its own limit\n");
    return opt;
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse_args(argc, argv);

    std::signal(SIGPIPE, SIG_IGN);
    try {
        // Before the io_context and any thread (the offload pool): they inherit the blocked mask.
        corio::signal_set signals{SIGINT, SIGTERM, SIGUSR1};
        if (opt.shards == 1 && !opt.cpus.empty()) { // one loop: this thread, on the first CPU
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(opt.cpus[0], &set);
            if (::sched_setaffinity(0, sizeof set, &set) != 0)
                std::fprintf(stderr, "corio-kv: --cpus: cannot run on CPU %d: %s\n", opt.cpus[0],
                             std::strerror(errno));
        }
        corio::io_context ctx({.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries});
        if (opt.aof_repair) { // like redis-check-aof --fix
            // NOTE: not through a coroutine of this file: g++ 12 inlines a second one into main
            // and reports a false -Wmismatched-new-delete on its frame at -O1 with ASan.
            bool all_ok = true;
            for (unsigned k = 0; k < opt.shards; ++k) {
                kv::repair_report r =
                    corio::sync_wait(ctx, kv::repair_log(server::aof_options(opt, k).path));
                std::fprintf(r.ok ? stdout : stderr, "%s\n", r.message.c_str());
                all_ok = all_ok && r.ok;
            }
            return all_ok ? 0 : 1;
        }
        if (opt.appendonly && !check_log_layout(opt, opt.shards))
            return 1;
        if (opt.shards > 1)
            return run_sharded(opt, &signals);
        return corio::sync_wait(ctx, run_server(opt, &signals, nullptr, nullptr));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "corio-kv: %s\n", e.what());
        return 1;
    }
}
