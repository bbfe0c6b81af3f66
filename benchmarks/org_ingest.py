"""An organisation's ingest on Dask workers: speed-up, flat cost per repository, incremental runs, lake reads.

Run:  python benchmarks/org_ingest.py [--repos 200] [--sizes 10,50,200] [--workers 2] [--work DIR]

On one simulated organisation (``releaserisk simulate --repos N``: repository k is the same
whatever N, so 10, 50 and 200 repositories compare like with like; its production
deployments become annotated release tags, so the lake holds deployments) it measures:

1. wall time of ``ingest org`` with ``--workers 1`` (baseline: the repositories one by one
   in one process) and with ``--workers N`` (a ``LocalCluster``), each into a fresh lake,
   ``--repeat`` times alternating (default 2): the speed-up of the fastest run of each
   (a shared machine's noise only adds time; every run is printed);
2. wall time per repository at each size (10 → 200 repositories should cost the same per
   repository), with the peak resident memory of a worker;
3. the same run again with nothing changed (baseline: the first run): the incremental cost;
4. ``dora_metrics(by="service")`` over the lake as ``ingest org`` leaves it (compacted
   automatically once a table has ``AUTO_COMPACT_SHARDS`` shards; ``--no-compact`` keeps the
   per-repository shards, then ``lake compact`` is timed after) vs over the same rows loaded
   into one DuckDB file (baseline), median of 3 calls each.

Every ratio's baseline is measured in the same run. The numbers are wall-clock times on a
shared 2-core machine: read the ratios.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # two busy cores: no native thread pools on top of the workers


def _tag_deployments(out: Path) -> int:
    """Production deployments as annotated tags ``deploy/<id>`` dated at the deployment (git fast-import)."""
    by_repo: dict[str, list[dict]] = {}
    with open(out / "deployments.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["environment"] == "production" and row["status"] == "success":
                by_repo.setdefault(row["repo"], []).append(row)
    for repo, rows in by_repo.items():
        stream = []
        for row in rows:
            when = int(datetime.fromisoformat(row["started_at"].replace("Z", "+00:00")).timestamp())
            message = f"deployment {row['deployment_id']}\n".encode()
            stream.append(
                f"tag deploy/{row['deployment_id']}\nfrom {row['sha']}\n"
                f"tagger Deploy Bot <deploy@example.com> {when} +0000\ndata {len(message)}\n".encode()
                + message
            )
        subprocess.run(["git", "-C", str(out / "repos" / repo), "fast-import", "--quiet"],
                       input=b"".join(stream), check=True)  # fmt: skip
    return sum(len(r) for r in by_repo.values())


def _manifest(out: Path, repos: int, target: Path) -> Path:
    """The simulator's manifest cut to its first ``repos`` repositories, with the deploy tags."""
    text = (out / "org.toml").read_text()
    head, *entries = text.split("[[repos]]")
    kept = ["[[repos]]" + e.replace("\n\n", "\n") + 'tags = "deploy/*"\n\n' for e in entries[:repos]]
    target.write_text(head.replace('path = "repos', f'path = "{out}/repos') + "".join(kept).replace(
        'path = "repos', f'path = "{out}/repos'))  # fmt: skip
    return target


def _ingest(manifest: Path, lake: Path, workers: int, compact: bool | None) -> tuple[float, object]:
    from releaserisk.ingest.org import ingest_org

    started = time.perf_counter()
    result = ingest_org(manifest, lake, workers=workers, compact=compact)
    seconds = time.perf_counter() - started
    if len(result.failed):
        sys.exit(f"failed repositories: {result.failed[['repo', 'error']].to_string()}")
    return seconds, result


