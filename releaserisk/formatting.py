"""One number style per kind, for every face that shows a table to a person.

The weekly report and the analyst notebooks format through this module, so a rate,
a duration or a timestamp reads the same everywhere:

========================  ==========================  =====================================
kind                      example                     columns (by name or dtype)
========================  ==========================  =====================================
share (0..1)              ``28.6 %``                  ``*_rate``, ``*_share``, ``share``,
                                                      ``probability``, ``*_risk``, ``ci_*``
duration (hours)          ``45 min``, ``3.2 h``       ``*_hours``, ``hours_*``
duration (days)           ``12.5 d``                  ``*_days``, ``days_*``
timestamp (UTC)           ``2026-11-30 13:35``        datetime dtype, ``*_at``
count                     ``1,234``                   integer dtype, whole floats ≥ 1
other number              ``1.50``                    any other float
text                      escaped as is               everything else
========================  ==========================  =====================================

Missing values are "—" (missing, never zero). Headers are words with their unit
(:func:`header`); numbers are right-aligned and text left-aligned (:data:`CSS`). A
frame holding ``ci_low`` and ``ci_high`` of a share shows them as one "95 % interval"
column. Every user-controlled string reaches HTML through
:func:`releaserisk.escape.html_text`, the HTML sink's escaper.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from releaserisk.escape import html_text as escape

__all__ = [
    "CSS",
    "MISSING",
    "caption",
    "column_kind",
    "count",
    "days",
    "duration",
    "format_frame",
    "header",
    "html_table",
    "number",
    "p_value",
    "paragraph",
    "percent",
    "percent_points",
    "percent_within",
    "period",
    "timestamp",
]

#: How a missing value is shown: never as 0, never as "nan".
MISSING = "—"

#: Table style shared by the report and the notebooks. JupyterLab's own stylesheet
#: right-aligns every cell (``.jp-RenderedHTMLCommon td``); the selectors here are more
#: specific, so text reads left-aligned and numbers right-aligned in tabular figures.
CSS = """<style>
table.rr-table {border-collapse: collapse; font-size: 0.85em; margin: 0.3em 0 1em; table-layout: auto;}
table.rr-table th, table.rr-table td {padding: 3px 10px; border-bottom: 1px solid #ddd; vertical-align: top;}
table.rr-table th {background: #f4f4f4; font-weight: 600;}
table.rr-table th.rr-text, table.rr-table td.rr-text {text-align: left; max-width: 38em;}
table.rr-table th.rr-num, table.rr-table td.rr-num {text-align: right; white-space: nowrap;
  font-variant-numeric: tabular-nums;}
p.rr-caption {color: #555; margin: 0.2em 0;}
p.rr-empty, p.rr-note {font-style: italic; color: #555;}
h1, h2, h3 {font-family: sans-serif;}
</style>"""


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays: present
        return False


def percent(value: float | None, digits: int = 1) -> str:
    """A share (0..1) as a percentage: ``0.2857`` → ``"28.6 %"``.

    Parameters
    ----------
    value : float or None
        The share; missing → "—".
    digits : int
        Decimals of the percentage (one by default: the report's one style).

    Returns
    -------
    str
    """
    return MISSING if _missing(value) else f"{float(value) * 100:,.{digits}f} %"


def percent_points(value: float | None, digits: int = 1) -> str:
    """A change between two shares, signed, in percentage points: ``0.2088`` → ``"+20.9 pp"``.

    Parameters
    ----------
    value : float or None
        Difference of two shares (0..1 scale); missing → "—".
    digits : int
        Decimals.

    Returns
    -------
    str
    """
    return MISSING if _missing(value) else f"{float(value) * 100:+,.{digits}f} pp"


def percent_within(value: float | None, edges: Sequence[float], digits: int = 1) -> str:
    """A share as a percentage that stays on the same side of every band edge as the value.

    A band is decided on the unrounded value (``0.1496`` is below the 0.15 edge, so
    "low"); rounded half-up it would read "15.0 %", which looks like the edge itself.
    Where rounding crosses an edge the percentage is truncated instead (``14.9 %``), so a
    label printed beside it always agrees with the number a reader sees.

    Parameters
    ----------
    value : float or None
        The share (0..1).
    edges : sequence of float
        Band edges on the same scale; a value at an edge belongs to the upper band.
    digits : int
        Decimals of the percentage.

    Returns
    -------
    str
    """
    if _missing(value):
        return MISSING
    scale = 10**digits
    shown = round(float(value) * 100 * scale) / scale
    for edge in edges:
        edge_percent = edge * 100
        if value < edge and shown >= edge_percent:
            shown = math.floor(float(value) * 100 * scale) / scale
            if shown >= edge_percent:  # float noise right under the edge
                shown = edge_percent - 1 / scale
    return f"{shown:,.{digits}f} %"


def duration(hours: float | None) -> str:
    """A duration given in hours, with its unit: minutes under an hour, else hours.

    Parameters
    ----------
    hours : float or None
        Missing → "—".

    Returns
    -------
    str
        ``"45 min"``, ``"3.2 h"``, ``"1,250.0 h"``.
    """
    if _missing(hours):
        return MISSING
    hours = float(hours)
    if abs(round(hours * 60)) < 60:  # 59.7 minutes reads "1.0 h", not "60 min"
        return f"{hours * 60:.0f} min"
    return f"{hours:,.1f} h"


def days(value: float | None) -> str:
    """A duration given in days, with its unit (``"12.5 d"``); missing → "—"."""
    return MISSING if _missing(value) else f"{float(value):,.1f} d"


def timestamp(value: Any) -> str:
    """A point in time in UTC, to the minute: ``"2026-11-30 13:35"``.

    Parameters
    ----------
    value : datetime, Timestamp, str or None
        Naive values are taken as UTC; missing → "—".

    Returns
    -------
    str
        The header of a timestamp column says "(UTC)" (:func:`header`).
    """
    if _missing(value):
        return MISSING
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M")


def count(value: float | None) -> str:
    """A count with thousands separators (``"1,234"``); missing → "—"."""
    return MISSING if _missing(value) else f"{float(value):,.0f}"


def number(value: float | None) -> str:
    """Any other number, two decimals (``"1.50"``); missing → "—"."""
    return MISSING if _missing(value) else f"{float(value):,.2f}"


def p_value(value: float) -> str:
    """A p-value as a reader should quote it: ``"p = 0.004"``, ``"p < 0.001"`` (never ``"p = 0.000"``)."""
    return "p < 0.001" if value < 0.0005 else f"p = {value:.3f}"


def period(start: datetime, end: datetime) -> str:
    """A half-open window ``[start, end)`` as the days it covers, in UTC.

    Parameters
    ----------
    start, end : datetime
        Window bounds; ``end`` is exclusive (a week is Monday to next Monday).

    Returns
    -------
    str
        ``"Mon 29 Dec 2025 – Sun 04 Jan 2026 (UTC)"``.
    """
    last = pd.Timestamp(end) - timedelta(microseconds=1)
    return f"{pd.Timestamp(start):%a %d %b %Y} – {last:%a %d %b %Y} (UTC)"


def caption(
    n: int, noun: str, start: datetime | None = None, end: datetime | None = None, *, one: str | None = None
) -> str:
    """The line above a table: its window and how many rows it rests on.

    Parameters
    ----------
    n : int
        Observations behind the section (deployments, incidents, changes, …).
    noun : str
        What is counted, plural (``"production deployments"``); ``"1 production deployment"``
        drops the final "s".
    start, end : datetime, optional
        The window; omitted when the section covers all history.
    one : str, optional
        The singular, when dropping the final "s" does not make it (``"canary analysis"``).

    Returns
    -------
    str
        Plain text (escape it for HTML).
    """
    word = (one or (noun[:-1] if noun.endswith("s") else noun)) if n == 1 else noun
    window = f"{period(start, end)}: " if start is not None and end is not None else ""
    return f"{window}{n:,} {word}."


def paragraph(text: str, kind: str = "caption") -> str:
    """One escaped sentence as HTML: a section's caption, or what an empty section says.

    Parameters
    ----------
    text : str
        Plain text (escaped here).
    kind : {"caption", "empty", "note"}
        ``empty`` stands in for a table or chart without data.

    Returns
    -------
    str
        ``<p class="rr-caption">…</p>`` (``rr-empty``, ``rr-note``).
    """
    return f'<p class="rr-{escape(kind)}">{escape(text)}</p>'


# -- columns ----------------------------------------------------------------------------------
_TIMESTAMP, _HOURS, _DAYS, _SHARE, _COUNT, _NUMBER, _TEXT = (
    "timestamp", "hours", "days", "share", "count", "number", "text",
)  # fmt: skip

#: Headers of the columns the analyses return, in words with their unit. A column not
#: listed gets its name in words (:func:`header`).
HEADERS = {
    "deployment_id": "deployment",
    "incident_id": "incident",
    "cause_deployment_id": "cause deployment",
    "link_method": "linked by",
    "opened_at": "opened (UTC)",
    "resolved_at": "resolved (UTC)",
    "finished_at": "finished (UTC)",
    "started_at": "started (UTC)",
    "committed_at": "committed (UTC)",
    "authored_at": "authored (UTC)",
    "deployed_at": "deployed (UTC)",
    "restore_hours": "time to restore",
    "restore_from": "restore counted from",
    "recovery_hours": "recovery time",
    "lead_time_hours": "lead time",
    "failure_reason": "why it failed",
    "max_change_risk": "riskiest change",
    "scored_changes": "scored",
    "median_size": "median batch (changes)",
    "min_size": "smallest batch (changes)",
    "bucket": "batch size (changes)",
    "failure_rate": "failure rate",
    "fitted_rate": "logistic fit",
    "success_rate": "success rate",
    "median_hours_to_rollback": "time to roll back, median",
    "max_hours_to_rollback": "time to roll back, longest",
    "days_since_last_rollback": "since the last rollback",
    "skipped_stage_rate": "skipped a stage",
    "share": "share of deployments",
    "from_env": "from",
    "to_env": "to",
    "median_hours": "median wait",
    "p90_hours": "90th percentile wait",
    "failed_deployments": "failed deployments",
    "commits_ahead": "commits waiting",
    "hours_ahead": "oldest waiting for",
    "stage_deployments": "deployments to the stage",
    "median_promotion_hours": "time to production, median",
    "never_promoted": "never reached production",
    "ci": "95 % interval",
    "ci_low": "95 % interval, low",
    "ci_high": "95 % interval, high",
    "n": "n",
    "deploys_per_week": "deployments per week",
    "deploys_per_day": "deployments per day",
    "deploy_days_per_week": "deploy days per week",
    "lead_time_median_hours": "lead time, median",
    "lead_time_p90_hours": "lead time, 90th percentile",
    "change_failure_rate": "change failure rate",
    "recovery_median_hours": "recovery time, median",
    "restore_median_hours": "time to restore, median",
    "rework_rate": "rework rate",
    "pr_cycle_median_hours": "PR cycle time, median",
}


def column_kind(name: str, values: pd.Series) -> str:
    """The number style of a column: by its name's unit suffix, else by its dtype.

    Parameters
    ----------
    name : str
        Column name (``restore_hours``, ``failure_rate``, ``opened_at``, …).
    values : Series
        The column.

    Returns
    -------
    str
        One of ``timestamp, hours, days, share, count, number, text``.
    """
    lowered = str(name).lower()
    words = set(re.split(r"[_\s]+", lowered))
    if pd.api.types.is_datetime64_any_dtype(values) or lowered.endswith("_at"):
        return _TIMESTAMP
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return _TEXT
    if "hours" in words:
        return _HOURS
    if "days" in words and not lowered.endswith("per_week"):
        return _DAYS
    if words & {"rate", "share", "probability", "risk"} or lowered in ("ci_low", "ci_high"):
        present = values.dropna()
        if present.empty or ((present >= 0) & (present <= 1)).all():
            return _SHARE
    if pd.api.types.is_integer_dtype(values):
        return _COUNT
    present = values.dropna()
    whole = len(present) and bool((present == present.round()).all())  # counts that arrive as floats
    return _COUNT if whole else _NUMBER


_FORMATTERS = {_TIMESTAMP: timestamp, _HOURS: duration, _DAYS: days, _SHARE: percent, _COUNT: count,
               _NUMBER: number}  # fmt: skip


def header(name: str) -> str:
    """A column's header in words: :data:`HEADERS`, else its name with spaces.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        Never snake_case: ``"time to roll back, median"`` for ``median_hours_to_rollback``.
    """
    name = str(name)
    if name in HEADERS:
        return HEADERS[name]
    words = name.replace("_", " ").strip()
    match = re.fullmatch(r"skipped (\w+) rate", words)
    if match:
        return f"skipped {match.group(1)}"
    return words


def _interval(frame: pd.DataFrame) -> pd.DataFrame:
    """``ci_low`` and ``ci_high`` of a share as one "95 % interval" column, in place of both."""
    if not {"ci_low", "ci_high"} <= set(frame.columns):
        return frame
    low, high = frame["ci_low"], frame["ci_high"]
    text = [MISSING if _missing(a) or _missing(b) else f"{a * 100:.1f} – {b * 100:.1f} %"
            for a, b in zip(low, high, strict=True)]  # fmt: skip
    position = list(frame.columns).index("ci_low")
    merged = frame.drop(columns=["ci_low", "ci_high"])
    merged.insert(position, "ci", pd.Series(text, index=frame.index, dtype=object))
    merged.attrs.update(frame.attrs)
    merged.attrs.setdefault("numeric", set()).add("ci")
    return merged


def format_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[bool]]:
    """Every cell as display text, headers in words, and which columns are numbers.

    Parameters
    ----------
    frame : DataFrame
        An analysis frame with its own column names (``restore_hours``, ``failure_rate``…).
        Columns that are already text stay as they are.

    Returns
    -------
    (DataFrame, list of bool)
        The text frame (headers from :func:`header`) and, per column, whether it holds
        numbers (right-aligned in HTML).
    """
    frame = _interval(frame)
    numeric_text = frame.attrs.get("numeric", set())
    shown, numeric = {}, []
    for name in frame.columns:
        values = frame[name]
        kind = column_kind(name, values)
        if kind == _TEXT:
            shown[header(name)] = [MISSING if _missing(v) else _text(v) for v in values]
            numeric.append(name in numeric_text)
        else:
            shown[header(name)] = [_FORMATTERS[kind](v) for v in values]
            numeric.append(True)
    return pd.DataFrame(shown, index=frame.index, dtype=object), numeric


def _text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(map(str, value))
    return str(value)


def html_table(frame: pd.DataFrame | None, *, max_rows: int = 50, empty: str = "No data.") -> str:
    """An escaped HTML table in the shared number styles; a sentence when there are no rows.

    Parameters
    ----------
    frame : DataFrame or None
        Any analysis frame (see :func:`format_frame`).
    max_rows : int
        Rows shown; a line under the table says how many more there were.
    empty : str
        The sentence shown instead of a table without rows.

    Returns
    -------
    str
        ``<table class="rr-table">`` with ``rr-num`` / ``rr-text`` cells, or
        ``<p class="rr-empty">`` with ``empty``.
    """
    if frame is None or frame.empty:
        return f'<p class="rr-empty">{escape(empty)}</p>'
    text, numeric = format_frame(frame.head(max_rows))
    classes = ["rr-num" if is_number else "rr-text" for is_number in numeric]
    head = "".join(f'<th class="{c}">{escape(h)}</th>' for c, h in zip(classes, text.columns, strict=True))
    rows = "".join(
        "<tr>" + "".join(f'<td class="{c}">{escape(v)}</td>' for c, v in zip(classes, row, strict=True)) + "</tr>"
        for row in text.itertuples(index=False, name=None)
    )
    more = len(frame) - max_rows
    tail = f'<p class="rr-caption">… and {more:,} more rows.</p>' if more > 0 else ""
    return f'<table class="rr-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{tail}'
