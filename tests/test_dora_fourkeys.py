"""The ``fourkeys`` profile held against dora-team/fourkeys' SQL, rule by rule, on hand-computed fixtures.

Each test derives its numbers by reading the Four Keys query it cites (``queries/*.sql``,
``METRICS.md``, ``dashboard/fourkeys_dashboard.json``); the derivation is in its docstring.
"""

import pandas as pd
import pytest

from releaserisk.dora import dora_metrics
from tests.test_dora import dep, load

WINDOW = ("2024-01-01", "2024-01-08")


def test_whole_minutes_and_hours_are_truncated_toward_zero_as_timestamp_diff(store):
    """TIMESTAMP_DIFF(a, b, MINUTE | HOUR) is the whole number of intervals between a and b (GoogleSQL), so
    a negative span rounds toward zero, not down.

    Time to restore (dashboard "Median Time to Restore Services": PERCENTILE_CONT(TIMESTAMP_DIFF(time_resolved,
    time_created, HOUR), 0.5), no filter on the sign): incident ``ok`` 00:00 -> 03:30 is 3 h; incident ``skew``
    was resolved 90 min before it opened: -1 h (a floor gave -2). Interpolated median of [-1, 3] = 1.0 (a floor:
    0.5).

    Lead time (dashboard "Lead Time for Changes": TIMESTAMP_DIFF(d.time_created, c.time_created, MINUTE), kept
    when > 0): ``early`` was committed 30 s after d1 finished: 0 min (a floor gave -1 min) and is dropped;
    ``late`` 90 min 30 s before d1: 90 min = 1.5 h, the only value.
    """
    load(
        store,
        commits=[("early", "2024-01-02T00:00:30Z"), ("late", "2024-01-01T22:29:30Z")],
        deployments=[dep(1, "2024-01-02T00:00Z")],
        changes=[("d1", "early"), ("d1", "late")],
        incidents=[{"incident_id": "ok", "service": "api", "opened_at": "2024-01-03T00:00Z",
                    "resolved_at": "2024-01-03T03:30Z"},
                   {"incident_id": "skew", "service": "api", "opened_at": "2024-01-04T03:00Z",
                    "resolved_at": "2024-01-04T01:30Z"}],
    )  # fmt: skip
    result = dora_metrics(store, *WINDOW, profile="fourkeys")
    row = result.frame.iloc[0]
    assert (row.restore_median_hours, row.restore_median_hours_n) == (1.0, 2)
    assert (row.lead_time_median_hours, row.lead_time_median_hours_n) == (1.5, 1)
    leads = result.changes.set_index("sha")["lead_time_hours"]
    assert leads["early"] == 0 and leads["late"] == 1.5


def test_a_root_cause_matches_a_commit_by_equality_only(store):
    """incidents.sql extracts ``root cause: ([[:alnum:]]*)`` and joins it to deployments' changes by
    ``root.changes = root_cause``; the dashboard's Change Failure Rate joins ``i.change = changes``. Both are
    equalities: an abbreviated sha, or one in capitals, matches no change.

    Changes: d1 lists aaaa1111bbbb, d2 bbbb2222cccc, d3 cccc3333dddd, d4 dddd4444eeee. Incidents (opened
    2024-01-06 00:00): ``full`` names aaaa1111bbbb -> d1; ``abbreviated`` names bbbb222 -> nothing; ``capitals``
    names CCCC3333DDDD -> nothing. Change failure rate = SUM(matches) / COUNT(DISTINCT deploy_id) = 1 / 4.
    Time to restore starts at MIN(root-cause deployment, issue created): ``full`` from d1 (01-02 00:00) to
    01-06 06:00 = 102 h; the others from their report: 3 h and 5 h. PERCENTILE_CONT median of [3, 5, 102] = 5.
    The dora profile reads abbreviations in any case: all three link, 3 of 4 deployments failed.
    """
    shas = ["aaaa1111bbbb", "bbbb2222cccc", "cccc3333dddd", "dddd4444eeee"]
    load(
        store,
        commits=[(sha, "2024-01-01T00:00Z") for sha in shas],
        deployments=[dep(i + 1, f"2024-01-0{i + 2}T00:00Z") for i in range(4)],
        changes=[(f"d{i + 1}", sha) for i, sha in enumerate(shas)],
        incidents=[{"incident_id": name, "service": "api", "opened_at": "2024-01-06T00:00Z", "cause_sha": cause,
                    "resolved_at": f"2024-01-06T0{hours}:00Z"}
                   for name, cause, hours in (("full", shas[0], 6), ("abbreviated", "bbbb222", 3),
                                              ("capitals", "CCCC3333DDDD", 5))],
    )  # fmt: skip
    fourkeys = dora_metrics(store, *WINDOW, profile="fourkeys")
    links = fourkeys.incidents.set_index("incident_id")["deployment_id"]
    assert links.fillna("none").to_dict() == {"full": "d1", "abbreviated": "none", "capitals": "none"}
    row = fourkeys.frame.iloc[0]
    assert (row.change_failure_rate, row.failed_deployments, row.deployments) == (0.25, 1, 4)
    assert (row.restore_median_hours, row.restore_median_hours_n) == (5, 3)
    dora = dora_metrics(store, *WINDOW)
    assert dora.incidents.set_index("incident_id")["deployment_id"].to_dict() == {
        "full": "d1", "abbreviated": "d2", "capitals": "d3"}  # fmt: skip
    assert dora.frame.iloc[0].change_failure_rate == 0.75


