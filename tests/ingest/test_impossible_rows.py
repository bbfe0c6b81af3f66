"""Rows that cannot be right are refused, links that look wrong are loaded with a warning.

From a new user's trial: an incident opened in 2099 became a 634,663 h recovery, a
deployment in 2099 stretched the default window there, a rollback reverting itself was a
failed 0-h-recovered deployment, '86400' was "not a valid timestamp (… or Unix epoch
seconds)" and -1700000000 loaded as 1916.
"""

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from releaserisk.cli import main
from releaserisk.errors import InputError
from releaserisk.ingest.schemas import SCHEMAS
from releaserisk.ingest.tabular import ingest_file, validate
from releaserisk.inputs import EPOCH_MIN, FUTURE_TOLERANCE
from releaserisk.inputs import validate as validate_columns

CLOCK = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # the injected ingest clock: tests do not depend on today


def write_csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def deployment(i, t, **extra):
    return {"deployment_id": f"d{i}", "service": "api", "environment": "production", "sha": f"{i:040x}",
            "status": "success", "finished_at": t, **extra}  # fmt: skip


def incident(i, opened, **extra):
    return {"incident_id": f"i{i}", "service": "api", "opened_at": opened, **extra}


# -- future times ------------------------------------------------------------------------------
# every timestamp column of every tabular kind: (kind, the row with column set to a time)
_ROWS = {
    "deployments": lambda i, c, t: {**deployment(i, "2025-01-01T00:00:00Z"), c: t},
    "incidents": lambda i, c, t: {**incident(i, "2025-01-01T00:00:00Z"), c: t},
    "issues": lambda i, c, t: {"repo": "r", "issue": str(i), "opened_at": "2025-01-01T00:00:00Z", c: t},
    "pull-requests": lambda i, c, t: {"repo": "r", "number": i, "created_at": "2025-01-01T00:00:00Z", c: t},
    "pr-commits": lambda i, c, t: {"repo": "r", "number": i, "sha": "a" * 40, c: t},
    "pr-reviews": lambda i, c, t: {"repo": "r", "number": i, "reviewer": "x", c: t},
    "flags": lambda i, c, t: {"change_id": str(i), "flag_key": "f", "action": "on", c: t},
}
_TIME_COLUMNS = [
    (kind, column.name) for kind, (_, columns) in SCHEMAS.items() for column in columns if column.kind == "timestamp"
]


def test_every_timestamp_column_is_covered():
    assert {kind for kind, _ in _TIME_COLUMNS} == set(_ROWS)


@pytest.mark.parametrize(("kind", "column"), _TIME_COLUMNS)
def test_a_time_after_the_ingest_clock_is_refused_in_every_timestamp_column(kind, column):
    def frame(stamp):
        rows = pd.DataFrame([_ROWS[kind](1, column, "2025-01-01T00:00:00Z"), _ROWS[kind](2, column, stamp)])
        rows.attrs["format"] = "csv"
        return rows.astype(str)

    later = (CLOCK + FUTURE_TOLERANCE + pd.Timedelta(minutes=1)).isoformat()
    with pytest.raises(InputError, match=rf"x\.csv: column {column}: row 2: .* later than this ingest's clock "
                                         r"\(2026-01-10T12:00Z\) plus 1 day"):  # fmt: skip
        validate(frame(later), kind, "x.csv", now=CLOCK)
    # within the tolerance (another machine's clock runs ahead): loaded
    within = (CLOCK + FUTURE_TOLERANCE).isoformat()
    if column == "started_at":  # started after it finished: that rule speaks
        with pytest.raises(InputError, match=r"row 2: finished_at .* is before started_at"):
            validate(frame(within), kind, "x.csv", now=CLOCK)
    else:
        assert len(validate(frame(within), kind, "x.csv", now=CLOCK)) == 2


def test_future_epoch_seconds_and_typed_parquet_times_are_refused_too():
    later = CLOCK + pd.Timedelta(days=2)
    columns = SCHEMAS["incidents"][1]
    typed = pd.DataFrame([incident(1, later)])  # a Parquet column carries its type
    epoch = pd.DataFrame([incident(1, str(int(later.timestamp())))])
    epoch.attrs["format"] = "csv"
    for rows in (typed, epoch):
        with pytest.raises(InputError, match=r"row 1: .*later than this ingest's clock"):
            validate_columns(rows, columns, "i", now=CLOCK)


