#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Paired, alternating measurements of echo servers: server CPU per round trip and resident memory
# under load, each server started fresh per run, pinned to one CPU and the load generator to the
# other. Runs A, B, C, A, B, C ... so that drift on a shared host hits every variant alike.
"""Compare echo servers by server CPU time per round trip (paired, alternating runs).

Example (the numbers in docs/provided_buffers.md):
  python3 bench/paired_echo.py --loadgen build/release/bench/loadgen --connections 50,1000,10000 \\
      --runs 5 --variant 'ring=build/release/examples/echo --provided-buffers 512' \\
      --variant 'own=build/release/examples/echo --provided-buffers 0' \\
      --variant 'uring=build/release/examples/lab/lab_echo_uring'
Each variant is NAME=COMMAND (the server must accept `--port 0` and print `listening on PORT`).
Prints one JSON line per run and a summary per connection count: the median (and range) of
server CPU ns per round trip (utime + stime of the server process), its ratio to the first
variant's median, VmRSS at the end of the load and VmHWM.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time

from support.procfs import status_kib


def one_run(args, command, connections):
    server = subprocess.Popen(["taskset", "-c", str(args.server_cpu)] + command + ["--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = server.stdout.readline().decode()
        if not line.startswith("listening on "):
            sys.exit(f"{command[0]} did not start: {line!r}")
        port = line.split()[2]
        load = ["taskset", "-c", str(args.load_cpu), args.loadgen, "--port", port,
                "--connections", str(connections), "--size", str(args.size),
                "--duration", str(args.duration), "--warmup", str(args.warmup),
                "--connect-batch", "500", "--server-pid", str(server.pid),
                "--server-cpu", str(args.server_cpu)]
        out = subprocess.run(load, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            sys.exit(f"loadgen failed: {out.stderr}")
        report = json.loads(out.stdout.strip().splitlines()[-1])
        report["server_hwm_kib"] = status_kib(server.pid, "VmHWM")
        return report
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--variant", action="append", required=True, help="NAME=COMMAND")
    p.add_argument("--connections", default="50,1000,10000")
    p.add_argument("--runs", type=int, default=5, help="runs per variant and connection count")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--duration", type=float, default=3)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    args = p.parse_args()
    variants = []
    for v in args.variant:
        name, _, command = v.partition("=")
        variants.append((name, shlex.split(command)))

    for connections in [int(c) for c in args.connections.split(",")]:
        ns = {name: [] for name, _ in variants}
        core = {name: [] for name, _ in variants}
        rss = {name: [] for name, _ in variants}
        hwm = {name: [] for name, _ in variants}
        for run in range(args.runs):
            for name, command in variants:
                r = one_run(args, command, connections)
                per = r["server_cpu_s"] * 1e9 / max(1, r["requests"])
                ns[name].append(per)
                core[name].append(r.get("core_busy_s", 0) * 1e9 / max(1, r["requests"]))
                rss[name].append(r["server_rss_kb"])
                hwm[name].append(r["server_hwm_kib"])
                print(json.dumps({"connections": connections, "variant": name, "run": run,
                                  "server_ns_per_rt": round(per),
                                  "core_ns_per_rt": round(core[name][-1]), "rps": r["rps"],
                                  "open": r["connections_open"], "errors": r["errors"],
                                  "rss_kib": r["server_rss_kb"],
                                  "hwm_kib": r["server_hwm_kib"]}), flush=True)
        base = statistics.median(ns[variants[0][0]])
        core_base = statistics.median(core[variants[0][0]])
        for name, _ in variants:
            m = statistics.median(ns[name])
            c = statistics.median(core[name])
            print(f"SUMMARY connections={connections} {name}: server ns/round trip median "
                  f"{m:.0f} (range {min(ns[name]):.0f}-{max(ns[name]):.0f}), "
                  f"{m / base:.3f}x {variants[0][0]}; server core busy ns/round trip median "
                  f"{c:.0f} (range {min(core[name]):.0f}-{max(core[name]):.0f}), "
                  f"{c / max(core_base, 1e-9):.3f}x; RSS median {statistics.median(rss[name]):.0f}"
                  f" KiB, HWM max {max(hwm[name])} KiB", flush=True)


if __name__ == "__main__":
    main()
