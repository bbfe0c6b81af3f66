"""The ``releaserisk`` command.

Conventions (DESIGN.md section 7): ``--db`` defaults to ``./releaserisk.duckdb``
(or ``RELEASERISK_DB`` / the config file); ``--format text|json``; JSON goes to
stdout and diagnostics to stderr. Exit codes: 0 pass, 1 gate failed, 2 usage or
input error, 3 inconclusive, 70 internal error (a bug). User mistakes print one
``error: ...`` line; ``--debug`` shows the traceback. Heavy modules are imported
inside the handlers so that ``releaserisk --help`` and CI gates start fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from releaserisk import __version__
from releaserisk.errors import ReleaseRiskError

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
#: A bug in releaserisk (sysexits' EX_SOFTWARE): never 1, which a CI gate reads as "too risky".
EXIT_INTERNAL = 70
# The simulator's scenarios, named here so that --help does not import the simulator (a test checks they agree).
SCENARIO_NAMES = ("healthy", "quarterly-batches", "daily-fragile", "broken-rollbacks", "hotfix-chaos", "slow-promotion")


# -- presentation helpers ---------------------------------------------------------------
def _counted(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 row", "2,070 rows", "2 fixes": a count with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as JSON or ``text`` depending on ``--format``."""
    if getattr(args, "format", "text") == "json":
        # NaN is not JSON (jq and most parsers refuse it): a missing number is null
        sys.stdout.write(json.dumps(_without_nan(payload), indent=2, default=str, allow_nan=False) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _without_nan(value: Any) -> Any:
    """``value`` with every NaN or infinite float, however deeply nested, as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value


def _settings(args: argparse.Namespace):
    """Settings of this invocation (file, environment, flags), read once."""
    if getattr(args, "_settings", None) is None:
        from releaserisk.config import load_settings

        args._settings = load_settings(args.config, overrides={"db": args.db})
    return args._settings


def _open(args: argparse.Namespace, read_only: bool = False):
    from releaserisk.store import open_store

    return open_store(_settings(args).db, read_only=read_only)


def _table_listing(counts: dict[str, int]) -> str:
    width = max(map(len, counts), default=0)
    return "\n".join(f"  {name:<{width}}  {rows:>10,}" for name, rows in counts.items())


# -- handlers ---------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    with _open(args) as store:
        counts = store.counts()
        payload = {"db": str(store.path), "schema_version": store.schema_version, "tables": counts}
        _emit(args, payload, f"store {store.path} (schema {store.schema_version})\n{_table_listing(counts)}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as store:
        counts = store.counts()
        runs = store.query(
            "SELECT source, status, finished_at, counts FROM ingest_runs ORDER BY finished_at DESC LIMIT 5"
        )
        payload = {
            "db": str(store.path),
            "schema_version": store.schema_version,
            "tables": counts,
            "recent_ingests": runs.to_dict(orient="records"),
        }
        lines = [f"store {store.path} (schema {store.schema_version})", _table_listing(counts)]
        if len(runs):
            lines.append("recent ingests:")
            lines += [f"  {r.source}  {r.status}  {r.finished_at}" for r in runs.itertuples()]
        _emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as store:
        written = store.export_parquet(args.directory)
    text = f"exported {_counted(len(written), 'table')} to {args.directory}\n{_table_listing(written)}"
    _emit(args, {"directory": args.directory, "tables": written}, text)
    return EXIT_OK


def cmd_ingest_parquet(args: argparse.Namespace) -> int:
    with _open(args) as store:
        loaded = store.import_parquet(args.directory)
    text = f"loaded {_counted(len(loaded), 'table')} from {args.directory}\n{_table_listing(loaded)}"
    _emit(args, {"directory": args.directory, "tables": loaded}, text)
    return EXIT_OK


def cmd_ingest_git(args: argparse.Namespace) -> int:
    from releaserisk.ingest.git import ingest_git

    show_progress = args.format == "text" and sys.stderr.isatty()
    started = time.perf_counter()
    with _open(args) as store:
        result = ingest_git(
            store,
            args.path,
            name=args.name,
            rev=args.rev,
            settings=_settings(args),
            progress=_progress_callback() if show_progress else None,
            workers=args.workers,
        )
        _hint_unknown_repositories(store)
    seconds = time.perf_counter() - started
    payload = {**result.to_dict(), "seconds": round(seconds, 3)}
    text = (
        f"ingested {result.repo}: {result.new_commits:,} new commits "
        f"({result.total_commits:,} stored), {result.file_changes:,} file changes in {seconds:.1f} s"
    )
    _emit(args, payload, text)
    return EXIT_OK


def _hint_unknown_repositories(store) -> None:
    """Say on stderr when deployments name repositories that have no ingested commits."""
    from releaserisk.dora import repository_hint

    hint = repository_hint(store)
    if hint:
        sys.stderr.write(f"hint: {hint}\n")


def _progress_callback() -> Callable[[int], None]:
    """A rich progress display on stderr: commits processed and their rate."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,} commits  {task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=True,
    )
    task = progress.add_task("ingest", total=None, rate="")
    started = time.perf_counter()
    progress.start()

    def update(done: int, finished: bool = False) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        progress.update(task, completed=done, rate=f"{rate:,.0f}/s")
        if finished:
            progress.stop()

    return update


