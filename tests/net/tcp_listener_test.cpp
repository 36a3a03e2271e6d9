// SPDX-License-Identifier: MIT
// TCP listeners: ephemeral ports, SO_REUSEPORT, accept one at a time, and the multishot accept
// stream (1,000 connections, pausing, cancellation, EMFILE back-off without spinning).
#include <corio/net/tcp_listener.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/when_all.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/net/net_support.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using net::socket_address;
using net::tcp_accept_stream;
using net::tcp_listener;
using net::tcp_stream;

namespace {

task<void> accept_n(tcp_accept_stream* stream, int n, std::vector<tcp_stream>* out) {
    for (int i = 0; i < n; ++i) {
        result<tcp_stream> s = co_await stream->next();
        REQUIRE(s.has_value());
        out->push_back(std::move(*s));
    }
}

task<void> connect_n(socket_address addr, int n, std::vector<tcp_stream>* out) {
    for (int i = 0; i < n; ++i) {
        result<tcp_stream> s = co_await tcp_stream::connect(addr);
        REQUIRE(s.has_value());
        out->push_back(std::move(*s));
    }
}

/// One byte each way on every pair: each accepted stream is a working, distinct connection.
task<void> ping_all(std::vector<tcp_stream>* clients, std::vector<tcp_stream>* servers) {
    for (std::size_t i = 0; i < clients->size(); ++i) {
        char tag = static_cast<char>('a' + i % 26);
        result<std::size_t> sent = co_await (*clients)[i].send_some(std::string_view(&tag, 1));
        REQUIRE(sent.has_value());
    }
    // Accept order equals connect order on one loopback listener, but do not rely on it: match
    // by the peer's port.
    std::vector<int> client_by_port(65536, -1);
    for (std::size_t i = 0; i < clients->size(); ++i)
        client_by_port[(*clients)[i].local_address().value().port()] = static_cast<int>(i);
    for (tcp_stream& server : *servers) {
        char got = 0;
        result<std::size_t> n = co_await server.recv_some(std::span<char>(&got, 1));
        REQUIRE(n.value() == 1);
        int i = client_by_port[server.peer_address().value().port()];
        REQUIRE(i >= 0);
        CHECK(got == static_cast<char>('a' + i % 26));
        client_by_port[server.peer_address().value().port()] = -1; // each client once
    }
}

task<net::accept_stream_stats> multishot_accept_many(int n, std::size_t queue_limit) {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    tcp_accept_stream stream = listener.accept_multishot(queue_limit);
    std::vector<tcp_stream> servers;
    std::vector<tcp_stream> clients;
    auto both = when_all(accept_n(&stream, n, &servers), connect_n(addr, n, &clients));
    co_await both;
    CHECK(servers.size() == static_cast<std::size_t>(n));
    co_await ping_all(&clients, &servers);
    co_return stream.stats();
}

task<void> accept_one_at_a_time() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    for (int i = 0; i < 3; ++i) {
        result<tcp_stream> client = co_await tcp_stream::connect(addr);
        REQUIRE(client.has_value());
        result<tcp_stream> server = co_await listener.accept();
        REQUIRE(server.has_value());
        CHECK(server->peer_address().value() == client->local_address().value());
    }
}

task<std::error_code> next_after_close() {
    tcp_listener listener = test::loopback_listener();
    tcp_accept_stream stream = listener.accept_multishot();
    auto closer = [](tcp_listener* l) -> task<void> {
        result<void> y = co_await nop(); // the accept is armed first
        y.value();
        result<void> closed = co_await l->close();
        REQUIRE(closed.has_value());
    };
    auto waiting = [](tcp_accept_stream* s) -> task<std::error_code> {
        result<tcp_stream> r = co_await s->next();
        co_return r.error();
    };
    auto both = when_all(waiting(&stream), closer(&listener));
    auto [error, done] = co_await both;
    // Sticky: the stream never arms on the (possibly reused) fd number again.
    result<tcp_stream> again = co_await stream.next();
    CHECK(again.error() == error);
    co_return error;
}

task<void> next_cancelled_by_timeout() {
    tcp_listener listener = test::loopback_listener();
    tcp_accept_stream stream = listener.accept_multishot();
    auto waiting = [](tcp_accept_stream* s) -> task<bool> {
        result<tcp_stream> r = co_await s->next();
        co_return r.has_value();
    };
    result<bool> r = co_await timeout(waiting(&stream), 20ms);
    CHECK(r == std::errc::timed_out);
    // The stream survives its consumer's cancellation and still delivers.
    socket_address addr = listener.local_address().value();
    result<tcp_stream> client = co_await tcp_stream::connect(addr);
    REQUIRE(client.has_value());
    result<tcp_stream> server = co_await stream.next();
    CHECK(server.has_value());
}

/// The lowest fd number free right now.
int lowest_free_fd() {
    int fd = ::dup(0);
    REQUIRE(fd >= 0);
    ::close(fd);
    return fd;
}

