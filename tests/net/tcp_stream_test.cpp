// SPDX-License-Identifier: MIT
// TCP streams over loopback: bulk transfer verified byte for byte, EOF, half-close, resets without
// signals, connect errors and timeouts, close that cancels, and no cross-talk after fd reuse.
#include <corio/net/tcp_stream.hpp>

#include <corio/net/tcp_listener.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/when_all.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/net/net_support.hpp"

#include <doctest/doctest.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using net::socket_address;
using net::tcp_listener;
using net::tcp_stream;
using test::bytes_of;
using test::tcp_pair;
using test::text_of;

namespace {

// The looping ops resume with a transfer_result (the count before an error), the one-SQE ops
// with a plain result; a timeout() of a transfer cannot know the count, so it gives a result.
static_assert(std::is_same_v<decltype(std::declval<tcp_stream&>().send_all(std::string_view())
                                          .await_resume()),
                             transfer_result>);
static_assert(std::is_same_v<decltype(std::declval<tcp_stream&>().recv_exact(std::span<char>())
                                          .await_resume()),
                             transfer_result>);
static_assert(std::is_same_v<decltype(std::declval<tcp_stream&>().recv_some(std::span<char>())
                                          .await_resume()),
                             result<std::size_t>>);
static_assert(std::is_same_v<decltype(timeout(std::declval<tcp_stream&>().send_all(
                                                  std::string_view()),
                                              1s)),
                             task<result<std::size_t>>>);

constexpr std::size_t k_ten_mib = 10 * 1024 * 1024;

task<void> send_pattern(tcp_stream* s, std::uint64_t seed, std::size_t size) {
    std::vector<std::byte> payload = test::make_payload(seed, size);
    result<std::size_t> sent = co_await s->send_all(payload);
    REQUIRE(sent.has_value());
    CHECK(*sent == size);
}

/// Reads `size` bytes with recv_some and checks every byte against the pattern.
task<void> recv_pattern(tcp_stream* s, std::uint64_t seed, std::size_t size) {
    std::vector<std::byte> expected = test::make_payload(seed, size);
    std::vector<std::byte> buffer(256 * 1024);
    std::size_t total = 0;
    while (total < size) {
        result<std::size_t> n = co_await s->recv_some(buffer);
        REQUIRE(n.has_value());
        REQUIRE(*n > 0);
        REQUIRE(total + *n <= size);
        REQUIRE(std::memcmp(buffer.data(), expected.data() + total, *n) == 0);
        total += *n;
    }
    CHECK(total == size);
}

task<void> ten_mib_each_way() {
    auto [client, server] = co_await tcp_pair();
    auto all = when_all(send_pattern(&client, 1, k_ten_mib), recv_pattern(&server, 1, k_ten_mib),
                        send_pattern(&server, 2, k_ten_mib), recv_pattern(&client, 2, k_ten_mib));
    co_await all;
}

task<void> half_close() {
    auto [client, server] = co_await tcp_pair();
    result<std::size_t> sent = co_await client.send_all(std::string("request"));
    REQUIRE(sent.has_value());
    result<void> shut = co_await client.shutdown(SHUT_WR);
    REQUIRE(shut.has_value());

    // The server reads to EOF, then answers on its still-open write side.
    std::string got;
    char buffer[64];
    for (;;) {
        result<std::size_t> n = co_await server.recv_some(std::span<char>(buffer));
        REQUIRE(n.has_value());
        if (*n == 0)
            break;
        got.append(buffer, *n);
    }
    CHECK(got == "request");
    result<std::size_t> answered = co_await server.send_all(std::string("response"));
    REQUIRE(answered.has_value());
    result<void> closed = co_await server.close();
    REQUIRE(closed.has_value());

    std::string reply(8, '\0');
    result<std::size_t> n = co_await client.recv_exact(std::span<char>(reply));
    REQUIRE(n.has_value());
    CHECK(*n == 8);
    CHECK(reply == "response");
    result<std::size_t> eof = co_await client.recv_some(std::span<char>(buffer));
    CHECK(eof.value() == 0);
}

task<void> eof_returns_zero() {
    auto [client, server] = co_await tcp_pair();
    result<void> closed = co_await server.close();
    REQUIRE(closed.has_value());
    char buffer[16];
    result<std::size_t> first = co_await client.recv_some(std::span<char>(buffer));
    result<std::size_t> second = co_await client.recv_some(std::span<char>(buffer));
    CHECK(first.value() == 0);
    CHECK(second.value() == 0);
}

task<void> recv_exact_eof_midway() {
    auto [client, server] = co_await tcp_pair();
    result<std::size_t> sent = co_await server.send_all(std::string("abc"));
    REQUIRE(sent.has_value());
    result<void> shut = co_await server.shutdown();
    REQUIRE(shut.has_value());
    std::string buffer(10, '\0');
    transfer_result n = co_await client.recv_exact(std::span<char>(buffer));
    CHECK_FALSE(n.has_value());
    CHECK(n.error() == io_errc::eof);
    CHECK(n.error().category() == io_category());
    CHECK(n.transferred() == 3);
    CHECK(buffer.substr(0, 3) == "abc");
    // At EOF already: the same error, nothing transferred (the peer closed between messages).
    transfer_result again = co_await client.recv_exact(std::span<char>(buffer));
    CHECK(again.error() == io_errc::eof);
    CHECK(again.transferred() == 0);
}

task<void> recv_exact_across_pieces() {
    auto [client, server] = co_await tcp_pair();
    std::string buffer(12, '\0');
    auto reading = as_task(client.recv_exact(std::span<char>(buffer)));
    auto writing = [](tcp_stream* s) -> task<void> {
        const char* pieces[] = {"hel", "lo, ", "world", "!"};
        for (const char* p : pieces) {
            result<std::size_t> n = co_await s->send_all(std::string(p));
            REQUIRE(n.has_value());
            result<void> y = co_await nop(); // let the reader take each piece separately
            y.value();
        }
    };
    auto both = when_all(std::move(reading), writing(&server));
    auto [n, done] = co_await both;
    CHECK(n.value() == 12);
    CHECK(buffer == "hello, world");
}

struct reset_outcome {
    result<std::size_t> recv = std::size_t{0}; // what the reader saw
    result<std::size_t> send = std::size_t{0}; // what a send after the reset saw
};

task<reset_outcome> peer_reset() {
    auto [client, server] = co_await tcp_pair();
    REQUIRE(server.set_linger_reset().has_value());
    result<void> closed = co_await server.close(); // RST, not FIN
    REQUIRE(closed.has_value());
    reset_outcome out;
    char buffer[16];
    out.recv = co_await client.recv_some(std::span<char>(buffer));
    out.send = co_await client.send_some(std::string_view("after reset"));
    co_return out;
}

task<result<tcp_stream>> connect_to(socket_address addr) {
    result<tcp_stream> s = co_await tcp_stream::connect(addr);
    co_return s;
}

task<result<tcp_stream>> connect_within(socket_address addr, std::chrono::milliseconds limit) {
    result<tcp_stream> s = co_await tcp_stream::connect(addr, limit);
    co_return s;
}

/// Fills a backlog-0 listener until a connect hangs, and returns that connect's outcome.
task<result<tcp_stream>> connect_to_full_backlog(int* attempts) {
    tcp_listener listener = test::loopback_listener({.backlog = 0});
    socket_address addr = listener.local_address().value();
    std::vector<tcp_stream> queued;
    for (*attempts = 1; *attempts <= 16; ++*attempts) {
        result<tcp_stream> s = co_await tcp_stream::connect(addr, 100ms);
        if (!s)
            co_return s;
        queued.push_back(std::move(*s));
    }
    co_return std::errc::connection_refused; // never hung: the test reports it
}

struct cancel_outcome {
    result<std::size_t> stale = std::size_t{0}; // the recv pending when the socket was closed
    std::string fresh;                          // what the new connection's reader got
    int old_fd = -1;                            // the closed socket's fd number
    int new_fd = -1;                            // the fd number the next accept got
};

task<void> pending_recv(tcp_stream* s, std::span<char> buffer, result<std::size_t>* out) {
    *out = co_await s->recv_some(buffer);
}

task<void> close_stream(tcp_stream* s) {
    result<void> closed = co_await s->close();
    REQUIRE(closed.has_value());
}

/// A recv is queued on the server side and, in the same loop turn (before anything reaches the
/// kernel), the socket is closed through the ring. The fd number is then reused by the next
/// accepted connection, whose peer sends a secret: the stale recv must not see it.
task<cancel_outcome> close_with_pending_recv_then_reuse() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    cancel_outcome out;
    result<tcp_stream> c1 = co_await tcp_stream::connect(addr);
    result<tcp_stream> s1 = co_await listener.accept();
    REQUIRE(s1.has_value());
    // The second client's socket exists before the close, so the accept below is the first to
    // want an fd once the number is free.
    result<tcp_stream> c2 = co_await tcp_stream::connect(addr);
    REQUIRE(c2.has_value());
    out.old_fd = s1->native_handle();

