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

import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from releaserisk.choices import CANARY_ARMS
from releaserisk.errors import InputError
from releaserisk.ingest.schemas import Column
from releaserisk.inputs import NONFINITE_WORDS, read_file, validate

__all__ = [
    "SAMPLE_COLUMNS",
    "analysis_samples",
    "factorize_runs",
    "load_history",
    "load_samples",
    "one_analysis",
    "parse_prometheus",
    "store_samples",
]

ARMS = CANARY_ARMS

#: The documented columns of a samples file, checked by the one validation layer
#: (:func:`releaserisk.inputs.validate`) as every ingest kind is. ``value`` or ``count``
#: must be present (see :func:`load_samples`); either may hold NaN or ±Inf.
SAMPLE_COLUMNS = (
    Column("metric", required=True),
    Column("arm", "enum", True, ARMS),
    Column("ts", "timestamp"),
    Column("value", "float"),
    Column("count", "float"),
    Column("analysis_id"),
)


def _prometheus_shape(condition: bool, what: str) -> None:
    if not condition:
        raise InputError(f"not a Prometheus query_range response: {what}")


def _prometheus_number(text: Any, what: str) -> float:
    """A sample value or timestamp: Prometheus writes values as strings, "NaN" and "+Inf" included."""
    if isinstance(text, str) and text.strip().lower() in NONFINITE_WORDS:
        return float(NONFINITE_WORDS[text.strip().lower()])
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise InputError(f"Prometheus {what} is {type(text).__name__}, not a number")
    try:
        return float(text)
    except ValueError:
        raise InputError(f"Prometheus {what} {text!r:.60} is not a number") from None


def _series_frame(series: Any, number: int, arm: str | None, arm_label: str, metric: str | None) -> pd.DataFrame:
    _prometheus_shape(isinstance(series, dict), f"result {number} is not an object")
    labels = series.get("metric", {})
    _prometheus_shape(isinstance(labels, dict), f"result {number}'s metric is not an object of labels")
    series_arm = arm or labels.get(arm_label)
    if series_arm is None:
        raise InputError(f"Prometheus series {labels} has no '{arm_label}' label; pass the arm explicitly")
    values = series.get("values", [])
    _prometheus_shape(isinstance(values, list), f"result {number}'s values is not a list")
    for pair in values:
        _prometheus_shape(
            isinstance(pair, list) and len(pair) == 2, f"result {number} has a value that is not a [time, value] pair"
        )
    stamps = [_prometheus_number(t, "timestamp") for t, _ in values]
    if not all(math.isfinite(t) for t in stamps):
        raise InputError(f"Prometheus result {number} has a timestamp that is not finite")
    return pd.DataFrame(
        {
            "metric": str(metric or labels.get("__name__", "value")),
            "arm": series_arm,
            "ts": pd.to_datetime(pd.Series(stamps, dtype=float), unit="s", utc=True),
            "value": pd.Series([_prometheus_number(v, "sample value") for _, v in values], dtype=float),
        }
    )


def parse_prometheus(
    payload: dict[str, Any], *, arm: str | None = None, arm_label: str = "arm", metric: str | None = None
) -> pd.DataFrame:
    """Samples from a Prometheus ``query_range`` JSON response.

    The response format is Prometheus's HTTP API documentation ("Range queries",
    ``resultType: matrix``): ``values`` is a list of ``[unix_seconds, "value"]`` pairs.

    Parameters
    ----------
    payload : dict
        The parsed response.
    arm : {"baseline", "canary"}, optional
        The arm of every series; default the label ``arm_label``.
    arm_label : str
        The label naming the arm.
    metric : str, optional
        The metric name; default the series' ``__name__``.

    Returns
    -------
    DataFrame
        ``metric, arm, ts, value``; NaN and ±Inf samples kept as such.

    Raises
    ------
    InputError
        Not a successful matrix response, a malformed series or pair, or a series without an arm.
    """
    _prometheus_shape(isinstance(payload, dict), "not a JSON object")
    if payload.get("status") != "success":
        status, error = repr(payload.get("status"))[:40], str(payload.get("error", ""))[:200]
        raise InputError(f"Prometheus response status is {status}: {error}")
    data = payload.get("data", {})
    _prometheus_shape(isinstance(data, dict), "data is not an object")
    if data.get("resultType") != "matrix":
        raise InputError(f"expected a Prometheus matrix (query_range) result, got {str(data.get('resultType'))[:40]!r}")
    result = data.get("result", [])
    _prometheus_shape(isinstance(result, list), "data.result is not a list")
    frames = [_series_frame(series, n, arm, arm_label, metric) for n, series in enumerate(result, start=1)]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame({"metric": [], "arm": [], "ts": pd.to_datetime([], utc=True), "value": []})
    return pd.concat(frames, ignore_index=True)


