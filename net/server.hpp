// SPDX-License-Identifier: MIT
// net::server: the skeleton every TCP server repeats (accept loop with a connection limit, fd
// back-off report, one task per connection, signals, graceful drain with a deadline, counters),
// so that a server is its handler: `task<void>(tcp_stream, server::connection*)`.
#pragma once

#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/runtime/event.hpp>
#include <corio/runtime/signal_set.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/task_scope.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace corio::net {

/// What a server does with a connection accepted while `max_connections` are already open.
enum class limit_policy {
    close,  ///< close it at once (counted in server_stats::refused)
    refuse, ///< hand it to server_options::refuse (which may tell the peer why), then close it
    pause,  ///< take no connection until one ends: new ones wait, unaccepted by the server (the
            ///< multishot accept may hold up to server_options::accept_queue, the backlog the rest)
};

/// The counters of a server (server::stats()).
struct server_stats {
    std::size_t connections = 0;       ///< connections open now (handlers running)
    std::uint64_t accepted = 0;        ///< connections accepted, refused ones included
    std::uint64_t refused = 0;         ///< accepted over the limit and closed (close, refuse)
    std::uint64_t closed = 0;          ///< handlers that ended
    std::uint64_t timed_out = 0;       ///< connection::count_timeout() calls
    std::uint64_t handler_errors = 0;  ///< handlers that ended by an exception (logged)
    std::uint64_t accept_backoffs = 0; ///< accept pauses out of fds (EMFILE/ENFILE/ENOBUFS/ENOMEM)
    std::uint64_t handed_off = 0;      ///< accepted here, taken by server_options::hand_off
    std::uint64_t adopted = 0;         ///< handed in through server::adopt() (also in accepted)
    std::uint64_t out_of_fds = 0;      ///< server::count_out_of_fds() calls
    bool draining = false;             ///< the drain began
    bool drain_timed_out = false;      ///< the drain deadline passed and the rest was cancelled
};

/// How a server runs. Every hook is optional.
struct server_options {
    /// Names the server in its log lines (`NAME: accept: ...`).
    std::string name = "server";
    /// Connections open at once; the next one meets `on_limit`.
    std::size_t max_connections = 10000;
    /// What happens to a connection over `max_connections`.
    limit_policy on_limit = limit_policy::close;
    /// With limit_policy::refuse: gets each refused connection (run as a task of the server, so
    /// the drain waits for it); may send a line before it closes the stream. Not counted in
    /// server_stats::connections. Without it, refused connections are closed.
    std::function<task<void>(tcp_stream)> refuse;
    /// On a drain: how long the connections get to finish before they are cancelled.
    std::chrono::milliseconds drain_timeout = std::chrono::seconds(2);
    /// Stops the server gracefully when stop is requested (like drain()).
    stop_token drain_token;
    /// When set, run() reads it: SIGINT/SIGTERM start the drain, SIGUSR1 calls on_stats, other
    /// signals are logged and ignored. A second SIGINT/SIGTERM cancels the connections at once;
    /// with exit_on_second_signal it ends the process. Must outlive run().
    signal_set* signals = nullptr;
    /// Opt-in: a second SIGINT/SIGTERM prints `signal N again: exiting without draining` on
    /// stdout and ends the process at once with status 128+N (std::_Exit: no destructor runs).
    bool exit_on_second_signal = false;
    /// Called once when the drain begins, before the idle connections are shut: `signo` is the
    /// signal that asked, 0 for drain() or `drain_token`.
    std::function<void(int signo)> on_drain;
    /// Awaited on SIGUSR1 (it may await, e.g. to count fds on the offload pool).
    std::function<task<void>()> on_stats;
    /// Awaited after the drain and the background tasks, while the signals are still watched
    /// (a second signal still acts): flush what must be durable here.
    std::function<task<void>()> on_drained;
    /// Where log lines go (without the name, no newline); default: `NAME: LINE` on stderr.
    std::function<void(std::string_view line)> log;
    /// Out-of-fds report: at most one line per interval while accepting backs off or
    /// count_out_of_fds() is called; 0 turns it off.
    std::chrono::milliseconds report_interval = std::chrono::seconds(1);
    /// What count_out_of_fds() counts, as the report says it (`requests answered 503`); empty:
    /// the report names only the accept pauses.
    std::string out_of_fds_what;
    /// Connections the multishot accept queues before it pauses (see basic_accept_stream).
    std::size_t accept_queue = 64;
    /// One acceptor for several servers (shards): called with each connection the accept loop
    /// takes; returns true when it took the stream (handed it to another server, which runs it
    /// through adopt()), false to run it here. Counted in server_stats::handed_off.
    std::function<bool(tcp_stream&)> hand_off;
};

