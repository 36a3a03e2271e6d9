// SPDX-License-Identifier: MIT
// What the end-to-end tests of corio-http share: starting the server on port 0 from this build
// folder (../../examples/http/corio-http), a document root in a temporary folder, a blocking
// client with a deadline on every read, and an HTTP/1.1 response reader.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace http_test {

namespace fs = std::filesystem;

constexpr int k_timeout_ms = 5000;

inline fs::path server_path() {
    if (const char* path = std::getenv("CORIO_HTTP_SERVER"))
        return path;
    return fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() /
           "examples" / "http" / "corio-http";
}

/// Reads from a non-owned fd with a deadline per call; buffers what it over-reads.
class reader {
public:
    explicit reader(int fd, int timeout_ms = k_timeout_ms) : m_fd(fd), m_timeout_ms(timeout_ms) {}

    /// One line without its "\n" (and "\r"); "<timeout>" or "<eof>" when none came.
    std::string line() {
        for (;;) {
            std::size_t nl = m_pending.find('\n');
            if (nl != std::string::npos) {
                std::string out = m_pending.substr(0, nl);
                m_pending.erase(0, nl + 1);
                if (!out.empty() && out.back() == '\r')
                    out.pop_back();
                return out;
            }
            if (!fill())
                return m_eof ? "<eof>" : "<timeout>";
        }
    }
    /// Exactly n bytes (fewer only on EOF or a timeout).
    std::string bytes(std::size_t n) {
        while (m_pending.size() < n && fill()) {
        }
        std::string out = m_pending.substr(0, n);
        m_pending.erase(0, out.size());
        return out;
    }
    /// True when the peer closed (or reset) with nothing more to read.
    bool at_eof() {
        if (!m_pending.empty())
            return false;
        fill();
        return m_eof && m_pending.empty();
    }
    /// Everything until EOF.
    std::string rest() {
        while (fill()) {
        }
        return std::exchange(m_pending, {});
    }

private:
    bool fill() {
        pollfd p{m_fd, POLLIN, 0};
        if (::poll(&p, 1, m_timeout_ms) != 1)
            return false;
        char buf[65536];
        ssize_t n = ::read(m_fd, buf, sizeof buf);
        if (n <= 0) {
            m_eof = true;
            return false;
        }
        m_pending.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    int m_fd;
    int m_timeout_ms;
    std::string m_pending;
    bool m_eof = false;
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

/// The server, started with --port 0 and `args`; stdout is a pipe (the port, signal and stats
/// lines), stderr is inherited.
struct server {
    pid_t pid = -1;
    int out = -1;
    unsigned port = 0;
    reader* lines = nullptr;

    explicit server(std::vector<std::string> args) {
        fs::path path = server_path();
        REQUIRE_MESSAGE(fs::exists(path), "not built: " << path.string());
        int out_pipe[2];
        REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
        args.insert(args.begin(), {path.string(), "--port", "0"});
        std::vector<char*> argv;
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(out_pipe[1], STDOUT_FILENO);
            ::execv(argv[0], argv.data());
            std::_Exit(127);
        }
        ::close(out_pipe[1]);
        out = out_pipe[0];
        lines = new reader(out);
        std::string first = lines->line();
        INFO("first line: " << first);
        REQUIRE(std::sscanf(first.c_str(), "listening on %u", &port) == 1);
        REQUIRE(port > 0);
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        delete lines;
        ::close(out);
    }

    /// The next line of its stdout that starts with `prefix`.
    std::string next_line(const std::string& prefix) {
        for (;;) {
            std::string l = lines->line();
            if (l.rfind(prefix, 0) == 0 || l == "<eof>" || l == "<timeout>")
                return l;
        }
    }

    /// SIGUSR1, then the stats line it prints.
    std::string stats() {
        ::kill(pid, SIGUSR1);
        return next_line("stats: ");
    }

    /// Sends `signo`; true when the process then exits with status 0 within 5 s.
    bool exits_cleanly_after(int signo) {
        ::kill(pid, signo);
        int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        REQUIRE(pidfd >= 0);
        pollfd exited{pidfd, POLLIN, 0};
        bool in_time = ::poll(&exited, 1, k_timeout_ms) == 1;
        ::close(pidfd);
        if (!in_time)
            return false;
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        pid = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
};

/// A connected client socket; closed on destruction.
struct client {
    int fd = -1;
    reader in;

    explicit client(unsigned port, int timeout_ms = k_timeout_ms)
        : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), in(fd, timeout_ms) {
        REQUIRE(fd >= 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(static_cast<std::uint16_t>(port));
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    }
    ~client() { ::close(fd); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    void send(const std::string& text) {
        REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(text.size()));
    }
    response get(const std::string& target, const std::string& extra = "") {
        send("GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n");
        return read_response(in);
    }
};

} // namespace http_test
