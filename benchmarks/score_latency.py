"""CI gate latency: the whole `releaserisk score HEAD~1..HEAD` process vs importing the stack.

Run:  python benchmarks/score_latency.py REPO [--runs 5] [--estimator logistic|boosting|ensemble]

Ingests a clone of REPO once (50k+ commits recommended), trains a model on the stored
change metrics (labels drawn at random with a fixed seed: this measures latency, not
accuracy), then for each run adds one real commit and times the full CLI process:
incremental ingest of that commit, model load and scoring. The baseline is a bare
`python -c "import duckdb, numpy, pandas, sklearn"` — the stack scoring cannot avoid.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from releaserisk.features import KAMEI_FEATURES
from releaserisk.ingest.git import ingest_git
from releaserisk.model import RiskModel, save_model
from releaserisk.store import open_store


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--estimator", default="logistic", choices=["logistic", "boosting", "ensemble"])
    args = parser.parse_args()
    env = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", "--local", args.repo, str(clone)], check=True)
        db = Path(tmp) / "store.duckdb"
        started = time.perf_counter()
        with open_store(db) as store:
            result = ingest_git(store, clone, name="bench", workers=2)
            features = store.query("SELECT * FROM change_features ORDER BY sha")
        print(f"ingested {result.total_commits:,} commits in {time.perf_counter() - started:.1f} s")
        rng = np.random.default_rng(0)
        labels = (rng.random(len(features)) < 0.2).astype(int)
        model = RiskModel(estimator=args.estimator).fit(features[list(KAMEI_FEATURES)], labels)
        model_path = save_model(model, Path(tmp) / "model.skops", {"model_id": "bench"})

        baseline = [timed([sys.executable, "-c", "import duckdb, numpy, pandas, sklearn"], env)
                    for _ in range(args.runs)]  # fmt: skip
        ours = []
        target = next(p for p in sorted(clone.iterdir()) if p.is_file() and p.suffix in (".c", ".py", ".md", ".txt"))
        for i in range(args.runs):
            with target.open("a") as fh:
                fh.write(f"\n/* benchmark line {i} */\n")
            subprocess.run(["git", "-C", str(clone), "commit", "-q", "-am", f"bench change {i}"], check=True, env=env)
            command = [sys.executable, "-m", "releaserisk.cli", "--db", str(db), "score", "HEAD~1..HEAD",
                       "--repo", str(clone), "--name", "bench", "--model", str(model_path),
                       "--format", "json"]  # fmt: skip
            ours.append(timed(command, env))
        b, o = statistics.median(baseline), statistics.median(ours)
        print(f"baseline `python -c 'import duckdb, numpy, pandas, sklearn'`: median {b:.2f} s over {args.runs} runs")
        print(f"releaserisk score HEAD~1..HEAD (ingest 1 new commit + model + scoring): median {o:.2f} s")
        print(f"ratio: {o / b:.2f}x the import of the stack")


if __name__ == "__main__":
    main()
