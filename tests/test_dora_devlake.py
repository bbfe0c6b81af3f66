"""The devlake profile held against DevLake's code, on hand-computed fixtures.

Every expected number below is derived by reading apache/incubator-devlake's
``backend/plugins/dora/tasks/change_lead_time_calculator.go`` (``CalculateChangeLeadTime``,
``computeTimeSpan``, ``batchFetchFirstCommits``, ``batchFetchFirstReviews``,
``batchFetchDeployments``), ``prev_deployment_commit_enricher.go`` and the DORA dashboards'
SQL (``grafana/dashboards/DORA.json``); each test's docstring gives the derivation.
"""

import math

import pandas as pd
import pytest

from releaserisk.dora import dora_metrics
from tests.test_dora import dep, load

WINDOW = ("2024-01-01", "2024-01-08")


def _prs(store, profile="devlake"):
    return dora_metrics(store, *WINDOW, profile=profile).pull_requests.set_index("number")


def test_a_pr_merged_into_two_deployments_gets_the_earliest_started(store):
    """``batchFetchDeployments`` orders ``cd.commit_sha, dc.started_date ASC, dc.id ASC`` and keeps the first
    row per merge sha.

    d0 finished on the 1st starts the chain (``prev_deployment_commit_enricher.go`` orders by
    ``finished_date``: d0, d2, d1), so d1 and d2 both have a ``prev_success_deployment_commit_id``
    and both list m. d1 started at 10:00, d2 at 11:00: d1 is the PR's deployment although d2
    finished first. PR 1 has no commits, so ``firstCommitsMap[pr.Id]`` is nil and coding is nil.
    deploy = ceil(09:00 -> 14:00) = 300 min; prDuring = ceil(08:00 -> 09:00) = 60 min;
    cycle = 0 (coding nil) + 60 + 300 = 360 min = 6 h, the only value of the lead-time median
    (DORA.json joins ``ppm.deployment_commit_id`` and filters ``cdc.finished_date`` in the window).
    """
    load(
        store,
        deployments=[dep(0, "2024-01-01T00:00Z", started_at="2024-01-01T00:00Z"),
                     dep(1, "2024-01-02T14:00Z", started_at="2024-01-02T10:00Z"),
                     dep(2, "2024-01-02T12:00Z", started_at="2024-01-02T11:00Z")],
        changes=[("d1", "m"), ("d2", "m")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-02T08:00Z",
              "merged_at": "2024-01-02T09:00Z", "merge_commit_sha": "m"}],
    )  # fmt: skip
    result = dora_metrics(store, *WINDOW, profile="devlake")
    pr = result.pull_requests.set_index("number").loc[1]
    assert (pr.deployment_id, pr.deploy_minutes, pr.cycle_minutes) == ("d1", 300, 360)
    assert pd.isna(pr.coding_minutes) and pd.isna(pr.first_commit_at)
    assert (result.frame.iloc[0].lead_time_median_hours, result.frame.iloc[0].lead_time_median_hours_n) == (6, 1)
    assert _prs(store, "dora").loc[1, "deployment_id"] == "d2"  # the dora profile: first to finish


def test_only_the_merge_commit_finds_the_deployment_of_a_pr_with_several_commits(store):
    """``deploymentsMap[pr.MergeCommitSha]``: the PR's own commits are never looked up.

    p1 (authored 06:00) shipped in d1, p2 and the merge commit m in d2. DevLake's deployment
    is d2 (m's); deploy = ceil(09:00 -> 12:00) = 180. ``batchFetchFirstCommits`` takes
    ``MIN(commit_authored_date)``: p1 at 06:00, so coding = ceil(06:00 -> 08:00) = 120;
    prDuring = 60; cycle = 120 + 60 + 180 = 360.
    """
    load(
        store,
        deployments=[dep(0, "2024-01-01T00:00Z"), dep(1, "2024-01-02T07:30Z"), dep(2, "2024-01-02T12:00Z")],
        changes=[("d1", "p1"), ("d2", "p2"), ("d2", "m")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-02T08:00Z",
              "merged_at": "2024-01-02T09:00Z", "merge_commit_sha": "m"}],
        pr_commits=[{"repo": "r", "number": 1, "sha": "p2", "authored_at": "2024-01-02T07:00Z"},
                    {"repo": "r", "number": 1, "sha": "p1", "authored_at": "2024-01-02T06:00Z"}],
    )  # fmt: skip
    pr = _prs(store).loc[1]
    assert (pr.deployment_id, pr.coding_minutes, pr.deploy_minutes, pr.cycle_minutes) == ("d2", 120, 180, 360)
    assert _prs(store, "dora").loc[1, "deployment_id"] == "d1"  # the dora profile: any PR commit


