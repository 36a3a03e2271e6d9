// SPDX-License-Identifier: MIT
// Builds the io_uring-refusing filter with libseccomp and exports it as the BPF program the kernel
// loads, so that the forked child only makes two system calls (prctl, seccomp) before exec.
#include "tests/support/seccomp_filter.hpp"

#include <doctest/doctest.h>

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace corio::test {

namespace {

struct release_ctx {
    void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};

/// Closes an fd on scope exit.
struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
};

} // namespace

std::vector<sock_filter> io_uring_refusing_filter() {
    std::unique_ptr<void, release_ctx> ctx(seccomp_init(SCMP_ACT_ALLOW));
    REQUIRE(ctx != nullptr);
    // NOTE: seccomp_load() would set no_new_privs itself; the child does it (server_process.cpp).
    for (int nr :
         {SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register)}) {
        int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
        INFO("seccomp_rule_add(" << nr << "): " << std::strerror(-rc));
        REQUIRE(rc == 0);
    }
    int mem = ::memfd_create("corio-seccomp-bpf", MFD_CLOEXEC);
    REQUIRE(mem >= 0);
    fd_closer closer{mem};
    int rc = seccomp_export_bpf(ctx.get(), mem);
    INFO("seccomp_export_bpf: " << std::strerror(-rc));
    REQUIRE(rc == 0);
    off_t size = ::lseek(mem, 0, SEEK_END);
    REQUIRE(size > 0);
    REQUIRE(size % static_cast<off_t>(sizeof(sock_filter)) == 0);
    std::vector<sock_filter> program(static_cast<std::size_t>(size) / sizeof(sock_filter));
    REQUIRE(::pread(mem, program.data(), static_cast<std::size_t>(size), 0) == size);
    return program;
}

} // namespace corio::test
