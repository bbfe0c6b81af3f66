"""Users' files in: one reader (CSV, JSON, JSON lines, Parquet) and one validation layer.

Every file a user gives — deployments, incidents, pull requests, canary samples… — is
read by :func:`read_file` and checked by :func:`validate` against the kind's columns
(:class:`~releaserisk.ingest.schemas.Column`) before anything is written. The contract,
the same for every kind and format (README "Input contract"):

* **Types.** CSV cells are text and are parsed. JSON values must have the column's type:
  text columns take strings (or whole numbers: ids are often exported as numbers), never
  objects, lists, booleans or fractions; Parquet columns must have the column's Arrow
  type (string, integer, timestamp, list of strings, floating): a Parquet file carries
  its types, so a mismatch is a broken export, not something to guess about. Lists and
  structs are refused in every scalar column, key columns included.
* **Required columns and values**, **enums** (with other tools' spellings as aliases).
* **Timestamps** are ISO 8601 with a zone (``Z`` or ``+hh:mm``), or Unix epoch seconds;
  a local time is refused unless ``assume_tz`` names its IANA zone. A local time that
  daylight saving repeats or skips in that zone is refused with that reason: write its
  UTC offset. Epoch seconds are read from :data:`EPOCH_MIN` (1973-03-03) on; another
  number (``86400``, ``-1700000000``) is refused naming that range, an epoch in
  milliseconds with a hint. Other spellings (``01/02/2025``) are refused: they are read
  differently in different countries.
* **Impossible times.** The placeholders exports write for an empty date (Unix time 0,
  the year 9999) and any time later than the ingest's clock plus :data:`FUTURE_TOLERANCE`
  are refused: every timestamp column holds an event that has happened (a deployment
  finished, an incident opened), so a future one is a typo or a placeholder.
* **Duplicate keys** inside one file are refused, naming the key and the rows: which row
  is right cannot be told from the file (a status API lists newest first, an export
  oldest first).
* **Non-finite numbers** in a float column: ``NaN``, ``Inf``, ``+Inf``, ``-Inf``,
  ``Infinity`` in any case (Prometheus's spelling) and an empty cell are read as NaN or
  ±infinity in every format; the canary judge's documented strategy handles them.

A file that cannot be read (bad encoding, nesting deeper than Python parses, not
Parquet) is an :class:`~releaserisk.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa

from releaserisk.errors import InputError
from releaserisk.ingest.schemas import Column

__all__ = [
    "EPOCH_MIN",
    "FORMATS",
    "FUTURE_TOLERANCE",
    "NONFINITE_WORDS",
    "check_zone",
    "parse_instant",
    "read_csv_text",
    "read_file",
    "read_table",
    "validate",
]

#: File suffix -> format; the one list every input path accepts.
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet"}
#: Spellings of non-finite numbers (any case) read as NaN or ±infinity in float columns.
NONFINITE_WORDS = {
    "nan": np.nan, "inf": np.inf, "+inf": np.inf, "-inf": -np.inf,
    "infinity": np.inf, "+infinity": np.inf, "-infinity": -np.inf,
}  # fmt: skip

# a UTC offset or Z after a time of day: "2025-01-02" alone is a date, not a date at UTC-2
_ZONE = re.compile(r"(?:Z|\d{2}:?\d{2}(?::?\d{2}(?:[.,]\d+)?)?\s*[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
#: Whole-number columns are counts and numbers (pull requests, lines): 0 up to the store's INTEGER.
INT_MAX = 2**31 - 1
#: The earliest Unix epoch seconds read as a time (1973-03-03T09:46:40Z, the first 9-digit
#: value); 0 is the placeholder for no date, and smaller or negative numbers (``86400``,
#: ``-1700000000``) are far likelier a duration, an id or a sign error than a date.
EPOCH_MIN = 100_000_000
#: How far past the ingest's clock a timestamp may lie (clocks of the exporting machine and
#: of this one differ): anything later is refused as an event that has not happened yet.
FUTURE_TOLERANCE = pd.Timedelta(days=1)
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_EPOCH_MILLIS = re.compile(r"-?\d{12,14}(?:\.\d+)?")
_ISO_DIGITS = re.compile(r"\d{4}|\d{8}")
_EXPECTED = {
    "str": "text",
    "enum": "text",
    "int": "a whole number",
    "timestamp": "a timestamp",
    "list": "a list of text",
    "float": "a number",
}


# -- reading ---------------------------------------------------------------------------------
def read_file(path: str | os.PathLike[str]) -> pd.DataFrame | dict:
    """Read a user's CSV, JSON (array, object or lines) or Parquet file.

    Parameters
    ----------
    path : path-like
        The suffix chooses the format: ``.csv``, ``.json``/``.jsonl``/``.ndjson``, ``.parquet``.

    Returns
    -------
    DataFrame or dict
        A frame (CSV cells as text, JSON values as parsed, Parquet as typed; its
        ``attrs`` hold ``format`` and, for Parquet, the Arrow ``types``), or the dict
        of a file holding one JSON object (a Prometheus response, or one record).

    Raises
    ------
    InputError
        Missing file, unknown suffix, or a file that cannot be parsed.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{file}: unsupported file type '{suffix}' (use .csv, .json, .jsonl or .parquet)")
    fmt = FORMATS[suffix]
    try:
        if fmt == "csv":
            # utf-8-sig: spreadsheet exports start with a byte-order mark, which would rename the first column
            frame = read_csv_text(file, encoding="utf-8-sig")
            _refuse_other_separators(frame, file)
        elif fmt == "parquet":
            frame = _parquet(file)
        else:
            data = _json(file)
            if isinstance(data, dict):
                return data
            frame = data
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{file} is a directory, not a file") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{file}: the file is empty (not even a header row)") from None
    except RecursionError:
        raise InputError(f"{file}: cannot read: nested too deeply (files hold flat rows)") from None
    except (ValueError, OSError, TypeError, pa.ArrowException) as exc:
        raise InputError(f"{file}: cannot read: {_first_line(exc)}") from None
    frame.attrs["format"] = fmt
    return frame


