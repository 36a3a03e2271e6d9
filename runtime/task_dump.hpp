// SPDX-License-Identifier: MIT
// Loop health on demand: what every live task waits on, and the signal the stall detector uses
// (docs/blocking.md).
#pragma once

#include <cstdio>
#include <string>

namespace corio {

/// Every live corio task of the calling thread, newest first, one paragraph each: its state
/// (running, suspended, not started), where it waits (`file:line in function` of its latest
/// co_await), on what (the awaitable's type, and whether an io_uring operation of it is in
/// flight), and the await chain above it (each awaiting task's co_await site, up to the root:
/// a spawned task or the one sync_wait runs). For "what is my server waiting on?" without a
/// debugger; the examples print it on SIGUSR1 with their stats. Allocates; call it from the loop
/// thread (a task, or between runs), never from a signal handler.
[[nodiscard]] std::string task_dump();

/// Writes task_dump() to `out` (stderr by default) and flushes it.
void dump_tasks(std::FILE* out = stderr);

/// The real-time signal the stall detector sends to a loop thread whose turn runs past the
/// threshold (SIGRTMAX - 4). Its handler is installed once per process, with SA_RESTART, only
/// if the program has no handler of its own for it (otherwise reports come without a native
/// backtrace). A loop thread running with the detector on unblocks it. Like a profiler's
/// SIGPROF, it cuts a sleep (nanosleep, usleep) in the stalled code short with EINTR.
[[nodiscard]] int stall_signal() noexcept;

} // namespace corio
