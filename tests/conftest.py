"""Shared fixtures: temp stores, real git repositories built with git itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests are deterministic (the same examples every run) and have no per-example
# deadline: on two shared cores a slow example is load, not a bug (two flaked that way).
settings.register_profile("releaserisk", derandomize=True, deadline=None)
settings.load_profile("releaserisk")

# The suite runs as two xdist workers on two cores: OpenMP (gradient boosting) and
# BLAS threads on top of that oversubscribe the machine and made some fits 10x slower.
# Set before scikit-learn or numpy start their thread pools; subprocesses inherit it.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_data(relative: str) -> Path:
    """Path of a file in ../shared/data, or skip the test with the reason."""
    path = SHARED / "data" / relative
    if not path.exists():
        pytest.skip(f"shared dataset {relative} not available (../shared is absent)")
    return path


@pytest.fixture
def store(tmp_path):
    from releaserisk.store import open_store

    with open_store(tmp_path / "rr.duckdb") as st:
        yield st


class GitRepo:
    """A real git repository in a temp dir, driven through the git binary."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.clock = 1_600_000_000
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {
            **os.environ,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_SYSTEM": os.devnull,
            **(env or {}),
        }
        out = subprocess.run(
            ["git", "-c", "core.quotepath=on", *args],
            cwd=self.path,
            env=full_env,
            check=True,
            capture_output=True,
        )
        return out.stdout.decode("utf-8", "surrogateescape")

    def write(self, relpath: str, content: str | bytes) -> None:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")

    def mv(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def commit(
        self,
        message: str,
        *,
        author: str = "Alice",
        email: str = "alice@example.com",
        when: int | None = None,
        advance: int = 86_400,
    ) -> str:
        if when is None:
            self.clock += advance
            when = self.clock
        stamp = f"{when} +0000"
        env = {
            "GIT_AUTHOR_NAME": author,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": author,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
        }
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-verify", "-m", message, env=env)
        return self.git("rev-parse", "HEAD").strip()

    def merge(self, branch: str, message: str, **kw) -> str:
        self.clock += 86_400
        stamp = f"{self.clock} +0000"
        env = {
            "GIT_AUTHOR_NAME": kw.get("author", "Alice"),
            "GIT_AUTHOR_EMAIL": kw.get("email", "alice@example.com"),
            "GIT_COMMITTER_NAME": "Alice",
            "GIT_COMMITTER_EMAIL": "alice@example.com",
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
        }
        self.git("merge", "-q", "--no-ff", "--no-edit", "-m", message, branch, env=env)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def git_repo(tmp_path):
    return GitRepo(tmp_path / "repo")


@pytest.fixture(scope="session")
def simulated(tmp_path_factory):
    """A small simulated organisation, ingested, labelled, with a trained model (built once)."""
    from releaserisk.config import Settings
    from releaserisk.ingest.git import ingest_git
    from releaserisk.ingest.tabular import ingest_file
    from releaserisk.labels import label_changes, training_frame
    from releaserisk.model import RiskModel, save_model
    from releaserisk.simulation import simulate
    from releaserisk.store import open_store

    base = tmp_path_factory.mktemp("sim")
    result = simulate(base / "org", seed=3, weeks=16, services=3)
    settings = Settings(label_horizon_days=14)
    db = base / "org.duckdb"
    with open_store(db) as store:
        ingest_git(store, result.repo, name="demo")
        for kind in ("services", "deployments", "incidents"):
            ingest_file(store, kind, result.files[kind])
        label_changes(store, "demo", settings=settings)
        frame = training_frame(store, settings=settings)
        model = RiskModel(estimator="logistic").fit(frame, frame["bug"])
        model_path = save_model(model, base / "risk.skops", {"model_id": "test-model"})
        _store_scores_and_samples(store, model, result)
    return {"sim": result, "db": db, "model": model_path, "settings": settings, "base": base}


def _store_scores_and_samples(store, model, result):
    """Risk scores for every commit and the canary samples, as the demo stores them."""
    from releaserisk.canary.data import load_samples, store_samples
    from releaserisk.gate import score_commits

    features = store.query(
        "SELECT f.*, split_part(c.message, chr(10), 1) AS subject "
        "FROM change_features f JOIN commits c USING (repo, sha)"
    )
    scored = score_commits(model, features, threshold=0.5, model_id="test-model")
    store.upsert("risk_scores", scored.score_rows("demo"))
    store_samples(store, load_samples(result.files["metrics"]))
