"""DORA metrics on hand-computed fixtures (tables filled directly)."""

import gc
import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from releaserisk.dora import PROFILES, dora_metrics, tier
from releaserisk.errors import InputError, StoreError

T = pd.Timestamp


def ts(text):
    return T(text, tz="UTC")


def load(store, commits=(), deployments=(), changes=(), incidents=(), prs=(), pr_commits=(), reviews=(), services=()):
    if commits:
        store.upsert("commits", pd.DataFrame(
            [{"repo": "r", "sha": s, "committed_at": ts(t), "authored_at": ts(t), "seq": i, "parents": []}
             for i, (s, t) in enumerate(commits)]))  # fmt: skip
    if deployments:
        frame = pd.DataFrame(deployments)
        for column in ("started_at", "finished_at"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        frame["started_at"] = frame.get("started_at", frame["finished_at"])
        store.upsert("deployments", frame)
    if changes:
        store.upsert("deployment_changes", pd.DataFrame([{"deployment_id": d, "repo": "r", "sha": s}
                                                          for d, s in changes]))  # fmt: skip
    for table, rows in (("incidents", incidents), ("pull_requests", prs), ("pr_commits", pr_commits),
                        ("pr_reviews", reviews), ("services", services)):  # fmt: skip
        if rows:
            frame = pd.DataFrame(rows)
            for column in frame.columns:
                if column.endswith("_at"):
                    frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
            store.upsert(table, frame)


def dep(i, finished, kind="regular", status="success", env="production", service="api", **extra):
    return {"deployment_id": f"d{i}", "service": service, "environment": env, "sha": f"s{i}", "status": status,
            "kind": kind, "finished_at": finished, "repo": "r", **extra}  # fmt: skip


@pytest.fixture
def fixture_store(store):
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-02T00:00Z"), ("c3", "2024-01-03T00:00Z"),
                 ("c4", "2024-01-08T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-03T12:00Z"),
                     dep(3, "2024-01-04T00:00Z", kind="rollback", reverts_deployment_id="d2"),
                     dep(4, "2024-01-09T00:00Z"), dep(5, "2024-01-02T00:00Z", env="staging"),
                     dep(6, "2024-01-05T00:00Z", status="failure")],
        changes=[("d1", "c1"), ("d2", "c2"), ("d2", "c3"), ("d4", "c4"), ("d5", "c1")],
        incidents=[{"incident_id": "i1", "service": "api", "opened_at": "2024-01-09T06:00Z",
                    "resolved_at": "2024-01-09T08:30Z"}],
        prs=[{"repo": "r", "number": 1, "author": "alice", "title": "<script>x</script>",
              "created_at": "2024-01-01T06:00Z", "merged_at": "2024-01-03T06:00Z", "merge_commit_sha": "c3"}],
        pr_commits=[{"repo": "r", "number": 1, "sha": "c2", "authored_at": "2024-01-01T03:00Z"}],
        reviews=[{"repo": "r", "number": 1, "reviewer": "alice", "submitted_at": "2024-01-01T07:00Z"},
                 {"repo": "r", "number": 1, "reviewer": "bob", "submitted_at": "2024-01-02T06:30Z"}],
    )  # fmt: skip
    return store


def test_every_metric_by_hand(fixture_store):
    result = dora_metrics(fixture_store, "2024-01-01", "2024-01-22")
    s = result.frame.iloc[0].to_dict()
    assert s["deployments"] == 4  # staging and failed deployments do not count
    assert s["deploys_per_week"] == pytest.approx(4 / 3)
    assert s["deploy_days_per_week"] == pytest.approx(4 / 3)
    assert s["lead_time_median_hours"] == pytest.approx(18.0)  # 12, 12, 24, 36
    assert s["lead_time_p90_hours"] == pytest.approx(32.4)
    assert s["change_failure_rate"] == pytest.approx(0.5)  # d2 rolled back, d4 caused i1
    assert s["recovery_median_hours"] == pytest.approx((12 + 8.5) / 2)
    assert s["restore_median_hours"] == pytest.approx(2.5)
    assert s["rework_rate"] == pytest.approx(0.25)  # the rollback
    assert s["pr_cycle_median_hours"] == pytest.approx(57.0)
    deployments = result.deployments.set_index("deployment_id")
    assert deployments.loc["d2", "failure_reason"] == "rolled back"
    assert deployments.loc["d4", "failure_reason"] == "incident"
    assert not deployments.loc["d1", "failed"]
    incident = result.incidents.iloc[0]
    assert (incident.deployment_id, incident.link_method) == ("d4", "latest_prior_deployment")
    pr = result.pull_requests.iloc[0]
    assert (pr.coding_minutes, pr.pickup_minutes, pr.review_minutes, pr.deploy_minutes) == (180, 1470, 1410, 360)


def test_a_review_after_the_merge_is_no_pickup_or_review_phase(fixture_store):
    load(
        fixture_store,
        prs=[{"repo": "r", "number": 2, "author": "alice", "created_at": "2024-01-01T06:00Z",
              "merged_at": "2024-01-03T06:00Z", "merge_commit_sha": "c3"}],
        reviews=[{"repo": "r", "number": 2, "reviewer": "bob", "submitted_at": "2024-01-04T06:00Z"}],  # approved late
    )  # fmt: skip
    late = dora_metrics(fixture_store, "2024-01-01", "2024-01-22").pull_requests.set_index("number").loc[2]
    assert math.isnan(late.pickup_minutes) and math.isnan(late.review_minutes)  # not 4320 and -1440
    assert late.deploy_minutes == 360 and late.cycle_minutes == 2 * 1440 + 360  # the other phases stand
    # DevLake takes the first comment whenever it came and drops the negative review span
    peer = dora_metrics(fixture_store, "2024-01-01", "2024-01-22", profile="devlake").pull_requests
    peer = peer.set_index("number").loc[2]
    assert peer.pickup_minutes == 3 * 1440 and math.isnan(peer.review_minutes)


def test_weeks_without_deployments_are_zero_not_missing(fixture_store):
    weeks = dora_metrics(fixture_store, "2024-01-01", "2024-01-22").by_period.set_index("period")
    assert list(weeks.index) == ["2024-W01", "2024-W02", "2024-W03"]
    assert weeks["deployments"].tolist() == [3, 1, 0]
    assert weeks.loc["2024-W03", "deploys_per_week"] == 0.0
    assert math.isnan(weeks.loc["2024-W03", "lead_time_median_hours"])
    assert math.isnan(weeks.loc["2024-W03", "change_failure_rate"])
    assert weeks.loc["2024-W03", "change_failure_rate_tier"] == "no data"


def test_no_deployments_is_no_data_never_elite(store):
    s = dora_metrics(store, "2024-01-01", "2024-01-08").frame.iloc[0]
    assert s.deployments == 0 and math.isnan(s.change_failure_rate)
    assert s.change_failure_rate_tier == "no data" and s.lead_time_median_hours_tier == "no data"
    assert s.deploys_per_week_tier == "low"


def test_one_deployment_and_incident_before_any_deployment(store):
    load(store, deployments=[dep(1, "2024-01-03T00:00Z")],
         incidents=[{"incident_id": "early", "service": "api", "opened_at": "2024-01-02T00:00Z"}])  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    assert result.incidents.iloc[0].link_method == "unlinked"
    assert result.frame.iloc[0].change_failure_rate == 0.0
    assert math.isnan(result.frame.iloc[0].restore_median_hours)  # never resolved


def test_unresolved_incident_fails_the_deployment_without_recovery(store):
    load(store, deployments=[dep(1, "2024-01-03T00:00Z")],
         incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-04T00:00Z"}])  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    row = result.deployments.iloc[0]
    assert row.failed and pd.isna(row.recovery_hours)
    assert result.frame.iloc[0].change_failure_rate == 1.0


def test_hotfix_during_incident_and_rollback_to_older_sha(store):
    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z"),
                             dep(3, "2024-01-03T02:00Z", kind="hotfix")],
         incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-03T01:00Z",
                     "resolved_at": "2024-01-03T03:00Z"}])  # fmt: skip
    d = dora_metrics(store, "2024-01-01", "2024-01-08").deployments.set_index("deployment_id")
    assert d.loc["d2", "failed"] and d.loc["d2", "recovery_hours"] == pytest.approx(2.0)  # the hotfix restored
    assert d.loc["d3", "unplanned"] and not d.loc["d1", "unplanned"]


def test_two_services_grouped(store):
    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z", service="web"),
                             dep(3, "2024-01-04T00:00Z", service="web", kind="rollback")],
         services=[{"service": "api", "team": "core"}, {"service": "web", "team": "front"}])  # fmt: skip
    by_service = dora_metrics(store, "2024-01-01", "2024-01-08", by="service").frame.set_index("group")
    assert by_service.loc["api", "deployments"] == 1 and by_service.loc["web", "deployments"] == 2
    assert by_service.loc["web", "change_failure_rate"] == 0.5 and by_service.loc["api", "change_failure_rate"] == 0
    by_team = dora_metrics(store, "2024-01-01", "2024-01-08", by="team").frame.set_index("group")
    assert set(by_team.index) == {"core", "front"}


def test_iso_weeks_in_utc_regardless_of_input_zone(store):
    # Sunday 23:30 at UTC-2 is Monday 01:30 UTC: week 2
    load(store, deployments=[dep(1, pd.Timestamp("2024-01-07T23:30:00-02:00").tz_convert("UTC"))])
    weeks = dora_metrics(store, "2024-01-01", "2024-01-15").by_period.set_index("period")
    assert weeks["deployments"].tolist() == [0, 1]


def test_devlake_orders_a_deployment_without_a_start_time_by_its_finish(store):
    load(
        store,
        commits=[("c1", "2023-12-31T00:00Z")],
        # d0 starts the chain (DevLake gives the first deployment of a chain no changes)
        deployments=[dep(0, "2023-12-30T00:00Z"), dep(1, "2024-01-02T00:00Z", started_at=None),  # no started_at
                     dep(2, "2024-01-03T00:00Z", started_at="2024-01-02T12:00Z")],
        changes=[("d1", "c1"), ("d2", "c1")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2023-12-31T12:00Z",
              "merged_at": "2024-01-01T00:00Z", "merge_commit_sha": "c1"}],
    )  # fmt: skip
    pr = dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake").pull_requests.iloc[0]
    assert (pr.deployment_id, pr.deploy_minutes) == ("d1", 1440)  # not d2, as if it had started last


def test_devlake_profile_rules(store):
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T10:00:01Z", started_at="2024-01-03T09:00Z")],
        changes=[("d2", "c1")],
        incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-03T10:00:01Z"}],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-03T09:00Z",
              "merged_at": "2024-01-03T10:00Z", "merge_commit_sha": "c1"}],
    )  # fmt: skip
    dora = dora_metrics(store, "2024-01-01", "2024-01-08")
    devlake = dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake")
    # deploy phase: 1 second -> 1 minute (rounded up) in devlake
    assert devlake.pull_requests.iloc[0].deploy_minutes == 1.0
    assert dora.pull_requests.iloc[0].deploy_minutes == pytest.approx(1 / 60)
    assert devlake.frame.iloc[0].pr_cycle_median_hours == pytest.approx(61 / 60)
    # incident opened the second d2 finished: dora links d2 (at or before), devlake d1 (strictly before)
    assert dora.incidents.iloc[0].deployment_id == "d2"
    assert devlake.incidents.iloc[0].deployment_id == "d1"


