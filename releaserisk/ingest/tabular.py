"""CSV, JSON (array or lines) and Parquet exports of any deploy, incident or review tool.

Each kind has documented columns (:data:`SCHEMAS`). Validation is strict and happens
before anything is written: a missing required column names the column and the file;
a bad timestamp, number or enum value names the row (1-based, as a spreadsheet shows
data rows) and the allowed values. Timestamps must carry a zone (``Z`` or ``+hh:mm``);
naive ones are refused unless ``assume_tz`` is given. Unix epoch seconds are accepted.
A key repeated inside one file is refused. The rules are those of
:mod:`releaserisk.inputs`, shared by every kind and format (canary samples included).
Loading the same file again changes nothing (upserts on each kind's key). Rows of a
``deployment-changes`` file are explicit: re-deriving links never replaces them, and
they replace the derived links of their deployments. Rows of a ``deployments`` file are
explicit too: a derived source (``git-tags``, GitHub or GitLab releases and deployments)
never overwrites them (:data:`~releaserisk.ingest.schemas.DERIVED_DEPLOYMENT_SOURCES`).

Links that cannot be right are refused: a rollback reverting itself, or one that finished
before the deployment it reverts when both are in the file. Links that look wrong against
the store are loaded with a warning (:attr:`LoadedRows.warnings`): a rollback reverting an
unknown deployment or one that finished after it, an incident whose explicit cause is
unknown or finished after the incident opened.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from releaserisk.errors import InputError
from releaserisk.ingest.schemas import EXPLICIT, SCHEMAS, TIME_ORDER, Column
from releaserisk.inputs import read_table
from releaserisk.inputs import validate as validate_columns
from releaserisk.store import SHA_PREFIX_MIN, TABLE_KEYS, Store, sha_prefix_match

__all__ = ["SCHEMAS", "Column", "LoadedRows", "ingest_file", "link_warnings", "read_table", "validate"]

#: Warnings of one kind shown with this many example rows; the rest are counted.
_EXAMPLES = 3


class LoadedRows(int):
    """The number of rows a file loaded, with the warnings its rows' links raised.

    An ``int`` (``ingest_file(...) == 3`` holds) whose :attr:`warnings` holds one line per
    kind of suspicious link, each naming the file, a row and the column.
    """

    warnings: tuple[str, ...]

    def __new__(cls, rows: int, warnings: tuple[str, ...] = ()) -> LoadedRows:
        loaded = super().__new__(cls, rows)
        loaded.warnings = tuple(warnings)
        return loaded


def validate(
    frame: pd.DataFrame, kind: str, source: str, assume_tz: str | None = None, *, now: datetime | None = None
) -> pd.DataFrame:
    """Check and convert a raw frame to the store's columns for ``kind``.

    The one validation layer of :mod:`releaserisk.inputs` with the kind's columns, key
    (a key repeated inside the file is refused) and time order; then the links inside the
    file: a deployment may not revert itself, nor a rollback finish before a deployment of
    the same file it reverts.

    Parameters
    ----------
    frame : DataFrame
        From :func:`~releaserisk.inputs.read_table`.
    kind : str
        One of :data:`SCHEMAS`.
    source : str
        The file's name, for messages.
    assume_tz : str, optional
        IANA zone of timestamps written without one.
    now : datetime, optional
        The ingest's clock (default: now): later timestamps (beyond
        :data:`~releaserisk.inputs.FUTURE_TOLERANCE`) are refused.

    Returns
    -------
    DataFrame
        The store's columns for ``kind``.

    Raises
    ------
    InputError
        Naming the file, and the column or row, of the first problem.
    """
    if kind not in SCHEMAS:
        raise InputError(f"unknown kind '{kind}' (known: {', '.join(SCHEMAS)})")
    table, columns = SCHEMAS[kind]
    try:
        checked = validate_columns(
            frame,
            columns,
            source,
            assume_tz=assume_tz,
            key=TABLE_KEYS[table],
            time_order=TIME_ORDER.get(kind, ()),
            now=now,
        )
    except InputError as exc:
        if "missing required column" in str(exc):
            raise InputError(f"{exc} for {kind}") from None
        raise
    if kind == "deployments" and "reverts_deployment_id" in checked:
        _refuse_impossible_reverts(checked, source)
    return checked


def _refuse_impossible_reverts(frame: pd.DataFrame, source: str) -> None:
    """A deployment reverting itself, or a rollback finished before a deployment of the file it reverts."""
    reverts = frame["reverts_deployment_id"]
    itself = (reverts == frame["deployment_id"]).fillna(False).astype(bool)
    if itself.any():
        row = int(itself.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{source}: row {row + 1}: column reverts_deployment_id: {frame['deployment_id'][row]!r} is the row's "
            "own deployment_id; a rollback reverts an earlier deployment: name that one"
        )
    finished = dict(zip(frame["deployment_id"], frame["finished_at"], strict=True))
    target_finished = reverts.map(finished)
    early = (frame["finished_at"] < target_finished).fillna(False).astype(bool)
    if early.any():
        row = int(early.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{source}: row {row + 1}: column reverts_deployment_id: {frame['deployment_id'][row]!r} finished "
            f"{_when(frame['finished_at'][row])}, before the deployment it reverts ({reverts[row]!r}, finished "
            f"{_when(target_finished[row])} in the same file); a rollback follows what it reverts: "
            "fix reverts_deployment_id or finished_at"
        )


def _when(stamp) -> str:
    return "" if pd.isna(stamp) else pd.Timestamp(stamp).strftime("%Y-%m-%dT%H:%MZ")


def _examples(rows: pd.Series, source: str, what: str, detail: pd.Series) -> str | None:
    """One warning line: ``what`` for the rows in ``rows`` (a boolean mask), with a few named."""
    numbers = rows.to_numpy().nonzero()[0]
    if not len(numbers):
        return None
    shown = "; ".join(f"row {n + 1}: {detail.iloc[n]}" for n in numbers[:_EXAMPLES])
    more = f"; and {len(numbers) - _EXAMPLES:,} more" if len(numbers) > _EXAMPLES else ""
    return f"{source}: {len(numbers):,} {what} ({shown}{more})"


def _finished_at(store: Store, ids: pd.Series) -> dict[str, datetime | None]:
    wanted = sorted({str(i) for i in ids.dropna()})
    if not wanted:
        return {}
    rows = store.execute(
        "SELECT deployment_id, finished_at FROM deployments WHERE list_contains(?, deployment_id)", [wanted]
    ).fetchall()
    return dict(rows)


def _link_lines(
    store: Store, frame: pd.DataFrame, source: str, column: str, time_column: str, unknown: str, later: str, event: str
) -> list[str | None]:
    """The two warnings of a link column naming a deployment: ids the store does not know (``unknown``), and
    deployments that finished after the row's own ``time_column`` (``later``; ``event`` names that time)."""
    ids = frame[column]
    known = _finished_at(store, ids)
    target = pd.to_datetime(ids.map(known), utc=True)
    missing = ids.notna() & ~ids.isin(list(known))
    late = (target > frame[time_column]).fillna(False).astype(bool)
    detail = ids + " finished " + target.map(_when) + f", {event} " + frame[time_column].map(_when)
    return [_examples(missing, source, f"{unknown}: column {column}", ids.map(repr)),
            _examples(late, source, f"{later}: column {column}", detail)]  # fmt: skip


