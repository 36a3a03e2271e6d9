// SPDX-License-Identifier: MIT
// The fault-injection tests' shared helper: io_context options with the mode set from a spec,
// independent of the CORIO_FAULTS environment.
#pragma once

#include <corio/runtime/io_context.hpp>

namespace corio::test {

/// Options with the fault-injection mode set from `spec` (the environment is not read).
inline io_context_options with_faults(const char* spec) {
    io_context_options o;
    o.faults = fault_options::parse(spec);
    return o;
}

} // namespace corio::test