def _validate(frame: pd.DataFrame, source: str, arm: str | None, assume_tz: str | None) -> pd.DataFrame:
    frame = frame.copy()
    if arm is not None:
        frame["arm"] = arm
    value_column = "count" if "count" in frame.columns and "value" not in frame.columns else "value"
    missing = [c for c in ("metric", "arm", value_column) if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} (need metric, arm, value or count)")
    if "ts" in frame.columns and pd.api.types.is_datetime64_any_dtype(frame["ts"]) and frame["ts"].dt.tz is not None:
        frame["ts"] = frame["ts"].dt.tz_convert("UTC")  # parsed already (Prometheus, a program's frame)
    checked = validate(frame, SAMPLE_COLUMNS, source, assume_tz=assume_tz)
    if value_column == "count":  # events per interval: a negative count is no count (every judge refuses it alike)
        negative = checked["count"] < 0
        if negative.any():
            row = int(negative.to_numpy().nonzero()[0][0]) + 1
            raise InputError(f"{source}: column count: row {row}: {checked['count'][negative].iloc[0]:g} is negative")
    checked["value"] = checked[value_column].astype(float)
    checked["kind"] = "counts" if value_column == "count" else "samples"
    if "ts" not in checked.columns:
        checked["ts"] = pd.Series(pd.NaT, index=checked.index, dtype="datetime64[us, UTC]")
    keep = ["analysis_id"] if "analysis_id" in checked.columns else []  # files holding several analyses
    return checked[[*keep, "metric", "arm", "ts", "value", "kind"]]


def factorize_runs(labels: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize`` for labels stored in runs (a metric's rows together), in one pass.

    Samples arrive grouped — every row of a metric (and of an arm) together — so the
    labels change only at run boundaries: one vectorised comparison of neighbours
    finds the runs and only the run heads are factorised (hashing two million
    strings costs ten times as much). Any order is correct, grouped is only fast.

    Parameters
    ----------
    labels : Series
        Labels without missing values (strings, categories, numbers).

    Returns
    -------
    tuple of ndarray and Index
        Integer codes in first-appearance order and the distinct labels, as
        ``pd.factorize(labels)`` returns them.
    """
    n = len(labels)
    if n == 0 or labels.isna().any():
        return pd.factorize(labels)
    values = labels.array
    try:
        changes = np.asarray(values[1:] != values[:-1], dtype=bool)
    except (TypeError, ValueError):  # labels that do not compare elementwise
        return pd.factorize(labels)
    heads = np.flatnonzero(np.r_[True, changes])
    head_codes, uniques = pd.factorize(labels.iloc[heads])
    lengths = np.diff(np.r_[heads, n])
    return np.repeat(head_codes, lengths), uniques


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
    assume_tz: str | None = None,
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
    assume_tz : str, optional
        IANA zone of timestamps written without one (refused otherwise).

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
        data = read_file(path)
    if isinstance(data, dict) and not {"status", "data"} & set(data):  # one JSON line: one sample
        data = pd.DataFrame([data], dtype=object)
    if isinstance(data, dict):
        try:
            data = parse_prometheus(data, arm=arm, arm_label=arm_label, metric=metric)
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
    return _validate(data, name, arm, assume_tz)


def load_history(source: str | os.PathLike[str] | pd.DataFrame) -> pd.DataFrame:
    """A metric history for the robust judge: samples with or without an ``arm`` column.

    Parameters
    ----------
    source : path-like or DataFrame
        ``metric, ts, value`` (``arm`` optional: without it each metric is one series,
        loaded as the baseline arm), in any format :func:`load_samples` reads.

    Returns
    -------
    DataFrame
        As :func:`load_samples`.

    Raises
    ------
    InputError
        As :func:`load_samples`.
    """
    name = "history" if isinstance(source, pd.DataFrame) else str(source)
    data = source if isinstance(source, pd.DataFrame) else read_file(Path(source))
    if isinstance(data, dict):  # a Prometheus response: one series per metric
        return load_samples(data, arm="baseline")
    return _validate(data, name, None if "arm" in data.columns else "baseline", None)


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
