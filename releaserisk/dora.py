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

Impossible spans
----------------
Every duration between two independently recorded times (lead time, PR phases, recovery,
restore) goes through one guard (:mod:`releaserisk.definitions`): a span that ends before
it starts is clock skew; it is left out of every aggregate, kept in the drill-down with
``clock_skew`` set, and counted in a note. A peer profile that does otherwise follows the
peer (``span_guard`` in the profile table).

Uncertainty
-----------
Every aggregate in ``frame`` and ``by_period`` carries n and a 95 % interval, and each
period's change from the previous one a two-sample test (:mod:`releaserisk.intervals`;
the columns are listed in :class:`DoraResult`).

Profiles
--------
``dora``, ``devlake`` and ``fourkeys`` are columns of one table of named rule choices,
:data:`releaserisk.profiles.PROFILE_RULES`, each peer choice with its source beside it;
this module reads the choices and never a profile's name. In short: both peers count a
deployment as failed only when an incident is linked to it, and its recovery ends when
its incidents are resolved. ``fourkeys`` (dora-team/fourkeys, METRICS.md and queries/):
a deployment traced to no commit (none listed, its sha not in the history) is none at all;
lead time per commit and deployment listing it, in whole minutes, non-positive values dropped,
interpolated median;
time to restore in whole hours from the earlier of the incident's opening and its root
cause's deployment; deployment frequency buckets (:func:`_fourkeys_buckets`); an incident
fails the first deployment, of any service, that shipped its root-cause commit (named in full:
the SQL joins by equality), whenever it shipped, and the change failure rate counts every
production deployment listing a root cause among its changes, once per incident (so it can
exceed 1, and then has no interval). ``devlake``
(backend/plugins/dora/tasks/change_lead_time_calculator.go and the DORA dashboards): per-PR
cycle time = the sum of the parts that exist (coding, opened → merged, deploy), each
rounded up to whole minutes and dropped when negative; every merged PR is listed,
deployed or not; a deployment with no earlier-finished successful production deployment of
its service and repository contributes no changes, even when changes are listed for it; an
empty PR author excludes no review; the deploy phase ends at the earliest deployment by
start time whose changes contain the merge commit, in any repository; incidents link to the latest
deployment of any service finished strictly before they opened; lower medians; restore and recovery in
whole minutes, recovery one value per linked incident (a negative one counted, as its
dashboard does); time to restore over the incidents resolved in the window or period (the
incident count: those opened); deployment frequency also as its dashboard's median deployment
days per week or month (:func:`_devlake_frequency`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from releaserisk import intervals
from releaserisk.choices import DORA_DETAILS
from releaserisk.config import Settings
from releaserisk.definitions import (
    guarded,
    is_clock_skew,
    production_deployment,
    production_environments,
    span_hours,
    span_minutes,
)
from releaserisk.dora_compare import ProfileComparison, compare_results
from releaserisk.errors import InputError, StoreError
from releaserisk.escape import json_records, json_safe
from releaserisk.formatting import p_value
from releaserisk.inputs import FUTURE_TOLERANCE, parse_instant
from releaserisk.profiles import PROFILES, profile_rules
from releaserisk.store import SHA_PREFIX_MIN, Store, sha_prefix_match, unknown_commit_note

__all__ = [
    "BENCHMARKS",
    "PROFILES",
    "DoraResult",
    "change_failures",
    "dora_metrics",
    "repository_hint",
    "tier",
    "unknown_repositories",
]

_GROUPS = {"service": "service", "team": "team", "repo": "repo"}
_T = TypeVar("_T")

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
    names = np.array([row[0] for row in BENCHMARKS[benchmark]])
    return np.where(np.isnan(numbers), "no data", names[_tier_index(metric, numbers, benchmark)])


def _tier_index(metric: str, numbers: np.ndarray, benchmark: int) -> np.ndarray:
    """The position in ``BENCHMARKS[benchmark]`` of each value's tier (the last for a missing value)."""
    column = _TIER_COLUMNS[metric]
    rows = BENCHMARKS[benchmark]
    # the first tier whose bound the value meets: at least it for frequency, at most it for the rest
    meets = [numbers >= row[column] if metric == "deploys_per_week" else numbers <= row[column] for row in rows]
    return np.select(meets, np.arange(len(rows)), default=len(rows) - 1)


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

    def pages(self, rows: int) -> Iterator[pd.DataFrame]:
        """The rows in pages of at most ``rows``, read as Arrow record batches (never all at once)."""
        if self._frame is not None:
            for begin in range(0, len(self._frame), rows):
                yield self._frame.iloc[begin : begin + rows]
            return
        try:
            reader = self._store.connection.execute(self._sql, self._params).fetch_record_batch(rows)
            for batch in reader:
                yield batch.to_pandas()
        except duckdb.ConnectionException:
            raise StoreError(
                "DORA drill-down frames are read on first use: use them before closing the store"
            ) from None


_CALLS = itertools.count(1)


class _Work(NamedTuple):
    """Names of one :func:`dora_metrics` call's temp tables (and its views, ``changes`` and ``deploys``).

    Each call gets its own, so an earlier result's drill-downs stay readable without
    being fetched first (comparing profiles on a 1M-deployment store would otherwise
    read every earlier drill-down row: 4-6 s a call). A result's tables are dropped
    at the next call on that store after the result is garbage-collected.
    """

    prod: str
    incident_links: str
    deploys: str  # a view: prod with its flags
    flags: str
    first_deploy: str
    prs: str
    changes: str
    incident_causes: str  # with count_flag_releases: each incident's first candidate cause (releaserisk.flags)
    cells: str  # while the lead-time spans are read: each deployment's (group, period) cell
    untraced: str  # deployments_counted "traced to a commit": the successful deployments traced to none
    lead_values: str  # lead times aggregated in DuckDB: each one's cell, deployment and value, read twice

    @classmethod
    def new(cls) -> _Work:
        n = next(_CALLS)
        return cls(*(f"_dora{n}_{name}" for name in cls._fields))

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.prod, self.incident_links, self.flags, self.first_deploy, self.prs, self.incident_causes,
                self.cells, self.untraced, self.lead_values)  # fmt: skip


#: Working tables of results that were garbage-collected, per store: dropped at a safe
#: point (the next call), never from a finalizer that could run mid-query.
_DEAD: weakref.WeakKeyDictionary[Store, list[_Work]] = weakref.WeakKeyDictionary()


def _drop_dead(store: Store) -> None:
    for work in _DEAD.pop(store, []):
        for view in (work.changes, work.deploys):
            store.execute(f"DROP VIEW IF EXISTS {view}")
        for table in work.tables:
            store.execute(f"DROP TABLE IF EXISTS {table}")


def _bury(store: Store, work: _Work) -> None:
    _DEAD.setdefault(store, []).append(work)


#: Metrics that carry an interval: how it is computed and from which columns.
#: ("frequency",): exact Poisson on deployments over the window's weeks;
#: ("rate", numerator): Wilson on numerator / deployments;
#: ("spans", list column, q): order-statistic interval of the q quantile of the spans.
_INTERVALS: dict[str, tuple] = {
    "deploys_per_week": ("frequency",),
    "lead_time_median_hours": ("spans", "lead_spans", 0.5),
    "lead_time_p90_hours": ("spans", "lead_spans", 0.9),
    "change_failure_rate": ("rate", "failed_deployments"),
    "recovery_median_hours": ("spans", "recovery_spans", 0.5),
    "restore_median_hours": ("spans", "restore_spans", 0.5),
    "rework_rate": ("rate", "unplanned_deployments"),
    "pr_cycle_median_hours": ("spans", "cycle_spans", 0.5),
}
_SIGNIFICANCE = 0.05

#: Without a source of change failures (or of rework) for the profile (:func:`_evidence`),
#: the counts and n that rest on it are unknown (null), not 0 failed of n: summary and
#: per-period columns, then the deployments drill-down's columns.
_UNOBSERVED_COUNTS = {
    "change_failure_rate": ("failed_deployments", "change_failure_rate_n", "recovery_median_hours_n"),
    "rework_rate": ("unplanned_deployments", "rework_rate_n"),
}
_UNOBSERVED_DETAIL = {
    "change_failure_rate": ("incidents", "failed", "failure_reason", "restored_at", "recovery_hours"),
    "rework_rate": ("rolled_back", "hotfixed", "unplanned"),
}

#: Clock-skew counts and what they count, for the note.
_SKEW_NOTES = {
    "lead_skewed": (
        "change with a commit time after its deployment",
        "changes with a commit time after their deployment",
    ),
    "pr_skewed": (
        "pull request with a phase that ends before it starts",
        "pull requests with a phase that ends before it starts",
    ),
    "recovery_skewed": (
        "failed deployment restored before it finished",
        "failed deployments restored before they finished",
    ),
    "restore_skewed": ("incident resolved before it started", "incidents resolved before they started"),
}


#: Text labels of the metrics with an interval, in the order the summaries print them.
_LABELS = {
    "deploys_per_week": "deployments", "lead_time_median_hours": "lead time median",
    "lead_time_p90_hours": "lead time p90", "change_failure_rate": "change failure rate",
    "recovery_median_hours": "recovery (failed)", "restore_median_hours": "time to restore",
    "rework_rate": "rework rate", "pr_cycle_median_hours": "PR cycle median",
}  # fmt: skip


