"""DORA metrics, exactly as defined, with the rows behind every number.

Definitions (profile ``dora``, DESIGN.md section 6)
---------------------------------------------------
Production deployment
    A deployment with status ``success`` to an environment listed in
    ``Settings.production_environments``.
Deployment frequency
    Production deployments per week (and per day), and deploy days per week, over the
    window; weeks are ISO weeks (Monday start, UTC).
Change lead time
    Per commit: the first production deployment containing it (``deployment_changes``)
    minus the commit's committer time. Per pull request: first commit → deployment,
    split into coding (first commit → PR opened), pickup (opened → first review by
    someone other than the author, before the merge; a PR reviewed only after its
    merge has no pickup or review phase), review (first review → merge) and deploy
    (merge → first production deployment containing the merge commit or any PR
    commit). Aggregated as the median and the 90th percentile (interpolated).
Change failure rate
    Failed production deployments / production deployments. A deployment failed when
    an incident is linked to it (explicit ``cause_deployment_id``; else the first
    production deployment of the incident's service that shipped ``cause_sha`` (a
    prefix of at least 7 characters, any case) and finished by the time the incident
    opened; else
    the latest successful production deployment of that service finished at or before
    the incident opened), when a rollback deployment reverts it (``reverts_deployment_id``,
    or the service's next production deployment is a rollback), or when the service's
    next production deployment is a hotfix.
Failed deployment recovery time
    From the failed deployment's finish to the earliest of: the deployment that
    restored service (its rollback, or the next rollback/hotfix deployment), and the
    resolution of its linked incidents. Unrecovered failures have no recovery time.
Time to restore
    Incident opened → resolved (unresolved incidents are counted but have none).
Rework rate
    Share of production deployments that were unplanned: hotfixes, rollbacks, and
    deployments of a service finished while an incident on it was open.

A metric without data is reported as missing (NaN) with tier ``no data``; a week
without deployments has 0 deployments, not a missing value. Change failures need a
source: when the store holds no incident at all and (in the ``dora`` profile, where
they count) no rollback or hotfix deployment, the change failure rate is no data, not
0 % and elite — deployments recorded from git tags alone cannot show a failure; rework
rate likewise needs incidents, rollbacks or hotfixes (``DoraResult.notes`` says so).

Profiles
--------
Both peers count a deployment as failed only when an incident is linked to it (a
rollback or hotfix alone is not a failure there), and its recovery ends when its
incidents are resolved.

``fourkeys`` (Google's dora-team/fourkeys, METRICS.md and queries/): lead time per
commit in whole minutes (``TIMESTAMP_DIFF(..., MINUTE)`` truncates), non-positive values
(under a minute, or negative) dropped, interpolated median; time to restore in whole
hours from the earlier of the incident's opening and the deployment of its root cause
(queries/incidents.sql's ``time_created``, which METRICS.md's queries read; incidents
are counted in that start's period); deployment frequency bucket over Sunday-start
weeks: Daily when the median week has deployments on 3 or more days, Weekly when most
weeks have one, Monthly when the median week's month has one (see
:func:`_fourkeys_buckets`); an incident fails the production deployment that shipped its
root-cause commit (``cause_sha``), whenever it shipped, and an incident naming none
fails no deployment (queries/change_failure_rate.sql joins incidents' root causes to
deployments' changes, and nothing else).
``devlake`` (Apache DevLake, backend/plugins/dora/tasks/change_lead_time_calculator.go
and the DORA Grafana dashboard): per-PR cycle time = coding + (opened → merged) +
deploy, each rounded up to whole minutes and then dropped when negative (so -30 s
counts as 0), the author's own reviews excluded from pickup and review; the deploy
phase ends at the earliest successful production deployment, by start time then id,
whose changes contain the PR's merge commit (other PR commits are not looked up);
incidents link to the latest successful production deployment finished strictly
before the incident opened, whatever cause they name (the dora plugin's
``incident_deploy_connector.go`` reads none); change failure rate counts deployments
with a linked incident; medians are lower medians (the dashboards' ``max(x) WHERE percent_rank <=
0.5``). Time to restore is in whole minutes, truncated (the incident's
``lead_time_minutes`` is ``uint`` of the minutes from creation to resolution); failed
deployment recovery time (grafana/dashboards/DORADetails-FailedDeploymentRecoveryTime
.json) takes one value per linked incident — ``TIMESTAMPDIFF(MINUTE, deployment
finished, incident resolved)``, truncated — over incidents resolved in the window of
deployments finished in it, so a deployment with two incidents counts twice.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd

from releaserisk.choices import DORA_DETAILS, DORA_PROFILES
from releaserisk.config import Settings
from releaserisk.errors import InputError, StoreError
from releaserisk.escape import json_safe
from releaserisk.inputs import parse_instant
from releaserisk.store import SHA_PREFIX_MIN, Store, sha_prefix_match, unknown_commit_note

__all__ = ["BENCHMARKS", "PROFILES", "DoraResult", "dora_metrics", "repository_hint", "tier", "unknown_repositories"]

PROFILES = DORA_PROFILES
_GROUPS = {"service": "service", "team": "team", "repo": "repo"}

#: Per-metric tier thresholds. Source: Google Cloud DORA, "Accelerate State of DevOps"
#: reports 2023 (p. 13) and 2024 (p. 14), "software delivery performance" clusters.
#: Each row is (tier, deploys per week at least, lead time hours at most,
#: change failure rate at most, recovery hours at most). The reports give cluster
#: descriptions ("on demand", "between once per day and once per week", ...); the
#: numbers below are their lower/upper edges. The 2024 clusters are not monotone in
#: change failure rate (Medium 10 % < High 20 %); a per-metric tier must be, so both
#: High and Medium use the larger value there.
BENCHMARKS: dict[int, list[tuple[str, float, float, float, float]]] = {
    2023: [
        ("elite", 7.0, 24.0, 0.05, 1.0),
        ("high", 1.0, 24.0 * 7, 0.10, 24.0),
        ("medium", 12 / 52, 24.0 * 30, 0.15, 24.0 * 7),
        ("low", 0.0, math.inf, 1.0, math.inf),
    ],
    2024: [
        ("elite", 7.0, 24.0, 0.05, 1.0),
        ("high", 1.0, 24.0 * 7, 0.20, 24.0),
        ("medium", 12 / 52, 24.0 * 30, 0.20, 24.0),
        ("low", 0.0, math.inf, 1.0, math.inf),
    ],
}
_TIER_COLUMNS = {"deploys_per_week": 1, "lead_time_median_hours": 2, "change_failure_rate": 3,
                 "recovery_median_hours": 4}  # fmt: skip


def tier(metric: str, value: float, benchmark: int = 2024) -> str:
    """The DORA performance tier of one metric value ("no data" when missing)."""
    return str(_tiers(metric, pd.Series([value], dtype=float), benchmark)[0])


def _tiers(metric: str, values: pd.Series, benchmark: int) -> np.ndarray:
    """The tier of every value of ``metric`` at once ("no data" where missing)."""
    if benchmark not in BENCHMARKS:
        raise InputError(f"benchmark year must be one of {', '.join(map(str, BENCHMARKS))}")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    column = _TIER_COLUMNS[metric]
    rows = BENCHMARKS[benchmark]
    # the first tier whose bound the value meets: at least it for frequency, at most it for the rest
    meets = [numbers >= row[column] if metric == "deploys_per_week" else numbers <= row[column] for row in rows]
    return np.where(np.isnan(numbers), "no data", np.select(meets, [row[0] for row in rows], default="low"))


class _LazyFrame:
    """A drill-down read from its call's working tables on first use.

    Drill-downs can be millions of rows that most callers never look at (fetching the
    10M lead-time rows of benchmarks/dora.py costs more than computing the metrics), so
    they are read when asked for, from tables that belong to that call alone.
    """

    def __init__(self, store: Store, sql: str, params: dict[str, Any]) -> None:
        self._store, self._sql, self._params = store, sql, params
        self._frame: pd.DataFrame | None = None

    def get(self) -> pd.DataFrame:
        if self._frame is None:
            try:
                self._frame = self._store.arrow(self._sql, self._params).to_pandas()
            except duckdb.ConnectionException:
                raise StoreError(
                    "DORA drill-down frames are read on first use: use them before closing the store"
                ) from None
        return self._frame


_CALLS = itertools.count(1)


class _Work(NamedTuple):
    """Names of one :func:`dora_metrics` call's temp tables (and its one view, ``changes``).

    Each call gets its own, so an earlier result's drill-downs stay readable without
    being fetched first (comparing profiles on a 1M-deployment store would otherwise
    read every earlier drill-down row: 4-6 s a call). A result's tables are dropped
    at the next call on that store after the result is garbage-collected.
    """

    prod: str
    incident_links: str
    deploys: str
    first_deploy: str
    prs: str
    changes: str
    incident_causes: str  # with count_flag_releases: each incident's first candidate cause (releaserisk.flags)

    @classmethod
    def new(cls) -> _Work:
        n = next(_CALLS)
        return cls(*(f"_dora{n}_{name}" for name in cls._fields))

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.prod, self.incident_links, self.deploys, self.first_deploy, self.prs, self.incident_causes)


#: Working tables of results that were garbage-collected, per store: dropped at a safe
#: point (the next call), never from a finalizer that could run mid-query.
_DEAD: weakref.WeakKeyDictionary[Store, list[_Work]] = weakref.WeakKeyDictionary()


def _drop_dead(store: Store) -> None:
    for work in _DEAD.pop(store, []):
        store.execute(f"DROP VIEW IF EXISTS {work.changes}")
        for table in work.tables:
            store.execute(f"DROP TABLE IF EXISTS {table}")


def _bury(store: Store, work: _Work) -> None:
    _DEAD.setdefault(store, []).append(work)


@dataclass
class DoraResult:
    """DORA metrics with their drill-down frames.

    Attributes
    ----------
    summary : DataFrame
        One row per group: deployments, deploys per week/day, deploy days per week,
        lead time median/p90 (hours), change failure rate, recovery median (hours),
        time to restore median (hours), rework rate, and a tier per metric.
    by_period : DataFrame
        The same per group and ISO week (or month); weeks without deployments are 0.
    notes : list of str
        Why a metric is no data for the whole store (no source of failures or rework).
    failures_tracked : bool
        False when the store has no source of change failures for the profile: then
        ``failed`` in the drill-downs is False for lack of evidence, not a measurement.
    deployments, changes, pull_requests, incidents : DataFrame
        The rows behind the numbers (failure yes/no and why, lead time per commit,
        PR phases, incident links and how they were made). Read from the store on
        first use, so use them before closing it; a later :func:`dora_metrics` call
        does not change them.
    """

    summary: pd.DataFrame
    by_period: pd.DataFrame
    drill: dict[str, _LazyFrame] = field(repr=False, default_factory=dict)
    profile: str = "dora"
    window: tuple[Any, Any] = (None, None)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures_tracked: bool = True

    @property
    def deployments(self) -> pd.DataFrame:
        """Production deployments in the window: failed or not, why, recovery hours."""
        return self.drill["deployments"].get()

    @property
    def changes(self) -> pd.DataFrame:
        """Commits first deployed to production in the window, with their lead time."""
        return self.drill["changes"].get()

    @property
    def pull_requests(self) -> pd.DataFrame:
        """Merged pull requests deployed in the window, with their phases in minutes."""
        return self.drill["pull_requests"].get()

    @property
    def incidents(self) -> pd.DataFrame:
        """Incidents opened in the window, the deployment each is linked to, and how."""
        return self.drill["incidents"].get()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and per-period table."""

        def records(frame: pd.DataFrame) -> list[dict]:
            return json_safe(frame.astype(object).where(frame.notna(), None).to_dict(orient="records"))

        return {
            "profile": self.profile,
            "window": [str(self.window[0]), str(self.window[1])],
            "summary": records(self.summary),
            "by_period": records(self.by_period),
            "notes": list(self.notes),
        }

    def detail(self, name: str) -> pd.DataFrame:
        """A drill-down frame by name: deployments, changes, pull-requests, incidents."""
        if name not in DORA_DETAILS:
            raise InputError(f"detail must be one of {', '.join(DORA_DETAILS)}")
        return self.drill[name.replace("-", "_")].get()

    def summary_text(self) -> str:
        """A readable table of the summary."""
        lines = [f"DORA metrics ({self.profile}) {self.window[0]:%Y-%m-%d} → {self.window[1]:%Y-%m-%d}"]
        for row in self.summary.to_dict(orient="records"):
            label = row.get("group", "all")

            def fmt(value, unit=""):
                return (
                    "no data"
                    if value is None or (isinstance(value, float) and math.isnan(value))
                    else (f"{value:.2f}{unit}")
                )

            lines.append(f"  {label}")
            lines.append(
                f"    deployments          {row['deployments']:,} ({fmt(row['deploys_per_week'])}/week, "
                f"{fmt(row['deploy_days_per_week'])} deploy days/week)  [{row['deploys_per_week_tier']}]"
            )
            lines.append(
                f"    lead time            median {fmt(row['lead_time_median_hours'], ' h')}, "
                f"p90 {fmt(row['lead_time_p90_hours'], ' h')}  [{row['lead_time_median_hours_tier']}]"
            )
            lines.append(
                f"    change failure rate  {fmt(row['change_failure_rate'])}  [{row['change_failure_rate_tier']}]"
            )
            lines.append(
                f"    recovery (failed)    median {fmt(row['recovery_median_hours'], ' h')}  "
                f"[{row['recovery_median_hours_tier']}]"
            )
            lines.append(f"    time to restore      median {fmt(row['restore_median_hours'], ' h')}")
            lines.append(f"    rework rate          {fmt(row['rework_rate'])}")  # fmt: skip
            if "flag_releases" in row:  # count_flag_releases
                lines.append(
                    f"    flag releases        {row['flag_releases']:,} ({row['failed_flag_releases']} failed); "
                    f"with deployments {row['releases']:,}, failure rate {fmt(row['change_failure_rate_with_flags'])}"
                )
                lines.append(
                    f"    kill switch          median {fmt(row['kill_switch_median_minutes'], ' min')} "
                    f"(n={row['kill_switch_n']})"
                )
            if "deployment_frequency_bucket" in row:
                lines.append(f"    Four Keys frequency  {row['deployment_frequency_bucket']}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _window(store: Store, since, until) -> tuple[pd.Timestamp, pd.Timestamp]:
    # ISO 8601 only: pd.Timestamp read '01/02/2025' as 2 January without a word
    start, end = parse_instant(since, "since"), parse_instant(until, "until")
    if start is None or end is None:
        lo, hi = store.execute("SELECT min(finished_at), max(finished_at) FROM deployments").fetchone()
        if lo is None:
            lo = hi = pd.Timestamp.now(tz="UTC")
        start = start or pd.Timestamp(lo).tz_convert("UTC").floor("D")
        end = end or pd.Timestamp(hi).tz_convert("UTC").floor("D") + pd.Timedelta(days=1)
    if end <= start:
        if until is None:  # the default end is the day after the last deployment
            last = end - pd.Timedelta(days=1)
            raise InputError(f"since {start:%Y-%m-%d} is after the last deployment ({last:%Y-%m-%d}); give until too")
        if since is None:
            raise InputError(f"until {end:%Y-%m-%d} is not after the first deployment ({start:%Y-%m-%d})")
        raise InputError("until must be after since")
    return start, end


def _hours(start: str, end: str) -> str:
    """SQL for ``end - start`` in hours.

    Epoch arithmetic, not ``date_diff``: on TIMESTAMPTZ, ``date_diff`` goes through
    ICU calendars and cost 2.7 s per 10M rows on benchmarks/dora.py; this is exact to
    the microsecond and nearly free.
    """
    return f"((epoch_us({end}) - epoch_us({start})) / 3600e6)"


def _minutes(start: str, end: str) -> str:
    """SQL for ``end - start`` in minutes, exact for whole minutes.

    Peer profiles round to whole minutes; ``hours * 60`` is not exact in binary floating
    point (31 minutes became 31.000000000000004, which rounds up to 32); a quotient of
    microseconds by 60e6 is whenever the span is a whole number of minutes.
    """
    return f"((epoch_us({end}) - epoch_us({start})) / 60e6)"


def _utc_trunc(unit: str, column: str) -> str:
    """SQL truncating a TIMESTAMPTZ to its UTC day, ISO week or month (as a naive UTC timestamp).

    Truncating the naive UTC value avoids ICU's time-zone-aware ``date_trunc``
    (1 s per 10M rows); the store's time zone is UTC, so the boundaries are the same.
    """
    # the cast: DuckDB before 1.2 returns a DATE for day, week and month
    return f"CAST(date_trunc('{unit}', make_timestamp(epoch_us({column}))) AS TIMESTAMP)"


def _prepare(store: Store, settings: Settings, profile: str, w: _Work, flags: bool = False) -> None:
    """Working tables: production deployments with failures and recovery; incident links.

    ``prod.k`` numbers production deployments in the profile's order (finish or start
    time, ties by deployment id), so "the first deployment containing a commit" is the
    smallest ``k``: an integer ``min`` instead of an ``arg_min`` over timestamps.
    """
    con = store.connection
    # a repeated sort key is not free: ORDER BY finished_at, finished_at, … sorted 2x slower
    # DevLake orders by start; a deployment recorded without a start time started when it finished
    start = "coalesce(d.started_at, d.finished_at)"
    order = f"{start}, d.deployment_id" if profile == "devlake" else "d.finished_at, d.deployment_id"
    strict = ">" if profile == "devlake" else ">="
    # Incident -> deployment links per profile. dora: a named deployment, else the first
    # one that shipped the named cause commit by the time the incident opened, else the
    # latest prior deployment. DevLake: the latest prior deployment only (its dora plugin's
    # incident_deploy_connector.go reads no cause). Four Keys: the deployment that shipped
    # the root-cause commit only, at any time (queries/change_failure_rate.sql joins an
    # incident's root causes to deployments' changes, and nothing else).
    explicit, by_cause, prior = {
        "dora": ("e.deployment_id", "coalesce(b.deployment_id, ds.deployment_id)", "pr.deployment_id"),
        "devlake": ("NULL", "NULL", "pr.deployment_id"),
        "fourkeys": ("NULL", "coalesce(b.deployment_id, ds.deployment_id)", "NULL"),
    }[profile]
    cause_time = "" if profile == "fourkeys" else "AND p.finished_at <= i.opened_at"
    # Four Keys' incidents table starts an incident at the earlier of its report and the
    # deployment of its root cause (queries/incidents.sql), and restore time runs from there
    restore_from = "least(i.opened_at, coalesce(cause.finished_at, i.opened_at))" if profile == "fourkeys" else (
        "i.opened_at")  # fmt: skip
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.prod} AS
        SELECT *, lead(kind) OVER w AS next_kind, lead(finished_at) OVER w AS next_finished_at,
               lead(reverts_deployment_id) OVER w AS next_reverts
        FROM (
            SELECT row_number() OVER (ORDER BY {order}) AS k,
                   d.deployment_id, d.service, coalesce(s.team, 'unassigned') AS team,
                   coalesce(d.repo, s.repo) AS repo, d.environment, d.sha, d.started_at, d.finished_at,
                   coalesce(d.kind, 'regular') AS kind, d.reverts_deployment_id
            FROM deployments d LEFT JOIN services s USING (service)
            WHERE d.status = 'success' AND list_contains(?, lower(d.environment))
        )
        -- k is the profile's order, so the per-service window sorts integers (0.58 -> 0.44 s at 1M)
        WINDOW w AS (PARTITION BY service ORDER BY k)
        """,
        [list(settings.production_environments)],
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.incident_links} AS
        -- the cause commit's first production deployment (in dora, among those finished when
        -- the incident opened: one that shipped it later cannot have caused it)
        -- a cause may be abbreviated, in any case ("root cause: 9fceb02")
        WITH causes AS (
            SELECT *, lower(trim(cause_sha)) AS cause FROM incidents
            WHERE length(trim(cause_sha)) >= {SHA_PREFIX_MIN}
        ),
        by_sha AS (
            SELECT i.incident_id, arg_min(p.deployment_id, p.k) AS deployment_id
            FROM causes i JOIN deployment_changes dc ON {sha_prefix_match("dc.sha", "i.cause")}
            JOIN {w.prod} p ON p.deployment_id = dc.deployment_id AND p.service = i.service
            WHERE true {cause_time} GROUP BY i.incident_id
        ),
        direct_sha AS (
            SELECT i.incident_id, arg_min(p.deployment_id, p.k) AS deployment_id
            FROM causes i JOIN {w.prod} p ON {sha_prefix_match("p.sha", "i.cause")} AND p.service = i.service
            WHERE true {cause_time} GROUP BY i.incident_id
        ),
        prior AS (
            SELECT i.incident_id, p.deployment_id
            FROM incidents i ASOF LEFT JOIN {w.prod} p
              ON i.service = p.service AND i.opened_at {strict} p.finished_at
            -- counting flag releases: an incident a flag change caused is not the deployment's
            {
            f"WHERE i.incident_id NOT IN (SELECT incident_id FROM {w.incident_causes} WHERE flag_caused)"
            if flags
            else ""
        }
        )
        SELECT i.*, coalesce(sv.team, 'unassigned') AS team, sv.repo,
               coalesce({explicit}, {by_cause}, {prior}) AS deployment_id,
               CASE WHEN {explicit} IS NOT NULL THEN 'explicit'
                    WHEN {by_cause} IS NOT NULL THEN 'cause_sha'
                    WHEN {prior} IS NOT NULL THEN 'latest_prior_deployment'
                    {"WHEN fc.flag_caused THEN 'flag_change'" if flags else ""}
                    ELSE 'unlinked' END AS link_method,
               {restore_from} AS restore_from,
               {_hours(restore_from, "i.resolved_at")} AS restore_hours
               {", fc.cause_kind, fc.cause_change_id, fc.cause_gap_minutes, fc.kill_switch_minutes" if flags else ""}
        FROM incidents i
        LEFT JOIN {w.prod} e ON e.deployment_id = i.cause_deployment_id
        LEFT JOIN by_sha b USING (incident_id)
        LEFT JOIN direct_sha ds USING (incident_id)
        LEFT JOIN prior pr USING (incident_id)
        {f"LEFT JOIN {w.incident_causes} fc USING (incident_id)" if flags else ""}
        LEFT JOIN {w.prod} cause ON cause.deployment_id = {by_cause}
        LEFT JOIN services sv ON sv.service = i.service
        """
    )
    if profile == "dora":
        failed = "incidents > 0 OR coalesce(rolled_back, false) OR coalesce(hotfixed, false)"
        next_restore = "CASE WHEN p.next_kind IN ('rollback', 'hotfix') THEN p.next_finished_at END"
        restored = f"least(r.rolled_back_at, {next_restore}, inc.resolved_at)"
    else:  # both peers count a deployment failed only when an incident links to it
        failed, restored = "incidents > 0", "inc.resolved_at"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.deploys} AS
        WITH inc AS (
            SELECT deployment_id, count(*) AS incidents, min(resolved_at) AS resolved_at
            FROM {w.incident_links} WHERE deployment_id IS NOT NULL GROUP BY deployment_id
        ),
        reverted AS (
            SELECT reverts_deployment_id AS deployment_id, min(finished_at) AS rolled_back_at
            FROM {w.prod} WHERE kind = 'rollback' AND reverts_deployment_id IS NOT NULL GROUP BY 1
        ),
        during_incident AS (
            SELECT DISTINCT p.deployment_id FROM {w.prod} p JOIN incidents i
              ON i.service = p.service AND p.finished_at > i.opened_at
             AND (i.resolved_at IS NULL OR p.finished_at <= i.resolved_at)
        ),
        flagged AS (
        SELECT p.*,
               coalesce(inc.incidents, 0) AS incidents,
               r.rolled_back_at IS NOT NULL
                 OR (p.next_kind = 'rollback' AND (p.next_reverts IS NULL OR p.next_reverts = p.deployment_id))
                 AS rolled_back,
               p.next_kind = 'hotfix' AS hotfixed,
               {restored} AS restored_at,
               p.kind IN ('hotfix', 'rollback') OR di.deployment_id IS NOT NULL AS unplanned
        FROM {w.prod} p
        LEFT JOIN inc USING (deployment_id)
        LEFT JOIN reverted r USING (deployment_id)
        LEFT JOIN during_incident di USING (deployment_id)
        )
        SELECT *, {failed} AS failed,
               CASE WHEN NOT failed THEN NULL WHEN incidents > 0 THEN 'incident'
                    WHEN rolled_back THEN 'rolled back' ELSE 'fixed by hotfix' END AS failure_reason,
               CASE WHEN failed THEN {_hours("finished_at", "restored_at")} END AS recovery_hours
        FROM flagged
        """
    )


def _detail_tables(store: Store, profile: str, w: _Work) -> None:
    """Working view ``changes`` (lead time per commit) and table ``prs`` (PR phases)."""
    lead = _hours("f.committed_at", "p.finished_at")
    drop = ""
    if profile == "fourkeys":  # TIMESTAMP_DIFF(..., MINUTE) > 0: whole minutes, under one dropped
        lead, drop = f"floor({_minutes('f.committed_at', 'p.finished_at')}) / 60", "WHERE lead_time_hours > 0"
    # Staged: grouping 10M links by commit is the one expensive step, so it keeps only
    # the integer key of the first deployment; commit times come from
    # deployment_changes.committed_at (filled when the links were made). As one
    # statement joining commits, the same work took 1.4x longer on benchmarks/dora.py.
    store.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.first_deploy} AS
        SELECT dc.repo, dc.sha, any_value(dc.committed_at) AS committed_at, min(p.k) AS k
        FROM deployment_changes dc JOIN {w.prod} p USING (deployment_id)
        GROUP BY dc.repo, dc.sha
        """
    )
    # links loaded before their commits were ingested: look those few up
    store.execute(
        f"""
        UPDATE {w.first_deploy} f SET committed_at = c.committed_at
        FROM commits c WHERE f.committed_at IS NULL AND c.repo = f.repo AND c.sha = f.sha
        """
    )
    # a view: the join on the integer key is cheap, and materialising 10M rows is not
    store.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {w.changes} AS
        SELECT * FROM (
            SELECT f.repo, f.sha, f.committed_at, p.deployment_id, p.service, p.team, p.finished_at AS deployed_at,
                   {lead} AS lead_time_hours
            FROM {w.first_deploy} f JOIN {w.prod} p USING (k)
        ) {drop}
        """
    )

    def minutes(a: str, b: str) -> str:
        if profile == "devlake":  # rounded up to whole minutes, then negatives dropped: -30 s counts as 0
            # ceil(-0.5) is -0.0; adding 0 makes it a plain 0
            return f"CASE WHEN {_minutes(a, b)} > -1 THEN ceil({_minutes(a, b)}) + 0 END"
        return _minutes(a, b)

    cycle = (
        f"coalesce({minutes('first_commit_at', 'created_at')}, 0) + {minutes('created_at', 'merged_at')}"
        f" + {minutes('merged_at', 'deployed_at')}"
        if profile == "devlake"
        else minutes("coalesce(first_commit_at, created_at)", "deployed_at")
    )
    # a review after the merge (a post-merge approval or comment) is no phase of the PR's way
    # in; DevLake takes the first review whenever it came, and drops the negative span
    before_merge = "" if profile == "devlake" else "AND (pr.merged_at IS NULL OR r.submitted_at <= pr.merged_at)"
    store.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.prs} AS
        WITH first_commit AS (SELECT repo, number, min(authored_at) AS first_commit_at FROM pr_commits GROUP BY 1, 2),
        first_review AS (
            SELECT r.repo, r.number, min(r.submitted_at) AS first_review_at
            FROM pr_reviews r JOIN pull_requests pr USING (repo, number)
            WHERE r.reviewer IS DISTINCT FROM pr.author {before_merge} GROUP BY 1, 2
        ),
        shas AS (
            SELECT repo, number, merge_commit_sha AS sha FROM pull_requests WHERE merge_commit_sha IS NOT NULL
            {"" if profile == "devlake" else "UNION SELECT repo, number, sha FROM pr_commits"}
        ),
        deployed AS (
            SELECT s.repo, s.number, arg_min(p.deployment_id, p.k) AS deployment_id,
                   arg_min(p.finished_at, p.k) AS deployed_at,
                   arg_min(p.service, p.k) AS service, arg_min(p.team, p.k) AS team
            FROM shas s JOIN deployment_changes dc ON dc.repo = s.repo AND dc.sha = s.sha
            JOIN {w.prod} p USING (deployment_id)
            GROUP BY 1, 2
        ),
        joined AS (
            SELECT pr.repo, pr.number, pr.title, pr.author, pr.created_at, pr.merged_at,
                   fc.first_commit_at, fr.first_review_at, d.deployment_id, d.deployed_at, d.service, d.team
            FROM pull_requests pr
            LEFT JOIN first_commit fc USING (repo, number)
            LEFT JOIN first_review fr USING (repo, number)
            LEFT JOIN deployed d USING (repo, number)
            WHERE pr.merged_at IS NOT NULL
        )
        SELECT *, {minutes("first_commit_at", "created_at")} AS coding_minutes,
               {minutes("created_at", "first_review_at")} AS pickup_minutes,
               {minutes("first_review_at", "merged_at")} AS review_minutes,
               {minutes("merged_at", "deployed_at")} AS deploy_minutes,
               {cycle} AS cycle_minutes
        FROM joined
        """
    )


