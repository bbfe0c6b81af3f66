"""Definition diff: profiles side by side and one row per reason they disagree."""

import json
import re

import pytest

from releaserisk.dora import dora_metrics
from releaserisk.errors import InputError
from tests.test_dora import dep, load


@pytest.fixture
def disagreeing(store):
    load(
        store,
        commits=[("cafe0001", "2024-01-01T00:00Z"), ("c2", "2024-01-02T11:59:30Z"), ("m3", "2024-01-02T10:00Z"),
                 ("p4", "2024-01-02T07:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z"), dep(3, "2024-01-04T00:00Z"),
                     dep(4, "2024-01-04T12:00Z", kind="rollback", reverts_deployment_id="d3")],
        changes=[("d1", "cafe0001"), ("d2", "c2"), ("d2", "m3"), ("d2", "p4")],
        incidents=[{"incident_id": "i1", "service": "api", "opened_at": "2024-01-03T06:00Z", "cause_sha": "cafe0001"}],
        prs=[{"repo": "r", "number": 3, "author": "a", "created_at": "2024-01-02T08:00Z",
              "merged_at": "2024-01-02T10:00Z", "merge_commit_sha": "m3"},
             {"repo": "r", "number": 4, "author": "a", "created_at": "2024-01-02T06:00Z",
              "merged_at": "2024-01-02T09:00Z", "merge_commit_sha": "m4"},
             {"repo": "r", "number": 5, "author": "a", "created_at": "2024-01-05T06:00Z",
              "merged_at": "2024-01-05T09:00Z", "merge_commit_sha": "m5"}],
        pr_commits=[{"repo": "r", "number": 4, "sha": "p4", "authored_at": "2024-01-02T07:00Z"}],
        reviews=[{"repo": "r", "number": 3, "reviewer": "bob", "submitted_at": "2024-01-02T11:00Z"}],
    )  # fmt: skip
    return store


def test_one_row_per_reason(disagreeing):
    result = dora_metrics(disagreeing, "2024-01-01", "2024-01-08", compare=["dora", "devlake", "fourkeys"])
    reasons = result.comparison.reasons
    found = {(row.entity, row.key, row.reason) for row in reasons.itertuples()}
    assert found == {
        ("deployment", "d1", "first_of_chain"),
        ("deployment", "d3", "failure_kind"),
        # d3 and d4 list no change and name no ingested commit: no Four Keys deployments
        ("deployment", "d3", "deployments_counted"),
        ("deployment", "d4", "deployments_counted"),
        ("incident", "i1", "incident_link"),
        ("change", "r:c2", "lead_time_zero"),
        ("pull_request", "r#5", "undeployed_pr"),
        ("pull_request", "r#4", "pr_deployment"),
        ("pull_request", "r#3", "review_window"),
    }
    detail = reasons.set_index("reason")["detail"]
    assert (
        detail["first_of_chain"]
        == "first deployment of its chain: devlake gives it no changes (1 listed), dora, fourkeys keep them"
    )
    assert detail["incident_link"] == (
        "linked differently: dora: d1 by cause sha, devlake: d2 by latest prior deployment, fourkeys: d1 by cause sha"
    )
    assert detail["failure_kind"] == "rolled back: a change failure in dora, not in devlake, fourkeys (incidents only)"
    side = result.comparison.frame.set_index("metric")
    assert side.loc["change_failure_rate", "dora"] == pytest.approx(2 / 4)  # d1 by its cause, d3 rolled back
    assert side.loc["change_failure_rate", "devlake"] == pytest.approx(1 / 4)  # d2, by the latest prior
    text = result.comparison.summary()
    assert "first_of_chain: 1 deployment(s), e.g. d1" in text and "devlake" in text
    # each cell in its metric's unit: a rate in %, hours with their unit, a count whole
    # and beside a rate or a median the n it rests on
    assert re.search(r"change_failure_rate +50\.0 % \(n 4\) +25\.0 % \(n 4\)", text)
    assert re.search(r"deployments +4 ", text)
    assert re.search(r"deploys_per_week +4\.00/week \(n 4\) +4\.00/week \(n 4\)", text)  # its unit, as in the summary
    assert "e+0" not in text and re.search(r"lead_time_median_hours +[\d,]+\.\d h", text)
    json.dumps(result.comparison.to_dict(), allow_nan=False)