@dataclass
class DoraResult:
    """DORA metrics with their intervals and drill-down frames.

    Attributes
    ----------
    frame : DataFrame
        The summary table, one row per group: ``deployments``, ``deploys_per_week``,
        ``deploys_per_day``, ``deploy_days_per_week``, ``lead_time_median_hours``,
        ``lead_time_p90_hours``, ``change_failure_rate``, ``failed_deployments``,
        ``recovery_median_hours``, ``incidents``, ``restore_median_hours``, ``rework_rate``,
        ``pr_cycle_median_hours`` (hours, rates as fractions), a ``<metric>_tier`` for the four
        tiered metrics, and for every metric with an interval (``deploys_per_week``, the
        lead-time median and p90, ``change_failure_rate``, ``recovery_median_hours``,
        ``restore_median_hours``, ``rework_rate``, ``pr_cycle_median_hours``) these stable
        columns:

        ``<metric>_n``
            observations behind the value (deployments for frequency and rates, spans
            for medians and p90);
        ``<metric>_ci_low``, ``<metric>_ci_high``
            the 95 % interval (NaN: no data, or unbounded at this n): Wilson for rates,
            exact Poisson (Garwood) for deployments per week, distribution-free
            order-statistic for medians and p90 (see :mod:`releaserisk.intervals`);
        ``<metric>_tiers``
            the tiers the interval spans, best first, comma-separated (tiered metrics only;
            empty without data).

        Where the profile has a ``frequency_bucket`` rule, also ``deployment_frequency_bucket``:
        Four Keys' bucket (:func:`_fourkeys_buckets`) or DevLake's dashboard text
        (:func:`_devlake_frequency`).
        Where it has a ``stat_buckets`` rule, also ``lead_time_bucket``,
        ``change_failure_rate_bucket`` and ``restore_bucket``: the Four Keys dashboard's
        texts over the window's last three months (:func:`_fourkeys_stat_buckets`).
    by_period : DataFrame
        The same per group and ISO week (or month), plus ``period``, ``period_start`` and per
        metric with an interval ``<metric>_change_p_value`` (two-sided, against the group's
        previous period: two-proportion z-test or Fisher's exact for rates, Mann–Whitney for
        medians and p90, exact conditional Poisson test for deployments per week) and
        ``<metric>_change_significant`` (p < 0.05; missing when either period has no data).
        Weeks without deployments have 0 deployments.
    notes : list of str
        Why a metric is no data for the whole store, and how many impossible spans (clock
        skew) were left out.
    failures_tracked : bool
        False when the store has no source of change failures for the profile: then
        ``failed_deployments``, ``change_failure_rate_n`` and ``recovery_median_hours_n`` are
        null (``Int64``), and so are the deployments drill-down's ``failed``, ``incidents``,
        ``failure_reason``, ``restored_at`` and ``recovery_hours`` — unknown, not 0 or false.
    rework_tracked : bool
        The same for rework (incidents, rollbacks or hotfixes): ``unplanned_deployments`` and
        ``rework_rate_n``, and the drill-down's ``rolled_back``, ``hotfixed``, ``unplanned``.
    rules : dict
        The profile's rule choices (:func:`releaserisk.profiles.profile_rules`).
    comparison : ProfileComparison or None
        With ``compare``: the profiles side by side and why they disagree, per row
        (:class:`releaserisk.dora_compare.ProfileComparison`).
    deployments, changes, pull_requests, incidents : DataFrame
        The rows behind the numbers (failure yes/no and why, lead time per commit, PR
        phases, incident links and how they were made), each with ``clock_skew``. Read from
        the store on first use, so use them before closing it; :meth:`pages` reads one in
        pages instead.
    """

    frame: pd.DataFrame
    by_period: pd.DataFrame
    drill: dict[str, _LazyFrame] = field(repr=False, default_factory=dict)
    profile: str = "dora"
    window: tuple[Any, Any] = (None, None)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures_tracked: bool = True
    rework_tracked: bool = True
    rules: dict[str, str] = field(default_factory=dict)
    comparison: ProfileComparison | None = None
    _work: _Work | None = field(default=None, repr=False)

    @property
    def deployments(self) -> pd.DataFrame:
        """Production deployments in the window: failed or not, why, recovery hours."""
        return self.drill["deployments"].get()

    @property
    def changes(self) -> pd.DataFrame:
        """Commits first deployed to production in the window, with their lead time (``fourkeys``: every
        production deployment listing a commit, as its lead time counts them)."""
        return self.drill["changes"].get()

    @property
    def pull_requests(self) -> pd.DataFrame:
        """Merged pull requests of the window (deployed in it, or merged in it where listed), phases in minutes."""
        return self.drill["pull_requests"].get()

    @property
    def incidents(self) -> pd.DataFrame:
        """Incidents opened in the window, the deployment each is linked to, and how."""
        return self.drill["incidents"].get()

    def pages(self, name: str, rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
        """A drill-down frame in pages of at most ``rows`` rows, without building it whole.

        Parameters
        ----------
        name : {"deployments", "changes", "pull-requests", "incidents"}
        rows : int
            Rows per page.

        Yields
        ------
        DataFrame

        Raises
        ------
        InputError
            An unknown name.
        """
        yield from self.drill[self._drill_name(name)].pages(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and per-period table (no NaN: missing values are None).

        Returns
        -------
        dict
            ``profile, window, summary, by_period, notes``.
        """
        return {
            "profile": self.profile,
            "window": [str(self.window[0]), str(self.window[1])],
            "summary": json_safe(_records(self.frame)),
            "by_period": json_safe(_records(self.by_period)),
            "notes": list(self.notes),
        }

    @staticmethod
    def _drill_name(name: str) -> str:
        if name not in DORA_DETAILS:
            raise InputError(f"detail must be one of {', '.join(DORA_DETAILS)}")
        return name.replace("-", "_")

    def detail(self, name: str) -> pd.DataFrame:
        """A drill-down frame by name.

        Parameters
        ----------
        name : {"deployments", "changes", "pull-requests", "incidents"}

        Returns
        -------
        DataFrame

        Raises
        ------
        InputError
            An unknown name.
        """
        return self.drill[self._drill_name(name)].get()

    @property
    def unobserved(self) -> tuple[list[str], str | None]:
        """The deployments drill-down's columns that are unknown for want of a source, and why (a note).

        Returns
        -------
        (list of str, str or None)
            The columns (:attr:`failures_tracked`, :attr:`rework_tracked`) and the note that
            says which source is missing; ``([], None)`` when failures and rework are observed.
        """
        columns = _unobserved_columns((self.failures_tracked, self.rework_tracked))
        return columns, (self.notes[0] if columns else None)  # _evidence's note comes first

    def detail_text(self, name: str) -> str:
        """A drill-down frame as text: a column without a source says ``unknown``, and why, once.

        Parameters
        ----------
        name : {"deployments", "changes", "pull-requests", "incidents"}

        Returns
        -------
        str
            The rows (a cell without a value as ``—``), or ``no … in START → END``.

        Raises
        ------
        InputError
            An unknown name.
        """
        frame = self.detail(name)
        if not len(frame):
            return f"no {name.replace('-', ' ')} in {_span(self.window)}"
        columns, note = self.unobserved if name == "deployments" else ([], None)
        # a cell without a value reads "—", as in the weekly report: not pandas' NaN, NaT or None
        shown = frame.astype(object).where(frame.notna(), "—")
        if not columns:
            return shown.to_string(index=False)
        shown[columns] = "unknown"
        return shown.to_string(index=False) + f"\nnote: {', '.join(columns)} unknown: {note}"

    def describe(self, metric: str, group: str | None = None, period: str | None = None) -> str:
        """One metric as a sentence with its n, interval and (per period) change.

        E.g. ``28.6 % (4 of 14; 95 % CI 12–55 %) — not a significant change from 7.7 % (1 of 13)``.

        Parameters
        ----------
        metric : str
            A metric with an interval (a key of the ``<metric>_ci_low`` columns).
        group : str, optional
            The group (default: the first).
        period : str, optional
            A period of ``by_period`` (``2026-W03`` or ``2026-03``) to describe against its
            previous period; default: the summary over the window.

        Returns
        -------
        str

        Raises
        ------
        InputError
            An unknown metric, group or period.
        """
        if metric not in _INTERVALS:
            raise InputError(f"metric must be one of {', '.join(_INTERVALS)}")
        if period is None:
            rows = self.frame if group is None else self.frame[self.frame["group"] == group]
            if rows.empty:
                raise InputError(f"no group {group!r}")
            return _describe(metric, rows.iloc[0], None)
        rows = self.by_period if group is None else self.by_period[self.by_period["group"] == group]
        rows = rows[rows["group"] == rows["group"].iloc[0]] if len(rows) else rows
        at = np.flatnonzero((rows["period"] == period).to_numpy())
        if not len(at):
            raise InputError(f"no period {period!r}")
        previous = rows.iloc[at[0] - 1] if at[0] > 0 else None
        return _describe(metric, rows.iloc[at[0]], previous)

    def summary(self) -> str:
        """A readable summary: every metric with its n, 95 % interval and the tiers it spans.

        Returns
        -------
        str
        """
        lines = [f"DORA metrics ({self.profile}) {_span(self.window)}"]
        for _, row in self.frame.iterrows():
            lines.append(f"  {row['group']}")
            for metric, label in _LABELS.items():
                tiers = row.get(f"{metric}_tiers") or ""
                lines.append(f"    {label:<21}{_describe(metric, row, None)}" + (f"  [{tiers}]" if tiers else ""))
            if "deployment_frequency_bucket" in row:
                peer = "DevLake" if self.rules.get("frequency_bucket", "").startswith("median") else "Four Keys"
                bucket = str(row["deployment_frequency_bucket"])
                # DevLake's dashboard text "1 deployment days per month(medium)" (kept verbatim in the frame),
                # read as every other line: its number, the noun in the right number, the tier in brackets
                said = re.fullmatch(r"(\d+) deployment days per (\w+)\((\w+)\)", bucket)
                if said:
                    days = int(said[1])
                    bucket = f"{days} deployment day{'' if days == 1 else 's'} per {said[2]}  [{said[3]}]"
                lines.append(f"    {peer + ' frequency':<21}{bucket}")
            if "lead_time_bucket" in row:
                lines.append(
                    f"    {'Four Keys buckets':<21}lead time {row['lead_time_bucket']}, change failure rate "
                    f"{row['change_failure_rate_bucket']}, time to restore {row['restore_bucket']}"
                )
            if "flag_releases" in row and pd.isna(row["flag_releases"]):  # no flag change in the store
                lines.append(f"    {'flag releases':<21}no data (no flag changes ingested)")
                lines.append(f"    {'kill switch':<21}no data (no flag changes ingested)")
            elif "flag_releases" in row:  # count_flag_releases
                rate, kill = row["change_failure_rate_with_flags"], row["kill_switch_median_minutes"]
                lines.append(
                    f"    {'flag releases':<21}{row['flag_releases']:,} ({row['failed_flag_releases']} failed); "
                    f"with deployments {row['releases']:,}, failure rate "
                    + ("no data" if pd.isna(rate) else f"{rate:.1%}".replace("%", " %"))
                )
                lines.append(
                    f"    {'kill switch':<21}median "
                    + ("no data" if pd.isna(kill) else f"{kill:.1f} min")
                    + f" (n {row['kill_switch_n']})"
                )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def period_summary(self) -> str:
        """Every period of :attr:`by_period` as text: each metric with its n, interval and change.

        Each line reads as :meth:`describe` with a period: the value against the group's
        previous period (``— a significant change from …``, p < 0.05), or the value alone
        for a group's first period and where either period has no data.

        Returns
        -------
        str
            ``per month (each against the month before; …)`` (or week), then per group
            and period one line per metric with data (deployments always have a value);
            ``no periods in START → END`` without any.
        """
        unit = "month" if self.params.get("freq") in ("M", "month") else "week"
        if not len(self.by_period):
            return f"no periods in {_span(self.window)}"
        lines = [f"per {unit} (each against the {unit} before; a metric without data in a {unit} is left out)"]
        for group, rows in self.by_period.groupby("group", sort=False):
            lines.append(f"  {group}")
            previous = None
            for _, row in rows.iterrows():
                lines.append(f"    {row['period']}")
                described = ((label, _describe(metric, row, previous)) for metric, label in _LABELS.items())
                lines.extend(f"      {label:<21}{text}" for label, text in described if text != "no data")
                previous = row
        return "\n".join(lines)


#: Rows as JSON-safe dicts (analytics and the profile comparison read it from here too).
_records = json_records


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _value_text(metric: str, row: pd.Series) -> str:
    """A metric's value with its n: ``28.6 % (4 of 14`` (closed by the caller)."""
    value, kind = row[metric], _INTERVALS[metric][0]
    if kind != "frequency" and _missing(value):  # its count and n may be unknown (null) too
        return "no data"
    n = int(row.get(f"{metric}_n", 0) or 0)
    if kind == "rate":
        return f"{value:.1%}".replace("%", " %") + f" ({int(row[_INTERVALS[metric][1]])} of {n}"
    if kind == "frequency":
        return f"{_per_week(value)}/week ({n} deployment{'s' if n != 1 else ''}"
    if _missing(value):
        return "no data"
    clusters = _clusters(metric, row)
    if clusters is None:
        return f"{value:.1f} h (n {n}"
    # the commits of one deployment are no independent evidence: the interval counts deployments too
    return f"{value:.1f} h (n {n} in {clusters} deployment{'s' if clusters > 1 else ''}"


def _clusters(metric: str, row: pd.Series) -> int | None:
    """The deployments a lead-time or PR-cycle metric's n values come from, when fewer than n (else None)."""
    spans = _INTERVALS[metric][1] if _INTERVALS[metric][0] == "spans" else None
    deployments = row.get(_CLUSTERS[spans]) if spans in _CLUSTERS else None
    n = int(row.get(f"{metric}_n", 0) or 0)
    if _missing(deployments) or not 0 < int(deployments) < n:
        return None
    return int(deployments)


def _span(window) -> str:
    """``START → END`` (UTC): days, with the time of day where a bound has one (``--until 2026-02-01T00:00+14:00``
    ends at 2026-01-31 10:00 UTC, which a day alone would misstate)."""
    start, end = (pd.Timestamp(t).tz_convert("UTC") if pd.Timestamp(t).tzinfo else pd.Timestamp(t) for t in window)
    timed = any(t != t.normalize() for t in (start, end))
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC" if timed else f"{start:%Y-%m-%d} → {end:%Y-%m-%d}"


def _per_week(value: float) -> str:
    """A rate per week with two decimals, or two significant digits below 0.005: never "0.00" for a rate above 0."""
    if value <= 0 or value >= 0.005:
        return f"{value:.2f}"
    return f"{value:.{1 - math.floor(math.log10(value))}f}"


def _interval_text(metric: str, row: pd.Series) -> str:
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    kind = _INTERVALS[metric][0]
    if kind == "rate":
        if _missing(low):  # Four Keys' numerator can exceed its deployments: no binomial interval
            return "no binomial interval: more failures than deployments"
        return f"95 % CI {low * 100:.0f}–{high * 100:.0f} %"
    unit = "/week" if kind == "frequency" else " h"
    if _missing(low) and _missing(high):
        clusters = _clusters(metric, row)
        if clusters is not None:  # n 13 changes, but from one deployment: the deployments bound it
            return f"95 % CI unbounded with {clusters} deployment{'s' if clusters > 1 else ''}"
        return "95 % CI unbounded at this n"
    lo = "unbounded" if _missing(low) else _per_week(low) if kind == "frequency" else f"{low:.1f}"
    hi = "unbounded" if _missing(high) else _per_week(high) if kind == "frequency" else f"{high:.1f}"
    return f"95 % CI {lo}–{hi}{unit}"


def _describe(metric: str, row: pd.Series, previous: pd.Series | None) -> str:
    text = _value_text(metric, row)
    if text == "no data":
        return text
    text += f"; {_interval_text(metric, row)})"
    if previous is None:
        return text
    p = row.get(f"{metric}_change_p_value")
    before = _value_text(metric, previous)
    if _missing(p) or before == "no data":
        return text
    before += ")"
    if row.get(f"{metric}_change_significant"):
        return f"{text} — a significant change from {before} ({p_value(p)})"
    return f"{text} — not a significant change from {before}"


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


#: How long the store's history may run on after the default window's end before a note says so.
_QUIET_TAIL = pd.Timedelta(days=7)


def _quiet_tail_note(store: Store, end: pd.Timestamp) -> list[str]:
    """A note when the default window (ending the day after the last deployment) leaves out weeks of history.

    A team that stopped deploying months ago, or a library whose last release tag is old,
    has commits, merged pull requests or incidents after its last deployment: the window
    ends before them, so deployment frequency is counted over the active span alone and
    looks better than the history shows. The store's own later events are the evidence
    (not the ingest time: an export ingested today may end long ago).
    """
    last, what = store.execute(
        """
        SELECT arg_max(what, happened), max(happened) FROM (
            SELECT 'commits' AS what, max(committed_at) AS happened FROM commits WHERE committed_at <= $now
            UNION ALL SELECT 'merged pull requests', max(merged_at) FROM pull_requests WHERE merged_at <= $now
            UNION ALL SELECT 'incidents', max(opened_at) FROM incidents WHERE opened_at <= $now
        ) WHERE happened IS NOT NULL
        """,  # a commit whose clock ran years ahead (git takes any date) is no later history to count
        {"now": pd.Timestamp.now(tz="UTC") + FUTURE_TOLERANCE},
    ).fetchone()[::-1]
    if last is None or pd.Timestamp(last) - end < _QUIET_TAIL:
        return []
    last = pd.Timestamp(last).tz_convert("UTC")
    until = last.floor("D") + pd.Timedelta(days=1)
    days = (until - end).days
    return [
        f"the window ends the day after the last deployment ({end:%Y-%m-%d}), but the store has {what} up to "
        f"{last:%Y-%m-%d}: the {days:,} days since without a deployment are outside the window, so deployment "
        f"frequency is counted over the active span alone; give until (--until) {until:%Y-%m-%d} to count them"
    ]


#: How much later than the default window's start a group may begin deploying before a note says so.
_LATE_START = pd.Timedelta(days=28)


def _late_groups_note(store: Store, w: _Work, group: str, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
    """A note when groups began deploying long after the default window's start (the store's first deployment).

    Every group is measured over the one window, so a service that began deploying ten years
    into the store's history has its deployment frequency diluted by the decade before it.
    """
    late = store.query(
        f"""
        SELECT grp, first FROM (SELECT {group} AS grp, min(finished_at) AS first FROM {w.prod}
                                WHERE finished_at >= $start AND finished_at < $end GROUP BY 1)
        WHERE first >= $late ORDER BY first DESC, grp
        """,
        {"start": start, "end": end, "late": start + _LATE_START},
    )
    if late.empty:
        return []
    examples = ", ".join(f"{g} ({pd.Timestamp(t).tz_convert('UTC'):%Y-%m-%d})" for g, t in late.head(3).itertuples(
        index=False))  # fmt: skip
    n = len(late)
    return [
        f"{_count(n, 'group')} began deploying long after the window's start ({start:%Y-%m-%d}, the store's first "
        f"deployment), e.g. {examples}: {'its' if n == 1 else 'their'} deployment frequency counts the time before "
        "as time without deployments; give since (--since) to measure one alone"
    ]


def _before_data_note(store: Store, end: pd.Timestamp) -> list[str]:
    """A note when the window ends before the store's first deployment: its zeros are no record, not a team's."""
    first = store.execute("SELECT min(finished_at) FROM deployments").fetchone()[0]
    if first is None or pd.Timestamp(first) < end:
        return []
    return [
        f"the window ends before the store's first deployment ({pd.Timestamp(first).tz_convert('UTC'):%Y-%m-%d}): "
        "nothing was recorded then, so its zeros and tiers say nothing about the team"
    ]


def _utc_trunc(unit: str, column: str) -> str:
    """SQL truncating a TIMESTAMPTZ to its UTC day, ISO week or month (as a naive UTC timestamp).

    Truncating the naive UTC value avoids ICU's time-zone-aware ``date_trunc``
    (1 s per 10M rows); the store's time zone is UTC, so the boundaries are the same.
    """
    # the cast: DuckDB before 1.2 returns a DATE for day, week and month
    return f"CAST(date_trunc('{unit}', make_timestamp(epoch_us({column}))) AS TIMESTAMP)"


def _rounded_minutes(start: str, end: str, rounding: str) -> str:
    """SQL for a span in minutes, rounded as the profile's ``rounding`` rule says."""
    exact = span_minutes(start, end)
    if rounding == "ceil minute":  # ceil(-0.5) is -0.0; adding 0 makes it a plain 0
        return f"(ceil({exact}) + 0)"
    if rounding == "whole minutes toward zero":  # BigQuery's TIMESTAMP_DIFF: trunc(-0.5) is -0.0, + 0 makes it 0
        return f"(trunc({exact}) + 0)"
    return exact


def _shown(value: str, guard: str) -> str:
    """A span as its drill-down shows it: a profile that drops impossible spans has none."""
    return guarded(value, guard) if guard == "drop" else value


def _prepare(store: Store, settings: Settings, rules: dict[str, str], w: _Work, flags: bool = False) -> None:
    """Working tables: production deployments (:func:`_production`), incident links (:func:`_incident_links`),
    the deployments' failures and recovery (:func:`_failures`)."""
    _production(store, settings, rules, w)
    _incident_links(store, rules, w, flags)
    _failures(store, rules, w)


def _production(store: Store, settings: Settings, rules: dict[str, str], w: _Work) -> None:
    """Working table ``prod``: the production deployments, numbered, each with the next one of its service.

    ``prod.k`` numbers production deployments in the profile's order (finish or start
    time, ties by deployment id), so "the first deployment containing a commit" is the
    smallest ``k``: an integer ``min`` instead of an ``arg_min`` over timestamps.
    ``prod.first_of_chain`` marks a deployment with no earlier successful production
    deployment of its service and repository in the profile's ``chain_order`` (DevLake's
    empty ``prev_success_deployment_commit_id``).
    """
    con = store.connection
    # DevLake orders by start; a deployment recorded without a start time started when it finished
    ordered_at = {"started": "coalesce(d.started_at, d.finished_at)",
                  "finished": "d.finished_at"}[rules["deployment_order"]]  # fmt: skip
    # DevLake chains by finish time whatever its deployment order (prev_deployment_commit_enricher.go)
    chain = {"started": "coalesce(started_at, finished_at), deployment_id",
             "finished": "finished_at, deployment_id"}[rules["chain_order"]]  # fmt: skip
    same_order = rules["chain_order"] == rules["deployment_order"]
    counted = _counted(store, rules, w)
    first_of_chain = ("c.k IN (SELECT min(k) FROM keyed GROUP BY service, repo)" if same_order
                      else "c.first_in_chain_order")  # fmt: skip
    # The order and the chain are worked out on narrow rows (id, service, repo, times) and the
    # deployments' other columns joined once at the end: a window carries every column of its
    # rows through its sort, and the wide rows cost 1.75 -> 1.45 s of CPU at 1M deployments.
    # Deployment ids are unique (Store.upsert keys them), so the joins by id add no row.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.prod} AS
        WITH base AS (
            SELECT {ordered_at} AS ordered_at, d.deployment_id, d.service, coalesce(d.repo, s.repo) AS repo,
                   d.started_at, d.finished_at
            FROM deployments d LEFT JOIN services s USING (service)
            WHERE {production_deployment("d", "?")} {counted}
        ),
        keyed AS (
            SELECT deployment_id, service, repo, row_number() OVER (ORDER BY ordered_at, deployment_id) AS k,
                   {"NULL" if same_order else f"({chain}) = min(({chain})) OVER (PARTITION BY service, repo)"}
                       AS first_in_chain_order
            FROM base
        ),
        -- k is the profile's order, so the per-service window sorts integers
        chained AS (
            SELECT *, lead(deployment_id) OVER (PARTITION BY service ORDER BY k) AS next_id FROM keyed
        )
        SELECT c.k, d.deployment_id, d.service, coalesce(s.team, 'unassigned') AS team,
               coalesce(d.repo, s.repo) AS repo, d.environment, d.sha, d.started_at, d.finished_at,
               coalesce(d.kind, 'regular') AS kind, d.reverts_deployment_id,
               CASE WHEN c.next_id IS NOT NULL THEN coalesce(n.kind, 'regular') END AS next_kind,
               n.finished_at AS next_finished_at, n.reverts_deployment_id AS next_reverts,
               {first_of_chain} AS first_of_chain
        FROM chained c JOIN deployments d USING (deployment_id) LEFT JOIN services s ON s.service = d.service
             LEFT JOIN deployments n ON n.deployment_id = c.next_id
        """,
        [production_environments(settings)],
    )


def _causes(rules: dict[str, str]) -> str:
    """SQL: the incidents that name a root-cause commit, with it as ``cause``, as the profile's ``cause_match``
    reads it (an abbreviation of at least :data:`SHA_PREFIX_MIN` characters in any case, or the exact text)."""
    if rules["cause_match"] == "exact":
        return "SELECT *, trim(cause_sha) AS cause FROM incidents WHERE trim(cause_sha) <> ''"
    return f"SELECT *, lower(trim(cause_sha)) AS cause FROM incidents WHERE length(trim(cause_sha)) >= {SHA_PREFIX_MIN}"


def _cause_match(rules: dict[str, str], full: str, cause: str) -> str:
    """SQL: the commit ``full`` is the root cause ``cause`` (from :func:`_causes`) by the profile's ``cause_match``."""
    return f"{full} = {cause}" if rules["cause_match"] == "exact" else sha_prefix_match(full, cause)


def _counted(store: Store, rules: dict[str, str], w: _Work) -> str:
    """SQL after ``WHERE <production deployment d>``: the profile's ``deployments_counted`` (with ``traced to
    a commit``, the working table ``untraced`` is made here).

    Four Keys' deployments table joins each deployment to the push whose head commit it
    deployed and keeps one row per commit of that push (deployments.sql: ``JOIN changes_raw
    ON changes_raw.id = deploys.main_commit``, then ``CROSS JOIN ... array_commits``): a
    deployment traced to no commit is not there, so it is no deployment, no failure and no
    day with a deployment. Here a deployment is traced when it lists a change or its sha is a
    commit of the ingested history (the push it came from; links derived from the history
    give a chain's first deployment none).
    """
    if rules["deployments_counted"] == "every":
        return ""
    # the few untraced deployments first, then left out by id: "lists a change OR names a commit" in the
    # query made DuckDB mark every deployment against both 10M-row tables (+1.3 s of CPU at 1M deployments);
    # the distinct linked ids joined once cost 0.6 s, NOT EXISTS over the links twice that
    store.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.untraced} AS
        SELECT d.deployment_id FROM deployments d LEFT JOIN services s USING (service)
        LEFT JOIN (SELECT DISTINCT deployment_id FROM deployment_changes) l USING (deployment_id)
        WHERE d.status = 'success' AND l.deployment_id IS NULL
          AND NOT EXISTS (SELECT 1 FROM commits c WHERE c.sha = d.sha AND c.repo = coalesce(
              d.repo, s.repo, (SELECT CASE WHEN count(*) = 1 THEN min(repo) END FROM repos)))
        """
    )
    return f"AND d.deployment_id NOT IN (SELECT deployment_id FROM {w.untraced})"


def _uncounted_note(store: Store, settings: Settings, rules: dict[str, str], w: _Work, start, end) -> list[str]:
    """A note on the production deployments in the window the profile's ``deployments_counted`` leaves out."""
    if rules["deployments_counted"] == "every":
        return []
    n = store.execute(
        f"SELECT count(*) FROM {w.untraced} JOIN deployments d USING (deployment_id) "
        f"WHERE {production_deployment('d', '$prod')} AND d.finished_at >= $start AND d.finished_at < $end",
        {"prod": production_environments(settings), "start": start, "end": end},
    ).fetchone()[0]
    if not n:
        return []
    return [
        f"{n:,} production deployment{'s list' if n > 1 else ' lists'} no change and name{'' if n > 1 else 's'} no "
        "ingested commit: Four Keys has no such deployment (deployments.sql joins each to the push of its "
        "commit), so the fourkeys profile leaves them out"
    ]


def _incident_links(store: Store, rules: dict[str, str], w: _Work, flags: bool = False) -> None:
    """Working table ``incident_links``: each incident's deployment, and how it was linked, by the profile's
    rules; ``prod`` must exist (:func:`_production`)."""
    con = store.connection
    guard = rules["span_guard"]
    link = rules["incident_link"]
    strict = ">" if link.endswith("(strictly before)") else ">="
    # DevLake's connector looks for the project's latest deployment, of whichever service
    same_service = "" if "any service" in link else "i.service = p.service AND"
    # and Four Keys joins root causes to every deployment's changes: it knows no services
    cause_service = "" if "any service" in link else "AND p.service = i.service"
    # Incident -> deployment links, by the profile's incident_link rule
    explicit = "e.deployment_id" if link.startswith("explicit") else "NULL"
    by_cause = "coalesce(b.deployment_id, ds.deployment_id)" if "cause sha" in link else "NULL"
    if link.endswith("any time"):
        # Four Keys: the earliest deployment whose changes hold the cause, its own commit among them
        # (incidents.sql: MIN(root.time_created) over 'deployments d, d.changes'; deployments.sql)
        by_cause = "CASE WHEN ds.k < b.k OR b.k IS NULL THEN ds.deployment_id ELSE b.deployment_id END"
    prior = "pr.deployment_id" if "prior" in link else "NULL"
    # an incident file has no repository: the services file's, else its linked deployment's, read
    # through the same link (no join of the incidents with every deployment: 0.5 s of CPU at 1M)
    linked_repo = " ".join(f"WHEN {way} IS NOT NULL THEN {way.replace('.deployment_id', '.repo')}"
                           for way in (explicit, by_cause, prior) if way != "NULL")  # fmt: skip
    linked_repo = f"CASE {linked_repo} END" if linked_repo else "NULL"
    cause_time = "" if link.endswith("any time") else "AND p.finished_at <= i.opened_at"
    restore_from = ("least(i.opened_at, coalesce(cause.finished_at, i.opened_at))"
                    if rules["restore_start"].startswith("earlier") else "i.opened_at")  # fmt: skip
    # the drill-down shows the exact span; the aggregate reads it in the profile's unit
    restore = {
        "whole hours toward zero": f"(trunc({span_hours(restore_from, 'i.resolved_at')}) + 0)",
        "whole minutes toward zero": f"(trunc({span_minutes(restore_from, 'i.resolved_at')}) + 0) / 60",
    }.get(rules["restore_rounding"], span_hours(restore_from, "i.resolved_at"))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.incident_links} AS
        -- the cause commit's first production deployment (in dora, among those finished when
        -- the incident opened: one that shipped it later cannot have caused it)
        -- a cause may be abbreviated, in any case ("root cause: 9fceb02")
        WITH causes AS ({_causes(rules)}),
        by_sha AS (
            SELECT i.incident_id, arg_min(p.deployment_id, p.k) AS deployment_id, min(p.k) AS k,
                   arg_min(p.repo, p.k) AS repo
            FROM causes i JOIN deployment_changes dc ON {_cause_match(rules, "dc.sha", "i.cause")}
            JOIN {w.prod} p ON p.deployment_id = dc.deployment_id {cause_service}
            WHERE true {cause_time} GROUP BY i.incident_id
        ),
        direct_sha AS (
            SELECT i.incident_id, arg_min(p.deployment_id, p.k) AS deployment_id, min(p.k) AS k,
                   arg_min(p.repo, p.k) AS repo
            FROM causes i JOIN {w.prod} p ON {_cause_match(rules, "p.sha", "i.cause")} {cause_service}
            WHERE true {cause_time} GROUP BY i.incident_id
        ),
        prior AS (
            SELECT i.incident_id, p.deployment_id, p.repo
            FROM incidents i ASOF LEFT JOIN {w.prod} p
              ON {same_service} i.opened_at {strict} p.finished_at
            -- counting flag releases: an incident a flag change caused is not the deployment's
            {
            f"WHERE i.incident_id NOT IN (SELECT incident_id FROM {w.incident_causes} WHERE flag_caused)"
            if flags
            else ""
        }
        )
        SELECT *, {is_clock_skew("exact_restore_hours")} AS clock_skew,
               {_shown("exact_restore_hours", guard)} AS restore_hours
        FROM (
        -- grouped by repo, every incident was "unassigned" (an incident file has no repository)
        SELECT i.*, coalesce(sv.team, 'unassigned') AS team, coalesce(sv.repo, {linked_repo}) AS repo,
               coalesce({explicit}, {by_cause}, {prior}) AS deployment_id,
               CASE WHEN {explicit} IS NOT NULL THEN 'explicit'
                    WHEN {by_cause} IS NOT NULL THEN 'cause_sha'
                    WHEN {prior} IS NOT NULL THEN 'latest_prior_deployment'
                    {"WHEN fc.flag_caused THEN 'flag_change'" if flags else ""}
                    ELSE 'unlinked' END AS link_method,
               {restore_from} AS restore_from,
               {span_hours(restore_from, "i.resolved_at")} AS exact_restore_hours,
               {restore} AS restore_value
               {", fc.cause_kind, fc.cause_change_id, fc.cause_gap_minutes, fc.kill_switch_minutes" if flags else ""}
        FROM incidents i
        LEFT JOIN {w.prod} e ON e.deployment_id = i.cause_deployment_id
        LEFT JOIN by_sha b USING (incident_id)
        LEFT JOIN direct_sha ds USING (incident_id)
        LEFT JOIN prior pr USING (incident_id)
        {f"LEFT JOIN {w.incident_causes} fc USING (incident_id)" if flags else ""}
        LEFT JOIN {w.prod} cause ON cause.deployment_id = {by_cause}
        LEFT JOIN services sv ON sv.service = i.service
        )
        """
    )


#: SQL aggregate: when a failed deployment's incidents were all resolved (the last resolution), NULL while one is
#: open — the first resolution ended the recovery of a deployment whose second incident stayed open for weeks
#: (pytest 9.0.0: 91.7 h, with gh-13946 open 24 days more).
_LAST_RESOLVED = "CASE WHEN count(resolved_at) = count(*) THEN max(resolved_at) END"


def _failures(store: Store, rules: dict[str, str], w: _Work) -> None:
    """Working table ``flags`` (each production deployment's failure, recovery and rework) and the view
    ``deploys`` (``prod`` with its flags), by the profile's rules; ``incident_links`` must exist."""
    con = store.connection
    if rules["failure"] == "incident, rollback or hotfix":
        failed = "incidents > 0 OR coalesce(rolled_back, false) OR coalesce(hotfixed, false)"
        next_restore = "CASE WHEN p.next_kind IN ('rollback', 'hotfix') THEN p.next_finished_at END"
        restored = f"least(r.rolled_back_at, {next_restore}, inc.resolved_at)"
    else:  # both peers count a deployment failed only when an incident links to it
        failed, restored = "incidents > 0", "inc.resolved_at"
    recovery = span_hours("finished_at", "restored_at")
    if rules["failure_count"] == "root-cause matches":
        # Four Keys: every deployment listing an incident's root cause among its changes, once per match; its
        # changes are the commits of the push of its own commit, that commit among them (deployments.sql), so a
        # deployment listing none here (a chain's first, derived from the history) still has its own (UNION:
        # a commit listed and deployed counts once, as Four Keys' ARRAY_AGG(DISTINCT ...) does)
        incidents_of = f"""
            SELECT deployment_id, count(*) AS incidents, {_LAST_RESOLVED} AS resolved_at
            FROM (SELECT dc.deployment_id, i.incident_id, i.resolved_at
                  FROM ({_causes(rules)}) i JOIN deployment_changes dc ON {_cause_match(rules, "dc.sha", "i.cause")}
                  UNION
                  SELECT p.deployment_id, i.incident_id, i.resolved_at
                  FROM ({_causes(rules)}) i JOIN {w.prod} p ON {_cause_match(rules, "p.sha", "i.cause")})
            GROUP BY deployment_id"""
    else:
        incidents_of = f"""
            SELECT deployment_id, count(*) AS incidents, {_LAST_RESOLVED} AS resolved_at
            FROM {w.incident_links} WHERE deployment_id IS NOT NULL GROUP BY deployment_id"""
    # the flags alone, keyed by k: a second copy of every deployment's strings cost 0.4 s at 1M
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.flags} AS
        WITH inc AS ({incidents_of}),
        reverted AS (
            SELECT reverts_deployment_id AS deployment_id, min(finished_at) AS rolled_back_at
            FROM {w.prod} WHERE kind = 'rollback' AND reverts_deployment_id IS NOT NULL GROUP BY 1
        ),
        -- a deployment finished while an incident on its service was open: some incident opened
        -- before it ends at or after it, i.e. the latest end among those incidents does (an
        -- unresolved one never ends); one as-of lookup per deployment instead of every
        -- (deployment, incident) pair of a service (45M at 1M deployments: 1.2 s)
        open_until AS (
            SELECT service, opened_at,
                   max(coalesce(resolved_at, 'infinity'::TIMESTAMPTZ)) OVER (
                       PARTITION BY service ORDER BY opened_at) AS open_until
            FROM incidents WHERE opened_at IS NOT NULL AND service IS NOT NULL
        ),
        -- an as-of join gives each deployment one row at most: no DISTINCT, and the integer key
        during_incident AS (
            SELECT p.k FROM {w.prod} p ASOF JOIN open_until o
              ON o.service = p.service AND p.finished_at > o.opened_at
            WHERE p.finished_at <= o.open_until
        ),
        flagged AS (
        SELECT p.k, p.finished_at,
               coalesce(inc.incidents, 0) AS incidents,
               -- the latest deployment (no next one yet) was not rolled back or hotfixed: false, not unknown
               r.rolled_back_at IS NOT NULL
                 OR coalesce(p.next_kind = 'rollback' AND (p.next_reverts IS NULL OR p.next_reverts = p.deployment_id),
                             false) AS rolled_back,
               coalesce(p.next_kind = 'hotfix', false) AS hotfixed,
               {restored} AS restored_at,
               p.kind IN ('hotfix', 'rollback') OR di.k IS NOT NULL AS unplanned
        FROM {w.prod} p
        LEFT JOIN inc USING (deployment_id)
        LEFT JOIN reverted r USING (deployment_id)
        LEFT JOIN during_incident di USING (k)
        )
        SELECT * EXCLUDE (finished_at), {failed} AS failed,
               CASE WHEN NOT failed THEN NULL WHEN incidents > 0 THEN 'incident'
                    WHEN rolled_back THEN 'rolled back' ELSE 'fixed by hotfix' END AS failure_reason,
               CASE WHEN failed THEN {_shown(recovery, rules["recovery_guard"])} END AS recovery_hours,
               coalesce(CASE WHEN failed THEN {is_clock_skew(recovery)} END, false) AS clock_skew
        FROM flagged
        """
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW {w.deploys} AS SELECT p.*, f.* EXCLUDE (k) FROM {w.prod} p "
                f"JOIN {w.flags} f USING (k)")  # fmt: skip


def _link_notes(store: Store, rules: dict[str, str], w: _Work, start, end) -> list[str]:
    """Notes on the window's incidents and failed deployments whose links or recovery the numbers cannot show.

    An incident naming a cause deployment that is no production deployment, or a root-cause
    commit no production deployment matches, was linked another way without a word; one
    linked explicitly to a deployment that finished after it opened has an impossible link
    (a recovery it ends may then read as clock skew); one of a service no production deployment
    has fails nothing, and so does one naming no root cause where incidents link by it alone
    (fourkeys); a failed deployment not yet recovered is left out of the recovery median, which
    is then biased low (it is right-censored), and so is an unresolved incident out of the
    time-to-restore median (where the window's incidents are those opened in it). Each note
    counts them and names an example; ``incident_links``, ``prod`` and ``flags`` must exist.
    """
    link = rules["incident_link"]
    fallback = "linked by the latest prior deployment instead" if "prior" in link else "failing no deployment"
    shipped = "shipped" if link.endswith("any time") else "shipped by the time they opened"
    exact = ("; this profile matches a root cause by equality (as Four Keys joins it), so an abbreviated sha matches "
             "nothing") if rules["cause_match"] == "exact" else ""  # fmt: skip
    kinds = []  # (SQL condition on l, the incident, p its linked deployment; example; what they do; what came of it)
    if link.startswith("explicit"):
        kinds += [
            ("l.cause_deployment_id IS NOT NULL AND l.link_method <> 'explicit'", "l.cause_deployment_id",
             "name a cause deployment (cause_deployment_id) that is no successful production deployment", fallback),
            ("l.link_method = 'explicit' AND p.finished_at > l.opened_at", "l.cause_deployment_id",
             "name a cause deployment (cause_deployment_id) that finished after they opened",
             "kept as given, though a deployment cannot have caused an incident that opened before it finished"),
        ]  # fmt: skip
    if "cause sha" in link:
        kinds.append(("trim(l.cause_sha) <> '' AND l.link_method NOT IN ('explicit', 'cause_sha')", "trim(l.cause_sha)",
                      f"name a root-cause commit (cause_sha) that no production deployment {shipped}",
                      fallback + exact))  # fmt: skip
    if link.startswith("cause sha"):  # fourkeys: an incident without a root cause fails nothing, and says so
        kinds.append((f"coalesce(trim(l.cause_sha), '') = '' AND EXISTS ({_causes(rules)})",
                      "'opened ' || strftime(l.opened_at, '%Y-%m-%d %H:%M')", "name no root-cause commit (cause_sha)",
                      "failing no deployment: this profile links an incident through its root-cause commit alone, as "
                      "Four Keys does (a cause_deployment_id is not read)"))  # fmt: skip
    if "any service" not in link:
        # against the distinct services (a thousand), not every deployment: NOT IN over 875k rows cost 0.2 s
        kinds.append((f"l.service IS NOT NULL AND l.service NOT IN (SELECT DISTINCT service FROM {w.prod} "
                      "WHERE service IS NOT NULL)", "l.service", "name a service no production deployment has",
                      "failing no deployment"))  # fmt: skip
    notes = []
    if kinds:
        columns = ", ".join(f"count(*) FILTER ({c}), arg_min(l.incident_id || ' (' || {e} || ')', l.opened_at) "
                            f"FILTER ({c})" for c, e, *_ in kinds)  # fmt: skip
        found = store.execute(
            f"""
            SELECT {columns} FROM {w.incident_links} l LEFT JOIN {w.prod} p ON p.deployment_id = l.deployment_id
            WHERE l.opened_at >= $start AND l.opened_at < $end
            """,
            {"start": start, "end": end},
        ).fetchone()
        for (count, example), (_, _, what, tail) in zip(zip(found[::2], found[1::2], strict=True), kinds, strict=True):
            if count:
                notes.append(f"{_count(count, 'incident')} {what if count > 1 else _singular(what)}, e.g. "
                             f"{example}: {tail}")  # fmt: skip
    open_failures, example = store.execute(
        f"""
        SELECT count(*), arg_min(p.deployment_id || ' (failed ' || strftime(p.finished_at, '%Y-%m-%d %H:%M') || ')',
                                 p.finished_at)
        FROM {w.prod} p JOIN {w.flags} f USING (k)
        WHERE f.failed AND f.restored_at IS NULL AND p.finished_at >= $start AND p.finished_at < $end
        """,
        {"start": start, "end": end},
    ).fetchone()
    if open_failures:
        notes.append(
            f"{_count(open_failures, 'failed deployment')} {'has' if open_failures == 1 else 'have'} not recovered, "
            f"e.g. {example}: the recovery median leaves {'it' if open_failures == 1 else 'them'} out while the "
            "recovery runs on, so it is biased low"
        )
    if rules["restore_window"] == "opened":  # the window's incidents are those opened in it: some may be open still
        unresolved, example = store.execute(
            f"""
            SELECT count(*), arg_min(incident_id || ' (opened ' || strftime(opened_at, '%Y-%m-%d %H:%M') || ')',
                                     opened_at)
            FROM {w.incident_links} WHERE resolved_at IS NULL AND opened_at >= $start AND opened_at < $end
            """,
            {"start": start, "end": end},
        ).fetchone()
        if unresolved:
            one = unresolved == 1
            notes.append(
                f"{_count(unresolved, 'incident')} opened in the window {'is' if one else 'are'} not resolved, e.g. "
                f"{example}: the time-to-restore median leaves {'it' if one else 'them'} out while "
                f"{'it stays' if one else 'they stay'} open, so it is biased low"
            )
    return notes


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one (``2 incidents``, ``1 failed deployment``)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _singular(clause: str) -> str:
    """A clause written for several incidents ("name a ... they opened") said of one."""
    return clause.replace("name a", "names a", 1).replace("name no", "names no", 1).replace("they opened", "it opened")


def _lead_time(rules: dict[str, str]) -> tuple[str, str]:
    """SQL for a change's lead time in hours as shown (``f`` its commit, ``p`` its deployment) and its skew flag."""
    committed = "f.committed_at"
    if rules["commit_time"] == "to the second":  # Four Keys' changes.sql: TIMESTAMP_TRUNC(..., second)
        committed = "make_timestamp(epoch_us(f.committed_at) // 1000000 * 1000000)"
    if rules["rounding"] == "exact":
        lead = span_hours(committed, "p.finished_at")
    else:
        lead = f"{_rounded_minutes(committed, 'p.finished_at', rules['rounding'])} / 60"
    return _shown(lead, rules["span_guard"]), is_clock_skew(lead)


class _FirstLinks(NamedTuple):
    """Each production link that is its commit's first production link: deployment number, lead time, skew.

    ``k`` is the deployment's number in ``prod``; ``value`` the lead time an aggregate uses
    (as the profile rounds and guards it; ``present`` is False where that is no value) and
    ``skew`` the clock-skew flag, one element per link.
    """

    k: np.ndarray
    value: np.ndarray
    present: np.ndarray
    skew: np.ndarray


def _lead_used(rules: dict[str, str], value: str) -> str:
    """SQL: the lead-time value ``value`` as aggregates use it (the profile's zero rule and span guard)."""
    if rules["lead_time_zero"] == "dropped":
        return f"CASE WHEN {value} > 0 THEN {value} END"
    return guarded(value, rules["span_guard"])


def _chained(rules: dict[str, str]) -> str:
    """SQL after ``... JOIN prod p``: DevLake's first deployment of a chain contributes no changes, even
    listed explicitly (its calculator skips ``prev_success_deployment_commit_id = ''``)."""
    return "WHERE NOT p.first_of_chain" if rules["first_of_chain"] == "none" else ""


def _links(w: _Work, rules: dict[str, str]) -> str:
    """SQL: the production links (``f``, joined to their deployment ``p``) that can carry a change."""
    return f"deployment_changes f JOIN {w.prod} p USING (deployment_id) {_chained(rules)}"


def _read_links(store: Store, rules: dict[str, str], w: _Work, lead: bool) -> pa.Table | None:
    """Every production link's commit hash (``h``, ``untimed``) and, with ``lead``, its deployment number and
    lead time (``k, value, present, skew``), one pass over the links, as Arrow (:func:`_links_job` makes numpy
    arrays of them beside DuckDB); None for ``every listing``, whose ``first_deploy`` table of every link is
    built here instead.

    Grouping 10M links by their (repo, sha) strings cost 4.5 s of CPU on
    benchmarks/dora.py, and nearly every commit has one production link. So the links'
    hashes are read once (integers) and sorted in numpy (:func:`_shared_hashes`): a link
    whose hash no other production link has is its commit's only one, and so its first;
    nothing is grouped for it. Links sharing a hash (the same commit deployed twice, or a
    collision) and links without a commit time are grouped by name, exactly, into
    ``first_deploy`` (:func:`_resolve_by_name`), and only they. The result is exact whatever
    the hash. With ``lead``, the same read gives each link's lead time, so the lead-time cells
    need no second pass over the links.
    """
    links = _links(w, rules)
    if rules["change_deployments"] == "every listing":  # Four Keys: every production link is a lead time, by name
        store.execute(f"CREATE OR REPLACE TEMP TABLE {w.first_deploy} AS SELECT p.k, f.committed_at, f.repo, f.sha "
                      f"FROM {links}")  # fmt: skip
        _fill_untimed(store, w)
        return None
    # from a relation: DuckDB fills the Arrow batches as it makes the rows (see _numpy_columns)
    if not lead:  # the hashes alone: which commits are resolved by name
        sql = f"SELECT hash(f.repo, f.sha) AS h, f.committed_at IS NULL AS untimed FROM {links}"
        return store.connection.sql(sql).to_arrow_table()
    lead_time, skewed = _lead_time(rules)
    return store.connection.sql(
        f"""
        SELECT h, k, untimed, {_lead_value(rules)}
        FROM (SELECT hash(f.repo, f.sha) AS h, p.k, f.committed_at IS NULL AS untimed,
                     {lead_time} AS lead_time_hours, {skewed} AS clock_skew FROM {links})
        """
    ).to_arrow_table()


def _lead_value(rules: dict[str, str]) -> str:
    """SQL columns ``value, skew`` of a link's lead time (from ``lead_time_hours, clock_skew``); ``value`` is NULL
    where an aggregate has no value (:func:`_present` makes it NaN and says where it is present)."""
    used = _lead_used(rules, "lead_time_hours")
    return f"CAST({used} AS DOUBLE) AS value, coalesce(clock_skew, false) AS skew"


def _present(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``rows`` of a query with :func:`_lead_value`'s columns, read into numpy (a NULL ``value`` is NaN: a lead
    time never is), with ``present``: where ``value`` is one. Four columns fewer for DuckDB to compute over
    8.8M links than a 0 for NULL and a flag (0.1 s of CPU)."""
    rows["value"] = np.asarray(rows["value"], dtype=float)
    rows["present"] = ~np.isnan(rows["value"])
    return rows


def _links_job(
    links: list[pa.Table],
    cells: tuple[pd.DataFrame, dict[str, np.ndarray]] | None,
    period: str,
    hashes: Future[tuple[np.ndarray, np.ndarray | None]],
) -> Any:
    """The numpy thread's work on the links read by :func:`_read_links` (``links``, a list of one table, emptied
    here so that it is freed once converted): their columns as arrays, the hashes
    resolved by name (:func:`_shared_hashes`, set on ``hashes`` as soon as known) and then, when the lead-time
    ``cells`` are wanted and no commit is resolved by name, the lead-time rows (:func:`_lead_rows`); else the
    arrays, for the caller to finish.

    Converting 8.8M links and sorting their hashes here leaves DuckDB's threads to link
    incidents meanwhile, and the lead-time spans start as soon as the hashes are known.
    """
    try:
        table, rows = links.pop(), {}
        for name in table.column_names:  # each column's Arrow chunks freed once it is one array
            rows[name] = table.column(name).to_numpy()
            table = table.drop_columns([name])
        del table
        if "value" in rows:
            _present(rows)
        by_name, single = _shared_hashes(rows)
    except BaseException as error:  # the caller waits for the hashes: it must not wait forever
        hashes.set_exception(error)
        raise
    hashes.set_result((by_name, single))
    if cells is None or len(by_name):  # some commits resolved by name: DuckDB reads theirs first
        return rows
    return _lead_rows(*cells, rows, single, None, period)


def _shared_hashes(rows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """The hashes whose commits are resolved by name (shared by several links, or of a link without a commit
    time) and the mask of the other links (None: all of them); numpy alone, so it runs beside DuckDB."""
    h, untimed = rows.pop("h"), rows.pop("untimed")
    ordered = np.sort(h)
    by_name = np.unique(np.concatenate([ordered[1:][ordered[1:] == ordered[:-1]], h[untimed]]))
    del ordered
    return by_name, (~np.isin(h, by_name) if len(by_name) else None)


def _resolve_by_name(
    store: Store, rules: dict[str, str], w: _Work, by_name: np.ndarray | None, lead: bool
) -> dict[str, np.ndarray] | None:
    """Fill ``first_deploy`` with the commits of the hashes ``by_name`` (``k``, the smallest deployment number,
    ``committed_at``, ``repo``, ``sha``; None: it holds every link already) and, with ``lead``, read their lead
    times (``k, value, present, skew``)."""
    con = store.connection
    if by_name is not None:
        store.execute(f"CREATE OR REPLACE TEMP TABLE {w.first_deploy} "
                      "(k BIGINT, committed_at TIMESTAMPTZ, repo VARCHAR, sha VARCHAR)")  # fmt: skip
    if by_name is not None and len(by_name):  # links sharing a hash, or made before their commits were ingested
        chained = _chained(rules)
        con.register(f"{w.first_deploy}_by_name", pa.table({"h": pa.array(by_name, pa.uint64())}))
        try:
            store.execute(
                f"""
                INSERT INTO {w.first_deploy}
                SELECT min(p.k), any_value(f.committed_at), f.repo, f.sha
                FROM {_links(w, rules)} {"AND" if chained else "WHERE"}
                     hash(f.repo, f.sha) IN (SELECT h FROM {w.first_deploy}_by_name)
                GROUP BY f.repo, f.sha
                """
            )
        finally:
            con.unregister(f"{w.first_deploy}_by_name")
        _fill_untimed(store, w)
    if not lead:
        return None
    lead_time, skewed = _lead_time(rules)
    return _present(
        _numpy_columns(
            store,
            f"""
        SELECT k, {_lead_value(rules)}
        FROM (SELECT p.k, {lead_time} AS lead_time_hours, {skewed} AS clock_skew
              FROM {w.first_deploy} f JOIN {w.prod} p USING (k))
        """,
        )
    )


def _first_links(
    rows: dict[str, np.ndarray] | None, single: np.ndarray | None, named: dict[str, np.ndarray] | None
) -> _FirstLinks:
    """Each commit's first production link: the single links' (``rows`` where ``single``; None: all) followed by
    those of the commits resolved by name (None: none)."""
    parts = []
    for part, keep in ([] if rows is None else [(rows, single)]) + ([] if named is None else [(named, None)]):
        k, value, present, skew = part["k"].astype(np.intp, copy=False), part["value"], part["present"], part["skew"]
        if keep is not None:
            k, value, present, skew = k[keep], value[keep], present[keep], skew[keep]
        if len(k):
            parts.append(_FirstLinks(k, value, present, skew))
    if not parts:
        return _FirstLinks(np.empty(0, np.intp), np.empty(0), np.empty(0, bool), np.empty(0, bool))
    if len(parts) == 1:  # no copy of 10M values
        return parts[0]
    return _FirstLinks(*(np.concatenate(columns) for columns in zip(*parts, strict=True)))


def _named(sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The parameters ``sql`` names (DuckDB refuses any other), None without one: a query over a working table
    that is windowed already (the lead values) names none."""
    named = {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}
    return named or None


