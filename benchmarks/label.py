"""SZZ labelling: our blame per fix vs PyDriller's SZZ on the same fixes, time and agreement.

Run:  python benchmarks/label.py REPO [--fixes 200]

Measured in the same run, on the same history:

* ours, whole — `label_changes` on a fresh store (2 workers): every fix the message
  pattern finds, blamed and saved, plus revert labels;
* ours, per fix — the blame step alone (`_szz_for_fix`: one `git diff` of the fix, one
  `git blame -L` per file on the changed lines) over the first N fixes, one at a time;
* baseline — PyDriller's SZZ (`Git.get_commits_last_modified_lines`, optional `bench`
  extra) on the same N fixes, one at a time.

Agreement is the Jaccard index of the two sets of blamed commits per fix. They are not
meant to be equal: releaserisk diffs with ``-w`` (AG-SZZ: a whitespace-only change
blames nothing; PyDriller blames it) and skips comment lines by file type (PyDriller
by a line's first characters, which also skips Python docstrings).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _clone import owned_clone

from releaserisk.ingest.git import ingest_git
from releaserisk.labels import _szz_for_fix, label_changes
from releaserisk.store import open_store


def pydriller_szz(repo: str, fixes: list[str]) -> tuple[float, list[set[str]]] | None:
    try:
        from pydriller import Git
    except ImportError:
        return None
    with owned_clone(repo) as clone:
        git = Git(clone)
        started = time.perf_counter()
        blamed = [set().union(*git.get_commits_last_modified_lines(git.get_commit(fix)).values()) for fix in fixes]
        seconds = time.perf_counter() - started
        git.clear()
        return seconds, blamed


def jaccard(a: set[str], b: set[str]) -> float:
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--fixes", type=int, default=200, help="fixes blamed by both (default 200)")
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "bench.duckdb") as store:
        ingest_git(store, repo, name="bench")
        started = time.perf_counter()
        result = label_changes(store, "bench", workers=2)
        whole = time.perf_counter() - started
        fixes = store.query(
            "SELECT l.fix_sha FROM labels l JOIN commits c ON c.repo = l.repo AND c.sha = l.fix_sha "
            "WHERE l.method = 'szz_fix' ORDER BY c.seq LIMIT ?",
            [args.fixes],
        )["fix_sha"].tolist()
    print(f"repository {repo}: {result.fixes:,} fixes, {result.buggy_szz:,} bug-introducing commits by SZZ")
    print(
        f"releaserisk label, whole history (2 workers): {whole:.1f} s ({whole / max(result.fixes, 1) * 1e3:.0f} ms/fix)"
    )

    started = time.perf_counter()
    ours = [_szz_for_fix(repo, fix) for fix in fixes]
    our_seconds = time.perf_counter() - started
    print(f"first {len(fixes)} fixes, one at a time: releaserisk {our_seconds:.1f} s "
          f"({our_seconds / len(fixes) * 1e3:.0f} ms/fix)")  # fmt: skip
    baseline = pydriller_szz(repo, fixes)
    if baseline is None:
        print("PyDriller not installed (pip install -e '.[bench]'): ratio skipped")
        return
    pd_seconds, theirs = baseline
    agreement = [jaccard(a, b) for a, b in zip(ours, theirs, strict=True)]
    print(f"PyDriller SZZ on the same fixes: {pd_seconds:.1f} s ({pd_seconds / len(fixes) * 1e3:.0f} ms/fix) "
          f"-> releaserisk is {pd_seconds / our_seconds:.1f}x faster")  # fmt: skip
    print(f"agreement: mean Jaccard {sum(agreement) / len(agreement):.2f}, identical sets for "
          f"{sum(a == 1.0 for a in agreement)} of {len(agreement)} fixes; blamed commits "
          f"{sum(map(len, ours)):,} (releaserisk) vs {sum(map(len, theirs)):,} (PyDriller)")  # fmt: skip


if __name__ == "__main__":
    main()
