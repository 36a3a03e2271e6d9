// SPDX-License-Identifier: MIT
// The io_uring-refused fallback as users hit it (Docker's default seccomp profile, gVisor,
// kernel.io_uring_disabled): each example server (echo, corio-http, corio-kv) runs under a seccomp
// filter that fails io_uring_setup/enter/register with EPERM, says once on stderr that it uses the
// epoll backend, serves real traffic and exits 0 on SIGINT. A control proves that the filter bites.
#include "tests/http/http_client.hpp"
#include "tests/servers/servers.hpp"
#include "tests/support/seccomp_filter.hpp"

#include <doctest/doctest.h>

#include <regex.h>
#include <signal.h>
#include <stdlib.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace servers_test;

namespace {

/// The one line an io_context prints, once per process, when io_uring is refused.
constexpr const char* k_fallback_line =
    R"(corio: io_uring unavailable \(EPERM\); using the epoll backend)";

/// True when `line` matches the POSIX extended regular expression `pattern`.
/// NOTE: POSIX <regex.h>, not std::regex: g++ 12 reports a false -Wmaybe-uninitialized inside
/// libstdc++'s regex at -O1 with ASan (GCC PR 105616), an error in the asan build.
bool matches(const std::string& line, const char* pattern) {
    regex_t re;
    REQUIRE(::regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == 0);
    bool found = ::regexec(&re, line.c_str(), 0, nullptr, 0) == 0;
    ::regfree(&re);
    return found;
}

/// tests/servers/io_uring_probe, built beside this binary.
fs::path probe_path() {
    return fs::read_symlink("/proc/self/exe").parent_path() / "io_uring_probe";
}

/// `n` bytes that differ with `seed` and along the string (251 is prime, so no power-of-two
/// offset lines up): a misplaced, lost or foreign chunk shows.
std::string pattern(std::size_t n, unsigned seed) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<char>((seed * 37 + i * 31) % 251);
    return out;
}

/// Unsets CORIO_BACKEND while it lives: these tests are about the automatic choice, and a forced
/// backend (a whole-suite run on one backend exports it) prints no fallback line.
struct automatic_backend {
    std::optional<std::string> saved; // the value to restore

    automatic_backend() {
        if (const char* v = std::getenv("CORIO_BACKEND"))
            saved = v;
        ::unsetenv("CORIO_BACKEND"); // this binary is one thread: nothing reads it meanwhile
    }
    ~automatic_backend() {
        if (saved)
            ::setenv("CORIO_BACKEND", saved->c_str(), 1);
    }
    automatic_backend(const automatic_backend&) = delete;
    automatic_backend& operator=(const automatic_backend&) = delete;
};

/// A server of `f` started on port 0 under the io_uring-refusing filter, its stderr a pipe.
struct refused_server {
    std::vector<sock_filter> filter = corio::test::io_uring_refusing_filter();
    automatic_backend backend;
    server srv;

    explicit refused_server(const fixture& f)
        : srv(f, {}, corio::test::child_stderr::pipe, corio::test::child_limits{0, filter}) {}

    /// SIGINT: it must exit 0, and its stderr must hold the fallback line once and nothing else.
    void check_clean_exit() {
        CHECK(srv.signal_and_wait(SIGINT) == 0);
        std::string said = corio::test::reader(srv.err).rest(); // it ended: EOF comes at once
        INFO("stderr: " << said);
        int fallback_lines = 0;
        std::vector<std::string> others;
        std::istringstream lines(said);
        for (std::string l; std::getline(lines, l);) {
            if (matches(l, k_fallback_line))
                ++fallback_lines;
            else
                others.push_back(l);
        }
        CHECK(fallback_lines == 1);
        CHECK(others.empty());
    }
};

/// The RESP array of `args`, as a client library sends a command.
std::string command(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& a : args)
        out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return out;
}

} // namespace

