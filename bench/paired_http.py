#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Paired, alternating measurements of HTTP servers: server CPU per request under a keep-alive wrk
# load of one small file, each server started fresh per run, pinned to one CPU and wrk to the
# other. Runs A, B, A, B ... so that drift on a shared host hits every variant alike.
"""Compare HTTP servers by server CPU time per request (paired, alternating runs).

Example (the numbers in docs/servers.md, "corio-http through the provided-buffer ring"):
  python3 bench/paired_http.py --connections 100,1000 --runs 5 \\
      --variant 'ring=build/release/examples/http/corio-http --provided-buffers 512' \\
      --variant 'own=build/release/examples/http/corio-http --provided-buffers 0'
Each variant is NAME=COMMAND; `--root DIR --port 0` are appended (the server must print
`listening on PORT`). The document root holds one file of --size bytes (100), fetched by
`wrk -t1 -cN -dD --latency`. Prints one JSON line per run and a summary per connection count:
the median (and range) of server CPU µs per request (utime + stime of the server process), its
ratio to the first variant's median, requests per second, and VmRSS at the end of the load.
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

from support.procfs import cpu_ticks, status_kib

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    return cpu_ticks(pid) / TICK  # utime + stime


def wrk(args, port, connections, seconds):
    cmd = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{connections}",
           f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/file"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 2 * seconds).stdout
    m = re.search(r"(\d+) requests in", out)
    if not m:
        sys.exit(f"wrk printed no request count:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return int(m.group(1)), (int(errors.group(1)) if errors else 0), (p99.group(1) if p99 else "")


def one_run(args, root, command, connections):
    cmd = ["taskset", "-c", str(args.server_cpu)] + command + ["--root", root, "--port", "0"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = server.stdout.readline().decode()
        if not line.startswith("listening on "):
            sys.exit(f"{command}: did not start: {line!r}")
        port = int(line.split()[2])
        wrk(args, port, connections, args.warmup)
        before = cpu_seconds(server.pid)
        requests, errors, p99 = wrk(args, port, connections, args.duration)
        after = cpu_seconds(server.pid)
        rss = status_kib(server.pid, "VmRSS")
        return {"cpu_us_per_req": (after - before) * 1e6 / max(requests, 1),
                "rps": requests / args.duration, "errors": errors, "p99": p99, "rss_kib": rss}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", action="append", required=True, help="NAME=COMMAND")
    p.add_argument("--connections", default="100,1000")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--duration", type=int, default=3, help="seconds of wrk per run")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk before measuring")
    p.add_argument("--size", type=int, default=100, help="bytes of the file fetched")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    args = p.parse_args()
    variants = []
    for v in args.variant:
        name, _, command = v.partition("=")
        variants.append((name, shlex.split(command)))
    with tempfile.TemporaryDirectory(prefix="paired-http-") as root:
        with open(os.path.join(root, "file"), "wb") as f:
            f.write(bytes(ord("a") + i % 26 for i in range(args.size)))
        for connections in [int(c) for c in args.connections.split(",")]:
            results = {name: [] for name, _ in variants}
            for run in range(args.runs):
                for name, command in variants:
                    r = one_run(args, root, command, connections)
                    r.update({"variant": name, "connections": connections, "run": run})
                    print(json.dumps(r), flush=True)
                    results[name].append(r)
            first = statistics.median(x["cpu_us_per_req"] for x in results[variants[0][0]])
            for name, _ in variants:
                cpu = [x["cpu_us_per_req"] for x in results[name]]
                rps = [x["rps"] for x in results[name]]
                rss = [x["rss_kib"] for x in results[name]]
                med = statistics.median(cpu)
                print(f"c={connections} {name}: cpu {med:.2f} us/req ({min(cpu):.2f}-"
                      f"{max(cpu):.2f}), ratio {med / first:.3f}, rps {statistics.median(rps):.0f} "
                      f"({min(rps):.0f}-{max(rps):.0f}), rss {statistics.median(rss)} KiB",
                      flush=True)


if __name__ == "__main__":
    main()
