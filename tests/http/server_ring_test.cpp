// SPDX-License-Identifier: MIT
// corio-http reading through a provided-buffer ring (--provided-buffers): requests parsed from
// the leases, heads split across chunks, bodies skipped across chunks, timeouts, and an idle
// connection that holds no input buffer.
#include "http_client.hpp"

#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

using namespace http_test;

namespace {

const std::string k_get_a = "GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n";

/// Asks for the stats line until `key` shows `value` (at most 250 times, 2 ms apart: the
/// server's state is observed, not guessed from a sleep); the last line read.
std::string stats_when(server& srv, const std::string& key, const std::string& value) {
    std::string stats;
    for (int i = 0; i < 250; ++i) {
        stats = srv.stats();
        if (stat_field(stats, key) == value)
            break;
        ::poll(nullptr, 0, 2);
    }
    return stats;
}

/// `n` header lines of about 40 bytes each.
std::string padding_headers(int n, char fill) {
    std::string out;
    for (int i = 0; i < n; ++i)
        out += "X-Pad-" + std::to_string(i) + ": " + std::string(30, fill) + "\r\n";
    return out;
}

} // namespace

TEST_CASE("ring mode: a request head split at every byte boundary is answered, and only the "
          "partial head is held meanwhile") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "64"});
    client c(srv.port);
    for (std::size_t i = 1; i < k_get_a.size(); ++i) {
        INFO("split after byte ", i);
        c.send(k_get_a.substr(0, i));
        // The server has read the first part when it holds exactly those bytes.
        std::string stats = stats_when(srv, "bytes_buffered", std::to_string(i));
        INFO(stats);
        REQUIRE(stat_field(stats, "bytes_buffered") == std::to_string(i));
        c.send(k_get_a.substr(i));
        response r = read_response(c.in);
        CHECK(r.status == 200);
        CHECK(r.body == "hello");
    }
    std::string stats = stats_when(srv, "bytes_buffered", "0");
    INFO(stats);
    CHECK(stat_field(stats, "bytes_buffered") == "0");
    CHECK(stat_field(stats, "requests") == std::to_string(k_get_a.size() - 1));
}

TEST_CASE("ring mode: an idle keep-alive connection holds no input bytes; the ring is counted "
          "once, in ring_bytes") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "64", "--provided-buffer-size",
                "4096"});
    std::vector<std::unique_ptr<client>> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(std::make_unique<client>(srv.port));
        CHECK(clients.back()->get("/a.txt").body == "hello");
    }
    std::string stats = stats_when(srv, "bytes_buffered", "0");
    INFO(stats);
    CHECK(stat_field(stats, "connections") == "3");
    CHECK(stat_field(stats, "bytes_buffered") == "0");
    CHECK(stat_field(stats, "ring_bytes") == std::to_string(64 * 4096));
    // The same server with a buffer per connection: 4 KiB each, and no ring.
    server own({"--root", root.dir.string(), "--provided-buffers", "0"});
    client c(own.port);
    CHECK(c.get("/a.txt").body == "hello");
    std::string own_stats = own.stats();
    INFO(own_stats);
    CHECK(stat_field(own_stats, "bytes_buffered") == "4096");
    CHECK(stat_field(own_stats, "ring_bytes") == "0");
}

TEST_CASE("ring mode: a head spanning many ring buffers is served; past the header limit it is "
          "431, also while it never ends") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "16", "--provided-buffer-size",
                "64", "--max-header-bytes", "1000"});
    {
        client c(srv.port);
        std::string head = padding_headers(20, 'p'); // about 800 bytes: 13 ring buffers
        response r = c.get("/a.txt", head);
        CHECK(r.status == 200);
        CHECK(r.body == "hello");
        CHECK(c.get("/a.txt").body == "hello"); // and the connection is still in step
    }
    {
        client c(srv.port);
        c.send("GET /a.txt HTTP/1.1\r\nHost: t\r\n" + padding_headers(30, 'q') + "\r\n");
        response r = read_response(c.in);
        CHECK(r.status == 431);
        CHECK(r.header("connection") == "close");
        CHECK(c.in.at_eof());
    }
    {
        client c(srv.port);
        c.send("GET /a.txt HTTP/1.1\r\nHost: t\r\nEndless: " + std::string(1500, 'v'));
        CHECK(read_response(c.in).status == 431);
        CHECK(c.in.at_eof());
    }
    std::string stats = stats_when(srv, "connections", "0");
    INFO(stats);
    CHECK(stat_field(stats, "bytes_buffered") == "0");
}

TEST_CASE("ring mode: pipelined requests crossing ring-buffer boundaries are answered in order") {
    temp_root root;
    for (int i = 0; i < 10; ++i)
        root.write("f" + std::to_string(i), std::string(static_cast<std::size_t>(i + 1), 'a' + i));
    server srv({"--root", root.dir.string(), "--provided-buffers", "16", "--provided-buffer-size",
                "64"});
    client c(srv.port);
    // Heads of 30 to 150 bytes: they start and end anywhere in the 64-byte buffers.
    std::string burst;
    for (int i = 0; i < 30; ++i)
        burst += "GET /f" + std::to_string(i % 10) + " HTTP/1.1\r\nHost: t\r\n" +
                 padding_headers(i % 4, 'z') + "\r\n";
    c.send(burst);
    for (int i = 0; i < 30; ++i) {
        INFO(i);
        response r = read_response(c.in);
        CHECK(r.status == 200);
        CHECK(r.body == std::string(static_cast<std::size_t>(i % 10 + 1), 'a' + i % 10));
    }
    // The same burst in 7-byte writes.
    for (std::size_t at = 0; at < burst.size(); at += 7)
        c.send(burst.substr(at, 7));
    for (int i = 0; i < 30; ++i) {
        INFO(i);
        response r = read_response(c.in);
        CHECK(r.status == 200);
        CHECK(r.body == std::string(static_cast<std::size_t>(i % 10 + 1), 'a' + i % 10));
    }
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "requests") == "60");
}