def test_a_deployment_traced_to_no_commit_is_no_deployment(store):
    """deployments.sql builds four_keys.deployments by ``JOIN changes_raw ON changes_raw.id =
    deploys.main_commit`` (the push whose head commit was deployed) and ``CROSS JOIN
    deployment_changes.array_commits``: a deployment with no such push is not in the table, so the
    dashboard's Daily Deployments (COUNT(DISTINCT deploy_id)) and Change Failure Rate
    (... / COUNT(DISTINCT deploy_id) FROM deployments d, d.changes) never see it.

    d1 lists c1; d2 lists nothing but deployed s2, a commit of the history (a chain's first deployment: the
    push of s2 exists); d3 deployed s3, which no push ever carried; d4 went to staging. Four Keys: 2
    deployments (d1, d2) in the week, 2 per week; the incident naming c1 fails d1: 1 / 2. The dora profile
    counts d3 too (3 deployments); the comparison says why.
    """
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("s2", "2024-01-02T00:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z"), dep(3, "2024-01-04T00:00Z"),
                     dep(4, "2024-01-04T00:00Z", env="staging")],
        changes=[("d1", "c1")],
        incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-05T00:00Z", "cause_sha": "c1"}],
    )  # fmt: skip
    result = dora_metrics(store, *WINDOW, profile="fourkeys", compare=["dora", "fourkeys"])
    row = result.frame.iloc[0]
    assert (row.deployments, row.deploys_per_week, row.change_failure_rate) == (2, 2.0, 0.5)
    assert result.deployments["deployment_id"].tolist() == ["d1", "d2"]
    assert "1 production deployment lists no change and names no ingested commit" in " ".join(result.notes)
    dora = result.comparison.results["dora"].frame.iloc[0]
    assert dora.deployments == 3
    reasons = result.comparison.reasons
    counted = reasons[reasons["reason"] == "deployments_counted"]
    assert counted["key"].tolist() == ["d3"]
    assert counted["detail"].iloc[0].startswith("lists no change and names no ingested commit: fourkeys leaves it out")


def test_the_frequency_bucket_reads_the_last_three_months(store):
    """The dashboard's Deployment Frequency bucket (METRICS.md) runs over GENERATE_DATE_ARRAY(DATE_SUB(
    CURRENT_DATE(), INTERVAL 3 MONTH), CURRENT_DATE(), INTERVAL 1 DAY), today being the window's last day.

    Window 2024-01-01 .. 05-31: DATE_SUB(2024-05-31, INTERVAL 3 MONTH) = 2024-02-29, so the calendar is
    Thu 02-29 .. Fri 05-31, 14 Sunday-start weeks (02-25 partial, 03-03 .. 05-26). Deployments Mon-Wed of
    the weeks of 04-14 .. 05-26: 7 weeks with 3 days, 7 with none. Median days_deployed (0, 3) = 1.5 < 3,
    median week_deployed 0.5 < 1; monthly_deploys per week row: February's and March's 6 rows 0, April's 4
    rows 3, May's 4 rows 4: median of 14 = 3 >= 1: Monthly. Over the whole window (22 weeks, 15 of them
    empty, monthly_deploys 0 in 14 rows) it would be Yearly.
    """
    days = [pd.Timestamp("2024-04-14") + pd.Timedelta(weeks=w, days=d) for w in range(7) for d in (1, 2, 3)]
    rows = [dep(i, f"{day:%Y-%m-%d}T12:00Z") for i, day in enumerate(days)]
    load(store, commits=[(row["sha"], "2024-01-01T00:00Z") for row in rows], deployments=rows)
    row = dora_metrics(store, "2024-01-01", "2024-06-01", profile="fourkeys").frame.iloc[0]
    assert row.deployment_frequency_bucket == "Monthly" and row.deployments == 21