def read_csv_text(source, **options) -> pd.DataFrame:
    """CSV cells as text (empty cells missing) under the names of the first row.

    A row with more fields than the header is an error naming its line. pandas' own
    header handling takes the first column as the row index when every data row has one
    field more than the header (a trailing comma, an unquoted comma in a value) and
    shifts each value into its neighbour's column without a word; read headerless, such a
    row is the parser error it is. A name given twice is an error too (pandas would
    rename the second ``name.1``).

    Parameters
    ----------
    source : path-like or file-like
        The CSV text.
    **options
        Passed to :func:`pandas.read_csv` (e.g. ``encoding``).

    Returns
    -------
    DataFrame
        One column per header name, text values, ``NaN`` for empty cells.

    Raises
    ------
    pandas.errors.ParserError
        A row with more fields than the header ("Expected 3 fields in line 2, saw 4").
    pandas.errors.EmptyDataError
        No header row.
    ValueError
        A header name given twice.
    """
    rows = pd.read_csv(source, header=None, dtype=str, keep_default_na=False, na_values=[""], **options)
    names = [f"Unnamed: {i}" if pd.isna(name) else str(name) for i, name in enumerate(rows.iloc[0])]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"the header names column '{twice[0]}' more than once")
    frame = rows.iloc[1:].reset_index(drop=True)
    frame.columns = names
    return frame


