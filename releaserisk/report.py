"""The weekly report: sections computed here, presented by a parameterised notebook.

:func:`weekly_sections` gathers everything the report shows for one ISO week (the
notebooks call it, so they hold no SQL and no logic of their own);
:func:`render_weekly` executes ``notebooks/weekly_report.ipynb`` with papermill in the
running Python environment and exports HTML without code cells with nbconvert.
Numbers, headers and alignment come from :mod:`releaserisk.formatting`, shared with the
analyst notebooks; every user-controlled string (commit subjects, PR titles, service
names) reaches the HTML through :func:`releaserisk.formatting.html_table` /
:func:`text`, which escape it with :func:`releaserisk.escape.html_text`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from releaserisk import formatting
from releaserisk.choices import REPORT_GROUPS
from releaserisk.config import Settings
from releaserisk.definitions import production_deployment, production_environments
from releaserisk.errors import InputError
from releaserisk.escape import html_text
from releaserisk.features import latest_production_deployment
from releaserisk.store import Store

__all__ = [
    "BY",
    "ServiceBlock",
    "WeeklySections",
    "html_table",
    "iso_week",
    "latest_deployment_week",
    "project_path",
    "render_notebook",
    "render_weekly",
    "text",
    "weekly_sections",
]

#: Groupings ``report weekly --by`` offers: one compact block per service.
BY = REPORT_GROUPS


def _notebook_dir() -> Path:
    """The analyst notebooks: inside the installed package (a wheel ships them as
    ``releaserisk/notebooks``), else the source tree's top-level ``notebooks/``."""
    package = Path(__file__).resolve().parent
    installed = package / "notebooks"
    return installed if installed.is_dir() else package.parent / "notebooks"


NOTEBOOKS = _notebook_dir()


def project_path(path: str | os.PathLike[str], *, start: str | os.PathLike[str] | None = None) -> Path:
    """A notebook parameter's path: absolute as given, relative against the repository root.

    The root is the nearest directory, from ``start`` (default: the working directory)
    upwards, that holds both ``pyproject.toml`` and ``notebooks/`` — so
    ``data/demo/releaserisk.duckdb`` names the same file whether papermill runs from the
    root or from ``notebooks/``. Outside a checkout, the working directory.

    Parameters
    ----------
    path : path-like
        Absolute, or relative to the repository root.
    start : path-like, optional
        Where to start looking for the root (default: the working directory).

    Returns
    -------
    Path
        Absolute; nothing is created.
    """
    given = Path(path).expanduser()
    if given.is_absolute():
        return given
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder / given
    return here / given


