// SPDX-License-Identifier: MIT
// The io_uring-refused environment of Docker's default seccomp profile, gVisor or
// kernel.io_uring_disabled, reproduced for one child process: a seccomp filter program that
// server_process (child_limits::seccomp) installs in the child just before exec.
#pragma once

#include <linux/filter.h>

#include <vector>

namespace corio::test {

/// A seccomp filter (classic BPF, built with libseccomp) whose default action allows every system
/// call and which fails io_uring_setup, io_uring_enter and io_uring_register with EPERM, as
/// Docker's default profile does. REQUIREs that libseccomp could build it.
std::vector<sock_filter> io_uring_refusing_filter();

} // namespace corio::test