def _github_output(markdown: str, annotations: list[tuple[str, str]]) -> None:
    """GitHub Actions: append markdown to the step summary, print annotations to stdout."""
    import os

    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n")
    else:
        sys.stdout.write(markdown.rstrip("\n") + "\n")
    for level, message in annotations:
        sys.stdout.write(f"::{level}::{_command_data(message)}\n")


def _command_data(text: str) -> str:
    """Escape a workflow command's message as GitHub's toolkit does (``escapeData``).

    A newline in a message (a metric name or reason from user data) would otherwise end
    the annotation and start a line the runner reads as a command of its own.
    """
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _load_canary_samples(args: argparse.Namespace):
    import pandas as pd

    from releaserisk.canary.data import load_samples
    from releaserisk.errors import InputError

    frames = [load_samples(path, arm_label=args.arm_label) for path in args.data or []]
    frames += [load_samples(path, arm="baseline", arm_label=args.arm_label) for path in args.baseline or []]
    frames += [load_samples(path, arm="canary", arm_label=args.arm_label) for path in args.canary or []]
    if not frames:
        raise InputError("give samples with --data FILE, or --baseline FILE and --canary FILE")
    return pd.concat(frames, ignore_index=True)


def cmd_canary(args: argparse.Namespace) -> int:
    from releaserisk.canary.config import CanaryConfig, load_canary_config
    from releaserisk.canary.data import one_analysis

    config = load_canary_config(args.canary_config) if args.canary_config else CanaryConfig()
    samples = one_analysis(_load_canary_samples(args), args.analysis)
    if args.mode == "sequential":
        from releaserisk.canary.sequential import sequential_judge

        result = sequential_judge(samples, config, looks=args.looks)
        outcome = result.decision
    else:
        from releaserisk.canary.judge import judge

        result = judge(samples, config)
        outcome = result.verdict
    if args.format == "github":
        level = {0: "notice", 1: "error"}.get(result.exit_code, "warning")
        _github_output(
            f"### releaserisk canary: {outcome}\n\n```\n{result.summary()}\n```\n",
            [(level, f"canary {outcome}: {result.reason}")],
        )
    else:
        _emit(args, result.to_dict(), result.summary())
    return result.exit_code


def cmd_ingest_metrics(args: argparse.Namespace) -> int:
    from releaserisk.canary.data import load_samples, store_samples

    samples = load_samples(args.file, arm=args.arm, arm_label=args.arm_label)
    with _open(args) as store:
        loaded = store_samples(store, samples, args.analysis)
    analyses = [args.analysis] if args.analysis else sorted(samples["analysis_id"].astype(str).unique())
    what = analyses[0] if len(analyses) == 1 else f"{len(analyses)} analyses"
    _emit(args, {"analysis_ids": analyses, "samples": loaded}, f"stored {loaded:,} samples of {what}")
    return EXIT_OK


def _repos(store, requested: list[str] | None) -> list[str]:
    from releaserisk.errors import InputError

    known = list(store.query("SELECT repo FROM repos ORDER BY repo")["repo"])
    if not known:
        raise InputError("the store has no repositories; run 'releaserisk ingest git PATH' first")
    unknown = sorted(set(requested or []) - set(known))
    if unknown:
        raise InputError(f"unknown repository {', '.join(unknown)} (stored: {', '.join(known)})")
    return requested or known


def cmd_label(args: argparse.Namespace) -> int:
    from releaserisk.labels import label_changes

    settings = _settings(args)
    results = []
    with _open(args) as store:
        for repo in _repos(store, args.repo):
            if not args.commit_graph and _blame_would_be_slow(store, repo):
                sys.stderr.write(f"hint: {repo} has a long history and no changed-path commit-graph; "
                                 "'releaserisk label --commit-graph' makes SZZ about 3x faster\n")  # fmt: skip
            progress = _fix_progress(repo) if args.format == "text" and sys.stderr.isatty() else None
            try:
                results.append(label_changes(store, repo, settings=settings, workers=args.workers, progress=progress,
                                             write_commit_graph=args.commit_graph))  # fmt: skip
            except KeyboardInterrupt:
                sys.stderr.write("error: interrupted; blamed fixes up to the last checkpoint are saved, "
                                 "'releaserisk label' continues from there\n")  # fmt: skip
                return 130
    lines = [
        f"{r.repo}: {_counted(r.fixes, 'fix', 'fixes')} ({r.fixes_blamed_now:,} blamed now"
        f"{f', {r.fixes_from_trackers:,} from bug issues or pull requests' if r.fixes_from_trackers else ''}), "
        f"{r.buggy_szz:,} bug-introducing by SZZ, "
        f"{r.buggy_revert:,} reverted"
        f"{f', {r.buggy_incident:,} named by incidents' if r.buggy_incident else ''}; "
        f"{_counted(r.unlabelled_recent, 'recent commit')} left unlabelled"
        for r in results
    ]
    _emit(args, {"repos": [r.to_dict() for r in results]}, "\n".join(lines))
    return EXIT_OK


#: Commits from which SZZ without a changed-path commit-graph is worth a hint (git.git, 82k: 31 min vs 10).
COMMIT_GRAPH_HINT_COMMITS = 20_000