def test_peer_rules_whole_minutes_merge_commit_and_incident_only_failures(store):
    load(
        store,
        commits=[("m", "2024-01-02T10:00Z"), ("p1", "2024-01-02T09:00:30Z"), ("p2", "2024-01-02T07:00Z"),
                 ("m2", "2024-01-02T09:30Z"), ("e", "2024-01-02T08:57Z")],
        deployments=[dep(1, "2024-01-01T00:00Z"), dep(2, "2024-01-02T11:00Z", started_at="2024-01-02T10:30Z"),
                     dep(3, "2024-01-03T00:00Z"), dep(4, "2024-01-03T01:00Z", kind="rollback",
                                                      reverts_deployment_id="d3")],
        changes=[("d2", "m"), ("d2", "p2"), ("d2", "e")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-02T09:00Z",
              "merged_at": "2024-01-02T10:00Z", "merge_commit_sha": "m"},
             {"repo": "r", "number": 2, "author": "a", "created_at": "2024-01-02T08:00Z",
              "merged_at": "2024-01-02T09:30Z", "merge_commit_sha": "m2"}],
        pr_commits=[{"repo": "r", "number": 1, "sha": "p1", "authored_at": "2024-01-02T09:00:30Z"},
                    {"repo": "r", "number": 2, "sha": "p2", "authored_at": "2024-01-02T07:00Z"}],
        reviews=[{"repo": "r", "number": 1, "reviewer": "bob", "submitted_at": "2024-01-02T09:31Z"}],
        # incidents are tracked (another service's, opened before any deployment, naming a root cause as Four
        # Keys needs): a 0 % failure rate is a measurement here
        incidents=[{"incident_id": "w", "service": "web", "opened_at": "2023-12-31T00:00Z", "cause_sha": "deadbeef"}],
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    dora, devlake, fourkeys = (dora_metrics(store, *window, profile=p) for p in ("dora", "devlake", "fourkeys"))
    pr1 = devlake.pull_requests.set_index("number").loc[1]
    # exactly 31 minutes stays 31 (hours * 60 gave 31.000000000000004, rounded up to 32);
    # first commit 30 s after the PR opened: -0.5 min rounds up to 0 and is kept
    assert (pr1.pickup_minutes, pr1.coding_minutes, pr1.deploy_minutes) == (31, 0, 60)
    assert dora.pull_requests.set_index("number").loc[1].coding_minutes == pytest.approx(-0.5)
    assert devlake.frame.iloc[0].pr_cycle_median_hours == pytest.approx((0 + 60 + 60) / 60)
    # PR 2's merge commit never shipped; DevLake does not look at its other commits, and lists it undeployed
    # with the parts that exist: coding 60 min, opened -> merged 90 min
    undeployed = devlake.pull_requests.set_index("number").loc[2]
    assert pd.isna(undeployed.deployment_id) and pd.isna(undeployed.deploy_minutes)
    assert undeployed.cycle_minutes == 60 + 90
    assert dora.pull_requests.set_index("number").loc[2].deployment_id == "d2"
    # e: exactly 123 minutes, whole minutes in fourkeys (a floor of hours * 60 gave 122)
    assert fourkeys.changes.set_index("sha").loc["e"].lead_time_hours == pytest.approx(123 / 60)
    # d3 was rolled back: a failure by DORA's definition, not for the incident-only peers
    assert dora.frame.iloc[0].change_failure_rate == pytest.approx(1 / 4)
    assert devlake.frame.iloc[0].change_failure_rate == 0 and fourkeys.frame.iloc[0].change_failure_rate == 0
    assert not devlake.deployments.set_index("deployment_id").loc["d3"].failed


def test_drill_downs_are_read_on_first_use_and_kept_across_calls(store, monkeypatch):
    # committed a day after the deployment that shipped it (a rebased sha): both keep the row, flagged
    # as clock skew, and leave it out of the median
    load(store, commits=[("c1", "2024-01-03T00:00Z")], deployments=[dep(1, "2024-01-02T00:00Z")],
         changes=[("d1", "c1")])  # fmt: skip
    first = dora_metrics(store, "2024-01-01", "2024-01-08")
    # a later call has its own working tables; the first result, unread until now, keeps its rows
    assert dora_metrics(store, "2024-01-01", "2024-01-08", profile="fourkeys").changes.clock_skew.tolist() == [True]
    assert first.changes["sha"].tolist() == ["c1"] and first.changes.lead_time_hours.iloc[0] == -24.0

    def working_tables():
        sql = "SELECT count(*) FROM duckdb_tables() WHERE temporary AND starts_with(table_name, '_dora')"
        return store.execute(sql).fetchone()[0]

    assert working_tables() == 2 * 5 + 1  # the fourkeys result above (and its untraced) is garbage till the next call
    del first
    gc.collect()
    unread = dora_metrics(store, "2024-01-01", "2024-01-08")
    assert working_tables() == 5  # only the live result's

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("releaserisk.dora._aggregates", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dora_metrics(store, "2024-01-01", "2024-01-08")
    monkeypatch.undo()
    again = dora_metrics(store, "2024-01-01", "2024-01-08")
    assert working_tables() == 2 * 5 and again.changes["sha"].tolist() == ["c1"]  # the interrupted call's are gone
    store.close()
    with pytest.raises(StoreError, match="before closing the store"):
        _ = unread.deployments


def test_lower_median_interpolated_median_and_whole_hours(store):
    load(store,
         commits=[("a", "2024-01-01T00:00Z"), ("b", "2024-01-01T00:00Z"), ("c", "2024-01-01T00:00Z"),
                  ("d", "2024-01-01T00:00Z"), ("e", "2024-01-02T12:00Z"), ("f", "2024-01-01T05:59:10Z"),
                  ("g", "2024-01-01T03:29:30Z")],
         deployments=[dep(0, "2023-12-31T00:00Z"), dep(1, "2024-01-01T01:00Z"), dep(2, "2024-01-01T02:00Z"),
                      dep(3, "2024-01-01T04:00Z"), dep(4, "2024-01-01T08:00Z"), dep(5, "2024-01-02T00:00Z"),
                      dep(6, "2024-01-01T06:00Z")],
         changes=[("d1", "a"), ("d2", "b"), ("d3", "c"), ("d4", "d"), ("d5", "e"), ("d6", "f"), ("d6", "g")],
         incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-01T10:00Z",
                     "resolved_at": "2024-01-01T12:59Z"}])  # fmt: skip
    dora = dora_metrics(store, "2024-01-01", "2024-01-08").frame.iloc[0]
    fourkeys = dora_metrics(store, "2024-01-01", "2024-01-08", profile="fourkeys").frame.iloc[0]
    # leads 1, 2, 4, 8 hours, f 50 s, g 2 h 30 min 30 s; e was deployed before it was committed (-12 h).
    # dora: median of the six possible spans (e is clock skew). fourkeys counts whole minutes: f (0 min)
    # and e are dropped, g is 150 min
    assert dora.lead_time_median_hours == pytest.approx((2 + 2 + 30.5 / 60) / 2)
    assert fourkeys.lead_time_median_hours == pytest.approx(2.5)
    assert fourkeys.restore_median_hours == 2.0 and dora.restore_median_hours == pytest.approx(2 + 59 / 60)


def test_fourkeys_frequency_buckets_over_sunday_weeks(store):
    # Window Mon 2024-01-01 .. Sun 01-28: Four Keys' Sunday-start weeks are Dec 31 (Jan 1-6 only),
    # Jan 7, 14, 21 and 28 (Jan 28 only): five week rows, the first in December.
    daily = ["2024-01-08", "2024-01-09", "2024-01-10", "2024-01-15", "2024-01-16", "2024-01-17",
             "2024-01-22", "2024-01-23", "2024-01-24", "2024-01-24"]  # fmt: skip
    # Sun Jan 7 and Sat Jan 13 share a Sunday week (a Monday week would split them): 2 of 5
    # weeks deploy, so not Weekly; the four January rows see 2 deployed weeks in their month
    monthly = ["2024-01-07", "2024-01-13", "2024-01-20"]
    weekly = ["2024-01-02", "2024-01-08", "2024-01-25"]  # 3 of 5 weeks
    yearly = ["2024-01-03"]  # only the December row's month has a deployed week: median 0
    rows, i = [], 0
    for service, days in (("api", daily), ("web", monthly), ("jobs", weekly), ("ops", yearly)):
        for day in days:
            rows.append(dep(i, f"{day}T23:30Z", service=service))
            i += 1
    rows.append(dep(i, "2024-01-29T00:30Z", service="ops"))  # after the window: not counted
    # each deployed a commit of the history (Four Keys: the push of its commit)
    load(store, commits=[(row["sha"], "2024-01-01T00:00Z") for row in rows], deployments=rows)
    result = dora_metrics(store, "2024-01-01", "2024-01-29", by="service", profile="fourkeys")
    buckets = result.frame.set_index("group")["deployment_frequency_bucket"].to_dict()
    assert buckets == {"api": "Daily", "web": "Monthly", "jobs": "Weekly", "ops": "Yearly"}
    assert "  web\n" in result.summary() and "Four Keys frequency  Monthly" in result.summary()
    everyone = dora_metrics(store, "2024-01-01", "2024-01-29", profile="fourkeys").frame.iloc[0]
    assert everyone.deployment_frequency_bucket == "Daily"  # api's days plus the others' reach 3 in 3 of 5 weeks
    assert "deployment_frequency_bucket" not in dora_metrics(store, "2024-01-01", "2024-01-29").frame


def test_tiers_and_errors(store):
    assert tier("deploys_per_week", 10, 2024) == "elite"
    assert tier("change_failure_rate", 0.15, 2023) == "medium"
    assert tier("change_failure_rate", 0.15, 2024) == "high"
    assert tier("lead_time_median_hours", float("nan")) == "no data"
    with pytest.raises(InputError):
        dora_metrics(store, profile="gitlab")
    with pytest.raises(InputError):
        dora_metrics(store, by="planet")
    with pytest.raises(InputError):
        dora_metrics(store, "2024-02-01", "2024-01-01")


