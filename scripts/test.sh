#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test command: builds build/debug (g++ -O0) and build/asan (g++, ASan+UBSan), runs every
# doctest binary of both, then checks that an installed corio works from an outside meson project.
# The last line is always "N passed, N failed"; the exit status is non-zero on any failure.
#
# Every doctest binary of both builds runs twice: on io_uring and on the epoll backend
# (CORIO_BACKEND=epoll).
#
# Environment: CORIO_TEST_TIMEOUT (seconds per test binary, default 300), CORIO_SKIP_DEPS=1,
# CORIO_TEST_BUILDS="debug asan" (which of the two builds to run), extra ASAN_OPTIONS and
# UBSAN_OPTIONS (appended to the ones below, so they can override them), CORIO_TEST_EXTRA=0 (skip
# the clang build, the laboratory's and the servers' --quick runs and the fuzzers, each counted as
# one test case;
# CORIO_FUZZ_SECONDS sets how long each fuzzer runs), CORIO_TEST_FAULT_SEEDS (default "1 2 3 9": seed 9 pins a short refusal line in corio-kv) and
# CORIO_TEST_FAULT_RATE (default 0.2) for the fault-injection pass (empty seeds: no pass). The
# plain runs unset CORIO_FAULTS, so an exported one cannot change what they test.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
root=$(pwd)
# shellcheck source=scripts/deps.sh
source scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
timeout_s=${CORIO_TEST_TIMEOUT:-300}  # like the meson test() timeout; a hang must not eat CI's 90 min
read -ra fault_seeds <<<"${CORIO_TEST_FAULT_SEEDS-1 2 3 9}"
fault_rate=${CORIO_TEST_FAULT_RATE:-0.2}
read -ra builds <<<"${CORIO_TEST_BUILDS:-debug asan}"
log_dir=build/test-logs

# The options of each build folder, as `name=value` pairs as meson introspection reports them
# (`|` joins the items of an array option). b_sanitize adds -fno-omit-frame-pointer itself.
# NOTE: werror is on in both builds (off by default for consumers): a warning is a failure here.
declare -A build_options=(
    [debug]="buildtype=debug werror=true"
    [asan]="debug=true optimization=1 b_sanitize=address,undefined b_lundef=false
            cpp_args=-fno-sanitize-recover=all werror=true"
)

asan_env=(
    "ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
)

total_passed=0
total_failed=0

# Prints the final line and exits with the matching status.
finish() {
    echo "${total_passed} passed, ${total_failed} failed"
    if ((total_failed > 0)); then
        exit 1
    fi
    exit 0
}

# A build step failed: nothing was tested.
build_failed() {
    echo "FAILED: $*" >&2
    total_passed=0
    total_failed=1
    finish
}

# Turns build_options[$1] into meson -D arguments (`|` separates the items of an array option).
meson_args() {
    local pair
    local -a pairs
    read -ra pairs <<<"${build_options[$1]//$'\n'/ }"
    for pair in "${pairs[@]}"; do
        printf -- '-D%s\n' "${pair//|/ }"
    done
}

# Prints the `name=value` pairs of build_options[$2] that build folder $1 does not have yet.
stale_options() {
    local -a pairs
    read -ra pairs <<<"${build_options[$2]//$'\n'/ }"
    meson introspect "$1" --buildoptions | python3 -c '
import json, sys
have = {}
for o in json.load(sys.stdin):
    v = o["value"]
    if isinstance(v, bool):
        v = "true" if v else "false"
    elif isinstance(v, list):
        v = "|".join(v)
    have[o["name"]] = str(v)
for pair in sys.argv[1:]:
    name, _, want = pair.partition("=")
    if have.get(name) != want:
        print(pair)
' "${pairs[@]}"
}

# Configures build/$1 when it is new or its options drifted, then builds it.
configure_and_build() {
    local name=$1 dir=build/$1 setup_log=$log_dir/setup-$1.log
    local -a args
    mapfile -t args < <(meson_args "$name")
    if [[ ! -f $dir/meson-private/coredata.dat ]]; then
        echo "==> configuring $dir"
        if ! CXX=g++ meson setup "$dir" "${args[@]}" >"$setup_log" 2>&1; then
            cat "$setup_log"
            build_failed "meson setup $dir"
        fi
    elif [[ -n $(stale_options "$dir" "$name" 2>/dev/null || echo unreadable) ]]; then
        echo "==> reconfiguring $dir"
        # A folder meson cannot reconfigure (made by another meson version, say) is set up anew.
        if ! meson setup --reconfigure "$dir" "${args[@]}" >"$setup_log" 2>&1 &&
            ! CXX=g++ meson setup --wipe "$dir" "${args[@]}" >"$setup_log" 2>&1; then
            cat "$setup_log"
            build_failed "meson setup --reconfigure $dir"
        fi
    fi
    echo "==> building $dir (ninja -j$jobs)"
    ninja -C "$dir" -j "$jobs" || build_failed "ninja -C $dir"
}

