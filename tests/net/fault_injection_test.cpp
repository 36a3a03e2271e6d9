// SPDX-License-Identifier: MIT
// Sockets under the fault-injection mode: short counts on stream sockets only, errors rewritten
// from a NOP without consuming anything, fatal kinds only when asked, and the library absorbing
// every transient kind.
#include <corio/runtime/io_context.hpp>

#include <corio/net/buffer_ring.hpp>
#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/net/udp_socket.hpp>
#include <corio/net/unix_socket.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include "tests/net/net_support.hpp"
#include "tests/support/faults.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using namespace corio;
using corio::test::with_faults;
using corio::test::first_mismatch;
using corio::test::make_payload;
using corio::test::tcp_pair;

namespace {

int bytes_queued(int fd) {
    int n = -1;
    REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
    return n;
}

struct short_report {
    int recvs = 0;         // recv_some calls made
    int short_ones = 0;    // of those, the ones that returned less than was waiting
    std::size_t moved = 0; // bytes received in all
    bool intact = false;   // every byte in order
};

/// The peer queues `size` bytes at once (plain syscall); the stream then takes them with
/// recv_some into a buffer that could hold them all.
task<short_report> recv_some_everything(std::size_t size) {
    auto [client, server] = co_await tcp_pair();
    std::vector<std::byte> payload = make_payload(11, size);
    REQUIRE(::send(client.native_handle(), payload.data(), payload.size(), 0) ==
            static_cast<ssize_t>(size));
    short_report out;
    std::vector<std::byte> got(size);
    while (out.moved < size) {
        int waiting = bytes_queued(server.native_handle());
        std::span<std::byte> rest = std::span(got).subspan(out.moved);
        result<std::size_t> n = co_await server.recv_some(rest);
        REQUIRE(n.has_value());
        REQUIRE(*n > 0);
        ++out.recvs;
        if (*n < std::min<std::size_t>(rest.size(), static_cast<std::size_t>(waiting)))
            ++out.short_ones;
        out.moved += *n;
    }
    out.intact = first_mismatch(got, 11) == size;
    co_return out;
}

struct transfer_report {
    std::size_t sent = 0;     // what send_all reported
    std::size_t received = 0; // what recv_exact reported
    bool intact = false;      // every byte in order
};

task<void> send_everything(net::tcp_stream* s, const std::vector<std::byte>* payload,
                           std::size_t* sent) {
    result<std::size_t> n = co_await s->send_all(*payload);
    REQUIRE(n.has_value());
    *sent = *n;
}

task<transfer_report> send_all_recv_exact(std::size_t size) {
    auto [client, server] = co_await tcp_pair();
    std::vector<std::byte> payload = make_payload(5, size);
    std::vector<std::byte> got(size);
    transfer_report out;
    task_scope scope;
    scope.spawn(send_everything(&client, &payload, &out.sent));
    result<std::size_t> n = co_await server.recv_exact(got);
    co_await scope.join();
    REQUIRE(n.has_value());
    out.received = *n;
    out.intact = first_mismatch(got, 5) == size;
    co_return out;
}

struct error_report {
    std::error_code recv_error; // what recv_some resumed with
    std::error_code send_error; // what send_some resumed with
    int still_queued = 0;       // bytes left in the receiving socket afterwards
};

task<error_report> recv_and_send_once() {
    auto [client, server] = co_await tcp_pair();
    REQUIRE(::send(client.native_handle(), "hello", 5, 0) == 5);
    error_report out;
    char buffer[16];
    result<std::size_t> r = co_await server.recv_some(std::span<char>(buffer));
    out.recv_error = r ? std::error_code() : r.error();
    result<std::size_t> s = co_await server.send_some(std::string_view("reply"));
    out.send_error = s ? std::error_code() : s.error();
    out.still_queued = bytes_queued(server.native_handle());
    co_return out;
}

struct datagram_report {
    std::size_t size = 0;  // the datagram's size as received
    bool truncated = true; // MSG_TRUNC
};

task<datagram_report> one_datagram() {
    net::udp_socket a = net::udp_socket::bind(net::socket_address::loopback_v4(0)).value();
    net::udp_socket b = net::udp_socket::bind(net::socket_address::loopback_v4(0)).value();
    std::string text(1000, 'd');
    result<std::size_t> sent = co_await a.send_to(text, b.local_address().value());
    REQUIRE(sent.has_value());
    std::vector<std::byte> buffer(2000);
    result<net::datagram> got = co_await b.recv_from(buffer);
    REQUIRE(got.has_value());
    co_return datagram_report{got->size, got->truncated};
}

struct exchange_report {
    std::size_t sent = 0;     // what send_all reported
    std::size_t received = 0; // what recv_exact reported
    bool intact = false;      // every byte in order
    std::string echoed;       // what recv_some took of the peer's reply, in order
};

task<void> reply_in_pieces(net::tcp_stream* s, int pieces) {
    for (int i = 0; i < pieces; ++i) {
        std::string piece = "piece " + std::to_string(i) + ";";
        std::size_t done = 0;
        while (done < piece.size()) {
            result<std::size_t> n = co_await s->send_some(std::string_view(piece).substr(done));
            REQUIRE(n.has_value());
            done += *n;
        }
    }
    result<void> shut = co_await s->shutdown();
    REQUIRE(shut.has_value());
}

/// Connects, accepts, moves `size` bytes one way with send_all/recv_exact, and `pieces` small
/// messages the other way with send_some/recv_some until EOF.
task<exchange_report> connect_and_exchange(std::size_t size, int pieces) {
    auto [client, server] = co_await tcp_pair();
    exchange_report out;
    std::vector<std::byte> payload = make_payload(21, size);
    std::vector<std::byte> got(size);
    {
        task_scope scope;
        scope.spawn(send_everything(&client, &payload, &out.sent));
        result<std::size_t> n = co_await server.recv_exact(got);
        co_await scope.join();
        REQUIRE(n.has_value());
        out.received = *n;
        out.intact = first_mismatch(got, 21) == size;
    }
    task_scope scope;
    scope.spawn(reply_in_pieces(&server, pieces));
    char buffer[64];
    for (;;) {
        result<std::size_t> n = co_await client.recv_some(std::span<char>(buffer));
        REQUIRE(n.has_value());
        if (*n == 0)
            break;
        out.echoed.append(buffer, *n);
    }
    co_await scope.join();
    co_return out;
}

std::string expected_pieces(int pieces) {
    std::string out;
    for (int i = 0; i < pieces; ++i)
        out += "piece " + std::to_string(i) + ";";
    return out;
}

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

struct timed_report {
    std::string got;      // what the recv under a deadline returned
    std::error_code idle; // what a recv under a deadline on an idle socket returned
};

task<timed_report> recv_with_deadlines() {
    auto [client, server] = co_await tcp_pair();
    REQUIRE(::send(client.native_handle(), "ping", 4, 0) == 4);
    timed_report out;
    char buffer[16];
    auto first = with_timeout(server.recv_some(std::span<char>(buffer)), std::chrono::seconds(10));
    result<std::size_t> n = co_await first;
    REQUIRE(n.has_value());
    out.got.assign(buffer, *n);
    auto second =
        with_timeout(server.recv_some(std::span<char>(buffer)), std::chrono::milliseconds(20));
    result<std::size_t> idle = co_await second;
    out.idle = idle ? std::error_code() : idle.error();
    co_return out;
}

struct stream_report {
    std::string got;          // every byte the multishot stream delivered, until EOF
    unsigned available = 0;   // buffers back in the ring at the end
    std::size_t accepted = 0; // connections the multishot accept handed out
};

task<void> send_pieces_then_shut(net::tcp_stream* s, int pieces) {
    for (int i = 0; i < pieces; ++i) {
        std::string piece = "piece " + std::to_string(i) + ";";
        result<std::size_t> n = co_await s->send_all(piece);
        REQUIRE(n.has_value());
        result<void> r = co_await nop(); // one piece per turn: many multishot completions
        r.value();
    }
    result<void> shut = co_await s->shutdown();
    REQUIRE(shut.has_value());
}

task<stream_report> multishot_accept_and_recv(int connections, int pieces) {
    net::tcp_listener listener = test::loopback_listener();
    net::socket_address addr = listener.local_address().value();
    net::tcp_listener::accept_stream accepts = listener.accept_multishot();
    io_context& ctx = io_context::current();
    net::buffer_ring ring(ctx, 8, 64);
    stream_report out;
    for (int c = 0; c < connections; ++c) {
        result<net::tcp_stream> client = co_await net::tcp_stream::connect(addr);
        REQUIRE(client.has_value());
        result<net::tcp_stream> server = co_await accepts.next();
        REQUIRE(server.has_value());
        ++out.accepted;
        net::recv_stream rs = server->recv_multishot(ring);
        task_scope scope;
        scope.spawn(send_pieces_then_shut(&*client, pieces));
        for (;;) {
            result<net::buffer_lease> lease = co_await rs.next();
            REQUIRE(lease.has_value());
            if (lease->empty())
                break;
            out.got += test::text_of(lease->data());
        }
        co_await scope.join();
    }
    out.available = ring.available();
    co_return out;
}

struct cancel_report {
    int resumed = 0;                                // times the recv resumed
    std::error_code recv;                           // what it resumed with
    result<std::size_t> cancelled = std::size_t{0}; // what cancel() said
};

task<void> recv_once(net::tcp_stream* s, cancel_report* out) {
    char buffer[8];
    result<std::size_t> n = co_await s->recv_some(std::span<char>(buffer));
    ++out->resumed;
    out->recv = n ? std::error_code() : n.error();
}

task<void> cancel_socket(net::tcp_stream* s, cancel_report* out) {
    out->cancelled = co_await s->cancel();
}

/// A recv and a cancel() of its socket started in the same turn, in that order: the recv's SQE
/// (a NOP under the mode) reaches the kernel before the cancel.
task<cancel_report> recv_then_cancel_same_turn() {
    auto [client, server] = co_await tcp_pair();
    cancel_report out;
    task_scope scope;
    scope.spawn(recv_once(&server, &out));
    scope.spawn(cancel_socket(&server, &out));
    auto resumed = [&out] { return out.resumed > 0; };
    task<void> wait = test::turn_until(resumed, 1000);
    co_await std::move(wait);
    co_await scope.join();
    co_return out;
}

struct blocked_send_report {
    int resumed = 0;                                // times the send_all resumed
    std::error_code send;                           // what it resumed with
    result<std::size_t> cancelled = std::size_t{0}; // what cancel() said
};

task<void> send_all_blocked(net::unix_stream* s, const std::vector<std::byte>* data,
                            blocked_send_report* out) {
    result<std::size_t> n = co_await s->send_all(*data);
    ++out->resumed;
    out->send = n ? std::error_code() : n.error();
}

task<void> cancel_after_one_turn(net::unix_stream* s, blocked_send_report* out) {
    result<void> r = co_await nop(); // completes in the same batch as the send's stand-in
    r.value();
    out->cancelled = co_await s->cancel();
}

/// A send_all that cannot move a byte (the peer's buffer is full) is interrupted; a task whose
/// NOP completed in the same batch cancels the socket's ops before the send_all's waiter could.
task<blocked_send_report> interrupted_send_all_then_cancel() {
    auto pair = net::unix_stream::pair();
    REQUIRE(pair.has_value());
    auto& [a, b] = *pair;
    std::vector<std::byte> fill(4096);
    while (::send(a.native_handle(), fill.data(), fill.size(), MSG_DONTWAIT) > 0) {
    }
    std::vector<std::byte> data = make_payload(3, 1000);
    blocked_send_report out;
    task_scope scope;
    scope.spawn(cancel_after_one_turn(&a, &out)); // its nop goes first in the batch
    scope.spawn(send_all_blocked(&a, &data, &out));
    auto resumed = [&out] { return out.resumed > 0; };
    task<void> wait = test::turn_until(resumed, 1000);
    co_await std::move(wait);
    co_await scope.join();
    co_return out;
}

// ----- an echo server under fatal faults (its own thread and loop; plain blocking clients) -----

task<void> echo_one(net::tcp_stream conn) {
    char buffer[256];
    for (;;) {
        result<std::size_t> n = co_await conn.recv_some(std::span<char>(buffer));
        if (!n || *n == 0)
            break; // ECONNRESET (injected) or EOF: this connection is over
        result<std::size_t> sent = co_await conn.send_all(std::string_view(buffer, *n));
        if (!sent)
            break; // EPIPE or ECONNRESET (injected)
    }
    result<void> closed = co_await conn.close();
    (void)closed;
}

task<void> echo_server(net::tcp_listener* listener, int connections) {
    task_scope handlers;
    for (int i = 0; i < connections; ++i) {
        result<net::tcp_stream> conn = co_await listener->accept();
        REQUIRE(conn.has_value()); // accept gets no fatal fault: the listener must keep going
        handlers.spawn(echo_one(std::move(*conn)));
    }
    co_await handlers.join();
}

/// One blocking client: sends `text`, half-closes, reads to EOF. True when it got `text` back.
bool echo_client(unsigned port, const std::string& text) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    timeval limit{5, 0}; // a server that hangs fails the test instead of hanging it
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<std::uint16_t>(port));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(text.size()));
    ::shutdown(fd, SHUT_WR);
    std::string got;
    char buffer[256];
    for (;;) {
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        // A receive timeout turns any wake-up of this thread into EINTR (the kernel does not
        // restart it), such as io_uring task work for a ring this thread used in an earlier case.
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            REQUIRE(errno == ECONNRESET); // dropped with unread bytes: a reset, never a timeout
        if (n <= 0)
            break;
        got.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return got == text;
}


