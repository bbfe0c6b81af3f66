"""Canary evidence: false alarms under peeking and autocorrelation, detection power and speed, per mode.

Run:  python benchmarks/canary_calibration.py [--reps N]

(a) Null simulations: two concurrent arms of 120 one-minute samples, each
    ``100 + 50 x_t`` with ``x`` a unit-variance AR(1) series (phi = 0, 0.5, 0.8), judged
    at 6 and 12 equally spaced looks. Share of runs with an alarm at any look, per mode:
    ``kayenta`` (a plain level-0.05 test: confidence 0.95, tolerance 0, re-run at every
    look), ``robust`` (confidence 0.95, ``looks`` set to the number of looks), and
    ``sequential`` (alpha 0.05). Target: robust and sequential <= 0.05 (plus Monte Carlo
    error, about 0.015 at 200 runs) at every look; kayenta shows the difference.
    Detection: the canary's values multiplied by 1.2, 1.5 and 2, alarm at any look.
(d) Long memory against yesterday (printed after (a)): 24 five-minute samples per arm,
    the baseline the same window a day (288 samples) before the canary, one series
    ``100 + 50 x_t`` with ``x`` unit-variance fractional Gaussian noise (Hurst exponent
    H = 0.5, 0.7, 0.9; exact, through the Cholesky factor of its autocovariance), judged at
    6 looks of 4 samples — the replay's layout. The arms are not concurrent, so the
    windows differ by the series' own slow variation as well; target as in (a).
(b) Error counts at 2 events/min per arm over 120 min (equal traffic), rate ratios
    1.0, 1.5 and 2.0: detection probability and median minutes to detect (Beta-binomial
    e-process).
(c) Speed: 100 metrics x 10,000 samples per arm in each mode, wall-clock and CPU time,
    against the baseline of scipy's Mann-Whitney U test (p-value only, no interval) on
    the same data.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.judge import classify_metric, judge
from releaserisk.canary.robust import baseline_timing
from releaserisk.canary.sequential import SequentialMonitor, sequential_judge

MINUTES, RATE, ALPHA = 120, 2.0, 0.05
PHIS, LOOK_PLANS, EFFECTS = (0.0, 0.5, 0.8), (6, 12), (1.2, 1.5, 2.0)
HURSTS, DAY, WINDOW = (0.5, 0.7, 0.9), 288, 24
MODES = ("kayenta", "robust", "sequential")
STAMPS = pd.date_range("2026-03-02", periods=MINUTES, freq="min", tz="UTC").to_numpy()


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.normal()
    noise = rng.normal(size=n) * np.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x


ALARMS = ("High", "Low")


def alarms(
    baseline: np.ndarray, canary: np.ndarray, looks: int, baseline_ts=STAMPS, canary_ts=STAMPS
) -> dict[str, np.ndarray]:
    """Alarm at or before each look, per mode (concurrent arms unless told other timestamps)."""
    metric = MetricConfig("lat", direction="either")
    robust = CanaryConfig(confidence=1 - ALPHA, tolerance=0.0, looks=looks, metrics={"lat": metric})
    monitor = SequentialMonitor(CanaryConfig(alpha=ALPHA, metrics={"lat": metric}), ["lat"])
    monitor.describe_baseline("lat", *baseline_timing(baseline_ts, canary_ts))  # as sequential_judge does
    out = {mode: np.zeros(looks, dtype=bool) for mode in MODES}
    previous = 0
    for look in range(looks):
        n = len(canary) * (look + 1) // looks
        b, c = baseline[:n], canary[:n]
        kayenta = classify_metric("lat", b, c, metric, 1 - ALPHA, 0.0)
        fixed = classify_metric(
            "lat", b, c, metric, mode="robust", config=robust, baseline_ts=baseline_ts[:n], canary_ts=canary_ts[:n]
        )
        monitor.add_samples("lat", "baseline", b[previous:])
        monitor.add_samples("lat", "canary", c[previous:])
        previous = n
        # an alarm is High or Low: an inconclusive metric (NoData: the interval cannot yet rule
        # out a harmful shift) neither alarms nor passes — counting it as an alarm put robust at 100 %
        out["kayenta"][look] = kayenta.classification in ALARMS
        out["robust"][look] = fixed.classification in ALARMS
        out["sequential"][look] = monitor.look(final=look == looks - 1).decision == "RollBack"
    return {mode: np.maximum.accumulate(v) for mode, v in out.items()}


def simulate(reps: int, rng: np.random.Generator, phi: float, looks: int, effect: float) -> dict[str, np.ndarray]:
    """Share of runs with an alarm at or before each look, per mode."""
    total = {mode: np.zeros(looks) for mode in MODES}
    for _ in range(reps):
        baseline = 100 + 50 * ar1(rng, MINUTES, phi)
        canary = effect * (100 + 50 * ar1(rng, MINUTES, phi))
        for mode, hits in alarms(baseline, canary, looks).items():
            total[mode] += hits
    return {mode: v / reps for mode, v in total.items()}


def fractional_gaussian_noise(rng: np.random.Generator, n: int, hurst: float) -> np.ndarray:
    """Unit-variance fractional Gaussian noise (Mandelbrot & Van Ness 1968), exact: Cholesky of its autocovariance."""
    lags = np.arange(n)
    power = 2.0 * hurst
    autocovariance = 0.5 * (np.abs(lags + 1) ** power - 2.0 * lags**power + np.abs(lags - 1) ** power)
    return np.linalg.cholesky(autocovariance[np.abs(lags[:, None] - lags[None, :])]) @ rng.normal(size=n)


def simulate_yesterday(reps: int, rng: np.random.Generator, hurst: float, effect: float) -> dict[str, np.ndarray]:
    """Share of runs with an alarm at or before each of 6 looks, baseline a day before the canary, per mode."""
    canary_ts = pd.date_range("2026-03-02 12:00", periods=WINDOW, freq="5min", tz="UTC")
    baseline_ts = (canary_ts - pd.Timedelta(days=1)).to_numpy()
    total = {mode: np.zeros(6) for mode in MODES}
    for _ in range(reps):
        series = 100 + 50 * fractional_gaussian_noise(rng, DAY + WINDOW, hurst)
        hits = alarms(series[:WINDOW], effect * series[DAY:], 6, baseline_ts, canary_ts.to_numpy())
        for mode, per_look in hits.items():
            total[mode] += per_look
    return {mode: v / reps for mode, v in total.items()}


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


def timed(run) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call (the machine is shared: CPU time is the fairer one)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def speed(rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    n, metrics = 10_000, 100
    stamps = pd.date_range("2026-03-02", periods=n, freq="s", tz="UTC")
    frames = []
    for i in range(metrics):
        for arm, shift in (("baseline", 0.0), ("canary", 0.01)):
            values = rng.lognormal(shift, 1, n)
            frames.append(pd.DataFrame({"metric": f"m{i:03d}", "arm": arm, "ts": stamps, "value": values}))
    data = pd.concat(frames, ignore_index=True).assign(kind="samples")

    def scipy_loop():
        for _, group in data.groupby("metric"):
            mannwhitneyu(group.loc[group.arm == "canary", "value"], group.loc[group.arm == "baseline", "value"])

    return {
        "kayenta": timed(lambda: judge(data, mode="kayenta")),
        "robust": timed(lambda: judge(data, mode="robust")),
        "sequential (12 looks)": timed(lambda: sequential_judge(data, looks=12)),
        "baseline: scipy mannwhitneyu": timed(scipy_loop),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(20261126)

    print(f"(a) two concurrent arms of {MINUTES} one-minute samples, AR(1); alarm at any look ({args.reps} runs)")
    print(
        f"    {'phi':>4} {'looks':>5} {'mode':<11} {'null: per look (cumulative)':<60} "
        + " ".join(f"{f'{e:g}x':>6}" for e in EFFECTS)
    )
    for phi in PHIS:
        for looks in LOOK_PLANS:
            null = simulate(args.reps, rng, phi, looks, 1.0)
            power = {e: simulate(max(args.reps // 2, 50), rng, phi, looks, e) for e in EFFECTS}
            for mode in MODES:
                per_look = " ".join(f"{v:.2f}" for v in null[mode])
                detected = " ".join(f"{power[e][mode][-1]:>6.2f}" for e in EFFECTS)
                print(f"    {phi:>4} {looks:>5} {mode:<11} {per_look:<60} {detected}")

    print(f"(d) long memory, baseline the same window a day earlier, 6 looks of 4 samples ({args.reps} runs)")
    print(
        f"    {'H':>4} {'mode':<11} {'null: per look (cumulative)':<36} " + " ".join(f"{f'{e:g}x':>6}" for e in EFFECTS)
    )
    memory_rng = np.random.default_rng(20261201)  # its own stream: (b) and (c) draw as before
    for hurst in HURSTS:
        null = simulate_yesterday(args.reps, memory_rng, hurst, 1.0)
        power = {e: simulate_yesterday(max(args.reps // 2, 50), memory_rng, hurst, e) for e in EFFECTS}
        for mode in MODES:
            per_look = " ".join(f"{v:.2f}" for v in null[mode])
            detected = " ".join(f"{power[e][mode][-1]:>6.2f}" for e in EFFECTS)
            print(f"    {hurst:>4} {mode:<11} {per_look:<36} {detected}")

    print("(b) error counts, 2 events/min per arm, 120 min, per-minute looks (Beta-binomial e-process)")
    for ratio in (1.0, 1.5, 2.0):
        power, median = detection(ratio, args.reps, rng)
        label = "false-alarm rate" if ratio == 1.0 else "detected"
        print(f"    rate ratio {ratio:.1f}: {label} {power:.3f}, median minutes to detect {median:.0f}")

    seconds = speed(rng)
    print("(c) 100 metrics x 10,000 samples per arm (shared 2-core machine: wall time is noisy, CPU time less so)")
    base_cpu = seconds["baseline: scipy mannwhitneyu"][1]
    for name, (wall, cpu) in seconds.items():
        print(f"    {name:<30} wall {wall:6.2f} s  CPU {cpu:6.2f} s   ratio to baseline (CPU) {cpu / base_cpu:.2f}x")


if __name__ == "__main__":
    main()
