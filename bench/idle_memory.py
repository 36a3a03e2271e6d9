#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Bytes an echo server keeps per idle connection: opens N connections, echoes one message on each
# (so every connection has been read from once, as a real idle client has), then holds them open
# and reports the growth of the server's resident set over its resident set before the clients.
"""Report an echo server's resident memory per idle connection.

Example (the numbers in docs/provided_buffers.md):
  python3 bench/idle_memory.py --server build/release/examples/echo --connections 10000 \
      -- --provided-buffers 4096
With --http PATH the server is an HTTP server (corio-http): each connection sends one keep-alive
`GET PATH` and reads the whole response instead of an echo, e.g.
  python3 bench/idle_memory.py --server build/release/examples/http/corio-http --http /file \
      --connections 10000 -- --root DIR --provided-buffers 512
With --kv the server speaks RESP (corio-kv) and the one message is a PING, e.g.
  python3 bench/idle_memory.py --kv --server build/release/examples/kv/corio-kv \
      --connections 10000 -- --provided-buffers 2048
Arguments after `--` go to the server. The server is started with `--port 0` and must print
`listening on PORT` first. Prints one JSON line: rss_before_kib, rss_idle_kib, bytes_per_conn,
hwm_kib (VmHWM: the peak, connecting included) and the server's SIGUSR1 stats line.
"""

import argparse
import json
import signal
import socket
import subprocess
import sys
import time

from support.procfs import status_kib


def start(args):
    cmd = [args.server, "--port", "0"] + args.server_args
    if args.cpu is not None:
        cmd = ["taskset", "-c", str(args.cpu)] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, int(line.split()[2])


def recv_exact(sock, n, deadline):
    got = b""
    while len(got) < n:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(n - len(got))
        if not chunk:
            raise ConnectionError("server closed the connection")
        got += chunk
    return got


def recv_http_response(sock, deadline):
    """One response with a Content-Length body; its status line."""
    got = b""
    while b"\r\n\r\n" not in got:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection")
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(body) < length:
        body += recv_exact(sock, length - len(body), deadline)
    return head.split(b"\r\n")[0].decode()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="the echo server binary")
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--size", type=int, default=64, help="bytes of the one message per connection")
    p.add_argument("--http", metavar="PATH",
                   help="an HTTP server: one GET PATH per connection instead of an echo")
    p.add_argument("--kv", action="store_true",
                   help="the server speaks RESP (corio-kv): the one message is a PING")
    p.add_argument("--batch", type=int, default=500, help="connections opened per round")
    p.add_argument("--settle", type=float, default=0.5, help="seconds before reading VmRSS")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run")
    p.add_argument("--cpu", type=int, help="pin the server to this CPU (taskset)")
    p.add_argument("--hold", type=float, default=0.0,
                   help="seconds to keep the connections open after the report (to inspect)")
    p.add_argument("server_args", nargs="*", help="after --: the server's own arguments")
    args = p.parse_args()

    proc, port = start(args)
    deadline = time.monotonic() + args.timeout
    socks = []
    try:
        time.sleep(args.settle)
        before = status_kib(proc.pid, "VmRSS")
        message = bytes(i % 251 for i in range(args.size))
        expected = message
        if args.http:
            message = f"GET {args.http} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
        elif args.kv:
            message, expected = b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"
        while len(socks) < args.connections:
            if time.monotonic() > deadline:
                sys.exit(f"timed out after {len(socks)} connections")
            batch = []
            for _ in range(min(args.batch, args.connections - len(socks))):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                batch.append(s)
            for s in batch:
                s.sendall(message)
            for s in batch:
                if args.http:
                    status = recv_http_response(s, deadline)
                    if not status.startswith("HTTP/1.1 200"):
                        sys.exit(f"unexpected response: {status!r}")
                elif recv_exact(s, len(expected), deadline) != expected:
                    sys.exit("reply mismatch")
            socks += batch
        time.sleep(args.settle)
        idle = status_kib(proc.pid, "VmRSS")
        hwm = status_kib(proc.pid, "VmHWM")
        proc.send_signal(signal.SIGUSR1)  # the server prints its stats line
        stats = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if not line or "stats:" in line:
                stats = line.strip()
                break
        print(json.dumps({
            "connections": len(socks),
            "rss_before_kib": before,
            "rss_idle_kib": idle,
            "hwm_kib": hwm,
            "bytes_per_conn": round((idle - before) * 1024 / len(socks)),
            "stats": stats,
        }), flush=True)
        time.sleep(args.hold)
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
