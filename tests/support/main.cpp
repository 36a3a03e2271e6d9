// SPDX-License-Identifier: MIT
// The shared doctest main: ignores SIGPIPE (a peer reset must surface as EPIPE, never kill the
// run), and where io_uring cannot be set up at all on this machine runs the suite on the epoll
// backend (CORIO_BACKEND=epoll, also for the servers the tests start), saying so once.
// Under CORIO_FAULTS it names the spec once, then silences the runtime's own start-up line
// (CORIO_FAULTS_QUIET) for every io_context of the run and the servers the tests start: the
// end-to-end tests read those servers' stderr line by line.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <liburing.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
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
    if (int err = probe_io_uring(); err != 0 && !std::getenv("CORIO_BACKEND")) {
        std::fprintf(stderr, "io_uring unavailable (%s): the tests run on the epoll backend\n",
                     std::strerror(err));
        ::setenv("CORIO_BACKEND", "epoll", 1); // still one thread: nothing reads the environment
    }
    if (const char* faults = std::getenv("CORIO_FAULTS"); faults && *faults) {
        std::fprintf(stderr, "tests under CORIO_FAULTS=%s\n", faults);
        ::setenv("CORIO_FAULTS_QUIET", "1", 1); // still one thread: nothing reads the environment
    }
    doctest::Context context(argc, argv);
    return context.run();
}
