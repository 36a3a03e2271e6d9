// SPDX-License-Identifier: MIT
// What the end-to-end tests of corio-http share: starting the server on port 0 from this build
// folder (../../examples/http/corio-http), a document root in a temporary folder, a blocking
// client with a deadline on every read, and an HTTP/1.1 response reader.
#pragma once

#include "tests/support/server_process.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace http_test {

namespace fs = std::filesystem;

inline fs::path server_path() {
    if (const char* path = std::getenv("CORIO_HTTP_SERVER"))
        return path;
    return fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() /
           "examples" / "http" / "corio-http";
}

/// The shared reader, with HTTP's lines: they end in "\r\n" (or a bare "\n").
class reader : public corio::test::reader {
public:
    using corio::test::reader::reader;

    /// One line without its "\n" (and "\r"); "<timeout>" or "<eof>" when none came.
    std::string line() {
        std::string out = corio::test::reader::line();
        if (!out.empty() && out.back() == '\r')
            out.pop_back();
        return out;
    }
};

/// A response as read off the wire.
struct response {
    int status = 0;                             // 0: none came (timeout or EOF)
    std::map<std::string, std::string> headers; // names in lower case
    std::string body;

    [[nodiscard]] std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? "<none>" : it->second;
    }
};

/// Reads one response; a HEAD response (`head_only`) has no body whatever its Content-Length.
inline response read_response(reader& in, bool head_only = false) {
    response r;
    std::string status_line = in.line();
    if (status_line.rfind("HTTP/1.1 ", 0) != 0)
        return r;
    r.status = std::atoi(status_line.c_str() + 9);
    for (;;) {
        std::string l = in.line();
        if (l.empty() || l == "<eof>" || l == "<timeout>")
            break;
        std::size_t colon = l.find(':');
        std::string name = l.substr(0, colon);
        for (char& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::size_t v = colon + 1;
        while (v < l.size() && l[v] == ' ')
            ++v;
        r.headers[name] = l.substr(v);
    }
    if (!head_only && r.status != 304 && r.headers.count("content-length"))
        r.body = in.bytes(std::stoull(r.headers["content-length"]));
    return r;
}

/// The value of `key=` in a stats line ("<none>" when absent).
inline std::string stat_field(const std::string& stats, const std::string& key) {
    std::size_t at = stats.find(" " + key + "=");
    if (at == std::string::npos)
        return "<none>";
    at += key.size() + 2;
    return stats.substr(at, stats.find(' ', at) - at);
}

/// A temporary document root, removed with everything in it.
struct temp_root {
    fs::path dir;     // the root given to the server
    fs::path outside; // a sibling folder outside the root (for escape attempts)

    temp_root() {
        std::string templ = (fs::temp_directory_path() / "corio-http-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        fs::path base = templ;
        dir = base / "root";
        outside = base / "outside";
        fs::create_directories(dir);
        fs::create_directories(outside);
    }
    ~temp_root() {
        std::error_code ignored;
        fs::remove_all(dir.parent_path(), ignored);
    }
    temp_root(const temp_root&) = delete;
    temp_root& operator=(const temp_root&) = delete;

    void write(const fs::path& name, const std::string& text) const {
        fs::path p = dir / name;
        fs::create_directories(p.parent_path());
        std::FILE* f = std::fopen(p.c_str(), "wb");
        REQUIRE(f != nullptr);
        REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
        std::fclose(f);
    }
};

/// The arguments every server gets before its own (a test's own arguments override them): the
/// words of CORIO_HTTP_ARGS, e.g. "--provided-buffers 0" to run every test in the other read
/// mode.
inline std::vector<std::string> with_common_args(std::vector<std::string> args) {
    std::vector<std::string> all;
    if (const char* common = std::getenv("CORIO_HTTP_ARGS")) {
        std::string word;
        for (const char* p = common;; ++p) {
            if (*p == ' ' || *p == '\0') {
                if (!word.empty())
                    all.push_back(std::move(word));
                word.clear();
                if (*p == '\0')
                    break;
            } else {
                word += *p;
            }
        }
    }
    all.insert(all.end(), std::make_move_iterator(args.begin()),
               std::make_move_iterator(args.end()));
    return all;
}

/// corio-http, started with --port 0 and `args`; stdout is a pipe (the port, signal and stats
/// lines), stderr is inherited unless `stderr_to` says otherwise; `limits` are set before exec.
struct server : corio::test::server_process {
    explicit server(std::vector<std::string> args,
                    corio::test::child_stderr stderr_to = corio::test::child_stderr::inherit,
                    corio::test::child_limits limits = {})
        : server_process(server_path(), with_common_args(std::move(args)), stderr_to, limits) {}

    /// SIGUSR1, then the stats line it prints.
    std::string stats() {
        ::kill(pid, SIGUSR1);
        return next_line("stats: ");
    }
};

/// A connected client socket; closed on destruction.
struct client {
    int fd = -1;
    reader in;

    explicit client(unsigned port, int timeout_ms = corio::test::k_timeout_ms)
        : fd(corio::test::connect_loopback(port)), in(fd, timeout_ms) {}
    ~client() { ::close(fd); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    void send(const std::string& text) { corio::test::send_all(fd, text); }
    response get(const std::string& target, const std::string& extra = "") {
        send("GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n");
        return read_response(in);
    }
};

} // namespace http_test
