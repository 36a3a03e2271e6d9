// SPDX-License-Identifier: MIT
// End-to-end test plumbing shared by tests/lab, tests/http and tests/kv: a server binary run as a
// child process (started on port 0, signalled and reaped with a deadline), a blocking loopback
// client socket, and a reader with a deadline on every read. Protocols stay in their test folders.
#pragma once

#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::test {

/// How long one read, or a signalled server's exit, may take before a test calls it a hang.
constexpr int k_timeout_ms = 5000;

/// Reads from an fd it does not own, waiting at most `timeout_ms` per read; keeps what it
/// over-reads for the next call.
class reader {
public:
    explicit reader(int fd, int timeout_ms = k_timeout_ms) noexcept
        : m_fd(fd), m_timeout_ms(timeout_ms) {}

    /// One line without its '\n'; "<timeout>" or "<eof>" when none came.
    std::string line();
    /// Exactly n bytes (fewer only on EOF or a timeout).
    std::string bytes(std::size_t n);
    /// Everything until EOF (or a timeout).
    std::string rest();
    /// True when the peer closed (or reset) with nothing more to read.
    bool at_eof();
    /// True once a read saw EOF or an error.
    [[nodiscard]] bool eof() const noexcept { return m_eof; }

    /// The first complete message: `length_of(buffered)` is the length of the complete message
    /// at the start of the bytes buffered so far (a std::string), or 0 while more are needed.
    /// "<timeout>" or "<eof>" when none came.
    template <class LengthOf>
    std::string message(LengthOf length_of) {
        for (;;) {
            std::size_t n = length_of(std::as_const(m_pending));
            if (n != 0) {
                std::string out = m_pending.substr(0, n);
                m_pending.erase(0, n);
                return out;
            }
            if (!fill())
                return m_eof ? "<eof>" : "<timeout>";
        }
    }

private:
    /// Appends one read's bytes; false on a timeout, EOF or an error.
    bool fill();

    int m_fd;              // not owned
    int m_timeout_ms;      // the deadline of each read
    std::string m_pending; // read but not yet handed out
    bool m_eof = false;    // a read returned 0 or failed
};

/// Where a child's stderr goes.
enum class child_stderr {
    inherit, // the test's own (shows up in its output)
    pipe,    // a pipe the test reads (server_process::err)
};

/// Resource limits set in the child before it execs the server (0 or empty: inherited unchanged).
struct child_limits {
    unsigned long nofile = 0; // RLIMIT_NOFILE (soft and hard): the fds the server may open
    // A seccomp filter program (tests/support/seccomp_filter.hpp) installed with no_new_privs
    // just before exec; it must outlive the start. A child that cannot install it exits 126.
    std::span<const sock_filter> seccomp{};
};

/// A server binary started as `BINARY --port 0 ARGS...`, ready once it printed `listening on N`
/// (up to two other lines may come first). Its stdout is a pipe read through `lines`. The
/// destructor kills (SIGKILL) and reaps it if it still runs, and closes the pipes.
struct server_process {
    pid_t pid = -1;    // the child; -1 once reaped
    unsigned port = 0; // from its `listening on N` line
    int out = -1;      // read end of its stdout
    int err = -1;      // read end of its stderr; -1 when inherited
    reader lines{-1};  // its stdout, after the `listening on` line

    /// Starts it (with `limits`) and waits for its port (REQUIREs that it was built and printed
    /// one; when it ended first and its stderr is a pipe, the failure shows what it wrote there).
    server_process(const std::filesystem::path& binary, std::vector<std::string> args,
                   child_stderr stderr_to, child_limits limits = {});
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;
    ~server_process();

    /// The next line of its stdout that starts with `prefix` (others are skipped); "<eof>" or
    /// "<timeout>" when none came.
    std::string next_line(std::string_view prefix);

    /// Sends `signo` (0: none), then waits up to k_timeout_ms for the exit: its exit status, or
    /// -1 when it still runs or was killed by a signal.
    int signal_and_wait(int signo);

    /// Sends `signo`; true when the process then exits with status 0 within k_timeout_ms.
    bool exits_cleanly_after(int signo) { return signal_and_wait(signo) == 0; }

    /// SIGKILL, then reaps it.
    void kill9();
};

/// Runs `BINARY --port 0 ARGS...` (with `limits`) to its end (for start-ups that must fail),
/// stdout to /dev/null: its exit status (-1 when killed by a signal) and everything it wrote to
/// stderr.
std::pair<int, std::string> run_to_exit(const std::filesystem::path& binary,
                                        std::vector<std::string> args, child_limits limits = {});

/// 127.0.0.1:`port`.
sockaddr_in loopback(unsigned port);

/// A blocking TCP socket connected to 127.0.0.1:`port` (REQUIREd); the caller closes it.
int connect_loopback(unsigned port);

/// Sends all of `bytes` (REQUIREd; MSG_NOSIGNAL, so a reset peer fails the send, not the run).
void send_all(int fd, std::string_view bytes);

} // namespace corio::test
