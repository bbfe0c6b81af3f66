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
they replace the derived links of their deployments.
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
from releaserisk.store import TABLE_KEYS, Store

__all__ = ["SCHEMAS", "Column", "ingest_file", "read_table", "validate"]


def validate(frame: pd.DataFrame, kind: str, source: str, assume_tz: str | None = None) -> pd.DataFrame:
    """Check and convert a raw frame to the store's columns for ``kind``.

    The one validation layer of :mod:`releaserisk.inputs` with the kind's columns, key
    (a key repeated inside the file is refused) and time order.

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
        return validate_columns(
            frame, columns, source, assume_tz=assume_tz, key=TABLE_KEYS[table], time_order=TIME_ORDER.get(kind, ())
        )
    except InputError as exc:
        if "missing required column" in str(exc):
            raise InputError(f"{exc} for {kind}") from None
        raise


def ingest_file(
    store: Store,
    kind: str,
    path: str | os.PathLike[str],
    *,
    assume_tz: str | None = None,
    source: str | None = None,
) -> int:
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
    int
        Rows loaded.
    """
    frame = validate(read_table(path), kind, str(path), assume_tz)
    table, _ = SCHEMAS[kind]
    if "source" in [c.name for c in SCHEMAS[kind][1]]:
        frame["source"] = (
            frame["source"].fillna(source or Path(path).name) if "source" in frame else (source or Path(path).name)
        )
    for name, value in EXPLICIT.get(table, {}).items():  # rows from a file are explicit, never derived
        frame[name] = value
    started = datetime.now(UTC)
    with store.transaction():
        loaded = store.upsert(table, frame)
        from releaserisk.ingest.steps import LOADED_KINDS, after_ingest

        if table in LOADED_KINDS:
            after_ingest(store, [table])
        store.record_ingest(f"{kind}:{Path(path).name}", started, {"rows": loaded})
    return loaded
