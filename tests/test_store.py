import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from releaserisk.errors import (
    InputError,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
)
from releaserisk.store import TABLE_KEYS, _migrations, open_store

#: The newest packaged migration (each issue adds its own).
NEWEST = _migrations()[-1][0]


def test_migrations_create_every_table_from_empty(tmp_path):
    with open_store(tmp_path / "a.duckdb") as store:
        assert store.schema_version == NEWEST
        assert set(store.tables()) == set(TABLE_KEYS)
        assert all(rows == 0 for rows in store.counts().values())
    # reopening applies nothing new
    with open_store(tmp_path / "a.duckdb") as store:
        assert store.migrate() == []


def _version_1_store(path):
    """A store as releaserisk wrote it before issues existed (schema version 1)."""
    from importlib import resources

    import duckdb

    first = resources.files("releaserisk.migrations").joinpath("001_init.sql").read_text()
    with duckdb.connect(str(path)) as con:
        con.execute(first)
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        con.execute("INSERT INTO schema_version VALUES (1, now())")
        con.execute("INSERT INTO repos (repo) VALUES ('kept')")
    return path


def test_a_snapshot_of_an_earlier_version_leaves_the_newer_tables_empty(tmp_path):
    from releaserisk.store import open_snapshot

    path = _version_1_store(tmp_path / "v1.duckdb")
    with open_snapshot(path) as snapshot:  # what `score --read-only` reads; it failed on issues
        assert snapshot.counts()["issues"] == 0
        assert snapshot.query("SELECT repo FROM repos")["repo"].tolist() == ["kept"]
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:  # the file itself was not touched
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1


def test_a_store_of_an_earlier_version_is_upgraded_in_place(tmp_path):
    path = _version_1_store(tmp_path / "v1.duckdb")
    with open_store(path) as store:
        assert store.schema_version == NEWEST and "issues" in store.tables()
        assert store.query("SELECT repo FROM repos")["repo"].tolist() == ["kept"]


def _version_2_store_with_github_pull_requests(path):
    """Pull requests as GitHub ingestion stored them before migration 003: under OWNER/REPO."""
    from importlib import resources

    import duckdb

    with duckdb.connect(str(path)) as con:
        for name in ("001_init.sql", "002_issues.sql"):
            con.execute(resources.files("releaserisk.migrations").joinpath(name).read_text())
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        con.execute("INSERT INTO schema_version VALUES (1, now()), (2, now())")
        con.execute("INSERT INTO repos (repo) VALUES ('shop'), ('org/lib')")
        con.execute("INSERT INTO deployments (deployment_id, repo) VALUES ('d1', 'shop')")
        for number, repo in ((1, "acme/shop"), (2, "acme/shop"), (2, "shop"), (5, "org/lib"), (6, "acme/other")):
            con.execute("INSERT INTO pull_requests (repo, number) VALUES (?, ?)", [repo, number])
            con.execute("INSERT INTO pr_commits (repo, number, sha) VALUES (?, ?, 'c')", [repo, number])
            con.execute("INSERT INTO pr_reviews (repo, number, reviewer, submitted_at) VALUES (?, ?, 'r', now())",
                        [repo, number])  # fmt: skip
    return path


@pytest.mark.parametrize("snapshot", [False, True])
def test_migration_3_names_github_pull_requests_as_the_rest_of_the_store(tmp_path, snapshot):
    from releaserisk.store import open_snapshot

    path = _version_2_store_with_github_pull_requests(tmp_path / "v2.duckdb")
    with open_snapshot(path) if snapshot else open_store(path) as store:
        for table in ("pull_requests", "pr_commits", "pr_reviews"):
            rows = store.query(f"SELECT repo, number FROM {table} ORDER BY number, repo")
            # 1 renamed; 2's twin under 'shop' exists, so its old row stays; 'org/lib' is a
            # repository's own name; 'acme/other' names nothing else in the store
            assert list(zip(rows["repo"], rows["number"], strict=True)) == [
                ("shop", 1), ("acme/shop", 2), ("shop", 2), ("org/lib", 5), ("acme/other", 6)], table  # fmt: skip


