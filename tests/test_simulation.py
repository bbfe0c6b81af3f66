"""The simulator: determinism, planted truth recovered by the analyses, scenario signatures."""

import hashlib

import pandas as pd
import pytest

from releaserisk.analytics import release_analytics
from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.data import load_samples
from releaserisk.canary.judge import judge
from releaserisk.errors import InputError
from releaserisk.ingest.git import ingest_git
from releaserisk.ingest.tabular import ingest_file
from releaserisk.simulation import simulate
from releaserisk.store import open_store


def digest(path):
    files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_byte_identical_outputs(tmp_path):
    a = simulate(tmp_path / "a", seed=5, weeks=4, services=2)
    b = simulate(tmp_path / "b", seed=5, weeks=4, services=2)
    c = simulate(tmp_path / "c", seed=6, weeks=4, services=2)
    head = [__import__("subprocess").run(["git", "-C", str(r.repo), "rev-parse", "HEAD"], capture_output=True,
                                         text=True).stdout for r in (a, b, c)]  # fmt: skip
    assert head[0] == head[1] != head[2]
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="unknown scenario"):
        simulate(tmp_path, scenario="chaos-monkey")
    with pytest.raises(InputError, match="services"):
        simulate(tmp_path, services=0)


def test_cli_start_puts_the_history_in_the_week_given(tmp_path, capsys):
    import pandas as pd

    from releaserisk.cli import main

    out = tmp_path / "org"
    assert main(["simulate", "--out", str(out), "--weeks", "2", "--services", "1", "--start", "2026-11-04"]) == 0
    deployments = pd.read_csv(out / "deployments.csv", parse_dates=["finished_at"])
    first, last = deployments["finished_at"].min(), deployments["finished_at"].max()
    assert first >= pd.Timestamp("2026-11-02", tz="UTC") and last < pd.Timestamp("2026-11-16", tz="UTC")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", str(out), "--start", "last monday"])
    assert exit_info.value.code == 2 and "'last monday' is not a date" in capsys.readouterr().err


def ingested(tmp_path, **kwargs):
    result = simulate(tmp_path / "org", **kwargs)
    store = open_store(tmp_path / "s.duckdb")
    ingest_git(store, result.repo, name="demo")
    for kind in ("services", "deployments", "incidents"):
        ingest_file(store, kind, result.files[kind])
    return result, store


def test_dora_failures_equal_the_planted_truth(tmp_path):
    result, store = ingested(tmp_path, seed=4, weeks=12, services=3)
    with store:
        dora = release_analytics(store).dora
        found = set(dora.deployments.loc[dora.deployments["failed"], "deployment_id"])
        truth = pd.read_csv(result.files["truth_deployments"])
        planted = set(truth.loc[truth["failed"], "deployment_id"])
        assert planted and found == planted


def test_canary_judge_fails_regressions_and_passes_clean(simulated):
    metrics = pd.read_csv(simulated["sim"].files["metrics"])
    truth = pd.read_csv(simulated["sim"].files["truth_deployments"]).set_index("deployment_id")["failed"]
    config = CanaryConfig(metrics={"latency_ms": MetricConfig("latency_ms", direction="increase"),
                                   "errors": MetricConfig("errors", direction="increase")})  # fmt: skip
    outcomes = []
    for analysis, rows in metrics.groupby("analysis_id"):
        verdict = judge(load_samples(rows.drop(columns="analysis_id")), config).verdict
        outcomes.append((bool(truth.get(analysis, False)), verdict))
    bad = [v for regressed, v in outcomes if regressed]
    good = [v for regressed, v in outcomes if not regressed]
    assert good and all(v == "Fail" for v in bad)
    assert sum(v == "Pass" for v in good) / len(good) >= 0.8


