// SPDX-License-Identifier: MIT
// stream_socket's vectored send (send_some/send_all over iovecs) and basic_socket::cancel():
// byte-exact delivery through partial sends that end inside an iovec, cancellation, and a socket
// whose ops were cancelled staying open and usable.
#include <corio/net/socket.hpp>

#include <corio/net/tcp_stream.hpp>
#include <corio/net/unix_socket.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/when_all.hpp>
#include "tests/net/net_support.hpp"

#include <doctest/doctest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using net::unix_stream;

namespace {

/// Iovecs over a source buffer in scrambled order: segment i of the stream lies *before*
/// segment i - 1 in memory, with a gap between them, so an op that sent from the wrong base or
/// ran on past an iovec's end would send bytes the expected stream does not contain.
struct gather {
    std::vector<std::byte> source;   // what the iovecs point into
    std::vector<iovec> iov;          // the segments, in stream order
    std::vector<std::byte> expected; // their concatenation: what the peer must read
};

/// Segment lengths: some empty, most 1..600 bytes (many per send), every 97th one over 64 KiB
/// (larger than the small send buffer lets one send move, so some send ends inside it), and
/// make_gather makes the last one large too.
std::size_t segment_length(std::size_t i) {
    if (i % 7 == 3)
        return 0;
    if (i % 97 == 0)
        return 65536 + i;
    return (i * 131) % 600 + 1;
}

gather make_gather(std::size_t count, std::uint64_t seed) {
    gather g;
    std::vector<std::size_t> lengths(count);
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
        // The last one large too: the tail of a split iovec can also be the last thing to send.
        lengths[i] = i + 1 == count ? 70001 : segment_length(i);
        total += lengths[i] + 1; // one byte of gap after each
    }
    g.source = test::make_payload(seed, total);
    g.iov.resize(count);
    std::size_t at = 0;
    for (std::size_t i = count; i-- > 0;) { // the last segment first in memory
        g.iov[i] = iovec{g.source.data() + at, lengths[i]};
        at += lengths[i] + 1;
    }
    for (const iovec& v : g.iov) {
        const auto* p = static_cast<const std::byte*>(v.iov_base);
        g.expected.insert(g.expected.end(), p, p + v.iov_len);
    }
    return g;
}

[[nodiscard]] bool same_iovecs(const std::vector<iovec>& a, const std::vector<iovec>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(iovec)) == 0;
}

/// Bytes waiting in `fd`'s receive queue.
[[nodiscard]] int queued_bytes(int fd) {
    int n = 0;
    REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
    return n;
}

/// A connected Unix pair whose first socket has the smallest send buffer the kernel allows
/// (about 4.5 KiB; a Unix stream socket's bytes count against it until the peer reads them).
std::pair<unix_stream, unix_stream> small_buffer_pair() {
    auto pair = unix_stream::pair();
    REQUIRE(pair.has_value());
    REQUIRE(pair->first.set_send_buffer_size(1).has_value());
    return std::move(*pair);
}