# Runs one doctest binary ($2) of build $1 and adds its counts to the totals; $3, when given, is a
# CORIO_FAULTS spec to run it under (the fault-injection mode), otherwise CORIO_FAULTS is unset;
# $4, when given, a backend for CORIO_BACKEND (otherwise unset: io_uring, as on a normal host);
# $5, when given, a doctest source-file filter (-sf) that selects the cases to run.
run_binary() {
    local name=$1 bin=$2 faults=${3:-} backend=${4:-} files=${5:-}
    local label="$name: ${bin#build/"$name"/}${faults:+ under CORIO_FAULTS=$faults}"
    label+="${backend:+ on the $backend backend}${files:+ (cases of $files)}"
    local log
    log="$log_dir/$name-$(basename "$bin")${faults:+-faults-${faults//[^a-z0-9.]/_}}"
    log+="${backend:+-$backend}${files:+-${files//[^a-z0-9]/_}}.log"
    local -a env_vars=()
    if [[ $name == asan ]]; then
        env_vars=("${asan_env[@]}")
    elif [[ $name == tsan ]]; then
        env_vars=("TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
    fi
    local -a filter=()
    if [[ -n $files ]]; then
        filter=("-sf=$files")
    fi
    if [[ -n $faults ]]; then
        env_vars+=("CORIO_FAULTS=$faults")
    fi
    if [[ -n $backend ]]; then
        env_vars+=("CORIO_BACKEND=$backend")
    fi
    echo "==> $label"
    local start=$SECONDS rc=0
    env -u CORIO_FAULTS -u CORIO_BACKEND "${env_vars[@]}" timeout --kill-after=10 "$timeout_s" "$bin" \
        --no-colors=true "${filter[@]}" >"$log" 2>&1 </dev/null || rc=$?
    local took=$((SECONDS - start))

    if ((rc == 77)); then
        echo "    SKIPPED (exit 77): $(tail -n 1 "$log")"
        return
    fi
    local summary passed=0 failed=0 skipped=0
    summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
    if [[ $summary =~ ([0-9]+)\ passed\ *\|\ *([0-9]+)\ failed\ *\|\ *([0-9]+)\ skipped ]]; then
        passed=${BASH_REMATCH[1]}
        failed=${BASH_REMATCH[2]}
        skipped=${BASH_REMATCH[3]}
    fi
    local verdict=""
    if ((rc == 124 || rc == 137)); then
        verdict="timed out after ${timeout_s}s"
    elif [[ -z $summary ]] && ((rc > 128)); then
        verdict="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))) before its summary"
    elif [[ -z $summary ]]; then
        verdict="exited with status $rc and no doctest summary"
    elif ((rc != 0 && failed == 0)); then
        verdict="exited with status $rc after its summary (sanitizer report at exit?)"
    fi
    if [[ -n $verdict ]]; then
        failed=$((failed + 1))
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    echo "    $passed passed, $failed failed, $skipped skipped (${took}s)${verdict:+ -- $verdict}"
    if ((failed > 0)); then
        echo "    ---- output of $bin (last 200 lines; full log: $log) ----"
        tail -n 200 "$log" | sed 's/^/    | /'
        if [[ -n $faults || -n $backend ]]; then
            echo "    reproduce: ${faults:+CORIO_FAULTS=$faults }${backend:+CORIO_BACKEND=$backend }$bin"
        fi
    fi
}

# The I/O suites once more under the fault-injection mode (docs/runtime.md, "Fault injection"):
# transient faults only (short counts, EINTR, ENOBUFS), which correct code absorbs, from fixed
# seeds so that a failure reproduces. The servers the http, kv and servers tests start inherit the
# variable. Each run counts like any other binary.
run_fault_pass() {
    local seed bin
    for seed in "${fault_seeds[@]}"; do
        for bin in build/debug/tests/test_net build/debug/tests/test_fs \
            build/debug/tests/http/test_http* build/debug/tests/kv/test_kv* \
            build/debug/tests/servers/test_servers*; do
            [[ -f $bin && -x $bin ]] || continue
            run_binary debug "$bin" "seed=$seed,rate=$fault_rate"
        done
    done
}

# Every public header in the source tree must be installed under <prefix>/include/corio, and
# nothing else of corio's may land directly in <prefix>/include (it would sit beside glibc's net/).
check_installed_headers() {
    local include_dir=$1 header absent=0
    while IFS= read -r header; do
        if [[ ! -f $include_dir/corio/$header ]]; then
            echo "    not installed: corio/$header"
            absent=1
        fi
    done < <(find corio.hpp runtime net fs -name '*.hpp' 2>/dev/null | sort)
    local stray
    stray=$(find "$include_dir" -mindepth 1 -maxdepth 1 ! -name corio)
    if [[ -n $stray ]]; then
        echo "    installed outside include/corio: $stray"
        absent=1
    fi
    return "$absent"
}

# Installs build/debug into a temporary DESTDIR, then builds and runs the consumers against it:
# tests/install_consumer through pkg-config and tests/cmake_consumer through find_package(corio).
# Prints why on failure.
install_check() {
    local tmp=$1 stage=$1/stage
    meson install -C build/debug --no-rebuild --destdir "$stage" >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log"; echo "    meson install failed"; return 1; }
    local pc
    pc=$(find "$stage" -name corio.pc -path '*/pkgconfig/*' | head -n 1)
    if [[ -z $pc ]]; then
        echo "    no corio.pc was installed"
        return 1
    fi
    if grep -qE -- '^Cflags:.*-std=' "$pc"; then
        echo "    corio.pc forces a -std= flag on consumers"
        return 1
    fi
    [[ -n $(find "$stage" -name LICENSE -path '*/doc/corio/*') ]] ||
        { echo "    LICENSE was not installed"; return 1; }
    local include_dir
    include_dir=$(dirname "$(dirname "$(find "$stage" -name corio.hpp -path '*/include/corio/*' | head -n 1)")")
    check_installed_headers "$include_dir" || { echo "    headers missing from the install"; return 1; }
    # NOTE: PKG_CONFIG_SYSROOT_DIR maps the installed corio.pc (prefix /usr/local, unchanged) onto
    # the DESTDIR, so the very file a user gets is the one tested.
    local -a pc_env=("PKG_CONFIG_PATH=$(dirname "$pc")" "PKG_CONFIG_SYSROOT_DIR=$stage")
    env "${pc_env[@]}" CXX=g++ meson setup "$tmp/build" tests/install_consumer \
        >"$tmp/setup.log" 2>&1 ||
        { cat "$tmp/setup.log"; echo "    configuring the consumer failed"; return 1; }
    env "${pc_env[@]}" ninja -C "$tmp/build" >"$tmp/build.log" 2>&1 ||
        { cat "$tmp/build.log"; echo "    building the consumer failed"; return 1; }
    local rc=0
    timeout 60 "$tmp/build/consumer" || rc=$?
    if ((rc == 77)); then
        return 77
    fi
    ((rc == 0)) || { echo "    the consumer exited with status $rc"; return 1; }
    local printed
    printed=$(timeout 60 "$tmp/build/readme_sample") ||
        { echo "    the README sample exited with status $?"; return 1; }
    [[ $printed == 126 ]] || { echo "    the README sample printed '$printed', not 126"; return 1; }
    check_readme_sample || return 1
    cmake_consumer_check "$tmp" "$(dirname "$include_dir")"
}

# tests/cmake_consumer: find_package(corio 0.2) from the installed prefix ($2), C++23, -Werror.
cmake_consumer_check() {
    local tmp=$1 prefix=$2
    CXX=g++ cmake -S tests/cmake_consumer -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
        >"$tmp/cmake-setup.log" 2>&1 ||
        { cat "$tmp/cmake-setup.log"; echo "    configuring the CMake consumer failed"; return 1; }
    cmake --build "$tmp/cmake-build" >"$tmp/cmake-build.log" 2>&1 ||
        { cat "$tmp/cmake-build.log"; echo "    building the CMake consumer failed"; return 1; }
    timeout 60 "$tmp/cmake-build/consumer" ||
        { echo "    the CMake consumer exited with status $?"; return 1; }
}

# README.md must show tests/install_consumer/readme_sample.cpp (from its first #include line on) as
# its first ```cpp block, so the sample a reader copies is the one that was just built and run.
check_readme_sample() {
    python3 - README.md tests/install_consumer/readme_sample.cpp <<'PY'
import re, sys
readme, sample = (open(p).read() for p in sys.argv[1:3])
blocks = re.findall(r"^```cpp\n(.*?)^```$", readme, re.S | re.M)
code = sample[re.search(r"^#include", sample, re.M).start():]
if not blocks or blocks[0] != code:
    sys.exit("    README.md's first ```cpp block differs from "
             "tests/install_consumer/readme_sample.cpp (from its first #include line on)")
PY
}

run_install_check() {
    echo "==> install consumers: meson install (build/debug), then tests/install_consumer via" \
        "pkg-config and tests/cmake_consumer via find_package"
    local tmp rc=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/corio-install.XXXXXX")
    install_check "$tmp" || rc=$?
    rm -rf "$tmp"
    case $rc in
        0) total_passed=$((total_passed + 1)); echo "    1 passed, 0 failed" ;;
        77) echo "    SKIPPED (exit 77: io_uring unavailable)" ;;
        *) total_failed=$((total_failed + 1)); echo "    0 passed, 1 failed" ;;
    esac
}

