"""The main job end to end on simulated data: simulate → ingest → label → train → score → canary → report.

:func:`run_demo` is what ``make demo`` and ``releaserisk demo`` run. It writes the
simulated organisation, a fresh store and the model under ``data`` and the weekly
report under ``out``; every step goes through the same library calls a user's own
commands make, so the demo store can be explored with the CLI and the notebooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releaserisk.config import Settings
from releaserisk.gate import default_model_path

__all__ = ["DEMO_LABEL_HORIZON_DAYS", "DemoResult", "run_demo"]

#: Simulated history spans months, not years: the demo labels commits older than two weeks.
DEMO_LABEL_HORIZON_DAYS = 14
_REPO = "demo"
_MODEL_ID = "demo"


@dataclass
class DemoResult:
    """What the demo did: one entry per step, and where its outputs are.

    Attributes
    ----------
    steps : list of dict
        ``step`` (name), ``seconds`` (wall time) and ``detail`` (one line of text), in order.
    db : Path
        The demo store.
    report : str
        The weekly report's HTML file.
    seconds : float
        Total wall time.
    """

    steps: list[dict[str, Any]] = field(default_factory=list)
    db: Path | None = None
    report: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form.

        Returns
        -------
        dict
            ``steps``, ``seconds``, ``db`` and ``report``.
        """
        return {"steps": self.steps, "seconds": round(self.seconds, 2), "db": str(self.db), "report": self.report}


def run_demo(
    data: str | Path,
    out: str | Path,
    *,
    scenario: str = "healthy",
    seed: int = 7,
    weeks: int = 52,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> DemoResult:
    """Run the whole pipeline on a simulated organisation.

    Parameters
    ----------
    data : str or Path
        Directory for the simulated organisation (``org/``), the store
        (``releaserisk.duckdb``, recreated), its settings (``releaserisk.toml``) and the model
        (``models/demo.skops``).
    out : str or Path
        Directory of the weekly report.
    scenario : str
        A scenario of :data:`releaserisk.choices.SCENARIO_NAMES`.
    seed : int
        Simulator seed.
    weeks : int
        History length in weeks.
    on_step : callable, optional
        Called with each step's entry (see :class:`DemoResult`) as soon as it finishes.

    Returns
    -------
    DemoResult
        The steps and output paths.

    Raises
    ------
    InputError
        Unknown scenario or bad sizes (from the simulator).
    """
    started_all = time.perf_counter()
    base = Path(data)
    db = base / "releaserisk.duckdb"
    base.mkdir(parents=True, exist_ok=True)
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)
    run = _DemoRun(base, Path(out), db, _write_settings(base, db))
    result = DemoResult(db=db)
    steps = (
        ("simulate", lambda: run.simulate(scenario, seed, weeks)),
        ("ingest", run.ingest),
        ("label", run.label),
        ("train", run.train),
        ("score", run.score),
        ("canary", run.canary),
        ("report", run.report),
    )
    for name, action in steps:
        started = time.perf_counter()
        detail = action()
        entry = {"step": name, "seconds": round(time.perf_counter() - started, 2), "detail": detail}
        result.steps.append(entry)
        if on_step is not None:
            on_step(entry)
    result.report = run.report_path
    result.seconds = time.perf_counter() - started_all
    return result


def _write_settings(base: Path, db: Path) -> Settings:
    """The demo's settings, written as ``releaserisk.toml`` next to its store and read back.

    Commands given ``--db`` on the demo store read that file (:func:`releaserisk.config.load_settings`),
    so ``releaserisk --db data/demo/releaserisk.duckdb train`` trains the demo's model.
    """
    from releaserisk.config import load_settings

    path = base / "releaserisk.toml"
    path.write_text(
        "# Written by `releaserisk demo`; commands run with --db on this store read it.\n"
        "# Simulated history spans months, not years: label commits older than two weeks.\n"
        f"label_horizon_days = {DEMO_LABEL_HORIZON_DAYS}\n",
        encoding="utf-8",
    )
    return load_settings(path, overrides={"db": str(db)})


