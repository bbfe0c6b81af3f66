"""What the HTTP sources (GitLab, Jira, PagerDuty) share: watermarks, one-transaction loads, results.

Each source reads its resources one after another, each from its own watermark in
``ingest_runs`` (``SOURCE:TARGET:RESOURCE``), into DataFrames named after the store's
tables; :func:`load_run` then writes every resource read in **one transaction**,
runs the shared post-ingest steps (:func:`~releaserisk.ingest.steps.after_ingest`) and
records each resource's new watermark. A run stopped by a rate limit (when told not to
wait) loads the resources it finished and raises, so a re-run resumes at the first
unfinished resource; any other failure loads nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pandas as pd

from releaserisk.config import Settings
from releaserisk.errors import InputError
from releaserisk.inputs import read_csv_text
from releaserisk.store import Store

__all__ = ["SourceIngestResult", "read_service_map"]

#: Incident text naming what caused it: ``root cause: <sha>`` / ``caused by deployment <id>``.
ROOT_CAUSE = re.compile(r"root cause:\s*([0-9a-f]{7,40})", re.IGNORECASE)
CAUSED_BY = re.compile(r"caused by deployment\s+([\w.:/-]+)", re.IGNORECASE)


def cause_columns(text: str | None) -> dict[str, str | None]:
    """``cause_sha`` and ``cause_deployment_id`` named in an incident's text (None when absent)."""
    sha = ROOT_CAUSE.search(text or "")
    deployment = CAUSED_BY.search(text or "")
    return {
        "cause_sha": sha.group(1) if sha else None,
        "cause_deployment_id": deployment.group(1) if deployment else None,
    }


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Silence client libraries' own log lines (each refused request, each retry) while a source runs.

    PyGithub attaches its own stderr handler at INFO level, and PagerDuty's client logs
    retries as warnings that Python prints when no logging is configured: one refusal
    showed as several lines before ours. Only critical records pass; levels are restored.
    """
    previous = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


def raised_reading(exc: BaseException, client_module: ModuleType, reader_file: str) -> bool:
    """Whether ``exc`` came from reading a server's answer rather than from a bug of ours.

    True when it passed through the client library (``client_module``'s package: a
    body that is not JSON, a list that is an object) or was raised right in the module
    that reads the answers (``reader_file``: a documented field missing).
    """
    package = os.path.dirname(client_module.__file__ or "") + os.sep
    traceback, innermost = exc.__traceback__, None
    while traceback is not None:
        innermost = traceback.tb_frame.f_code.co_filename
        if innermost.startswith(package):
            return True
        traceback = traceback.tb_next
    return innermost == reader_file


def utc(value: str | datetime | None) -> pd.Timestamp | None:
    """An API's timestamp (ISO 8601 text or datetime) in UTC; None stays None, naive means UTC."""
    if value is None or value == "":
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def watermark(store: Store, source: str) -> datetime | None:
    """Where the last successful run of ``source`` stopped (None: never run)."""
    row = store.execute(
        "SELECT watermark FROM ingest_runs WHERE source = ? AND status = 'success' ORDER BY finished_at DESC LIMIT 1",
        [source],
    ).fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None


def read_service_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """A source's service → releaserisk service map from a JSON object or a two-column CSV.

    Keys may be PagerDuty service ids (``PIJ90N7``) or names (``Checkout API``), Jira
    components or field values; a CSV has a ``service`` column and one more column
    holding the source's names (``pagerduty_service,service``).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict

    Raises
    ------
    InputError
        The file is missing, unreadable, or not such a map.
    """
    location = Path(path)
    try:
        text = location.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the service map {location}: {type(exc).__name__}") from None
    if location.suffix.lower() == ".json":
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"the service map {location} is not valid JSON (line {exc.lineno})") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise InputError(f'the service map {location} must be a JSON object {{"their service": "service"}}')
        return {str(k): v for k, v in mapping.items()}
    try:
        frame = read_csv_text(io.StringIO(text))
    except (ValueError, pd.errors.ParserError):
        raise InputError(f"the service map {location} is not a CSV file") from None
    names = [c for c in frame.columns if c != "service"]
    if "service" not in frame.columns or len(names) != 1:
        raise InputError(f"the service map {location} needs two columns: the source's name and service")
    frame = frame.dropna(subset=[names[0], "service"])
    return dict(zip(frame[names[0]], frame["service"], strict=True))


