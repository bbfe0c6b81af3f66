"""The robust judge: pairing, autocorrelation, history calibration, and never a pass without evidence."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, kstest

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.judge import classify_metric, judge
from releaserisk.canary.robust import (
    HistoryStatistics,
    aligned_pairs,
    autocorrelation_upper_bound,
    baseline_timing,
    conformal_p_value,
    deviation_score,
    effective_sample_size,
    history_statistics,
    lag1_autocorrelation,
    min_history_windows,
    no_timestamps_warning,
    not_concurrent_warning,
    shift_test,
)
from releaserisk.canary.sequential import sequential_judge

MINUTES = pd.date_range("2026-03-02 10:00", periods=120, freq="min", tz="UTC")


def ar1(rng, n, phi):
    """Stationary unit-variance AR(1) series."""
    x = np.empty(n)
    x[0] = rng.normal()
    noise = rng.normal(size=n) * math.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x


def two_arms(baseline, canary, ts=MINUTES, canary_ts=None, metric="m"):
    canary_ts = ts if canary_ts is None else canary_ts
    return pd.DataFrame({
        "metric": metric, "arm": np.repeat(["baseline", "canary"], [len(baseline), len(canary)]),
        "ts": np.r_[ts[: len(baseline)], canary_ts[: len(canary)]], "value": np.r_[baseline, canary],
    })  # fmt: skip


def test_effective_sample_size_shrinks_with_autocorrelation():
    rng = np.random.default_rng(1)
    iid, strong = ar1(rng, 2000, 0.0), ar1(rng, 2000, 0.8)
    assert lag1_autocorrelation(iid) < 0.1 and 0.75 < lag1_autocorrelation(strong) < 0.85
    assert effective_sample_size(iid) > 1600
    assert 150 < effective_sample_size(strong) < 300  # 2000 * 0.2 / 1.8 = 222
    assert effective_sample_size([]) == 0.0 and lag1_autocorrelation([1.0, 1.0, 1.0, 1.0]) == 0.0


def test_ar1_null_false_alarms_within_a_binomial_bound_of_alpha():
    rng = np.random.default_rng(20261130)
    config = CanaryConfig(confidence=0.95, tolerance=0.0)
    runs, alarms = 150, 0
    for _ in range(runs):
        frame = two_arms(10 + ar1(rng, 120, 0.8), 10 + ar1(rng, 120, 0.8))
        alarms += judge(frame, config).verdict != "Pass"
    assert alarms <= binom.ppf(0.99, runs, 0.05)  # at most 14 of 150
    kayenta = sum(
        judge(two_arms(10 + ar1(rng, 120, 0.8), 10 + ar1(rng, 120, 0.8)), config, mode="kayenta").verdict != "Pass"
        for _ in range(40)
    )
    assert kayenta > binom.ppf(0.99, 40, 0.05)  # the independent-samples test cries wolf


@pytest.mark.parametrize("phi", [0.5, 0.8])
def test_ar1_null_without_history_stays_within_alpha_from_the_first_look(phi):
    """Six looks at 4, 8, ..., 24 samples (a 2-hour window of 5-minute samples), no history."""
    rng = np.random.default_rng(int(phi * 10))
    metric = MetricConfig("m", direction="either")
    config = CanaryConfig(confidence=0.95, tolerance=0.0, looks=6, metrics={"m": metric})
    runs, alarms, looks_alarmed = 150, 0, np.zeros(6)
    for _ in range(runs):
        baseline, canary = 10 + ar1(rng, 24, phi), 10 + ar1(rng, 24, phi)
        per_look = [
            classify_metric(
                "m", baseline[:n], canary[:n], metric, mode="robust", config=config,
                baseline_ts=MINUTES[:n], canary_ts=MINUTES[:n],
            ).classification in ("High", "Low")
            for n in range(4, 25, 4)
        ]  # fmt: skip
        alarms += any(per_look)
        looks_alarmed += np.maximum.accumulate(per_look)
    assert alarms <= binom.ppf(0.99, runs, 0.05)  # any look: at most 14 of 150
    assert looks_alarmed[0] <= binom.ppf(0.99, runs, 0.05 / 6)  # the first look alone: at most 4


def test_autocorrelation_upper_bound_covers_the_small_sample_estimate():
    rng = np.random.default_rng(7)
    short, long = ar1(rng, 12, 0.8), ar1(rng, 5000, 0.8)
    r = lag1_autocorrelation(short)
    assert autocorrelation_upper_bound(short) == pytest.approx(min(r + 1.645 * math.sqrt((1 - r * r) / 12), 0.98))
    assert 0.8 <= autocorrelation_upper_bound(long) < 0.85  # the bound closes in as n grows
    assert autocorrelation_upper_bound([1.0]) == 0.98  # one value: no evidence on dependence


def test_history_catches_an_incident_that_hides_from_its_own_t_statistic():
    """A spike inflates the window's variance: its t statistic is small, its deviation is not."""
    rng = np.random.default_rng(11)
    history = history_series(rng, phi=0.3)
    canary_ts = pd.date_range("2026-02-10 12:00", periods=24, freq="5min", tz="UTC")
    baseline = 50 + 5 * ar1(rng, 24, 0.3)
    canary = 50 + 5 * ar1(rng, 24, 0.3)
    canary[10:13] += 150  # a quarter-hour incident
    frame = two_arms(baseline, canary, canary_ts - pd.Timedelta(days=1), canary_ts)
    alone = judge(frame, CanaryConfig()).metrics[0]
    # the t interval, widened by the spike itself, spans 0 — and reaches past the
    # equivalence margin: inconclusive, not a pass
    assert alone.classification == "NoData" and alone.reason.startswith("inconclusive")
    calibrated = judge(frame, CanaryConfig(), history=history).metrics[0]
    assert calibrated.classification == "High" and "deviation" in calibrated.reason
    assert deviation_score([2.0, 2.0], [3.0, 3.0]) == 0.5 and deviation_score([0.0], [1.0]) == math.inf
    assert deviation_score([1.0, 2.0], [3.0, 4.0], "cles") == 0.5