    std::string stale_buffer(64, '\0');
    {
        task_scope scope;
        scope.spawn(pending_recv(&*s1, std::span<char>(stale_buffer), &out.stale));
        scope.spawn(close_stream(&*s1)); // same turn: recv SQE then cancel+close SQEs
        co_await scope.join();
    }
    result<tcp_stream> s2 = co_await listener.accept();
    REQUIRE(s2.has_value());
    out.new_fd = s2->native_handle();
    result<std::size_t> sent = co_await c2->send_all(std::string("secret"));
    REQUIRE(sent.has_value());
    std::string fresh(6, '\0');
    result<std::size_t> n = co_await s2->recv_exact(std::span<char>(fresh));
    REQUIRE(n.has_value());
    out.fresh = fresh.substr(0, *n);
    CHECK(stale_buffer == std::string(64, '\0'));
    co_return out;
}

/// A recv already in the kernel (armed, waiting for data) is cancelled by close().
task<cancel_outcome> close_with_recv_in_kernel() {
    auto [client, server] = co_await tcp_pair();
    cancel_outcome out;
    std::string buffer(8, '\0');
    task_scope scope;
    scope.spawn(pending_recv(&server, std::span<char>(buffer), &out.stale));
    io_context& ctx = io_context::current();
    std::size_t before = ctx.stats().ops_in_flight;
    auto in_flight = [&ctx, before] { return ctx.stats().ops_in_flight > before; };
    task<void> wait = test::turn_until(in_flight);
    co_await std::move(wait);
    result<void> closed = co_await server.close();
    REQUIRE(closed.has_value());
    co_await scope.join();
    CHECK_FALSE(server.is_open());
    co_return out;
}

