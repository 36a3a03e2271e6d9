#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Unit tests of bench/soak.py: the trend criterion on synthetic sample series (noise and caches
# pass, leaks fail), the stats-line parser, the reply readers and the client gate. No server runs.
# Run: python3 bench/test_soak.py
import importlib.util
import os
import random
import socket
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("corio_soak", os.path.join(HERE, "soak.py"))
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)

# The default schedule of the test command: 120 s, a sample every 10 s, 30 s of warm-up.
TIMES = [10.0 * i for i in range(0, 13)]
WARMUP = 30.0
# Sessions per second and server in the 2-minute runs here (about 250, normal and hostile).
RATE = 250


def samples(metric, values, times=TIMES):
    return [{"t": t, metric: v} for t, v in zip(times, values)]


def verdict(metric, values, rule=None, times=TIMES, warmup=WARMUP):
    return soak.judge_series(samples(metric, values, times), metric, warmup, rule)


class TrendCriterion(unittest.TestCase):
    def test_flat_rss_with_noise_passes(self):
        # Idle RSS of corio-kv in the 2-minute runs: 7.4-8.9 MiB from sample to sample (the
        # allocator trims and refills); echo and corio-http moved by under 0.1 MiB.
        for seed in range(300):
            rng = random.Random(seed)
            rss = [8700 + rng.uniform(-800, 800) for _ in TIMES]
            self.assertEqual(verdict("rss_kb", rss)["verdict"], "pass", (seed, rss))

    def test_allocator_steps_pass(self):
        # An allocator keeps a new high-water mark now and then: one step of up to 6 MiB
        # anywhere, or two that add up to less than the tolerance, on top of the noise.
        for seed in range(300):
            rng = random.Random(seed)
            steps = sorted(rng.sample(range(3, 13), 2))
            if seed % 2:
                height = [rng.uniform(1000, 6000), 0]
            else:
                height = [rng.uniform(500, 2000), rng.uniform(500, 2000)]
            rss = []
            for i in range(len(TIMES)):
                v = 9000 + rng.uniform(-800, 800)
                v += sum(h for s, h in zip(steps, height) if i >= s)
                rss.append(v)
            self.assertEqual(verdict("rss_kb", rss)["verdict"], "pass", (seed, rss))

    def test_a_huge_rss_jump_fails(self):
        rss = [9000] * 8 + [9000 + 4 * 4096 + 100] * 5
        self.assertEqual(verdict("rss_kb", rss)["verdict"], "fail")

    def test_warmup_ramp_then_flat_passes(self):
        # Caches, keyspace and arenas fill during the warm-up: 3 MiB -> 20 MiB, then flat.
        for seed in range(100):
            rng = random.Random(seed)
            rss = [3000 + min(t, WARMUP) / WARMUP * 17000 + rng.uniform(-400, 400) for t in TIMES]
            fds = [7 + (6 if t >= 10 else 0) for t in TIMES]
            self.assertEqual(verdict("rss_kb", rss)["verdict"], "pass", seed)
            self.assertEqual(verdict("fds", fds)["verdict"], "pass", seed)

    def test_steady_rss_leak_fails(self):
        # 4 KiB per 5 sessions: 200 KiB/s at the runs' rate.
        per_s = 4 * RATE / 5
        for seed in range(100):
            rng = random.Random(seed)
            rss = [8700 + per_s * t + rng.uniform(-600, 600) for t in TIMES]
            j = verdict("rss_kb", rss)
            self.assertEqual(j["verdict"], "fail", (seed, j))
            self.assertIn("grows", j["reason"])

    def test_smallest_rss_leak_a_two_minute_run_catches(self):
        # 4 KiB per 15 sessions (67 KiB/s): the last third's median is 70 s after the first's,
        # 4.6 MiB above it, past the 4 MiB tolerance even with the noise.
        per_s = 4 * RATE / 15
        for seed in range(100):
            rng = random.Random(seed)
            rss = [8700 + per_s * t + rng.uniform(-300, 300) for t in TIMES]
            self.assertEqual(verdict("rss_kb", rss)["verdict"], "fail", seed)

    def test_rss_leak_in_an_hour(self):
        # 60 minutes, a sample every 10 s, 15 minutes of warm-up: 4 KiB per 300 sessions
        # (12 MiB/h) shows, 6 MiB between the thirds' medians.
        times = [10.0 * i for i in range(361)]
        per_s = 4 * RATE / 300
        rng = random.Random(7)
        rss = [8700 + per_s * t + rng.uniform(-600, 600) for t in times]
        self.assertEqual(verdict("rss_kb", rss, times=times, warmup=900)["verdict"], "fail")
        flat = [8700 + rng.uniform(-600, 600) for t in times]
        self.assertEqual(verdict("rss_kb", flat, times=times, warmup=900)["verdict"], "pass")

    def test_fd_leak_fails(self):
        # One fd per 100 sessions: 2.5 fds a second.
        fds = [7 + int(2.5 * t) for t in TIMES]
        j = verdict("fds", fds)
        self.assertEqual(j["verdict"], "fail")
        # Even one fd per 1000 sessions (0.25/s) grows by 17 between the thirds.
        fds = [7 + int(0.25 * t) for t in TIMES]
        self.assertEqual(verdict("fds", fds)["verdict"], "fail")

    def test_a_lasting_fd_step_fails(self):
        # fd and task counts are exact when idle: a step that stays is a leak, not noise.
        fds = [7] * 7 + [12] * 6
        self.assertEqual(verdict("fds", fds)["verdict"], "fail")
        tasks = [4] * 7 + [9] * 6
        self.assertEqual(verdict("live_tasks", tasks)["verdict"], "fail")

    def test_one_unsettled_sample_passes(self):
        # A straggler connection in one idle sample (the load's close not yet seen): medians.
        fds = [7] * 13
        fds[12] = 15
        tasks = [3] * 13
        tasks[11] = 8
        self.assertEqual(verdict("fds", fds)["verdict"], "pass")
        self.assertEqual(verdict("live_tasks", tasks)["verdict"], "pass")

    def test_http_pipe_cache_passes_but_an_fd_leak_fails(self):
        rule = soak.rule_for("http", "fds")
        for seed in range(300):
            rng = random.Random(seed)
            fds = [8 + 2 * rng.randint(0, 4) for _ in TIMES]  # 0 to 4 idle pipe pairs
            self.assertEqual(verdict("fds", fds, rule)["verdict"], "pass", (seed, fds))
        fds = [8 + 2 * random.Random(1).randint(0, 4) + int(0.5 * t) for t in TIMES]
        self.assertEqual(verdict("fds", fds, rule)["verdict"], "fail")

    def test_tasks_leak_fails(self):
        # One task every 2500 sessions (0.1/s): +7 between the thirds.
        tasks = [4 + int(t / 10) for t in TIMES]
        self.assertEqual(verdict("live_tasks", tasks)["verdict"], "fail")
        self.assertEqual(verdict("live_tasks", [4] * len(TIMES))["verdict"], "pass")

    def test_too_few_samples_gives_no_verdict(self):
        j = verdict("fds", [7, 7, 50, 90, 130], times=[0, 10, 20, 30, 40], warmup=10)
        self.assertEqual(j["verdict"], "n/a")

    def test_missing_values_are_left_out(self):
        fds = [7] * 13
        fds[5] = None
        self.assertEqual(verdict("fds", fds)["verdict"], "pass")

    def test_a_falling_series_passes(self):
        self.assertEqual(verdict("rss_kb", [20000 - 50 * t for t in TIMES])["verdict"], "pass")

    def test_theil_sen_ignores_one_outlier(self):
        ts = list(range(10))
        xs = [5.0] * 10
        xs[9] = 500.0
        self.assertEqual(soak.theil_sen(ts, xs), 0.0)
        self.assertAlmostEqual(soak.theil_sen(ts, [2 * t + 1 for t in ts]), 2.0)

    def test_tolerance_is_absolute_or_relative(self):
        rule = soak.Rule(4096, 0.08)
        self.assertEqual(rule.tolerance(10000), 4096)
        self.assertAlmostEqual(rule.tolerance(100000), 8000)