def test_cli_refuses_an_incident_opened_in_2099_and_loads_nothing(tmp_path, capsys):
    from releaserisk.store import open_store

    db = str(tmp_path / "rr.duckdb")
    with open_store(db):
        pass
    good = incident(1, "2025-01-01T00:00:00Z", resolved_at="2025-01-01T02:00:00Z")
    path = write_csv(tmp_path / "future.csv", [good, incident(2, "2099-01-01T00:00:00Z")])
    assert main(["--db", db, "ingest", "incidents", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: column opened_at: row 2: '2099-01-01T00:00:00Z'")
    assert "later than this ingest's clock" in err
    dep = write_csv(tmp_path / "dep.csv", [deployment(1, "2025-01-01T00:00:00Z"), deployment(2, "2099-01-01T00:10Z")])
    assert main(["--db", db, "ingest", "deployments", str(dep)]) == 2
    assert "column finished_at: row 2" in capsys.readouterr().err
    with open_store(db, read_only=True) as store:
        assert store.counts()["incidents"] == 0 and store.counts()["deployments"] == 0


# -- epoch seconds -------------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["1", "86400", "99999999", "-1700000000", "-86400", "1e5", "1e15", "+5"])
def test_a_number_outside_the_epoch_seconds_range_says_the_range(store, tmp_path, number):
    path = write_csv(tmp_path / "e.csv", [incident(1, number)])
    message = rf"row 1: '\{number}' is a number outside" if number[0] in "+" else rf"row 1: '{number}' is a number"
    with pytest.raises(InputError, match=message + rf".*accepted, {EPOCH_MIN} \(1973-03-03T09:46:40Z\)"):
        ingest_file(store, "incidents", path)
    assert store.counts()["incidents"] == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100000000", "1973-03-03 09:46:40+00:00"),  # the first one accepted
        ("1700000000", "2023-11-14 22:13:20+00:00"),
        ("1e9", "2001-09-09 01:46:40+00:00"),
        ("1700000000.5", "2023-11-14 22:13:20.500000+00:00"),
    ],
)
def test_epoch_seconds_in_the_range_load(store, tmp_path, text, expected):
    ingest_file(store, "incidents", write_csv(tmp_path / "e.csv", [incident(1, text)]))
    assert str(store.query("SELECT opened_at FROM incidents").opened_at[0]) == expected


def test_a_year_or_a_basic_iso_date_is_a_date_not_a_number(store, tmp_path):
    rows = [incident(1, "2024"), incident(2, "20240501")]
    ingest_file(store, "incidents", write_csv(tmp_path / "e.csv", rows), assume_tz="UTC")
    got = store.query("SELECT opened_at FROM incidents ORDER BY incident_id").opened_at
    assert [str(t) for t in got] == ["2024-01-01 00:00:00+00:00", "2024-05-01 00:00:00+00:00"]


def test_cli_epoch_message_is_one_line_naming_file_row_and_column(tmp_path, capsys):
    path = write_csv(tmp_path / "epochneg.csv", [incident(1, "-1700000000")])
    assert main(["--db", str(tmp_path / "rr.duckdb"), "ingest", "incidents", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: column opened_at: row 1: '-1700000000' is a number outside" in err


# -- impossible links -----------------------------------------------------------------------------
def test_a_deployment_reverting_itself_is_refused(store, tmp_path):
    rows = [deployment(1, "2025-01-01T00:00:00Z"), deployment(7, "2025-01-02T00:00:00Z", kind="rollback",
                                                              reverts_deployment_id="d7")]  # fmt: skip
    with pytest.raises(InputError, match=r"d\.csv: row 2: column reverts_deployment_id: 'd7' is the row's own"):
        ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows))
    assert store.counts()["deployments"] == 0


def test_a_rollback_finished_before_what_it_reverts_in_the_same_file_is_refused(store, tmp_path):
    rows = [deployment(1, "2025-03-04T17:56:00Z"), deployment(2, "2020-01-01T00:00:00Z", kind="rollback",
                                                              reverts_deployment_id="d1")]  # fmt: skip
    path = write_csv(tmp_path / "d.csv", rows)
    message = r"row 2: column reverts_deployment_id: 'd2' finished 2020-01-01T00:00Z, before the deployment it reverts"
    with pytest.raises(InputError, match=message + r" \('d1', finished 2025-03-04T17:56Z"):
        ingest_file(store, "deployments", path)
    assert store.counts()["deployments"] == 0
    rows[1]["finished_at"] = "2025-03-04T19:05:00Z"  # after it: a rollback
    assert ingest_file(store, "deployments", write_csv(tmp_path / "d.csv", rows)).warnings == ()


def test_links_that_look_wrong_against_the_store_load_with_a_warning(store, tmp_path):
    ingest_file(store, "deployments", write_csv(tmp_path / "tags.csv", [deployment(1, "2025-03-04T17:56:00Z")]))
    rows = [deployment(2, "2020-01-01T00:00:00Z", kind="rollback", reverts_deployment_id="d1"),
            deployment(3, "2025-06-01T00:00:00Z", kind="rollback", reverts_deployment_id="nope")]  # fmt: skip
    loaded = ingest_file(store, "deployments", write_csv(tmp_path / "x.csv", rows))
    assert loaded == 2 and store.counts()["deployments"] == 3
    unknown, early = loaded.warnings
    assert early.startswith(f"{tmp_path / 'x.csv'}: 1 rollback(s) finished before the deployment they revert: "
                            "column reverts_deployment_id (row 1: d1 finished 2025-03-04T17:56Z")  # fmt: skip
    assert "1 deployment(s) revert a deployment the store does not know" in unknown and "row 2: 'nope'" in unknown
    incidents = [incident(1, "2025-01-01T00:00:00Z", cause_deployment_id="d1"),
                 incident(2, "2025-04-01T00:00:00Z", cause_deployment_id="d1"),
                 incident(3, "2025-04-01T00:00:00Z", cause_deployment_id="gone")]  # fmt: skip
    loaded = ingest_file(store, "incidents", write_csv(tmp_path / "i.csv", incidents))
    assert loaded == 3 and len(loaded.warnings) == 2
    unknown, late = loaded.warnings  # in the order of the checks
    assert "1 incident(s) name a cause that finished after they opened: column cause_deployment_id (row 1: d1 " \
           "finished 2025-03-04T17:56Z, the incident opened 2025-01-01T00:00Z)" in late  # fmt: skip
    assert "1 incident(s) name a cause the store does not know" in unknown and "row 3: 'gone'" in unknown


