// SPDX-License-Identifier: MIT
// The consumer's own runtime/task.hpp: a name corio's headers must never pick up by accident
// (issue 11: corio installs under <corio/...> only). Included from main.cpp beside corio's.
#pragma once

namespace app {
/// Proves this header, not corio's, was found for "runtime/task.hpp".
inline constexpr int own_runtime_header = 1;
} // namespace app
