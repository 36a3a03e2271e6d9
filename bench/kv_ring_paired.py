#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# corio-kv's server CPU per request in two configurations (by default: the shared ring against a
# buffer per connection), measured in pairs that alternate which one runs first.
"""Compare corio-kv's server CPU per request between two argument sets, paired and alternating.

Each repetition starts a fresh server per side, pinned to --server-cpu, and runs
redis-benchmark pinned to --client-cpu: a warm-up, then -n REQUESTS of one test. CPU is the
server's utime+stime over the measured run (/proc/PID/stat) divided by the requests; hwm_kib is
the server's peak resident set (VmHWM) after it. The side
that goes first alternates per repetition. Prints one JSON line per run and a summary per cell:
the median of the per-repetition ratios A/B with their range.

Example (the numbers in docs/provided_buffers.md):
  python3 bench/kv_ring_paired.py --server build/release/examples/kv/corio-kv --reps 7 \\
      --cells 50x1,50x16,1000x1 --a '--provided-buffers 2048' --b '--provided-buffers 0'
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

from support.procfs import cpu_ticks as proc_ticks, status_kib

CLK_TCK = os.sysconf("SC_CLK_TCK")


def start(args, extra):
    cmd = ["taskset", "-c", str(args.server_cpu), args.server, "--port", "0"] + extra
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, int(line.split()[2])


def bench(args, port, clients, pipeline, n):
    cmd = ["taskset", "-c", str(args.client_cpu), "redis-benchmark", "-h", "127.0.0.1", "-p",
           str(port), "-c", str(clients), "-P", str(pipeline), "-t", args.test, "-n", str(n),
           "-d", str(args.value_size), "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"redis-benchmark failed: {out.stderr[-300:]}")
    for line in out.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) > 1 and cells[0] != "test":
            return float(cells[1])
    sys.exit(f"no result in {out.stdout!r}")


def run_side(args, extra, clients, pipeline):
    proc, port = start(args, extra)
    try:
        bench(args, port, clients, pipeline, max(clients * 4, args.requests // 5))  # warm-up
        t0 = proc_ticks(proc.pid)
        rps = bench(args, port, clients, pipeline, args.requests)
        ticks = proc_ticks(proc.pid) - t0
        hwm = status_kib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"rps": rps, "cpu_us_per_req": ticks / CLK_TCK / args.requests * 1e6, "hwm_kib": hwm}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="the corio-kv binary")
    p.add_argument("--a", default="--provided-buffers 2048", help="side A's server arguments")
    p.add_argument("--b", default="--provided-buffers 0", help="side B's server arguments")
    p.add_argument("--cells", default="50x1,50x16,1000x1", help="CLIENTSxPIPELINE,...")
    p.add_argument("--test", default="get", help="redis-benchmark -t")
    p.add_argument("--value-size", type=int, default=64, help="redis-benchmark -d")
    p.add_argument("--requests", type=int, default=400000, help="redis-benchmark -n (measured)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    args = p.parse_args()
    sides = {"A": shlex.split(args.a), "B": shlex.split(args.b)}
    for cell in args.cells.split(","):
        clients, pipeline = (int(x) for x in cell.split("x"))
        ratios, per_side = [], {"A": [], "B": []}
        for rep in range(args.reps):
            order = ["A", "B"] if rep % 2 == 0 else ["B", "A"]
            got = {}
            for side in order:
                got[side] = run_side(args, sides[side], clients, pipeline)
                print(json.dumps({"cell": cell, "rep": rep, "side": side, "args": args.a if
                                  side == "A" else args.b, **got[side]}), flush=True)
                per_side[side].append(got[side]["cpu_us_per_req"])
            ratios.append(got["A"]["cpu_us_per_req"] / got["B"]["cpu_us_per_req"])
        print(json.dumps({
            "cell": cell, "test": args.test, "a": args.a, "b": args.b,
            "a_cpu_us_per_req_median": round(statistics.median(per_side["A"]), 3),
            "b_cpu_us_per_req_median": round(statistics.median(per_side["B"]), 3),
            "ratio_a_over_b_median": round(statistics.median(ratios), 3),
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        }), flush=True)


if __name__ == "__main__":
    main()