# tests/subproject_consumer: corio as a meson subproject (a copy of this tree, uncommitted changes
# included). As a subproject it must build its libraries only (no test, example or benchmark
# target) with werror off, while the parent project itself builds with werror on.
subproject_check() {
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/corio-subproject.XXXXXX")
    local proj=$tmp/app rc=0
    mkdir -p "$proj/subprojects/corio"
    cp tests/subproject_consumer/meson.build "$proj/"
    cp -r tests/install_consumer/main.cpp tests/install_consumer/runtime tests/install_consumer/net "$proj/"
    git ls-files -co --exclude-standard -z | cpio -0pdm --quiet "$proj/subprojects/corio" || rc=1
    if ((rc == 0)); then
        (
            set -e
            CXX=g++ meson setup "$proj/build" "$proj"
            local targets
            targets=$(ninja -C "$proj/build" -t targets all)
            if grep -E 'test_(runtime|net|fs)|examples/|bench_' <<<"$targets"; then
                echo "as a subproject corio configured tests, examples or benchmarks (above)"
                exit 1
            fi
            meson introspect "$proj/build" --buildoptions | python3 -c '
import json, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
assert opts.get("corio:werror") is False, "corio:werror is %r in a subproject" % opts.get("corio:werror")
assert opts.get("werror") is True, "the parent project lost its own werror"
'
            ninja -C "$proj/build"
            timeout 60 "$proj/build/consumer"
        ) || rc=$?
    fi
    rm -rf "$tmp"
    return "$rc"
}