class StatsLines(unittest.TestCase):
    ECHO = ("stats: connections=0 accepted=12 rejected=0 timed_out=1 bytes_echoed=99 "
            "live_tasks=3 ops_in_flight=1 open_fds=9 cq_overflows=0 bytes_buffered=0")
    KV = ("stats: clients=2 accepted=5 rejected=0 keys=1 commands=7 protocol_errors=0 "
          "output_limit_closes=0 live_tasks=6 ops_in_flight=4 loop_turns=8 kernel_enters=7 "
          "cq_overflows=0 aof_size=0")

    def test_parses_key_values(self):
        st = soak.parse_stats(self.ECHO)
        self.assertEqual(st["live_tasks"], 3)
        self.assertEqual(st["accepted"], 12)
        self.assertEqual(soak.open_connections(st), 0)

    def test_kv_says_clients(self):
        st = soak.parse_stats(self.KV)
        self.assertEqual(soak.open_connections(st), 2)
        self.assertEqual(st["live_tasks"], 6)

    def test_robust_to_order_text_and_junk(self):
        st = soak.parse_stats("stats: backend=io_uring live_tasks=4 junk =5 x= 2xx=10 "
                              "connections=1")
        self.assertEqual(st["backend"], "io_uring")
        self.assertEqual(st["live_tasks"], 4)
        self.assertEqual(st["2xx"], 10)
        self.assertEqual(st["x"], "")
        self.assertNotIn("", st)
        self.assertIsNone(soak.parse_stats("listening on 4000"))
        self.assertEqual(soak.parse_stats("stats:"), {})


