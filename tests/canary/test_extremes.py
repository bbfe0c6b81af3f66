"""Extreme finite values and missing timestamps: never a wrong answer, never a silent one.

Every statistic the judges use is invariant to multiplying both arms by one positive
constant, so a canary of values near 1e308 (or 1e-308) must be judged as the same canary
in milliseconds would be — no overflow to inf or NaN, no underflow to a spread of 0, no
RuntimeWarning printed — and a sample-size hint never asks for fewer samples than the
arms already hold.
"""

import json
import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.judge import judge, mann_whitney_interval
from releaserisk.canary.plan import plan_canary
from releaserisk.canary.robust import no_timestamps_warning, shift_test
from releaserisk.canary.sequential import sequential_judge
from releaserisk.cli import main
from releaserisk.errors import InputError

N = 30
MINUTES = pd.date_range("2026-03-02 10:00", periods=N, freq="min", tz="UTC")


def latency(seed=0, n=N):
    return np.random.default_rng(seed).normal(100.0, 5.0, n)


def mixed(seed=1):
    values = latency(seed)
    values[::3] = 1e308
    return values


#: canary values against a baseline of ~100 ms, and the verdicts every mode must reach
EXTREME_CANARIES = {
    "1e308": (np.full(N, 1e308), "High"),
    "1e200": (np.full(N, 1e200), "High"),
    "-1e308": (np.full(N, -1e308), "Low"),
    "1e-308": (np.full(N, 1e-308), "Low"),
    "a third at 1e308": (mixed(), None),  # a wide canary: a regression or inconclusive, never a pass
}


def arms(baseline, canary, ts=True):
    frame = pd.DataFrame({
        "metric": "lat", "arm": np.repeat(["baseline", "canary"], [len(baseline), len(canary)]),
        "ts": np.r_[MINUTES[: len(baseline)], MINUTES[: len(canary)]], "value": np.r_[baseline, canary],
    })  # fmt: skip
    return frame if ts else frame.drop(columns="ts")


def verdict(samples, mode, config=None):
    config = config or CanaryConfig()
    if mode == "sequential":
        return sequential_judge(samples, config, looks=6)
    return judge(samples, config, mode=mode)


@pytest.mark.parametrize("mode", ["kayenta", "robust", "sequential"])
@pytest.mark.parametrize("case", list(EXTREME_CANARIES))
def test_extreme_canary_values_are_judged_without_overflow_or_warnings(case, mode):
    canary, expected = EXTREME_CANARIES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning is a failure
        result = verdict(arms(latency(), canary), mode)
    if mode == "sequential":
        assert result.decision == "RollBack"
        return
    m = result.metrics[0]
    if expected is not None:
        assert (result.verdict, m.classification) == ("Fail", expected)
        assert math.isfinite(m.ci_low) and math.isfinite(m.ci_high) and math.isfinite(m.estimate)
    elif mode == "kayenta":  # R stopped its root search at 1000 iterations, unconverged: a Pass
        assert result.verdict == "Fail" and 1 < m.estimate < 10
    else:
        assert result.verdict in ("Fail", "NoData") and m.ci_low > 0
        if m.classification == "NoData":  # the hint asks for more than the arms have
            asked = int(re.search(r"about ([\d,]+) samples per arm", m.reason).group(1).replace(",", ""))
            assert asked > N