# Adds one test case to the totals: $1 is its label, the rest the command; 77 means skipped.
run_check() {
    local label=$1 log=$log_dir/$2.log
    shift 2
    echo "==> $label"
    local rc=0 start=$SECONDS
    "$@" >"$log" 2>&1 </dev/null || rc=$?
    case $rc in
        0) total_passed=$((total_passed + 1)); echo "    1 passed, 0 failed ($((SECONDS - start))s)" ;;
        77) echo "    SKIPPED (exit 77): $(tail -n 1 "$log")" ;;
        *)
            total_failed=$((total_failed + 1))
            echo "    0 passed, 1 failed (status $rc; last 60 lines of $log:)"
            tail -n 60 "$log" | sed 's/^/    | /'
            ;;
    esac
}

# The code must keep building with clang (DESIGN.md): a whole optimised build with clang++, whose
# doctest binaries then run too (a second compiler at -O2 catches what g++ at -O0 cannot: clang
# elides the heap allocation of a frame that provably dies in its creator's scope, for one).
clang_build() {
    local dir=build/clang
    if [[ ! -f $dir/meson-private/coredata.dat ]]; then
        CXX=clang++ meson setup "$dir" --buildtype=debugoptimized -Dwerror=true || return 1
    else
        meson configure "$dir" --buildtype=debugoptimized || return 1
    fi
    ninja -C "$dir" -j "$jobs"
}

