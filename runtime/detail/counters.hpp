// SPDX-License-Identifier: MIT
// Per-thread counters that tasks update without knowing which io_context they run on.
#pragma once

#include <cstddef>

namespace corio::detail {

/// Frames of corio tasks alive on this thread (io_context_stats::live_tasks).
inline thread_local std::size_t t_live_tasks = 0;
/// Bytes in those frames now, and the most there ever were (io_context_stats::frame_bytes and
/// peak_frame_bytes): what the compiler keeps per coroutine, measured rather than guessed.
inline thread_local std::size_t t_frame_bytes = 0;
inline thread_local std::size_t t_frame_bytes_peak = 0;

} // namespace corio::detail
