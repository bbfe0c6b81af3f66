"""Deployments, incidents and PR files: validation, idempotency, linking to commits."""

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releaserisk.cli import main
from releaserisk.errors import InputError
from releaserisk.ingest.git import ingest_git
from releaserisk.ingest.links import commit_range, link_deployment_changes
from releaserisk.ingest.tabular import ingest_file, validate


def write_csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def deployment(i, sha, t, status="success", service="api", env="production", **extra):
    return {"deployment_id": f"d{i}", "service": service, "environment": env, "sha": sha, "status": status,
            "finished_at": t, **extra}  # fmt: skip


def linear_history(repo, commits: int) -> list[str]:
    """Commits one after another, each changing f.txt; their shas, oldest first."""
    shas = []
    for i in range(commits):
        repo.write("f.txt", f"{i}\n")
        shas.append(repo.commit(f"c{i}"))
    return shas


def test_deployments_load_idempotently(store, tmp_path):
    path = write_csv(tmp_path / "d.csv", [deployment(1, "abc", "2024-05-01T10:00:00Z", kind="hotfix")])
    assert ingest_file(store, "deployments", path) == 1
    first = store.query("SELECT * FROM deployments")
    ingest_file(store, "deployments", path)
    again = store.query("SELECT * FROM deployments")
    assert len(again) == 1 and again.equals(first)
    row = again.iloc[0]
    assert row.kind == "hotfix" and row.source == "d.csv" and str(row.finished_at) == "2024-05-01 10:00:00+00:00"


def test_deploy_tools_spellings_of_a_status_are_understood(store, tmp_path):
    spellings = {"Succeeded": "success", "SUCCESS": "success", "failed": "failure", "Canceled": "cancelled",
                 "ABORTED": "cancelled", "errored": "error"}  # fmt: skip
    rows = [deployment(i, "x", "2024-05-01T10:00:00Z", status=word) for i, word in enumerate(spellings)]
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    stored = store.query("SELECT status FROM deployments ORDER BY deployment_id")["status"].tolist()
    assert stored == list(spellings.values())


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"deployment_id": "d1", "service": "a", "environment": "p", "sha": "x", "status": "success"}],
            "missing required column.*finished_at",
        ),
        (
            [deployment(1, "x", "2024-05-01T10:00:00Z"), deployment(2, "y", "2024-05-01T10:00:00Z", status="ok")],
            "row 2: 'ok' is not one of success, failure, error, cancelled",
        ),
        ([deployment(1, "x", "2024-05-01 10:00:00")], "row 1: timestamp .* has no time zone"),
        ([deployment(1, "x", "yesterday+01:00")], "row 1: 'yesterday\\+01:00' is not a valid timestamp"),
        ([deployment(1, "x", "not-a-time")], "row 1: 'not-a-time' is not a valid timestamp"),  # not "no time zone"
        (
            [
                deployment(1, "x", "2024-05-01T10:00:00Z"),
                deployment(2, "y", "2024-05-01T10:00:00Z", started_at="2024-05-01T12:00:00+01:00"),
            ],  # 11:00 UTC
            "row 2: finished_at 2024-05-01 10:00:00\\+00:00 is before started_at 2024-05-01 11:00:00\\+00:00",
        ),
        ([deployment(1, "x", "2024-05-01T10:00:00Z", kind="canary")], "row 1: 'canary' is not one of regular"),
        ([deployment(1, "", "2024-05-01T10:00:00Z")], "column sha: row 1: required value is empty"),
    ],
)
def test_validation_errors_name_file_row_and_values(store, tmp_path, rows, message):
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(InputError, match=message):
        ingest_file(store, "deployments", path)
    assert store.counts()["deployments"] == 0  # nothing loaded from a file with an error


def test_an_incident_resolved_before_it_opened_is_refused(store, tmp_path):
    rows = [
        {"incident_id": "i1", "service": "api", "opened_at": "2024-01-02T00:00:00Z", "resolved_at": None},
        {"incident_id": "i2", "service": "api", "opened_at": "2024-01-02T00:00:00Z",
         "resolved_at": "2024-01-01T23:59:00Z"},
    ]  # fmt: skip
    path = write_csv(tmp_path / "i.csv", rows)
    with pytest.raises(InputError, match="row 2: resolved_at 2024-01-01 23:59:00\\+00:00 is before opened_at"):
        ingest_file(store, "incidents", path)
    assert store.counts()["incidents"] == 0
    rows[1]["resolved_at"] = "2024-01-02T00:00:00Z"  # resolved the moment it opened: zero, not negative
    assert ingest_file(store, "incidents", write_csv(tmp_path / "i.csv", rows)) == 2


