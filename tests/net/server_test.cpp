// SPDX-License-Identifier: MIT
// net::server: the connection limit and its policies, the drain (waits, shuts idle connections,
// cancels after the deadline), the signals, the EMFILE back-off report and the counters.
#include <corio/net/server.hpp>

#include "tests/net/net_support.hpp"
#include <corio/runtime/event.hpp>
#include <corio/runtime/signal_set.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/when_any.hpp>

#include <doctest/doctest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using net::limit_policy;
using net::server;
using net::server_options;
using net::server_stats;
using net::socket_address;
using net::tcp_listener;
using net::tcp_stream;

namespace {

/// What the handlers of a test saw.
struct observed {
    int started = 0;              // handlers that began
    int finished = 0;             // handlers that ended normally
    int cancelled = 0;            // handlers whose wait was cancelled
    int refused = 0;              // refuse callbacks
    int drains = 0;               // on_drain calls
    int drain_signo = -1;         // on_drain's argument
    int stats_calls = 0;          // on_stats calls
    int drained_calls = 0;        // on_drained calls
    std::vector<std::string> log; // log lines
    event release;                // handlers waiting on it end
};

/// Waits on `seen->release`, then sends "bye" and closes.
task<void> wait_for_release(tcp_stream s, observed* seen) {
    ++seen->started;
    auto waiting = seen->release.wait();
    result<void> released = co_await waiting;
    if (!released) {
        ++seen->cancelled;
        co_return;
    }
    auto sending = s.send_all(std::string_view("bye"));
    result<std::size_t> sent = co_await sending;
    (void)sent;
    result<void> closed = co_await s.close();
    (void)closed;
    ++seen->finished;
}

/// Reads until EOF or an error; marks itself idle while waiting (a drain then shuts it).
task<void> read_until_eof(tcp_stream s, server::connection* c, observed* seen) {
    ++seen->started;
    char buffer[64];
    for (;;) {
        c->set_idle(true);
        auto receiving = s.recv_some(std::span<char>(buffer));
        result<std::size_t> n = co_await receiving;
        c->set_idle(false);
        if (!n) {
            seen->cancelled += n == std::errc::operation_canceled;
            co_return;
        }
        if (*n == 0)
            break;
    }
    ++seen->finished;
}

/// Waits for bytes that never come, not idle: only a cancellation ends it.
task<void> busy_forever(tcp_stream s, observed* seen) {
    ++seen->started;
    char buffer[64];
    auto receiving = s.recv_some(std::span<char>(buffer));
    result<std::size_t> n = co_await receiving;
    if (n == std::errc::operation_canceled)
        ++seen->cancelled;
    else
        ++seen->finished;
}

task<void> refuse_with_line(tcp_stream s, observed* seen) {
    ++seen->refused;
    auto sending = s.send_all(std::string_view("full\n"));
    result<std::size_t> sent = co_await sending;
    (void)sent;
    result<void> closed = co_await s.close();
    (void)closed;
}

task<void> throws(tcp_stream, observed* seen) {
    ++seen->started;
    result<void> y = co_await nop();
    y.value();
    throw std::runtime_error("boom");
}

task<void> run_into(server* srv, server_stats* out) {
    server_stats s = co_await srv->run();
    *out = s;
}

/// Everything `c` sends until EOF.
task<std::string> read_all(tcp_stream* c) {
    std::string got;
    char buffer[64];
    for (;;) {
        result<std::size_t> n = co_await c->recv_some(std::span<char>(buffer));
        REQUIRE(n.has_value());
        if (*n == 0)
            co_return got;
        got.append(buffer, *n);
    }
}

task<tcp_stream> connect_to(socket_address addr) {
    result<tcp_stream> c = co_await tcp_stream::connect(addr);
    REQUIRE(c.has_value());
    co_return std::move(*c);
}

/// Options whose hooks record into `seen`.
server_options recording(observed* seen) {
    server_options o;
    o.name = "test";
    o.on_drain = [seen](int signo) {
        ++seen->drains;
        seen->drain_signo = signo;
    };
    o.log = [seen](std::string_view line) { seen->log.emplace_back(line); };
    return o;
}

task<void> count_stats_call(observed* seen) {
    ++seen->stats_calls;
    co_return;
}

task<void> count_drained_call(observed* seen) {
    ++seen->drained_calls;
    co_return;
}

int lowest_free_fd() {
    int fd = ::dup(0);
    REQUIRE(fd >= 0);
    ::close(fd);
    return fd;
}

// ----- scenarios -----

task<void> limit_with_refuse() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen;
    server_options o = recording(&seen);
    o.max_connections = 2;
    o.on_limit = limit_policy::refuse;
    o.refuse = [&seen](tcp_stream s) { return refuse_with_line(std::move(s), &seen); };
    server srv(
        listener, [&seen](tcp_stream s) { return wait_for_release(std::move(s), &seen); },
        std::move(o));
    server_stats final{};
    task_scope scope;
    scope.spawn(run_into(&srv, &final));

