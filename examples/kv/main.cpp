// SPDX-License-Identifier: MIT
// corio-kv: a Redis-protocol (RESP2) key-value server on corio. Each connection is one coroutine:
// read what arrived, run every complete command in it, append the replies to one output buffer,
// send that once (pipelining costs one send per batch), repeat. Strings only; keys may expire
// (on access and in the background); an append-only file with Redis's fsync policies keeps the
// data across restarts. Compare it with redis-server itself: redis-benchmark and redis-cli work
// unmodified.
// Try: build/debug/examples/kv/corio-kv --port 0   (prints `listening on PORT`), then
//      redis-cli -p PORT set k v; redis-cli -p PORT get k; kill -USR1 <pid> for a stats line.
#include "aof.hpp"
#include "commands.hpp"
#include "reply.hpp"
#include "resp_parser.hpp"
#include "store.hpp"

#include <corio/corio.hpp>
#include "examples/common/cli.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
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
    std::size_t output_limit = 256u << 20;      // a client whose replies exceed this is closed
    std::size_t query_limit = 1u << 30;         // unparsed input a client may have buffered
    std::size_t max_bulk = 512u << 20;          // one argument's bytes
    std::chrono::seconds timeout{0};            // idle clients are closed after this (0: never)
    std::chrono::milliseconds drain{2000};      // on SIGINT/SIGTERM: time given to finish
    unsigned provided_buffers = 0; // >0: multishot recv into a shared ring of this many buffers
};

constexpr std::size_t k_read_chunk = 16 * 1024; // bytes asked for per recv (Redis's IOBUF_LEN)

struct client;

/// Everything the connections share.
struct server final : kv::server_hooks {
    explicit server(const options& o) : opt(o), aof(aof_options(o), keyspace) {}

    static kv::aof_options aof_options(const options& o) {
        return {o.dir + "/" + o.appendfilename, o.appendfsync, o.rewrite_percentage,
                o.rewrite_min_size};
    }

    const options& opt;
    kv::store keyspace;
    kv::aof_log aof;
    kv::engine engine{keyspace, this};
    std::uint16_t port = 0;
    std::int64_t started_ms = kv::unix_time_ms();
    client* clients = nullptr;        // every open connection (intrusive list)
    std::size_t active = 0;           // connections open now
    std::uint64_t accepted = 0;       // connections accepted
    std::uint64_t rejected = 0;       // refused: over --max-clients
    std::uint64_t protocol_errors = 0; // closed for malformed input
    std::uint64_t output_limit_closes = 0; // closed for exceeding the output buffer limit
    std::uint64_t query_limit_closes = 0;  // closed for exceeding the query buffer limit
    std::uint64_t timeouts = 0;       // closed for idling
    std::uint64_t bytes_in = 0;       // bytes received
    std::uint64_t bytes_out = 0;      // bytes sent
    bool stopping = false;            // SIGINT/SIGTERM seen
    net::tcp_listener* listener = nullptr;
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

/// One connection's entry in the server's list (for shutdown and INFO).
struct client {
    server* srv;
    int fd;
    bool reading_idle = false; // waiting for a new command (nothing half-read)
    client* prev = nullptr;
    client* next = nullptr;