TEST_CASE("control: under the seccomp filter of these tests io_uring_setup, io_uring_enter and "
          "io_uring_register fail with EPERM, and without it they do not") {
    auto plain = corio::test::run_to_exit(probe_path(), {});
    CHECK(plain.first == 0);
    CHECK(plain.second == "io_uring_setup: ok\nio_uring_enter: EBADF\nio_uring_register: EBADF\n");

    std::vector<sock_filter> filter = corio::test::io_uring_refusing_filter();
    auto refused = corio::test::run_to_exit(probe_path(), {}, corio::test::child_limits{0, filter});
    CHECK(refused.first == 0); // every other system call is allowed: write, close, exit_group
    CHECK(refused.second ==
          "io_uring_setup: EPERM\nio_uring_enter: EPERM\nio_uring_register: EPERM\n");

    // The line the server cases look for, and what it must not be taken for.
    CHECK(matches("corio: io_uring unavailable (EPERM); using the epoll backend", k_fallback_line));
    CHECK_FALSE(
        matches("corio: io_uring unavailable (ENOSYS); using the epoll backend", k_fallback_line));
    CHECK_FALSE(matches("corio: io_uring setup (io_uring_queue_init_params): Operation not "
                        "permitted",
                        k_fallback_line));
}

TEST_CASE("io_uring refused by seccomp: echo says once that it uses epoll, echoes 8 MiB for 4 "
          "clients at once and exits 0 on SIGINT") {
    constexpr int k_clients = 4;
    constexpr int k_rounds = 32;
    constexpr std::size_t k_chunk = 64 * 1024; // in flight per client: fits the socket buffers
    fixture f(kind::echo);
    refused_server rs(f);
    {
        std::vector<std::unique_ptr<connection>> clients;
        for (int c = 0; c < k_clients; ++c)
            clients.push_back(std::make_unique<connection>(f, rs.srv.port));
        for (int r = 0; r < k_rounds; ++r) {
            CAPTURE(r);
            for (int c = 0; c < k_clients; ++c) // every client's chunk in flight at once
                corio::test::send_all(clients[c]->fd, pattern(k_chunk, r * k_clients + c));
            for (int c = 0; c < k_clients; ++c) {
                CAPTURE(c);
                std::string back = clients[c]->in.bytes(k_chunk);
                bool same = back == pattern(k_chunk, r * k_clients + c);
                INFO("got " << back.size() << " bytes");
                REQUIRE(same);
            }
        }
    } // closed before SIGINT: the drain waits for no one
    rs.check_clean_exit();
}

TEST_CASE("io_uring refused by seccomp: corio-http says once that it uses epoll, serves a file "
          "whose body arrives intact and exits 0 on SIGINT") {
    fixture f(kind::http);
    const std::string body = pattern((1u << 20) + 7, 1); // not a multiple of any buffer size
    std::ofstream(*f.root / "pattern.bin", std::ios::binary) << body;
    refused_server rs(f);
    {
        http_test::client c(rs.srv.port);
        http_test::response small = c.get("/a");
        CHECK(small.status == 200);
        CHECK(small.body == "a");
        http_test::response big = c.get("/pattern.bin"); // the same connection, kept alive
        CHECK(big.status == 200);
        CHECK(big.header("content-length") == std::to_string(body.size()));
        CHECK(big.body.size() == body.size());
        bool same = big.body == body;
        CHECK(same);
    }
    rs.check_clean_exit();
}

TEST_CASE("io_uring refused by seccomp: corio-kv says once that it uses epoll, answers SET then "
          "GET and a pipelined batch and exits 0 on SIGINT") {
    fixture f(kind::kv);
    refused_server rs(f);
    {
        connection c(f, rs.srv.port);
        corio::test::send_all(c.fd, command({"SET", "greeting", "hello"}));
        CHECK(c.in.line() == "+OK\r");
        corio::test::send_all(c.fd, command({"GET", "greeting"}));
        CHECK(c.in.line() == "$5\r");
        CHECK(c.in.line() == "hello\r");

        // 100 SETs of 500-byte values, then 100 GETs, in one write: about 50 KiB each way.
        std::string batch;
        std::string expected;
        for (unsigned i = 0; i < 100; ++i) {
            batch += command({"SET", "k" + std::to_string(i), pattern(500, i)});
            expected += "+OK\r\n";
        }
        for (unsigned i = 0; i < 100; ++i) {
            batch += command({"GET", "k" + std::to_string(i)});
            expected += "$500\r\n" + pattern(500, i) + "\r\n";
        }
        corio::test::send_all(c.fd, batch);
        std::string replies = c.in.bytes(expected.size());
        INFO("got " << replies.size() << " of " << expected.size() << " bytes");
        bool same = replies == expected;
        CHECK(same);
    }
    rs.check_clean_exit();
}
