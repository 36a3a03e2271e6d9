#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The laboratory's harness: runs the lab servers (examples/lab: four styles per job, plus Asio on
# epoll and on io_uring, plus corio on its epoll backend) against bench/loadgen cell by cell, and
# writes a table, CSV, a Markdown report and gnuplot charts. The synchronisation job (sync,
# docs/synchronisation.md) runs its own rows: a key-value service on every CPU of the VM.
# Usage: bench/lab/run.py [--quick] [--build build/release] [--styles threads,epoll,uring,corio]
"""Run the laboratory matrix and report medians and paired ratios.

Each cell starts a fresh server (pinned to CPU 0 when there are two or more CPUs) and one load
generator (pinned to CPU 1). Within a cell group (job, variant, connections, size) every
repetition runs every style back to back, the order rotated per repetition, so that paired
ratios to the baseline style compare runs that were close in time: on a shared VM the noise
between separate runs is larger than the differences being measured.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STYLES = ["threads", "epoll", "uring", "corio", "corio-lean", "asio", "asio-uring", "corio-epoll"]
# Rows that are not one program each: row -> (the program's style in lab_<job>_<style>, the
# source its handler is counted in, environment). corio-epoll is the corio program on the loop's
# epoll backend (CORIO_BACKEND=epoll; a corio without that backend ignores the variable).
STYLE_PROGRAMS = {
    "asio-uring": ("asio_uring", "asio", {}),
    "corio-epoll": ("corio", "corio", {"CORIO_BACKEND": "epoll"}),
    "corio-lean": ("corio_lean", "corio_lean", {}),
}
# Rows that run only some jobs: corio-lean (examples/lab/echo/corio_lean.cpp: provided buffers,
# multishot recv, a send that never waits first) is an echo server without the blocking hook.
STYLE_JOBS = {
    "corio-lean": ("echo",),
}


def style_program(style):
    """(program style, source style, environment) of a row."""
    return STYLE_PROGRAMS.get(style, (style, style, {}))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ----- file content: must match bench/loadgen.cpp (file_pattern) -----


def file_seed(name):
    h = 2166136261
    for c in name.encode():
        h ^= c
        h = (h * 16777619) & 0xFFFFFFFF
    return h & 0xFF


def write_pattern_file(path, name, size):
    """Byte i = (lo*131 + 17b + 101(b>>8) + 7(b>>16) + seed) mod 256, lo = i%256, b = i//256."""
    seed = file_seed(name)
    rotations = [bytes(((lo * 131 + c) & 0xFF) for lo in range(256)) for c in range(256)]
    blocks = (size + 255) // 256
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        chunk = []
        for b in range(blocks):
            chunk.append(rotations[(17 * b + 101 * (b >> 8) + 7 * (b >> 16) + seed) & 0xFF])
            if len(chunk) == 4096:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
        f.truncate(size)
    os.replace(tmp, path)


def ensure_files(root, files):
    os.makedirs(root, exist_ok=True)
    for name, size in files:
        path = os.path.join(root, name)
        if os.path.exists(path) and os.path.getsize(path) == size:
            continue
        log(f"creating {path} ({size} bytes)")
        write_pattern_file(path, name, size)


# ----- the job definitions -----

SMALL_FILES = [(f"small{i:02d}", 64 * 1024) for i in range(16)]
LARGE_FILES = [(f"large{i}", 32 * 1024 * 1024) for i in range(4)]


def spec(files):
    return ",".join(f"{n}:{s}" for n, s in files)


def files_variants(args):
    """The file job's cells: (variant, [loadgen argument lists], server extra args, cold)."""
    small = ["--mode", "files", "--files", spec(SMALL_FILES), "--range-size", "1024"]
    small_aligned = ["--mode", "files", "--files", spec(SMALL_FILES), "--range-size", "4096",
                     "--align", "4096"]
    large = ["--mode", "files", "--files", spec(LARGE_FILES), "--range-size", str(1024 * 1024),
             "--align", "4096", "--connections", str(args.large_connections)]
    out = {
        "small": ([small], [], False),
        "large": ([large], [], False),  # its cells are labelled with --large-connections
        "mixed": ([small, large], [], False),
        # Disk-bound: the cache is dropped before the cell (root), or the servers read with
        # O_DIRECT: the mixed load's large reads then stall an epoll loop for a disk access each.
        "cold": ([small_aligned, large], [] if args.cold_method == "drop" else ["--direct"], True),
    }
    return [(v, *out[v]) for v in args.files_variants]


# The blocking job (docs/blocking.md): the echo servers, every Nth request (over all connections)
# blocks before it is echoed. The *-fix and *-offload variants run corio only, with the call in
# offload() or (pread, mmap: the cold range of BLOCK_FILE) read through the ring.
BLOCKING_VARIANTS = {
    "sleep": ["--block-every", "200", "--block-kind", "sleep"],  # 5 ms asleep: a blocking syscall
    "sleep-fix": ["--block-every", "200", "--block-kind", "sleep", "--block-fix", "offload"],
    "hash": ["--block-every", "1000", "--block-kind", "hash"],  # hashing 10 MiB: CPU
    "hash-fix": ["--block-every", "1000", "--block-kind", "hash", "--block-fix", "offload"],
    "pread": ["--block-every", "200", "--block-kind", "pread"],  # a cold 4 MiB pread
    "pread-fix": ["--block-every", "200", "--block-kind", "pread", "--block-fix", "ring"],
    "pread-offload": ["--block-every", "200", "--block-kind", "pread", "--block-fix", "offload"],
    "mmap": ["--block-every", "200", "--block-kind", "mmap"],  # 64 cold pages: page faults
    "mmap-fix": ["--block-every", "200", "--block-kind", "mmap", "--block-fix", "ring"],
}
# The file the pread and mmap variants read cold (each server drops its pages: no root needed).
BLOCK_FILE = ("blocking-cold", 64 * 1024 * 1024)
BLOCKING_STALL_MS = "2"  # CORIO_STALL_MS of the corio cells: under the 5 ms block