def _aggregates(store: Store, w: _Work, group: str, period: str, start, end, profile: str) -> pd.DataFrame:
    """Counts and medians per (group, period) and per group (period NULL), in one SQL pass each."""
    median = "quantile_disc" if profile == "devlake" else "quantile_cont"
    restore = {
        "fourkeys": "floor(restore_hours)",
        # lead_time_minutes = uint(resolution - creation in minutes): whole minutes, truncated
        "devlake": f"trunc({_minutes('opened_at', 'resolved_at')}) / 60",
    }.get(profile, "restore_hours")
    lead_source = f"SELECT *, cycle_minutes / 60.0 AS lead FROM {w.prs}" if profile == "devlake" else (
        f"SELECT *, lead_time_hours AS lead FROM {w.changes}"
    )  # fmt: skip
    sets = "GROUPING SETS ((grp, period_start), (grp))"
    # one sort for both quantiles when both interpolate
    lead_quantiles = (
        "quantile_disc(lead, 0.5) AS lead_time_median_hours, quantile_cont(lead, 0.9) AS lead_time_p90_hours"
        if profile == "devlake"
        else "quantile_cont(lead, [0.5, 0.9]) AS q, q[1] AS lead_time_median_hours, q[2] AS lead_time_p90_hours"
    )
    window = "{t} >= $start AND {t} < $end"
    recovery = "" if profile == "devlake" else (
        f", {median}(recovery_hours, 0.5) FILTER (failed) AS recovery_median_hours"
    )  # fmt: skip
    queries = {
        "deploys": f"""
            SELECT {group} AS grp, {_utc_trunc(period, "finished_at")} AS period_start,
                   count(*) AS deployments, count(*) FILTER (failed) AS failed_deployments,
                   count(DISTINCT {_utc_trunc("day", "finished_at")}) AS deploy_days,
                   avg(unplanned::INTEGER) AS rework_rate {recovery}
            FROM {w.deploys} WHERE {window.format(t="finished_at")} GROUP BY {sets}""",
        "lead": f"""
            SELECT {group} AS grp, {_utc_trunc(period, "deployed_at")} AS period_start,
                   {lead_quantiles}
            FROM ({lead_source}) WHERE {window.format(t="deployed_at")} GROUP BY {sets}""",
        "prs": f"""
            SELECT {group} AS grp, {_utc_trunc(period, "deployed_at")} AS period_start,
                   {median}(cycle_minutes / 60.0, 0.5) AS pr_cycle_median_hours
            FROM {w.prs} WHERE {window.format(t="deployed_at")} GROUP BY {sets}""",
        "incidents": f"""
            SELECT {group} AS grp, {_utc_trunc(period, "restore_from")} AS period_start,
                   count(*) AS incidents, {median}({restore}, 0.5) AS restore_median_hours
            FROM {w.incident_links} WHERE {window.format(t="restore_from")} GROUP BY {sets}""",
    }
    if profile == "devlake":
        # DevLake's failed deployment recovery time: one value per linked incident, not per
        # deployment, in whole minutes (TIMESTAMPDIFF(MINUTE, …) truncates), for incidents
        # resolved in the window of deployments finished in it
        queries["recovery"] = f"""
            SELECT {group} AS grp, {_utc_trunc(period, "finished_at")} AS period_start,
                   quantile_disc(trunc({_minutes("finished_at", "incident_resolved_at")}) / 60, 0.5)
                     AS recovery_median_hours
            FROM (SELECT d.*, l.resolved_at AS incident_resolved_at
                  FROM {w.incident_links} l JOIN {w.deploys} d USING (deployment_id))
            WHERE {window.format(t="finished_at")} AND {window.format(t="incident_resolved_at")}
            GROUP BY {sets}"""
    merged = None
    for query in queries.values():
        frame = store.query(query, {"start": start, "end": end})
        frame = frame.drop(columns=["q"], errors="ignore")
        frame["grp"] = frame["grp"].fillna("unassigned").astype(str)
        merged = frame if merged is None else merged.merge(frame, on=["grp", "period_start"], how="outer")
    return merged


