"""Git ingestion against real repositories built with git in temp dirs."""

import math
import os
import subprocess

import pytest

from releaserisk.cli import main
from releaserisk.errors import GitError, ShallowCloneError
from releaserisk.ingest import git as git_ingest
from releaserisk.ingest.git import _segments, ingest_git
from releaserisk.store import open_store
from tests.conftest import GitRepo


def features(store, repo):
    return store.query(
        "SELECT c.sha, c.message, f.* EXCLUDE (repo, sha) FROM change_features f "
        "JOIN commits c USING (repo, sha) WHERE repo = ? ORDER BY c.seq",
        [repo],
    ).set_index("message")


class Row(dict):
    __getattr__ = dict.__getitem__


def by_message(store, repo):
    return {m: Row(r) for m, r in features(store, repo).to_dict("index").items()}


def test_hand_computed_metrics_for_a_fixed_history(store, git_repo):
    g = git_repo
    g.write("core/a.py", "1\n2\n3\n4\n")
    g.write("core/b.py", "x\n")
    g.commit("initial", author="Alice", email="alice@example.com")  # day 1
    g.write("core/a.py", "1\n2\nthree\n4\n5\n")  # +2 -1, LT 4
    g.write("docs/readme.md", "hello\n")  # +1, new
    g.commit("fix crash in a", author="Bob", email="bob@example.com")  # day 2
    g.write("core/a.py", "1\n")  # -4 +0 from 5 lines
    g.write("core/b.py", "x\ny\n")  # +1, LT 1
    g.commit("refactor", author="Alice", email="alice@example.com")  # day 3
    ingest_git(store, g.path, name="r")
    f = by_message(store, "r")

    first = f["initial"]
    assert (first.ns, first.nd, first.nf, first.la, first.ld, first.lt) == (1, 1, 2, 5, 0, 0)
    assert first.entropy == pytest.approx(-(0.8 * math.log2(0.8) + 0.2 * math.log2(0.2)))
    assert (first.ndev, first.nuc, first.exp, first.sexp, first.age, bool(first.fix)) == (
        0,
        0,
        0,
        0,
        0.0,
        False,
    )

    second = f["fix crash in a"]
    assert (second.ns, second.nd, second.nf, second.la, second.ld, second.lt) == (2, 2, 2, 3, 1, 4)
    assert bool(second.fix) is True
    # history only for core/a.py: one author, one commit, one day old
    assert (second.ndev, second.nuc, second.age, second.exp, second.sexp) == (1, 1, 1.0, 0, 0)
    assert second.entropy == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert second.entropy_norm == pytest.approx(second.entropy / 1.0)

    third = f["refactor"]
    assert (third.nf, third.la, third.ld, third.lt) == (2, 1, 4, 6)
    # a.py touched by Alice (day1) and Bob (day2); b.py by Alice (day1)
    assert (third.ndev, third.nuc) == (2, 2)
    assert third.age == pytest.approx((1.0 + 2.0) / 2)
    assert third.exp == 1
    assert third.rexp == pytest.approx(1 / (1 + 2 / 365.25))
    assert third.sexp == 1  # Alice's one earlier commit in subsystem "core"