# The synchronisation job (docs/synchronisation.md): one key-value service (GET/SET lines,
# examples/lab/common/kv.hpp) on all the CPUs given, written three ways. Row -> (program
# lab_sync_<program>, server arguments; SHARDS and CPUS are filled in by sync_server_args).
SYNC_ROWS = {
    # A thread per connection, one std::unordered_map behind one std::mutex (lock waits counted).
    "threads-mutex": ("threads", []),
    # The same with the map split in 16, a mutex each (sharded locks).
    "threads-sharded-locks": ("threads", ["--lock-stripes", "16"]),
    # corio: --sync-shards loops, one per CPU, each with its SO_REUSEPORT listener and its part
    # of the keyspace; a request for another shard's key goes there with on_shard().
    "corio-shards": ("corio", ["--shards", "SHARDS", "--cpus", "CPUS"]),
    # The single-core baseline: the corio program with one shard (on the first CPU).
    "corio-1": ("corio", ["--shards", "1", "--cpus", "CPU0"]),
}
SYNC_BASELINE = "corio-1"


def sync_server_args(style, args):
    _, extra = SYNC_ROWS[style]
    cpus = args.sync_cpu_list
    out = []
    for a in extra:
        if a == "SHARDS":
            out.append(str(args.sync_shards))
        elif a in ("CPUS", "CPU0"):
            if not cpus:  # not pinned: drop the flag and its value
                out.pop()
                continue
            out.append(",".join(cpus) if a == "CPUS" else cpus[0])
        else:
            out.append(a)
    return out


def major_faults(pid):
    """Major page faults of a process so far (/proc/PID/stat field 12), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rpartition(")")[2].split()
        return int(rest[9])
    except (OSError, IndexError, ValueError):
        return None


# ----- small helpers -----

PROGRESS = sys.stderr


def log(text):
    print(text, file=PROGRESS, flush=True)


def read_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def status_kb(status, key):
    try:
        return int(status.get(key, "").split()[0])
    except (IndexError, ValueError):
        return None


def cpu_busy(cpu):
    """Busy clock ticks of one core (user nice system irq softirq steal; idle and iowait not)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:9]]
                return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return 0


def handler_loc(path):
    """Non-blank, non-comment lines between // LAB-HANDLER-BEGIN and // LAB-HANDLER-END."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    count, inside, in_block = 0, False, False
    for line in lines:
        s = line.strip()
        if "LAB-HANDLER-BEGIN" in s:
            inside = True
            continue
        if "LAB-HANDLER-END" in s:
            inside = False
            continue
        if not inside or not s or "LAB-BLOCK" in s:  # the blocking job's hook is not the handler
            continue
        if in_block:
            in_block = "*/" not in s
            continue
        if s.startswith("//"):
            continue
        if s.startswith("/*"):
            in_block = "*/" not in s
            continue
        count += 1
    return count if count else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v)


# ----- one cell -----


class Cell:
    def __init__(self, job, variant, connections, size, rep, style):
        self.job, self.variant, self.connections = job, variant, connections
        self.size, self.rep, self.style = size, rep, style

    def key(self):
        return (self.job, self.variant, self.connections, self.size)

    def name(self):
        return f"{self.job}/{self.variant} c={self.connections} s={self.size} rep{self.rep} {self.style}"


def start_server(binary, args, cpu, log_path, env=None):
    cmd = ([ "taskset", "-c", str(cpu)] if cpu is not None else []) + [binary] + args
    err = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                            env=env)
    err.close()
    try:
        port, fd, buf = wait_for_port(proc)
    except BaseException:  # Ctrl-C or a bug: never leave a server behind
        stop_server(proc)
        raise
    if port is None:
        stop_server(proc)
        raise RuntimeError(f"no 'listening on' line within 10 s: {' '.join(cmd)}")

    def drain():  # whatever else the server prints to stdout, so that it never blocks on it
        with open(log_path + ".stdout", "wb") as out:
            out.write(buf)
            for chunk in iter(lambda: os.read(fd, 65536), b""):
                out.write(chunk)

    threading.Thread(target=drain, daemon=True).start()
    return proc, port


def wait_for_port(proc):
    """Reads the server's stdout until `listening on N` (10 s at most): (port or None, fd, bytes)."""
    deadline = time.monotonic() + 10
    port = None
    fd = proc.stdout.fileno()
    buf = b""
    while port is None and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
        complete = buf[:buf.rfind(b"\n") + 1].decode(errors="replace")  # whole lines only
        for line in complete.splitlines():
            words = line.split()
            if line.startswith("listening on ") and len(words) == 3 and words[2].isdigit():
                port = int(words[2])
    return port, fd, buf


def stop_server(proc):
    """SIGTERM, then SIGKILL after 10 s. Returns (exit status, seconds to exit)."""
    if proc.poll() is not None:
        return proc.returncode, 0.0
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "killed", time.monotonic() - t0
    return proc.returncode, time.monotonic() - t0


def parse_server_stats(log_path):
    stats = {}
    try:
        with open(log_path) as f:
            for line in f:
                if line.startswith("stats:"):
                    for item in line.split()[1:]:
                        k, _, v = item.partition("=")
                        if v.isdigit():
                            stats[k] = int(v)
    except OSError:
        pass
    return stats


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1\n")


