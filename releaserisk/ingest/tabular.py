"""CSV, JSON (array or lines) and Parquet exports of any deploy, incident or review tool.

Each kind has documented columns (:data:`SCHEMAS`). Validation is strict and happens
before anything is written: a missing required column names the column and the file;
a bad timestamp, number or enum value names the row (1-based, as a spreadsheet shows
data rows) and the allowed values. Timestamps must carry a zone (``Z`` or ``+hh:mm``);
naive ones are refused unless ``assume_tz`` is given. Unix epoch seconds are accepted.
Loading the same file again changes nothing (upserts on each kind's key).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from releaserisk.errors import InputError
from releaserisk.ingest.schemas import SCHEMAS, TIME_ORDER, Column
from releaserisk.store import Store

__all__ = ["SCHEMAS", "Column", "ingest_file", "read_table"]


_ZONE = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read CSV, JSON (array or lines) or Parquet as strings/native values."""
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""])
        if suffix == ".parquet":
            return pd.read_parquet(file)
        if suffix in (".json", ".jsonl", ".ndjson"):
            text = file.read_text(encoding="utf-8")
            if text.lstrip().startswith("["):
                return pd.DataFrame(json.loads(text), dtype=object)
            return pd.DataFrame([json.loads(line) for line in text.splitlines() if line.strip()], dtype=object)
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{file}: cannot read: {str(exc).splitlines()[0]}") from None
    raise InputError(f"{file}: unsupported file type '{suffix}' (use .csv, .json, .jsonl or .parquet)")


def _first_bad(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def _timestamps(values: pd.Series, where: str, assume_tz: str | None) -> pd.Series:
    present = values.notna()
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is None:
            if not assume_tz:
                raise InputError(f"{where}: timestamps have no time zone; pass --assume-tz ZONE")
            return values.dt.tz_localize(assume_tz).dt.tz_convert("UTC")
        return values.dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    numeric = text.str.fullmatch(r"\d{9,11}(\.\d+)?").fillna(False)
    zoned = text.str.contains(_ZONE, regex=True).fillna(False)
    naive = present & ~numeric & ~zoned
    # text that is no date at all is reported as such, not as lacking a time zone
    unreadable = naive & pd.to_datetime(text.where(naive), errors="coerce", format="ISO8601").isna()
    if unreadable.any():
        raise InputError(
            f"{where}: row {_first_bad(unreadable)}: {values[unreadable].iloc[0]!r} is not a valid timestamp"
        )
    if naive.any() and not assume_tz:
        row = _first_bad(naive)
        raise InputError(
            f"{where}: row {row}: timestamp {values[naive].iloc[0]!r} has no time zone; "
            "add one (e.g. 2024-05-01T12:00:00Z) or pass --assume-tz ZONE"
        )
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if numeric.any():
        out[numeric] = pd.to_datetime(text[numeric].astype(float), unit="s", utc=True)
    if zoned.any():
        out[zoned] = pd.to_datetime(text[zoned], utc=True, errors="coerce", format="ISO8601")
    if naive.any():
        local = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        out[naive] = local.dt.tz_localize(assume_tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    bad = present & out.isna()
    if bad.any():
        raise InputError(f"{where}: row {_first_bad(bad)}: {values[bad].iloc[0]!r} is not a valid timestamp")
    return out


def _column(values: pd.Series, column: Column, where: str, assume_tz: str | None) -> pd.Series:
    if column.kind == "timestamp":
        return _timestamps(values, where, assume_tz)
    if column.kind == "int":
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & (numbers.isna() | (numbers % 1 != 0))
        if bad.any():
            raise InputError(f"{where}: row {_first_bad(bad)}: {values[bad].iloc[0]!r} is not a whole number")
        return numbers.astype("Int64")
    if column.kind == "list":
        return values.map(_as_list)
    text = values.astype("string").str.strip().astype(object).where(values.notna(), None)
    if column.kind == "enum":
        aliases = dict(column.aliases)
        text = text.map(lambda v: aliases.get(v.lower(), v.lower()) if isinstance(v, str) else v)
        if column.default is not None:
            text = text.fillna(column.default)
        bad = text.notna() & ~text.isin(column.allowed)
        if bad.any():
            raise InputError(
                f"{where}: row {_first_bad(bad)}: {text[bad].iloc[0]!r} is not one of {', '.join(column.allowed)}"
            )
    return text


def _as_list(value) -> list[str] | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(";") if part.strip()]


def validate(frame: pd.DataFrame, kind: str, source: str, assume_tz: str | None = None) -> pd.DataFrame:
    """Check and convert a raw frame to the store's columns for ``kind``.

    Raises
    ------
    InputError
        Naming the file, and the column or row, of the first problem.
    """
    if kind not in SCHEMAS:
        raise InputError(f"unknown kind '{kind}' (known: {', '.join(SCHEMAS)})")
    if assume_tz:
        try:
            ZoneInfo(assume_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone '{assume_tz}'") from None
    _, columns = SCHEMAS[kind]
    missing = [c.name for c in columns if c.required and c.name not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {', '.join(missing)} for {kind}")
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        if column.name not in frame.columns:
            continue
        values = frame[column.name]
        values = values.where(values.notna() & (values.astype(str).str.strip() != ""), None)
        where = f"{source}: column {column.name}"
        converted = _column(values, column, where, assume_tz)
        if column.required and converted.isna().any():
            raise InputError(f"{where}: row {_first_bad(converted.isna())}: required value is empty")
        out[column.name] = converted
    for column in columns:  # enum defaults for absent optional columns
        if column.name not in out.columns and column.default is not None:
            out[column.name] = column.default
    for earlier, later in TIME_ORDER.get(kind, ()):
        if {earlier, later} <= set(out.columns):
            reversed_ = out[later] < out[earlier]  # NaT compares False: an open incident is fine
            if reversed_.any():
                row = _first_bad(reversed_)
                raise InputError(
                    f"{source}: row {row}: {later} {out[later][reversed_].iloc[0]} is before "
                    f"{earlier} {out[earlier][reversed_].iloc[0]}"
                )
    return out.reset_index(drop=True)


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
    started = datetime.now(UTC)
    with store.transaction():
        loaded = store.upsert(table, frame)
        from releaserisk.ingest.links import fill_commit_times, link_deployment_changes

        if table == "deployments":
            link_deployment_changes(store)
        elif table == "deployment_changes":
            fill_commit_times(store)
        store.record_ingest(f"{kind}:{Path(path).name}", started, {"rows": loaded})
    return loaded
