import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.plan import log_mixture_t
from releaserisk.canary.robust import ar1_block_inflation
from releaserisk.canary.sequential import SequentialMonitor, sequential_judge
from releaserisk.errors import InputError
from tests.canary.test_robust import ar1

COUNTS = CanaryConfig(metrics={"errors": MetricConfig("errors", kind="counts", direction="increase")})


def simulate_counts(rng, ratio, minutes=120, rate=2.0, looks=12):
    """Per-look Poisson counts: baseline at `rate`/min, canary at ratio × rate (equal traffic)."""
    per_look = minutes / looks
    return [(rng.poisson(rate * per_look), rng.poisson(ratio * rate * per_look)) for _ in range(looks)]


def run(config, counts):
    monitor = SequentialMonitor(config, ["errors"])
    for i, (b, c) in enumerate(counts):
        monitor.add_counts("errors", baseline=b, canary=c)
        result = monitor.look(final=i == len(counts) - 1)
        if result.decision in ("RollBack", "Promote"):
            return result
    return result


def test_false_alarms_stay_below_alpha_at_every_look():
    rng = np.random.default_rng(7)
    rollbacks = sum(run(COUNTS, simulate_counts(rng, 1.0)).decision == "RollBack" for _ in range(300))
    assert rollbacks / 300 <= 0.05


def test_doubling_of_errors_is_caught_early():
    rng = np.random.default_rng(11)
    results = [run(COUNTS, simulate_counts(rng, 2.0)) for _ in range(100)]
    assert sum(r.decision == "RollBack" for r in results) >= 95
    assert np.median([r.look for r in results]) <= 3  # 3 looks = 30 minutes


def test_decision_sticks_and_history_grows():
    monitor = SequentialMonitor(COUNTS, ["errors"])
    monitor.add_counts("errors", baseline=5, canary=5)
    assert monitor.look().decision == "Continue"
    monitor.add_counts("errors", baseline=5, canary=60)
    first = monitor.look()
    assert first.decision == "RollBack" and first.look == 2
    monitor.add_counts("errors", baseline=1000, canary=0)
    assert monitor.look() is first
    assert list(first.history["look"]) == [1, 2]


def test_no_data_is_never_a_pass():
    config = CanaryConfig(metrics={"errors": MetricConfig("errors", kind="counts", must_have_data=True)})
    monitor = SequentialMonitor(config, ["errors"])
    assert monitor.look(final=True).decision == "NoData"
    unrequired = SequentialMonitor(COUNTS, ["errors"])
    assert unrequired.look(final=True).decision == "NoData"


def test_early_promotion_when_within_the_allowed_ratio():
    config = CanaryConfig(
        metrics={"errors": MetricConfig("errors", kind="counts", direction="increase", allowed_increase=1.5)}
    )
    monitor = SequentialMonitor(config, ["errors"])
    monitor.add_counts("errors", baseline=2000, canary=2000)
    assert monitor.look().decision == "Promote"


def latency_frame(rng, ratio, n=4000, allowed=1.0):
    t = pd.to_datetime(np.arange(n), unit="s", utc=True)
    return pd.DataFrame({
        "metric": "lat", "arm": np.repeat(["baseline", "canary"], n), "ts": np.tile(t, 2),
        "value": np.r_[rng.lognormal(0, 0.3, n), ratio * rng.lognormal(0, 0.3, n)], "kind": "samples",
    })  # fmt: skip


def test_latency_regression_detected_and_null_promoted_only_within_bound():
    rng = np.random.default_rng(3)
    bounded = CanaryConfig(metrics={"lat": MetricConfig("lat", direction="increase", allowed_increase=1.1)})
    assert sequential_judge(latency_frame(rng, 1.5), bounded).decision == "RollBack"
    assert sequential_judge(latency_frame(rng, 1.0), bounded).decision == "Promote"
    unbounded = sequential_judge(latency_frame(rng, 1.0), CanaryConfig())
    assert unbounded.decision == "NoData" and "needs about" in unbounded.reason


def test_input_checks():
    with pytest.raises(InputError):
        SequentialMonitor(COUNTS, [])
    monitor = SequentialMonitor(COUNTS, ["errors"])
    with pytest.raises(InputError, match="counts metric"):
        monitor.add_samples("errors", "canary", [1.0])
    with pytest.raises(InputError, match="not monitored"):
        monitor.add_counts("nope", canary=1)


def minute_frame(baseline, canary, metric="lat"):
    t = pd.date_range("2026-03-02 10:00", periods=len(baseline), freq="min", tz="UTC")
    return pd.DataFrame({
        "metric": metric, "arm": np.repeat(["baseline", "canary"], len(baseline)), "ts": np.tile(t, 2),
        "value": np.r_[baseline, canary], "kind": "samples",
    })  # fmt: skip