def run_cell(cell, args, binary, server_args, loadgens, cold, cell_dir, style_env=None):
    """Runs one server (with `style_env` added to its environment) and its load generator(s);
    returns a result row (a dict)."""
    row = {"job": cell.job, "variant": cell.variant, "connections": cell.connections,
           "size": cell.size, "rep": cell.rep, "style": cell.style, "status": "ok"}
    tag = f"{cell.job}-{cell.variant}-c{cell.connections}-s{cell.size}-r{cell.rep}-{cell.style}"
    server_log = os.path.join(cell_dir, tag + ".server.log")
    if cold and args.cold_method == "drop":
        drop_caches()
    srv_args = ["--port", "0", "--bind", "127.0.0.1", "--buffer-size", str(args.buffer_size
               if cell.job in ("echo", "blocking") else args.files_buffer_size),
               "--max-connections", str(cell.connections + 128)] + server_args
    env, counter = None, None
    if args.alloc_counter:  # heap allocations counted by an LD_PRELOAD library, read by loadgen
        counter = os.path.join(cell_dir, tag + ".allocs")
        env = dict(os.environ, LD_PRELOAD=args.alloc_counter, CORIO_ALLOC_COUNTER=counter)
    if cell.job == "blocking":  # corio's stall detector on (the other styles ignore it)
        env = dict(env or os.environ, CORIO_STALL_MS=BLOCKING_STALL_MS)
    if style_env:
        env = dict(env or os.environ, **style_env)
    # The sync job runs the server on all the CPUs it names and the load generator on the same
    # ones (two vCPUs: there is no third for it); the other jobs, server CPU 0, load CPU 1.
    sync = cell.job == "sync"
    server_cpu = args.sync_cpus if sync else args.server_cpu
    client_cpu = args.sync_cpus if sync else args.client_cpu
    try:
        proc, port = start_server(binary, srv_args, server_cpu, server_log, env)
    except (RuntimeError, OSError) as e:
        row["status"] = f"server did not start: {e}"
        return row
    try:
        status = read_status(proc.pid)
        row["rss_idle_kb"] = status_kb(status, "VmRSS")
        # Background load on the server's core while the server idles (others share this VM).
        if args.server_cpu is not None and not sync:
            b0 = cpu_busy(args.server_cpu)
            time.sleep(0.2)
            row["core_background"] = (cpu_busy(args.server_cpu) - b0) / CLK_TCK / 0.2
        procs = []
        for i, extra in enumerate(loadgens):
            cmd = ([ "taskset", "-c", str(client_cpu)] if client_cpu is not None else [])
            cmd += [args.loadgen, "--port", str(port), "--connections", str(cell.connections),
                    "--warmup", str(args.warmup), "--duration", str(args.duration),
                    "--pipeline", str(args.pipeline)]
            if cell.job in ("echo", "blocking"):
                cmd += ["--size", str(cell.size)]
            if sync:
                cmd += ["--mode", "kv", "--keys", str(args.sync_keys),
                        "--set-percent", str(args.sync_set_percent)]
            if i == 0:  # the first load generator samples the server
                cmd += ["--server-pid", str(proc.pid)]
                if args.server_cpu is not None and not sync:
                    cmd += ["--server-cpu", str(args.server_cpu)]
                if counter:
                    cmd += ["--server-alloc-counter", counter]
            cmd += extra  # may override --connections (the large readers of a mixed load)
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        limit = args.warmup + args.duration + 60 + cell.connections / 500
        results = []
        for p in procs:
            try:
                out, err = p.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                row["status"] = "loadgen timed out"
            line = out.strip().splitlines()[-1] if out.strip() else ""
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:
                results.append(None)
                row["status"] = f"loadgen failed (exit {p.returncode}): {err.strip()[:200]}"
    finally:
        row["major_faults"] = major_faults(proc.pid)
        exit_status, exit_s = stop_server(proc)
    row["server_exit"] = exit_status
    row["server_exit_s"] = round(exit_s, 3)
    stats = parse_server_stats(server_log)
    row["server_requests_total"] = stats.get("requests")
    if sync and stats.get("requests"):
        # Over the server's whole life (warm-up included): its stats line at exit.
        for key in ("lock_waits", "cross_shard", "hops"):
            if key in stats:
                row[f"{key}_per_req"] = stats[key] / stats["requests"]
    if cell.job == "blocking":
        row["stalls"] = stats.get("stalls", 0)
        try:
            with open(server_log, errors="replace") as f:
                row["stall_reports"] = sum(1 for line in f if line.startswith("corio: stall:"))
        except OSError:
            row["stall_reports"] = None
        row["server_log"] = server_log
    if not results or results[0] is None:
        return row
    main = results[0]
    row.update({
        "connections_open": main.get("connections_open"),
        "connect_failures": main.get("connect_failures"),
        "fd_capped": main.get("fd_capped"),
        "rps": main.get("rps"), "p50_us": main.get("p50_us"), "p99_us": main.get("p99_us"),
        "p999_us": main.get("p999_us"), "requests": main.get("requests"),
        "seconds": main.get("seconds"),
        "errors": sum((r or {}).get("errors", 0) for r in results),
        "mismatches": sum((r or {}).get("mismatches", 0) for r in results),
        "first_error": next((r["first_error"] for r in results if r and r.get("first_error")), ""),
        "client_cpu_s": main.get("client_cpu_s"),
        "rss_kb": main.get("server_rss_kb"), "threads": main.get("server_threads"),
        "voluntary_cs": main.get("server_voluntary_cs"),
        "involuntary_cs": main.get("server_involuntary_cs"),
    })
    requests = sum((r or {}).get("requests", 0) for r in results)
    if len(results) > 1 and results[1]:
        row["large_rps"] = results[1].get("rps")
        row["large_mib_s"] = results[1].get("bytes", 0) / max(results[1].get("seconds", 1), 1e-9) / 2**20
    if requests and main.get("server_cpu_s") is not None:
        row["cpu_us_per_req"] = main["server_cpu_s"] / requests * 1e6
    if requests and main.get("core_busy_s") is not None:
        row["core_us_per_req"] = main["core_busy_s"] / requests * 1e6
    if requests and main.get("server_allocs") is not None:
        row["allocs_per_req"] = main["server_allocs"] / requests
    if row.get("voluntary_cs") is not None and requests:
        row["cs_per_req"] = (row["voluntary_cs"] + row["involuntary_cs"]) / requests
    opened = main.get("connections_open") or 0
    if opened and stats.get("frame_bytes_peak"):
        row["frame_b_per_conn"] = stats["frame_bytes_peak"] / opened
    if opened and row.get("rss_kb") is not None and row.get("rss_idle_kb") is not None:
        row["rss_per_conn_b"] = (row["rss_kb"] - row["rss_idle_kb"]) * 1024 / opened
    if row["status"] == "ok" and (opened < cell.connections):
        row["status"] = f"only {opened}/{cell.connections} connections opened"
    if row["status"] == "ok" and (row["errors"] or row["mismatches"]):
        row["status"] = f"errors={row['errors']} mismatches={row['mismatches']}"
    return row


# ----- aggregation and output -----

