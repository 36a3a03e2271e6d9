#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Drives the tutorial's servers (examples/tutorial/step3..5) the way a user would with nc: starts
# one on --port 0, connects several clients, checks the exact bytes each receives, then SIGINT and
# a clean exit 0. No sleeps: every wait is for a byte, an EOF or an exit, each under a deadline.
# Usage: drive.py echo|chat|shutdown PATH_TO_STEP_BINARY   (meson passes the built step)
import os
import select
import signal
import socket
import subprocess
import sys
import time

DEADLINE = 10.0  # seconds any single expected event may take (generous: ASan, a busy machine)
servers = []  # every server started, killed on failure so that none outlives the test


def fail(why):
    for proc in servers:
        if proc.poll() is None:
            proc.kill()
    sys.exit(f"drive.py: FAIL: {why}")


class Server:
    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE)
        servers.append(self.proc)
        self.out = b""
        line = self.read_line()
        if not line.startswith("listening on "):
            fail(f"expected 'listening on N', got {line!r}")
        self.port = int(line.split()[-1])

    def read_line(self):
        """The next line the server prints (without the newline)."""
        end = time.monotonic() + DEADLINE
        while b"\n" not in self.out:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                fail(f"timed out waiting for a line from the server (got {self.out!r})")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                fail(f"the server's output ended (got {self.out!r})")
            self.out += chunk
        line, _, self.out = self.out.partition(b"\n")
        return line.decode()

    def expect_line(self, text):
        got = self.read_line()
        if got != text:
            fail(f"server: expected {text!r}, got {got!r}")

    def signal(self, signo=signal.SIGINT):
        self.proc.send_signal(signo)

    def expect_exit(self, code):
        try:
            status = self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail(f"the server did not exit within {DEADLINE} s")
        if status != code:
            fail(f"exit status {status}, expected {code}")


class Client:
    def __init__(self, port, name="", rcvbuf=0):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connect(), so that the window the server sees is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode())

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                fail(f"{self.name}: EOF while waiting for a line (got {self.buf!r})")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode() + "\n"

    def expect(self, text):
        got = self.read_line()
        if got != text:
            fail(f"{self.name}: expected {text!r}, got {got!r}")

    def expect_eof(self):
        """Reads until the server closes; returns everything read."""
        data = self.buf
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def close(self):
        self.sock.close()


def drive_echo(binary):
    server = Server(binary)
    clients = [Client(server.port, f"client {i}") for i in range(3)]
    for round in range(3):  # interleaved: each connection is served while the others wait
        for i, c in enumerate(clients):
            c.send(f"round {round} from {i}\n")
        for i, c in enumerate(clients):
            c.expect(f"round {round} from {i}\n")
    clients[0].close()  # one leaves; the others are still served
    clients[1].send("still here\n")
    clients[1].expect("still here\n")
    server.signal()
    server.expect_line("signal 2: stopping")
    for c in clients[1:]:
        if c.expect_eof():
            fail("unexpected bytes before EOF")
    server.expect_exit(0)
    print("drive.py: echo ok")


def enter(port, name):
    """A client in the room, not named yet (the prompt comes once it is in)."""
    c = Client(port, name)
    c.expect("name?\n")
    return c


def name(c, *others):
    """`c` gives its name; everyone in `others` sees it join."""
    c.send(c.name + "\n")
    for o in others:
        o.expect(f"* {c.name} joined\n")