def _evidence(store: Store, profile: str) -> tuple[bool, bool, list[str]]:
    """Whether the store can show change failures and rework at all, and notes saying why not.

    Incidents are a source of both; rollback and hotfix deployments are rework, and are
    change failures in the ``dora`` profile only; in ``fourkeys`` only an incident naming
    its root-cause commit can fail a deployment. With no source, a 0 % rate would be an
    absence of data presented as an elite score.
    """
    incidents, kinds, causes = store.execute(
        "SELECT EXISTS (SELECT 1 FROM incidents), "
        "EXISTS (SELECT 1 FROM deployments WHERE kind IN ('rollback', 'hotfix')), "
        f"EXISTS (SELECT 1 FROM incidents WHERE length(trim(cause_sha)) >= {SHA_PREFIX_MIN})"
    ).fetchone()
    failures, rework = incidents or (kinds and profile == "dora"), incidents or kinds
    if profile == "fourkeys" and incidents and not causes:
        return False, bool(rework), [
            "the fourkeys profile fails a deployment only through an incident's root-cause commit (cause_sha) and "
            "no incident names one, so the change failure rate cannot be measured (no data)"
        ]  # fmt: skip
    missing = [name for name, known in (("change failure rate", failures), ("rework rate", rework)) if not known]
    if not missing:
        return True, True, []
    sources = "incidents" if rework else "incidents, rollbacks or hotfixes"
    note = (f"the store has no {sources}, so the {' and '.join(missing)} cannot be measured (no data); "
            f"ingest incidents to measure {'them' if len(missing) > 1 else 'it'}")  # fmt: skip
    return bool(failures), bool(rework), [note]