def test_a_history_that_no_longer_describes_the_baseline_is_not_used():
    """After a regime change (yesterday's level outside the whole history) the ranks mean nothing."""
    rng = np.random.default_rng(13)
    history = history_series(rng)
    canary_ts = pd.date_range("2026-02-10 12:00", periods=24, freq="5min", tz="UTC")
    yesterday = canary_ts - pd.Timedelta(days=1)
    low_regime = two_arms(1 + 0.1 * ar1(rng, 24, 0.5), 2 + 0.1 * ar1(rng, 24, 0.5), yesterday, canary_ts)
    m = judge(low_regime, CanaryConfig(), history=history).metrics[0]
    assert m.history_windows == 0 and "no longer describes" in m.warning
    usual = two_arms(50 + ar1(rng, 24, 0.5), 50 + ar1(rng, 24, 0.5), yesterday, canary_ts)  # at the history's level
    m = judge(usual, CanaryConfig(), history=history).metrics[0]
    assert m.history_windows >= min_history_windows(0.02), m.warning


def test_pairing_cancels_a_shared_sinusoidal_swing_that_hides_a_shift_from_the_unpaired_test():
    rng = np.random.default_rng(5)
    swing = 100 + 30 * np.sin(np.arange(120) * 2 * np.pi / 60)  # traffic swing shared by both arms
    baseline = swing + rng.normal(0, 0.5, 120)
    canary = swing + 3 + rng.normal(0, 0.5, 120)  # a 3 % regression
    config = CanaryConfig(confidence=0.98, metrics={"m": MetricConfig("m", direction="increase")})
    paired = judge(two_arms(baseline, canary), config)
    assert paired.metrics[0].paired and paired.metrics[0].classification == "High"
    unpaired = judge(two_arms(baseline, canary).drop(columns="ts"), config)
    assert not unpaired.metrics[0].paired and unpaired.metrics[0].classification == "Pass"
    assert judge(two_arms(baseline, canary).drop(columns="ts"), config, mode="kayenta").verdict == "Pass"
    null = judge(two_arms(baseline, swing + rng.normal(0, 0.5, 120)), config)
    assert null.verdict == "Pass"