/// Regression: recv_op once had a member named m_flags, hiding io_op::m_flags that timed_op
/// writes, so with_timeout(recv_some(...)) did not compile.
task<result<std::size_t>> recv_with_deadline(std::chrono::milliseconds limit, bool send_first) {
    auto [client, server] = co_await tcp_pair();
    if (send_first) {
        result<std::size_t> sent = co_await server.send_all(std::string("in time"));
        REQUIRE(sent.has_value());
    }
    char buffer[16];
    auto recv = with_timeout(client.recv_some(std::span<char>(buffer)), limit);
    result<std::size_t> n = co_await recv;
    co_return n;
}

/// send_all of 10 MiB to a peer that reads slowly: many partial sends inside one awaiter. While
/// it is in flight no coroutine frame is created for it (the task version made one per call).
task<void> send_all_is_one_frameless_awaiter() {
    auto [client, server] = co_await tcp_pair();
    io_context& ctx = io_context::current();
    std::vector<std::byte> payload = test::make_payload(7, k_ten_mib);
    std::size_t frames_before = ctx.stats().live_tasks;
    std::uint64_t completed_before = ctx.stats().completed;
    auto sending = client.send_all(payload);
    CHECK(ctx.stats().live_tasks == frames_before); // an op, not a task
    auto both = when_all(as_task(std::move(sending)), recv_pattern(&server, 7, k_ten_mib));
    auto [sent, received] = co_await both;
    (void)received;
    CHECK(sent.value() == k_ten_mib);
    // Loopback's socket buffer is far below 10 MiB: the op needed several send SQEs.
    CHECK(ctx.stats().completed - completed_before > 2);
}

