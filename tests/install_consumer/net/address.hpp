// SPDX-License-Identifier: MIT
// The consumer's own net/address.hpp (like a project's net/ folder beside glibc's <net/if.h>):
// corio's net/ must not collide with it.
#pragma once

namespace app {
/// Proves this header, not corio's, was found for "net/address.hpp".
inline constexpr int own_net_header = 1;
} // namespace app
