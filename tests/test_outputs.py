"""What the faces write where a user reads it: CSV for spreadsheets, text for terminals, the README's example."""

import csv
import io

import pytest

from releaserisk.cli import main
from releaserisk.escape import CSV_FORMULA_STARTS
from tests.test_dora import dep, load

HOSTILE_TITLES = ['=HYPERLINK("http://evil","x")', "+SUM(1)", "@cmd", "-2+3+cmd|' /C calc'!A0", "invoice\u202efdp.exe",
                  "a\r=1+1", "\x1b[2Jwiped"]  # fmt: skip


@pytest.fixture
def hostile_db(store):
    load(
        store,
        commits=[("c1", "2024-01-01T00:00Z"), ("c2", "2024-01-08T00:00Z")],
        deployments=[dep(1, "2024-01-01T12:00Z"), dep(2, "2024-01-08T12:00Z", service="=svc()")],
        changes=[("d1", "c1"), ("d2", "c2")],
        incidents=[{"incident_id": f"i{k}", "service": "api", "opened_at": f"2024-01-0{k + 1}T06:00Z",
                    "resolved_at": f"2024-01-0{k + 1}T08:30Z", "title": title}
                   for k, title in enumerate(HOSTILE_TITLES)],
    )  # fmt: skip
    db = str(store.path)
    store.close()
    return db


def _cells(out: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(out, newline="")))  # a bare \r outside quotes is an error here


def _formula(cell: str) -> bool:
    return bool(cell) and cell[0] in CSV_FORMULA_STARTS


@pytest.mark.parametrize(
    "args",
    [
        ["dora", "--detail", "incidents"],
        ["dora", "--detail", "deployments"],
        ["dora", "--by", "service"],
        ["dora", "--by", "service", "--compare", "dora,fourkeys"],
    ],
)
def test_no_csv_cell_a_spreadsheet_would_run_as_a_formula(hostile_db, capsys, args):
    assert main(["--db", hostile_db, *args, "--since", "2024-01-01", "--until", "2024-01-15", "--format", "csv"]) == 0
    rows = _cells(capsys.readouterr().out)
    assert len({len(row) for row in rows}) == 1  # no row split at a carriage return
    text_cells = [cell for row in rows for cell in row if cell and not cell.lstrip("-").replace(".", "").isdigit()]
    assert not [cell for cell in text_cells if _formula(cell)]
    if args[1:] == ["--detail", "incidents"]:
        titles = [row[rows[0].index("title")] for row in rows[1:]]
        assert sorted(t.removeprefix("'") for t in titles) == sorted(HOSTILE_TITLES)  # shown as text, not changed


def test_text_output_shows_bidi_and_control_characters_as_escapes(hostile_db, capsys):
    assert (
        main(["--db", hostile_db, "dora", "--detail", "incidents", "--since", "2024-01-01", "--until", "2024-01-15"])
        == 0
    )
    out = capsys.readouterr().out
    assert "invoice\\u202efdp.exe" in out and "\\x1b[2Jwiped" in out
    assert "\u202e" not in out and "\x1b" not in out and "\r" not in out


