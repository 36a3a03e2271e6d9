// SPDX-License-Identifier: MIT
// corio::signal_set: blocks the signals, reads them from a signalfd through the ring.
#include <corio/runtime/signal_set.hpp>

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/uring_op.hpp>

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace corio {

namespace {

/// The awaiting task's stop token, without suspending.
class current_stop_token {
public:
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) noexcept {
        m_token = detail::stop_token_of(waiter);
        return false; // resumes at once
    }
    [[nodiscard]] stop_token await_resume() const noexcept { return m_token; }

private:
    stop_token m_token; // the waiter's
};

} // namespace

signal_set::signal_set(std::initializer_list<int> signals) {
    sigset_t mask;
    sigemptyset(&mask);
    for (int signo : signals)
        if (sigaddset(&mask, signo) != 0)
            throw std::system_error(errno, std::system_category(), "signal_set: sigaddset");
    // pthread_sigmask returns the error instead of setting errno.
    if (int rc = pthread_sigmask(SIG_BLOCK, &mask, &m_previous); rc != 0)
        throw std::system_error(rc, std::system_category(), "signal_set: pthread_sigmask");
    m_fd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (m_fd < 0) {
        int err = errno;
        pthread_sigmask(SIG_SETMASK, &m_previous, nullptr);
        throw std::system_error(err, std::system_category(), "signal_set: signalfd");
    }
}

signal_set::~signal_set() {
    io_context::close_fd(m_fd);
    pthread_sigmask(SIG_SETMASK, &m_previous, nullptr);
}

task<result<int>> signal_set::wait() {
    current_stop_token get_token;
    stop_token token = co_await get_token;
    signalfd_siginfo info{};
    for (;;) {
        auto prep = [fd = m_fd, &info](io_uring_sqe* sqe) {
            io_uring_prep_read(sqe, fd, &info, sizeof info, 0);
        };
        auto read = submit(prep);
        result<uring_completion> got = co_await read;
        if (got) {
            // A signalfd read returns whole records; anything else is a kernel contract break.
            if (got->res != static_cast<int>(sizeof info))
                co_return std::make_error_code(std::errc::io_error);
            co_return static_cast<int>(info.ssi_signo);
        }
        // Cancelled by us: this task was stopped, or its io_context is being torn down.
        if (token.stop_requested() || io_context::current().root_token().stop_requested())
            co_return std::make_error_code(std::errc::operation_canceled);
        // TRICKY (kernel 6.x): the kernel first polls the signalfd, and every signal sent to
        // the process wakes that poll; after 128 wake-ups without a signal of the set (each
        // SIGSTOP is one) io_uring hands the read to an io-wq worker thread (io_uring/poll.c,
        // APOLL_MAX_RETRY). There the next stop of the process interrupts it (EINTR), and when
        // no worker thread can be started (fork fails while signals keep coming) io-wq gives up
        // and cancels the read (ECANCELED although nobody here asked). Read again: a wait ends
        // with a signal, our own cancellation or a real error.
        if (got == std::errc::interrupted || got == std::errc::operation_canceled)
            continue;
        if (got == std::errc::resource_unavailable_try_again) {
            // Not expected from a blocking signalfd; never spin on it: wait until it is readable.
            auto prep_poll = [fd = m_fd](io_uring_sqe* sqe) {
                io_uring_prep_poll_add(sqe, fd, POLLIN);
            };
            auto readable = submit(prep_poll);
            result<uring_completion> polled = co_await readable;
            (void)polled; // cancelled or failed: the read after it says so
            continue;
        }
        co_return got.error();
    }
}

} // namespace corio
