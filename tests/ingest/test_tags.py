"""Release tags read the way they mean: the tag-kind table, tag ingestion and multi-ref git ingestion."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from releaserisk.ingest.git import ingest_git, ingest_git_tags
from releaserisk.ingest.tags import TAG_KINDS, classify_tag

# Real-world spellings (the projects that use them in the comments)
TAGS = [
    ("v1.2.3", "release"),  # most Go and JS projects
    ("1.2.3", "release"),  # Flask, Django
    ("1.2", "release"),
    ("V2.0", "release"),
    ("2024.01.15", "release"),  # CalVer (pip's 24.0 style too)
    ("24.1.0", "release"),  # black
    ("release-1.2.3", "release"),
    ("flask-0.12", "release"),  # old Flask/Werkzeug tags
    ("@scope/pkg@1.2.3", "release"),  # changesets monorepos
    ("module/v1.2.3", "release"),  # Go submodules
    ("go1.21.0", "release"),  # Go itself
    ("5.4.0.Final", "release"),  # Hibernate
    ("5.0.0.RELEASE", "release"),  # Spring
    ("1.0.0-GA", "release"),
    ("1.2.3.post1", "release"),  # PEP 440 post-release
    ("1.0.0+build.5", "release"),  # SemVer build metadata
    ("1.2.3rc1", "prerelease"),
    ("1.2.3.dev0", "prerelease"),
    ("8.0.0a1", "prerelease"),
    ("1.0.0.beta0", "prerelease"),
    ("2.0.0-beta.1", "prerelease"),  # SemVer
    ("v1.2.3-rc1", "prerelease"),
    ("1.0.0-alpha+001", "prerelease"),
    ("1.2.3.post1.dev0", "prerelease"),
    ("go1.21rc2", "prerelease"),
    ("v2.0.0-M1", "prerelease"),  # Maven milestone
    ("3.0.0-SNAPSHOT", "prerelease"),
    ("1.0.0-1", "prerelease"),  # SemVer: any hyphenated suffix
    ("1.2.0b2", "prerelease"),
    ("1.x", "branch"),  # archive tags of maintenance lines
    ("8.0.x", "branch"),
    ("1.2.X", "branch"),
    ("2.x-branch", "branch"),
    ("v4", "major"),  # GitHub Actions' moving major tags
    ("release-1", "major"),
    ("release-2024-01", "other"),
    ("nightly-2024-01-01", "other"),
    ("latest", "other"),
    ("stable", "other"),
    ("REL_16_1", "other"),  # PostgreSQL
]


@pytest.mark.parametrize(("tag", "kind"), TAGS)
def test_tag_kinds(tag, kind):
    assert classify_tag(tag) == kind


def test_the_table_is_long_enough():
    assert len(TAGS) >= 30 and {kind for _, kind in TAGS} == set(TAG_KINDS)


@given(st.text(max_size=40))
def test_any_name_gets_a_known_kind(name):
    assert classify_tag(name) in TAG_KINDS


@given(
    st.lists(st.integers(0, 999), min_size=2, max_size=4),
    st.sampled_from(["", "v", "release-", "pkg-", "pkg/v"]),
    st.sampled_from(["a1", "b2", "rc1", ".dev0", "-rc.1", "-beta", "-alpha.2", ".rc3"]),
)
def test_a_final_version_is_a_release_and_with_a_pre_part_is_not(parts, prefix, pre):
    number = ".".join(map(str, parts))
    assert classify_tag(prefix + number) == "release"
    assert classify_tag(prefix + number + pre) == "prerelease"


def tag(repo, name, sha, annotated=False):
    if annotated:
        env = {"GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@x", "GIT_COMMITTER_DATE": "1700000000 +0000"}
        repo.git("tag", "-a", "-m", name, name, sha, env=env)
    else:
        repo.git("tag", name, sha)


def test_default_takes_final_releases_and_says_what_it_skipped(store, git_repo):
    shas = []
    for i in range(4):
        git_repo.write("a.txt", f"{i}\n")
        shas.append(git_repo.commit(f"c{i}"))
    tag(git_repo, "1.0.0", shas[0])
    tag(git_repo, "1.1.0rc1", shas[1])
    tag(git_repo, "1.1.0", shas[2], annotated=True)
    tag(git_repo, "1.x", shas[2])
    tag(git_repo, "8.0.x", shas[2])
    tag(git_repo, "latest", shas[3])
    ingest_git(store, git_repo.path, name="lib")
    result = ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    assert result.deployments == 2 and result.frame.loc[result.frame.recorded, "tag"].tolist() == ["1.0.0", "1.1.0"]
    assert result.skipped == {TAG_KINDS["branch"]: 2, TAG_KINDS["prerelease"]: 1, TAG_KINDS["other"]: 1}
    summary = result.summary()
    assert "recorded 2 tags" in summary and "skipped 2 tags: names a line of releases" in summary
    assert result.unreachable == [] and "warning" not in summary
    # the annotated tag's deployment is its commit, and it ships what came after 1.0.0
    changes = store.query("SELECT deployment_id, sha FROM deployment_changes ORDER BY sha")
    assert set(changes["sha"]) == {shas[1], shas[2]} and set(changes["deployment_id"]) == {"tag:lib:1.1.0"}
    with_pre = ingest_git_tags(store, git_repo.path, service="lib", name="lib", include_prereleases=True)
    assert with_pre.deployments == 3 and set(with_pre.skipped) == {TAG_KINDS["branch"], TAG_KINDS["other"]}
    assert result.to_dict()["recorded"] == ["1.0.0", "1.1.0"]


def test_a_rerun_removes_tags_an_earlier_run_took_and_no_longer_does(store, git_repo):
    import pandas as pd

    git_repo.write("a.txt", "1\n")
    sha = git_repo.commit("one")
    tag(git_repo, "1.0.0", sha)
    tag(git_repo, "1.x", sha)
    ingest_git(store, git_repo.path, name="lib")
    assert ingest_git_tags(store, git_repo.path, service="lib", name="lib", pattern="1*").deployments == 1
    at = pd.Timestamp("2024-01-01", tz="UTC")  # as an earlier version stored the branch-like tag: a release
    store.upsert("deployments", pd.DataFrame({
        "deployment_id": ["tag:lib:1.x"], "service": ["lib"], "repo": ["lib"], "environment": ["production"],
        "sha": [sha], "started_at": [at], "finished_at": [at], "status": ["success"], "kind": ["regular"],
        "source": ["git-tag"]}))  # fmt: skip
    result = ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    assert store.query("SELECT deployment_id FROM deployments")["deployment_id"].tolist() == ["tag:lib:1.0.0"]
    assert result.removed == ["1.x"] and "removed 1 earlier recorded tag" in result.summary()


def test_tags_outside_the_ingested_history_are_named(store, git_repo):
    git_repo.write("a.txt", "1\n")
    base = git_repo.commit("one")
    tag(git_repo, "1.0.0", base)
    git_repo.git("checkout", "-q", "-b", "stable")
    git_repo.write("a.txt", "fix\n")
    tag(git_repo, "1.0.1", git_repo.commit("fix on the maintenance line"))
    git_repo.git("checkout", "-q", "main")
    git_repo.write("b.txt", "new\n")
    git_repo.commit("new work")
    ingest_git(store, git_repo.path, name="lib")
    result = ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    assert result.unreachable == ["1.0.1"]
    assert "1.0.1" in result.warning() and "--rev" in result.warning() and "warning: " in result.summary()
    ingest_git(store, git_repo.path, name="lib", rev=["main", "stable"])
    assert ingest_git_tags(store, git_repo.path, service="lib", name="lib").unreachable == []
    links = store.query("SELECT deployment_id FROM deployment_changes")
    assert links["deployment_id"].tolist() == ["tag:lib:1.0.1"]


def _two_lines(git_repo):
    """main and stable, diverged after a common base; their tips."""
    git_repo.write("a.txt", "1\n")
    git_repo.commit("base")
    git_repo.git("checkout", "-q", "-b", "stable")
    git_repo.write("a.txt", "1\nfix\n")
    git_repo.commit("fix")
    git_repo.git("checkout", "-q", "main")
    git_repo.write("b.txt", "x\n")
    git_repo.commit("feature")
    git_repo.write("b.txt", "x\ny\n")
    git_repo.commit("feature 2")


def _history(store):
    commits = store.query("SELECT sha, parents, author, message FROM commits ORDER BY sha")
    files = store.query("SELECT sha, path, status, added, deleted FROM file_changes ORDER BY sha, path")
    return commits, files


def test_several_revs_ingest_their_union_once(tmp_path, git_repo):
    from releaserisk.store import open_store

    _two_lines(git_repo)
    with open_store(tmp_path / "union.duckdb") as union, open_store(tmp_path / "each.duckdb") as each:
        result = ingest_git(union, git_repo.path, name="lib", rev=["main", "stable", "main"])
        ingest_git(each, git_repo.path, name="lib", rev="main")
        ingest_git(each, git_repo.path, name="lib", rev="stable")
        expected = set(git_repo.git("rev-list", "main", "stable").split())
        assert result.new_commits == len(expected) == 4
        assert set(union.query("SELECT sha FROM commits")["sha"]) == expected
        for mine, theirs in zip(_history(union), _history(each), strict=True):
            assert mine.astype(str).equals(theirs.astype(str))
        assert result.head_sha == git_repo.git("rev-parse", "main").strip()
        # a re-run reads nothing new; a new commit on either line is read once
        assert ingest_git(union, git_repo.path, name="lib", rev=["main", "stable"]).new_commits == 0
        git_repo.git("checkout", "-q", "stable")
        git_repo.write("a.txt", "1\nfix\nfix 2\n")
        git_repo.commit("fix 2")
        assert ingest_git(union, git_repo.path, name="lib", rev=["main", "stable"]).new_commits == 1
        assert union.execute("SELECT count(*) FROM commits").fetchone()[0] == 5


def test_an_unknown_second_rev_is_a_git_error(store, git_repo):
    from releaserisk.errors import GitError, InputError

    _two_lines(git_repo)
    with pytest.raises(GitError, match="unknown revision 'nope'"):
        ingest_git(store, git_repo.path, name="lib", rev=["main", "nope"])
    with pytest.raises(InputError, match="at least one revision"):
        ingest_git(store, git_repo.path, name="lib", rev=[])
    assert store.counts()["commits"] == 0


def test_git_tags_become_deployments(store, git_repo):
    git_repo.write("a.txt", "1\n")
    first = git_repo.commit("one")
    git_repo.git("tag", "v1.0", first)
    git_repo.write("a.txt", "2\n")
    second = git_repo.commit("two")
    git_repo.git("tag", "-a", "-m", "release", "v1.1", second, env={"GIT_COMMITTER_NAME": "A",
                 "GIT_COMMITTER_EMAIL": "a@x", "GIT_COMMITTER_DATE": "1700000000 +0000"})  # fmt: skip
    git_repo.git("tag", "other", second)
    git_repo.git("tag", "version-notes", second)
    ingest_git(store, git_repo.path, name="lib")
    assert ingest_git_tags(store, git_repo.path, service="lib", name="lib").deployments == 2
    deployments = store.query("SELECT deployment_id, sha, finished_at FROM deployments ORDER BY deployment_id")
    assert deployments.sha.tolist() == [first, second]
    assert str(deployments.finished_at[1]) == "2023-11-14 22:13:20+00:00"
    assert store.query("SELECT sha FROM deployment_changes").sha.tolist() == [second]
    assert ingest_git_tags(store, git_repo.path, pattern="oth*", service="lib", name="lib").deployments == 1


def test_bare_version_tags_are_releases_too(store, git_repo):
    git_repo.write("a.txt", "1\n")
    git_repo.git("tag", "2.0.1", git_repo.commit("one"))
    git_repo.git("tag", "latest")
    ingest_git(store, git_repo.path, name="lib")
    assert ingest_git_tags(store, git_repo.path, service="lib", name="lib").deployments == 1
    assert store.query("SELECT deployment_id FROM deployments").deployment_id.tolist() == ["tag:lib:2.0.1"]


def test_cli_git_tags_summary_skips_and_warning(store, git_repo, capsys):
    from releaserisk.cli import main

    git_repo.write("a.txt", "1\n")
    sha = git_repo.commit("one")
    for name in ("1.0.0", "1.1.0rc1", "1.x"):
        tag(git_repo, name, sha)
    db = str(store.path)
    store.close()
    args = ["--db", db, "ingest", "git-tags", str(git_repo.path), "--service", "lib", "--name", "lib"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("recorded 1 tag as production deployments of lib")
    assert "skipped 1 tag: a pre-release" in captured.out and "skipped 1 tag: names a line" in captured.out
    assert captured.err.startswith("warning: no history of 'lib' is ingested")  # stderr, one line
    assert len(captured.err.strip().splitlines()) == 1
    assert (
        main(["--db", db, "ingest", "git", str(git_repo.path), "--name", "lib", "--rev", "main", "--rev", "1.x"]) == 0
    )
    capsys.readouterr()
    assert main([*args, "--include-prereleases", "--format", "json"]) == 0
    captured = capsys.readouterr()
    import json

    payload = json.loads(captured.out)
    assert payload["recorded"] == ["1.0.0", "1.1.0rc1"] and payload["unreachable"] == [] and captured.err == ""


def test_a_rerun_keeps_a_release_a_file_declared_a_hotfix(store, git_repo, tmp_path):
    """Explicit rows win: the nightly git-tags run reset a hand-declared hotfix to regular, and CFR halved."""
    import pandas as pd

    from releaserisk.ingest.tabular import ingest_file

    shas = []
    for i in range(2):
        git_repo.write("a.txt", f"{i}\n")
        shas.append(git_repo.commit(f"c{i}"))
        tag(git_repo, f"1.0.{i}", shas[-1])
    ingest_git(store, git_repo.path, name="lib")
    first = ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    assert first.kept == {} and "kept" not in first.summary()
    hotfix = tmp_path / "hotfix2.csv"
    pd.DataFrame([{"deployment_id": "tag:lib:1.0.1", "service": "lib", "repo": "lib", "environment": "production",
                   "sha": shas[1], "status": "success", "kind": "hotfix",
                   "finished_at": "2024-01-02T00:00:00Z"}]).to_csv(hotfix, index=False)  # fmt: skip
    ingest_file(store, "deployments", hotfix)
    again = ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    rows = store.query("SELECT deployment_id, kind, source FROM deployments ORDER BY deployment_id")
    assert rows.values.tolist() == [["tag:lib:1.0.0", "regular", "git-tag"], ["tag:lib:1.0.1", "hotfix", "hotfix2.csv"]]
    assert again.kept == {"hotfix2.csv": ["tag:lib:1.0.1"]} and again.deployments == 2
    assert "kept 1 deployment loaded from hotfix2.csv as it was (explicit rows win over derived ones): " \
           "tag:lib:1.0.1" in again.summary()  # fmt: skip
    assert again.to_dict()["kept"] == {"hotfix2.csv": ["tag:lib:1.0.1"]}
    # a tag no longer taken removes only what git-tags recorded, never the file's row
    git_repo.git("tag", "-d", "1.0.1")
    ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    assert "tag:lib:1.0.1" in store.query("SELECT deployment_id FROM deployments")["deployment_id"].tolist()


def test_the_summary_counts_lightweight_tags_dated_by_their_commit(store, git_repo):
    git_repo.write("a.txt", "1\n")
    one = git_repo.commit("one")
    git_repo.write("a.txt", "2\n")
    two = git_repo.commit("two")
    tag(git_repo, "1.0.0", one)
    tag(git_repo, "1.1.0", two, annotated=True)
    ingest_git(store, git_repo.path, name="lib")
    result = ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    assert result.lightweight == 1 and result.to_dict()["lightweight"] == 1
    assert result.frame.set_index("tag")["lightweight"].to_dict() == {"1.0.0": True, "1.1.0": False}
    assert "1 of them is a lightweight tag: dated by the tagged commit (no tagger date), so each release " \
           "commit's lead time is 0" in result.summary()  # fmt: skip
    committed = store.query("SELECT committed_at FROM commits WHERE sha = ?", [one])["committed_at"][0]
    at = store.query("SELECT finished_at FROM deployments WHERE deployment_id = 'tag:lib:1.0.0'")["finished_at"][0]
    assert at == committed  # what the line says
    tag(git_repo, "1.2.0", two, annotated=True)
    git_repo.git("tag", "-d", "1.0.0")
    assert "lightweight" not in ingest_git_tags(store, git_repo.path, service="lib", name="lib").summary()


def test_cli_git_tags_says_what_it_kept(tmp_path, git_repo, capsys):
    import pandas as pd

    from releaserisk.cli import main

    git_repo.write("a.txt", "1\n")
    sha = git_repo.commit("one")
    tag(git_repo, "1.0.0", sha)
    db = str(tmp_path / "rr.duckdb")
    hotfix = tmp_path / "hf.csv"
    pd.DataFrame([{"deployment_id": "tag:lib:1.0.0", "service": "lib", "environment": "production", "sha": sha,
                   "status": "success", "kind": "hotfix", "finished_at": "2024-01-02T00:00:00Z"}]).to_csv(
        hotfix, index=False)  # fmt: skip
    assert main(["--db", db, "ingest", "deployments", str(hotfix)]) == 0
    assert main(["--db", db, "ingest", "git-tags", str(git_repo.path), "--service", "lib", "--name", "lib"]) == 0
    out = capsys.readouterr().out
    assert "kept 1 deployment loaded from hf.csv" in out and "1 of them is a lightweight tag" in out


def test_a_narrower_pattern_or_a_deleted_tag_removes_what_an_earlier_run_recorded(store, git_repo):
    """git's ref filter applied the pattern before the tags were read: a tag it left out was neither counted as
    skipped nor removed, so narrowing '--pattern' (or deleting a withdrawn release's tag) left its deployment in
    every DORA number; and its '*' did not cross a '/'."""
    shas = []
    for i in range(4):
        git_repo.write("a.txt", f"{i}\n")
        shas.append(git_repo.commit(f"c{i}"))
    tag(git_repo, "v1.0.0", shas[0])
    tag(git_repo, "plugin-2.0.0", shas[1])
    tag(git_repo, "v1.1.0", shas[2])
    tag(git_repo, "pkg/1.2.0", shas[3])
    ingest_git(store, git_repo.path, name="lib")

    def ids():
        return store.query("SELECT deployment_id FROM deployments ORDER BY finished_at")["deployment_id"].tolist()

    assert ingest_git_tags(store, git_repo.path, service="lib", name="lib").deployments == 4
    narrowed = ingest_git_tags(store, git_repo.path, service="lib", name="lib", pattern="v*")
    assert ids() == ["tag:lib:v1.0.0", "tag:lib:v1.1.0"]
    assert sorted(narrowed.removed) == ["pkg/1.2.0", "plugin-2.0.0"]
    assert narrowed.skipped == {"does not match the pattern v*": 2}
    assert "skipped 2 tags: does not match the pattern v*" in narrowed.summary()
    git_repo.git("tag", "-d", "v1.1.0")  # a withdrawn release
    again = ingest_git_tags(store, git_repo.path, service="lib", name="lib", pattern="v*")
    assert ids() == ["tag:lib:v1.0.0"] and again.removed == ["v1.1.0"]
    # '*' crosses '/', and a leading path component takes the tags under it, as git's filter did
    assert ingest_git_tags(store, git_repo.path, service="lib", name="lib", pattern="*").deployments == 3
    assert ingest_git_tags(store, git_repo.path, service="lib", name="lib", pattern="pkg").deployments == 1
    assert ids() == ["tag:lib:pkg/1.2.0"]


def test_a_tag_dated_in_the_future_is_no_deployment(store, git_repo):
    """git takes any commit date: a lightweight tag on a commit of 2030 was a deployment in 2030, which stretched
    the default DORA window to it and made 'report weekly' without --week fail ('week 2030-W01 has not started
    yet'); and the quiet-tail note told the user to give --until 2030-01-02."""
    from datetime import datetime

    from releaserisk.dora import dora_metrics

    git_repo.write("a.txt", "1\n")
    tag(git_repo, "1.0.0", git_repo.commit("one"))
    git_repo.write("a.txt", "2\n")
    tag(git_repo, "1.1.0", git_repo.commit("a wrong clock", when=int(datetime(2030, 1, 1).timestamp())))
    ingest_git(store, git_repo.path, name="lib")
    result = ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    assert result.frame.loc[result.frame.recorded, "tag"].tolist() == ["1.0.0"]
    reason = "dated after this ingest's clock (a wrong clock in the tag or its commit)"
    assert result.skipped == {reason: 1} and f"skipped 1 tag: {reason}" in result.summary()
    dora = dora_metrics(store)
    assert dora.window[1].year < 2030
    assert not [n for n in dora.notes if "2030" in n]