def unknown_repositories(store: Store) -> pd.DataFrame:
    """Repositories that successful deployments name but the store has no commits of.

    Lead time needs each commit's time, and only an ingested history gives it, so these
    deployments' lead times are no data. The usual cause is a repository ingested under
    another name (``ingest git PATH`` names it after the directory; ``--name`` sets it).
    A deployment naming no repository counts under ``repo`` None unless the store holds
    exactly one repository (which it then belongs to).

    Returns
    -------
    DataFrame
        ``repo, deployments`` (successful ones), most deployments first.
    """
    return store.query(
        """
        WITH known AS (SELECT repo FROM repos)
        SELECT coalesce(d.repo, s.repo) AS repo, count(*) AS deployments
        FROM deployments d LEFT JOIN services s USING (service)
        WHERE d.status = 'success' AND CASE
            WHEN coalesce(d.repo, s.repo) IS NULL THEN (SELECT count(*) FROM known) <> 1
            ELSE coalesce(d.repo, s.repo) NOT IN (SELECT repo FROM known) END
        GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST
        """
    )


def repository_hint(store: Store) -> str | None:
    """One line saying which deployments' repositories have no commits and how to fix it, or None."""
    unknown = unknown_repositories(store)
    if unknown.empty:
        return None
    stored = store.query("SELECT repo FROM repos ORDER BY repo")["repo"].tolist()
    have = f"the store has {', '.join(repr(r) for r in stored)}" if stored else "the store has no repositories"
    named = unknown[unknown["repo"].notna()]
    unnamed = int(unknown.loc[unknown["repo"].isna(), "deployments"].sum())
    said = []
    if len(named):
        names = ", ".join(f"'{r}' ({n:,})" for r, n in zip(named["repo"], named["deployments"], strict=True))
        said.append(f"successful deployments name repositories without ingested commits: {names}")
    if unnamed:  # with exactly one repository in the store they would belong to it
        said.append(f"{unnamed:,} successful deployment{' names' if unnamed == 1 else 's name'} no repository")
    if len(named):
        fix = f"run 'releaserisk ingest git PATH --name {named['repo'].iloc[0]}'"
    elif stored:
        fix = "give deployments (or services) a repo column naming one of them"
    else:
        fix = "run 'releaserisk ingest git PATH'"
    return f"{'; '.join(said)}; {have}. Their lead times cannot be measured: {fix}"


