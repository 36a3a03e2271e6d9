#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# User-space instructions per request of corio-http, noise-free: callgrind counts two runs of the
# server (2,000 and 12,000 keep-alive GETs of a 100-byte cached file over 50 connections, one
# request in flight per connection) and divides the difference by the extra requests.
# Usage: bench/callgrind_http.sh [BUILD_DIR (default build/release)] [SERVER ARGS...]
# e.g.   bench/callgrind_http.sh build/release --provided-buffers 512
set -euo pipefail
bin=${1:-build/release}/examples/http/corio-http
shift || true
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
head -c 100 /dev/zero | tr '\0' a >"$root/file"
ir() {
    python3 - "$bin" "$root" "$1" "$@" <<'PY'
import os, re, socket, subprocess, sys, time
binary, root, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = os.path.join(root, "callgrind.out")
# NOTE: under valgrind a blocked signal never reaches the server's signalfd, so SIGTERM cannot
# end it: callgrind_control asks for a dump, which the loop takes when a request wakes it.
server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           binary, "--root", root, "--port", "0", *sys.argv[5:]],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    port = int(server.stdout.readline().split()[2])
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    request = b"GET /file HTTP/1.1\r\nHost: bench\r\n\r\n"

    def round_trip(c):
        c.sendall(request)
        got = b""
        while not got.endswith(b"a" * 100):
            got += c.recv(4096)

    for i in range(total // 50):
        for c in conns:
            c.sendall(request)
        for c in conns:
            got = b""
            while not got.endswith(b"a" * 100):
                got += c.recv(4096)
    subprocess.run(["callgrind_control", "-d", str(server.pid)], capture_output=True, timeout=5)
    for _ in range(2000):  # a request at a time wakes the loop until the dump is written
        if any(f.startswith("callgrind.out") for f in os.listdir(root)):
            break
        round_trip(conns[0])
        time.sleep(0.01)
    time.sleep(1)
    text = "".join(open(os.path.join(root, f)).read()
                   for f in os.listdir(root) if f.startswith("callgrind.out"))
    print(sum(int(x) for x in re.findall(r"^summary: (\d+)", text, re.M)))
finally:
    server.kill()
    server.wait()
    for f in os.listdir(root):
        if f.startswith("callgrind.out"):
            os.unlink(os.path.join(root, f))
PY
}
a=$(ir 2000 "$@")
b=$(ir 12000 "$@")
python3 -c "print(f'{($b - $a) / 10000:.0f} instructions per request (${*:-default flags})')"
