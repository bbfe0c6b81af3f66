"""``score``: the CI gate on the commits about to ship."""

from __future__ import annotations

import argparse

from releaserisk.choices import RISK_BANDS
from releaserisk.cli._base import add_format, probability, settings_of
from releaserisk.cli.output import counted, diagnostic, emit, github_output


def cmd_score(args: argparse.Namespace) -> int:
    from pathlib import Path

    from releaserisk.features import change_features_of
    from releaserisk.gate import (
        check_model_repository,
        default_model_path,
        deployment_history,
        load_rollout_policy,
        load_scorer,
        repository_identity,
        score_commits,
    )
    from releaserisk.ingest.git import ingest_git
    from releaserisk.ingest.revisions import commits_to_score
    from releaserisk.rollback import assess_rollback
    from releaserisk.store import open_snapshot, open_store

    settings = settings_of(args)
    policy = load_rollout_policy(args.policy) if args.policy else None
    model_path = args.model or default_model_path(settings.db, args.name or Path(args.repo).resolve().name)
    model, metadata = load_scorer(model_path)  # fail fast, before touching git or the store
    threshold = args.threshold if args.threshold is not None else settings.risk_threshold
    store = open_snapshot(settings.db) if args.read_only else open_store(settings.db)
    with store:
        ingested = ingest_git(store, args.repo, name=args.name, settings=settings)
        binding = check_model_repository(
            metadata, repository_identity(store, ingested.repo), allow_foreign=args.allow_foreign_model
        )
        spec, shas = commits_to_score(store, args.repo, ingested.repo, args.range, settings.production_environments)
        features = change_features_of(store, ingested.repo, shas)
        rollback = assess_rollback(store, ingested.repo, args.repo, shas, settings=settings)
        result = score_commits(
            model,
            features,
            threshold=threshold,
            model_id=metadata.get("model_id", "unknown"),
            fail_on=args.fail_on,
            policy=policy,
            rollback=rollback,
            history=deployment_history(store, model, ingested.repo, settings=settings),
            advisory=metadata.get("advisory_reasons", []),
            enforce_advisory=args.enforce_advisory,
        )
        result.notes[:0] = [f"range {spec}: {counted(len(shas), 'non-merge commit')}", *binding]
        if not args.read_only and len(result.commits):
            store.upsert("risk_scores", result.score_rows(ingested.repo))
    if result.advisory and args.format != "github":
        diagnostic(f"warning: advisory model: {'; '.join(result.advisory)}")
    if args.format == "github":
        annotations = [
            ("error" if r.band == "high" and not result.advisory else "warning",
             f"{r.sha[:10]} risk {r.probability:.0%} ({r.band}): {'; '.join(r.reasons)}")
            for r in result.commits.itertuples() if r.band in ("high", "medium")
        ]  # fmt: skip
        if result.advisory:
            annotations.insert(0, ("warning", f"advisory model: {'; '.join(result.advisory)}"))
        if not rollback.rollback_safe:
            level = "error" if rollback.fails_gate else "warning"
            annotations += [(level, f"rollback unsafe ({rollback.advice}): {reason}") for reason in rollback.reasons]
        github_output(result.markdown(), annotations)
    else:
        emit(args, result.to_dict(), result.summary())
    return result.exit_code


def register(sub) -> None:
    """Add ``score`` to the top-level sub-parsers."""
    p = sub.add_parser(
        "score",
        help="CI gate: score the commits about to ship (exit 1 when risk reaches the threshold)",
        description="Brings the store up to date (only new commits), scores every non-merge commit in REVRANGE "
        "(default: since the last successful production deployment, else HEAD) and the batch, and advises a rollout.",
    )
    p.add_argument("range", nargs="?", metavar="REVRANGE", help="git revision range, e.g. v1.2..HEAD")
    p.add_argument("--repo", default=".", help="repository path (default: .)")
    p.add_argument("--name", help="repository name in the store (default: directory name)")
    p.add_argument("--model", help="model file (default: <store dir>/models/<repo>.skops, where train saves it)")
    p.add_argument(
        "--allow-foreign-model",
        action="store_true",
        help="score with a model trained on another repository (deliberate transfer)",
    )
    p.add_argument(
        "--enforce-advisory",
        action="store_true",
        help="fail the gate even when the model is advisory (not clearly better than chance, or uncalibrated)",
    )
    gate = p.add_mutually_exclusive_group()
    gate.add_argument(
        "--threshold", type=probability, help="fail at or above this probability (default: risk_threshold)"
    )
    gate.add_argument("--fail-on", choices=RISK_BANDS, help="fail when a commit reaches this band")
    p.add_argument("--read-only", action="store_true", help="score from a snapshot; never write the store")
    p.add_argument("--policy", help="rollout policy TOML: [low] / [medium] / [high] tables over the defaults")
    add_format(p, ("text", "json", "github"))
    p.set_defaults(handler=cmd_score)
