// SPDX-License-Identifier: MIT
// The signals of the example servers (echo, corio-http, corio-kv), one behaviour for all three:
// SIGUSR1 asks for a stats line, the first SIGINT/SIGTERM starts the graceful drain, and a
// second one ends the process at once (Ctrl-C twice means "now").
#pragma once

#include <corio/corio.hpp>

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>

namespace stop_signals {

/// The exit status after a second SIGINT/SIGTERM cut the drain short: 128 + the signal's number
/// (130 for SIGINT, 143 for SIGTERM), what a shell reports for a process that signal killed. A
/// drain that completes (or runs out its time) exits 0.
[[nodiscard]] constexpr int status_without_drain(int signo) noexcept {
    return 128 + signo;
}

/// The lines of each server's --help that say so.
inline constexpr const char* k_usage =
    "  SIGUSR1 prints a stats line. SIGINT/SIGTERM stop accepting, drain and exit 0;\n"
    "  a second SIGINT/SIGTERM exits at once without draining, status 128+N (130, 143).\n";

/// Prints `signal N again: exiting without draining` and ends the process with
/// status_without_drain(N) at once: no destructor runs, the connections are dropped by the
/// kernel.
[[noreturn]] inline void exit_without_draining(int signo) {
    std::printf("signal %d again: exiting without draining\n", signo);
    std::fflush(stdout);
    std::_Exit(status_without_drain(signo));
}

/// What a signal asks the server to do.
enum class request {
    stats, // SIGUSR1: print the stats line
    drain, // the first SIGINT/SIGTERM: stop accepting, let the connections finish
    done,  // no more signals: the watcher was cancelled (the server is done) or is broken
};

struct event {
    request what = request::done;
    int signo = 0; // the signal that asked
};

/// Reads a server's signals from its signal_set (SIGINT, SIGTERM, SIGUSR1). The second stop
/// signal never comes back from next(): it ends the process (exit_without_draining).
class watcher {
public:
    /// `program` names the server in the error lines.
    explicit watcher(corio::signal_set& signals, const char* program) noexcept
        : m_signals(&signals), m_program(program) {}

    /// The next request. An error of the wait other than a cancellation is logged to stderr,
    /// SIGINT and SIGTERM are unblocked in this thread (they then end the process the default
    /// way: better than a server no signal can stop), and `done` is returned.
    corio::task<event> next() {
        for (;;) {
            auto waiting = m_signals->wait();
            corio::result<int> signo = co_await std::move(waiting);
            if (!signo) {
                if (signo != std::errc::operation_canceled)
                    give_up(signo.error());
                co_return event{request::done, 0};
            }
            if (*signo == SIGUSR1)
                co_return event{request::stats, *signo};
            if (*signo != SIGINT && *signo != SIGTERM) {
                std::fprintf(stderr, "%s: ignoring signal %d\n", m_program, *signo);
                continue;
            }
            if (m_draining)
                exit_without_draining(*signo);
            m_draining = true;
            co_return event{request::drain, *signo};
        }
    }

private:
    void give_up(std::error_code error) const {
        std::fprintf(stderr,
                     "%s: waiting for signals failed: %s; SIGINT and SIGTERM now end the process "
                     "without a drain\n",
                     m_program, error.message().c_str());
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        pthread_sigmask(SIG_UNBLOCK, &stop, nullptr);
    }

    corio::signal_set* m_signals; // SIGINT, SIGTERM, SIGUSR1
    const char* m_program;        // "echo", "corio-http", "corio-kv"
    bool m_draining = false;      // a first stop signal was seen
};

} // namespace stop_signals
