"""Canary evidence: false alarms under peeking, detection power and speed.

Run:  python benchmarks/canary_calibration.py [--reps N]

(a) Under no regression, the fixed Kayenta judge re-run at 12 looks on a growing
    window, vs the anytime-valid sequential mode on the same data: the share of
    runs that ever fail (target: sequential <= alpha at every look).
(b) Error counts at 2 events/min per arm over 120 min (equal traffic), rate ratios
    1.0, 1.5 and 2.0: detection probability and median minutes to detect.
(c) Speed: the fixed judge over 100 metrics x 10,000 samples per arm, against the
    baseline of scipy's Mann-Whitney U test (p-value only, no interval) on the same data.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.judge import judge
from releaserisk.canary.sequential import SequentialMonitor

LOOKS, MINUTES, RATE, ALPHA = 12, 120, 2.0, 0.05


def peeking(reps: int, rng: np.random.Generator, config: CanaryConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative false-failure rate per look: fixed judge re-run vs sequential."""
    fixed_ever = np.zeros(LOOKS)
    seq_ever = np.zeros(LOOKS)
    for _ in range(reps):
        base = rng.lognormal(0, 0.5, 50 * LOOKS)
        can = rng.lognormal(0, 0.5, 50 * LOOKS)
        monitor = SequentialMonitor(config, ["lat"])
        fixed_failed = seq_failed = False
        for look in range(LOOKS):
            part = slice(50 * look, 50 * (look + 1))
            monitor.add_samples("lat", "baseline", base[part])
            monitor.add_samples("lat", "canary", can[part])
            seq_failed = seq_failed or monitor.look().decision == "RollBack"
            n = 50 * (look + 1)
            frame = pd.DataFrame(
                {
                    "metric": "lat",
                    "arm": np.repeat(["baseline", "canary"], n),
                    "value": np.r_[base[:n], can[:n]],
                }
            )
            fixed_failed = fixed_failed or judge(frame, config).verdict == "Fail"
            fixed_ever[look] += fixed_failed
            seq_ever[look] += seq_failed
    return fixed_ever / reps, seq_ever / reps


def detection(ratio: float, reps: int, rng: np.random.Generator) -> tuple[float, float]:
    """Share of runs rolled back, and median minutes to roll back (per-minute looks)."""
    config = CanaryConfig(alpha=ALPHA, metrics={"errors": MetricConfig("errors", kind="counts", direction="increase")})
    times = []
    for _ in range(reps):
        monitor = SequentialMonitor(config, ["errors"])
        base = rng.poisson(RATE, MINUTES)
        can = rng.poisson(RATE * ratio, MINUTES)
        for minute in range(MINUTES):
            monitor.add_counts("errors", baseline=base[minute], canary=can[minute])
            if monitor.look().decision == "RollBack":
                times.append(minute + 1)
                break
    return len(times) / reps, float(np.median(times)) if times else float("nan")


def speed(rng: np.random.Generator) -> tuple[float, float]:
    n, metrics = 10_000, 100
    frames = []
    for i in range(metrics):
        frames.append(pd.DataFrame({"metric": f"m{i:03d}", "arm": "baseline", "value": rng.lognormal(0, 1, n)}))
        frames.append(pd.DataFrame({"metric": f"m{i:03d}", "arm": "canary", "value": rng.lognormal(0.01, 1, n)}))
    data = pd.concat(frames, ignore_index=True)
    started = time.perf_counter()
    judge(data)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for _, group in data.groupby("metric"):
        mannwhitneyu(group.loc[group.arm == "canary", "value"], group.loc[group.arm == "baseline", "value"])
    return ours, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(20261126)

    metric = {"lat": MetricConfig("lat", direction="either")}
    pure = CanaryConfig(confidence=0.95, tolerance=0.0, metrics=metric)  # the judge as a plain level-0.05 test
    kayenta = CanaryConfig(metrics=metric)  # Kayenta defaults: confidence 0.98, tolerance 0.25
    reps = max(args.reps // 2, 50)
    fixed, seq = peeking(reps, rng, pure)
    fixed_kayenta, _ = peeking(reps, rng, kayenta)
    print(
        f"(a) false-failure rate under no regression, cumulative over 12 looks "
        f"({reps} runs, 50 samples per arm per look)"
    )
    print("    look   fixed (conf .95, tol 0)   fixed (Kayenta defaults)   sequential (alpha .05)")
    for look in range(LOOKS):
        print(f"    {look + 1:>4}   {fixed[look]:>23.3f}   {fixed_kayenta[look]:>24.3f}   {seq[look]:>22.3f}")

    print("(b) error counts, 2 events/min per arm, 120 min, per-minute looks")
    for ratio in (1.0, 1.5, 2.0):
        power, median = detection(ratio, args.reps, rng)
        label = "false-alarm rate" if ratio == 1.0 else "detected"
        print(f"    rate ratio {ratio:.1f}: {label} {power:.3f}, median minutes to detect {median:.0f}")

    ours, baseline = speed(rng)
    print("(c) 100 metrics x 10,000 samples per arm")
    print(f"    judge (interval + estimate + scoring): {ours:.2f} s")
    print(f"    baseline scipy.stats.mannwhitneyu (p-value only): {baseline:.2f} s; ratio {ours / baseline:.2f}x")


if __name__ == "__main__":
    main()
