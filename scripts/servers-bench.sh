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

# Only the two servers; a target this checkout does not have yet is reported by the harness.
targets=()
for target in examples/kv/corio-kv examples/http/corio-http; do
    if ninja -C "$build_dir" -t query "$target" >/dev/null 2>&1; then
        targets+=("$target")
    else
        echo "==> $target: no such target in this checkout (the harness reports it as not built)"
    fi
done
if ((${#targets[@]})); then
    echo "==> building ${targets[*]} in $build_dir"
    ninja -C "$build_dir" -j "$(nproc)" "${targets[@]}"
fi

echo "==> bench/servers/run.py --build $build_dir $*"
exec python3 bench/servers/run.py --build "$build_dir" "$@"
