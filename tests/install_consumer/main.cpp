// SPDX-License-Identifier: MIT
// Install check: a program built against an installed corio (headers, static libraries and
// corio.pc, or the CMake package) that runs one round trip through the ring. Exits 0 on success,
// 77 without io_uring. Its own runtime/ and net/ headers sit on the include path before corio's.
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/uring_op.hpp>

// The umbrella header too: every public header must be installed and compile outside the tree.
#include <corio/corio.hpp>
// One out-of-line function of each module library, so corio.pc must link them all.
#include <corio/fs/fs_error.hpp>
#include <corio/net/address.hpp>

// The consumer's own headers, found through its own include path, and glibc's <net/if.h>: corio
// lives under corio/, so none of these names collide with it.
#include "net/address.hpp"
#include "runtime/task.hpp"

#include <liburing.h>
#include <net/if.h>

#include <cstdio>
#include <cstring>

namespace {

corio::task<int> round_trip() {
    corio::result<void> done = co_await corio::nop();
    if (!done) {
        std::fprintf(stderr, "nop failed: %s\n", done.error().message().c_str());
        co_return 1;
    }
    co_return 0;
}

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

static_assert(app::own_runtime_header == 1 && app::own_net_header == 1 && IFNAMSIZ > 0);

#ifdef CORIO_CONSUMER_EXPECT_CXX23
// The CMake consumer asks for C++23: corio's package requires C++20 at least, never pins it.
static_assert(__cplusplus > 202002L, "the consumer's C++23 was downgraded");
#endif

int main() {
    if (int err = probe_io_uring(); err != 0) {
        std::fprintf(stderr, "io_uring unavailable (%s): skipping\n", std::strerror(err));
        return 77;
    }
    std::printf("install consumer: linked %s and %s\n", corio::net::address_category().name(),
                corio::fs_category().name());
    int rc = corio::sync_wait(round_trip());
    std::printf("install consumer: nop round trip %s\n", rc == 0 ? "ok" : "FAILED");
    return rc;
}
