// SPDX-License-Identifier: MIT
// The control of tests/servers/seccomp_test.cpp: a tiny program that makes each io_uring system
// call once, straight (no liburing, no corio), and prints on stderr how each ended, one line
// each: `io_uring_setup: ok` or the errno's name (`io_uring_setup: EPERM`). io_uring_enter and
// io_uring_register get an fd that is not open, so without a filter they fail with EBADF. It
// ignores its arguments.
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

/// One line: how the call that returned `rc` (errno set when negative) ended.
void report(const char* call, long rc) {
    std::fprintf(stderr, "%s: %s\n", call, rc >= 0 ? "ok" : ::strerrorname_np(errno));
}

/// Not an open fd (nor -1, which io_uring_register takes for a ring-less registration on newer
/// kernels and answers with EINVAL).
constexpr long k_closed_fd = 1L << 30;

} // namespace

int main() {
    io_uring_params params{};
    long ring = ::syscall(SYS_io_uring_setup, 4, &params);
    report("io_uring_setup", ring);
    if (ring >= 0)
        ::close(static_cast<int>(ring));
    report("io_uring_enter", ::syscall(SYS_io_uring_enter, k_closed_fd, 0L, 0L, 0L, nullptr, 0L));
    report("io_uring_register", ::syscall(SYS_io_uring_register, k_closed_fd, 0L, nullptr, 0L));
    return 0;
}