def _source_notes(store: Store, profile: str, production: Sequence[str]) -> list[str]:
    """Why a number will be no data (or zero) for want of a source the profile reads."""
    notes = []
    environments = store.query(
        "SELECT lower(environment) AS name, count(*) AS n FROM deployments WHERE status = 'success' "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    if len(environments) and not set(environments["name"].dropna()) & set(production):
        seen = ", ".join(f"{name} ({n:,})" for name, n in zip(environments["name"], environments["n"], strict=True))
        notes.append(
            f"no successful deployment is in a production environment ({', '.join(production)}); the store's "
            f"environments are {seen}: set production_environments"
        )
    unlinked = repository_hint(store)
    if unlinked:
        notes.append(unlinked)
    if profile == "devlake" and not store.execute("SELECT count(merged_at) FROM pull_requests").fetchone()[0]:
        notes.append(
            "the devlake profile measures lead time per merged pull request and the store has none, so lead "
            "time is no data; ingest pull requests (ingest github, or ingest pull-requests FILE)"
        )
    return notes


def _finish(
    frame: pd.DataFrame, span_days: pd.Series, benchmark: int, evidence: tuple[bool, bool] = (True, True)
) -> pd.DataFrame:
    """Rates from counts, zeros for empty periods, tiers per metric; no data without ``evidence``."""
    for column in ("deployments", "failed_deployments", "deploy_days", "incidents"):
        frame[column] = frame[column].fillna(0).astype(int)
    weeks = span_days / 7.0
    frame["deploys_per_week"] = frame["deployments"] / weeks
    frame["deploys_per_day"] = frame["deployments"] / span_days
    frame["deploy_days_per_week"] = frame["deploy_days"] / weeks
    frame["change_failure_rate"] = (frame["failed_deployments"] / frame["deployments"]).where(frame["deployments"] > 0)
    failures, rework = evidence
    if not failures:
        frame["change_failure_rate"] = np.nan
    if not rework:
        frame["rework_rate"] = np.nan
    for metric in _TIER_COLUMNS:
        frame[f"{metric}_tier"] = _tiers(metric, frame[metric], benchmark)
    return frame


_SUMMARY_COLUMNS = [
    "deployments", "deploys_per_week", "deploys_per_day", "deploy_days_per_week",
    "lead_time_median_hours", "lead_time_p90_hours", "change_failure_rate", "failed_deployments",
    "recovery_median_hours", "incidents", "restore_median_hours", "rework_rate", "pr_cycle_median_hours",
    *[f"{m}_tier" for m in _TIER_COLUMNS],
]  # fmt: skip


def _fourkeys_buckets(store: Store, w: _Work, group: str, groups: list[str], start, end) -> dict[str, str]:
    """Four Keys' deployment-frequency bucket of each group over the window.

    Source: dora-team/fourkeys, METRICS.md, "Deployment Frequency" (the dashboard's
    query). Over a calendar of days, grouped into weeks starting on Sunday (BigQuery's
    ``TIMESTAMP_TRUNC(day, WEEK)``), each week has ``days_deployed`` (distinct UTC
    days with a deployment) and ``week_deployed`` (0/1); each week row also carries
    ``monthly_deploys``, the deployed weeks of the month its week starts in. The bucket
    is Daily when the interpolated median of ``days_deployed`` is at least 3, Weekly
    when that of ``week_deployed`` is at least 1 (most weeks deploy), Monthly when that
    of ``monthly_deploys`` is at least 1, else Yearly. Departure: the calendar is the
    window's days, where Four Keys takes the last three months after its first event.
    """
    rows = store.execute(
        f"""
        WITH calendar AS (
            SELECT CAST(d AS DATE) AS day, CAST(d AS DATE) - CAST(dayofweek(d) AS INTEGER) AS week
            FROM range(CAST($first AS TIMESTAMP), CAST($last AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)
        ),
        deploy_days AS (
            SELECT DISTINCT {group} AS grp, CAST(make_timestamp(epoch_us(finished_at)) AS DATE) AS day
            FROM {w.deploys} WHERE finished_at >= $start AND finished_at < $end
        ),
        weeks AS (
            SELECT g.grp, c.week, count(dd.day) AS days_deployed, (count(dd.day) > 0)::INTEGER AS week_deployed
            FROM (SELECT unnest($groups) AS grp) g CROSS JOIN calendar c
            LEFT JOIN deploy_days dd ON dd.grp = g.grp AND dd.day = c.day
            GROUP BY g.grp, c.week
        ),
        monthly AS (
            SELECT *, sum(week_deployed) OVER (PARTITION BY grp, date_trunc('month', week)) AS monthly_deploys
            FROM weeks
        )
        SELECT grp,
               CASE WHEN quantile_cont(days_deployed, 0.5) >= 3 THEN 'Daily'
                    WHEN quantile_cont(week_deployed, 0.5) >= 1 THEN 'Weekly'
                    WHEN quantile_cont(monthly_deploys, 0.5) >= 1 THEN 'Monthly'
                    ELSE 'Yearly' END
        FROM monthly GROUP BY grp
        """,
        {
            "groups": groups,
            "start": start,
            "end": end,
            "first": start.tz_convert("UTC").tz_localize(None).floor("D"),
            "last": (end - pd.Timedelta(microseconds=1)).tz_convert("UTC").tz_localize(None).floor("D"),
        },
    ).fetchall()
    return dict(rows)


def dora_metrics(
    store: Store,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    *,
    freq: str = "W",
    by: str | None = None,
    profile: str = "dora",
    benchmark: int = 2024,
    settings: Settings | None = None,
    count_flag_releases: bool = False,
) -> DoraResult:
    """Compute DORA metrics over ``[since, until)``.

    Parameters
    ----------
    store : Store
    since, until : str or datetime, optional
        Window (UTC when naive); default: the span of the deployments.
    freq : {"W", "M"}
        Period of ``by_period``: ISO week (Monday start) or calendar month.
    by : {"service", "team", "repo"}, optional
        Grouping of the summary and per-period rows.
    profile : {"dora", "devlake", "fourkeys"}
        Definitions to follow (see the module docstring).
    benchmark : {2023, 2024}
        DORA report year for the tiers.
    settings : Settings, optional
        Production environment names.
    count_flag_releases : bool
        Opt-in departure from plain DORA (Sleuth's practice): a production flag turned on or
        ramped up is a release, an incident whose first-ranked candidate cause is a flag change
        fails that flag release instead of the latest prior deployment, and the summary gains
        ``flag_releases``, ``releases``, ``change_failure_rate_with_flags`` and kill-switch
        time (:func:`releaserisk.flags.with_flag_releases`); the incidents drill-down gains
        each incident's first candidate cause and kill-switch minutes.

    Returns
    -------
    DoraResult
    """
    settings = settings or Settings()
    if profile not in PROFILES:
        raise InputError(f"profile must be one of {', '.join(PROFILES)}")
    if by is not None and by not in _GROUPS:
        raise InputError(f"by must be one of {', '.join(_GROUPS)}")
    if freq not in ("W", "M"):
        raise InputError("freq must be 'W' (ISO week) or 'M' (month)")
    if benchmark not in BENCHMARKS:
        raise InputError(f"benchmark year must be one of {', '.join(map(str, BENCHMARKS))}")
    start, end = _window(store, since, until)
    period = "week" if freq == "W" else "month"
    _drop_dead(store)
    work = _Work.new()
    group = "'all'" if by is None else f"coalesce(CAST({_GROUPS[by]} AS VARCHAR), 'unassigned')"
    try:
        if count_flag_releases:
            from releaserisk.flags import write_incident_causes

            write_incident_causes(store, work.incident_causes, settings)
        _prepare(store, settings, profile, work, flags=count_flag_releases)
        _detail_tables(store, profile, work)
        stats = _aggregates(store, work, group, period, start, end, profile)
    except BaseException:  # interrupted (a long call in a notebook) or failed: drop its tables next time
        _bury(store, work)
        raise

    *evidence, notes = _evidence(store, profile)
    notes += _source_notes(store, profile, settings.production_environments)
    notes += [note for note in [unknown_commit_note(store)] if note]
    groups = sorted(set(stats["grp"])) if len(stats) else ["all"]
    summary = pd.DataFrame({"grp": groups}).merge(stats[stats["period_start"].isna()], on="grp", how="left")
    summary = _finish(
        summary, pd.Series((end - start) / pd.Timedelta(days=1), index=summary.index), benchmark, evidence
    )

    first = pd.Timestamp(start).floor("D") - pd.Timedelta(days=start.weekday()) if period == "week" else (
        pd.Timestamp(start.year, start.month, 1, tz="UTC"))  # fmt: skip
    starts = pd.date_range(first, end - pd.Timedelta(seconds=1), freq="W-MON" if period == "week" else "MS")
    calendar = pd.MultiIndex.from_product([groups, starts], names=["grp", "period_start"]).to_frame(index=False)
    per_period = stats[stats["period_start"].notna()].copy()
    per_period["period_start"] = pd.to_datetime(per_period["period_start"], utc=True)
    by_period = calendar.merge(per_period, on=["grp", "period_start"], how="left")
    span_end = by_period["period_start"] + (pd.Timedelta(days=7) if period == "week" else pd.offsets.MonthBegin(1))
    clipped = span_end.clip(upper=end) - by_period["period_start"].clip(lower=start)
    by_period = _finish(by_period, clipped / pd.Timedelta(days=1), benchmark, evidence)
    iso = by_period["period_start"].dt.isocalendar()
    by_period.insert(1, "period", [f"{y}-W{w:02d}" for y, w in zip(iso["year"], iso["week"], strict=True)]
                     if period == "week" else by_period["period_start"].dt.strftime("%Y-%m"))  # fmt: skip

    def window_rows(table: str, column: str) -> _LazyFrame:
        sql = f"SELECT * FROM {table} WHERE {column} >= $start AND {column} < $end ORDER BY {column}"
        return _LazyFrame(store, sql, {"start": start, "end": end})

    drill = {
        "deployments": window_rows(f"(SELECT * EXCLUDE (k) FROM {work.deploys})", "finished_at"),
        "changes": window_rows(work.changes, "deployed_at"),
        "pull_requests": window_rows(work.prs, "deployed_at"),
        "incidents": window_rows(work.incident_links, "opened_at"),
    }
    if profile == "fourkeys":
        buckets = _fourkeys_buckets(store, work, group, groups, start, end)
        summary["deployment_frequency_bucket"] = summary["grp"].map(buckets)
    summary = summary.rename(columns={"grp": "group"})
    by_period = by_period.rename(columns={"grp": "group"})
    result = DoraResult(
        summary=summary[
            ["group", *_SUMMARY_COLUMNS, *(["deployment_frequency_bucket"] if profile == "fourkeys" else [])]
        ],
        by_period=by_period[["group", "period", "period_start", *_SUMMARY_COLUMNS]],
        drill=drill,
        profile=profile,
        window=(start, end),
        params={"freq": freq, "by": by, "benchmark": benchmark},
        notes=notes,
        failures_tracked=evidence[0],
    )
    if count_flag_releases:
        from releaserisk.flags import with_flag_releases

        result.summary = with_flag_releases(result.summary, store, settings, since=start, until=end, by=by)
        result.notes.append("flag releases counted (a departure from DORA): see flag_releases and releases")
    weakref.finalize(result, _bury, store, work)
    return result
