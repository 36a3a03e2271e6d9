// SPDX-License-Identifier: MIT
// Smoke test of examples/echo: start it on port 0, read `listening on N`, echo a line, ask for a
// stats line (SIGUSR1), then SIGTERM it with a connection still open and expect a drain and exit 0.
// Usage: echo_smoke PATH_TO_ECHO   (meson passes the built example)
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
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "echo_smoke: FAIL: %s\n", why.c_str());
    std::exit(1);
}

/// One line from `fd`, waiting at most `timeout_ms` in total.
std::string read_line(int fd, int timeout_ms) {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1)
            fail("timed out waiting for a line (got '" + line + "')");
        char c = 0;
        ssize_t n = ::read(fd, &c, 1);
        if (n != 1)
            fail("EOF or error while reading a line (got '" + line + "')");
        if (c == '\n')
            return line;
        line += c;
    }
}

int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0)
        fail(std::string("connect: ") + std::strerror(errno));
    return fd;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2)
        fail("usage: echo_smoke PATH_TO_ECHO");
    std::signal(SIGPIPE, SIG_IGN);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        fail("pipe");
    pid_t pid = ::fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        const char* args[] = {argv[1], "--port", "0", "--bind", "127.0.0.1", "--drain-ms", "200",
                              nullptr};
        ::execv(argv[1], const_cast<char* const*>(args));
        std::_Exit(127);
    }
    ::close(out[1]);

    std::string first = read_line(out[0], 10000);
    unsigned port = 0;
    if (std::sscanf(first.c_str(), "listening on %u", &port) != 1 || port == 0 || port > 65535)
        fail("expected 'listening on N', got '" + first + "'");

    int conn = connect_to(static_cast<std::uint16_t>(port));
    const std::string message = "hello, corio\n";
    if (::send(conn, message.data(), message.size(), 0) != static_cast<ssize_t>(message.size()))
        fail("send");
    std::string echoed = read_line(conn, 5000) + "\n";
    if (echoed != message)
        fail("echoed '" + echoed + "'");

    ::kill(pid, SIGUSR1);
    std::string stats = read_line(out[0], 5000);
    if (stats.rfind("stats: connections=1 ", 0) != 0)
        fail("expected a stats line with one connection, got '" + stats + "'");

    // SIGTERM with our connection still open: the server drains (200 ms), cancels it, exits 0.
    ::kill(pid, SIGTERM);
    pollfd p{conn, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1)
        fail("the server did not close the connection after draining");
    char byte = 0;
    if (::recv(conn, &byte, 1, 0) != 0)
        fail("expected EOF on the drained connection");
    ::close(conn);

    // pidfd: wait for the exit with a deadline, without polling in a sleep loop.
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0)
        fail("pidfd_open");
    pollfd exited{pidfd, POLLIN, 0};
    if (::poll(&exited, 1, 5000) != 1) {
        ::kill(pid, SIGKILL);
        fail("the server did not exit within 5 s of SIGTERM");
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid)
        fail("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("exit status " + std::to_string(status));
    std::printf("echo_smoke: ok (port %u)\n", port);
    return 0;
}
