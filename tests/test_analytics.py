import numpy as np
import pandas as pd
import pytest

from releaserisk.analytics import release_analytics, wilson_interval
from tests.test_dora import dep, load


def shipped(i, finished, sha, **extra):
    """A deployment of ``sha`` (dep() gives each deployment a sha of its own)."""
    return {**dep(i, finished, **extra), "sha": sha}


def test_wilson_interval_known_values():
    low, high = wilson_interval([5], [10])
    assert low[0] == pytest.approx(0.2366, abs=1e-4) and high[0] == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval([0], [0])
    assert np.isnan(low[0]) and np.isnan(high[0])


def test_batch_buckets_rollbacks_hotfixes_and_stages(store):
    load(
        store,
        deployments=[
            dep(1, "2024-01-02T00:00Z", env="staging"), dep(2, "2024-01-02T04:00Z"),
            dep(3, "2024-01-03T00:00Z"), dep(4, "2024-01-03T02:00Z", kind="rollback", reverts_deployment_id="d3"),
            dep(5, "2024-01-04T00:00Z", kind="hotfix"), dep(6, "2024-01-05T00:00Z", kind="hotfix"),
        ],
        changes=[("d2", "c1"), ("d3", "c2"), ("d3", "c3"), ("d5", "c4")],
    )  # fmt: skip
    store.execute("UPDATE deployments SET sha = 's1' WHERE deployment_id = 'd2'")  # d2 promoted from d1
    analytics = release_analytics(store, "2024-01-01", "2024-01-08")
    buckets = analytics.failure_by_batch_size().set_index("bucket")
    assert buckets.loc["1", "deployments"] == 2 and buckets.loc["2-3", "failures"] == 1
    # three deployments cannot carry a logistic fit (they separate perfectly): none, and why
    assert buckets["fitted_rate"].isna().all() and "log2_size_coefficient" not in buckets.attrs
    assert buckets.attrs["fit_note"].startswith("No logistic fit: 2 failed and 1 successful deployments")
    rollbacks = analytics.rollbacks().iloc[0]
    assert rollbacks.rollbacks == 1 and rollbacks.success_rate == 1.0
    assert rollbacks.median_hours_to_rollback == pytest.approx(2.0)
    kinds = analytics.hotfixes().set_index("kind")
    assert kinds.loc["hotfix", "deployments"] == 2 and kinds.loc["hotfix", "failures"] == 1  # d5 then hotfix d6
    assert kinds.loc["hotfix", "skipped_stage_rate"] == 1.0
    stages = analytics.stage_promotion().set_index("to_env")
    assert stages.loc["production", "median_hours"] == pytest.approx(4.0)
    assert stages.loc["production", "skipped"] == 4
    weekly = analytics.frequency_vs_failure()
    assert weekly["deployments"].sum() == 5
    assert isinstance(analytics.environment_lag(), pd.DataFrame)


def test_failure_rates_are_missing_without_a_source_of_failures(store):
    # production deployments only (as from release tags): nothing can show a failure
    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
         changes=[("d1", "c1"), ("d2", "c2"), ("d2", "c3")])  # fmt: skip
    analytics = release_analytics(store, "2024-01-01", "2024-01-08")
    buckets = analytics.failure_by_batch_size().set_index("bucket")
    assert buckets.loc["1", "deployments"] == 1 and np.isnan(buckets.loc["1", "failure_rate"])
    assert buckets[["failures", "ci_low", "ci_high"]].isna().all().all()
    assert "no incidents" in analytics.failure_by_batch_size().attrs["note"]
    regular = analytics.hotfixes().set_index("kind").loc["regular"]
    assert regular.deployments == 2 and np.isnan(regular.failure_rate) and np.isnan(regular.failures)
    assert analytics.frequency_vs_failure()["change_failure_rate"].isna().all()
    assert "failures" not in analytics.stage_promotion()  # failed stage deployments are their own evidence
    # one incident anywhere: the same deployments now measure 0 failures
    load(store, incidents=[{"incident_id": "i", "service": "web", "opened_at": "2023-01-01T00:00Z"}])
    tracked = release_analytics(store, "2024-01-01", "2024-01-08").failure_by_batch_size().set_index("bucket")
    assert tracked.loc["1", "failure_rate"] == 0 and tracked.loc["1", "failures"] == 0