def test_cli_dora_json_csv_and_detail(fixture_store, tmp_path, capsys):
    import json

    from releaserisk.cli import main

    db = str(fixture_store.path)
    fixture_store.close()
    assert main(["--db", db, "dora", "--since", "2024-01-01", "--until", "2024-01-22", "--format", "json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["summary"][0]["change_failure_rate"] == 0.5 and len(payload["by_period"]) == 3
    assert "hint" not in captured.err  # the fixture has deployments
    assert main(["--db", db, "dora", "--detail", "deployments", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("deployment_id,")
    quiet_fortnight = ["--since", "2024-01-08", "--until", "2024-01-22"]
    assert main(["--db", db, "dora", *quiet_fortnight, "--detail", "pull-requests"]) == 0
    assert capsys.readouterr().out == "no pull requests in 2024-01-08 → 2024-01-22\n"  # not pandas' "Empty DataFrame"
    assert main(["--db", db, "dora", "--since", "2024-02-01", "--until", "2024-01-01"]) == 2
    assert "until must be after since" in capsys.readouterr().err
    # a window with one end given falls outside the deployments: say which end, and where they are
    assert main(["--db", db, "dora", "--since", "2030-01-01"]) == 2
    assert "since 2030-01-01 is after the last deployment (2024-01-09); give until too" in capsys.readouterr().err
    assert main(["--db", db, "dora", "--until", "2023-06-01"]) == 2
    assert "until 2023-06-01 is not after the first deployment (2024-01-01)" in capsys.readouterr().err


def test_cli_dora_on_a_store_without_deployments_says_how_to_load_them(store, capsys):
    from releaserisk.cli import main

    db = str(store.path)
    store.close()
    assert main(["--db", db, "dora"]) == 0
    captured = capsys.readouterr()
    assert "deployments          0.00/week (0 deployments" in captured.out
    assert captured.err.startswith("hint: the store has no deployments") and "ingest deployments" in captured.err


def test_no_source_of_failures_is_no_data_not_an_elite_zero(store):
    # deployments from git tags (commits of the history): nothing could ever show one failing
    load(store, commits=[(f"s{i}", "2024-01-01T00:00Z") for i in (1, 2, 3)],
         deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")])  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    for profile in PROFILES:
        result = dora_metrics(store, *window, profile=profile)
        s = result.frame.iloc[0]
        assert s.deployments == 2 and math.isnan(s.change_failure_rate) and math.isnan(s.rework_rate)
        assert s.change_failure_rate_tier == "no data"
        assert result.by_period.change_failure_rate.isna().all()
        assert "no incidents" in result.notes[0] and result.to_dict()["notes"] == result.notes
        assert "note: the store has no incidents" in result.summary()
    # a rollback is a source of failures for DORA's definition, not for the incident-only peers
    load(store, deployments=[dep(3, "2024-01-04T00:00Z", kind="rollback", reverts_deployment_id="d2")])
    assert dora_metrics(store, *window).frame.iloc[0].change_failure_rate == pytest.approx(1 / 3)
    devlake = dora_metrics(store, *window, profile="devlake")
    assert math.isnan(devlake.frame.iloc[0].change_failure_rate)
    assert devlake.frame.iloc[0].rework_rate == pytest.approx(1 / 3)  # the rollback is rework in every profile
    assert devlake.notes[0] == (
        "the store has no incidents, so the change failure rate cannot be measured (no data); "
        "ingest incidents to measure it"
    )
    # any incident in the store, even another service's, makes 0 % a measurement (in fourkeys, one naming
    # a root cause: only those can fail a deployment there)
    load(store, incidents=[{"incident_id": "w", "service": "web", "opened_at": "2023-06-01T00:00Z",
                            "cause_sha": "deadbeef"}])  # fmt: skip
    fourkeys = dora_metrics(store, *window, profile="fourkeys")
    assert fourkeys.frame.iloc[0].change_failure_rate == 0
    assert not [n for n in fourkeys.notes if "cannot be measured" in n and "incidents" in n]


def test_without_a_source_of_failures_every_count_and_outcome_is_unknown_not_zero(store):
    """A store of release tags: the rate was no data, but beside it failed_deployments said 0, the rate's n
    said 2 and every deployment said failed False; they rest on nothing, so they are unknown too."""
    from releaserisk.dora import change_failures

    load(store, commits=[(f"s{i}", "2024-01-01T00:00Z") for i in (1, 2, 3)],
         deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")], changes=[("d1", "c1")])  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    unknown = ["failed_deployments", "change_failure_rate_n", "recovery_median_hours_n", "unplanned_deployments",
               "rework_rate_n"]  # fmt: skip
    for profile in PROFILES:
        result = dora_metrics(store, *window, profile=profile)
        for frame in (result.frame, result.by_period):
            assert frame[unknown].isna().all().all(), profile
        assert result.frame.iloc[0].deployments == 2 and result.frame.iloc[0].deploys_per_week_n == 2
        payload = json.loads(json.dumps(result.to_dict()))
        assert {payload["summary"][0][c] for c in unknown} == {None}
        assert "change failure rate  no data" in result.summary()  # the text read the count first: no crash
        assert result.describe("rework_rate", period="2024-W01") == "no data"
        deployments = result.deployments
        columns, why = result.unobserved
        assert set(columns) >= {"failed", "incidents", "unplanned", "rolled_back", "hotfixed"}
        assert deployments[columns].isna().all().all() and why == result.notes[0]
        text = result.detail_text("deployments")
        assert text.count("unknown:") == 1 and text.endswith(result.notes[0])  # the reason once
        assert "unknown" in text.splitlines()[1]
        assert change_failures(store, *window, profile=profile)["failed"].isna().all()
    # a rollback: rework is observed in every profile, failures only where a rollback fails a deployment
    load(store, deployments=[dep(3, "2024-01-04T00:00Z", kind="rollback", reverts_deployment_id="d2")])
    devlake = dora_metrics(store, *window, profile="devlake")
    s = devlake.frame.iloc[0]
    assert (s.unplanned_deployments, s.rework_rate_n) == (1, 3) and pd.isna(s.failed_deployments)
    rows = devlake.deployments.set_index("deployment_id")
    assert rows["failed"].isna().all() and bool(rows.loc["d2", "rolled_back"]) and not rows.loc["d1", "unplanned"]
    assert devlake.unobserved[0] == ["incidents", "failed", "failure_reason", "restored_at", "recovery_hours"]
    known = dora_metrics(store, *window)  # DORA's definition: the rollback fails d2, and 0 is a count again
    assert (known.frame.iloc[0].failed_deployments, known.frame.iloc[0].change_failure_rate_n) == (1, 3)
    assert known.unobserved == ([], None) and known.deployments["failed"].notna().all()
    assert change_failures(store, *window)["failed"].tolist() == [False, True, False]


def test_an_unresolved_incident_is_noted_beside_the_time_to_restore(store):
    """An incident still open is left out of the time-to-restore median (n 1 here, not 2), which is then biased
    low: said like the unrecovered failed deployment is; devlake's window takes incidents resolved in it, so
    an open one is none of its window's and needs no note there."""
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z")],
        changes=[("d1", "c1")],
        incidents=[{"incident_id": "i1", "service": "api", "opened_at": "2024-01-02T00:00Z",
                    "resolved_at": "2024-01-02T02:00Z"},
                   {"incident_id": "i2", "service": "api", "opened_at": "2024-01-03T00:00Z"}],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    assert result.frame.iloc[0].restore_median_hours_n == 1
    assert (
        "1 incident opened in the window is not resolved, e.g. i2 (opened 2024-01-03 00:00): the time-to-restore "
        "median leaves it out while it stays open, so it is biased low"
    ) in result.notes
    assert not [n for n in dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake").notes
                if "not resolved" in n]  # fmt: skip


def test_the_window_is_printed_with_its_time_of_day_when_it_has_one(store):
    """'--until 2024-01-08T12:30+02:00' ends the window at 10:30 UTC: the header said '→ 2024-01-08', a whole day
    the numbers do not cover; whole days still read as days."""
    load(store, deployments=[dep(1, "2024-01-02T12:00Z")])
    timed = dora_metrics(store, "2024-01-01T06:00Z", "2024-01-08T12:30+02:00")
    assert timed.summary().splitlines()[0] == "DORA metrics (dora) 2024-01-01 06:00 → 2024-01-08 10:30 UTC"
    assert timed.detail_text("incidents") == "no incidents in 2024-01-01 06:00 → 2024-01-08 10:30 UTC"
    days = dora_metrics(store, "2024-01-01", "2024-01-08")
    assert days.summary().splitlines()[0] == "DORA metrics (dora) 2024-01-01 → 2024-01-08"


def test_detail_text_shows_a_missing_value_as_a_dash_not_nan(store):
    """An unresolved incident without a severity, the latest deployment (no next one yet), a deployment that did
    not fail (no recovery): the text drill-downs printed pandas' NaN, NaT and None for them."""
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-02T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z")],
        changes=[("d1", "c1"), ("d2", "c2")],
        incidents=[{"incident_id": "i1", "service": "api", "opened_at": "2024-01-03T00:00Z"}],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    for name in ("deployments", "changes", "incidents"):
        text = result.detail_text(name)
        assert not re.search(r"\b(NaN|NaT|None|<NA>)\b", text), (name, text)
    incidents = result.detail_text("incidents").splitlines()
    assert incidents[1].split()[:2] == ["i1", "api"] and "—" in incidents[1]


def test_cli_without_a_source_of_failures_says_unknown_in_json_csv_and_text(store, capsys):
    from releaserisk.cli import main

    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")], changes=[("d1", "c1")])
    window = ("2024-01-01", "2024-01-08")
    unobserved = dora_metrics(store, *window).unobserved[0]
    store.close()
    db = str(store.path)
    for fmt in ("json", "csv"):
        assert main(["--db", db, "dora", "--since", window[0], "--until", window[1], "--format", fmt]) == 0
        out = capsys.readouterr().out
        if fmt == "json":
            summary = json.loads(out)["summary"][0]
            assert summary["failed_deployments"] is None and summary["change_failure_rate_n"] is None
        else:
            row = pd.read_csv(io.StringIO(out)).iloc[0]
            assert pd.isna(row.failed_deployments) and pd.isna(row.change_failure_rate_n) and row.deployments == 2
    assert main(["--db", db, "dora", "--since", window[0], "--until", window[1], "--detail", "deployments"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split().count("unknown") == len(unobserved)
    assert out.count("note:") == 1 and "the store has no incidents, rollbacks or hotfixes" in out
    assert main(["--db", db, "dora", "--detail", "deployments", "--format", "json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert {row["failed"] for row in detail["rows"]} == {None} and detail["unknown"]["why"].startswith("the store")


def incident(incident_id, opened, resolved, service="api", **extra):
    return {"incident_id": incident_id, "service": service, "opened_at": opened, "resolved_at": resolved, **extra}


def test_devlake_restore_and_recovery_in_whole_minutes_per_incident(store):
    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
        incidents=[
            incident("i1", "2024-01-02T01:00Z", "2024-01-02T02:30:50Z"),
            incident("i2", "2024-01-02T03:00Z", "2024-01-02T10:00:59Z"),
            incident("i3", "2024-01-03T01:00Z", "2024-01-03T01:10:30Z"),
            incident("i4", "2024-01-07T23:00Z", "2024-01-09T00:00Z"),  # opened in the window, resolved after it
        ],
    )
    window = ("2024-01-01", "2024-01-08")
    dora, devlake, fourkeys = (dora_metrics(store, *window, profile=p).frame.iloc[0] for p in PROFILES)
    # restore in truncated minutes [10, 90, 420, 1500]; lower median 90 min
    assert devlake.restore_median_hours == pytest.approx(1.5)
    assert fourkeys.restore_median_hours == pytest.approx((1 + 7) / 2)  # whole hours [0, 1, 7, 25]
    # DevLake: one recovery per incident resolved in the window, d1 -> i1 150 min, d1 -> i2 600 min,
    # d2 -> i3 70 min (i4 resolved after the window); lower median 150 min
    assert devlake.recovery_median_hours == pytest.approx(2.5)
    # DORA: one recovery per failed deployment, to the last resolution of its incidents (recovered when none is
    # open): d1 (i1, i2) 10 h 0 min 59 s, d2 (i3, and i4 opened 4 days after it, its latest prior deployment,
    # resolved on the 9th) 144 h
    assert dora.recovery_median_hours == pytest.approx((10 + 59 / 3600 + 144) / 2)


def test_recovery_waits_for_every_incident_and_the_latest_deployment_is_not_rolled_back(store):
    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
         incidents=[{"incident_id": "a", "service": "api", "opened_at": "2024-01-02T01:00Z",
                     "resolved_at": "2024-01-02T02:00Z", "cause_deployment_id": "d1"},
                    {"incident_id": "b", "service": "api", "opened_at": "2024-01-02T03:00Z",
                     "resolved_at": "2024-01-02T09:00Z", "cause_deployment_id": "d1"},
                    {"incident_id": "c", "service": "api", "opened_at": "2024-01-03T01:00Z",
                     "cause_deployment_id": "d2"},
                    {"incident_id": "d", "service": "api", "opened_at": "2024-01-03T02:00Z",
                     "resolved_at": "2024-01-03T03:00Z", "cause_deployment_id": "d2"}])  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    deployments = result.deployments.set_index("deployment_id")
    assert deployments.loc["d1", "recovery_hours"] == 9  # b resolved last, not a after 2 h
    assert pd.isna(deployments.loc["d2", "restored_at"])  # c is still open: not recovered
    assert result.frame.iloc[0].recovery_median_hours_n == 1
    # d2 has no next deployment yet: not rolled back and not hotfixed, rather than unknown
    assert deployments.loc["d2", "rolled_back"] is False or deployments.loc["d2", "rolled_back"] == False  # noqa: E712
    assert not deployments["hotfixed"].isna().any() and not deployments["rolled_back"].isna().any()


def test_environment_names_match_in_any_case(store):
    from releaserisk.analytics import release_analytics
    from releaserisk.config import Settings

    def at(i, finished, sha, env):
        return {**dep(i, finished, env=env), "sha": sha}

    # GitHub environments are often "Production"; DevLake writes PRODUCTION
    load(store, deployments=[at(1, "2024-01-02T00:00Z", "s1", "Staging"),
                             at(2, "2024-01-02T04:00Z", "s1", "Production"),
                             at(3, "2024-01-03T00:00Z", "s3", "PRODUCTION")])  # fmt: skip
    summary = dora_metrics(store, "2024-01-01", "2024-01-08").frame.iloc[0]
    assert summary.deployments == 2
    stages = release_analytics(store, "2024-01-01", "2024-01-08").stage_promotion().set_index("to_env")
    assert stages.loc["production", "promotions"] == 1 and stages.loc["production", "skipped"] == 1
    assert Settings(production_environments=("Live",), environment_order=("QA", "Live")).environment_order == (
        "qa", "live")  # fmt: skip
    live = dora_metrics(store, "2024-01-01", "2024-01-08", settings=Settings(production_environments=("STAGING",)))
    assert live.frame.iloc[0].deployments == 1


def test_deployments_of_a_repository_without_commits_get_a_note_saying_how_to_fix_it(store):
    """The repository ingested under another name ('ingest git' names it after its directory)
    left every lead time 'no data' without a word."""
    from releaserisk.dora import repository_hint

    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z"),
                             dep(3, "2024-01-04T00:00Z", status="failure")])  # fmt: skip
    store.upsert("repos", pd.DataFrame({"repo": ["checkout"]}))
    expected = (
        "successful deployments name repositories without ingested commits: 'r' (2); the store has "
        "'checkout'. Their lead times cannot be measured: run 'releaserisk ingest git PATH --name r'"
    )
    assert repository_hint(store) == expected
    assert expected in dora_metrics(store, "2024-01-01", "2024-01-08").notes
    load(store, changes=[("d2", "c1")])  # changes from a file still need the commits' times
    assert repository_hint(store) == expected
    store.upsert("repos", pd.DataFrame({"repo": ["r"]}))
    assert repository_hint(store) is None
    assert not any("without ingested commits" in n for n in dora_metrics(store, "2024-01-01", "2024-01-08").notes)


@pytest.mark.parametrize(
    ("repos", "expected"),
    [
        ([], "1 successful deployment names no repository; the store has no repositories. Their lead times "
             "cannot be measured: run 'releaserisk ingest git PATH'"),
        (["a"], None),  # the only repository: deployments naming none belong to it
        (["a", "b"], "1 successful deployment names no repository; the store has 'a', 'b'. Their lead times "
                     "cannot be measured: give deployments (or services) a repo column naming one of them"),
    ],
)  # fmt: skip
def test_deployments_naming_no_repository(store, repos, expected):
    """With no repository at all, 'None' was named as the repository to ingest."""
    from releaserisk.dora import repository_hint

    load(store, deployments=[dep(1, "2024-01-02T00:00Z", repo=None)])
    if repos:
        store.upsert("repos", pd.DataFrame({"repo": repos}))
    assert repository_hint(store) == expected


def test_devlake_without_pull_requests_says_why_lead_time_is_no_data(fixture_store):
    window = ("2024-01-01", "2024-01-22")
    fixture_store.execute("DELETE FROM pull_requests")
    devlake = dora_metrics(fixture_store, *window, profile="devlake")
    assert math.isnan(devlake.frame.iloc[0].lead_time_median_hours)
    assert any(n.startswith("the devlake profile measures lead time per merged pull request") for n in devlake.notes)
    assert not any("pull request" in n for n in dora_metrics(fixture_store, *window).notes)  # per commit there


def test_an_incident_links_to_the_first_deployment_that_shipped_its_cause_before_it_opened(store):
    load(
        store,
        commits=[("cafe001aaaa", "2024-01-01T00:00Z"), ("cafe002bbbb", "2024-01-01T01:00Z"),
                 ("cafe003cccc", "2024-01-01T02:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z"), dep(3, "2024-01-03T12:00Z"),
                     dep(4, "2024-01-05T12:00Z")],
        changes=[("d2", "cafe001aaaa"), ("d3", "cafe002bbbb"), ("d4", "cafe003cccc")],
        incidents=[
            # cafe001 shipped in d2; d3 is the latest deployment before the incident: the cause wins (named
            # abbreviated and in capitals, as "root cause: CAFE001" in an issue)
            {"incident_id": "by-cause", "service": "api", "opened_at": "2024-01-04T00:00Z", "cause_sha": "CAFE001",
             "resolved_at": "2024-01-04T05:30Z"},
            # cafe003 reached production only after the incident opened: not its cause; the latest prior is
            {"incident_id": "shipped-later", "service": "api", "opened_at": "2024-01-04T06:00Z",
             "cause_sha": "cafe003cccc"},
            {"incident_id": "no-cause", "service": "api", "opened_at": "2024-01-04T07:00Z"},
        ],
    )  # fmt: skip
    links = dora_metrics(store, "2024-01-01", "2024-01-08").incidents.set_index("incident_id")
    assert links.loc["by-cause", ["deployment_id", "link_method"]].tolist() == ["d2", "cause_sha"]
    assert links.loc["shipped-later", ["deployment_id", "link_method"]].tolist() == ["d3", "latest_prior_deployment"]
    # DevLake reads no cause (dora plugin, incident_deploy_connector.go): the latest prior deployment only
    devlake = dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake").incidents.set_index("incident_id")
    assert devlake["deployment_id"].to_dict() == {"by-cause": "d3", "shipped-later": "d3", "no-cause": "d3"}
    assert set(devlake["link_method"]) == {"latest_prior_deployment"}
    # Four Keys joins an incident's root causes to deployments' changes, at any time, and nothing else; by
    # equality (incidents.sql root.changes = root_cause), so the abbreviated CAFE001 matches nothing there
    fourkeys = dora_metrics(store, "2024-01-01", "2024-01-08", profile="fourkeys")
    links = fourkeys.incidents.set_index("incident_id")
    assert links["deployment_id"].fillna("none").to_dict() == {"by-cause": "none", "shipped-later": "d4",
                                                                "no-cause": "none"}  # fmt: skip
    assert links["link_method"].to_dict() == {"by-cause": "unlinked", "shipped-later": "cause_sha",
                                              "no-cause": "unlinked"}  # fmt: skip
    # (d1 lists no change and names no ingested commit: no Four Keys deployment, deployments.sql)
    assert fourkeys.frame.iloc[0].change_failure_rate == pytest.approx(1 / 3)
    # ... and an incident with no matched root cause starts when it was reported: 5.5 h, whole hours 5
    assert links.loc["by-cause", "restore_hours"] == pytest.approx(5.5)
    assert fourkeys.frame.iloc[0].restore_median_hours == 5
    assert dora_metrics(store, "2024-01-01", "2024-01-08").frame.iloc[0].restore_median_hours == 5.5
    assert not any("no incident names one" in n for n in fourkeys.notes)
    # the abbreviated cause is said: it fails no deployment there
    assert any(n.startswith("1 incident names a root-cause commit (cause_sha) that no production deployment shipped, "
                            "e.g. by-cause (CAFE001)") for n in fourkeys.notes)  # fmt: skip
    # without a root cause named anywhere, nothing could ever fail there: no data, not an elite 0 %
    store.execute("UPDATE incidents SET cause_sha = NULL")
    blind = dora_metrics(store, "2024-01-01", "2024-01-08", profile="fourkeys")
    assert math.isnan(blind.frame.iloc[0].change_failure_rate) and blind.frame.iloc[0].rework_rate >= 0
    assert blind.notes[0].startswith("the fourkeys profile fails a deployment only through an incident's root-cause")


def test_notes_read_inside_a_transaction_see_its_writes(store):
    # the notes are read on a second connection while the metrics are computed; inside a
    # transaction that connection would not see its writes, so they are read on the first
    load(store, deployments=[dep(1, "2024-01-02T00:00Z")])
    store.upsert("repos", pd.DataFrame({"repo": ["r"]}))
    note = "1 successful deployment in the window names a sha that is no commit of the ingested history"
    assert not any(n.startswith(note) for n in dora_metrics(store, "2024-01-01", "2024-01-08").notes)
    with store.transaction():
        load(store, commits=[("c1", "2024-01-01T00:00Z")])
        assert store.in_transaction
        inside = dora_metrics(store, "2024-01-01", "2024-01-08").notes
        assert any(n.startswith(note + ", e.g. d1 (s1)") for n in inside)
    assert not store.in_transaction
    assert any(n.startswith(note) for n in dora_metrics(store, "2024-01-01", "2024-01-08").notes)
    # a deployment outside the window is not the window's note (an old tag off the branch was in every one)
    assert not any("names a sha" in n for n in dora_metrics(store, "2024-01-03", "2024-01-08").notes)


def test_deployments_in_no_configured_production_environment_get_a_note(store):
    from releaserisk.config import Settings

    load(store, deployments=[dep(1, "2024-01-02T00:00Z", env="Live"), dep(2, "2024-01-03T00:00Z", env="live"),
                             dep(3, "2024-01-03T06:00Z", env="qa")])  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    result = dora_metrics(store, *window)
    assert result.frame.iloc[0].deployments == 0
    assert ("no successful deployment is in a production environment (production, prod); the store's "
            "environments are live (2), qa (1): set production_environments") in result.notes  # fmt: skip
    configured = dora_metrics(store, *window, settings=Settings(production_environments=("live",)))
    assert configured.frame.iloc[0].deployments == 2
    assert not any("production environment" in n for n in configured.notes)


# --- devlake: the four rules of change_lead_time_calculator.go, hand-computed ---------------------------


def test_devlake_first_deployment_of_a_chain_contributes_no_changes_even_listed(store):
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-02T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z")],
        changes=[("d1", "c1"), ("d2", "c2")],  # d1's change listed explicitly
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-01T01:00Z",
              "merged_at": "2024-01-01T02:00Z", "merge_commit_sha": "c1"},
             {"repo": "r", "number": 2, "author": "a", "created_at": "2024-01-02T01:00Z",
              "merged_at": "2024-01-02T02:00Z", "merge_commit_sha": "c2"}],
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    devlake = dora_metrics(store, *window, profile="devlake")
    assert devlake.changes["sha"].tolist() == ["c2"]  # d1 is first of its chain (api, r)
    prs = devlake.pull_requests.set_index("number")
    # PR 1 merged into the first deployment: no deployment and no deploy time; cycle = opened -> merged
    assert pd.isna(prs.loc[1, "deployment_id"]) and pd.isna(prs.loc[1, "deploy_minutes"])
    assert prs.loc[1, "cycle_minutes"] == 60
    assert (prs.loc[2, "deployment_id"], prs.loc[2, "deploy_minutes"], prs.loc[2, "cycle_minutes"]) == ("d2", 600, 660)
    assert devlake.frame.iloc[0].lead_time_median_hours == 11  # deployed PRs only: PR 2's 660 min
    assert devlake.deployments.set_index("deployment_id")["first_of_chain"].to_dict() == {"d1": True, "d2": False}
    assert dora_metrics(store, *window).changes["sha"].tolist() == ["c1", "c2"]  # the dora profile keeps them


def test_devlake_cycle_is_the_sum_of_the_parts_that_exist(store):
    # deployed 30 minutes before the merge (the merge commit was on the branch the deploy tool took):
    # DevLake's deploy span is negative, so nil; cycle = coding 60 + opened -> merged 120 + 0
    load(
        store,
        commits=[("c0", "2024-01-01T00:00Z"), ("m", "2024-01-02T01:00Z")],
        deployments=[dep(0, "2024-01-01T06:00Z"), dep(1, "2024-01-02T02:30Z")],
        changes=[("d1", "m")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-02T01:00Z",
              "merged_at": "2024-01-02T03:00Z", "merge_commit_sha": "m"}],
        pr_commits=[{"repo": "r", "number": 1, "sha": "p", "authored_at": "2024-01-02T00:00Z"}],
    )  # fmt: skip
    pr = dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake").pull_requests.iloc[0]
    assert pr.deployment_id == "d1" and pd.isna(pr.deploy_minutes) and pr.clock_skew
    assert (pr.coding_minutes, pr.cycle_minutes) == (60, 60 + 120 + 0)


def test_devlake_lists_every_merged_pull_request_deployed_or_not(store):
    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00Z")],
        prs=[{"repo": "r", "number": 7, "author": "a", "created_at": "2024-01-03T00:00Z",
              "merged_at": "2024-01-03T04:00Z", "merge_commit_sha": "never-shipped"},
             {"repo": "r", "number": 8, "author": "a", "created_at": "2024-01-03T00:00Z"}],  # open: not listed
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    devlake = dora_metrics(store, *window, profile="devlake")
    assert devlake.pull_requests["number"].tolist() == [7]
    row = devlake.frame.iloc[0]
    assert (row.pr_cycle_median_hours, row.pr_cycle_median_hours_n) == (4, 1)  # in the PR metrics too
    assert math.isnan(row.lead_time_median_hours)  # lead time needs a deployment
    assert dora_metrics(store, *window).pull_requests.empty  # the dora profile lists deployed PRs


def test_devlake_an_empty_author_is_accepted_and_excludes_no_review(store, tmp_path):
    from releaserisk.ingest.tabular import ingest_file

    path = tmp_path / "prs.csv"
    path.write_text(
        "repo,number,author,created_at,merged_at,merge_commit_sha\n"
        "r,1,,2024-01-02T00:00Z,2024-01-02T05:00Z,m\n"  # a deleted account: GitHub shows a ghost
    )
    assert ingest_file(store, "pull-requests", path) == 1
    load(
        store,
        deployments=[dep(1, "2024-01-01T00:00Z")],
        reviews=[{"repo": "r", "number": 1, "reviewer": "ghost", "submitted_at": "2024-01-02T01:00Z"},
                 {"repo": "r", "number": 1, "reviewer": "bob", "submitted_at": "2024-01-02T02:00Z"}],
    )  # fmt: skip
    pr = dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake").pull_requests.iloc[0]
    assert pd.isna(pr.author) and (pr.pickup_minutes, pr.review_minutes) == (60, 240)


def test_devlake_chains_deployments_by_finish_time(store):
    # d1 started first but finished after d2: DevLake's prev_deployment_commit_enricher.go orders a
    # chain by finished_date, so d2 is the first of the chain (no changes) and d1's predecessor
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-01T06:00Z")],
        deployments=[dep(1, "2024-01-02T12:00Z", started_at="2024-01-02T09:00Z"),
                     dep(2, "2024-01-02T11:00Z", started_at="2024-01-02T10:00Z")],
        changes=[("d1", "c1"), ("d2", "c2")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-01T05:00Z",
              "merged_at": "2024-01-01T07:00Z", "merge_commit_sha": "c2"},
             {"repo": "r", "number": 2, "author": "a", "created_at": "2024-01-01T01:00Z",
              "merged_at": "2024-01-01T02:00Z", "merge_commit_sha": "c1"}],
    )  # fmt: skip
    devlake = dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake")
    assert devlake.deployments.set_index("deployment_id")["first_of_chain"].to_dict() == {"d1": False, "d2": True}
    assert devlake.changes["sha"].tolist() == ["c1"]
    prs = devlake.pull_requests.set_index("number")
    # PR 1's merge commit shipped only in d2, the first of the chain: no deployment, cycle = opened -> merged
    assert pd.isna(prs.loc[1, "deployment_id"]) and prs.loc[1, "cycle_minutes"] == 120
    # PR 2: merged 02:00 on the 1st, d1 finished 12:00 on the 2nd: deploy 34 h; cycle 60 + 2040
    pr2 = prs.loc[2]
    assert (pr2.deployment_id, pr2.deploy_minutes, pr2.cycle_minutes) == ("d1", 2040, 2100)