def test_metric_differences_name_the_rules_behind_them(disagreeing):
    """A median kind or a rounding unit is no row's reason: per metric whose shown value differs from the reference
    profile's, the rules of that metric on which the two profiles choose differently, and each profile's own notes
    (why a number is no data in one and not in another)."""
    result = dora_metrics(disagreeing, "2024-01-01", "2024-01-08", compare=["dora", "devlake", "fourkeys"])
    comparison = result.comparison
    rows = comparison.metric_rules
    by = {(r.metric, r.profile): [] for r in rows.itertuples()}
    for r in rows.itertuples():
        by[(r.metric, r.profile)].append(r.rule)
    # per PR in devlake, per commit in dora: what is measured, and devlake's lower median
    assert by[("lead_time_median_hours", "devlake")] == ["lead_time_of", "median"]
    assert by[("lead_time_p90_hours", "devlake")] == ["lead_time_of"]  # no median in a p90
    # no change is listed by two deployments here: change_deployments changed nothing and is not named
    assert by[("lead_time_median_hours", "fourkeys")] == ["rounding", "lead_time_zero", "span_guard"]
    assert by[("change_failure_rate", "devlake")] == ["failure", "incident_link", "cause_match"]  # d3 rolled back
    # 50.0 % in both, but of 2 in fourkeys and of 4 in dora: the n differs, and why is said (no deployment lists
    # two incidents' root causes, so failure_count is not named)
    assert by[("change_failure_rate", "fourkeys")] == ["deployments_counted", "failure", "incident_link",
                                                       "cause_match"]  # fmt: skip
    assert not rows["metric"].eq("restore_median_hours").any()  # no data in all three: nothing differs
    assert (
        rows.set_index(["metric", "profile", "rule"]).loc[("lead_time_median_hours", "devlake", "median"), "choices"]
        == "dora: interpolated; devlake: lower"
    )
    text = comparison.summary()
    assert "    lead_time_median_hours differs from dora: devlake by lead_time_of, median; fourkeys by " in text
    assert "  rule median: dora interpolated; devlake lower; fourkeys interpolated" in text
    assert any(n.startswith("2 production deployments list no change") for n in comparison.notes["fourkeys"])
    assert "  fourkeys only: 2 production deployments list no change" in text
    payload = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert {"group", "metric", "profile", "rule", "choices"} <= set(payload["metric_rules"][0])
    assert payload["notes"]["fourkeys"] == comparison.notes["fourkeys"]


def test_every_compared_metric_names_rules_of_the_profile_table():
    from releaserisk.dora_compare import COMPARED_METRICS, METRIC_RULES
    from releaserisk.profiles import PROFILE_RULES

    names = {rule.name for rule in PROFILE_RULES}
    assert set(METRIC_RULES) == set(COMPARED_METRICS)
    assert all(rules and set(rules) <= names for rules in METRIC_RULES.values())


def test_compare_needs_known_profiles(store):
    with pytest.raises(InputError, match="profile must be one of"):
        dora_metrics(store, "2024-01-01", "2024-01-08", compare=["dora", "sleuth"])


