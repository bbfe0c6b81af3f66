"""Hostile inputs on every input path, from one table of cases, and SIGKILL during long work.

Every file kind (:data:`releaserisk.ingest.schemas.SCHEMAS` and canary samples) is fed
every hostile variant that applies to it, in every format, through the CLI. Each must
end with exit 2 and one ``error:`` line on stderr (never 70, never a traceback), leave
every table's row count unchanged, keep the explicitly loaded rows, and print nothing
on stdout a CI runner could read as a workflow command.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from releaserisk.cli import main
from releaserisk.ingest.schemas import SCHEMAS, Column
from releaserisk.store import TABLE_KEYS, open_store

INJECTED = "x\r::error::injected\n::warning::too<img src=x onerror=alert(1)>```"
STAMP = "2024-05-01T10:00:00Z"


# -- valid rows of every kind, from the documented columns ----------------------------------------
def _value(column: Column, i: int):
    if column.kind == "timestamp":
        return STAMP
    if column.kind == "int":
        return str(i + 1)
    if column.kind == "enum":
        return column.allowed[0]
    if column.kind == "list":
        return "a;b"
    if column.kind == "float":
        return str(i + 0.5)
    return f"{column.name}-{i}"


def rows_of(columns: tuple[Column, ...], n: int) -> list[dict]:
    return [{c.name: _value(c, i) for c in columns} for i in range(n)]


SAMPLE_COLUMNS = (Column("metric", required=True), Column("arm", "enum", True, ("canary",)),
                  Column("ts", "timestamp"), Column("value", "float"))  # fmt: skip
#: kind -> (columns, key columns, the CLI arguments before the file)
KINDS = {kind: (columns, TABLE_KEYS[table], ["ingest", kind]) for kind, (table, columns) in SCHEMAS.items()}
KINDS["metrics"] = (SAMPLE_COLUMNS, (), ["ingest", "metrics", "--analysis", "a1"])
KINDS["canary"] = (SAMPLE_COLUMNS, (), ["canary", "--data"])


def first(columns, kinds=("str",), required=True) -> Column | None:
    return next((c for c in columns if c.kind in kinds and (c.required or not required)), None)


# -- hostile variants: each takes (columns, key, directory) and writes a file, or None if n/a -----
def deep_json(columns, key, d):
    (d / "f.json").write_text("[" * 100_000 + "]" * 100_000)
    return d / "f.json"


def deep_json_value(columns, key, d):
    row = rows_of(columns, 1)[0]
    text = json.dumps(row)[:-1] + ', "extra": ' + "[" * 50_000 + "]" * 50_000 + "}"
    (d / "f.jsonl").write_text(text + "\n")
    return d / "f.jsonl"


def json_object_in_key(columns, key, d):
    rows = rows_of(columns, 2)
    rows[1][first(columns).name] = {"$gt": ""}
    (d / "f.json").write_text(json.dumps(rows))
    return d / "f.json"


def json_list_in_key(columns, key, d):
    rows = rows_of(columns, 2)
    rows[0][first(columns).name] = ["a", "b"]
    (d / "f.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return d / "f.jsonl"


def json_not_rows(columns, key, d):
    (d / "f.json").write_text(json.dumps([1, 2, 3]))
    return d / "f.json"


def _typed(columns, n=2):
    frame = pd.DataFrame(rows_of(columns, n))
    for c in columns:
        if c.kind == "timestamp":
            frame[c.name] = pd.to_datetime(frame[c.name], utc=True)
        elif c.kind == "int":
            frame[c.name] = frame[c.name].astype("int64")
        elif c.kind == "float":
            frame[c.name] = frame[c.name].astype(float)
        elif c.kind == "list":
            frame[c.name] = [["a", "b"]] * n
    return frame


def _parquet_with(columns, d, column: Column | None, values):
    """Two well-typed rows with ``column`` holding ``values``; None for a kind without such a column."""
    if column is None:
        return None
    frame = _typed(columns)
    frame[column.name] = values
    frame.to_parquet(d / "f.parquet")
    return d / "f.parquet"


def parquet_list_in_key(columns, key, d):
    return _parquet_with(columns, d, first(columns), [["a"], ["b"]])


def parquet_struct_in_key(columns, key, d):
    return _parquet_with(columns, d, first(columns), [{"a": 1}, {"a": 2}])


def parquet_number_in_text(columns, key, d):
    return _parquet_with(columns, d, first(columns), [1, 2])


def parquet_text_timestamp(columns, key, d):
    return _parquet_with(columns, d, first(columns, ("timestamp",), required=False), [STAMP, STAMP])


def parquet_naive_timestamp(columns, key, d):
    naive = pd.to_datetime(["2024-05-01 10:00", "2024-05-01 11:00"])
    return _parquet_with(columns, d, first(columns, ("timestamp",), required=False), naive)


def not_parquet(columns, key, d):
    (d / "f.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 4)
    return d / "f.parquet"


def csv_bad_last_row(columns, key, d):
    """A thousand good rows, then one whose typed value is garbage (injection text included)."""
    rows = rows_of(columns, 1000)
    typed = first(columns, ("timestamp", "int", "enum", "float"), required=False)
    if typed is None:  # text columns only: an empty required value
        rows[-1][first(columns).name] = ""
    else:
        rows[-1][typed.name] = INJECTED
    pd.DataFrame(rows).to_csv(d / "f.csv", index=False)
    return d / "f.csv"


def _csv_timestamp(columns, d, text: str):
    """Two good rows, the second's first timestamp replaced by ``text``; None for kinds without one."""
    column = first(columns, ("timestamp",), required=False)
    if column is None:
        return None
    rows = rows_of(columns, 2)
    rows[1][column.name] = text
    pd.DataFrame(rows).to_csv(d / "f.csv", index=False)
    return d / "f.csv"