METRICS = ["rps", "p50_us", "p99_us", "cpu_us_per_req", "core_us_per_req", "rss_kb",
           "rss_per_conn_b", "threads", "cs_per_req", "large_mib_s", "core_background",
           "allocs_per_req", "frame_b_per_conn", "lock_waits_per_req", "cross_shard_per_req",
           "hops_per_req"]
RATIO_METRICS = ["rps", "cpu_us_per_req", "core_us_per_req", "p99_us"]


def summarize(rows, styles, baseline):
    groups = {}
    for r in rows:
        key = (r["job"], r["variant"], r["connections"], r["size"])
        groups.setdefault(key, {}).setdefault(r["style"], []).append(r)
    summary = []
    for key, by_style in groups.items():
        for style in styles:
            runs = by_style.get(style)
            if not runs:
                continue
            s = {"job": key[0], "variant": key[1], "connections": key[2], "size": key[3],
                 "style": style, "runs": len(runs),
                 "failed": sum(1 for r in runs if r["status"] != "ok"),
                 "connections_open": min((r.get("connections_open") or 0) for r in runs),
                 "errors": sum(r.get("errors") or 0 for r in runs),
                 "mismatches": sum(r.get("mismatches") or 0 for r in runs),
                 "loc": runs[0].get("loc")}
            for m in METRICS:
                s[m] = median([r.get(m) for r in runs])
            base = {r["rep"]: r for r in by_style.get(baseline, [])}
            for m in RATIO_METRICS:
                ratios = [r[m] / base[r["rep"]][m] for r in runs
                          if r.get(m) and base.get(r["rep"], {}).get(m)]
                s[f"{m}_ratio"] = median(ratios)
                # The spread of the paired ratios: how far one repetition can be trusted.
                s[f"{m}_ratio_range"] = (f"{min(ratios):.2f}-{max(ratios):.2f}"
                                         if len(ratios) > 1 else "")
            notes = sorted({r["status"] for r in runs if r["status"] != "ok"})
            s["notes"] = "; ".join(notes)
            summary.append(s)
    return summary


def write_csv(path, rows):
    keys = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def table(summary, baseline):
    cols = [("style", "style"), ("conns", "connections_open"), ("req/s", "rps"),
            ("p50 us", "p50_us"), ("p99 us", "p99_us"), ("cpu us/req", "cpu_us_per_req"),
            ("core us/req", "core_us_per_req"), (f"cpu x{baseline}", "cpu_us_per_req_ratio"),
            (f"core x{baseline}", "core_us_per_req_ratio"),
            (f"core x{baseline} range", "core_us_per_req_ratio_range"),
            (f"rps x{baseline}", "rps_ratio"), ("core bg", "core_background"), ("RSS KiB", "rss_kb"),
            ("RSS B/conn", "rss_per_conn_b"), ("frame B/conn", "frame_b_per_conn"),
            ("threads", "threads"), ("cs/req", "cs_per_req"), ("allocs/req", "allocs_per_req"),
            ("LoC", "loc"), ("err", "errors"), ("bad", "mismatches")]
    blocks = []
    groups = {}
    for s in summary:
        groups.setdefault((s["job"], s["variant"], s["connections"], s["size"]), []).append(s)
    for key, items in groups.items():
        job, variant, conns, size = key
        title = f"{job}" + (f" {variant}" if variant != "-" else "") + f", {conns} connections"
        if job == "echo":
            title += f", {size} B"
        extra = any(i.get("large_mib_s") for i in items)
        c = cols + ([("large MiB/s", "large_mib_s")] if extra else [])
        rows = [[h for h, _ in c]]
        for i in items:
            cells = []
            for _, k in c:
                v = i.get(k)
                if k.endswith("_range"):
                    cells.append(v or "-")
                    continue
                digits = (2 if k.endswith("ratio") or k in ("cs_per_req", "core_background",
                                                           "allocs_per_req") else 1)
                cells.append(fmt(v, digits))
            rows.append(cells)
        notes = [f"{i['style']}: {i['notes']}" for i in items if i.get("notes")]
        blocks.append((title, rows, notes))
    return blocks


def print_tables(blocks):
    for title, rows, notes in blocks:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        print(f"\n== {title}")
        for r in rows:
            print("  ".join(v.rjust(w) for v, w in zip(r, widths)))
        for n in notes:
            print(f"   note: {n}")


def markdown_tables(blocks):
    out = []
    for title, rows, notes in blocks:
        out.append(f"\n### {title}\n")
        out.append("| " + " | ".join(rows[0]) + " |")
        out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(rows[0]))) + "|")
        for r in rows[1:]:
            out.append("| " + " | ".join(r) + " |")
        for n in notes:
            out.append(f"\n_note: {n}_")
    return "\n".join(out) + "\n"


def charts(out_dir, summary, styles):
    if not shutil.which("gnuplot"):
        log("gnuplot not found (Debian: gnuplot-nox): no charts")
        return []
    made = []
    for size in sorted({s["size"] for s in summary if s["job"] == "echo"}):
        pts = [s for s in summary if s["job"] == "echo" and s["size"] == size]
        conns = sorted({s["connections"] for s in pts})
        if len(conns) < 2:
            continue
        for metric, label in [("cpu_us_per_req", "server process CPU per request (us)"),
                              ("core_us_per_req", "server core busy time per request (us)"),
                              ("p99_us", "p99 latency (us)"),
                              ("rss_per_conn_b", "RSS per connection (bytes)")]:
            present = [st for st in styles
                       if any(p["style"] == st and p.get(metric) is not None for p in pts)]
            if not present:
                continue
            dat = os.path.join(out_dir, f"echo-{size}-{metric}.dat")
            with open(dat, "w") as f:
                f.write("connections " + " ".join(present) + "\n")
                for c in conns:
                    vals = []
                    for st in present:
                        v = next((p.get(metric) for p in pts
                                  if p["style"] == st and p["connections"] == c), None)
                        vals.append("NaN" if v is None else f"{v:.6g}")
                    f.write(f"{c} " + " ".join(vals) + "\n")
            png = os.path.join(out_dir, f"echo-{size}-{metric}.png")
            script = f"""
set terminal png size 800,500
set output '{png}'
set title 'echo {size} B: {label}'
set xlabel 'connections'
set ylabel '{label}'
set logscale x
set key top left
set grid
set datafile missing 'NaN'
plot for [i=2:{len(present) + 1}] '{dat}' using 1:i with linespoints lw 2 title columnhead(i)
"""
            r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
            if r.returncode == 0:
                made.append(os.path.basename(png))
            else:
                log(f"gnuplot failed for {png}: {r.stderr.strip()[:200]}")
    return made