def _blame_would_be_slow(store, repo: str) -> bool:
    """A long history whose repository has no commit-graph with changed-path Bloom filters."""
    from pathlib import Path

    from releaserisk.errors import GitError
    from releaserisk.ingest.git import git

    path, commits = store.execute(
        "SELECT any_value(r.path), count(c.sha) FROM repos r LEFT JOIN commits c USING (repo) WHERE r.repo = ?",
        [repo],
    ).fetchone()
    if commits < COMMIT_GRAPH_HINT_COMMITS:
        return False
    try:
        info = Path(path) / git(path, "rev-parse", "--git-path", "objects/info").strip()
    except GitError:
        return False
    graphs = [info / "commit-graph", *sorted((info / "commit-graphs").glob("*.graph"))]
    return not any(_has_bloom_filters(g) for g in graphs if g.is_file())


def _has_bloom_filters(graph) -> bool:
    # the chunk table follows the 8-byte header; "BIDX" is the changed-path Bloom filter index
    with graph.open("rb") as handle:
        return b"BIDX" in handle.read(8 + 12 * 16)


def _fix_progress(repo: str) -> Callable[[int, int], None]:
    """A rich progress bar on stderr for SZZ blames (fixes done of total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(f"SZZ {repo}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        transient=True)  # fmt: skip
    task = progress.add_task("blame", total=None)
    progress.start()

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)
        if done >= total:
            progress.stop()

    return update


def _store_training_frame(store, repos, settings):
    from releaserisk.errors import InputError
    from releaserisk.labels import training_frame

    frame = training_frame(store, repos, settings=settings)
    if frame.empty:
        raise InputError("no labelled changes older than the label horizon; ingest more history or run 'label'")
    return frame


def cmd_train(args: argparse.Namespace) -> int:
    import json as _json
    import uuid
    from datetime import UTC, datetime

    from releaserisk.model import RiskModel, evaluate_time_split, save_model

    settings = _settings(args)
    if args.level == "deployment":
        return _train_deployment(args, settings)
    with _open(args) as store:
        repos = _repos(store, args.repo)
        frame = _store_training_frame(store, repos, settings)
        evaluation = evaluate_time_split(frame, estimator=args.estimator) if len(frame) >= 200 else {}
        model = RiskModel(estimator=args.estimator).fit(frame, frame["bug"])
        model_id = uuid.uuid4().hex[:12]
        metadata = {
            "model_id": model_id,
            "level": "change",
            "repos": repos,
            "train_start": str(frame["time"].min()),
            "train_end": str(frame["time"].max()),
            "n_train": len(frame),
            "positive_rate": float(frame["bug"].mean()),
            "selected": model.selected_,
            "validation_auc": model.validation_auc_,
            "evaluation": evaluation,
        }
        path = save_model(model, args.out, metadata)
        versions = _json.loads(model.metadata_)["versions"]
        store.execute(
            "INSERT INTO models VALUES (?, ?, 'change', ?, ?, ?, ?, ?, ?)",
            [model_id, str(path), datetime.now(UTC), frame["time"].min(), frame["time"].max(),
             list(model.features), _json.dumps(evaluation), _json.dumps(versions)],
        )  # fmt: skip
    auc = f", time-ordered test AUC {evaluation['auc']:.3f}" if evaluation else ""
    if evaluation and evaluation["selected"] != model.selected_:
        # the evaluation repeats the whole procedure on the oldest 80 %, where selection may differ
        auc += f" (the procedure, which chose {evaluation['selected']} on the oldest 80 %)"
    _emit(
        args,
        {**metadata, "path": str(path)},
        f"trained {model.selected_} model {model_id} on {len(frame):,} changes{auc} -> {path}",
    )
    return EXIT_OK


def _train_deployment(args: argparse.Namespace, settings) -> int:

    from releaserisk.dora import dora_metrics
    from releaserisk.errors import InputError
    from releaserisk.features import deployment_batch_features
    from releaserisk.model import save_model, train_deployment_model

    order = list(settings.environment_order)
    with _open(args) as store:
        frame = deployment_batch_features(
            store, settings.production_environments, order[-2] if len(order) > 1 else None
        )
        if frame.empty:
            raise InputError("no production deployments in the store; ingest deployments first")
        failed = dora_metrics(
            store,
            frame["finished_at"].min(),
            frame["finished_at"].max() + __import__("datetime").timedelta(seconds=1),
            settings=settings,
        ).deployments[["deployment_id", "failed"]]
    frame = frame.merge(failed, on="deployment_id", how="left").fillna({"failed": False})
    model, report = train_deployment_model(frame, estimator=args.estimator)
    notes = "".join(f"\nnote: {note}" for note in report["notes"])
    if model is None:
        text = f"no deployment model: {report['fallback']}{notes}"
        _emit(args, {"level": "deployment", "model": None, **report}, text)
        return EXIT_OK
    out = args.out if args.out != "models/risk.skops" else "models/deployment-risk.skops"
    path = save_model(model, out, {"model_id": f"deployment-{len(frame)}", "level": "deployment", **report})
    auc = f", test AUC {report['test_auc']:.3f}" if "test_auc" in report else ""
    if "fallback_test_auc" in report:
        auc += f" (aggregated change risk {report['fallback_test_auc']:.3f})"
    text = f"trained deployment model ({report['selected']}) on {len(frame):,} deployments{auc} -> {path}{notes}"
    _emit(args, {"level": "deployment", "path": str(path), **report}, text)
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from releaserisk.model import (
        auc_by_age,
        dropped_rows_notes,
        evaluate_time_split,
        read_feature_table,
        rolling_origin,
    )

    if args.dataset:
        frame = read_feature_table(args.dataset)
        source = args.dataset
    else:
        with _open(args, read_only=True) as store:
            frame = _store_training_frame(store, _repos(store, args.repo), _settings(args))
        source = str(_settings(args).db)
    if args.rolling:
        table = rolling_origin(frame, estimator=args.estimator if args.estimator != "auto" else "logistic")
        by_age = auc_by_age(table).round(3)
        notes = dropped_rows_notes(frame)
        payload = {
            "source": source,
            "rolling": _records(table),
            "mean_auc_by_age": by_age.to_dict(),
            "notes": notes,
        }
        text = "\n".join(["mean AUC by model age (months):", by_age.to_string(), *(f"note: {n}" for n in notes)])
        _emit(args, payload, text)
        return EXIT_OK
    result = evaluate_time_split(frame, split=args.split, estimator=args.estimator)
    shown = {k: v for k, v in result.items() if k != "notes"}
    lines = [f"{k:>20}: {v:.4f}" if isinstance(v, float) else f"{k:>20}: {v}" for k, v in shown.items()]
    text = "\n".join([*lines, *(f"note: {note}" for note in result["notes"])])
    _emit(args, {"source": source, **result}, text)
    return EXIT_OK


def cmd_ingest_file(args: argparse.Namespace) -> int:
    from releaserisk.ingest.tabular import ingest_file

    with _open(args) as store:
        loaded = ingest_file(store, args.kind, args.file, assume_tz=args.assume_tz)
        links = store.execute("SELECT count(*) FROM deployment_changes").fetchone()[0]
        if args.kind in ("deployments", "services"):
            _hint_unknown_repositories(store)
    payload = {"kind": args.kind, "file": args.file, "rows": loaded, "deployment_changes": links}
    _emit(args, payload, f"loaded {_counted(loaded, args.kind + ' row')} from {args.file}")
    return EXIT_OK


def cmd_ingest_github(args: argparse.Namespace) -> int:
    import os
    from datetime import UTC, datetime

    from releaserisk.errors import InputError
    from releaserisk.ingest.github import ingest_github

    token = os.environ.get(args.token_env)  # read from the environment only: never a flag, never printed
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise InputError(f"--since must be an ISO date, got {args.since!r}") from None
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since

    def notify(message: str) -> None:
        sys.stderr.write(message + "\n")

    with _open(args) as store:
        result = ingest_github(
            store,
            args.repository,
            name=args.name,
            token=token,
            since=since,
            environments=args.environment,
            incident_labels=args.incident_label or ["incident"],
            bug_labels=_settings(args).bug_labels,
            deploy_workflows=args.deploy_workflow or [],
            release_environment=args.release_environment,
            base_url=args.base_url,
            wait=not args.no_wait,
            notify=notify,
        )
        _hint_unknown_repositories(store)
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    _emit(args, result.to_dict(), f"ingested {args.repository} from GitHub: {counts}")
    return EXIT_OK


def cmd_ingest_tags(args: argparse.Namespace) -> int:
    from releaserisk.ingest.git import ingest_git_tags

    with _open(args) as store:
        count = ingest_git_tags(
            store, args.path, pattern=args.pattern, service=args.service, environment=args.environment, name=args.name
        )
    _emit(
        args,
        {"deployments": count},
        f"recorded {_counted(count, 'tag')} as {args.environment} deployments of {args.service}",
    )
    if not count:
        wanted = f"'{args.pattern}'" if args.pattern else "a version (v1.2 or 1.2)"
        sys.stderr.write(f"hint: no tag in {args.path} matches {wanted}; choose the release tags with --pattern GLOB\n")
    return EXIT_OK


def cmd_dora(args: argparse.Namespace) -> int:
    from releaserisk.dora import dora_metrics

    with _open(args, read_only=True) as store:
        result = dora_metrics(
            store,
            args.since,
            args.until,
            freq="W" if args.freq == "week" else "M",
            by=args.by,
            profile=args.profile,
            benchmark=args.benchmark,
            settings=_settings(args),
        )
        frame = result.detail(args.detail) if args.detail else None  # read while the store is open
        if not store.execute("SELECT count(*) FROM deployments").fetchone()[0]:
            sys.stderr.write(
                "hint: the store has no deployments; load them with 'releaserisk ingest deployments FILE', "
                "'ingest github' or 'ingest git-tags'\n"
            )
    if frame is not None:
        if args.format == "csv":
            sys.stdout.write(frame.to_csv(index=False))
        else:
            start, end = (f"{t:%Y-%m-%d}" for t in result.window)
            text = (
                frame.to_string(index=False) if len(frame) else f"no {args.detail.replace('-', ' ')} in {start} → {end}"
            )
            _emit(args, {"detail": args.detail, "rows": _records(frame)}, text)
        return EXIT_OK
    if args.format == "csv":
        sys.stdout.write(result.summary.to_csv(index=False))
    else:
        _emit(args, result.to_dict(), result.summary_text())
    return EXIT_OK


def _records(frame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _range_commits(store, repo_path: str, repo: str, spec: str | None, settings) -> tuple[str, list[str]]:
    """The non-merge commits to score: REVRANGE, else since the last production deployment, else HEAD."""
    from releaserisk.errors import GitError, InputError
    from releaserisk.ingest.git import git

    if spec is None:
        row = store.execute(
            "SELECT d.sha FROM deployments d JOIN commits c ON c.repo = ? AND c.sha = d.sha "
            "WHERE d.status = 'success' AND list_contains(?, lower(d.environment)) ORDER BY d.finished_at DESC LIMIT 1",
            [repo, list(settings.production_environments)],
        ).fetchone()
        spec = f"{row[0]}..HEAD" if row else "HEAD^!"
    try:
        out = git(repo_path, "rev-list", "--no-merges", "--end-of-options", spec, "--")
    except GitError:
        raise InputError(f"unknown revision or range '{spec}' in {repo_path}") from None
    return spec, out.split()


def cmd_score(args: argparse.Namespace) -> int:
    from releaserisk.gate import load_rollout_policy, score_commits
    from releaserisk.ingest.git import ingest_git
    from releaserisk.scorecard import load_scorer
    from releaserisk.store import open_snapshot, open_store

    settings = _settings(args)
    policy = load_rollout_policy(args.policy) if args.policy else None
    model, metadata = load_scorer(args.model)  # fail fast, before touching git or the store
    threshold = args.threshold if args.threshold is not None else settings.risk_threshold
    store = open_snapshot(settings.db) if args.read_only else open_store(settings.db)
    with store:
        ingested = ingest_git(store, args.repo, name=args.name, settings=settings)
        spec, shas = _range_commits(store, args.repo, ingested.repo, args.range, settings)
        features = store.query(
            "SELECT f.*, split_part(c.message, chr(10), 1) AS subject, c.author, c.seq "
            "FROM change_features f JOIN commits c USING (repo, sha) "
            "WHERE f.repo = ? AND list_contains(?, f.sha) ORDER BY c.seq",
            [ingested.repo, shas],
        )
        result = score_commits(
            model,
            features,
            threshold=threshold,
            model_id=metadata.get("model_id", "unknown"),
            fail_on=args.fail_on,
            policy=policy,
        )
        result.notes.insert(0, f"range {spec}: {_counted(len(shas), 'non-merge commit')}")
        if not args.read_only and len(result.commits):
            store.upsert("risk_scores", result.score_rows(ingested.repo))
    if args.format == "github":
        annotations = [
            ("error" if r.band == "high" else "warning",
             f"{r.sha[:10]} risk {r.probability:.0%} ({r.band}): {'; '.join(r.reasons)}")
            for r in result.commits.itertuples() if r.band in ("high", "medium")
        ]  # fmt: skip
        _github_output(result.markdown(), annotations)
    else:
        _emit(args, result.to_dict(), result.summary())
    return result.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from releaserisk.report import render_weekly

    started = time.perf_counter()
    paths = render_weekly(_settings(args).db, args.week, out_dir=args.out, services=args.services, config=args.config)
    paths["seconds"] = round(time.perf_counter() - started, 2)
    _emit(args, paths, f"weekly report for {paths['week']}: {paths['html']} ({paths['seconds']:.1f} s)")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from releaserisk.simulate import simulate

    result = simulate(
        args.out, scenario=args.scenario, seed=args.seed, weeks=args.weeks, services=args.services, start=args.start
    )
    _emit(
        args,
        result.to_dict(),
        f"simulated {result.scenario}: {result.commits:,} commits ({result.bugs} bug-introducing), "
        f"{result.deployments:,} deployments, {result.incidents} incidents -> {result.out}",
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """simulate -> ingest -> label -> train -> score -> canary -> weekly report, each step timed."""
    from pathlib import Path

    total = time.perf_counter()
    steps: list[dict[str, Any]] = []

    def step(name: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        detail = action()
        seconds = time.perf_counter() - started
        steps.append({"step": name, "seconds": round(seconds, 2), "detail": detail})
        if args.format == "text":
            sys.stdout.write(f"[{seconds:6.1f} s] {name:<9} {detail}\n")
            sys.stdout.flush()

    base = Path(args.data)
    db = base / "releaserisk.duckdb"
    model_path = base / "models" / "risk.skops"
    state: dict[str, Any] = {}
    base.mkdir(parents=True, exist_ok=True)
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)

    from releaserisk.config import Settings

    # simulated history spans months, not years: label commits older than two weeks
    settings = Settings(db=str(db), label_horizon_days=14)

    def do_simulate() -> str:
        from releaserisk.simulate import simulate

        sim = simulate(base / "org", scenario=args.scenario, seed=args.seed, weeks=args.weeks)
        state["sim"] = sim
        return f"{args.scenario}: {sim.commits:,} commits, {sim.deployments:,} deployments, {sim.incidents} incidents"

    def do_ingest() -> str:
        from releaserisk.canary.data import load_samples, store_samples
        from releaserisk.ingest.git import ingest_git
        from releaserisk.ingest.tabular import ingest_file
        from releaserisk.store import open_store

        sim = state["sim"]
        with open_store(db) as store:
            git_result = ingest_git(store, sim.repo, name="demo", settings=settings)
            for kind in ("services", "deployments", "incidents"):
                ingest_file(store, kind, sim.files[kind])
            samples = store_samples(store, load_samples(sim.files["metrics"]))
            links = store.counts()["deployment_changes"]
        return f"{git_result.new_commits:,} commits, {links:,} deployment links, {samples:,} canary samples"

    def do_label() -> str:
        from releaserisk.labels import label_changes
        from releaserisk.store import open_store

        with open_store(db) as store:
            result = label_changes(store, "demo", settings=settings)
        return f"{result.buggy_szz} bug-introducing changes found by SZZ from {result.fixes} fixes"

    def do_train() -> str:
        import json as _json
        from datetime import UTC, datetime

        from releaserisk.labels import training_frame
        from releaserisk.model import RiskModel, evaluate_time_split, save_model
        from releaserisk.store import open_store

        with open_store(db) as store:
            frame = training_frame(store, settings=settings)
            evaluation = evaluate_time_split(frame)
            model = RiskModel().fit(frame, frame["bug"])
            save_model(model, model_path, {"model_id": "demo", "evaluation": evaluation})
            store.execute(
                "INSERT INTO models VALUES ('demo', ?, 'change', ?, ?, ?, ?, ?, ?)",
                [str(model_path), datetime.now(UTC), frame["time"].min(), frame["time"].max(),
                 list(model.features), _json.dumps(evaluation), _json.dumps(_json.loads(model.metadata_)["versions"])],
            )  # fmt: skip
        return (f"{model.selected_} on {len(frame):,} changes; time-ordered test AUC {evaluation['auc']:.3f}, "
                f"ECE {evaluation['ece']:.3f}")  # fmt: skip

    def do_score() -> str:
        from releaserisk.gate import score_commits
        from releaserisk.model import load_model
        from releaserisk.store import open_store

        model, _ = load_model(model_path)
        with open_store(db) as store:
            features = store.query(
                "SELECT f.*, split_part(c.message, chr(10), 1) AS subject, c.author FROM change_features f "
                "JOIN commits c USING (repo, sha) ORDER BY c.seq"
            )
            result = score_commits(model, features, threshold=settings.risk_threshold, model_id="demo")
            store.upsert("risk_scores", result.score_rows("demo"))
            latest = store.query(
                "SELECT d.deployment_id, list(dc.sha) AS shas FROM deployments d JOIN deployment_changes dc "
                "USING (deployment_id) WHERE list_contains(?, lower(d.environment)) AND d.status = 'success' "
                "GROUP BY d.deployment_id, d.finished_at ORDER BY d.finished_at DESC LIMIT 1",
                [list(settings.production_environments)],
            )
        state["scores"] = result
        if latest.empty:
            return f"scored {len(result.commits):,} changes"
        batch = score_commits(
            model, features[features["sha"].isin(list(latest["shas"][0]))], threshold=settings.risk_threshold,
            model_id="demo",
        )  # fmt: skip
        return (f"scored {len(result.commits):,} changes; latest deployment {latest['deployment_id'][0]}: "
                f"batch of {batch.batch['size']}, P(any defect) {batch.batch['any_defect']:.0%} "
                f"-> {batch.advice['strategy']} {'/'.join(map(str, batch.advice['steps_percent']))}%")  # fmt: skip

    def do_canary() -> str:
        from releaserisk.canary.data import analysis_samples
        from releaserisk.canary.judge import judge
        from releaserisk.canary.sequential import sequential_judge
        from releaserisk.store import open_store

        with open_store(db, read_only=True) as store:
            samples = analysis_samples(store)
        fixed = judge(samples)
        sequential = sequential_judge(samples)
        return f"latest canary: judge {fixed.verdict} (score {fixed.score}), sequential {sequential.decision}"

    def do_report() -> str:
        from releaserisk.report import render_weekly
        from releaserisk.store import open_store

        with open_store(db, read_only=True) as store:
            last = store.execute("SELECT max(finished_at) FROM deployments").fetchone()[0]
        iso = last.isocalendar()
        week = f"{iso.year}-W{iso.week:02d}"
        paths = render_weekly(db, week, out_dir=args.out)
        state["report"] = paths
        return f"{paths['html']}"

    for name, action in (("simulate", do_simulate), ("ingest", do_ingest), ("label", do_label),
                         ("train", do_train), ("score", do_score), ("canary", do_canary),
                         ("report", do_report)):  # fmt: skip
        step(name, action)
    seconds = time.perf_counter() - total
    payload = {"steps": steps, "seconds": round(seconds, 2), "db": str(db), "report": state["report"]["html"]}
    _emit(args, payload, f"demo finished in {seconds:.1f} s; open {state['report']['html']}")
    return EXIT_OK


# -- parser -------------------------------------------------------------------------------
def _probability(text: str) -> float:
    """An argparse type: a probability in (0, 1], as the gate threshold must be."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in (0, 1]")
    return value


