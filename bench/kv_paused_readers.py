#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Does one client still get answers while many others are paused for corio-kv's
# --max-output-memory? Reproduces the ring starvation written up in docs/provided_buffers.md.
"""Pause HEAVY corio-kv clients for --max-output-memory, then time a PING on two other clients.

HEAVY clients (4 KiB receive window) each send 5,000 GETs of a 10 kB value in one write and read
nothing, so the server pauses them for the output budget (1 MiB). After --settle seconds a client
connected before them and one connected after them each send a PING; each waits up to 5 s.

Examples (docs/provided_buffers.md):
  CORIO_BACKEND=epoll python3 bench/kv_paused_readers.py \\
      --server build/release/examples/kv/corio-kv -- --provided-buffers 256
  python3 bench/kv_paused_readers.py --server build/release/examples/kv/corio-kv --heavy 600 \\
      -- --provided-buffers 256
Arguments after `--` go to the server.
"""

import argparse
import socket
import subprocess
import sys
import time

from support.procfs import resp_command as command


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="the corio-kv binary")
    p.add_argument("--heavy", type=int, default=150, help="clients paused for the budget")
    p.add_argument("--settle", type=float, default=1.0, help="seconds before the PINGs")
    p.add_argument("server_args", nargs="*", help="after --: the server's own arguments")
    args = p.parse_args()
    proc = subprocess.Popen([args.server, "--port", "0", "--max-output-memory", "1048576"] +
                            args.server_args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    port = int(line.split()[2])
    socks = []
    try:
        before = socket.create_connection(("127.0.0.1", port), timeout=5)
        before.sendall(command("SET", "k", b"v" * 10000))
        if before.recv(100) != b"+OK\r\n":
            sys.exit("SET failed")
        batch = command("GET", "k") * 5000
        for _ in range(args.heavy):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            try:
                s.send(batch, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            socks.append(s)
        time.sleep(args.settle)
        after = socket.create_connection(("127.0.0.1", port), timeout=5)
        for name, c in (("connected before", before), ("connected after", after)):
            t = time.monotonic()
            c.sendall(command("PING"))
            try:
                reply = c.recv(100)
                print(f"{name}: {reply!r} in {time.monotonic() - t:.3f} s", flush=True)
            except socket.timeout:
                print(f"{name}: no reply within 5 s", flush=True)
    finally:
        for s in socks:
            s.close()
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