def test_a_commit_time_is_truncated_to_the_second_before_the_minutes_are_counted(store):
    """changes.sql gives a change ``TIMESTAMP_TRUNC(TIMESTAMP(commit.timestamp), second)``; the deployment's
    time_created is the event's own. Commit 00:00:00.600, deployment 00:02:00.300: the commit counts from
    00:00:00, so TIMESTAMP_DIFF(..., MINUTE) of 2 min 0.3 s is 2 min = 1/30 h (the exact span, 1 min 59.7 s,
    would give 1 min).
    """
    load(store, commits=[("c1", "2024-01-02T00:00:00.600Z")], deployments=[dep(1, "2024-01-02T00:02:00.300Z")],
         changes=[("d1", "c1")])  # fmt: skip
    result = dora_metrics(store, *WINDOW, profile="fourkeys")
    assert result.frame.iloc[0].lead_time_median_hours == pytest.approx(2 / 60)
    assert result.changes["lead_time_hours"].tolist() == [pytest.approx(2 / 60)]


def test_a_deployment_fails_when_its_own_commit_is_the_root_cause(store):
    """A Four Keys deployment's changes are the commits of the push whose head it deployed (deployments.sql:
    ``changes_raw.id = deploys.main_commit``, ``ARRAY_AGG(DISTINCT ... '$.id')`` over the push's commits), the
    head among them. d1 deployed aaaa1111 and lists no change (a chain's first deployment, links derived from
    the history); d2 lists bbbb2222. The incident names aaaa1111: the dashboard's join ``i.change = changes``
    matches d1's head, so d1 failed: 1 / 2; incidents.sql starts the incident at d1 (01-02 00:00), resolved
    01-04 05:00: 53 h. The incident and the deployment say the same (before, the incident named d1 and d1
    had not failed).
    """
    load(
        store,
        commits=[("aaaa1111", "2024-01-01T00:00Z"), ("bbbb2222", "2024-01-02T00:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z", sha="aaaa1111"), dep(2, "2024-01-03T00:00Z", sha="bbbb2222")],
        changes=[("d2", "bbbb2222")],
        incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-04T00:00Z", "cause_sha": "aaaa1111",
                    "resolved_at": "2024-01-04T05:00Z"}],
    )  # fmt: skip
    result = dora_metrics(store, *WINDOW, profile="fourkeys")
    assert result.incidents.iloc[0].deployment_id == "d1"
    row = result.frame.iloc[0]
    assert (row.change_failure_rate, row.failed_deployments, row.restore_median_hours) == (0.5, 1, 53)
    assert result.deployments.set_index("deployment_id")["failed"].to_dict() == {"d1": True, "d2": False}


def test_an_incident_starts_at_the_earliest_deployment_of_its_root_cause_listed_or_deployed(store):
    """incidents.sql: time_created = MIN(IF(root.time_created < issue.time_created, root.time_created,
    issue.time_created)) over every deployment whose changes hold the root cause, any service; a deployment's
    changes include the commit it deployed (deployments.sql). d1 (api, 01-02) deployed aaaa1111 and lists
    nothing; d2 (web, 01-03) lists aaaa1111. The incident opened 01-05 00:00, resolved 02:00: it starts at d1,
    74 h (from d2, the first listing it, 50 h). Both deployments hold the cause: 2 matches / 2 deployments.
    """
    load(
        store,
        commits=[("aaaa1111", "2024-01-01T00:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z", sha="aaaa1111"),
                     dep(2, "2024-01-03T00:00Z", service="web", sha="aaaa1111")],
        changes=[("d2", "aaaa1111")],
        incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-05T00:00Z", "cause_sha": "aaaa1111",
                    "resolved_at": "2024-01-05T02:00Z"}],
    )  # fmt: skip
    result = dora_metrics(store, *WINDOW, profile="fourkeys")
    assert result.incidents.iloc[0].deployment_id == "d1"
    row = result.frame.iloc[0]
    assert (row.restore_median_hours, row.change_failure_rate) == (74, 1.0)