task<void> echo_byte(tcp_stream* client, tcp_stream* server, char value) {
    result<std::size_t> sent = co_await client->send_some(std::string_view(&value, 1));
    REQUIRE(sent.value() == 1);
    char got = 0;
    result<std::size_t> n = co_await server->recv_some(std::span<char>(&got, 1));
    REQUIRE(n.value() == 1);
    CHECK(got == value);
    result<std::size_t> back = co_await server->send_some(std::string_view(&got, 1));
    REQUIRE(back.value() == 1);
    char echoed = 0;
    result<std::size_t> m = co_await client->recv_some(std::span<char>(&echoed, 1));
    REQUIRE(m.value() == 1);
    CHECK(echoed == value);
}

struct emfile_report {
    net::accept_stream_stats during; // stats while out of fds
    net::accept_stream_stats after;  // stats once the second connection was accepted
    std::chrono::nanoseconds starved_for{}; // how long the stream was out of fds
};

/// Out of fds: the accept fails with EMFILE; the stream backs off through the ring while the
/// connection it already has keeps working; once fds are free it accepts the waiting one.
task<emfile_report> emfile_backoff() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    tcp_accept_stream stream = listener.accept_multishot();

    result<tcp_stream> c1 = co_await tcp_stream::connect(addr);
    REQUIRE(c1.has_value());
    // NOTE: the kernel reads RLIMIT_NOFILE when an accept is prepared, so the multishot accept
    // is armed (by the first next() below) only after the limit is lowered.
    result<tcp_stream> s1 = co_await listener.accept();
    REQUIRE(s1.has_value());

    // The second client's socket is made while fds are still available; blocking connect() on
    // loopback completes at once (the kernel finishes the handshake without an accept).
    int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(raw >= 0);
    tcp_stream c2(raw);

    emfile_report report;
    test::nofile_limit limit(static_cast<rlim_t>(lowest_free_fd()));
    REQUIRE(::connect(raw, addr.data(), addr.size()) == 0);

    struct accept_result {
        result<tcp_stream> stream = std::errc::operation_canceled;
        bool done = false;
    } second;
    auto accept_second = [](tcp_accept_stream* s, accept_result* out) -> task<void> {
        out->stream = co_await s->next();
        out->done = true;
    };
    task_scope scope;
    scope.spawn(accept_second(&stream, &second));

    auto backed_off = [&stream] { return stream.stats().backoffs > 0; };
    task<void> wait_backoff = test::turn_until(backed_off);
    co_await std::move(wait_backoff);
    auto start = std::chrono::steady_clock::now();

    // The connection we have keeps working while the listener is starved.
    for (char c : std::string("still serving"))
        co_await echo_byte(&*c1, &*s1, c);
    CHECK_FALSE(second.done);
    report.during = stream.stats();

    limit.restore(); // fds are free again
    co_await scope.join();
    report.starved_for = std::chrono::steady_clock::now() - start;
    REQUIRE(second.stream.has_value());
    co_await echo_byte(&c2, &*second.stream, 'x');
    report.after = stream.stats();
    co_return report;
}

task<result<tcp_stream>> accept_while_out_of_fds() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(raw >= 0);
    tcp_stream client(raw);
    test::nofile_limit limit(static_cast<rlim_t>(lowest_free_fd()));
    REQUIRE(::connect(raw, addr.data(), addr.size()) == 0);
    result<tcp_stream> r = co_await listener.accept();
    co_return r;
}

task<result<tcp_stream>> accept_cancelled_by_close() {
    tcp_listener listener = test::loopback_listener();
    auto closer = [](tcp_listener* l) -> task<void> {
        result<void> y = co_await nop(); // the accept is in the kernel first
        y.value();
        result<void> closed = co_await l->close();
        REQUIRE(closed.has_value());
    };
    auto accepting = [](tcp_listener* l) -> task<result<tcp_stream>> {
        result<tcp_stream> r = co_await l->accept();
        co_return r;
    };
    auto both = when_all(accepting(&listener), closer(&listener));
    auto [accepted, done] = co_await both;
    co_return std::move(accepted);
}

} // namespace

TEST_CASE("a listener bound to port 0 reports the port the kernel picked") {
    tcp_listener listener = test::loopback_listener();
    result<socket_address> addr = listener.local_address();
    REQUIRE(addr.has_value());
    CHECK(addr->is_ipv4());
    CHECK(addr->port() != 0);
    CHECK(addr->to_string() == "127.0.0.1:" + std::to_string(addr->port()));
    CHECK(listener.option(SOL_SOCKET, SO_REUSEADDR).value() != 0);
}

TEST_CASE("binding a port in use fails with EADDRINUSE unless both listeners use SO_REUSEPORT") {
    net::listen_options shared;
    shared.reuse_port = true;
    tcp_listener first = test::loopback_listener(shared);
    socket_address addr = first.local_address().value();
    result<tcp_listener> second = tcp_listener::bind(addr, shared);
    CHECK(second.has_value());
    result<tcp_listener> third = tcp_listener::bind(addr);
    CHECK(third == std::errc::address_in_use);
}

