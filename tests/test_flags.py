"""Flag analyses on hand-built timelines: candidate causes, flag releases, kill-switch time, stale flags."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from releaserisk.config import Settings
from releaserisk.flags import candidate_causes, flag_releases, kill_switch_summary, kill_switch_times, stale_flags


def _flags(store, rows):
    columns = ["source", "change_id", "flag_key", "environment", "service", "action", "from_state", "to_state",
               "owner", "changed_at"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["changed_at"] = pd.to_datetime(frame["changed_at"], utc=True)
    store.upsert("flag_changes", frame)


def _deploys(store, rows):
    frame = pd.DataFrame(rows, columns=["deployment_id", "service", "environment", "sha", "finished_at", "status"])
    frame["finished_at"] = pd.to_datetime(frame["finished_at"], utc=True)
    store.upsert("deployments", frame)


def _incidents(store, rows):
    frame = pd.DataFrame(rows, columns=["incident_id", "service", "opened_at", "resolved_at", "cause_deployment_id",
                                        "cause_flag_key"])  # fmt: skip
    for column in ("opened_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    store.upsert("incidents", frame)


@pytest.fixture
def timeline(store):
    _deploys(store, [
        ("d1", "web", "production", "a" * 40, "2024-06-03T11:20Z", "success"),  # 40 min before i1
        ("d0", "web", "production", "b" * 40, "2024-06-01T08:00Z", "success"),  # outside the 24 h window
        ("s1", "web", "staging", "c" * 40, "2024-06-03T11:58Z", "success"),  # not production
    ])  # fmt: skip
    _flags(store, [
        ("ld", "f1", "web.checkout", "production", "web", "on", "off", "on", "ann", "2024-06-03T11:55Z"),  # 5 min
        ("ld", "f2", "api.search", "production", "api", "on", "off", "on", "bob", "2024-06-03T11:58Z"),  # other service
        ("ld", "f3", "web.checkout", "production", "web", "off", "on", "off", "ann", "2024-06-03T12:07Z"),  # off
        ("ld", "f4", "web.banner", "staging", "web", "on", "off", "on", None, "2024-06-03T11:59Z"),  # not production
        ("ld", "f5", "web.search", "production", "web", "rollout", "10%", "50%", None, "2024-06-04T09:00Z"),
        ("ld", "f6", "web.search", "production", "web", "rollout", "50%", "20%", None, "2024-06-04T10:00Z"),
    ])  # fmt: skip
    _incidents(store, [
        ("i1", "web", "2024-06-03T12:00Z", "2024-06-03T13:00Z", None, None),
        ("i2", "web", "2024-06-03T12:00Z", None, "d1", None),  # explicit deployment
        ("i3", "api", "2024-06-03T12:30Z", "2024-06-03T12:45Z", None, "web.checkout"),  # explicit flag
    ])  # fmt: skip
    return store


def test_flag_flipped_5_minutes_before_outranks_deployment_40_minutes_before(timeline):
    causes = candidate_causes(timeline)
    i1 = causes[causes["incident_id"] == "i1"]
    assert list(i1["kind"]) == ["flag", "deployment"]
    assert list(i1["change_id"]) == ["ld:f1", "d1"]
    assert list(i1["gap_minutes"]) == [5.0, 40.0]
    assert list(i1["rank"]) == [1, 2] and not i1["explicit"].any()


def test_explicit_cause_comes_first(timeline):
    causes = candidate_causes(timeline)
    i2 = causes[causes["incident_id"] == "i2"]
    assert list(i2["change_id"]) == ["d1", "ld:f1"] and list(i2["explicit"]) == [True, False]
    i3 = causes[causes["incident_id"] == "i3"]  # api's own flag f2 is nearer; the named flag wins
    assert list(i3["change_id"]) == ["ld:f1", "ld:f2"]
    assert i3["explicit"].iloc[0] and i3["gap_minutes"].iloc[0] == 35.0


def test_window_is_configurable(timeline):
    wide = candidate_causes(timeline, Settings(cause_window_hours=72))
    assert "d0" in set(wide.loc[wide["incident_id"] == "i1", "change_id"])
    narrow = candidate_causes(timeline, Settings(cause_window_hours=0.5))
    assert list(narrow.loc[narrow["incident_id"] == "i1", "change_id"]) == ["ld:f1"]


def test_flag_releases_and_their_failures(timeline):
    releases = flag_releases(timeline)
    # turned on (f1, f2) or ramped up (f5); the ramp-down f6, the off f3 and staging f4 are no releases
    assert list(releases["change_id"]) == ["f1", "f2", "f5"]
    failed = dict(zip(releases["change_id"], releases["failed"], strict=True))
    assert failed == {"f1": True, "f2": False, "f5": False}
    assert releases.loc[releases["change_id"] == "f1", "incident_id"].iloc[0] in ("i1", "i3")
    windowed = flag_releases(timeline, since="2024-06-04", until="2024-06-05")
    assert list(windowed["change_id"]) == ["f5"]


def test_kill_switch_time_by_hand(timeline):
    times = kill_switch_times(timeline).set_index("incident_id")
    # i1 opened 12:00, its cause web.checkout turned off 12:07
    assert times.loc["i1", "kill_switch_minutes"] == 7.0 and times.loc["i1", "flag_key"] == "web.checkout"
    assert times.loc["i1", "cause_flag"]
    # i3 (api) was resolved 12:45, before nothing; f3 came at 12:07, before it opened
    assert "i3" not in times.index
    # i2 is still open: the off at 12:07 of a web flag counts
    assert times.loc["i2", "kill_switch_minutes"] == 7.0 and not times.loc["i2", "cause_flag"]
    summary = kill_switch_summary(times.reset_index())
    assert summary["n"] == 2 and summary["median_minutes"] == 7.0
    assert summary["ci_low"] is None  # two values cannot bound a median at 95 %


def test_kill_switch_summary_interval():
    times = pd.DataFrame({"kill_switch_minutes": [float(v) for v in range(1, 21)]})
    summary = kill_switch_summary(times)
    assert summary["n"] == 20 and summary["median_minutes"] == 10.5
    assert summary["ci_low"] <= 10.5 <= summary["ci_high"]
    assert kill_switch_summary(times.iloc[:0]) == {"n": 0, "median_minutes": None, "ci_low": None, "ci_high": None}


def test_stale_flags_on_a_real_repository(store, git_repo):
    git_repo.write("app/checkout.py", "if flags.enabled('web.checkout'):\n    new_flow()\n")
    git_repo.write("app/banner.py", "show('web.banner')\n")
    git_repo.commit("use flags")
    store.execute("INSERT INTO repos (repo, path) VALUES ('web', ?)", [str(git_repo.path)])
    store.execute("INSERT INTO services (service, repo) VALUES ('web', 'web')")
    _flags(store, [
        ("ld", "a", "web.checkout", "production", "web", "on", "off", "on", "ann", "2024-01-01T00:00Z"),
        ("ld", "b", "web.old", "production", "web", "on", "off", "on", "ann", "2024-01-01T00:00Z"),  # code removed
        ("ld", "c", "web.fresh", "production", "web", "on", "off", "on", "ann", "2024-03-25T00:00Z"),  # 6 days
        ("ld", "d", "web.banner", None, "web", "created", None, None, "ann", "2024-01-10T00:00Z"),  # never on
        ("ld", "e", "web.orphan", "production", "web", "off", "on", "off", None, "2024-03-30T00:00Z"),  # no owner
        ("ld", "f", "web.gone", "production", "web", "on", "off", "on", None, "2024-01-01T00:00Z"),
        ("ld", "g", "web.gone", None, "web", "archived", None, None, None, "2024-02-01T00:00Z"),  # archived
    ])  # fmt: skip
    found = stale_flags(store, as_of=datetime(2024, 3, 31, tzinfo=UTC)).set_index("flag_key")
    assert set(found.index) == {"web.checkout", "web.banner", "web.orphan"}
    assert found.loc["web.checkout", "stale"] and found.loc["web.checkout", "references"] == 1
    assert "fully on in production for 90 days (> 30) and still referenced 1 time at HEAD" in found.loc[
        "web.checkout", "reasons"]  # fmt: skip
    assert found.loc["web.banner", "never_on"] and not found.loc["web.banner", "stale"]
    assert found.loc["web.orphan", "unowned"] and found.loc["web.orphan", "reasons"] == "has no owner"
    # the code stops referencing web.checkout: no longer stale
    (git_repo.path / "app/checkout.py").unlink()
    git_repo.commit("remove the checkout flag")
    after = stale_flags(store, as_of=datetime(2024, 3, 31, tzinfo=UTC))
    assert "web.checkout" not in set(after["flag_key"])
    # a longer threshold makes nothing stale
    assert not stale_flags(store, Settings(stale_flag_days=120), as_of=datetime(2024, 3, 31, tzinfo=UTC))["stale"].any()


def test_stale_flags_without_repository_are_unknown_not_clean(store):
    _flags(store, [("ld", "a", "web.checkout", "production", "web", "on", "off", "on", "ann", "2024-01-01T00:00Z")])
    found = stale_flags(store, as_of=datetime(2024, 3, 31, tzinfo=UTC))
    assert found.empty  # not called stale without evidence the code still uses it


def test_flag_release_metrics_and_flag_caused_incidents(timeline):
    from releaserisk.flags import flag_caused_incidents, flag_release_metrics

    caused = flag_caused_incidents(timeline)
    # i1's nearest cause is the flag; i2 names a deployment; i3 names the flag
    assert list(caused["incident_id"]) == ["i1", "i3"] and set(caused["change_id"]) == {"ld:f1"}
    metrics = flag_release_metrics(timeline)
    assert (metrics["flag_releases"], metrics["failed_flag_releases"]) == (3, 1)
    assert metrics["ci_low"] < 1 / 3 < metrics["ci_high"]
    assert metrics["kill_switch"]["n"] == 2
    empty = flag_release_metrics(timeline, since="2030-01-01", until="2030-02-01")
    assert empty["flag_releases"] == 0 and empty["flag_failure_rate"] is None and empty["kill_switch"]["n"] == 0


def test_flag_release_summary_by_service(timeline):
    from releaserisk.flags import flag_release_summary

    whole = flag_release_summary(timeline)
    assert whole.to_dict(orient="records") == [
        {"group": "all", "flag_releases": 3, "failed_flag_releases": 1, "kill_switch_n": 2,
         "kill_switch_median_minutes": 7.0}
    ]  # fmt: skip
    per = flag_release_summary(timeline, by="service").set_index("group")
    assert per.loc["web", "flag_releases"] == 2 and per.loc["api", "failed_flag_releases"] == 0
    assert per.loc["api", "kill_switch_n"] == 0 and pd.isna(per.loc["api", "kill_switch_median_minutes"])
    assert flag_release_summary(timeline, by="team").loc[0, "group"] == "unassigned"


def test_production_environments_are_matched_in_any_case_as_everywhere(timeline):
    # the production predicate is definitions.production_deployment, shared with dora and analytics
    spelled = Settings(production_environments=("Production",))
    assert list(flag_releases(timeline, spelled)["change_id"]) == ["f1", "f2", "f5"]
    assert candidate_causes(timeline, spelled).equals(candidate_causes(timeline))