@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("quarterly-batches", "batch"),
        ("hotfix-chaos", "hotfix"),
        ("broken-rollbacks", "rollback"),
        ("slow-promotion", "promotion"),
        ("daily-fragile", "drift"),
    ],
)
def test_scenario_signatures_are_visible_in_the_analytics(tmp_path, scenario, check):
    weeks = 52 if scenario == "quarterly-batches" else 20
    _, store = ingested(tmp_path, seed=2, scenario=scenario, weeks=weeks, services=4)
    with store:
        analytics = release_analytics(store)
        if check == "batch":
            buckets = analytics.failure_by_batch_size()
            assert buckets.attrs["log2_size_coefficient"] > 0
            assert analytics.dora.frame["change_failure_rate"][0] > 0.2
        elif check == "hotfix":
            kinds = analytics.hotfixes().set_index("kind")
            assert kinds.loc["hotfix", "failure_rate"] > kinds.loc["regular", "failure_rate"]
            assert kinds.loc["hotfix", "skipped_stage_rate"] > 0.3
        elif check == "rollback":
            assert analytics.rollbacks()["success_rate"].mean() < 0.8
        elif check == "promotion":
            stages = analytics.stage_promotion().set_index("to_env")
            assert stages.loc["production", "median_hours"] > 24 and stages.loc["production", "skipped"] > 0
        else:
            weekly = analytics.frequency_vs_failure().dropna(subset=["change_failure_rate"])
            half = len(weekly) // 2
            assert weekly["change_failure_rate"].iloc[half:].mean() > weekly["change_failure_rate"].iloc[:half].mean()


def test_healthy_scenario_is_healthier(tmp_path):
    _, store = ingested(tmp_path, seed=2, weeks=20, services=4)
    with store:
        analytics = release_analytics(store)
        assert analytics.dora.frame["change_failure_rate"][0] < 0.15
        assert analytics.rollbacks()["success_rate"].mean() > 0.8


def test_risk_model_ranks_planted_bugs_above_clean_changes(tmp_path):
    from sklearn.metrics import roc_auc_score

    from releaserisk.config import Settings
    from releaserisk.labels import label_changes, training_frame
    from releaserisk.model import RiskModel

    result, store = ingested(tmp_path, seed=3, weeks=26, services=3)
    with store:
        settings = Settings(label_horizon_days=14)
        label_changes(store, "demo", settings=settings)
        frame = training_frame(store, settings=settings)
    planted = set(pd.read_csv(result.files["truth_bugs"])["sha"])
    cut = int(len(frame) * 0.8)  # train on the past, test on the later slice
    model = RiskModel(estimator="logistic").fit(frame.iloc[:cut], frame["bug"].iloc[:cut])
    later = frame.iloc[cut:]
    assert roc_auc_score(later["sha"].isin(planted), model.predict_proba(later)[:, 1]) > 0.7


def test_cli_scenario_names_match_the_simulator():
    from releaserisk.choices import SCENARIO_NAMES
    from releaserisk.simulation import SCENARIOS

    assert set(SCENARIO_NAMES) == set(SCENARIOS)


def test_planted_remedies_are_recovered(tmp_path):
    """Flag-caused incidents, kill switches, stale flags and a destructive migration, against the truth."""
    from datetime import timedelta

    from releaserisk.flags import candidate_causes, kill_switch_times, stale_flags
    from releaserisk.ingest.flags import ingest_flags
    from releaserisk.rollback import assess_rollback, rollback_readiness

    result, store = ingested(tmp_path, seed=4, weeks=12, services=3, remedies=True)
    with store:
        ingest_flags(store, result.files["flags"], "csv")
        truth = pd.read_csv(result.files["truth_flag_incidents"])
        causes = candidate_causes(store)
        top = causes[causes["rank"] == 1].set_index("incident_id")
        assert len(truth) == 6
        for row in truth.itertuples():
            assert top.loc[row.incident_id, "kind"] == "flag"
            assert top.loc[row.incident_id, "change_id"] == f"simulator:{row.change_id}"
        times = kill_switch_times(store).set_index("incident_id")
        found = times.loc[truth["incident_id"], "kill_switch_minutes"].to_numpy()
        assert found == pytest.approx(truth["kill_switch_minutes"].to_numpy(), abs=0.02)
        end = pd.Timestamp("2025-01-06T00:00:00Z") + timedelta(weeks=12)
        flags = stale_flags(store, as_of=end.to_pydatetime())
        planted = pd.read_csv(result.files["truth_flags"])
        for finding in ("stale", "never_on", "unowned"):
            expected = set(planted.loc[planted["finding"] == finding, "flag_key"])
            assert set(flags.loc[flags[finding], "flag_key"]) == expected, finding
        migration = pd.read_csv(result.files["truth_migrations"]).iloc[0]
        safety = assess_rollback(store, "demo", result.repo, [migration["sha"]])
        assert not safety.rollback_safe and safety.reasons == [migration["reason"]]
        readiness = rollback_readiness(store).set_index("service").loc["svc-a"]
        assert readiness["last_rollback_status"] == "failure" and readiness["last_crossed_migration"]


