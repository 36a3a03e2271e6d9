#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo command: the laboratory. Installs what is missing, builds the release folder
# build/release (the eight lab servers and the load generator) and runs the harness: the same
# echo and file servers written with threads, epoll, raw io_uring and corio, measured side by
# side. Arguments go to the harness (bench/lab/run.py --help), e.g. --quick for a one-minute run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
corio_install_deps python3 gnuplot-nox

build_dir=build/release
if [[ ! -f $build_dir/meson-private/coredata.dat ]]; then
    echo "==> configuring $build_dir"
    CXX=${CXX:-g++} meson setup "$build_dir" --buildtype=release -Dbenchmarks=true
elif ! meson introspect "$build_dir" --buildoptions |
    python3 -c 'import json,sys; sys.exit(0 if any(o["name"]=="benchmarks" and o["value"] for o in json.load(sys.stdin)) else 1)'; then
    echo "==> enabling the benchmarks in $build_dir"
    meson configure "$build_dir" -Dbenchmarks=true
fi

targets=(bench/loadgen bench/libcorio_alloc_counter.so examples/hello)
for job in echo files; do
    for style in threads epoll uring corio; do
        targets+=("examples/lab/lab_${job}_${style}")
    done
done
targets+=(examples/lab/lab_sync_threads examples/lab/lab_sync_corio) # the sync job
echo "==> building the laboratory in $build_dir"
ninja -C "$build_dir" -j "$(nproc)" "${targets[@]}"

echo "==> bench/lab/run.py --build $build_dir $*"
exec python3 bench/lab/run.py --build "$build_dir" "$@"