# ThreadSanitizer over the shards (runtime/shard.*: the only code where threads share memory):
# clang, only test_runtime, only its shard cases (the rest is single-threaded by design).
tsan_build() {
    local dir=build/tsan
    if [[ ! -f $dir/meson-private/coredata.dat ]]; then
        CXX=clang++ meson setup "$dir" --buildtype=debug -Doptimization=1 -Db_sanitize=thread \
            -Db_lundef=false -Dwerror=true -Dexamples=disabled || return 1
    fi
    ninja -C "$dir" -j "$jobs" tests/test_runtime
}

# The servers' benchmark (bench/servers): its harness's unit tests, then its --quick run against
# nginx and redis-server (a smoke test: every cell must serve the exact bytes, no speed asserted).
servers_quick() {
    local dir=build/release
    if [[ ! -f $dir/meson-private/coredata.dat ]]; then
        CXX=g++ meson setup "$dir" --buildtype=release -Dbenchmarks=true -Dwerror=true || return 1
    fi
    ninja -C "$dir" -j "$jobs" examples/kv/corio-kv examples/http/corio-http || return 1
    python3 bench/servers/run.py --quick --build "$dir" --out "$log_dir/servers-quick"
}

# The parsers' libFuzzer targets (tests/fuzz): a clang ASan+UBSan build, then each target
# fuzz_<name> runs for CORIO_FUZZ_SECONDS (default 20) from its checked-in corpus
# tests/fuzz/corpus/<name>/ (new inputs go to a scratch folder, the checked-in corpus is read only).
fuzz_build() {
    local dir=build/fuzz
    if [[ ! -f $dir/meson-private/coredata.dat ]]; then
        # NOTE: clang 14's -fsanitize=function (part of `undefined`) fails on coroutine code
        # ("Cannot represent a difference across sections"); the rest of UBSan applies.
        CXX=clang++ meson setup "$dir" --buildtype=debug -Doptimization=1 -Dfuzz=true -Dwerror=true \
            -Dtests=disabled -Db_sanitize=address,undefined -Db_lundef=false \
            -Dcpp_args=-fno-sanitize=function || return 1
    fi
    ninja -C "$dir" -j "$jobs" "$@"
}

fuzz_one() {
    local name=$1 scratch
    fuzz_build "tests/fuzz/fuzz_$name" || return 1
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/corio-fuzz-$name.XXXXXX")
    local rc=0
    env "${asan_env[@]}" "build/fuzz/tests/fuzz/fuzz_$name" -max_total_time="${CORIO_FUZZ_SECONDS:-20}" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$scratch" "tests/fuzz/corpus/$name" || rc=$?
    rm -rf "$scratch"
    return "$rc"
}

