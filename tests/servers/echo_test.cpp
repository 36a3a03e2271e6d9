// SPDX-License-Identifier: MIT
// examples/echo end to end, beyond its smoke test (tests/net/echo_smoke.cpp): what its stats line
// counts. The server is found in this build folder (../../examples/echo, or CORIO_EXAMPLES_DIR).
#include "tests/servers/servers.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <string>

using namespace servers_test;

namespace {

/// Sends to `fd` and never reads (blocking sends, each given 5 s) until a send fails: the errno
/// it failed with (EAGAIN: the 5 s ran out).
int send_until_refused(int fd) {
    timeval five_s{5, 0};
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &five_s, sizeof five_s) == 0);
    const std::string chunk(64 * 1024, 'x');
    for (;;) {
        ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue; // with a send timeout set, the kernel reports a wake-up instead of restarting
        if (n < 0)
            return errno;
    }
}

} // namespace

TEST_CASE("regression: a client that sends and never reads is closed after --idle-timeout-ms and "
          "counted in timed_out (the send-side timeout was not counted: timed_out=0)") {
    for (std::string buffers : {"0", "8"}) {
        CAPTURE(buffers); // --provided-buffers: 0 a buffer per connection, 8 a shared ring
        fixture f(kind::echo);
        server srv(f, {"--idle-timeout-ms", "200", "--provided-buffers", buffers});
        connection c(f, srv.port);
        REQUIRE(c.exchange());
        // Our receive buffer fills with the echoes, echo's send stalls for 200 ms and it closes
        // the connection with our bytes unread: a reset, which fails our next send.
        int err = send_until_refused(c.fd);
        INFO("send failed with errno " << err << " (" << std::strerror(err) << ")");
        CHECK((err == ECONNRESET || err == EPIPE));
        std::string stats = srv.stats();
        INFO(stats);
        CHECK(server::field(stats, "timed_out") == "1");
        CHECK(server::field(stats, "connections") == "0");
        connection other(f, srv.port); // still serving
        CHECK(other.exchange());
    }
}

TEST_CASE("echo reads through a shared ring of 512 buffers of 4 KiB by default; "
          "--provided-buffers 0 gives each connection a 4 KiB buffer of its own") {
    fixture f(kind::echo);
    server ring_default(f, {});
    connection a(f, ring_default.port);
    REQUIRE(a.exchange());
    CHECK(server::field(ring_default.stats(), "bytes_buffered") == "2097152");

    server own(f, {"--provided-buffers", "0"});
    connection b(f, own.port);
    REQUIRE(b.exchange());
    CHECK(server::field(own.stats(), "bytes_buffered") == "4096");
}