def chat_room(binary, *args):
    """The room's behaviour, shared by steps 4 and 5. Returns the server, alice and bob."""
    server = Server(binary, *args)
    alice = enter(server.port, "alice")
    bob = enter(server.port, "bob")
    name(alice, bob)
    name(bob, alice)
    alice.send("hello, bob\n")
    bob.expect("alice: hello, bob\n")
    bob.send("hi alice\n")
    alice.expect("bob: hi alice\n")
    # A paste of many short lines: one read makes one message, so alice, who reads, keeps up
    # (with a message per line, one read would overflow her outbox and drop her).
    bob.send("".join(f"line {i}\n" for i in range(500)))
    for i in range(500):
        alice.expect(f"bob: line {i}\n")

    # carol joins and never reads. alice talks, bob reads every line as it comes: carol's
    # socket buffers fill, then her outbox, and the room drops her; bob never waits for her.
    carol = Client(server.port, "carol", rcvbuf=4096)
    name(carol, alice, bob)
    filler = "x" * 1000
    dropped_at = None
    for n in range(20000):
        alice.send(f"{n} {filler}\n")
        line = bob.read_line()
        if line == "* carol was dropped\n" and dropped_at is None:
            dropped_at = n
            line = bob.read_line()
        if line != f"alice: {n} {filler}\n":
            fail(f"bob: expected alice's message {n}, got {line[:60]!r}")
        if dropped_at is not None and n >= dropped_at + 3:
            break  # the room goes on without her
    if dropped_at is None:
        fail("carol never read and was never dropped")
    alice.expect("* carol was dropped\n")
    got = carol.expect_eof()  # the server closed her connection (after what the kernel held)
    if not got.startswith(b"name?\nalice: 0 "):
        fail(f"carol: unexpected start {got[:40]!r}")
    carol.close()
    print(f"drive.py: carol was dropped after {dropped_at + 1} messages")
    return server, alice, bob


def idle_timeout(binary):
    server = Server(binary, "--idle-timeout-ms", "200")
    dave = enter(server.port, "dave")
    name(dave)
    if dave.expect_eof():  # silent for 200 ms: disconnected
        fail("dave: unexpected bytes before EOF")
    server.signal()
    server.expect_exit(0)


def drive_chat(binary):
    server, alice, bob = chat_room(binary)
    server.signal()
    server.expect_line("signal 2: stopping")
    for c in (alice, bob):
        if c.expect_eof():
            fail(f"{c.name}: unexpected bytes before EOF")
    server.expect_exit(0)
    idle_timeout(binary)
    print("drive.py: chat ok")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE).close()
    except ConnectionRefusedError:
        return True
    return False


def drive_shutdown(binary):
    # The clients leave when told: the drain ends as soon as the last one is gone.
    server, alice, bob = chat_room(binary, "--drain-ms", "60000")
    server.signal()
    server.expect_line("signal 2: shutting down")
    for c in (alice, bob):
        c.expect("* server shutting down in 60000 ms\n")
    if not refused(server.port):
        fail("the server still accepts connections while it drains")
    alice.close()
    bob.expect("* alice left\n")
    bob.close()
    server.expect_line("bye")
    server.expect_exit(0)
    idle_timeout(binary)

    # A client that stays is cancelled at the deadline; the server still exits 0.
    server = Server(binary, "--drain-ms", "300")
    erin = enter(server.port, "erin")
    name(erin)
    server.signal()
    erin.expect("* server shutting down in 300 ms\n")
    if erin.expect_eof():
        fail("erin: unexpected bytes before EOF")
    server.expect_line("signal 2: shutting down")
    server.expect_line("drain: cancelled the clients still connected after 300 ms")
    server.expect_line("bye")
    server.expect_exit(0)

    # A second signal while draining: out at once, with 128 + the signal's number.
    server = Server(binary, "--drain-ms", "60000")
    frank = enter(server.port, "frank")
    name(frank)
    server.signal()
    frank.expect("* server shutting down in 60000 ms\n")  # the first signal was handled
    server.signal(signal.SIGTERM)
    server.expect_line("signal 2: shutting down")
    server.expect_line("signal 15 again: exiting now")
    server.expect_exit(128 + signal.SIGTERM)
    frank.close()
    print("drive.py: shutdown ok")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("echo", "chat", "shutdown"):
        fail("usage: drive.py echo|chat|shutdown PATH_TO_STEP_BINARY")
    globals()["drive_" + sys.argv[1]](sys.argv[2])
