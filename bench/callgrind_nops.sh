#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# User-space instructions per NOP of corio's loop, noise-free: callgrind counts two runs of
# bench/nop_count (2,000 and 12,000 NOPs per task) and divides the difference by the extra NOPs.
# Usage: bench/callgrind_nops.sh [BUILD_DIR (default build/release)] [TASKS (default 32)] [raw]
# `raw` counts the hand-written liburing twin instead (the same NOPs, no runtime).
# The environment passes through: CORIO_STALL_MS=1000 measures the stall detector on.
set -euo pipefail
bin=${1:-build/release}/bench/nop_count
tasks=${2:-32}
mode=${3:-}
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$tasks" $mode 2>&1 |
        awk '/Collected/ {print $4}'
}
a=$(ir 2000)
b=$(ir 12000)
python3 -c "print(f'{($b - $a) / (10000 * $tasks):.2f} instructions per NOP ($tasks tasks${mode:+, $mode})')"
