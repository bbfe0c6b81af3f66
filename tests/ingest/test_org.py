"""An organisation's repositories ingested into a lake (serial and on a 2-worker LocalCluster)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pandas as pd
import pytest

from releaserisk.cli import main
from releaserisk.config import Settings
from releaserisk.errors import InputError, LakeError, StoreError
from releaserisk.ingest.git import ingest_git, ingest_git_tags
from releaserisk.ingest.org import ingest_org, read_org_manifest
from releaserisk.labels import label_changes
from releaserisk.lake import Lake, compact_lake, load_lake, open_lake
from releaserisk.store import open_store
from tests.conftest import GitRepo

NAMES = ["alpha", "beta", "gamma", "delta", "epsilon"]
#: Columns that record when a row was written, not what was ingested.
VOLATILE = {"ingested_at", "labelled_at", "run_id", "started_at", "finished_at", "summary", "counts"}
COMPARED = [
    "repos", "commits", "file_changes", "change_features", "services", "deployments", "deployment_changes",
    "labels", "git_file_state", "git_author_state", "git_author_subsystem", "git_blob_lines", "label_fixes",
]  # fmt: skip


def _build_repo(path: Path, seed: int) -> GitRepo:
    """A tiny history: features, a bug, its fix (SZZ finds the bug), two release tags."""
    repo = GitRepo(path)
    for i in range(3 + seed % 3):
        repo.write(f"src/mod{i}.py", "".join(f"value_{i}_{k} = {k}\n" for k in range(5 + seed)))
        repo.commit(f"add module {i}", author=["Ann", "Bob"][i % 2], email=f"{['ann', 'bob'][i % 2]}@example.com")
    repo.git("tag", "v1.0.0")
    repo.write("src/mod0.py", "value = 1 / 0\n" + "".join(f"extra_{k} = {k}\n" for k in range(seed + 2)))
    repo.commit("rework module 0", author="Cid", email="cid@example.com")
    repo.write("src/mod0.py", "value = 1\n" + "".join(f"extra_{k} = {k}\n" for k in range(seed + 2)))
    repo.commit("fix: division by zero in module 0", author="Ann", email="ann@example.com")
    repo.git("tag", "v1.1.0")
    return repo


def _manifest(base: Path, names=NAMES, extra: str = "") -> Path:
    entries = "".join(
        f'[[repos]]\nname = "{n}"\npath = "repos/{n}"\ntags = true\n'
        f'services = [{{ service = "{n}-svc", path_prefix = "" }}]\n\n'
        for n in names
    )
    path = base / "org.toml"
    path.write_text(f'lake = "lake"\n\n{extra}{entries}', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("org-template")
    for seed, name in enumerate(NAMES):
        _build_repo(base / "repos" / name, seed)
    return base


@pytest.fixture
def org(built, tmp_path):
    """Five tiny repositories, a fresh copy per test (tests add commits)."""
    shutil.copytree(built / "repos", tmp_path / "repos", symlinks=True)
    return tmp_path


def _add_commit(path: Path) -> None:
    """One new commit on an existing repository."""
    repo = GitRepo.__new__(GitRepo)
    repo.path, repo.clock = path, 1_700_000_000
    repo.write("src/new.py", "x = 1\n")
    repo.commit("add new module", author="Dee", email="dee@example.com")


def _rows(store, table: str) -> pd.DataFrame:
    frame = store.query(f'SELECT * FROM "{table}"')
    frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE])
    frame = frame.map(lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
    return frame.sort_values(list(frame.columns), ignore_index=True)


def _serial_file(org: Path, settings: Settings) -> Path:
    """The same repositories ingested one by one into one store file, the single-repository way."""
    db = org / "serial.duckdb"
    with open_store(db) as store:
        for name in NAMES:
            path = org / "repos" / name
            ingest_git(store, path, name=name, settings=settings)
            with store.transaction():
                store.upsert("services", pd.DataFrame([{"service": f"{name}-svc", "repo": name, "path_prefix": ""}]))
            ingest_git_tags(store, path, service=f"{name}-svc", name=name)
            label_changes(store, name, settings=settings, workers=1)
    return db


@pytest.mark.parametrize("head_start_after", [2, 0], ids=["all-on-workers", "coordinator-starts-some"])
def test_two_workers_equal_serial_ingestion_row_for_row(org, monkeypatch, head_start_after):
    import releaserisk.ingest.org as org_module

    monkeypatch.setattr(org_module, "HEAD_START_AFTER", head_start_after)
    settings = Settings()
    result = ingest_org(_manifest(org), workers=2, settings=settings)
    assert list(result.frame["status"]) == ["ingested"] * 5
    assert result.workers == 2
    serial = _serial_file(org, settings)
    with open_lake(org / "lake") as lake, open_store(serial, read_only=True) as file:
        for table in COMPARED:
            assert len(_rows(file, table)), table
            pd.testing.assert_frame_equal(_rows(lake, table), _rows(file, table), check_dtype=False, obj=table)
    assert result.frame["buggy"].sum() > 0


def test_the_cluster_shuts_down_while_the_lake_is_compacted_and_before_ingest_org_returns(org, monkeypatch):
    import releaserisk.ingest.org as org_module

    compacting, seen = threading.Event(), {}
    close, compact = org_module._close, org_module.compact_lake

    def overlapped_close(client, cluster):
        seen["while compacting"] = compacting.wait(timeout=120)  # never set when close came first
        close(client, cluster)
        seen["closed"] = True

    def compact_and_say_so(location):
        compacting.set()
        return compact(location)

    monkeypatch.setattr(org_module, "_close", overlapped_close)
    monkeypatch.setattr(org_module, "compact_lake", compact_and_say_so)
    result = ingest_org(_manifest(org), workers=2, compact=True)
    assert result.compaction is not None and seen == {"while compacting": True, "closed": True}


def test_local_cluster_workers_import_the_task_module_as_they_start_and_two_runs_share_no_port():
    from distributed import Client

    from releaserisk.ingest.org import _local_cluster

    cluster = _local_cluster(1)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _local_cluster(1).close()  # another run on the machine meanwhile
        assert not [w for w in caught if "already in use" in str(w.message)]
        with Client(cluster) as client:
            loaded = client.run(lambda: "releaserisk.ingest.org" in sys.modules)
        assert list(loaded.values()) == [True]  # before any task: preloaded, not imported by the first task
    finally:
        cluster.close()


def test_a_failing_repository_is_reported_while_the_others_land_and_only_it_is_retried(org, capsys):
    corrupt = org / "repos" / "corrupt"
    GitRepo(corrupt)
    (corrupt / ".git" / "HEAD").write_text("garbage\n")
    origin, shallow = f"file://{org / 'repos' / 'alpha'}", str(org / "repos" / "shallow")
    subprocess.run(["git", "clone", "-q", "--depth", "1", origin, shallow], check=True, capture_output=True)
    manifest = _manifest(org, [*NAMES[:2], "corrupt", "shallow"])
    code = main(["ingest", "org", str(manifest), "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 2
    assert "2 ingested, 2 failed" in out
    assert "corrupt: " in out and "shallow clone" in out
    with open_lake(org / "lake") as lake:
        assert sorted(lake.query("SELECT repo FROM repos")["repo"]) == ["alpha", "beta"]
    state = Lake(org / "lake").read_manifest()
    assert set(state.failed) == {"corrupt", "shallow"}

    subprocess.run(["git", "-C", str(org / "repos" / "shallow"), "fetch", "-q", "--unshallow"], check=True)
    again = ingest_org(manifest, workers=1)
    status = dict(zip(again.frame["repo"], again.frame["status"], strict=True))
    assert status == {"alpha": "unchanged", "beta": "unchanged", "corrupt": "failed", "shallow": "ingested"}


def test_incremental_rerun_after_one_new_commit_touches_only_that_repository(org):
    manifest = _manifest(org)
    ingest_org(manifest, workers=1)
    before = Lake(org / "lake").read_manifest()
    _add_commit(org / "repos" / "gamma")

    again = ingest_org(manifest, workers=1)
    status = dict(zip(again.frame["repo"], again.frame["status"], strict=True))
    assert status == {**{n: "unchanged" for n in NAMES}, "gamma": "ingested"}
    assert int(again.frame.set_index("repo").loc["gamma", "new_commits"]) == 1
    after = Lake(org / "lake").read_manifest()
    for name in NAMES:
        same = before.repos[name]["generation"] == after.repos[name]["generation"]
        assert same == (name != "gamma"), name
    # the incremental result equals a fresh full ingest of the same history
    fresh = org / "fresh"
    fresh.mkdir()
    ingest_org(read_org_manifest(manifest), fresh / "lake", workers=1)
    with open_lake(org / "lake") as lake, open_lake(fresh / "lake") as full:
        for table in ("commits", "change_features", "labels", "git_file_state"):
            pd.testing.assert_frame_equal(_rows(lake, table), _rows(full, table), check_dtype=False, obj=table)
    # the replaced generation's shards are gone
    files = {str(p.relative_to(org / "lake")) for p in (org / "lake").rglob("*.parquet")}
    assert files == after.referenced()


def test_a_killed_task_leaves_no_half_written_shard(org):
    manifest = _manifest(org, NAMES[:2])
    ingest_org(manifest, workers=1)
    lake = org / "lake"
    with open_lake(lake) as store:
        counts = store.counts()
    repo = GitRepo.__new__(GitRepo)
    repo.path, repo.clock = org / "repos" / "alpha", 1_700_000_000
    repo.write("src/more.py", "y = 2\n")
    repo.commit("more", author="Dee", email="dee@example.com")
    # a worker killed (SIGKILL: no cleanup runs) after it has moved two shards into the lake
    script = textwrap.dedent(f"""
        import os, signal
        import releaserisk.lake as lake_module
        from releaserisk.config import Settings
        from releaserisk.ingest.org import _Task, ingest_repository, read_org_manifest
        from releaserisk.lake import Lake, generation_id

        original, calls = lake_module.Lake.put_file, []
        def dying(self, local, relative):
            calls.append(relative)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, local, relative)
        lake_module.Lake.put_file = dying
        org = read_org_manifest({str(manifest)!r})
        state = Lake({str(lake)!r}).read_manifest()
        sources = state.sources_of(org.repos[0].name)
        ingest_repository(_Task(org.repos[0], {str(lake)!r}, sources, Settings(), generation_id(), "", None))
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert killed.returncode == -9, killed.stderr.decode()
    leftovers = Lake(lake).unreferenced(Lake(lake).read_manifest())
    assert len(leftovers) == 2  # two whole shards, renamed into place but never committed
    with open_lake(lake) as store:
        assert store.counts() == counts  # readers see only the committed generation
    again = ingest_org(manifest, workers=1)
    assert dict(zip(again.frame["repo"], again.frame["status"], strict=True)) == {"alpha": "ingested",
                                                                                 "beta": "unchanged"}  # fmt: skip
    assert Lake(lake).unreferenced(Lake(lake).read_manifest()) == []


