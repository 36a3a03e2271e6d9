#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Does a second shard double a server's throughput? echo and corio-http (100 B) at
# `--shards 2 --cpus 0,1` under a cgroup CPU quota of 2 x Q against `--shards 1 --cpus 0` under Q.
# Usage: bench/servers/shards.py [--build build/release] [--quota 0.3] [--reps 7]
#        [--jobs echo,http,http-close] [--accept each,one]
"""Paired runs of one shard under a CPU quota Q against two shards under 2 x Q.

The quota (one cgroup per run, bench/servers/run.py's CpuCap, 10 ms CFS periods) makes the
server the bottleneck on a 2-vCPU VM whose load generator needs CPU too: with Q well below one
CPU, the client has room to spare and requests per second measure the server. Each repetition
runs both configurations back to back, the order alternating, and the ratio two/one is taken per
repetition (paired) before the median. `throttled` is the share of the cgroup's CFS periods in
which the server used up its quota: near 1, the server set the pace; well below, something
else did (the client, or other programs on the CPUs) and that run measures less.
echo load: bench/loadgen (C connections, one 100-byte message in flight each, every byte
checked); corio-http load: wrk -t1 on GET of a 100-byte file, keep-alive; http-close: the same
with `Connection: close` (a new connection per request: accepting is half the work).
`--accept each,one` measures the two-shard server both ways: each shard on its own SO_REUSEPORT
listener, or shard 0 accepting and handing the connections round robin (examples' --accept).
"""