def _named_earlier(store: Store, frame: pd.DataFrame, source: str) -> list[str | None]:
    """Deployments of a file that finished after a stored rollback reverting them, or an incident naming them."""
    ids = frame["deployment_id"].tolist()
    found: list[str | None] = []
    for query, what in (
        (
            "SELECT reverts_deployment_id, arg_min(deployment_id, finished_at), min(finished_at) FROM deployments "
            "WHERE list_contains(?, reverts_deployment_id) GROUP BY 1",
            ("deployment(s) finished after a rollback that reverts them: column finished_at", "finished"),
        ),
        (
            "SELECT cause_deployment_id, arg_min(incident_id, opened_at), min(opened_at) FROM incidents "
            "WHERE list_contains(?, cause_deployment_id) GROUP BY 1",
            ("deployment(s) finished after an incident naming them as its cause opened: column finished_at", "opened"),
        ),
    ):
        named = {target: (by, at) for target, by, at in store.execute(query, [ids]).fetchall() if at is not None}
        by = frame["deployment_id"].map(lambda d, named=named: named.get(d, (None, None))[0])
        at = pd.to_datetime(frame["deployment_id"].map(lambda d, named=named: named.get(d, (None, None))[1]), utc=True)
        late = (frame["finished_at"] > at).fillna(False).astype(bool)
        detail = (frame["deployment_id"] + " finished " + frame["finished_at"].map(_when) + ", " + by.astype(str)
                  + f" {what[1]} " + at.map(_when))  # fmt: skip
        found.append(_examples(late, source, what[0], detail))
    return found