@dataclass
class SourceIngestResult:
    """Rows loaded per resource by one run of an HTTP source.

    Attributes
    ----------
    source : str
        ``gitlab``, ``jira`` or ``pagerduty``.
    target : str
        What was read (``GROUP/PROJECT``, the Jira server, the PagerDuty account).
    counts : dict
        Rows loaded per resource.
    calls : int or None
        HTTP requests made (retries included); None when the client does not tell.
    kept : dict
        Deployment ids read that an explicit source (a ``deployments`` file) wrote, by that
        source: left as they were (explicit rows win).
    """

    source: str
    target: str
    counts: dict[str, int] = field(default_factory=dict)
    calls: int | None = None
    kept: dict[str, list[str]] = field(default_factory=dict)

    @property
    def frame(self) -> pd.DataFrame:
        """``resource, rows``."""
        return pd.DataFrame({"resource": list(self.counts), "rows": list(self.counts.values())})

    def summary(self) -> str:
        """One line: what was read and the rows per resource."""
        counts = ", ".join(f"{resource} {n:,}" for resource, n in self.counts.items()) or "nothing new"
        made = f" ({self.calls:,} API calls)" if self.calls is not None else ""
        from releaserisk.ingest.explicit import kept_line

        return "\n".join(filter(None, [f"ingested {self.target} from {self.source}: {counts}{made}",
                                        kept_line(self.kept)]))  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-safe counts."""
        return {"source": self.source, "target": self.target, "counts": dict(self.counts), "calls": self.calls,
                "kept": {source: list(ids) for source, ids in self.kept.items()}}  # fmt: skip


@dataclass
class Resource:
    """One resource of a source: its name, the tables it loads and how to read it.

    ``read(since)`` returns ``(frames by table, newest update seen)``.
    """

    name: str
    loads: list[str]
    read: Callable[[datetime | None], tuple[dict[str, pd.DataFrame], datetime | None]]


def load_run(
    store: Store,
    prefix: str,
    resources: Iterable[Resource],
    since: datetime | None,
    result: SourceIngestResult,
    *,
    is_rate_limit: Callable[[BaseException], bool],
    repos: Iterable[str] | None = None,
    bug_labels: Iterable[str] = Settings.bug_labels,
) -> SourceIngestResult:
    """Read each resource from its watermark and load them all in one transaction.

    Parameters
    ----------
    store : Store
    prefix : str
        ``ingest_runs`` source prefix (``gitlab:GROUP/PROJECT``); each resource appends ``:NAME``.
    resources : iterable of Resource
    since : datetime, optional
        Read nothing older (default: each resource's watermark).
    result : SourceIngestResult
        Filled with the rows loaded per resource.
    is_rate_limit : callable
        Whether an exception is a rate-limit stop (the finished resources are then loaded
        before it propagates, so a re-run resumes).
    repos : iterable of str, optional
        Repositories whose commits may cite the loaded issues and pull requests.
    bug_labels : iterable of str
        Labels marking bugs (for the FIX metric).

    Returns
    -------
    SourceIngestResult
    """
    read: list[tuple[Resource, dict[str, pd.DataFrame], datetime | None, datetime | None, datetime]] = []
    stop: BaseException | None = None
    for resource in resources:
        start_from = since or watermark(store, f"{prefix}:{resource.name}")
        started = datetime.now(UTC)
        try:
            frames, newest = resource.read(start_from)
        except Exception as exc:
            if not is_rate_limit(exc):
                raise
            stop = exc
            break
        read.append((resource, frames, newest, start_from, started))
    from releaserisk.ingest.explicit import keep_explicit_deployments
    from releaserisk.ingest.steps import after_ingest

    with store.transaction():
        loaded_kinds: set[str] = set()
        for resource, frames, newest, start_from, started in read:
            loaded = 0
            for table, frame in frames.items():
                if table == "deployments" and len(frame):
                    frame, kept = keep_explicit_deployments(store, frame)  # explicit rows win
                    for explicit, ids in kept.items():
                        result.kept.setdefault(explicit, []).extend(ids)
                if len(frame):
                    loaded += store.upsert(table, frame)
                    loaded_kinds.update(k for k in resource.loads if k == table)
            mark = max(filter(None, [utc(newest), utc(start_from)]), default=None)
            store.record_ingest(
                f"{prefix}:{resource.name}", started, {"rows": loaded}, mark.isoformat() if mark else None
            )
            result.counts[resource.name] = loaded
        if loaded_kinds:
            after_ingest(store, loaded_kinds, repos=repos, bug_labels=bug_labels)
    if stop is not None:
        raise stop
    return result