def conn_over(data):
    """A soak.Conn reading `data` from a socketpair (then EOF)."""
    a, b = socket.socketpair()
    b.sendall(data)
    b.close()
    c = soak.Conn.__new__(soak.Conn)
    c.gate, c.deadline, c.sock = soak.Gate(), time.monotonic() + 5, a
    c.buf, c.eof = bytearray(), False
    a.settimeout(soak.POLL)
    return c


class Readers(unittest.TestCase):
    def test_resp_replies(self):
        c = conn_over(b"+OK\r\n-ERR bad\r\n:42\r\n$5\r\na\r\nbc\r\n$-1\r\n*2\r\n$1\r\nx\r\n:1\r\n")
        self.assertEqual(soak.read_resp(c), ("+", "OK"))
        self.assertEqual(soak.read_resp(c), ("-", "ERR bad"))
        self.assertEqual(soak.read_resp(c), 42)
        self.assertEqual(soak.read_resp(c), b"a\r\nbc")
        self.assertIsNone(soak.read_resp(c))
        self.assertEqual(soak.read_resp(c), [b"x", 1])
        with self.assertRaises(soak.Closed):
            soak.read_resp(c)

    def test_resp_bad_bulk_end_is_a_wrong_reply(self):
        with self.assertRaises(soak.VerifyFailure):
            soak.read_resp(conn_over(b"$2\r\nabcd"))

    def test_kv_expect_unknown_accepts_anything(self):
        soak.kv_expect("GET", b"whatever", soak.UNKNOWN)
        with self.assertRaises(soak.VerifyFailure):
            soak.kv_expect("GET", b"abc", b"abd")

    def test_http_response(self):
        c = conn_over(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\nabc"
                      b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        status, headers, body = soak.read_http_response(c)
        self.assertEqual((status, headers["x"], body), (200, "y", b"abc"))
        self.assertEqual(soak.read_http_response(c)[0], 404)

    def test_http_response_without_length_is_a_wrong_reply(self):
        with self.assertRaises(soak.VerifyFailure):
            soak.read_http_response(conn_over(b"HTTP/1.1 200 OK\r\n\r\nabc"))

    def test_early_eof_is_closed(self):
        with self.assertRaises(soak.Closed):
            soak.read_http_response(conn_over(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab"))


class GateTests(unittest.TestCase):
    def test_pause_waits_for_sessions_and_interrupts_sleepers(self):
        gate = soak.Gate()
        seen = []

        def client():
            self.assertTrue(gate.enter())
            try:
                gate.sleep(30)
            except soak.Interrupted:
                seen.append("interrupted")
            finally:
                gate.leave()

        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        self.assertTrue(gate.pause(5))
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(seen, ["interrupted"])
        gate.stop()
        self.assertFalse(gate.enter())
        t.join()


if __name__ == "__main__":
    unittest.main()
