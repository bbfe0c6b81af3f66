"""The ``releaserisk`` command.

Conventions (DESIGN.md section 7): ``--db`` defaults to ``./releaserisk.duckdb``
(or ``RELEASERISK_DB`` / the config file); ``--format text|json``; JSON goes to
stdout and diagnostics to stderr. Exit codes: 0 pass, 1 gate failed, 2 usage or
input error, 3 inconclusive. User mistakes print one ``error: ...`` line; ``--debug``
shows the traceback. Heavy modules are imported inside the handlers so that
``releaserisk --help`` and CI gates start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from releaserisk import __version__
from releaserisk.errors import ReleaseRiskError

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


# -- presentation helpers ---------------------------------------------------------------
def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as JSON or ``text`` depending on ``--format``."""
    if getattr(args, "format", "text") == "json":
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _settings(args: argparse.Namespace):
    from releaserisk.config import load_settings

    return load_settings(args.config, overrides={"db": args.db})


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
        )
    seconds = time.perf_counter() - started
    payload = {**result.to_dict(), "seconds": round(seconds, 3)}
    text = (
        f"ingested {result.repo}: {result.new_commits:,} new commits "
        f"({result.total_commits:,} stored), {result.file_changes:,} file changes in {seconds:.1f} s"
    )
    _emit(args, payload, text)
    return EXIT_OK


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
        sys.stdout.write(f"::{level}::{message}\n")


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

    config = load_canary_config(args.canary_config) if args.canary_config else CanaryConfig()
    samples = _load_canary_samples(args)
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
    import pandas as pd

    from releaserisk.canary.data import load_samples

    samples = load_samples(args.file, arm=args.arm, arm_label=args.arm_label)
    samples = samples.assign(analysis_id=args.analysis)
    samples["ts"] = samples["ts"].fillna(pd.Timestamp(0, tz="UTC"))
    samples["sample_index"] = samples.groupby(["metric", "arm", "ts"]).cumcount()
    with _open(args) as store:
        loaded = store.upsert("metric_samples", samples.drop(columns="kind"))
    _emit(
        args,
        {"analysis_id": args.analysis, "samples": loaded},
        f"stored {loaded:,} samples as {args.analysis}",
    )
    return EXIT_OK


# -- parser -------------------------------------------------------------------------------
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
    _common(p)
    p.set_defaults(handler=cmd_ingest_git)

    p = ingest.add_parser("metrics", help="canary metric samples (CSV, Parquet, JSON, Prometheus JSON)")
    p.add_argument("file")
    p.add_argument("--analysis", required=True, help="analysis id the samples belong to")
    p.add_argument("--arm", choices=("baseline", "canary"), help="arm of every row (one file per arm)")
    p.add_argument("--arm-label", default="arm", help="Prometheus label naming the arm (default: arm)")
    _common(p)
    p.set_defaults(handler=cmd_ingest_metrics)

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
    p.add_argument("--mode", choices=("fixed", "sequential"), default="fixed")
    p.add_argument(
        "--looks", type=int, default=12, help="sequential mode: looks over the time range (default 12)"
    )
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
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing was committed by the interrupted step\n")
        return 130


def run() -> None:  # console-script entry point
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