def test_naive_timestamps_with_assume_tz(store, tmp_path):
    path = write_csv(tmp_path / "d.csv", [deployment(1, "x", "2024-01-15 12:00:00")])
    ingest_file(store, "deployments", path, assume_tz="Europe/Berlin")
    assert str(store.query("SELECT finished_at FROM deployments").finished_at[0]) == "2024-01-15 11:00:00+00:00"
    with pytest.raises(InputError, match="unknown time zone"):
        ingest_file(store, "deployments", path, assume_tz="Mars/Olympus")


def test_json_array_lines_parquet_and_epoch(store, tmp_path):
    rows = [{"incident_id": "i1", "service": "api", "opened_at": 1714557600, "title": "<b>down</b>"}]
    (tmp_path / "i.json").write_text(json.dumps(rows))
    (tmp_path / "i.jsonl").write_text("\n".join(json.dumps({**r, "incident_id": "i2"}) for r in rows))
    pd.DataFrame([{**rows[0], "incident_id": "i3", "opened_at": pd.Timestamp("2024-05-01T10:00Z")}]).to_parquet(
        tmp_path / "i.parquet"
    )
    for name in ("i.json", "i.jsonl", "i.parquet"):
        ingest_file(store, "incidents", tmp_path / name)
    got = store.query("SELECT incident_id, opened_at, title FROM incidents ORDER BY incident_id")
    assert got.incident_id.tolist() == ["i1", "i2", "i3"]
    assert {str(t) for t in got.opened_at} == {"2024-05-01 10:00:00+00:00"}


def test_pull_requests_and_labels_lists(store, tmp_path):
    path = write_csv(tmp_path / "p.csv", [
        {"repo": "r", "number": "7", "author": "a", "created_at": "2024-01-01T00:00:00Z", "labels": "bug;ui"},
    ])  # fmt: skip
    ingest_file(store, "pull-requests", path)
    assert list(store.query("SELECT labels FROM pull_requests").labels[0]) == ["bug", "ui"]
    bad = write_csv(tmp_path / "bad.csv", [{"repo": "r", "number": "7.5", "author": "a", "created_at": "2024-01-01Z"}])
    with pytest.raises(InputError, match="not a whole number"):
        ingest_file(store, "pull-requests", bad)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_timestamp_parser_never_crashes(value):
    frame = pd.DataFrame([{**deployment(1, "x", value)}])
    try:
        out = validate(frame, "deployments", "f.csv")
    except InputError as exc:
        assert "f.csv" in str(exc)
    else:
        assert str(out.finished_at.dt.tz) == "UTC"


# -- linking ------------------------------------------------------------------------------
def test_commit_range_on_hand_built_graphs():
    linear = {"a": (0, []), "b": (1, ["a"]), "c": (2, ["b"]), "d": (3, ["c"])}
    assert sorted(commit_range(linear, "d", "b")) == ["c", "d"]
    assert commit_range(linear, "b", "d") == []  # rollback to an older sha
    merged = {"a": (0, []), "b": (1, ["a"]), "x": (2, ["a"]), "y": (3, ["x"]), "m": (4, ["b", "y"])}
    assert sorted(commit_range(merged, "m", "b")) == ["m", "x", "y"]
    assert commit_range(merged, "zzz", "b") == []