def _commits(shas, message="m"):
    return pd.DataFrame(
        {
            "repo": "r",
            "sha": shas,
            "parents": [[] for _ in shas],
            "message": message,
            "committed_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )


def test_upsert_is_idempotent_and_replaces_by_key(store):
    frame = _commits(["a", "b", "c"])
    store.upsert("commits", frame)
    first = store.query("SELECT * FROM commits ORDER BY sha")
    store.upsert("commits", frame)
    again = store.query("SELECT * FROM commits ORDER BY sha")
    pd.testing.assert_frame_equal(first, again)
    store.upsert("commits", _commits(["b"], message="changed"))
    rows = store.query("SELECT sha, message FROM commits ORDER BY sha")
    assert rows.to_dict("list") == {"sha": ["a", "b", "c"], "message": ["m", "changed", "m"]}


def test_upsert_keeps_last_duplicate_within_a_frame(store):
    frame = pd.concat([_commits(["a"], "first"), _commits(["a"], "second")])
    assert store.upsert("commits", frame) == 1
    assert store.query("SELECT message FROM commits")["message"].tolist() == ["second"]


def test_append_matches_columns_by_name_and_keeps_no_rows_past_the_statement(store):
    import pyarrow as pa

    allocated = pa.total_allocated_bytes()
    with store.transaction():
        rows = pa.table({"sha": [f"{i:040x}" for i in range(5_000)], "repo": ["r"] * 5_000, "seq": range(5_000)})
        store.append("commits", rows)
        del rows
        # a registered view would hold the Arrow table until the commit (a history's every batch)
        assert pa.total_allocated_bytes() == allocated
    stored = store.query("SELECT repo, sha, seq, message FROM commits ORDER BY seq LIMIT 1").iloc[0].tolist()
    assert stored == ["r", f"{0:040x}", 0, None]
    with pytest.raises(InputError, match="no column"):
        store.append("commits", pa.table({"sha": ["a"], "colour": ["red"]}))


def test_upsert_rejects_missing_key_and_unknown_table(store):
    with pytest.raises(InputError, match="sha"):
        store.upsert("commits", pd.DataFrame({"repo": ["r"]}))
    with pytest.raises(InputError, match="unknown table"):
        store.upsert("nope", pd.DataFrame({"repo": ["r"]}))


def test_transaction_rolls_back_whole_on_exception(store):
    store.upsert("commits", _commits(["a"]))
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert("commits", _commits(["b", "c"]))
        store.execute("DELETE FROM commits WHERE sha = 'a'")
        raise RuntimeError("boom")
    assert store.query("SELECT sha FROM commits")["sha"].tolist() == ["a"]


def test_second_writer_process_gets_lock_error(tmp_path):
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from releaserisk.store import open_store
                s = open_store({str(db)!r})
                print("ready", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=str(db)):
            open_store(db)
    finally:
        holder.communicate("\n", timeout=30)


def test_corrupt_file_is_refused_and_left_unchanged(tmp_path):
    bogus = tmp_path / "notes.duckdb"
    content = b"this is not a database\n" * 100
    bogus.write_bytes(content)
    with pytest.raises(StoreCorruptError, match="not a DuckDB database"):
        open_store(bogus)
    assert bogus.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.duckdb"]


def test_newer_schema_is_a_clear_error(tmp_path):
    db = tmp_path / "future.duckdb"
    with open_store(db) as store:
        store.execute("INSERT INTO schema_version VALUES (999, now())")
    with pytest.raises(SchemaVersionError, match="999"):
        open_store(db)


def test_missing_directory_and_read_only_missing_file(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "no" / "such" / "x.duckdb")
    with pytest.raises(StoreError, match="releaserisk init"):
        open_store(tmp_path / "x.duckdb", read_only=True)


def test_parquet_export_import_round_trip(store, tmp_path):
    store.upsert("commits", _commits(["a", "b"]))
    store.upsert("deployments", pd.DataFrame({"deployment_id": ["d1"], "service": ["api"], "status": ["success"]}))
    written = store.export_parquet(tmp_path / "snap")
    assert written == {"commits": 2, "deployments": 1}
    assert (tmp_path / "snap" / "commits" / "repo=r").is_dir()
    with open_store(tmp_path / "copy.duckdb") as other:
        other.import_parquet(tmp_path / "snap")
        got = other.query("SELECT repo, sha, message FROM commits ORDER BY sha")
        assert got.to_dict("list") == {"repo": ["r", "r"], "sha": ["a", "b"], "message": ["m", "m"]}
        assert other.query("SELECT service FROM deployments")["service"].tolist() == ["api"]


def test_cli_export_and_ingest_parquet_round_trip_every_table(simulated, tmp_path, capsys):
    """metric_samples has no repo or service to partition by: its export failed with an IO error."""
    import json

    from releaserisk.cli import main

    snap, copy = tmp_path / "snap", tmp_path / "copy.duckdb"
    assert main(["--db", str(simulated["db"]), "export", str(snap), "--format", "json"]) == 0
    written = json.loads(capsys.readouterr().out)["tables"]
    assert written["metric_samples"] > 0 and (snap / "metric_samples" / "data.parquet").is_file()
    assert main(["--db", str(copy), "ingest", "parquet", str(snap), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tables"] == written
    with open_store(simulated["db"], read_only=True) as original, open_store(copy, read_only=True) as loaded:
        for table in ("metric_samples", "deployment_changes", "labels"):
            query = f"SELECT * FROM {table} ORDER BY ALL"
            pd.testing.assert_frame_equal(original.query(query), loaded.query(query), check_like=True)
        assert loaded.query("SELECT source FROM ingest_runs WHERE source LIKE 'parquet:%'")["source"].tolist() == [
            f"parquet:{snap}"]  # fmt: skip
    assert main(["--db", str(copy), "ingest", "parquet", str(tmp_path)]) == 2  # no exported tables there
    assert "holds no exported tables" in capsys.readouterr().err
    # a second export into the same folder would leave the first one's partitions beside its own
    assert main(["--db", str(simulated["db"]), "export", str(snap)]) == 2
    assert "already holds repos, commits, file_changes …; export to a new directory" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main(["--db", str(simulated["db"]), "export", str(tmp_path / "a-file" / "snap")]) == 2
    assert "cannot write" in capsys.readouterr().err
    (tmp_path / "bad" / "commits").mkdir(parents=True)
    (tmp_path / "bad" / "commits" / "x.parquet").write_text("not parquet")
    assert main(["--db", str(copy), "ingest", "parquet", str(tmp_path / "bad")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_unknown_commit_note_counts_every_such_deployment_and_names_the_first_three(store):
    from releaserisk.store import deployments_of_unknown_commits, unknown_commit_note

    store.execute("INSERT INTO repos (repo) VALUES ('r')")
    store.execute(
        "INSERT INTO commits (repo, sha, parents, author, committed_at, authored_at, is_merge, seq) "
        "VALUES ('r', 'known', [], 'a', TIMESTAMPTZ '2024-01-01', TIMESTAMPTZ '2024-01-01', false, 0)"
    )
    for i, (sha, status) in enumerate(
        [("b5", "success"), ("known", "success"), ("b2", "success"), ("b3", "failure"), ("b4", "success"),
         ("b1", "success")]
    ):  # fmt: skip
        store.execute(
            "INSERT INTO deployments (deployment_id, service, repo, environment, sha, finished_at, status) "
            "VALUES (?, 's', NULL, 'production', ?, TIMESTAMPTZ '2024-01-02' + to_hours(?), ?)",
            [f"d{i}", sha, i, status],
        )
    unknown = deployments_of_unknown_commits(store)
    assert unknown["deployment_id"].tolist() == ["d0", "d2", "d4", "d5"]  # the only repository is theirs
    note = unknown_commit_note(store)
    assert note.startswith("4 successful deployments name shas that are no commit of the ingested history, "
                           "e.g. d0 (b5), d2 (b2), d4 (b4):")  # fmt: skip
    store.execute("UPDATE deployments SET sha = 'known'")
    assert unknown_commit_note(store) is None
