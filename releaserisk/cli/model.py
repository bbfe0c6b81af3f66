"""``label``, ``train`` and ``evaluate``: the change-risk model's labels, training and evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from releaserisk.choices import ESTIMATORS, MODEL_LEVELS
from releaserisk.cli._base import EXIT_INTERRUPTED, EXIT_OK, add_format, open_db, positive_int, settings_of
from releaserisk.cli.output import bar_progress, counted, emit, hint, show_progress
from releaserisk.escape import json_records


def _label_line(r) -> str:
    trackers = f", {r.fixes_from_trackers:,} from bug issues or pull requests" if r.fixes_from_trackers else ""
    incidents = f", {r.buggy_incident:,} named by incidents" if r.buggy_incident else ""
    return (
        f"{r.repo}: {counted(r.fixes, 'fix', 'fixes')} ({r.fixes_blamed_now:,} blamed now{trackers}), "
        f"{r.buggy_szz:,} bug-introducing by SZZ, {r.buggy_revert:,} reverted{incidents}; "
        f"{counted(r.unlabelled_recent, 'recent commit')} left unlabelled"
    )


def cmd_label(args: argparse.Namespace) -> int:
    from releaserisk.ingest.commit_graph import blame_would_be_slow
    from releaserisk.labels import label_changes

    settings = settings_of(args)
    results = []
    with open_db(args) as store:
        for repo in store.repositories(args.repo):
            if not args.commit_graph and blame_would_be_slow(store, repo):
                hint(
                    f"{repo} has a long history and no changed-path commit-graph; "
                    "'releaserisk label --commit-graph' makes SZZ about 3x faster"
                )
            progress = bar_progress(f"SZZ {repo}") if show_progress(args) else None
            try:
                results.append(
                    label_changes(
                        store,
                        repo,
                        settings=settings,
                        workers=args.workers,
                        progress=progress,
                        write_commit_graph=args.commit_graph,
                    )
                )
            except KeyboardInterrupt:
                sys.stderr.write(
                    "error: interrupted; blamed fixes up to the last checkpoint are saved, "
                    "'releaserisk label' continues from there\n"
                )
                return EXIT_INTERRUPTED
    text = "\n".join(f"{_label_line(r)}\n{r.quality.summary()}" if r.quality else _label_line(r) for r in results)
    emit(args, {"repos": [r.to_dict() for r in results]}, text)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from releaserisk.training import train_change_model

    settings = settings_of(args)
    if args.level == "deployment":
        return _train_deployment(args, settings)
    with open_db(args) as store:
        trained = train_change_model(store, settings, repos=args.repo, estimator=args.estimator, out=args.out)
    emit(args, trained.to_dict(), trained.summary())
    return EXIT_OK


def _train_deployment(args: argparse.Namespace, settings) -> int:
    from releaserisk.model import deployment_training_frame, save_model, train_deployment_model

    with open_db(args) as store:
        frame = deployment_training_frame(store, settings)
    model, report = train_deployment_model(frame, estimator=args.estimator)
    notes = "".join(f"\nnote: {note}" for note in report["notes"])
    if model is None:
        text = f"no deployment model: {report['fallback']}{notes}"
        emit(args, {"level": "deployment", "model": None, **report}, text)
        return EXIT_OK
    out = args.out or Path(settings.db).resolve().parent / "models" / "deployment-risk.skops"
    path = save_model(model, out, {"model_id": f"deployment-{len(frame)}", "level": "deployment", **report})
    auc = f", test AUC {report['test_auc']:.3f}" if "test_auc" in report else ""
    if "fallback_test_auc" in report:
        auc += f" (aggregated change risk {report['fallback_test_auc']:.3f})"
    text = f"trained deployment model ({report['selected']}) on {len(frame):,} deployments{auc} -> {path}{notes}"
    emit(args, {"level": "deployment", "path": str(path), **report}, text)
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    import pandas as pd

    from releaserisk.model import (
        auc_by_age,
        dropped_rows_notes,
        evaluate_time_split,
        read_feature_table,
        rolling_origin,
        size_comparison_line,
    )
    from releaserisk.training import labelled_changes

    if args.dataset:
        frame = read_feature_table(args.dataset)
        source = args.dataset
    else:
        with open_db(args, read_only=True) as store:
            frame = labelled_changes(store, settings_of(args), args.repo)
        source = str(settings_of(args).db)
    if args.rolling:
        progress = bar_progress("rolling origins") if show_progress(args) else None
        estimator = args.estimator if args.estimator != "auto" else "logistic"
        table = rolling_origin(frame, estimator=estimator, progress=progress)
        by_age = auc_by_age(table).round(3)
        notes = dropped_rows_notes(frame)
        payload = {
            "source": source,
            "rolling": json_records(table),
            "mean_auc_by_age": by_age.to_dict(),
            "notes": notes,
        }
        rated = table.dropna(subset=["auc"]).groupby("age_months")
        shown = pd.DataFrame({"months tested": rated.size(), "changes": rated["n_test"].sum(), "mean AUC": by_age})
        text = "\n".join(
            [f"AUC by model age ({table['origin'].nunique()} training origins):",
             shown.rename_axis("age (months)").to_string() if len(shown) else "no month with both classes",
             *(f"note: {n}" for n in notes)]
        )  # fmt: skip
        emit(args, payload, text)
        return EXIT_OK
    result = evaluate_time_split(frame, split=args.split, estimator=args.estimator)
    shown = {k: v for k, v in result.items() if k != "notes"}
    lines = [f"{k:>20}: {v:.4f}" if isinstance(v, float) else f"{k:>20}: {v}" for k, v in shown.items()]
    text = "\n".join([*lines, size_comparison_line(result), *(f"note: {note}" for note in result["notes"])])
    emit(args, {"source": source, **result}, text)
    return EXIT_OK


def register(sub) -> None:
    """Add ``label``, ``train`` and ``evaluate`` to the top-level sub-parsers."""
    p = sub.add_parser("label", help="label bug-introducing changes (SZZ, reverts)")
    p.add_argument("--repo", action="append", help="repository name (default: all)")
    p.add_argument("--workers", type=positive_int, default=2, help="parallel git blame workers (default 2)")
    p.add_argument(
        "--commit-graph",
        action="store_true",
        help="first write git's commit-graph with changed-path Bloom filters (a cache file inside .git; "
        "blame gets about 3x faster on long histories; needs git 2.27+)",
    )
    add_format(p)
    p.set_defaults(handler=cmd_label)

    p = sub.add_parser("train", help="train and save the change-risk model")
    p.add_argument("--repo", action="append", help="repository name (default: all)")
    p.add_argument("--out", help="model file (default: <store dir>/models/<repo>.skops, where score looks for it)")
    p.add_argument("--estimator", choices=ESTIMATORS, default="auto")
    p.add_argument(
        "--level",
        choices=MODEL_LEVELS,
        default="change",
        help="change risk (default) or deployment (batch) risk; score changes first for the latter",
    )
    add_format(p)
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
    p.add_argument("--estimator", choices=ESTIMATORS, default="auto")
    add_format(p)
    p.set_defaults(handler=cmd_evaluate)