def test_renames_binary_merges_delete_readd_and_mailmap(store, git_repo):
    g = git_repo
    g.write("src/old/name.txt", "a\nb\nc\n")
    g.write(".mailmap", "Alice <alice@example.com> <alice@old.example.com>\n")
    g.commit("add", email="alice@old.example.com")
    g.mv("src/old/name.txt", "lib/new name.txt")
    g.write("img.bin", bytes(range(256)) * 4)
    g.commit("move and add binary")
    g.write("lib/new name.txt", "a\nb\nc\nd\n")
    g.commit("edit renamed", author="Bob", email="bob@example.com")
    g.git("rm", "-q", "img.bin")
    g.commit("delete binary")
    g.write("img.bin", "now text\n")
    g.commit("re-add as text")
    g.git("checkout", "-q", "-b", "side", "HEAD~1")
    g.write("side.txt", "s\n")
    g.commit("side work")
    g.git("checkout", "-q", "main")
    merge = g.merge("side", "merge side")
    ingest_git(store, g.path, name="r")

    changes = store.query(
        "SELECT c.message, f.* FROM file_changes f JOIN commits c USING (repo, sha) ORDER BY seq, path"
    )
    moved = changes[changes.message == "move and add binary"].set_index("path")
    assert moved.loc["lib/new name.txt", "status"] == "R"
    assert moved.loc["lib/new name.txt", "old_path"] == "src/old/name.txt"
    assert moved.loc["img.bin", "added"] is None or str(moved.loc["img.bin", "added"]) in (
        "<NA>",
        "nan",
        "None",
    )

    f = by_message(store, "r")
    # history followed the rename: the edit sees 2 earlier commits and one author (mailmap)
    edit = f["edit renamed"]
    assert (edit.nuc, edit.ndev, edit.lt) == (2, 1, 3)
    readd = f["re-add as text"]
    assert (readd.nuc, readd.lt, readd.la) == (0, 0, 1)  # history ended with the deletion

    commits = store.query("SELECT sha, author, author_email, is_merge FROM commits ORDER BY seq")
    assert set(commits.author_email) == {"alice@example.com", "bob@example.com"}  # mailmap applied
    assert commits.set_index("sha").loc[merge, "is_merge"]
    assert merge not in {r["sha"] for r in f.values()}  # merges are not measured
    assert store.query("SELECT count(*) AS n FROM file_changes WHERE sha = ?", [merge]).n[0] == 0


def test_merge_created_blob_gives_exact_lt(store, git_repo):
    g = git_repo
    g.write("f.txt", "base\n")
    g.commit("base")
    g.git("checkout", "-q", "-b", "other")
    g.write("f.txt", "other\n")
    g.commit("other change")
    g.git("checkout", "-q", "main")
    g.write("f.txt", "main\n")
    g.commit("main change")
    with pytest.raises(subprocess.CalledProcessError):
        g.merge("other", "merge")
    g.write("f.txt", "resolved\nwith\nfour\nlines\n")  # content no parent has
    g.commit("merge other")
    g.write("f.txt", "resolved\nwith\nfour\nlines\nplus one\n")
    g.commit("after merge")
    ingest_git(store, g.path, name="r")
    assert by_message(store, "r")["after merge"].lt == 4


def test_awkward_paths_are_stored_exactly(store, git_repo):
    names = [
        "with space.txt",
        "tab\there.txt",
        "new\nline.txt",
        'quote"s.txt',
        "ünïcødé/файл.txt",
        "back\\slash",
    ]
    for i, name in enumerate(names):
        git_repo.write(name, f"{i}\n")
    git_repo.commit("awkward")
    git_repo.mv("ünïcødé/файл.txt", "dir with space/ファイル.txt")
    git_repo.commit("rename unicode")
    ingest_git(store, git_repo.path, name="r")
    paths = set(store.query("SELECT path FROM file_changes").path)
    assert set(names) <= paths and "dir with space/ファイル.txt" in paths
    old = store.query("SELECT old_path FROM file_changes WHERE status = 'R'").old_path.tolist()
    assert old == ["ünïcødé/файл.txt"]


def test_non_utf8_names_are_stored_distinctly(store, git_repo):
    # two Latin-1 names that errors="replace" decoding would both store as "caf\ufffd.py"
    for raw in (b"caf\xe9.py", b"caf\xe8.py"):
        git_repo.write(os.fsdecode(raw), "x = 1\n")
    git_repo.commit("latin-1 names")
    ingest_git(store, git_repo.path, name="r")
    assert sorted(store.query("SELECT path FROM file_changes").path) == ["caf\\xe8.py", "caf\\xe9.py"]


def test_identical_timestamps_and_submodule_entries(store, git_repo):
    g = git_repo
    g.write("a.txt", "1\n")
    g.commit("one", when=1_700_000_000)
    g.write("a.txt", "1\n2\n")
    g.commit("two", when=1_700_000_000)
    # a gitlink (submodule) entry must not be counted as a file
    sha = g.git("rev-parse", "HEAD").strip()
    g.git("update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/sub")
    g.commit("add submodule", when=1_700_000_000)
    ingest_git(store, g.path, name="r")
    f = by_message(store, "r")
    assert f["two"].age == 0.0 and f["two"].lt == 1
    assert f["add submodule"].nf == 0
    assert store.query("SELECT count(*) AS n FROM file_changes WHERE path = 'vendor/sub'").n[0] == 0


