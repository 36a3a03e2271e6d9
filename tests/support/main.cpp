// SPDX-License-Identifier: MIT
// The shared doctest main: ignores SIGPIPE (a peer reset must surface as EPIPE, never kill the
// run) and exits 77, meson's SKIP, only when io_uring cannot be set up at all on this machine.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <liburing.h>

#include <csignal>
#include <cstdio>
#include <cstring>

namespace {

/// 0 when a ring can be created; otherwise the errno that refused it.
int probe_io_uring() {
    io_uring ring;
    int rc = io_uring_queue_init(4, &ring, 0);
    if (rc < 0)
        return -rc;
    io_uring_queue_exit(&ring);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    if (int err = probe_io_uring(); err != 0) {
        std::fprintf(stderr, "io_uring unavailable (%s): skipping\n", std::strerror(err));
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