def test_error_lines_show_a_quoted_values_bidi_characters_as_escapes(hostile_db, capsys):
    assert main(["--db", hostile_db, "dora", "--since", "2024\u202e-01-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "\\u202e" in err and "\u202e" not in err and err.count("\n") == 1


def _blocks(text: str, language: str) -> list[str]:
    import re

    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_the_readmes_python_examples_run(tmp_path, monkeypatch, capsys):
    """Every ```python block of the README runs as written, on a small store with the files it names."""
    from pathlib import Path

    import pandas as pd

    import releaserisk as rr
    from releaserisk.ingest.tabular import ingest_file
    from releaserisk.simulation import simulate

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = _blocks(readme, "python")
    assert blocks, "the README has no Python example"
    # the files the example names: rr.duckdb, path/to/repo (ingested as "repo"), canary.csv, canary.toml
    sim = simulate(tmp_path / "path" / "to", seed=3, weeks=30, services=1)  # over the default 180-day label horizon
    with rr.open_store(tmp_path / "rr.duckdb") as store:
        rr.ingest_git(store, sim.repo)
        for kind in ("services", "deployments", "incidents"):
            frame = pd.read_csv(sim.files[kind])
            if "repo" in frame:
                frame["repo"] = "repo"
            frame.to_csv(tmp_path / f"{kind}.csv", index=False)
            ingest_file(store, kind, tmp_path / f"{kind}.csv")
        rr.label_changes(store, "repo")
    metrics = pd.read_csv(sim.files["metrics"])
    metrics[metrics["analysis_id"] == metrics["analysis_id"].iloc[0]].to_csv(tmp_path / "canary.csv", index=False)
    (tmp_path / "canary.toml").write_text(
        next(block for block in _blocks(readme, "toml") if block.startswith("[judge]")), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    for number, code in enumerate(blocks):
        namespace = {"__name__": f"readme_example_{number}"}
        exec(compile(code, f"README.md python block {number + 1}", "exec"), namespace)
        if "store" in namespace:
            namespace["store"].close()
    out = capsys.readouterr().out
    assert out.startswith("DORA metrics (dora) 2026-01-01 → 2026-04-01") and "verdict" in out.lower()


def test_flag_releases_without_any_flag_change_are_no_data_not_zero(hostile_db, capsys):
    import json

    window = ["--since", "2024-01-01", "--until", "2024-01-15"]
    assert main(["--db", hostile_db, "dora", *window, "--count-flag-releases"]) == 0
    out = capsys.readouterr().out
    assert "flag releases        no data (no flag changes ingested)" in out and "0 (0 failed)" not in out
    assert "the store has no flag changes" in out
    assert main(["--db", hostile_db, "dora", *window, "--count-flag-releases", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["summary"][0]
    assert row["flag_releases"] is None and row["releases"] is None and row["change_failure_rate_with_flags"] is None


def test_flag_releases_with_a_flag_log_read_as_every_other_rate(tmp_path, capsys):
    from tests.test_cli_flags import DATA

    db = str(tmp_path / "s.duckdb")
    (tmp_path / "d.csv").write_text(
        "deployment_id,service,environment,sha,status,finished_at\n"
        f"d1,payments,production,{'a' * 40},success,2024-06-01T08:30:00Z\n"
    )
    (tmp_path / "i.csv").write_text(
        "incident_id,service,opened_at,resolved_at\ni1,payments,2024-06-01T10:05:00Z,2024-06-01T11:00:00Z\n"
    )
    for kind, path in (("deployments", tmp_path / "d.csv"), ("incidents", tmp_path / "i.csv")):
        assert main(["--db", db, "ingest", kind, str(path)]) == 0
    assert main(["--db", db, "ingest", "flags", str(DATA / "flags.csv")]) == 0
    capsys.readouterr()
    assert main(["--db", db, "dora", "--count-flag-releases"]) == 0
    out = capsys.readouterr().out
    assert "flag releases        2 (1 failed); with deployments 3, failure rate 33.3 %" in out
    assert "kill switch          median" in out and "(n " in out and "no flag changes" not in out


def test_small_nits_name_what_is_wrong_and_read_as_the_rest(hostile_db, capsys):
    from releaserisk.dora import dora_metrics
    from releaserisk.errors import InputError
    from releaserisk.report import iso_week
    from releaserisk.store import open_store

    with pytest.raises(SystemExit) as exit_:
        main(["--db", hostile_db, "dora", "--compare", "dora,bogus"])
    assert exit_.value.code == 2
    assert "no profile 'bogus'" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"2026 has 53 ISO weeks \(2026-W01 to 2026-W53\), got '2026-W60'"):
        iso_week("2026-W60")
    with pytest.raises(InputError, match="2025 has 52 ISO weeks"):
        iso_week("2025-W53")
    with pytest.raises(InputError, match="week must look like 2026-W47"):
        iso_week("2026-47")
    # one deployment in 20 years: the rate and its interval are small, not "0.00–0.00/week"
    with open_store(hostile_db, read_only=True) as store:
        text = dora_metrics(store, "2004-01-01", "2024-01-02").summary()
    line = next(line for line in text.splitlines() if line.strip().startswith("deployments"))
    assert "0.00096/week (1 deployment; 95 % CI 0.000024–0.01/week)" in line
    with open_store(hostile_db, read_only=True) as store:  # no deployment: the upper bound is 3.7 over 1,043 weeks
        text = dora_metrics(store, "2004-01-01", "2024-01-01").summary()
    assert "0.00/week (0 deployments; 95 % CI 0.00–0.0035/week)" in text


def test_freq_gives_text_and_csv_their_periods_and_leaves_the_default_alone(hostile_db, capsys):
    import json

    from releaserisk.dora import dora_metrics
    from releaserisk.store import open_store

    window = ["dora", "--by", "service", "--since", "2024-01-01", "--until", "2024-01-15"]
    assert main(["--db", hostile_db, *window]) == 0
    plain = capsys.readouterr().out
    assert "per week" not in plain and "2024-W01" not in plain
    assert main(["--db", hostile_db, *window, "--freq", "week"]) == 0
    weekly = capsys.readouterr().out
    assert weekly.startswith(plain.rstrip("\n")) and "per week (each against the week before" in weekly
    with open_store(hostile_db, read_only=True) as store:
        result = dora_metrics(store, "2024-01-01", "2024-01-15", by="service")
        said = result.describe("deploys_per_week", group="api", period="2024-W02")
    assert f"    2024-W02\n      deployments          {said}\n" in weekly  # the api block's second week
    assert "— not a significant change from 1.00/week (1 deployment)" in said
    assert main(["--db", hostile_db, *window, "--freq", "month"]) == 0
    assert "per month" in capsys.readouterr().out
    assert main(["--db", hostile_db, *window, "--format", "csv"]) == 0
    assert len(_cells(capsys.readouterr().out)) == 1 + 2  # a row per group, as before
    assert main(["--db", hostile_db, *window, "--freq", "week", "--format", "csv"]) == 0
    rows = _cells(capsys.readouterr().out)
    assert rows[0][:2] == ["group", "period"] and [r[1] for r in rows[1:]] == ["2024-W01", "2024-W02"] * 2
    assert "deploys_per_week_change_p_value" in rows[0]
    assert main(["--db", hostile_db, *window, "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["by_period"]) == 4  # json: weekly periods, with or without --freq