def csv_naive_timestamp(columns, key, d):
    return _csv_timestamp(columns, d, "2024-05-01 10:00:00")


def csv_us_date(columns, key, d):
    return _csv_timestamp(columns, d, "01/02/2025 10:00")


def csv_epoch_millis(columns, key, d):
    return _csv_timestamp(columns, d, "1714557600000")


def csv_huge_number(columns, key, d):
    column = first(columns, ("int",), required=False)
    if column is None:
        return None
    rows = rows_of(columns, 2)
    rows[1][column.name] = "9" * 30
    pd.DataFrame(rows).to_csv(d / "f.csv", index=False)
    return d / "f.csv"


def csv_missing_column(columns, key, d):
    rows = [{k: v for k, v in row.items() if k != first(columns).name} for row in rows_of(columns, 2)]
    pd.DataFrame(rows).to_csv(d / "f.csv", index=False)
    return d / "f.csv"


def duplicate_key(columns, key, d):
    if not key:
        return None
    rows = rows_of(columns, 3)
    rows[2] = {**rows[2], **{k: rows[0][k] for k in key}}
    (d / "f.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return d / "f.jsonl"


def binary_garbage(columns, key, d):
    (d / "f.csv").write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)))
    return d / "f.csv"


def empty_file(columns, key, d):
    (d / "f.csv").write_bytes(b"")
    return d / "f.csv"


def unknown_suffix(columns, key, d):
    (d / "f.xlsx").write_bytes(b"PK")
    return d / "f.xlsx"


VARIANTS: dict[str, Callable] = {
    f.__name__: f
    for f in (
        deep_json, deep_json_value, json_object_in_key, json_list_in_key, json_not_rows, parquet_list_in_key,
        parquet_struct_in_key, parquet_number_in_text, parquet_text_timestamp, parquet_naive_timestamp, not_parquet,
        csv_bad_last_row, csv_naive_timestamp, csv_us_date, csv_epoch_millis, csv_huge_number, csv_missing_column,
        duplicate_key,
        binary_garbage, empty_file, unknown_suffix,
    )
}  # fmt: skip


def prometheus(series) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": series}}


PROMETHEUS = {
    "pair_too_short": prometheus([{"metric": {"arm": "canary"}, "values": [[1, "1"], [2]]}]),
    "pair_not_a_list": prometheus([{"metric": {"arm": "canary"}, "values": [7]}]),
    "value_not_a_number": prometheus([{"metric": {"arm": "canary"}, "values": [[1, INJECTED]]}]),
    "time_not_a_number": prometheus([{"metric": {"arm": "canary"}, "values": [[None, "1"]]}]),
    "time_infinite": prometheus([{"metric": {"arm": "canary"}, "values": [[1e400, "1"]]}]),
    "values_not_a_list": prometheus([{"metric": {"arm": "canary"}, "values": {"1": "2"}}]),
    "labels_not_an_object": prometheus([{"metric": "arm=canary", "values": []}]),
    "result_not_a_list": {"status": "success", "data": {"resultType": "matrix", "result": "x"}},
    "data_not_an_object": {"status": "success", "data": []},
    "error_status": {"status": "error", "errorType": "bad_data", "error": INJECTED},
    "deep": {"status": "success", "data": json.loads("[" * 500 + "]" * 500)},
}

