#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Side-by-side benchmark of corio's servers against the usual references: corio-kv against
# redis-server (redis-benchmark) and corio-http against nginx with one worker (wrk).
# Usage: bench/servers/run.py [--quick] [--build build/release] [--jobs kv,http] [--reps N]
"""Run corio-kv against redis-server and corio-http against nginx; report medians and ratios.

Every cell starts a fresh server pinned to CPU 0 and runs the load generator pinned to CPU 1
(taskset). Each repetition runs both servers of a cell group back to back, the order rotated
per repetition, and the ratios corio/reference are taken per repetition (paired) before the
median: on a shared VM the noise between separate runs is larger than the differences measured.
Server CPU per request is counted twice: the busy time of the server's core (CPU 0, including the
kernel's softirq network work done there) and the server processes' own utime+stime (all threads
and child processes, e.g. nginx's worker).
"""

import argparse
import csv
import datetime
import http.client
import importlib.util
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _load_lab():
    # NOTE: loaded by path rather than `import run`: this file is also called run.py, and the
    # directory of the running script comes first on sys.path.
    path = os.path.join(ROOT, "bench", "lab", "run.py")
    spec = importlib.util.spec_from_file_location("corio_lab_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab = _load_lab()
log, fmt, median, cpu_busy = lab.log, lab.fmt, lab.median, lab.cpu_busy
CLK_TCK = lab.CLK_TCK

# The backlog every server gets: corio's listener uses SOMAXCONN (4096 on Linux 5.4+); nginx
# (511) and redis-server (511) are raised to it so that -c 1000 connects alike everywhere.
BACKLOG = 4096

# ----- the jobs -----

# Targets from the issue: the paired req/s ratio corio/reference must reach these.
KV_CELLS = [(50, 1), (50, 16), (1000, 1)]  # (clients, pipeline)
HTTP_FILES = [("100b", 100), ("64k", 64 * 1024)]
HTTP_CONNECTIONS = [100, 1000]


def kv_target(connections, pipeline):
    return 1.0 if (connections, pipeline) == (50, 1) else 1.3


def http_target(file_size):
    return 1.3 if file_size <= 100 else 1.0


# ----- process CPU time -----


def proc_ticks(pid):
    """utime+stime of one process (all its threads), in clock ticks; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def descendants(pid):
    """pid and every process below it (nginx's worker, anything a server forks)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class CpuMeter:
    """Server CPU over a measured phase: its core's busy ticks and its process tree's ticks."""

    def __init__(self, pid, cpu, cap=None):
        self.pid, self.cpu, self.cap = pid, cpu, cap
        self.throttling0 = cap.throttling() if cap else None
        self.pids = descendants(pid)
        self.proc0 = {p: proc_ticks(p) for p in self.pids}
        self.core0 = cpu_busy(cpu) if cpu is not None else None
        self.t0 = time.monotonic()

    def stop(self):
        """(process CPU seconds, core busy seconds or None, wall seconds)."""
        core = (cpu_busy(self.cpu) - self.core0) / CLK_TCK if self.cpu is not None else None
        wall = time.monotonic() - self.t0
        ticks = 0
        for p in descendants(self.pid):
            now = proc_ticks(p)
            if now is not None:
                ticks += now - (self.proc0.get(p) or 0)  # a child born during the phase: all of it
        return ticks / CLK_TCK, core, wall


def core_background(cpu, seconds=0.2):
    """Busy fraction of the server's core while the freshly started server idles."""
    if cpu is None:
        return None
    b0 = cpu_busy(cpu)
    time.sleep(seconds)
    return (cpu_busy(cpu) - b0) / CLK_TCK / seconds


# ----- capping the servers' CPU (--server-cpu-quota) -----

CGROUP_ROOT = "/sys/fs/cgroup"
# A short CFS period: the quota is enforced in 10 ms slices, so a capped server runs at most a
# few ms before it waits, rather than 50 ms bursts and stalls at the default 100 ms period.
CAP_PERIOD_US = 10_000
# Below this share of periods throttled, the cgroup did not use up its quota most of the time:
# something else set the pace (the client, or other programs on the server's core).
SERVER_BOUND_SHARE = 0.5


class CgroupError(RuntimeError):
    pass


def cap_quota_us(percent, period_us=CAP_PERIOD_US):
    """The CFS quota giving `percent` % of one CPU; the kernel refuses quotas under 1 ms."""
    quota = round(period_us * percent / 100)
    if quota < 1000 or percent > 100:
        raise ValueError(f"a CPU quota of {percent:g} % must be 10 to 100 (the kernel's minimum "
                         f"quota is 1 ms of the {period_us // 1000} ms period; a server pinned "
                         "to one CPU cannot use more than 100 %)")
    return quota


def find_cpu_cgroup(root=CGROUP_ROOT):
    """("v1" or "v2", directory under which to create a child) of the hierarchy that has the cpu
    controller: v1's cpu mount, or a v2 tree (pure, or hybrid's `unified`) offering cpu."""
    if os.path.exists(os.path.join(root, "cpu", "cpu.cfs_quota_us")):
        return "v1", os.path.join(root, "cpu")
    for tree in (root, os.path.join(root, "unified")):
        try:
            with open(os.path.join(tree, "cgroup.controllers")) as f:
                if "cpu" in f.read().split():
                    return "v2", tree
        except OSError:
            continue
    return None


def parse_cpu_stat(text):
    """cpu.stat's `key value` lines as {key: int}."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def throttling(stat):
    """{periods, throttled, throttled_us} from a parsed cpu.stat of either version (v1 counts
    throttled_time in ns, v2 throttled_usec)."""
    if "throttled_usec" in stat:
        throttled_us = stat["throttled_usec"]
    else:
        throttled_us = stat.get("throttled_time", 0) / 1000
    return {"periods": stat.get("nr_periods", 0), "throttled": stat.get("nr_throttled", 0),
            "throttled_us": throttled_us}


def throttling_fields(before, after):
    """The runs.csv columns of one measured run: the cap's periods, those in which the server
    was throttled, its time throttled, and their share (None when no period elapsed)."""
    periods = after["periods"] - before["periods"]
    throttled = after["throttled"] - before["throttled"]
    return {"cap_periods": periods, "cap_throttled": throttled,
            "cap_throttled_ms": round((after["throttled_us"] - before["throttled_us"]) / 1000, 1),
            "cap_throttled_share": round(throttled / periods, 3) if periods else None}


class CpuCap:
    """A dedicated cgroup holding `percent` % of one CPU, for one run; every server process
    starts inside it (children inherit it: nginx's worker). remove() when done."""

    def __init__(self, percent, root=None, name=None):
        self.percent, self.quota_us = percent, cap_quota_us(percent)
        root = root or CGROUP_ROOT
        found = find_cpu_cgroup(root)
        if found is None:
            raise CgroupError(f"no cgroup cpu controller under {root} (neither v1's cpu/ nor a "
                              "v2 cgroup.controllers listing cpu): --server-cpu-quota cannot cap "
                              "the servers")
        self.version, self.parent = found
        self.path = os.path.join(self.parent, name or f"corio-bench-{os.getpid()}")
        try:
            if self.version == "v2":
                self._enable_cpu_controller()
            os.mkdir(self.path)
        except OSError as e:
            raise CgroupError(f"cannot create the cgroup {self.path}: {e} (needs root or a "
                              "delegated cgroup): --server-cpu-quota cannot cap the servers")
        try:
            for name, value in self.limit_files():
                self._write(name, value)
        except OSError as e:
            self.remove()
            raise CgroupError(f"cannot set the CPU quota in {self.path}: {e}")

    def limit_files(self):
        """(file, value) pairs that set the quota, in the order they must be written."""
        if self.version == "v1":
            return [("cpu.cfs_period_us", str(CAP_PERIOD_US)),
                    ("cpu.cfs_quota_us", str(self.quota_us))]
        return [("cpu.max", f"{self.quota_us} {CAP_PERIOD_US}")]

    def describe(self):
        files = ", ".join(f"{n} {v}" for n, v in self.limit_files())
        return f"cgroup {self.version} {self.path} ({files})"

    def _enable_cpu_controller(self):
        # v2 offers a controller to children only when the parent enables it for its subtree.
        control = os.path.join(self.parent, "cgroup.subtree_control")
        with open(control) as f:
            if "cpu" in f.read().split():
                return
        with open(control, "w") as f:
            f.write("+cpu")

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def wrap(self, cmd):
        """`cmd` run by a shell that first moves itself into the cgroup, then execs: the server
        (same pid) is capped from its first instruction, before it forks or accepts."""
        procs = os.path.join(self.path, "cgroup.procs")
        return ["sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh", procs] + cmd

    def pids(self):
        with open(os.path.join(self.path, "cgroup.procs")) as f:
            return {int(p) for p in f.read().split()}

    def check(self, pid):
        """Raises unless pid and every process below it are in the cgroup."""
        outside = set(descendants(pid)) - self.pids()
        if outside:
            raise RuntimeError(f"processes {sorted(outside)} are not in {self.path}")

    def throttling(self):
        with open(os.path.join(self.path, "cpu.stat")) as f:
            return throttling(parse_cpu_stat(f.read()))

    def remove(self):
        """Removes the cgroup; a leftover process (a server that outlived SIGTERM's wait) is
        moved to the parent first, since a cgroup with members cannot be removed."""
        for attempt in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if attempt == 49:
                    raise
            try:
                for pid in self.pids():
                    with open(os.path.join(self.parent, "cgroup.procs"), "w") as f:
                        f.write(str(pid))
            except OSError:
                pass
            time.sleep(0.02)  # an exiting process leaves the cgroup a moment after its exit


# ----- starting servers -----


def free_port():
    """A loopback port that was free a moment ago (for servers that cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd, cpu):
    return (["taskset", "-c", str(cpu)] if cpu is not None else []) + cmd


def server_command(cmd, cpu, cap):
    """A server's command line: pinned to `cpu`, and started inside `cap`'s cgroup if any."""
    cmd = pinned(cmd, cpu)
    return cap.wrap(cmd) if cap else cmd


def start_on_port(cmd, port, cpu, log_path, cap=None, timeout=10.0):
    """Starts a server that listens on a port we chose; waits until it accepts a connection."""
    with open(log_path, "w") as out:
        proc = subprocess.Popen(server_command(cmd, cpu, cap), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return proc
            except OSError:
                time.sleep(0.02)
    except BaseException:  # Ctrl-C: never leave a server behind (nor in the run's cgroup)
        lab.stop_server(proc)
        raise
    lab.stop_server(proc)
    with open(log_path, errors="replace") as f:
        tail = f.read()[-300:].strip().replace("\n", " | ")
    raise RuntimeError(f"not accepting on port {port} within {timeout:.0f} s: {tail}")


class Side:
    """One server of a job: how to start it, under which name."""

    def __init__(self, name, kind, binary, missing=None):
        self.name, self.kind, self.binary, self.missing = name, kind, binary, missing
        self.docroot, self.nginx_extra = None, ""

    def start(self, tmp, cpu, log_path, cap=None):
        """(process, port). tmp is this cell's private directory; docroot set by the job. With
        a CpuCap, the server and all its processes run in its cgroup."""
        proc, port = self._start(tmp, cpu, log_path, cap)
        if cap:
            try:
                cap.check(proc.pid)
            except (RuntimeError, OSError):
                lab.stop_server(proc)
                raise
        return proc, port

    def _start(self, tmp, cpu, log_path, cap):
        if self.kind.startswith("corio"):
            args = ["--port", "0", "--bind", "127.0.0.1"]
            args += (["--appendonly", "no", "--dir", tmp] if self.kind == "corio-kv"
                     else ["--root", self.docroot])
            cmd = server_command([self.binary] + args, cpu, cap)
            return lab.start_server(cmd[0], cmd[1:], None, log_path)
        port = free_port()
        if self.kind == "redis":
            cmd = [self.binary, "--save", "", "--appendonly", "no", "--port", str(port),
                   "--bind", "127.0.0.1", "--dir", tmp, "--tcp-backlog", str(BACKLOG),
                   "--daemonize", "no", "--logfile", ""]
        else:
            conf = write_nginx_conf(tmp, port, self.docroot, self.nginx_extra)
            cmd = [self.binary, "-p", tmp, "-c", conf, "-e", os.path.join(tmp, "error.log")]
        return start_on_port(cmd, port, cpu, log_path, cap), port


def write_nginx_conf(tmp, port, docroot, extra=""):
    """The nginx side: one worker, no access log, sendfile; every path inside tmp. `extra` is
    added to the http block (e.g. "open_file_cache max=100;")."""
    conf = os.path.join(tmp, "nginx.conf")
    temp_paths = "\n".join(f"    {k}_temp_path {tmp}/{k};"
                           for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
error_log {tmp}/error.log;
pid {tmp}/nginx.pid;
events {{
    # The default (512) would refuse -c 1000.
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    default_type application/octet-stream;
{temp_paths}
{extra}
    server {{
        listen 127.0.0.1:{port} backlog={BACKLOG};
        root {docroot};
        location / {{ }}
    }}
}}
""")
    return conf


# ----- checking the replies before the load -----


def resp_command(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out.append(f"${len(a)}\r\n".encode() + a + b"\r\n")
    return b"".join(out)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise RuntimeError(f"connection closed after {len(buf)} of {n} reply bytes")
        buf += chunk
    return buf


def verify_kv(port):
    """SET then GET a binary value (CR LF inside), then GET a missing key: exact RESP replies."""
    value = bytes(range(256)) + b"\r\n$3\r\n" + os.urandom(64)
    key = b"corio:bench:verify"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        checks = [(resp_command(b"SET", key, value), b"+OK\r\n"),
                  (resp_command(b"GET", key), f"${len(value)}\r\n".encode() + value + b"\r\n"),
                  (resp_command(b"GET", key + b":missing"), b"$-1\r\n")]
        for request, expected in checks:
            s.sendall(request)
            got = recv_exact(s, len(expected))
            if got != expected:
                raise RuntimeError(f"reply to {request[:40]!r}: {got[:60]!r}, "
                                   f"expected {expected[:60]!r}")


def verify_http(port, path, expected):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/" + path)
        reply = conn.getresponse()
        body = reply.read()
    finally:
        conn.close()
    if reply.status != 200:
        raise RuntimeError(f"GET /{path}: status {reply.status}")
    if body != expected:
        raise RuntimeError(f"GET /{path}: {len(body)} body bytes differ from the file's "
                           f"{len(expected)}")


def server_stats(cell_dir, tag, side):
    """The stats line corio's servers print when they stop, over their whole life (warm-up and
    checks included), prefixed `srv_` for runs.csv; {} for the references."""
    if not side.kind.startswith("corio"):
        return {}
    stats = {}
    for _ in range(25):  # the thread copying the server's stdout may still be writing
        stats = lab.parse_server_stats(os.path.join(cell_dir, tag + ".log.stdout"))
        if stats:
            break
        time.sleep(0.02)
    return {f"srv_{k}": v for k, v in stats.items()
            if k in ("accepted", "requests", "commands", "kernel_enters", "loop_turns",
                     "cq_overflows", "timed_out", "rejected", "protocol_errors")}


# ----- the load generators -----


def parse_redis_csv(text):
    """redis-benchmark --csv: {"rps": .., "p50_us": .., "p99_us": ..} of its one test."""
    lines = [l for l in text.splitlines() if l.startswith('"')]
    if len(lines) < 2:
        return None
    head = [h.strip('"') for h in lines[0].split(",")]
    vals = [v.strip('"') for v in lines[1].split(",")]
    row = dict(zip(head, vals))
    try:
        return {"rps": float(row["rps"]),
                "p50_us": float(row["p50_latency_ms"]) * 1000 if "p50_latency_ms" in row else None,
                "p99_us": float(row["p99_latency_ms"]) * 1000 if "p99_latency_ms" in row else None}
    except (KeyError, ValueError):
        return None


WRK_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def wrk_latency(text):
    for unit in sorted(WRK_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * WRK_UNITS[unit]
    return float(text)


def parse_wrk(text):
    """wrk --latency output: rps, requests, p50/p99 (us), errors (socket errors + non-2xx/3xx)."""
    out = {"errors": 0, "socket_errors": 0, "non2xx": 0}
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if len(words) >= 4 and words[1] == "requests" and words[2] == "in":
            out["requests"] = int(words[0])
            out["seconds"] = wrk_latency(words[3].rstrip(",")) / 1e6
        elif line.startswith("Requests/sec:"):
            out["rps"] = float(words[1])
        elif words[0] in ("50%", "99%") and len(words) == 2:
            out[f"p{words[0][:-1]}_us"] = wrk_latency(words[1])
        elif line.strip().startswith("Socket errors:"):
            # Socket errors: connect 0, read 0, write 0, timeout 0
            nums = [int(w.rstrip(",")) for w in words[2:] if w.rstrip(",").isdigit()]
            out["socket_errors"] = sum(nums)
            out["socket_detail"] = line.strip()
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(words[-1])
    out["errors"] = out["socket_errors"] + out["non2xx"]
    return out if "rps" in out and "requests" in out else None


def run_tool(cmd, timeout, usage=None):
    """(exit code or 'timeout', stdout, stderr). With `usage` (a dict), also the tool's CPU
    seconds and its busy fraction of one core (`load_cpu`): is the load generator the limit?"""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
        code = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        code = "timeout"
    if usage is not None:
        # taskset execs the tool, so the child reaped here is the tool itself.
        r1, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        usage["load_cpu_s"] = round(cpu, 3)
        usage["load_cpu"] = round(cpu / wall, 3) if wall > 0 else None
    return code, out, err


# ----- cells -----


class Group:
    """Cells compared with each other: a job, a variant (set/get, file), connections, pipeline."""

    def __init__(self, job, variants, connections, pipeline, target, size=None):
        self.job, self.variants, self.connections = job, variants, connections
        self.pipeline, self.target, self.size = pipeline, target, size

    def label(self, variant):
        if self.job == "kv":
            return f"{variant} -c {self.connections} -P {self.pipeline}"
        return f"{variant} ({self.size} B) -c {self.connections}"


def base_row(group, variant, rep, side, order):
    return {"job": group.job, "variant": variant, "connections": group.connections,
            "pipeline": group.pipeline, "size": group.size, "rep": rep, "server": side.name,
            "side": "corio" if order == 0 else "reference", "status": "ok"}


def measure(row, meter, requests):
    cpu_s, core_s, wall = meter.stop()
    row["wall_s"] = round(wall, 3)
    row["server_cpu_s"] = round(cpu_s, 3)
    row["core_busy_s"] = round(core_s, 3) if core_s is not None else None
    if meter.cap:
        row.update(throttling_fields(meter.throttling0, meter.cap.throttling()))
        # The share of its budget the server used: near 1.0 when the cap was the limit.
        row["cap_used"] = round(cpu_s / wall / (meter.cap.percent / 100), 3) if wall else None
    if requests:
        row["cpu_us_per_req"] = cpu_s / requests * 1e6
        if core_s is not None:
            row["core_us_per_req"] = core_s / requests * 1e6


def kv_cell(args, group, rep, side, order, estimates, cell_dir):
    """One fresh server; redis-benchmark -t set, then -t get: one row per test."""
    rows = [base_row(group, v, rep, side, order) for v in group.variants]
    tag = f"kv-c{group.connections}-P{group.pipeline}-r{rep}-{side.name}"
    tmp = tempfile.mkdtemp(prefix=tag + ".", dir=cell_dir)
    try:
        proc, port = side.start(tmp, args.server_cpu, os.path.join(cell_dir, tag + ".log"),
                                args.cap)
    except (RuntimeError, OSError) as e:
        for r in rows:
            r["status"] = f"server did not start: {e}"
        return rows
    try:
        bg = core_background(args.server_cpu)
        verify_kv(port)
        for row in rows:
            row["core_background"] = bg
            test = row["variant"]
            key = (group.connections, group.pipeline, test, side.name)
            base = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c",
                    str(group.connections), "-P", str(group.pipeline), "-t", test, "--csv"]
            # Warm-up, which also sizes -n for the measured run when nothing is known yet.
            guess = estimates.get(key, 20000.0 * group.pipeline)
            n_warm = max(group.connections * 4, int(guess * args.kv_warmup))
            code, out, err = run_tool(pinned(base[:-1] + ["-n", str(n_warm), "--csv"],
                                             args.client_cpu), 60 + args.duration)
            warm = parse_redis_csv(out) if code == 0 else None
            if warm is None:
                row["status"] = f"redis-benchmark warm-up failed (exit {code}): " \
                                f"{(err or out).strip()[-200:]}"
                break
            rate = estimates.get(key, warm["rps"])
            n = max(group.connections * 10, int(rate * args.duration))
            row["requests"] = n
            meter = CpuMeter(proc.pid, args.server_cpu, args.cap)
            cmd = pinned(base[:-1] + ["-n", str(n), "--csv"], args.client_cpu)
            row["command"] = " ".join(cmd[3:] if args.client_cpu is not None else cmd)
            code, out, err = run_tool(cmd, 120 + 10 * args.duration, row)
            measure(row, meter, n)
            parsed = parse_redis_csv(out) if code == 0 else None
            if parsed is None:
                row["status"] = f"redis-benchmark failed (exit {code}): " \
                                f"{(err or out).strip()[-200:]}"
                row["errors"] = 1
                break
            row.update(parsed)
            row["errors"] = 0
            estimates[key] = parsed["rps"]
    except (RuntimeError, OSError) as e:
        for r in rows:
            if r["status"] == "ok":
                r["status"] = f"check failed: {e}"
    finally:
        exit_status, exit_s = lab.stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    stats = server_stats(cell_dir, tag, side)
    for r in rows:
        r["server_exit"] = exit_status
        r.update(stats)
        if r["status"] == "ok" and "rps" not in r:
            r["status"] = "not run (an earlier test of this server failed)"
        if r["status"] == "ok" and exit_status != 0:
            r["status"] = f"server exit status {exit_status} after SIGTERM"
    return rows


def http_cell(args, group, rep, side, order, files, cell_dir):
    variant = group.variants[0]
    row = base_row(group, variant, rep, side, order)
    tag = f"http-{variant}-c{group.connections}-r{rep}-{side.name}"
    tmp = tempfile.mkdtemp(prefix=tag + ".", dir=cell_dir)
    os.chmod(tmp, 0o755)  # nginx's worker runs as nobody when started as root
    try:
        proc, port = side.start(tmp, args.server_cpu, os.path.join(cell_dir, tag + ".log"),
                                args.cap)
    except (RuntimeError, OSError) as e:
        row["status"] = f"server did not start: {e}"
        return [row]
    try:
        row["core_background"] = core_background(args.server_cpu)
        verify_http(port, variant, files[variant])
        url = f"http://127.0.0.1:{port}/{variant}"
        base = ["wrk", "-t1", f"-c{group.connections}"]
        if args.http_warmup > 0:
            code, out, err = run_tool(pinned(base + [f"-d{args.http_warmup}s", url],
                                             args.client_cpu), 60 + args.http_warmup)
            warm = parse_wrk(out) if code == 0 else None
            if warm is None or warm["errors"]:
                detail = warm.get("socket_detail", "") if warm else (err or out).strip()[-200:]
                row["status"] = f"wrk warm-up failed (exit {code}): {detail}"
        if row["status"] == "ok":
            cmd = pinned(base + [f"-d{args.wrk_duration}s", "--latency", url], args.client_cpu)
            row["command"] = " ".join(cmd[3:] if args.client_cpu is not None else cmd)
            meter = CpuMeter(proc.pid, args.server_cpu, args.cap)
            code, out, err = run_tool(cmd, 60 + 2 * args.wrk_duration, row)
            parsed = parse_wrk(out) if code == 0 else None
            measure(row, meter, parsed["requests"] if parsed else 0)
            if parsed is None:
                row["status"] = f"wrk failed (exit {code}): {(err or out).strip()[-200:]}"
            else:
                row.update({k: v for k, v in parsed.items() if k != "socket_detail"})
                if parsed["errors"]:
                    row["status"] = (f"wrk errors: non-2xx/3xx {parsed['non2xx']}; "
                                     f"{parsed.get('socket_detail', '')}")
    except (RuntimeError, OSError, http.client.HTTPException) as e:
        row["status"] = f"check failed: {e}"
    finally:
        exit_status, _ = lab.stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    row["server_exit"] = exit_status
    row.update(server_stats(cell_dir, tag, side))
    if row["status"] == "ok" and exit_status != 0:
        row["status"] = f"server exit status {exit_status} after SIGTERM"
    return [row]


# ----- aggregation and output -----


def spread(values):
    return f"{min(values):.2f}–{max(values):.2f}" if len(values) > 1 else ""


def is_unthrottled(row):
    """A capped run whose server was throttled in too few periods for the cap to have been its
    limit (the client was, or other programs on its core)."""
    share = row.get("cap_throttled_share")
    return row.get("cpu_quota_pct") is not None and (share is None or share < SERVER_BOUND_SHARE)


def summarize(rows, groups, sides):
    """One summary dict per (job, group label): both sides' medians and the paired ratios."""
    summary = []
    for g in groups:
        for variant in g.variants:
            mine = [r for r in rows if r["job"] == g.job and r["variant"] == variant
                    and r["connections"] == g.connections and r["pipeline"] == g.pipeline]
            s = {"job": g.job, "cell": g.label(variant), "variant": variant,
                 "connections": g.connections, "pipeline": g.pipeline, "size": g.size,
                 "target": g.target}
            by_side = {}
            for side_key in ("corio", "reference"):
                runs = [r for r in mine if r["side"] == side_key]
                ok = [r for r in runs if r["status"] == "ok"]
                by_side[side_key] = {r["rep"]: r for r in ok}
                s[f"{side_key}_server"] = sides[g.job][0 if side_key == "corio" else 1].name
                s[f"{side_key}_runs"] = len(runs)
                s[f"{side_key}_failed"] = len(runs) - len(ok)
                for m in ("rps", "p99_us", "cpu_us_per_req", "core_us_per_req",
                          "core_background", "load_cpu", "cap_throttled_share", "cap_used"):
                    s[f"{side_key}_{m}"] = median([r.get(m) for r in ok])
                s[f"{side_key}_unthrottled"] = sum(1 for r in ok if is_unthrottled(r))
                s[f"{side_key}_errors"] = sum(r.get("errors") or 0 for r in runs)
                s[f"{side_key}_notes"] = "; ".join(sorted({r["status"] for r in runs
                                                           if r["status"] != "ok"}))
            for m in ("rps", "core_us_per_req", "cpu_us_per_req", "p99_us"):
                ratios = [r[m] / by_side["reference"][rep][m]
                          for rep, r in by_side["corio"].items()
                          if r.get(m) and by_side["reference"].get(rep, {}).get(m)]
                s[f"{m}_ratio"] = median(ratios)
                s[f"{m}_ratio_spread"] = spread(ratios)
                s[f"{m}_pairs"] = len(ratios)
            r = s["rps_ratio"]
            s["target_met"] = None if r is None else r >= g.target
            quotas = {r.get("cpu_quota_pct") for r in mine} - {None}
            s["cpu_quota_pct"] = quotas.pop() if len(quotas) == 1 else None
            summary.append(s)
    return summary


def table(summary, job, sides):
    corio, ref = sides[job][0].name, sides[job][1].name
    cols = [("cell", "cell", None),
            (f"{corio} req/s", "corio_rps", 1), (f"{ref} req/s", "reference_rps", 1),
            ("ratio", "rps_ratio", 3), ("ratio spread", "rps_ratio_spread", None),
            ("target", "target", None),
            (f"{corio} core µs/req", "corio_core_us_per_req", 2),
            (f"{ref} core µs/req", "reference_core_us_per_req", 2),
            ("core ratio", "core_us_per_req_ratio", 2),
            (f"{corio} proc µs/req", "corio_cpu_us_per_req", 2),
            (f"{ref} proc µs/req", "reference_cpu_us_per_req", 2),
            ("proc ratio", "cpu_us_per_req_ratio", 2),
            (f"{corio} p99 µs", "corio_p99_us", 0), (f"{ref} p99 µs", "reference_p99_us", 0),
            ("core bg", None, None), ("load cpu", None, None), ("failed", None, None),
            ("errors", None, None)]
    capped = any(s.get("cpu_quota_pct") is not None for s in summary if s["job"] == job)
    if capped:
        cols.insert(cols.index(("load cpu", None, None)) + 1, ("throttled", None, None))
    rows = [[c[0] for c in cols]]
    notes = []
    for s in summary:
        if s["job"] != job:
            continue
        cells = []
        for title, key, digits in cols:
            if title == "target":
                met = s["target_met"]
                cells.append(f"≥{s['target']:.1f} " + ("-" if met is None
                                                       else "met" if met else "missed"))
            elif title == "core bg":
                cells.append(", ".join(fmt(s[f"{k}_core_background"], 2)
                                       for k in ("corio", "reference")))
            elif title == "load cpu":
                cells.append(", ".join(fmt(s[f"{k}_load_cpu"], 2) for k in ("corio", "reference")))
            elif title == "throttled":
                cells.append(", ".join(fmt(s[f"{k}_cap_throttled_share"], 2) +
                                       (" (!)" if s[f"{k}_unthrottled"] else "")
                                       for k in ("corio", "reference")))
            elif title == "failed":
                cells.append(f"{s['corio_failed']}/{s['corio_runs']}, "
                             f"{s['reference_failed']}/{s['reference_runs']}")
            elif title == "errors":
                cells.append(f"{s['corio_errors']}, {s['reference_errors']}")
            elif digits is None:
                cells.append(str(s.get(key) or ""))
            else:
                v = s.get(key)
                cells.append("-" if v is None else (f"{v:,.0f}" if digits == 0 or
                                                    (digits == 1 and abs(v) >= 1000)
                                                    else f"{v:.{digits}f}"))
        rows.append(cells)
        for side_key in ("corio", "reference"):
            if s[f"{side_key}_notes"]:
                notes.append(f"{s['cell']}, {s[side_key + '_server']}: {s[side_key + '_notes']}")
            if capped and s[f"{side_key}_unthrottled"]:
                n, runs = s[side_key + "_unthrottled"], s[side_key + "_runs"]
                notes.append(f"{s['cell']}, {s[side_key + '_server']}: NOT server-bound in "
                             f"{n} of {runs} runs "
                             f"(throttled in under {SERVER_BOUND_SHARE:.0%} of the cap's "
                             "periods): the cap was not the limit, the client or other programs "
                             "on CPU 0 were (see load cpu, core bg); its req/s does not compare "
                             "the servers")
    title = {"kv": f"KV: {corio} vs {ref} (redis-benchmark)",
             "http": f"HTTP: {corio} vs {ref} (wrk -t1)"}[job]
    return title, rows, notes


NOTES = """How to read the tables:
- **req/s**: medians over the repetitions of what the load generator reports (redis-benchmark's
  `rps`, wrk's `Requests/sec`). **ratio** is the median of the per-repetition ratios
  corio/reference (each repetition runs both servers back to back), **ratio spread** their
  minimum–maximum; **target** is the issue's goal for that ratio.
- **core µs/req**: busy time of the server's core (CPU 0: user+nice+system+irq+softirq+steal
  from /proc/stat) over the measured run, divided by its requests. It includes the kernel's
  loopback TCP work done in softirq on that core, which a process's own CPU time misses, but
  also anything else that ran on CPU 0 (other users of this VM): `core_background` in runs.csv
  is that core's busy fraction while the idle server waited just before the run.
- **proc µs/req**: utime+stime of the server process and all its threads and children (nginx's
  master and worker; redis's background threads) over the same run, per request.
  **core ratio** and **proc ratio** are the paired median ratios corio/reference of the two
  (lower is better). When `core bg` is high, other programs shared CPU 0: core µs/req then
  counts their time too, and proc µs/req is the figure to compare.
- **p99 µs**: the load generator's 99th percentile latency (wrk `--latency`; redis-benchmark's
  `p99_latency_ms`, 1 ms resolution at best for fast runs).
- **core bg**: the busy fraction of CPU 0 (corio, reference; medians) in the 0.2 s before
  each run while the fresh server idled: other users of the machine, charged to core µs/req.
- **load cpu**: the load generator's CPU time over its run's wall time (corio, reference;
  medians): near 1.00 it was using its whole core, and requests/s is partly the client's limit.
- **failed**: cells that did not run cleanly (corio, reference), out of the repetitions;
  **errors**: wrk's socket errors plus non-2xx/3xx replies, or a failed redis-benchmark run
  (it exits at the first error reply). Failed cells are left out of the medians.
- The load generators are single-threaded and pinned to CPU 1: when `load cpu` nears 1.00 the
  client is the limit and req/s understates the difference; compare the servers by CPU per
  request as well (or cap the servers with `--server-cpu-quota`).
"""


NOTES_CAPPED = """- **Server-bound mode** (`--server-cpu-quota`): see the header.
- **throttled**: the share of the cap's 10 ms periods in which the server's cgroup used up its
  quota during the measured run (cpu.stat nr_throttled / nr_periods; corio, reference;
  medians). Near 1.00 the server was the bottleneck and req/s compares the servers. `(!)` marks
  a cell with a run throttled in under half its periods: the cap was not the limit. Either the
  client was, even under the cap (`load cpu` near 1.00: lower the quota), or other programs took
  CPU 0 from the server (`core bg` high: it got less than its quota); either way that cell's
  req/s does not compare the servers. runs.csv adds, per run, `cap_throttled_ms` (time spent
  throttled) and `cap_used` (the server's CPU time over its budget: near 1.00 when capped).
- Under the cap a server waits up to a period's remainder each time it is throttled: p99
  latency measures the cap as much as the server.
"""


def cap_header(percent, where):
    """The report's header lines of a capped run: what it measures, how to read it."""
    return [f"- **server CPU capped at {percent:g} % of one CPU**: every server process of every "
            f"cell (corio's and the reference's, nginx's master and worker included) started "
            f"inside a cgroup with that CFS quota, {where}",
            "- what this measures: the server, not the single-threaded load generator, is the "
            "bottleneck, so **req/s compares the servers at an equal CPU budget** (the ratio "
            "approaches the inverse ratio of their CPU per request, counting what the kernel "
            "charges to the server's processes). It is a cross-check that needs no CPU "
            "accounting; **CPU per request stays the primary figure**, and absolute req/s here "
            "say nothing about uncapped throughput. Check the `throttled` column: a cell whose "
            "server was rarely throttled was limited by something else than the cap."]


def run_header(args, pin):
    """The report's description of how this run was made."""
    lines = [f"- command: `{' '.join(['bench/servers/run.py'] + sys.argv[1:])}`",
             f"- machine: {lab.machine_line()}",
             f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
             f"- repetitions: {args.reps}; wrk -d {args.wrk_duration}s after a "
             f"{args.http_warmup} s warm-up; redis-benchmark -n sized for about "
             f"{args.duration} s per test after a warm-up of about {args.kv_warmup} s",
             f"- pinning: {'server on CPU 0, load generator on CPU 1 (taskset)' if pin else 'none'}"
             f"; fd limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}",
             f"- versions: {versions()}; corio at {git_head()}"]
    if args.nginx_http_extra:
        lines.append(f"- nginx http block extra: `{args.nginx_http_extra}`")
    if args.cap:
        lines += cap_header(args.server_cpu_quota, args.cap.describe())
    return lines


def print_and_write(out_dir, title, header, summary, rows, jobs, sides):
    blocks = [table(summary, job, sides) for job in jobs]
    lab.print_tables(blocks)
    lab.write_csv(os.path.join(out_dir, "runs.csv"), rows)
    lab.write_csv(os.path.join(out_dir, "summary.csv"), summary)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(f"# {title}\n\n")
        f.write("\n".join(header) + "\n\n")
        f.write(NOTES)
        if any(r.get("cpu_quota_pct") is not None for r in rows):
            f.write(NOTES_CAPPED)
        f.write(lab.markdown_tables(blocks))
        f.write("\n### Load commands (P = the cell's port, N = requests)\n\n```\n")
        for c in commands_used(rows):
            f.write(c + "\n")
        f.write("```\n")
    return blocks


# ----- several runs pooled -----

NUMERIC = ("connections", "pipeline", "size", "rps", "p50_us", "p99_us", "cpu_us_per_req",
           "core_us_per_req", "core_background", "errors", "requests", "load_cpu",
           "cpu_quota_pct", "cap_periods", "cap_throttled", "cap_throttled_ms",
           "cap_throttled_share", "cap_used")


def load_runs(dirs):
    """The rows of several runs' runs.csv; a repetition becomes (run, rep) so that pairs stay
    within their run."""
    rows = []
    for i, d in enumerate(dirs):
        with open(os.path.join(d, "runs.csv"), newline="") as f:
            for r in csv.DictReader(f):
                for k in NUMERIC:
                    v = r.get(k)
                    r[k] = (float(v) if "." in v or "e" in v else int(v)) if v else None
                r["rep"] = f"{i}:{r['rep']}"
                r["run"] = d
                rows.append(r)
    return rows


def groups_and_sides(rows):
    """The cell groups and the two sides of each job, as the rows name them."""
    groups, seen, sides = [], set(), {}
    for r in rows:
        job = r["job"]
        names = sides.setdefault(job, {})
        names.setdefault(r["side"], r["server"])
        if job == "kv":
            key = (job, r["connections"], r["pipeline"])
            if key not in seen:
                seen.add(key)
                groups.append(Group("kv", ["set", "get"], r["connections"], r["pipeline"],
                                     kv_target(r["connections"], r["pipeline"])))
        else:
            key = (job, r["variant"], r["connections"])
            if key not in seen:
                seen.add(key)
                groups.append(Group("http", [r["variant"]], r["connections"], r["pipeline"],
                                    http_target(r["size"]), r["size"]))
    out = {job: [Side(n.get("corio", "?"), "?", None), Side(n.get("reference", "?"), "?", None)]
           for job, n in sides.items()}
    return groups, out


def combine(dirs, out_dir):
    rows = load_runs(dirs)
    quotas = {r.get("cpu_quota_pct") for r in rows}
    if len(quotas) > 1:
        # Capped and uncapped req/s (or two caps) measure different things: never pool them.
        log("cannot pool runs made with different --server-cpu-quota: " +
            ", ".join(sorted("none" if q is None else f"{q:g} %" for q in quotas)))
        return 2
    groups, sides = groups_and_sides(rows)
    jobs = [j for j in ("kv", "http") if j in sides]
    summary = summarize(rows, groups, sides)
    os.makedirs(out_dir, exist_ok=True)
    header = [f"- command: `{' '.join(['bench/servers/run.py'] + sys.argv[1:])}`",
              f"- pooled runs (each with its own report.md: machine, date, command): "
              + ", ".join(f"`{os.path.relpath(d, ROOT)}`" for d in dirs),
              "- ratios pair the two servers within one repetition of one run; medians and "
              "spreads are over all repetitions of all runs"]
    quota = quotas.pop() if quotas else None
    if quota is not None:
        header += cap_header(quota, "as each run's report.md describes")
    print_and_write(out_dir, "corio servers against nginx and redis-server, runs pooled",
                    header, summary, rows, jobs, sides)
    log(f"\nwrote {out_dir}/report.md, runs.csv, summary.csv")
    return 0


def commands_used(rows):
    """The distinct load-generator commands, port and -n elided."""
    out = []
    for r in rows:
        c = r.get("command")
        if not c:
            continue
        words = c.split()
        for i, w in enumerate(words):
            if words[i - 1] in ("-p", "-n") and i > 0:
                words[i] = "P" if words[i - 1] == "-p" else "N"
            elif w.startswith("http://127.0.0.1:"):
                words[i] = "http://127.0.0.1:P/" + w.rsplit("/", 1)[1]
        c = "taskset -c 1 " + " ".join(words)
        if c not in out:
            out.append(c)
    return out


def git_head():
    try:
        r = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h (%cd, %s)",
                            "--date=short"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return r.stdout.strip()[:100] or "?"


def versions():
    out = []
    for cmd in (["nginx", "-v"], ["redis-server", "--version"], ["redis-benchmark", "--version"],
                ["wrk", "--version"]):
        if not shutil.which(cmd[0]):
            continue
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (r.stdout + r.stderr).strip().splitlines()
        if text:
            words = text[0].split()
            out.append(" ".join(words[:3]) if cmd[0] != "nginx" else text[0].split(": ")[-1])
    return "; ".join(out)


# ----- main -----


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                   help="build folder with examples/kv/corio-kv and examples/http/corio-http")
    p.add_argument("--jobs", default="kv,http")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0,
                   help="seconds measured: wrk -d (rounded up to whole seconds), and "
                        "redis-benchmark -n sized for this long per test (set, get)")
    p.add_argument("--http-warmup", type=int, default=1, help="seconds of wrk before measuring")
    p.add_argument("--kv-warmup", type=float, default=0.3,
                   help="about this many seconds of redis-benchmark before measuring")
    p.add_argument("--kv-cells", default=",".join(f"{c}x{pl}" for c, pl in KV_CELLS),
                   help="CLIENTSxPIPELINE list")
    p.add_argument("--http-connections", default=",".join(map(str, HTTP_CONNECTIONS)))
    p.add_argument("--kv-server", default=None,
                   help="the corio side of the kv job (default BUILD/examples/kv/corio-kv)")
    p.add_argument("--http-server", default=None,
                   help="the corio side of the http job (default BUILD/examples/http/corio-http)")
    p.add_argument("--nginx-http-extra", default="",
                   help="directives added to nginx's http block, e.g. 'open_file_cache max=100;'"
                        " (default: none, the configuration of the issue)")
    p.add_argument("--self-twin", action="store_true",
                   help="test the harness: the reference server on both sides")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "servers-report"))
    p.add_argument("--combine", nargs="+", metavar="DIR",
                   help="run nothing: pool the runs.csv of earlier runs' --out folders into one "
                        "report in --out (medians over all their repetitions)")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--server-cpu-quota", type=float, metavar="PCT", default=None,
                   help="server-bound mode: cap every server process to PCT %% of one CPU "
                        "(10-100) with a cgroup (v1 cpu or v2 cpu.max, 10 ms period), so that "
                        "the server rather than the load generator is the limit and req/s "
                        "compares the servers at an equal CPU budget; needs root")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (well under a minute): 1 repetition, 1 s cells, the smallest "
                        "connection counts; exit 1 when any cell fails")
    args = p.parse_args()
    if args.quick:
        args.reps, args.duration, args.http_warmup, args.kv_warmup = 1, 1.0, 0, 0.1
        args.kv_cells = ",".join(f"{c}x{pl}" for c, pl in KV_CELLS if c == 50)
        args.http_connections = str(min(HTTP_CONNECTIONS))
    args.jobs = [j for j in args.jobs.split(",") if j]
    for j in args.jobs:
        if j not in ("kv", "http"):
            p.error(f"unknown job {j} (kv, http)")
    args.kv_cells = [tuple(int(x) for x in c.split("x")) for c in args.kv_cells.split(",") if c]
    args.http_connections = [int(c) for c in args.http_connections.split(",") if c]
    args.wrk_duration = max(1, math.ceil(args.duration))
    if args.server_cpu_quota is not None:
        try:
            cap_quota_us(args.server_cpu_quota)
        except ValueError as e:
            p.error(str(e))
    return args


