"""Notebooks and the weekly report: execution, sections, escaping, a real browser."""

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from releaserisk.cli import main
from releaserisk.errors import InputError
from releaserisk.report import NOTEBOOKS, iso_week, render_notebook, render_weekly
from releaserisk.store import open_store

SECTIONS = ["The five DORA numbers", "Twelve-week trends", "production deployments",
            "Change failures and incidents", "The riskiest changes", "Canary outcomes", "Release-process findings",
            "Data"]  # fmt: skip


def last_week(db) -> str:
    with open_store(db, read_only=True) as store:
        last = store.execute("SELECT max(finished_at) FROM deployments").fetchone()[0]
    iso = last.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


@pytest.fixture(scope="module")
def rendered(simulated, tmp_path_factory):
    """The weekly report of a store holding a hostile commit message, rendered once."""
    out = tmp_path_factory.mktemp("report")
    db = out / "s.duckdb"
    shutil.copy(simulated["db"], db)
    week = last_week(db)
    _, monday, _ = iso_week(week)
    with open_store(db) as store:
        when = pd.Timestamp(monday) + pd.Timedelta(days=1)
        store.upsert(
            "commits",
            pd.DataFrame(
                {
                    "repo": ["demo"],
                    "sha": ["f" * 40],
                    "parents": [[]],
                    "author": ["<b>mallory</b>"],
                    "committed_at": [when],
                    "message": ["<script>alert(1)</script> tweak"],
                    "seq": [10**6],
                }
            ),
        )
        store.upsert("risk_scores", pd.DataFrame({"repo": ["demo"], "sha": ["f" * 40], "model_id": ["m"],
                                                  "probability": [0.99], "band": ["high"],
                                                  "explanation": [json.dumps(["<img src=x onerror=alert(2)>"])],
                                                  "scored_at": [pd.Timestamp.now(tz="UTC")]}))  # fmt: skip
    paths = render_weekly(db, week, out_dir=out)
    return {"html": Path(paths["html"]).read_text(), "paths": paths, "db": db, "week": week}


def test_report_has_every_section_and_charts(rendered):
    html = rendered["html"]
    for section in SECTIONS:
        assert section in html, section
    assert html.count("<img") >= 3
    assert "def " not in html and "weekly_sections(" not in html  # code cells excluded
    assert Path(rendered["paths"]["notebook"]).exists()


def test_user_strings_are_escaped(rendered):
    html = rendered["html"]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x onerror" not in html and "<b>mallory</b>" not in html


def test_failure_rate_note_only_without_incidents(rendered):
    assert "the store has no incidents" not in rendered["html"]  # the simulated store has them


def test_missing_data_is_shown_as_missing(simulated, tmp_path):
    db = tmp_path / "empty.duckdb"
    open_store(db).close()
    html = Path(render_weekly(db, "2025-W10", out_dir=tmp_path)["html"]).read_text()
    assert "No data." in html and "no data" in html
    assert "the store has no incidents" in html  # says why the failure rate is no data