def _numpy_columns(store: Store, sql: str, params: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """A query's columns as numpy arrays, read through Arrow (from a relation when it has no parameters).

    A relation hands its rows to Arrow as it makes them, where ``execute`` collects them
    first: 10M links cost 1.2 s of CPU instead of 1.4 s (``execute(...).fetchnumpy()``:
    1.6 s). With parameters a relation was 10x slower (the deployments' cells: 1.0 s
    instead of 0.1 s), so those go through ``execute``. A column with nulls must be a
    float one (they become NaN; in others they fail).
    """
    table = store.arrow(sql, params) if params else store.connection.sql(sql).to_arrow_table()
    return {name: table.column(name).to_numpy() for name in table.column_names}


def _fill_untimed(store: Store, w: _Work) -> None:
    """Give ``first_deploy``'s links made before their commits were ingested the commits' times."""
    store.execute(
        f"""
        UPDATE {w.first_deploy} f SET committed_at = c.committed_at
        FROM commits c WHERE f.committed_at IS NULL AND c.repo = f.repo AND c.sha = f.sha
        """
    )


def _detail_tables(store: Store, rules: dict[str, str], w: _Work) -> None:
    """Working view ``changes`` (lead time per commit) and table ``prs`` (PR phases); ``first_deploy`` must be
    filled (:func:`_resolve_by_name`)."""
    guard, rounding = rules["span_guard"], rules["rounding"]
    lead, skewed = _lead_time(rules)
    chained = _chained(rules)
    every = rules["change_deployments"] == "every listing"
    # a view: the rows are read from the links only when asked for (drill-downs, a grouping
    # by repository, the profile diff): a link is its commit's first unless its commit is
    # one of the few resolved by name (first_deploy; with every, first_deploy holds every link)
    # k: the deployment's number, an integer cluster for the lead-time intervals (_sql_design_effects)
    columns = f"""p.deployment_id, p.service, p.team, p.finished_at AS deployed_at,
                  {lead} AS lead_time_hours, {skewed} AS clock_skew, p.k"""
    store.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {w.changes} AS
        SELECT f.repo, f.sha, f.committed_at, {columns}
        FROM deployment_changes f JOIN {w.prod} p USING (deployment_id) {chained}
        {"AND" if chained else "WHERE"} {"false" if every else "true"}
        AND hash(f.repo, f.sha) NOT IN (SELECT hash(repo, sha) FROM {w.first_deploy})
        UNION ALL
        SELECT f.repo, f.sha, f.committed_at, {columns}
        FROM {w.first_deploy} f JOIN {w.prod} p USING (k)
        """
    )

    def minutes(a: str, b: str) -> str:
        return _shown(_rounded_minutes(a, b, rounding), guard)

    parts = ("coding_minutes", "merge_minutes", "deploy_minutes")
    if rules["pr_cycle"] == "sum of parts":  # DevLake adds the parts that are not nil
        cycle = " + ".join(f"coalesce({guarded(part, guard)}, 0)" for part in parts)
    else:
        cycle = minutes("coalesce(first_commit_at, created_at)", "deployed_at")
    # a review after the merge (a post-merge approval or comment) is no phase of the PR's way
    # in; DevLake takes the first review whenever it came, and drops the negative span
    before_merge = "AND (pr.merged_at IS NULL OR r.submitted_at <= pr.merged_at)" if (
        rules["review_window"] == "before merge") else ""  # fmt: skip
    pr_commits = "" if rules["pr_deployment"] == "merge commit" else "UNION SELECT repo, number, sha FROM pr_commits"
    # DevLake's commits_diffs has no repository: a merge commit is found in any repository's deployment
    same_repo = "" if rules["pr_deployment_repo"] == "any" else "dc.repo = s.repo AND"
    anchor = "coalesce(deployed_at, merged_at)" if rules["undeployed_prs"] == "listed" else "deployed_at"
    raw = [_rounded_minutes(a, b, rounding) for a, b in (
        ("first_commit_at", "created_at"), ("created_at", "first_review_at"), ("first_review_at", "merged_at"),
        ("created_at", "merged_at"), ("merged_at", "deployed_at"))]  # fmt: skip
    store.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.prs} AS
        WITH first_commit AS (SELECT repo, number, min(authored_at) AS first_commit_at FROM pr_commits GROUP BY 1, 2),
        first_review AS (
            -- an empty author (a deleted account) excludes no review, as DevLake's account_id != ''
            SELECT r.repo, r.number, min(r.submitted_at) AS first_review_at
            FROM pr_reviews r JOIN pull_requests pr USING (repo, number)
            WHERE r.reviewer IS DISTINCT FROM nullif(trim(pr.author), '') {before_merge} GROUP BY 1, 2
        ),
        shas AS (
            SELECT repo, number, merge_commit_sha AS sha FROM pull_requests WHERE merge_commit_sha IS NOT NULL
            {pr_commits}
        ),
        deployed AS (
            SELECT s.repo, s.number, arg_min(p.deployment_id, p.k) AS deployment_id,
                   arg_min(p.finished_at, p.k) AS deployed_at,
                   arg_min(p.service, p.k) AS service, arg_min(p.team, p.k) AS team
            FROM shas s JOIN deployment_changes dc ON {same_repo} dc.sha = s.sha
            JOIN {w.prod} p USING (deployment_id) {chained}
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
        ),
        phased AS (
            SELECT *, {minutes("first_commit_at", "created_at")} AS coding_minutes,
                   {minutes("created_at", "first_review_at")} AS pickup_minutes,
                   {minutes("first_review_at", "merged_at")} AS review_minutes,
                   {minutes("created_at", "merged_at")} AS merge_minutes,
                   {minutes("merged_at", "deployed_at")} AS deploy_minutes,
                   coalesce({" OR ".join(is_clock_skew(r) for r in raw)}, false) AS clock_skew,
                   {anchor} AS listed_at
            FROM joined
        )
        SELECT * EXCLUDE (merge_minutes), {cycle} AS cycle_minutes FROM phased
        """
    )