#: variants that alter a timestamp column: they apply to kinds that have one
ABOUT_TIMESTAMPS = {"parquet_text_timestamp", "parquet_naive_timestamp", "csv_naive_timestamp", "csv_us_date",
                    "csv_epoch_millis"}  # fmt: skip


def applies(kind: str, variant: str) -> bool:
    columns, key, _ = KINDS[kind]
    if variant in ABOUT_TIMESTAMPS:
        return first(columns, ("timestamp",), required=False) is not None
    if variant == "csv_huge_number":
        return first(columns, ("int",), required=False) is not None
    return variant != "duplicate_key" or bool(key)


CASES = [
    *(pytest.param(k, v, id=f"{k}-{v}") for k in KINDS for v in VARIANTS if applies(k, v)),
    *(pytest.param(k, f"prometheus:{n}", id=f"{k}-prometheus-{n}") for k in ("metrics", "canary") for n in PROMETHEUS),
]


# -- the store every case starts from: rows in every ingest table, explicit links included -----------
@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("seed")
    db = d / "seed.duckdb"
    for kind, (columns, _, command) in KINDS.items():
        if kind == "canary":
            continue
        path = d / f"{kind}.csv"
        pd.DataFrame(rows_of(columns, 3)).to_csv(path, index=False)
        assert main(["--db", str(db), *command, str(path)]) == 0, kind
    assert explicit_links(db) and all(counts(db)[SCHEMAS[k][0]] for k in SCHEMAS)
    return db


def explicit_links(db: Path) -> list[tuple]:
    with open_store(db, read_only=True) as store:
        return store.execute("SELECT * FROM deployment_changes WHERE NOT derived ORDER BY ALL").fetchall()


def counts(db: Path) -> dict[str, int]:
    with open_store(db, read_only=True) as store:
        return store.counts()


def digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def assert_one_error_line(code: int, captured) -> None:
    assert code == 2, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    assert not any(line.lstrip().startswith("::") for line in captured.out.splitlines()), captured.out


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_hostile_input_is_one_error_line_and_changes_nothing(kind, variant, seeded, tmp_path, capsys):
    columns, key, command = KINDS[kind]
    if variant.startswith("prometheus:"):
        path = tmp_path / "prom.json"
        path.write_text(json.dumps(PROMETHEUS[variant.split(":", 1)[1]]))
    else:
        path = VARIANTS[variant](columns, key, tmp_path)
        if path is None:
            pytest.skip(f"{kind} has no column {variant} applies to")
    before = digest(seeded)
    capsys.readouterr()
    code = main(["--db", str(seeded), *command, str(path)])
    assert_one_error_line(code, capsys.readouterr())
    if digest(seeded) != before:  # the file is byte for byte the same: row counts and explicit rows included
        pytest.fail(f"the store changed: {counts(seeded)}")


# -- the store file itself --------------------------------------------------------------------------
def test_random_bytes_with_duckdb_magic_are_a_damaged_store_not_a_locked_one(tmp_path, capsys):
    data = bytearray(np.random.default_rng(0).integers(0, 256, 16384, dtype=np.uint8).tobytes())
    data[8:12] = b"DUCK"
    db = tmp_path / "s.duckdb"
    db.write_bytes(bytes(data))
    code = main(["--db", str(db), "init"])
    captured = capsys.readouterr()
    assert_one_error_line(code, captured)
    assert "damaged or not a DuckDB database" in captured.err and "in use" not in captured.err
    assert db.read_bytes() == bytes(data)


def test_a_damaged_store_is_not_reported_as_locked_when_read_as_a_snapshot(tmp_path):
    from releaserisk.errors import StoreCorruptError
    from releaserisk.store import open_snapshot

    data = bytearray(np.random.default_rng(0).integers(0, 256, 16384, dtype=np.uint8).tobytes())
    data[8:12] = b"DUCK"
    (tmp_path / "s.duckdb").write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="damaged or not a DuckDB database"):
        open_snapshot(tmp_path / "s.duckdb")