def test_arms_a_day_apart_pair_on_the_clock():
    yesterday = MINUTES - pd.Timedelta(days=1)
    pairs = aligned_pairs(yesterday, MINUTES)
    assert pairs is not None and len(pairs[0]) == 120
    assert aligned_pairs(MINUTES, MINUTES + pd.Timedelta(seconds=np.pi)) is not None  # constant lag
    jittered = MINUTES + pd.to_timedelta(np.arange(120) % 7, unit="s")
    assert aligned_pairs(MINUTES, jittered) is None
    assert aligned_pairs(MINUTES[:2], MINUTES[:2]) is None


def test_shift_test_interval_and_p_values():
    test = shift_test([1.0, 2.0, 3.0, 4.0], [11.0, 12.0, 13.0, 14.0], in_time_order=False)
    low, high = test.interval(0.05)
    assert test.estimate == 10.0 and low < 10 < high and low > 0
    assert test.p_value("greater") < 0.001 < 0.999 < test.p_value("less")
    assert shift_test([1.0, 1.0], [2.0, 2.0]).statistic == math.inf


def history_series(rng, days=8, phi=0.5, freq="5min"):
    ts = pd.date_range("2026-02-01", periods=days * 288, freq=freq, tz="UTC")
    return pd.DataFrame({"metric": "m", "ts": ts, "value": 50 + 5 * ar1(rng, len(ts), phi)})


def test_history_p_values_are_uniform_under_exchangeable_history():
    rng = np.random.default_rng(42)
    history = history_series(rng)
    window, lag = pd.Timedelta(minutes=115), pd.Timedelta(days=1)
    statistics = history_statistics(history, window, lag, "either").deviations
    assert len(statistics) > 400
    p_values = []
    for _ in range(300):
        fresh = history_series(rng, days=2)
        deviation = deviation_score(fresh["value"][:24], fresh["value"][288 : 288 + 24])
        p_values.append(conformal_p_value(abs(deviation), statistics))
    assert kstest(p_values, "uniform").pvalue > 0.01


def test_history_calibrates_the_verdict_and_too_little_history_says_so():
    rng = np.random.default_rng(9)
    history = history_series(rng)
    canary_ts = pd.date_range("2026-02-10 12:00", periods=24, freq="5min", tz="UTC")
    baseline_ts = canary_ts - pd.Timedelta(days=1)
    drifted = two_arms(50 + 5 * ar1(rng, 24, 0.5), 50 + 5 * ar1(rng, 24, 0.5) + 20, baseline_ts, canary_ts)
    calibrated = judge(drifted, CanaryConfig(), history=history)
    m = calibrated.metrics[0]
    assert m.history_windows >= min_history_windows(0.02) and m.classification == "High" and m.p_value <= 0.02
    short = judge(drifted, CanaryConfig(), history=history[history["ts"] < "2026-02-02 06:00"])
    assert short.metrics[0].history_windows == 0 and "needed" in short.metrics[0].warning
    assert min_history_windows(0.05) == 19 and min_history_windows(0.02) == 49


@pytest.mark.parametrize("mode", ["kayenta", "robust"])
@pytest.mark.parametrize("strategy", ["remove", "replace"])
def test_empty_or_all_nan_arm_is_never_a_pass(mode, strategy):
    for canary in ([], [math.nan] * 5):
        metric = MetricConfig("m", nan_strategy=strategy)
        result = classify_metric("m", [1.0, 2.0, 3.0], canary, metric, mode=mode)
        assert result.classification == "NoData"
        required = MetricConfig("m", nan_strategy=strategy, must_have_data=True)
        assert classify_metric("m", [1.0, 2.0], canary, required, mode=mode).classification == "NoDataFailure"
    nothing = pd.DataFrame({"metric": [], "arm": [], "value": []})
    config = CanaryConfig(metrics={"m": MetricConfig("m", nan_strategy=strategy, must_have_data=True)})
    assert judge(nothing, config, mode=mode).verdict != "Pass"


