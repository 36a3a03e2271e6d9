#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Regenerates the generated parts of docs/state-management.md: the handler code (copied from the
# LAB-HANDLER regions of the compiled lab servers) and the numbers (from a harness run).
"""Rewrite the generated blocks of a Markdown page.

Blocks are delimited by HTML comments, which Markdown does not render:

  <!-- code: examples/lab/echo/corio.cpp -->  ...  <!-- end -->
      the LAB-HANDLER region of that source, as a ```cpp block
  <!-- loc: echo -->  ...  <!-- end -->
      a table of handler lines of code per style for that job
  <!-- results: echo -->  ...  <!-- end -->     (also `results: files`)
      the summary table of the run given with --results (machine, date and command included)

Usage: bench/lab/make_doc.py [--results build/lab-results/STAMP ...] [--check] [PAGE]
--check exits 1 when PAGE is not what it would be rewritten to (code drifted from the sources).
"""

import argparse
import csv
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import run  # noqa: E402  (handler_loc, fmt, STYLES)

BLOCK = re.compile(r"(<!-- (code|loc|results): ([^ ]+) -->\n)(.*?)(<!-- end -->)", re.S)


def handler_region(path):
    with open(os.path.join(ROOT, path)) as f:
        lines = f.read().splitlines()
    try:
        begin = next(i for i, l in enumerate(lines) if "LAB-HANDLER-BEGIN" in l)
        end = next(i for i, l in enumerate(lines) if "LAB-HANDLER-END" in l)
    except StopIteration:
        return None
    # The blocking job's hook (docs/blocking.md) is not part of the handler being compared.
    return "\n".join(l for l in lines[begin + 1:end] if "LAB-BLOCK" not in l)


def code_block(path):
    if not os.path.exists(os.path.join(ROOT, path)):
        return f"_({path} does not exist yet)_\n"
    region = handler_region(path)
    if region is None:
        return f"_({path} has no LAB-HANDLER region)_\n"
    loc = run.handler_loc(os.path.join(ROOT, path))
    return (f"From [`{path}`](../{path}), the region between `LAB-HANDLER-BEGIN` and "
            f"`LAB-HANDLER-END` ({loc} lines of code):\n\n```cpp\n{region}\n```\n")


def loc_table(job):
    out = ["| style | handler lines of code |", "|---|---:|"]
    for style in run.STYLES:
        program, source, _ = run.style_program(style)
        if source != style.replace("-", "_"):
            continue  # a row running another row's source (asio-uring, corio-epoll)
        if job not in run.STYLE_JOBS.get(style, (job,)):
            continue  # not a row of this job (corio-lean: echo only)
        loc = run.handler_loc(os.path.join(ROOT, "examples", "lab", job, f"{source}.cpp"))
        out.append(f"| {style} | {run.fmt(loc)} |")
    return "\n".join(out) + "\n"


def results_block(job, runs):
    """The table of the last run in `runs` that has cells of `job`."""
    with_job = [r for r in runs if has_job(r, job)]
    if not with_job:
        return f"_(no run with {job} cells given: `bench/lab/make_doc.py --results DIR`)_\n"
    results = with_job[-1]
    header = []
    with open(os.path.join(results, "report.md")) as f:
        for line in f:
            if line.startswith("- command:") or line.startswith("- machine:") \
                    or line.startswith("- date:") or line.startswith("- repetitions:") \
                    or line.startswith("- pinning:"):
                header.append(line.rstrip("\n"))
    with open(os.path.join(results, "summary.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r["job"] == job]
    if not rows:
        return f"_(the run in {results} has no {job} cells)_\n"
    cols = [("connections", "connections"), ("size B", "size"), ("style", "style"),
            ("req/s", "rps"), ("p50 us", "p50_us"), ("p99 us", "p99_us"),
            ("cpu us/req", "cpu_us_per_req"), ("cpu x uring", "cpu_us_per_req_ratio"),
            ("core us/req", "core_us_per_req"), ("core x uring", "core_us_per_req_ratio"),
            ("RSS B/conn", "rss_per_conn_b"), ("frame B/conn", "frame_b_per_conn"),
            ("threads", "threads"), ("allocs/req", "allocs_per_req")]
    if job == "files":
        cols = [("variant", "variant")] + [c for c in cols if c[1] not in ("size",)] \
            + [("large MiB/s", "large_mib_s")]
    out = header + ["", "| " + " | ".join(h for h, _ in cols) + " |",
                    "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        vals = []
        for _, k in cols:
            v = r.get(k, "")
            try:
                digits = 2 if "ratio" in k or k == "allocs_per_req" else 1
                v = run.fmt(float(v), digits) if v not in ("", None) else "-"
                if k in ("connections", "size", "threads") and v != "-":
                    v = str(int(float(r[k])))
            except ValueError:
                pass
            vals.append(v)
        out.append("| " + " | ".join(vals) + " |")
    return "\n".join(out) + "\n"


def has_job(results, job):
    try:
        with open(os.path.join(results, "summary.csv")) as f:
            return any(r["job"] == job for r in csv.DictReader(f))
    except OSError:
        return False


def rewrite(text, results):
    def block(m):
        kind, arg = m.group(2), m.group(3)
        if kind == "code":
            body = code_block(arg)
        elif kind == "loc":
            body = loc_table(arg)
        elif not results:
            return m.group(0)  # keep the numbers already in the page
        else:
            body = results_block(arg, results)
        return m.group(1) + body + m.group(5)
    return BLOCK.sub(block, text)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("page", nargs="?", default=os.path.join(ROOT, "docs", "state-management.md"))
    p.add_argument("--results", action="append", default=[],
                   help="a harness output folder (summary.csv, report.md); repeatable: each "
                        "job's table comes from the last folder that has cells of that job")
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    with open(args.page) as f:
        text = f.read()
    new = rewrite(text, args.results)
    if args.check:
        if new != text:
            print(f"{args.page} is out of date: run bench/lab/make_doc.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        with open(args.page, "w") as f:
            f.write(new)
        print(f"rewrote {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
