# SPDX-License-Identifier: MIT
# What the benchmark scripts read of a server process in /proc, and the RESP encoding the kv
# scripts send. Imported as `from support.procfs import ...` by scripts run as bench/NAME.py.


def status_kib(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM, ...); -1 when it is missing."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def cpu_ticks(pid):
    """The process's user + system CPU time in clock ticks (/proc/PID/stat utime + stime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def resp_command(*args):
    """A RESP array of bulk strings (str or bytes): one command as a Redis client sends it."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