def test_under_powered_horizon_is_nodata_with_the_samples_it_would_need():
    rng = np.random.default_rng(8)
    slower = sequential_judge(minute_frame(rng.lognormal(0, 0.3, 10), 1.5 * rng.lognormal(0, 0.3, 10)), looks=6)
    assert slower.decision == "RollBack"  # the case: never Promote on [-inf, inf]
    result = sequential_judge(minute_frame(rng.lognormal(0, 0.3, 10), 1.1 * rng.lognormal(0, 0.3, 10)), looks=6)
    assert result.decision == "NoData" and result.exit_code == 3
    assert "inconclusive" in result.reason and "samples per arm" in result.reason
    state = result.metrics[0]
    assert state["needed"] > state["n_canary"] and math.isfinite(state["needed"])


def test_tens_of_samples_decide_a_large_regression():
    rng = np.random.default_rng(12)
    config = CanaryConfig(metrics={"lat": MetricConfig("lat", direction="increase", allowed_increase=1.1)})
    decisions = [
        sequential_judge(minute_frame(rng.lognormal(0, 0.3, 36), 2 * rng.lognormal(0, 0.3, 36)), config, looks=12)
        for _ in range(20)
    ]
    assert sum(r.decision == "RollBack" for r in decisions) >= 18


def test_sequential_result_follows_the_house_pattern():
    rng = np.random.default_rng(4)
    result = sequential_judge(minute_frame(rng.normal(10, 1, 60), rng.normal(10, 1, 60)), looks=6)
    assert list(result.frame["mode"].unique()) == ["sequential"] and "needed" in result.frame.columns
    d = result.to_dict()
    assert d["mode"] == "sequential" and d["decision"] == result.verdict
    json.dumps(d, allow_nan=False)
    assert "sequential decision" in result.summary()


def test_history_raises_the_threshold_when_days_drift():
    rng = np.random.default_rng(6)
    days = 10
    ts = pd.date_range("2026-02-01", periods=days * 288, freq="5min", tz="UTC")
    level = np.repeat(rng.normal(0, 3, days), 288)  # each day its own level: day-to-day drift
    history = pd.DataFrame({"metric": "lat", "ts": ts, "value": 50 + level + rng.normal(0, 1, len(ts))})
    canary_ts = pd.date_range("2026-02-12 12:00", periods=24, freq="5min", tz="UTC")
    frame = pd.DataFrame({
        "metric": "lat", "arm": np.repeat(["baseline", "canary"], 24),
        "ts": np.r_[canary_ts - pd.Timedelta(days=1), canary_ts],
        "value": np.r_[50 + rng.normal(0, 1, 24), 54 + rng.normal(0, 1, 24)], "kind": "samples",
    })  # fmt: skip
    plain = sequential_judge(frame, looks=6)
    calibrated = sequential_judge(frame, looks=6, history=history)
    assert plain.decision == "RollBack"  # a day's drift looks like a regression to the plain test
    assert calibrated.decision != "RollBack" and calibrated.metrics[0]["threshold"] > 20


def test_a_baseline_that_is_not_concurrent_is_said_so():
    rng = np.random.default_rng(31)
    canary_ts = pd.date_range("2026-02-10 12:00", periods=24, freq="5min", tz="UTC")
    frame = pd.DataFrame({
        "metric": "m", "arm": np.repeat(["baseline", "canary"], 24),
        "ts": np.r_[canary_ts - pd.Timedelta(days=1), canary_ts],
        "value": np.r_[50 + rng.normal(0, 0.5, 24), 53 + rng.normal(0, 0.5, 24)],
    })  # fmt: skip
    result = sequential_judge(frame, looks=6)
    state = result.metrics[0]
    assert state["concurrent"] is False and "not concurrent" in state["warning"]
    assert "warning: baseline not concurrent" in result.summary()
    concurrent = sequential_judge(frame.assign(ts=np.r_[canary_ts, canary_ts]), looks=6)
    assert concurrent.metrics[0]["concurrent"] is True and concurrent.metrics[0]["warning"] is None


def _rolled_back(baseline, canary, looks=6):
    config = CanaryConfig(metrics={"m": MetricConfig("m", direction="either")})
    monitor = SequentialMonitor(config, ["m"])
    per = len(baseline) // looks
    for look in range(looks):
        monitor.add_samples("m", "baseline", baseline[look * per : (look + 1) * per])
        monitor.add_samples("m", "canary", canary[look * per : (look + 1) * per])
        if monitor.look(final=look == looks - 1).decision == "RollBack":
            return True
    return False


