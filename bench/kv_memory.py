#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# How much memory corio-kv needs when clients pipeline large GETs and read their replies late or
# never: reports the server's peak resident set (VmHWM) above its resident set before the load.
"""Drive corio-kv with large pipelined GETs and report the server's peak RSS.

Scenarios:
  fanout  CLIENTS connections each send PIPELINE GETs of one VALUE-byte value and read nothing for
          STALL seconds; then every client reads and checks every reply byte for byte.
  greedy  one connection sends PIPELINE GETs and never reads; waits (up to STALL seconds) for the
          server to close it, and shows what the server logged.

Examples (the issue's measurements):
  python3 bench/kv_memory.py --server build/debug/examples/kv/corio-kv fanout --clients 200
  python3 bench/kv_memory.py --server build/debug/examples/kv/corio-kv greedy --pipeline 1000
Arguments after `--` go to the server (e.g. -- --max-output-memory 67108864).
"""

import argparse
import os
import select
import socket
import subprocess
import sys
import time

from support.procfs import resp_command as command, status_kib


def recv_exact(sock, n):
    parts = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("server closed the connection")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def start(args):
    proc = subprocess.Popen([args.server, "--port", "0"] + args.server_args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, int(line.split()[2])


def value_of(size):
    pattern = bytes(range(256))
    return (pattern * (size // 256 + 1))[:size]


def stall(proc, seconds, until=None):
    """Samples the server for `seconds` (or until `until()` is true); returns the peak VmRSS."""
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, status_kib(proc.pid, "VmRSS"))
        if until and until():
            break
        time.sleep(0.05)
    return peak


def fanout(args, proc, port, value):
    reply = b"$%d\r\n" % len(value) + value + b"\r\n"
    clients = []
    for _ in range(args.clients):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(command("GET", "big") * args.pipeline)
        clients.append(s)
    stall(proc, args.stall)
    started = time.monotonic()
    bad = 0
    for s in clients:
        for _ in range(args.pipeline):
            if recv_exact(s, len(reply)) != reply:
                bad += 1
        s.close()
    print(f"fanout: {args.clients} clients x {args.pipeline} GETs of {len(value)} bytes: "
          f"read back in {time.monotonic() - started:.2f} s, {bad} wrong replies")
    return bad == 0


def greedy(args, proc, port, value):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.setblocking(False)
    try:
        s.send(command("GET", "big") * args.pipeline)
    except BlockingIOError:
        pass
    logged = []

    def closed():
        ready, _, _ = select.select([proc.stderr], [], [], 0)
        if ready:
            logged.append(os.read(proc.stderr.fileno(), 65536).decode(errors="replace"))
        return bool(logged)

    stall(proc, args.stall, closed)
    text = "".join(logged).strip()
    print(f"greedy: 1 client x {args.pipeline} GETs of {len(value)} bytes, never reading; "
          f"server log: {text if text else '(nothing)'}")
    s.close()
    return True


def main():
    argv = sys.argv[1:]
    server_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, server_args = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="path of corio-kv")
    p.add_argument("--value-size", type=int, default=1 << 20)
    p.add_argument("--stall", type=float, default=3.0,
                   help="seconds the clients read nothing (greedy: the longest wait)")
    sub = p.add_subparsers(dest="scenario", required=True)
    f = sub.add_parser("fanout")
    f.add_argument("--clients", type=int, default=200)
    f.add_argument("--pipeline", type=int, default=10)
    g = sub.add_parser("greedy")
    g.add_argument("--pipeline", type=int, default=1000)
    args = p.parse_args(argv)
    args.server_args = server_args

    proc, port = start(args)
    try:
        value = value_of(args.value_size)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(command("SET", "big", value))
            if recv_exact(s, 5) != b"+OK\r\n":
                sys.exit("SET failed")
        base = status_kib(proc.pid, "VmRSS")
        ok = (fanout if args.scenario == "fanout" else greedy)(args, proc, port, value)
        peak = status_kib(proc.pid, "VmHWM")
        print(f"server RSS before the load {base / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB "
              f"(+{(peak - base) / 1024:.1f} MiB)")
    finally:
        proc.kill()
        proc.wait()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