@pytest.mark.parametrize("mode", ["kayenta", "robust", "sequential"])
def test_arms_at_opposite_ends_of_the_float_range(mode):
    """Differences of -1e308 and 1e308 leave the float range: decided in a scaled unit, the ends reported as inf.

    A negative baseline has a negative mean ratio, which no ``allowed_increase`` reaches:
    the metric's effect size is the common-language one (the sequential mode has only
    the mean ratio, so its e-value is checked).
    """
    baseline = -1e308 * (1 + 0.01 * latency(2) / 100)
    canary = 1e308 * (1 + 0.01 * latency(3) / 100)
    config = CanaryConfig(metrics={"lat": MetricConfig("lat", effect_size="cles")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = verdict(arms(baseline, canary), mode, config)
        assert mann_whitney_interval(canary, baseline).low == math.inf
        assert shift_test(baseline, canary).estimate == math.inf
    if mode == "sequential":
        state = result.metrics[0]
        assert state["e_value"] > state["threshold"] and state["shift"] == math.inf
    else:
        assert result.verdict == "Fail" and result.metrics[0].ci_low == math.inf


def test_an_interval_beyond_the_float_range_is_never_a_pass():
    """A baseline near 1e-299 beside a canary half at 1.7e308: the margin underflows in the scaled unit."""
    tiny = np.ldexp(latency(7), -1000)
    canary = np.r_[np.full(N // 2, 1.7e308), np.ldexp(latency(8, N // 2), -1000)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = judge(arms(tiny, canary), CanaryConfig(), mode="robust").metrics[0]
    assert m.classification == "NoData" and m.ci_high == math.inf and "margin 50%" in m.reason


@pytest.mark.parametrize("mode", ["kayenta", "robust", "sequential"])
@pytest.mark.parametrize("case", list(EXTREME_CANARIES))
def test_extreme_canary_values_on_the_command_line(tmp_path, capsys, case, mode):
    canary, expected = EXTREME_CANARIES[case]
    data = tmp_path / "s.csv"
    arms(latency(), canary).to_csv(data, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["canary", "--data", str(data), "--mode", mode, "--format", "json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert captured.err == ""
    assert code == 1 if expected is not None or mode != "robust" else code in (1, 3)
    assert out["verdict" if mode != "sequential" else "decision"] in ("Fail", "RollBack", "NoData")


def test_no_warning_reaches_the_real_stderr(tmp_path):
    """The CLI in its own process: numpy's overflow warnings used to print there."""
    data = tmp_path / "s.csv"
    arms(latency(), np.full(N, 1e308)).to_csv(data, index=False)
    for mode in ("robust", "sequential"):
        run = subprocess.run(
            [sys.executable, "-m", "releaserisk.cli", "canary", "--data", str(data), "--mode", mode],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (run.returncode, run.stderr) == (1, ""), run.stderr


def test_event_counts_beyond_the_float_range_are_a_typed_error(tmp_path, capsys):
    samples = arms(np.full(N, 3.0), np.full(N, 1e308)).assign(kind="counts")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="largest float"):
            sequential_judge(samples, looks=6)
    data = tmp_path / "counts.csv"
    samples.drop(columns="kind").rename(columns={"value": "count"}).to_csv(data, index=False)
    assert main(["canary", "--data", str(data), "--mode", "sequential"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "largest float" in err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    effect=st.floats(0.8, 1.3),
    power=st.integers(-900, 900),
)
def test_robust_and_sequential_verdicts_do_not_depend_on_the_unit(seed, effect, power):
    """Both arms times 2**power: the same verdict, the same evidence, the interval times 2**power."""
    rng = np.random.default_rng(seed)
    baseline = rng.normal(100.0, 10.0, 24)
    canary = rng.normal(100.0 * effect, 10.0, 24)
    plain, scaled = arms(baseline, canary), arms(np.ldexp(baseline, power), np.ldexp(canary, power))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        robust = [judge(s, CanaryConfig(), mode="robust") for s in (plain, scaled)]
        sequential = [sequential_judge(s, CanaryConfig(), looks=6) for s in (plain, scaled)]
    assert robust[0].verdict == robust[1].verdict
    one, other = robust[0].metrics[0], robust[1].metrics[0]
    assert (one.classification, one.p_value, one.n_effective) == (
        other.classification,
        other.p_value,
        other.n_effective,
    )
    assert other.ci_low == math.ldexp(one.ci_low, power) and other.ci_high == math.ldexp(one.ci_high, power)
    assert (sequential[0].decision, sequential[0].look) == (sequential[1].decision, sequential[1].look)
    assert sequential[0].metrics[0]["e_value"] == sequential[1].metrics[0]["e_value"]


@pytest.mark.parametrize("power", [-1000, -900, 900, 1000])
def test_the_bake_plan_does_not_depend_on_the_unit(power):
    ts = pd.date_range("2026-03-01", periods=200, freq="min", tz="UTC")
    values = np.random.default_rng(4).normal(100.0, 20.0, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = plan_canary(pd.DataFrame({"metric": "lat", "ts": ts, "value": values}))
        scaled = plan_canary(pd.DataFrame({"metric": "lat", "ts": ts, "value": np.ldexp(values, power)}))
    assert plain.frame.equals(scaled.frame) and not scaled.warnings  # 1e-308 values keep their spread
    assert scaled.baseline["sd"].iloc[0] == math.ldexp(plain.baseline["sd"].iloc[0], power)


def test_a_sequential_hint_never_asks_for_fewer_samples_than_the_arms_have():
    """At the allowed bound the e-value's plan needed 40 samples per arm where 48 had not decided."""
    rng = np.random.default_rng(1)
    ts = pd.date_range("2026-03-02 10:00", periods=48, freq="min", tz="UTC")
    samples = pd.DataFrame({
        "metric": "lat", "arm": np.repeat(["baseline", "canary"], 48), "ts": np.r_[ts, ts],
        "value": np.r_[rng.normal(100, 20, 48), rng.normal(148, 20, 48)],
    })  # fmt: skip
    config = CanaryConfig(metrics={"lat": MetricConfig("lat", direction="increase", allowed_increase=1.5)})
    result = sequential_judge(samples, config, looks=6)
    state = result.metrics[0]
    assert result.decision == "NoData" and state["status"] == "open"
    assert state["needed"] > state["n_baseline"] == 48


def test_samples_without_timestamps_are_said_so_and_judged_as_before(tmp_path, capsys):
    baseline, canary = latency(5), latency(6)
    timed = judge(arms(baseline, canary), CanaryConfig()).metrics[0]
    untimed = judge(arms(baseline, canary, ts=False), CanaryConfig()).metrics[0]
    assert timed.warning is None and timed.concurrent is True
    assert untimed.warning == no_timestamps_warning(("baseline", "canary")) and untimed.concurrent is None
    assert untimed.classification == "Pass"  # said, not judged differently
    # a canary file without a ts column beside a baseline with one (the trial that passed silently)
    arms(baseline, canary).query("arm == 'baseline'").drop(columns="arm").to_csv(tmp_path / "b.csv", index=False)
    arms(baseline, canary, ts=False).query("arm == 'canary'").drop(columns="arm").to_csv(
        tmp_path / "c.csv", index=False
    )
    given = ["canary", "--baseline", str(tmp_path / "b.csv"), "--canary", str(tmp_path / "c.csv")]
    assert main([*given, "--format", "json"]) == 0
    metric = json.loads(capsys.readouterr().out)["metrics"][0]
    assert metric["concurrent"] is None and metric["warning"] == no_timestamps_warning(("canary",), ordered=True)
    assert main(given) == 0
    assert "warning: samples without timestamps in the canary arm" in capsys.readouterr().out
    assert judge(arms(baseline, canary, ts=False), CanaryConfig(), mode="kayenta").metrics[0].warning is None
