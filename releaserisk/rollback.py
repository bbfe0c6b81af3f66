"""Rollback safety of a batch and rollback readiness of its services, for the gate.

Two questions before a deployment: *can this batch be rolled back?* — not when it carries
a schema migration that drops, renames, retypes, adds NOT NULL without a default or deletes
(:mod:`releaserisk.migrations_safety`) — and *does this service's rollback path work?* —
its rollback success rate (Wilson 95 % interval), days since its last successful rollback,
and whether its last rollback crossed a schema migration (the deployment it undid shipped
one). A rollback path not exercised for months, or one that failed when a migration was in
the way, is the failure story behind "rollbacks fail 70 % of the time".

The batch's migration files are read from git at the commits being shipped (``git show
SHA:PATH``, no checkout), so this module stands with the sources, like :mod:`releaserisk.labels`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from releaserisk.config import Settings
from releaserisk.definitions import in_production_environment, production_environments
from releaserisk.errors import GitError
from releaserisk.ingest.git import git
from releaserisk.migrations_safety import FORWARD_FIX_ADVICE, MigrationFinding, classify_migration, glob_regex
from releaserisk.store import Store

__all__ = ["RollbackSafety", "assess_rollback", "batch_migrations", "rollback_readiness"]

_READINESS_COLUMNS = [
    "service", "rollbacks", "succeeded", "success_rate", "ci_low", "ci_high", "last_success_at",
    "days_since_last_success", "last_rollback_at", "last_rollback_status", "last_crossed_migration",
]  # fmt: skip


def _wilson(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from releaserisk.intervals import wilson_interval  # one definition of the interval

    return wilson_interval(successes, trials)


def rollback_readiness(
    store: Store,
    *,
    services: Sequence[str] | None = None,
    settings: Settings | None = None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Per service: how well its production rollback path works, over all recorded history.

    A rollback is a production deployment of kind ``rollback`` (any status); it succeeded
    when its status is ``success``. It *crossed a migration* when the deployment it undid
    (``reverts_deployment_id``, else the service's previous successful production
    deployment) shipped a file matching ``Settings.migration_globs``.

    Parameters
    ----------
    store : Store
    services : sequence of str, optional
        Only these services (default: every service deploying to production).
    settings : Settings, optional
    as_of : datetime, optional
        Reference time for ``days_since_last_success`` (default: now, UTC).

    Returns
    -------
    DataFrame
        ``service, rollbacks, succeeded, success_rate, ci_low, ci_high`` (Wilson 95 % on the
        success rate; NaN without rollbacks), ``last_success_at``, ``days_since_last_success``
        (days; NaN when none ever succeeded), ``last_rollback_at``, ``last_rollback_status``,
        ``last_crossed_migration`` (None without rollbacks).
    """
    settings = settings or Settings()
    as_of = as_of or datetime.now(UTC)
    frame = store.query(
        f"""
        WITH prod AS (
            SELECT * FROM deployments WHERE {in_production_environment()} AND finished_at <= $as_of
        ),
        undone AS (  -- the deployment each rollback undid
            SELECT r.deployment_id AS rollback_id,
                   coalesce(r.reverts_deployment_id, (
                       SELECT arg_max(p.deployment_id, p.finished_at) FROM prod p
                       WHERE p.service = r.service AND p.status = 'success' AND p.kind <> 'rollback'
                         AND p.finished_at < r.finished_at)) AS undone_id
            FROM prod r WHERE r.kind = 'rollback'
        ),
        crossed AS (
            SELECT u.rollback_id, bool_or(regexp_matches(fc.path, $globs)) AS crossed
            FROM undone u
            LEFT JOIN deployment_changes dc ON dc.deployment_id = u.undone_id
            LEFT JOIN file_changes fc ON fc.repo = dc.repo AND fc.sha = dc.sha AND fc.status <> 'D'
            GROUP BY u.rollback_id
        ),
        r AS (
            SELECT p.service, p.status, p.finished_at, coalesce(c.crossed, false) AS crossed
            FROM prod p LEFT JOIN crossed c ON c.rollback_id = p.deployment_id WHERE p.kind = 'rollback'
        ),
        services AS (SELECT DISTINCT service FROM prod WHERE $all OR list_contains($services, service))
        SELECT s.service, count(r.service) AS rollbacks, count(*) FILTER (r.status = 'success') AS succeeded,
               max(r.finished_at) FILTER (r.status = 'success') AS last_success_at,
               max(r.finished_at) AS last_rollback_at,
               arg_max(r.status, r.finished_at) AS last_rollback_status,
               arg_max(r.crossed, r.finished_at) AS last_crossed_migration
        FROM services s LEFT JOIN r USING (service)
        GROUP BY s.service ORDER BY s.service
        """,
        {
            "prod": production_environments(settings),
            "as_of": as_of,
            "globs": glob_regex(settings.migration_globs),
            "all": services is None,
            "services": list(services or []),
        },
    )
    frame["success_rate"] = (frame["succeeded"] / frame["rollbacks"]).where(frame["rollbacks"] > 0)
    frame["ci_low"], frame["ci_high"] = _wilson(frame["succeeded"], frame["rollbacks"])
    since = (pd.Timestamp(as_of) - frame["last_success_at"]).dt.total_seconds() / 86400
    frame["days_since_last_success"] = since
    frame["last_crossed_migration"] = frame["last_crossed_migration"].astype(object).where(frame["rollbacks"] > 0, None)
    return frame[_READINESS_COLUMNS]