@pytest.mark.parametrize("name", ["explore_history", "train_risk_model", "canary_analysis"])
def test_analyst_notebooks_execute(simulated, tmp_path, name):
    html, executed = render_notebook(NOTEBOOKS / f"{name}.ipynb", {"db": str(simulated["db"])}, tmp_path, name)
    assert html.stat().st_size > 0
    outputs = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # each draws at least one chart


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        book = json.loads(path.read_text())
        tags = [c.get("metadata", {}).get("tags", []) for c in book["cells"]]
        assert any("parameters" in t for t in tags), path.name
        for cell in book["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


def test_cli_report_json_and_errors(rendered, tmp_path, capsys):
    assert main(["--db", str(rendered["db"]), "report", "weekly", "--week", rendered["week"], "--out",
                 str(tmp_path), "--format", "json"]) == 0  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    assert payload["html"].endswith(f"weekly-{rendered['week']}.html") and Path(payload["html"]).exists()
    assert main(["--db", str(rendered["db"]), "report", "weekly", "--week", "last-week"]) == 2
    assert "week must look like" in capsys.readouterr().err
    assert main(["--db", str(rendered["db"]), "report", "weekly", "--week", "2999-W01"]) == 2
    assert "week 2999-W01 has not started yet (today is " in capsys.readouterr().err
    with pytest.raises(InputError):
        render_weekly(tmp_path / "missing.duckdb", "2025-W01", out_dir=tmp_path)


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not _chromium(), reason="Debian chromium is not installed (.ci/run installs it)")
def test_report_renders_in_a_real_browser(rendered, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--window-size=1280,2400", f"--screenshot={shot}",
         Path(rendered["paths"]["html"]).as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.exists(), proc.stderr[-2000:]
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors
    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert high - low > 100  # not blank
    dark = sum(image.histogram()[:128])
    assert dark > 0.005 * image.width * image.height  # text and charts drew something


def test_same_store_and_week_give_the_same_html(rendered, tmp_path):
    again = Path(render_weekly(rendered["db"], rendered["week"], out_dir=tmp_path)["html"]).read_text()
    assert again == rendered["html"]


def test_notebook_kernel_listens_on_private_unix_sockets(tmp_path):
    import nbformat

    book = nbformat.v4.new_notebook()
    book.cells = [
        nbformat.v4.new_code_cell(
            "import json, os\nfrom ipykernel.connect import get_connection_info\n"
            "print(json.loads(get_connection_info())['transport'], os.readlink('/proc/self/fd/2'))"
        ),
    ]
    nbformat.write(book, tmp_path / "probe.ipynb")
    _, executed = render_notebook(tmp_path / "probe.ipynb", {}, tmp_path / "out", "probe")
    transport, stderr = nbformat.read(executed, as_version=4).cells[-1].outputs[0]["text"].split()
    assert transport == "ipc"  # TCP would let any local user reach the kernel that reads the store
    # the kernel process's own log stays off the terminal: a shutdown race printed
    # "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel" after successful reports
    assert stderr == "/dev/null"


def test_data_section_dates_every_way_of_ingesting(store, git_repo):
    from datetime import UTC, datetime

    from releaserisk.canary.data import store_samples
    from releaserisk.ingest.git import ingest_git, ingest_git_tags
    from releaserisk.report import _data_section

    git_repo.write("a.txt", "1\n")
    git_repo.git("tag", "1.0", git_repo.commit("one"))
    ingest_git(store, git_repo.path, name="lib")
    ingest_git_tags(store, git_repo.path, service="lib", name="lib")
    samples = pd.DataFrame({"metric": ["latency"], "arm": ["canary"], "ts": [pd.Timestamp("2024-01-01", tz="UTC")],
                            "value": [1.0]})  # fmt: skip
    store_samples(store, samples, analysis_id="a1")
    store.record_ingest("github:o/r:pulls", datetime.now(UTC), {"rows": 0})
    deployed = _data_section(store).set_index("table").loc["deployments", "last ingest"]
    store.record_ingest("github:o/r:issues", datetime.now(UTC), {"rows": 0})  # bug issues: not deployments
    section = _data_section(store).set_index("table")
    assert section.loc["deployments", "last ingest"] == deployed
    for table in ("commits", "deployments", "metric_samples", "pull_requests"):
        assert pd.notna(section.loc[table, "last ingest"]), table
    assert pd.isna(section.loc["incidents", "last ingest"]) and section.loc["incidents", "gap"] == "no data"
    assert section.loc["deployments", "rows"] == 1 and section.loc["pull_requests", "gap"] == "no data"
    sources = store.query("SELECT source FROM ingest_runs ORDER BY finished_at").source.tolist()
    assert sources[:3] == ["git:lib", "git-tags:lib", "metrics:a1"]


def test_headline_rows_read_in_their_own_units():
    from releaserisk.report import headline_table

    headline = pd.DataFrame({
        "metric": ["Deployment frequency (per week)", "Change failure rate", "Rework rate"],
        "this week": [0.0, 0.2857, float("nan")], "previous week": [1.0, 0.0769, float("nan")],
        "change": [-1.0, 0.2088, float("nan")], "tier": ["low", "low", ""],
    })  # fmt: skip
    table = headline_table(headline).set_index("metric")
    assert table.loc["Deployment frequency (per week)"].tolist() == ["0.00", "1.00", "-1.00", "low"]
    assert table.loc["Change failure rate"].tolist() == ["28.6 %", "7.7 %", "+20.9 pp", "low"]
    assert table.loc["Rework rate"].tolist() == ["—", "—", "—", ""]


def test_the_lag_section_lists_the_last_four_weeks_where_commits_waited(rendered):
    from releaserisk.report import weekly_sections

    with open_store(rendered["db"], read_only=True) as store:
        lag = weekly_sections(store, rendered["week"]).lag
        everything = store.query("SELECT DISTINCT service, environment FROM deployments")
    assert set(lag["environment"]) <= {"dev", "staging"} and lag["week"].str.fullmatch(r"\d{4}-W\d{2}").all()
    # only rows where commits waited are listed; the quiet ones are counted
    assert ((lag["commits_ahead"] > 0) | (lag["never_promoted"] > 0)).all()
    pairs = everything[everything["environment"] != "production"].shape[0]
    assert len(lag) + lag.attrs["quiet"] == 4 * pairs  # four weeks of every service and stage


def test_the_lag_table_keeps_rows_where_commits_waited_and_counts_the_rest():
    from releaserisk.report import _waiting

    lag = pd.DataFrame({"week": ["2026-W01"] * 3, "service": ["a", "b", "c"], "environment": ["staging"] * 3,
                        "commits_ahead": [0, 3, 0], "never_promoted": [0, 0, 1]})  # fmt: skip
    waiting = _waiting(lag)
    assert waiting["service"].tolist() == ["b", "c"] and waiting.attrs["quiet"] == 1
    assert _waiting(lag.iloc[:0]).attrs["quiet"] == 0


def test_html_tables_print_counts_whole_and_shares_with_decimals():
    from releaserisk.report import html_table

    table = html_table(pd.DataFrame({"kind": ["<b>x</b>", "y"], "deployments": [3.0, 12.0],
                                     "skipped_staging_rate": [1.0, 0.0], "hours": [1.5, float("nan")]}))  # fmt: skip
    assert "<td>3</td>" in table and "<td>12</td>" in table  # whole counts
    assert "<td>1.00</td>" in table and "<td>0.00</td>" in table  # a share of 1 is not a count of 1
    assert "<td>1.50</td>" in table and "<td>—</td>" in table and "&lt;b&gt;x&lt;/b&gt;" in table


def test_iso_week_allows_the_current_week_and_refuses_one_not_started():
    wednesday = datetime(2026, 11, 25, 15, tzinfo=UTC)  # in 2026-W48
    assert iso_week(None, today=wednesday)[0] == "2026-W47"  # default: the last complete week
    label, monday, end = iso_week("2026-w48", today=wednesday)  # under way: a partial week is real
    assert (label, monday, end) == ("2026-W48", datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    with pytest.raises(InputError, match="week 2026-W49 has not started yet"):
        iso_week("2026-W49", today=wednesday)