def machine_line():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} CPUs ({model}), Linux {platform.release()}"


# ----- main -----


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                   help="release build folder with bench/loadgen and examples/lab "
                        "(configure with -Dbenchmarks=true)")
    p.add_argument("--styles", default=",".join(STYLES),
                   help="comma list of rows: threads, epoll, uring, corio (the four styles), "
                        "asio, asio-uring (Asio's C++20 coroutines on its epoll reactor, on its "
                        "io_uring backend; built where asio.hpp is found), corio-epoll (the corio "
                        "program with CORIO_BACKEND=epoll), corio-lean (echo job only: provided "
                        "buffers, multishot recv, a send that never waits first); NAME=PATH runs that binary as row NAME "
                        "(echo job only, unless PATH contains {job}, replaced by the job's name)")
    p.add_argument("--jobs", default="echo,files,blocking,sync")
    p.add_argument("--sync-styles", default=",".join(SYNC_ROWS),
                   help="comma list of the sync job's rows: " + ", ".join(SYNC_ROWS))
    p.add_argument("--sync-connections", default="50", help="connections of the sync job's cells")
    p.add_argument("--sync-cpus", default="0,1",
                   help="the sync job's CPUs: the server (and one shard per CPU) and, as this "
                        "VM has no other, the load generator too (taskset); 'none': not pinned")
    p.add_argument("--sync-shards", type=int, default=0,
                   help="corio-shards' shard count; 0: one per --sync-cpus entry (2 unpinned)")
    p.add_argument("--sync-keys", type=int, default=10000, help="sync: keys chosen uniformly")
    p.add_argument("--sync-set-percent", type=int, default=50, help="sync: SETs among requests")
    p.add_argument("--blocking-variants",
                   default="sleep,sleep-fix,hash,hash-fix,pread,pread-fix,pread-offload,mmap,"
                           "mmap-fix",
                   help="comma list of " + ", ".join(BLOCKING_VARIANTS))
    p.add_argument("--blocking-connections", default="50",
                   help="connections of the blocking job's cells")
    p.add_argument("--connections", default="1,50,1000,10000")
    p.add_argument("--sizes", default="64,4096", help="echo message sizes")
    p.add_argument("--all-sizes-up-to", type=int, default=1000,
                   help="echo cells with more connections than this run the first size only "
                        "(setting up 10,000 connections per cell dominates a run's time)")
    p.add_argument("--files-connections", default="50",
                   help="connections of the small-request load in the files job")
    p.add_argument("--files-variants", default="small,mixed,cold",
                   help="comma list of small, large, mixed, cold (large: the large readers "
                        "alone; mixed shows their throughput too)")
    p.add_argument("--large-connections", type=int, default=4,
                   help="connections reading 1 MiB ranges in the large/mixed/cold cells")
    # NOTE: direct by default: with the cache dropped before a cell, this VM's disk re-caches the
    # 128 MiB of large files within the cell's first second (measured: epoll's p99 in `cold`
    # close to `mixed`), while O_DIRECT keeps every large read on the disk for the whole cell.
    p.add_argument("--cold-method", choices=["auto", "drop", "direct"], default="direct",
                   help="cold files cells: servers read with --direct (default), or the page "
                        "cache is dropped before each cell (drop: needs root; auto: drop when "
                        "/proc/sys/vm/drop_caches is writable, else direct)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup", type=float, default=0.4)
    p.add_argument("--duration", type=float, default=1.5)
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--buffer-size", type=int, default=4096)
    p.add_argument("--files-buffer-size", type=int, default=65536)
    p.add_argument("--baseline", default="uring")
    p.add_argument("--out", default=None, help="default build/lab-results/<timestamp>")
    p.add_argument("--data", default=os.path.join(ROOT, "build", "lab-data"),
                   help="where the files job's files are created")
    p.add_argument("--no-charts", action="store_true")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--no-alloc-count", action="store_true",
                   help="do not preload bench/lab/alloc_counter.cpp into the servers (it counts "
                        "their heap allocations per request: one relaxed atomic add per malloc)")
    p.add_argument("--quick", action="store_true",
                   help="CI smoke run: 1 repetition, 1 and 50 connections, 64 B, 1 s, small files")
    args = p.parse_args()
    if args.quick:
        args.reps, args.connections, args.sizes = 1, "1,50", "64"
        args.warmup, args.duration = 0.3, 1.0
        args.files_variants, args.files_connections = "small", "50"
        # All four styles for sleep; corio alone for the cold reads and their fixes (~18 s).
        args.blocking_variants = "sleep,sleep-fix,pread,pread-fix,mmap,mmap-fix"
    args.connections = [int(x) for x in args.connections.split(",") if x]
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    args.files_connections = [int(x) for x in args.files_connections.split(",") if x]
    args.files_variants = [x for x in args.files_variants.split(",") if x]
    args.jobs = [x for x in args.jobs.split(",") if x]
    args.blocking_variants = [x for x in args.blocking_variants.split(",") if x]
    args.blocking_connections = [int(x) for x in args.blocking_connections.split(",") if x]
    args.sync_styles = [x for x in args.sync_styles.split(",") if x]
    args.sync_connections = [int(x) for x in args.sync_connections.split(",") if x]
    if args.cold_method == "auto":
        args.cold_method = "drop" if os.access("/proc/sys/vm/drop_caches", os.W_OK) else "direct"
    return args


