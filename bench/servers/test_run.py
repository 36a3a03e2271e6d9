#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Unit tests of bench/servers/run.py's parsers, reply checks and pairing (stdlib unittest; no
# load is generated). Run: python3 bench/servers/test_run.py
import http.server
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("corio_servers_run", os.path.join(HERE, "run.py"))
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

WRK_CLEAN = """Running 3s test @ http://127.0.0.1:40000/100b
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.39ms    1.08ms  20.48ms   94.31%
    Req/Sec    42.18k     2.11k   45.32k    80.00%
  Latency Distribution
     50%    2.27ms
     75%    2.45ms
     90%    2.80ms
     99%    6.17ms
  125868 requests in 3.00s, 41.05MB read
Requests/sec:  41952.37
Transfer/sec:     13.68MB
"""

WRK_ERRORS = """Running 1s test @ http://127.0.0.1:40000/64k
  1 threads and 1000 connections
  Latency Distribution
     50%  850.00us
     99%     1.20s
  9000 requests in 1.00m, 560.00MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   9001.50
Transfer/sec:    560.00MB
"""

REDIS_CSV = '''"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","87719.30","0.308","0.096","0.295","0.423","0.599","1.399"
'''


class Parsers(unittest.TestCase):
    def test_wrk_clean_run(self):
        r = run.parse_wrk(WRK_CLEAN)
        self.assertEqual(r["requests"], 125868)
        self.assertAlmostEqual(r["seconds"], 3.0)
        self.assertAlmostEqual(r["rps"], 41952.37)
        self.assertAlmostEqual(r["p50_us"], 2270.0)
        self.assertAlmostEqual(r["p99_us"], 6170.0)
        self.assertEqual(r["errors"], 0)

    def test_wrk_counts_socket_errors_and_non_2xx(self):
        r = run.parse_wrk(WRK_ERRORS)
        self.assertEqual(r["socket_errors"], 15)
        self.assertEqual(r["non2xx"], 7)
        self.assertEqual(r["errors"], 22)
        self.assertAlmostEqual(r["p50_us"], 850.0)
        self.assertAlmostEqual(r["p99_us"], 1.2e6)
        self.assertAlmostEqual(r["seconds"], 60.0)

    def test_wrk_output_without_a_result_is_none(self):
        self.assertIsNone(run.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n"))

    def test_redis_csv(self):
        r = run.parse_redis_csv("WARNING: Could not fetch server CONFIG\n" + REDIS_CSV)
        self.assertAlmostEqual(r["rps"], 87719.30)
        self.assertAlmostEqual(r["p50_us"], 295.0)
        self.assertAlmostEqual(r["p99_us"], 599.0)
        self.assertIsNone(run.parse_redis_csv("Error: Connection reset by peer\n"))


def row(side, rep, rps, core, status="ok"):
    return {"job": "kv", "variant": "set", "connections": 50, "pipeline": 1, "rep": rep,
            "side": side, "status": status, "rps": rps, "core_us_per_req": core,
            "cpu_us_per_req": core / 2, "p99_us": 100.0, "errors": 0}


class Pairing(unittest.TestCase):
    def test_ratios_are_paired_per_repetition_and_failed_runs_are_left_out(self):
        g = run.Group("kv", ["set"], 50, 1, 1.0)
        sides = {"kv": [run.Side("corio-kv", "corio-kv", "x"),
                        run.Side("redis-server", "redis", "y")]}
        rows = [row("corio", 0, 200.0, 5.0), row("reference", 0, 100.0, 10.0),
                row("corio", 1, 90.0, 5.0), row("reference", 1, 100.0, 10.0),
                row("corio", 2, 1e9, 1.0, status="wrk errors"), row("reference", 2, 100.0, 10.0)]
        (s,) = run.summarize(rows, [g], sides)
        self.assertAlmostEqual(s["rps_ratio"], (2.0 + 0.9) / 2)  # rep 2 failed: not paired
        self.assertEqual(s["rps_ratio_spread"], "0.90–2.00")
        self.assertEqual(s["rps_pairs"], 2)
        self.assertAlmostEqual(s["core_us_per_req_ratio"], 0.5)
        self.assertEqual(s["corio_failed"], 1)
        self.assertEqual(s["corio_rps"], 145.0)
        self.assertTrue(s["target_met"])
        self.assertEqual(s["corio_notes"], "wrk errors")

    def test_commands_elide_port_and_request_count(self):
        rows = [{"command": "redis-benchmark -h 127.0.0.1 -p 41234 -c 50 -P 1 -t set "
                            "-n 150000 --csv"},
                {"command": "wrk -t1 -c100 -d3s --latency http://127.0.0.1:41234/100b"}]
        self.assertEqual(run.commands_used(rows), [
            "taskset -c 1 redis-benchmark -h 127.0.0.1 -p P -c 50 -P 1 -t set -n N --csv",
            "taskset -c 1 wrk -t1 -c100 -d3s --latency http://127.0.0.1:P/100b"])


class Pooling(unittest.TestCase):
    def test_runs_pool_with_pairs_kept_inside_each_run(self):
        dirs = [tempfile.mkdtemp(), tempfile.mkdtemp()]
        for d in dirs:
            self.addCleanup(shutil.rmtree, d, True)
        for d, corio_rps in zip(dirs, (200.0, 300.0)):
            rows = []
            for variant in ("set", "get"):
                for side, server, rps in (("corio", "corio-kv", corio_rps),
                                          ("reference", "redis-server", 100.0)):
                    r = row(side, 0, rps, 4.0)
                    r.update(variant=variant, server=server, size="")
                    rows.append(r)
            run.lab.write_csv(os.path.join(d, "runs.csv"), rows)
        pooled = run.load_runs(dirs)
        self.assertEqual(len(pooled), 8)
        groups, sides = run.groups_and_sides(pooled)
        self.assertEqual([(g.job, g.connections, g.pipeline) for g in groups], [("kv", 50, 1)])
        self.assertEqual([s.name for s in sides["kv"]], ["corio-kv", "redis-server"])
        summary = run.summarize(pooled, groups, sides)
        self.assertEqual([s["variant"] for s in summary], ["set", "get"])
        self.assertAlmostEqual(summary[0]["rps_ratio"], 2.5)  # pairs (2.0, 3.0), not 4 crossed
        self.assertEqual(summary[0]["rps_pairs"], 2)


class Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


class ReplyChecks(unittest.TestCase):
    def serve(self, body):
        Handler.body = body
        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.server_address[1]

    def test_http_check_passes_on_the_exact_bytes(self):
        port = self.serve(b"x" * 100)
        run.verify_http(port, "ok", b"x" * 100)

    def test_http_check_fails_on_other_bytes_or_status(self):
        port = self.serve(b"x" * 99 + b"y")
        with self.assertRaises(RuntimeError):
            run.verify_http(port, "ok", b"x" * 100)
        with self.assertRaises(RuntimeError):
            run.verify_http(port, "missing", b"x" * 100)

    def test_kv_check_fails_on_a_wrong_reply(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def liar():
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"-ERR unknown command\r\n")
        threading.Thread(target=liar, daemon=True).start()
        with self.assertRaises(RuntimeError):
            run.verify_kv(listener.getsockname()[1])

    @unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
    def test_kv_check_passes_against_redis_server(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        side = run.Side("redis-server", "redis", shutil.which("redis-server"))
        proc, port = side.start(tmp, None, os.path.join(tmp, "log"))
        try:
            run.verify_kv(port)
        finally:
            status, _ = run.lab.stop_server(proc)
        self.assertEqual(status, 0)

    @unittest.skipUnless(shutil.which("nginx"), "nginx not installed")
    def test_generated_nginx_conf_is_accepted_by_nginx(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = run.write_nginx_conf(tmp, run.free_port(), tmp, "open_file_cache max=10;")
        with open(conf) as f:
            text = f.read()
        for line in ("worker_processes 1;", "access_log off;", "sendfile on;", "daemon off;",
                     "open_file_cache max=10;"):
            self.assertIn(line, text)
        r = subprocess.run(["nginx", "-t", "-p", tmp, "-c", conf, "-e",
                            os.path.join(tmp, "error.log")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)


class ProcessCpu(unittest.TestCase):
    def test_descendants_include_a_child_and_its_ticks_count(self):
        child = subprocess.Popen(["sh", "-c", "sleep 2 & wait"])
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        for _ in range(100):
            tree = run.descendants(child.pid)
            if len(tree) >= 2:
                break
            threading.Event().wait(0.01)
        self.assertEqual(tree[0], child.pid)
        self.assertGreaterEqual(len(tree), 2)  # the shell and its sleep
        self.assertIsNotNone(run.proc_ticks(child.pid))
        self.assertIsNone(run.proc_ticks(2 ** 22 + 12345))


if __name__ == "__main__":
    unittest.main()