    tcp_stream a = co_await connect_to(addr);
    tcp_stream b = co_await connect_to(addr);
    tcp_stream c = co_await connect_to(addr);
    std::string refused = co_await read_all(&c);
    CHECK(refused == "full\n");
    co_await test::turn_until([&seen] { return seen.started == 2; });
    server_stats during = srv.stats();
    CHECK(during.connections == 2);
    CHECK(during.accepted == 3);
    CHECK(during.refused == 1);
    CHECK(seen.refused == 1);
    CHECK(seen.started == 2); // no handler beyond the limit

    seen.release.set();
    std::string from_a = co_await read_all(&a);
    std::string from_b = co_await read_all(&b);
    CHECK(from_a == "bye");
    CHECK(from_b == "bye");
    srv.drain();
    co_await scope.join();
    CHECK(final.connections == 0);
    CHECK(final.accepted == 3);
    CHECK(final.refused == 1);
    CHECK(final.closed == 2);
    CHECK(final.draining);
    CHECK_FALSE(final.drain_timed_out);
    CHECK(seen.drains == 1);
    CHECK(seen.drain_signo == 0);
    CHECK(seen.log.empty());
}

task<void> limit_with_pause() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen;
    server_options o = recording(&seen);
    o.max_connections = 1;
    o.on_limit = limit_policy::pause;
    server srv(
        listener, [&seen](tcp_stream s) { return wait_for_release(std::move(s), &seen); },
        std::move(o));
    server_stats final{};
    task_scope scope;
    scope.spawn(run_into(&srv, &final));

    tcp_stream a = co_await connect_to(addr);
    tcp_stream b = co_await connect_to(addr); // completed by the kernel, waits to be taken
    co_await test::turn_until([&seen] { return seen.started == 1; });
    for (int i = 0; i < 100; ++i) { // the loop runs on: still nothing beyond the limit
        result<void> y = co_await nop();
        y.value();
    }
    CHECK(srv.stats().accepted == 1);
    CHECK(srv.stats().refused == 0);
    CHECK(seen.started == 1);

    seen.release.set(); // the first ends; the second is taken and (released already) ends too
    std::string from_a = co_await read_all(&a);
    std::string from_b = co_await read_all(&b);
    CHECK(from_a == "bye");
    CHECK(from_b == "bye");
    srv.drain();
    co_await scope.join();
    CHECK(final.accepted == 2);
    CHECK(final.refused == 0);
    CHECK(final.closed == 2);
}

task<void> drain_waits_then_cancels() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen;
    server_options o = recording(&seen);
    o.drain_timeout = 50ms; // a deadline that passes: the busy handler is cancelled
    o.on_drained = [&seen] { return count_drained_call(&seen); };
    server srv(
        listener,
        [&seen](tcp_stream s, server::connection* c) {
            if (seen.started == 0)
                return read_until_eof(std::move(s), c, &seen); // idle: shut by the drain
            return busy_forever(std::move(s), &seen);
        },
        std::move(o));
    server_stats final{};
    task_scope scope;
    scope.spawn(run_into(&srv, &final));

    tcp_stream idle = co_await connect_to(addr);
    co_await test::turn_until([&seen] { return seen.started == 1; });
    tcp_stream busy = co_await connect_to(addr);
    co_await test::turn_until([&seen] { return seen.started == 2; });
    srv.drain();
    // Regression: the listener stopped listening only turns later (after the idle connection
    // saw its EOF), so a client that reconnected at once landed in a backlog about to be reset.
    int late = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(late >= 0);
    int refused = ::connect(late, addr.data(), addr.size());
    int error = errno;
    ::close(late);
    CHECK(refused == -1);
    CHECK(error == ECONNREFUSED);
    co_await scope.join();
    CHECK(final.drain_timed_out);
    CHECK(final.closed == 2);
    CHECK(final.connections == 0);
    CHECK(seen.finished == 1);  // the idle one saw EOF at once
    CHECK(seen.cancelled == 1); // the busy one was cancelled at the deadline
    CHECK(seen.drained_calls == 1);
    // The listener is closed: nobody is accepting any more.
    CHECK_FALSE(listener.is_open());
}