TEST_CASE("a listener on IPv6 loopback works like one on IPv4") {
    result<tcp_listener> l = tcp_listener::bind(socket_address::loopback_v6(0));
    if (!l) {
        MESSAGE("IPv6 loopback unavailable: ", l.error().message());
        return;
    }
    socket_address addr = l->local_address().value();
    CHECK(addr.is_ipv6());
    auto run = [](tcp_listener* listener, socket_address a) -> task<void> {
        result<tcp_stream> c = co_await tcp_stream::connect(a);
        REQUIRE(c.has_value());
        result<tcp_stream> s = co_await listener->accept();
        REQUIRE(s.has_value());
        co_await echo_byte(&*c, &*s, '6');
    };
    sync_wait(run(&*l, addr));
}

TEST_CASE("accept takes connections one at a time") { sync_wait(accept_one_at_a_time()); }

TEST_CASE("multishot accept takes 1,000 connections from one SQE") {
    net::accept_stream_stats stats = sync_wait(multishot_accept_many(1000, 64));
    CHECK(stats.accepted == 1000);
    CHECK(stats.backoffs == 0);
    MESSAGE("arms: ", stats.arms, ", pauses: ", stats.pauses);
}

TEST_CASE("multishot accept pauses when its queue is full and loses no connection") {
    io_context ctx;
    // The connector runs ahead of the acceptor: with room for 2, the stream must pause.
    auto paced = []() -> task<net::accept_stream_stats> {
        tcp_listener listener = test::loopback_listener();
        socket_address addr = listener.local_address().value();
        tcp_accept_stream stream = listener.accept_multishot(2);
        std::vector<tcp_stream> clients;
        std::vector<tcp_stream> servers;
        co_await connect_n(addr, 1, &clients);
        co_await accept_n(&stream, 1, &servers); // the stream is armed from here on
        co_await connect_n(addr, 40, &clients);  // nobody takes them: the queue fills
        auto paused = [&stream] { return stream.stats().pauses > 0; };
        task<void> wait = test::turn_until(paused, 10'000);
        co_await std::move(wait);
        co_await accept_n(&stream, 40, &servers);
        co_await ping_all(&clients, &servers);
        co_return stream.stats();
    };
    net::accept_stream_stats stats = sync_wait(ctx, paced());
    CHECK(stats.accepted == 41);
    CHECK(stats.pauses >= 1);
    CHECK(stats.arms >= 2);
}

TEST_CASE("closing the listener ends its accept stream with ECANCELED, for good") {
    std::error_code error = sync_wait(next_after_close());
    CHECK(error == std::errc::operation_canceled);
}

TEST_CASE("cancelling a consumer waiting in next() leaves the accept stream usable") {
    sync_wait(next_cancelled_by_timeout());
}

TEST_CASE("EMFILE: the accept stream backs off, keeps serving, and accepts once fds are free") {
    emfile_report r = sync_wait(emfile_backoff());
    CHECK(r.during.backoffs >= 1);
    CHECK(r.after.accepted == 1);
    // Backing off means waiting 10 ms, then 20, 40, ... 100 ms between attempts: a handful of
    // arms, never one per loop turn.
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.starved_for).count();
    CAPTURE(ms);
    CHECK(r.after.arms <= 3 + static_cast<std::uint64_t>(ms) / 10);
    CHECK(r.after.backoffs <= 2 + static_cast<std::uint64_t>(ms) / 10);
}

TEST_CASE("an accept stream destroyed while armed closes what it queued and leaks nothing") {
    io_context ctx;
    auto run = []() -> task<void> {
        tcp_listener listener = test::loopback_listener();
        socket_address addr = listener.local_address().value();
        std::vector<tcp_stream> clients;
        std::vector<tcp_stream> servers;
        {
            tcp_accept_stream stream = listener.accept_multishot();
            co_await connect_n(addr, 1, &clients);
            co_await accept_n(&stream, 1, &servers);
            co_await connect_n(addr, 3, &clients); // accepted into the queue, never claimed
            auto queued = [&stream] { return stream.stats().accepted == 4; };
            task<void> wait = test::turn_until(queued, 10'000);
            co_await std::move(wait);
        } // orphaned: cancel in flight, queued fds closed when it is freed
        result<void> y = co_await nop();
        y.value();
        // The clients whose server side was queued see EOF: those fds were closed.
        for (std::size_t i = 1; i < clients.size(); ++i) {
            char b = 0;
            result<std::size_t> n = co_await clients[i].recv_some(std::span<char>(&b, 1));
            CHECK(n.value() == 0);
        }
    };
    sync_wait(ctx, run());
    // One more turn delivers the cancelled accept's final CQE.
    auto settle = []() -> task<void> {
        result<void> y = co_await nop();
        y.value();
    };
    sync_wait(ctx, settle());
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("a one-shot accept reports EMFILE as it comes (only the accept stream backs off)") {
    CHECK(sync_wait(accept_while_out_of_fds()) == std::errc::too_many_files_open);
}

TEST_CASE("closing the listener cancels a pending one-shot accept") {
    CHECK(sync_wait(accept_cancelled_by_close()) == std::errc::operation_canceled);
}