def test_the_first_review_excludes_the_author_and_has_no_time_bounds(store):
    """``batchFetchFirstReviews``: ``MIN(created_date)`` of comments with ``account_id != author_id``, at any time;
    ``computeTimeSpan`` gives nil for a negative span.

    PR 1 (alice, opened 00:00, merged 02:00): alice's own comment at 00:30 is excluded; bob
    commented at 23:00 the day before, before the PR was opened. First review = 23:00:
    pickup = ceil(00:00 -> 23:00 the day before) < 0, nil; review = ceil(23:00 -> 02:00) = 180.
    deploy = ceil(02:00 -> 03:00) = 60; prDuring = 120; no commits; cycle = 120 + 60 = 180
    (pickup and review are not parts of the cycle).
    PR 2 (alice, opened 00:00, merged 01:00): the only other review, carol's at 05:00, came
    after the merge: pickup = 300, review = ceil(05:00 -> 01:00) < 0, nil. deploy = 120;
    cycle = 60 + 120 = 180.
    """
    load(
        store,
        deployments=[dep(0, "2024-01-01T00:00Z"), dep(1, "2024-01-02T03:00Z")],
        changes=[("d1", "m1"), ("d1", "m2")],
        prs=[{"repo": "r", "number": 1, "author": "alice", "created_at": "2024-01-02T00:00Z",
              "merged_at": "2024-01-02T02:00Z", "merge_commit_sha": "m1"},
             {"repo": "r", "number": 2, "author": "alice", "created_at": "2024-01-02T00:00Z",
              "merged_at": "2024-01-02T01:00Z", "merge_commit_sha": "m2"}],
        reviews=[{"repo": "r", "number": 1, "reviewer": "alice", "submitted_at": "2024-01-02T00:30Z"},
                 {"repo": "r", "number": 1, "reviewer": "bob", "submitted_at": "2024-01-01T23:00Z"},
                 {"repo": "r", "number": 2, "reviewer": "alice", "submitted_at": "2024-01-02T00:10Z"},
                 {"repo": "r", "number": 2, "reviewer": "carol", "submitted_at": "2024-01-02T05:00Z"}],
    )  # fmt: skip
    prs = _prs(store)
    one, two = prs.loc[1], prs.loc[2]
    assert one.first_review_at == pd.Timestamp("2024-01-01T23:00Z")
    assert pd.isna(one.pickup_minutes) and one.review_minutes == 180 and one.cycle_minutes == 180
    assert two.pickup_minutes == 300 and pd.isna(two.review_minutes) and two.cycle_minutes == 180


def test_a_merge_commit_finds_its_deployment_in_any_repository(store):
    """``batchFetchDeployments`` joins ``commits_diffs`` by sha alone (the table has no repository column) and
    the calculator looks the deployment up by ``deploymentsMap[pr.MergeCommitSha]``: a PR of repository r whose
    merge commit a deployment of another repository (a mirror, a monorepo's split) lists is deployed by it.

    d0 starts the chain; d1 (repository ``mirror``, service ``m``) lists m, finished 03:00. PR 1
    of r, opened 00:00, merged 01:00: deploy = ceil(01:00 -> 03:00) = 120; prDuring = 60;
    cycle = 180 = 3 h, the lead-time median. The dora profile looks in r's deployments only and
    finds the PR's commit p in d3 (r, finished 05:00); the comparison says why they differ.
    """
    load(
        store,
        deployments=[dep(0, "2024-01-01T00:00Z", repo="mirror", service="m"),
                     dep(1, "2024-01-02T03:00Z", repo="mirror", service="m"),
                     dep(2, "2024-01-01T00:00Z"), dep(3, "2024-01-02T05:00Z")],
        changes=[("d3", "p")],
        prs=[{"repo": "r", "number": 1, "author": "a", "created_at": "2024-01-02T00:00Z",
              "merged_at": "2024-01-02T01:00Z", "merge_commit_sha": "m"}],
        pr_commits=[{"repo": "r", "number": 1, "sha": "p", "authored_at": "2024-01-02T00:00Z"}],
    )  # fmt: skip
    store.upsert("deployment_changes", pd.DataFrame([{"deployment_id": "d1", "repo": "mirror", "sha": "m"}]))
    result = dora_metrics(store, *WINDOW, profile="devlake", compare=["dora"])
    pr = result.pull_requests.set_index("number").loc[1]
    assert (pr.deployment_id, pr.deploy_minutes, pr.cycle_minutes) == ("d1", 120, 180)
    assert result.frame.iloc[0].lead_time_median_hours == 3
    assert _prs(store, "dora").loc[1, "deployment_id"] == "d3"  # the dora profile looks in r's deployments
    reasons = result.comparison.reasons.set_index("reason")
    assert reasons.loc["pr_deployment", "detail"] == (
        "deployed by d1 in devlake, by d3 in dora (a deployment of repository mirror)"
    )


