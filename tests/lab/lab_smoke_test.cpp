// SPDX-License-Identifier: MIT
// Smoke tests of the eight laboratory servers (examples/lab): each starts on port 0, serves one
// connection (three echoes, or pipelined file requests with an ERR and an offset past the end),
// then gets SIGTERM with that connection still open and must close it, print its stats line and
// exit 0 within 5 s. The servers are found next to this binary: ../examples/lab/<name>
// (CORIO_LAB_DIR overrides the folder).
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

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int k_timeout_ms = 5000;
constexpr std::size_t lab_too_long_reply = sizeof "ERR too long\n" - 1;

fs::path lab_dir() {
    if (const char* dir = std::getenv("CORIO_LAB_DIR"))
        return dir;
    return fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "examples" / "lab";
}

/// Reads from a non-owned fd with a deadline per call; buffers what it over-reads.
class reader {
public:
    explicit reader(int fd) : m_fd(fd) {}

    /// One line without its '\n'; "<timeout>" or "<eof>" when none came.
    std::string line() {
        for (;;) {
            std::size_t nl = m_pending.find('\n');
            if (nl != std::string::npos) {
                std::string out = m_pending.substr(0, nl);
                m_pending.erase(0, nl + 1);
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

    /// Everything until EOF.
    std::string rest() {
        while (fill()) {
        }
        return std::exchange(m_pending, {});
    }

    /// True when the peer closed with nothing more to read.
    bool at_eof() {
        if (!m_pending.empty())
            return false;
        fill();
        return m_eof && m_pending.empty();
    }

private:
    bool fill() {
        pollfd p{m_fd, POLLIN, 0};
        if (::poll(&p, 1, k_timeout_ms) != 1)
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
    std::string m_pending;
    bool m_eof = false;
};

/// A server started with --port 0; its stdout and stderr are pipes.
struct server {
    pid_t pid = -1;
    int out = -1; // its stdout
    int err = -1; // its stderr
    unsigned port = 0;

    server(const std::string& name, std::vector<std::string> args) {
        fs::path path = lab_dir() / name;
        REQUIRE_MESSAGE(fs::exists(path), "not built: " << path.string());
        int out_pipe[2];
        int err_pipe[2];
        REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
        args.insert(args.begin(), {path.string(), "--port", "0"});
        std::vector<char*> argv;
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(out_pipe[1], STDOUT_FILENO);
            ::dup2(err_pipe[1], STDERR_FILENO);
            ::execv(argv[0], argv.data());
            std::_Exit(127);
        }
        ::close(out_pipe[1]);
        ::close(err_pipe[1]);
        out = out_pipe[0];
        err = err_pipe[0];
        std::string first = reader(out).line();
        INFO("first line: " << first);
        REQUIRE(std::sscanf(first.c_str(), "listening on %u", &port) == 1);
        REQUIRE(port > 0);
        REQUIRE(port < 65536);
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        ::close(out);
        ::close(err);
    }

    /// SIGTERM; true when the process exits with status 0 within 5 s.
    bool terminate() {
        ::kill(pid, SIGTERM);
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

    /// The `stats: ...` line from its stderr (after it exited).
    std::string stats_line() {
        std::string text = reader(err).rest();
        std::size_t at = text.find("stats: ");
        if (at == std::string::npos)
            return "<no stats line in: " + text + ">";
        return text.substr(at, text.find('\n', at) - at);
    }
};

int connect_to(unsigned port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<std::uint16_t>(port));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(fd >= 0);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    return fd;
}

void send_text(int fd, const std::string& text) {
    REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(text.size()));
}

/// Three echoes on one connection (one message larger than the buffer), then SIGTERM with the
/// connection open: EOF on it, exit 0, and a stats line with the exact byte counts.
void echo_smoke(const std::string& name) {
    server srv(name, {"--buffer-size", "1000"});
    int conn = connect_to(srv.port);
    reader replies(conn);
    const std::string messages[] = {"hello, lab\n", std::string(2500, 'x'), "third\n"};
    std::size_t total = 0;
    for (const std::string& m : messages) {
        send_text(conn, m);
        CHECK(replies.bytes(m.size()) == m);
        total += m.size();
    }
    CHECK(srv.terminate());
    CHECK(replies.at_eof());
    ::close(conn);
    std::string stats = srv.stats_line();
    INFO(stats);
    std::string bytes = "bytes_in=" + std::to_string(total) + " bytes_out=" + std::to_string(total);
    CHECK(stats.rfind("stats: connections=1 requests=", 0) == 0);
    CHECK(stats.find(bytes) != std::string::npos);
}

/// A temporary --root: small.txt, big.bin (100000 patterned bytes) and a directory `sub`.
struct file_root {
    fs::path dir;
    std::string big;

    file_root() {
        std::string templ = (fs::temp_directory_path() / "corio-lab-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        dir = templ;
        for (std::size_t i = 0; i < 100000; ++i)
            big += static_cast<char>('A' + (i * 7) % 23);
        write("small.txt", "hello, lab\n");
        write("big.bin", big);
        fs::create_directory(dir / "sub");
    }
    ~file_root() { fs::remove_all(dir); }
    file_root(const file_root&) = delete;
    file_root& operator=(const file_root&) = delete;

    void write(const char* name, const std::string& text) const {
        std::FILE* f = std::fopen((dir / name).c_str(), "wb");
        REQUIRE(f != nullptr);
        REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
        std::fclose(f);
    }
};

/// Pipelined requests on one connection (answered in order: a range, a missing file, an offset
/// past the end, a bad name, a range of a large file, a directory, a malformed line), a request
/// line that is too long on a second connection, then SIGTERM with the first still open.
void files_smoke(const std::string& name, bool direct) {
    file_root root;
    std::vector<std::string> args = {"--root", root.dir.string(), "--buffer-size", "1000"};
    if (direct)
        args.push_back("--direct");
    server srv(name, args);
    int conn = connect_to(srv.port);
    reader replies(conn);
    const std::string requests = "GET small.txt 0 100\n"
                                 "GET missing.txt 0 10\n"
                                 "GET small.txt 50 10\n"
                                 "GET ../small.txt 0 1\n"
                                 "GET big.bin 1000 50000\n"
                                 "GET sub 0 1\n"
                                 "PUT x\n";
    send_text(conn, requests);
    std::size_t out = 0;
    auto expect_line = [&](const std::string& want) {
        CHECK(replies.line() == want);
        out += want.size() + 1;
    };
    expect_line("OK 11");
    CHECK(replies.bytes(11) == "hello, lab\n");
    out += 11;
    expect_line("ERR no such file");
    expect_line("OK 0");
    expect_line("ERR bad name");
    expect_line("OK 50000");
    CHECK(replies.bytes(50000) == root.big.substr(1000, 50000));
    out += 50000;
    std::string dir_reply = replies.line(); // O_DIRECT refuses a directory at open (EINVAL)
    CHECK(dir_reply == (direct ? "ERR cannot open (O_DIRECT unsupported?)" : "ERR not a file"));
    out += dir_reply.size() + 1;
    expect_line("ERR bad request");

    int second = connect_to(srv.port);
    reader second_replies(second);
    const std::string too_long(1100, 'a');
    send_text(second, too_long);
    CHECK(second_replies.line() == "ERR too long");
    CHECK(second_replies.at_eof());
    ::close(second);
    out += lab_too_long_reply;

    CHECK(srv.terminate());
    CHECK(replies.at_eof());
    ::close(conn);
    std::string stats = srv.stats_line();
    INFO(stats);
    const std::string counts = "stats: connections=2 requests=7 bytes_in=" +
                               std::to_string(requests.size() + too_long.size()) +
                               " bytes_out=" + std::to_string(out);
    if (name.ends_with("corio")) {
        // The corio servers add the coroutine frame bytes (the runtime's peak_frame_bytes).
        CHECK(stats.rfind(counts + " frame_bytes_peak=", 0) == 0);
        CHECK(std::stoull(stats.substr(counts.size() + 18)) > 0);
    } else {
        CHECK(stats == counts);
    }
}

} // namespace

TEST_CASE("lab_echo_threads echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_threads");
}
TEST_CASE("lab_echo_epoll echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_epoll");
}
TEST_CASE("lab_echo_uring echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_uring");
}
TEST_CASE("lab_echo_corio echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_corio");
}
TEST_CASE("lab_files_threads answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_threads", false);
}
TEST_CASE("lab_files_threads --direct reads with O_DIRECT") {
    files_smoke("lab_files_threads", true);
}
TEST_CASE("lab_files_epoll answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_epoll", false);
}
TEST_CASE("lab_files_epoll --direct reads with O_DIRECT") {
    files_smoke("lab_files_epoll", true);
}
TEST_CASE("lab_files_uring answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_uring", false);
}
TEST_CASE("lab_files_uring --direct reads with O_DIRECT") {
    files_smoke("lab_files_uring", true);
}
TEST_CASE("lab_files_corio answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_corio", false);
}
TEST_CASE("lab_files_corio --direct reads with O_DIRECT") {
    files_smoke("lab_files_corio", true);
}