TEST_CASE("ring mode: request bodies are skipped across ring buffers, never parsed as requests") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "16", "--provided-buffer-size",
                "64", "--max-body", "4096"});
    client c(srv.port);
    // A body made of request heads (404s if they were parsed), 1,000 bytes of them.
    std::string body;
    while (body.size() < 1000)
        body += "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n";
    body.resize(1000);
    std::string first = "GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + body;
    c.send(first + k_get_a);
    CHECK(read_response(c.in).body == "hello");
    CHECK(read_response(c.in).body == "hello");
    // Again, the body in pieces of 100 bytes and the next head right after its last byte.
    std::string again = first + k_get_a;
    for (std::size_t at = 0; at < again.size(); at += 100)
        c.send(again.substr(at, 100));
    CHECK(read_response(c.in).body == "hello");
    CHECK(read_response(c.in).body == "hello");
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "requests") == "4");
    CHECK(stat_field(stats, "4xx") == "0");
}

TEST_CASE("ring mode: the keep-alive and header timeouts still close connections waiting for "
          "the next chunk") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "64", "--keepalive-timeout-ms",
                "200", "--header-timeout-ms", "300"});
    client idle(srv.port);
    CHECK(idle.get("/a.txt").body == "hello");
    client partial(srv.port);
    partial.send("GET /a.txt HTTP/1.1\r\nHost:"); // held in the connection's m_in meanwhile
    CHECK(idle.in.at_eof());                      // within the reader's 5 s
    CHECK(partial.in.at_eof());
    std::string stats = stats_when(srv, "connections", "0");
    INFO(stats);
    CHECK(stat_field(stats, "timed_out") == "2");
    CHECK(stat_field(stats, "bytes_buffered") == "0");
}

TEST_CASE("ring mode: SIGTERM closes idle connections at once and the server exits 0") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "64"});
    client c(srv.port);
    CHECK(c.get("/a.txt").body == "hello");
    ::kill(srv.pid, SIGTERM);
    CHECK(srv.next_line("signal ") == "signal 15: draining 1 connections");
    CHECK(c.in.at_eof());
    CHECK(srv.exits_cleanly_after(0));
}

// Each client ends its side after its burst: a served client that stayed silent and open could
// hold the ring's next buffer (the known bug in tests/net/buffer_ring_test.cpp) until its
// keep-alive timeout, longer than the reader waits.
TEST_CASE("ring mode: a ring of two 64-byte buffers serves eight pipelining connections (slower, "
          "not wrong)") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "2", "--provided-buffer-size",
                "64"});
    std::vector<std::unique_ptr<client>> clients;
    for (int i = 0; i < 8; ++i)
        clients.push_back(std::make_unique<client>(srv.port));
    std::string burst;
    for (int i = 0; i < 10; ++i)
        burst += "GET /a.txt HTTP/1.1\r\nHost: t\r\n" + padding_headers(i % 3, 'w') + "\r\n";
    for (auto& c : clients) {
        c->send(burst);
        REQUIRE(::shutdown(c->fd, SHUT_WR) == 0);
    }
    for (auto& c : clients) {
        for (int i = 0; i < 10; ++i) {
            response r = read_response(c->in);
            CHECK(r.status == 200);
            CHECK(r.body == "hello");
        }
        CHECK(c->in.at_eof()); // the server closes once it has answered and read the FIN
    }
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "requests") == "80");
}

// The mode that is no longer the default keeps a test of its own paths (the whole suite runs in
// it as meson's http-own-buffer test): the buffer grows for a head larger than 4 KiB, shrinks
// back when idle, and compacts pipelined requests and skipped bodies.
TEST_CASE("own-buffer mode: a head larger than the 4 KiB buffer grows it, then it shrinks back; "
          "pipelining and skipped bodies") {
    temp_root root;
    root.write("a.txt", "hello");
    server srv({"--root", root.dir.string(), "--provided-buffers", "0", "--max-body", "8192",
                "--max-headers", "1000", "--max-header-bytes", "65536"});
    client c(srv.port);
    // About 21 KiB of header lines: the buffer doubles to 32 KiB (above 16 KiB an idle
    // connection's buffer goes back to 4 KiB; up to 16 KiB it is kept).
    response big = c.get("/a.txt", padding_headers(500, 'g'));
    CHECK(big.status == 200);
    CHECK(big.body == "hello");
    std::string body(5000, 'b');
    std::string burst = "GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + body;
    for (int i = 0; i < 20; ++i)
        burst += k_get_a;
    c.send(burst);
    for (int i = 0; i < 21; ++i) {
        INFO(i);
        CHECK(read_response(c.in).body == "hello");
    }
    std::string stats = stats_when(srv, "bytes_buffered", "4096");
    INFO(stats);
    CHECK(stat_field(stats, "bytes_buffered") == "4096"); // back to one 4 KiB buffer when idle
    CHECK(stat_field(stats, "requests") == "22");
    CHECK(stat_field(stats, "ring_bytes") == "0");
}