task<void> drain_lets_handlers_finish() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen;
    stop_source stopper;
    server_options o = recording(&seen);
    o.drain_timeout = 60s; // never reached: the handler ends first
    o.drain_token = stopper.token();
    server srv(
        listener, [&seen](tcp_stream s) { return wait_for_release(std::move(s), &seen); },
        std::move(o));
    server_stats final{};
    task_scope scope;
    scope.spawn(run_into(&srv, &final));

    tcp_stream a = co_await connect_to(addr);
    co_await test::turn_until([&seen] { return seen.started == 1; });
    stopper.request_stop(); // like drain()
    co_await test::turn_until([&srv] { return srv.stats().draining; });
    CHECK(srv.stats().connections == 1); // still running: the drain waits for it
    seen.release.set();
    std::string from_a = co_await read_all(&a);
    CHECK(from_a == "bye");
    co_await scope.join();
    CHECK_FALSE(final.drain_timed_out);
    CHECK(seen.finished == 1);
    CHECK(seen.cancelled == 0);
    CHECK(seen.drains == 1);
}

/// One acceptor, two servers: the acceptor hands every second connection to a server without a
/// listener, which runs it through adopt(); once that one drains, adopt() refuses (and closes).
task<void> hand_off_and_adopt() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen_front;
    observed seen_back;
    server back([&seen_back](tcp_stream s,
                             server::connection*) { return wait_for_release(std::move(s), &seen_back); },
                recording(&seen_back));
    // Before run(): the handler starts at once (a hand-off may beat the server's start).
    auto [early_client, early_server] = co_await test::tcp_pair();
    CHECK(back.adopt(std::move(early_server)));
    server_options o = recording(&seen_front);
    bool give = false;
    o.hand_off = [&back, &give](tcp_stream& s) {
        give = !give;
        return give && back.adopt(std::move(s));
    };
    server front(
        listener, [&seen_front](tcp_stream s) { return wait_for_release(std::move(s), &seen_front); },
        std::move(o));
    server_stats front_final{};
    server_stats back_final{};
    task_scope scope;
    scope.spawn(run_into(&back, &back_final));
    scope.spawn(run_into(&front, &front_final));

    std::vector<tcp_stream> clients;
    for (int i = 0; i < 4; ++i)
        clients.push_back(co_await connect_to(addr));
    co_await test::turn_until([&] { return seen_front.started + seen_back.started == 5; });
    CHECK(seen_front.started == 2);
    CHECK(seen_back.started == 3);
    CHECK(front.stats().handed_off == 2);
    CHECK(front.stats().accepted == 2);
    CHECK(back.stats().adopted == 3);
    CHECK(back.stats().accepted == 3);
    CHECK(back.stats().connections == 3);

    back.drain();
    auto [late_client, late_server] = co_await test::tcp_pair();
    CHECK_FALSE(back.adopt(std::move(late_server))); // draining: closed, not run
    std::string from_late = co_await read_all(&late_client);
    CHECK(from_late.empty()); // EOF
    seen_front.release.set();
    seen_back.release.set();
    for (tcp_stream& c : clients)
        CHECK(co_await read_all(&c) == "bye");
    CHECK(co_await read_all(&early_client) == "bye");
    front.drain();
    co_await scope.join();
    CHECK(back_final.adopted == 3);
    CHECK(seen_back.finished == 3);
    CHECK(seen_front.finished == 2);
    auto [after_client, after_server] = co_await test::tcp_pair();
    CHECK_FALSE(back.adopt(std::move(after_server))); // its run() returned: closed
    CHECK((co_await read_all(&after_client)).empty());
}

task<void> handler_exceptions_are_counted() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen;
    server srv(
        listener, [&seen](tcp_stream s) { return throws(std::move(s), &seen); }, recording(&seen));
    server_stats final{};
    task_scope scope;
    scope.spawn(run_into(&srv, &final));
    tcp_stream a = co_await connect_to(addr);
    tcp_stream b = co_await connect_to(addr);
    co_await test::turn_until([&srv] { return srv.stats().closed == 2; });
    srv.drain();
    co_await scope.join();
    CHECK(final.handler_errors == 2);
    CHECK(final.accepted == 2);
    REQUIRE(seen.log.size() == 2);
    CHECK(seen.log[0] == "connection handler failed: boom");
}

