// SPDX-License-Identifier: MIT
// Per-thread counters that tasks update without knowing which io_context they run on.
#pragma once

#include <cstddef>

namespace corio::detail {

/// Frames of corio tasks alive on this thread (io_context_stats::live_tasks).
inline thread_local std::size_t t_live_tasks = 0;

} // namespace corio::detail