def test_remedies_leave_the_rest_unchanged(tmp_path):
    plain = simulate(tmp_path / "a", seed=2, weeks=4, services=2)
    planted = simulate(tmp_path / "b", seed=2, weeks=4, services=2, remedies=True)
    old = pd.read_csv(plain.files["deployments"])
    new = pd.read_csv(planted.files["deployments"])
    pd.testing.assert_frame_equal(new.iloc[: len(old)], old)
    assert plain.files["metrics"].read_bytes() == planted.files["metrics"].read_bytes()


def test_counting_flag_releases_recovers_the_planted_failures(tmp_path):
    """Plain DORA blames flag-caused incidents on the latest deployment; counting flags does not."""
    from releaserisk.dora import dora_metrics
    from releaserisk.ingest.flags import ingest_flags

    result, store = ingested(tmp_path, seed=4, weeks=12, services=3, remedies=True)
    with store:
        ingest_flags(store, result.files["flags"], "csv")
        truth = pd.read_csv(result.files["truth_deployments"])
        planted = set(truth.loc[truth["failed"], "deployment_id"])
        plain = dora_metrics(store)
        blamed = set(plain.deployments.loc[plain.deployments["failed"], "deployment_id"])
        assert planted < blamed  # the flag-caused incidents fail innocent deployments
        counted = dora_metrics(store, count_flag_releases=True)
        assert set(counted.deployments.loc[counted.deployments["failed"], "deployment_id"]) == planted
        flag_truth = pd.read_csv(result.files["truth_flag_incidents"])
        incidents = counted.incidents.set_index("incident_id").loc[flag_truth["incident_id"]]
        assert (incidents["link_method"] == "flag_change").all() and (incidents["cause_kind"] == "flag").all()
        assert incidents["kill_switch_minutes"].to_numpy() == pytest.approx(flag_truth["kill_switch_minutes"], abs=0.02)
        row = counted.frame.iloc[0]
        assert row["failed_flag_releases"] == len(flag_truth) and row["releases"] == row["deployments"] + row[
            "flag_releases"]  # fmt: skip
        assert row["change_failure_rate_with_flags"] > 0 and row["kill_switch_n"] == len(flag_truth)
        assert "flag releases" in counted.summary() and "kill switch" in counted.summary()
        assert "flag_releases" not in plain.frame.columns


def test_the_default_start_ends_every_history_before_the_ingest_clock():
    """Ingest refuses future times: a 520-week history from 2025 would have ended in 2035."""
    from datetime import UTC, datetime, timedelta

    from releaserisk.simulation import default_start

    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert default_start(26, now) == default_start(52, now) == datetime(2025, 1, 6, tzinfo=UTC)  # demo unchanged
    for weeks in (2, 52, 99, 100, 101, 200, 520):
        start = default_start(weeks, now)
        assert start.weekday() == 0 and start + timedelta(weeks=weeks + 1) <= now
        assert start == datetime(2025, 1, 6, tzinfo=UTC) or start + timedelta(weeks=weeks + 2) > now  # no earlier
