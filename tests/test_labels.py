"""SZZ and revert labels on real git repositories."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releaserisk.config import Settings
from releaserisk.errors import GitError, InputError
from releaserisk.ingest.git import ingest_git
from releaserisk.labels import is_comment_or_blank, label_changes, training_frame
from tests.conftest import GitRepo


def build_history(g):
    shas = {}
    g.write("app/a.py", "x = 1\ny = 2\nz = 3\n# note\n")
    shas["A"] = g.commit("initial", author="Ann", email="ann@x")
    g.write("app/a.py", "x = 1\ny = 20\nz = 3\n# note\n")
    shas["B"] = g.commit("tune y", author="Bob", email="bob@x")
    g.write("app/a.py", "x = 1\ny = 20\nz = 3\n# explain\n")
    shas["D"] = g.commit("reword comment", author="Dan", email="dan@x")
    # the fix: corrects y, re-spaces x (whitespace only), rewrites the comment (comment only)
    g.write("app/a.py", "x  =  1\ny = 2\nz = 3\n# explained better\n")
    shas["F"] = g.commit("fix wrong y value", author="Eve", email="eve@x")
    return shas


def test_szz_blames_only_the_bug_introducing_line(store, git_repo):
    shas = build_history(git_repo)
    ingest_git(store, git_repo.path, name="r")
    result = label_changes(store, "r")
    assert result.fixes == 1 and result.fixes_blamed_now == 1
    buggy = store.query("SELECT sha, fix_sha FROM labels WHERE method = 'szz'")
    assert buggy.to_dict("list") == {"sha": [shas["B"]], "fix_sha": [shas["F"]]}
    again = label_changes(store, "r")
    assert again.fixes_blamed_now == 0  # cached per fix
    assert store.query("SELECT count(*) AS n FROM labels WHERE method = 'szz'").n[0] == 1


def test_revert_labels_the_reverted_commit(store, git_repo):
    git_repo.write("b.txt", "1\n")
    git_repo.commit("add b")
    git_repo.write("b.txt", "1\n2\n")
    bad = git_repo.commit("add line")
    identity = {"GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A"}
    git_repo.git("revert", "--no-edit", bad, env={**identity, "GIT_COMMITTER_EMAIL": "a@x"})
    ingest_git(store, git_repo.path, name="r")
    result = label_changes(store, "r")
    assert result.buggy_revert == 1
    assert store.query("SELECT sha FROM labels WHERE method = 'revert'").sha.tolist() == [bad]


def test_an_incident_naming_its_cause_labels_that_commit(store, git_repo):
    import pandas as pd

    shas = build_history(git_repo)
    ingest_git(store, git_repo.path, name="r")
    store.upsert("incidents", pd.DataFrame({
        "incident_id": ["i1", "i2", "i3"], "service": ["api"] * 3,
        "opened_at": [pd.Timestamp("2020-10-01", tz="UTC")] * 3,
        "cause_sha": [shas["D"][:8].upper(), "abc", None],  # a prefix in any case; too short to trust; none
    }))  # fmt: skip
    result = label_changes(store, "r")
    assert result.buggy_incident == 1
    assert store.query("SELECT sha FROM labels WHERE method = 'incident'")["sha"].tolist() == [shas["D"]]
    frame = training_frame(store, settings=Settings(label_horizon_days=0)).set_index("sha")
    assert frame.loc[shas["D"], "bug"] == 1 and frame.loc[shas["B"], "bug"] == 1  # B by SZZ


def test_fixes_touching_too_many_files_are_skipped(store, git_repo):
    build_history(git_repo)
    ingest_git(store, git_repo.path, name="r")
    assert label_changes(store, "r", settings=Settings(szz_max_files=1)).fixes == 1
    # one file only; with a limit below it nothing qualifies
    git_repo.write("m1.py", "a\n")
    git_repo.write("m2.py", "a\n")
    git_repo.commit("setup")
    git_repo.write("m1.py", "b\n")
    git_repo.write("m2.py", "b\n")
    git_repo.commit("fix both")
    ingest_git(store, git_repo.path, name="r")
    assert label_changes(store, "r", settings=Settings(szz_max_files=1)).fixes == 1


def test_issue_date_drops_later_candidates(store, git_repo):
    shas = build_history(git_repo)
    ingest_git(store, git_repo.path, name="r")
    import pandas as pd

    opened_before_b = pd.Timestamp(1_600_000_000 + 86_400 * 1.5, unit="s", tz="UTC")
    label_changes(store, "r", issue_dates={shas["F"]: opened_before_b.to_pydatetime()})
    assert store.query("SELECT count(*) AS n FROM labels WHERE method = 'szz'").n[0] == 0


def test_commits_citing_bug_issues_and_bug_pull_requests_are_fixes(store, git_repo, tmp_path):
    import pandas as pd

    from releaserisk.ingest.tabular import ingest_file

    day = 86_400
    git_repo.write("a.py", "x = 1\ny = 2\nz = 3\n")
    git_repo.commit("initial")  # day 1
    git_repo.write("a.py", "x = 1\ny = 20\nz = 3\n")
    tune_y = git_repo.commit("tune y", author="Bob", email="bob@x")  # day 2
    git_repo.write("a.py", "x = 1\ny = 20\nz = 30\n")
    tune_z = git_repo.commit("tune z", author="Cat", email="cat@x")  # day 3
    git_repo.write("a.py", "x = 10\ny = 20\nz = 30\n")
    git_repo.commit("tidy x (#8)")  # day 4: cites an enhancement, not a bug
    git_repo.write("a.py", "x = 10\ny = 2\nz = 30\n")
    adjust_y = git_repo.commit("adjust y (#7)")  # day 5: no fix word, but #7 is a bug
    git_repo.write("a.py", "x = 10\ny = 2\nz = 3\n")
    adjust_z = git_repo.commit("adjust z")  # day 6: the merge commit of a PR labelled as a bug
    ingest_git(store, git_repo.path, name="r")
    assert label_changes(store, "r").fixes == 0  # no message says "fix"

    def opened(days):
        return pd.Timestamp(1_600_000_000 + days * day, unit="s", tz="UTC").isoformat()

    issues = tmp_path / "issues.csv"
    pd.DataFrame({"repo": ["r", "r"], "issue": ["#7", "8"], "opened_at": [opened(4.5), opened(3.5)],
                  "labels": ["Bug", "enhancement"]}).to_csv(issues, index=False)  # fmt: skip
    ingest_file(store, "issues", issues)
    store.upsert("pull_requests", pd.DataFrame({"repo": ["r"], "number": [9], "merge_commit_sha": [adjust_z],
                                                "labels": [["type: bug"]]}))  # fmt: skip
    result = label_changes(store, "r")
    assert result.fixes == 2 and result.fixes_blamed_now == 2 and result.fixes_from_trackers == 2
    # the FIX change metric follows (DESIGN §4: a fix word, or a link to an issue labelled bug)
    fix = store.query("SELECT sha, fix FROM change_features").set_index("sha")["fix"]
    assert fix[adjust_y] and fix[adjust_z] and not fix[tune_y] and fix.sum() == 2
    buggy = store.query("SELECT sha, fix_sha FROM labels WHERE method = 'szz' ORDER BY sha")
    assert dict(zip(buggy["sha"], buggy["fix_sha"], strict=True)) == {tune_y: adjust_y, tune_z: adjust_z}
    # issue 7 turns out to have been opened on day 1.5: "tune y" (day 2) came after, so cannot have caused it
    pd.DataFrame({"repo": ["r"], "issue": ["7"], "opened_at": [opened(1.5)], "labels": ["bug"]}).to_csv(issues)
    ingest_file(store, "issues", issues)
    label_changes(store, "r")
    assert store.query("SELECT sha FROM labels WHERE method = 'szz'")["sha"].tolist() == [tune_z]
    # a new commit citing the bug is a fix from the moment it is ingested: the CI gate scores it so
    git_repo.write("a.py", "x = 10\ny = 2\nz = 3\nw = 4\n")
    follow_up = git_repo.commit("add w for #7")
    ingest_git(store, git_repo.path, name="r")
    assert store.query("SELECT fix FROM change_features WHERE sha = ?", [follow_up])["fix"].item()


def test_label_horizon_leaves_recent_commits_out(store, git_repo):
    shas = build_history(git_repo)
    ingest_git(store, git_repo.path, name="r")
    label_changes(store, "r")
    everything = training_frame(store, settings=Settings(label_horizon_days=0))
    assert everything.set_index("sha").loc[shas["B"], "bug"] == 1
    assert len(everything) == 4
    horizon = training_frame(store, settings=Settings(label_horizon_days=2))  # commits are a day apart
    assert set(horizon.sha) == {shas["A"], shas["B"]}


def test_a_changed_line_that_starts_with_dashes_is_not_read_as_a_diff_header(store, git_repo):
    body = [f"line {i}\n" for i in range(10)]
    git_repo.write("notes.py", "".join(body))
    git_repo.commit("notes")
    body[1] = "-- wrong date\n"  # deleted later, it shows as "--- wrong date" in the fix's diff
    git_repo.write("notes.py", "".join(body))
    first = git_repo.commit("add release line")
    body[8] = "total 3\n"
    git_repo.write("notes.py", "".join(body))
    second = git_repo.commit("add total")
    body[1], body[8] = "-- right date\n", "total 4\n"
    git_repo.write("notes.py", "".join(body))
    git_repo.commit("fix the release date and the total")
    ingest_git(store, git_repo.path, name="r")
    label_changes(store, "r")
    assert set(store.query("SELECT sha FROM labels WHERE method = 'szz'")["sha"]) == {first, second}


def test_interrupted_labelling_keeps_its_checkpoints_and_resumes(store, git_repo):
    lines = [f"v{i} = {i}\n" for i in range(5)]
    git_repo.write("m.py", "".join(lines))
    git_repo.commit("base")
    bugs, fixes = [], []
    for i in range(5):
        lines[i] = f"v{i} = {i} + 1\n"
        git_repo.write("m.py", "".join(lines))
        bugs.append(git_repo.commit(f"tweak v{i}"))
    for i in range(5):
        lines[i] = f"v{i} = {i}\n"
        git_repo.write("m.py", "".join(lines))
        fixes.append(git_repo.commit(f"fix v{i}"))
    ingest_git(store, git_repo.path, name="r")

    def interrupt_at_third(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        label_changes(store, "r", checkpoint_every=2, progress=interrupt_at_third)
    saved = store.query("SELECT fix_sha FROM labels WHERE method = 'szz_fix'")["fix_sha"]
    assert len(saved) == 2 and set(saved) < set(fixes)  # the first checkpoint; the third fix was not saved
    resumed = label_changes(store, "r", checkpoint_every=2)
    assert resumed.fixes_blamed_now == 3 and resumed.buggy_szz == 5
    labels = store.query("SELECT sha, fix_sha FROM labels WHERE method = 'szz'")
    assert dict(zip(labels["sha"], labels["fix_sha"], strict=True)) == dict(zip(bugs, fixes, strict=True))


def test_a_commit_blamed_by_two_fixes_keeps_the_first_across_checkpoints(store, git_repo):
    git_repo.write("m.py", "a = 1\nb = 2\n")
    git_repo.commit("base")
    git_repo.write("m.py", "a = 10\nb = 20\n")
    bad = git_repo.commit("tweak both")
    git_repo.write("m.py", "a = 1\nb = 20\n")
    first = git_repo.commit("fix a")
    git_repo.write("m.py", "a = 1\nb = 2\n")
    git_repo.commit("fix b")
    ingest_git(store, git_repo.path, name="r")
    label_changes(store, "r", checkpoint_every=1)
    labels = store.query("SELECT sha, fix_sha FROM labels WHERE method = 'szz'")
    assert labels.to_dict("list") == {"sha": [bad], "fix_sha": [first]}


def test_comment_and_blank_detection():
    assert is_comment_or_blank("a.py", "   # hi")
    assert is_comment_or_blank("a.c", " * continued")
    assert is_comment_or_blank("a.java", "// x")
    assert is_comment_or_blank("x.txt", "   ")
    assert not is_comment_or_blank("a.py", "x = 1  # trailing")
    assert not is_comment_or_blank("a.txt", "# heading in text")


def test_unknown_repo_is_an_error(store):
    with pytest.raises(GitError, match="not in the store"):
        label_changes(store, "nope")


def test_zero_workers_is_an_error_not_one_worker(store, tmp_path, capsys):
    from releaserisk.cli import main

    with pytest.raises(InputError, match="workers must be at least 1"):
        label_changes(store, "nope", workers=0)
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", str(tmp_path / "s.duckdb"), "label", "--workers", "0"])
    assert exit_info.value.code == 2 and "--workers: 0 is not at least 1" in capsys.readouterr().err


def test_cli_interrupt_says_what_was_kept(tmp_path, git_repo, monkeypatch, capsys):
    import releaserisk.labels
    from releaserisk.cli import main
    from releaserisk.store import open_store

    build_history(git_repo)
    db = str(tmp_path / "cli.duckdb")
    with open_store(db) as store:
        ingest_git(store, git_repo.path, name="r")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(releaserisk.labels, "label_changes", interrupted)
    assert main(["--db", db, "label"]) == 130
    assert "up to the last checkpoint are saved" in capsys.readouterr().err


def test_commit_graph_is_written_only_when_asked(tmp_path, git_repo):
    from releaserisk.cli import main
    from releaserisk.store import open_store

    shas = build_history(git_repo)
    graph = git_repo.path / ".git" / "objects" / "info" / "commit-graph"
    db = str(tmp_path / "graph.duckdb")
    with open_store(db) as store:
        ingest_git(store, git_repo.path, name="r")
    assert main(["--db", db, "label"]) == 0
    assert not graph.exists()  # the repository is left as it was
    with open_store(db) as store:
        store.execute("DELETE FROM labels")
    assert main(["--db", db, "label", "--commit-graph"]) == 0
    assert graph.exists()
    with open_store(db) as store:
        labels = store.query("SELECT sha, fix_sha FROM labels WHERE method = 'szz'")
    assert labels.to_dict("list") == {"sha": [shas["B"]], "fix_sha": [shas["F"]]}


def test_long_histories_get_a_commit_graph_hint(tmp_path, git_repo, monkeypatch, capsys):
    import releaserisk.ingest.commit_graph
    from releaserisk.cli import main
    from releaserisk.store import open_store

    build_history(git_repo)
    db = str(tmp_path / "hint.duckdb")
    with open_store(db) as store:
        ingest_git(store, git_repo.path, name="r")
    assert main(["--db", db, "label"]) == 0
    assert "hint" not in capsys.readouterr().err  # 4 commits: not a long history
    monkeypatch.setattr(releaserisk.ingest.commit_graph, "COMMIT_GRAPH_HINT_COMMITS", 3)
    git_repo.git("commit-graph", "write", "--reachable")  # a graph without Bloom filters does not help blame
    assert main(["--db", db, "label"]) == 0
    assert "label --commit-graph' makes SZZ about 3x faster" in capsys.readouterr().err
    with open_store(db) as store:
        store.execute("DELETE FROM labels")  # the graph is written only when there are fixes to blame
    assert main(["--db", db, "label", "--commit-graph"]) == 0
    assert main(["--db", db, "label"]) == 0
    assert "hint" not in capsys.readouterr().err


# -- label quality (issue 18) -------------------------------------------------------------------
def history_with_noise(g):
    """A real bug fix among commits that say "fix" but fix no defect."""
    shas = {}
    g.write("pkg/core.py", "def area(w, h):\n    return w + h\n")
    g.write("docs/faq.md", "Intro\n")
    g.write("tests/test_core.py", "def test_area():\n    assert True\n")
    g.write("requirements.txt", "requests==2.0\n")
    shas["bug"] = g.commit("add area")
    g.write("pkg/core.py", "def area(w, h):\n    # the area\n    return w + h\n")
    g.commit("comment area")
    g.write("pkg/core.py", "def area(w, h):\n    # teh area\n    return w * h\n")
    shas["real_fix"] = g.commit("Fix wrong area result")
    g.write("pkg/core.py", "def area(w, h):\n    # the area\n    return w * h\n")
    shas["typo"] = g.commit("Fix typo in comment")
    g.write("docs/faq.md", "Intro\nMore answers\n")
    shas["docs"] = g.commit("Fix FAQ answer")
    g.write("tests/test_core.py", "def test_area():\n    assert area(2, 3) == 6\n")
    shas["tests"] = g.commit("fix flaky assertion")
    g.write("requirements.txt", "requests==2.1\n")
    shas["bot"] = g.commit(
        "fix: bump requests", author="dependabot[bot]", email="49699333+dependabot[bot]@users.noreply.github.com"
    )
    return shas


def test_only_the_real_bug_fix_blames(store, git_repo):
    shas = history_with_noise(git_repo)
    ingest_git(store, git_repo.path, name="r")
    result = label_changes(store, "r", settings=Settings(label_horizon_days=0))
    assert result.fixes == 1
    labels = store.query("SELECT sha, fix_sha FROM labels WHERE method = 'szz'")
    assert labels.to_dict("list") == {"sha": [shas["bug"]], "fix_sha": [shas["real_fix"]]}
    fixes = store.query("SELECT sha, rule, excluded FROM label_fixes").set_index("sha")
    assert fixes.loc[shas["typo"], "excluded"] == "typo"
    assert fixes.loc[shas["docs"], "excluded"] == "docs_only"
    assert fixes.loc[shas["tests"], "excluded"] == "tests_only"
    assert fixes.loc[shas["bot"], "excluded"] == "bot"
    assert fixes["excluded"].isna().sum() == 1
    quality = result.quality
    assert quality.fixes_by_rule["keyword"] == 1
    assert quality.excluded_by_category == {"typo": 1, "docs_only": 1, "tests_only": 1, "bot": 1}
    assert quality.blames == 1 and quality.failed_blames == 0
    assert quality.buggy_changes == 1 and quality.labelled_changes == 7
    assert "buggy share: 14.3% of 7 labelled changes" in quality.summary()
    assert any("keywords alone" in w for w in quality.warnings)


def test_a_bug_issue_makes_any_commit_a_fix(store, git_repo, tmp_path):
    import pandas as pd

    from releaserisk.ingest.tabular import ingest_file

    git_repo.write("a.py", "x = 1\n")
    bad = git_repo.commit("add x")
    git_repo.write("a.py", "x = 2\n")
    fix = git_repo.commit("Fix typo in x (#5)")  # the typo rule would exclude it
    ingest_git(store, git_repo.path, name="r")
    assert label_changes(store, "r").fixes == 0
    issues = tmp_path / "issues.csv"
    opened = "2021-01-01T00:00:00Z"  # after the culprit, so the issue-date rule keeps it
    pd.DataFrame({"repo": ["r"], "issue": ["5"], "labels": ["bug"], "opened_at": [opened]}).to_csv(issues, index=False)
    ingest_file(store, "issues", issues)
    result = label_changes(store, "r", settings=Settings(label_horizon_days=0))
    assert result.fixes == 1 and result.quality.fixes_by_rule["issue"] == 1
    assert store.query("SELECT sha, fix_sha FROM labels WHERE method = 'szz'").values.tolist() == [[bad, fix]]


def test_changed_rules_re_blame_and_drop_stale_labels(store, git_repo):
    shas = history_with_noise(git_repo)
    ingest_git(store, git_repo.path, name="r")
    everything = Settings(fix_exclude_pattern="", bot_authors="", szz_paths=("**",))
    assert label_changes(store, "r", settings=everything).fixes == 5
    assert shas["bug"] in set(store.query("SELECT sha FROM labels WHERE method = 'szz'")["sha"])
    again = label_changes(store, "r")
    assert again.fixes == 1 and again.fixes_blamed_now == 1  # the rules changed: blamed afresh
    assert store.query("SELECT fix_sha FROM labels WHERE method = 'szz'")["fix_sha"].tolist() == [shas["real_fix"]]


def test_a_revert_of_a_revert_labels_nothing(store, git_repo):
    identity = {
        "GIT_AUTHOR_NAME": "A",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "A",
        "GIT_COMMITTER_EMAIL": "a@x",
    }
    git_repo.write("b.py", "b = 1\n")
    git_repo.commit("add b")
    git_repo.write("b.py", "b = 1\nc = 2\n")
    feature = git_repo.commit("add c")
    git_repo.git("revert", "--no-edit", feature, env=identity)
    first_revert = git_repo.git("rev-parse", "HEAD").strip()
    git_repo.git("revert", "--no-edit", first_revert, env=identity)  # re-applies "add c"
    ingest_git(store, git_repo.path, name="r")
    result = label_changes(store, "r")
    assert store.query("SELECT sha FROM labels WHERE method = 'revert'")["sha"].tolist() == [feature]
    assert result.quality.excluded_by_category == {"reverted_revert": 1}


def test_failed_blames_are_counted_shown_and_fail_loudly(store, git_repo, monkeypatch):
    import releaserisk.labels

    history_with_noise(git_repo)
    ingest_git(store, git_repo.path, name="r")
    real = releaserisk.labels.run_git

    def refuse_blame(path, *args):
        if args[0] == "blame":
            raise GitError("git blame failed in repo: fatal: no such path")
        return real(path, *args)

    monkeypatch.setattr(releaserisk.labels, "run_git", refuse_blame)
    with pytest.raises(GitError, match=r"1 of 1 blames failed \(100.0%.*no such path"):
        label_changes(store, "r")
    quality = releaserisk.labels.label_quality(store, "r")  # saved before the error
    assert quality.failed_blames == 1 and quality.failed_share == 1.0
    assert "failed blames: 1 of 1 (100.0%)" in quality.summary()
    assert store.query("SELECT count(*) AS n FROM labels WHERE method = 'szz'").n[0] == 0


def test_label_quality_warns_outside_the_curated_range_and_round_trips(store, git_repo):
    from releaserisk.labels import LabelQuality, label_quality

    shas = build_history(git_repo)
    ingest_git(store, git_repo.path, name="r")
    assert label_quality(store, "r") is None
    result = label_changes(store, "r", settings=Settings(label_horizon_days=0))
    assert result.quality.buggy_share == 0.25 and result.quality.buggy_share_low < 0.25
    assert label_changes(store, "r").quality.buggy_share is None  # every commit inside the horizon
    stored = label_quality(store, "r")
    assert stored == LabelQuality.from_dict(stored.to_dict()) and stored.labelled_changes == 0
    assert "no labelled changes" in stored.summary()
    assert result.to_dict()["quality"]["fixes_by_rule"]["keyword"] == 1 and shas


def test_glob_rules():
    import re

    from releaserisk.labels import glob_regex

    docs = re.compile(glob_regex(["docs/**", "*.md"]))
    assert docs.search("docs/a/b.py") and docs.search("README.md") and docs.search("pkg/notes.md")
    assert not docs.search("pkg/docs.py") and not docs.search("mydocs/a.py")
    tests = re.compile(glob_regex(["**/tests/**", "test_*.py"]))
    assert tests.search("tests/a.py") and tests.search("src/pkg/tests/x.py") and tests.search("pkg/test_core.py")
    assert not tests.search("pkg/core_test_data.py")
    assert not re.compile(glob_regex([])).search("anything")
    assert re.compile(glob_regex(["src/*.py"])).search("src/a.py") and not re.compile(glob_regex(["src/*.py"])).search(
        "src/x/a.py"
    )


def test_bad_rules_are_config_errors():
    from releaserisk.errors import ConfigError

    with pytest.raises(ConfigError, match="fix_exclude_pattern is not a valid regular expression"):
        Settings(fix_exclude_pattern="(unclosed")
    with pytest.raises(ConfigError, match="szz_paths must include"):
        Settings(szz_paths=("!docs/**",))


_NAME_CHARACTERS = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="/\0", min_codepoint=1, max_codepoint=0x2FFF
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(
        st.text(_NAME_CHARACTERS, min_size=1, max_size=12).map(lambda s: s.encode("utf-8")),
        st.binary(min_size=1, max_size=8).filter(lambda b: b"/" not in b and b"\0" not in b),
    )
)
def test_any_file_name_blames_byte_exact(tmp_path_factory, name):
    """Spaces, tabs, quotes, backslashes, non-ASCII and non-UTF-8 (Latin-1) names all blame."""
    import os

    from releaserisk.labels import _deleted_lines, _Eligible, _szz_for_fix

    if name in (b".", b"..") or name.startswith(b".git"):
        return
    repo = GitRepo(tmp_path_factory.mktemp("names"))
    path = b"src/" + name + b".py"
    repo.write(os.fsdecode(path), "a = 1\nb = 2\n")
    bad = repo.commit("add")
    repo.write(os.fsdecode(path), "a = 1\nb = 3\n")
    fix = repo.commit("fix b")
    eligible = _Eligible(Settings())
    assert _deleted_lines(str(repo.path), fix, eligible) == {path: [2]}
    outcome = _szz_for_fix(str(repo.path), fix, eligible)
    assert outcome.culprits == {bad} and outcome.failed == 0


def test_unquote_c_path_reads_gits_quoting():
    from releaserisk.gitcmd import unquote_c_path

    assert unquote_c_path(b'"a/caf\\303\\251.py"') == "a/café.py".encode()
    assert unquote_c_path(b"a/my file.py\t") == b"a/my file.py"
    assert unquote_c_path(b'"a/tab\\there \\"q\\" \\\\"') == b'a/tab\there "q" \\'
    with pytest.raises(GitError, match="unterminated"):
        unquote_c_path(b'"a/open')