run_fuzzers() {
    local corpus
    for corpus in tests/fuzz/corpus/*/; do
        [[ -d $corpus ]] || continue
        corpus=$(basename "$corpus")
        run_check "fuzz: fuzz_$corpus for ${CORIO_FUZZ_SECONDS:-20}s (build/fuzz, clang, ASan+UBSan)" \
            "fuzz-$corpus" fuzz_one "$corpus"
    done
}

# The laboratory's --quick run (issue 4): a release build of the lab servers (Asio's where
# asio.hpp was found) and the load generator, then bench/lab/run.py --quick. A smoke test: it
# asserts no speed, only that every style serves every cell with no error and no mismatched byte.
lab_quick() {
    local dir=build/release
    if [[ ! -f $dir/meson-private/coredata.dat ]]; then
        CXX=g++ meson setup "$dir" --buildtype=release -Dbenchmarks=true -Dwerror=true || return 1
    else
        meson configure "$dir" -Dbenchmarks=true || return 1
    fi
    local -a targets=(bench/loadgen bench/libcorio_alloc_counter.so)
    local job style
    for job in echo files; do
        for style in threads epoll uring corio asio asio_uring; do
            # Asio's rows exist only where the build found asio.hpp (examples/lab/meson.build).
            if ninja -C "$dir" -t query "examples/lab/lab_${job}_${style}" >/dev/null 2>&1; then
                targets+=("examples/lab/lab_${job}_${style}")
            fi
        done
    done
    ninja -C "$dir" -j "$jobs" "${targets[@]}" || return 1
    python3 bench/lab/run.py --quick --build "$dir" --no-charts --out "$log_dir/lab-quick"
}

# The soak run (bench/soak.py, issue 10): echo, corio-http and corio-kv at once for two minutes
# under normal, slow, abrupt, pipelining, malformed and never-reading clients (build/release);
# fails when a server's RSS, open fds or live tasks trend upward, a server stops answering, a
# normal client reads a wrong byte, or a server does not exit 0 on SIGTERM.
soak_quick() {
    local dir=build/release
    if [[ ! -f $dir/meson-private/coredata.dat ]]; then
        CXX=g++ meson setup "$dir" --buildtype=release -Dbenchmarks=true -Dwerror=true || return 1
    fi
    ninja -C "$dir" -j "$jobs" examples/echo examples/http/corio-http examples/kv/corio-kv ||
        return 1
    python3 bench/soak.py --build "$dir" --duration "${CORIO_SOAK_SECONDS:-120}" --no-charts \
        --out "$log_dir/soak"
}

main() {
    local began=$SECONDS
    corio_install_deps clang cmake cpio python3 curl redis-tools redis-server nginx-light wrk doxygen || build_failed "installing the Debian packages"
    mkdir -p "$log_dir"
    local name
    for name in "${builds[@]}"; do
        [[ -n ${build_options[$name]:-} ]] || build_failed "unknown build '$name'"
        configure_and_build "$name"
    done
    for name in "${builds[@]}"; do
        local bin found=0
        for bin in build/"$name"/tests/test_* build/"$name"/tests/*/test_*; do
            [[ -f $bin && -x $bin ]] || continue
            found=1
            run_binary "$name" "$bin"
        done
        # The whole suite once more on the epoll backend (docs/runtime.md, "Backends"): the same
        # binaries, so no build is added. Cases that only make sense on io_uring skip themselves.
        for bin in build/"$name"/tests/test_* build/"$name"/tests/*/test_*; do
            [[ -f $bin && -x $bin ]] || continue
            run_binary "$name" "$bin" "" epoll
        done
        if ((found == 0)); then
            echo "==> $name: no test binaries in build/$name/tests"
            total_failed=$((total_failed + 1))
        fi
    done
    if [[ " ${builds[*]} " == *" debug "* ]]; then
        run_fault_pass
        run_install_check
        run_check "subproject consumer: corio as a meson subproject (tests/subproject_consumer)" \
            subproject subproject_check
        run_check "examples: meson test --suite examples (build/debug)" examples \
            meson test -C build/debug --no-rebuild --suite examples --print-errorlogs
    fi
    # The API reference (docs/Doxyfile): every public class, function and member of runtime/, net/
    # and fs/ is documented, or the warnings are printed and the check fails. About a second.
    run_check "API reference: scripts/apidoc.sh (doxygen into build/docs/html, any warning fails)" \
        apidoc bash scripts/apidoc.sh
    if [[ ${CORIO_TEST_EXTRA:-1} == 1 ]]; then
        local failed_before=$total_failed
        run_check "clang: the whole tree builds with clang++ -O2 (build/clang)" clang-build \
            clang_build
        if ((total_failed == failed_before)); then
            local bin
            for bin in build/clang/tests/test_* build/clang/tests/*/test_*; do
                [[ -f $bin && -x $bin ]] || continue
                run_binary clang "$bin"
            done
        fi
        failed_before=$total_failed
        run_check "tsan: the shard tests with clang's ThreadSanitizer (build/tsan)" tsan-build \
            tsan_build
        if ((total_failed == failed_before)); then
            run_binary tsan build/tsan/tests/test_runtime "" "" "*shard_test*"
            run_binary tsan build/tsan/tests/test_runtime "" epoll "*shard_test*"
        fi
        run_check "laboratory: bench/lab/run.py --quick (build/release)" lab-quick lab_quick
        run_check "servers: bench/servers/test_run.py (the harness's own tests)" servers-units \
            python3 bench/servers/test_run.py
        run_check "servers: bench/servers/run.py --quick (nginx, redis-server; build/release)" \
            servers-quick servers_quick
        run_check "soak: bench/test_soak.py (the soak criterion's own tests)" soak-units \
            python3 bench/test_soak.py
        run_check "soak: bench/soak.py for ${CORIO_SOAK_SECONDS:-120}s (echo, corio-http, corio-kv; build/release)" \
            soak soak_quick
        run_fuzzers
    fi
    echo "==> done in $((SECONDS - began))s (logs in $root/$log_dir)"
    finish
}

main