def test_a_failed_command_leaves_no_store_behind(tmp_path, capsys):
    bad = tmp_path / "d.csv"
    bad.write_text("deployment_id\nd1\n")
    db = tmp_path / "new.duckdb"
    assert main(["--db", str(db), "ingest", "deployments", str(bad)]) == 2
    assert not db.exists() and not (tmp_path / "new.duckdb.wal").exists()
    assert main(["--db", str(db), "init"]) == 0 and db.exists()  # a command that succeeds keeps it
    assert main(["--db", str(db), "ingest", "deployments", str(bad)]) == 2
    assert db.exists()  # not created by the failed command: left alone


def _as_unprivileged(argv: list[str]) -> list[str]:
    """Run as an ordinary user: root ignores directory permissions."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions are not enforced")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]


def test_a_store_in_a_read_only_directory_is_an_input_error():
    with tempfile.TemporaryDirectory() as where:  # not under pytest's 0700 folders: another user must reach it
        base = Path(where)
        base.chmod(0o755)
        folder = base / "ro"
        folder.mkdir(mode=0o755)
        db = folder / "s.duckdb"
        assert main(["--db", str(db), "init"]) == 0
        db.chmod(0o666)
        rows = base / "d.csv"
        pd.DataFrame(rows_of(SCHEMAS["deployments"][1], 2)).to_csv(rows, index=False)
        rows.chmod(0o644)
        folder.chmod(0o555)
        try:
            argv = _releaserisk(db, "ingest", "deployments", str(rows))
            done = subprocess.run(_as_unprivileged(argv), capture_output=True, text=True, timeout=120, cwd=base)
        finally:
            folder.chmod(0o755)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: cannot") and "permission denied" in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1
        assert counts(db)["deployments"] == 0


def test_dates_on_the_command_line_are_iso_8601_only(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    assert main(["--db", str(db), "init"]) == 0
    capsys.readouterr()
    code = main(["--db", str(db), "dora", "--since", "01/02/2025"])
    captured = capsys.readouterr()
    assert_one_error_line(code, captured)
    assert "is not a date in ISO 8601" in captured.err


# -- SIGKILL inside the work, then a re-run equals a clean run ----------------------------------------
def _releaserisk(db: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "releaserisk"), "--db", str(db), *args]


def _die_inside(db: Path, step: list[str], nth: int) -> int:
    """Run a CLI step in a forked child that SIGKILLs itself right after its ``nth`` bulk write.

    The write is inside the step's transaction, rows already in, before the commit: where a crash
    could half-write. Forking skips a new interpreter's imports (the test stays a few seconds).
    Returns the signal that ended the child.
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            import releaserisk.store as store_module

            real, left = store_module.Store.upsert, [nth]

            def upsert(self, *args, **kwargs):
                loaded = real(self, *args, **kwargs)
                left[0] -= 1
                if left[0] == 0:
                    os.kill(os.getpid(), signal.SIGKILL)
                return loaded

            store_module.Store.upsert = upsert
            main(["--db", str(db), *step])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def _snapshot(db: Path) -> dict[str, pd.DataFrame]:
    varying = {"ingest_runs", "models", "risk_scores"}  # run ids and times differ between runs
    with open_store(db, read_only=True) as store:
        frames = {}
        for table in store.tables():
            if table in varying:
                continue
            frame = store.query(f'SELECT * FROM "{table}"')
            frame = frame.drop(columns=[c for c in ("ingested_at", "labelled_at") if c in frame.columns])
            frames[table] = frame.sort_values(list(TABLE_KEYS[table])).reset_index(drop=True)
        return frames