/// A TCP server on a listener: run() accepts connection after connection and runs the handler
/// on each as a task of the server, with a connection limit, until a drain (drain(), the drain
/// token, SIGINT/SIGTERM) closes the listener and gives the connections `drain_timeout` to end.
/// Construct and run it on one io_context; the listener and the server must outlive run().
///
///     net::server srv(listener, [](net::tcp_stream s, net::server::connection*) {
///         return echo(std::move(s)); // a coroutine taking its parameters by value
///     });
///     net::server_stats final = co_await srv.run();
class server {
public:
    /// One connection as the server sees it; lives as long as its handler runs.
    class connection {
    public:
        /// Marks the connection idle (waiting for a new request with nothing half-read) or not.
        /// A drain shuts the read side of idle connections (their recv returns 0 at once), and
        /// marking one idle during a drain shuts it at once. Clear it before closing the stream.
        void set_idle(bool idle) noexcept;
        /// True while marked idle.
        [[nodiscard]] bool is_idle() const noexcept { return m_idle; }
        /// True once the server drains: finish the request in hand, then end.
        [[nodiscard]] bool is_draining() const noexcept;
        /// Counts a timeout that ended (or will end) this connection in server_stats::timed_out.
        void count_timeout() noexcept;
        /// The server that runs this connection.
        [[nodiscard]] server& owner() const noexcept { return *m_server; }

        connection(const connection&) = delete;
        connection& operator=(const connection&) = delete;

    private:
        friend class server;
        connection(server* srv, int fd) noexcept; // registers with the server
        ~connection();                            // unregisters, counts it closed
        /// Shuts the read side of the socket (never blocks).
        void shut_read() noexcept;

        server* m_server;             // the owner
        int m_fd;                     // the socket, owned by the handler's stream
        bool m_idle = false;          // see set_idle()
        connection* m_prev = nullptr; // neighbours in the server's list
        connection* m_next = nullptr;
    };

    /// What runs each connection. A coroutine's parameters are taken by value (the stream is
    /// moved in); the connection pointer is valid until the handler's task ends.
    using handler_type = std::function<task<void>(tcp_stream, connection*)>;

    /// A server accepting on `listener` (bound and listening); nothing happens before run().
    server(tcp_listener& listener, handler_type handler, server_options options = {});
    /// A server whose handler takes the stream only.
    server(tcp_listener& listener, std::function<task<void>(tcp_stream)> handler,
           server_options options = {});
    /// A server without a listener: its connections are handed in through adopt() (by another
    /// server's acceptor, see server_options::hand_off); run() serves them until the drain.
    explicit server(handler_type handler, server_options options = {});
    /// Asserts that run() is not in progress (the connections' tasks point at the server).
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Serves until the drain ends, then returns the final counters. The drain: the listener
    /// stops listening at once (shutdown(2); connections in its backlog are reset, new ones
    /// refused) and is closed, idle connections are shut, the others get `drain_timeout` to end and
    /// are then cancelled; the background tasks are cancelled, `on_drained` is awaited, the signal
    /// watcher stops. A listener that fails (other than by the drain) is logged and starts the
    /// drain too. Cancelling the awaiting task cancels everything at once (and still waits for it).
    /// Call it once.
    [[nodiscard]] task<server_stats> run();