def test_analyses_over_the_lake_equal_analyses_over_the_loaded_file_before_and_after_compaction(org, capsys):
    from releaserisk.dora import dora_metrics

    manifest = _manifest(org)
    ingest_org(manifest, workers=1)
    lake, db = org / "lake", org / "loaded.duckdb"
    load_lake(lake, db)
    again = load_lake(lake, db)  # loading twice changes nothing
    with open_lake(lake) as store:
        over_lake = dora_metrics(store).frame
        counts = store.counts()
    with open_store(db, read_only=True) as store:
        over_file = dora_metrics(store).frame
        assert store.counts() == counts
    assert counts["deployments"] == 10 and sum(again.tables.values()) == sum(v for v in counts.values())
    pd.testing.assert_frame_equal(over_lake, over_file)

    assert main(["--lake", str(lake), "lake", "compact"]) == 0
    assert "10 live files" not in capsys.readouterr().out
    state = Lake(lake).read_manifest()
    assert all(not entry["files"] for entry in state.repos.values())
    assert len(list(lake.rglob("*.parquet"))) == len(state.referenced()) == len(state.compacted)
    with open_lake(lake) as store:
        assert store.counts() == counts
        pd.testing.assert_frame_equal(dora_metrics(store).frame, over_file)
    # a repository re-ingested after compaction supersedes its compacted rows
    repo = GitRepo.__new__(GitRepo)
    repo.path, repo.clock = org / "repos" / "beta", 1_700_000_000
    repo.write("src/late.py", "z = 3\n")
    repo.commit("late", author="Dee", email="dee@example.com")
    ingest_org(manifest, workers=1)
    with open_lake(lake) as store:
        assert store.counts()["commits"] == counts["commits"] + 1
        assert store.query("SELECT count(*) AS n FROM commits WHERE repo = 'beta'")["n"][0] == len(
            _rows(store, "commits").query("repo == 'beta'")
        )