def test_only_a_stage_the_service_uses_can_be_skipped_and_only_before_production(store):
    load(
        store,
        deployments=[
            shipped(1, "2024-01-02T00:00Z", "s1", env="staging"),
            shipped(2, "2024-01-02T04:00Z", "s1"),  # promoted in 4 h
            shipped(3, "2024-01-03T00:00Z", "s3", kind="hotfix"),  # straight to production ...
            shipped(4, "2024-01-03T06:00Z", "s3", env="staging"),  # ... and staged only afterwards
            shipped(5, "2024-01-04T00:00Z", "s5", service="web"),  # web has no staging to skip
            shipped(6, "2024-01-05T00:00Z", "s6", service="web", kind="hotfix"),
            shipped(7, "2023-12-01T00:00Z", "s7", status="failure"),
            shipped(8, "2024-01-06T00:00Z", "s8", status="failure"),
        ],
        incidents=[{"incident_id": "i", "service": "web", "opened_at": "2023-01-01T00:00Z"}],
    )  # fmt: skip
    analytics = release_analytics(store, "2024-01-01", "2024-01-08")
    kinds = analytics.hotfixes().set_index("kind")
    assert kinds.loc["regular", "skipped_stage_rate"] == 0.0 and kinds.loc["hotfix", "skipped_stage_rate"] == 1.0
    assert kinds.loc["hotfix", "skipped_staging_rate"] == 1.0 and "skipped_dev_rate" not in kinds  # nobody uses dev
    assert np.isnan(kinds.loc["rollback", "skipped_stage_rate"])
    production = analytics.stage_promotion().set_index("to_env").loc["production"]
    assert production.promotions == 1 and production.median_hours == pytest.approx(4.0)  # not the -6 h of s3
    assert production.skipped == 1  # s3; web's shas never could pass through staging
    assert production.failed_deployments == 1  # d8; d7 failed before the window
    from releaserisk.features import deployment_batch_features

    batch = deployment_batch_features(store, ["production"], "staging").set_index("deployment_id")
    assert batch["skipped_stage"].to_dict() == {"d2": 0, "d3": 1, "d5": 0, "d6": 0}


def test_rollbacks_list_every_service_and_look_back_past_the_window(store):
    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z", service="web")])
    assert release_analytics(store, "2024-01-01", "2024-01-08").rollbacks().empty  # no rollback recorded anywhere
    load(
        store,
        deployments=[
            dep(8, "2023-12-01T00:00Z"), dep(9, "2023-12-01T02:00Z", kind="rollback", reverts_deployment_id="d8"),
        ],
    )  # fmt: skip
    table = release_analytics(store, "2024-01-01", "2024-01-08").rollbacks().set_index("service")
    assert list(table.index) == ["api", "web"] and table["rollbacks"].tolist() == [0, 0]
    assert table["success_rate"].isna().all()  # no rollback in the window: no rate, not 0 %
    assert table.loc["api", "days_since_last_rollback"] == pytest.approx(37 + 22 / 24)  # to the window's end
    assert np.isnan(table.loc["web", "days_since_last_rollback"])  # never rolled back


def test_environment_lag_counts_commits_and_hours_staging_is_ahead_at_each_week_end(store):
    load(
        store,
        deployments=[
            shipped(0, "2024-01-01T12:00Z", "s1", env="dev"),
            shipped(1, "2024-01-02T00:00Z", "s1", env="staging"), shipped(2, "2024-01-02T04:00Z", "s1"),
            shipped(3, "2024-01-09T00:00Z", "s3", env="staging"), shipped(4, "2024-01-10T00:00Z", "s4", env="staging"),
            shipped(5, "2024-01-17T00:00Z", "s3"),  # ships c3; c4 (in s4) still waits
            shipped(6, "2024-01-03T00:00Z", "w1", service="web"),  # web has no staging: no rows
        ],
        changes=[("d0", "c1"), ("d0", "c2"), ("d1", "c1"), ("d1", "c2"), ("d2", "c1"), ("d2", "c2"), ("d3", "c3"),
                 ("d4", "c4"), ("d5", "c3")],
    )  # fmt: skip
    every = release_analytics(store, "2024-01-01", "2024-01-21").environment_lag()
    dev = every[every["environment"] == "dev"]  # each stage against production: dev's commits shipped Jan 2
    assert dev["commits_ahead"].tolist() == [0, 0, 0] and dev["median_promotion_hours"].iloc[0] == 16.0
    lag = every[every["environment"] == "staging"].reset_index(drop=True)
    assert set(lag["service"]) == {"api"} and lag["week"].dt.strftime("%m-%d").tolist() == ["01-01", "01-08", "01-15"]
    assert lag["commits_ahead"].tolist() == [0, 2, 1]  # week ends: Jan 8, Jan 15, Jan 21 (the window's end)
    assert lag["hours_ahead"].tolist() == [0.0, 144.0, 264.0]  # c3 staged Jan 9; then c4, staged Jan 10
    assert lag["stage_deployments"].tolist() == [1, 2, 0]
    assert lag["median_promotion_hours"].iloc[0] == 4.0 and lag["median_promotion_hours"].iloc[1] == 192.0
    assert lag["never_promoted"].tolist() == [0, 1, 0]  # s4


def test_result_pattern_and_a_rollback_recorded_before_its_failure(store):
    import json

    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z"),
                     # the rollback's clock ran slow: it finished an hour before the deployment it reverts
                     dep(3, "2024-01-02T23:00Z", kind="rollback", reverts_deployment_id="d2")],
        changes=[("d2", "c1")],
    )  # fmt: skip
    analytics = release_analytics(store, "2024-01-01", "2024-01-08")
    rollbacks = analytics.rollbacks().iloc[0]
    assert rollbacks.rollbacks == 1 and np.isnan(rollbacks.median_hours_to_rollback)
    assert analytics.rollbacks().attrs["note"] == (
        "1 rollback finished before the deployment it reverts left out of the hours (clock skew)"
    )
    text = analytics.summary()
    assert text.startswith("Release-process analytics 2024-01-01 → 2024-01-08") and "95 % CI" in text
    assert list(analytics.frame.columns[:2]) == ["bucket", "min_size"]
    json.dumps(analytics.to_dict(), allow_nan=False)