ORDER = {"commits": "sha", "file_changes": "sha, path", "change_features": "sha"}


#: The saved metric state an incremental run resumes from.
STATE_ORDER = {"git_file_state": "path", "git_author_state": "author", "git_author_subsystem": "author, subsystem",
               "git_blob_lines": "blob"}  # fmt: skip


def _table_rows(store, table):
    """Rows of a table as comparable tuples (list columns become tuples), in key order."""
    frame = store.query(f"SELECT * EXCLUDE (repo) FROM {table} ORDER BY {(ORDER | STATE_ORDER)[table]}")
    return [tuple(tuple(v) if hasattr(v, "tolist") else v for v in row) for row in frame.itertuples(index=False)]


def test_batches_of_any_size_give_the_same_rows_and_state(tmp_path, git_repo, monkeypatch):
    """The history goes to DuckDB in batches (a few commits each here): rows and state as in one batch."""
    g = git_repo
    for i in range(9):
        g.write(f"s{i % 3}/f{i % 4}.txt", "".join(f"{j}\n" for j in range(i + 2)))
        if i == 5:
            g.mv("s1/f1.txt", "s2/moved.txt")
        g.commit(f"c{i}", author=f"A{i % 2}", email=f"a{i % 2}@x")
    rows = {}
    for flush_every in (1_000_000, 2):
        monkeypatch.setattr("releaserisk.ingest.git._FLUSH_EVERY", flush_every)
        with open_store(tmp_path / f"batches-{flush_every}.duckdb") as store:
            ingest_git(store, g.path, name="r")
            rows[flush_every] = {t: _table_rows(store, t) for t in ORDER | STATE_ORDER}
    assert rows[2] == rows[1_000_000]
    assert all(rows[2][table] for table in ORDER | STATE_ORDER)


def test_two_git_processes_give_the_rows_of_a_run_to_the_split_and_an_increment(tmp_path, git_repo, monkeypatch):
    """``workers=2`` (the CLI's default on 3+ cores) splits git's work: rows as up to the split, then the rest."""
    g = git_repo
    for i in range(11):
        if i == 3:
            g.git("checkout", "-q", "-b", "side")  # a side branch across the split point, merged after it
            for j in range(2):
                g.write(f"s{j}/f{j}.txt", f"side {j}\n")
                g.commit(f"side{j}", author="B", email="b@x")
            g.git("checkout", "-q", "main")
        if i == 9:
            g.merge("side", "merge side")
        g.write(f"s{i % 3}/f{i % 4}.txt", "".join(f"{j}\n" for j in range(i + 2)))
        if i == 5:
            g.mv("s1/f1.txt", "s2/moved.txt")
        g.commit(f"c{i}", author=f"A{i % 2}", email=f"a{i % 2}@x")
    monkeypatch.setattr(git_ingest, "PARALLEL_MIN_COMMITS", 2)
    segments = []
    monkeypatch.setattr(git_ingest, "_segments", lambda *a: segments.append(_segments(*a)) or segments[-1])
    with open_store(tmp_path / "two.duckdb") as two:
        ingest_git(two, g.path, name="r", workers=2)
        ((first, second),) = segments
        split = first[0]
        assert second[-2:] == ["--not", split] and g.git("rev-list", "--count", f"{split}..side").strip() == "2"
        rows = {t: _table_rows(two, t) for t in ORDER | STATE_ORDER}
    with open_store(tmp_path / "steps.duckdb") as steps:
        ingest_git(steps, g.path, name="r", rev=split)
        ingest_git(steps, g.path, name="r")
        assert {t: _table_rows(steps, t) for t in ORDER | STATE_ORDER} == rows
    assert len(rows["commits"]) == 14 and all(rows.values())