def test_recovery_under_a_minute_before_the_deployment_finished_is_zero_minutes(store):
    """DORADetails-FailedDeploymentRecoveryTime.json ranks ``TIMESTAMPDIFF(MINUTE, deployment_finished_date,
    incident_resolution_date)``; MySQL's TIMESTAMPDIFF counts whole minutes toward zero (the seconds divided by
    60, the sign put back after), an integer: -30 s is 0, not -1 (a floor) nor -0.0.

    d1 finished 00:00:30; the incident linked to it (opened 00:01, after d1) is recorded resolved
    at 00:00:00: recovery = TIMESTAMPDIFF = 0 min, the only value, so the lower median is 0.
    """
    load(
        store,
        deployments=[dep(1, "2024-01-02T00:00:30Z")],
        incidents=[{"incident_id": "i", "service": "api", "opened_at": "2024-01-02T00:01Z",
                    "resolved_at": "2024-01-02T00:00Z"}],
    )  # fmt: skip
    row = dora_metrics(store, *WINDOW, profile="devlake").frame.iloc[0]
    assert (row.recovery_median_hours, row.recovery_median_hours_n) == (0, 1)
    assert math.copysign(1, row.recovery_median_hours) == 1  # 0, not -0.0 ("-0.0" in text and JSON)


def test_deployment_frequency_is_devlakes_median_deployment_days_per_week_or_month(store):
    """DORA.json "Deployment Frequency" (the 2023 report, the dashboard's default): over the calendar's days,
    each Monday-start week (``DATE_ADD(day, INTERVAL -WEEKDAY(day) DAY)``) and each month counts the distinct
    days with a successful production deployment (``max(DATE(cdc.finished_date))`` per deployment); the
    medians are ``max(x) WHERE percent_rank() <= 0.5`` (the lower median); elite at >= 5 days per week, high
    at >= 1, medium when the month median is >= 1, else low.

    Window 1 January (a Monday) to 12 February: six weeks (Jan 1, 8, 15, 22, 29, Feb 5), two
    months (Jan, Feb 1-11).
    ops deploys Monday to Friday every week: 5 days in each week, median 5 -> elite.
    weekly deploys on each week's Tuesday: 1 in each week, median 1 -> high.
    batch deploys on Jan 17 and Feb 7: weeks 0,0,1,0,0,1, sorted 0,0,0,0,1,1, lower median
    (the 3rd of 6) 0; months 1, 1, median 1 -> medium.
    api deploys twice on Jan 1, then Jan 3, 9, 22, 23, 24: weeks 2,1,0,3,0,0, sorted
    0,0,0,1,2,3, median 0; months 6 (Jan) and 0 (Feb), lower median (the 1st of 2) 0 -> low.
    """
    weekdays = pd.bdate_range("2024-01-01", "2024-02-09")
    days = {
        "ops": [d.strftime("%Y-%m-%dT10:00Z") for d in weekdays],
        "weekly": [f"2024-01-{d:02d}T10:00Z" for d in (2, 9, 16, 23, 30)] + ["2024-02-06T10:00Z"],
        "batch": ["2024-01-17T10:00Z", "2024-02-07T10:00Z"],
        "api": ["2024-01-01T10:00Z", "2024-01-01T11:00Z"] + [f"2024-01-{d:02d}T10:00Z" for d in (3, 9, 22, 23, 24)],
    }
    deployments = [
        {**dep(0, at, service=service), "deployment_id": f"{service}{i}"}
        for service, ats in days.items()
        for i, at in enumerate(ats)
    ]
    load(store, deployments=deployments)
    result = dora_metrics(store, "2024-01-01", "2024-02-12", profile="devlake", by="service")
    assert result.frame.set_index("group")["deployment_frequency_bucket"].to_dict() == {
        "api": "0 deployment days per month(low)",
        "batch": "1 deployment days per month(medium)",
        "ops": "5 deployment days per week(elite)",
        "weekly": "1 deployment days per week(high)",
    }
    summary = result.summary()  # the dashboard's text, read as every other line: noun in number, [tier]
    assert "DevLake frequency    5 deployment days per week  [elite]" in summary
    assert "DevLake frequency    1 deployment day per month  [medium]" in summary