class _DemoRun:
    """The demo's steps, sharing the simulation and the store between them."""

    def __init__(self, base: Path, out: Path, db: Path, settings: Settings) -> None:
        self.base, self.out, self.db, self.settings = base, out, db, settings
        self.model_path = default_model_path(db, _REPO)  # where `train` and `score` put and find it
        self.sim = None
        self.report_path = ""

    def simulate(self, scenario: str, seed: int, weeks: int) -> str:
        from releaserisk.simulation import simulate

        # remedies: feature flags (flag-caused incidents, kill switches, a stale flag) and a destructive migration
        self.sim = sim = simulate(self.base / "org", scenario=scenario, seed=seed, weeks=weeks, remedies=True)
        return f"{scenario}: {sim.commits:,} commits, {sim.deployments:,} deployments, {sim.incidents} incidents"

    def ingest(self) -> str:
        from releaserisk.canary.data import load_samples, store_samples
        from releaserisk.ingest.flags import ingest_flags
        from releaserisk.ingest.git import ingest_git
        from releaserisk.ingest.tabular import ingest_file
        from releaserisk.store import open_store

        sim = self.sim
        with open_store(self.db) as store:
            git_result = ingest_git(store, sim.repo, name=_REPO, settings=self.settings)
            for kind in ("services", "deployments", "incidents"):
                ingest_file(store, kind, sim.files[kind])
            flags = ingest_flags(store, sim.files["flags"], "csv", settings=self.settings)
            samples = store_samples(store, load_samples(sim.files["metrics"]))
            links = store.counts()["deployment_changes"]
        return (f"{git_result.new_commits:,} commits, {links:,} deployment links, {flags.loaded} flag changes, "
                f"{samples:,} canary samples")  # fmt: skip

    def label(self) -> str:
        from releaserisk.labels import label_changes
        from releaserisk.store import open_store

        with open_store(self.db) as store:
            result = label_changes(store, _REPO, settings=self.settings)
        return f"{result.buggy_szz} bug-introducing changes found by SZZ from {result.fixes} fixes"

    def train(self) -> str:
        from releaserisk.store import open_store
        from releaserisk.training import train_change_model

        # the same procedure as the README's `releaserisk --db DATA/releaserisk.duckdb train`
        with open_store(self.db) as store:
            trained = train_change_model(store, self.settings, out=self.model_path, model_id=_MODEL_ID)
        evaluation = trained.evaluation
        # the saved model is refit on all rows: the AUC is the procedure's, on the newest 20 %
        return (
            f"{trained.model.selected_} on all {trained.n_changes:,} changes; the procedure's test AUC "
            f"{evaluation['auc']:.3f} on the newest 20 % (size alone {evaluation['size_auc']:.3f}), "
            f"ECE {evaluation['ece']:.3f}"
        )

    def score(self) -> str:
        from releaserisk.features import change_features_of, latest_production_deployment
        from releaserisk.gate import batch_sentence, deployment_history, score_commits
        from releaserisk.model import load_model
        from releaserisk.store import open_store

        model, _ = load_model(self.model_path)
        threshold = self.settings.risk_threshold
        with open_store(self.db) as store:
            features = change_features_of(store)
            result = score_commits(model, features, threshold=threshold, model_id=_MODEL_ID)
            store.upsert("risk_scores", result.score_rows(_REPO))
            latest = latest_production_deployment(store, self.settings.production_environments, with_changes=True)
        if latest is None:
            return f"scored {len(result.commits):,} changes"
        shipped = features[features["sha"].isin(latest["shas"])]
        with open_store(self.db, read_only=True) as store:
            history = deployment_history(store, model, _REPO, settings=self.settings)
        batch = score_commits(model, shipped, threshold=threshold, model_id=_MODEL_ID, history=history)
        return (
            f"scored {len(result.commits):,} changes; latest deployment {latest['deployment_id']}: "
            f"{batch_sentence(batch.batch)}; rollout {batch.advice['strategy']} "
            f"{'/'.join(map(str, batch.advice['steps_percent']))}%"
        )

    def canary(self) -> str:
        from releaserisk.canary.data import analysis_samples
        from releaserisk.canary.judge import judge
        from releaserisk.canary.sequential import sequential_judge
        from releaserisk.store import open_store

        with open_store(self.db, read_only=True) as store:
            samples = analysis_samples(store)
        fixed = judge(samples)
        sequential = sequential_judge(samples)
        return f"latest canary: judge {fixed.verdict} (score {fixed.score}), sequential {sequential.decision}"

    def report(self) -> str:
        from releaserisk.report import render_weekly

        paths = render_weekly(self.db, out_dir=self.out)  # the latest week with production deployments
        self.report_path = str(paths["html"])
        return self.report_path