@pytest.mark.parametrize("mode", ["kayenta", "robust"])
def test_infinite_canary_values_never_hide_a_regression(mode):
    critical = MetricConfig("lat", direction="increase", critical=True)
    config = CanaryConfig(metrics={"lat": critical})
    all_infinite = two_arms(np.linspace(1, 2, 40), [math.inf] * 40, metric="lat")
    result = judge(all_infinite, config, mode=mode)
    assert result.verdict == "Fail" and result.metrics[0].classification == "High" and result.metrics[0].critical
    one = classify_metric("lat", [1.0], [math.inf], critical, mode=mode)
    assert one.classification == "NoData" and one.critical  # no finite canary value: a critical NoData fails
    some = classify_metric("lat", np.linspace(1, 2, 40), [*np.linspace(1, 2, 39), math.inf], critical, mode=mode)
    assert some.classification == "Pass"  # one timeout in forty is not evidence of a regression
    assert json.dumps(result.to_dict())


def test_sequential_all_infinite_canary_rolls_back():
    config = CanaryConfig(metrics={"lat": MetricConfig("lat", direction="increase", critical=True)})
    frame = two_arms(np.linspace(1, 2, 40), [math.inf] * 40, metric="lat").assign(kind="samples")
    assert sequential_judge(frame, config, looks=4).decision == "RollBack"


def test_result_frames_carry_the_mode_and_json_is_clean():
    rng = np.random.default_rng(3)
    result = judge(two_arms(rng.normal(10, 1, 120), rng.normal(10, 1, 120)))
    assert result.mode == "robust" and set(result.frame["mode"]) == {"robust"}
    d = result.to_dict()
    assert d["mode"] == "robust" and d["metrics"][0]["n_effective"] > 0 and d["metrics"][0]["paired"]
    json.dumps(d, allow_nan=False)
    assert "effective n" in result.summary()
    kayenta = judge(two_arms(rng.normal(10, 1, 120), rng.normal(10, 1, 120)), mode="kayenta")
    assert kayenta.to_dict()["mode"] == "kayenta" and "mode kayenta" in kayenta.summary()


def test_a_baseline_that_is_not_concurrent_is_said_so_and_a_real_shift_still_fails():
    """A day-old baseline: a level drift between the windows looks like a shift inside them.

    Without history the judge cannot tell the two apart (nothing inside either window
    shows the drift), so it keeps testing — a real 1.5x regression still fails — but
    says that false alarms are not held at alpha and what would calibrate them.
    """
    rng = np.random.default_rng(21)
    canary_ts = pd.date_range("2026-02-10 12:00", periods=24, freq="5min", tz="UTC")
    yesterday = canary_ts - pd.Timedelta(days=1)
    drift = two_arms(50 + 0.5 * ar1(rng, 24, 0.3), 53 + 0.5 * ar1(rng, 24, 0.3), yesterday, canary_ts)
    m = judge(drift, CanaryConfig()).metrics[0]
    assert m.concurrent is False and "not concurrent" in m.warning and "1 d before" in m.warning
    assert m.classification == "High" and "may be drift" in m.reason
    assert json.loads(json.dumps(m.to_dict()))["concurrent"] is False
    assert "baseline not concurrent" in judge(drift, CanaryConfig()).summary()
    regression = two_arms(50 + 5 * ar1(rng, 24, 0.3), 1.5 * (50 + 5 * ar1(rng, 24, 0.3)), yesterday, canary_ts)
    assert judge(regression, CanaryConfig()).metrics[0].classification == "High"


def fractional_gaussian_noise(rng, n, hurst, size):
    """``size`` unit-variance fractional Gaussian noise series of length ``n``, exact.

    Gaussian with the fGn autocovariance ``(|k+1|^2H - 2|k|^2H + |k-1|^2H) / 2``
    (Mandelbrot & Van Ness, SIAM Review 1968), drawn through its Cholesky factor.
    """
    lags = np.arange(n)
    power = 2.0 * hurst
    autocovariance = 0.5 * (np.abs(lags + 1) ** power - 2.0 * lags**power + np.abs(lags - 1) ** power)
    factor = np.linalg.cholesky(autocovariance[np.abs(lags[:, None] - lags[None, :])])
    return (factor @ rng.normal(size=(n, size))).T