def find_styles(args, job):
    """[(style, binary, source, env)] for the styles whose binary exists; reports the others.
    The blocking job runs the echo servers."""
    program_job = "echo" if job == "blocking" else job
    found = []
    for item in args.styles.split(","):
        name, _, path = item.partition("=")
        if path:
            if program_job != "echo" and "{job}" not in path:
                continue  # a plain NAME=PATH is an echo server
            binary, source, env = os.path.abspath(path.replace("{job}", program_job)), None, {}
        else:
            if job not in STYLE_JOBS.get(name, (job,)):
                continue  # not a row of this job
            program, source_style, env = style_program(name)
            binary = os.path.join(args.build, "examples", "lab", f"lab_{program_job}_{program}")
            source = os.path.join(ROOT, "examples", "lab", program_job, f"{source_style}.cpp")
        if os.access(binary, os.X_OK):
            found.append((name, binary, source, env))
        else:
            log(f"skipping {program_job}/{name}: {binary} not built")
    return found


def main():
    args = parse_args()
    args.loadgen = os.path.join(args.build, "bench", "loadgen")
    lib = os.path.join(args.build, "bench", "libcorio_alloc_counter.so")
    args.alloc_counter = lib if os.path.exists(lib) and not args.no_alloc_count else None
    if not os.access(args.loadgen, os.X_OK):
        log(f"{args.loadgen} not found: configure the build with -Dbenchmarks=true and build "
            f"bench/loadgen (e.g. meson setup {args.build} --buildtype=release "
            f"-Dbenchmarks=true && ninja -C {args.build})")
        return 77
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers and loadgen inherit it
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    args.server_cpu, args.client_cpu = (0, 1) if pin else (None, None)
    if not shutil.which("taskset") or args.no_pin or args.sync_cpus == "none":
        args.sync_cpus = None
    args.sync_cpu_list = args.sync_cpus.split(",") if args.sync_cpus else []
    if args.sync_cpus and any(not c.isdigit() for c in args.sync_cpu_list):
        log(f"--sync-cpus wants a comma list of CPU numbers, got '{args.sync_cpus}'")
        return 2
    if args.sync_shards <= 0:
        args.sync_shards = len(args.sync_cpu_list) or 2

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or os.path.join(ROOT, "build", "lab-results", stamp)
    cell_dir = os.path.join(out_dir, "logs")
    os.makedirs(cell_dir, exist_ok=True)

    plan = []  # (cell, binary, server args, loadgen arg lists, cold, handler LoC, env)
    for job in args.jobs:
        if job == "sync":
            plan += sync_plan(args)
            continue
        styles = find_styles(args, job)
        if not styles:
            continue
        locs = {name: handler_loc(src) if src else None for name, _, src, _ in styles}
        if job == "echo":
            groups = [("-", c, s, [[]], [], False) for c in args.connections
                      for s in (args.sizes if c <= args.all_sizes_up_to else args.sizes[:1])]
        elif job == "blocking":
            block_file = ["--block-file", os.path.join(args.data, BLOCK_FILE[0])]
            groups = [(v, c, 64, [[]], BLOCKING_VARIANTS[v]
                       + (block_file if v.startswith(("pread", "mmap")) else []), False)
                      for v in args.blocking_variants for c in args.blocking_connections]
        else:
            groups = [(v, c, 0, lg, srv + ["--root", args.data], cold)
                      for v, lg, srv, cold in files_variants(args)
                      for c in ([args.large_connections] if v == "large"
                                else args.files_connections)]
        for variant, conns, size, loadgens, srv, cold in groups:
            if conns + 64 > hard:
                log(f"note: {conns} connections exceed the fd limit ({hard}): "
                    "the load generator opens what it can and reports it")
            for rep in range(args.reps):
                k = rep % len(styles)
                for name, binary, _, env in styles[k:] + styles[:k]:
                    fix = variant.endswith(("-fix", "-offload"))
                    if (job == "blocking" and name != "corio" and
                            ((fix and not name.startswith("corio")) or
                             (args.quick and variant != "sleep"))):
                        continue  # the fix (offload, the ring) is corio's
                    cell = Cell(job, variant, conns, size, rep, name)
                    plan.append((cell, binary, srv, loadgens, cold, locs[name], env))
    if not plan:
        log("nothing to run: no lab server binary found (build examples/lab)")
        return 77
    if "files" in args.jobs:
        needed = list(SMALL_FILES)
        if any(v != "small" for v in args.files_variants):
            needed += LARGE_FILES
        ensure_files(args.data, needed)
    if any(c.job == "blocking" and c.variant.startswith(("pread", "mmap")) for c, *_ in plan):
        ensure_files(args.data, [BLOCK_FILE])
        fd = os.open(os.path.join(args.data, BLOCK_FILE[0]), os.O_RDONLY)
        try:
            os.fsync(fd)  # written back: the servers can drop its pages
        finally:
            os.close(fd)

    # Start, warm-up, measurement and stop, plus connecting and tearing down (threads!).
    estimate = sum(args.warmup + args.duration + 0.8 + p[0].connections / 1500 for p in plan)
    sync_pin = (f"sync: server and loadgen on CPUs {args.sync_cpus}" if args.sync_cpus
                else "sync: not pinned") if "sync" in args.jobs else ""
    if any(j != "sync" for j in args.jobs):
        pin_text = 'server on CPU 0, load generator on CPU 1' if pin else 'none'
        pin_text += f"; {sync_pin}" if sync_pin else ""
    else:
        pin_text = sync_pin
    log(f"{len(plan)} cells, about {estimate / 60:.1f} min; pinning: {pin_text}; "
        f"results in {out_dir}")
    rows = []
    t0 = time.monotonic()
    for i, (cell, binary, srv, loadgens, cold, loc, env) in enumerate(plan, 1):
        row = run_cell(cell, args, binary, srv, loadgens, cold, cell_dir, env)
        row["loc"] = loc
        rows.append(row)
        cpu = row.get("core_us_per_req", row.get("cpu_us_per_req"))
        log(f"[{i}/{len(plan)} {time.monotonic() - t0:5.0f}s] {cell.name():48s} "
            f"{fmt(row.get('rps')):>9} req/s  p99 {fmt(row.get('p99_us')):>8} us  "
            f"cpu {fmt(cpu, 2):>6} us/req  {row['status'] if row['status'] != 'ok' else ''}")

    styles_all = [item.partition("=")[0] for item in args.styles.split(",")]
    summary = summarize([r for r in rows if r["job"] not in ("blocking", "sync")], styles_all,
                        args.baseline)
    blocks = table(summary, args.baseline)
    print_tables(blocks)
    blocking_rows = [r for r in rows if r["job"] == "blocking"]
    blocking_md = blocking_report(blocking_rows) if blocking_rows else ""
    if blocking_md:
        print(blocking_md)
    sync_rows = [r for r in rows if r["job"] == "sync"]
    sync_summary = summarize(sync_rows, args.sync_styles, SYNC_BASELINE)
    sync_md = sync_report(sync_summary, args) if sync_rows else ""
    if sync_md:
        print(sync_md)
    write_csv(os.path.join(out_dir, "runs.csv"), rows)
    write_csv(os.path.join(out_dir, "summary.csv"), summary + sync_summary)
    pngs = [] if args.no_charts else charts(out_dir, summary, styles_all)

    command = " ".join(["bench/lab/run.py"] + sys.argv[1:])
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(f"# Laboratory run {stamp}\n\n")
        f.write(f"- command: `{command}`\n- machine: {machine_line()}\n")
        f.write(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}\n")
        f.write(f"- repetitions: {args.reps}, warm-up {args.warmup} s, measured {args.duration} s"
                f", pipeline {args.pipeline}; medians over repetitions; `x{args.baseline}` "
                "columns are medians of per-repetition ratios to the baseline style\n")
        f.write(f"- pinning: {pin_text}; cold file cells: {args.cold_method}\n\n")
        f.write(NOTES)
        f.write(markdown_tables(blocks))
        f.write(blocking_md)
        f.write(sync_md)
        for png in pngs:
            f.write(f"\n![{png}]({png})\n")
    log(f"\nwrote {out_dir}/report.md, runs.csv, summary.csv"
        + (f", {len(pngs)} charts" if pngs else ""))
    failed = sum(1 for r in rows if r["status"] != "ok")
    if failed:
        log(f"{failed} of {len(rows)} cells reported a problem (see the notes and logs/)")
    bad = sum((r.get("mismatches") or 0) for r in rows)
    if args.quick:
        # The CI smoke run: every cell must work, with every reply byte right, and corio must
        # serve its requests without a heap allocation (frames recycled, ops in the frames).
        allocating = [r for r in rows if r["style"] in ("corio", "corio-lean")
                      and (r.get("allocs_per_req") or 0) > 0.01]
        for r in allocating:
            log(f"{r['style']} allocates {r['allocs_per_req']:.2f} times per request in "
                f"{r['job']}/{r['variant']} c={r['connections']}")
        # The blocking job: corio's detector must have seen the 5 ms blocks and reported one.
        silent = [r for r in blocking_rows if r["style"] == "corio" and r["variant"] == "sleep"
                  and not (r.get("stalls") and r.get("stall_reports"))]
        for r in silent:
            log(f"corio's stall detector reported nothing in blocking/{r['variant']}")
        # The sync job: with two shards or more, about (N-1)/N of uniformly random keys live on
        # another shard: corio-shards must have forwarded some (on_shard was really used).
        local = [r for r in sync_rows if r["style"] == "corio-shards" and args.sync_shards > 1
                 and not (r.get("cross_shard_per_req") or 0) > 0.1]
        for r in local:
            log(f"corio-shards made {r.get('cross_shard_per_req')} cross-shard calls per request")
        return 1 if bad or failed or allocating or silent or local else 0
    return 1 if bad or failed == len(rows) else 0