def _port_of_devlake(deployments, changes, prs, pr_commits, reviews, incidents):
    """DevLake's dora tasks' logic re-expressed in Python on plain rows (the reference for the next test).

    ``EnrichPrevSuccessDeploymentCommit``: per (cicd scope = service, repo_url = repo), successful
    deployments ordered by finished_date (ties by id, which MySQL leaves open) each point at the one
    before. ``batchFetchDeployments``: deployments with a predecessor whose commits_diffs (here the listed
    changes, of any repository) hold a merge sha, ordered by started_date then id, the first kept.
    ``computeTimeSpan``: ``math.Ceil(minutes)``, nil when negative. ``ConnectIncidentToDeployment``: the
    latest deployment finished strictly before the incident was created, of any scope.
    """
    import math as m

    def span(a, b):
        if a is None or b is None or pd.isna(a) or pd.isna(b):
            return None
        minutes = m.ceil((b - a).total_seconds() / 60)
        return None if minutes < 0 else minutes

    prev = {}
    for (_, _), rows in pd.DataFrame(deployments).groupby(["service", "repo"]):
        ordered = rows.sort_values(["finished_at", "deployment_id"])["deployment_id"].tolist()
        prev.update({d: (ordered[i - 1] if i else "") for i, d in enumerate(ordered)})
    by_id = {d["deployment_id"]: d for d in deployments}
    candidates = {}
    for deployment_id, sha in changes:
        if prev[deployment_id]:
            candidates.setdefault(sha, []).append(by_id[deployment_id])
    first_deploy = {
        sha: min(rows, key=lambda d: (d["started_at"], d["deployment_id"])) for sha, rows in candidates.items()
    }
    metrics = {}
    for pr in prs:
        commits = [c["authored_at"] for c in pr_commits if c["number"] == pr["number"]]
        author = pr["author"]
        others = [r["submitted_at"] for r in reviews if r["number"] == pr["number"]
                  and (author is None or author == "" or r["reviewer"] != author)]  # fmt: skip
        first_commit, first_review = min(commits, default=None), min(others, default=None)
        deployment = first_deploy.get(pr["merge_commit_sha"])
        parts = {
            "coding_minutes": span(first_commit, pr["created_at"]),
            "pickup_minutes": span(pr["created_at"], first_review),
            "review_minutes": span(first_review, pr["merged_at"]),
            "deploy_minutes": span(pr["merged_at"], deployment["finished_at"]) if deployment else None,
        }
        during = span(pr["created_at"], pr["merged_at"])
        cycle = sum(v for v in (parts["coding_minutes"], during, parts["deploy_minutes"]) if v is not None)
        metrics[pr["number"]] = {
            **parts,
            "cycle_minutes": cycle,
            "deployment_id": deployment["deployment_id"] if deployment else None,
        }
    links = {}
    for incident in incidents:
        before = [d for d in deployments if d["finished_at"] < incident["opened_at"]]
        links[incident["incident_id"]] = (
            max(before, key=lambda d: d["finished_at"])["deployment_id"] if before else None
        )
    return prev, metrics, links