def test_devlake_links_an_incident_to_the_latest_deployment_of_any_service(store):
    # incident_deploy_connector.go: the latest successful production deployment of the project finished
    # strictly before the incident was created; no service is compared
    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z", service="web")],
        incidents=[{"incident_id": "on-api", "service": "api", "opened_at": "2024-01-04T00:00Z"},
                   {"incident_id": "no-service", "service": None, "opened_at": "2024-01-02T12:00Z"}],
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    devlake = dora_metrics(store, *window, profile="devlake")
    assert devlake.incidents.set_index("incident_id")["deployment_id"].to_dict() == {"on-api": "d2", "no-service": "d1"}
    assert devlake.frame.iloc[0].change_failure_rate == 1
    dora = dora_metrics(store, *window).incidents.set_index("incident_id")["deployment_id"]
    assert dora["on-api"] == "d1" and pd.isna(dora["no-service"])  # the dora profile links within the service


def test_devlake_time_to_restore_counts_incidents_resolved_in_the_window(store):
    # DORADetails-TimetoRestoreService.json (and DORA.json's _incidents): $__timeFilter(i.resolution_date);
    # its Incident Count panel counts incidents created in the window
    load(
        store,
        deployments=[dep(1, "2024-01-01T00:00Z")],
        incidents=[{"incident_id": "old", "service": "api", "opened_at": "2023-12-31T22:00Z",
                    "resolved_at": "2024-01-01T01:00Z"},  # 180 min, resolved in the window
                   {"incident_id": "mid", "service": "api", "opened_at": "2024-01-03T00:00Z",
                    "resolved_at": "2024-01-03T04:00Z"},  # 240 min
                   {"incident_id": "late", "service": "api", "opened_at": "2024-01-07T23:00Z",
                    "resolved_at": "2024-01-08T01:00Z"}],  # 120 min, resolved after the window
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    devlake = dora_metrics(store, *window, profile="devlake").frame.iloc[0]
    # lower median of 180 and 240 minutes
    assert (devlake.restore_median_hours, devlake.restore_median_hours_n, devlake.incidents) == (3, 2, 2)
    dora = dora_metrics(store, *window).frame.iloc[0]
    assert (dora.restore_median_hours, dora.restore_median_hours_n, dora.incidents) == (3, 2, 2)  # 240 and 120


def test_devlake_recovery_keeps_a_negative_span(store):
    # DORADetails-FailedDeploymentRecoveryTime.json ranks TIMESTAMPDIFF(MINUTE, deployment finished,
    # incident resolved) with no filter on its sign (computeTimeSpan's nil is the lead-time calculator's)
    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00Z")],
        incidents=[{"incident_id": "backwards", "service": "api", "opened_at": "2024-01-02T06:00Z",
                    "resolved_at": "2024-01-01T23:00Z"},  # recovery -60 min
                   {"incident_id": "ok", "service": "api", "opened_at": "2024-01-02T01:00Z",
                    "resolved_at": "2024-01-02T03:00Z"}],  # recovery 180 min
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    devlake = dora_metrics(store, *window, profile="devlake")
    row = devlake.frame.iloc[0]
    assert (row.recovery_median_hours, row.recovery_median_hours_n) == (-1, 2)  # lower median of -60 and 180
    assert "1 failed deployment restored before it finished was counted as the peer does (clock skew)" in devlake.notes


def test_fourkeys_joins_a_root_cause_to_the_changes_of_any_service(store):
    # fourkeys_dashboard.json Change Failure Rate joins incidents' root causes to deployments' changes and
    # incidents.sql starts the incident at the earliest such deployment: Four Keys has no services
    load(
        store,
        commits=[("c1a2b3c4d5", "2024-01-01T00:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
        changes=[("d1", "c1a2b3c4d5")],
        incidents=[{"incident_id": "i", "service": None, "opened_at": "2024-01-02T06:00Z",
                    "resolved_at": "2024-01-02T09:00Z", "cause_sha": "c1a2b3c4d5"}],
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    fourkeys = dora_metrics(store, *window, profile="fourkeys")
    incident = fourkeys.incidents.iloc[0]
    assert (incident.deployment_id, incident.link_method) == ("d1", "cause_sha")
    row = fourkeys.frame.iloc[0]
    # from d1's finish, whole hours; d2 lists no change and names no ingested commit: no Four Keys deployment
    assert (row.change_failure_rate, row.restore_median_hours) == (1.0, 9)
    assert pd.isna(dora_metrics(store, *window).incidents.iloc[0].deployment_id)  # dora links within a service


def test_fourkeys_change_failure_rate_counts_root_cause_matches_in_every_deployment(store):
    # fourkeys_dashboard.json Change Failure Rate: SUM(IF(i.incident_id IS NULL, 0, 1)) / COUNT(DISTINCT
    # deploy_id) over every deployment's changes left-joined to incidents' root causes: d1 lists two root
    # causes (2), d2 one (1), d3 lists c1 again (1), d4 none: 4 / 4 deployments
    shas = {name: name * 8 for name in ("a", "b", "c", "d")}
    load(
        store,
        commits=[(sha, "2024-01-01T00:00Z") for sha in shas.values()],
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z"), dep(3, "2024-01-04T00:00Z"),
                     dep(4, "2024-01-05T00:00Z")],
        changes=[("d1", shas["a"]), ("d1", shas["b"]), ("d2", shas["c"]), ("d3", shas["a"]), ("d4", shas["d"])],
        incidents=[{"incident_id": f"i-{name}", "service": "api", "opened_at": "2024-01-06T00:00Z",
                    "cause_sha": shas[name]} for name in ("a", "b", "c")],
    )  # fmt: skip
    fourkeys = dora_metrics(store, "2024-01-01", "2024-01-08", profile="fourkeys")
    row = fourkeys.frame.iloc[0]
    assert (row.change_failure_rate, row.failed_deployments, row.deployments) == (1.0, 4, 4)
    deployments = fourkeys.deployments.set_index("deployment_id")
    assert deployments["incidents"].to_dict() == {"d1": 2, "d2": 1, "d3": 1, "d4": 0}
    assert deployments["failed"].to_dict() == {"d1": True, "d2": True, "d3": True, "d4": False}


def test_fourkeys_lead_time_counts_a_change_in_every_deployment_listing_it(store):
    # fourkeys_dashboard.json Lead Time for Changes: one TIMESTAMP_DIFF per row of "deployments d, d.changes",
    # so a commit listed by two deployments counts twice, at each one's time
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-02T12:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
        changes=[("d1", "c1"), ("d2", "c1"), ("d2", "c2")],
    )  # fmt: skip
    window = ("2024-01-01", "2024-01-08")
    fourkeys = dora_metrics(store, *window, profile="fourkeys")
    changes = fourkeys.changes
    rows = zip(changes["deployment_id"], changes["sha"], changes["lead_time_hours"], strict=True)
    assert sorted(rows) == [
        ("d1", "c1", 24), ("d2", "c1", 48), ("d2", "c2", 12)]  # fmt: skip
    row = fourkeys.frame.iloc[0]
    assert (row.lead_time_median_hours, row.lead_time_median_hours_n) == (24, 3)  # interpolated median of 12, 24, 48
    dora = dora_metrics(store, *window).frame.iloc[0]
    assert (dora.lead_time_median_hours, dora.lead_time_median_hours_n) == (18, 2)  # first deployment: 24 and 12


# --- one guard for impossible spans -------------------------------------------------------------------


def test_a_clock_skewed_commit_is_flagged_left_out_of_the_median_and_counted(store):
    load(
        store,
        commits=[("ok1", "2024-01-02T00:00Z"), ("ok2", "2024-01-02T02:00Z"),
                 ("fast", "2024-01-10T09:00Z")],  # its author's clock ran a week fast
        deployments=[dep(1, "2024-01-03T00:00Z")],
        changes=[("d1", "ok1"), ("d1", "ok2"), ("d1", "fast")],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    changes = result.changes.set_index("sha")
    assert changes.loc["fast", "lead_time_hours"] == -177 and changes.loc["fast", "clock_skew"]
    assert not changes.loc["ok1", "clock_skew"]
    row = result.frame.iloc[0]
    assert (row.lead_time_median_hours, row.lead_time_median_hours_n) == (23, 2)  # 24 and 22, not -177
    assert "1 change with a commit time after its deployment was left out (clock skew)" in result.notes


def test_a_pr_commit_authored_after_the_pr_opened_is_a_flagged_phase(store):
    load(
        store,
        commits=[("m", "2024-01-02T06:00Z")],
        deployments=[dep(0, "2024-01-01T00:00Z"), dep(1, "2024-01-02T08:00Z")],
        changes=[("d1", "m")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-02T00:00Z",
              "merged_at": "2024-01-02T06:00Z", "merge_commit_sha": "m"}],
        pr_commits=[{"repo": "r", "number": 1, "sha": "p", "authored_at": "2024-01-02T02:00Z"}],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    pr = result.pull_requests.iloc[0]
    assert pr.coding_minutes == -120 and pr.clock_skew
    assert pr.cycle_minutes == 360  # first commit -> deployment stands
    # the note says what was left out: the phase, not the pull request, whose cycle time counts (n 1)
    assert (
        "1 pull request with a phase that ends before it starts: the phase was left out, the cycle time counted "
        "unless it ends before it starts too (clock skew, or a deployment that shipped the pull request's commits "
        "before its merge)"
    ) in result.notes
    assert result.frame.iloc[0].pr_cycle_median_hours_n == 1
    devlake = dora_metrics(store, "2024-01-01", "2024-01-08", profile="devlake").pull_requests.iloc[0]
    assert pd.isna(devlake.coding_minutes) and devlake.clock_skew  # DevLake's computeTimeSpan gives nil


def test_incidents_resolved_before_they_started_or_before_their_deployment_finished(store):
    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
        incidents=[
            # linked to d2, resolved an hour before d2 finished: recovery -1 h
            {"incident_id": "early", "service": "api", "opened_at": "2024-01-02T20:00Z",
             "resolved_at": "2024-01-02T23:00Z", "cause_deployment_id": "d2"},
            # resolved before it was opened: restore -2 h
            {"incident_id": "backwards", "service": "api", "opened_at": "2024-01-02T06:00Z",
             "resolved_at": "2024-01-02T04:00Z"},
        ],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    deploys = result.deployments.set_index("deployment_id")
    assert deploys.loc["d2", "recovery_hours"] == -1 and deploys.loc["d2", "clock_skew"]
    assert deploys.loc["d1", "recovery_hours"] == 4 and not deploys.loc["d1", "clock_skew"]  # "backwards" fails d1
    incidents = result.incidents.set_index("incident_id")
    assert incidents.loc["backwards", "clock_skew"] and not incidents.loc["early", "clock_skew"]
    row = result.frame.iloc[0]
    assert (row.recovery_median_hours, row.recovery_median_hours_n) == (4, 1)
    assert (row.restore_median_hours, row.restore_median_hours_n) == (3, 1)
    assert "1 failed deployment restored before it finished was left out (clock skew)" in result.notes
    assert "1 incident resolved before it started was left out (clock skew)" in result.notes


# --- intervals and significance ------------------------------------------------------------------------


def test_summary_and_by_period_carry_n_intervals_tiers_and_changes(fixture_store):
    result = dora_metrics(fixture_store, "2024-01-01", "2024-01-22")
    row = result.frame.iloc[0]
    assert (row.change_failure_rate_n, row.failed_deployments) == (4, 2)
    assert row.change_failure_rate_ci_low == pytest.approx(0.150, abs=1e-3)  # Wilson 2 of 4
    assert row.change_failure_rate_ci_high == pytest.approx(0.850, abs=1e-3)
    assert row.change_failure_rate_tiers == "high, medium, low"  # 15 % is above elite's 5 %
    # 4 leads: the median's 95 % order-statistic interval needs n >= 6: unbounded both sides
    assert row.lead_time_median_hours_n == 4 and math.isnan(row.lead_time_median_hours_ci_low)
    assert row.lead_time_median_hours_tiers == "elite, high, medium, low"
    # exact Poisson: 4 deployments in 3 weeks
    assert row.deploys_per_week_ci_low == pytest.approx(1.0899 / 3, abs=1e-3)
    assert row.deploys_per_week_ci_high == pytest.approx(10.2416 / 3, abs=1e-3)
    weeks = result.by_period.set_index("period")
    assert pd.isna(weeks.loc["2024-W01", "change_failure_rate_change_significant"])  # no previous week
    assert weeks.loc["2024-W02", "change_failure_rate_change_significant"] == False  # noqa: E712  1 of 3 vs 1 of 1
    assert "50.0 % (2 of 4; 95 % CI 15–85 %)  [high, medium, low]" in result.summary()
    payload = result.to_dict()
    assert payload["by_period"][0]["change_failure_rate_change_significant"] is None


def test_a_period_without_deployments_still_spans_frequency_tiers(fixture_store):
    """0 deployments in a week is a count over a known exposure, not missing data: [0, 3.69] a week."""
    result = dora_metrics(fixture_store, "2024-01-01", "2024-02-04")
    empty = result.by_period[result.by_period["deployments"] == 0].iloc[0]
    assert empty.deploys_per_week_ci_low == 0 and empty.deploys_per_week_ci_high == pytest.approx(3.689, abs=1e-3)
    assert empty.deploys_per_week_tiers == "high, medium, low"  # elite is daily: 7 a week
    assert empty.change_failure_rate_tiers == ""  # a rate of no deployments has no data


def test_the_change_text_on_both_sides_of_the_threshold(store):
    # week 1: 1 failure of 13 deployments; week 2: 4 of 14 (the demo's "+20.9 pp"); week 3: 12 of 14
    deployments, incidents = [], []
    for week, (total, failed) in enumerate([(13, 1), (14, 4), (14, 12)]):
        for i in range(total):
            at = pd.Timestamp("2024-01-01T01:00Z") + pd.Timedelta(days=7 * week, hours=8 * i)
            deployments.append(dep(f"{week}-{i}", at.isoformat()))
            if i < failed:
                incidents.append({"incident_id": f"i{week}-{i}", "service": "api", "cause_deployment_id":
                                  f"d{week}-{i}", "opened_at": (at + pd.Timedelta(hours=1)).isoformat()})  # fmt: skip
    load(store, deployments=deployments, incidents=incidents)
    result = dora_metrics(store, "2024-01-01", "2024-01-22")
    assert result.describe("change_failure_rate", period="2024-W02") == (
        "28.6 % (4 of 14; 95 % CI 12–55 %) — not a significant change from 7.7 % (1 of 13)"
    )
    significant = result.describe("change_failure_rate", period="2024-W03")
    assert significant.startswith("85.7 % (12 of 14; 95 % CI 60–96 %) — a significant change from 28.6 % (4 of 14)")
    weeks = result.by_period.set_index("period")
    assert weeks.loc["2024-W03", "change_failure_rate_change_p_value"] < 0.05
    assert weeks.loc["2024-W02", "change_failure_rate_change_p_value"] > 0.05


def test_interval_coverage_by_simulation(store):
    """400 services, each a sample: 95 % intervals cover the true CFR and median lead time 93-97 % of the time."""
    import numpy as np

    rng = np.random.default_rng(20)
    services, n, cfr, median_hours = 400, 30, 0.2, 10.0
    ids = [f"{s}-{i}" for s in range(services) for i in range(n)]
    finished = pd.Timestamp("2024-01-01T00:00Z") + pd.to_timedelta(np.tile(np.arange(n) * 3, services), unit="h")
    lead = rng.exponential(median_hours / math.log(2), size=len(ids))  # exponential: median = mean * ln 2
    frame = pd.DataFrame({"deployment_id": ids, "service": [f"s{s}" for s in range(services) for _ in range(n)],
                          "environment": "production", "sha": ids, "status": "success", "kind": "regular",
                          "repo": "r", "finished_at": finished, "started_at": finished})  # fmt: skip
    store.upsert("deployments", frame)
    store.upsert(
        "deployment_changes",
        pd.DataFrame(
            {"deployment_id": ids, "repo": "r", "sha": ids, "committed_at": finished - pd.to_timedelta(lead, unit="h")}
        ),
    )
    store.upsert("repos", pd.DataFrame({"repo": ["r"]}))
    failed = rng.random(len(ids)) < cfr
    causes = np.array(ids)[failed]
    incidents = {"incident_id": [f"i{d}" for d in causes], "service": frame["service"][failed].to_numpy(),
                 "cause_deployment_id": causes, "opened_at": finished[failed] + pd.Timedelta(minutes=30)}  # fmt: skip
    store.upsert("incidents", pd.DataFrame(incidents))
    summary = dora_metrics(store, "2024-01-01", "2024-01-09", by="service").frame
    assert len(summary) == services and (summary["change_failure_rate_n"] == n).all()
    covered_cfr = (summary["change_failure_rate_ci_low"] <= cfr) & (cfr <= summary["change_failure_rate_ci_high"])
    low, high = summary["lead_time_median_hours_ci_low"], summary["lead_time_median_hours_ci_high"]
    covered_median = (low <= median_hours) & (median_hours <= high)
    assert 0.93 <= covered_cfr.mean() <= 0.97
    assert 0.93 <= covered_median.mean() <= 0.97


def _clustered_store(store, services, deployments, commits, seed):
    """Each service a sample of ``deployments`` releases of ``commits`` commits: a release's commits share its
    deploy delay (exponential, mean 20 h) and each adds its own (exponential, mean 2 h); each service its own
    repository. Returns the true median and p90 of a commit's lead time (1M draws of the same model)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{s}-{d}" for s in range(services) for d in range(deployments)])
    service = np.repeat([f"s{s}" for s in range(services)], deployments)
    finished = pd.Timestamp("2024-01-01T00:00Z") + pd.to_timedelta(np.tile(np.arange(deployments) * 6, services), "h")
    store.upsert("deployments", pd.DataFrame({
        "deployment_id": ids, "service": service, "environment": "production", "sha": ids, "status": "success",
        "kind": "regular", "repo": service, "finished_at": finished, "started_at": finished}))  # fmt: skip
    delay = np.repeat(rng.exponential(20, len(ids)), commits) + rng.exponential(2, len(ids) * commits)
    store.upsert("deployment_changes", pd.DataFrame({
        "deployment_id": np.repeat(ids, commits), "repo": np.repeat(service, commits),
        "sha": [f"{d}.{c}" for d in ids for c in range(commits)],
        "committed_at": np.repeat(finished, commits) - pd.to_timedelta(delay, unit="h")}))  # fmt: skip
    store.upsert("repos", pd.DataFrame({"repo": [f"s{s}" for s in range(services)]}))
    model = rng.exponential(20, 1_000_000) + rng.exponential(2, 1_000_000)
    return np.median(model), np.quantile(model, 0.9)


def test_lead_time_intervals_count_deployments_not_commits(store):
    """400 services of 20 releases of 5 commits: the commits of a release share its deploy time. Intervals that
    took the 100 commits as independent covered the true median about two times in three; counting the releases as
    clusters (design effect), 93-99 % (the design effect errs wide)."""
    from releaserisk import intervals

    services, deployments, commits = 400, 20, 5
    median, p90 = _clustered_store(store, services, deployments, commits, seed=20)
    frame = dora_metrics(store, "2024-01-01", "2024-02-01", by="service").frame
    assert (frame["lead_time_median_hours_n"] == deployments * commits).all()
    assert (frame["lead_time_deployments"] == deployments).all()
    for metric, truth in (("lead_time_median_hours", median), ("lead_time_p90_hours", p90)):
        low, high = frame[f"{metric}_ci_low"].fillna(-np.inf), frame[f"{metric}_ci_high"].fillna(np.inf)  # unbounded
        covered = (low <= truth) & (truth <= high)
        assert 0.93 <= covered.mean() <= 0.99, (metric, covered.mean())
    # the same intervals without the design effect (each commit independent) cover far less often
    changes = dora_metrics(store, "2024-01-01", "2024-02-01", by="service").changes
    low, high = (int(rank[0]) - 1 for rank in intervals.quantile_interval_ranks(np.array([deployments * commits]), 0.5))
    by_service = changes.sort_values("service", kind="stable")["lead_time_hours"].to_numpy()
    ordered = np.sort(by_service.reshape(services, -1), axis=1)  # one row per service
    independent = (ordered[:, low] <= median) & (median <= ordered[:, high])
    assert independent.mean() < 0.75


def test_lead_time_design_effects_agree_between_numpy_and_sql(store):
    # by service the lead-time rows are worked out in numpy, by repository in DuckDB: here each service is
    # its own repository, so both must give the same intervals and rank tests to the last digit
    _clustered_store(store, 30, 16, 4, seed=3)
    by_service = dora_metrics(store, "2024-01-01", "2024-02-01", by="service", freq="W")
    by_repo = dora_metrics(store, "2024-01-01", "2024-02-01", by="repo", freq="W")
    columns = ["lead_time_median_hours", "lead_time_median_hours_ci_low", "lead_time_median_hours_ci_high",
               "lead_time_p90_hours_ci_low", "lead_time_p90_hours_ci_high", "lead_time_deployments"]  # fmt: skip
    pd.testing.assert_frame_equal(by_service.frame[columns], by_repo.frame[columns])
    columns += ["lead_time_median_hours_change_p_value"]
    pd.testing.assert_frame_equal(by_service.by_period[columns], by_repo.by_period[columns])
    assert by_service.frame["lead_time_median_hours_ci_low"].notna().all()


@pytest.mark.parametrize("profile, metric", [("dora", "pr_cycle_median_hours"), ("devlake", "lead_time_median_hours")])
def test_pull_requests_of_one_deployment_are_one_cluster(store, profile, metric):
    # six pull requests ship in d1, six in d2: twelve cycle times, but two deployments' worth of evidence
    commits = [(f"c{i}", f"2024-01-0{2 if i < 6 else 4}T0{i % 6}:00Z") for i in range(12)]  # d2's wait 2 days
    load(store, commits=commits,
         deployments=[dep(0, "2024-01-01T00:00Z"), dep(1, "2024-01-03T00:00Z"), dep(2, "2024-01-06T00:00Z")],
         changes=[(f"d{1 if i < 6 else 2}", f"c{i}") for i in range(12)],
         prs=[{"repo": "r", "number": i, "author": "a", "created_at": f"2024-01-0{2 if i < 6 else 4}T0{i % 6}:00Z",
               "merged_at": f"2024-01-0{2 if i < 6 else 4}T0{i % 6}:30Z", "merge_commit_sha": f"c{i}"}
              for i in range(12)])  # fmt: skip
    result = dora_metrics(store, "2024-01-02", "2024-01-08", profile=profile)
    assert result.pull_requests["deployment_id"].value_counts().to_dict() == {"d1": 6, "d2": 6}
    row = result.frame.iloc[0]
    assert row[f"{metric}_n"] == 12
    # as twelve independent values the median's interval would be bounded (ranks 3 and 10 of 12);
    # each deployment's six lie on one side of the median: one effective observation, unbounded
    from releaserisk import intervals

    assert intervals.quantile_interval_ranks(np.array([12]), 0.5) == (np.array([3]), np.array([10]))
    assert math.isnan(row[f"{metric}_ci_low"]) and math.isnan(row[f"{metric}_ci_high"])
    assert row["lead_time_deployments" if metric.startswith("lead_time") else "pr_cycle_deployments"] == 2
    assert "(n 12 in 2 deployments; 95 % CI unbounded with 2 deployments)" in result.summary()


def test_lead_time_text_names_its_deployments(store):
    load(store, deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
         changes=[("d1", "c1"), ("d1", "c2"), ("d1", "c3"), ("d2", "c4")],
         commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-01T06:00Z"), ("c3", "2024-01-01T12:00Z"),
                  ("c4", "2024-01-02T12:00Z")])  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08")
    # 24, 18, 12 and 12 h; three of them in d1: two deployments' evidence, too little for an interval
    expected = "lead time median     15.0 h (n 4 in 2 deployments; 95 % CI unbounded with 2 deployments)"
    assert expected in result.summary()
    assert result.frame.loc[0, "lead_time_deployments"] == 2


def test_change_failures_agree_with_the_full_metrics(simulated):
    # the CI gate's batch history and the deployment model read failures without the aggregates
    from releaserisk.dora import change_failures
    from releaserisk.store import open_store

    with open_store(simulated["db"], read_only=True) as store:
        full = dora_metrics(store).deployments.sort_values("deployment_id")
        quick = change_failures(store).sort_values("deployment_id")
    assert full["failed"].any() and len(full) == len(quick)
    assert list(quick["deployment_id"]) == list(full["deployment_id"])
    assert list(quick["failed"]) == list(full["failed"])


def test_lead_time_by_repo_counts_a_change_under_its_own_repository(store):
    # d2 names no repository of its own; its service's repository is 'r', but its change is of 'lib'
    load(store, commits=[("c1", "2024-01-01T00:00Z")],
         deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T00:00Z", repo=None)],
         changes=[("d1", "c1")], services=[{"service": "api", "repo": "r"}])  # fmt: skip
    store.upsert("deployment_changes", pd.DataFrame([{"deployment_id": "d2", "repo": "lib", "sha": "c9",
                                                      "committed_at": ts("2024-01-01T18:00Z")}]))  # fmt: skip
    by_repo = dora_metrics(store, "2024-01-01", "2024-01-08", by="repo")
    frame = by_repo.frame.set_index("group")
    assert frame.loc["r", "lead_time_median_hours"] == 12.0 and frame.loc["r", "lead_time_median_hours_n"] == 1
    assert frame.loc["lib", "lead_time_median_hours"] == 6.0 and frame.loc["lib", "deployments"] == 0
    by_service = dora_metrics(store, "2024-01-01", "2024-01-08", by="service").frame.set_index("group")
    assert (
        by_service.loc["api", "lead_time_median_hours"] == 9.0
        and by_service.loc["api", "lead_time_median_hours_n"] == 2
    )
    weeks = by_repo.by_period.set_index(["group", "period"])
    assert weeks.loc[("lib", "2024-W01"), "lead_time_median_hours_n"] == 1


@pytest.mark.parametrize("profile", ["dora", "devlake"])
def test_each_commit_has_one_first_deployment_whether_found_by_hash_or_by_name(store, profile):
    # c1 ships twice (d1, then d2), c3 in staging before production; links made before their
    # commits' times were copied are resolved by name, copied ones by hash: the same changes
    load(store, commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-01T06:00Z"), ("c3", "2024-01-01T08:00Z"),
                         ("c4", "2024-01-02T00:00Z")],
         deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z"),
                      dep(3, "2024-01-01T10:00Z", env="staging"), dep(4, "2024-01-03T00:00Z")],
         changes=[("d1", "c1"), ("d2", "c1"), ("d2", "c2"), ("d3", "c3"), ("d4", "c3"), ("d4", "c4")])  # fmt: skip

    def changes(by=None):
        result = dora_metrics(store, "2024-01-01", "2024-01-08", profile=profile, by=by)
        shown = result.changes.sort_values("sha").reset_index(drop=True)
        return shown, result.frame.drop(columns=["group"])

    by_name, summary = changes()
    # devlake: d1 is the first deployment of its chain and contributes no changes, so c1's first is d2
    first = {"c1": "d1" if profile == "dora" else "d2", "c2": "d2", "c3": "d4", "c4": "d4"}
    assert dict(zip(by_name["sha"], by_name["deployment_id"], strict=True)) == first
    by_repo_before = changes("repo")[1]
    from releaserisk.ingest.links import fill_commit_times

    fill_commit_times(store)  # what an ingest does: every link now has its commit's time
    assert store.execute("SELECT count(*) FROM deployment_changes WHERE committed_at IS NULL").fetchone()[0] == 0
    by_hash, summary_after = changes()
    pd.testing.assert_frame_equal(by_hash, by_name)
    pd.testing.assert_frame_equal(summary_after, summary)
    pd.testing.assert_frame_equal(changes("repo")[1], by_repo_before)
    if profile == "dora":  # devlake's lead time is per pull request
        assert summary.loc[0, "lead_time_median_hours_n"] == len(first)


@pytest.mark.parametrize("run", [1, 3, 40])  # links in no order, and a deployment's links together
@pytest.mark.parametrize("cells", [7, 70_000])  # beyond 16 bits: the radix sort's second pass
def test_links_are_ordered_by_cell_as_a_stable_sort_would(run, cells):
    from releaserisk.dora import _cell_order

    rng = np.random.default_rng(run + cells)
    cell = np.repeat(rng.integers(0, cells, 5_000 // run), run)
    np.testing.assert_array_equal(_cell_order(cell, cells), np.argsort(cell, kind="stable"))
    assert len(_cell_order(cell[:0], cells)) == 0


def test_a_failure_on_the_numpy_thread_reaches_the_caller(fixture_store, monkeypatch):
    # the caller waits for the links' hashes from the numpy thread: a failure there is raised, not waited on
    import releaserisk.dora as dora

    def broken(rows):
        raise RuntimeError("numpy thread failed")

    monkeypatch.setattr(dora, "_shared_hashes", broken)
    with pytest.raises(RuntimeError, match="numpy thread failed"):
        dora_metrics(fixture_store)
    monkeypatch.undo()
    assert dora_metrics(fixture_store).frame["deployments"].sum() > 0


def test_lead_time_rank_tests_counted_on_the_numpy_thread_equal_those_counted_at_the_end(store, monkeypatch):
    # enough changes per week that the rank tests count pair by pair: the numpy thread counts the
    # lead-time pairs beside DuckDB, and every p-value is the one counted at the end
    import releaserisk.dora as dora
    from releaserisk import intervals

    t0 = pd.Timestamp("2024-01-01T00:00Z")
    commits, deployments, changes = [], [], []
    for i in range(300):
        at = t0 + pd.Timedelta(hours=i * 1.5)
        commits.append((f"c{i}", (at - pd.Timedelta(minutes=7 * (i % 13) + 1)).isoformat()))
        deployments.append(dep(i, at.isoformat(), service=["api", "web"][i % 2]))
        changes.append((f"d{i}", f"c{i}"))
    load(store, commits=commits, deployments=deployments, changes=changes)
    counted = []
    spy = intervals.u_statistics
    monkeypatch.setattr(intervals, "u_statistics", lambda *a: counted.append(len(a[2])) or spy(*a))
    early = dora_metrics(store, by="service", freq="W").by_period
    assert counted and counted[0] >= 2  # both services' later weeks, counted beforehand
    monkeypatch.setattr(dora, "_lead_u", lambda lead: None)
    late = dora_metrics(store, by="service", freq="W").by_period
    pd.testing.assert_frame_equal(early, late)
    assert early["lead_time_median_hours_change_p_value"].notna().sum() >= 2


def test_default_window_says_when_history_runs_on_after_the_last_deployment(store):
    """The default window ends the day after the last deployment (2024-01-10); commits up to 2024-03-01 mean
    52 days (2024-01-10 to 2024-03-02, a leap February) that deployment frequency leaves out: a note says so,
    and how to count them."""
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-03-01T09:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-09T00:00Z")],
        changes=[("d1", "c1")],
    )
    result = dora_metrics(store)
    assert result.window[1] == ts("2024-01-10")
    [note] = [n for n in result.notes if n.startswith("the window ends")]
    assert "commits up to 2024-03-01" in note and "the 52 days since" in note and "--until) 2024-03-02" in note
    # an explicit end is the user's choice: no note, and the quiet days count
    counted = dora_metrics(store, until="2024-03-02")
    assert not [n for n in counted.notes if n.startswith("the window ends")]
    assert counted.frame["deploys_per_week"].iloc[0] < result.frame["deploys_per_week"].iloc[0]


@pytest.mark.parametrize("last_commit", ["2024-01-09T12:00Z", "2024-01-16T23:00Z"])
def test_no_window_note_when_history_ends_with_the_deployments(store, last_commit):
    """Commits up to 6 days 23 hours after the window's end (2024-01-10) are within a week: no note."""
    load(store, commits=[("c1", "2024-01-01T00:00Z"), ("c2", last_commit)],
         deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-09T00:00Z")])  # fmt: skip
    assert not [n for n in dora_metrics(store).notes if n.startswith("the window ends")]


def test_notes_name_incidents_whose_link_the_numbers_cannot_show(store):
    """Five incidents the numbers treat silently, each counted in a note with an example: an explicit cause that
    is no production deployment (linked by the latest prior instead), an explicit cause that finished after the
    incident opened (an impossible link), a cause sha no deployment shipped, a service no deployment has; and the
    failed deployment d4 not yet recovered (its incident unresolved), which the recovery median leaves out."""
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-02T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z"), dep(3, "2024-01-05T12:00Z"),
                     dep(4, "2024-01-06T00:00Z")],
        changes=[("d1", "c1"), ("d2", "c2")],
        incidents=[
            incident("i1", "2024-01-03T00:00Z", "2024-01-07T00:00Z", cause_deployment_id="nope"),
            incident("i2", "2024-01-03T02:00Z", "2024-01-07T00:00Z", cause_deployment_id="d3"),
            incident("i3", "2024-01-03T04:00Z", "2024-01-07T00:00Z", cause_sha="deadbeefdead"),
            incident("i4", "2024-01-03T06:00Z", "2024-01-07T00:00Z", service="apj"),
            incident("i5", "2024-01-06T06:00Z", None, cause_deployment_id="d4"),
        ],
    )  # fmt: skip
    notes = dora_metrics(store, "2024-01-01", "2024-01-08").notes
    expected = [
        "1 incident names a cause deployment (cause_deployment_id) that is no successful production deployment, "
        "e.g. i1 (nope): linked by the latest prior deployment instead",
        "1 incident names a cause deployment (cause_deployment_id) that finished after it opened, e.g. i2 (d3): kept "
        "as given, though a deployment cannot have caused an incident that opened before it finished",
        "1 incident names a root-cause commit (cause_sha) that no production deployment shipped by the time it "
        "opened, e.g. i3 (deadbeefdead): linked by the latest prior deployment instead",
        "1 incident names a service no production deployment has, e.g. i4 (apj): failing no deployment",
        "1 failed deployment has not recovered, e.g. d4 (failed 2024-01-06 00:00): the recovery median leaves it out "
        "while the recovery runs on, so it is biased low",
    ]
    assert [n for n in notes if n in expected] == expected
    # Four Keys joins a root cause by equality and knows no services: the abbreviated sha is its note
    store.upsert("incidents", pd.DataFrame([{"incident_id": "i6", "service": "api", "cause_sha": "C2",
                                             "opened_at": ts("2024-01-03T08:00Z")}]))  # fmt: skip
    fourkeys = dora_metrics(store, "2024-01-01", "2024-01-08", profile="fourkeys").notes
    [note] = [n for n in fourkeys if "root-cause commit (cause_sha) that" in n]
    # and the four naming none fail nothing there (i1, i2 and i5 name a cause deployment, which it does not read)
    assert [n for n in fourkeys if n.startswith("4 incidents name no root-cause commit (cause_sha), e.g. i1 ")]
    assert note.startswith("2 incidents name a root-cause commit (cause_sha) that no production deployment shipped, "
                           "e.g. i3 (deadbeefdead): failing no deployment; this profile matches a root cause by "
                           "equality")  # fmt: skip
    assert not [n for n in fourkeys if "service no production deployment has" in n]


def test_by_repo_groups_incidents_under_their_service_repository(store):
    """An incident file has no repository column: grouped by repo, every incident fell into an 'unassigned' group
    of 0 deployments. Its repository is its linked deployment's (i1: d1 of r; i2: d2 of site); one linked to
    nothing (i3, opened before any deployment of its service) stays unassigned."""
    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z", service="web", repo="site")],
        incidents=[incident("i1", "2024-01-02T06:00Z", "2024-01-02T08:00Z"),
                   incident("i2", "2024-01-03T06:00Z", "2024-01-03T09:00Z", service="web"),
                   incident("i3", "2024-01-01T06:00Z", "2024-01-01T07:00Z", service="web")],
    )  # fmt: skip
    frame = dora_metrics(store, "2024-01-01", "2024-01-08", by="repo").frame.set_index("group")
    assert sorted(frame.index) == ["r", "site", "unassigned"]
    assert frame.loc["unassigned", "restore_median_hours"] == pytest.approx(1.0)
    assert frame.loc["r", "restore_median_hours"] == pytest.approx(2.0)
    assert frame.loc["site", "restore_median_hours"] == pytest.approx(3.0)


def test_a_window_before_the_first_deployment_says_its_zeros_are_no_record(store):
    load(store, deployments=[dep(1, "2024-01-02T00:00Z")])
    note = ("the window ends before the store's first deployment (2024-01-02): nothing was recorded then, so its "
            "zeros and tiers say nothing about the team")  # fmt: skip
    assert note in dora_metrics(store, "1990-01-01", "1990-02-01").notes
    assert note in dora_metrics(store, "2023-12-01", "2024-01-02").notes  # ends at it: still before
    assert note not in dora_metrics(store, "2023-12-01", "2024-01-03").notes


def test_default_window_says_which_groups_began_deploying_long_after_its_start(store):
    """Grouped over the store's window, a service first deployed 60 days after it has its frequency diluted by
    those days: a note names it (web, 2024-03-01); api, deploying from the start, and app, 27 days late, not."""
    load(store, deployments=[dep(1, "2024-01-01T10:00Z"), dep(2, "2024-03-01T10:00Z", service="web"),
                             dep(3, "2024-01-28T10:00Z", service="app")])  # fmt: skip
    notes = dora_metrics(store, by="service").notes
    assert ("1 group began deploying long after the window's start (2024-01-01, the store's first deployment), "
            "e.g. web (2024-03-01): its deployment frequency counts the time before as time without deployments; "
            "give since (--since) to measure one alone") in notes  # fmt: skip
    assert not [n for n in dora_metrics(store, "2024-01-01", by="service").notes if "began deploying" in n]
    assert not [n for n in dora_metrics(store).notes if "began deploying" in n]  # one group: nothing to dilute