/// A send_all to a peer that never reads cannot finish; timeout() ends it with timed_out and
/// leaves nothing in flight.
task<result<std::size_t>> send_all_to_a_peer_that_does_not_read() {
    auto [client, server] = co_await tcp_pair();
    std::vector<std::byte> payload = test::make_payload(3, 32 * 1024 * 1024);
    auto sending = corio::timeout(client.send_all(payload), 50ms);
    result<std::size_t> sent = co_await std::move(sending);
    CHECK(io_context::current().stats().ops_in_flight == 0);
    co_return sent;
}

task<std::pair<bool, bool>> nodelay_both_sides() {
    auto [client, server] = co_await tcp_pair();
    co_return std::pair<bool, bool>(client.no_delay().value(), server.no_delay().value());
}

task<void> options_apply() {
    tcp_listener listener = test::loopback_listener();
    socket_address addr = listener.local_address().value();
    net::tcp_options opts;
    opts.no_delay = false;
    opts.keepalive = true;
    opts.keepalive_idle_s = 30;
    opts.keepalive_interval_s = 5;
    opts.keepalive_count = 3;
    opts.send_buffer_size = 64 * 1024;
    opts.recv_buffer_size = 32 * 1024;
    result<tcp_stream> s = co_await tcp_stream::connect(addr, opts);
    REQUIRE(s.has_value());
    CHECK(s->no_delay().value() == false);
    CHECK(s->keepalive().value() == true);
    CHECK(s->option(IPPROTO_TCP, TCP_KEEPIDLE).value() == 30);
    CHECK(s->option(IPPROTO_TCP, TCP_KEEPINTVL).value() == 5);
    CHECK(s->option(IPPROTO_TCP, TCP_KEEPCNT).value() == 3);
    CHECK(s->send_buffer_size().value() >= 64 * 1024); // the kernel doubles it
    CHECK(s->recv_buffer_size().value() >= 32 * 1024);

    REQUIRE(s->set_no_delay(true).has_value());
    CHECK(s->no_delay().value());
    REQUIRE(s->set_keepalive(false).has_value());
    CHECK_FALSE(s->keepalive().value());
    CHECK(s->peer_address().value() == addr);
    CHECK(s->local_address().value().is_ipv4());
}

} // namespace

TEST_CASE("10 MiB each way at once arrive intact, byte for byte") {
    sync_wait(ten_mib_each_way());
}

TEST_CASE("half-close: shutdown(SHUT_WR) lets the peer read to EOF and still answer") {
    sync_wait(half_close());
}

TEST_CASE("recv returns 0 after the peer closes, and again on the next call") {
    sync_wait(eof_returns_zero());
}

TEST_CASE("recv_exact that meets EOF first fails with io_errc::eof and counts the bytes received") {
    sync_wait(recv_exact_eof_midway());
}

TEST_CASE("recv_exact gathers a message sent in several pieces") {
    sync_wait(recv_exact_across_pieces());
}