def test_deployment_changes_linked_from_the_commit_graph(store, git_repo, tmp_path):
    g = git_repo
    shas = []
    for i in range(6):
        g.write(f"{'svc_a' if i % 2 else 'svc_b'}/f.txt", f"{i}\n")
        shas.append(g.commit(f"c{i}"))
    ingest_git(store, g.path, name="r")
    rows = [
        deployment(1, shas[1], "2024-01-01T00:00:00Z"),
        deployment(2, shas[3], "2024-01-02T00:00:00Z"),
        deployment(3, shas[4], "2024-01-03T00:00:00Z", status="failure"),  # skipped in the chain
        deployment(4, shas[5], "2024-01-04T00:00:00Z"),
        deployment(5, shas[2], "2024-01-05T00:00:00Z", kind="rollback"),  # older sha: no changes
        deployment(6, shas[5], "2024-01-06T00:00:00Z", service="web"),
    ]
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    links = store.query("SELECT deployment_id, sha FROM deployment_changes")
    by = links.groupby("deployment_id")["sha"].apply(set).to_dict()
    assert "d1" not in by and "d6" not in by  # first of each chain
    assert by["d2"] == {shas[2], shas[3]}
    assert by["d4"] == {shas[4], shas[5]}
    assert "d3" not in by and "d5" not in by


def test_deployments_loaded_before_their_commits_are_linked_when_the_commits_arrive(store, git_repo, tmp_path):
    shas = linear_history(git_repo, 3)
    rows = [deployment(1, shas[0], "2024-01-01T00:00:00Z"), deployment(2, shas[2], "2024-01-02T00:00:00Z")]
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))  # a deploy tool read before git
    assert store.counts()["deployment_changes"] == 0
    ingest_git(store, git_repo.path, name="r")
    links = store.query("SELECT deployment_id, sha, committed_at FROM deployment_changes ORDER BY sha")
    assert set(links["sha"]) == {shas[1], shas[2]} and set(links["deployment_id"]) == {"d2"}
    assert links["committed_at"].notna().all()


def test_new_commits_that_no_deployment_ships_do_not_relink_every_chain(store, git_repo, tmp_path, monkeypatch):
    import releaserisk.ingest.links as links

    g = git_repo
    shas = linear_history(g, 2)
    ingest_git(store, g.path, name="r")
    rows = [deployment(1, shas[0], "2024-01-01T00:00:00Z"), deployment(2, shas[1], "2024-01-02T00:00:00Z")]
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    relinked = []
    monkeypatch.setattr(links, "link_deployment_changes", lambda s: relinked.append(s) or 0)
    g.write("f.txt", "2\n")
    g.commit("c2")  # what a CI gate ingests before scoring: not deployed yet
    ingest_git(store, g.path, name="r")
    assert relinked == [] and store.counts()["deployment_changes"] == 1


def test_a_previous_deployment_outside_the_history_does_not_hand_its_successor_the_whole_history(
    store, git_repo, tmp_path
):
    """prev..this with an unknown prev excludes nothing: the range starts at the last known deployment."""
    shas = linear_history(git_repo, 6)
    ingest_git(store, git_repo.path, name="r")
    elsewhere = "e" * 40  # a release tagged on a branch not ingested
    rows = [deployment(1, shas[2], "2024-01-01T00:00:00Z"), deployment(2, elsewhere, "2024-01-02T00:00:00Z"),
            deployment(3, shas[4], "2024-01-03T00:00:00Z"), deployment(4, shas[5], "2024-01-04T00:00:00Z")]  # fmt: skip
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    by = store.query("SELECT deployment_id, sha FROM deployment_changes").groupby("deployment_id")["sha"].apply(set)
    assert by["d3"] == {shas[3], shas[4]} and by["d4"] == {shas[5]} and "d2" not in by and "d1" not in by
    # an unknown first deployment leaves its successor first of the chain: no changes
    store.execute("DELETE FROM deployments WHERE deployment_id = 'd1'")
    link_deployment_changes(store)
    assert set(store.query("SELECT DISTINCT deployment_id FROM deployment_changes")["deployment_id"]) == {"d4"}


def test_two_services_in_one_repository_use_path_prefixes(store, git_repo, tmp_path):
    g = git_repo
    shas = []
    for i in range(5):
        g.write(f"{'svc_a' if i % 2 else 'svc_b'}/f.txt", f"{i}\n")
        shas.append(g.commit(f"c{i}"))
    ingest_git(store, g.path, name="r")
    ingest_file(store, "services", write_csv(tmp_path / "s.csv", [
        {"service": "a", "repo": "r", "path_prefix": "svc_a/"}, {"service": "b", "repo": "r", "path_prefix": "svc_b/"},
    ]))  # fmt: skip
    rows = [deployment(1, shas[0], "2024-01-01T00:00:00Z", service="a"),
            deployment(2, shas[4], "2024-01-02T00:00:00Z", service="a"),
            deployment(3, shas[0], "2024-01-01T00:00:00Z", service="b"),
            deployment(4, shas[4], "2024-01-02T00:00:00Z", service="b")]  # fmt: skip
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    by = store.query("SELECT deployment_id, sha FROM deployment_changes").groupby("deployment_id")["sha"].apply(set)
    assert by["d2"] == {shas[1], shas[3]} and by["d4"] == {shas[2], shas[4]}


