"""Deployment → commit links: our walk over the stored commit graph vs `git rev-list` itself.

Run:  python benchmarks/links.py REPO [--services 4] [--every 5]

Builds deployments on a real history: each of ``--services`` services deploys to staging
and production every ``--every``-th first-parent commit (production one step behind, so
its chains differ from staging's), all successful. Then, in the same run:

* ours — `link_deployment_changes` on the store: every chain, every link, one
  transaction (what each `ingest deployments` and a deploy-first `ingest git` run);
* baseline — ``git rev-list prev..this`` run by git for the same chain links, one
  process per deployment (what a tool shelling out to git does).

The two link sets must be equal: the benchmark checks it before printing the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

from releaserisk.ingest.git import ingest_git
from releaserisk.ingest.links import link_deployment_changes
from releaserisk.store import open_store


def deployments(repo: str, services: int, every: int) -> pd.DataFrame:
    """Staging and production deployments of each service along the first-parent history."""
    spine = subprocess.run(["git", "-C", repo, "rev-list", "--first-parent", "--reverse", "HEAD"],
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    rows = []
    for s in range(services):
        stops = spine[s::every]  # each service deploys its own commits
        for i, sha in enumerate(stops):
            at = pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(hours=i * 24 + s)
            rows.append((f"svc{s}-stg-{i}", f"svc{s}", "staging", sha, at))
            if i:  # production ships what staging had one step earlier
                rows.append((f"svc{s}-prod-{i}", f"svc{s}", "production", stops[i - 1], at + pd.Timedelta(hours=12)))
    frame = pd.DataFrame(rows, columns=["deployment_id", "service", "environment", "sha", "finished_at"])
    return frame.assign(repo="bench", status="success", kind="regular", started_at=frame["finished_at"])


def git_links(repo: str, frame: pd.DataFrame) -> tuple[float, set[tuple[str, str]]]:
    """`git rev-list prev..this` for every deployment after the first of its chain."""
    ordered = frame.sort_values(["service", "environment", "finished_at", "deployment_id"])
    links: set[tuple[str, str]] = set()
    started = time.perf_counter()
    for _, chain in ordered.groupby(["service", "environment"]):
        previous = None
        for deployment, sha in zip(chain["deployment_id"], chain["sha"], strict=True):
            if previous is not None:
                out = subprocess.run(["git", "-C", repo, "rev-list", f"{previous}..{sha}"],
                                     capture_output=True, text=True, check=True).stdout  # fmt: skip
                links.update((deployment, commit) for commit in out.split())
            previous = sha
    return time.perf_counter() - started, links


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--services", type=int, default=4)
    parser.add_argument("--every", type=int, default=5, help="deploy every N-th first-parent commit (default 5)")
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    frame = deployments(repo, args.services, args.every)
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "bench.duckdb") as store:
        ingest_git(store, repo, name="bench")
        store.upsert("deployments", frame)
        started = time.perf_counter()
        count = link_deployment_changes(store)
        ours = time.perf_counter() - started
        found = set(store.query("SELECT deployment_id, sha FROM deployment_changes").itertuples(index=False, name=None))
    theirs, expected = git_links(repo, frame)
    print(f"{len(frame):,} deployments ({args.services} services x staging, production) on {repo}")
    print(f"baseline: git rev-list per deployment: {theirs:.2f} s, {len(expected):,} links")
    print(f"releaserisk link_deployment_changes: {ours:.2f} s, {count:,} links")
    if found != expected:
        missing, extra = len(expected - found), len(found - expected)
        raise SystemExit(f"link sets differ: {missing:,} missing, {extra:,} extra")
    print(f"same links; ratio {ours / theirs:.3f}x the git baseline ({theirs / ours:.1f}x faster)")


if __name__ == "__main__":
    main()