import argparse
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _load_run():
    # NOTE: by path: the harness beside this file is also called run.py (see its own loader).
    spec = importlib.util.spec_from_file_location("corio_servers_run", os.path.join(HERE, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _load_run()


class SharedCap(run.CpuCap):
    """run.py's CpuCap holding `shards` x `percent` % of one CPU (a quota over several CPUs),
    enforced per `period_us`."""

    def __init__(self, percent, shards, name, period_us=run.CAP_PERIOD_US):
        self.shards, self.period_us = shards, period_us
        super().__init__(percent, name=name)

    def limit_files(self):
        quota = str(run.cap_quota_us(self.percent, self.period_us) * self.shards)
        if self.version == "v1":
            return [("cpu.cfs_period_us", str(self.period_us)), ("cpu.cfs_quota_us", quota)]
        return [("cpu.max", f"{quota} {self.period_us}")]


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for _ in range(3):
        line = p.stdout.readline()
        m = re.match(r"listening on (\d+)", line)
        if m:
            return p, int(m.group(1))
    p.kill()
    raise RuntimeError(f"{cmd[0]} did not print its port")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return p.returncode


def client(args, cmd):
    """The load generator's command line, pinned with --client-cpu."""
    return cmd if args.client_cpu is None else ["taskset", "-c", str(args.client_cpu)] + cmd


def load_echo(args, port):
    cmd = [os.path.join(args.build, "bench", "loadgen"), "--port", str(port), "--connections",
           str(args.connections), "--size", "100", "--warmup", str(args.warmup), "--duration",
           str(args.duration)]
    out = subprocess.run(client(args, cmd), capture_output=True, text=True, timeout=120)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r["errors"] or r["mismatches"] or r["connections_open"] != args.connections:
        raise RuntimeError(f"echo load failed: {out.stdout} {out.stderr}")
    return r["rps"]


def load_http(args, port, close=False):
    url = f"http://127.0.0.1:{port}/f100"
    header = ["-H", "Connection: close"] if close else []
    warm = ["wrk", "-t1", f"-c{args.connections}", f"-d{max(1, round(args.warmup))}s"] + header
    subprocess.run(client(args, warm + [url]), capture_output=True, text=True, timeout=120)
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{round(args.duration)}s"] + header + [url]
    out = subprocess.run(client(args, cmd), capture_output=True, text=True, timeout=120).stdout
    if re.search(r"Non-2xx|Socket errors", out):
        raise RuntimeError(f"http load failed: {out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def one_run(args, job, shards, docroot, rep, accept="each"):
    cpus = "0" if shards == 1 else args.two_cpus
    binary = (os.path.join(args.build, "examples", "echo") if job == "echo"
              else os.path.join(args.build, "examples", "http", "corio-http"))
    cmd = [binary, "--port", "0", "--bind", "127.0.0.1", "--shards", str(shards), "--cpus", cpus,
           "--accept", accept]
    if job != "echo":
        cmd += ["--root", docroot]
    cap = SharedCap(args.quota * 100, shards, f"corio-shards-{os.getpid()}-{job}-{shards}-{rep}",
                    args.period_us)
    try:
        p, port = start(cap.wrap(cmd))
        try:
            cap.check(p.pid)
            before = cap.throttling()
            rps = (load_echo(args, port) if job == "echo"
                   else load_http(args, port, close=job == "http-close"))
            after = cap.throttling()
        finally:
            status = stop(p)
        if status != 0:
            raise RuntimeError(f"{job} --shards {shards} exited {status} on SIGTERM")
    finally:
        cap.remove()
    share = run.throttling_fields(before, after)["cap_throttled_share"]
    return rps, share


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--jobs", default="echo,http")
    ap.add_argument("--quota", type=float, default=0.3, help="Q: CPUs per shard (0.1 to 1)")
    ap.add_argument("--period-us", type=int, default=run.CAP_PERIOD_US,
                    help="the CFS period (run.py's 10 ms by default); the kernel hands a "
                    "quota to each CPU in slices of sched_cfs_bandwidth_slice_us (5 ms), so a "
                    "quota of a few ms per period can land on one CPU of two")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--two-cpus", default="0,1",
                    help="--cpus of the two-shard server (0: both on the one-shard server's CPU, "
                    "to keep the client off the servers' CPUs with --client-cpu 1)")
    ap.add_argument("--client-cpu", type=int, default=None, help="pin the load generator")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--accept", default="each",
                    help="the two-shard server's --accept modes to measure (each, one, or both)")
    args = ap.parse_args()
    docroot = tempfile.mkdtemp(prefix="corio-shards-")
    with open(os.path.join(docroot, "f100"), "wb") as f:
        f.write(b"x" * 100)
    print(f"# one: --shards 1 --cpus 0; two: --shards 2 --cpus {args.two_cpus}; client CPU "
          f"{'any' if args.client_cpu is None else args.client_cpu}")
    print(f"# quota Q = {args.quota} CPU per shard ({args.period_us} us CFS periods); "
          f"{args.connections} "
          f"connections; {args.duration} s measured after {args.warmup} s; {args.reps} reps")
    modes = args.accept.split(",")
    print("job        rep  one_rps  (thr)" +
          "".join(f"   two_{m:4} (thr)  two/one" for m in modes))
    for job in args.jobs.split(","):
        ones = []
        twos = {m: [] for m in modes}
        ratios = {m: [] for m in modes}
        for rep in range(args.reps):
            runs = [(1, "each")] + [(2, m) for m in modes]
            if rep % 2 == 1:
                runs.reverse()
            got = {}
            for shards, mode in runs:
                got[(shards, mode)] = one_run(args, job, shards, docroot, rep, mode)
            one, t1 = got[(1, "each")]
            ones.append(one)
            line = f"{job:10} {rep:3} {one:8.0f} ({t1:.2f})"
            for m in modes:
                two, t2 = got[(2, m)]
                twos[m].append(two)
                ratios[m].append(two / one)
                line += f" {two:9.0f} ({t2:.2f}) {two / one:7.2f}"
            print(line, flush=True)
        line = f"{job:10} median {statistics.median(ones):8.0f}       "
        for m in modes:
            line += (f" {statistics.median(twos[m]):9.0f}        {statistics.median(ratios[m]):7.2f}"
                     f" ({m}: {min(ratios[m]):.2f} .. {max(ratios[m]):.2f})")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