    /// Runs `stream` (a connected socket accepted elsewhere, e.g. on another shard) as one of
    /// this server's connections, as if its own accept loop had taken it: counted in
    /// `accepted` and `adopted`, the connection limit applies (limit_policy::pause closes it like
    /// `close`: a hand-off cannot wait). On the server's loop thread; before run() the handler
    /// starts at once and run() must follow (like spawn()). False (the stream closed) once the
    /// server drains or its run() has returned.
    bool adopt(tcp_stream stream);

    /// Starts the graceful drain (see run()); idempotent. Calls on_drain(0) the first time.
    void drain() noexcept { begin_drain(0); }

    /// Runs `t` beside the connections (a timeout sweep, a stats ticker): cancelled once the
    /// connections are drained, awaited before run() returns. Must be followed by run().
    void spawn(task<void> t) { m_background.spawn(std::move(t)); }

    /// Counts an out-of-fds event of a handler (a request refused because no fd was left) in
    /// server_stats::out_of_fds and in the next report line.
    void count_out_of_fds() noexcept { ++m_out_of_fds; }

    /// The counters now.
    [[nodiscard]] server_stats stats() const noexcept;

    /// The options the server runs with.
    [[nodiscard]] const server_options& options() const noexcept { return m_options; }

private:
    static task<void> accept_loop(server* self);
    /// The accept loop of a server without a listener: waits for the drain.
    static task<void> wait_for_drain(server* self);
    /// Runs or refuses one connection taken by the accept loop or adopt().
    void take(tcp_stream stream);
    static task<void> connection_main(server* self, tcp_stream stream);
    static task<void> refuse_main(server* self, tcp_stream stream);
    static task<void> watch_signals(server* self);
    static task<void> report_out_of_fds(server* self);
    static task<void> join_connections(server* self);
    void begin_drain(int signo) noexcept;
    void log(std::string_view line) const;
    void report_now(std::chrono::steady_clock::time_point now);
    [[nodiscard]] std::uint64_t accept_backoffs() const noexcept;

    tcp_listener* m_listener;     // where connections come from (closed on drain); null: adopt()
    handler_type m_handler;       // runs each connection
    server_options m_options;     // limits and hooks
    task_scope m_connections;     // one task per connection (and refusals)
    task_scope m_accepting;       // the accept loop: request_stop() ends it
    task_scope m_background;      // spawn()ed tasks and the out-of-fds report
    event m_room;                 // set when a connection ends (limit_policy::pause)
    event m_drain_begun;          // set by the drain (what a server without a listener awaits)
    connection* m_head = nullptr; // the open connections
    const tcp_accept_stream* m_incoming = nullptr; // while accepting: its back-off count
    std::size_t m_open = 0;                        // connections open (counted at accept)
    std::uint64_t m_accepted = 0;                  // see server_stats
    std::uint64_t m_refused = 0;
    std::uint64_t m_closed = 0;
    std::uint64_t m_timed_out = 0;
    std::uint64_t m_handler_errors = 0;
    std::uint64_t m_out_of_fds = 0;
    std::uint64_t m_handed_off = 0;
    std::uint64_t m_adopted = 0;
    std::uint64_t m_backoffs_at_end = 0;     // the accept stream's back-offs once it ended
    std::uint64_t m_reported_out_of_fds = 0; // m_out_of_fds at the last report
    std::uint64_t m_reported_backoffs = 0;   // back-offs at the last report
    std::chrono::steady_clock::time_point m_last_report{}; // when the last report was logged
    bool m_draining = false;                               // the drain began
    bool m_drain_timed_out = false;                        // the drain ran out of time
    bool m_running = false;                                // run() is in progress
    bool m_ran = false;                                    // run() returned
};

} // namespace corio::net