def find_sides(args):
    """{job: [corio side, reference side]}; a side's `missing` says why it cannot run."""
    def tool_missing(tools):
        gone = [f"{t} (Debian: {pkg})" for t, pkg in tools if not shutil.which(t)]
        return "missing " + ", ".join(gone) if gone else None

    sides = {}
    redis = shutil.which("redis-server") or "redis-server"
    nginx = shutil.which("nginx") or "nginx"
    kv_tools = tool_missing([("redis-server", "redis-server"), ("redis-benchmark", "redis-tools")])
    http_tools = tool_missing([("nginx", "nginx-light"), ("wrk", "wrk")])
    pin_tools = None if args.no_pin or shutil.which("taskset") else "missing taskset (util-linux)"
    for job, kind, ref_kind, ref_name, ref_bin, tools, override in [
            ("kv", "corio-kv", "redis", "redis-server", redis, kv_tools, args.kv_server),
            ("http", "corio-http", "nginx", "nginx", nginx, http_tools, args.http_server)]:
        ref = Side(ref_name, ref_kind, ref_bin, tools or pin_tools)
        if args.self_twin:
            mine = Side(ref_name + "-twin", ref_kind, ref_bin, tools or pin_tools)
        else:
            binary = os.path.abspath(override or os.path.join(args.build, "examples", job, kind))
            gone = None if os.access(binary, os.X_OK) else f"{binary} not built"
            mine = Side(kind, kind, binary, gone or tools or pin_tools)
        sides[job] = [mine, ref]
    return sides