def test_devlake_pr_metrics_and_links_equal_a_port_of_devlakes_tasks(store):
    """Random stores (fixed seed; times to the second, so every rounding is exercised; spans of either sign;
    empty authors, reviews by the author, before the opening and after the merge; PR commits shipped apart from
    the merge commit; merge commits shipped in another repository) give the drill-downs and the lead-time
    median that :func:`_port_of_devlake` computes by DevLake's own steps."""
    import numpy as np

    rng = np.random.default_rng(20)
    t0 = pd.Timestamp("2024-01-01T00:00Z")

    def seconds(low, high):
        return pd.Timedelta(seconds=int(rng.integers(low, high)))

    def pick(options):
        return options[int(rng.integers(0, len(options)))]

    def at():
        return t0 + seconds(0, 20 * 86400)

    deployments = []
    for i in range(40):
        finished = t0 + pd.Timedelta(hours=12 * i) + seconds(0, 40000)
        deployments.append({
            "deployment_id": f"d{i:02d}", "service": pick(["api", "web", "ops"]), "repo": pick(["r", "s"]),
            "environment": "production", "sha": f"x{i}", "status": "success", "kind": "regular",
            "started_at": finished - seconds(0, 900000), "finished_at": finished,  # start orders differ from finish
        })  # fmt: skip
    prs, pr_commits, reviews, changes = [], [], [], []
    for n in range(1, 61):
        created = at()
        prs.append({"repo": "r", "number": n, "author": pick(["alice", "bob", "", None]), "created_at": created,
                    "merged_at": created + seconds(-3000, 200000), "merge_commit_sha": f"m{n}"})  # fmt: skip
        for j in range(int(rng.integers(0, 3))):
            pr_commits.append({"repo": "r", "number": n, "sha": f"p{n}_{j}",
                               "authored_at": created + seconds(-90000, 3000)})  # fmt: skip
            if rng.random() < 0.3:
                changes.append((f"d{int(rng.integers(0, 40)):02d}", f"p{n}_{j}"))
        for _ in range(int(rng.integers(0, 4))):
            reviews.append({"repo": "r", "number": n, "reviewer": pick(["alice", "bob", "carol"]),
                            "submitted_at": created + seconds(-5000, 250000)})  # fmt: skip
        for _ in range(int(rng.integers(0, 3))):
            changes.append((f"d{int(rng.integers(0, 40)):02d}", f"m{n}"))
    changes = list(dict.fromkeys(changes))
    incidents = [{"incident_id": f"i{k}", "service": "api", "opened_at": at()} for k in range(15)]
    load(store, deployments=deployments, prs=prs, pr_commits=pr_commits, reviews=reviews, incidents=incidents)
    repo_of = {d["deployment_id"]: d["repo"] for d in deployments}
    store.upsert("deployment_changes", pd.DataFrame([{"deployment_id": d, "repo": repo_of[d], "sha": s}
                                                     for d, s in changes]))  # fmt: skip
    prev, expected, links = _port_of_devlake(deployments, changes, prs, pr_commits, reviews, incidents)

    result = dora_metrics(store, "2023-12-25", "2024-02-01", profile="devlake")
    chain = result.deployments.set_index("deployment_id")["first_of_chain"].to_dict()
    assert chain == {d: not p for d, p in prev.items()}
    got = result.pull_requests.set_index("number")
    assert sorted(got.index) == sorted(expected)
    columns = ["coding_minutes", "pickup_minutes", "review_minutes", "deploy_minutes", "cycle_minutes"]
    for number, want in expected.items():
        row = got.loc[number]
        have = {c: (None if pd.isna(row[c]) else int(row[c])) for c in columns}
        have["deployment_id"] = None if pd.isna(row["deployment_id"]) else row["deployment_id"]
        assert have == want, number
    assert result.incidents.set_index("incident_id")["deployment_id"].replace({np.nan: None}).to_dict() == links
    # DORA.json: the lower median of pr_cycle_time over PRs whose deployment finished in the window
    deployed = sorted(v["cycle_minutes"] for v in expected.values() if v["deployment_id"])
    assert len(deployed) >= 10
    lower = deployed[math.ceil(len(deployed) / 2) - 1]
    assert result.frame.iloc[0].lead_time_median_hours == lower / 60


def test_a_review_by_a_deleted_account_is_accepted_and_counts_as_another_reviewers(store, tmp_path):
    """``batchFetchFirstReviews`` keeps a comment when ``pr.author_id IS NULL OR pr.author_id = '' OR
    prc.account_id != pr.author_id``: a comment whose account is empty (a deleted account) is not the
    author's, so it counts. A reviews file with an empty reviewer was refused whole ("required value is
    empty"), as an empty PR author was before.

    PR 1 (alice) opened 00:00, merged 05:00; the deleted account's review at 01:00 is the first:
    pickup = 60, review = ceil(01:00 -> 05:00) = 240.
    """
    from releaserisk.errors import InputError
    from releaserisk.ingest.tabular import ingest_file

    load(
        store,
        deployments=[dep(1, "2024-01-01T00:00Z")],
        prs=[{"repo": "r", "number": 1, "author": "alice", "created_at": "2024-01-02T00:00Z",
              "merged_at": "2024-01-02T05:00Z", "merge_commit_sha": "m"}],
    )  # fmt: skip
    path = tmp_path / "reviews.csv"
    path.write_text(
        "repo,number,reviewer,submitted_at\n"
        "r,1,,2024-01-02T01:00Z\n"  # a deleted account
        "r,1,bob,2024-01-02T02:00Z\n"
    )
    assert ingest_file(store, "pr-reviews", path) == 2
    pr = _prs(store).loc[1]
    assert (pr.pickup_minutes, pr.review_minutes) == (60, 240)
    no_column = tmp_path / "no_reviewer.csv"
    no_column.write_text("repo,number,submitted_at\nr,1,2024-01-02T01:00Z\n")
    with pytest.raises(InputError, match="missing required column"):  # the column itself stays required
        ingest_file(store, "pr-reviews", no_column)