BAD_MANIFESTS = {
    "unknown top-level key": ('colour = "red"\n', "unknown key 'colour'"),
    "unknown repository key": ('[[repos]]\npath = "repos/alpha"\nbranch = "main"\n', "unknown key 'branch'"),
    "missing path": ('[[repos]]\npath = "repos/nowhere"\n', "does not exist"),
    "duplicate names": ('[[repos]]\npath = "repos/alpha"\n[[repos]]\nname = "alpha"\npath = "repos/beta"\n',
                        "two repositories are named 'alpha'"),
    "path and url": ('[[repos]]\npath = "repos/alpha"\nurl = "https://example.com/a.git"\n', "either path or url"),
    "no repositories": ("[defaults]\nlabels = false\n", "lists no repositories"),
    "bad tags": ('[[repos]]\npath = "repos/alpha"\ntags = 3\n', "tags must be"),
    "service in two repositories": (
        '[[repos]]\npath = "repos/alpha"\nservices = [{ service = "api" }]\n'
        '[[repos]]\npath = "repos/beta"\nservices = [{ service = "api" }]\n', "service 'api' is listed in both"),
    "unknown service key": ('[[repos]]\npath = "repos/alpha"\nservices = [{ service = "api", owner = "x" }]\n',
                            "unknown key 'owner'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifests_get_one_line_errors(org, case, capsys):
    text, expected = BAD_MANIFESTS[case]
    path = org / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=expected):
        read_org_manifest(path)
    assert main(["--lake", str(org / "lake"), "ingest", "org", str(path), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected.split("'")[0] in err
    assert not (org / "lake").exists()


def test_scan_finds_every_clone_and_an_explicit_entry_wins(org):
    path = org / "scan.toml"
    path.write_text('[scan]\npath = "repos"\n\n[[repos]]\nname = "alpha"\npath = "repos/alpha"\nlabels = false\n')
    manifest = read_org_manifest(path)
    specs = {r.name: r for r in manifest.repos}
    assert sorted(specs) == sorted(NAMES)
    assert specs["alpha"].labels is False and specs["beta"].labels is True


def test_a_lake_is_read_only_and_a_damaged_manifest_is_a_one_line_error(org, capsys):
    ingest_org(_manifest(org, NAMES[:1]), workers=1)
    lake = org / "lake"
    with open_lake(lake) as store, pytest.raises(LakeError, match="read-only"), store.transaction():
        pass
    for command in (["ingest", "git", str(org / "repos" / "beta")], ["label"]):
        assert main(["--lake", str(lake), *command]) == 2, command  # label deleted outside a transaction: exit 70
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "is a lake, read-only" in err, command
    with open_lake(lake) as store:
        writes = ("DELETE FROM labels", "UPDATE label_fixes SET failed_blames = 0", "INSERT INTO labels VALUES (1)")
        for write in writes:
            with pytest.raises(LakeError, match="read-only"):
                store.execute(write)
    (lake / "_lake.json").write_text("{not json")
    with pytest.raises(LakeError, match="damaged"):
        open_lake(lake)
    assert main(["--lake", str(lake), "dora"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["--lake", str(org / "nothing"), "info"]) == 2
    assert "not a lake" in capsys.readouterr().err


def test_org_result_is_json(org, capsys):
    assert main(["ingest", "org", str(_manifest(org, NAMES[:1])), "--workers", "1", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["repos"][0]["repo"] == "alpha" and payload["repos"][0]["status"] == "ingested"
    assert os.path.isdir(payload["lake"])


def test_a_lake_at_an_fsspec_url_works_like_a_folder(org):
    """The object-store path (fsspec put + rename, DuckDB reading through the registered filesystem)."""
    url = f"memory://releaserisk-test-{org.name}/lake"
    result = ingest_org(read_org_manifest(_manifest(org, NAMES[:2])), url, workers=1)
    assert list(result.frame["status"]) == ["ingested", "ingested"]
    with open_lake(url) as store:
        commits = store.counts()["commits"]
        assert commits == int(result.frame["total_commits"].sum()) > 0
    compact_lake(url)
    with open_lake(url) as store:
        assert store.counts()["commits"] == commits
    assert Lake(url).unreferenced(Lake(url).read_manifest()) == []


def test_an_unreachable_scheduler_is_a_one_line_error_and_leaves_no_lake(org, monkeypatch, capsys):
    import releaserisk.ingest.org as org_module

    monkeypatch.setattr(org_module, "SCHEDULER_TIMEOUT", "1s")
    manifest = _manifest(org, NAMES[:1])
    assert main(["ingest", "org", str(manifest), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Dask scheduler tcp://127.0.0.1:9") and err.count("\n") == 1
    assert not (org / "lake" / "_lake.json").exists()


@pytest.fixture
def garbage_server():
    """A TCP server that answers every connection with an HTTP error page (a dashboard port, a proxy)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nBad Request" * 4)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("address", ["garbage", "notaurl::"], ids=["not-a-scheduler-answers", "malformed-address"])
def test_a_scheduler_address_that_is_no_scheduler_is_a_one_line_error(org, monkeypatch, capsys, address, request):
    import releaserisk.ingest.org as org_module

    monkeypatch.setattr(org_module, "SCHEDULER_TIMEOUT", "2s")
    if address == "garbage":
        address = request.getfixturevalue("garbage_server")
    manifest = _manifest(org, NAMES[:1])
    assert main(["ingest", "org", str(manifest), "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Dask scheduler {address}") and err.count("\n") == 1
    assert not (org / "lake" / "_lake.json").exists()


def test_a_lake_location_that_is_a_file_is_refused_before_any_repository_runs(org, capsys):
    (org / "lake").write_text("not a lake")
    manifest = _manifest(org, NAMES[:1])
    assert main(["ingest", "org", str(manifest), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err
    assert (org / "lake").read_text() == "not a lake"


def test_a_lake_folder_opens_as_a_store_where_a_notebook_expects_its_db_file(org):
    ingest_org(_manifest(org, NAMES[:1]), workers=1)
    with open_store(org / "lake", read_only=True) as store:  # the notebooks' own call
        assert store.lake == str(org / "lake") and store.counts()["commits"] > 0
    (org / "plain").mkdir()
    with pytest.raises(StoreError, match="is a directory"):
        open_store(org / "plain")


def test_a_repository_given_by_url_is_cloned_then_fetched_and_a_failing_url_never_shows_its_token(org):
    path = org / "url.toml"
    origin = (org / "repos" / "alpha").as_uri()
    secret = "https://user:s3cret-token@invalid.example/none.git"
    path.write_text(f'clones = "clones"\n[[repos]]\nname = "alpha"\nurl = "{origin}"\n'
                    f'[[repos]]\nname = "private"\nurl = "{secret}"\n')  # fmt: skip
    first = ingest_org(path, org / "lake", workers=1).frame.set_index("repo")
    assert first.loc["alpha", "status"] == "ingested" and (org / "clones" / "alpha.git").is_dir()
    assert first.loc["private", "status"] == "failed" and "s3cret-token" not in first.loc["private", "error"]
    assert "https://invalid.example/none.git" in first.loc["private", "error"]
    again = ingest_org(path, org / "lake", workers=1).frame.set_index("repo")  # fetched, nothing new
    assert again.loc["alpha", "status"] == "ingested" and again.loc["alpha", "new_commits"] == 0


def test_a_shard_written_before_a_migration_reads_with_nulls_beside_current_shards(org):
    """Shards are scanned in groups of one schema; an older shard (a column missing) is its own group."""
    ingest_org(_manifest(org, NAMES[:3]), workers=1)
    lake = Lake(org / "lake")
    with open_lake(org / "lake") as store:
        before = _rows(store, "commits")
    old = org / "lake" / lake.read_manifest().repos["beta"]["files"]["commits"]
    with open_store(":memory:") as scratch:  # rewrite beta's shard as a writer without the column would have
        scratch.execute(f"COPY (SELECT * EXCLUDE (message) FROM read_parquet('{old}')) TO '{old}.new' (FORMAT parquet)")
    os.replace(f"{old}.new", old)
    with open_lake(org / "lake") as store:
        after = _rows(store, "commits")
    assert len(after) == len(before)
    assert after.loc[after["repo"] == "beta", "message"].isna().all()
    others = after["repo"] != "beta"
    pd.testing.assert_frame_equal(
        after[others].drop(columns="message").reset_index(drop=True),
        before[before["repo"] != "beta"].drop(columns="message").reset_index(drop=True),
    )
    assert after.loc[others, "message"].notna().all()


def test_ingest_compacts_the_lake_once_a_table_has_many_shards_and_not_on_an_unchanged_rerun(org, monkeypatch):
    import releaserisk.ingest.org as org_module

    monkeypatch.setattr(org_module, "AUTO_COMPACT_SHARDS", 3)
    few = ingest_org(_manifest(org, NAMES[:2]), workers=1)
    assert few.compaction is None  # 2 shards per table: below the threshold
    first = ingest_org(_manifest(org, NAMES[:3]), workers=1)
    assert first.compaction is not None and "compacted" in first.summary()
    state = Lake(org / "lake").read_manifest()
    assert state.loose_shards() == 0 and all(len(parts) == 1 for parts in state.compacted.values())
    with open_lake(org / "lake") as store:
        commits = _rows(store, "commits")
    assert set(commits["repo"]) == set(NAMES[:3])
    again = ingest_org(_manifest(org, NAMES[:3]), workers=1)
    assert again.compaction is None and set(again.frame["status"]) == {"unchanged"}
    _add_commit(org / "repos" / "beta")
    changed = ingest_org(_manifest(org, NAMES[:3]), workers=1)
    assert changed.compaction is None and Lake(org / "lake").read_manifest().loose_shards() == 1
    with open_lake(org / "lake") as store:
        assert len(_rows(store, "commits")) == len(commits) + 1


def test_ingest_org_compact_flag_forces_or_prevents_compaction(org, capsys):
    manifest = _manifest(org, NAMES[:2])
    assert main(["ingest", "org", str(manifest), "--no-compact", "--workers", "1"]) == 0
    assert Lake(org / "lake").read_manifest().loose_shards() == 2
    _add_commit(org / "repos" / "alpha")
    capsys.readouterr()
    assert main(["ingest", "org", str(manifest), "--compact", "--workers", "1", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["compaction"]["files_after"] < payload["compaction"]["files_before"]
    assert Lake(org / "lake").read_manifest().loose_shards() == 0


def test_ingest_org_help_states_the_auto_compaction_threshold(capsys):
    from releaserisk.ingest.org import AUTO_COMPACT_SHARDS

    with pytest.raises(SystemExit):
        main(["ingest", "org", "--help"])
    assert f"{AUTO_COMPACT_SHARDS} per-repository shards" in " ".join(capsys.readouterr().out.split())


def test_the_largest_repositories_run_first_so_no_worker_is_left_with_one_at_the_end(org):
    for name, files in (("alpha", 1), ("gamma", 8)):
        repo = GitRepo.__new__(GitRepo)
        repo.path, repo.clock = org / "repos" / name, 1_700_000_000
        for i in range(files):
            repo.write(f"data/blob{i}.txt", "".join(f"{name} {i} {k}\n" for k in range(40)))
        repo.commit("bulk data", author="Dee", email="dee@example.com")
        repo.git("repack", "-a", "-d", "-q")
    order = []
    manifest = _manifest(org, ["alpha", "beta", "gamma"])
    ingest_org(manifest, workers=1, progress=lambda outcome, done, total: order.append(outcome.repo))
    assert order[0] == "gamma" and order[-1] == "beta"  # beta has only loose objects: 0 packed bytes


def test_a_release_tagged_outside_the_ingested_branch_brings_its_history_and_ships_its_changes(org):
    # a release commit on a maintenance branch that was never merged back (starlette's
    # 0.6.0 and 0.10.x are tagged like this)
    repo = GitRepo.__new__(GitRepo)
    repo.path, repo.clock = org / "repos" / "beta", 1_700_000_000
    repo.git("checkout", "-q", "-b", "maint", "v1.0.0")
    repo.write("src/backport.py", "patched = True\n")
    repo.commit("backport a fix", author="Ann", email="ann@example.com")
    repo.git("tag", "v1.0.1")
    released = repo.git("rev-parse", "HEAD").strip()
    repo.git("checkout", "-q", "-")
    manifest = _manifest(org, names=["beta"])

    first = ingest_org(manifest, workers=1)
    with open_lake(org / "lake") as lake:
        assert lake.execute("SELECT count(*) FROM commits WHERE sha = ?", [released]).fetchone()[0] == 1
        shipped = lake.query("SELECT sha FROM deployment_changes WHERE deployment_id = 'tag:beta-svc:v1.0.1'")
    assert shipped["sha"].tolist() == [released]  # v1.0.0's history is the earlier release's
    assert int(first.frame["new_commits"].iloc[0]) == int(first.frame["total_commits"].iloc[0])

    _add_commit(org / "repos" / "beta")  # the main branch moves on: an increment, nothing read twice
    again = ingest_org(manifest, workers=1)
    assert int(again.frame["new_commits"].iloc[0]) == 1
    with open_lake(org / "lake") as lake:
        assert (
            lake.execute("SELECT count(*), count(DISTINCT sha) FROM commits").fetchone()
            == (int(again.frame["total_commits"].iloc[0]),) * 2
        )