/// Reads until EOF.
task<std::vector<std::byte>> read_to_eof(net::stream_socket* s) {
    std::vector<std::byte> got;
    std::vector<std::byte> buffer(64 * 1024);
    for (;;) {
        result<std::size_t> n = co_await s->recv_some(buffer);
        REQUIRE(n.has_value());
        if (*n == 0)
            break;
        got.insert(got.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    co_return got;
}

struct op_outcome {
    int resumed = 0;                            // times the awaiter resumed
    result<std::size_t> value = std::size_t{0}; // what it resumed with
};

task<void> send_gather(net::stream_socket* s, const std::vector<iovec>* iov, op_outcome* out) {
    result<std::size_t> r = co_await s->send_all(std::span<const iovec>(*iov));
    ++out->resumed;
    out->value = r;
}

task<void> recv_into(net::stream_socket* s, std::string* buffer, op_outcome* out) {
    result<std::size_t> r = co_await s->recv_some(std::span<char>(*buffer));
    ++out->resumed;
    out->value = r;
}

/// Yields through the ring until `n` more ops than `before` are in flight.
task<void> wait_in_flight(std::size_t before, std::size_t n) {
    io_context& ctx = io_context::current();
    auto reached = [&ctx, before, n] { return ctx.stats().ops_in_flight >= before + n; };
    task<void> waiting = test::turn_until(reached);
    co_await std::move(waiting);
}

// ----- vectored send -----

/// send_all of the iovecs, then FIN (so that the reader sees where the stream ends).
task<result<std::size_t>> send_gather_then_shutdown(net::stream_socket* s,
                                                    const std::vector<iovec>* iov) {
    result<std::size_t> sent = co_await s->send_all(std::span<const iovec>(*iov));
    result<void> shut = co_await s->shutdown(SHUT_WR);
    REQUIRE(shut.has_value());
    co_return sent;
}

struct gather_result {
    result<std::size_t> sent = std::size_t{0}; // what send_all resumed with
    std::vector<std::byte> got;                // the bytes the peer read, to EOF
    int send_buffer = 0;                       // the sender's SO_SNDBUF as the kernel set it
    std::uint64_t completions = 0;             // CQEs during the transfer
};

task<gather_result> send_all_gather_through_small_buffer(const gather* g) {
    auto [a, b] = small_buffer_pair();
    gather_result out;
    out.send_buffer = a.send_buffer_size().value();
    io_context& ctx = io_context::current();
    std::uint64_t completed_before = ctx.stats().completed;
    auto both = when_all(send_gather_then_shutdown(&a, &g->iov), read_to_eof(&b));
    auto [sent, got] = co_await both;
    out.sent = sent;
    out.got = std::move(got);
    out.completions = ctx.stats().completed - completed_before;
    CHECK(ctx.stats().ops_in_flight == 0);
    co_return out;
}

task<std::vector<std::byte>> send_all_gather_over_tcp(const gather* g) {
    auto [client, server] = co_await test::tcp_pair();
    REQUIRE(client.set_send_buffer_size(4096).has_value());
    auto both = when_all(send_gather_then_shutdown(&client, &g->iov), read_to_eof(&server));
    auto [sent, got] = co_await both;
    CHECK(sent.value() == g->expected.size());
    co_return got;
}

task<std::string> send_some_gather(bool under_deadline) {
    auto pair = unix_stream::pair();
    REQUIRE(pair.has_value());
    auto& [a, b] = *pair;
    std::string head = "HTTP/1.1 200 OK\r\n\r\n";
    std::string body = "<p>hello</p>";
    std::string tail = "!";
    std::vector<iovec> iov = {{head.data(), head.size()},
                              {body.data(), body.size()},
                              {nullptr, 0},
                              {tail.data(), tail.size()}};
    std::size_t total = head.size() + body.size() + tail.size();
    result<std::size_t> sent = std::size_t{0};
    if (under_deadline) {
        // The op is moved into the timed pair before it is prepared: its msghdr must follow.
        auto sending = with_timeout(a.send_some(std::span<const iovec>(iov)), 10s);
        sent = co_await sending;
    } else {
        auto sending = a.send_some(std::span<const iovec>(iov));
        sent = co_await sending;
    }
    REQUIRE(sent.has_value());
    CHECK(*sent == total); // a small message fits the socket buffer: all of it in one go
    std::string got(total, '\0');
    result<std::size_t> n = co_await b.recv_exact(std::span<char>(got));
    CHECK(n.value() == total);
    co_return got;
}

// ----- cancellation of a vectored send_all -----

struct cancelled_send {
    op_outcome send;            // the send_all's awaiter
    std::vector<std::byte> got; // what the peer read afterwards, to EOF
    std::size_t in_flight = 0;  // ops in flight after the join
};

task<cancelled_send> cancel_send_all_midway(const gather* g) {
    auto [a, b] = small_buffer_pair();
    cancelled_send out;
    io_context& ctx = io_context::current();
    std::size_t before = ctx.stats().ops_in_flight;
    {
        task_scope scope;
        scope.spawn(send_gather(&a, &g->iov, &out.send));
        // Bytes reached the peer and the op is still in flight: it is midway, and it cannot
        // finish (the peer does not read, and the stream is far larger than the buffer).
        int peer = b.native_handle();
        auto midway = [&ctx, before, peer] {
            return ctx.stats().ops_in_flight > before && queued_bytes(peer) > 0;
        };
        task<void> waiting = test::turn_until(midway);
        co_await std::move(waiting);
        scope.request_stop();
        co_await scope.join();
    }
    out.in_flight = ctx.stats().ops_in_flight - before;
    // A few more turns: a second resumption would show up now.
    for (int i = 0; i < 3; ++i) {
        result<void> r = co_await nop();
        r.value();
    }
    result<void> shut = co_await a.shutdown(SHUT_WR);
    REQUIRE(shut.has_value());
    out.got = co_await read_to_eof(&b);
    co_return out;
}

// ----- basic_socket::cancel() -----

struct cancelled_recv {
    op_outcome recv;                                // the recv that cancel() woke
    op_outcome other;                               // a recv on the peer: cancel() leaves it be
    result<std::size_t> cancelled = std::size_t{0}; // what cancel() resumed with
    bool open_after = false;                        // the socket was still open after the cancel
    std::string later;                              // what a recv after the cancel read
    std::string other_got;                          // what the untouched recv read
    std::string reply;                              // what the peer read from it afterwards
};

task<cancelled_recv> cancel_wakes_pending_recv() {
    auto [client, server] = co_await test::tcp_pair();
    cancelled_recv out;
    io_context& ctx = io_context::current();
    std::size_t before = ctx.stats().ops_in_flight;
    std::string stale(16, '\0');
    std::string other(16, '\0');
    task_scope scope;
    scope.spawn(recv_into(&server, &stale, &out.recv));
    scope.spawn(recv_into(&client, &other, &out.other));
    co_await wait_in_flight(before, 2);

    out.cancelled = co_await server.cancel(); // from another task than the one in recv
    out.open_after = server.is_open();
    // The untouched recv on the client still waits: the server's reply completes it.
    result<std::size_t> replied = co_await server.send_all(std::string("reply"));
    REQUIRE(replied.has_value());
    co_await scope.join();
    out.other_got = other.substr(0, out.other.value.value_or(0));
    // One recv may take only part of it (always possible; common under CORIO_FAULTS): the rest
    // is still in the socket.
    if (out.other_got.size() < 5) {
        std::string rest(5 - out.other_got.size(), '\0');
        result<std::size_t> more = co_await client.recv_exact(std::span<char>(rest));
        REQUIRE(more.has_value());
        out.other_got += rest.substr(0, *more);
    }
    CHECK(stale == std::string(16, '\0')); // the cancelled recv consumed nothing

    // The socket is usable in both directions.
    result<std::size_t> sent = co_await client.send_all(std::string("keep-alive"));
    REQUIRE(sent.has_value());
    std::string later(10, '\0');
    result<std::size_t> n = co_await server.recv_exact(std::span<char>(later));
    REQUIRE(n.has_value());
    out.later = later.substr(0, *n);
    result<std::size_t> answered = co_await server.send_all(std::string("answer"));
    REQUIRE(answered.has_value());
    std::string reply(6, '\0');
    result<std::size_t> m = co_await client.recv_exact(std::span<char>(reply));
    REQUIRE(m.has_value());
    out.reply = reply.substr(0, *m);
    CHECK(ctx.stats().ops_in_flight == before);
    co_return out;
}

task<result<std::size_t>> send_text_then_shutdown(net::stream_socket* s, std::string text) {
    result<std::size_t> sent = co_await s->send_all(text);
    result<void> shut = co_await s->shutdown(SHUT_WR);
    REQUIRE(shut.has_value());
    co_return sent;
}

struct cancelled_both {
    op_outcome recv;                                // a recv waiting for data
    op_outcome send;                                // a send_all waiting for room
    result<std::size_t> cancelled = std::size_t{0}; // what cancel() resumed with
    std::vector<std::byte> filled;                  // bytes queued before the send_all
    std::vector<std::byte> got;                     // what the peer read afterwards, to EOF
};

/// A recv and a vectored send_all in flight on one socket at once: the send buffer is filled
/// first, so the send_all cannot move a byte before the cancel.
task<cancelled_both> cancel_counts_every_op(const gather* g) {
    auto [a, b] = small_buffer_pair();
    cancelled_both out;
    std::vector<std::byte> fill = test::make_payload(5, 4096);
    for (;;) {
        ssize_t n = ::send(a.native_handle(), fill.data(), fill.size(), MSG_DONTWAIT);
        if (n < 0) {
            REQUIRE(errno == EAGAIN);
            break;
        }
        out.filled.insert(out.filled.end(), fill.begin(), fill.begin() + n);
    }
    io_context& ctx = io_context::current();
    std::size_t before = ctx.stats().ops_in_flight;
    std::string never(8, '\0');
    {
        task_scope scope;
        scope.spawn(recv_into(&a, &never, &out.recv));
        scope.spawn(send_gather(&a, &g->iov, &out.send));
        co_await wait_in_flight(before, 2);
        out.cancelled = co_await a.cancel();
        co_await scope.join();
    }
    CHECK(ctx.stats().ops_in_flight == before);
    // Still open: a send after the cancel arrives behind the bytes queued before it.
    auto both = when_all(send_text_then_shutdown(&a, "after"), read_to_eof(&b));
    auto [sent, got] = co_await both;
    CHECK(sent.value() == 5);
    out.got = std::move(got);
    co_return out;
}

task<result<std::size_t>> cancel_with_nothing_in_flight() {
    auto [client, server] = co_await test::tcp_pair();
    result<std::size_t> n = co_await server.cancel();
    // And the socket is untouched.
    result<std::size_t> sent = co_await client.send_all(std::string("x"));
    REQUIRE(sent.has_value());
    char c = 0;
    result<std::size_t> got = co_await server.recv_exact(std::span<char>(&c, 1));
    CHECK(got.value() == 1);
    CHECK(c == 'x');
    co_return n;
}

} // namespace

TEST_CASE("vectored send_all of 3000 scrambled iovecs through a tiny send buffer arrives intact") {
    const gather g = make_gather(3000, 11);
    const std::vector<iovec> before = g.iov;
    gather_result r = sync_wait(send_all_gather_through_small_buffer(&g));
    // Each send moves at most about a send buffer's worth: every segment over 64 KiB is split
    // by some send that ends inside it, and 3000 iovecs need more than one sendmsg anyway.
    REQUIRE(r.send_buffer < 65536);
    CHECK(r.completions > g.expected.size() / static_cast<std::size_t>(2 * r.send_buffer));
    CHECK(r.sent.value() == g.expected.size());
    REQUIRE(r.got.size() == g.expected.size());
    CHECK(std::memcmp(r.got.data(), g.expected.data(), g.expected.size()) == 0);
    CHECK(same_iovecs(g.iov, before)); // the caller's iovec array is read, never written
}

TEST_CASE("vectored send_all through a TCP loopback pair delivers the iovecs in order") {
    const gather g = make_gather(500, 12);
    std::vector<std::byte> got = sync_wait(send_all_gather_over_tcp(&g));
    REQUIRE(got.size() == g.expected.size());
    CHECK(std::memcmp(got.data(), g.expected.data(), got.size()) == 0);
}

TEST_CASE("vectored send_all of only empty iovecs completes at once with 0") {
    sync_wait([]() -> task<void> {
        auto pair = unix_stream::pair();
        REQUIRE(pair.has_value());
        std::vector<iovec> empty = {{nullptr, 0}, {nullptr, 0}};
        auto sending = pair->first.send_all(std::span<const iovec>(empty));
        CHECK(sending.await_ready()); // settled without the ring
        result<std::size_t> sent = co_await sending;
        CHECK(sent.value() == 0);
        auto none = pair->first.send_all(std::span<const iovec>());
        result<std::size_t> sent_none = co_await none;
        CHECK(sent_none.value() == 0);
    }());
}

TEST_CASE("send_some over iovecs sends their concatenation, also under with_timeout") {
    CHECK(sync_wait(send_some_gather(false)) == "HTTP/1.1 200 OK\r\n\r\n<p>hello</p>!");
    CHECK(sync_wait(send_some_gather(true)) == "HTTP/1.1 200 OK\r\n\r\n<p>hello</p>!");
}

TEST_CASE("a vectored send_all cancelled midway by its stop token resumes once with ECANCELED") {
    const gather g = make_gather(3000, 13);
    cancelled_send r = sync_wait(cancel_send_all_midway(&g));
    CHECK(r.send.resumed == 1);
    CHECK(r.send.value == std::errc::operation_canceled);
    CHECK(r.in_flight == 0);
    // What went out before the cancel is an exact prefix of the stream, and not all of it.
    CHECK(r.got.size() > 0);
    CHECK(r.got.size() < g.expected.size());
    CHECK(std::memcmp(r.got.data(), g.expected.data(), r.got.size()) == 0);
}

TEST_CASE("cancel() wakes a pending recv with ECANCELED and the socket stays open and usable") {
    cancelled_recv r = sync_wait(cancel_wakes_pending_recv());
    CHECK(r.cancelled.value() == 1);
    CHECK(r.recv.resumed == 1);
    CHECK(r.recv.value == std::errc::operation_canceled);
    CHECK(r.open_after);
    CHECK(r.other.resumed == 1); // the peer's recv was not touched: it got (some of) the reply
    CHECK(r.other.value.value() >= 1);
    CHECK(r.other_got == "reply");
    CHECK(r.later == "keep-alive");
    CHECK(r.reply == "answer");
}

TEST_CASE("cancel() ends every op in flight on the socket and returns how many it cancelled") {
    const gather g = make_gather(200, 14);
    cancelled_both r = sync_wait(cancel_counts_every_op(&g));
    CHECK(r.cancelled.value() == 2);
    CHECK(r.recv.resumed == 1);
    CHECK(r.recv.value == std::errc::operation_canceled);
    CHECK(r.send.resumed == 1);
    CHECK(r.send.value == std::errc::operation_canceled);
    // The peer reads the fill, then "after": the cancelled send_all moved nothing.
    REQUIRE(!r.filled.empty());
    REQUIRE(r.got.size() == r.filled.size() + 5);
    CHECK(std::memcmp(r.got.data(), r.filled.data(), r.filled.size()) == 0);
    CHECK(test::text_of(std::span<const std::byte>(r.got).subspan(r.filled.size())) == "after");
}

TEST_CASE("cancel() with nothing in flight returns 0") {
    CHECK(sync_wait(cancel_with_nothing_in_flight()).value() == 0);
}

TEST_CASE("cancel() on a socket that is not open returns 0 without the ring") {
    sync_wait([]() -> task<void> {
        net::tcp_stream never_opened;
        auto cancelling = never_opened.cancel();
        CHECK(cancelling.await_ready());
        result<std::size_t> n = co_await cancelling;
        CHECK(n.value() == 0);
    }());
}
