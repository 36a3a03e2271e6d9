// SPDX-License-Identifier: MIT
// Runs a program to its end with stdout and stderr captured apart: for the tests of the example
// servers' command lines (--help on stdout with status 0, a bad flag one line on stderr, status 2).
#pragma once

#include "tests/support/server_process.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace corio::test {

/// What a program run to its end did.
struct command_result {
    int status = -1; // its exit status; -1 when a signal ended it or it ran past the deadline
    std::string out; // everything it wrote to stdout
    std::string err; // everything it wrote to stderr

    /// The number of lines of err.
    [[nodiscard]] std::size_t err_lines() const {
        std::size_t n = 0;
        for (char c : err)
            n += c == '\n';
        return n;
    }
};

/// Runs `BINARY ARGS...` (stdin /dev/null). A program still running after k_timeout_ms of
/// output (a server that accepted a command line it should have refused) is killed: status -1.
inline command_result run_command(const std::filesystem::path& binary,
                                  const std::vector<std::string>& args) {
    int out_pipe[2];
    int err_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    std::vector<char*> argv;
    std::string path = binary.string();
    argv.push_back(path.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, STDIN_FILENO);
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::execv(path.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    command_result r;
    reader out(out_pipe[0]);
    reader err(err_pipe[0]);
    r.out = out.rest();
    r.err = err.rest();
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    bool ended = out.eof() && err.eof(); // both closed: it exited (or is exiting)
    if (!ended)
        ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (ended && WIFEXITED(status))
        r.status = WEXITSTATUS(status);
    return r;
}

} // namespace corio::test