def test_explicit_changes_are_kept(store, tmp_path):
    store.upsert("repos", pd.DataFrame({"repo": ["r"]}))
    ingest_file(store, "deployment-changes", write_csv(tmp_path / "c.csv", [{"deployment_id": "d2", "repo": "r",
                                                                             "sha": "s1"}]))  # fmt: skip
    ingest_file(
        store,
        "deployments",
        write_csv(
            tmp_path / "d.csv",
            [deployment(1, "s0", "2024-01-01T00:00:00Z"), deployment(2, "s1", "2024-01-02T00:00:00Z")],
        ),
    )
    assert store.query("SELECT sha FROM deployment_changes").sha.tolist() == ["s1"]
    assert link_deployment_changes(store) == 0


def test_cli_tags_matching_nothing_hint_at_pattern(store, git_repo, capsys):
    git_repo.write("a.txt", "1\n")
    git_repo.git("tag", "release-1", git_repo.commit("one"))
    db = str(store.path)
    store.close()
    args = ["--db", db, "ingest", "git-tags", str(git_repo.path), "--service", "lib"]
    assert main(args) == 0
    assert "hint: no tag" in capsys.readouterr().err
    assert main([*args, "--pattern", "release-*"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("recorded 1 tag as production") and "hint" not in captured.err


def test_cli_ingest_file_errors_exit_2(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", [{"deployment_id": "d1"}])
    assert main(["--db", str(tmp_path / "s.duckdb"), "ingest", "deployments", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing required column" in err and str(path) in err


def test_cli_hints_when_deployments_name_a_repository_git_has_not_given(tmp_path, git_repo, capsys):
    from releaserisk.cli import main

    git_repo.write("f.txt", "1\n")
    sha = git_repo.commit("c1")
    db = str(tmp_path / "s.duckdb")
    assert main(["--db", db, "ingest", "git", str(git_repo.path)]) == 0  # named after its directory
    assert "hint" not in capsys.readouterr().err
    rows = [deployment(1, sha, "2024-01-01T00:00:00Z", repo="checkout")]
    assert main(["--db", db, "ingest", "deployments", str(write_csv(tmp_path / "d.csv", rows))]) == 0
    err = capsys.readouterr().err
    assert err.startswith("hint: successful deployments name repositories without ingested commits: 'checkout' (1)")
    assert err.rstrip().endswith("run 'releaserisk ingest git PATH --name checkout'")
    assert main(["--db", db, "ingest", "git", str(git_repo.path), "--name", "checkout"]) == 0
    assert "hint" not in capsys.readouterr().err


def test_abbreviated_deployment_shas_are_completed_and_linked_in_either_order(store, git_repo, tmp_path):
    """A deploy tool's '9fceb02' matched no commit: no changes, no lead time, no word."""
    shas = linear_history(git_repo, 3)
    rows = [deployment(1, shas[0][:7], "2024-01-01T00:00:00Z"), deployment(2, shas[2][:12].upper(),
                                                                           "2024-01-02T00:00:00Z")]  # fmt: skip
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))  # before the commits
    ingest_git(store, git_repo.path, name="r")
    assert store.query("SELECT sha FROM deployments ORDER BY deployment_id")["sha"].tolist() == [shas[0], shas[2]]
    assert set(store.query("SELECT sha FROM deployment_changes")["sha"]) == {shas[1], shas[2]}
    ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))  # again, after them
    assert store.query("SELECT sha FROM deployments ORDER BY deployment_id")["sha"].tolist() == [shas[0], shas[2]]
    assert store.counts()["deployment_changes"] == 2


def test_only_a_prefix_naming_one_commit_is_completed(store):
    from releaserisk.ingest.links import resolve_deployed_shas

    store.upsert("commits", pd.DataFrame({"repo": "r", "sha": ["abcdef0" + "1" * 33, "abcdef0" + "2" * 33,
                                                                "1234567" + "0" * 33], "parents": [[], [], []],
                                          "seq": [0, 1, 2]}))  # fmt: skip
    given = {"ambiguous": "abcdef0", "unique": "abcdef01", "short": "123456", "unknown": "fedcba9", "full": "1" * 40}
    store.upsert("deployments", pd.DataFrame({"deployment_id": list(given), "sha": list(given.values()),
                                              "status": "success"}))  # fmt: skip
    assert resolve_deployed_shas(store) == 1
    after = dict(store.query("SELECT deployment_id, sha FROM deployments").itertuples(index=False, name=None))
    assert after == {**given, "unique": "abcdef0" + "1" * 33}  # shorter than 7, unknown or ambiguous: untouched


def test_a_history_already_stored_under_another_name_is_not_copied_silently(store, git_repo, tmp_path):
    """A CI checkout in a differently named directory re-ingested the whole history as a second repository."""
    import subprocess

    from releaserisk.errors import InputError

    linear_history(git_repo, 3)
    ingest_git(store, git_repo.path, name="shop")
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(git_repo.path), str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "-c", "user.name=a", "-c", "user.email=a@x", "commit", "-q",
                    "--allow-empty", "-m", "new in CI"], check=True)  # fmt: skip
    with pytest.raises(InputError, match=r"holds repository 'shop' of the store .*pass --name shop"):
        ingest_git(store, checkout)  # the name would have been 'checkout'
    assert store.query("SELECT repo FROM repos")["repo"].tolist() == ["shop"]
    assert ingest_git(store, checkout, name="shop").new_commits == 1  # as asked
    assert ingest_git(store, checkout, name="copy").new_commits == 4  # an explicit name is trusted


