"""The simulator's organisations (``repos > 1``): layout, determinism, repository k
independent of the organisation's size, CSV files consistent with the git repositories."""

import hashlib
import subprocess
import tomllib

import pandas as pd
import pytest

from releaserisk.errors import InputError
from releaserisk.simulation import simulate

WEEKS = 3  # a few dozen commits per repository: the layout, not the statistics, is tested here


def digest(path):
    files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("org") / "org", seed=11, weeks=WEEKS, repos=3)


def test_one_repository_is_byte_identical_to_earlier_versions(tmp_path):
    # pinned: the demo, the README and the other tests depend on these bytes
    result = simulate(tmp_path / "a", seed=5, weeks=4, services=2)
    assert git(result.repo, "rev-parse", "HEAD").strip() == "15600ad963b95a8734edf9ff9677b55e699d8ae5"
    assert digest(tmp_path / "a") == "6dac668f4659f1aa8133abe966780faeb5454444dc0656816be1f886ee171be6"
    assert not (tmp_path / "a" / "repos").exists() and not (tmp_path / "a" / "org.toml").exists()
    assert result.repos == {"demo": tmp_path / "a" / "repo"} and result.manifest is None


def test_layout_manifest_and_services(org):
    names = ["repo-001", "repo-002", "repo-003"]
    assert list(org.repos) == names
    assert sorted(p.name for p in (org.out / "repos").iterdir()) == names
    manifest = tomllib.loads(org.manifest.read_text())
    assert manifest["defaults"] == {"rev": ["HEAD"], "labels": True}
    assert [r["name"] for r in manifest["repos"]] == names
    services = pd.read_csv(org.files["services"])
    for entry in manifest["repos"]:
        path = org.out / entry["path"]
        assert path == org.repos[entry["name"]] and git(path, "rev-parse", "--is-inside-work-tree").strip() == "true"
        listed = services[services["repo"] == entry["name"]]
        pairs = zip(listed["service"], listed["path_prefix"], strict=True)
        assert entry["services"] == [{"service": s, "path_prefix": p} for s, p in pairs]
        assert 1 <= len(listed) <= 3
        top = set(git(path, "ls-tree", "--name-only", "HEAD").split())
        assert {p.rstrip("/") for p in listed["path_prefix"]} <= top
    assert services["service"].is_unique


def test_csv_rows_name_their_repository_and_its_commits(org):
    services = pd.read_csv(org.files["services"]).set_index("service")["repo"]
    deployments = pd.read_csv(org.files["deployments"])
    incidents = pd.read_csv(org.files["incidents"])
    bugs = pd.read_csv(org.files["truth_bugs"])
    truth = pd.read_csv(org.files["truth_deployments"])
    assert deployments["deployment_id"].is_unique and incidents["incident_id"].is_unique
    assert (deployments["repo"] == deployments["service"].map(services)).all()
    assert set(deployments["repo"]) == set(org.repos)  # spread over every repository
    assert incidents["service"].isin(services.index).all()
    assert set(truth["deployment_id"]) <= set(deployments["deployment_id"])
    assert (bugs["repo"] == bugs["service"].map(services)).all()
    for name, path in org.repos.items():
        known = set(git(path, "rev-list", "--all").split())
        assert set(deployments.loc[deployments["repo"] == name, "sha"]) <= known
        assert set(bugs.loc[bugs["repo"] == name, "sha"]) <= known
    assert org.deployments == len(deployments) and org.incidents == len(incidents) and org.bugs == len(bugs)


def test_same_seed_same_bytes_and_repository_k_independent_of_their_number(tmp_path, org):
    again = simulate(tmp_path / "again", seed=11, weeks=WEEKS, repos=3)
    assert digest(again.out) == digest(org.out)
    fewer = simulate(tmp_path / "fewer", seed=11, weeks=WEEKS, repos=2)
    other_seed = simulate(tmp_path / "other", seed=12, weeks=WEEKS, repos=2)
    for name in fewer.repos:
        assert git(fewer.repos[name], "rev-parse", "HEAD") == git(org.repos[name], "rev-parse", "HEAD")
        assert git(other_seed.repos[name], "rev-parse", "HEAD") != git(org.repos[name], "rev-parse", "HEAD")
    repo_of = pd.read_csv(org.files["services"]).set_index("service")["repo"]
    for kind in ("deployments", "incidents", "services", "truth_bugs", "truth_deployments"):
        small, large = pd.read_csv(fewer.files[kind]), pd.read_csv(org.files[kind])
        in_repo = large["repo"] if "repo" in large else large["service"].map(repo_of)
        pd.testing.assert_frame_equal(small, large[in_repo.isin(list(fewer.repos))].reset_index(drop=True))


def test_rerun_with_fewer_repositories_leaves_none_stale(tmp_path):
    simulate(tmp_path / "o", weeks=2, repos=3)
    result = simulate(tmp_path / "o", weeks=2, repos=2)
    assert sorted(p.name for p in (tmp_path / "o" / "repos").iterdir()) == list(result.repos)


def test_bad_organisation_arguments(tmp_path):
    with pytest.raises(InputError, match="repos must be between 1 and 999"):
        simulate(tmp_path, repos=0)
    with pytest.raises(InputError, match="repos must be between 1 and 999"):
        simulate(tmp_path, repos=1000)
    with pytest.raises(InputError, match="one-repository simulation only"):
        simulate(tmp_path, repos=2, remedies=True)


def test_cli_repos(tmp_path, capsys):
    from releaserisk.cli import main

    out = tmp_path / "org"
    assert main(["simulate", "--out", str(out), "--weeks", "2", "--repos", "2"]) == 0
    assert f"2 repositories in {out}, manifest {out / 'org.toml'}" in capsys.readouterr().out
    assert (out / "repos" / "repo-002").is_dir()
    assert main(["simulate", "--out", str(out), "--repos", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: repos must be between 1 and 999")


def test_the_organisation_ingests_and_links_each_deployment_to_its_repository(tmp_path, org):
    from releaserisk.ingest.git import ingest_git
    from releaserisk.ingest.tabular import ingest_file
    from releaserisk.store import open_store

    with open_store(tmp_path / "s.duckdb") as store:
        for name, path in org.repos.items():
            ingest_git(store, path, name=name)
        for kind in ("services", "deployments", "incidents"):
            ingest_file(store, kind, org.files[kind])
        linked = store.query(
            "SELECT d.repo, count(*) AS n FROM deployment_changes dc JOIN deployments d USING (deployment_id) "
            "WHERE dc.repo = d.repo GROUP BY d.repo ORDER BY d.repo"
        )
        stray = store.execute(
            "SELECT count(*) FROM deployment_changes dc JOIN deployments d USING (deployment_id) "
            "WHERE dc.repo <> d.repo"
        ).fetchone()[0]
    assert linked["repo"].tolist() == list(org.repos) and (linked["n"] > 0).all() and stray == 0
