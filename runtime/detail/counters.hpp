// SPDX-License-Identifier: MIT
// Per-thread counters that tasks update without knowing which io_context they run on.
#pragma once

#include <cstddef>

namespace corio::detail {

struct promise_base;

/// Frames of corio tasks alive on this thread (io_context_stats::live_tasks).
inline thread_local std::size_t t_live_tasks = 0;
/// Bytes in those frames now, and the most there ever were (io_context_stats::frame_bytes and
/// peak_frame_bytes): what the compiler keeps per coroutine, measured rather than guessed.
inline thread_local std::size_t t_frame_bytes = 0;
inline thread_local std::size_t t_frame_bytes_peak = 0;

} // namespace corio::detail

namespace corio::detail {
/// The newest live task on this thread; the others follow through m_live_next (the task dump
/// and the stall report walk it).
inline thread_local promise_base* t_tasks = nullptr;
/// The task whose code runs now, when the runtime knows it (set when a task starts, when a
/// child finishes into its awaiter, and by a watched loop before each resumption; read by the
/// stall detector's signal handler).
inline thread_local promise_base* t_running = nullptr;
} // namespace corio::detail