def _aggregates(
    store: Store,
    w: _Work,
    group: str,
    period: str,
    start,
    end,
    rules: dict[str, str],
    lead: Future[tuple] | None,
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Counts, skew counts and sorted spans per (group, period) and per group (period NULL).

    DuckDB groups by (group, period) only; a group's row adds up its periods' counts and
    sorts its periods' spans (:func:`_group_rows`): a second grouping of the 10M lead-time
    rows cost more than the first. Spans are kept as one value array and offsets per
    ``*_spans`` column (the second item); the frame's ``*_spans`` columns hold each row's
    position in them. Medians, p90, their order-statistic intervals and the rank tests
    are read from them in :func:`_finish`. ``lead``, when given, computes the lead-time
    rows beside these queries (:func:`_lead_rows`); it is waited for after them.
    """
    guard = rules["span_guard"]
    lead_value = "cycle_minutes / 60.0" if rules["lead_time_of"] == "pull request" else "lead_time_hours"
    lead_source = w.prs if rules["lead_time_of"] == "pull request" else w.changes
    lead_cell = f"{group} AS grp, {_utc_trunc(period, 'deployed_at')} AS period_start"
    if rules["lead_time_of"] == "commit":
        # the changes view's rows, each deployment's group and period worked out once per
        # deployment instead of once per change (10M casts and truncations: 0.5 s); grouped
        # by repository, a change counts under its own repository, read per change
        lead_source = f"""(
            SELECT {group} AS grp, {_utc_trunc(period, "deployed_at")} AS period_start, deployed_at,
                   lead_time_hours, clock_skew, k
            FROM {w.changes} WHERE deployed_at >= $start AND deployed_at < $end)"""
        lead_cell = "grp, period_start"
    lead_used = _lead_used(rules, lead_value)
    sets = "grp, period_start"
    window = "{t} >= $start AND {t} < $end"

    def spans(value: str, name: str) -> str:
        # sorted once per list, not by an ordered aggregate (faster in DuckDB 1.4)
        return f"list_sort(list({value}) FILTER ({value} IS NOT NULL)) AS {name}"

    recovered = f"CASE WHEN failed THEN {guarded('recovery_hours', rules['recovery_guard'])} END"
    # Four Keys' numerator counts root-cause matches, not failed deployments
    failures = ("CAST(coalesce(sum(incidents) FILTER (failed), 0) AS BIGINT)"
                if rules["failure_count"] == "root-cause matches" else "count(*) FILTER (failed)")  # fmt: skip
    recovery = "" if rules["recovery"].startswith("per incident") else (
        f", {spans(recovered, 'recovery_spans')}, count(*) FILTER (failed AND clock_skew) AS recovery_skewed"
    )  # fmt: skip
    queries = {
        "deploys": f"""
            SELECT {group} AS grp, {_utc_trunc(period, "finished_at")} AS period_start,
                   count(*) AS deployments, {failures} AS failed_deployments,
                   count(*) FILTER (unplanned) AS unplanned_deployments,
                   count(DISTINCT {_utc_trunc("day", "finished_at")}) AS deploy_days {recovery}
            FROM {w.deploys} WHERE {window.format(t="finished_at")} GROUP BY {sets} ORDER BY {sets}""",
        "lead": f"""
            SELECT {lead_cell},
                   {spans(lead_used, "lead_spans")}, count(*) FILTER (clock_skew) AS lead_skewed
            FROM {lead_source} WHERE {window.format(t="deployed_at")} GROUP BY {sets} ORDER BY {sets}""",
        "prs": f"""
            SELECT {group} AS grp, {_utc_trunc(period, "listed_at")} AS period_start,
                   {spans("cycle_minutes / 60.0", "cycle_spans")}, count(*) FILTER (clock_skew) AS pr_skewed
            FROM {w.prs} WHERE {window.format(t="listed_at")} GROUP BY {sets} ORDER BY {sets}""",
        "incidents": f"""
            SELECT {group} AS grp, {_utc_trunc(period, "restore_from")} AS period_start,
                   count(*) AS incidents, {spans(guarded("restore_value", guard), "restore_spans")},
                   count(*) FILTER (clock_skew) AS restore_skewed
            FROM {w.incident_links} WHERE {window.format(t="restore_from")} GROUP BY {sets} ORDER BY {sets}""",
    }
    if rules["restore_window"] == "resolved":
        # DevLake's time to restore covers the incidents resolved in the window; its incident count, those opened
        queries["incidents"] = f"""
            SELECT {group} AS grp, {_utc_trunc(period, "restore_from")} AS period_start, count(*) AS incidents
            FROM {w.incident_links} WHERE {window.format(t="restore_from")} GROUP BY {sets} ORDER BY {sets}"""
        queries["restore"] = f"""
            SELECT {group} AS grp, {_utc_trunc(period, "resolved_at")} AS period_start,
                   {spans(guarded("restore_value", guard), "restore_spans")},
                   count(*) FILTER (clock_skew) AS restore_skewed
            FROM {w.incident_links} WHERE {window.format(t="resolved_at")} GROUP BY {sets} ORDER BY {sets}"""
    if rules["recovery"].startswith("per incident"):
        # DevLake's failed deployment recovery time: one value per linked incident, not per
        # deployment, in whole minutes (TIMESTAMPDIFF(MINUTE, …) truncates toward zero, an
        # integer: + 0 makes trunc's -0.0 a 0), for incidents resolved in the window of
        # deployments finished in it
        value = f"(trunc({span_minutes('finished_at', 'incident_resolved_at')}) + 0) / 60"
        queries["recovery"] = f"""
            SELECT {group} AS grp, {_utc_trunc(period, "finished_at")} AS period_start,
                   {spans(guarded(value, rules["recovery_guard"]), "recovery_spans")},
                   count(*) FILTER ({is_clock_skew(value)}) AS recovery_skewed
            FROM (SELECT d.* EXCLUDE (clock_skew), l.resolved_at AS incident_resolved_at
                  FROM {w.incident_links} l JOIN {w.deploys} d USING (deployment_id))
            WHERE {window.format(t="finished_at")} AND {window.format(t="incident_resolved_at")}
            GROUP BY {sets} ORDER BY {sets}"""
    rows, params = {}, {"start": start, "end": end}
    # values in clusters (the changes or pull requests of one deployment; a PR not deployed is its own)
    pr_cluster = "coalesce(deployment_id, '#' || repo || '#' || number)"
    if lead is None:
        # read once into a narrow table: the spans and then their design effects read it (reading
        # the changes view twice cost 4 s of CPU more by repository at 1M deployments)
        cluster = "k" if rules["lead_time_of"] == "commit" else pr_cluster
        store.execute(
            f"""CREATE OR REPLACE TEMP TABLE {w.lead_values} AS
                SELECT {lead_cell}, {cluster} AS cluster, {lead_used} AS value, clock_skew
                FROM {lead_source} WHERE {window.format(t="deployed_at")}""",
            params,
        )
        queries["lead"] = f"""
            SELECT grp, period_start, {spans("value", "lead_spans")}, count(*) FILTER (clock_skew) AS lead_skewed
            FROM {w.lead_values} GROUP BY {sets} ORDER BY {sets}"""
    for name, query in queries.items():
        if name == "lead" and lead is not None:
            continue
        table = store.arrow(query, _named(query, params))
        # the span lists stay Arrow buffers (10M values: as Python lists they cost 2.5 s);
        # the frame holds each row's position in them, which survives the merges below
        names = [name for name in table.column_names if name.endswith("_spans")]
        frame = store.connection.from_arrow(table.drop_columns(names)).df()  # the dtypes of Store.query
        rows[name] = _grouped(frame, {name: _arrow_spans(table.column(name)) for name in names})
        if name == "lead":
            source = f"SELECT grp, period_start, cluster, value FROM {w.lead_values}"
            _sql_design_effects(store, rows[name][0], source, params, "lead", "lead_time_deployments")
            store.execute(f"DROP TABLE {w.lead_values}")
        if name == "prs":
            source = f"""SELECT {group} AS grp, {_utc_trunc(period, "listed_at")} AS period_start,
                                {pr_cluster} AS cluster, cycle_minutes / 60.0 AS value
                         FROM {w.prs} WHERE {window.format(t="listed_at")}"""
            _sql_design_effects(store, rows[name][0], source, params, "cycle", "pr_cycle_deployments")
    merged, lists = None, {}
    for name in queries:
        frame, spans = lead.result()[:2] if name == "lead" and lead is not None else rows.pop(name)
        for column, (values, offsets) in spans.items():
            lists[column] = (values, offsets)
            frame[column] = np.arange(len(frame))
        merged = frame if merged is None else merged.merge(frame, on=["grp", "period_start"], how="outer")
    return merged, lists


def _sql_design_effects(
    store: Store,
    frame: pd.DataFrame,
    source: str,
    params: dict[str, Any],
    prefix: str,
    clusters_column: str | None = None,
) -> None:
    """:func:`_lead_design_effects` for span rows aggregated in DuckDB (lead times by repository, Four Keys'
    every listing, pull requests): each cluster's count and sums of (log) values grouped in SQL, the design
    effects per row in numpy.

    ``frame`` holds the rows (cells, then one per group); ``source`` gives each value's ``grp,
    period_start, cluster, value`` (its deployment; NULL where an aggregate has none). A
    cluster lies in one period (its deployment's), so its totals in a cell are its totals in
    the cell's group too. Adds :func:`_design_columns` of ``prefix`` and, when named,
    ``clusters_column`` (clusters per row).
    """
    columns = _design_columns(prefix)
    for name in columns:
        frame[name] = np.nan
    if clusters_column:
        frame[clusters_column] = 0
    if not len(frame):
        return
    cells = np.flatnonzero(frame["period_start"].notna().to_numpy())
    table = pd.DataFrame({"grp": frame["grp"].iloc[cells].to_numpy(), "period_start": frame["period_start"].iloc[cells],
                          "cell": cells, "grp_row": _group_row_of(frame)[cells]})  # fmt: skip
    con, name = store.connection, f"_dora_cells_{id(frame)}"
    con.register(name, table)
    try:
        per = _numpy_columns(
            store,
            f"""
            SELECT t.cell, t.grp_row, count(*) AS m,
                   -- intervals.signed_log: the scale of the clusters' correlation
                   sum(sign(v.value) * ln(1 + abs(v.value))) AS s,
                   sum(pow(sign(v.value) * ln(1 + abs(v.value)), 2)) AS q
            FROM ({source}) v
            JOIN {name} t ON t.grp = coalesce(CAST(v.grp AS VARCHAR), 'unassigned') AND t.period_start = v.period_start
            WHERE v.value IS NOT NULL
            GROUP BY t.cell, t.grp_row, v.cluster
            """,
            _named(source, params),
        )
    finally:
        con.unregister(name)
    totals = intervals.ClusterTotals(*(per[c].astype(float) for c in ("m", "s", "q")))
    for level in (per["cell"], per["grp_row"]):  # a value counts in its cell's row and its group's
        *effects, clusters = intervals.cluster_design_effects(totals, level, len(frame))
        found = clusters > 0
        for column, effect in zip(columns, effects, strict=True):
            frame.loc[found, column] = effect[found]
        if clusters_column:
            frame.loc[found, clusters_column] = clusters[found]


def _deployment_cells(
    store: Store, w: _Work, group: str, period: str, start, end
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Each production deployment's (group, period) cell in the window: the cells' ``grp, period_start`` in
    cell order and the deployments' numbers and cells (``k, cell``), for :func:`_lead_rows`."""
    params = {"start": start, "end": end}
    deployed = f"""
        SELECT k, {group} AS grp, {_utc_trunc(period, "finished_at")} AS period_start
        FROM {w.prod} WHERE finished_at >= $start AND finished_at < $end"""
    # cells numbered among the distinct (group, period) pairs: a window over all deployments
    # would sort them on one thread
    store.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {w.cells} AS
        SELECT grp, period_start, row_number() OVER (ORDER BY grp, period_start) - 1 AS cell
        FROM (SELECT DISTINCT grp, period_start FROM ({deployed}))
        """,
        params,
    )
    try:
        names = store.query(f"SELECT grp, period_start FROM {w.cells} ORDER BY cell")
        numbered = _numpy_columns(store, f"SELECT k, cell FROM ({deployed}) JOIN {w.cells} USING (grp, period_start)",
                                  params)  # fmt: skip
    finally:
        store.execute(f"DROP TABLE IF EXISTS {w.cells}")
    return names, numbered


def _lead_rows(
    names: pd.DataFrame,
    numbered: dict[str, np.ndarray],
    rows: dict[str, np.ndarray] | None,
    single: np.ndarray | None,
    named: dict[str, np.ndarray] | None,
    period: str,
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
    """Lead-time spans per (group, period) of the deployment, grouped and sorted in numpy, and per group.

    Numpy assembles each commit's first link (:func:`_first_links` of ``rows``, ``single``
    and ``named``), looks up its cell (:func:`_deployment_cells`) by its deployment number,
    orders the links by cell (:func:`_cell_order`) and sorts each
    cell's values. Grouping 10M changes into lists and sorting each list in DuckDB
    cost 3x as much on benchmarks/dora.py. Numpy and pandas alone: it runs on a thread
    beside the DuckDB queries of the other aggregates. The frame has the columns of the
    lead query of :func:`_aggregates` (``grp, period_start, lead_skewed`` and the spans),
    one row per cell with changes, in (group, period) order, then one per group
    (:func:`_grouped`). The third item: the rows of cells whose previous period (``period``)
    has changes too, when the period-over-period rank tests will count them pair by pair
    (:func:`_lead_u`), else None. The frame has each row's design effects too
    (:func:`_lead_design_effects`).
    """
    links = _first_links(rows, single, named)
    numbers = numbered["k"].astype(np.intp, copy=False)
    cell_of = np.full(max(int(numbers.max(initial=0)), int(links.k.max(initial=0))) + 1, -1, dtype=np.intp)
    cell_of[numbers] = numbered["cell"]
    k, value, present, skew = links.k, links.value, links.present, links.skew
    cell = cell_of[k]
    inside = cell >= 0  # deployed in the window
    if not inside.all():
        k, cell, value, present, skew = k[inside], cell[inside], value[inside], present[inside], skew[inside]
    del inside
    changes = np.bincount(cell, minlength=len(names))
    skews = np.bincount(cell[skew], minlength=len(names))
    if present.all():
        values, kept, counts = value, cell, changes
    else:  # a missing value (an excluded span) is in no list
        values, kept, k = value[present], cell[present], k[present]
        counts = np.bincount(kept, minlength=len(names))
    del cell, value, present, skew  # 10M rows: keep the peak down
    order = _cell_order(kept, len(names))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    del kept
    # each deployment's count and sum and sum of squares of (log) lead times, for the design effects
    totals = intervals.cluster_totals(values, k)
    del k
    values = values[order]
    del order
    for begin, stop in itertools.pairwise(offsets):  # one in-place sort per cell
        values[begin:stop].sort()
    with_changes = changes > 0
    frame = names.loc[with_changes, ["grp", "period_start"]].reset_index(drop=True)
    frame["lead_skewed"] = skews[with_changes].astype(np.int64)
    lengths = np.diff(offsets)[with_changes]
    frame, spans = _grouped(frame, {"lead_spans": (values, np.concatenate([[0], np.cumsum(lengths)]))})
    # a cell's row in the frame (cells with changes come first), by deployment number; -1 outside the window
    cell_row = np.append(np.cumsum(with_changes) - 1, -1)
    _lead_design_effects(frame, totals, cell_row[cell_of])
    # each cell after its group's previous period, both with values: the pairs of the rank tests
    # (the calendar's previous row in by_period is the previous week or month of the group)
    cells = frame["period_start"].notna().to_numpy()
    starts = pd.DatetimeIndex(frame.loc[cells, "period_start"])
    days = starts.to_numpy().astype("datetime64[D]").astype(np.int64)  # 1970-01-05 was a Monday
    step = np.asarray(starts.year * 12 + starts.month) if period == "month" else (days - 4) // 7
    grp = frame.loc[cells, "grp"].to_numpy()
    current = np.flatnonzero((grp[1:] == grp[:-1]) & (np.diff(step) == 1) & (lengths[1:] > 0)
                             & (lengths[:-1] > 0)) + 1  # fmt: skip
    pairs = current if intervals.by_pairs(len(current), int(lengths.sum())) else None
    return frame, spans, pairs


def _lead_design_effects(frame: pd.DataFrame, totals: intervals.ClusterTotals, row_of: np.ndarray) -> None:
    """Add the lead-time rows' design effects (:func:`_design_columns` of ``lead``) and ``lead_time_deployments``.

    The commits of one deployment share its deploy time, so their lead times are no
    independent draws: 1,950 commits shipped in 145 releases are nearer 145 observations
    than 1,950 for a median. Each row's design effects of its median, p90 and ranks
    (:func:`releaserisk.intervals.cluster_design_effects`, deployments as clusters) widen
    their intervals and the rank tests (:func:`_intervals`, :func:`_changes`). ``frame`` is
    :func:`_lead_rows`' (cell rows, then one row per group, ``period_start`` missing);
    ``totals`` each deployment number's lead times (:func:`releaserisk.intervals.cluster_totals`)
    and ``row_of`` each deployment number's cell row (negative: outside the window).
    """
    columns = {name: np.full(len(frame), np.nan) for name in _design_columns("lead")}
    found = np.zeros(len(frame), dtype=np.int64)
    if len(totals.size):
        cell_group = _group_row_of(frame)
        for level in (row_of, np.where(row_of >= 0, cell_group[row_of], -1)):  # a lead time counts in both rows
            *effects, clusters = intervals.cluster_design_effects(totals, level, len(frame))
            filled = clusters > 0
            for name, effect in zip(columns, effects, strict=True):
                columns[name][filled] = effect[filled]
            found[filled] = clusters[filled]
    for name, effect in columns.items():
        frame[name] = effect
    frame["lead_time_deployments"] = found


def _group_row_of(frame: pd.DataFrame) -> np.ndarray:
    """Each row's group row in aggregate rows of :func:`_group_rows` (cells, then one row per group with
    ``period_start`` missing): where a cell's values count a second time."""
    groups = frame["period_start"].isna().to_numpy()
    group_row = pd.Series(np.flatnonzero(groups), index=frame.loc[groups, "grp"].to_numpy())
    return group_row.reindex(frame["grp"]).to_numpy(dtype=np.intp)