/// What a transfer cut short by an injected reset reported, and what really moved.
struct cut_report {
    std::error_code error;         // what the op failed with (empty: it finished)
    std::size_t transferred = 0;   // what transferred() said
    std::size_t really_moved = 0;  // what the peer received (send) / the buffer holds (recv)
    bool intact = false;           // the bytes that moved are the payload's first ones, in order
};

/// send_all of `size` bytes under short counts and resets; the peer then drains the socket with
/// plain syscalls (which the fault mode does not touch) and counts what arrived.
task<cut_report> send_all_cut(std::size_t size) {
    auto [client, server] = co_await tcp_pair();
    std::vector<std::byte> payload = make_payload(23, size);
    transfer_result n = co_await client.send_all(payload);
    cut_report out;
    out.error = n.error();
    out.transferred = n.transferred();
    REQUIRE(::shutdown(client.native_handle(), SHUT_WR) == 0);
    std::vector<std::byte> got(size + 1);
    for (;;) {
        ssize_t r = ::recv(server.native_handle(), got.data() + out.really_moved,
                           got.size() - out.really_moved, 0);
        REQUIRE(r >= 0);
        if (r == 0)
            break;
        out.really_moved += static_cast<std::size_t>(r);
    }
    out.intact = first_mismatch(std::span(got).first(out.really_moved), 23) == out.really_moved;
    co_return out;
}