def main():
    args = parse_args()
    if args.combine:
        return combine([os.path.abspath(d) for d in args.combine], os.path.abspath(args.out))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers and tools inherit it
    except (ValueError, OSError):
        pass
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    args.server_cpu, args.client_cpu = (0, 1) if pin else (None, None)
    sides = find_sides(args)
    args.cap = None
    if args.server_cpu_quota is not None:
        try:
            args.cap = CpuCap(args.server_cpu_quota)
        except CgroupError as e:
            log(f"error: {e}")  # never run uncapped when a cap was asked for
            return 2
    try:
        return run_cells(args, pin, sides, fd_limit)
    finally:
        if args.cap:
            try:
                args.cap.remove()
            except OSError as e:
                log(f"warning: could not remove {args.cap.path}: {e}; rmdir it by hand")


def run_cells(args, pin, sides, fd_limit):
    """Runs the plan, writes the report; main's exit status."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out_dir = os.path.abspath(args.out)
    cell_dir = os.path.join(out_dir, "logs")
    shutil.rmtree(cell_dir, ignore_errors=True)
    os.makedirs(cell_dir, exist_ok=True)
    docroot = tempfile.mkdtemp(prefix="corio-servers-www.")
    os.chmod(docroot, 0o755)
    files = {}
    for name, size in HTTP_FILES:
        lab.write_pattern_file(os.path.join(docroot, name), name, size)
        os.chmod(os.path.join(docroot, name), 0o644)
        with open(os.path.join(docroot, name), "rb") as f:
            files[name] = f.read()
    for side in sides["http"]:
        side.docroot, side.nginx_extra = docroot, "    " + args.nginx_http_extra

    groups = []
    if "kv" in args.jobs:
        groups += [Group("kv", ["set", "get"], c, pl, kv_target(c, pl)) for c, pl in args.kv_cells]
    if "http" in args.jobs:
        groups += [Group("http", [name], c, 0, http_target(size), size)
                   for name, size in HTTP_FILES for c in args.http_connections]
    plan = []
    for g in groups:
        for rep in range(args.reps):
            order = [0, 1] if rep % 2 == 0 else [1, 0]
            plan += [(g, rep, i) for i in order]
    per_cell = {"kv": 2 * (args.duration + args.kv_warmup + 0.3) + 0.5,
                "http": args.wrk_duration + args.http_warmup + 0.5}
    estimate = sum(per_cell[g.job] + g.connections / 2000 for g, _, _ in plan)
    log(f"{len(plan)} cells, about {estimate / 60:.1f} min; pinning: "
        f"{'server CPU 0, load CPU 1' if pin else 'none'}; fd limit {fd_limit}; "
        f"results in {out_dir}")
    if args.cap:
        log(f"servers capped at {args.server_cpu_quota:g} % of one CPU: {args.cap.describe()}")
    for job in args.jobs:
        for s in sides[job]:
            if s.missing:
                log(f"note: {job}/{s.name} cannot run: {s.missing}")

    rows, estimates = [], {}
    t0 = time.monotonic()
    try:
        for i, (g, rep, which) in enumerate(plan, 1):
            side = sides[g.job][which]
            if side.missing or g.connections + 200 > fd_limit:
                why = side.missing or (f"fd limit {fd_limit} too low for {g.connections} "
                                       "connections")
                new = [base_row(g, v, rep, side, which) for v in g.variants]
                for r in new:
                    r["status"] = f"cannot run: {why}"
            elif g.job == "kv":
                new = kv_cell(args, g, rep, side, which, estimates, cell_dir)
            else:
                new = http_cell(args, g, rep, side, which, files, cell_dir)
            if args.cap:
                for r in new:
                    r["cpu_quota_pct"] = args.server_cpu_quota
            rows += new
            for r in new:
                log(f"[{i}/{len(plan)} {time.monotonic() - t0:4.0f}s] "
                    f"{g.label(r['variant']):26s} rep{rep} {side.name:14s} "
                    f"{fmt(r.get('rps')):>9} req/s  p99 {fmt(r.get('p99_us')):>7} us  "
                    f"core {fmt(r.get('core_us_per_req'), 2):>5} proc "
                    f"{fmt(r.get('cpu_us_per_req'), 2):>5} us/req  "
                    + (f"throttled {fmt(r.get('cap_throttled_share'), 2)}  " if args.cap else "")
                    + f"{r['status'] if r['status'] != 'ok' else ''}")
    finally:
        shutil.rmtree(docroot, ignore_errors=True)

    summary = summarize(rows, groups, sides)
    if args.cap:
        stamp += f", servers capped at {args.server_cpu_quota:g} % of one CPU"
    print_and_write(out_dir, f"corio servers against nginx and redis-server, {stamp}",
                    run_header(args, pin), summary, rows, args.jobs, sides)
    log(f"\nwrote {out_dir}/report.md, runs.csv, summary.csv (server logs in {cell_dir})")
    failed = sum(1 for r in rows if r["status"] != "ok")
    if failed:
        log(f"{failed} of {len(rows)} runs reported a problem (see the notes and logs/)")
    if not rows:
        return 77
    if args.quick:
        return 1 if failed else 0  # the smoke run: every cell must work
    return 1 if failed == len(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