@pytest.mark.parametrize("explicit_first", [True, False])
def test_explicit_links_survive_any_ingest_order(store, git_repo, tmp_path, explicit_first):
    shas = linear_history(git_repo, 4)
    ingest_git(store, git_repo.path, name="r")
    explicit = write_csv(tmp_path / "c.csv", [
        {"deployment_id": "d2", "repo": "r", "sha": shas[1]}, {"deployment_id": "d2", "repo": "r", "sha": shas[3]},
    ])  # fmt: skip
    first, second = deployment(1, shas[0], "2024-01-01T00:00:00Z"), deployment(2, shas[3], "2024-01-02T00:00:00Z")
    deploys = write_csv(tmp_path / "d.csv", [first, second])
    if explicit_first:
        ingest_file(store, "deployment-changes", explicit)
        ingest_file(store, "deployments", deploys)
    else:
        ingest_file(store, "deployments", deploys)  # derives d2 -> shas[1..3]
        ingest_file(store, "deployment-changes", explicit)  # the deploy tool's list supersedes them
    unrelated = write_csv(tmp_path / "e.csv", [deployment(9, shas[2], "2024-01-03T00:00:00Z", service="web")])
    ingest_file(store, "deployments", unrelated)  # re-derives every chain
    link_deployment_changes(store)
    rows = store.query("SELECT sha, derived FROM deployment_changes WHERE deployment_id = 'd2' ORDER BY sha")
    assert sorted(rows["sha"]) == sorted([shas[1], shas[3]]) and not rows["derived"].any()