def test_sigkill_during_ingest_and_label_then_rerun_equals_a_clean_run(tmp_path, git_repo):
    for i in range(8):
        git_repo.write(f"src/m{i % 3}.py", "".join(f"line {j} {i}\n" for j in range(i % 5 + 3)))
        git_repo.commit(f"fix: bug {i}" if i % 4 == 3 else f"feature {i}")
    deployments = tmp_path / "d.csv"
    pd.DataFrame(
        [{**rows_of(SCHEMAS["deployments"][1], 1)[0], "deployment_id": f"d{i}", "sha": f"{i:040x}"} for i in range(500)]
    ).to_csv(deployments, index=False)
    steps = [
        ["ingest", "git", str(git_repo.path), "--name", "r"],
        ["ingest", "deployments", str(deployments)],
        ["label", "--repo", "r", "--workers", "1"],
    ]
    clean, killed = tmp_path / "clean.duckdb", tmp_path / "killed.duckdb"
    for step in steps:
        assert main(["--db", str(clean), *step]) == 0
    for step, nth in zip(steps, (2, 1, 1), strict=True):
        assert _die_inside(killed, step, nth) == signal.SIGKILL  # it did die inside the step
        assert main(["--db", str(killed), *step]) == 0
    got, want = _snapshot(killed), _snapshot(clean)
    assert got.keys() == want.keys()
    for table in want:
        pd.testing.assert_frame_equal(got[table], want[table], check_dtype=False, obj=table)


# -- no injected workflow command or raw HTML in any output format ----------------------------------
def runner_commands(stdout: str) -> list[str]:
    """The workflow commands a GitHub runner would execute from this output.

    Lines split at ``\\r`` and ``\\n`` as the runner does; between ``::stop-commands::TOKEN`` and
    ``::TOKEN::`` nothing runs.
    """
    commands, stopped = [], None
    for line in re.split(r"\r\n|\r|\n", stdout):
        body = line.strip()
        if stopped is not None:
            if body == f"::{stopped}::":
                stopped = None
            continue
        if body.startswith("::stop-commands::"):
            stopped = body.removeprefix("::stop-commands::")
        elif body.startswith("::"):
            commands.append(body)
    return commands


def outside_fences(markdown: str) -> str:
    """The markdown that is not inside a fenced code block (CommonMark 4.5: a fence closes with at
    least as many backticks as opened it)."""
    kept, fence = [], None
    for line in re.split(r"\r\n|\r|\n", markdown):
        run = re.match(r"^ {0,3}(`{3,})\s*$", line) or re.match(r"^ {0,3}(`{3,})[^`]*$", line)
        if fence is None and run:
            fence = run.group(1)
        elif fence is not None and re.match(rf"^ {{0,3}}`{{{len(fence)},}}\s*$", line):
            fence = None
        elif fence is None:
            kept.append(line)
    return "\n".join(kept)


@pytest.mark.parametrize("output", ["text", "json", "github", "github-summary"])
def test_user_text_cannot_inject_commands_or_html_into_canary_output(tmp_path, capsys, monkeypatch, output):
    name = "lat\r::error::injected\n```\n<img src=x onerror=alert(1)>\n````"
    samples = pd.DataFrame({"metric": name, "arm": ["baseline"] * 20 + ["canary"] * 20,
                            "value": [1.0] * 20 + [5.0] * 20})  # fmt: skip
    samples.to_csv(tmp_path / "s.csv", index=False)
    summary = tmp_path / "summary.md"
    if output == "github-summary":
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    else:
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    code = main(["canary", "--data", str(tmp_path / "s.csv"), "--format", output.removesuffix("-summary")])
    out = capsys.readouterr().out
    assert code in (0, 1, 3)
    commands = runner_commands(out)
    assert all(re.match(r"::(notice|warning|error)::canary ", c) for c in commands), commands
    assert len(commands) == (1 if output.startswith("github") else 0)
    if output == "json":  # data, not markup: the name comes back exactly
        assert json.loads(out)["metrics"][0]["name"] == name
    else:
        assert "<img" not in outside_fences(summary.read_text() if output == "github-summary" else out)


def test_a_carriage_return_in_a_commit_subject_stays_in_its_table_row():
    from releaserisk.gate import ROLLOUT_POLICY, GateResult

    commits = pd.DataFrame({"sha": ["a" * 40], "subject": ["fix\r::error::owned | `x` <b>"], "probability": [0.9],
                            "band": ["high"], "reasons": [["adds 5 lines\u2028(raises risk)"]]})  # fmt: skip
    batch = {"size": 1, "churn": 5, "authors": 1, "max_risk": 0.9, "mean_risk": 0.9, "any_defect": 0.9, "band": "high"}
    markdown = GateResult(commits, batch, 0.5, "m", {"band": "high", **ROLLOUT_POLICY["high"]}).markdown()
    rows = [line for line in markdown.split("\n") if line.startswith("| `aaaa")]
    assert len(rows) == 1 and rows[0].count(" | ") == 4  # one row, five cells
    assert not runner_commands(markdown) and "<b>" not in markdown


