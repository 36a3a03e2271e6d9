#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The servers benchmark: corio-kv against redis-server and corio-http against nginx (one worker),
# side by side. Installs what is missing, builds the two servers in build/release and runs
# bench/servers/run.py; arguments go to it (e.g. --quick, --jobs kv, --reps 3; see --help).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
corio_install_deps nginx-light redis-server redis-tools wrk python3

build_dir=build/release
if [[ ! -f $build_dir/meson-private/coredata.dat ]]; then
    echo "==> configuring $build_dir"
    CXX=${CXX:-g++} meson setup "$build_dir" --buildtype=release -Dbenchmarks=true
fi

echo "==> building the two servers in $build_dir"
ninja -C "$build_dir" -j "$(nproc)" examples/kv/corio-kv examples/http/corio-http

echo "==> bench/servers/run.py --build $build_dir $*"
exec python3 bench/servers/run.py --build "$build_dir" "$@"
