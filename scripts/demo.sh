#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo command: installs what is missing, builds the release folder build/release and runs
# the demo program. Arguments are passed on to the demo.
set -euo pipefail

# What the demo runs: a target of the build (its path under the build folder) and its arguments.
DEMO_TARGET=examples/hello
DEMO_ARGS=()

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
corio_install_deps

build_dir=build/release
if [[ ! -f $build_dir/meson-private/coredata.dat ]]; then
    echo "==> configuring $build_dir"
    CXX=${CXX:-g++} meson setup "$build_dir" --buildtype=release
fi

# Only the demo is built (ninja knows every target by its output path).
if ! ninja -C "$build_dir" -t targets all | grep -q "^${DEMO_TARGET}:"; then
    echo "demo: $DEMO_TARGET is not part of the build yet (no examples/${DEMO_TARGET##*/}.cpp" \
        "in examples/meson.build): nothing to run" >&2
    exit 1
fi
echo "==> building $DEMO_TARGET in $build_dir"
ninja -C "$build_dir" -j "$(nproc)" "$DEMO_TARGET"

echo "==> $build_dir/$DEMO_TARGET ${DEMO_ARGS[*]} $*"
exec "$build_dir/$DEMO_TARGET" "${DEMO_ARGS[@]}" "$@"
