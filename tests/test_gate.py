"""The gate's library parts: advisory models, repository binding, batch risk."""

import math

import numpy as np
import pandas as pd
import pytest

from releaserisk.errors import ForeignModelError
from releaserisk.gate import (
    MIN_CALIBRATION_FAILURES,
    BatchHistory,
    check_model_repository,
    default_model_path,
    deployment_history,
    repository_identity,
    score_commits,
)


def planted_history(n=400, intercept=-2.0, slope=0.8, seed=1):
    """Deployments whose failure probability is planted: logit P(fail) = intercept + slope * log(Σp)."""
    rng = np.random.default_rng(seed)
    expected = rng.lognormal(0.0, 0.8, n)
    truth = 1 / (1 + np.exp(-(intercept + slope * np.log(expected))))
    return expected, rng.random(n) < truth


def test_calibrated_batch_risk_covers_the_planted_rate():
    expected, failed = planted_history()
    history = BatchHistory.fit(expected, failed)
    assert history.coef is not None and history.failures >= MIN_CALIBRATION_FAILURES
    for sigma_p in (0.3, 1.0, 3.0):
        p, low, high = history.calibrated(sigma_p)
        planted = 1 / (1 + math.exp(-(-2.0 + 0.8 * math.log(sigma_p))))
        assert low <= planted <= high and low < p < high


def test_few_failures_give_no_calibration_but_a_percentile():
    expected = np.arange(1, 101, dtype=float) / 100
    failed = np.zeros(100, dtype=bool)
    failed[:5] = True
    history = BatchHistory.fit(expected, failed)
    assert history.calibrated(0.5) is None
    assert history.percentile(0.905) == pytest.approx(90.0)
    assert history.percentile(0.5) == pytest.approx(49.5)  # the tie counts half


class Constant:
    """A scorer that gives every change the same probability."""

    features = ("la", "ld")

    def __init__(self, p):
        self.p = p

    def predict_proba(self, frame):
        return np.column_stack([np.full(len(frame), 1 - self.p), np.full(len(frame), self.p)])

    def explain(self, frame, top=3):
        rows = [(i, 1, "la", frame["la"].iloc[i], 0.1) for i in range(len(frame))]
        return pd.DataFrame(rows, columns=["row", "rank", "feature", "value", "contribution"])


def changes(n):
    return pd.DataFrame({"sha": [f"{i:040x}" for i in range(n)], "subject": ["s"] * n, "la": [5] * n, "ld": [1] * n})


def test_a_large_batch_of_small_risks_is_not_saturated():
    history = BatchHistory.fit(*planted_history())
    result = score_commits(Constant(0.1), changes(40), threshold=0.5, model_id="m", history=history)
    batch = result.batch
    assert batch["expected_defective"] == pytest.approx(4.0)
    assert batch["any_defect"] < 0.9  # 1 − 0.9**40 would say 98.5 %
    assert batch["band_from"] == "percentile" and batch["band"] in ("medium", "high")
    assert "riskier than" in result.summary() and "P(deployment fails)" in result.summary()


class PerChange(Constant):
    """A scorer giving each change its own probability."""

    def __init__(self, ps):
        self.ps = np.asarray(ps, dtype=float)

    def predict_proba(self, frame):
        return np.column_stack([1 - self.ps, self.ps])


def test_a_batch_with_a_change_that_fails_the_gate_is_never_advised_a_full_rollout():
    """gunicorn: one commit at 52 % failed the gate while the batch's percentile said "rolling 100 %, bake 0"."""
    history = BatchHistory.fit(*planted_history())
    quiet = score_commits(PerChange([0.01, 0.02]), changes(2), threshold=0.5, model_id="m", history=history)
    assert quiet.batch["band"] == "low" and quiet.advice["strategy"] == "rolling" and not quiet.failed
    result = score_commits(PerChange([0.52, 0.01]), changes(2), threshold=0.5, model_id="m", history=history)
    assert result.failed and result.batch["percentile"] < 75  # the sum alone ranks low
    assert result.batch["band"] == "high" and result.batch["band_from"] == "changes"
    assert result.advice["strategy"] == "canary" and result.advice["approval_required"]
    assert "-> high (a change at the gate's threshold)" in result.summary()


def test_without_history_the_batch_band_is_the_riskiest_change():
    result = score_commits(Constant(0.05), changes(5), threshold=0.5, model_id="m")
    assert result.batch["band"] == "low" and result.batch["any_defect"] is None
    assert not result.advice["approval_required"]


def test_an_advisory_model_warns_and_does_not_fail_unless_enforced():
    advisory = ["time-ordered test AUC 0.500 (95 % CI 0.46–0.54) reaches 0.55: not clearly better than chance"]
    result = score_commits(Constant(0.9), changes(2), threshold=0.5, model_id="m", advisory=advisory)
    assert result.above_threshold and not result.failed and result.exit_code == 0
    payload = result.to_dict()
    assert payload["advisory"] is True and payload["gate"] == "pass"
    assert "advisory model: time-ordered test AUC 0.500" in result.summary()
    assert "would fail" in result.summary() and "advisory model" in result.markdown()
    enforced = score_commits(Constant(0.9), changes(2), threshold=0.5, model_id="m", advisory=advisory,
                             enforce_advisory=True)  # fmt: skip
    assert enforced.failed and enforced.exit_code == 1


def test_a_model_of_another_repository_is_refused_unless_allowed():
    trained = {"repositories": [{"name": "click", "roots": ["a" * 40]}]}
    here = {"name": "httpx", "roots": ["b" * 40], "store": "s.duckdb"}
    with pytest.raises(ForeignModelError, match=r"trained on repository 'click' \(root aaaaaaaaaa\), not on 'httpx'"):
        check_model_repository(trained, here)
    assert "allow-foreign-model" in check_model_repository(trained, here, allow_foreign=True)[0]
    same = {"name": "click-ci-checkout", "roots": ["a" * 40], "store": "t.duckdb"}
    assert check_model_repository(trained, same) == []  # another folder name, the same history
    assert "does not record" in check_model_repository({}, here)[0]


def test_default_model_path_is_next_to_the_store(tmp_path):
    assert default_model_path(tmp_path / "a" / "rr.duckdb", "org/lib") == tmp_path / "a" / "models" / "org_lib.skops"


def test_history_and_identity_from_a_store(simulated):
    from releaserisk.gate import load_scorer
    from releaserisk.store import open_snapshot

    card, _ = load_scorer(simulated["model"])
    with open_snapshot(simulated["db"]) as store:
        identity = repository_identity(store, "demo")
        history = deployment_history(store, card, "demo", settings=simulated["settings"])
    assert len(identity["roots"]) == 1 and identity["name"] == "demo"
    assert history.n > 20 and 0 < history.failures < history.n
    assert np.all(history.expected > 0)