def test_a_long_memory_null_against_yesterday_keeps_false_alarms_within_a_binomial_bound():
    """Stationary long memory (H = 0.9) and the baseline a day (288 five-minute samples) earlier.

    The two windows then differ by the series' own slow variation, which their spread
    around their own means understates; the effective sample size at the upper
    confidence limit of the autocorrelation still holds false alarms at any of six looks
    at alpha (1 of 100 in this run, alpha = 0.02). With the plug-in autocorrelation
    instead of its upper limit they were 16 of 100. A level that moves between days
    while both windows stay calm is not such a process: only history calibrates that.
    """
    rng = np.random.default_rng(11)
    day, window = 288, 24
    canary_ts = pd.date_range("2026-02-10 12:00", periods=window, freq="5min", tz="UTC")
    yesterday = canary_ts - pd.Timedelta(days=1)
    metric = MetricConfig("m", direction="either")
    config = CanaryConfig(looks=6, metrics={"m": metric})

    def alarmed(baseline, canary):
        return any(
            classify_metric(
                "m", baseline[:n], canary[:n], metric, mode="robust", config=config,
                baseline_ts=yesterday[:n], canary_ts=canary_ts[:n],
            ).classification in ("High", "Low")  # an alarm; NoData (inconclusive) is none
            for n in range(4, window + 1, 4)
        )  # fmt: skip

    series = 100 + 10 * fractional_gaussian_noise(rng, day + window, 0.9, 100)
    assert classify_metric(
        "m", series[0, :window], series[0, day:], metric, mode="robust", config=config,
        baseline_ts=yesterday, canary_ts=canary_ts,
    ).concurrent is False  # fmt: skip
    alarms = sum(alarmed(x[:window], x[day:]) for x in series)
    assert alarms <= binom.ppf(0.99, len(series), 0.02)  # at most 6 of 100
    doubled = sum(alarmed(x[:window], 2 * x[day:]) for x in series[:30])
    assert doubled >= 9  # a 2x regression is still caught (17 of 30 in this run)


def test_history_that_shows_the_day_to_day_drift_calibrates_it_away():
    rng = np.random.default_rng(22)
    days = 10
    ts = pd.date_range("2026-02-01", periods=days * 288, freq="5min", tz="UTC")
    level = np.repeat(50 + 4 * rng.normal(size=days), 288)  # each day at its own level
    history = pd.DataFrame({"metric": "m", "ts": ts, "value": level + 0.5 * ar1(rng, len(ts), 0.3)})
    canary_ts = pd.date_range("2026-02-12 12:00", periods=24, freq="5min", tz="UTC")
    drift = two_arms(
        50 + 0.5 * ar1(rng, 24, 0.3), 53 + 0.5 * ar1(rng, 24, 0.3), canary_ts - pd.Timedelta(days=1), canary_ts
    )
    m = judge(drift, CanaryConfig(), history=history).metrics[0]
    assert m.history_windows >= min_history_windows(0.02) and m.classification == "Pass"
    assert m.concurrent is False and m.warning is None


def test_a_concurrent_baseline_carries_no_drift_warning():
    rng = np.random.default_rng(23)
    m = judge(two_arms(50 + ar1(rng, 120, 0.5), 50 + ar1(rng, 120, 0.5)), CanaryConfig()).metrics[0]
    assert m.concurrent is True and m.warning is None
    untimed = judge(two_arms(50 + ar1(rng, 120, 0.5), 60 + ar1(rng, 120, 0.5)).drop(columns="ts"), CanaryConfig())
    # without timestamps concurrency is unknown: no drift warning, but the missing timestamps are said
    assert untimed.metrics[0].concurrent is None and untimed.metrics[0].warning == no_timestamps_warning(
        ("baseline", "canary")
    )


def test_looks_split_alpha_and_the_result_says_so():
    rng = np.random.default_rng(28)
    frame = two_arms(rng.normal(100, 5, 60), rng.normal(102.5, 5, 60))
    once, six = judge(frame, CanaryConfig()), judge(frame, CanaryConfig(looks=6))
    assert once.verdict == "Fail" and six.verdict == "Pass"  # p between 0.02/6 and 0.02
    assert six.to_dict()["looks"] == 6 and six.to_dict()["alpha"] == pytest.approx(0.02)
    assert "6 planned look(s)" in six.summary()


