"""DORA metrics at scale: time growth from 100k to 1M deployments, peak memory, drill-downs, the diff.

Run:  python benchmarks/dora.py [--sizes 100000,1000000] [--services 1000] [--changes-per-deployment 10]
                                [--memory-limit 1GB] [--no-diff] [--keep DIR] [--repeat 3]

For each size, a synthetic store is built (inside DuckDB: production, staging and failed
deployments, rollbacks, hotfixes, incidents, commits, 10 deployment changes each), then,
each in a fresh process so its peak resident memory is its own:

* the full ``dora_metrics(by="service", freq="M")`` call (with every interval and
  period-over-period test), wall and CPU time (user + system, DuckDB's threads included:
  the steadier figure on a shared machine), in ``--repeat`` fresh processes (the median
  is reported with the range: one call varies by +-20 % with the host), then every
  drill-down frame read in pages of 500k rows;
* the definition diff, ``compare=["dora", "devlake", "fourkeys"]`` (three profiles and the
  per-row reasons), timed separately.

Baselines named in the output, measured in the same run: the smallest size's full call
(the growth ratio: 10x the data must cost at most 11x the time), and a scan reading
every value the metrics use once. DuckDB runs under ``SET memory_limit`` and spills to
disk beyond it. The one-time import of scipy.stats (the intervals need it; a fresh process
pays it on its first call) is timed on its own before the calls. Targets: 1M deployments /
10M links <= 4 s, peak <= 2 GiB. The machine's 2 cores are shared with other work: timings
are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(*args: str) -> str:
    return subprocess.run([sys.executable, str(HERE / "dora_run.py"), *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="deployments per run, comma-separated")
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--changes-per-deployment", type=int, default=10)
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit during the calls")
    parser.add_argument("--no-diff", action="store_true", help="skip the definition diff")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="fresh processes timing the full call per size; the median is reported (the host's noise is "
        "+-20 %% call to call)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the stores in DIR and reuse those already there (same sizes and arguments: the file name "
        "says them); default: a temporary directory",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = Path(args.keep) if args.keep else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        tmp.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            path = tmp / f"bench{size}_{args.services}_{args.changes_per_deployment}.duckdb"
            started, kept = time.perf_counter(), path.exists()
            if not kept:  # a kept store is reused (built in a temp name, so never half-built)
                partial = path.with_suffix(".partial")
                partial.unlink(missing_ok=True)
                _run("build", str(partial), str(size), str(args.services), str(args.changes_per_deployment))
                partial.rename(path)
            built = time.perf_counter() - started
            full = json.loads(_run("measure", str(path), args.memory_limit, "full"))
            calls = [full] + [json.loads(_run("measure", str(path), args.memory_limit, "call"))
                              for _ in range(max(args.repeat, 1) - 1)]  # fmt: skip
            walls, cpus = sorted(c["full"] for c in calls), sorted(c["full_cpu"] for c in calls)
            full["full"], full["full_cpu"] = statistics.median(walls), statistics.median(cpus)
            full["rss_full"] = max(c["rss_full"] for c in calls)
            diff = {} if args.no_diff else json.loads(_run("measure", str(path), args.memory_limit, "diff"))
            rows.append((size, built, full, diff))
            links = size * args.changes_per_deployment
            print(f"{size:,} deployments / {links:,} links (built in {built:.1f} s{', kept' if kept else ''})")
            print(f"  dora_metrics(by='service', freq='M'), median of {len(calls)} fresh processes: "
                  f"{full['full']:.2f} s wall [{walls[0]:.2f}-{walls[-1]:.2f}], {full['full_cpu']:.2f} s CPU "
                  f"[{cpus[0]:.2f}-{cpus[-1]:.2f}] (+ {full['import']:.2f} s one-time import of scipy.stats), "
                  f"peak RSS {full['rss_full']:,.0f} MiB (before the call {full['rss_before']:,.0f} MiB); "
                  f"{full['summary_rows']:,} summary rows, {full['period_rows']:,} period rows")  # fmt: skip
            print(f"  baseline: a scan reading every value once {full['scan']:.2f} s -> "
                  f"{full['full'] / full['scan']:.1f}x")  # fmt: skip
            pages = ", ".join(f"{n} {c:,}" for n, c in full["drill_rows"].items())
            print(f"  every drill-down in 500k-row pages ({pages}): {full['drill']:.2f} s wall, "
                  f"{full['drill_cpu']:.2f} s CPU = {full['drill'] / full['full']:.1f}x the full call, "
                  f"peak RSS {full['rss_drill']:,.0f} MiB")  # fmt: skip
            if diff:
                print(f"  diff of dora, devlake, fourkeys: {diff['diff']:.2f} s wall, {diff['diff_cpu']:.2f} s CPU = "
                      f"{diff['diff'] / full['full']:.1f}x the full call (3 profiles), {diff['reasons']:,} reason "
                      f"rows, peak RSS {diff['rss_diff']:,.0f} MiB")  # fmt: skip
    base_size, _, base, base_diff = rows[0]
    print(f"growth against the {base_size:,}-deployment run (baseline), target: time ratio <= 1.1 x data ratio")
    print(
        f"  {'deployments':>12} {'data x':>7} {'full s':>7} {'CPU s':>6} {'time x':>7} {'CPU x':>6} {'diff s':>7}"
        f" {'diff x':>7} {'peak MiB':>9}"
    )
    for size, _, full, diff in rows:
        diff_s = diff.get("diff", float("nan"))
        diff_x = diff_s / base_diff["diff"] if diff else float("nan")
        print(f"  {size:>12,} {size / base_size:>7.1f} {full['full']:>7.2f} {full['full_cpu']:>6.2f}"
              f" {full['full'] / base['full']:>7.2f} {full['full_cpu'] / base['full_cpu']:>6.2f} {diff_s:>7.2f}"
              f" {diff_x:>7.2f} {max(full['rss_full'], full['rss_drill']):>9,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
