// SPDX-License-Identifier: MIT
// corio::signal_set: blocks the signals, reads them from a signalfd through the ring.
#include <corio/runtime/signal_set.hpp>

#include <corio/runtime/uring_op.hpp>

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace corio {

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
    ::close(m_fd);
    pthread_sigmask(SIG_SETMASK, &m_previous, nullptr);
}

task<result<int>> signal_set::wait() {
    signalfd_siginfo info{};
    auto prep = [fd = m_fd, &info](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, fd, &info, sizeof info, 0);
    };
    auto read = submit(prep);
    result<uring_completion> got = co_await read;
    if (!got)
        co_return got.error();
    // A signalfd read returns whole records; anything else is a kernel contract break.
    if (got->res != static_cast<int>(sizeof info))
        co_return std::make_error_code(std::errc::io_error);
    co_return static_cast<int>(info.ssi_signo);
}

} // namespace corio