/// recv_exact of `size` bytes the peer queued at once (plain send), under short counts and
/// resets; then the rest is drained with plain recv and must continue the payload.
task<cut_report> recv_exact_cut(std::size_t size) {
    auto [client, server] = co_await tcp_pair();
    std::vector<std::byte> payload = make_payload(29, size);
    REQUIRE(::send(client.native_handle(), payload.data(), size, 0) == static_cast<ssize_t>(size));
    std::vector<std::byte> got(size);
    transfer_result n = co_await server.recv_exact(got);
    cut_report out;
    out.error = n.error();
    out.transferred = n.transferred();
    std::size_t at = n.transferred();
    while (at < size) { // the rest, which the failed recv never consumed
        ssize_t r = ::recv(server.native_handle(), got.data() + at, size - at, 0);
        REQUIRE(r > 0);
        at += static_cast<std::size_t>(r);
    }
    out.really_moved = n.transferred();
    out.intact = first_mismatch(got, 29) == size;
    co_return out;
}
} // namespace

TEST_CASE("kinds=short at rate 1: every recv on a stream socket returns less than was waiting") {
    io_context ctx(with_faults("seed=3,rate=1,kinds=short"));
    short_report r = sync_wait(ctx, recv_some_everything(64 * 1024));
    CHECK(r.intact);
    CHECK(r.moved == 64 * 1024);
    // Each recv asked for fewer bytes than the buffer held (a 1-byte request cannot be shorter).
    CHECK(r.short_ones >= r.recvs - 1);
    CHECK(r.recvs > 1);
}