TEST_CASE("a peer reset gives ECONNRESET, and sending afterwards fails without SIGPIPE") {
    test::sigpipe_counter sigpipes;
    reset_outcome out = sync_wait(peer_reset());
    CHECK(out.recv == std::errc::connection_reset);
    REQUIRE_FALSE(out.send.has_value());
    bool pipe_or_reset = out.send == std::errc::broken_pipe ||
                         out.send == std::errc::connection_reset;
    CHECK(pipe_or_reset);
    CHECK(sigpipes.count() == 0);
}

TEST_CASE("connect to a port nobody listens on gives ECONNREFUSED") {
    socket_address addr;
    {
        tcp_listener listener = test::loopback_listener();
        addr = listener.local_address().value();
    } // closed: the port is free again, and nothing listens there
    CHECK(sync_wait(connect_to(addr)) == std::errc::connection_refused);
}

TEST_CASE("connect with a timeout to a listener whose backlog is full expires with timed_out") {
    int attempts = 0;
    io_context ctx;
    auto start = std::chrono::steady_clock::now();
    result<tcp_stream> r = sync_wait(ctx, connect_to_full_backlog(&attempts));
    auto elapsed = std::chrono::steady_clock::now() - start;
    CAPTURE(attempts);
    CHECK(r == std::errc::timed_out);
    CHECK(elapsed >= 100ms);
    CHECK(elapsed < 900ms);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("connect with a generous timeout succeeds like a plain connect") {
    tcp_listener listener = test::loopback_listener();
    result<tcp_stream> r = sync_wait(connect_within(listener.local_address().value(), 10s));
    CHECK(r.has_value());
}

TEST_CASE("close cancels a recv queued in the same turn; the reused fd sees no cross-talk") {
    cancel_outcome out = sync_wait(close_with_pending_recv_then_reuse());
    CHECK(out.stale == std::errc::operation_canceled);
    CHECK(out.new_fd == out.old_fd); // the test is only meaningful if the number was reused
    CHECK(out.fresh == "secret");
}

TEST_CASE("close cancels a recv that is already waiting in the kernel") {
    cancel_outcome out = sync_wait(close_with_recv_in_kernel());
    CHECK(out.stale == std::errc::operation_canceled);
}

TEST_CASE("closing a socket that is not open succeeds and does nothing") {
    auto closing = []() -> task<result<void>> {
        tcp_stream never_opened;
        result<void> r = co_await never_opened.close();
        co_return r;
    };
    CHECK(sync_wait(closing()).has_value());
}

TEST_CASE("recv_some under with_timeout expires with timed_out when nothing arrives") {
    io_context ctx;
    CHECK(sync_wait(ctx, recv_with_deadline(10ms, false)) == std::errc::timed_out);
    CHECK(ctx.stats().ops_in_flight == 0);
    result<std::size_t> in_time = sync_wait(ctx, recv_with_deadline(10s, true));
    CHECK(in_time.value() >= 1); // "in time", or a prefix of it: one recv may be short
    CHECK(in_time.value() <= 7);
}

TEST_CASE("send_all moves 10 MiB through partial sends as one awaiter without a coroutine frame") {
    sync_wait(send_all_is_one_frameless_awaiter());
}

TEST_CASE("timeout() ends a send_all to a peer that never reads with timed_out") {
    CHECK(sync_wait(send_all_to_a_peer_that_does_not_read()) == std::errc::timed_out);
}

TEST_CASE("send_all and recv_exact of nothing complete at once with 0") {
    sync_wait([]() -> task<void> {
        auto [client, server] = co_await tcp_pair();
        result<std::size_t> sent = co_await client.send_all(std::span<const std::byte>());
        CHECK(sent.value() == 0);
        result<std::size_t> got = co_await server.recv_exact(std::span<std::byte>());
        CHECK(got.value() == 0);
    }());
}

TEST_CASE("TCP_NODELAY is on for connected and for accepted streams") {
    auto [client, server] = sync_wait(nodelay_both_sides());
    CHECK(client);
    CHECK(server);
}

TEST_CASE("keepalive, buffer sizes and no_delay options are applied and readable") {
    sync_wait(options_apply());
}