def test_a_key_repeated_in_one_file_is_refused_naming_it(store, tmp_path):
    rows = [deployment(1, "a", "2024-05-01T10:00:00Z"), deployment(1, "b", "2024-05-01T11:00:00Z", status="failure")]
    with pytest.raises(InputError, match="deployment_id='d1' on rows 1, 2"):
        ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    assert store.counts()["deployments"] == 0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"service": 5}, "column service: Parquet type int64 where text is expected"),
        ({"finished_at": "2024-05-01T10:00:00Z"}, "column finished_at: Parquet type .*string where a timestamp"),
        ({"deployment_id": ["x", "y"]}, "column deployment_id: Parquet type list.* where text is expected"),
        ({"sha": {"a": "b"}}, "column sha: Parquet type struct"),
    ],
)
def test_parquet_columns_must_have_the_documented_type(store, tmp_path, frame, message):
    row = {**deployment(1, "a", pd.Timestamp("2024-05-01T10:00:00Z")), **frame}
    pd.DataFrame([row]).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(InputError, match=message):
        ingest_file(store, "deployments", tmp_path / "d.parquet")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1}, "column sha: row 1: an object where text is expected"),
        (["a"], "column sha: row 1: a list where text is expected"),
        (True, "column sha: row 1: the boolean true where text is expected"),
        (1.5, "column sha: row 1: the number 1.5 where text is expected"),
    ],
)
def test_json_values_must_have_the_documented_type(store, tmp_path, value, message):
    (tmp_path / "d.json").write_text(json.dumps([deployment(1, value, "2024-05-01T10:00:00Z")]))
    with pytest.raises(InputError, match=message):
        ingest_file(store, "deployments", tmp_path / "d.json")


def test_json_ids_written_as_numbers_are_text(store, tmp_path):
    (tmp_path / "d.json").write_text(json.dumps([{**deployment(1, "a", "2024-05-01T10:00:00Z"), "deployment_id": 42}]))
    ingest_file(store, "deployments", tmp_path / "d.json")
    assert store.query("SELECT deployment_id FROM deployments")["deployment_id"].tolist() == ["42"]


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
def test_deeply_nested_json_is_an_input_error(store, tmp_path, suffix):
    (tmp_path / f"d.{suffix}").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputError, match="nested too deeply"):
        ingest_file(store, "incidents", tmp_path / f"d.{suffix}")


@pytest.mark.parametrize(
    ("local", "message"),
    [
        ("2024-11-03 01:30:00", r"ambiguous in America/New_York \(daylight saving time repeats.*-04:00 or .*-05:00"),
        ("2024-03-10 02:30:00", r"does not exist in America/New_York \(daylight saving time skips"),
    ],
)
def test_local_times_daylight_saving_repeats_or_skips_are_named(store, tmp_path, local, message):
    path = write_csv(tmp_path / "d.csv", [deployment(1, "a", local)])
    with pytest.raises(InputError, match=message):
        ingest_file(store, "deployments", path, assume_tz="America/New_York")
    resolved = write_csv(tmp_path / "ok.csv", [deployment(1, "a", "2024-11-03T01:30:00-05:00")])  # the documented fix
    ingest_file(store, "deployments", resolved, assume_tz="America/New_York")
    assert str(store.query("SELECT finished_at FROM deployments").finished_at[0]) == "2024-11-03 06:30:00+00:00"


def test_epoch_milliseconds_get_a_hint_and_dates_alone_are_local(store, tmp_path):
    with pytest.raises(InputError, match="looks like Unix epoch milliseconds"):
        ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", [deployment(1, "a", "1714557600000")]))
    with pytest.raises(InputError, match="'2024-05-01' has no time zone"):  # not 2024-05-01 at UTC-01
        ingest_file(store, "deployments", write_csv(tmp_path / "e.csv", [deployment(1, "a", "2024-05-01")]))


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_a_byte_order_mark_does_not_rename_the_first_column(store, tmp_path, suffix):
    rows = [deployment(1, "a", "2024-05-01T10:00:00Z")]
    text = pd.DataFrame(rows).to_csv(index=False) if suffix == "csv" else json.dumps(rows)
    (tmp_path / f"d.{suffix}").write_bytes(b"\xef\xbb\xbf" + text.encode())  # as spreadsheets export
    assert ingest_file(store, "deployments", tmp_path / f"d.{suffix}") == 1


@pytest.mark.parametrize("number", ["99999999999999999999999", "1e30", "-5", "2147483648"])
def test_whole_numbers_outside_the_stores_range_are_refused(store, tmp_path, number):
    row = {"repo": "r", "number": number, "author": "a", "created_at": "2024-05-01T10:00:00Z"}
    with pytest.raises(InputError, match="is not between 0 and 2,147,483,647"):
        ingest_file(store, "pull-requests", write_csv(tmp_path / "p.csv", [row]))