def _ambiguous_causes(store: Store, frame: pd.DataFrame, source: str) -> str | None:
    """Incidents whose abbreviated ``cause_sha`` starts several ingested commits (7 hex digits collide about once
    in 20,000 commits): DORA would link the incident through whichever shipped first, which may be a release
    years before it."""
    causes = frame["cause_sha"].astype("string").str.strip().str.lower()
    short = causes.notna() & causes.str.len().between(SHA_PREFIX_MIN, 39).fillna(False).astype(bool)
    wanted = sorted(set(causes[short]))
    if not wanted:
        return None
    match = sha_prefix_match("c.sha", "g.cause")
    rows = store.execute(
        f"""SELECT g.cause, count(DISTINCT c.sha), min(c.sha), max(c.sha)
            FROM (SELECT DISTINCT unnest(?::VARCHAR[]) AS cause) g JOIN commits c ON {match}
            GROUP BY 1 HAVING count(DISTINCT c.sha) > 1""",
        [wanted],
    ).fetchall()
    several = {cause: f"{n:,} commits, e.g. {a[:12]} and {b[:12]}" for cause, n, a, b in rows}
    if not several:
        return None
    given, read = frame["cause_sha"].tolist(), causes.tolist()
    mask = pd.Series([bool(ok) and r in several for ok, r in zip(short, read, strict=True)])
    detail = pd.Series([f"{g!r} starts {several.get(r, '')}" for g, r in zip(given, read, strict=True)], dtype=object)
    return _examples(mask, source, "incident(s) name an abbreviated root-cause commit that several commits start "
                     "with (write more of it): column cause_sha", detail)  # fmt: skip


def link_warnings(store: Store, kind: str, frame: pd.DataFrame, source: str) -> list[str]:
    """Links of a validated file's rows that look wrong against the store (the rows loaded).

    Parameters
    ----------
    store : Store
        The store, with the file's rows already written.
    kind : str
        The file's kind; only ``deployments`` and ``incidents`` have links.
    frame : DataFrame
        The rows, as :func:`validate` returns them (row ``i`` is the file's data row ``i + 1``).
    source : str
        The file's name, for the lines.

    Returns
    -------
    list of str
        One line per kind of problem: rollbacks reverting a deployment the store does not
        know or that finished after them; incidents whose ``cause_deployment_id`` is unknown
        or finished after the incident opened (DORA links it as given, so its recovery is
        negative and left out); incidents whose abbreviated ``cause_sha`` several ingested
        commits start with; and, for a deployments file, the same two links seen from
        the deployment loaded after them (a stored rollback or incident names it, but it
        finished later).
    """
    found: list[str | None] = []
    if kind == "deployments" and "reverts_deployment_id" in frame:
        found += _link_lines(store, frame, source, "reverts_deployment_id", "finished_at",
                             "deployment(s) revert a deployment the store does not know",
                             "rollback(s) finished before the deployment they revert", "the rollback")  # fmt: skip
    if kind == "deployments":  # the same links seen from the other end: loaded after what names them
        found += _named_earlier(store, frame, source)
    if kind == "incidents" and "cause_deployment_id" in frame:
        found += _link_lines(store, frame, source, "cause_deployment_id", "opened_at",
                             "incident(s) name a cause the store does not know",
                             "incident(s) name a cause that finished after they opened",
                             "the incident opened")  # fmt: skip
    if kind == "incidents" and "cause_sha" in frame:
        found.append(_ambiguous_causes(store, frame, source))
    return [line for line in found if line]


def ingest_file(
    store: Store,
    kind: str,
    path: str | os.PathLike[str],
    *,
    assume_tz: str | None = None,
    source: str | None = None,
) -> LoadedRows:
    """Validate a whole file, then upsert it in one transaction.

    Parameters
    ----------
    store : Store
    kind : str
        One of :data:`SCHEMAS` (deployments, incidents, pull-requests, pr-commits,
        pr-reviews, deployment-changes, services).
    path : path-like
        CSV, JSON/JSON lines or Parquet.
    assume_tz : str, optional
        IANA zone for timestamps without one.
    source : str, optional
        Value of the ``source`` column when the file has none.

    Returns
    -------
    LoadedRows
        Rows loaded (an ``int``), with :attr:`LoadedRows.warnings` from :func:`link_warnings`.

    Raises
    ------
    InputError
        Naming the file, row and column of the first problem; nothing is loaded. Timestamps
        later than the ingest's clock plus :data:`~releaserisk.inputs.FUTURE_TOLERANCE` are
        among them.
    """
    started = datetime.now(UTC)
    frame = validate(read_table(path), kind, str(path), assume_tz, now=started)
    table, _ = SCHEMAS[kind]
    if "source" in [c.name for c in SCHEMAS[kind][1]]:
        frame["source"] = (
            frame["source"].fillna(source or Path(path).name) if "source" in frame else (source or Path(path).name)
        )
    for name, value in EXPLICIT.get(table, {}).items():  # rows from a file are explicit, never derived
        frame[name] = value
    with store.transaction():
        loaded = store.upsert(table, frame)
        warnings = link_warnings(store, kind, frame, str(path))
        from releaserisk.ingest.steps import LOADED_KINDS, after_ingest

        if table in LOADED_KINDS:
            after_ingest(store, [table])
        store.record_ingest(f"{kind}:{Path(path).name}", started, {"rows": loaded})
    return LoadedRows(loaded, tuple(warnings))
