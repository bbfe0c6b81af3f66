"""Label quality before and after the fix rules of issue 18, on real repositories.

For each repository: ingest its history into a temporary store, then label it twice —

* **keyword** (the baseline, the rules before issue 18): every commit whose message
  matches ``fix_pattern`` is a bug fix and SZZ blames every file it touched;
* **rules** (today's defaults): message rules, bot authors and file rules exclude
  non-fixes (``fix_exclude_pattern``, ``bot_authors``, ``szz_paths``), SZZ blames source
  files only —

and print the label-quality summary of both: fixes counted and excluded by category,
buggy share of the labelled changes (Wilson 95 % interval), failed blames. Where the store
holds bug-labelled issues or pull requests (``--issues FILE``), also the agreement of
the counted fixes with the issue-linked ones (recall of issue-linked fixes among the
keyword fixes, and the share of keyword fixes that the tracker confirms).

Usage::

    python benchmarks/label_quality.py PATH[=NAME] [PATH[=NAME] ...] [--workers 2] [--issues FILE]

A bare mirror works (``git blame`` needs no work tree). Timings are on a shared machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from releaserisk.config import Settings
from releaserisk.ingest.git import ingest_git
from releaserisk.labels import label_changes
from releaserisk.store import open_store

#: The rules before issue 18: no exclusions, every touched file blamed.
KEYWORD_ONLY = Settings(fix_exclude_pattern="", bot_authors="", szz_paths=("**",))


def _agreement(store, repo: str) -> str:
    """Agreement of keyword fixes with the issue-linked ones, when the store has a tracker."""
    linked = store.query("SELECT sha FROM label_fixes WHERE repo = ? AND rule <> 'keyword'", [repo])["sha"]
    if linked.empty:
        return "n/a (no bug-labelled issues or PRs)"
    counted = store.query("SELECT sha FROM label_fixes WHERE repo = ? AND excluded IS NULL", [repo])["sha"]
    return f"{len(set(linked) & set(counted))}/{len(linked)} issue-linked fixes counted"


def run(path: str, name: str, workers: int, issues: str | None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "bench.duckdb") as store:
        ingest = ingest_git(store, path, name=name)
        if issues:
            from releaserisk.ingest.tabular import ingest_file

            ingest_file(store, "issues", issues)
        for rules, settings in (("keyword", KEYWORD_ONLY), ("rules", Settings())):
            started = time.perf_counter()
            result = label_changes(store, name, settings=settings, workers=workers)
            seconds = time.perf_counter() - started
            q = result.quality
            excluded = sorted(q.excluded_by_category.items(), key=lambda kv: -kv[1])
            rows.append(
                {
                    "repo": name,
                    "commits": ingest.total_commits,
                    "rules": rules,
                    "fixes": result.fixes,
                    "excluded": sum(v for k, v in excluded if k != "reverted_revert"),
                    "top_excluded": ", ".join(f"{k} {v}" for k, v in excluded[:5]) or "-",
                    "labelled": q.labelled_changes,
                    "buggy": q.buggy_changes,
                    "buggy_share": q.buggy_share,
                    "ci": (q.buggy_share_low, q.buggy_share_high),
                    "failed": f"{q.failed_blames}/{q.blames}",
                    "agreement": _agreement(store, name),
                    "seconds": seconds,
                    "warnings": q.warnings,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repos", nargs="+", help="PATH or PATH=NAME")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--issues", help="an issues CSV/JSON to ingest first (agreement with issue-linked fixes)")
    args = parser.parse_args()
    rows = []
    for spec in args.repos:
        path, _, name = spec.partition("=")
        rows += run(path, name or Path(path).resolve().name, args.workers, args.issues)
    header = f"{'repo':<12} {'commits':>7} {'rules':<8} {'fixes':>5} {'excl.':>5} {'labelled':>8} "
    header += f"{'buggy share (95% CI)':<22} {'failed':>7} {'secs':>6}  excluded by category"
    print(header)
    for r in rows:
        share = f"{r['buggy_share']:.1%} ({r['ci'][0]:.1%}-{r['ci'][1]:.1%})" if r["buggy_share"] is not None else "-"
        print(
            f"{r['repo']:<12} {r['commits']:>7,} {r['rules']:<8} {r['fixes']:>5} {r['excluded']:>5} "
            f"{r['labelled']:>8,} {share:<22} {r['failed']:>7} {r['seconds']:>6.1f}  {r['top_excluded']}"
        )
    print()
    for r in rows:
        if r["rules"] == "rules":
            print(f"{r['repo']}: agreement {r['agreement']}")
            for warning in r["warnings"]:
                print(f"  warning: {warning}")


if __name__ == "__main__":
    main()
