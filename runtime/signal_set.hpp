// SPDX-License-Identifier: MIT
// corio::signal_set: POSIX signals as awaitable events. The signals are blocked and read from a
// signalfd through the ring, so a handler is ordinary coroutine code on the loop's thread.
#pragma once

#include <corio/runtime/result.hpp>
#include <corio/runtime/task.hpp>

#include <signal.h>

#include <initializer_list>

namespace corio {

/// Owns a signalfd for a set of signals, which it blocks in the calling thread.
///
/// Construct it in main() before the io_context and before any thread starts (the offload pool
/// included): threads inherit the signal mask when they are created, and a signal that some
/// thread leaves unblocked is delivered the old way (by default: terminating the process)
/// instead of reaching the signalfd. Destruction closes the signalfd and restores the mask the
/// thread had; a signal still pending then is delivered the old way.
///
///     corio::signal_set signals{SIGINT, SIGTERM};
///     corio::result<int> signo = co_await signals.wait();
class signal_set {
public:
    /// Blocks `signals` and opens the signalfd. Throws std::system_error if either fails.
    signal_set(std::initializer_list<int> signals);
    ~signal_set();
    signal_set(const signal_set&) = delete;
    signal_set& operator=(const signal_set&) = delete;

    /// Resumes with the number of the next signal of the set (one already pending is returned at
    /// once, through the ring). The set must outlive the co_await. What it resumes with:
    /// - a signal number of the set;
    /// - std::errc::operation_canceled when the awaiting task is stopped (or its io_context
    ///   is torn down);
    /// - any other error is a real one (the signalfd is unusable: EBADF, EINVAL...); waiting
    ///   again will most likely fail again.
    /// Transient failures of the read are retried here and never returned: EINTR (a stop and
    /// continue of the process interrupts it: after SIGSTOP/SIGCONT the set keeps working) and
    /// EAGAIN (the wait then polls the signalfd before it reads again, so it cannot spin).
    [[nodiscard]] task<result<int>> wait();

    /// The signalfd (owned), for callers that read it their own way.
    [[nodiscard]] int native_handle() const noexcept { return m_fd; }

private:
    int m_fd = -1;         // the signalfd
    sigset_t m_previous{}; // the thread's mask before construction, restored on destruction
};

} // namespace corio
