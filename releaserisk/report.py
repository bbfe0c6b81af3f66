"""The weekly report: sections computed here, presented by a parameterised notebook.

:func:`weekly_sections` gathers everything the report shows for one ISO week (the
notebooks call it, so they hold no SQL and no logic of their own);
:func:`render_weekly` executes ``notebooks/weekly_report.ipynb`` with papermill in the
running Python environment and exports HTML without code cells with nbconvert.
Every user-controlled string (commit subjects, PR titles, service names) reaches the
HTML through :func:`html_table` / :func:`text`, which escape it.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from releaserisk.config import Settings
from releaserisk.errors import InputError
from releaserisk.store import Store

__all__ = ["WeeklySections", "html_table", "iso_week", "render_notebook", "render_weekly", "text", "weekly_sections"]


def _notebook_dir() -> Path:
    """The analyst notebooks: inside the installed package (a wheel ships them as
    ``releaserisk/notebooks``), else the source tree's top-level ``notebooks/``."""
    package = Path(__file__).resolve().parent
    installed = package / "notebooks"
    return installed if installed.is_dir() else package.parent / "notebooks"


NOTEBOOKS = _notebook_dir()


def iso_week(week: str | None, *, today: datetime | None = None) -> tuple[str, datetime, datetime]:
    """Parse ``YYYY-Www`` (default: the last complete week) into (label, Monday, next Monday) in UTC.

    Raises
    ------
    InputError
        Not ``YYYY-Www``, or a week that has not started yet: its report could only say
        "no deployments", which reads as a fact about the team (a typo'd year does this).
        A past week without data is a real zero and is reported.
    """
    now = today or datetime.now(UTC)
    if week is None:
        monday = (now - timedelta(days=now.weekday() + 7)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        try:
            year, number = week.upper().split("-W")
            monday = datetime.fromisocalendar(int(year), int(number), 1).replace(tzinfo=UTC)
        except ValueError:
            raise InputError(f"week must look like 2026-W47, got {week!r}") from None
        if monday > now:
            raise InputError(f"week {week} has not started yet (today is {now:%Y-%m-%d})")
    iso = monday.isocalendar()
    return f"{iso.year}-W{iso.week:02d}", monday, monday + timedelta(days=7)


def text(value: Any) -> str:
    """Escape one user-controlled string for HTML."""
    return html.escape("" if value is None else str(value))


def html_table(frame: pd.DataFrame, *, max_rows: int = 50, float_format: str = "{:,.2f}") -> str:
    """An escaped HTML table; missing values show as "—" (missing, never zero)."""
    if frame is None or frame.empty:
        return "<p><em>No data.</em></p>"
    shown = frame.head(max_rows).copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            values = shown[column].dropna()
            # counts that arrive as floats print whole; shares keep decimals even when all 0 or 1
            share = str(column).endswith(("rate", "share", "ci_low", "ci_high"))
            whole = not share and len(values) and bool((values == values.round()).all()) and values.abs().max() >= 1
            fmt = "{:,.0f}" if whole else float_format
            shown[column] = shown[column].map(lambda v, fmt=fmt: "—" if pd.isna(v) else fmt.format(v))
    return shown.to_html(index=False, escape=True, na_rep="—", border=0, classes="rr-table")


@dataclass
class WeeklySections:
    """Everything the weekly report shows, for one week."""

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
    risk_threshold: float = 0.5
    notes: list[str] = field(default_factory=list)
    dora_notes: list[str] = field(default_factory=list)  # why a DORA number is no data


_HEADLINE = [
    ("Deployment frequency (per week)", "deploys_per_week", "deploys_per_week_tier"),
    ("Change lead time, median (hours)", "lead_time_median_hours", "lead_time_median_hours_tier"),
    ("Change failure rate", "change_failure_rate", "change_failure_rate_tier"),
    ("Failed deployment recovery, median (hours)", "recovery_median_hours", "recovery_median_hours_tier"),
    ("Rework rate", "rework_rate", None),
]
_SHARES = {"Change failure rate", "Rework rate"}  # shown in percent, their changes in percentage points


def headline_table(headline: pd.DataFrame) -> pd.DataFrame:
    """The headline as text, each row in its metric's unit: shares in %, changes signed.

    A column-wise number format cannot serve rows that mix deployments per week, hours
    and shares (a whole-number column printed 1.00 beside -1).
    """

    def shown(metric: str, value: float, change: bool = False) -> str:
        if pd.isna(value):
            return "—"
        sign = "+" if change else ""
        return f"{value * 100:{sign}.1f} {'pp' if change else '%'}" if metric in _SHARES else f"{value:{sign},.2f}"

    return pd.DataFrame(
        {
            "metric": headline["metric"],
            "this week": [shown(m, v) for m, v in zip(headline["metric"], headline["this week"], strict=True)],
            "previous week": [shown(m, v) for m, v in zip(headline["metric"], headline["previous week"], strict=True)],
            "change": [shown(m, v, True) for m, v in zip(headline["metric"], headline["change"], strict=True)],
            "tier": headline["tier"],
        }
    )


def weekly_sections(
    store: Store, week: str | None = None, *, services: list[str] | None = None, settings: Settings | None = None
) -> WeeklySections:
    """Compute every section of the weekly report for ``week`` (``YYYY-Www``).

    Parameters
    ----------
    store : Store
    week : str, optional
        ``YYYY-Www`` (default: the last complete week).
    services : list of str, optional
        Limit the deployments table to these services.
    settings : Settings, optional

    Returns
    -------
    WeeklySections
        One DataFrame (or value) per section, for the notebook to present.

    Raises
    ------
    InputError
        A malformed week, or one that has not started yet.
    """
    from releaserisk.analytics import release_analytics
    from releaserisk.dora import dora_metrics

    settings = settings or Settings()
    label, start, end = iso_week(week)
    trend_start = start - timedelta(weeks=11)
    dora = dora_metrics(store, trend_start, end, settings=settings)
    trend = dora.by_period
    this, previous = trend.iloc[-1], trend.iloc[-2] if len(trend) > 1 else None
    headline = pd.DataFrame(
        [
            {
                "metric": name,
                "this week": this[column],
                "previous week": previous[column] if previous is not None else float("nan"),
                "change": this[column] - previous[column] if previous is not None else float("nan"),
                "tier": this[tier] if tier else "",
            }
            for name, column, tier in _HEADLINE
        ]
    )
    week_dora = dora_metrics(store, start, end, settings=settings)
    deployments = week_dora.deployments
    if services:
        deployments = deployments[deployments["service"].isin(services)]
    risk = store.query(
        """
        SELECT dc.deployment_id, count(*) AS changes, max(r.probability) AS max_risk,
               1 - product(1 - r.probability) AS batch_risk
        FROM deployment_changes dc
        JOIN (SELECT repo, sha, arg_max(probability, scored_at) AS probability FROM risk_scores GROUP BY 1, 2) r
          USING (repo, sha)
        GROUP BY dc.deployment_id
        """
    )
    table = deployments.merge(risk, on="deployment_id", how="left")
    deployment_view = pd.DataFrame(
        {
            "finished": table["finished_at"].dt.strftime("%a %d %b %H:%M"),
            "service": table["service"],
            "kind": table["kind"],
            "sha": table["sha"].str[:10],
            "changes scored": table["changes"],
            "batch risk": table["batch_risk"],
            "outcome": table["failure_reason"].fillna("ok"),
        }
    )
    failures = deployment_view[deployment_view["outcome"] != "ok"]
    incidents = week_dora.incidents[["incident_id", "service", "title", "severity", "opened_at", "resolved_at",
                                     "deployment_id", "link_method", "restore_hours"]]  # fmt: skip
    risky = store.query(
        """
        SELECT c.sha, split_part(c.message, chr(10), 1) AS subject, c.author, r.probability, r.band,
               r.explanation
        FROM risk_scores r JOIN commits c USING (repo, sha)
        WHERE c.committed_at >= $start AND c.committed_at < $end
        QUALIFY row_number() OVER (PARTITION BY r.repo, r.sha ORDER BY r.scored_at DESC) = 1
        ORDER BY r.probability DESC LIMIT 10
        """,
        {"start": start, "end": end},
    )
    risky["reasons"] = risky["explanation"].map(lambda e: "; ".join(json.loads(e)) if isinstance(e, str) else "")
    risky["sha"] = risky["sha"].str[:10]
    analytics = release_analytics(store, trend_start, end, settings=settings, dora=dora)
    notes = []
    if risky.empty:
        notes.append("No risk scores for this week's changes: run 'releaserisk score' in CI (or 'releaserisk demo').")
    return WeeklySections(
        week=label,
        start=start,
        end=end,
        headline=headline,
        trend=trend,
        deployments=deployment_view,
        failures=failures,
        incidents=incidents,
        risky_changes=risky.drop(columns="explanation"),
        canary=_canary_outcomes(store, start, end),
        batch=analytics.failure_by_batch_size(),
        rollbacks=analytics.rollbacks(),
        hotfixes=analytics.hotfixes(),
        stages=analytics.stage_promotion(),
        lag=_waiting(_last_weeks(analytics.environment_lag(), weeks=4)),
        data=_data_section(store),
        risk_threshold=settings.risk_threshold,
        notes=notes,
        dora_notes=list(dora.notes),
    )


def _last_weeks(frame: pd.DataFrame, weeks: int) -> pd.DataFrame:
    """The newest ``weeks`` ISO weeks of a weekly frame, weeks labelled like 2026-W03."""
    if frame.empty:
        return frame
    recent = frame[frame["week"] > frame["week"].max() - pd.Timedelta(weeks=weeks)].copy()
    iso = recent["week"].dt.isocalendar()
    recent["week"] = [f"{year}-W{week:02d}" for year, week in zip(iso["year"], iso["week"], strict=True)]
    return recent.reset_index(drop=True)


def _waiting(lag: pd.DataFrame) -> pd.DataFrame:
    """The rows of an environment-lag frame where something waited to reach production.

    A dozen services with two stages over four weeks is a hundred rows, mostly zeros;
    the report lists the others and counts the quiet ones in ``attrs["quiet"]``.
    """
    waiting = lag[(lag["commits_ahead"] > 0) | (lag["never_promoted"] > 0)] if len(lag) else lag
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
    tables = ("commits", "deployments", "incidents", "pull_requests", "metric_samples", "risk_scores", "labels")
    return pd.DataFrame(
        {
            "table": tables,
            "rows": [counts.get(t, 0) for t in tables],
            "last ingest": [last.get(t) for t in tables],
            "gap": ["" if counts.get(t) else "no data" for t in tables],
        }
    )


# -- rendering ------------------------------------------------------------------------------
def render_notebook(
    notebook: str | os.PathLike[str], parameters: dict[str, Any], out_dir: str | os.PathLike[str], stem: str
) -> tuple[Path, Path]:
    """Execute a notebook with papermill (this Python's kernel) and export HTML without code.

    Returns
    -------
    (html_path, executed_notebook_path)
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
) -> dict[str, str]:
    """Render ``reports/weekly-<ISO week>.html`` (and the executed notebook) from the store.

    Parameters
    ----------
    db : path-like
        The store (opened read-only; never written).
    week : str, optional
        ``YYYY-Www`` (default: the last complete week).
    out_dir : path-like
        Where the HTML and the executed notebook go.
    services : list of str, optional
        Limit the deployments table to these services.
    config : str, optional
        A ``releaserisk.toml`` for the notebook's settings.

    Returns
    -------
    dict
        ``html``, ``notebook`` and ``week``.
    """
    label, _, _ = iso_week(week)
    db_path = Path(db).resolve()
    if not db_path.exists():
        raise InputError(f"store {db_path} does not exist")
    parameters = {"db": str(db_path), "week": label, "services": services or [], "config": config}
    html_path, executed = render_notebook(NOTEBOOKS / "weekly_report.ipynb", parameters, out_dir, f"weekly-{label}")
    return {"week": label, "html": str(html_path), "notebook": str(executed)}
