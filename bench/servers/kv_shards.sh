#!/bin/sh
# SPDX-License-Identifier: MIT
# corio-kv --shards 2 --cpus 0,1 under a CPU quota of 2Q against --shards 1 --cpus 0 under Q,
# in alternating pairs (ratios, not absolute figures: see DESIGN.md), with redis-benchmark SET/GET
# at -P 16 on random keys. Needs root (a cgroup v1 cpu or a v2 cpu controller) and redis-tools.
# Usage: [CONNS=50] bench/servers/kv_shards.sh BUILD/examples/kv/corio-kv [Q_PERCENT=40] [ROUNDS=3]
#        [N=1000000]
set -eu
bin=$1; q=${2:-40}; rounds=${3:-3}; n=${4:-1000000}
period=10000
if [ -d /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    root=/sys/fs/cgroup/cpu; v=1
else
    root=/sys/fs/cgroup; v=2; grep -qw cpu $root/cgroup.subtree_control || echo +cpu > $root/cgroup.subtree_control
fi
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    for s in 1 2; do rmdir "$root/kvshards-$$-$s" 2>/dev/null || true; done; rm -rf "$tmp"
}
trap cleanup EXIT
for s in 1 2; do
    cg=$root/kvshards-$$-$s; mkdir "$cg"
    quota=$((q * period * s / 100))
    if [ $v = 1 ]; then echo $period > "$cg/cpu.cfs_period_us"; echo $quota > "$cg/cpu.cfs_quota_us"
    else echo "$quota $period" > "$cg/cpu.max"; fi
done
run() { # SHARDS CPUS
    s=$1; cg=$root/kvshards-$$-$s; log=$tmp/server-$s-$i.log
    sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
        "$bin" --port 0 --shards "$s" --cpus "$2" > "$log" 2>&1 &
    pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on //p' "$log" 2>/dev/null || true)
        [ -n "$port" ] && break; sleep 0.05
    done
    for t in set get; do
        c0=$(cpu_ticks $pid); t0=$(throttled "$cg")
        r=$(redis-benchmark -p "$port" -t $t -P 16 -r 100000 -n "$n" -c "${CONNS:-50}" --csv -q | tail -1 |
            cut -d, -f2 | tr -d '"')
        c1=$(cpu_ticks $pid); t1=$(throttled "$cg")
        # server CPU per request (all its threads, from /proc/PID/stat, 100 ticks/s) and the
        # share of the cgroup's periods that were throttled (near 1: the quota set the pace)
        echo "shards=$s quota=$((q * s))% $t rps=$r cpu_us_per_req=$(echo "($c1 - $c0) * 10000 / $n" | bc -l | cut -c1-5) throttled=$(echo "$t1 $t0" | awk '{split($1,a,"/"); split($2,b,"/"); d=a[2]-b[2]; printf "%.2f", d ? (a[1]-b[1])/d : 0}')"
    done
    kill -INT $pid; wait $pid; pid=
}
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
throttled() { # nr_throttled/nr_periods of a cgroup
    awk '/^nr_periods/ {p=$2} /^nr_throttled/ {t=$2} END {print t "/" p}' "$1/cpu.stat"
}
for i in $(seq "$rounds"); do
    run 1 0
    run 2 0,1
done