def test_cli_compare_in_text_json_and_csv(disagreeing, capsys):
    from releaserisk.cli import main

    db = str(disagreeing.path)
    disagreeing.close()
    window = ["--since", "2024-01-01", "--until", "2024-01-08"]
    assert main(["--db", db, "dora", *window, "--compare", "dora,devlake,fourkeys"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("profiles compared: dora, devlake, fourkeys") and "review_window: 1 pull_request(s)" in text
    assert main(["--db", db, "dora", *window, "--compare", "dora,devlake", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["profiles"] == ["dora", "devlake"] and {r["reason"] for r in payload["reasons"]} >= {"undeployed_pr"}
    assert main(["--db", db, "dora", *window, "--compare", "dora,fourkeys", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("entity,key,reason,detail\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", db, "dora", "--compare", "dora,sleuth"])
    assert exit_info.value.code == 2 and "give two or more of dora, devlake, fourkeys" in capsys.readouterr().err


def test_rows_a_profile_counts_several_times_have_their_reasons(store):
    # Four Keys counts a change once per deployment listing it and a deployment once per matched root cause
    c1, c2, c3 = "c1" * 4, "c2" * 4, "c3" * 4  # root causes are matched on 7 characters or more
    load(
        store,
        commits=[(c1, "2024-01-01T00:00Z"), (c2, "2024-01-02T12:00Z"), (c3, "2024-01-02T13:00Z")],
        deployments=[dep(1, "2024-01-02T00:00Z"), dep(2, "2024-01-03T00:00Z")],
        changes=[("d1", c1), ("d2", c1), ("d2", c2), ("d2", c3)],
        incidents=[{"incident_id": f"i-{sha}", "service": "api", "opened_at": "2024-01-04T00:00Z", "cause_sha": sha}
                   for sha in (c2, c3)],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08", compare=["dora", "fourkeys"])
    reasons = result.comparison.reasons.set_index("reason")
    assert reasons.loc["change_deployments", "key"].endswith(f":{c1}")
    assert reasons.loc["change_deployments", "detail"] == (
        "listed by 2 production deployments: fourkeys count its lead time 2 times, dora once (its first deployment)"
    )
    assert (reasons.loc["failure_count", "entity"], reasons.loc["failure_count", "key"]) == ("deployment", "d2")
    assert reasons.loc["failure_count", "detail"] == (
        "lists the root causes of 2 incidents: fourkeys count it 2 times in the change failure rate, dora once"
    )


@pytest.fixture
def relinked(store):
    """i1 is left unlinked by fourkeys alone; i2 is linked to another deployment by devlake too."""
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-02T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-02T12:00Z")],
        changes=[("d1", "c1"), ("d2", "c2")],
        incidents=[{"incident_id": "i1", "service": "api", "opened_at": "2024-01-03T00:00Z",
                    "resolved_at": "2024-01-03T10:00Z"},
                   {"incident_id": "i2", "service": "api", "opened_at": "2024-01-03T06:00Z",
                    "resolved_at": "2024-01-03T12:00Z", "cause_deployment_id": "d1"}],
    )  # fmt: skip
    return store


def test_the_incident_link_example_is_one_that_explains_the_failure_rates(relinked):
    """dora fails d1 and d2, devlake d2 alone: the example must be i2, which devlake links to d2, not i1 (first by
    id), which dora and devlake link alike and only fourkeys leaves unlinked."""
    result = dora_metrics(relinked, "2024-01-01", "2024-01-08", compare=["dora", "devlake", "fourkeys"])
    side = result.comparison.frame.set_index("metric")
    assert side.loc["change_failure_rate", "dora"] == pytest.approx(1.0)
    assert side.loc["change_failure_rate", "devlake"] == pytest.approx(0.5)
    text = result.comparison.summary()
    assert (
        "  incident_link: 2 incident(s), e.g. i2: linked differently: dora: d1 by explicit, devlake: d2 by latest "
        "prior deployment, fourkeys: no deployment by unlinked"
    ) in text
    assert set(result.comparison.reasons.query("reason == 'incident_link'")["key"]) == {"i1", "i2"}


def test_rules_the_rows_show_changed_nothing_are_not_named(relinked):
    """No deployment was rolled back or hotfixed, none was counted by one profile only, none lists two incidents'
    root causes: failure, deployments_counted and failure_count cannot be why the failure rates differ."""
    result = dora_metrics(relinked, "2024-01-01", "2024-01-08", compare=["dora", "devlake", "fourkeys"])
    rows = result.comparison.metric_rules
    cfr = rows[rows["metric"] == "change_failure_rate"].groupby("profile")["rule"].agg(list)
    assert cfr["devlake"] == ["incident_link", "cause_match"]
    assert cfr["fourkeys"] == ["incident_link", "cause_match"]
    text = result.comparison.summary()
    assert "change_failure_rate differs from dora: devlake by incident_link, cause_match; fourkeys by " in text
    assert "rule failure:" not in text and "rule deployments_counted:" not in text


def test_a_differing_n_is_explained_like_a_differing_value(store):
    """Recovery per failed deployment (dora) and per incident (devlake) give the same median of 10.0 h here, over
    1 deployment and 2 incidents: the n differs, so the rules behind it are named."""
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z")],
        changes=[("d1", "c1")],
        incidents=[{"incident_id": f"i{i}", "service": "api", "opened_at": "2024-01-01T13:00Z",
                    "resolved_at": "2024-01-01T22:00Z"} for i in (1, 2)],
    )  # fmt: skip
    result = dora_metrics(store, "2024-01-01", "2024-01-08", compare=["dora", "devlake"])
    side = result.comparison.frame.set_index("metric")
    assert side.loc["recovery_median_hours", ["dora", "devlake"]].tolist() == pytest.approx([10.0, 10.0])
    assert side.loc["recovery_median_hours", ["dora_n", "devlake_n"]].tolist() == [1, 2]
    rows = result.comparison.metric_rules
    assert "recovery" in set(rows[rows["metric"] == "recovery_median_hours"]["rule"])
    assert "recovery_median_hours differs from dora: devlake by " in result.comparison.summary()


def test_time_to_restore_names_the_incident_link_only_where_it_starts_at_the_cause(relinked):
    """dora and devlake both time a restore from the incident's opening: which deployment the incident is linked
    to cannot be why their restore medians differ (8.0 h and a lower median of 6.0 h)."""
    result = dora_metrics(relinked, "2024-01-01", "2024-01-08", compare=["dora", "devlake", "fourkeys"])
    rows = result.comparison.metric_rules
    restore = rows[rows["metric"] == "restore_median_hours"].groupby("profile")["rule"].agg(list)
    assert "incident_link" not in restore["devlake"] and "restore_window" in restore["devlake"]


def test_cli_compare_takes_the_profiles_given_and_refuses_what_it_would_drop(disagreeing, capsys):
    """--compare devlake,fourkeys compared dora, devlake and fourkeys (the default --profile put in front), and
    --detail, --freq or --count-flag-releases beside --compare were dropped: --detail printed dora's rows."""
    from releaserisk.cli import main

    db = str(disagreeing.path)
    disagreeing.close()
    window = ["--since", "2024-01-01", "--until", "2024-01-08"]
    assert main(["--db", db, "dora", *window, "--compare", "devlake,fourkeys"]) == 0
    assert capsys.readouterr().out.startswith("profiles compared: devlake, fourkeys\n")
    assert main(["--db", db, "dora", *window, "--profile", "fourkeys", "--compare", "dora,devlake"]) == 0
    assert capsys.readouterr().out.startswith("profiles compared: fourkeys, dora, devlake\n")
    for extra in (["--detail", "incidents"], ["--freq", "month"], ["--count-flag-releases"]):
        assert main(["--db", db, "dora", *window, "--compare", "dora,devlake", *extra]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("error: --compare shows the window's summaries")
        assert f"{extra[0]} is for one profile" in captured.err and len(captured.err.splitlines()) == 1
