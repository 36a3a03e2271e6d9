// SPDX-License-Identifier: MIT
// echo and corio-http with --shards: several loops, each on its own SO_REUSEPORT listener of the
// same port, serve many concurrent clients byte for byte; shard 0 owns the signals (SIGUSR1
// sums the shards' counters, SIGINT/SIGTERM drains every shard, a second one exits at once).
#include "tests/servers/servers.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

using namespace servers_test;

namespace {

/// Connection i's payload: distinct per connection and per round, so a byte that went to the
/// wrong connection (or shard) shows.
std::string payload(int i, int round, std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t j = 0; j < size; ++j)
        s[j] = static_cast<char>('a' + (i * 7 + round * 13 + static_cast<int>(j)) % 26);
    return s;
}

/// The count N of `signal S: draining N connections on shard K` lines, one per shard; the
/// number of such lines in `*lines`.
std::size_t drained_connections(server& srv, int signo, unsigned shards, unsigned* lines) {
    std::size_t total = 0;
    *lines = 0;
    for (unsigned k = 0; k < shards; ++k) {
        std::string line = srv.next_line("signal ");
        CAPTURE(line);
        std::size_t n = 0;
        unsigned shard = 0;
        std::string expected =
            "signal " + std::to_string(signo) + ": draining %zu connections on shard %u";
        if (std::sscanf(line.c_str(), expected.c_str(), &n, &shard) == 2 && shard < shards) {
            total += n;
            ++*lines;
        }
    }
    return total;
}

} // namespace

TEST_CASE("echo --shards 2: 64 concurrent clients get every byte back, SIGUSR1 sums the shards, "
          "SIGINT drains every shard and exits 0") {
    fixture f(kind::echo);
    server srv(f, {"--shards", "2", "--drain-ms", "60000"});
    constexpr int k_clients = 64;
    constexpr std::size_t k_size = 3000; // below the socket buffers: send all, then read all
    std::vector<std::unique_ptr<connection>> clients;
    for (int i = 0; i < k_clients; ++i)
        clients.push_back(std::make_unique<connection>(f, srv.port));
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < k_clients; ++i)
            corio::test::send_all(clients[i]->fd, payload(i, round, k_size));
        for (int i = 0; i < k_clients; ++i) {
            CAPTURE(i);
            REQUIRE(clients[i]->in.bytes(k_size) == payload(i, round, k_size));
        }
    }
    std::string stats = srv.stats();
    CHECK(server::field(stats, "connections") == std::to_string(k_clients));
    CHECK(server::field(stats, "accepted") == std::to_string(k_clients));
    CHECK(server::field(stats, "bytes_echoed") == std::to_string(k_clients * 3 * k_size));

    ::kill(srv.pid, SIGINT);
    unsigned lines = 0;
    // Every shard drains its own; 64 connections hashed over 2 listeners all on one: p = 2^-63.
    CHECK(drained_connections(srv, SIGINT, 2, &lines) == k_clients);
    CHECK(lines == 2);
    clients.clear(); // echo's drain waits for its clients to go
    std::string last = srv.next_line("stats: ");
    CHECK(server::field(last, "connections") == "0");
    CHECK(server::field(last, "accepted") == std::to_string(k_clients));
    CHECK(srv.signal_and_wait(0) == 0);
}

TEST_CASE("echo --shards 3 --accept one: shard 0 accepts and hands the connections round robin "
          "(each shard runs exactly a third), every byte comes back, SIGINT drains every shard") {
    fixture f(kind::echo);
    server srv(f, {"--shards", "3", "--accept", "one", "--drain-ms", "60000"});
    constexpr int k_clients = 60;
    constexpr std::size_t k_size = 2000;
    std::vector<std::unique_ptr<connection>> clients;
    for (int i = 0; i < k_clients; ++i) {
        clients.push_back(std::make_unique<connection>(f, srv.port));
        // One at a time: the acceptor takes them in connect order, so the round robin is exact.
        corio::test::send_all(clients[i]->fd, payload(i, 0, k_size));
        REQUIRE(clients[i]->in.bytes(k_size) == payload(i, 0, k_size));
    }
    for (int i = 0; i < k_clients; ++i)
        corio::test::send_all(clients[i]->fd, payload(i, 1, k_size));
    for (int i = 0; i < k_clients; ++i) {
        CAPTURE(i);
        REQUIRE(clients[i]->in.bytes(k_size) == payload(i, 1, k_size));
    }
    std::string stats = srv.stats();
    CHECK(server::field(stats, "connections") == std::to_string(k_clients));
    CHECK(server::field(stats, "accepted") == std::to_string(k_clients)); // summed, none twice

    ::kill(srv.pid, SIGINT);
    std::vector<std::size_t> per_shard(3, 0);
    for (int line_no = 0; line_no < 3; ++line_no) {
        std::string line = srv.next_line("signal ");
        CAPTURE(line);
        std::size_t n = 0;
        unsigned shard = 0;
        REQUIRE(std::sscanf(line.c_str(), "signal 2: draining %zu connections on shard %u", &n,
                            &shard) == 2);
        REQUIRE(shard < 3);
        per_shard[shard] = n;
    }
    CHECK(per_shard == std::vector<std::size_t>{20, 20, 20});
    clients.clear();
    std::string last = srv.next_line("stats: ");
    CHECK(server::field(last, "connections") == "0");
    CHECK(server::field(last, "accepted") == std::to_string(k_clients));
    CHECK(srv.signal_and_wait(0) == 0);
}