def _design_columns(prefix: str) -> tuple[str, str, str]:
    """A span list's design-effect columns: at its median, at its p90 and of its ranks."""
    return f"{prefix}_design_effect_50", f"{prefix}_design_effect_90", f"{prefix}_rank_design_effect"


def _lead_u(lead: Future) -> np.ndarray | None:
    """The U statistic of each lead-time cell against its group's previous period (NaN where not counted), for
    :func:`_changes`: counted on the numpy thread while DuckDB finishes the other aggregates, instead of alone
    at the end of the call (0.25-0.35 s at 1M deployments). ``lead`` is the future of :func:`_lead_rows`
    (done: the numpy thread runs its jobs in order); None when the rank tests will not count pair by pair.
    """
    _, spans, current = lead.result()
    if current is None:
        return None
    values, offsets = spans["lead_spans"]
    u = np.full(len(offsets) - 1, np.nan)
    u[current] = intervals.u_statistics(values, offsets, current, current - 1)
    return u


def _cell_order(cells: np.ndarray, count: int) -> np.ndarray:
    """The stable ``argsort`` of ``cells`` (integers in ``[0, count)``).

    The links come from the deployments' changes, where a deployment's links usually
    lie together: then only the runs of equal cells are sorted (a tenth as many values on
    benchmarks/dora.py) and the order is spelled out from them, run by run (0.18 ->
    0.06 s of the numpy thread for 8.8M links). Sorting the runs stably by cell, each
    kept whole, gives the same order as the stable sort of every link.
    """
    if len(cells) == 0:
        return np.empty(0, dtype=np.intp)
    starts = np.flatnonzero(np.concatenate([[True], cells[1:] != cells[:-1]]))
    if 4 * len(starts) > len(cells):  # short runs (links in no useful order): sort them all
        return _radix_order(cells, count)
    lengths = np.diff(np.append(starts, len(cells)))
    runs = _radix_order(cells[starts], count)
    lengths, starts = lengths[runs], starts[runs]
    # the order steps by one within a run and jumps to the next run's first link between runs:
    # the cumulative sum of those steps, in one array (no second 10M-value array at the peak)
    order = np.ones(len(cells), dtype=np.intp)
    order[0] = starts[0]
    order[(np.cumsum(lengths) - lengths)[1:]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(order, out=order)


def _radix_order(cells: np.ndarray, count: int) -> np.ndarray:
    """The stable ``argsort`` of ``cells`` in ``[0, count)``: a radix sort on 16-bit keys, low half then high."""
    order = np.argsort((cells & 0xFFFF).astype(np.uint16), kind="stable")
    if count > 0xFFFF:
        order = order[np.argsort((cells[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def _grouped(
    frame: pd.DataFrame, spans: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One aggregate's (group, period) rows with a missing group named ``unassigned``, followed by its groups'
    rows (:func:`_group_rows`)."""
    frame["grp"] = frame["grp"].fillna("unassigned").astype(str)
    return _group_rows(frame, spans)


def _group_rows(
    frame: pd.DataFrame, spans: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per-period rows followed by one row per group (``period_start`` missing): counts summed, spans sorted.

    Summing is exact for every count here: periods (ISO weeks, months) are whole UTC days,
    so a group's distinct deploy days are its periods' distinct days added up.
    """
    counts = [c for c in frame.columns if c not in ("grp", "period_start") and c not in spans]
    codes, names = pd.factorize(frame["grp"], sort=True)
    groups = frame[counts].groupby(codes).sum().reset_index(drop=True)
    groups["grp"] = names
    groups["period_start"] = pd.Series(pd.NaT, index=groups.index, dtype=frame["period_start"].dtype)
    rows = pd.concat([frame, groups[frame.columns]], ignore_index=True)
    order = pd.Series(np.argsort(codes, kind="stable"))  # each group's periods one after the other
    out = {}
    for name, (values, offsets) in spans.items():
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, np.diff(offsets), len(names)))]).astype(np.int64)
        # the periods' values, then each group's: one array written once (a copy of the groups'
        # values and their concatenation with the periods' cost 70 MB more at the call's peak)
        combined = np.empty(len(values) + int(bounds[-1]), dtype=values.dtype)
        combined[: len(values)] = values
        combined[len(values) :] = _take_spans((values, offsets), order)[0]
        grouped = combined[len(values) :]  # a view, sorted in place below
        # one in-place sort per group of its periods' values: numpy sorts a slice faster than
        # any exact vectorised sort by (group, value) over 10M values, or a second DuckDB grouping
        for begin, stop in itertools.pairwise(bounds):
            grouped[begin:stop].sort()
        out[name] = (combined, np.concatenate([offsets, offsets[-1] + bounds[1:]]))
    return rows, out


def _arrow_spans(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow list column as one value array and offsets (a missing list is empty)."""
    lists = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(lists)
    values = values if pa.types.is_float64(values.type) else values.cast(pa.float64())
    values = values.to_numpy(zero_copy_only=False)
    return values, np.concatenate([[0], np.cumsum(lengths)])


def _take_spans(spans: tuple[np.ndarray, np.ndarray], rows: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The span lists at positions ``rows`` (missing: an empty list), in that order."""
    values, offsets = spans
    rows = rows.fillna(-1).to_numpy(dtype=np.int64)
    present = rows >= 0
    if not present.any():
        return np.empty(0), np.zeros(len(rows) + 1, dtype=np.int64)
    safe = np.where(present, rows, 0)
    starts = np.where(present, offsets[:-1][safe], 0)
    lengths = np.where(present, np.diff(offsets)[safe], 0)
    new_offsets = np.concatenate([[0], np.cumsum(lengths)])
    kept = rows[present]
    if (np.diff(kept) == 1).all():  # consecutive lists in their order (the usual case): a view, no copy
        return values[offsets[kept[0]] : offsets[kept[-1] + 1]], new_offsets
    index = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return values[index], new_offsets


def _tiers_spanned(metric: str, low: pd.Series, high: pd.Series, n: pd.Series, benchmark: int) -> np.ndarray:
    """The tiers an interval spans, best first (``elite, high``); empty without data.

    Tiers are monotone in each metric, so the interval spans every tier between its two
    ends' tiers; an unbounded end reaches the last tier on its side. Deployment frequency
    has data without deployments: no deployment in a period is a count of 0 over its
    weeks, whose interval (``[0, 0.83]`` a week over a month) spans tiers like any other.
    """
    names = [row[0] for row in BENCHMARKS[benchmark]]
    better_high = metric == "deploys_per_week"
    # an unbounded end: towards the best tier or the worst, as that end points
    low = low.fillna(-math.inf if not better_high else 0.0)
    high = high.fillna(math.inf)
    a = _tier_index(metric, low.to_numpy(dtype=float), benchmark)
    b = _tier_index(metric, high.to_numpy(dtype=float), benchmark)
    # every (best, worst) pair's text once, then looked up (a Python join per row cost 0.35 s at 1M)
    spans = np.array([", ".join(names[i : j + 1]) for i in range(len(names)) for j in range(len(names))], dtype=object)
    spanned = spans[np.minimum(a, b) * len(names) + np.maximum(a, b)]
    if not better_high:
        spanned[np.asarray(n) == 0] = ""
    return spanned


def _intervals(
    frame: pd.DataFrame,
    weeks: pd.Series,
    rules: dict[str, str],
    benchmark: int,
    spans: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    """Add each metric's value from its spans, ``_n``, ``_ci_low``, ``_ci_high`` and ``_tiers``."""
    for metric, (kind, *spec) in _INTERVALS.items():
        if kind == "frequency":
            n = frame["deployments"]
            low, high = intervals.poisson_rate_interval(n, weeks)
        elif kind == "rate":
            n = frame["deployments"]
            low, high = intervals.wilson_interval(frame[spec[0]], n)
            frame[metric] = (frame[spec[0]] / n).where(n > 0)
        else:
            column, q = spec
            values, offsets = spans[column]
            kind_q = "lower" if q == 0.5 and rules["median"] == "lower" else "interpolated"
            frame[metric] = intervals.sorted_quantile(values, offsets, q, kind_q)
            n = pd.Series(np.diff(offsets), index=frame.index)
            lo_rank, hi_rank = intervals.quantile_interval_ranks(n, q, design_effect=_design_effect(frame, column, q))
            low = intervals.order_statistics(values, offsets, lo_rank)
            high = intervals.order_statistics(values, offsets, hi_rank)
        frame[f"{metric}_n"] = np.asarray(n, dtype=int)
        frame[f"{metric}_ci_low"], frame[f"{metric}_ci_high"] = low, high
        if metric in _TIER_COLUMNS:
            frame[f"{metric}_tiers"] = _tiers_spanned(
                metric, frame[f"{metric}_ci_low"], frame[f"{metric}_ci_high"], frame[f"{metric}_n"], benchmark
            )


def _design_effect(frame: pd.DataFrame, column: str, q: float | None) -> np.ndarray | None:
    """Each row's design effect for the ``q`` quantile of the span list ``column`` (None: of its ranks) where
    its values come in clusters (lead times and pull requests' cycle times, whose deployments are clusters:
    :func:`_lead_design_effects`, :func:`_sql_design_effects`), or None where values are independent
    (recovery, restore)."""
    quantile_50, quantile_90, ranks = _design_columns(column.removesuffix("_spans"))
    name = ranks if q is None else quantile_50 if q == 0.5 else quantile_90
    return frame[name].to_numpy(dtype=float, na_value=np.nan) if name in frame else None


#: The clusters (deployments) per row of a span list whose values come in clusters.
_CLUSTERS = {"lead_spans": "lead_time_deployments", "cycle_spans": "pr_cycle_deployments"}


def _changes(
    frame: pd.DataFrame,
    days: pd.Series,
    spans: dict[str, tuple[np.ndarray, np.ndarray]],
    known: dict[str, Future[np.ndarray | None]],
) -> None:
    """Per metric, the p-value of the change from the group's previous period and whether it is significant.

    Rates: two-proportion z-test (Fisher's exact for small counts); deployments per week:
    exact conditional Poisson test on the periods' lengths; medians and p90: Mann–Whitney
    on the periods' spans (one rank test for both quantiles of a metric). All vectorised
    over every (group, period) row at once (:mod:`releaserisk.intervals`). ``known``: per
    span column, the U statistics counted beforehand (:func:`_lead_u`).
    """
    groups = frame["grp"].to_numpy()
    current = np.flatnonzero(np.r_[False, groups[1:] == groups[:-1]])
    previous = current - 1
    deployments = frame["deployments"].to_numpy(float)
    tested: dict[str, np.ndarray] = {}
    for metric, (kind, *spec) in _INTERVALS.items():
        p = np.full(len(frame), np.nan)
        if kind == "frequency":
            t = days.to_numpy(float)
            p[current] = intervals.poisson_rate_tests(
                deployments[current], t[current], deployments[previous], t[previous]
            )
        elif kind == "rate":
            x = frame[spec[0]].to_numpy(float)
            p[current] = intervals.two_proportion_tests(
                x[current], deployments[current], x[previous], deployments[previous]
            )
        else:  # one rank test per span list: the median and p90 of lead time share theirs
            if spec[0] not in tested:
                values, offsets = spans[spec[0]]
                counted = _known_u(frame, spec[0], known, current, previous)
                clusters = frame[_CLUSTERS[spec[0]]].to_numpy(dtype=float) if spec[0] in _CLUSTERS else None
                tested[spec[0]] = intervals.rank_tests(
                    values, offsets, current, previous, counted, _design_effect(frame, spec[0], None), clusters
                )
            p[current] = tested[spec[0]]
        frame[f"{metric}_change_p_value"] = p
        frame[f"{metric}_change_significant"] = pd.array(
            np.where(np.isnan(p), None, p < _SIGNIFICANCE), dtype="boolean"
        )


def _known_u(
    frame: pd.DataFrame,
    column: str,
    known: dict[str, Future[np.ndarray | None]],
    current: np.ndarray,
    previous: np.ndarray,
) -> np.ndarray | None:
    """The U statistics counted beforehand for the rows ``current`` against ``previous`` (NaN: not counted).

    ``known[column]`` holds one U per list of ``column`` (by its position, which the frame's
    column holds), against the list before it; it is this pair's U when the previous row's
    list is that one.
    """
    if column not in known or column not in frame:
        return None
    counted = known[column].result()
    if counted is None:
        return None
    position = frame[column].to_numpy(dtype=float, na_value=np.nan)
    mine, theirs = position[current], position[previous]
    valid = (mine >= 0) & (mine < len(counted)) & (theirs == mine - 1)
    u = np.full(len(current), np.nan)
    u[valid] = counted[mine[valid].astype(np.intp)]
    return u


def _finish(
    frame: pd.DataFrame,
    lists: dict[str, tuple[np.ndarray, np.ndarray]],
    span_days: pd.Series,
    benchmark: int,
    rules: dict[str, str],
    evidence: tuple[bool, bool] = (True, True),
    changes: bool = False,
    known: dict[str, Future[np.ndarray | None]] | None = None,
) -> pd.DataFrame:
    """Rates from counts, zeros for empty periods, values and intervals from spans, tiers per metric (with
    ``changes``, each period's change from the previous; ``known`` as :func:`_changes`)."""
    for column in ("deployments", "failed_deployments", "unplanned_deployments", "deploy_days", "incidents",
                   *_CLUSTERS.values()):  # fmt: skip
        frame[column] = frame[column].fillna(0).astype(int) if column in frame else 0
    weeks = span_days / 7.0
    frame["deploys_per_week"] = frame["deployments"] / weeks
    frame["deploys_per_day"] = frame["deployments"] / span_days
    frame["deploy_days_per_week"] = frame["deploy_days"] / weeks
    empty = (np.empty(0), np.zeros(len(frame) + 1, dtype=np.int64))
    spans = {c: _take_spans(lists[c], frame[c]) if c in frame else empty for c in _SPAN_COLUMNS}
    _intervals(frame, weeks, rules, benchmark, spans)
    if changes:
        _changes(frame, span_days, spans, known or {})
    failures, rework = evidence
    for known, metric in ((failures, "change_failure_rate"), (rework, "rework_rate")):
        if not known:  # no source: no data, not a measured 0 %
            frame[[metric, f"{metric}_ci_low", f"{metric}_ci_high"]] = np.nan
            for column in (f"{metric}_change_p_value", f"{metric}_change_significant"):
                if column in frame:
                    frame[column] = np.nan if column.endswith("value") else pd.NA
            # nor 0 failed of n observed: the counts resting on the missing source are unknown too
            for column in _UNOBSERVED_COUNTS[metric]:
                frame[column] = pd.array([pd.NA] * len(frame), dtype="Int64")
    for metric in _TIER_COLUMNS:
        frame[f"{metric}_tier"] = _tiers(metric, frame[metric], benchmark)
    if not failures:
        frame["change_failure_rate_tiers"] = ""
    return frame


def _unobserved_columns(evidence: Sequence[bool]) -> list[str]:
    """The deployments drill-down's columns resting on a source the store lacks (:func:`_evidence`'s
    ``(failures, rework)``): without one, ``failed = false`` would be an absence of data shown as a pass."""
    return [c for known, metric in zip(evidence, _UNOBSERVED_DETAIL, strict=True) if not known
            for c in _UNOBSERVED_DETAIL[metric]]  # fmt: skip


def _unobserved(evidence: Sequence[bool]) -> str:
    """A ``REPLACE`` clause nulling :func:`_unobserved_columns` in the deployments drill-down."""
    columns = _unobserved_columns(evidence)
    # CASE WHEN false: a null of the column's own type
    return f" REPLACE ({', '.join(f'CASE WHEN false THEN {c} END AS {c}' for c in columns)})" if columns else ""


def _interval_columns(changes: bool) -> list[str]:
    columns = []
    for metric in _INTERVALS:
        columns += [f"{metric}_n", f"{metric}_ci_low", f"{metric}_ci_high"]
        # the deployments the values come from: their clusters (_lead_design_effects, _sql_design_effects)
        columns += (
            [_CLUSTERS[_INTERVALS[metric][1]]] if metric in ("lead_time_median_hours", "pr_cycle_median_hours") else []
        )
        columns += [f"{metric}_tiers"] if metric in _TIER_COLUMNS else []
        columns += [f"{metric}_change_p_value", f"{metric}_change_significant"] if changes else []
    return columns


def _skew_notes(summary: pd.DataFrame, rules: dict[str, str]) -> list[str]:
    """One note per kind of impossible span found in the window: how many and what was done with them."""
    notes = []
    for column, what in _SKEW_NOTES.items():
        guard = rules["recovery_guard" if column == "recovery_skewed" else "span_guard"]
        if column == "lead_skewed" and rules["lead_time_zero"] == "dropped":
            guard = "drop"  # Four Keys drops lead times that are not positive
        done = {"exclude": "were left out", "drop": "were dropped, as the peer does",
                "keep": "were counted as the peer does"}[guard]  # fmt: skip
        count = int(summary[column].fillna(0).sum()) if column in summary else 0
        if count and column == "pr_skewed":
            # the phase is what is impossible, not the pull request: its cycle time (first commit -> deployment)
            # stands unless it ends before it starts too; and a release tagged before its pull request merged
            # (pytest merges its release PRs after the tag) is a deploy phase below zero without any skew
            phase = {"exclude": "the phase was left out", "drop": "the phase was dropped, as the peer does",
                     "keep": "the phase was kept as it is (this profile keeps impossible spans)"}[guard]  # fmt: skip
            notes.append(
                f"{count:,} {what[count > 1]}: {phase}, the cycle time counted unless it ends before it starts "
                "too (clock skew, or a deployment that shipped the pull request's commits before its merge)"
            )
        elif count:
            notes.append(
                f"{count:,} {what[count > 1]} {done if count > 1 else done.replace('were', 'was')} (clock skew)"
            )
    return notes


def _evidence(store: Store, rules: dict[str, str]) -> tuple[bool, bool, list[str]]:
    """Whether the store can show change failures and rework at all, and notes saying why not.

    Incidents are a source of both; rollback and hotfix deployments are rework, and are
    change failures where the profile's ``failure`` rule counts them; where incidents link
    by cause alone (``fourkeys``) only an incident naming its root-cause commit can fail a
    deployment. With no source, a 0 % rate would be an absence of data presented as an
    elite score.
    """
    incidents, kinds, causes = store.execute(
        "SELECT EXISTS (SELECT 1 FROM incidents), "
        "EXISTS (SELECT 1 FROM deployments WHERE kind IN ('rollback', 'hotfix')), "
        f"EXISTS ({_causes(rules)})"
    ).fetchone()
    failures = incidents or (kinds and "rollback" in rules["failure"])
    rework = incidents or kinds
    if rules["incident_link"].startswith("cause sha") and incidents and not causes:
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


def _store_notes(store: Store, rules: dict[str, str], settings: Settings, start, end) -> tuple[bool, bool, list[str]]:
    """:func:`_evidence` and the notes on the store's sources: what reads the store's tables alone (deployments
    of unknown commits: those in the window ``[start, end)``)."""
    failures, rework, notes = _evidence(store, rules)
    notes += _source_notes(store, rules, settings.production_environments)
    notes += [note for note in [unknown_commit_note(store, start, end)] if note]
    return failures, rework, notes


@contextlib.contextmanager
def _beside(store: Store, work: Callable[[Store], _T]) -> Iterator[Future[_T]]:
    """Run ``work`` on a second connection to the store's database while the caller goes on.

    The notes read the store's tables only, and their largest query (deployments whose sha
    is no commit: an anti-join of 1M deployments with 10M commits on benchmarks/dora.py)
    cost 0.7 s of CPU; the metrics leave a core idle while numpy sorts their spans, so on a
    second connection (DuckDB runs its connections' queries side by side) the notes take
    that core instead of adding to the call's time. Inside a transaction the caller's
    connection sees writes a second one would not: there ``work`` runs first, on it.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        if store.in_transaction:
            future: Future[_T] = Future()
            future.set_result(work(store))
            yield future
            return
        second = Store(store.connection.cursor(), store.path, store.read_only)
        try:
            future = pool.submit(work, second)
            yield future
        finally:
            future.cancel()
            wait([future])
            second.close()


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


def _source_notes(store: Store, rules: dict[str, str], production: Sequence[str]) -> list[str]:
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
    merged = store.execute("SELECT count(merged_at) FROM pull_requests").fetchone()[0]
    if rules["lead_time_of"] == "pull request" and not merged:
        notes.append(
            "the devlake profile measures lead time per merged pull request and the store has none, so lead "
            "time is no data; ingest pull requests (ingest github, or ingest pull-requests FILE)"
        )
    return notes


_SUMMARY_COLUMNS = [
    "deployments", "deploys_per_week", "deploys_per_day", "deploy_days_per_week",
    "lead_time_median_hours", "lead_time_p90_hours", "change_failure_rate", "failed_deployments",
    "recovery_median_hours", "incidents", "restore_median_hours", "rework_rate", "unplanned_deployments",
    "pr_cycle_median_hours",
    *[f"{m}_tier" for m in _TIER_COLUMNS],
]  # fmt: skip
_SPAN_COLUMNS = ["lead_spans", "recovery_spans", "restore_spans", "cycle_spans"]
#: Four Keys' stat-panel buckets (:func:`_fourkeys_stat_buckets`), in the summary where ``stat_buckets`` is set.
_STAT_BUCKETS = ["lead_time_bucket", "change_failure_rate_bucket", "restore_bucket"]


def _fourkeys_buckets(store: Store, w: _Work, group: str, groups: list[str], start, end) -> dict[str, str]:
    """Four Keys' deployment-frequency bucket of each group over the window.

    Source: dora-team/fourkeys, METRICS.md, "Deployment Frequency" (the dashboard's
    query). Over a calendar of days, grouped into weeks starting on Sunday (BigQuery's
    ``TIMESTAMP_TRUNC(day, WEEK)``), each week has ``days_deployed`` (distinct UTC
    days with a deployment) and ``week_deployed`` (0/1); each week row also carries
    ``monthly_deploys``, the deployed weeks of the month its week starts in. The bucket
    is Daily when the interpolated median of ``days_deployed`` is at least 3, Weekly
    when that of ``week_deployed`` is at least 1 (most weeks deploy), Monthly when that
    of ``monthly_deploys`` is at least 1, else Yearly. The calendar is the window's last
    three months: Four Keys' ``GENERATE_DATE_ARRAY(DATE_SUB(CURRENT_DATE(), INTERVAL 3
    MONTH), CURRENT_DATE(), INTERVAL 1 DAY)``, today being the window's last day (a month
    back from the 31st is the month's last day, as ``DATE_SUB`` gives), its ``day > (first
    event)`` the window's start.
    """
    last = (end - pd.Timedelta(microseconds=1)).tz_convert("UTC").tz_localize(None).floor("D")
    first = max(start.tz_convert("UTC").tz_localize(None).floor("D"), last - pd.DateOffset(months=3))
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
            "first": first,
            "last": last,
        },
    ).fetchall()
    return dict(rows)


def _fourkeys_stat_buckets(
    store: Store, w: _Work, group: str, groups: list[str], start, end
) -> dict[str, tuple[str, str, str]]:
    """Four Keys' lead time, change failure rate and time to restore buckets of each group (its dashboard's
    stat panels).

    Source: dora-team/fourkeys, ``dashboard/fourkeys_dashboard.json`` (and METRICS.md):
    over deployments (and incidents) with ``time_created > TIMESTAMP(DATE_SUB(CURRENT_DATE(),
    INTERVAL 3 MONTH))``, today being the window's last day (and within the window),

    * "Lead Time to Change Bucket": ``IFNULL(PERCENTILE_CONT(IF(minutes > 0, minutes,
      NULL), 0.5), 0)`` of the whole-minute lead times: < 24 h "One day", < 168 h "One
      week", < 730 h "One month", < 730 * 6 h "Six months", else "One year" (no lead time
      at all is 0: "One day", as the dashboard says);
    * "Change Failure Rate": root-cause matches / deployments (0 without deployments):
      <= 0.15 "0-15%", < 0.46 "16-45%", else "46-60%";
    * "Median Time to Restore Services": ``PERCENTILE_CONT(TIMESTAMP_DIFF(time_resolved,
      time_created, HOUR), 0.5)`` with the thresholds of lead time; no resolved incident is a
      NULL median, which no ``WHEN`` matches: "One year".

    Returns
    -------
    dict
        Group -> (lead time bucket, change failure rate bucket, time to restore bucket).
    """
    last = (end - pd.Timedelta(microseconds=1)).tz_convert("UTC").tz_localize(None).floor("D")
    cutoff = (last - pd.DateOffset(months=3)).tz_localize("UTC")
    params = {"groups": groups, "start": start, "end": end, "cutoff": cutoff}
    within = "{t} > $cutoff AND {t} >= $start AND {t} < $end"
    # the lead times are whole minutes / 60 (rounding): round(* 60) gives back the exact integers
    rows = store.execute(
        f"""
        WITH lead AS (
            SELECT {group} AS grp, quantile_cont(round(lead_time_hours * 60), 0.5) AS minutes
            FROM {w.changes} WHERE lead_time_hours > 0 AND {within.format(t="deployed_at")} GROUP BY 1
        ),
        rate AS (
            SELECT {group} AS grp, sum(incidents) / count(*) AS rate
            FROM {w.deploys} WHERE {within.format(t="finished_at")} GROUP BY 1
        ),
        restore AS (
            SELECT {group} AS grp, quantile_cont(restore_value, 0.5) AS hours
            FROM {w.incident_links} WHERE {within.format(t="restore_from")} GROUP BY 1
        )
        SELECT g.grp,
               CASE WHEN coalesce(l.minutes, 0) < 24 * 60 THEN 'One day' WHEN l.minutes < 168 * 60 THEN 'One week'
                    WHEN l.minutes < 730 * 60 THEN 'One month' WHEN l.minutes < 730 * 6 * 60 THEN 'Six months'
                    ELSE 'One year' END,
               CASE WHEN coalesce(r.rate, 0) <= 0.15 THEN '0-15%' WHEN r.rate < 0.46 THEN '16-45%' ELSE '46-60%' END,
               CASE WHEN t.hours < 24 THEN 'One day' WHEN t.hours < 168 THEN 'One week'
                    WHEN t.hours < 730 THEN 'One month' WHEN t.hours < 730 * 6 THEN 'Six months'
                    ELSE 'One year' END
        FROM (SELECT unnest($groups) AS grp) g LEFT JOIN lead l USING (grp) LEFT JOIN rate r USING (grp)
        LEFT JOIN restore t USING (grp)
        """,
        params,
    ).fetchall()
    return {grp: (lead, rate, restore) for grp, lead, rate, restore in rows}


def _devlake_frequency(store: Store, w: _Work, group: str, groups: list[str], start, end) -> dict[str, str]:
    """DevLake's deployment frequency of each group over the window, as its DORA dashboard writes it.

    Source: apache/incubator-devlake, ``grafana/dashboards/DORA.json``, "Deployment
    Frequency", the 2023 report (the dashboard's default ``dora_report``). Over a calendar
    of days, each Monday-start week (``DATE_ADD(day, INTERVAL -WEEKDAY(day) DAY)``) and
    each month counts its days with a successful production deployment
    (``max(DATE(cdc.finished_date))`` per deployment, UTC days here); the medians are
    ``max(x) WHERE percent_rank() <= 0.5``, the lower median (the ``ceil(n / 2)``-th
    value). ``"<m> deployment days per week(elite)"`` when the weekly median is at least 5,
    ``(high)`` when at least 1; else ``"<m> deployment days per month(medium)"`` when the
    monthly median is at least 1, else ``(low)``. Departure: the calendar is the window's
    days, where the dashboard takes the days after Grafana's range start through its end's
    date (at most 400).

    Returns
    -------
    dict
        Group -> the dashboard's text.
    """
    rows = store.execute(
        f"""
        WITH calendar AS (
            SELECT CAST(d AS DATE) AS day
            FROM range(CAST($first AS TIMESTAMP), CAST($last AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)
        ),
        deploy_days AS (
            SELECT DISTINCT {group} AS grp, CAST(make_timestamp(epoch_us(finished_at)) AS DATE) AS day
            FROM {w.deploys} WHERE finished_at >= $start AND finished_at < $end
        ),
        days AS (
            SELECT g.grp, c.day, dd.day IS NOT NULL AS deployed
            FROM (SELECT unnest($groups) AS grp) g CROSS JOIN calendar c
            LEFT JOIN deploy_days dd ON dd.grp = g.grp AND dd.day = c.day
        ),
        weeks AS (
            SELECT grp, count(*) FILTER (deployed) AS days_deployed FROM days GROUP BY grp, date_trunc('week', day)
        ),
        months AS (
            SELECT grp, count(*) FILTER (deployed) AS days_deployed FROM days GROUP BY grp, date_trunc('month', day)
        ),
        -- the lower median: the ceil(n / 2)-th value (lists are 1-based)
        medians AS (
            SELECT grp, 'week' AS unit, list_sort(list(days_deployed))[CAST(ceil(count(*) / 2) AS BIGINT)] AS m
            FROM weeks GROUP BY grp
            UNION ALL
            SELECT grp, 'month', list_sort(list(days_deployed))[CAST(ceil(count(*) / 2) AS BIGINT)]
            FROM months GROUP BY grp
        )
        SELECT grp, max(m) FILTER (unit = 'week') AS weekly, max(m) FILTER (unit = 'month') AS monthly
        FROM medians GROUP BY grp
        """,
        {
            "groups": groups,
            "start": start,
            "end": end,
            "first": start.tz_convert("UTC").tz_localize(None).floor("D"),
            "last": (end - pd.Timedelta(microseconds=1)).tz_convert("UTC").tz_localize(None).floor("D"),
        },
    ).fetchall()
    texts = {}
    for grp, weekly, monthly in rows:
        if weekly >= 1:
            texts[grp] = f"{weekly} deployment days per week({'elite' if weekly >= 5 else 'high'})"
        else:
            texts[grp] = f"{monthly} deployment days per month({'medium' if monthly >= 1 else 'low'})"
    return texts


def change_failures(
    store: Store,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    *,
    settings: Settings | None = None,
    profile: str = "dora",
) -> pd.DataFrame:
    """Which production deployments in ``[since, until)`` were change failures, and nothing else.

    The same rules as :func:`dora_metrics` (incident links, rollbacks, hotfixes of the
    profile), without its aggregates, intervals and drill-downs: what the CI gate's batch
    history and the deployment-level model need, at a fraction of the cost.

    Parameters
    ----------
    store : Store
    since, until : str or datetime, optional
        The window (as :func:`dora_metrics`).
    settings : Settings, optional
        ``production_environments`` and the failure rules' settings.
    profile : str
        One of :data:`PROFILES`.

    Returns
    -------
    DataFrame
        ``deployment_id, service, finished_at, failed`` (bool; null — unknown, not false —
        when the store has no source of change failures for the profile, as
        :attr:`DoraResult.failures_tracked`), by ``finished_at``.

    Raises
    ------
    InputError
        An unknown profile, or a window that is not one.
    """
    settings = settings or Settings()
    rules = profile_rules(profile)
    start, end = _window(store, since, until)
    _drop_dead(store)
    work = _Work.new()
    try:
        _prepare(store, settings, rules, work)
        failed = "failed" if _evidence(store, rules)[0] else "CAST(NULL AS BOOLEAN) AS failed"
        return store.query(
            f"SELECT deployment_id, service, finished_at, {failed} FROM {work.deploys} "
            "WHERE finished_at >= $start AND finished_at < $end ORDER BY finished_at, deployment_id",
            {"start": start, "end": end},
        )
    finally:
        _bury(store, work)


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
    compare: Sequence[str] | None = None,
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
        Definitions to follow (:data:`releaserisk.profiles.PROFILE_RULES`).
    benchmark : {2023, 2024}
        DORA report year for the tiers.
    settings : Settings, optional
        Production environment names.
    compare : sequence of str, optional
        Profiles to compare (``["dora", "devlake", "fourkeys"]``; ``profile`` is added first
        when missing): the result's ``comparison`` holds them side by side and, per
        deployment, pull request, change and incident, why they disagree.
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

    Raises
    ------
    InputError
        An unknown profile, grouping, period or benchmark, or a window that is not one.
    """
    settings = settings or Settings()
    rules = profile_rules(profile)
    if compare:
        names = list(dict.fromkeys([profile, *compare])) if profile not in compare else list(dict.fromkeys(compare))
        for name in names:
            profile_rules(name)  # an unknown name is an input error before any work
        common = {"freq": freq, "by": by, "benchmark": benchmark, "settings": settings}
        results = {name: dora_metrics(store, since, until, profile=name, **common) for name in names}
        result = results[profile]
        result.comparison = compare_results(store, results)
        return result
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
    numpy_thread = ThreadPoolExecutor(max_workers=1)
    try:
        with _beside(store, lambda notes_store: _store_notes(notes_store, rules, settings, start, end)) as store_notes:
            if count_flag_releases:
                from releaserisk.flags import write_incident_causes

                write_incident_causes(store, work.incident_causes, settings)
            _production(store, settings, rules, work)
            # per commit, grouped by the deployment's group (by repository, a change counts under its own)
            lead_cells = rules["lead_time_of"] == "commit" and by != "repo"
            cells = _deployment_cells(store, work, group, period, start, end) if lead_cells else None
            # numpy works on a thread beside DuckDB's: it converts the links and sorts their hashes, and
            # (unless some commits are resolved by name) works out the lead-time spans, while DuckDB
            # links incidents and works out failures and the other aggregates
            links = _read_links(store, rules, work, lead_cells)
            hashes: Future[tuple[np.ndarray, np.ndarray | None]] = Future()
            # (in a list the job empties: the table is freed once converted, not when the job ends)
            early = None if links is None else numpy_thread.submit(_links_job, [links], cells, period, hashes)
            del links
            _incident_links(store, rules, work, flags=count_flag_releases)
            by_name, single = (None, None) if early is None else hashes.result()
            # the lead-time spans started on the numpy thread when every commit was resolved by its hash
            started = early is not None and cells is not None and not len(by_name)
            named = _resolve_by_name(store, rules, work, by_name, lead_cells and not started)
            if started:
                lead = early
            else:
                rows = None if early is None or cells is None else early.result()
                lead = None if cells is None else numpy_thread.submit(_lead_rows, *cells, rows, single, named, period)
                del rows
            # then, on the same thread, the rank tests' U statistics of the lead-time cells, read at the end
            lead_u = None if lead is None else numpy_thread.submit(_lead_u, lead)
            numpy_thread.shutdown(wait=False)  # no more jobs: those queued run on
            _failures(store, rules, work)
            link_notes = _link_notes(store, rules, work, start, end)
            _detail_tables(store, rules, work)
            stats, lists = _aggregates(store, work, group, period, start, end, rules, lead)
            del single, named, lead, cells, early
            *evidence, notes = store_notes.result()
    except BaseException:  # interrupted (a long call in a notebook) or failed: drop its tables next time
        numpy_thread.shutdown(wait=True, cancel_futures=True)
        _bury(store, work)
        raise

    notes += _uncounted_note(store, settings, rules, work, start, end)
    groups = sorted(set(stats["grp"])) if len(stats) else ["all"]
    summary = pd.DataFrame({"grp": groups}).merge(stats[stats["period_start"].isna()], on="grp", how="left")
    notes += _skew_notes(summary, rules)
    notes += link_notes
    if until is None:
        notes += _quiet_tail_note(store, end)
    notes += _before_data_note(store, end)
    if since is None and by is not None:
        notes += _late_groups_note(store, work, group, start, end)
    summary = _finish(
        summary, lists, pd.Series((end - start) / pd.Timedelta(days=1), index=summary.index), benchmark, rules, evidence
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
    by_period = _finish(by_period, lists, clipped / pd.Timedelta(days=1), benchmark, rules, evidence, changes=True,
                        known={} if lead_u is None else {"lead_spans": lead_u})  # fmt: skip
    iso = by_period["period_start"].dt.isocalendar()
    by_period.insert(1, "period", [f"{y}-W{w:02d}" for y, w in zip(iso["year"], iso["week"], strict=True)]
                     if period == "week" else by_period["period_start"].dt.strftime("%Y-%m"))  # fmt: skip

    def window_rows(table: str, column: str) -> _LazyFrame:
        sql = f"SELECT * FROM {table} WHERE {column} >= $start AND {column} < $end ORDER BY {column}"
        return _LazyFrame(store, sql, {"start": start, "end": end})

    drill = {
        "deployments": window_rows(f"(SELECT * EXCLUDE (k){_unobserved(evidence)} FROM {work.deploys})", "finished_at"),
        "changes": window_rows(f"(SELECT * EXCLUDE (k) FROM {work.changes})", "deployed_at"),
        "pull_requests": window_rows(f"(SELECT * FROM {work.prs} WHERE listed_at IS NOT NULL)", "listed_at"),
        "incidents": window_rows(
            f"(SELECT * EXCLUDE (exact_restore_hours, restore_value) FROM {work.incident_links})", "opened_at"
        ),
    }
    bucketed = rules["frequency_bucket"] != "none"
    if bucketed:
        bucket_of = _devlake_frequency if rules["frequency_bucket"].startswith("median") else _fourkeys_buckets
        buckets = bucket_of(store, work, group, groups, start, end)
        summary["deployment_frequency_bucket"] = summary["grp"].map(buckets)
    stat_buckets = rules["stat_buckets"] != "none"
    if stat_buckets:
        stats_of = _fourkeys_stat_buckets(store, work, group, groups, start, end)
        for i, column in enumerate(_STAT_BUCKETS):
            summary[column] = summary["grp"].map({grp: texts[i] for grp, texts in stats_of.items()})
    summary = summary.rename(columns={"grp": "group"})
    by_period = by_period.rename(columns={"grp": "group"})
    result = DoraResult(
        frame=summary[
            [
                "group",
                *_SUMMARY_COLUMNS,
                *_interval_columns(False),
                *(["deployment_frequency_bucket"] if bucketed else []),
                *(_STAT_BUCKETS if stat_buckets else []),
            ]
        ].reset_index(drop=True),
        by_period=by_period[["group", "period", "period_start", *_SUMMARY_COLUMNS, *_interval_columns(True)]],
        drill=drill,
        profile=profile,
        window=(start, end),
        params={"freq": freq, "by": by, "benchmark": benchmark},
        notes=notes,
        failures_tracked=evidence[0],
        rework_tracked=evidence[1],
        rules=rules,
        _work=work,
    )
    if count_flag_releases:
        from releaserisk.flags import with_flag_releases

        result.frame = with_flag_releases(result.frame, store, settings, since=start, until=end, by=by)
        result.notes.append(
            "flag releases counted (a departure from DORA): see flag_releases and releases"
            if result.frame["flag_releases"].notna().all()
            else "the store has no flag changes, so flag releases and kill-switch times cannot be counted (no data); "
            "load a flag log with 'releaserisk ingest flags FILE'"
        )
    weakref.finalize(result, _bury, store, work)
    return result