def _monday(text: str):
    """An argparse type: the Monday (00:00 UTC) of the ISO week holding a date."""
    from datetime import UTC, date, datetime, timedelta

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (worker counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def _common(parser: argparse.ArgumentParser, formats: Sequence[str] = ("text", "json")) -> None:
    parser.add_argument("--format", choices=formats, default="text", help="output format (default: text)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="releaserisk",
        description="How risky is the next release, and how healthy is the release process?",
    )
    parser.add_argument("--version", action="version", version=f"releaserisk {__version__}")
    parser.add_argument("--db", help="DuckDB store (default: ./releaserisk.duckdb or RELEASERISK_DB)")
    parser.add_argument("--config", help="config file (default: releaserisk.toml or pyproject.toml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="create or upgrade the store and list its tables")
    _common(p)
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("info", help="show row counts and recent ingests of an existing store")
    _common(p)
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser(
        "export",
        help="write every table as Parquet (hive-partitioned by repo or service)",
        description="A snapshot any engine can read, or another store can load with 'ingest parquet DIR'.",
    )
    p.add_argument("directory", help="output directory (DIR/<table>/...)")
    _common(p)
    p.set_defaults(handler=cmd_export)

    ingest = sub.add_parser("ingest", help="load data into the store").add_subparsers(
        dest="source", metavar="SOURCE", required=True
    )
    p = ingest.add_parser(
        "git",
        help="commits, file changes and change metrics from a git repository",
        description="One streaming pass over git log; incremental on re-runs.",
    )
    p.add_argument("path", help="work tree or bare repository")
    p.add_argument("--name", help="repository name in the store (default: directory name)")
    p.add_argument("--rev", default="HEAD", help="revision to ingest history of (default: HEAD)")
    p.add_argument("--workers", type=int, choices=(1, 2), default=2,
                   help="git processes for a first ingest of 20,000+ commits (default 2)")  # fmt: skip
    _common(p)
    p.set_defaults(handler=cmd_ingest_git)

    from releaserisk.ingest.schemas import SCHEMAS

    for kind, (_, columns) in SCHEMAS.items():
        required = ", ".join(c.name for c in columns if c.required)
        optional = ", ".join(c.name for c in columns if not c.required)
        p = ingest.add_parser(
            kind,
            help=f"{kind} from CSV, JSON or Parquet",
            description=f"Required columns: {required}. Optional: {optional or 'none'}. "
            "Timestamps need a zone (Z or +hh:mm) unless --assume-tz is given. Re-loading a file changes nothing.",
        )
        p.add_argument("file")
        p.add_argument("--assume-tz", help="IANA zone for timestamps without one, e.g. Europe/Berlin")
        _common(p)
        p.set_defaults(handler=cmd_ingest_file, kind=kind)

    p = ingest.add_parser(
        "github",
        help="pull requests, reviews, deployments, workflow runs, incidents and bug issues from GitHub",
        description="Token from $GITHUB_TOKEN (or --token-env NAME); it is never stored or printed. Each resource "
        "resumes from its watermark, so a re-run continues where a stopped run ended.",
    )
    p.add_argument("repository", metavar="OWNER/REPO")
    p.add_argument("--name", help="repository name in the store, as 'ingest git' got it (default: REPO)")
    p.add_argument("--since", help="ignore anything older (ISO date); default: continue from the watermarks")
    p.add_argument("--environment", action="append", help="deployment environment to read (repeatable; default all)")
    p.add_argument("--incident-label", action="append", help="issue label marking incidents (default: incident)")
    p.add_argument("--deploy-workflow", action="append", help="Actions workflow that deploys (name or file)")
    p.add_argument("--release-environment", help="record published releases as deployments to this environment")
    p.add_argument("--base-url", help="GitHub Enterprise API URL")
    p.add_argument("--token-env", default="GITHUB_TOKEN", help="environment variable holding the token")
    p.add_argument("--no-wait", action="store_true", help="stop (resumably) instead of waiting out the rate limit")
    _common(p)
    p.set_defaults(handler=cmd_ingest_github)

    p = ingest.add_parser("git-tags", help="tags as successful deployments (libraries that release by tag)")
    p.add_argument("path")
    p.add_argument("--pattern", help="tag glob (default: version tags such as v1.2 or 1.2)")
    p.add_argument("--service", required=True)
    p.add_argument("--environment", default="production")
    p.add_argument("--name", help="repository name in the store")
    _common(p)
    p.set_defaults(handler=cmd_ingest_tags)

    p = ingest.add_parser("parquet", help="a snapshot written by 'releaserisk export' (upserted, one transaction)")
    p.add_argument("directory")
    _common(p)
    p.set_defaults(handler=cmd_ingest_parquet)

    p = ingest.add_parser("metrics", help="canary metric samples (CSV, Parquet, JSON, Prometheus JSON)")
    p.add_argument("file")
    p.add_argument("--analysis", help="analysis id of the samples (a file with an analysis_id column: the one to keep)")
    p.add_argument("--arm", choices=("baseline", "canary"), help="arm of every row (one file per arm)")
    p.add_argument("--arm-label", default="arm", help="Prometheus label naming the arm (default: arm)")
    _common(p)
    p.set_defaults(handler=cmd_ingest_metrics)

    p = sub.add_parser("label", help="label bug-introducing changes (SZZ, reverts)")
    p.add_argument("--repo", action="append", help="repository name (default: all)")
    p.add_argument("--workers", type=_positive_int, default=2, help="parallel git blame workers (default 2)")
    p.add_argument(
        "--commit-graph",
        action="store_true",
        help="first write git's commit-graph with changed-path Bloom filters (a cache file inside .git; "
        "blame gets about 3x faster on long histories; needs git 2.27+)",
    )
    _common(p)
    p.set_defaults(handler=cmd_label)

    p = sub.add_parser("train", help="train and save the change-risk model")
    p.add_argument("--repo", action="append", help="repository name (default: all)")
    p.add_argument("--out", default="models/risk.skops", help="model file (default: models/risk.skops)")
    p.add_argument("--estimator", choices=("auto", "logistic", "boosting", "ensemble"), default="auto")
    p.add_argument(
        "--level",
        choices=("change", "deployment"),
        default="change",
        help="change risk (default) or deployment (batch) risk; score changes first for the latter",
    )
    _common(p)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="time-ordered evaluation on the store or a feature table",
        description="Train on the past, test on the future; never shuffled. --dataset reads the Kamei et al. "
        "or Zeng et al. CSV conventions.",
    )
    p.add_argument("--dataset", help="feature table CSV (Kamei et al. or Zeng et al. columns)")
    p.add_argument("--repo", action="append", help="repository name (store mode; default: all)")
    p.add_argument("--split", type=float, default=0.8, help="share of oldest rows to train on (default 0.8)")
    p.add_argument("--rolling", action="store_true", help="rolling-origin: AUC by model age in months")
    p.add_argument("--estimator", choices=("auto", "logistic", "boosting", "ensemble"), default="auto")
    _common(p)
    p.set_defaults(handler=cmd_evaluate)

    report = sub.add_parser("report", help="render reports from notebooks").add_subparsers(
        dest="report", metavar="REPORT", required=True
    )
    p = report.add_parser("weekly", help="the weekly HTML report (reports/weekly-<ISO week>.html)")
    p.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week)")
    p.add_argument("--out", default="reports", help="output directory (default: reports)")
    p.add_argument("--services", nargs="*", help="limit the deployments table to these services")
    _common(p)
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("simulate", help="write a synthetic organisation with planted effects")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--scenario", default="healthy", choices=SCENARIO_NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weeks", type=int, default=26)
    p.add_argument("--services", type=int, default=3)
    p.add_argument("--start", type=_monday, help="first week, as a date in it (default 2025-01-06)")
    _common(p)
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("demo", help="the whole pipeline on simulated data: ingest, train, score, canary, report")
    p.add_argument("--scenario", default="healthy", choices=SCENARIO_NAMES)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--weeks", type=int, default=52, help="history length (default 52: a year)")
    p.add_argument("--data", default="data/demo", help="where the simulated data and store go (default data/demo)")
    p.add_argument("--out", default="reports", help="report directory (default reports)")
    _common(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "score",
        help="CI gate: score the commits about to ship (exit 1 when risk reaches the threshold)",
        description="Brings the store up to date (only new commits), scores every non-merge commit in REVRANGE "
        "(default: since the last successful production deployment, else HEAD) and the batch, and advises a rollout.",
    )
    p.add_argument("range", nargs="?", metavar="REVRANGE", help="git revision range, e.g. v1.2..HEAD")
    p.add_argument("--repo", default=".", help="repository path (default: .)")
    p.add_argument("--name", help="repository name in the store (default: directory name)")
    p.add_argument("--model", default="models/risk.skops", help="model file (default: models/risk.skops)")
    gate = p.add_mutually_exclusive_group()
    gate.add_argument(
        "--threshold", type=_probability, help="fail at or above this probability (default: risk_threshold)"
    )
    gate.add_argument("--fail-on", choices=("low", "medium", "high"), help="fail when a commit reaches this band")
    p.add_argument("--read-only", action="store_true", help="score from a snapshot; never write the store")
    p.add_argument("--policy", help="rollout policy TOML: [low] / [medium] / [high] tables over the defaults")
    _common(p, ("text", "json", "github"))
    p.set_defaults(handler=cmd_score)

    p = sub.add_parser("dora", help="DORA metrics with drill-down and peer-compatible profiles")
    p.add_argument("--since", help="window start (ISO date, UTC)")
    p.add_argument("--until", help="window end, exclusive (ISO date, UTC)")
    p.add_argument("--freq", choices=("week", "month"), default="week")
    p.add_argument("--by", choices=("service", "team", "repo"))
    p.add_argument("--profile", choices=("dora", "devlake", "fourkeys"), default="dora")
    p.add_argument("--benchmark", type=int, choices=(2023, 2024), default=2024, help="DORA report year for tiers")
    p.add_argument("--detail", choices=("deployments", "changes", "pull-requests", "incidents"),
                   help="print the rows behind the numbers instead")  # fmt: skip
    _common(p, ("text", "json", "csv"))
    p.set_defaults(handler=cmd_dora)

    p = sub.add_parser(
        "canary",
        help="judge a canary against its baseline (exit 0 pass, 1 fail, 3 marginal/continue)",
        description="Fixed-horizon Kayenta-compatible judge, or anytime-valid sequential monitoring.",
    )
    p.add_argument("--config", dest="canary_config", help="canary TOML config")
    p.add_argument("--data", action="append", help="samples with an arm column or label (repeatable)")
    p.add_argument("--baseline", action="append", help="samples of the baseline arm (repeatable)")
    p.add_argument("--canary", action="append", help="samples of the canary arm (repeatable)")
    p.add_argument("--arm-label", default="arm", help="Prometheus label naming the arm (default: arm)")
    p.add_argument("--analysis", help="the analysis to judge, when the samples have an analysis_id column")
    p.add_argument("--mode", choices=("fixed", "sequential"), default="fixed")
    p.add_argument("--looks", type=int, default=12, help="sequential mode: looks over the time range (default 12)")
    _common(p, ("text", "json", "github"))
    p.set_defaults(handler=cmd_canary)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ReleaseRiskError as exc:
        if args.debug:
            raise
        # one line, even when the message quotes a library's multi-line text (a CSV parser's)
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        return EXIT_USAGE
    except OSError as exc:  # a path the user gave cannot be read or written
        if args.debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"error: {exc.strerror or exc}{where}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing was committed by the interrupted step\n")
        return 130
    except Exception as exc:  # a bug: say so in one line, and exit with a code no gate result uses
        if args.debug:
            raise
        message = " ".join(str(exc).split())[:300]
        sys.stderr.write(
            f"error: internal error ({type(exc).__name__}: {message}); rerun with --debug for the traceback "
            "and report it\n"
        )
        return EXIT_INTERNAL


def run() -> None:  # console-script entry point
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