def sync_plan(args):
    """The sync job's cells: [(cell, binary, server args, loadgen args, cold, LoC, env)]."""
    styles = []
    for name in args.sync_styles:
        if name not in SYNC_ROWS:
            log(f"skipping sync/{name}: not a row of the sync job ({', '.join(SYNC_ROWS)})")
            continue
        program = SYNC_ROWS[name][0]
        binary = os.path.join(args.build, "examples", "lab", f"lab_sync_{program}")
        if not os.access(binary, os.X_OK):
            log(f"skipping sync/{name}: {binary} not built")
            continue
        source = os.path.join(ROOT, "examples", "lab", "sync", f"{program}.cpp")
        styles.append((name, binary, sync_server_args(name, args), handler_loc(source)))
    plan = []
    for conns in args.sync_connections:
        for rep in range(args.reps):
            k = rep % len(styles) if styles else 0
            for name, binary, srv, loc in styles[k:] + styles[:k]:
                cell = Cell("sync", "-", conns, 0, rep, name)
                plan.append((cell, binary, srv, [[]], False, loc, {}))
    return plan


def sync_report(summary, args):
    """The sync job's table (Markdown, printed as is)."""
    pinned = (f"server and load generator both on CPUs {args.sync_cpus}" if args.sync_cpus
              else "not pinned")
    out = ["", "## Synchronisation job (docs/synchronisation.md)", "",
           f"A key-value service (GET/SET lines, {args.sync_set_percent} % SETs, keys uniformly "
           f"random among {args.sync_keys:,}); {pinned}. threads-mutex: a thread per connection, "
           "one map behind one mutex; "
           "threads-sharded-locks: the same with 16 maps, a mutex each; corio-shards: "
           f"{args.sync_shards} shards, a map part and an SO_REUSEPORT listener each, other "
           "shards' keys through on_shard(); corio-1: the same program with one shard. "
           "cpu us/req: the server's CPU time per request (all its threads); "
           f"`x {SYNC_BASELINE}`: the median of per-repetition ratios to corio-1; cs/req: "
           "voluntary + involuntary context switches of all its threads per request; "
           "lock waits/req (threads-mutex: try_lock failed, the thread waited) and cross-shard/"
           "req (corio: requests answered by another shard), hops/req (corio: on_shard() calls "
           "that carried them, one per other shard per read) count the server's whole life from "
           "its stats line, warm-up included.", "",
           f"| conns | style | req/s | p50 us | p99 us | cpu us/req | cpu x {SYNC_BASELINE} "
           "| cpu x range | cs/req | lock waits/req | cross-shard/req | hops/req | threads "
           "| allocs/req |",
           "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        locked = s["style"].startswith("threads")
        out.append(
            f"| {s['connections']} | {s['style']} | {fmt(s.get('rps'))} | {fmt(s.get('p50_us'))} "
            f"| {fmt(s.get('p99_us'))} | {fmt(s.get('cpu_us_per_req'), 2)} "
            f"| {fmt(s.get('cpu_us_per_req_ratio'), 2)} "
            f"| {s.get('cpu_us_per_req_ratio_range') or '-'} | {fmt(s.get('cs_per_req'), 2)} "
            f"| {fmt(s.get('lock_waits_per_req'), 3) if locked else '-'} "
            f"| {'-' if locked else fmt(s.get('cross_shard_per_req'), 2)} "
            f"| {'-' if locked else fmt(s.get('hops_per_req'), 2)} "
            f"| {fmt(s.get('threads'))} | {fmt(s.get('allocs_per_req'), 2)} |")
        if s.get("notes"):
            out.append(f"\n_note: {s['style']}: {s['notes']}_\n")
    return "\n".join(out) + "\n"


def blocking_report(rows):
    """The blocking job's table (Markdown, printed as is) and one real stall report."""
    groups = {}
    for r in rows:
        groups.setdefault((r["variant"], r["connections"], r["style"]), []).append(r)
    out = ["", "## Blocking job (docs/blocking.md)", "",
           "Every Nth request blocks before it is echoed (sleep: every 200th sleeps 5 ms; hash: "
           "every 1000th hashes 10 MiB; pread: every 200th preads 4 MiB of a file whose pages "
           "were just dropped from the page cache; mmap: every 200th touches 256 KiB of a cold "
           "mapping of that file, a major page fault per page); *-fix: corio with the call in "
           "`offload()` (sleep, hash) or the same range read through the ring (pread, mmap); "
           "*-offload: the call in `offload()`. p99 over all connections: the requests that "
           "block are 0.5 % (0.1 % for hash) of them, so the p99 is the other requests'. corio "
           f"runs with CORIO_STALL_MS={BLOCKING_STALL_MS}. core bg: how busy the server's core was "
           "with other work while the server idled, just before the cell (1.0: a whole core).",
           "",
           "| variant | conns | style | req/s | p50 us | p99 us | stalls | stall reports | major faults "
           "| core bg |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for (variant, conns, style), rs in groups.items():
        def med(key):
            return median([r.get(key) for r in rs])
        corio = style == "corio"
        out.append(f"| {variant} | {conns} | {style} | {fmt(med('rps'))} | {fmt(med('p50_us'))} | "
                   f"{fmt(med('p99_us'))} | {fmt(med('stalls')) if corio else '-'} | "
                   f"{fmt(med('stall_reports')) if corio else '-'} | {fmt(med('major_faults'))} | "
                   f"{fmt(med('core_background'), 2)} |")
    reporting = [r for r in rows if r["style"] == "corio" and r.get("stall_reports")]
    example = next((r for r in reporting if r["variant"] == "pread"),
                   reporting[0] if reporting else None)
    if example:
        try:
            with open(example["server_log"], errors="replace") as f:
                lines = f.read().splitlines()
            start = next(i for i, l in enumerate(lines) if l.startswith("corio: stall:"))
            end = start + 1
            while end < len(lines) and (lines[end].startswith("  ") or
                                        lines[end].startswith("corio: await chain")):
                end += 1
            out += ["", f"A stall report of blocking/{example['variant']} (corio):", "", "```"]
            out += lines[start:end] + ["```"]
        except (OSError, StopIteration):
            pass
    return "\n".join(out) + "\n"


NOTES = """How to read the columns:
- **cpu us/req**: the server process's utime+stime over the measured phase (from
  /proc/PID/stat, 10 ms ticks) divided by the requests answered in it.
- **core us/req**: the busy time of the server's core (CPU 0: user+nice+system+irq+softirq+steal
  from /proc/stat) over the same phase per request. It includes the kernel's network work done
  in softirq on that core, which the process's own CPU time misses, but also anything else that
  ran there: the `core_background` column of runs.csv is that core's busy fraction while the idle
  server waited, measured just before each cell (`core bg` in the tables). /proc/stat charges whole scheduler ticks, so
  for a mostly idle core (1 connection, ping-pong) it can read below the process's own time.
- **RSS B/conn**: (VmRSS at the end of the measured phase − VmRSS of the idle server) /
  connections: buffers, frames or thread stacks, socket state in user space.
- **frame B/conn** (corio only): the most bytes of coroutine frames alive at once (the runtime's
  `peak_frame_bytes` counter: the sizes the compiler asked for) / connections. The state the
  compiler keeps per connection, measured, not estimated.
- **threads**, **cs/req**: Threads and the voluntary + involuntary context switches of all the
  server's threads over the measured phase, per request.
- **allocs/req**: the server's heap allocations (malloc, calloc, realloc, aligned allocations;
  `operator new` included) over the measured phase per request, counted by an LD_PRELOAD library
  (bench/lab/alloc_counter.cpp) the load generator reads at the phase boundaries. The same
  unchanged binaries are measured; `--no-alloc-count` leaves the library out.
- Files job: `small` = 1 KiB ranges of 16 files of 64 KiB; `large` = 1 MiB ranges of four 32 MiB
  files; `mixed` = both loads at once on one server (the table shows the small requests' figures;
  CPU per request divides by small + large requests; `large MiB/s` is the large readers'
  throughput); `cold` = mixed with the page cache dropped before the cell, or read with
  `--direct` (O_DIRECT) where dropping is not allowed.
- One load-generator thread saturates its core from about 50 connections up, so req/s partly
  measures the client; compare servers by CPU per request.
- Rows: `asio` and `asio-uring` are one source (examples/lab/<job>/asio.cpp, Asio 1.22's C++20
  coroutines) on Asio's epoll reactor and on its io_uring backend; `corio-epoll` is the corio
  program run with CORIO_BACKEND=epoll (a corio without that backend ignores the variable);
  `corio-lean` (echo job only, examples/lab/echo/corio_lean.cpp) reads into one shared ring of
  512 provided buffers through a multishot recv with an idle deadline, and sends each reply with
  one send that never waits first (docs/provided_buffers.md).
"""

if __name__ == "__main__":
    sys.exit(main())
