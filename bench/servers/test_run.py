#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Unit tests of bench/servers/run.py's parsers, reply checks, pairing and CPU cap (stdlib
# unittest; no load is generated; the cgroup tests use a fake root, one a real cgroup when root).
# Run: python3 bench/servers/test_run.py
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


CPU_STAT_V1 = """nr_periods 120
nr_throttled 90
throttled_time 450000000
nr_bursts 0
burst_time 0
"""

CPU_STAT_V2 = """usage_usec 2000000
user_usec 1500000
system_usec 500000
nr_periods 120
nr_throttled 90
throttled_usec 450000
"""


def fake_file(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


class CpuCapping(unittest.TestCase):
    def fake_root(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, True)
        return root

    def test_cpu_stat_of_either_version_gives_the_same_throttling(self):
        v1 = run.throttling(run.parse_cpu_stat(CPU_STAT_V1))
        v2 = run.throttling(run.parse_cpu_stat(CPU_STAT_V2))
        self.assertEqual(v1, {"periods": 120, "throttled": 90, "throttled_us": 450000})
        self.assertEqual(v2, v1)

    def test_throttling_fields_are_the_measured_runs_deltas(self):
        before = {"periods": 100, "throttled": 10, "throttled_us": 20000}
        after = {"periods": 300, "throttled": 160, "throttled_us": 770000}
        self.assertEqual(run.throttling_fields(before, after),
                         {"cap_periods": 200, "cap_throttled": 150, "cap_throttled_ms": 750.0,
                          "cap_throttled_share": 0.75})
        self.assertIsNone(run.throttling_fields(before, before)["cap_throttled_share"])

    def test_quota_is_a_share_of_the_10_ms_period_and_refuses_what_the_kernel_would(self):
        self.assertEqual(run.cap_quota_us(50), 5000)
        self.assertEqual(run.cap_quota_us(100), 10000)
        for bad in (5, 150):
            with self.assertRaises(ValueError):
                run.cap_quota_us(bad)

    def test_v1_is_found_at_the_cpu_mount(self):
        root = self.fake_root()
        fake_file(os.path.join(root, "cpu", "cpu.cfs_quota_us"), "-1\n")
        fake_file(os.path.join(root, "unified", "cgroup.controllers"), "hugetlb\n")
        self.assertEqual(run.find_cpu_cgroup(root), ("v1", os.path.join(root, "cpu")))

    def test_v2_is_found_at_the_root_or_in_a_hybrid_unified_tree_offering_cpu(self):
        pure = self.fake_root()
        fake_file(os.path.join(pure, "cgroup.controllers"), "cpuset cpu io memory pids\n")
        self.assertEqual(run.find_cpu_cgroup(pure), ("v2", pure))
        hybrid = self.fake_root()
        fake_file(os.path.join(hybrid, "unified", "cgroup.controllers"), "cpu memory\n")
        self.assertEqual(run.find_cpu_cgroup(hybrid), ("v2", os.path.join(hybrid, "unified")))

    def test_no_cpu_controller_is_none_and_the_cap_refuses_to_start(self):
        root = self.fake_root()
        fake_file(os.path.join(root, "unified", "cgroup.controllers"), "hugetlb\n")
        self.assertIsNone(run.find_cpu_cgroup(root))
        with self.assertRaises(run.CgroupError) as caught:
            run.CpuCap(50, root=root)
        self.assertIn("--server-cpu-quota", str(caught.exception))
        self.assertIsNone(run.find_cpu_cgroup(os.path.join(root, "missing")))

    def test_v1_cap_writes_period_then_quota_in_its_own_child(self):
        root = self.fake_root()
        fake_file(os.path.join(root, "cpu", "cpu.cfs_quota_us"), "-1\n")
        cap = run.CpuCap(50, root=root, name="corio-bench-test")
        self.assertEqual(cap.path, os.path.join(root, "cpu", "corio-bench-test"))
        self.assertEqual([n for n, _ in cap.limit_files()],
                         ["cpu.cfs_period_us", "cpu.cfs_quota_us"])
        self.assertEqual(read(os.path.join(cap.path, "cpu.cfs_period_us")), "10000")
        self.assertEqual(read(os.path.join(cap.path, "cpu.cfs_quota_us")), "5000")
        self.assertEqual(read(os.path.join(root, "cpu", "cpu.cfs_quota_us")), "-1\n")  # parent
        fake_file(os.path.join(cap.path, "cpu.stat"), CPU_STAT_V1)
        self.assertEqual(cap.throttling()["throttled"], 90)

    def test_v2_cap_writes_cpu_max_and_enables_cpu_for_children_once(self):
        root = self.fake_root()
        fake_file(os.path.join(root, "cgroup.controllers"), "cpu memory\n")
        fake_file(os.path.join(root, "cgroup.subtree_control"), "memory\n")
        cap = run.CpuCap(25, root=root, name="a")
        self.assertEqual(read(os.path.join(cap.path, "cpu.max")), "2500 10000")
        self.assertEqual(read(os.path.join(root, "cgroup.subtree_control")), "+cpu")
        fake_file(os.path.join(root, "cgroup.subtree_control"), "cpu memory\n")
        run.CpuCap(25, root=root, name="b")
        self.assertEqual(read(os.path.join(root, "cgroup.subtree_control")), "cpu memory\n")

    def test_an_existing_child_is_an_error_not_a_shared_cgroup(self):
        root = self.fake_root()
        fake_file(os.path.join(root, "cpu", "cpu.cfs_quota_us"), "-1\n")
        os.mkdir(os.path.join(root, "cpu", "taken"))
        with self.assertRaises(run.CgroupError):
            run.CpuCap(50, root=root, name="taken")

    def test_wrapped_command_joins_the_cgroup_then_execs_with_the_same_pid(self):
        root = self.fake_root()
        fake_file(os.path.join(root, "cpu", "cpu.cfs_quota_us"), "-1\n")
        cap = run.CpuCap(50, root=root, name="c")
        p = subprocess.run(cap.wrap(["sh", "-c", "echo $$"]), capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(cap.pids(), {int(p.stdout)})

    def test_a_capped_run_throttled_in_under_half_its_periods_counts_as_unthrottled(self):
        capped = {"cpu_quota_pct": 50.0, "cap_throttled_share": 0.97}
        self.assertFalse(run.is_unthrottled(capped))
        self.assertTrue(run.is_unthrottled(dict(capped, cap_throttled_share=0.1)))
        self.assertTrue(run.is_unthrottled(dict(capped, cap_throttled_share=None)))
        self.assertFalse(run.is_unthrottled({"cap_throttled_share": None}))  # not capped

    def test_the_table_flags_a_cell_whose_server_was_rarely_throttled(self):
        g = run.Group("kv", ["set"], 50, 1, 1.0)
        sides = {"kv": [run.Side("corio-kv", "corio-kv", "x"),
                        run.Side("redis-server", "redis", "y")]}
        rows = [dict(row("corio", 0, 100.0, 5.0), cpu_quota_pct=50.0, cap_throttled_share=0.2),
                dict(row("reference", 0, 90.0, 5.0), cpu_quota_pct=50.0,
                     cap_throttled_share=0.95)]
        summary = run.summarize(rows, [g], sides)
        self.assertEqual(summary[0]["cpu_quota_pct"], 50.0)
        _, table_rows, notes = run.table(summary, "kv", sides)
        column = table_rows[0].index("throttled")
        self.assertEqual(table_rows[1][column], "0.20 (!), 0.95")
        self.assertEqual(len(notes), 1)
        self.assertIn("corio-kv: NOT server-bound", notes[0])
        uncapped = run.summarize([row("corio", 0, 100.0, 5.0), row("reference", 0, 90.0, 5.0)],
                                 [g], sides)
        self.assertNotIn("throttled", run.table(uncapped, "kv", sides)[1][0])


@unittest.skipUnless(os.geteuid() == 0 and run.find_cpu_cgroup() is not None,
                     "needs root and a cgroup cpu controller")
class RealCgroup(unittest.TestCase):
    def test_a_process_and_its_child_are_capped_and_the_cgroup_goes_away(self):
        try:
            cap = run.CpuCap(50, name=f"corio-bench-test-{os.getpid()}")
        except run.CgroupError as e:  # e.g. a container's read-only /sys/fs/cgroup
            self.skipTest(str(e))
        self.addCleanup(cap.remove)
        proc = subprocess.Popen(cap.wrap(["sh", "-c", "sleep 2 & wait"]))
        try:
            for _ in range(100):
                if len(run.descendants(proc.pid)) >= 2:
                    break
                threading.Event().wait(0.01)
            tree = run.descendants(proc.pid)
            cap.check(proc.pid)  # the shell and the sleep it forked
            self.assertEqual(cap.throttling()["throttled"], 0)  # sleeping: never throttled
        finally:
            proc.kill()
            proc.wait()
        cap.remove()  # the orphaned sleep is moved out first
        self.assertFalse(os.path.exists(cap.path))
        for pid in tree[1:]:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    unittest.main()