def test_many_warnings_show_three_rows_and_count_the_rest(store, tmp_path):
    rows = [incident(i, "2025-01-01T00:00:00Z", cause_deployment_id=f"x{i}") for i in range(1, 6)]
    (line,) = ingest_file(store, "incidents", write_csv(tmp_path / "i.csv", rows)).warnings
    assert line.count("row ") == 3 and line.endswith("; and 2 more)") and ": 5 incident(s)" in line


def test_cli_prints_warnings_on_stderr_and_in_json(tmp_path, capsys):
    db = str(tmp_path / "rr.duckdb")
    path = write_csv(tmp_path / "d.csv", [deployment(1, "2025-01-01T00:00:00Z", kind="rollback",
                                                     reverts_deployment_id="nope")])  # fmt: skip
    assert main(["--db", db, "ingest", "deployments", str(path)]) == 0
    captured = capsys.readouterr()
    assert "loaded 1 deployments row" in captured.out
    assert f"warning: {path}: 1 deployment(s) revert a deployment the store does not know" in captured.err
    assert main(["--db", db, "ingest", "deployments", str(path), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["rows"] == 1 and len(payload["warnings"]) == 1


def test_the_same_links_warn_when_the_deployment_is_loaded_after_what_names_it(store, tmp_path):
    """In either order: a rollback or an incident loaded first, the deployment it names finishing later."""
    rollback = [deployment(9, "2020-01-01T00:00:00Z", kind="rollback", reverts_deployment_id="d1")]
    assert len(ingest_file(store, "deployments", write_csv(tmp_path / "yank.csv", rollback)).warnings) == 1  # unknown
    ingest_file(store, "incidents", write_csv(tmp_path / "i.csv", [
        incident(1, "2024-06-05T00:00:00Z", cause_deployment_id="d1")]))  # fmt: skip
    tags = [deployment(1, "2025-03-04T17:56Z"), deployment(2, "2025-03-05T00:00Z")]
    loaded = ingest_file(store, "deployments", write_csv(tmp_path / "tags.csv", tags))
    reverted, caused = loaded.warnings
    assert reverted.endswith("1 deployment(s) finished after a rollback that reverts them: column finished_at "
                             "(row 1: d1 finished 2025-03-04T17:56Z, d9 finished 2020-01-01T00:00Z)")  # fmt: skip
    assert caused.endswith(
        "1 deployment(s) finished after an incident naming them as its cause opened: column finished_at "
        "(row 1: d1 finished 2025-03-04T17:56Z, i1 opened 2024-06-05T00:00Z)"
    )
    quiet = ingest_file(store, "deployments", write_csv(tmp_path / "ok.csv", [deployment(1, "2019-12-31T00:00Z")]))
    assert quiet.warnings == ()


def test_an_abbreviated_root_cause_that_several_commits_start_with_loads_with_a_warning(store, tmp_path):
    """pytest's history holds 54e08b72304… (2020) and 54e08b729f1… (2019): an incident of 2020 naming '54e08b7'
    was linked without a word to the 2019 release that shipped the other commit. 7 hex digits collide about
    once in 20,000 commits, so the warning names the rows and asks for more of the sha."""
    a, b, c = "54e08b72304908b0cddb1ec68c297815cbd7f757", "54e08b729f1edc042ef1beaf92bffd8db13c684b", "9" * 40
    at = pd.Timestamp("2020-01-01", tz="UTC")
    store.upsert("commits", pd.DataFrame([{"repo": "r", "sha": s, "committed_at": at, "authored_at": at, "seq": i,
                                           "parents": []} for i, s in enumerate((a, b, c))]))  # fmt: skip
    rows = [incident(1, "2025-01-01T00:00:00Z", cause_sha="54E08B7"), incident(2, "2025-01-01T00:00:00Z",
            cause_sha=a[:11]), incident(3, "2025-01-01T00:00:00Z", cause_sha="9999999"),
            incident(4, "2025-01-01T00:00:00Z", cause_sha=b)]  # fmt: skip
    loaded = ingest_file(store, "incidents", write_csv(tmp_path / "i.csv", rows))
    assert loaded == 4
    [warning] = loaded.warnings
    assert warning == (
        f"{tmp_path / 'i.csv'}: 1 incident(s) name an abbreviated root-cause commit that several commits start with "
        "(write more of it): column cause_sha (row 1: '54E08B7' starts 2 commits, e.g. 54e08b723049 and "
        "54e08b729f1e)"
    )