TEST_CASE("kinds=short at rate 1: recv_exact and send_all still move every byte") {
    io_context ctx(with_faults("seed=4,rate=1,kinds=short"));
    transfer_report r = sync_wait(ctx, send_all_recv_exact(512 * 1024));
    CHECK(r.sent == 512 * 1024);
    CHECK(r.received == 512 * 1024);
    CHECK(r.intact);
    CHECK(ctx.stats().faults_injected > 2);
}

TEST_CASE("send_all cut by a reset midway reports exactly the bytes the peer received") {
    int cut_midway = 0;
    for (int seed = 1; seed <= 12; ++seed) {
        std::string spec = "seed=" + std::to_string(seed) + ",rate=0.5,kinds=short+reset";
        io_context ctx(with_faults(spec.c_str()));
        cut_report r = sync_wait(ctx, send_all_cut(32 * 1024));
        CAPTURE(spec);
        CHECK(r.transferred == r.really_moved);
        CHECK(r.intact);
        if (r.error) {
            bool reset = r.error == std::errc::broken_pipe || r.error == std::errc::connection_reset;
            CHECK(reset);
            CHECK(r.transferred < 32 * 1024);
            cut_midway += r.transferred > 0 ? 1 : 0;
        } else {
            CHECK(r.transferred == 32 * 1024);
        }
    }
    CHECK(cut_midway > 0); // some seeds failed after short sends had moved bytes
}