task<void> signals_drain_and_cancel(signal_set* signals) {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen;
    server_options o = recording(&seen);
    o.signals = signals;
    o.drain_timeout = 60s;
    o.on_stats = [&seen] { return count_stats_call(&seen); };
    server srv(
        listener, [&seen](tcp_stream s) { return busy_forever(std::move(s), &seen); },
        std::move(o));
    server_stats final{};
    task_scope scope;
    scope.spawn(run_into(&srv, &final));
    tcp_stream a = co_await connect_to(addr);
    co_await test::turn_until([&seen] { return seen.started == 1; });

    REQUIRE(pthread_kill(pthread_self(), SIGUSR1) == 0);
    co_await test::turn_until([&seen] { return seen.stats_calls == 1; });
    REQUIRE(pthread_kill(pthread_self(), SIGTERM) == 0);
    co_await test::turn_until([&seen] { return seen.drains == 1; });
    CHECK(seen.drain_signo == SIGTERM);
    CHECK(srv.stats().connections == 1);                 // busy: the drain waits (up to 60 s)
    REQUIRE(pthread_kill(pthread_self(), SIGTERM) == 0); // the second cancels it now
    co_await scope.join();
    CHECK(seen.cancelled == 1);
    CHECK_FALSE(final.drain_timed_out);
    REQUIRE(seen.log.size() == 1);
    CHECK(seen.log[0] == "signal 15 again: cancelling the connections");
}

/// Out of fds: the accept backs off, the report says so (once per interval), the counters
/// count it, and once fds are free the waiting connection is served.
task<void> emfile_backoff_is_reported() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    observed seen;
    server_options o = recording(&seen);
    o.report_interval = 40ms;
    o.out_of_fds_what = "requests refused";
    server srv(
        listener, [&seen](tcp_stream s) { return wait_for_release(std::move(s), &seen); },
        std::move(o));
    seen.release.set();     // handlers answer at once
    srv.count_out_of_fds(); // as a handler would when it could not open a file

    int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(raw >= 0);
    tcp_stream client(raw);
    // NOTE: the kernel reads RLIMIT_NOFILE when an accept is prepared: the server starts (and
    // arms its accept) only after the limit is lowered.
    test::nofile_limit limit(static_cast<rlim_t>(lowest_free_fd()));
    REQUIRE(::connect(raw, addr.data(), addr.size()) == 0);
    server_stats final{};
    task_scope scope;
    scope.spawn(run_into(&srv, &final));

    // NOTE: no when_any/timeout and no doctest macro while out of fds: UBSan's vptr check of a
    // type it has not seen yet needs a pipe, and without fds reports a false "invalid vptr"
    // (join_state, doctest's ContextScopeBase). Turning the loop until the report (due within
    // report_interval) is what tcp_listener_test does too.
    co_await test::turn_until([&seen] { return !seen.log.empty(); });
    std::string line = seen.log[0];
    server_stats starved = srv.stats();
    int started = seen.started;
    limit.restore(); // fds are free again: the waiting connection is served
    // Checked only now: doctest's INFO is checked by UBSan the same way (see above).
    INFO(line);
    CHECK(line.starts_with("out of file descriptors (RLIMIT_NOFILE "));
    CHECK(line.find("): 1 requests refused, accepting paused ") != std::string::npos);
    CHECK(line.ends_with(" times since the last report"));
    CHECK(starved.accept_backoffs > 0);
    CHECK(starved.out_of_fds == 1);
    CHECK(starved.accepted == 0);
    CHECK(started == 0);

    std::string got = co_await read_all(&client);
    CHECK(got == "bye");
    srv.drain();
    co_await scope.join();
    CHECK(final.accepted == 1);
    CHECK(final.accept_backoffs > 0);
}

} // namespace

TEST_CASE("server: over the limit, refuse is called for each extra connection and no handler "
          "runs beyond the limit") {
    sync_wait(limit_with_refuse());
}

TEST_CASE("server: limit_policy::pause takes no connection beyond the limit until one ends") {
    sync_wait(limit_with_pause());
}

TEST_CASE("server: the drain shuts idle connections at once and cancels busy ones at the "
          "deadline") {
    sync_wait(drain_waits_then_cancels());
}

TEST_CASE("server: the drain token starts a drain that waits for a running handler") {
    sync_wait(drain_lets_handlers_finish());
}

TEST_CASE("server: hand_off gives accepted connections to a server without a listener, which "
          "runs them through adopt() (also before its run() starts); adopt() refuses once that "
          "server drains and after its run()") {
    sync_wait(hand_off_and_adopt());
}

TEST_CASE("server: a handler's exception is logged and counted, and the server goes on") {
    sync_wait(handler_exceptions_are_counted());
}

TEST_CASE("server: SIGUSR1 calls on_stats, SIGTERM drains, a second SIGTERM cancels the "
          "connections (no exit unless asked)") {
    signal_set signals{SIGTERM, SIGUSR1};
    sync_wait(signals_drain_and_cancel(&signals));
}

TEST_CASE("server: out of fds, accepting backs off with a rate-limited report and resumes") {
    sync_wait(emfile_backoff_is_reported());
}