def test_baseline_timing_and_its_warning():
    yesterday = MINUTES - pd.Timedelta(days=1)
    assert baseline_timing(yesterday, MINUTES) == (False, pd.Timedelta(days=1))
    assert baseline_timing(MINUTES, MINUTES + pd.Timedelta(minutes=30)) == (True, pd.Timedelta(minutes=30))
    assert baseline_timing(None, MINUTES) == (None, None)
    assert baseline_timing(np.array(["NaT"], dtype="datetime64[ns]"), MINUTES) == (None, None)
    assert "1 d 2 h 5 min before" in not_concurrent_warning(pd.Timedelta(hours=26, minutes=5))
    assert "30 s after" in not_concurrent_warning(pd.Timedelta(seconds=-30))
    assert "--history" in not_concurrent_warning()


@pytest.mark.parametrize("samples", [5, 10, 12])
def test_a_few_samples_that_cannot_rule_out_a_large_regression_are_inconclusive_never_a_pass(samples):
    # every canary sample 50 % slower, but too few samples for the autocorrelation-aware
    # interval to exclude 0: the interval also reaches far past the margin, so not a Pass
    rng = np.random.default_rng(samples)
    baseline = 100 + 5 * rng.normal(size=samples)
    frame = two_arms(baseline, 1.5 * baseline + rng.normal(size=samples), metric="lat")
    result = judge(frame, CanaryConfig())
    metric = result.metrics[0]
    assert metric.classification in ("NoData", "High"), metric.reason
    if metric.classification == "NoData":
        assert result.verdict == "NoData"
        assert metric.reason.startswith("inconclusive: no significant shift") and "samples per arm" in metric.reason


def test_the_equivalence_margin_separates_pass_from_inconclusive():
    rng = np.random.default_rng(3)
    baseline, canary = 100 + 20 * rng.normal(size=30), 100 + 20 * rng.normal(size=30)
    frame = two_arms(baseline, canary)
    narrow = judge(frame, CanaryConfig(equivalence_margin=0.01)).metrics[0]
    wide = judge(frame, CanaryConfig(equivalence_margin=0.9)).metrics[0]
    assert (narrow.classification, wide.classification) == ("NoData", "Pass"), (narrow.reason, wide.reason)
    assert narrow.ci_high / np.mean(baseline) > 0.01 and wide.ci_high / np.mean(baseline) < 0.9
    # a metric's wider allowed bound widens its margin (here the only harmful side)
    increase_only = CanaryConfig(
        equivalence_margin=0.01, metrics={"m": MetricConfig("m", direction="increase", allowed_increase=1.95)}
    )
    assert judge(frame, increase_only).metrics[0].classification == "Pass"


def test_the_equivalence_margin_is_validated():
    from releaserisk.canary.config import canary_config_from_dict
    from releaserisk.errors import ConfigError

    assert canary_config_from_dict({"judge": {"equivalence_margin": 0.2}}).equivalence_margin == 0.2
    with pytest.raises(ConfigError, match="equivalence_margin"):
        canary_config_from_dict({"judge": {"equivalence_margin": 0}})


def test_an_inconclusive_metric_is_left_out_of_the_score_but_never_lets_a_critical_metric_pass():
    rng = np.random.default_rng(8)
    steady = 100 + rng.normal(size=60)
    rare = rng.poisson(0.5, size=60).astype(float)  # too few events to rule out +50 %
    frame = pd.concat([
        two_arms(steady, steady + 0.01 * rng.normal(size=60), MINUTES, metric="latency"),
        two_arms(rare, rng.poisson(0.5, size=60).astype(float), MINUTES, metric="errors"),
    ])  # fmt: skip
    plain = judge(frame, CanaryConfig())
    classes = {m.name: m.classification for m in plain.metrics}
    assert classes == {"latency": "Pass", "errors": "NoData"}
    assert plain.verdict == "Pass" and "left out, inconclusive: errors" in plain.reason  # not a Fail for it
    critical = judge(frame, CanaryConfig(metrics={"errors": MetricConfig("errors", critical=True)}))
    assert critical.verdict == "NoData" and "critical metric errors is inconclusive" in critical.reason
    assert critical.exit_code == 3