def test_the_dashboard_stat_buckets_over_the_last_three_months(store):
    """fourkeys_dashboard.json's stat panels read deployments (incidents) with time_created >
    TIMESTAMP(DATE_SUB(CURRENT_DATE(), INTERVAL 3 MONTH)): window 2024-01-01 .. 05-31, so after 02-29 00:00.

    api: d1 (01-10) lists c1a-c1c, each 40 days old (57,600 min), and is left out. In: d2 (03-01, c2 48 h =
    2,880 min), d3 (04-01, c3 10 days = 14,400 min), d4 (05-01, c4 1 day = 1,440 min): PERCENTILE_CONT median
    2,880 min < 168 * 60: "One week" (with d1's three: 36,000 min, "One month"). Incidents: c2's (opened
    03-02 00:00, starts at d2 03-01 00:00, resolved 03-02 05:00: 29 h) fails d2: 1 match / 3 deployments =
    0.33 < .46: "16-45%" (with d1 and c1a's incident: 2 / 4, "46-60%"); a third, opened 05-10 00:00 and
    resolved 03:00, 3 h: median of [3, 29] = 16 < 24: "One day" (with c1a's, from d1 01-10 to 01-20, 240 h:
    29, "One week").
    web: d5 (05-02) lists c5, 10 min old: "One day"; no failure: 0 <= .15, "0-15%"; no incident: the median
    is NULL, no WHEN matches: "One year".
    """
    commits = [("c1a", "2023-12-01T00:00Z"), ("c1b", "2023-12-01T00:00Z"), ("c1c", "2023-12-01T00:00Z"),
               ("c2", "2024-02-28T00:00Z"), ("c3", "2024-03-22T00:00Z"), ("c4", "2024-04-30T00:00Z"),
               ("c5", "2024-05-01T23:50Z")]  # fmt: skip
    load(
        store,
        commits=commits,
        deployments=[dep(1, "2024-01-10T00:00Z"), dep(2, "2024-03-01T00:00Z"), dep(3, "2024-04-01T00:00Z"),
                     dep(4, "2024-05-01T00:00Z"), dep(5, "2024-05-02T00:00Z", service="web")],
        changes=[("d1", "c1a"), ("d1", "c1b"), ("d1", "c1c"), ("d2", "c2"), ("d3", "c3"), ("d4", "c4"),
                 ("d5", "c5")],
        incidents=[{"incident_id": "i1", "service": "api", "opened_at": "2024-01-11T00:00Z", "cause_sha": "c1a",
                    "resolved_at": "2024-01-20T00:00Z"},
                   {"incident_id": "i2", "service": "api", "opened_at": "2024-03-02T00:00Z", "cause_sha": "c2",
                    "resolved_at": "2024-03-02T05:00Z"},
                   {"incident_id": "i3", "service": "api", "opened_at": "2024-05-10T00:00Z",
                    "resolved_at": "2024-05-10T03:00Z"}],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-06-01", by="service", profile="fourkeys")
    buckets = result.frame.set_index("group")[["lead_time_bucket", "change_failure_rate_bucket", "restore_bucket"]]
    assert buckets.loc["api"].tolist() == ["One week", "16-45%", "One day"]
    assert buckets.loc["web"].tolist() == ["One day", "0-15%", "One year"]
    assert "Four Keys buckets    lead time One week, change failure rate 16-45%, time to restore One day" in (
        result.summary()
    )
    assert "lead_time_bucket" not in dora_metrics(store, "2024-01-01", "2024-06-01").frame


def test_incidents_naming_no_root_cause_are_counted_in_a_note(store):
    """Four Keys fails a deployment only through an incident's root-cause commit: with one incident naming one and
    one not, the rate was 1 of 2 deployments and the other incident went unsaid (the dora profile links it to
    the latest prior deployment; a cause_deployment_id is not read by fourkeys)."""
    c1 = "c1" * 20
    load(
        store,
        commits=[(c1, "2024-01-01T00:00Z"), ("c2" * 20, "2024-01-02T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z")],
        changes=[("d1", c1), ("d2", "c2" * 20)],
        incidents=[{"incident_id": "i1", "service": "api", "opened_at": "2024-01-03T00:00Z", "cause_sha": c1},
                   {"incident_id": "i2", "service": "api", "opened_at": "2024-01-03T06:00Z",
                    "cause_deployment_id": "d2"}],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08", profile="fourkeys")
    assert result.frame.iloc[0].change_failure_rate == pytest.approx(0.5)
    assert (
        "1 incident names no root-cause commit (cause_sha), e.g. i2 (opened 2024-01-03 06:00): failing no "
        "deployment: this profile links an incident through its root-cause commit alone, as Four Keys does (a "
        "cause_deployment_id is not read)"
    ) in result.notes
    assert not [n for n in dora_metrics(store, "2024-01-01", "2024-01-08").notes if "root-cause" in n]