def test_incremental_equals_full_and_rerun_changes_nothing(tmp_path, git_repo):
    g = git_repo
    for i in range(6):
        g.write(f"s{i % 3}/f{i % 4}.txt", "".join(f"{j}\n" for j in range(i + 2)))
        g.commit(f"c{i}", author=f"A{i % 2}", email=f"a{i % 2}@x")
    with open_store(tmp_path / "inc.duckdb") as inc:
        ingest_git(inc, g.path, name="r")
        g.git("checkout", "-q", "-b", "feature")
        g.write("s0/f0.txt", "feature\n")
        g.commit("feature work")
        g.git("checkout", "-q", "main")
        g.write("s1/new.txt", "n\n")
        g.mv("s2/f2.txt", "s1/moved.txt")
        g.commit("more")
        g.merge("feature", "merge feature")
        g.write("s1/moved.txt", "changed\n")
        g.commit("after")
        second = ingest_git(inc, g.path, name="r")
        assert second.new_commits == 4
        before = {t: _table_rows(inc, t) for t in ORDER}
        assert ingest_git(inc, g.path, name="r").new_commits == 0
        assert {t: _table_rows(inc, t) for t in ORDER} == before
    with open_store(tmp_path / "full.duckdb") as full:
        ingest_git(full, g.path, name="r")
        for table in ORDER:
            assert _table_rows(full, table) == before[table], table


def test_an_increment_that_brings_back_stored_content_stores_its_blob_once(store, git_repo):
    g = git_repo
    for text in ("a\n", "b\n"):
        g.write("f.txt", text)
        g.commit(text.strip())
    ingest_git(store, g.path, name="r")
    g.write("f.txt", "a\n")  # a revert: the blob of the first commit again
    g.commit("back to a")
    assert ingest_git(store, g.path, name="r").new_commits == 1
    rows = store.query("SELECT count(*) AS n, count(DISTINCT blob) AS blobs FROM git_blob_lines WHERE repo = 'r'")
    assert (rows.n[0], rows.blobs[0]) == (2, 2)
    assert by_message(store, "r")["back to a"].lt == 1


def test_failed_ingest_leaves_store_unchanged(store, git_repo, monkeypatch):
    g = git_repo
    for i in range(3):
        g.write("a.txt", f"{i}\n")
        g.commit(f"c{i}")
    ingest_git(store, g.path, name="r")
    before = store.counts()
    g.write("b.txt", "x\n")
    g.commit("new")

    from releaserisk import features as feats

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(feats.ChangeMetricState, "observe", explode)
    with pytest.raises(RuntimeError):
        ingest_git(store, g.path, name="r")
    assert store.counts() == before


def test_empty_repository_ingests_zero_commits(store, git_repo):
    result = ingest_git(store, git_repo.path, name="empty")
    assert (result.new_commits, result.total_commits, result.head_sha) == (0, 0, None)


def test_bare_repository(store, git_repo, tmp_path):
    git_repo.write("a.txt", "a\n")
    git_repo.commit("a")
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(git_repo.path), str(bare)], check=True)
    result = ingest_git(store, bare)
    assert (result.repo, result.new_commits) == ("bare", 1)


def test_shallow_clone_is_refused_with_the_fix(store, git_repo, tmp_path):
    for i in range(3):
        git_repo.write("a.txt", f"{i}\n")
        git_repo.commit(f"c{i}")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{git_repo.path}", str(shallow)], check=True)
    with pytest.raises(ShallowCloneError, match="git fetch --unshallow"):
        ingest_git(store, shallow)