TEST_CASE("recv_exact cut by a reset midway reports exactly the bytes in the buffer") {
    int cut_midway = 0;
    for (int seed = 1; seed <= 12; ++seed) {
        std::string spec = "seed=" + std::to_string(seed) + ",rate=0.5,kinds=short+reset";
        io_context ctx(with_faults(spec.c_str()));
        cut_report r = sync_wait(ctx, recv_exact_cut(32 * 1024));
        CAPTURE(spec);
        CHECK(r.intact); // the buffer's first transferred() bytes, then the socket's rest
        if (r.error) {
            CHECK(r.error == std::errc::connection_reset);
            CHECK(r.transferred < 32 * 1024);
            cut_midway += r.transferred > 0 ? 1 : 0;
        } else {
            CHECK(r.transferred == 32 * 1024);
        }
    }
    CHECK(cut_midway > 0);
}

TEST_CASE("kinds=reset: a NOP stands in for recv and send, which fail without consuming a byte") {
    io_context ctx(with_faults("seed=5,rate=1,kinds=reset"));
    error_report r = sync_wait(ctx, recv_and_send_once());
    CHECK(r.recv_error == std::errc::connection_reset);
    bool send_failed =
        r.send_error == std::errc::broken_pipe || r.send_error == std::errc::connection_reset;
    CHECK(send_failed);
    CHECK(r.still_queued == 5); // the recv never ran: "hello" is still in the socket
    // Exactly the recv and the send (the connect and accept of tcp_pair are no resets' business).
    CHECK(ctx.stats().faults_injected == 2);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("datagram sockets are never shortened") {
    io_context ctx(with_faults("seed=6,rate=1,kinds=short"));
    datagram_report r = sync_wait(ctx, one_datagram());
    CHECK(r.size == 1000);
    CHECK_FALSE(r.truncated);
    CHECK(ctx.stats().faults_injected == 0);
}

TEST_CASE("kinds=eintr at rate 1: connect, accept, recv and send never show EINTR to the caller") {
    std::size_t fds_before = open_fds();
    {
        io_context ctx(with_faults("seed=12,rate=1,kinds=eintr"));
        exchange_report r = sync_wait(ctx, connect_and_exchange(256 * 1024, 50));
        CHECK(r.sent == 256 * 1024);
        CHECK(r.received == 256 * 1024);
        CHECK(r.intact);
        CHECK(r.echoed == expected_pieces(50));
        io_context_stats st = ctx.stats();
        CHECK(st.faults_injected > 50);
        CHECK(st.restarts == st.faults_injected); // each interrupted op went out once more
        CHECK(st.ops_in_flight == 0);
    }
    // The connect restarted on a fresh socket and closed the interrupted one.
    CHECK(open_fds() == fds_before);
}

TEST_CASE("rate 1 with the default (transient) kinds: the caller sees only real results") {
    for (unsigned seed = 1; seed <= 5; ++seed) {
        std::string spec = "seed=" + std::to_string(seed) + ",rate=1";
        io_context ctx(with_faults(spec.c_str()));
        exchange_report r = sync_wait(ctx, connect_and_exchange(128 * 1024, 20));
        CHECK(r.intact);
        CHECK(r.received == 128 * 1024);
        CHECK(r.echoed == expected_pieces(20)); // no ECONNRESET/EPIPE: fatal kinds are off
        CHECK(ctx.stats().faults_injected > 20);
    }
}

TEST_CASE("kinds=eintr at rate 1: an op under with_timeout is restarted with its link timeout") {
    io_context ctx(with_faults("seed=13,rate=1,kinds=eintr"));
    timed_report r = sync_wait(ctx, recv_with_deadlines());
    CHECK(r.got == "ping");
    CHECK(r.idle == std::errc::timed_out); // the restarted pair still has its deadline
    CHECK(ctx.stats().restarts == ctx.stats().faults_injected);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("kinds=eintr,enobufs at rate 1: multishot accept and recv re-arm and lose nothing") {
    io_context ctx(with_faults("seed=14,rate=1,kinds=eintr,enobufs"));
    stream_report r = sync_wait(ctx, multishot_accept_and_recv(3, 20));
    std::string expected;
    for (int c = 0; c < 3; ++c)
        expected += expected_pieces(20);
    CHECK(r.got == expected);
    CHECK(r.accepted == 3);
    CHECK(r.available == 8);
    CHECK(ctx.stats().faults_injected > 6);
    ctx.run(); // the orphaned accept's cancellation
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("a cancel() right behind an interrupted recv still cancels it, as the kernel would") {
    // Without the mode the cancel finds the recv pending in the kernel. With it, the recv's SQE
    // is a NOP that completes at once: the injector must not let the recv's restart escape the
    // cancel (it would wait forever on an idle socket), and the count must say 1.
    io_context ctx(with_faults("seed=16,rate=1,kinds=eintr"));
    cancel_report r = sync_wait(ctx, recv_then_cancel_same_turn());
    CHECK(r.resumed == 1);
    CHECK(r.recv == std::errc::operation_canceled);
    CHECK(r.cancelled.value() == 1);
    CHECK(ctx.stats().restarts == 2); // only the connect and the accept
}

TEST_CASE("an interrupted send_all goes out again at once, so a cancel() queued next finds it") {
    io_context ctx(with_faults("seed=17,rate=1,kinds=eintr"));
    blocked_send_report r = sync_wait(ctx, interrupted_send_all_then_cancel());
    CHECK(r.resumed == 1);
    CHECK(r.send == std::errc::operation_canceled);
    CHECK(r.cancelled.value() == 1);
    CHECK(ctx.stats().restarts == 1);
}

TEST_CASE("kinds=reset at rate 0.3: an echo server drops the failed connections, serves the rest") {
    constexpr int k_clients = 40;
    net::tcp_listener listener = test::loopback_listener();
    unsigned port = listener.local_address().value().port();
    io_context_stats stats;
    std::thread server([&listener, &stats] {
        io_context ctx(with_faults("seed=19,rate=0.3,kinds=reset"));
        sync_wait(ctx, echo_server(&listener, k_clients));
        stats = ctx.stats();
    });
    int served = 0;
    for (int i = 0; i < k_clients; ++i)
        served += echo_client(port, "message " + std::to_string(i)) ? 1 : 0;
    server.join();
    MESSAGE("served " << served << " of " << k_clients << ", faults " << stats.faults_injected);
    CHECK(served > 0);         // faults did not stop the server...
    CHECK(served < k_clients); // ...but some connections did fail
    CHECK(stats.faults_injected >= static_cast<std::uint64_t>(k_clients - served));
    CHECK(stats.ops_in_flight == 0);
}