def batch_migrations(
    store: Store, repo: str, repo_path: str | os.PathLike[str], shas: Sequence[str], settings: Settings | None = None
) -> list[MigrationFinding]:
    """Classify the schema migrations that the commits ``shas`` add or change.

    Parameters
    ----------
    store : Store
        Holding the commits' ``file_changes`` (the gate ingests them first).
    repo : str
        The repository's name in the store.
    repo_path : path-like
        Its git directory or work tree (files are read with ``git show SHA:PATH``).
    shas : sequence of str
        The batch.
    settings : Settings, optional
        ``migration_globs``.

    Returns
    -------
    list of MigrationFinding
        One per migration file, at the latest commit of the batch that touched it.

    Raises
    ------
    GitError
        A file the store lists cannot be read from the repository.
    """
    settings = settings or Settings()
    files = store.query(
        """
        SELECT fc.path, arg_max(fc.sha, c.seq) AS sha FROM file_changes fc JOIN commits c USING (repo, sha)
        WHERE fc.repo = ? AND list_contains(?, fc.sha) AND fc.status <> 'D' AND regexp_matches(fc.path, ?)
          AND NOT ends_with(fc.path, '.down.sql') AND NOT regexp_matches(fc.path, '(^|/)U[0-9]+__[^/]*$')
        GROUP BY fc.path ORDER BY fc.path
        """,
        [repo, list(shas), glob_regex(settings.migration_globs)],
    )
    findings = []
    for path, sha in zip(files["path"], files["sha"], strict=True):
        try:
            text = git(repo_path, "show", f"{sha}:{path}")
        except GitError as exc:
            raise GitError(f"cannot read migration {path} at {sha[:10]}: {exc}") from None
        findings.append(classify_migration(path, text, sha))
    return findings