def _refuse_other_separators(frame: pd.DataFrame, file: Path) -> None:
    """A header that is one column holding ';' or tabs: a spreadsheet's other CSV dialect, said so."""
    if len(frame.columns) == 1:
        name = str(frame.columns[0])
        for separator, called in ((";", "semicolons"), ("\t", "tabs")):
            if separator in name:
                raise InputError(
                    f"{file}: the header '{name[:60]}' is one column holding {called}: this file separates its "
                    "fields with them; save it as comma-separated CSV (the format's own separator)"
                )


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """:func:`read_file` for files of rows: a single JSON object is one row.

    Parameters
    ----------
    path : path-like
        CSV, JSON/JSON lines or Parquet.

    Returns
    -------
    DataFrame
        As :func:`read_file`.

    Raises
    ------
    InputError
        As :func:`read_file`.
    """
    data = read_file(path)
    if isinstance(data, dict):
        data = _records([data], Path(path))
    return data


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _parquet(file: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(file)
    frame = table.to_pandas()
    frame.attrs["types"] = {field.name: field.type for field in table.schema}
    return frame


def _json(file: Path) -> pd.DataFrame | dict:
    text = file.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):
            raise
        data = None
    if data is None and text.strip():  # JSON lines: one object per line
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number}: {exc.msg}") from None
        data = records
    if isinstance(data, dict):
        return data
    if not isinstance(data, list):
        raise ValueError("expected an array of objects, one object per line, or a Prometheus response")
    return _records(data, file)


def _records(records: list, file: Path) -> pd.DataFrame:
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InputError(f"{file}: row {number} is {_describe(record)}, not an object of named values")
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = frame.astype(object) if len(frame.columns) else frame
    frame.attrs["format"] = "json"
    return frame


