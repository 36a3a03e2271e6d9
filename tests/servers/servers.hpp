// SPDX-License-Identifier: MIT
// What the end-to-end tests of the three example servers (echo, corio-http, corio-kv) share:
// where each binary is, what it needs to start (corio-http a document root), one request it
// answers (to know that it runs), and a connection that keeps its drain waiting.
#pragma once

#include "tests/fs/temp_dir.hpp"
#include "tests/support/server_process.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace servers_test {

namespace fs = std::filesystem;

enum class kind { echo, http, kv };

inline const char* name_of(kind k) {
    switch (k) {
    case kind::echo:
        return "echo";
    case kind::http:
        return "corio-http";
    case kind::kv:
        return "corio-kv";
    }
    return "?";
}

/// The build folder's examples/ (this binary is tests/servers/test_servers), or
/// $CORIO_EXAMPLES_DIR.
inline fs::path examples_dir() {
    if (const char* dir = std::getenv("CORIO_EXAMPLES_DIR"))
        return dir;
    return fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() /
           "examples";
}

/// A server's binary and the arguments it always needs; corio-http's document root (a file `a`
/// holding "a" and a 32 MiB `big.bin`) lives as long as this.
struct fixture {
    kind k;
    fs::path binary;
    std::vector<std::string> args;
    std::unique_ptr<corio::test::temp_dir> root; // corio-http's --root

    explicit fixture(kind which) : k(which) {
        fs::path dir = examples_dir();
        switch (k) {
        case kind::echo:
            binary = dir / "echo";
            args = {"--bind", "127.0.0.1"};
            break;
        case kind::http:
            binary = dir / "http" / "corio-http";
            root = std::make_unique<corio::test::temp_dir>();
            write(*root / "a", "a");
            write(*root / "big.bin", std::string(32u << 20, 'b'));
            args = {"--root", root->path()};
            break;
        case kind::kv:
            binary = dir / "kv" / "corio-kv";
            break;
        }
    }

    /// What `BINARY --help` prints.
    [[nodiscard]] std::string help() const {
        std::string out;
        std::FILE* p = ::popen((binary.string() + " --help").c_str(), "r");
        REQUIRE(p != nullptr);
        char buf[4096];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
            out.append(buf, n);
        ::pclose(p);
        return out;
    }

private:
    static void write(const std::string& path, const std::string& text) {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        REQUIRE(f != nullptr);
        REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
        std::fclose(f);
    }
};

/// The server of `f`, started with --port 0, its arguments and `extra`; stdout is a pipe (the
/// port, signal and stats lines), stderr `stderr_to`.
struct server : corio::test::server_process {
    server(const fixture& f, std::vector<std::string> extra,
           corio::test::child_stderr stderr_to = corio::test::child_stderr::inherit,
           corio::test::child_limits limits = {})
        : server_process(f.binary, joined(f.args, std::move(extra)), stderr_to, limits) {}

    /// SIGUSR1, then the stats line it prints.
    std::string stats() {
        ::kill(pid, SIGUSR1);
        return next_line("stats: ");
    }

    /// The value of `key=` in a stats line ("<none>" when absent).
    static std::string field(const std::string& stats, const std::string& key) {
        std::size_t at = stats.find(" " + key + "=");
        if (at == std::string::npos)
            return "<none>";
        at += key.size() + 2;
        return stats.substr(at, stats.find(' ', at) - at);
    }

private:
    static std::vector<std::string> joined(std::vector<std::string> a, std::vector<std::string> b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }
};

/// A client connection to one of the servers; closed on destruction.
struct connection {
    kind k;
    int fd = -1;
    corio::test::reader in;

    connection(const fixture& f, unsigned port)
        : k(f.k), fd(corio::test::connect_loopback(port)), in(fd) {}
    ~connection() { ::close(fd); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// One request and its complete answer: true when the answer was the expected one.
    bool exchange() {
        switch (k) {
        case kind::echo:
            corio::test::send_all(fd, "ping\n");
            return in.line() == "ping";
        case kind::kv:
            corio::test::send_all(fd, "PING\r\n");
            return in.line() == "+PONG\r";
        case kind::http: {
            corio::test::send_all(fd, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
            bool ok = in.line() == "HTTP/1.1 200 OK\r";
            for (std::string l = in.line(); l != "\r"; l = in.line())
                if (l == "<eof>" || l == "<timeout>")
                    return false;
            return ok && in.bytes(1) == "a";
        }
        }
        return false;
    }

    /// Makes this connection one that a graceful drain waits for: echo waits for every open
    /// connection; corio-http for a response in flight (32 MiB that this client never reads);
    /// corio-kv for a client with half a command buffered (sent in the same write as a PING,
    /// so that its +PONG says the half was received too).
    void hold_the_drain() {
        switch (k) {
        case kind::echo:
            REQUIRE(exchange());
            return;
        case kind::http:
            corio::test::send_all(fd, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
            REQUIRE(in.line() == "HTTP/1.1 200 OK\r");
            return;
        case kind::kv:
            corio::test::send_all(fd, "PING\r\n*1\r\n$4\r\nPI");
            REQUIRE(in.line() == "+PONG\r");
            return;
        }
    }
};

} // namespace servers_test