def test_nanosecond_timestamps_are_kept_to_the_microsecond(store, tmp_path):
    path = write_csv(tmp_path / "d.csv", [deployment(1, "a", "2024-05-01T10:00:00.123456789Z")])
    ingest_file(store, "deployments", path)
    assert str(store.query("SELECT finished_at FROM deployments").finished_at[0]) == "2024-05-01 10:00:00.123456+00:00"


def test_a_bug_issue_loaded_from_a_file_marks_the_fix_of_the_commits_citing_it(store, git_repo, tmp_path):
    # every source runs the same post-ingest steps (ingest.steps.after_ingest), files included
    git_repo.write("app.py", "x = 1\n")
    git_repo.commit("Add app")
    git_repo.write("app.py", "x = 2\n")
    cited = git_repo.commit("Handle empty input (#12)")
    ingest_git(store, git_repo.path, name="r")
    assert not store.execute("SELECT fix FROM change_features WHERE sha = ?", [cited]).fetchone()[0]
    rows = [{"repo": "r", "issue": "12", "opened_at": "2020-01-01T00:00:00Z", "labels": "bug", "title": "crash"}]
    ingest_file(store, "issues", write_csv(tmp_path / "issues.csv", rows))
    assert store.execute("SELECT fix FROM change_features WHERE sha = ?", [cited]).fetchone()[0]


def test_a_row_with_more_fields_than_the_header_is_refused_not_shifted(store, tmp_path, capsys):
    """pandas would take the first column as the row index and shift every value one column left."""
    path = tmp_path / "incidents.csv"
    path.write_text("incident_id,service,opened_at\ni-9,api,2026-08-19T10:00:00Z,2026-08-20T00:00:00Z\n")
    with pytest.raises(InputError, match="Expected 3 fields in line 2, saw 4"):
        ingest_file(store, "incidents", path)
    assert store.counts()["incidents"] == 0
    assert main(["--db", str(tmp_path / "s.duckdb"), "ingest", "incidents", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the file is empty"), ("incident_id,service,service\ni,a,b\n", "names column 'service' more than once")],
)
def test_an_empty_file_or_a_header_naming_a_column_twice_is_refused(store, tmp_path, text, message):
    path = tmp_path / "incidents.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        ingest_file(store, "incidents", path)


_CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4).flatmap(lambda k: st.tuples(st.just(k), st.lists(st.lists(_CELL, min_size=k, max_size=k),
                                                                           max_size=4))), st.data())  # fmt: skip
def test_csv_text_round_trips_and_an_extra_field_anywhere_is_an_error(shape, data):
    import csv
    import io

    from releaserisk.inputs import read_csv_text

    k, rows = shape
    names = [f"c{i}" for i in range(k)]

    def text(rows):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([names, *rows])
        return out.getvalue()

    frame = read_csv_text(io.StringIO(text(rows)))
    assert list(frame.columns) == names
    assert frame.fillna("").to_numpy().tolist() == rows
    if rows:
        at = data.draw(st.integers(0, len(rows) - 1))
        longer = [[*r, "extra"] if i == at else r for i, r in enumerate(rows)]
        with pytest.raises(pd.errors.ParserError):
            read_csv_text(io.StringIO(text(longer)))


@pytest.mark.parametrize("placeholder", ["1970-01-01T00:00:00Z", "0000000000", "9999-12-31T23:59:59Z"])
def test_an_empty_date_exported_as_a_placeholder_is_refused(store, tmp_path, placeholder):
    """Unix time 0 loaded as a real deployment stretched every window back 56 years."""
    rows = [deployment(1, "a", "2024-01-01T00:00:00Z"), deployment(2, "b", placeholder)]
    with pytest.raises(InputError, match=r"row 2: .*the placeholder exports write for an empty date"):
        ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    assert store.counts()["deployments"] == 0
    ingest_file(store, "deployments", write_csv(tmp_path / "ok.csv", [deployment(1, "a", "1970-01-01T00:00:01Z")]))


@pytest.mark.parametrize(("separator", "called"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_separated_by_semicolons_or_tabs_says_so(store, tmp_path, separator, called):
    path = tmp_path / "incidents.csv"
    path.write_text(separator.join(["incident_id", "service", "opened_at"]) + "\n" + separator.join(["i", "a", "b"]))
    with pytest.raises(InputError, match=f"one column holding {called}"):
        ingest_file(store, "incidents", path)