@dataclass
class RollbackSafety:
    """Whether a batch can be rolled back, why not, and the readiness of its services.

    Attributes
    ----------
    findings : list of MigrationFinding
        The batch's schema migrations.
    readiness : DataFrame
        :func:`rollback_readiness` of the services the repository deploys.
    gate_effect : str
        ``Settings.unsafe_rollback_gate``: ``warn`` or ``fail``.
    """

    findings: list[MigrationFinding]
    readiness: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_READINESS_COLUMNS))
    gate_effect: str = "warn"

    @property
    def rollback_safe(self) -> bool:
        """False when any migration of the batch is irreversible (the migrations alone: see :attr:`status`)."""
        return all(f.reversible for f in self.findings)

    @property
    def status(self) -> str:
        """Whether a rollback of this batch can be relied on, as the text's ``rollback:`` line says it.

        ``unsafe``: a migration cannot be undone. Else ``unknown``: no service of the
        repository has a production deployment on record; ``untried``: some service has no
        production rollback on record; ``failing``: some service's rollbacks have never
        succeeded; ``safe``: the migrations can be undone and every service has rolled back
        successfully before. ``rollback_safe`` alone speaks of the migrations: a JSON reader
        must not take ``true`` for a tested rollback path.
        """
        if not self.rollback_safe:
            return "unsafe"
        if not len(self.readiness):
            return "unknown"
        if (self.readiness["rollbacks"] == 0).any():
            return "untried"
        if (self.readiness["succeeded"] == 0).any():
            return "failing"
        return "safe"

    @property
    def reasons(self) -> list[str]:
        """Every irreversible operation, with its file."""
        return [reason for f in self.findings for reason in f.reasons]

    @property
    def advice(self) -> str | None:
        """Rollout advice for an unsafe batch (None when it can be rolled back)."""
        return None if self.rollback_safe else FORWARD_FIX_ADVICE

    @property
    def fails_gate(self) -> bool:
        """Whether this makes the gate fail (an unsafe batch with ``gate_effect='fail'``)."""
        return not self.rollback_safe and self.gate_effect == "fail"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (no NaN)."""
        readiness = self.readiness.astype(object).where(self.readiness.notna(), None)
        for column in ("last_success_at", "last_rollback_at"):
            readiness[column] = [None if v is None else pd.Timestamp(v).isoformat() for v in readiness[column]]
        return {
            "rollback_safe": self.rollback_safe,
            "status": self.status,
            "reasons": self.reasons,
            "advice": self.advice,
            "gate_effect": self.gate_effect,
            "migrations": [f.to_dict() for f in self.findings],
            "readiness": readiness.to_dict(orient="records"),
        }

    def summary(self) -> str:
        """Lines for the gate's text output."""
        n = len(self.findings)
        # "safe" only says the migrations can be undone: whether rolling back works at all is
        # unknown for a service that never rolled back, so the line says both, not "safe" beside "untried"
        untried = [str(r.service) for r in self.readiness.itertuples() if not r.rollbacks]
        migrations = (f"{n} schema migration{'s' * (n != 1)} in the batch, all reversible" if n
                      else "no schema migration in the batch")  # fmt: skip
        alone = len(self.readiness) == 1
        status = self.status
        if status == "unsafe":
            lines = [f"rollback: UNSAFE — {self.advice}"]
            lines.extend(f"      - {reason}" for reason in self.reasons)
        elif status == "untried" and alone:
            lines = [f"rollback: {migrations}, but {untried[0]} has no production rollback on record: "
                     "its rollback path is untried, so whether a rollback works is unknown"]  # fmt: skip
        elif status == "untried":
            lines = [f"rollback: {migrations}; whether a rollback works is unknown for {len(untried)} of "
                     f"{len(self.readiness)} services (no production rollback on record)"]  # fmt: skip
        elif status == "unknown":
            lines = [f"rollback: {migrations}; no service of the repository has a production deployment on "
                     "record, so whether a rollback works is unknown"]  # fmt: skip
        elif status == "failing":
            failing = [str(r.service) for r in self.readiness.itertuples() if not r.succeeded]
            lines = [f"rollback: {migrations}, but no rollback of {', '.join(failing)} has ever succeeded: "
                     "do not count on one"]  # fmt: skip
        else:
            lines = [f"rollback: safe ({migrations})"]
        for r in self.readiness.itertuples():
            if not r.rollbacks:
                if not (self.rollback_safe and alone):  # else said on the rollback line
                    lines.append(f"  {r.service}: no production rollback on record (an untried rollback path)")
                continue
            since = "never succeeded" if pd.isna(r.days_since_last_success) else (
                f"last succeeded {r.days_since_last_success:.0f} days ago")  # fmt: skip
            crossed = ", last one crossed a schema migration" if r.last_crossed_migration else ""
            lines.append(
                f"  {r.service}: rollbacks {r.succeeded}/{r.rollbacks} succeeded "
                f"({r.success_rate:.0%}, 95% CI {r.ci_low:.0%}–{r.ci_high:.0%}), {since}{crossed}"
            )
        return "\n".join(lines)


def assess_rollback(
    store: Store,
    repo: str,
    repo_path: str | os.PathLike[str],
    shas: Sequence[str],
    *,
    settings: Settings | None = None,
    as_of: datetime | None = None,
) -> RollbackSafety:
    """Rollback safety of a batch and readiness of the services deploying its repository.

    Parameters
    ----------
    store : Store
    repo : str
        The repository's name in the store.
    repo_path : path-like
        Its checkout or git directory.
    shas : sequence of str
        The commits about to ship.
    settings : Settings, optional
        ``migration_globs``, ``unsafe_rollback_gate``, ``production_environments``.
    as_of : datetime, optional
        Reference time for the readiness (default now).

    Returns
    -------
    RollbackSafety

    Raises
    ------
    GitError
        A migration file cannot be read.
    """
    settings = settings or Settings()
    findings = batch_migrations(store, repo, repo_path, shas, settings)
    services = store.query(
        "SELECT DISTINCT service FROM services WHERE repo = ? "
        "UNION SELECT DISTINCT service FROM deployments WHERE repo = ?",
        [repo, repo],
    )["service"].dropna()
    readiness = rollback_readiness(store, services=list(services), settings=settings, as_of=as_of)
    return RollbackSafety(findings, readiness, settings.unsafe_rollback_gate)