def test_not_a_repository_unknown_rev_and_missing_git(store, git_repo, tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        ingest_git(store, plain)
    git_repo.write("a.txt", "a\n")
    git_repo.commit("a")
    with pytest.raises(GitError, match="unknown revision 'nope'"):
        ingest_git(store, git_repo.path, rev="nope")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(GitError, match="git executable not found"):
        ingest_git(store, git_repo.path)


def test_cli_ingest_errors_are_one_line_exit_2(tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.mkdir()
    code = main(["--db", str(tmp_path / "s.duckdb"), "ingest", "git", str(plain)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "not a git repository" in err and err.count("\n") == 1


def test_cli_ingest_json_summary(tmp_path, capsys):
    g = GitRepo(tmp_path / "proj")
    g.write("a.txt", "a\n")
    g.commit("a")
    assert main(["--db", str(tmp_path / "s.duckdb"), "ingest", "git", str(g.path), "--format", "json"]) == 0
    import json

    payload = json.loads(capsys.readouterr().out)
    assert payload["repo"] == "proj" and payload["new_commits"] == 1 and payload["file_changes"] == 1
    assert payload["seconds"] >= 0


def test_remote_credentials_are_not_stored(store, git_repo):
    git_repo.write("a.txt", "a\n")
    git_repo.commit("a")
    git_repo.git("remote", "add", "origin", "https://user:ghp_secret123@github.com/o/r.git")
    ingest_git(store, git_repo.path, name="r")
    url = store.query("SELECT remote_url FROM repos").remote_url[0]
    assert url == "https://github.com/o/r.git"
    assert "ghp_secret123" not in str(store.query("SELECT * FROM repos").to_dict())


def test_git_env_never_prompts_and_is_locale_independent():
    from releaserisk.gitcmd import git_env

    env = git_env()
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["LC_ALL"] == "C"


HOSTILE_GITCONFIG = """\
[color]
    ui = always
    diff = always
[log]
    showRoot = false
    showSignature = true
[i18n]
    logOutputEncoding = ISO-8859-1
[diff]
    algorithm = patience
    renameLimit = 1
    renames = copies
"""


def test_a_users_git_config_changes_no_stored_row(tmp_path, monkeypatch):
    """Colour, signature, encoding, root-commit, diff and rename settings of the user's config are pinned."""
    from releaserisk.labels import label_changes

    repo = GitRepo(tmp_path / "repo")
    repo.write("src/app.py", "".join(f"value_{k} = {k}\n" for k in range(12)))
    repo.write("src/util.py", "def helper():\n    return 1\n")
    repo.commit("initial import")
    repo.mv("src/util.py", "src/helpers.py")
    repo.write("src/app.py", "value_0 = 1 / 0\n" + "".join(f"value_{k} = {k}\n" for k in range(1, 12)))
    repo.commit("rework: déplacer helpers", author="Zoë", email="zoe@example.com")
    repo.write("src/app.py", "value_0 = 1\n" + "".join(f"value_{k} = {k}\n" for k in range(1, 12)))
    repo.commit("fix: division by zero in app")

    def rows(name: str) -> dict:
        with open_store(tmp_path / f"{name}.duckdb") as store:
            ingest_git(store, repo.path, name="repo")
            label_changes(store, "repo", workers=1)
            return {
                table: store.query(f"SELECT * FROM {table} ORDER BY ALL")
                for table in ("commits", "file_changes", "change_features")
            } | {"labels": store.query("SELECT sha, buggy FROM labels ORDER BY ALL")}

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    clean = rows("clean")
    hostile = tmp_path / "gitconfig"
    hostile.write_text(HOSTILE_GITCONFIG, encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(hostile))
    configured = rows("configured")
    assert int(clean["labels"]["buggy"].sum()) == 1  # SZZ found the bug-introducing change
    for table, frame in clean.items():
        assert configured[table].equals(frame), table


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (3, 2), (64, 2)])
def test_the_cli_runs_a_second_git_process_only_where_a_core_is_free_for_it(
    tmp_path, git_repo, monkeypatch, cores, expected
):
    """Two git logs and the metrics' thread are three busy processes: on 2 cores, one git log."""
    from releaserisk.cli import main

    git_repo.write("a.txt", "a\n")
    git_repo.commit("one")
    monkeypatch.setattr(git_ingest, "usable_cores", lambda: cores)
    passed = []
    real = git_ingest.ingest_git
    monkeypatch.setattr(git_ingest, "ingest_git", lambda *a, **k: passed.append(k["workers"]) or real(*a, **k))
    assert main(["--db", str(tmp_path / "s.duckdb"), "ingest", "git", str(git_repo.path)]) == 0
    assert main(["--db", str(tmp_path / "s.duckdb"), "ingest", "git", "--workers", "2", str(git_repo.path)]) == 0
    assert passed == [expected, 2]
