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
