#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The soak run (issue 10): echo, corio-http and corio-kv at once under normal and hostile clients
# for a bounded time; fails when a server's RSS, open fds or live tasks trend upward, a server
# stops answering or exits, or a normal client gets a wrong byte.
# Usage: bench/soak.py [--build build/release] [--duration 120] [--sample-interval 10] [--out DIR]
"""Soak echo, corio-http and corio-kv together; fail on a growing resource or a dead server.

The three servers run at once, each on an ephemeral loopback port, while Python client threads
hammer them: normal clients that verify every byte, slow clients, clients that reset or close
mid-request, pipelining clients, malformed input and clients that never read. Every sample
interval the harness
  1. probes each server with one normal request (it must answer within --probe-timeout) and
     reads its RSS, fds and stats (SIGUSR1) under load;
  2. pauses the clients (each ends its connection), waits until the servers report no open
     connection (or the count stops changing), and reads VmRSS, the entries of /proc/PID/fd and
     the stats line's live_tasks again: the "idle" sample, free of the load's own connections;
  3. resumes the load.
After the warm-up, each server's idle samples must not trend upward (see judge_trend and
docs/soak.md: the median of the last third against the median of the first third, with a
tolerance; RSS must also rise steadily, not in one step). At the end the servers get SIGTERM and
must exit 0. Everything stays on 127.0.0.1; every client loop is bounded in count and time.
"""