def iso_week(week: str | None, *, today: datetime | None = None) -> tuple[str, datetime, datetime]:
    """Parse ``YYYY-Www`` (default: the last complete week) into (label, Monday, next Monday) in UTC.

    Parameters
    ----------
    week : str or None
        ``YYYY-Www`` in any case.
    today : datetime, optional
        The clock (tests).

    Returns
    -------
    (str, datetime, datetime)
        ``2026-W47``, its Monday 00:00 UTC and the next Monday.

    Raises
    ------
    InputError
        Not ``YYYY-Www``, a week number the year does not have (52 or 53 weeks), or a
        week that has not started yet: its report could only say "no deployments", which
        reads as a fact about the team (a typo'd year does this). A past week without
        data is a real zero and is reported.
    """
    now = today or datetime.now(UTC)
    if week is None:
        monday = (now - timedelta(days=now.weekday() + 7)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        parts = re.fullmatch(r"(\d{4})-W(\d{1,2})", week.strip().upper())
        if parts is None or int(parts[1]) < 1:
            raise InputError(f"week must look like 2026-W47, got {week!r}")
        year, number = int(parts[1]), int(parts[2])
        weeks = date(year, 12, 28).isocalendar().week  # 28 December is always in the year's last ISO week
        if not 1 <= number <= weeks:
            raise InputError(f"{year} has {weeks} ISO weeks ({year}-W01 to {year}-W{weeks}), got {week!r}")
        monday = datetime.fromisocalendar(year, number, 1).replace(tzinfo=UTC)
        if monday > now:
            raise InputError(f"week {week} has not started yet (today is {now:%Y-%m-%d})")
    iso = monday.isocalendar()
    return f"{iso.year}-W{iso.week:02d}", monday, monday + timedelta(days=7)


def latest_deployment_week(store: Store, settings: Settings | None = None) -> str | None:
    """The ISO week of the store's latest successful production deployment.

    Parameters
    ----------
    store : Store
    settings : Settings, optional
        ``production_environments`` (any case).

    Returns
    -------
    str or None
        ``YYYY-Www``; None when the store has no production deployment.
    """
    settings = settings or Settings()
    latest = latest_production_deployment(store, settings.production_environments)
    if latest is None:
        return None
    last = latest["finished_at"]
    iso = pd.Timestamp(last).tz_convert("UTC").isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def text(value: Any) -> str:
    """Escape one user-controlled string for HTML (:func:`releaserisk.escape.html_text`; None is empty).

    Parameters
    ----------
    value : object

    Returns
    -------
    str
    """
    return "" if value is None else html_text(value)


def html_table(frame: pd.DataFrame | None, *, max_rows: int = 50, empty: str = "No data.") -> str:
    """An escaped HTML table in the shared number styles (:func:`releaserisk.formatting.html_table`).

    Parameters
    ----------
    frame : DataFrame or None
    max_rows : int
    empty : str
        The sentence shown instead of a table without rows.

    Returns
    -------
    str
    """
    return formatting.html_table(frame, max_rows=max_rows, empty=empty)


@dataclass
class ServiceBlock:
    """One service's compact block of the weekly report (``report weekly --by service``).

    Attributes
    ----------
    service : str
    numbers : DataFrame
        The five DORA numbers of the week: ``metric, this week, previous week, change``
        (text in each metric's unit).
    failures : DataFrame
        The service's failed production deployments of the week.
    pending : DataFrame
        Its riskiest scored changes not yet in production (at most five).
    attention : tuple
        The sort key: failed deployments, change failure rate, riskiest pending change
        (descending), so the service that needs attention comes first.
    """

    service: str
    numbers: pd.DataFrame
    failures: pd.DataFrame
    pending: pd.DataFrame
    attention: tuple = ()
    failures_unknown: str = ""  # why failures cannot be seen (then ``failures`` is empty: unknown, not none)

    def summary(self) -> str:
        """One line: the service, its failed deployments and its riskiest pending change.

        Returns
        -------
        str
        """
        worst = "no scored pending change"
        if len(self.pending):
            worst = f"riskiest pending change {self.pending['probability'].iloc[0]}"
        failed = formatting.caption(len(self.failures), "failed deployments").rstrip(".")
        if self.failures_unknown:
            failed = "failed deployments unknown"
        return f"{self.service}: {failed} this week; {worst}"


@dataclass
class WeeklySections:
    """Everything the weekly report shows, for one week.

    Every frame keeps the analyses' own column names; :mod:`releaserisk.formatting`
    turns them into headers and number styles. ``start``/``end`` is the week,
    ``trend_start``/``end`` the twelve weeks of the trends and the release-process findings.
    """

    week: str
    start: datetime
    end: datetime
    headline: pd.DataFrame  # metric, this week, previous week, change, tier
    trend: pd.DataFrame  # 12 weeks of DORA per week
    deployments: pd.DataFrame
    failures: pd.DataFrame
    incidents: pd.DataFrame
    risky_changes: pd.DataFrame
    canary: pd.DataFrame
    batch: pd.DataFrame
    rollbacks: pd.DataFrame
    hotfixes: pd.DataFrame
    stages: pd.DataFrame
    lag: pd.DataFrame  # the last 4 weeks' service-stage rows where commits waited; attrs["quiet"]: the others
    data: pd.DataFrame
    trend_start: datetime | None = None
    risk_threshold: float = 0.5
    notes: list[str] = field(default_factory=list)
    dora_notes: list[str] = field(default_factory=list)  # why a DORA number is no data
    failures_unknown: str = ""  # the week's deployments' outcomes cannot be seen: why, for the failures section
    incidents_unknown: str = ""  # the store holds no incidents at all: why the incidents section lists none
    week_note: str = ""  # which week was picked, when none was asked for
    window_deployments: int = 0  # production deployments of the twelve weeks
    services: list[ServiceBlock] = field(default_factory=list)

    def caption(self, n: int, noun: str, *, trend: bool = False, one: str | None = None) -> str:
        """The line above a section: its window and its n.

        Parameters
        ----------
        n : int
            Observations behind the section.
        noun : str
            What they are, plural.
        trend : bool
            The twelve weeks of the findings instead of the report's week.
        one : str, optional
            The singular of ``noun`` when it is not ``noun`` without its final "s".

        Returns
        -------
        str
            Plain text (escape it for HTML).
        """
        start = self.trend_start if trend and self.trend_start is not None else self.start
        return formatting.caption(n, noun, start, self.end, one=one)


#: The five headline numbers: (label, summary column, tier column, kind).
_HEADLINE = [
    ("Deployment frequency", "deploys_per_week", "deploys_per_week_tier", "per_week"),
    ("Change lead time, median", "lead_time_median_hours", "lead_time_median_hours_tier", "hours"),
    ("Change failure rate", "change_failure_rate", "change_failure_rate_tier", "share"),
    ("Failed deployment recovery time, median", "recovery_median_hours", "recovery_median_hours_tier", "hours"),
    ("Rework rate", "rework_rate", None, "share"),
]
_KIND = {label: kind for label, _, _, kind in _HEADLINE}


def _shown(kind: str, value: float, change: bool = False) -> str:
    """A headline value in its metric's unit; a change signed, shares in percentage points."""
    if pd.isna(value):
        return formatting.MISSING
    if kind == "share":
        return formatting.percent_points(value) if change else formatting.percent(value)
    if kind == "hours":
        return ("+" if change and value > 0 else "") + formatting.duration(value)
    return f"{value:{'+' if change else ''},.1f} per week"


def headline_table(headline: pd.DataFrame) -> pd.DataFrame:
    """The headline as text, each row in its metric's unit: shares in %, durations in h or min.

    A column-wise number format cannot serve rows that mix deployments per week, hours
    and shares (a whole-number column printed 1.00 beside -1). With DORA's intervals
    (``n``, ``ci_low``, ``ci_high``, ``p_value``, ``significant``, ``tiers`` columns) each
    value says what it rests on ("28.6 % (4 of 14 deployments)"), a "95 % interval"
    column is added, and the change says whether it is one: "+20.9 pp — not a
    significant change (p = 0.210)" unless the week-over-week test (DORA's, p < 0.05)
    says it is; a tier the interval does not pin down reads "high or medium".

    Parameters
    ----------
    headline : DataFrame
        ``metric, this week, previous week, change, tier`` with numbers, optionally
        ``n, counted, ci_low, ci_high, tiers, p_value, significant, deployments``.

    Returns
    -------
    DataFrame
        Text columns ``metric, this week, [95 % interval,] previous week, change, tier``;
        ``attrs["numeric"]`` names the number columns.
    """
    kinds = [_KIND.get(m, _legacy_kind(m)) for m in headline["metric"]]
    rows = [row for _, row in headline.iterrows()]
    intervals = "n" in headline.columns
    table = pd.DataFrame({"metric": headline["metric"]})
    table["this week"] = [_shown(k, r["this week"]) + (_rests_on(k, r) if intervals else "")
                          for k, r in zip(kinds, rows, strict=True)]  # fmt: skip
    if intervals:
        table["95 % interval"] = [_interval(k, r) for k, r in zip(kinds, rows, strict=True)]
    table["previous week"] = [_shown(k, r["previous week"]) for k, r in zip(kinds, rows, strict=True)]
    table["change"] = [_shown(k, r["change"], True) + (_verdict(r) if intervals else "")
                       for k, r in zip(kinds, rows, strict=True)]  # fmt: skip
    table["tier"] = [_tier(r) for r in rows]
    table.attrs["numeric"] = {"this week", "95 % interval", "previous week", "change"}
    return table


def _rests_on(kind: str, row: pd.Series) -> str:
    """`` (4 of 14 deployments)`` for a share, `` (40 changes)`` otherwise; nothing without data."""
    if pd.isna(row["this week"]) or pd.isna(row.get("n")):
        return ""
    n = int(row["n"])
    one, many = row.get("counted") or ("observation", "observations")
    noun = one if n == 1 else many
    if kind == "share":
        return f" ({round(row['this week'] * n):,} of {n:,} {noun})"
    clusters = _clusters(row)
    if clusters:  # lead times: the releases they came in
        return f" ({n:,} {noun} in {clusters:,} deployment{'s' if clusters > 1 else ''})"
    return f" ({n:,} {noun})"


def _clusters(row: pd.Series) -> int | None:
    """The deployments a headline row's n values came in (DORA's ``lead_time_deployments``), when fewer than n."""
    clusters, n = row.get("deployments"), row.get("n")
    if clusters is None or pd.isna(clusters) or pd.isna(n) or not 0 < int(clusters) < int(n):
        return None
    return int(clusters)


def _interval(kind: str, row: pd.Series) -> str:
    """The 95 % interval in the metric's unit; an open end reads "unbounded"."""
    low, high = row.get("ci_low"), row.get("ci_high")
    if pd.isna(row["this week"]):
        return formatting.MISSING
    if pd.isna(low) and pd.isna(high):
        clusters = _clusters(row)
        if clusters:  # lead times: six changes of one release are one release's evidence
            return f"unbounded with {clusters} deployment{'s' if clusters > 1 else ''}"
        return "unbounded at this n"

    def end(value: float) -> str:
        if pd.isna(value):
            return "unbounded"
        if kind == "share":
            return f"{value * 100:.1f}"
        return formatting.duration(value) if kind == "hours" else f"{value:,.1f}"

    unit = {"share": " %", "per_week": " per week"}.get(kind, "")
    return f"{end(low)} – {end(high)}{unit}"


def _verdict(row: pd.Series) -> str:
    """Whether the week-over-week change is one, in a manager's words."""
    significant = row.get("significant")
    if significant is None or significant is pd.NA or (isinstance(significant, float) and np.isnan(significant)):
        return ""
    p = row.get("p_value")
    tested = "" if p is None or pd.isna(p) else f" ({formatting.p_value(p)})"
    # "not significant", not "too few": a small change on many observations is not one either
    return (" — a significant change" if bool(significant) else " — not a significant change") + tested


def _tier(row: pd.Series) -> str:
    """The tier, or the tiers the interval spans when it does not pin one down."""
    spans = [t.strip() for t in str(row.get("tiers") or "").split(",") if t.strip()]
    if len(spans) > 1:
        return " or ".join(spans)
    return row["tier"]


def _legacy_kind(metric: str) -> str:
    lowered = metric.lower()
    return "share" if "rate" in lowered else ("hours" if "hours" in lowered or "time" in lowered else "per_week")


def _known_services(store: Store) -> list[str]:
    return store.query("SELECT service FROM deployments UNION SELECT service FROM services ORDER BY 1")[
        "service"
    ].tolist()


def _check_services(store: Store, services: list[str] | None) -> None:
    """Refuse service names the store does not know (a typo filtered everything out silently)."""
    if not services:
        return
    known = _known_services(store)
    unknown = [s for s in services if s not in known]
    if unknown:
        listed = ", ".join(known) if known else "none: ingest deployments first"
        raise InputError(f"unknown service {', '.join(unknown)} (known: {listed})")


def _pick_week(store: Store, week: str | None, settings: Settings) -> tuple[str | None, str]:
    """The week asked for, or the latest with a production deployment and a note saying so."""
    if week is not None:
        return week, ""
    latest = latest_deployment_week(store, settings)
    if latest is None:
        environments = ", ".join(settings.production_environments)
        raise InputError(
            f"the store has no successful deployment to a production environment ({environments}); "
            "ingest deployments, or give the week to report on"
        )
    return latest, f"No week was given: this is {latest}, the latest week with a production deployment."


def weekly_sections(
    store: Store,
    week: str | None = None,
    *,
    services: list[str] | None = None,
    settings: Settings | None = None,
    by: str | None = None,
) -> WeeklySections:
    """Compute every section of the weekly report for ``week`` (``YYYY-Www``).

    Parameters
    ----------
    store : Store
    week : str, optional
        ``YYYY-Www``; default: the latest ISO week with a successful production
        deployment (``week_note`` says so).
    services : list of str, optional
        Limit the deployments table to these services (names the store knows).
    settings : Settings, optional
    by : {"service"}, optional
        Add one :class:`ServiceBlock` per service, ordered by what needs attention.

    Returns
    -------
    WeeklySections
        One DataFrame (or value) per section, for the notebook to present.

    Raises
    ------
    InputError
        A malformed week or one that has not started yet; no week given and no
        production deployment in the store; a service name the store does not know
        (the message lists the known ones); an unknown ``by``.
    """
    from releaserisk.analytics import release_analytics
    from releaserisk.dora import dora_metrics

    settings = settings or Settings()
    if by is not None and by not in BY:
        raise InputError(f"by must be one of {', '.join(BY)}")
    _check_services(store, services)
    week, week_note = _pick_week(store, week, settings)
    label, start, end = iso_week(week)
    trend_start = start - timedelta(weeks=11)
    dora = dora_metrics(store, trend_start, end, settings=settings)
    trend = dora.by_period
    week_dora = dora_metrics(store, start, end, settings=settings)
    deployments = week_dora.deployments
    if services:
        deployments = deployments[deployments["service"].isin(services)]
    risky = _risky_changes(store, start, end, settings)
    analytics = release_analytics(store, trend_start, end, settings=settings, dora=dora)
    window_deployments = int(_summary_frame(dora)["deployments"].sum())
    notes = []  # shown instead of the empty risky-changes table's sentence (one sentence, not two)
    if risky.empty and not store.query("SELECT count(*) AS n FROM risk_scores")["n"].iloc[0]:
        notes.append("No change in the store has a risk score: run 'releaserisk score' in CI (or 'releaserisk demo').")
    deployment_view = _deployment_view(store, deployments)
    data = _data_section(store)
    return WeeklySections(
        week=label,
        start=start,
        end=end,
        trend_start=trend_start,
        headline=_headline(trend),
        trend=trend,
        deployments=deployment_view,
        failures=_failure_view(deployment_view),
        incidents=_incident_view(week_dora.incidents),
        risky_changes=risky,
        canary=_canary_outcomes(store, start, end),
        batch=_with_unbatched(analytics.failure_by_batch_size(), dora),
        rollbacks=analytics.rollbacks(),
        hotfixes=analytics.hotfixes(),
        stages=analytics.stage_promotion(),
        lag=_waiting(_last_weeks(analytics.environment_lag(), weeks=4)),
        data=data,
        risk_threshold=settings.risk_threshold,
        notes=notes,
        dora_notes=list(dora.notes),
        failures_unknown=_failures_unknown(week_dora, len(deployment_view)),
        incidents_unknown=_incidents_unknown(data),
        week_note=week_note,
        window_deployments=window_deployments,
        services=_service_blocks(store, start, end, settings) if by == "service" else [],
    )


#: What the n of each headline number counts (DORA's ``<metric>_n``).
_COUNTED = {
    "deploys_per_week": ("deployment", "deployments"),
    "lead_time_median_hours": ("change", "changes"),
    "change_failure_rate": ("deployment", "deployments"),
    "recovery_median_hours": ("failed deployment", "failed deployments"),
    "rework_rate": ("deployment", "deployments"),
}


def _headline(trend: pd.DataFrame, group: str | None = None) -> pd.DataFrame:
    """The five numbers of the trend's last week against the week before.

    When the DORA result carries intervals and tests (``<metric>_n``, ``_ci_low``,
    ``_ci_high``, ``_tiers``, ``_change_p_value``, ``_change_significant``), the rows carry
    them too (columns ``n, counted, ci_low, ci_high, tiers, p_value, significant, deployments``) for
    :func:`headline_table` to put in words.
    """
    if group is not None:
        trend = trend[trend["group"] == group]
    this, previous = trend.iloc[-1], trend.iloc[-2] if len(trend) > 1 else None
    rows = []
    for name, column, tier, _ in _HEADLINE:
        row = {
            "metric": name,
            "this week": this[column],
            "previous week": previous[column] if previous is not None else float("nan"),
            "change": this[column] - previous[column] if previous is not None else float("nan"),
            "tier": this[tier] if tier else "",
        }
        if f"{column}_n" in this.index:
            row.update(_uncertainty(this, column))
        rows.append(row)
    return pd.DataFrame(rows)


def _uncertainty(row: pd.Series, column: str) -> dict[str, Any]:
    """A DORA row's n, interval, spanned tiers and week-over-week test of one metric."""
    value = row.get
    n = value(f"{column}_n")
    return {
        "n": 0 if pd.isna(n) else int(n),
        "counted": _COUNTED[column],
        "ci_low": value(f"{column}_ci_low", np.nan),
        "ci_high": value(f"{column}_ci_high", np.nan),
        "tiers": value(f"{column}_tiers", "") or "",
        "p_value": value(f"{column}_change_p_value", np.nan),
        "significant": value(f"{column}_change_significant", pd.NA),
        # lead times come in releases: the interval counts them (DORA's lead_time_deployments)
        "deployments": value("lead_time_deployments", np.nan) if column.startswith("lead_time") else np.nan,
    }


def _deployment_view(store: Store, deployments: pd.DataFrame) -> pd.DataFrame:
    """The week's production deployments with their id, batch and riskiest change.

    The batch's risk is its riskiest change, not ``1 − Π(1 − p)``: that uncalibrated
    product saturates for large batches (DESIGN section 4). How many of the batch's
    changes have a score is shown beside it: "—" for a batch none of whose changes was
    scored is unknown risk, not low risk.
    """
    batches = store.query(
        """
        SELECT dc.deployment_id, count(*) AS changes, count(r.probability) AS scored,
               max(r.probability) AS max_change_risk
        FROM deployment_changes dc
        LEFT JOIN (SELECT repo, sha, arg_max(probability, scored_at) AS probability FROM risk_scores GROUP BY 1, 2) r
          USING (repo, sha)
        WHERE list_contains($ids, dc.deployment_id)
        GROUP BY dc.deployment_id
        """,
        {"ids": deployments["deployment_id"].tolist()},
    )
    table = deployments.merge(batches, on="deployment_id", how="left")
    view = pd.DataFrame(
        {
            "deployment_id": table["deployment_id"],
            "finished_at": table["finished_at"],
            "service": table["service"],
            "kind": table["kind"],
            "sha": table["sha"].str[:10],
            "changes": table["changes"].fillna(0).astype(int),
            "scored_changes": table["scored"].fillna(0).astype(int),
            "max_change_risk": table["max_change_risk"],
            # no source of failures: the drill-down's failed is null, the outcome unknown rather than ok
            "outcome": table["failure_reason"].fillna("ok").where(table["failed"].notna(), "unknown"),
            "recovery_hours": table["recovery_hours"],
        }
    )
    return view


def _failures_unknown(dora, deployments: int) -> str:
    """Why the failed deployments section cannot list failures, or "" when it can (or nothing deployed)."""
    if dora.failures_tracked or not deployments:
        return ""
    which = "this week's production deployment" if deployments == 1 else (
        f"any of this week's {deployments:,} production deployments")  # fmt: skip
    return (
        f"Unknown: nothing in the store can show whether {which} failed (the note under the five DORA "
        f"numbers says why), so {'its' if deployments == 1 else 'their'} outcome reads 'unknown', not 'ok'."
    )


def _incidents_unknown(data: pd.DataFrame) -> str:
    """Why the incidents section lists none when the store holds no incidents at all (the data section's
    ``data``), or "": a week without incidents and a store without them must not read alike."""
    if data.loc[data["table"] == "incidents", "rows"].sum():
        return ""
    return (
        "Unknown: no incidents have been ingested, so none can be listed; an empty list here would not mean a "
        "quiet week. Ingest them with 'releaserisk ingest incidents FILE', 'ingest pagerduty', 'ingest jira' or "
        "'ingest github'."
    )


def _incident_view(incidents: pd.DataFrame) -> pd.DataFrame:
    """The week's incidents with the deployment each is linked to, the link method in words."""
    view = incidents[["incident_id", "service", "title", "severity", "opened_at", "resolved_at", "deployment_id",
                      "link_method", "restore_hours"]].copy()  # fmt: skip
    view["link_method"] = view["link_method"].str.replace("_", " ", regex=False)
    return view.reset_index(drop=True)


def _failure_view(deployments: pd.DataFrame) -> pd.DataFrame:
    failed = deployments[~deployments["outcome"].isin(["ok", "unknown"])]
    return failed.drop(columns=["changes", "scored_changes", "max_change_risk"]).reset_index(drop=True)


def _risky_changes(store: Store, start: datetime, end: datetime, settings: Settings) -> pd.DataFrame:
    """The week's ten riskiest scored commits, probability shown so its band reads true."""
    from releaserisk.gate import band

    risky = store.query(
        """
        SELECT c.sha, split_part(c.message, chr(10), 1) AS subject, c.author, r.probability, r.explanation
        FROM risk_scores r JOIN commits c USING (repo, sha)
        WHERE c.committed_at >= $start AND c.committed_at < $end
        QUALIFY row_number() OVER (PARTITION BY r.repo, r.sha ORDER BY r.scored_at DESC) = 1
        ORDER BY r.probability DESC LIMIT 10
        """,
        {"start": start, "end": end},
    )
    view = _scored_view(risky, settings.risk_threshold, band)
    view.attrs["scored"] = store.execute(
        """
        SELECT count(DISTINCT (r.repo, r.sha)) FROM risk_scores r JOIN commits c USING (repo, sha)
        WHERE c.committed_at >= $start AND c.committed_at < $end
        """,
        {"start": start, "end": end},
    ).fetchone()[0]
    return view


#: Where the gate's "medium" band starts (:func:`releaserisk.gate.band`'s default).
_MEDIUM_AT = 0.15


def _scored_view(risky: pd.DataFrame, threshold: float, band) -> pd.DataFrame:
    """sha, subject, author, probability (text on the band's side of its edges), band, reasons."""
    edges = sorted({min(_MEDIUM_AT, threshold), threshold})
    view = pd.DataFrame(
        {
            "sha": risky["sha"].str[:10],
            "subject": risky["subject"],
            "author": risky["author"],
            "probability": [formatting.percent_within(p, edges) for p in risky["probability"]],
            "band": [band(p, threshold) for p in risky["probability"]],
            "reasons": risky["explanation"].map(lambda e: "; ".join(json.loads(e)) if isinstance(e, str) else ""),
        }
    )
    view.attrs["numeric"] = {"probability"}
    return view


def _summary_frame(dora) -> pd.DataFrame:
    """The DORA summary table: ``frame`` where ``summary()`` is the text, else ``summary``."""
    frame = getattr(dora, "frame", None)
    return frame if isinstance(frame, pd.DataFrame) else dora.summary


def _with_unbatched(buckets: pd.DataFrame, dora) -> pd.DataFrame:
    """The batch-size buckets plus one row for production deployments that shipped no new change.

    The first deployment of a chain, a rollback or a re-deployment of a shipped commit has
    no ``deployment_changes``; the buckets (and their logistic fit on log2 size) leave them
    out, so the row accounts for them: deployments of the window = the rows' sum.
    """
    from releaserisk.analytics import wilson_interval

    summary = _summary_frame(dora)
    total, failed = int(summary["deployments"].sum()), summary["failed_deployments"].sum()
    rest = total - int(buckets["deployments"].sum())
    shown = buckets[buckets["deployments"] > 0]  # a row of zeros per unused bucket says nothing
    if rest <= 0:
        return shown.reset_index(drop=True)
    rest_failed = failed - buckets["failures"].sum() if dora.failures_tracked else np.nan
    low, high = wilson_interval([rest_failed], [rest])
    row = {column: np.nan for column in buckets.columns}
    row.update({"bucket": "none new", "min_size": 0, "deployments": rest, "failures": rest_failed,
                "failure_rate": rest_failed / rest, "ci_low": low[0], "ci_high": high[0]})  # fmt: skip
    frame = pd.concat([pd.DataFrame([row]), shown], ignore_index=True)
    frame.attrs.update(buckets.attrs)
    frame.attrs["unbatched"] = rest
    return frame


def _service_blocks(store: Store, start: datetime, end: datetime, settings: Settings) -> list[ServiceBlock]:
    """One block per service deploying to production in the trend window, worst first."""
    from releaserisk.dora import dora_metrics
    from releaserisk.gate import band

    per_service = dora_metrics(store, start - timedelta(weeks=1), end, by="service", settings=settings)
    week_dora = dora_metrics(store, start, end, settings=settings)
    week = week_dora.deployments
    # pending: scored changes of the service committed after its last production deployment
    # of the window and before the week's end (changes not shipped yet at the week's end)
    pending = store.query(
        f"""
        WITH last_deploy AS (
            SELECT service, max(finished_at) AS at FROM deployments
            WHERE {production_deployment()} AND finished_at < $end
            GROUP BY service
        ),
        latest AS (
            SELECT repo, sha, arg_max(probability, scored_at) AS probability,
                   arg_max(explanation, scored_at) AS explanation
            FROM risk_scores GROUP BY 1, 2
        ),
        owners AS (
            SELECT DISTINCT s.service, c.repo, c.sha
            FROM (  -- a service without a services row owns its deployments' repositories
                SELECT service, repo, path_prefix FROM services
                UNION SELECT DISTINCT service, repo, NULL FROM deployments
                WHERE repo IS NOT NULL AND service NOT IN (SELECT service FROM services)
            ) s JOIN commits c ON c.repo = s.repo
            JOIN file_changes f ON f.repo = c.repo AND f.sha = c.sha
            WHERE coalesce(s.path_prefix, '') = '' OR starts_with(f.path, s.path_prefix)
        )
        SELECT o.service, c.sha, split_part(c.message, chr(10), 1) AS subject, c.author, l.probability,
               l.explanation
        FROM owners o JOIN commits c USING (repo, sha) JOIN latest l USING (repo, sha)
        JOIN last_deploy d ON d.service = o.service
        WHERE c.committed_at > d.at AND c.committed_at < $end
        QUALIFY row_number() OVER (PARTITION BY o.service ORDER BY l.probability DESC, c.sha) <= 5
        """,
        {"prod": production_environments(settings), "end": end},
    )
    blocks = []
    for service in per_service.by_period["group"].unique():
        failed = week[(week["service"] == service) & week["failed"].eq(True)]  # null: unknown
        deployed = int((week["service"] == service).sum())
        mine = pending[pending["service"] == service].sort_values("probability", ascending=False)
        numbers = _headline(per_service.by_period, group=service)
        rate = numbers.loc[numbers["metric"] == "Change failure rate", "this week"].iloc[0]
        worst = mine["probability"].max() if len(mine) else 0.0
        failures = pd.DataFrame({"deployment_id": failed["deployment_id"], "finished_at": failed["finished_at"],
                                 "outcome": failed["failure_reason"]})  # fmt: skip
        blocks.append(
            ServiceBlock(
                service=str(service),
                numbers=headline_table(numbers).drop(columns="tier"),
                failures=failures.reset_index(drop=True),
                pending=_scored_view(mine, settings.risk_threshold, band),
                attention=(len(failed), 0.0 if pd.isna(rate) else float(rate), float(worst)),
                failures_unknown=_failures_unknown(week_dora, deployed),
            )
        )
    return sorted(blocks, key=lambda b: (tuple(-x for x in b.attention), b.service))


def _last_weeks(frame: pd.DataFrame, weeks: int) -> pd.DataFrame:
    """The newest ``weeks`` ISO weeks of a weekly frame, weeks labelled like 2026-W03."""
    if frame.empty:
        return frame
    recent = frame[frame["week"] > frame["week"].max() - pd.Timedelta(weeks=weeks)].copy()
    iso = recent["week"].dt.isocalendar()
    recent["week"] = [f"{year}-W{week:02d}" for year, week in zip(iso["year"], iso["week"], strict=True)]
    return recent.reset_index(drop=True)


def _waiting(lag: pd.DataFrame) -> pd.DataFrame:
    """The rows of an environment-lag frame where commits waited to reach production.

    A dozen services with two stages over four weeks is a hundred rows, mostly zeros;
    the report lists the rows with commits waiting and counts the others in
    ``attrs["quiet"]`` (a stage deployment that shipped nothing new waits for nothing).
    """
    waiting = lag[lag["commits_ahead"] > 0] if len(lag) else lag
    waiting = waiting.reset_index(drop=True)
    waiting.attrs["quiet"] = len(lag) - len(waiting)
    return waiting


def _canary_outcomes(store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    """Fixed-horizon verdict of every canary analysis with samples in the week, and the judge's mode."""
    from releaserisk.canary.judge import judge

    samples = store.query(
        "SELECT analysis_id, metric, arm, ts, value FROM metric_samples WHERE ts >= $start AND ts < $end",
        {"start": start, "end": end},
    )
    rows = []
    for analysis, part in samples.groupby("analysis_id", sort=True):
        result = judge(part)
        worst = [m.name for m in result.metrics if m.classification not in ("Pass",)]
        rows.append({"analysis": analysis, "mode": result.mode, "verdict": result.verdict, "score": result.score,
                     "metrics not passing": ", ".join(worst) or "—"})  # fmt: skip
    return pd.DataFrame(rows, columns=["analysis", "mode", "verdict", "score", "metrics not passing"])


#: Store tables as the data section names them.
_TABLE_NAMES = {"pull_requests": "pull requests", "metric_samples": "canary samples", "risk_scores": "risk scores",
                "labels": "bug-introducing changes"}  # fmt: skip


def _data_section(store: Store) -> pd.DataFrame:
    """Rows per table and the last ingest that wrote it, whichever way (file, git, GitHub)."""
    from releaserisk.ingest.schemas import SCHEMAS

    kinds = list(SCHEMAS)
    last = store.query(
        """
        WITH runs AS (
            SELECT finished_at, split_part(source, ':', 1) AS kind, split_part(source, ':', 3) AS resource
            FROM ingest_runs WHERE status = 'success'
        )
        SELECT CASE kind WHEN 'git' THEN 'commits' WHEN 'git-tags' THEN 'deployments'
                         WHEN 'metrics' THEN 'metric_samples'
                         WHEN 'github' THEN CASE resource WHEN 'pulls' THEN 'pull_requests'
                                                          WHEN 'incidents' THEN 'incidents' WHEN 'issues' THEN 'issues'
                                                          ELSE 'deployments' END  -- deployments, workflows, releases
                         ELSE $tables[list_position($kinds, kind)] END AS tbl,
               max(finished_at) AS last_ingest
        FROM runs GROUP BY tbl
        """,
        {"kinds": kinds, "tables": [SCHEMAS[k][0] for k in kinds]},
    ).set_index("tbl")["last_ingest"]
    counts = store.counts()
    # the labels table also holds a marker row per blamed fix: the reader's number is the
    # bug-introducing changes, as 'label' reports them (1,545 rows were 756 such changes)
    counts["labels"] = store.execute(
        "SELECT count(*) FROM (SELECT DISTINCT repo, sha FROM labels WHERE buggy)"
    ).fetchone()[0]
    tables = ("commits", "deployments", "incidents", "pull_requests", "metric_samples", "risk_scores", "labels")
    return pd.DataFrame(
        {
            "table": [_TABLE_NAMES.get(t, t) for t in tables],
            "rows": [counts.get(t, 0) for t in tables],
            "last ingest": [last.get(t) for t in tables],
            "gap": ["" if counts.get(t) else "no data" for t in tables],
        }
    )


# -- rendering ------------------------------------------------------------------------------
def render_notebook(
    notebook: str | os.PathLike[str],
    parameters: dict[str, Any],
    out_dir: str | os.PathLike[str],
    stem: str,
    *,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Execute a notebook with papermill (this Python's kernel) and export HTML without code.

    Parameters
    ----------
    notebook : path-like
    parameters : dict
        Values for the cell tagged ``parameters``.
    out_dir : path-like
        Created when missing.
    stem : str
        File name of the outputs, without suffix.
    title : str, optional
        The HTML page's ``<title>`` (the browser tab); default: the notebook's name.

    Returns
    -------
    (html_path, executed_notebook_path)

    Raises
    ------
    InputError
        The notebook is missing, or a cell failed (the message names it).
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    executed = out / f"{stem}.ipynb"
    source = Path(notebook)
    if not source.is_file():
        raise InputError(f"notebook {source} not found")
    with tempfile.TemporaryDirectory(prefix="rr-kernel-") as sockets:
        try:
            papermill.execute_notebook(
                str(source), str(executed), parameters=parameters, kernel_name=_kernel_name(), progress_bar=False,
                cwd=str(source.parent), **_private_kernel(Path(sockets)),
            )  # fmt: skip
        except papermill.PapermillExecutionError as exc:
            raise InputError(f"{source.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None
    book = nbformat.read(executed, as_version=4)
    for index, cell in enumerate(book.cells):  # papermill's injected cell has a random id: keep output stable
        cell.id = f"cell-{index:02d}"
    # nbconvert titles the page with metadata.title, else the exported node's name ("Notebook")
    book.metadata["title"] = title or source.stem.replace("_", " ")
    nbformat.write(book, executed)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(book)
    html_path = out / f"{stem}.html"
    html_path.write_text(body, encoding="utf-8")
    return html_path, executed


def _private_kernel(socket_dir: Path) -> dict[str, Any]:
    """Papermill arguments that run the kernel over Unix sockets in a private directory.

    Jupyter's default is TCP ports on localhost, which any local user can connect to
    (messages are signed, not encrypted; ipykernel warns about it on every run). The
    report kernel reads the store, so it listens only in a directory only we can open.
    """
    if os.name == "nt":  # no Unix-socket transport there
        return {}
    from jupyter_client.manager import AsyncKernelManager

    class PrivateKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = str(socket_dir / "kernel")

        async def start_kernel(self, **kwargs: Any) -> None:
            # the kernel's own log goes nowhere: the shutdown's interrupt could print
            # "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel" under a report
            # that succeeded; cells' output and errors reach the notebook, not this stream
            kwargs.setdefault("stderr", subprocess.DEVNULL)
            await super().start_kernel(**kwargs)

    return {"kernel_manager_class": PrivateKernelManager}


def _kernel_name() -> str:
    """A kernel spec that runs this interpreter, installing one for the venv if needed."""
    from jupyter_client.kernelspec import KernelSpecManager

    name = "releaserisk-python"
    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(name)
        if spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return name
    except Exception:  # no such kernel yet
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=name, display_name="releaserisk", prefix=sys.prefix)
    return name


def render_weekly(
    db: str | os.PathLike[str],
    week: str | None = None,
    *,
    out_dir: str | os.PathLike[str] = "reports",
    services: list[str] | None = None,
    config: str | None = None,
    by: str | None = None,
    org: str | None = None,
) -> dict[str, str]:
    """Render ``reports/weekly-<ISO week>.html`` (and the executed notebook) from the store.

    Parameters
    ----------
    db : path-like
        The store (opened read-only; never written).
    week : str, optional
        ``YYYY-Www``; default: the latest ISO week with a successful production
        deployment (the result's ``note`` says which).
    out_dir : path-like
        Where the HTML and the executed notebook go.
    services : list of str, optional
        Limit the deployments table to these services.
    config : str, optional
        A ``releaserisk.toml`` for the notebook's settings.
    by : {"service"}, optional
        Add one block per service, ordered by what needs attention.
    org : str, optional
        The organisation named in the title; default: the store's repositories (up to
        three), else the store's file name.

    Returns
    -------
    dict
        ``week``, ``html``, ``notebook``, ``title`` and ``note`` (empty when the week was given).

    Raises
    ------
    InputError
        The store is missing; a malformed week or one not started; no week given and no
        production deployment; an unknown service name (the known ones are listed); an
        unknown ``by``.
    """
    from releaserisk.config import load_settings
    from releaserisk.store import open_store

    db_path = Path(db).resolve()
    if not db_path.exists():
        raise InputError(f"store {db_path} does not exist")
    if by is not None and by not in BY:
        raise InputError(f"by must be one of {', '.join(BY)}")
    settings = load_settings(config) if config else load_settings()
    with open_store(db_path, read_only=True) as store:
        _check_services(store, services)
        chosen, note = _pick_week(store, week, settings)
        org = org or _organisation(store, db_path)
    label, _, _ = iso_week(chosen)
    title = f"Release health — week {label} — {org}"
    parameters = {"db": str(db_path), "week": label, "services": services or [], "config": config,
                  "by": by, "title": title, "week_note": note}  # fmt: skip
    html_path, executed = render_notebook(
        NOTEBOOKS / "weekly_report.ipynb", parameters, out_dir, f"weekly-{label}", title=title
    )
    return {"week": label, "html": str(html_path), "notebook": str(executed), "title": title, "note": note}


def _organisation(store: Store, db_path: Path) -> str:
    """What the title names: the store's repositories when few, else the store's file name."""
    repos = store.query(  # deployments name their repository even before its history is ingested
        "SELECT repo FROM repos UNION SELECT repo FROM deployments WHERE repo IS NOT NULL ORDER BY repo"
    )["repo"].tolist()
    if 0 < len(repos) <= 3:
        return ", ".join(repos)
    # a lake's folder says little ("lake"): an organisation is named by its size
    return f"{len(repos)} repositories" if store.lake is not None else db_path.stem