# -- types ---------------------------------------------------------------------------------
def _describe(value: Any) -> str:
    """A short, safe description of an unexpected value (never its whole repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple | np.ndarray):
        return "a list"
    if isinstance(value, bool | np.bool_):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float | np.number):
        return f"the number {value!r}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…'"


def _json_cell_ok(value: Any, kind: str) -> bool:
    if isinstance(value, np.generic):  # a program's frame: numpy scalars
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value) and kind != "float"):
        return True
    if isinstance(value, bool):
        return False
    if kind in ("str", "enum"):
        return isinstance(value, str | int)
    if kind == "int":
        return isinstance(value, str | int) or (isinstance(value, float) and value.is_integer())
    if kind == "timestamp":
        return isinstance(value, str | int | float | date)
    if kind == "float":
        return isinstance(value, str | int | float)
    if kind == "list":
        return isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value)
        )
    return True


def _arrow_ok(kind: str, type_: pa.DataType) -> bool:
    if pa.types.is_null(type_):
        return True
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    text = pa.types.is_string(type_) or pa.types.is_large_string(type_)
    if kind in ("str", "enum"):
        return text
    if kind == "int":
        return pa.types.is_integer(type_)
    if kind == "timestamp":
        return pa.types.is_timestamp(type_) or pa.types.is_date(type_)
    if kind == "float":
        return pa.types.is_floating(type_) or pa.types.is_integer(type_) or pa.types.is_decimal(type_)
    if kind == "list":
        listed = pa.types.is_list(type_) or pa.types.is_large_list(type_)
        return text or (listed and (pa.types.is_string(type_.value_type) or pa.types.is_null(type_.value_type)))
    return True


def _check_types(values: pd.Series, column: Column, fmt: str, types: dict, where: str) -> None:
    """Refuse values of the wrong type for the column (nothing to check in CSV: all text)."""
    expected = _EXPECTED.get(column.kind, column.kind)
    if fmt == "parquet":
        type_ = types.get(column.name)
        if type_ is not None and not _arrow_ok(column.kind, type_):
            raise InputError(f"{where}: Parquet type {type_} where {expected} is expected; fix the export's schema")
        return
    if fmt == "json":
        bad = ~values.map(lambda v: _json_cell_ok(v, column.kind)).astype(bool)
        if bad.any():
            row = _first_bad(bad)
            raise InputError(f"{where}: row {row}: {_describe(values[bad].iloc[0])} where {expected} is expected")


# -- values ----------------------------------------------------------------------------------
def _first_bad(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


_shown = _describe


def check_zone(assume_tz: str | None) -> None:
    """Refuse an unknown IANA time zone name.

    Parameters
    ----------
    assume_tz : str or None
        The zone given for local times (None: nothing to check).

    Raises
    ------
    InputError
        The name is not in the IANA time zone database.
    """
    if assume_tz:
        try:
            ZoneInfo(assume_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone '{assume_tz}' (use an IANA name such as Europe/Berlin)") from None


def _localize(local: pd.Series, zone: str, shown: pd.Series, where: str) -> pd.Series:
    """Local wall-clock times in ``zone`` → UTC; a time daylight saving repeats or skips is named."""
    out = local.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    failed = local.notna() & out.isna()
    if failed.any():
        stamp = pd.Timestamp(local[failed].iloc[0])
        row, given = _first_bad(failed), _shown(shown[failed].iloc[0])
        try:
            first = stamp.tz_localize(zone, ambiguous=True).isoformat()
            second = stamp.tz_localize(zone, ambiguous=False).isoformat()
        except Exception:  # pytz's or pandas' NonExistentTimeError, depending on the version
            later = stamp.tz_localize(zone, nonexistent="shift_forward").isoformat()
            raise InputError(
                f"{where}: row {row}: {given} does not exist in {zone} (daylight saving time skips that hour); "
                f"write the time with its UTC offset, e.g. {later}"
            ) from None
        raise InputError(
            f"{where}: row {row}: {given} is ambiguous in {zone} (daylight saving time repeats that hour); "
            f"write the time with its UTC offset: {first} or {second}"
        )
    return out.dt.tz_convert("UTC")


def _timestamps(values: pd.Series, where: str, assume_tz: str | None, now: pd.Timestamp) -> pd.Series:
    present = values.notna()
    if pd.api.types.is_datetime64_any_dtype(values):  # a typed (Parquet) column
        if getattr(values.dt, "tz", None) is None:
            if not assume_tz:
                raise InputError(f"{where}: timestamps have no time zone; pass --assume-tz ZONE")
            return _refuse_impossible(_localize(values, assume_tz, values, where), values, where, now)
        return _refuse_impossible(values.dt.tz_convert("UTC"), values, where, now)
    values = values.map(lambda v: v.isoformat() if isinstance(v, date) else v)  # Parquet dates, datetimes
    text = values.astype("string").str.strip()
    # a year (2024) or an ISO 8601 basic date (20240501) is a date, not a number of seconds
    digits = text.str.fullmatch(_ISO_DIGITS).fillna(False).astype(bool)
    iso_date = digits & pd.to_datetime(text.where(digits), errors="coerce", format="ISO8601").notna()
    number = text.str.fullmatch(_NUMBER).fillna(False).astype(bool) & ~iso_date
    millis = number & text.str.fullmatch(_EPOCH_MILLIS).fillna(False).astype(bool)
    if millis.any():
        raise InputError(
            f"{where}: row {_first_bad(millis)}: {_shown(values[millis].iloc[0])} looks like Unix epoch "
            "milliseconds; give epoch seconds (divide by 1000) or ISO 8601 (2024-05-01T12:00:00Z)"
        )
    seconds = pd.to_numeric(text.where(number), errors="coerce").astype(float)
    # 0 passes on to be refused as the placeholder it is; beyond the clock, as a future time
    numeric = number & ((seconds == 0) | ((seconds >= EPOCH_MIN) & (seconds < 1e12)))
    outside = number & ~numeric
    if outside.any():
        raise InputError(
            f"{where}: row {_first_bad(outside)}: {_shown(values[outside].iloc[0])} is a number outside the "
            f"Unix epoch seconds accepted, {EPOCH_MIN} (1973-03-03T09:46:40Z) up to this ingest's clock; "
            "negative and shorter numbers are refused: write earlier times in ISO 8601 (e.g. 1972-05-01T12:00:00Z)"
        )
    zoned = text.str.contains(_ZONE, regex=True).fillna(False).astype(bool) & ~number
    naive = present & ~number & ~zoned
    # text that is no date at all is reported as such, not as lacking a time zone
    local = pd.to_datetime(text.where(naive), errors="coerce", format="ISO8601")
    unreadable = naive & local.isna()
    if unreadable.any():
        raise InputError(
            f"{where}: row {_first_bad(unreadable)}: {_shown(values[unreadable].iloc[0])} is not a valid timestamp "
            f"(write ISO 8601, e.g. 2024-05-01T12:00:00Z, or Unix epoch seconds from {EPOCH_MIN})"
        )
    if naive.any() and not assume_tz:
        raise InputError(
            f"{where}: row {_first_bad(naive)}: timestamp {_shown(values[naive].iloc[0])} has no time zone; "
            "add one (e.g. 2024-05-01T12:00:00Z) or pass --assume-tz ZONE"
        )
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if numeric.any():
        out[numeric] = pd.to_datetime(seconds[numeric], unit="s", utc=True).dt.as_unit("us")
    if zoned.any():  # microseconds, as the store keeps them: nanoseconds are cut
        out[zoned] = pd.to_datetime(text[zoned], utc=True, errors="coerce", format="ISO8601").dt.as_unit("us")
    if naive.any():
        out[naive] = _localize(local[naive], assume_tz, values[naive], where).dt.as_unit("us")
    bad = present & out.isna()
    if bad.any():
        raise InputError(
            f"{where}: row {_first_bad(bad)}: {_shown(values[bad].iloc[0])} is not a valid timestamp "
            f"(write ISO 8601, e.g. 2024-05-01T12:00:00Z, or Unix epoch seconds from {EPOCH_MIN})"
        )
    return _refuse_impossible(out, values, where, now)


def _refuse_impossible(out: pd.Series, values: pd.Series, where: str, now: pd.Timestamp) -> pd.Series:
    """Refuse the placeholders exports write for an empty date, and times that have not happened yet.

    A deployment "finished" at 1970-01-01T00:00:00Z loads as real and stretches every window
    back 56 years (deployment frequency 0.12 → 0.03 a week); no event in these tables happened
    at that instant or in the year 9999, so both are the placeholder they look like. Every
    timestamp column holds an event that has happened, so one later than ``now`` (the ingest's
    clock) plus :data:`FUTURE_TOLERANCE` is a typo or a placeholder too: an incident opened in
    2099 became a 634,663 h recovery, a deployment in 2099 stretched the default window there.
    """
    placeholder = (out == pd.Timestamp(0, tz="UTC")) | (out.dt.year >= 9999)
    if placeholder.any():
        raise InputError(
            f"{where}: row {_first_bad(placeholder)}: {_shown(values[placeholder].iloc[0])} is "
            f"{out[placeholder].iloc[0].isoformat()}, the placeholder exports write for an empty date "
            "(Unix time 0, or the year 9999); leave the cell empty when there is no date"
        )
    future = out > now + FUTURE_TOLERANCE
    if future.any():
        raise InputError(
            f"{where}: row {_first_bad(future)}: {_shown(values[future].iloc[0])} is "
            f"{out[future].iloc[0].isoformat()}, later than this ingest's clock ({now:%Y-%m-%dT%H:%MZ}) plus "
            f"{FUTURE_TOLERANCE.days} day: an event that has not happened yet is a typo or a placeholder; correct it"
        )
    return out


def _floats(values: pd.Series, where: str) -> pd.Series:
    is_word = values.map(lambda v: isinstance(v, str) and v.strip().lower() in NONFINITE_WORDS).astype(bool)
    words = values[is_word].map(lambda v: NONFINITE_WORDS[v.strip().lower()]).astype(float)
    numbers = pd.to_numeric(values.where(~is_word), errors="coerce").astype(float)
    numbers[is_word] = words
    bad = values.notna() & numbers.isna() & ~is_word
    if bad.any():
        raise InputError(f"{where}: row {_first_bad(bad)}: {_shown(values[bad].iloc[0])} is not a number")
    return numbers


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(v, str | int) for v in parsed):
            raise InputError(f'{_shown(value)} is not a list of text (write a;b or ["a", "b"])')
        return [str(v) for v in parsed]
    return [part.strip() for part in text.split(";") if part.strip()]


def _column(values: pd.Series, column: Column, where: str, assume_tz: str | None, now: pd.Timestamp) -> pd.Series:
    if column.kind == "timestamp":
        return _timestamps(values, where, assume_tz, now)
    if column.kind == "float":
        return _floats(values, where)
    if column.kind == "int":
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        bad = values.notna() & (numbers.isna() | (numbers % 1 != 0))
        if bad.any():
            raise InputError(f"{where}: row {_first_bad(bad)}: {_shown(values[bad].iloc[0])} is not a whole number")
        outside = values.notna() & ((numbers < 0) | (numbers > INT_MAX))
        if outside.any():
            shown = _shown(values[outside].iloc[0])
            raise InputError(f"{where}: row {_first_bad(outside)}: {shown} is not between 0 and {INT_MAX:,}")
        return numbers.astype("Int64")
    if column.kind == "list":
        try:
            return values.map(_as_list)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    text = values.map(lambda v: str(v).strip() if v is not None else None).astype(object)
    if column.kind == "enum":
        aliases = dict(column.aliases)
        text = text.map(lambda v: aliases.get(v.lower(), v.lower()) if isinstance(v, str) else v)
        if column.default is not None:
            text = text.fillna(column.default)
        bad = text.notna() & ~text.isin(column.allowed)
        if bad.any():
            raise InputError(
                f"{where}: row {_first_bad(bad)}: {_shown(text[bad].iloc[0])} is not one of {', '.join(column.allowed)}"
            )
    elif column.default is not None:  # a required column whose value may be blank (a deleted account: "")
        text = text.fillna(column.default)
    return text


def _blank_to_none(values: pd.Series) -> pd.Series:
    """Empty or all-space text and missing values as None; other values unchanged."""

    def blank(v: Any) -> bool:
        if v is None or v is pd.NaT or v is pd.NA:
            return True
        if isinstance(v, float):
            return bool(np.isnan(v))
        return isinstance(v, str) and not v.strip()

    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return values.astype(object).where(~values.map(blank).astype(bool), None)


def _refuse_duplicates(frame: pd.DataFrame, key: tuple[str, ...], source: str) -> None:
    key = tuple(k for k in key if k in frame.columns)
    if not key:
        return
    repeated = frame.duplicated(list(key), keep=False)
    if not repeated.any():
        return
    rows = frame[repeated]
    first = rows.iloc[0][list(key)]
    same = (frame[list(key)] == first).all(axis=1) & repeated
    numbers = ", ".join(str(n + 1) for n in np.flatnonzero(same.to_numpy())[:5])
    shown = ", ".join(f"{k}={_shown(v.isoformat() if isinstance(v, pd.Timestamp) else v)}" for k, v in first.items())
    groups = rows.groupby(list(key), dropna=False).ngroups
    raise InputError(
        f"{source}: {groups} key(s) appear more than once ({len(rows)} rows), e.g. {shown} on rows {numbers}; "
        "which row is right cannot be told from the file: keep one row per key"
    )


def validate(
    frame: pd.DataFrame,
    columns: tuple[Column, ...],
    source: str,
    *,
    assume_tz: str | None = None,
    key: tuple[str, ...] = (),
    time_order: tuple[tuple[str, str], ...] = (),
    now: datetime | None = None,
) -> pd.DataFrame:
    """Check and convert a frame from :func:`read_file` to the documented columns.

    Parameters
    ----------
    frame : DataFrame
        Raw rows; ``attrs["format"]`` (csv, json, parquet) selects the type rules, a
        frame without it (given by a program) is treated like JSON.
    columns : tuple of Column
        The kind's documented columns; others are ignored.
    source : str
        The file's name, used in every message.
    assume_tz : str, optional
        IANA zone of timestamps written without one.
    key : tuple of str
        Columns that identify a row; a key repeated inside the file is refused.
    time_order : tuple of (str, str)
        Timestamp pairs a row must not reverse (started before finished).
    now : datetime, optional
        The ingest's clock (default: the current time, UTC): a timestamp later than it plus
        :data:`FUTURE_TOLERANCE` is refused.

    Returns
    -------
    DataFrame
        One column per documented column present (timestamps UTC, ints ``Int64``,
        lists of str, floats), enum defaults filled, index 0..n-1.

    Raises
    ------
    InputError
        Naming the file, and the column or row (1-based), of the first problem.
    """
    check_zone(assume_tz)
    clock = pd.Timestamp(now if now is not None else datetime.now(UTC))
    clock = clock.tz_localize(UTC) if clock.tzinfo is None else clock.tz_convert(UTC)
    fmt = frame.attrs.get("format", "json")
    types = frame.attrs.get("types", {})
    missing = [c.name for c in columns if c.required and c.name not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {', '.join(missing)}")
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    try:
        for column in columns:
            if column.name not in frame.columns:
                continue
            where = f"{source}: column {column.name}"
            values = frame[column.name]
            if isinstance(values, pd.DataFrame):
                raise InputError(f"{source}: column {column.name} appears more than once")
            _check_types(values, column, fmt, types, where)
            converted = _column(_blank_to_none(values), column, where, assume_tz, clock)
            if column.required and column.kind != "float" and converted.isna().any():
                raise InputError(f"{where}: row {_first_bad(converted.isna())}: required value is empty")
            out[column.name] = converted
    except RecursionError:
        raise InputError(f"{source}: values nested too deeply (files hold flat rows)") from None
    for column in columns:  # enum defaults for absent optional columns
        if column.name not in out.columns and column.default is not None:
            out[column.name] = column.default
    for earlier, later in time_order:
        if {earlier, later} <= set(out.columns):
            reversed_ = out[later] < out[earlier]  # NaT compares False: an open incident is fine
            if reversed_.any():
                row = _first_bad(reversed_)
                raise InputError(
                    f"{source}: row {row}: {later} {out[later][reversed_].iloc[0]} is before "
                    f"{earlier} {out[earlier][reversed_].iloc[0]}"
                )
    _refuse_duplicates(out, key, source)
    return out


def parse_instant(value: str | datetime | date | None, what: str = "date") -> pd.Timestamp | None:
    """An ISO 8601 date or date-time given on the command line or to an analysis, in UTC.

    Only ISO 8601 is read: ``01/02/2025`` is 1 February in most of the world and
    2 January in the US, so it is refused rather than guessed. A date or a date-time
    without a zone is read as UTC (stated in the README).

    Parameters
    ----------
    value : str, datetime, date or None
        ``2025-02-01``, ``2025-02-01T10:00``, ``2025-02-01T10:00:00+01:00``, a datetime…
    what : str
        What the value is (``--since``), for the message.

    Returns
    -------
    Timestamp or None
        Timezone-aware, UTC; None for None.

    Raises
    ------
    InputError
        The text is not ISO 8601.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed: datetime | date = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(
                f"{what} {value!r} is not a date in ISO 8601: write YYYY-MM-DD (e.g. 2025-01-31) "
                "or YYYY-MM-DDTHH:MM[:SS][±hh:mm]"
            ) from None
        value = parsed
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
