"""Git ingestion speed: our full ingest vs the bare `git log` command, and vs PyDriller.

Run:  python benchmarks/ingest_git.py REPO [--pydriller-commits 3000]

Measured in the same run, on the same history:

* baseline 1 — the bare `git log` command our ingest runs (same flags), its output read
  and discarded by a pipe reader;
* ours — `ingest_git` into a fresh DuckDB file: parsing, all 14 change metrics, Arrow
  batches and the DuckDB load, in one transaction;
* baseline 2 — PyDriller (optional `bench` extra) reading added/deleted lines of every
  modified file of the first N commits, vs our ingest of exactly those N commits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _clone import owned_clone

from releaserisk.gitcmd import git_env
from releaserisk.ingest.git import _LOG_ARGS, git, ingest_git
from releaserisk.store import open_store


def bare_git_log(repo: str, rev: str) -> tuple[float, int]:
    args = ["git", "-C", repo, *_LOG_ARGS, rev]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=git_env())
    size = 0
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
    proc.wait()
    return time.perf_counter() - started, size


def ours(repo: str, rev: str, workers: int = 1) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with open_store(Path(tmp) / "bench.duckdb") as store:
            result = ingest_git(store, repo, name="bench", rev=rev, workers=workers)
        return time.perf_counter() - started, result.new_commits


def pydriller(repo: str, rev: str) -> float | None:
    try:
        from pydriller import Repository
    except ImportError:
        return None
    with owned_clone(repo) as clone:
        started = time.perf_counter()
        for commit in Repository(clone, to_commit=rev, order="reverse").traverse_commits():
            for modified in commit.modified_files:
                _ = (modified.added_lines, modified.deleted_lines)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--pydriller-commits", type=int, default=3000)
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    commits = int(git(repo, "rev-list", "--count", args.rev))
    non_merge = int(git(repo, "rev-list", "--count", "--no-merges", args.rev))
    print(f"repository {repo}: {commits:,} commits ({non_merge:,} non-merge) at {args.rev}")

    log_seconds, size = bare_git_log(repo, args.rev)
    print(f"bare git log (same flags, {size / 1e6:,.0f} MB): {log_seconds:.2f} s")
    for workers in (1, 2):
        our_seconds, ingested = ours(repo, args.rev, workers)
        label = "single stream" if workers == 1 else "two git workers"
        print(f"releaserisk ingest, {label} (metrics + DuckDB load): {our_seconds:.2f} s for {ingested:,} commits "
              f"({ingested / our_seconds:,.0f} commits/s) -> {our_seconds / log_seconds:.2f}x the git log")  # fmt: skip

    n = min(args.pydriller_commits, commits)
    first_n = git(repo, "rev-list", "--reverse", "--topo-order", args.rev).split()[n - 1]
    pd_seconds = pydriller(repo, first_n)
    if pd_seconds is None:
        print("PyDriller not installed (pip install -e '.[bench]'): ratio skipped")
        return
    our_n, _ = ours(repo, first_n)
    print(f"first {n:,} commits: PyDriller {pd_seconds:.2f} s ({n / pd_seconds:,.0f} commits/s), "
          f"releaserisk {our_n:.2f} s -> {pd_seconds / our_n:.1f}x faster than PyDriller")  # fmt: skip


if __name__ == "__main__":
    main()
