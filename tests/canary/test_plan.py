"""Bake-time planning: monotone in the effect, longer under autocorrelation, honest about no effect."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from releaserisk.canary.plan import fixed_samples_needed, log_mixture_t, plan_canary, sequential_blocks_needed
from releaserisk.errors import InputError


def baseline(phi=0.0, n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = phi * x[i - 1] + math.sqrt(1 - phi * phi) * rng.normal()
    ts = pd.date_range("2026-03-01", periods=n, freq="min", tz="UTC")
    return pd.DataFrame({"metric": "lat", "arm": "baseline", "ts": ts, "value": 100 + 10 * x})


def test_bake_times_fall_as_the_effect_grows_in_every_mode():
    frame = baseline(0.5)
    plans = {effect: plan_canary(frame, effect).frame.set_index("mode") for effect in (1.05, 1.1, 1.2, 1.5, 2.0)}
    for mode in ("kayenta", "robust", "sequential"):
        needed = [plans[e].loc[mode, "samples_per_arm"] for e in (1.05, 1.1, 1.2, 1.5, 2.0)]
        assert needed == sorted(needed, reverse=True) and needed[0] > needed[-1], (mode, needed)
    assert plans[1.2].loc["robust", "minutes"] == plans[1.2].loc["robust", "samples_per_arm"]  # one per minute


def test_autocorrelation_lengthens_the_robust_bake_but_not_kayentas():
    iid, dependent = plan_canary(baseline(0.0), 1.1), plan_canary(baseline(0.8), 1.1)
    robust = [p.frame.set_index("mode").loc["robust", "samples_per_arm"] for p in (iid, dependent)]
    kayenta = [p.frame.set_index("mode").loc["kayenta", "samples_per_arm"] for p in (iid, dependent)]
    assert robust[1] > 4 * robust[0]
    assert kayenta[1] < 2 * kayenta[0]
    assert dependent.baseline["autocorrelation"].iloc[0] > 0.7


def test_plan_result_pattern_and_errors():
    plan = plan_canary(baseline(), 1.2, 0.05)
    assert "sequential" in plan.summary() and len(plan.frame) == 3
    json.dumps(plan.to_dict(), allow_nan=False)
    with pytest.raises(InputError, match="effect"):
        plan_canary(baseline(), 1.0)
    with pytest.raises(InputError, match="alpha"):
        plan_canary(baseline(), 1.2, alpha=1.5)
    with pytest.raises(InputError, match="two or more"):
        plan_canary(baseline().head(1), 1.2)
    constant = baseline().assign(value=5.0)
    steady = plan_canary(constant, 1.2)
    assert steady.frame["samples_per_arm"].max() == 2  # no noise: any shift shows — and the plan says what it rests on
    assert steady.warnings == [
        "lat: the baseline's 600 values are all equal, so there is no spread to plan from; "
        "its bake times hold only if the canary is as steady"
    ]
    assert "warning: lat: the baseline's 600 values are all equal" in steady.summary()
    assert json.loads(json.dumps(steady.to_dict()))["warnings"] == steady.warnings
    assert plan.warnings == []


def test_sample_size_formulas():
    assert fixed_samples_needed(0.0, 0.05) == math.inf
    assert fixed_samples_needed(1.0, 0.05) == pytest.approx(15.7, abs=0.1)  # 2 (1.96 + 0.84)^2
    assert sequential_blocks_needed(0.0, 0.05) == math.inf
    assert sequential_blocks_needed(2.0, 0.05) < sequential_blocks_needed(0.5, 0.05)
    assert log_mixture_t(0.0, 0.0, 0) == 0.0 and log_mixture_t(0.0, 1.0, 1) < 0


def test_the_robust_plan_is_a_sample_size_at_which_the_robust_judge_detects_the_effect():
    from releaserisk.canary.config import CanaryConfig
    from releaserisk.canary.judge import judge

    frame = baseline(0.0, n=120, seed=4)
    needed = int(plan_canary(frame, 1.3).frame.set_index("mode").loc["robust", "samples_per_arm"])
    assert needed >= 8  # t quantiles at a handful of effective samples, not the normal's 2
    rng = np.random.default_rng(5)
    detected = 0
    for _ in range(40):
        b = 100 + 10 * rng.normal(size=needed)
        c = 130 + 10 * rng.normal(size=needed)
        ts = pd.date_range("2026-03-02", periods=needed, freq="min", tz="UTC")
        arms = pd.DataFrame({"metric": "lat", "arm": np.repeat(["baseline", "canary"], needed),
                             "ts": np.r_[ts, ts], "value": np.r_[b, c]})  # fmt: skip
        detected += judge(arms, CanaryConfig(confidence=0.95)).metrics[0].classification == "High"
    assert detected >= 0.6 * 40  # 80 % power planned; a binomial allowance for 40 runs