@pytest.mark.parametrize("canary", [[100.0], [150.0]])
def test_one_sample_per_arm_is_inconclusive_in_robust_mode_never_a_verdict(canary):
    """One value per arm has no spread: the t interval would be [shift, shift] with p = 0."""
    frame = two_arms([100.0], canary)
    result = judge(frame, CanaryConfig())
    metric = result.metrics[0]
    assert metric.classification == "NoData" and metric.inconclusive and math.isnan(metric.ci_low)
    assert "at least 2 samples per arm" in metric.reason
    assert result.verdict == "NoData" and result.exit_code == 3 and "1 inconclusive" in result.reason
    assert json.loads(json.dumps(result.to_dict()))["metrics"][0]["inconclusive"] is True
    assert judge(frame, CanaryConfig(), mode="kayenta").metrics[0].classification != "NoData"  # Kayenta's own
    two = judge(two_arms([100.0, 101.0], [150.0, 151.0]), CanaryConfig())
    assert two.metrics[0].classification == "High" and not two.metrics[0].inconclusive


def test_a_metric_without_a_finite_value_is_without_data_not_inconclusive():
    """No finite canary value counts toward Kayenta's half-without-data rule (it had no data to test)."""
    steady = np.linspace(100, 101, 20)
    frame = pd.concat([
        two_arms(steady, steady, metric="latency"),
        two_arms(steady, [math.inf], metric="timeouts"),  # one timeout: not significant, and nothing finite
    ])  # fmt: skip
    result = judge(frame, CanaryConfig())
    timeouts = next(m for m in result.metrics if m.name == "timeouts")
    assert timeouts.classification == "NoData" and not timeouts.inconclusive
    assert result.verdict == "Fail" and "1 without data" in result.reason


def bursty_history(rng, days=10):
    """A metric whose windows a day apart often differ by half: each 2-hour block at its own level."""
    ts = pd.date_range("2026-02-01", periods=days * 288, freq="5min", tz="UTC")
    level = np.repeat(50 * np.exp(0.45 * rng.normal(size=days * 12)), 24)
    return pd.DataFrame({"metric": "m", "ts": ts, "value": level * (1 + 0.02 * rng.normal(size=len(ts)))})


def test_within_a_history_of_large_swings_a_regression_is_inconclusive_never_a_pass():
    """Ranked as unremarkable among swings of ±50 % is no evidence the canary is not 50 % worse."""
    rng = np.random.default_rng(5)
    history = bursty_history(rng)
    canary_ts = pd.date_range("2026-02-12 12:00", periods=24, freq="5min", tz="UTC")
    base, today = (50 * (1 + 0.02 * rng.normal(size=24)) for _ in range(2))
    for factor in (1.0, 1.5):
        arms = two_arms(base, factor * today, canary_ts - pd.Timedelta(days=1), canary_ts)
        m = judge(arms, CanaryConfig(), history=history).metrics[0]
        assert m.history_windows >= min_history_windows(0.02) and m.p_value > 0.02  # within history
        assert m.classification == "NoData" and m.inconclusive and "does not rule out an increase of 50%" in m.reason


def test_history_shows_the_margin_with_the_conformal_two_one_sided_tests():
    shifts = np.linspace(-0.1, 0.1, 99)  # windows a day apart differ by at most 10 %
    stats = HistoryStatistics(np.abs(shifts), np.full(99, 50.0), shifts)
    below_up, above_down = stats.equivalence_p_values(0.0, 0.5, 0.5)
    assert below_up == above_down == 0.01  # (1 + 0) / 1.5 - 1 = -33 % ranks below every window
    below_up, above_down = stats.equivalence_p_values(0.45, 0.5, 0.5)  # 1.45 / 1.5 - 1 = -3.3 %
    assert 0.3 < below_up < 0.4 and above_down == 0.01
    assert stats.equivalence_p_values(math.inf, 0.5, 0.5) == (1.0, 1.0)
    assert HistoryStatistics(np.abs(shifts), np.full(99, 50.0)).equivalence_p_values(0.0, 0.5, 0.5) == (1.0, 1.0)
