"""Feature flags as release evidence: flag releases, incident candidate causes, kill-switch time, stale flags.

Reads ``flag_changes`` (loaded by :func:`releaserisk.ingest.flags.ingest_flags`) beside
``deployments`` and ``incidents``. Every function returns a DataFrame; all work is SQL.

* :func:`flag_releases` — a production flag turned on or ramped up (a rollout share
  raised) is a *release*, as Sleuth counts them for deployment frequency ("feature flag
  changes as deploys", Sleuth docs). This departs from plain DORA, which counts deployments
  only; :func:`releaserisk.dora.dora_metrics` uses it only when asked
  (``count_flag_releases``).
* :func:`candidate_causes` — for each incident, the deployments and flag changes of its
  service that may have caused it: the explicit cause first (``cause_deployment_id``, a
  deployment of ``cause_sha``, or the latest change of ``cause_flag_key`` that exposed users
  to the flag — not its switch-off), then every
  production change within ``Settings.cause_window_hours`` before it opened, nearest first.
  A flag flipped 5 minutes before an incident outranks a deployment 40 minutes before.
  A flag change ranked first is that incident's cause: the flag release failed.
* :func:`kill_switch_times` — incident opened → a flag of its service turned off (or
  rolled back to 0 %) while it was open: a recovery path that is no deployment, reported
  beside failed-deployment recovery time.
* :func:`stale_flags` — flag debt (Rahman, Querel, Rigby & Adams, "Feature toggles:
  practitioner practices and a case study", MSR 2016; Ramanathan et al., "Piranha: reducing
  feature flag debt at Uber", ICSE-SEIP 2020; LaunchDarkly's flag-cleanup guidance):
  flags fully on or off in production for more than ``Settings.stale_flag_days`` whose key
  the code at HEAD still references (``git grep`` on the ingested repository, no checkout),
  flags never turned on in production, and flags without an owner.

A flag's production changes are those in an environment of
``Settings.production_environments`` (any case). States are ``on``, ``off`` or ``NN%``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from releaserisk.config import Settings
from releaserisk.definitions import in_production_environment, production_deployment, production_environments
from releaserisk.errors import GitError
from releaserisk.store import SHA_PREFIX_MIN, Store, sha_prefix_match

__all__ = [
    "candidate_causes",
    "flag_caused_incidents",
    "flag_release_metrics",
    "flag_release_summary",
    "flag_releases",
    "kill_switch_summary",
    "kill_switch_times",
    "stale_flags",
    "with_flag_releases",
    "write_incident_causes",
]

# share of users a state serves the new variation: on 100, off 0, 'NN%' NN, else NULL
_SHARE = "(CASE WHEN {s} = 'on' THEN 100.0 WHEN {s} = 'off' THEN 0.0 ELSE TRY_CAST(rtrim({s}, '%') AS DOUBLE) END)"


def _share(column: str) -> str:
    return _SHARE.format(s=column)


def _production_flags(view: str = "pf") -> str:
    """SQL: a temp-view-free CTE of production flag changes with their rollout shares."""
    return f"""{view} AS (
        SELECT *, {_share("from_state")} AS from_share, {_share("to_state")} AS to_share
        FROM flag_changes WHERE {in_production_environment()}
    )"""


def candidate_causes(store: Store, settings: Settings | None = None) -> pd.DataFrame:
    """Rank the deployments and flag changes that may have caused each incident.

    Parameters
    ----------
    store : Store
    settings : Settings, optional
        ``production_environments`` and ``cause_window_hours``.

    Returns
    -------
    DataFrame
        One row per (incident, candidate): ``incident_id, service, opened_at, rank`` (1 =
        most likely), ``kind`` (``deployment`` or ``flag``), ``change_id`` (a deployment id,
        or ``source:change_id`` of a flag change), ``flag_key``, ``action``, ``changed_at``,
        ``gap_minutes`` (opened_at − changed_at), ``explicit`` (named by the incident). Incidents
        with no candidate have no rows.
    """
    settings = settings or Settings()
    return store.query(
        f"""
        WITH {_production_flags()},
        prod AS (
            SELECT * FROM deployments WHERE {production_deployment()}
        ),
        explicit_deploy AS (
            SELECT i.incident_id, p.deployment_id, p.finished_at AS changed_at
            FROM incidents i JOIN prod p ON p.deployment_id = i.cause_deployment_id
            UNION
            SELECT i.incident_id, arg_min(p.deployment_id, p.finished_at), min(p.finished_at)
            FROM incidents i JOIN prod p ON p.service = i.service AND p.finished_at <= i.opened_at
             AND {sha_prefix_match("p.sha", "lower(trim(i.cause_sha))")}
            WHERE i.cause_deployment_id IS NULL AND length(trim(i.cause_sha)) >= {SHA_PREFIX_MIN}
            GROUP BY i.incident_id
        ),
        explicit_flag AS (
            -- the flag's latest change that exposed users to it (not a switch-off, unless nothing else)
            SELECT i.incident_id,
                   arg_max(f.source || ':' || f.change_id, (coalesce(f.to_share, 1) > 0, f.changed_at)) AS change_id
            FROM incidents i JOIN pf f ON f.flag_key = i.cause_flag_key AND f.changed_at <= i.opened_at
            WHERE f.action IN ('on', 'off', 'rollout', 'targeting')
            GROUP BY i.incident_id
        ),
        candidates AS (
            SELECT i.incident_id, 'deployment' AS kind, p.deployment_id AS change_id, NULL AS flag_key,
                   p.kind AS action, p.finished_at AS changed_at, ed.incident_id IS NOT NULL AS explicit
            FROM incidents i JOIN prod p ON p.service = i.service
            LEFT JOIN explicit_deploy ed ON ed.incident_id = i.incident_id AND ed.deployment_id = p.deployment_id
            WHERE ed.incident_id IS NOT NULL
               OR (p.finished_at <= i.opened_at AND p.finished_at >= i.opened_at - to_microseconds($window))
            UNION ALL
            SELECT i.incident_id, 'flag', f.source || ':' || f.change_id, f.flag_key, f.action, f.changed_at,
                   ef.incident_id IS NOT NULL
            FROM incidents i JOIN pf f ON f.changed_at <= i.opened_at
            LEFT JOIN explicit_flag ef
              ON ef.incident_id = i.incident_id AND ef.change_id = f.source || ':' || f.change_id
            WHERE f.action IN ('on', 'off', 'rollout', 'targeting')
              AND (ef.incident_id IS NOT NULL
                   OR (f.service = i.service AND f.changed_at >= i.opened_at - to_microseconds($window)))
        )
        SELECT c.incident_id, i.service, i.opened_at,
               row_number() OVER (
                   PARTITION BY c.incident_id
                   ORDER BY c.explicit DESC, i.opened_at - c.changed_at, c.kind DESC, c.change_id
               ) AS rank,
               c.kind, c.change_id, c.flag_key, c.action, c.changed_at,
               date_diff('second', c.changed_at, i.opened_at) / 60.0 AS gap_minutes, c.explicit
        FROM candidates c JOIN incidents i USING (incident_id)
        ORDER BY i.opened_at, c.incident_id, rank
        """,
        {
            "prod": production_environments(settings),
            "window": int(settings.cause_window_hours * 3_600_000_000),
        },
    )


def flag_releases(store: Store, settings: Settings | None = None, *, since=None, until=None) -> pd.DataFrame:
    """Production flag changes that count as releases: turned on, or a rollout share raised.

    Parameters
    ----------
    store : Store
    settings : Settings, optional
    since, until : datetime-like, optional
        Half-open window on the change time (default: everything).

    Returns
    -------
    DataFrame
        ``source, change_id, flag_key, service, environment, action, from_state, to_state,
        actor, changed_at, failed`` (the change is an incident's first-ranked candidate cause),
        ``incident_id`` (that incident, else None).
    """
    settings = settings or Settings()
    with _first_flag_causes(store, settings):
        return store.query(
            f"""
            WITH {_production_flags()},
            caused AS (SELECT change_id, min(incident_id) AS incident_id FROM _flag_causes GROUP BY change_id)
            SELECT f.source, f.change_id, f.flag_key, f.service, f.environment, f.action, f.from_state, f.to_state,
                   f.actor, f.changed_at, c.incident_id IS NOT NULL AS failed, c.incident_id
            FROM pf f LEFT JOIN caused c ON c.change_id = f.source || ':' || f.change_id
            WHERE (f.action = 'on' OR (f.action = 'rollout' AND f.to_share > coalesce(f.from_share, 0)))
              AND ($since IS NULL OR f.changed_at >= $since) AND ($until IS NULL OR f.changed_at < $until)
            ORDER BY f.changed_at, f.source, f.change_id
            """,
            {"prod": production_environments(settings), "since": _stamp(since), "until": _stamp(until)},
        )


@contextlib.contextmanager
def _first_flag_causes(store: Store, settings: Settings) -> Iterator[None]:
    """View ``_flag_causes``: incidents whose first-ranked candidate is a flag change, for one query."""
    causes = candidate_causes(store, settings)
    top = causes[(causes["rank"] == 1) & (causes["kind"] == "flag")][["incident_id", "change_id", "flag_key"]]
    store.connection.register("_flag_causes", top)
    try:
        yield
    finally:
        store.connection.unregister("_flag_causes")


def _stamp(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def kill_switch_times(store: Store, settings: Settings | None = None) -> pd.DataFrame:
    """Incident opened → a flag of its service turned off while it was open (minutes).

    The flag ranked first among the incident's candidate causes is preferred; otherwise
    the first flag of the incident's service turned off (or rolled back to 0 %) after the
    incident opened and before it was resolved.

    Parameters
    ----------
    store : Store
    settings : Settings, optional

    Returns
    -------
    DataFrame
        ``incident_id, service, opened_at, resolved_at, flag_key, off_at,
        kill_switch_minutes, cause_flag`` (the flag turned off was the first-ranked cause).
        Only incidents ended by a kill switch.
    """
    settings = settings or Settings()
    with _first_flag_causes(store, settings):
        return store.query(
            f"""
            WITH {_production_flags()},
            offs AS (
                SELECT i.incident_id, i.service, i.opened_at, i.resolved_at, f.flag_key, f.changed_at AS off_at,
                       c.flag_key IS NOT NULL AS cause_flag
                FROM incidents i
                JOIN pf f ON f.changed_at >= i.opened_at AND (i.resolved_at IS NULL OR f.changed_at <= i.resolved_at)
                LEFT JOIN _flag_causes c ON c.incident_id = i.incident_id AND c.flag_key = f.flag_key
                WHERE (f.action = 'off' OR (f.action = 'rollout' AND f.to_share = 0))
                  AND (f.service = i.service OR c.flag_key IS NOT NULL)
            )
            SELECT incident_id, any_value(service) AS service, any_value(opened_at) AS opened_at,
                   any_value(resolved_at) AS resolved_at,
                   arg_min(flag_key, (NOT cause_flag, off_at)) AS flag_key,
                   arg_min(off_at, (NOT cause_flag, off_at)) AS off_at,
                   date_diff('second', any_value(opened_at), arg_min(off_at, (NOT cause_flag, off_at))) / 60.0
                       AS kill_switch_minutes,
                   bool_or(cause_flag) AS cause_flag
            FROM offs GROUP BY incident_id ORDER BY opened_at, incident_id
            """,
            {"prod": production_environments(settings)},
        )


def _opened_within(times: pd.DataFrame, since, until) -> pd.DataFrame:
    """Kill-switch rows of incidents opened in ``[since, until)`` (either bound may be None)."""
    opened = pd.to_datetime(times["opened_at"], utc=True)
    inside = pd.Series(True, index=times.index)
    if since is not None:
        inside &= opened >= _stamp(since)
    if until is not None:
        inside &= opened < _stamp(until)
    return times[inside]


def _median_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median from order statistics (binomial ranks)."""
    from scipy.stats import binom

    x = np.sort(values)
    n = len(x)
    if n < 2:
        return (math.nan, math.nan)
    alpha = 1 - confidence
    low = int(binom.ppf(alpha / 2, n, 0.5))
    high = int(binom.isf(alpha / 2, n, 0.5))
    low_value = x[low - 1] if low >= 1 else math.nan  # too few values for the bound: unbounded, not invented
    high_value = x[high] if high < n else math.nan
    return (float(low_value), float(high_value))


def kill_switch_summary(times: pd.DataFrame) -> dict[str, Any]:
    """Median kill-switch time with n and a 95 % order-statistic interval (JSON-safe).

    Parameters
    ----------
    times : DataFrame
        :func:`kill_switch_times`.

    Returns
    -------
    dict
        ``n, median_minutes, ci_low, ci_high`` (None where the data cannot say).
    """
    values = times["kill_switch_minutes"].dropna().to_numpy(float)
    low, high = _median_interval(values)

    def clean(value: float) -> float | None:
        return None if value is None or math.isnan(value) else round(float(value), 2)

    return {
        "n": len(values),
        "median_minutes": clean(float(np.median(values))) if len(values) else None,
        "ci_low": clean(low),
        "ci_high": clean(high),
    }


def _references(repo_path: str, keys: list[str]) -> dict[str, int]:
    """Occurrences of each key in the tree at HEAD (``git grep -w -F``, no checkout)."""
    from releaserisk.ingest.git import git  # stale flags read the repository, as labels' SZZ does

    if not keys:
        return {}
    patterns = [arg for key in keys for arg in ("-e", key)]
    try:
        out = git(repo_path, "grep", "-I", "-o", "-h", "-w", "-F", *patterns, "HEAD", "--")
    except GitError as exc:
        if "failed" in str(exc) and "unknown error" in str(exc):  # exit 1: no match at all
            return dict.fromkeys(keys, 0)
        raise
    found = pd.Series(out.splitlines(), dtype=object).value_counts()
    return {key: int(found.get(key, 0)) for key in keys}


def stale_flags(
    store: Store,
    settings: Settings | None = None,
    *,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Flag debt: stale, never-launched and unowned flags.

    Parameters
    ----------
    store : Store
        With ``flag_changes`` and, to check code references, ingested repositories
        (``repos.path``; a flag's repository is its service's, else every one).
    settings : Settings, optional
        ``stale_flag_days`` and ``production_environments``.
    as_of : datetime, optional
        Reference time (default now, UTC).

    Returns
    -------
    DataFrame
        One row per flag that is not archived and has at least one finding:
        ``flag_key, service, state`` (production: ``on``, ``off``, ``NN%`` or None),
        ``state_since``, ``days_in_state``, ``references`` (occurrences at HEAD; None when
        no repository could be searched), ``owner``, ``never_on``, ``stale`` (fully on or
        off for more than ``stale_flag_days`` and still referenced), ``unowned``,
        ``reasons`` (plain words).
    """
    settings = settings or Settings()
    as_of = as_of or datetime.now(UTC)
    flags = store.query(
        f"""
        WITH {_production_flags()},
        archived AS (SELECT DISTINCT flag_key FROM flag_changes WHERE action = 'archived' AND changed_at <= $as_of),
        everything AS (
            SELECT flag_key, min(changed_at) AS first_seen, any_value(owner) FILTER (owner IS NOT NULL) AS owner,
                   any_value(service) FILTER (service IS NOT NULL) AS service
            FROM flag_changes WHERE changed_at <= $as_of GROUP BY flag_key
        ),
        state AS (
            SELECT flag_key, arg_max(to_state, changed_at) AS state, max(changed_at) AS state_since,
                   bool_or(to_share > 0) AS ever_on
            FROM pf WHERE action IN ('on', 'off', 'rollout') AND changed_at <= $as_of GROUP BY flag_key
        )
        SELECT e.flag_key, e.service, s.state, s.state_since,
               date_diff('second', s.state_since, $as_of) / 86400.0 AS days_in_state,
               e.owner, NOT coalesce(s.ever_on, false) AS never_on, e.first_seen,
               date_diff('second', e.first_seen, $as_of) / 86400.0 AS age_days,
               sv.repo
        FROM everything e LEFT JOIN state s USING (flag_key) LEFT JOIN services sv ON sv.service = e.service
        WHERE e.flag_key NOT IN (SELECT flag_key FROM archived)
        ORDER BY e.flag_key
        """,
        {"prod": production_environments(settings), "as_of": as_of},
    )
    repos = store.query("SELECT repo, path FROM repos WHERE path IS NOT NULL")
    references = pd.Series([None] * len(flags), index=flags.index, dtype=object)
    for repo, path in zip(repos["repo"], repos["path"], strict=True):
        mine = flags["repo"].isna() | (flags["repo"] == repo)
        try:
            counts = _references(path, flags.loc[mine, "flag_key"].tolist())
        except GitError:
            continue  # a repository moved since it was ingested: its flags stay unknown
        found = flags.loc[mine, "flag_key"].map(counts)
        references[mine] = [c if p is None else p + c for p, c in zip(references[mine], found, strict=True)]
    flags["references"] = references
    limit = settings.stale_flag_days
    settled = flags["state"].isin(["on", "off", "100%", "0%"]) & (flags["days_in_state"] > limit)
    flags["stale"] = settled & flags["references"].map(lambda r: bool(r) if r is not None else False)
    flags["never_on"] = flags["never_on"] & (flags["age_days"] > limit)  # a flag made yesterday is no debt yet
    flags["unowned"] = flags["owner"].isna()
    flags["reasons"] = [_reasons(row, limit) for row in flags.itertuples()]
    found = flags[flags["stale"] | flags["never_on"] | flags["unowned"]]
    columns = ["flag_key", "service", "state", "state_since", "days_in_state", "references", "owner",
               "never_on", "stale", "unowned", "reasons"]  # fmt: skip
    return found[columns].reset_index(drop=True)


def _reasons(row: Any, limit: int) -> str:
    reasons = []
    if row.stale:
        fully = "on" if row.state in ("on", "100%") else "off"
        reasons.append(
            f"fully {fully} in production for {row.days_in_state:.0f} days (> {limit}) and still referenced "
            f"{row.references} time{'s' * (row.references != 1)} at HEAD"
        )
    if row.never_on:
        reasons.append(f"never turned on in production in {row.age_days:.0f} days")
    if row.unowned:
        reasons.append("has no owner")
    return "; ".join(reasons)


def flag_caused_incidents(store: Store, settings: Settings | None = None) -> pd.DataFrame:
    """Incidents whose first-ranked candidate cause is a flag change (and that name no deployment).

    With flags counted as releases, these incidents are failures of the flag release, not of
    the latest prior deployment that plain DORA would blame.

    Parameters
    ----------
    store : Store
    settings : Settings, optional

    Returns
    -------
    DataFrame
        ``incident_id, change_id`` (``source:change_id`` of the flag change), ``flag_key``,
        ``gap_minutes``.
    """
    causes = candidate_causes(store, settings)
    top = causes[(causes["rank"] == 1) & (causes["kind"] == "flag")]
    return top[["incident_id", "change_id", "flag_key", "gap_minutes"]].reset_index(drop=True)


def flag_release_metrics(store: Store, settings: Settings | None = None, *, since=None, until=None) -> dict[str, Any]:
    """Flag releases, their failure rate and kill-switch time over ``[since, until)`` (JSON-safe).

    Parameters
    ----------
    store : Store
    settings : Settings, optional
    since, until : datetime-like, optional
        Window on the flag change time (releases) and the incident opening (kill switches).

    Returns
    -------
    dict
        ``flag_releases``, ``failed_flag_releases``, ``flag_failure_rate`` with ``ci_low``/
        ``ci_high`` (Wilson 95 %; None without releases), and ``kill_switch`` (see
        :func:`kill_switch_summary`).
    """
    from releaserisk.analytics import wilson_interval  # the one definition of the interval

    releases = flag_releases(store, settings, since=since, until=until)
    n, failed = len(releases), int(releases["failed"].sum()) if len(releases) else 0
    low, high = wilson_interval(np.array([failed]), np.array([n]))
    times = _opened_within(kill_switch_times(store, settings), since, until)
    return {
        "flag_releases": n,
        "failed_flag_releases": failed,
        "flag_failure_rate": failed / n if n else None,
        "ci_low": float(low[0]) if n else None,
        "ci_high": float(high[0]) if n else None,
        "kill_switch": kill_switch_summary(times),
    }


_FLAG_GROUPS = {"service": "f.service", "team": "sv.team", "repo": "sv.repo"}


def flag_release_summary(
    store: Store, settings: Settings | None = None, *, since=None, until=None, by: str | None = None
) -> pd.DataFrame:
    """Flag releases, failed ones and kill-switch times per group, for DORA's opt-in flag counting.

    Parameters
    ----------
    store : Store
    settings : Settings, optional
    since, until : datetime-like, optional
        Half-open window on the change time (releases) and the incident opening (kill switches).
    by : {"service", "team", "repo"}, optional
        Grouping, as :func:`releaserisk.dora.dora_metrics` groups (default: one group ``all``).

    Returns
    -------
    DataFrame
        ``group, flag_releases, failed_flag_releases, kill_switch_n,
        kill_switch_median_minutes`` (NaN without kill switches).
    """
    column = "'all'" if by is None else f"coalesce(CAST({_FLAG_GROUPS[by]} AS VARCHAR), 'unassigned')"
    releases = flag_releases(store, settings, since=since, until=until)
    kills = _opened_within(kill_switch_times(store, settings), since, until)
    store.connection.register("_flag_release_rows", releases)
    store.connection.register("_kill_switch_rows", kills)
    try:
        return store.query(
            f"""
            WITH r AS (
                SELECT {column} AS grp, count(*) AS flag_releases, count(*) FILTER (failed) AS failed_flag_releases
                FROM _flag_release_rows f LEFT JOIN services sv USING (service) GROUP BY ALL
            ),
            k AS (
                SELECT {column} AS grp, count(*) AS kill_switch_n,
                       median(kill_switch_minutes) AS kill_switch_median_minutes
                FROM _kill_switch_rows f LEFT JOIN services sv USING (service) GROUP BY ALL
            )
            SELECT grp AS "group", coalesce(flag_releases, 0) AS flag_releases,
                   coalesce(failed_flag_releases, 0) AS failed_flag_releases,
                   coalesce(kill_switch_n, 0) AS kill_switch_n, kill_switch_median_minutes
            FROM r FULL JOIN k USING (grp) ORDER BY 1
            """
        )
    finally:
        store.connection.unregister("_flag_release_rows")
        store.connection.unregister("_kill_switch_rows")


def write_incident_causes(store: Store, table: str, settings: Settings | None = None) -> None:
    """Create temp table ``table``: each incident's first-ranked candidate cause and kill-switch time.

    For :func:`releaserisk.dora.dora_metrics` with ``count_flag_releases``: incidents whose
    cause is a flag change are not blamed on the latest prior deployment, and the incidents
    drill-down shows the cause and the kill switch.

    Parameters
    ----------
    store : Store
    table : str
        Name of the temp table (replaced if it exists).
    settings : Settings, optional

    Returns
    -------
    None
        The table has ``incident_id, cause_kind`` (``deployment``/``flag``),
        ``cause_change_id``, ``cause_gap_minutes``, ``flag_caused``, ``kill_switch_minutes``.
    """
    causes = candidate_causes(store, settings)
    top = causes.loc[causes["rank"] == 1, ["incident_id", "kind", "change_id", "gap_minutes"]]
    kills = kill_switch_times(store, settings)[["incident_id", "kill_switch_minutes"]]
    frame = top.merge(kills, on="incident_id", how="outer")
    store.connection.register("_incident_causes", frame)
    try:
        store.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT incident_id, kind AS cause_kind, change_id AS cause_change_id, gap_minutes AS cause_gap_minutes,
                   coalesce(kind = 'flag', false) AS flag_caused, kill_switch_minutes
            FROM _incident_causes
            """
        )
    finally:
        store.connection.unregister("_incident_causes")


def with_flag_releases(
    summary: pd.DataFrame, store: Store, settings: Settings | None = None, *, since=None, until=None,
    by: str | None = None,
) -> pd.DataFrame:  # fmt: skip
    """DORA summary rows with flag releases counted (Sleuth's practice; a departure from DORA).

    Parameters
    ----------
    summary : DataFrame
        :attr:`releaserisk.DoraResult.summary` (columns ``group``, ``deployments``,
        ``change_failure_rate``).
    store : Store
    settings : Settings, optional
    since, until : datetime-like, optional
        The DORA window.
    by : {"service", "team", "repo"}, optional
        The summary's grouping.

    Returns
    -------
    DataFrame
        ``summary`` with ``flag_releases``, ``failed_flag_releases``, ``releases``
        (deployments + flag releases), ``change_failure_rate_with_flags`` (failed deployments
        and failed flag releases over releases; NaN where the deployments' rate is no data),
        ``kill_switch_n`` and ``kill_switch_median_minutes`` (beside
        ``recovery_median_hours`` of failed deployments). When the store has no flag change
        at all, the counts are null (``Int64``) and the rates NaN: no data, not 0 releases.
    """
    flags = flag_release_summary(store, settings, since=since, until=until, by=by)
    out = summary.merge(flags, on="group", how="left")
    tracked = store.query("SELECT count(*) AS n FROM flag_changes")["n"].iloc[0] > 0
    for column in ("flag_releases", "failed_flag_releases", "kill_switch_n"):
        out[column] = out[column].fillna(0).astype(int) if tracked else pd.array([pd.NA] * len(out), dtype="Int64")
    out["releases"] = out["deployments"] + out["flag_releases"]
    failed_deployments = out["change_failure_rate"] * out["deployments"]
    out["change_failure_rate_with_flags"] = (failed_deployments + out["failed_flag_releases"]) / out["releases"].where(
        out["releases"] > 0
    )
    return out