    client(server* s, int f) : srv(s), fd(f) {
        next = s->clients;
        if (next)
            next->prev = this;
        s->clients = this;
        ++s->active;
    }
    ~client() {
        (prev ? prev->next : srv->clients) = next;
        if (next)
            next->prev = prev;
        --srv->active;
    }
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
        append_line(out, "connected_clients", active);
        append_line(out, "maxclients", opt.max_clients);
    } else if (section == "stats") {
        corio::io_context_stats s = corio::io_context::current().stats();
        append_line(out, "total_connections_received", accepted);
        append_line(out, "rejected_connections", rejected);
        append_line(out, "total_net_input_bytes", bytes_in);
        append_line(out, "total_net_output_bytes", bytes_out);
        append_line(out, "closed_protocol_error", protocol_errors);
        append_line(out, "closed_output_buffer_limit", output_limit_closes);
        append_line(out, "closed_query_buffer_limit", query_limit_closes);
        append_line(out, "closed_timeout", timeouts);
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

constexpr std::array<std::string_view, 15> k_config_names = {
    "appendfilename", "appendfsync", "appendonly", "auto-aof-rewrite-min-size",
    "auto-aof-rewrite-percentage", "bind", "client-output-buffer-limit",
    "client-query-buffer-limit", "databases", "dir", "maxclients", "port", "proto-max-bulk-len",
    "save", "timeout"};

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

// ----- one connection -----

corio::task<corio::result<net::buffer_lease>> next_chunk(net::recv_stream* chunks) {
    corio::result<net::buffer_lease> lease = co_await chunks->next();
    co_return lease;
}

corio::task<void> serve(net::tcp_stream conn, server* srv) {
    client self(srv, conn.native_handle());
    const options& opt = srv->opt;
    kv::parser_limits limits;
    limits.max_bulk_length = opt.max_bulk;
    kv::resp_parser parser(limits);
    std::vector<char> in(k_read_chunk);
    std::size_t begin = 0; // unconsumed input starts here
    std::size_t end = 0;   // and ends here
    std::string out;
    kv::reply_writer writer(out);
    bool closing = false;
    std::optional<net::recv_stream> chunks;
    if (srv->ring)
        chunks.emplace(conn.recv_multishot(*srv->ring));

    while (!closing && !srv->stopping) {
        // Make room: drop what was consumed, grow only for a command larger than the buffer.
        if (begin == end) {
            begin = end = 0;
            if (in.size() > 4 * k_read_chunk) {
                in.resize(k_read_chunk); // after a big command: an idle client keeps 16 KiB
                in.shrink_to_fit();
            }
        } else if (in.size() - end < k_read_chunk / 4) {
            if (begin > 0) {
                std::memmove(in.data(), in.data() + begin, end - begin);
                end -= begin;
                begin = 0;
            }
            if (in.size() - end < k_read_chunk / 4) {
                if (end >= opt.query_limit) {
                    ++srv->query_limit_closes;
                    break;
                }
                in.resize(in.size() * 2);
            }
        }
        auto room = std::as_writable_bytes(std::span(in)).subspan(end);
        self.reading_idle = begin == end;
        corio::result<std::size_t> n = std::errc::timed_out;
        if (chunks) {
            // Multishot: the recv stays armed; copy the chunk behind what is pending.
            corio::result<net::buffer_lease> lease = std::errc::timed_out;
            if (opt.timeout.count() > 0) {
                auto next = corio::timeout(next_chunk(&*chunks), opt.timeout);
                lease = co_await std::move(next);
            } else {
                auto next = chunks->next();
                lease = co_await next;
            }
            if (lease) {
                std::span<const std::byte> got = lease->data();
                if (got.size() > room.size()) {
                    in.resize(end + got.size());
                    room = std::as_writable_bytes(std::span(in)).subspan(end);
                }
                if (!got.empty()) // an empty lease (EOF) has no data pointer
                    std::memcpy(room.data(), got.data(), got.size());
                n = got.size();
            } else {
                n = lease.error();
            }
        } else if (opt.timeout.count() > 0) {
            auto receiving = corio::with_timeout(conn.recv_some(room), opt.timeout);
            n = co_await receiving;
        } else {
            auto receiving = conn.recv_some(room);
            n = co_await receiving;
        }
        self.reading_idle = false;
        if (!n || *n == 0) {
            srv->timeouts += n == std::errc::timed_out;
            break;
        }
        srv->bytes_in += *n;
        end += *n;

        // Run every complete command that arrived.
        for (;;) {
            std::string_view pending(in.data() + begin, end - begin);
            kv::parse_status st = parser.parse(pending);
            if (st == kv::parse_status::need_more)
                break;
            if (st == kv::parse_status::error) {
                ++srv->protocol_errors;
                std::string text = "ERR ";
                text.append(parser.error_text());
                writer.error(text);
                closing = true;
                break;
            }
            begin += parser.consumed();
            if (st == kv::parse_status::empty)
                continue;
            const std::vector<std::string_view>& args = parser.args();
            kv::exec_result r = srv->engine.execute(args, writer);
            if (r == kv::exec_result::quit) {
                closing = true;
                break;
            }
            if (opt.output_limit > 0 && out.size() > opt.output_limit)
                break;
        }
        if (opt.output_limit > 0 && out.size() > opt.output_limit) {
            ++srv->output_limit_closes; // Redis's client-output-buffer-limit: drop the client
            out.clear();
            break;
        }
        if (opt.appendonly) {
            std::uint64_t seq = srv->aof.commit();
            if (srv->aof.policy() == kv::fsync_policy::always) {
                while (!srv->aof.is_durable(seq)) {
                    auto waiting = srv->aof.durable_event().wait();
                    corio::result<void> woke = co_await waiting;
                    if (!woke) {
                        closing = true; // cancelled (the drain ran out): no unsynced reply
                        out.clear();
                        break;
                    }
                }
            }
        }
        // Send the batch's replies (inline, not a helper task: no frame per batch). A peer that
        // stops reading meets --timeout when there is one.
        std::span<const std::byte> data = std::as_bytes(std::span(out.data(), out.size()));
        while (!data.empty()) {
            corio::result<std::size_t> sent = std::errc::timed_out;
            if (opt.timeout.count() > 0) {
                auto sending = corio::with_timeout(conn.send_some(data), opt.timeout);
                sent = co_await sending;
            } else {
                auto sending = conn.send_some(data);
                sent = co_await sending;
            }
            if (!sent) {
                closing = true;
                break;
            }
            data = data.subspan(*sent);
        }
        if (closing && !data.empty())
            break;
        if (!out.empty()) {
            srv->bytes_out += out.size();
            out.clear();
            if (out.capacity() > (1u << 20))
                out.shrink_to_fit(); // a big reply must not pin memory per idle client
        }
    }
    corio::result<void> closed = co_await conn.close(); // ends the armed multishot recv too
    (void)closed;
}

corio::task<void> refuse(net::tcp_stream conn) {
    auto send = conn.send_some(std::string_view("-ERR max number of clients reached\r\n"));
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

void print_stats(server* srv) {
    corio::io_context_stats s = corio::io_context::current().stats();
    std::printf("stats: clients=%zu accepted=%llu rejected=%llu keys=%zu commands=%llu "
                "protocol_errors=%llu output_limit_closes=%llu live_tasks=%zu ops_in_flight=%zu "
                "loop_turns=%llu kernel_enters=%llu cq_overflows=%llu aof_size=%llu\n",
                srv->active, static_cast<unsigned long long>(srv->accepted),
                static_cast<unsigned long long>(srv->rejected), srv->keyspace.size(),
                static_cast<unsigned long long>(srv->engine.commands_processed()),
                static_cast<unsigned long long>(srv->protocol_errors),
                static_cast<unsigned long long>(srv->output_limit_closes), s.live_tasks,
                s.ops_in_flight, static_cast<unsigned long long>(s.loop_turns),
                static_cast<unsigned long long>(s.kernel_enters),
                static_cast<unsigned long long>(s.cq_overflows),
                static_cast<unsigned long long>(srv->aof.stats().current_size));
    std::fflush(stdout);
}

/// Stops accepting and wakes every connection waiting for a new command (it then closes).
corio::task<void> begin_shutdown(server* srv, unsigned signo) {
    std::printf("signal %u: shutting down, %zu clients\n", signo, srv->active);
    std::fflush(stdout);
    srv->stopping = true;
    corio::result<void> closed = co_await srv->listener->close();
    (void)closed;
    for (client* c = srv->clients; c; c = c->next)
        if (c->reading_idle)
            ::shutdown(c->fd, SHUT_RD); // its recv returns 0 at once
}

corio::task<void> watch_signals(corio::signal_set* signals, server* srv) {
    for (;;) {
        auto waiting = signals->wait();
        corio::result<int> signo = co_await std::move(waiting);
        if (!signo)
            co_return; // cancelled: the server is going down anyway
        if (*signo == SIGUSR1) {
            print_stats(srv);
            continue;
        }
        co_await begin_shutdown(srv, static_cast<unsigned>(*signo));
        co_return;
    }
}

corio::task<void> join(corio::task_scope* scope) { co_await scope->join(); }

/// Truncates `path` to `length` (blocking metadata work: on the offload pool).
struct truncate_job {
    std::string path;
    std::uint64_t length;
    int operator()() const {
        return ::truncate(path.c_str(), static_cast<off_t>(length)) == 0 ? 0 : errno;
    }
};

/// Replays the log into the keyspace; returns its usable length, or -1 on corruption.
corio::task<std::int64_t> load_log(server* srv) {
    std::string path = srv->aof_options(srv->opt).path;
    auto reading = corio::read_file(path);
    corio::result<std::string> data = co_await std::move(reading);
    if (!data) {
        if (data == std::errc::no_such_file_or_directory)
            co_return 0;
        std::fprintf(stderr, "corio-kv: reading %s: %s\n", path.c_str(),
                     data.error().message().c_str());
        co_return -1;
    }
    kv::replay_report report = kv::replay_log(*data, srv->engine);
    if (!report.ok) {
        std::fprintf(stderr, "corio-kv: %s\n", report.error.c_str());
        co_return -1;
    }
    if (report.truncated_bytes > 0) {
        std::fprintf(stderr,
                     "corio-kv: !!! the append only file %s ends with an incomplete record: "
                     "truncating it from %zu to %zu bytes (%zu dropped) !!!\n",
                     path.c_str(), data->size(), report.good_length, report.truncated_bytes);
        truncate_job job{path, report.good_length};
        auto cutting = corio::offload(job);
        int err = co_await cutting;
        if (err != 0) {
            std::fprintf(stderr, "corio-kv: truncating %s: %s\n", path.c_str(),
                         std::strerror(err));
            co_return -1;
        }
    }
    std::printf("loaded %zu records (%zu keys) from %s\n", report.records, srv->keyspace.size(),
                path.c_str());
    co_return static_cast<std::int64_t>(report.good_length);
}

corio::task<int> run_server(options opt, corio::signal_set* signals) {
    server srv(opt);
    // Bound first (so a taken port fails before any work), accepting only after the replay.
    corio::result<net::socket_address> addr =
        net::socket_address::parse(opt.bind + ":" + std::to_string(opt.port));
    if (!addr) {
        std::fprintf(stderr, "corio-kv: --bind %s: %s\n", opt.bind.c_str(),
                     addr.error().message().c_str());
        co_return 2;
    }
    corio::result<net::tcp_listener> listener = net::tcp_listener::bind(*addr);
    if (!listener) {
        std::fprintf(stderr, "corio-kv: cannot listen on %s: %s\n", addr->to_string().c_str(),
                     listener.error().message().c_str());
        co_return 1;
    }
    if (opt.appendonly) {
        auto loading = load_log(&srv);
        std::int64_t length = co_await std::move(loading);
        if (length < 0)
            co_return 1;
        srv.engine.set_propagation(&srv.aof.buffer());
        auto opening = srv.aof.open(static_cast<std::uint64_t>(length));
        corio::result<void> opened = co_await std::move(opening);
        if (!opened) {
            std::fprintf(stderr, "corio-kv: opening the append only file: %s\n",
                         opened.error().message().c_str());
            co_return 1;
        }
    }

    std::unique_ptr<net::buffer_ring> ring;
    if (opt.provided_buffers > 0) {
        ring = std::make_unique<net::buffer_ring>(corio::io_context::current(),
                                                  opt.provided_buffers,
                                                  static_cast<std::uint32_t>(k_read_chunk));
        srv.ring = ring.get();
    }
    srv.port = listener->local_address().value().port();
    srv.listener = &*listener;
    std::printf("listening on %u\n", srv.port);
    std::fflush(stdout);

    corio::task_scope control;     // signals, background expiry
    corio::task_scope connections; // one task per connection
    control.spawn(watch_signals(signals, &srv));
    control.spawn(expire_keys(&srv));
    {
        net::tcp_accept_stream incoming = listener->accept_multishot();
        for (;;) {
            corio::result<net::tcp_stream> conn = co_await incoming.next();
            if (!conn) {
                if (!srv.stopping)
                    std::fprintf(stderr, "corio-kv: accept: %s\n", conn.error().message().c_str());
                break;
            }
            ++srv.accepted;
            if (srv.active >= opt.max_clients) {
                ++srv.rejected;
                connections.spawn(refuse(std::move(*conn)));
                continue;
            }
            connections.spawn(serve(std::move(*conn), &srv));
        }
    }

    auto drain = corio::timeout(join(&connections), opt.drain);
    corio::result<void> drained = co_await std::move(drain);
    if (!drained)
        std::printf("drain: cancelled the clients still busy after %lld ms\n",
                    static_cast<long long>(opt.drain.count()));
    control.request_stop();
    co_await control.join();
    if (opt.appendonly)
        co_await srv.aof.close(); // writes what is pending and fsyncs
    print_stats(&srv);
    co_return 0;
}

// ----- command line -----

[[noreturn]] void usage(int status) {
    std::fprintf(status == 0 ? stdout : stderr,
                 "usage: corio-kv [--port N] [--bind ADDR] [--sq-entries N] [--cq-entries N]\n"
                 "       [--dir DIR] [--appendonly yes|no] [--appendfilename NAME]\n"
                 "       [--appendfsync always|everysec|no] [--auto-aof-rewrite-percentage P]\n"
                 "       [--auto-aof-rewrite-min-size BYTES] [--max-clients N]\n"
                 "       [--client-output-buffer-limit BYTES] [--client-query-buffer-limit BYTES]\n"
                 "       [--proto-max-bulk-len BYTES] [--timeout SECONDS] [--drain-ms MS]\n"
                 "       [--provided-buffers N]\n"
                 "  --port 0 picks an ephemeral port and prints `listening on PORT`.\n"
                 "  SIGUSR1 prints a stats line; SIGINT/SIGTERM drain and exit 0.\n");
    std::exit(status);
}

constexpr cli::program k_cli{"corio-kv", usage};

bool yes_no(const char* flag, std::string_view v) {
    if (v == "yes")
        return true;
    if (v == "no")
        return false;
    std::fprintf(stderr, "corio-kv: %s wants yes or no\n", flag);
    usage(2);
}

options parse_args(int argc, char** argv) {
    options opt;
    constexpr unsigned long long big = 1ULL << 40;
    for (int i = 1; i < argc; ++i) {
        std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h")
            usage(0);
        if (i + 1 >= argc)
            usage(2);
        const char* f = argv[i];
        const char* value = argv[++i];
        std::string_view v = value;
        if (flag == "--port")
            opt.port = cli::unsigned_option<std::uint16_t>(k_cli, f, value, 0, 65535);
        else if (flag == "--bind")
            opt.bind = value;
        else if (flag == "--sq-entries")
            opt.sq_entries = cli::unsigned_option<unsigned>(k_cli, f, value, 0, 32768);
        else if (flag == "--cq-entries")
            opt.cq_entries = cli::unsigned_option<unsigned>(k_cli, f, value, 0, 65536);
        else if (flag == "--dir")
            opt.dir = value;
        else if (flag == "--appendonly")
            opt.appendonly = yes_no(f, v);
        else if (flag == "--appendfilename")
            opt.appendfilename = value;
        else if (flag == "--appendfsync") {
            if (v == "always")
                opt.appendfsync = kv::fsync_policy::always;
            else if (v == "everysec")
                opt.appendfsync = kv::fsync_policy::everysec;
            else if (v == "no")
                opt.appendfsync = kv::fsync_policy::no;
            else
                usage(2);
        } else if (flag == "--auto-aof-rewrite-percentage")
            opt.rewrite_percentage =
                cli::unsigned_option<std::uint64_t>(k_cli, f, value, 0, 1'000'000);
        else if (flag == "--auto-aof-rewrite-min-size")
            opt.rewrite_min_size = cli::unsigned_option<std::uint64_t>(k_cli, f, value, 0, big);
        else if (flag == "--max-clients")
            opt.max_clients = cli::unsigned_option<std::size_t>(k_cli, f, value, 0, 1'000'000);
        else if (flag == "--client-output-buffer-limit")
            opt.output_limit = cli::unsigned_option<std::size_t>(k_cli, f, value, 0, big);
        else if (flag == "--client-query-buffer-limit")
            opt.query_limit = cli::unsigned_option<std::size_t>(k_cli, f, value, 0, big);
        else if (flag == "--proto-max-bulk-len")
            opt.max_bulk = cli::unsigned_option<std::size_t>(k_cli, f, value, 0, big);
        else if (flag == "--timeout")
            opt.timeout =
                cli::duration_option<std::chrono::seconds>(k_cli, f, value, std::chrono::days(365));
        else if (flag == "--provided-buffers")
            opt.provided_buffers = cli::unsigned_option<unsigned>(k_cli, f, value, 0, 32768);
        else if (flag == "--drain-ms")
            opt.drain = cli::duration_option<std::chrono::milliseconds>(k_cli, f, value, 24h);
        else
            usage(2);
    }
    if (opt.query_limit < k_read_chunk)
        opt.query_limit = k_read_chunk;
    return opt;
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse_args(argc, argv);

    std::signal(SIGPIPE, SIG_IGN);
    try {
        // Before the io_context and any thread (the offload pool): they inherit the blocked mask.
        corio::signal_set signals{SIGINT, SIGTERM, SIGUSR1};
        corio::io_context ctx({.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries});
        return corio::sync_wait(ctx, run_server(opt, &signals));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "corio-kv: %s\n", e.what());
        return 1;
    }
}