import argparse
import csv
import datetime
import errno
import importlib.util
import os
import random
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _load_lab():
    # NOTE: loaded by path, as bench/servers/run.py does (both scripts are called run.py).
    path = os.path.join(ROOT, "bench", "lab", "run.py")
    spec = importlib.util.spec_from_file_location("corio_lab_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab = _load_lab()
log, fmt = lab.log, lab.fmt

SERVERS = ["echo", "http", "kv"]
BINARIES = {"echo": "examples/echo", "http": "examples/http/corio-http",
            "kv": "examples/kv/corio-kv"}

# ----- the trend criterion -----


class Rule:
    """How one metric is judged. tolerance(base) = max(abs_tol, rel_tol * base). With steady,
    growth must also be a trend (Theil-Sen slopes rising over the whole window and in each
    half): RSS grows in steps when the allocator keeps a new
    high-water mark, a leak keeps growing. Without it (fd and task counts, exact when idle) any
    lasting growth past the tolerance fails."""

    def __init__(self, abs_tol, rel_tol=0.0, steady=False, unit=""):
        self.abs_tol, self.rel_tol, self.steady, self.unit = abs_tol, rel_tol, steady, unit

    def tolerance(self, base):
        return max(self.abs_tol, self.rel_tol * abs(base))

    def show(self, v, sign=""):
        """A value (or with sign="+", a difference) for the verdict's text."""
        if self.unit == "KiB":
            return f"{v / 1024:{sign}.2f} MiB"
        return f"{v:{sign}g}"


RULES = {
    # KiB. 4 MiB or 8 %: above what an allocator keeps after a busy phase here (measured: the
    # idle RSS of all three servers moves by under 1 MiB between samples once warm; corio-kv's
    # 64 KiB values move it most); a leak of 4 KiB per 20 connections crosses it in a minute at
    # this load (docs/soak.md).
    "rss_kb": Rule(4096, 0.08, steady=True, unit="KiB"),
    "fds": Rule(2),
    "live_tasks": Rule(2),
}
# Bounded caches a server legitimately keeps between idle samples, allowed on top of RULES.
SERVER_RULES = {
    # corio-http streams files above its cache limit with send_file_range, whose splice pipes
    # are kept for reuse: up to 4 idle pipe pairs (8 fds) per thread (fs/send_file.cpp,
    # resource_cache::k_max_idle). Its idle fd count moves between +0 and +8 with them.
    "http": {"fds": Rule(2 + 8)},
}
MIN_SAMPLES = 6  # fewer post-warm-up samples than this: no verdict
# A steady metric (RSS) that jumps by more than this many tolerances fails even in one step: more
# than an allocator keeps after the bounded requests of the client mix.
STEP_FACTOR = 4


def rule_for(server, metric):
    return SERVER_RULES.get(server, {}).get(metric, RULES[metric])


def theil_sen(ts, xs):
    """The median of the slopes between every pair of samples: a trend that one outlier cannot
    move."""
    slopes = [(xs[j] - xs[i]) / (ts[j] - ts[i])
              for i in range(len(xs)) for j in range(i + 1, len(xs)) if ts[j] > ts[i]]
    return statistics.median(slopes) if slopes else 0.0


def judge_trend(ts, xs, rule):
    """Judges one metric's post-warm-up samples (times ts in seconds, values xs).
    Returns {"verdict": "pass"|"fail"|"n/a", "first", "middle", "last", "growth", "tolerance",
    "slope_per_h", "reason"}. With k = n // 3: first = median(xs[:k]), last = median(xs[-k:]),
    middle = median of the rest; growth = last - first. Fails when growth > tolerance(first).
    With rule.steady the growth must also be a trend, not a step: the Theil-Sen slope times the
    window's span exceeds the tolerance, and so does a third of it in each half of the window
    (each half's own Theil-Sen slope times its span). A single step, an allocator's new
    high-water mark, lies in one half and leaves the other flat: it does not fail, unless it is
    larger than STEP_FACTOR tolerances; a leak grows in both halves and does."""
    n = len(xs)
    out = {"verdict": "n/a", "first": None, "middle": None, "last": None, "growth": None,
           "tolerance": None, "slope_per_h": None, "reason": f"{n} samples after the warm-up "
                                                            f"(needs {MIN_SAMPLES})"}
    if n < MIN_SAMPLES:
        return out
    k = n // 3
    first = statistics.median(xs[:k])
    middle = statistics.median(xs[k:n - k])
    last = statistics.median(xs[n - k:])
    slope = theil_sen(ts, xs)
    span = ts[-1] - ts[0]
    tol = rule.tolerance(first)
    growth = last - first
    out.update(first=first, middle=middle, last=last, growth=growth, tolerance=tol,
               slope_per_h=slope * 3600, verdict="pass", reason="")
    show = rule.show
    if growth <= tol:
        out["reason"] = (f"{show(growth, '+')} within tolerance {show(tol)}" if growth > 0
                         else "no growth")
        return out
    if rule.steady and growth <= STEP_FACTOR * tol:
        if slope * span <= tol:
            out["reason"] = (f"{show(growth, '+')}, but the trend projects only "
                             f"{show(slope * span, '+')} over the window (tolerance {show(tol)})")
            return out
        h = (n + 1) // 2
        halves = [(ts[:h], xs[:h]), (ts[n - h:], xs[n - h:])]
        rises = [theil_sen(t, x) * (t[-1] - t[0]) for t, x in halves]
        if min(rises) <= tol / 3:
            out["reason"] = (f"one step of {show(growth, '+')}, not a steady rise (the halves of "
                             f"the window rise by {show(rises[0], '+')} and {show(rises[1], '+')})")
            return out
    out["verdict"] = "fail"
    out["reason"] = (f"grows {show(first)} -> {show(last)} ({show(growth, '+')} > tolerance "
                     f"{show(tol)}; {show(slope * 3600, '+')} per hour)")
    return out


def judge_series(samples, metric, warmup_s, rule=None):
    """judge_trend over samples (dicts with "t" and metric) at t >= warmup_s; None values (a
    sample that could not be read) are left out."""
    rule = rule or RULES[metric]
    pts = [(s["t"], s[metric]) for s in samples if s["t"] >= warmup_s and s.get(metric) is not None]
    return judge_trend([p[0] for p in pts], [p[1] for p in pts], rule)


# ----- the servers -----


def parse_stats(line):
    """`stats: k=v k=v ...` as {k: int (or str when not a number)}; None for any other line.
    Keys are read by name, so a server may add, drop or reorder fields."""
    if not line.startswith("stats:"):
        return None
    out = {}
    for item in line[len("stats:"):].split():
        key, eq, value = item.partition("=")
        if not eq or not key:
            continue
        try:
            out[key] = int(value)
        except ValueError:
            out[key] = value
    return out


def open_connections(stats):
    """The server's open connection count: echo and corio-http say connections, corio-kv
    clients."""
    for key in ("connections", "clients"):
        if isinstance(stats.get(key), int):
            return stats[key]
    return None


def count_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def rss_kb(pid):
    return lab.status_kb(lab.read_status(pid), "VmRSS")


class Server:
    """One server process: started with --port 0, its stdout read by a thread that keeps the
    stats lines (SIGUSR1 asks for one)."""

    def __init__(self, name, binary, args, log_dir):
        self.name, self.binary, self.args = name, binary, args
        self.stdout_path = os.path.join(log_dir, f"{name}.stdout.log")
        self.stderr_path = os.path.join(log_dir, f"{name}.stderr.log")
        self.proc, self.port = None, None
        self.cond = threading.Condition()
        self.stats = []  # parsed stats lines, in order
        self.exit_status = None

    def start(self, timeout=10.0):
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([self.binary] + self.args, stdout=subprocess.PIPE,
                                         stderr=err, stdin=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        with self.cond:
            self.cond.wait_for(lambda: self.port is not None or self.proc.poll() is not None,
                               timeout)
        if self.port is None:
            self.stop()
            raise RuntimeError(f"{self.name}: no `listening on` line within {timeout:.0f} s "
                               f"({' '.join([self.binary] + self.args)}; see {self.stderr_path})")

    def _read(self):
        with open(self.stdout_path, "wb") as out:
            for raw in iter(self.proc.stdout.readline, b""):
                out.write(raw)
                out.flush()
                line = raw.decode(errors="replace").strip()
                with self.cond:
                    words = line.split()
                    if self.port is None and len(words) == 3 and line.startswith("listening on ") \
                            and words[2].isdigit():
                        self.port = int(words[2])
                    parsed = parse_stats(line)
                    if parsed is not None:
                        self.stats.append(parsed)
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def request_stats(self, timeout):
        """Sends SIGUSR1 and returns the next stats line (a dict), or None."""
        with self.cond:
            seen = len(self.stats)
            if not self.alive():
                return None
            os.kill(self.proc.pid, signal.SIGUSR1)
            self.cond.wait_for(lambda: len(self.stats) > seen or not self.alive(), timeout)
            return self.stats[seen] if len(self.stats) > seen else None

    def stop(self, timeout=15.0):
        """SIGTERM; SIGKILL after timeout. Returns (exit status or "killed", seconds)."""
        if self.proc is None:
            return None, 0.0
        if self.proc.poll() is not None:
            self.exit_status = self.proc.returncode
            return self.exit_status, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            self.exit_status = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.exit_status = "killed"
        return self.exit_status, time.monotonic() - t0

    def final_stats(self):
        """The last stats line (servers print one when they stop)."""
        with self.cond:
            return dict(self.stats[-1]) if self.stats else {}


# ----- client plumbing -----

POLL = 0.2  # seconds a socket call waits before the gate and the deadline are checked again


class Interrupted(Exception):
    """The gate paused or stopped the load: the client ends its connection (not a failure)."""


class VerifyFailure(Exception):
    """A reply differs from what the protocol and the data promise: always a failure."""


class ClientTimeout(Exception):
    """A connection's deadline passed."""


class Closed(Exception):
    """The server closed the connection (EOF) before the reply was complete."""


class Gate:
    """Pauses and stops the clients. Each connection is a session: pause() waits until none is
    open; clients check it in every socket wait (POLL) and every sleep."""

    def __init__(self):
        self.cond = threading.Condition()
        self.paused = False
        self.stopping = False
        self.sessions = 0

    def enter(self):
        """Starts a session; blocks while paused. False once stopping."""
        with self.cond:
            self.cond.wait_for(lambda: not self.paused or self.stopping)
            if self.stopping:
                return False
            self.sessions += 1
            return True

    def leave(self):
        with self.cond:
            self.sessions -= 1
            self.cond.notify_all()

    def check(self):
        if self.paused or self.stopping:
            raise Interrupted()

    def sleep(self, seconds):
        """Sleeps, raising Interrupted as soon as the load is paused or stopped."""
        with self.cond:
            self.cond.wait_for(lambda: self.paused or self.stopping, seconds)
        self.check()

    def pause(self, timeout):
        """Pauses; True when every session ended within timeout."""
        with self.cond:
            self.paused = True
            self.cond.notify_all()
            return self.cond.wait_for(lambda: self.sessions == 0, timeout)

    def resume(self):
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


class Conn:
    """A client connection to 127.0.0.1:port whose every wait is cut in POLL slices: it raises
    Interrupted when the gate pauses, ClientTimeout past its deadline, Closed on an early EOF."""

    def __init__(self, port, gate, timeout):
        self.gate = gate
        self.deadline = time.monotonic() + timeout
        gate.check()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=min(timeout, 5.0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(POLL)
        self.buf = bytearray()  # received, not consumed yet
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def tick(self):
        self.gate.check()
        if time.monotonic() > self.deadline:
            raise ClientTimeout("the connection's deadline passed")

    def send(self, data):
        view = memoryview(data)
        while view:
            try:
                n = self.sock.send(view[:1 << 20])
            except TimeoutError:
                self.tick()
                continue
            view = view[n:]

    def fill(self, size=65536):
        """Receives once into buf; 0 at EOF."""
        while True:
            try:
                data = self.sock.recv(size)
            except TimeoutError:
                self.tick()
                continue
            if not data:
                self.eof = True
            self.buf += data
            return len(data)

    def read_exact(self, n, what="reply"):
        while len(self.buf) < n:
            if self.fill(max(65536, n - len(self.buf))) == 0:
                raise Closed(f"EOF after {len(self.buf)} of {n} bytes of the {what}")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, marker, limit, what="reply"):
        """Bytes up to and including marker."""
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                return self.read_exact(i + len(marker))
            if len(self.buf) > limit:
                raise VerifyFailure(f"no {marker!r} in the first {limit} bytes of the {what}")
            start = max(0, len(self.buf) - len(marker) + 1)
            if self.fill() == 0:
                raise Closed(f"EOF after {len(self.buf)} bytes of the {what}")

    def drain(self, limit, seconds):
        """Reads and drops until EOF, limit bytes or seconds: True when EOF was seen."""
        end = min(self.deadline, time.monotonic() + seconds)
        got = 0
        while got < limit and time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                self.gate.check()
                continue
            if not data:
                self.eof = True
                return True
            got += len(data)
        return False

    def send_reading(self, data):
        """Sends data while reading whatever arrives into buf: a long pipeline never deadlocks
        on full socket buffers in both directions."""
        view = memoryview(data)
        while view:
            self.tick()
            readable, writable, _ = select.select([self.sock], [self.sock], [], POLL)
            if readable:
                try:
                    chunk = self.sock.recv(1 << 20)
                except (TimeoutError, BlockingIOError):
                    chunk = None
                if chunk == b"":
                    raise Closed(f"EOF with {len(view)} request bytes unsent")
                if chunk:
                    self.buf += chunk
            if writable:
                try:
                    n = self.sock.send(view[:1 << 18])
                    view = view[n:]
                except (TimeoutError, BlockingIOError):
                    pass

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self):
        """Closes with SO_LINGER 0: the kernel sends RST instead of FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class PatternStats:
    """What one client pattern saw against one server."""

    def __init__(self, server, pattern, normal):
        self.server, self.pattern, self.normal = server, pattern, normal
        self.lock = threading.Lock()
        self.connections = 0  # sessions run
        self.completed = 0  # ended as the pattern meant to
        self.interrupted = 0  # cut by a pause or the end of the run
        self.verify_failures = 0  # wrong bytes: a failure for every pattern
        self.errors = 0  # normal patterns: a reset, early EOF, timeout or refused connection
        self.harness_errors = 0  # a bug in this script
        self.outcomes = {}  # hostile patterns: how their sessions ended
        self.notes = []  # the first few failure messages

    def note(self, text):
        if len(self.notes) < 5:
            self.notes.append(text)

    def outcome(self, name):
        with self.lock:
            self.outcomes[name] = self.outcomes.get(name, 0) + 1


def error_name(e):
    return type(e).__name__  # ConnectionResetError, BrokenPipeError, Closed, ClientTimeout...


class Worker:
    """A thread that runs one client pattern against one server, one connection (session) at a
    time, at most max_sessions times, until the gate stops it."""

    def __init__(self, ident, server, pattern, stats, gate, seed, max_sessions, gap, docs):
        self.ident, self.server, self.pattern, self.stats = ident, server, pattern, stats
        self.gate, self.max_sessions, self.gap, self.docs = gate, max_sessions, gap, docs
        self.rng = random.Random(seed)
        self.port = server.port
        self.state = {}  # what a pattern keeps between sessions (the kv values it set)
        self.thread = threading.Thread(target=self.run, name=f"{server.name}-{stats.pattern}",
                                       daemon=True)

    def connect(self, timeout):
        return Conn(self.port, self.gate, timeout)

    def sleep(self, seconds):
        self.gate.sleep(seconds)

    def outcome(self, name):
        self.stats.outcome(name)

    def run(self):
        st = self.stats
        for _ in range(self.max_sessions):
            if not self.server.alive():
                return  # its exit is a failure already; refused connections would add nothing
            if not self.gate.enter():
                return
            try:
                with st.lock:
                    st.connections += 1
                self.pattern(self)
                with st.lock:
                    st.completed += 1
            except Interrupted:
                with st.lock:
                    st.interrupted += 1
            except VerifyFailure as e:
                with st.lock:
                    st.verify_failures += 1
                    st.note(f"{st.pattern}: {e}")
            except (OSError, ClientTimeout, Closed) as e:
                if isinstance(e, OSError) and e.errno == errno.EADDRNOTAVAIL:
                    # The client machine ran out of local ports: not the server's doing.
                    st.outcome("no free local port (client side)")
                elif self.gate.paused or self.gate.stopping:
                    with st.lock:
                        st.interrupted += 1
                elif st.normal:
                    with st.lock:
                        st.errors += 1
                        st.note(f"{st.pattern}: {error_name(e)}: {e}")
                else:
                    st.outcome(f"{error_name(e)}")
            except Exception as e:  # noqa: BLE001 - a bug here must not end the soak silently
                with st.lock:
                    st.harness_errors += 1
                    st.note(f"{st.pattern}: harness bug: {traceback.format_exc(limit=3)}")
            finally:
                self.gate.leave()
            try:
                self.gate.sleep(self.gap)
            except Interrupted:
                pass


def pattern_bytes(rng, n):
    return rng.randbytes(n)


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# ----- echo clients -----

ECHO_SIZES = [1, 7, 64, 512, 1460, 4096, 16384, 65536]


def echo_check(sent, got, what):
    if got != sent:
        i = first_difference(sent, got)
        raise VerifyFailure(f"echo: {what} of {len(sent)} bytes came back different at byte {i}")


def echo_normal(w):
    """1-12 messages of 1 B-64 KiB, each read back and compared; then a plain close or a
    half-close whose EOF must come back."""
    with w.connect(20) as c:
        for _ in range(w.rng.randint(1, 12)):
            msg = pattern_bytes(w.rng, w.rng.choice(ECHO_SIZES))
            c.send(msg)
            echo_check(msg, c.read_exact(len(msg), "echo"), "a message")
        if w.rng.random() < 0.5:
            c.shutdown_write()
            if c.fill() != 0:
                raise VerifyFailure("echo: bytes after the half-close")


def echo_slow(w):
    """Trickles 20-60 bytes in 1-3 byte pieces (20-80 ms apart), reads the echo back byte by
    byte, slowly; verified."""
    with w.connect(20) as c:
        msg = pattern_bytes(w.rng, w.rng.randint(20, 60))
        i = 0
        while i < len(msg):
            n = w.rng.randint(1, 3)
            c.send(msg[i:i + n])
            i += n
            w.sleep(w.rng.uniform(0.02, 0.08))
        got = b""
        while len(got) < len(msg):
            got += c.read_exact(1, "echo")
            if w.rng.random() < 0.2:
                w.sleep(0.01)
        echo_check(msg, got, "a trickled message")
        w.outcome("verified")


def echo_abrupt(w):
    """Resets (SO_LINGER 0) or closes with unread bytes in the middle of an echo."""
    c = w.connect(10)
    try:
        kind = w.rng.randrange(4)
        if kind == 0:
            w.outcome("reset at once")
        elif kind == 1:
            c.send(pattern_bytes(w.rng, w.rng.choice([65536, 262144])))
            w.outcome("reset after sending")
        elif kind == 2:
            c.send(pattern_bytes(w.rng, 16384))
            c.read_exact(w.rng.randint(1, 8192))
            w.outcome("reset mid-reply")
        else:
            c.send(pattern_bytes(w.rng, 65536))
            c.read_exact(1024)
            c.close()  # unread bytes: the kernel resets too
            w.outcome("closed mid-reply")
            return
    finally:
        c.reset()


def echo_bulk(w):
    """The echo form of pipelining: 256 KiB-1 MiB streamed in random pieces while the echo is
    read concurrently; every byte compared."""
    with w.connect(30) as c:
        total = w.rng.choice([262144, 524288, 1048576])
        msg = pattern_bytes(w.rng, total)
        c.send_reading(msg)
        echo_check(msg, c.read_exact(total, "echo"), "a streamed megabyte")
        w.outcome("verified")


def echo_never_read(w):
    """Sends up to 8 MiB without reading (the server's sends then block), waits 1-7 s (the
    server's idle timeout is 5 s), closes with everything unread."""
    c = w.connect(12)
    try:
        sent = 0
        stalled = time.monotonic()
        block = pattern_bytes(w.rng, 65536)
        while sent < (8 << 20) and time.monotonic() - stalled < 1.0:
            c.gate.check()
            r, wr, _ = select.select([], [c.sock], [], POLL)
            if wr:
                try:
                    sent += c.sock.send(block)
                    stalled = time.monotonic()
                except (TimeoutError, BlockingIOError):
                    pass
        w.sleep(w.rng.uniform(1, 7))
        w.outcome(f"held {'8 MiB' if sent >= 8 << 20 else 'until blocked'}")
    finally:
        c.close()


def echo_idle(w):
    """Connects and sends nothing: the server's idle timeout (5 s) must close it."""
    wait_for_server_close(w, 8)


def wait_for_server_close(w, seconds, limit=1 << 20):
    with w.connect(seconds + 5) as c:
        t0 = time.monotonic()
        closed = c.drain(limit, seconds)
        w.outcome(f"closed by the server after {time.monotonic() - t0:.0f} s" if closed
                  else f"still open after {seconds} s")


# ----- http clients -----

HTTP_FILES = {"100b": 100, "4k": 4096, "64k": 65536, "1m": 1 << 20}


def http_request(path, method="GET", headers=None, close=False):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: corio-soak"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_http_response(c, head_only=False):
    """(status, headers dict (lower-case names), body bytes) of one response."""
    head = c.read_until(b"\r\n\r\n", 65536, "response head").decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise VerifyFailure(f"http: bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    length = headers.get("content-length")
    if length is None or not length.isdigit():
        raise VerifyFailure(f"http: {status} without a Content-Length")
    body = b"" if head_only or status in (204, 304) else c.read_exact(int(length), "body")
    return status, headers, body


def http_check(what, status, body, want_status, want_body):
    if status != want_status:
        raise VerifyFailure(f"http: {what}: status {status}, expected {want_status}")
    if want_body is not None and body != want_body:
        raise VerifyFailure(f"http: {what}: {len(body)} body bytes differ from the file's "
                            f"{len(want_body)} at byte {first_difference(body, want_body)}")


def http_plan(w, allow_big=True):
    """One request and its expected (status, body): a file, a range, a HEAD or a 404."""
    names = [n for n in HTTP_FILES if allow_big or n != "1m"]
    name = w.rng.choice(names)
    data = w.docs[name]
    kind = w.rng.random()
    if kind < 0.6:
        return http_request("/" + name), f"GET /{name}", 200, data, False
    if kind < 0.75:
        a = w.rng.randrange(len(data))
        b = w.rng.randrange(a, len(data))
        return (http_request("/" + name, headers={"Range": f"bytes={a}-{b}"}),
                f"GET /{name} bytes={a}-{b}", 206, data[a:b + 1], False)
    if kind < 0.9:
        return http_request("/" + name, method="HEAD"), f"HEAD /{name}", 200, b"", True
    return http_request("/missing-" + name), f"GET /missing-{name}", 404, None, False


def http_normal(w):
    """1-8 keep-alive requests one after another (files, ranges, HEAD, 404), each verified; the
    last one in half of the sessions with Connection: close, whose close must follow."""
    with w.connect(20) as c:
        n = w.rng.randint(1, 8)
        for i in range(n):
            request, what, want, body, head_only = http_plan(w)
            close = i == n - 1 and w.rng.random() < 0.5
            if close:
                request = request[:-2] + b"Connection: close\r\n\r\n"
            c.send(request)
            status, headers, got = read_http_response(c, head_only)
            http_check(what, status, got, want, body)
            if head_only and headers.get("content-length") != str(len(w.docs[what.split("/")[1]])):
                raise VerifyFailure(f"http: {what}: Content-Length {headers.get('content-length')}")
            if close and c.fill() != 0:
                raise VerifyFailure(f"http: bytes after a Connection: close response")


def http_slow(w):
    """Slowloris within the header timeout: the head trickled in 1-4 byte pieces 20-60 ms
    apart, then a slow read (verified); or a slow reader of the 1 MiB file that gives up after
    1-3 s (what it read is verified)."""
    with w.connect(20) as c:
        if w.rng.random() < 0.5:
            name = w.rng.choice(["100b", "4k", "64k"])
            req = http_request("/" + name)
            i = 0
            while i < len(req):
                n = w.rng.randint(1, 4)
                c.send(req[i:i + n])
                i += n
                w.sleep(w.rng.uniform(0.02, 0.06))
            status, _, body = read_http_response(c)
            http_check(f"slow GET /{name}", status, body, 200, w.docs[name])
            w.outcome("slowloris verified")
            return
        c.send(http_request("/1m"))
        head = c.read_until(b"\r\n\r\n", 65536, "response head")
        if not head.startswith(b"HTTP/1.1 200"):
            raise VerifyFailure(f"http: slow GET /1m: {head[:40]!r}")
        got = bytearray()
        end = time.monotonic() + w.rng.uniform(1, 3)
        while time.monotonic() < end and len(got) < (1 << 20):
            if not c.buf:
                c.fill(4096)
            take = bytes(c.buf[:4096])
            del c.buf[:4096]
            got += take
            w.sleep(0.03)
        want = w.docs["1m"][:len(got)]
        if got != want:
            raise VerifyFailure(f"http: slow GET /1m: byte {first_difference(got, want)} differs")
        w.outcome("slow reader gave up")


def http_abrupt(w):
    """Resets mid-request or mid-response, or closes with a response unread."""
    c = w.connect(10)
    try:
        kind = w.rng.randrange(4)
        if kind == 0:
            c.send(http_request("/1m"))
            c.read_exact(w.rng.randint(1, 65536))
            w.outcome("reset mid-response")
        elif kind == 1:
            req = http_request("/4k")
            c.send(req[:w.rng.randint(1, len(req) - 1)])
            w.outcome("reset mid-request")
        elif kind == 2:
            c.send(http_request("/64k") * 4)
            c.read_exact(100)
            c.close()
            w.outcome("closed mid-response")
            return
        else:
            c.send(http_request("/1m"))
            w.outcome("reset before the response")
    finally:
        c.reset()


def http_pipelined(w):
    """4-24 requests (files, ranges, HEAD, 404; at most two of 1 MiB) sent in one go, the
    responses read in order and verified."""
    with w.connect(30) as c:
        plans = []
        big = 0
        for _ in range(w.rng.randint(4, 24)):
            p = http_plan(w, allow_big=big < 2)
            big += "/1m" in p[1]
            plans.append(p)
        c.send_reading(b"".join(p[0] for p in plans))
        for request, what, want, body, head_only in plans:
            status, _, got = read_http_response(c, head_only)
            http_check(f"pipelined {what}", status, got, want, body)
        w.outcome("verified")


HTTP_MALFORMED = [
    ("garbage", None),
    ("huge header", b"GET /100b HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"),
    ("many headers", b"GET /100b HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150))
     + b"\r\n"),
    ("long request line", b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad method", b"FROB /100b HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("traversal", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("encoded traversal", b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad version", b"GET /100b HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("chunked body", b"POST /100b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n"),
    ("huge body", b"POST /100b HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n"),
    ("bare LF", b"GET /100b HTTP/1.1\nHost: x\n\n"),
    ("http2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
]


def http_malformed(w):
    """Garbage, oversized heads, bad methods and versions, traversal attempts, chunked and huge
    bodies: whatever comes back (a 4xx/5xx, a close) is counted, not verified."""
    name, data = w.rng.choice(HTTP_MALFORMED)
    if data is None:
        data = pattern_bytes(w.rng, w.rng.randint(16, 4096)) + b"\r\n\r\n"
    with w.connect(10) as c:
        try:
            c.send_reading(data)
        except (Closed, ConnectionError):
            w.outcome(f"{name}: closed while sending")
            return
        try:
            head = c.read_until(b"\r\n", 4096, "status line")
            status = head.split(b" ")[1].decode(errors="replace") if b" " in head else "?"
        except (Closed, ConnectionError):
            status = "closed"
        w.outcome(f"{name}: {status}")
        c.drain(1 << 20, 2)


def http_never_read(w):
    """16 pipelined GETs of the 1 MiB file never read; held 1-7 s (the server's send timeout is
    5 s), then closed unread."""
    c = w.connect(12)
    try:
        c.send(http_request("/1m") * 16)
        w.sleep(w.rng.uniform(1, 7))
        w.outcome("held")
    finally:
        c.close()


def http_idle(w):
    """Connects and sends nothing (the header timeout, 5 s, must close it), or sends one request
    and then idles (the keep-alive timeout)."""
    if w.rng.random() < 0.5:
        wait_for_server_close(w, 8)
        return
    with w.connect(15) as c:
        c.send(http_request("/100b"))
        status, _, body = read_http_response(c)
        http_check("GET /100b", status, body, 200, w.docs["100b"])
        t0 = time.monotonic()
        closed = c.drain(1 << 20, 8)
        w.outcome(f"idle after a request: closed after {time.monotonic() - t0:.0f} s" if closed
                  else "idle after a request: still open")


# ----- kv clients -----


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_resp(c):
    """One RESP2 reply: bytes for a bulk (None for nil), ("+", text), ("-", text), int, list."""
    line = c.read_until(b"\r\n", 65536, "reply")[:-2]
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return ("+", rest.decode(errors="replace"))
    if kind == b"-":
        return ("-", rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = c.read_exact(n + 2, "bulk")
        if data[-2:] != b"\r\n":
            raise VerifyFailure("kv: a bulk reply not ended by CR LF")
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [read_resp(c) for _ in range(n)]
    raise VerifyFailure(f"kv: a reply starting with {line[:20]!r}")


# A key whose last write was sent but not confirmed (a session cut by a pause): the server may or
# may not have run it, so its value is not checked until a confirmed write.
UNKNOWN = object()


def kv_expect(what, got, want):
    if want is UNKNOWN or got == want:
        return
    show = (lambda v: f"{len(v)} bytes" if isinstance(v, bytes) and len(v) > 40 else repr(v))
    if isinstance(got, bytes) and isinstance(want, bytes):
        raise VerifyFailure(f"kv: {what}: {show(got)} differ from {show(want)} at byte "
                            f"{first_difference(got, want)}")
    raise VerifyFailure(f"kv: {what}: got {show(got)}, expected {show(want)}")


def kv_value(rng, big=False):
    if big:
        n = rng.randint(60000, 68000)
    else:
        n = rng.choice([1, 3, 16, 100, 300, 1000, 4000, rng.randint(0, 20000)])
    v = bytearray(rng.randbytes(n))
    if n >= 8 and rng.random() < 0.5:
        v[n // 2:n // 2 + 7] = b"\r\n$3\r\n*"  # protocol bytes inside a value
    return bytes(v)


KV_KEYS = 64  # keys per normal worker: the keyspace stays bounded


def kv_normal(w):
    """1-16 commands one after another on the worker's own keys (SET, GET, DEL, EXISTS, INCR,
    SET with a short PX), every reply checked against what this worker wrote; in half of the
    sessions a QUIT then, whose +OK and close must follow."""
    known = w.state.setdefault("values", {})  # key -> value this worker last set (None: absent)
    with w.connect(20) as c:
        for _ in range(w.rng.randint(1, 16)):
            key = f"soak:{w.ident}:{w.rng.randrange(KV_KEYS)}".encode()
            op = w.rng.random()
            if op < 0.35:
                v = kv_value(w.rng)
                known[key] = UNKNOWN
                c.send(resp("SET", key, v))
                kv_expect(f"SET {key.decode()}", read_resp(c), ("+", "OK"))
                known[key] = v
            elif op < 0.7:
                c.send(resp("GET", key))
                kv_expect(f"GET {key.decode()}", read_resp(c), known.get(key))
            elif op < 0.78:
                c.send(resp("EXISTS", key))
                want = known.get(key)
                kv_expect(f"EXISTS {key.decode()}", read_resp(c),
                          UNKNOWN if want is UNKNOWN else int(want is not None))
            elif op < 0.86:
                want = known.get(key)
                known[key] = UNKNOWN
                c.send(resp("DEL", key))
                kv_expect(f"DEL {key.decode()}", read_resp(c),
                          UNKNOWN if want is UNKNOWN else int(want is not None))
                known[key] = None
            elif op < 0.93:
                ckey = f"soak:{w.ident}:counter".encode()
                n = w.state.get("counter", 0)
                w.state["counter"] = UNKNOWN
                c.send(resp("INCR", ckey))
                got = read_resp(c)
                kv_expect("INCR", got, UNKNOWN if n is UNKNOWN else n + 1)
                if not isinstance(got, int):
                    raise VerifyFailure(f"kv: INCR: got {got!r}")
                w.state["counter"] = got
            else:
                tkey = f"soak:{w.ident}:ttl:{w.rng.randrange(16)}".encode()
                c.send(resp("SET", tkey, kv_value(w.rng), "PX", w.rng.randint(50, 2000)))
                kv_expect("SET PX", read_resp(c), ("+", "OK"))
        if w.rng.random() < 0.5:
            c.send(resp("QUIT"))
            kv_expect("QUIT", read_resp(c), ("+", "OK"))
            if c.fill() != 0:
                raise VerifyFailure("kv: bytes after QUIT's reply")


def kv_slow(w):
    """A SET of 100 B-4 KiB trickled in 1-64 byte pieces (20-60 ms apart, at most ~40), its
    reply read byte by byte, then a GET verified."""
    key = f"soak:{w.ident}:slow".encode()
    v = kv_value(w.rng)[:4096] or b"x"
    with w.connect(20) as c:
        req = resp("SET", key, v)
        i = 0
        step = max(1, len(req) // 40)
        while i < len(req):
            n = w.rng.randint(1, step)
            c.send(req[i:i + n])
            i += n
            w.sleep(w.rng.uniform(0.02, 0.06))
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += c.read_exact(1)
            w.sleep(0.005)
        kv_expect("slow SET", reply, b"+OK\r\n")
        c.send(resp("GET", key))
        kv_expect("GET after a slow SET", read_resp(c), v)
        w.outcome("verified")


def kv_abrupt(w):
    """Resets with half a command sent, half of a 64 KiB SET sent, or big GET replies half
    read; or closes with replies unread."""
    big_key = f"soak:{w.ident}:big".encode()
    c = w.connect(10)
    try:
        kind = w.rng.randrange(4)
        if kind == 0:
            req = resp("SET", b"soak:abrupt", b"v" * 100)
            c.send(req[:w.rng.randint(1, len(req) - 1)])
            w.outcome("reset mid-command")
        elif kind == 1:
            req = resp("SET", big_key, kv_value(w.rng, big=True))
            c.send(req[:len(req) // 2])
            w.outcome("reset mid-value")
        elif kind == 2:
            c.send(resp("SET", big_key, kv_value(w.rng, big=True)))
            kv_expect("SET", read_resp(c), ("+", "OK"))
            c.send(resp("GET", big_key) * 4)
            c.read_exact(w.rng.randint(1, 60000))
            w.outcome("reset mid-reply")
        else:
            c.send(resp("PING") * 100)
            c.close()
            w.outcome("closed with replies unread")
            return
    finally:
        c.reset()


def kv_pipelined(w):
    """8-16 commands in one go: SETs of ~64 KiB values on 16 keys of its own, GETs of them,
    PINGs; the replies read in order and verified. Kept moderate: corio-kv's output buffer is
    not yet bounded for pipelined large GETs (a known defect being fixed)."""
    known = w.state.setdefault("values", {})
    cmds = []
    expected = []
    shadow = dict(known)
    for _ in range(w.rng.randint(8, 16)):
        key = f"soak:{w.ident}:p{w.rng.randrange(16)}".encode()
        op = w.rng.random()
        if op < 0.4:
            v = kv_value(w.rng, big=True)
            cmds.append(resp("SET", key, v))
            expected.append((f"SET {key.decode()}", ("+", "OK")))
            shadow[key] = v
        elif op < 0.9:
            cmds.append(resp("GET", key))
            expected.append((f"GET {key.decode()}", shadow.get(key)))
        else:
            cmds.append(resp("PING"))
            expected.append(("PING", ("+", "PONG")))
    for key in shadow:
        if shadow[key] is not known.get(key):
            known[key] = UNKNOWN  # until the replies confirm the writes
    with w.connect(30) as c:
        c.send_reading(b"".join(cmds))
        for what, want in expected:
            kv_expect(f"pipelined {what}", read_resp(c), want)
    known.update(shadow)
    w.outcome("verified")


KV_MALFORMED = [
    ("garbage", None),
    ("bad multibulk length", b"*abc\r\n"),
    ("negative bulk length", b"*1\r\n$-5\r\n"),
    ("huge bulk length", b"*2\r\n$3\r\nGET\r\n$99999999999999\r\n"),
    ("bulk length mismatch", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nabcdef\r\n"),
    ("missing $", b"*2\r\n$3\r\nGET\r\nkey\r\n"),
    ("unbalanced quotes", b'SET "abc def\r\n'),
    ("huge inline", b"SET " + b"x" * 70000),
    ("unknown command", b"*1\r\n$7\r\nFROBNIC\r\n"),
    ("wrong arity", b"*1\r\n$3\r\nGET\r\n"),
]


def kv_malformed(w):
    """Bad RESP (lengths, missing markers, oversized inline lines), unknown commands, binary
    garbage: the reply (an error, a close) is counted, not verified."""
    name, data = w.rng.choice(KV_MALFORMED)
    if data is None:
        data = pattern_bytes(w.rng, w.rng.randint(16, 4096)) + b"\r\n"
    with w.connect(10) as c:
        try:
            c.send_reading(data)
        except (Closed, ConnectionError):
            w.outcome(f"{name}: closed while sending")
            return
        try:
            reply = read_resp(c)
            # The error's text up to any quoted argument (garbage would make every one unique).
            shown = (reply[0] + reply[1].split("'")[0].strip()[:48] if isinstance(reply, tuple)
                     else type(reply).__name__)
        except (Closed, ConnectionError):
            shown = "closed"
        except VerifyFailure:
            shown = "unparsable"
        w.outcome(f"{name}: {shown}")
        c.drain(1 << 20, 2)


def kv_never_read(w):
    """Pipelines PINGs (replies half their size) without reading until the sends block or 2 MiB
    went out; held 1-7 s (the server's --timeout is 5 s), closed unread."""
    c = w.connect(12)
    try:
        block = resp("PING") * 4096
        sent = 0
        stalled = time.monotonic()
        while sent < (2 << 20) and time.monotonic() - stalled < 1.0:
            c.gate.check()
            _, wr, _ = select.select([], [c.sock], [], POLL)
            if wr:
                try:
                    sent += c.sock.send(block)
                    stalled = time.monotonic()
                except (TimeoutError, BlockingIOError):
                    pass
        w.sleep(w.rng.uniform(1, 7))
        w.outcome("held")
    finally:
        c.close()


def kv_idle(w):
    """Connects and sends nothing: the server's --timeout (5 s) must close it."""
    wait_for_server_close(w, 8)


# ----- the client mix -----

# (pattern name, function, normal?, threads per server, pause between sessions in seconds)
MIX = {
    "echo": [("normal", echo_normal, True, 3, 0.005), ("slow", echo_slow, False, 2, 0.01),
             ("abrupt", echo_abrupt, False, 1, 0.01), ("bulk", echo_bulk, False, 1, 0.05),
             ("never-read", echo_never_read, False, 1, 0.1), ("idle", echo_idle, False, 1, 0.1)],
    "http": [("normal", http_normal, True, 3, 0.005), ("slow", http_slow, False, 2, 0.01),
             ("abrupt", http_abrupt, False, 1, 0.01),
             ("pipelined", http_pipelined, False, 1, 0.01),
             ("malformed", http_malformed, False, 1, 0.01),
             ("never-read", http_never_read, False, 1, 0.1), ("idle", http_idle, False, 1, 0.1)],
    "kv": [("normal", kv_normal, True, 3, 0.005), ("slow", kv_slow, False, 2, 0.01),
           ("abrupt", kv_abrupt, False, 1, 0.01), ("pipelined", kv_pipelined, False, 1, 0.02),
           ("malformed", kv_malformed, False, 1, 0.01),
           ("never-read", kv_never_read, False, 1, 0.1), ("idle", kv_idle, False, 1, 0.1)],
}
# Verified patterns other than "normal": their wrong bytes are failures as well (every pattern's
# VerifyFailure is), but their resets and timeouts are not.

# ----- health probes -----


def probe(server, docs, timeout):
    """One normal request on a fresh connection: (ok, milliseconds, error text)."""
    gate = Gate()  # never paused: probes run outside the load's gate
    t0 = time.monotonic()
    try:
        with Conn(server.port, gate, timeout) as c:
            if server.name == "echo":
                msg = os.urandom(64)
                c.send(msg)
                if c.read_exact(64) != msg:
                    raise VerifyFailure("echo probe: different bytes")
            elif server.name == "http":
                c.send(http_request("/100b"))
                status, _, body = read_http_response(c)
                http_check("probe GET /100b", status, body, 200, docs["100b"])
            else:
                v = os.urandom(32)
                c.send(resp("SET", "soak:probe", v) + resp("GET", "soak:probe"))
                kv_expect("probe SET", read_resp(c), ("+", "OK"))
                kv_expect("probe GET", read_resp(c), v)
        return True, (time.monotonic() - t0) * 1000, ""
    except (OSError, ClientTimeout, Closed, VerifyFailure, Interrupted) as e:
        return False, (time.monotonic() - t0) * 1000, f"{type(e).__name__}: {e}"


# ----- the leak demonstration -----


class Holder:
    """--leak-demo N: keeps one connection to each server open (pinged every 2 s, so no timeout
    ends it) for every N sessions of its normal clients. To the server that looks like a leak
    of one connection per N: an fd, a task and a buffer each. It shows the criterion catching a
    leak of that size end to end; a real run never uses it."""

    def __init__(self, servers, stats, every, limit=3000):
        self.servers, self.stats, self.every, self.limit = servers, stats, every, limit
        self.held = {s.name: [] for s in servers}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def count(self, name):
        return len(self.held[name])

    def run(self):
        gate = Gate()
        next_ping = time.monotonic() + 2
        while not self.stopping.wait(0.2):
            for s in self.servers:
                normal = sum(st.connections for st in self.stats
                             if st.server == s.name and st.pattern == "normal")
                while len(self.held[s.name]) < min(normal // self.every, self.limit):
                    try:
                        c = Conn(s.port, gate, 1e9)
                    except OSError:
                        break
                    # NOTE: non-blocking, not a timeout: with a timeout, CPython polls for the
                    # timeout before even a MSG_DONTWAIT recv, and a round of pings would take
                    # longer than the servers' idle timeout.
                    c.sock.setblocking(False)
                    self.held[s.name].append(c)
            if time.monotonic() < next_ping:
                continue
            next_ping = time.monotonic() + 2
            for s in self.servers:
                ping = {"echo": b"p", "http": http_request("/100b", method="HEAD"),
                        "kv": resp("PING")}[s.name]
                for c in self.held[s.name]:
                    try:
                        c.sock.send(ping)
                    except OSError:
                        pass
            time.sleep(0.2)
            for conns in self.held.values():
                for c in conns:
                    try:
                        while c.sock.recv(65536, socket.MSG_DONTWAIT):
                            pass
                    except OSError:  # nothing more to read (BlockingIOError) or gone
                        pass

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        for conns in self.held.values():
            for c in conns:
                c.close()


# ----- sampling -----

SAMPLE_FIELDS = ["server", "sample", "t", "phase", "rss_kb", "fds", "live_tasks",
                 "ops_in_flight", "connections", "settled", "settle_s", "load_rss_kb",
                 "load_fds", "load_live_tasks", "load_connections", "probe_ok", "probe_ms",
                 "probe_error", "stats_ok"]


def read_load(server, stats_timeout):
    st = server.request_stats(stats_timeout)
    return {"load_rss_kb": rss_kb(server.proc.pid), "load_fds": count_fds(server.proc.pid),
            "load_live_tasks": st.get("live_tasks") if st else None,
            "load_connections": open_connections(st) if st else None}


def settle(server, expected, timeout, stats_timeout):
    """Asks for stats until the server reports `expected` open connections, or the count has not
    changed for a second, or timeout: (last stats or None, settled?, seconds)."""
    t0 = time.monotonic()
    last, since = None, t0
    while True:
        st = server.request_stats(stats_timeout)
        now = time.monotonic()
        if st is None:
            return None, False, now - t0
        conns = open_connections(st)
        if conns is not None and conns <= expected:
            return st, True, now - t0
        if last is None or open_connections(last) != conns:
            since = now
        last = st
        if now - since >= 1.0 or now - t0 >= timeout:
            return st, False, now - t0
        time.sleep(0.1)


class Sampler:
    def __init__(self, servers, gate, args, docs, holder):
        self.servers, self.gate, self.args = servers, gate, args
        self.docs, self.holder = docs, holder
        self.rows = []
        self.problems = {s.name: [] for s in servers}  # failures found while sampling

    def sample(self, index, t0, phase, under_load=True):
        a = self.args
        rows = {}
        for s in self.servers:
            if not s.alive():
                continue
            row = {"server": s.name, "sample": index, "phase": phase}
            if under_load:
                row.update(read_load(s, a.stats_timeout))
                ok, ms, err = probe(s, self.docs, a.probe_timeout)
                row.update(probe_ok=int(ok), probe_ms=round(ms, 1), probe_error=err)
                if not ok:
                    self.problems[s.name].append(f"health probe failed at "
                                                 f"{time.monotonic() - t0:.0f} s: {err}")
            rows[s.name] = row
        paused = self.gate.pause(a.settle_timeout)
        try:
            for s in self.servers:
                if s.name not in rows:
                    continue
                row = rows[s.name]
                expected = self.holder.count(s.name) if self.holder else 0
                st, settled, secs = settle(s, expected, a.settle_timeout, a.stats_timeout)
                pid = s.proc.pid
                row.update(t=round(time.monotonic() - t0, 2), rss_kb=rss_kb(pid),
                           fds=count_fds(pid), settled=int(settled and paused),
                           settle_s=round(secs, 2), stats_ok=int(st is not None))
                if st is not None:
                    row.update(live_tasks=st.get("live_tasks"),
                               ops_in_flight=st.get("ops_in_flight"),
                               connections=open_connections(st))
                elif s.alive():
                    self.problems[s.name].append(
                        f"no stats line within {a.stats_timeout:g} s of SIGUSR1 at "
                        f"{time.monotonic() - t0:.0f} s (the loop does not run)")
                self.rows.append(row)
        finally:
            self.gate.resume()
        return rows


def describe_sample(rows):
    parts = []
    for name in SERVERS:
        r = rows.get(name)
        if not r:
            continue
        rss = r.get("rss_kb")
        parts.append(f"{name} rss {rss / 1024:.1f} MiB fds {r.get('fds')} tasks "
                     f"{r.get('live_tasks')}" if rss else f"{name} ?")
    return "; ".join(parts)


# ----- reports -----


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def charts(out_dir, rows, servers, warmup):
    """One PNG per server: RSS, fds, live tasks (idle and under load) and probe latency over
    time, the end of the warm-up marked."""
    if not shutil.which("gnuplot"):
        log("gnuplot not found (Debian: gnuplot-nox): no charts")
        return []
    made = []
    for name in servers:
        pts = [r for r in rows if r["server"] == name and r.get("t") is not None]
        if len(pts) < 2:
            continue
        dat = os.path.join(out_dir, f"{name}.dat")

        def v(r, key, scale=1.0):
            x = r.get(key)
            return "NaN" if x is None or x == "" else f"{x / scale:.6g}"

        with open(dat, "w") as f:
            f.write("t rss load_rss fds load_fds tasks load_tasks probe_ms\n")
            for r in pts:
                f.write(" ".join([f"{r['t']:.2f}", v(r, "rss_kb", 1024), v(r, "load_rss_kb", 1024),
                                  v(r, "fds"), v(r, "load_fds"), v(r, "live_tasks"),
                                  v(r, "load_live_tasks"), v(r, "probe_ms")]) + "\n")
        png = os.path.join(out_dir, f"soak-{name}.png")
        panels = [("RSS (MiB)", 2, 3), ("open fds", 4, 5), ("live tasks", 6, 7),
                  ("health probe (ms)", 8, None)]
        end = max(r["t"] for r in pts)
        script = ["set terminal png size 900,1000", f"set output '{png}'",
                  "set datafile missing 'NaN'", "set grid", "set key below horizontal",
                  f"set xrange [0:{end:.0f}]",
                  "set multiplot layout 4,1 title '" + name + ": idle samples (load paused) and "
                  "under load; the vertical line ends the warm-up'",
                  f"set arrow 1 from {warmup}, graph 0 to {warmup}, graph 1 nohead lw 2"]
        for i, (label, idle_col, load_col) in enumerate(panels):
            script.append(f"set ylabel '{label}'")
            script.append("set xlabel 'seconds'" if i == len(panels) - 1 else "unset xlabel")
            script.append("set yrange [0:*]")
            if load_col is None:
                script.append(f"plot '{dat}' using 1:{idle_col} with linespoints lw 2 title "
                              "'probe latency'")
            else:
                script.append(f"plot '{dat}' using 1:{idle_col} with linespoints lw 2 title "
                              f"'idle', '' using 1:{load_col} with linespoints lw 1 dt 3 title "
                              "'under load'")
        script.append("unset multiplot")
        r = subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True,
                           capture_output=True)
        if r.returncode == 0:
            made.append(os.path.basename(png))
        else:
            log(f"gnuplot failed for {png}: {r.stderr.strip()[:200]}")
    return made


def value_text(metric, v):
    if v is None:
        return "-"
    if metric == "rss_kb":
        return f"{v / 1024:.2f} MiB"
    return f"{v:g}"


def growth_text(metric, v):
    if v is None:
        return "-"
    if metric == "rss_kb":
        return f"{v / 1024:+.2f} MiB"
    return f"{v:+g}"


# ----- main -----


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                   help="build folder with examples/echo, examples/http/corio-http and "
                        "examples/kv/corio-kv")
    p.add_argument("--duration", type=float, default=120,
                   help="seconds of load (the run takes a few seconds more)")
    p.add_argument("--sample-interval", type=float, default=10, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds whose samples the criterion ignores (default: a quarter of the "
                        "duration, at least two sample intervals)")
    p.add_argument("--servers", default=",".join(SERVERS), help="comma list of echo,http,kv")
    for name in SERVERS:
        p.add_argument(f"--{name}-binary", default=None,
                       help=f"run this binary as {name} (default: BUILD/{BINARIES[name]})")
    p.add_argument("--server-timeout", type=float, default=5,
                   help="the servers' idle/header/keep-alive/send timeouts in seconds (the idle "
                        "and never-reading clients wait past them)")
    p.add_argument("--probe-timeout", type=float, default=5,
                   help="seconds a health probe may take")
    p.add_argument("--stats-timeout", type=float, default=10,
                   help="seconds a server may take to print its stats line after SIGUSR1")
    p.add_argument("--settle-timeout", type=float, default=10,
                   help="seconds to wait for the load's connections to close before an idle "
                        "sample")
    p.add_argument("--seed", type=int, default=1, help="seed of the clients' random choices")
    p.add_argument("--leak-demo", type=int, default=0, metavar="N",
                   help="self-check: hold one extra connection to each server open for every N "
                        "normal sessions (looks like a leak of one fd, task and buffer per N "
                        "connections to the server); the run must then fail")
    p.add_argument("--out", default=None, help="default build/soak-results/<time>/")
    p.add_argument("--no-charts", action="store_true")
    args = p.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"--servers: unknown server {s!r} (echo, http, kv)")
    if args.warmup is None:
        args.warmup = max(2 * args.sample_interval, args.duration / 4)
    if args.duration <= 0 or args.sample_interval <= 0:
        p.error("--duration and --sample-interval must be positive")
    return args


def server_args(name, port_root, tmp, timeout_s):
    ms = str(int(timeout_s * 1000))
    common = ["--port", "0", "--bind", "127.0.0.1"]
    if name == "echo":
        return common + ["--idle-timeout-ms", ms]
    if name == "http":
        return common + ["--root", port_root, "--header-timeout-ms", ms,
                         "--keepalive-timeout-ms", ms, "--send-timeout-ms", ms]
    return common + ["--dir", tmp, "--appendonly", "no",
                     "--timeout", str(max(1, round(timeout_s)))]


def make_docroot(root):
    docs = {}
    for name, size in HTTP_FILES.items():
        path = os.path.join(root, name)
        lab.write_pattern_file(path, name, size)
        with open(path, "rb") as f:
            docs[name] = f.read()
    return docs


class Soak:
    """One run: the servers, the clients, the sampling, the verdicts."""

    def __init__(self, args, binaries, out_dir):
        self.args, self.binaries, self.out_dir = args, binaries, out_dir
        self.log_dir = os.path.join(out_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="corio-soak-")
        self.servers, self.workers, self.all_stats = [], [], []
        self.holder, self.sampler = None, None
        self.gate = Gate()
        self.failures = {name: [] for name in args.servers}
        self.started = time.monotonic()

    def start_servers(self):
        docroot = os.path.join(self.tmp, "www")
        os.makedirs(docroot)
        self.docs = make_docroot(docroot)
        for name in self.args.servers:
            s = Server(name, self.binaries[name],
                       server_args(name, docroot, self.tmp, self.args.server_timeout),
                       self.log_dir)
            self.servers.append(s)
            s.start()

    def start_clients(self):
        args = self.args
        seed = args.seed * 1000
        for s in self.servers:
            for pattern, fn, normal, threads, gap in MIX[s.name]:
                st = PatternStats(s.name, pattern, normal)
                self.all_stats.append(st)
                for i in range(threads):
                    seed += 1
                    # Bounded in count (a generous cap on sessions) as in time (the gate).
                    cap = int(args.duration / max(gap, 0.001)) + 100
                    self.workers.append(Worker(f"{pattern}{i}", s, fn, st, self.gate, seed, cap,
                                               gap, self.docs))
        if args.leak_demo > 0:
            self.holder = Holder(self.servers, self.all_stats, args.leak_demo)
            self.sampler.holder = self.holder
            self.holder.thread.start()
        for w in self.workers:
            w.thread.start()

    def stop_clients(self):
        self.gate.stop()
        for w in self.workers:
            w.thread.join(10)
        if self.holder:
            self.holder.stop()

    def cleanup(self):
        """Whatever is left after an error or Ctrl-C: clients, servers, the temporary folder."""
        self.stop_clients()
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def watch(self, t0, until):
        """Sleeps until `until`, noting a server that exits meanwhile."""
        while True:
            for s in self.servers:
                if not s.alive() and not self.failures[s.name]:
                    self.failures[s.name].append(f"exited with status {s.proc.returncode} at "
                                                 f"{time.monotonic() - t0:.0f} s")
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.5, left))

    def run(self):
        args = self.args
        self.start_servers()
        log(f"soak: {', '.join(f'{s.name} pid {s.proc.pid} port {s.port}' for s in self.servers)}"
            f"; {args.duration:g} s, a sample every {args.sample_interval:g} s, warm-up "
            f"{args.warmup:g} s; results in {self.out_dir}")
        self.sampler = Sampler(self.servers, self.gate, args, self.docs, None)
        t0 = time.monotonic()
        rows = self.sampler.sample(0, t0, "baseline", under_load=False)
        log(f"[   0 s] baseline: {describe_sample(rows)}")
        self.start_clients()
        end = t0 + args.duration
        k = 1
        while True:
            target = min(t0 + k * args.sample_interval, end)
            self.watch(t0, target)
            phase = "measured" if target - t0 >= args.warmup else "warm-up"
            rows = self.sampler.sample(k, t0, phase)
            log(f"[{time.monotonic() - t0:4.0f} s] {phase:8s} {describe_sample(rows)}")
            if target >= end or not any(s.alive() for s in self.servers):
                break
            k += 1
        self.watch(t0, 0)
        load_seconds = time.monotonic() - t0
        self.stop_clients()

        # Shut down: SIGTERM, exit 0 expected.
        exits = {}
        for s in self.servers:
            alive = s.alive()
            status, secs = s.stop()
            exits[s.name] = (status, secs)
            if alive and status != 0:
                self.failures[s.name].append(f"exited with status {status} after SIGTERM "
                                             f"(waited {secs:.1f} s)")
        total_seconds = time.monotonic() - self.started
        return self.report(exits, load_seconds, total_seconds)

    def report(self, exits, load_seconds, total_seconds):
        args, out_dir = self.args, self.out_dir
        samples = self.sampler.rows
        judged = {}
        for s in self.servers:
            fails = self.sampler.problems[s.name] + self.failures[s.name]
            mine = [r for r in samples if r["server"] == s.name]
            judged[s.name] = {m: judge_series(mine, m, args.warmup, rule_for(s.name, m))
                              for m in RULES}
            for m, j in judged[s.name].items():
                if j["verdict"] == "fail":
                    fails.append(f"{m} {j['reason']}")
            for st in self.all_stats:
                if st.server != s.name:
                    continue
                if st.verify_failures:
                    fails.append(f"{st.verify_failures} wrong replies to the {st.pattern} "
                                 f"clients (first: {st.notes[0] if st.notes else '?'})")
                if st.normal and st.errors:
                    fails.append(f"{st.errors} normal sessions failed (first: "
                                 f"{st.notes[0] if st.notes else '?'})")
                if st.harness_errors:
                    fails.append(f"{st.harness_errors} harness errors in {st.pattern} "
                                 f"(a bug in bench/soak.py: {st.notes[-1]})")
            self.failures[s.name] = fails

        write_csv(os.path.join(out_dir, "samples.csv"), samples, SAMPLE_FIELDS)
        client_rows = []
        for st in self.all_stats:
            client_rows.append({"server": st.server, "pattern": st.pattern,
                                "normal": int(st.normal), "sessions": st.connections,
                                "completed": st.completed, "interrupted": st.interrupted,
                                "verify_failures": st.verify_failures, "errors": st.errors,
                                "harness_errors": st.harness_errors,
                                "outcomes": "; ".join(f"{k}: {v}" for k, v in
                                                      sorted(st.outcomes.items()))})
        write_csv(os.path.join(out_dir, "clients.csv"), client_rows,
                  ["server", "pattern", "normal", "sessions", "completed", "interrupted",
                   "verify_failures", "errors", "harness_errors", "outcomes"])
        names = [s.name for s in self.servers]
        pngs = [] if args.no_charts else charts(out_dir, samples, names, args.warmup)
        write_summary(out_dir, args, self.servers, samples, judged, client_rows, self.failures,
                      exits, pngs, load_seconds, total_seconds)
        log(f"\nwrote {out_dir}/summary.md, samples.csv, clients.csv"
            + (f", {len(pngs)} charts" if pngs else "") + f"; {total_seconds:.0f} s in all")
        for s in self.servers:
            print(verdict_line(s.name, samples, judged[s.name], self.all_stats,
                               self.failures[s.name], exits[s.name][0]), flush=True)
        return 1 if any(self.failures.values()) else 0


def main(argv=None):
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binaries = {}
    for name in args.servers:
        b = getattr(args, f"{name}_binary") or os.path.join(args.build, BINARIES[name])
        if not os.access(b, os.X_OK):
            log(f"{b} not found: build it (ninja -C {args.build} {BINARIES[name]})")
            return 2
        binaries[name] = os.path.abspath(b)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.abspath(args.out or os.path.join(ROOT, "build", "soak-results", stamp))
    soak = Soak(args, binaries, out_dir)
    try:
        return soak.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except RuntimeError as e:  # a server that did not start
        log(f"soak: {e}")
        return 2
    finally:
        soak.cleanup()


def verdict_line(name, samples, judged, all_stats, failures, exit_status):
    mine = [r for r in samples if r["server"] == name]
    parts = []
    for m in RULES:
        vals = [r.get(m) for r in mine if r.get(m) is not None]
        if vals:
            parts.append(f"{m} {value_text(m, vals[0])}->{value_text(m, vals[-1])}")
    probes = [r for r in mine if r.get("probe_ok") is not None]
    ok = sum(r["probe_ok"] for r in probes)
    sessions = sum(st.connections for st in all_stats if st.server == name)
    wrong = sum(st.verify_failures for st in all_stats if st.server == name)
    detail = (f"{', '.join(parts)}; probes {ok}/{len(probes)}; {sessions} client sessions, "
              f"{wrong} wrong replies; exit {exit_status}")
    if failures:
        return f"{name}: FAIL: {' | '.join(failures)} ({detail})"
    nverdict = [m for m, j in judged.items() if j["verdict"] == "n/a"]
    if nverdict:
        return f"{name}: PASS (no trend verdict: too few samples after the warm-up) ({detail})"
    return f"{name}: PASS ({detail})"


def write_summary(out_dir, args, servers, samples, judged, client_rows, failures, exits, pngs,
                  load_seconds, total_seconds):
    cmd = " ".join(["bench/soak.py"] + (sys.argv[1:] if sys.argv[0].endswith("soak.py") else []))
    out = [f"# Soak run {datetime.datetime.now().isoformat(timespec='seconds')}", "",
           f"- command: `{cmd}`", f"- machine: {lab.machine_line()}",
           f"- load {load_seconds:.0f} s, {total_seconds:.0f} s in all; a sample every "
           f"{args.sample_interval:g} s; warm-up {args.warmup:g} s (its samples are not judged); "
           f"server timeouts {args.server_timeout:g} s; probe deadline {args.probe_timeout:g} s; "
           f"seed {args.seed}" + (f"; **leak demo: one connection held per {args.leak_demo} "
                                   "normal sessions**" if args.leak_demo else ""), "",
           "## Verdicts", ""]
    for s in servers:
        f = failures[s.name]
        out.append(f"- **{s.name}**: " + ("PASS" if not f else "FAIL: " + "; ".join(f)))
    out += ["", "## Trends (idle samples after the warm-up)", "",
            "Idle: the load paused and its connections closed. first/middle/last: medians of "
            "the thirds of the post-warm-up samples; growth = last - first; tolerance = "
            "max(absolute, relative x first). RSS fails only on a trend: its Theil-Sen slope must "
            "project past the tolerance over the window and past a third of it in each half, "
            "unless it jumps by "
            f"more than {STEP_FACTOR} tolerances (docs/soak.md).", "",
            "| server | metric | baseline (idle, before load) | first third | middle | last third "
            "| growth | tolerance | slope per hour | verdict |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in servers:
        for m, j in judged[s.name].items():
            base = next((r.get(m) for r in samples if r["server"] == s.name
                         and r["phase"] == "baseline"), None)
            out.append(f"| {s.name} | {m} | {value_text(m, base)} | {value_text(m, j['first'])} "
                       f"| {value_text(m, j['middle'])} | {value_text(m, j['last'])} | "
                       f"{growth_text(m, j['growth'])} | {value_text(m, j['tolerance'])} | "
                       f"{growth_text(m, j['slope_per_h'])} | {j['verdict']}"
                       + (f": {j['reason']}" if j['reason'] else "") + " |")
    out += ["", "## Under load and health probes", "",
            "| server | samples | RSS under load (max) | fds under load (max) | live tasks under "
            "load (max) | connections under load (max) | probes ok | probe ms (median, max) | "
            "idle samples not settled | exit after SIGTERM |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in servers:
        mine = [r for r in samples if r["server"] == s.name]
        load = [r for r in mine if r.get("load_rss_kb") is not None]

        def mx(key):
            vals = [r.get(key) for r in load if r.get(key) is not None]
            return max(vals) if vals else None

        probes = [r for r in mine if r.get("probe_ok") is not None]
        ms = [r["probe_ms"] for r in probes]
        unsettled = sum(1 for r in mine if r["phase"] != "baseline" and not r.get("settled"))
        status, secs = exits.get(s.name, (None, 0))
        out.append(f"| {s.name} | {len(mine)} | {value_text('rss_kb', mx('load_rss_kb'))} | "
                   f"{fmt(mx('load_fds'))} | {fmt(mx('load_live_tasks'))} | "
                   f"{fmt(mx('load_connections'))} | {sum(r['probe_ok'] for r in probes)}/"
                   f"{len(probes)} | {fmt(statistics.median(ms) if ms else None)}, "
                   f"{fmt(max(ms) if ms else None)} | {unsettled} | {status} ({secs:.1f} s) |")
    out += ["", "## Clients", "",
            "Sessions are connections; interrupted ones were cut by a sample's pause or the end. "
            "Errors count for the normal clients only (a reset or close of a hostile client is "
            "expected); a wrong reply counts for every client.", "",
            "| server | pattern | sessions | completed | interrupted | wrong replies | errors | "
            "outcomes |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in client_rows:
        out.append(f"| {r['server']} | {r['pattern']} | "
                   f"{r['sessions']} | {r['completed']} | {r['interrupted']} | "
                   f"{r['verify_failures']} | {r['errors']} | {r['outcomes'] or '-'} |")
    out += ["", "## The servers' own counters at exit", ""]
    for s in servers:
        st = s.final_stats()
        out.append(f"- {s.name}: `" + " ".join(f"{k}={v}" for k, v in st.items()) + "`")
    for png in pngs:
        out += ["", f"![{png}]({png})"]
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