def test_short_blocks_of_an_autocorrelated_metric_do_not_count_as_independent_evidence():
    """Six looks of four samples (a 2-hour canary at 5-minute samples), AR(1) phi = 0.8, no shift.

    Taken as independent, the six block means gave 21 false alarms in these 200 runs
    (10.5 %) where 5 % are allowed: adjacent short blocks share the series' excursions.
    """
    rng = np.random.default_rng(19)
    runs = 200
    alarms = sum(_rolled_back(100 + 10 * ar1(rng, 24, 0.8), 100 + 10 * ar1(rng, 24, 0.8)) for _ in range(runs))
    assert alarms <= binom.ppf(0.99, runs, 0.05)
    doubled = sum(_rolled_back(100 + 10 * ar1(rng, 24, 0.8), 2 * (100 + 10 * ar1(rng, 24, 0.8))) for _ in range(50))
    assert doubled >= 20  # a 2x regression is still caught about half the time (26 of 50)
    rng = np.random.default_rng(20)
    iid = sum(_rolled_back(rng.normal(100, 10, 24), rng.normal(150, 10, 24)) for _ in range(50))
    assert iid >= 45  # independent samples keep their power (49 of 50)


def test_block_inflation_and_the_deflated_mixture_t():
    assert ar1_block_inflation(0.0, 24, 6) == 1.0 and ar1_block_inflation(0.5, 24, 1) == 1.0
    weak, strong = ar1_block_inflation(0.3, 24, 6), ar1_block_inflation(0.8, 24, 6)
    assert 1.0 < weak < strong and ar1_block_inflation(0.8, 600, 6) < strong  # long blocks: little inflation
    assert log_mixture_t(5.0, 10.0, 6, inflation=1.0) == log_mixture_t(5.0, 10.0, 6)
    assert log_mixture_t(5.0, 10.0, 6, inflation=strong) < log_mixture_t(5.0, 10.0, 6)
    rng = np.random.default_rng(3)
    wandering, other = 100 + 10 * ar1(rng, 24, 0.9), 100 + 10 * ar1(rng, 24, 0.9)
    config = CanaryConfig(metrics={"m": MetricConfig("m")})
    plain, calibrated = SequentialMonitor(config, ["m"]), SequentialMonitor(config, ["m"])
    calibrated.calibrate("m", math.log(40.0))  # history ranks the e-values: no deflation needed
    for monitor in (plain, calibrated):
        for look in range(3):
            monitor.add_samples("m", "baseline", wandering[look * 8 : (look + 1) * 8])
            monitor.add_samples("m", "canary", other[look * 8 : (look + 1) * 8])
            state = monitor.look().metrics[0]
        assert state["autocorrelation"] > 0
    assert plain.tests["m"].inflation > 1.0 and calibrated.tests["m"].inflation == 1.0


def test_describing_the_baseline_of_an_unknown_metric_is_an_input_error():
    monitor = SequentialMonitor(CanaryConfig(), ["m"])
    with pytest.raises(InputError, match="not monitored"):
        monitor.describe_baseline("other", False)


def test_infinite_values_are_judged_by_an_anytime_valid_test():
    """Fisher's test repeated at every look rolled back on one +inf among the first samples."""
    steady = minute_frame(np.linspace(100, 101, 20), np.linspace(100, 101, 20))
    one_timeout = pd.concat([steady[steady["arm"] == "baseline"], steady.tail(1).assign(value=math.inf)])
    undecided = sequential_judge(one_timeout, looks=12)
    assert undecided.decision == "NoData"  # was RollBack: Fisher p = 1/21
    state = undecided.metrics[0]  # "no data" says what each arm brought: not "0/0 samples"
    assert (state["finite_baseline"], state["finite_canary"], state["infinite_canary"]) == (20, 0, 1)
    assert "no block: finite samples 20 baseline, 0 canary; infinite 0 baseline, 1 canary" in undecided.summary()
    rng = np.random.default_rng(20261201)
    rollbacks = 0
    for _ in range(200):  # both arms time out 5 % of the time: no regression
        b, c = rng.normal(100, 1, 48), rng.normal(100, 1, 48)
        b[rng.random(48) < 0.05], c[rng.random(48) < 0.05] = math.inf, math.inf
        rollbacks += sequential_judge(minute_frame(b, c), looks=12).decision == "RollBack"
    assert rollbacks <= binom.ppf(0.99, 200, 0.05)
    timeouts = rng.normal(100, 1, 40)
    timeouts[::5] = math.inf  # 8 of 40 canary samples time out, none in the baseline
    result = sequential_judge(minute_frame(rng.normal(100, 1, 40), timeouts), looks=12)
    assert result.decision == "RollBack"
    state = result.metrics[0]
    assert state["infinite_canary"] == 8 and state["infinite_baseline"] == 0
    assert "on +inf values: 8 in the canary, 0 in the baseline" in result.summary()