# -- the other input paths: settings, canary configs, environment, Parquet snapshots ---------------------
DEEP_TOML = "a = " + "[" * 100_000 + "]" * 100_000 + "\n"


def snapshot_with(d: Path, frame: pd.DataFrame) -> Path:
    (d / "snap" / "deployments").mkdir(parents=True)
    frame.to_parquet(d / "snap" / "deployments" / "data.parquet")
    return d / "snap"


OTHER_PATHS = {
    "settings-deep-toml": lambda d: (d / "c.toml").write_text(DEEP_TOML) and ["--config", str(d / "c.toml"), "init"],
    "settings-not-utf8": lambda d: (d / "c.toml").write_bytes(b"\xff\xfe=") and ["--config", str(d / "c.toml"), "init"],
    "canary-config-deep-toml": lambda d: (d / "c.toml").write_text(DEEP_TOML)
    and ["canary", "--config", str(d / "c.toml"), "--data", str(d / "c.toml")],
    "snapshot-text-timestamp": lambda d: [
        "ingest", "parquet", str(snapshot_with(d, pd.DataFrame({"deployment_id": ["d9"], "finished_at": ["soon"]})))
    ],
    "snapshot-list-in-key": lambda d: [
        "ingest", "parquet", str(snapshot_with(d, pd.DataFrame({"deployment_id": [["d9"]]})))
    ],
}  # fmt: skip


@pytest.mark.parametrize("case", OTHER_PATHS)
def test_other_input_paths_are_one_error_line_and_change_nothing(case, seeded, tmp_path, capsys, monkeypatch):
    argv = OTHER_PATHS[case](tmp_path)
    before = digest(seeded)
    capsys.readouterr()
    assert_one_error_line(main(["--db", str(seeded), *argv]), capsys.readouterr())
    assert digest(seeded) == before


def test_a_deeply_nested_list_setting_in_the_environment_is_a_config_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RELEASERISK_PRODUCTION_ENVIRONMENTS", "[" * 100_000 + "]" * 100_000)
    assert_one_error_line(main(["--db", str(tmp_path / "s.duckdb"), "init"]), capsys.readouterr())
    assert not (tmp_path / "s.duckdb").exists()


# -- GitHub: a server answering garbage, replayed (the API's documented shapes, broken) -----------------
GITHUB_REPLAYS = {
    "html-page": {"status": 200, "body": "<html><body>Sign in</body></html>", "content_type": "text/html"},
    "malformed-json": {"status": 200, "body": '[{"number": 1, "title": "cut off', "content_type": "application/json"},
    "not-a-list": {"status": 200, "json": {"message": "a listing should be a list"}},
    "list-of-strings": {"status": 200, "json": ["1", "2"]},
    "deep-json": {"status": 200, "body": "[" * 50_000 + "]" * 50_000, "content_type": "application/json"},
    "forbidden": {"status": 403, "json": {"message": "Resource not accessible by integration"}},
    "server-error-page": {"status": 502, "body": "<html>Bad gateway</html>", "content_type": "text/html"},
}  # fmt: skip


@pytest.mark.parametrize("case", GITHUB_REPLAYS)
def test_github_garbage_is_one_error_line_and_changes_nothing(case, seeded, capfd, monkeypatch):
    responses = pytest.importorskip("responses")
    import releaserisk.ingest.github as module
    from tests.ingest.test_github import REPO, add_repo, url

    real = module._client
    monkeypatch.setattr(
        module, "_client", lambda token, base_url, throttle, retries, wait: real(token, base_url, 0, 0, wait)
    )  # fmt: skip  no retries: the replay answers once
    before = digest(seeded)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as replay:
        add_repo(replay)
        replay.get(url(f"{REPO}/pulls"), **GITHUB_REPLAYS[case])
        capfd.readouterr()
        code = main(["--db", str(seeded), "ingest", "github", "acme/shop", "--no-wait"])
    assert_one_error_line(code, capfd.readouterr())
    assert digest(seeded) == before
