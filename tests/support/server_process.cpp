// SPDX-License-Identifier: MIT
// The child-process and socket half of server_process.hpp: fork/exec with the pipes wired, the
// `listening on N` handshake, pidfd waits with a deadline, loopback connects and sends.
#include "tests/support/server_process.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace corio::test {

namespace fs = std::filesystem;

// ----- reader -----

std::string reader::line() {
    std::string out = message([](const std::string& buffered) -> std::size_t {
        std::size_t nl = buffered.find('\n');
        return nl == std::string::npos ? 0 : nl + 1;
    });
    if (out.ends_with('\n'))
        out.pop_back();
    return out;
}

std::string reader::bytes(std::size_t n) {
    while (m_pending.size() < n && fill()) {
    }
    std::string out = m_pending.substr(0, n);
    m_pending.erase(0, out.size());
    return out;
}

std::string reader::rest() {
    while (fill()) {
    }
    return std::exchange(m_pending, {});
}

bool reader::at_eof() {
    if (!m_pending.empty())
        return false;
    fill();
    return m_eof && m_pending.empty();
}

bool reader::fill() {
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

// ----- child processes -----

namespace {

/// In the forked child: sets no_new_privs (which lets an unprivileged process install a filter)
/// and installs `program`. Two system calls, nothing allocated: safe between fork and exec.
bool install_seccomp(std::span<const sock_filter> program) noexcept {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return false;
    sock_fprog prog{static_cast<unsigned short>(program.size()),
                    const_cast<sock_filter*>(program.data())}; // the kernel only copies it
    return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

/// Forks and execs `BINARY --port 0 ARGS...` with its stdout and stderr on `stdout_to` and
/// `stderr_to` (-1: the test's own) and `limits`. Every other fd of ours is O_CLOEXEC.
pid_t spawn(const fs::path& binary, std::vector<std::string> args, int stdout_to, int stderr_to,
            child_limits limits = {}) {
    args.insert(args.begin(), {binary.string(), "--port", "0"});
    std::vector<char*> argv; // built before fork: the child only dup2()s and execs
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (stdout_to >= 0)
            ::dup2(stdout_to, STDOUT_FILENO);
        if (stderr_to >= 0)
            ::dup2(stderr_to, STDERR_FILENO);
        if (limits.nofile > 0) {
            rlimit nofile{limits.nofile, limits.nofile};
            if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0)
                std::_Exit(126);
        }
        if (!limits.seccomp.empty() && !install_seccomp(limits.seccomp))
            std::_Exit(126);
        ::execv(argv[0], argv.data());
        std::_Exit(127);
    }
    return pid;
}

/// Kills and reaps `pid` if it is a child still running.
void kill_and_reap(pid_t& pid) {
    if (pid <= 0)
        return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
}

/// Kills and reaps `pid` if it still runs, and closes the pipes' read ends.
void stop(pid_t& pid, int& out, int& err) {
    kill_and_reap(pid);
    if (out >= 0)
        ::close(std::exchange(out, -1));
    if (err >= 0)
        ::close(std::exchange(err, -1));
}

} // namespace

server_process::server_process(const fs::path& binary, std::vector<std::string> args,
                               child_stderr stderr_to, child_limits limits) {
    REQUIRE_MESSAGE(fs::exists(binary), "not built: " << binary.string());
    int out_pipe[2];
    int err_pipe[2] = {-1, -1};
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    if (stderr_to == child_stderr::pipe)
        REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    out = out_pipe[0];
    err = err_pipe[0];
    pid = spawn(binary, std::move(args), out_pipe[1], err_pipe[1], limits);
    ::close(out_pipe[1]);
    if (err_pipe[1] >= 0)
        ::close(err_pipe[1]);
    lines = reader(out);
    try {
        std::string seen; // every stdout line up to the port, for the failure message
        std::string l;
        for (int i = 0; i < 3; ++i) { // a line such as corio-kv's "loaded ..." may come first
            l = lines.line();
            seen += l + "\n";
            if (l.starts_with("listening on ") || l == "<eof>" || l == "<timeout>")
                break;
        }
        INFO("stdout: " << seen);
        // It ended before printing its port: what it said on stderr says why (it wrote it all
        // before ending, so this read finds EOF at once).
        std::string said = l == "<eof>" && err >= 0 ? reader(err).rest() : "(not read)";
        INFO("stderr: " << said);
        REQUIRE(std::sscanf(l.c_str(), "listening on %u", &port) == 1);
        REQUIRE(port > 0);
        REQUIRE(port < 65536);
    } catch (...) {
        stop(pid, out, err); // the destructor does not run for a constructor that throws
        throw;
    }
}

server_process::~server_process() {
    stop(pid, out, err);
}

std::string server_process::next_line(std::string_view prefix) {
    for (;;) {
        std::string l = lines.line();
        if (l.starts_with(prefix) || l == "<eof>" || l == "<timeout>")
            return l;
    }
}

int server_process::signal_and_wait(int signo) {
    ::kill(pid, signo);
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    REQUIRE(pidfd >= 0);
    pollfd exited{pidfd, POLLIN, 0};
    bool in_time = ::poll(&exited, 1, k_timeout_ms) == 1;
    ::close(pidfd);
    if (!in_time)
        return -1;
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void server_process::kill9() {
    kill_and_reap(pid);
}

std::pair<int, std::string> run_to_exit(const fs::path& binary, std::vector<std::string> args,
                                        child_limits limits) {
    int err_pipe[2];
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    REQUIRE(devnull >= 0);
    pid_t pid = spawn(binary, std::move(args), devnull, err_pipe[1], limits);
    ::close(devnull);
    ::close(err_pipe[1]);
    std::string text = reader(err_pipe[0]).rest();
    ::close(err_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// ----- sockets -----

sockaddr_in loopback(unsigned port) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<std::uint16_t>(port));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

int connect_loopback(unsigned port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sin = loopback(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    return fd;
}

void send_all(int fd, std::string_view bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        REQUIRE(n > 0);
        done += static_cast<std::size_t>(n);
    }
}

} // namespace corio::test
