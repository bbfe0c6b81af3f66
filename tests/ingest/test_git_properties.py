"""Property test: metrics from the streaming pass equal an independent per-commit computation."""

import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releaserisk.ingest.git import ingest_git
from releaserisk.store import open_store
from tests.conftest import GitRepo

PATHS = ["a.txt", "src/b.txt", "src/deep/c.txt", "docs/d.md", "e f.txt"]
lines = st.lists(st.sampled_from(["x", "y", "z", "", "long line"]), min_size=0, max_size=6)
operation = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(PATHS), lines),
    st.tuples(st.just("delete"), st.sampled_from(PATHS), st.just(None)),
    st.tuples(st.just("rename"), st.sampled_from(PATHS), st.sampled_from(PATHS)),
)
history = st.lists(st.lists(operation, min_size=1, max_size=4), min_size=1, max_size=6)


def apply(repo: GitRepo, ops) -> None:
    for kind, path, arg in ops:
        target = repo.path / path
        if kind == "write":
            repo.write(path, "".join(f"{line}\n" for line in arg))
        elif kind == "delete" and target.exists():
            target.unlink()
        elif kind == "rename" and target.exists() and arg != path and not (repo.path / arg).exists():
            (repo.path / arg).parent.mkdir(parents=True, exist_ok=True)
            target.rename(repo.path / arg)


def expected_metrics(repo: GitRepo, sha: str) -> dict:
    """LA, LD, NF, ND, NS, LT computed from git show, one commit at a time."""
    out = repo.git("show", "--numstat", "-M", "--format=", sha)
    status = repo.git("show", "--name-status", "-M", "--format=", sha)
    la = ld = lt = 0
    paths = []
    parent = repo.git("rev-list", "--parents", "-n", "1", sha).split()[1:]
    for numstat_line, status_line in zip(out.splitlines(), status.splitlines(), strict=True):
        added, deleted, _ = numstat_line.split("\t", 2)
        fields = status_line.split("\t")
        kind, old, new = fields[0][0], fields[1], fields[-1]
        la += int(added)
        ld += int(deleted)
        paths.append(new)
        if kind != "A" and parent:
            content = repo.git("show", f"{parent[0]}:{old}")
            lt += content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    return {
        "la": la,
        "ld": ld,
        "nf": len(paths),
        "nd": len({p.rpartition("/")[0] for p in paths}),
        "ns": len({p.partition("/")[0] if "/" in p else "" for p in paths}),
        "lt": lt,
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history)
def test_streaming_metrics_match_git_show(commits):
    with tempfile.TemporaryDirectory() as tmp:
        repo = GitRepo(Path(tmp) / "repo")
        for ops in commits:
            apply(repo, ops)
            repo.commit("change")
        with open_store(Path(tmp) / "s.duckdb") as store:
            ingest_git(store, repo.path, name="r")
            got = store.query("SELECT sha, la, ld, nf, nd, ns, lt FROM change_features").set_index("sha")
        for sha, row in got.iterrows():
            assert row.to_dict() == expected_metrics(repo, sha), sha


def test_expected_metrics_helper_is_sane(git_repo):
    git_repo.write("a.txt", "1\n2\n")
    git_repo.commit("one")
    git_repo.write("a.txt", "1\n")
    sha = git_repo.commit("two")
    assert expected_metrics(git_repo, sha) == {"la": 0, "ld": 1, "nf": 1, "nd": 1, "ns": 1, "lt": 2}
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0
