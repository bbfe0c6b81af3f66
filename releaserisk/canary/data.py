"""Canary inputs → one long DataFrame: ``metric, arm, ts, value``.

Accepted sources:

* a pandas DataFrame, CSV, Parquet or JSON (array of objects or JSON lines) with the
  columns ``metric, arm, value`` (``ts`` optional); ``arm`` may be omitted when the
  whole file is one arm (pass ``arm=``);
* event counts: the same with ``count`` instead of ``value`` (errors per interval);
* a Prometheus ``query_range`` response (``resultType: matrix``); the metric name is
  ``__name__`` (or ``metric=``) and the arm comes from the label ``arm_label``
  (default ``arm``) or ``arm=``. Prometheus writes NaN as the string "NaN"; those
  samples are kept as NaN for the metric's ``nan_strategy`` to handle.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from releaserisk.choices import CANARY_ARMS
from releaserisk.errors import InputError

__all__ = ["analysis_samples", "load_samples", "one_analysis", "parse_prometheus", "store_samples"]

ARMS = CANARY_ARMS


def parse_prometheus(
    payload: dict[str, Any], *, arm: str | None = None, arm_label: str = "arm", metric: str | None = None
) -> pd.DataFrame:
    """Samples from a Prometheus ``query_range`` JSON response.

    Raises
    ------
    InputError
        Not a successful matrix response, or a series without an arm.
    """
    if payload.get("status") != "success":
        raise InputError(f"Prometheus response status is {payload.get('status')!r}: {payload.get('error', '')}")
    data = payload.get("data", {})
    if data.get("resultType") != "matrix":
        raise InputError(f"expected a Prometheus matrix (query_range) result, got {data.get('resultType')!r}")
    frames = []
    for series in data.get("result", []):
        labels = series.get("metric", {})
        series_arm = arm or labels.get(arm_label)
        if series_arm is None:
            raise InputError(f"Prometheus series {labels} has no '{arm_label}' label; pass the arm explicitly")
        values = series.get("values", [])
        if not values:
            continue
        stamps, raw = zip(*values, strict=True)
        frames.append(
            pd.DataFrame(
                {
                    "metric": metric or labels.get("__name__", "value"),
                    "arm": series_arm,
                    "ts": pd.to_datetime(np.asarray(stamps, dtype=float), unit="s", utc=True),
                    "value": pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce"),
                }
            )
        )
    if not frames:
        return pd.DataFrame({"metric": [], "arm": [], "ts": pd.to_datetime([], utc=True), "value": []})
    return pd.concat(frames, ignore_index=True)


def _read_file(path: Path) -> pd.DataFrame | dict:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".json", ".jsonl", ".ndjson"):
            text = path.read_text(encoding="utf-8")
            stripped = text.lstrip()
            if stripped.startswith("{") and "\n{" not in stripped.rstrip():
                return json.loads(text)
            if stripped.startswith("["):
                return pd.DataFrame(json.loads(text))
            return pd.read_json(path, lines=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    raise InputError(f"{path}: unsupported file type '{suffix}' (use .csv, .parquet or .json)")


def _validate(frame: pd.DataFrame, source: str, arm: str | None) -> pd.DataFrame:
    frame = frame.copy()
    if arm is not None:
        frame["arm"] = arm
    value_column = "count" if "count" in frame.columns and "value" not in frame.columns else "value"
    missing = [c for c in ("metric", "arm", value_column) if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} (need metric, arm, value or count)")
    bad_arm = ~frame["arm"].isin(ARMS)
    if bad_arm.any():
        row = int(np.flatnonzero(bad_arm.to_numpy())[0])
        raise InputError(f"{source}: row {row + 1}: arm {frame['arm'].iloc[row]!r} is not one of {', '.join(ARMS)}")
    numbers = pd.to_numeric(frame[value_column], errors="coerce")
    bad_value = numbers.isna() & frame[value_column].notna() & ~frame[value_column].astype(str).str.lower().eq("nan")
    if bad_value.any():
        row = int(np.flatnonzero(bad_value.to_numpy())[0])
        raise InputError(f"{source}: row {row + 1}: {value_column} {frame[value_column].iloc[row]!r} is not a number")
    frame["value"] = numbers.astype(float)
    frame["kind"] = "counts" if value_column == "count" else "samples"
    frame["metric"] = frame["metric"].astype(str)
    if "ts" in frame.columns:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, errors="coerce")
    else:
        frame["ts"] = pd.NaT
    keep = ["analysis_id"] if "analysis_id" in frame.columns else []  # files holding several analyses
    return frame[[*keep, "metric", "arm", "ts", "value", "kind"]]


def one_analysis(samples: pd.DataFrame, analysis_id: str | None = None) -> pd.DataFrame:
    """The samples of one canary analysis, from samples that may hold several.

    A file exported for many deployments carries an ``analysis_id`` column; judging it
    whole would compare a mix of unrelated canaries and baselines.

    Parameters
    ----------
    samples : DataFrame
        From :func:`load_samples`, with or without ``analysis_id``.
    analysis_id : str, optional
        The analysis to keep; needed when the samples hold more than one.

    Returns
    -------
    DataFrame
        The chosen analysis's rows, without the ``analysis_id`` column.

    Raises
    ------
    InputError
        Several analyses and none chosen, or the chosen one has no samples.
    """
    if "analysis_id" not in samples.columns:
        if analysis_id is not None:
            raise InputError(f"the samples have no analysis_id column to find analysis {analysis_id!r} in")
        return samples
    ids = sorted(samples["analysis_id"].dropna().astype(str).unique())
    held = f"{len(ids)} canary analyses ({', '.join(ids[:3])}{f' and {len(ids) - 3} more' if len(ids) > 3 else ''})"
    if analysis_id is None:
        if len(ids) > 1:
            raise InputError(f"the samples hold {held}; choose one (--analysis ID)")
        return samples.drop(columns="analysis_id")
    chosen = samples[samples["analysis_id"].astype(str) == analysis_id]
    if chosen.empty:
        raise InputError(f"no samples of analysis {analysis_id!r}; the samples hold {held}")
    return chosen.drop(columns="analysis_id").reset_index(drop=True)


def load_samples(
    source: str | os.PathLike[str] | pd.DataFrame | dict,
    *,
    arm: str | None = None,
    arm_label: str = "arm",
    metric: str | None = None,
) -> pd.DataFrame:
    """Load canary samples into the long format the judges take.

    Parameters
    ----------
    source : path-like, DataFrame or dict
        A file (CSV, Parquet, JSON/JSON lines, Prometheus JSON), a frame, or a
        parsed Prometheus response.
    arm : {"baseline", "canary"}, optional
        Set the arm of every row (one file per arm).
    arm_label : str
        Prometheus label that names the arm.
    metric : str, optional
        Metric name for Prometheus series without ``__name__``.

    Returns
    -------
    DataFrame
        Columns ``metric, arm, ts, value, kind`` (kind: samples or counts).

    Raises
    ------
    InputError
        Missing columns, unknown arms, non-numeric values, unreadable files.
    """
    if arm is not None and arm not in ARMS:
        raise InputError(f"arm must be one of {', '.join(ARMS)}; got {arm!r}")
    name = "samples"
    if isinstance(source, pd.DataFrame):
        data: pd.DataFrame | dict = source
    elif isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        name = str(path)
        data = _read_file(path)
    if isinstance(data, dict):
        try:
            data = parse_prometheus(data, arm=arm, arm_label=arm_label, metric=metric)
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
    return _validate(data, name, arm)


def store_samples(store, samples: pd.DataFrame, analysis_id: str | None = None) -> int:
    """Upsert samples from :func:`load_samples` into ``metric_samples``.

    Parameters
    ----------
    store : Store
    samples : DataFrame
        With an ``analysis_id`` column (a file of many analyses), or give ``analysis_id``.
    analysis_id : str, optional
        The id of every row; for samples with an ``analysis_id`` column, the one
        analysis to store.

    Returns
    -------
    int
        Rows stored. Re-storing the same samples changes nothing: repeated values at
        one timestamp are told apart by their order (``sample_index``).
    """
    if analysis_id is not None:
        samples = one_analysis(samples, analysis_id) if "analysis_id" in samples.columns else samples
        samples = samples.assign(analysis_id=analysis_id)
    if "analysis_id" not in samples.columns:
        raise InputError("samples need an analysis_id column or an analysis id (--analysis ID)")
    rows = samples.drop(columns="kind", errors="ignore")
    rows["ts"] = rows["ts"].fillna(pd.Timestamp(0, tz="UTC"))
    rows["sample_index"] = rows.groupby(["analysis_id", "metric", "arm", "ts"]).cumcount()
    started = datetime.now(UTC)
    analyses = rows["analysis_id"].unique()
    with store.transaction():
        loaded = store.upsert("metric_samples", rows)
        store.record_ingest(f"metrics:{analyses[0] if len(analyses) == 1 else 'several'}", started, {"rows": loaded})
    return loaded


def analysis_samples(store, analysis_id: str | None = None) -> pd.DataFrame:
    """Samples of one analysis stored by ``ingest metrics`` (default: the latest analysis).

    Parameters
    ----------
    store : Store
    analysis_id : str, optional
        The analysis to read; default: the one with the newest sample.

    Returns
    -------
    DataFrame
        ``metric, arm, ts, value`` in time order, ready for :func:`releaserisk.judge`.

    Raises
    ------
    InputError
        No analysis with that id, or no samples at all.
    """
    if analysis_id is None:
        row = store.execute(
            "SELECT analysis_id FROM metric_samples GROUP BY 1 ORDER BY max(ts) DESC, 1 DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise InputError("the store has no canary samples; run 'releaserisk ingest metrics FILE --analysis ID'")
        analysis_id = row[0]
    frame = store.query(
        "SELECT metric, arm, ts, value FROM metric_samples WHERE analysis_id = ? ORDER BY ts, sample_index",
        [analysis_id],
    )
    if frame.empty:
        raise InputError(f"no samples for analysis '{analysis_id}'")
    return frame.assign(kind="samples")