def _median_call(make_store, repeat: int = 3) -> float:
    from releaserisk.dora import dora_metrics

    times = []
    for _ in range(repeat):
        with make_store() as store:
            started = time.perf_counter()
            dora_metrics(store, by="service").frame  # noqa: B018 - forces the aggregates
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--sizes", default="10,50,200", help="organisation sizes timed with --workers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--work", type=Path, default=Path("/tmp/releaserisk-bench/org"))
    parser.add_argument("--skip-serial", action="store_true", help="do not time the --workers 1 baseline")
    parser.add_argument("--repeat", type=int, default=2,
                        help="first runs of each mode, alternating serial and parallel; the fastest of each is "
                             "compared (timeit's rule: noise only adds time)")  # fmt: skip
    parser.add_argument("--no-compact", action="store_true", help="leave the shards uncompacted after ingest")
    args = parser.parse_args()

    from releaserisk.lake import compact_lake, load_lake, open_lake
    from releaserisk.simulation import simulate
    from releaserisk.store import open_store

    out = args.work / f"org-{args.repos}-{args.weeks}w"
    if not (out / "org.toml").exists():
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        sim = simulate(out, repos=args.repos, weeks=args.weeks)
        tags = _tag_deployments(out)
        print(f"simulated {args.repos} repositories, {sim.commits:,} commits, {tags:,} production deployments "
              f"as tags in {time.perf_counter() - started:.1f} s")  # fmt: skip
    compact = False if args.no_compact else None
    runs = args.work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)

    full = _manifest(out, args.repos, runs / f"org-{args.repos}.toml")
    rows = []
    serial_runs, parallel_runs = [], []
    for _ in range(max(args.repeat, 1)):
        if not args.skip_serial:
            shutil.rmtree(runs / "lake-serial", ignore_errors=True)
            serial_runs.append(_ingest(full, runs / "lake-serial", 1, compact))
        shutil.rmtree(runs / "lake", ignore_errors=True)
        parallel_runs.append(_ingest(full, runs / "lake", args.workers, compact))
    if not args.skip_serial:
        serial, result = min(serial_runs, key=lambda run: run[0])
        rows.append(("serial (--workers 1), baseline", args.repos, serial, result))
    parallel, result = min(parallel_runs, key=lambda run: run[0])
    rows.append((f"--workers {args.workers}", args.repos, parallel, result))
    again, unchanged = _ingest(full, runs / "lake", args.workers, compact)
    for size in sorted({int(s) for s in args.sizes.split(",")} - {args.repos}):
        sized_manifest = _manifest(out, size, runs / f"org-{size}.toml")
        seconds, sized = _ingest(sized_manifest, runs / f"lake-{size}", args.workers, compact)
        rows.append((f"--workers {args.workers}", size, seconds, sized))

    commits = int(result.frame["total_commits"].sum())
    print(f"\norganisation: {args.repos} repositories, {commits:,} commits; cores: {os.cpu_count()}")
    print(f"{'run':34} {'repos':>6} {'wall s':>8} {'s/repo':>7} {'worker peak MiB':>16}")
    for label, size, seconds, res in rows:
        print(f"{label:34} {size:>6} {seconds:>8.1f} {seconds / size:>7.2f} {res.frame['peak_rss_mib'].max():>16.0f}")
    if not args.skip_serial:
        print(f"speed-up --workers {args.workers} vs serial: {rows[0][2] / parallel:.2f}x (target >= 1.7x); "
              f"fastest of {len(parallel_runs)} runs each, alternating — serial "
              f"{', '.join(f'{t:.1f}' for t, _ in serial_runs)} s, parallel "
              f"{', '.join(f'{t:.1f}' for t, _ in parallel_runs)} s")  # fmt: skip
    per_repo = {size: seconds / size for label, size, seconds, _ in rows if label.startswith("--workers")}
    smallest, largest = min(per_repo), max(per_repo)
    print(f"time per repository, {largest} vs {smallest} repositories: {per_repo[largest] / per_repo[smallest]:.2f}x "
          "(flat: ~1.0x)")  # fmt: skip
    statuses = unchanged.frame["status"].value_counts().to_dict()
    print(f"second run, nothing changed: {again:.2f} s = {again / parallel:.1%} of the first ({statuses}; "
          "target <= 5 %)")  # fmt: skip

    db = runs / "loaded.duckdb"
    started = time.perf_counter()
    load_lake(runs / "lake", db)
    print(f"lake load --db: {time.perf_counter() - started:.1f} s")
    if result.compaction is not None:
        print(f"ingest org compacted the lake after its run: {result.compaction.summary()}")
    on_file = _median_call(lambda: open_store(db, read_only=True))
    on_lake = _median_call(lambda: open_lake(runs / "lake"))
    state = "compacted by ingest" if result.compaction is not None else "per-repository shards"
    print(f"dora_metrics(by='service') over the lake ({state}) {on_lake:.2f} s vs the loaded file {on_file:.2f} s "
          f"(baseline): {on_lake / on_file:.2f}x (target <= 1.5x)")  # fmt: skip
    if result.compaction is not None:
        return
    started = time.perf_counter()
    compacted = compact_lake(runs / "lake")
    print(f"lake compact: {time.perf_counter() - started:.1f} s ({compacted.files_before:,} files -> "
          f"{compacted.files_after})")  # fmt: skip
    on_compacted = _median_call(lambda: open_lake(runs / "lake"))
    print(f"dora_metrics(by='service') over the compacted lake {on_compacted:.2f} s: {on_compacted / on_file:.2f}x "
          "the loaded file")  # fmt: skip


if __name__ == "__main__":
    main()
