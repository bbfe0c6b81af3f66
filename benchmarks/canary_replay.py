"""Canary verdicts replayed on real operational metric series (Numenta Anomaly Benchmark).

Run:  python benchmarks/canary_replay.py PATH/TO/NAB [--days 7] [--series N]

PATH/TO/NAB is a checkout of https://github.com/numenta/NAB (AGPL-3.0 code; the data
under ``data/`` are real series — AWS CloudWatch, known-cause incidents, Twitter
volumes — with labelled anomalies in ``labels/combined_labels.json`` and
``labels/combined_windows.json``). The data are not copied into this repository.

Protocol (fixed before any run; nothing here is tuned on the replay):

* Every ``real*`` series sampled every 5 minutes with at least 8 days of data.
* The first half of a series is its history (labelled anomaly windows left out, as an
  operator leaves out known incidents); the evaluation period is the following
  ``--days`` days.
* A canary window is 2 hours of the series; its baseline is the same clock window one
  day earlier. Windows start every 2 hours. Six looks, 20 minutes apart, judge the
  samples so far (4, 8, ..., 24 per arm).
* Clean windows: neither arm overlaps a labelled anomaly window. Anomalous windows:
  the canary contains a labelled anomaly, the baseline overlaps no anomaly window.
* Injected regressions: every clean window's canary multiplied by 1.2, 1.5 and 2.
* Direction ``either``, every other setting at its default: ``kayenta`` (confidence
  0.98, tolerance 0.25), ``robust`` with ``looks = 6`` (alpha 0.02 over the six looks,
  Bonferroni) with and without history, ``robust, looks = 1`` (with history, but called
  at each of the six looks without being told: what a CI that re-runs the default
  judge as the canary grows gets), ``sequential`` (alpha 0.05 over all looks) with and
  without history. An alarm is High/Low (fixed) or RollBack (sequential).

Prints, per mode: false alarms on clean windows at the final look and at any look,
and detection (any look) of labelled anomalies and of the injected regressions; the
named baseline is the ``kayenta`` row, measured in the same run. Then the share that
passed at the final look (Pass, or Promote): of clean windows, and of the injected
regressions — a regression passed is the error a canary exists to prevent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.judge import classify_metric
from releaserisk.canary.robust import history_statistics
from releaserisk.canary.sequential import SequentialMonitor, history_log_threshold

LOOKS, LOOK_MINUTES, WINDOW_HOURS = 6, 20, 2
STEP = pd.Timedelta(minutes=5)
EFFECTS = (1.2, 1.5, 2.0)
MODES = ("kayenta", "robust (no history)", "robust", "robust, looks = 1", "sequential (no history)", "sequential")


def load_series(root: Path, min_days: int) -> dict[str, pd.DataFrame]:
    series = {}
    for path in sorted((root / "data").glob("real*/*.csv")):
        frame = pd.read_csv(path)
        frame["ts"] = pd.to_datetime(frame["timestamp"], utc=True)
        frame = frame.drop_duplicates("ts").sort_values("ts")
        regular = frame["ts"].diff().median() == STEP
        if regular and frame["ts"].iloc[-1] - frame["ts"].iloc[0] >= pd.Timedelta(days=min_days):
            series[f"{path.parent.name}/{path.name}"] = frame[["ts", "value"]].reset_index(drop=True)
    return series


def labels(root: Path) -> tuple[dict, dict]:
    points = json.loads((root / "labels" / "combined_labels.json").read_text())
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    as_ts = {k: pd.to_datetime(v, utc=True) for k, v in points.items()}
    as_windows = {k: [(pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC")) for a, b in v] for k, v in windows.items()}
    return as_ts, as_windows


def overlaps(start, end, windows) -> bool:
    return any(a < end and start < b for a, b in windows)


class Replay:
    """One series: its history, statistics cached per look, and the judgement of one window."""

    def __init__(self, frame: pd.DataFrame, history: pd.DataFrame) -> None:
        self.frame = frame.set_index("ts")["value"]
        self.history = history.assign(metric="m")
        self.metric = MetricConfig("m", direction="either")
        self.robust = CanaryConfig(looks=LOOKS, metrics={"m": self.metric})
        self.unplanned = CanaryConfig(looks=1, metrics={"m": self.metric})  # called at each look, told of none
        self.sequential = CanaryConfig(metrics={"m": self.metric})
        self._statistics: dict = {}
        self._threshold: dict = {}

    def arms(self, start: pd.Timestamp, look: int, factor: float = 1.0):
        span = pd.Timedelta(minutes=LOOK_MINUTES * look) - STEP
        canary = self.frame[start : start + span]
        baseline = self.frame[start - pd.Timedelta(days=1) : start - pd.Timedelta(days=1) + span]
        return baseline, canary * factor

    def statistics(self, canary: pd.Series, baseline: pd.Series) -> np.ndarray | None:
        if canary.empty or baseline.empty:
            return None
        window, lag = canary.index[-1] - canary.index[0], canary.index[0] - baseline.index[0]
        key = (window, lag)
        if key not in self._statistics:
            self._statistics[key] = history_statistics(self.history, window, lag, "either")
        return self._statistics[key]

    def threshold(self, start: pd.Timestamp) -> float | None:
        if "t" not in self._threshold:
            baseline, canary = self.arms(start, LOOKS)
            samples = pd.DataFrame({
                "metric": "m", "arm": ["baseline"] * len(baseline) + ["canary"] * len(canary),
                "ts": [*baseline.index, *canary.index], "value": [*baseline, *canary],
            })  # fmt: skip
            self._threshold["t"] = history_log_threshold(samples, self.history, "m", self.sequential, LOOKS, 1)
        return self._threshold["t"]

    def judge(self, start: pd.Timestamp, factor: float = 1.0) -> tuple[dict[str, list[bool]], dict[str, bool]]:
        """Alarm (True/False) per mode at each look, and whether the final look passed (Pass, Promote)."""
        alarms = {mode: [] for mode in MODES}
        passed = {}
        monitors = {
            "sequential (no history)": SequentialMonitor(self.sequential, ["m"]),
            "sequential": SequentialMonitor(self.sequential, ["m"]),
        }
        threshold = self.threshold(start)
        if threshold is not None:
            monitors["sequential"].calibrate("m", threshold)
        previous = 0
        for look in range(1, LOOKS + 1):
            baseline, canary = self.arms(start, look, factor)
            b, c = baseline.to_numpy(), canary.to_numpy()
            timestamps = {"baseline_ts": baseline.index.to_numpy(), "canary_ts": canary.index.to_numpy()}
            robust = {"mode": "robust", "config": self.robust, **timestamps}
            history = self.statistics(canary, baseline)
            fixed = {
                "kayenta": classify_metric("m", b, c, self.metric, 0.98, 0.25),
                "robust (no history)": classify_metric("m", b, c, self.metric, **robust),
                "robust": classify_metric("m", b, c, self.metric, history=history, **robust),
                "robust, looks = 1": classify_metric(
                    "m", b, c, self.metric, history=history, **{**robust, "config": self.unplanned}
                ),
            }
            for mode, result in fixed.items():
                alarms[mode].append(result.classification in ("High", "Low"))
                passed[mode] = result.classification == "Pass"
            for mode, monitor in monitors.items():
                monitor.add_samples("m", "baseline", b[previous:])
                monitor.add_samples("m", "canary", c[previous:])
                decision = monitor.look(final=look == LOOKS).decision
                alarms[mode].append(decision == "RollBack")
                passed[mode] = decision == "Promote"
            previous = min(len(b), len(c))
        return alarms, passed


def windows_of(name, frame, points, anomaly_windows, days):
    middle = frame["ts"].iloc[0] + (frame["ts"].iloc[-1] - frame["ts"].iloc[0]) / 2
    first = middle.ceil("2h")
    last = min(first + pd.Timedelta(days=days), frame["ts"].iloc[-1] - pd.Timedelta(hours=WINDOW_HOURS))
    clean, anomalous = [], []
    stamps = set(frame["ts"])
    for start in pd.date_range(first, last, freq=f"{WINDOW_HOURS}h"):
        end = start + pd.Timedelta(hours=WINDOW_HOURS)
        base_start, base_end = start - pd.Timedelta(days=1), end - pd.Timedelta(days=1)
        if overlaps(base_start, base_end, anomaly_windows):
            continue
        if start not in stamps or base_start not in stamps:  # a gap in the series: no window
            continue
        if any(start <= p < end for p in points):
            anomalous.append(start)
        elif not overlaps(start, end, anomaly_windows):
            clean.append(start)
    # every labelled anomaly of the series is judged, also outside the evaluation days
    for point in points:
        start = point.floor(f"{WINDOW_HOURS}h")
        if start not in anomalous and start >= frame["ts"].iloc[0] + pd.Timedelta(days=1):
            base = (start - pd.Timedelta(days=1), start - pd.Timedelta(days=1) + pd.Timedelta(hours=WINDOW_HOURS))
            if not overlaps(*base, anomaly_windows):
                anomalous.append(start)
    return clean, anomalous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nab", type=Path, help="a checkout of numenta/NAB")
    parser.add_argument("--days", type=int, default=7, help="evaluation days per series (default 7)")
    parser.add_argument("--series", type=int, default=0, help="use only the first N series (0: all)")
    args = parser.parse_args()
    started = time.perf_counter()
    series = load_series(args.nab, min_days=8)
    if args.series:
        series = dict(list(series.items())[: args.series])
    points, anomaly_windows = labels(args.nab)
    tallies = {kind: {mode: np.zeros(LOOKS) for mode in MODES} for kind in ("clean", "anomaly", *map(str, EFFECTS))}
    final = {kind: {mode: 0 for mode in MODES} for kind in tallies}  # alarmed at the final look alone
    passes = {kind: {mode: 0 for mode in MODES} for kind in tallies}  # passed at the final look
    counts = {kind: 0 for kind in tallies}
    for name, frame in series.items():
        middle = frame["ts"].iloc[0] + (frame["ts"].iloc[-1] - frame["ts"].iloc[0]) / 2
        history = frame[frame["ts"] < middle]
        for a, b in anomaly_windows.get(name, []):
            history = history[(history["ts"] < a) | (history["ts"] > b)]
        replay = Replay(frame, history)
        print(f"  {name}", file=sys.stderr, flush=True)
        clean, anomalous = windows_of(name, frame, points.get(name, []), anomaly_windows.get(name, []), args.days)
        for kind, starts, factor in [
            ("clean", clean, 1.0),
            ("anomaly", anomalous, 1.0),
            *[(str(e), clean, e) for e in EFFECTS],
        ]:
            for start in starts:
                alarms, passed = replay.judge(start, factor)
                counts[kind] += 1
                for mode, per_look in alarms.items():
                    tallies[kind][mode] += np.maximum.accumulate(per_look)
                    final[kind][mode] += per_look[-1]
                    passes[kind][mode] += passed[mode]
    elapsed = time.perf_counter() - started
    print(
        f"NAB replay: {len(series)} real series, {counts['clean']} clean windows, {counts['anomaly']} windows "
        f"with a labelled anomaly; 2 h canary vs the same window a day earlier, {LOOKS} looks "
        f"{LOOK_MINUTES} min apart ({elapsed:.0f} s on a shared 2-core machine)"
    )
    print("  false alarms on clean windows (final look, any look); detection at any look of labelled")
    print("  anomalies and of regressions injected into the clean windows")
    header = f"  {'mode':<25} {'FA final':>9} {'FA any':>9} {'anomaly':>9} " + " ".join(
        f"{f'{e:g}x':>9}" for e in EFFECTS
    )
    print(header)
    for mode in MODES:
        row = f"  {mode:<25} {final['clean'][mode] / max(counts['clean'], 1):>9.3f} "
        row += f"{tallies['clean'][mode][-1] / max(counts['clean'], 1):>9.3f} "
        row += f"{tallies['anomaly'][mode][-1] / max(counts['anomaly'], 1):>9.3f} "
        row += " ".join(f"{tallies[str(e)][mode][-1] / max(counts[str(e)], 1):>9.3f}" for e in EFFECTS)
        print(row)
    print("  baseline: the kayenta row (Kayenta's judge re-run at every look), measured in the same run")
    print("\n  passed at the final look (Pass; sequential: Promote) — of clean windows (the rest alarmed or were")
    print("  inconclusive), and of the injected regressions (a regression passed is the worst error)")
    print(f"  {'mode':<25} {'clean':>9} " + " ".join(f"{f'{e:g}x':>9}" for e in EFFECTS))
    for mode in MODES:
        shares = [passes[kind][mode] / max(counts[kind], 1) for kind in ("clean", *map(str, EFFECTS))]
        print(f"  {mode:<25} " + " ".join(f"{share:>9.3f}" for share in shares))


if __name__ == "__main__":
    main()