TEST_CASE("echo --shards 2: a second SIGINT during the drain exits at once with 130") {
    fixture f(kind::echo);
    server srv(f, {"--shards", "2", "--cpus", "0", "--drain-ms", "60000"});
    std::vector<std::unique_ptr<connection>> busy;
    for (int i = 0; i < 8; ++i) {
        busy.push_back(std::make_unique<connection>(f, srv.port));
        busy.back()->hold_the_drain();
    }
    ::kill(srv.pid, SIGINT);
    CHECK(srv.next_line("signal ").starts_with("signal 2: draining "));
    ::kill(srv.pid, SIGUSR1); // during the drain: still summed over both shards
    CHECK(server::field(srv.next_line("stats: "), "accepted") == "8");
    ::kill(srv.pid, SIGINT);
    CHECK(srv.next_line("signal 2 again") == "signal 2 again: exiting without draining");
    CHECK(srv.signal_and_wait(0) == 130);
}

TEST_CASE("corio-http --shards 2: 32 keep-alive clients get every body exactly, SIGUSR1 counts "
          "every request, SIGTERM drains every shard and exits 0") {
    fixture f(kind::http);
    constexpr int k_files = 8;
    for (int i = 0; i < k_files; ++i) {
        std::FILE* out = std::fopen((*f.root / ("f" + std::to_string(i))).c_str(), "wb");
        REQUIRE(out != nullptr);
        std::string body = payload(i, 0, 1000 + 7000 * static_cast<std::size_t>(i));
        REQUIRE(std::fwrite(body.data(), 1, body.size(), out) == body.size());
        std::fclose(out);
    }
    server srv(f, {"--shards", "2"});
    constexpr int k_clients = 32;
    constexpr int k_rounds = 4;
    std::vector<std::unique_ptr<connection>> clients;
    for (int i = 0; i < k_clients; ++i)
        clients.push_back(std::make_unique<connection>(f, srv.port));
    for (int round = 0; round < k_rounds; ++round) {
        for (int i = 0; i < k_clients; ++i) {
            std::string name = "f" + std::to_string((i + round) % k_files);
            corio::test::send_all(clients[i]->fd, "GET /" + name + " HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        for (int i = 0; i < k_clients; ++i) {
            CAPTURE(i);
            CAPTURE(round);
            int file = (i + round) % k_files;
            std::string body = payload(file, 0, 1000 + 7000 * static_cast<std::size_t>(file));
            corio::test::reader& in = clients[i]->in;
            REQUIRE(in.line() == "HTTP/1.1 200 OK\r");
            std::string length;
            for (std::string l = in.line(); l != "\r"; l = in.line()) {
                REQUIRE(l != "<eof>");
                REQUIRE(l != "<timeout>");
                if (l.starts_with("Content-Length: "))
                    length = l.substr(16, l.size() - 17);
            }
            CHECK(length == std::to_string(body.size()));
            REQUIRE(in.bytes(body.size()) == body);
        }
    }
    std::string stats = srv.stats();
    CHECK(server::field(stats, "accepted") == std::to_string(k_clients));
    CHECK(server::field(stats, "requests") == std::to_string(k_clients * k_rounds));
    CHECK(server::field(stats, "2xx") == std::to_string(k_clients * k_rounds));

    ::kill(srv.pid, SIGTERM); // every connection is idle: each shard closes its own at once
    unsigned lines = 0;
    CHECK(drained_connections(srv, SIGTERM, 2, &lines) == k_clients);
    CHECK(lines == 2);
    std::string last = srv.next_line("stats: ");
    CHECK(server::field(last, "connections") == "0");
    CHECK(server::field(last, "requests") == std::to_string(k_clients * k_rounds));
    CHECK(srv.signal_and_wait(0) == 0);
}

TEST_CASE("--shards 0 runs one shard per CPU and --shards 1 --cpus 0 pins the one shard; both "
          "serve and exit 0 on SIGTERM") {
    for (kind k : {kind::echo, kind::http}) {
        for (std::vector<std::string> extra :
             {std::vector<std::string>{"--shards", "0"},
              std::vector<std::string>{"--shards", "1", "--cpus", "0"}}) {
            std::string name = name_of(k);
            CAPTURE(name);
            CAPTURE(extra[1]);
            fixture f(k);
            server srv(f, extra);
            {
                connection c(f, srv.port);
                CHECK(c.exchange());
                CHECK(c.exchange());
            }
            CHECK(srv.exits_cleanly_after(SIGTERM));
        }
    }
}
