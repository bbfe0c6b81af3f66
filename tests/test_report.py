"""Notebooks and the weekly report: execution, sections, escaping, a real browser."""

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
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
    paths = render_weekly(db, week, out_dir=out, by="service")
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
    assert "no incidents have been ingested" not in rendered["html"]


@pytest.fixture(scope="module")
def empty_report(tmp_path_factory):
    """The report of a week in a store without any data."""
    out = tmp_path_factory.mktemp("empty")
    db = out / "empty.duckdb"
    open_store(db).close()
    return Path(render_weekly(db, "2025-W10", out_dir=out)["html"])


EMPTY_SENTENCES = [
    "No production deployments in these twelve weeks: there is no trend to draw.",
    "No production deployments this week.",
    "No production deployment failed this week.",
    "Unknown: no incidents have been ingested, so none can be listed; an empty list here would not mean a quiet "
    "week. Ingest them with 'releaserisk ingest incidents FILE', 'ingest pagerduty', 'ingest jira' or 'ingest github'.",
    "No change in the store has a risk score: run 'releaserisk score' in CI (or 'releaserisk demo').",
    "No canary analysis has samples in this week.",
    "No production deployment in these weeks shipped new changes: no batch sizes to compare.",
    "No rollback is recorded in the store: the rollback path is untried.",
    "No change moved from one environment to the next in these weeks.",
    "No commit waited in a pre-production stage at the end of these weeks.",
]


def test_missing_data_is_shown_as_missing(empty_report):
    html = empty_report.read_text()
    for sentence in EMPTY_SENTENCES:
        assert sentence in html, sentence
    assert "<img" not in html  # no empty axes
    assert "no data" in html and "the store has no incidents" in html  # says why the failure rate is no data


def test_missing_risk_scores_are_said_once(empty_report):
    """A store without any risk score: the section said it three times ("0 scored changes committed. The ten
    riskiest; …", "No risk scores for this week's changes: …", "No change committed this week has a risk
    score."); the count and one sentence saying why are enough."""
    html = empty_report.read_text()
    assert "0 scored changes committed. The gate fails at 50.0 %." in html
    assert "The ten riskiest" not in html
    assert "No change committed this week has a risk score." not in html
    assert html.count("has a risk score") == 1


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
                 str(tmp_path), "--format", "json", "--by", "service"]) == 0  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    assert payload["html"].endswith(f"weekly-{rendered['week']}.html") and Path(payload["html"]).exists()
    assert payload["title"] == f"Release health — week {rendered['week']} — demo" and payload["note"] == ""
    assert "<h2>Per service</h2>" in Path(payload["html"]).read_text()
    with pytest.raises(SystemExit):
        main(["--db", str(rendered["db"]), "report", "weekly", "--by", "team"])
    assert "invalid choice: 'team'" in capsys.readouterr().err
    assert main(["--db", str(rendered["db"]), "report", "weekly", "--week", "last-week"]) == 2
    assert "week must look like" in capsys.readouterr().err
    assert main(["--db", str(rendered["db"]), "report", "weekly", "--week", "2999-W01"]) == 2
    assert "week 2999-W01 has not started yet (today is " in capsys.readouterr().err
    with pytest.raises(InputError):
        render_weekly(tmp_path / "missing.duckdb", "2025-W01", out_dir=tmp_path)


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Page(HTMLParser):
    """What a reader sees in the browser's DOM: title, header cells, body cells, empty-state sentences."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self.headers, self.cells, self.empty = "", [], [], []
        self._into: list | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        classes = dict(attrs).get("class") or ""
        target = {"title": "title", "th": self.headers, "td": self.cells}.get(tag)
        if tag == "p" and "rr-empty" in classes:
            target = self.empty
        if target is not None:
            self._into, self._text = target, ""

    def handle_data(self, data):
        if self._into is not None:
            self._text += data

    def handle_endtag(self, tag):
        if self._into is None or tag not in ("title", "th", "td", "p"):
            return
        if self._into == "title":
            self.title = self._text.strip()
        else:
            self._into.append(self._text.strip())
        self._into = None


def _browser(html_path: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={profile}", *flags, html_path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _dom(html_path: Path, profile: Path) -> _Page:
    """The page as Chromium built it (``--dump-dom``), parsed."""
    proc = _browser(html_path, profile, "--dump-dom")
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    page = _Page()
    page.feed(proc.stdout)
    return page


SNAKE_CASE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")
MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d+")


@pytest.mark.skipif(not _chromium(), reason="Debian chromium is not installed (.ci/run installs it)")
def test_report_renders_in_a_real_browser(rendered, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    proc = _browser(Path(rendered["paths"]["html"]), tmp_path / "profile", "--enable-logging=stderr", "--v=0",
                    "--window-size=1280,2400", f"--screenshot={shot}")  # fmt: skip
    assert shot.exists(), proc.stderr[-2000:]
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors
    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert high - low > 100  # not blank
    dark = sum(image.histogram()[:128])
    assert dark > 0.005 * image.width * image.height  # text and charts drew something

    page = _dom(Path(rendered["paths"]["html"]), tmp_path / "profile")
    assert page.title == f"Release health — week {rendered['week']} — demo"
    assert page.headers and page.cells
    assert not [h for h in page.headers if SNAKE_CASE.match(h)]  # words, not column names
    assert not [c for c in page.cells if SNAKE_CASE.match(c)]
    assert not [c for c in page.headers + page.cells if MICROSECONDS.search(c)]  # timestamps to the minute
    assert not [c for c in page.cells if re.fullmatch(r"0\.\d+", c)]  # shares read as percentages


@pytest.mark.skipif(not _chromium(), reason="Debian chromium is not installed (.ci/run installs it)")
def test_empty_sections_say_so_in_the_browser(empty_report, tmp_path):
    page = _dom(empty_report, tmp_path / "profile")
    assert page.title == "Release health — week 2025-W10 — empty"
    for sentence in EMPTY_SENTENCES:
        assert sentence in page.empty, sentence


def test_same_store_and_week_give_the_same_html(rendered, tmp_path):
    again = Path(render_weekly(rendered["db"], rendered["week"], out_dir=tmp_path, by="service")["html"]).read_text()
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
    for table in ("commits", "deployments", "canary samples", "pull requests"):
        assert pd.notna(section.loc[table, "last ingest"]), table
    assert pd.isna(section.loc["incidents", "last ingest"]) and section.loc["incidents", "gap"] == "no data"
    assert section.loc["deployments", "rows"] == 1 and section.loc["pull requests", "gap"] == "no data"
    sources = store.query("SELECT source FROM ingest_runs ORDER BY finished_at").source.tolist()
    assert sources[:3] == ["git:lib", "git-tags:lib", "metrics:a1"]
    # the labels row counts bug-introducing changes, not the table's rows (a blamed fix has a marker row too)
    sha = store.query("SELECT sha FROM commits").sha[0]
    rows = {"repo": "lib", "sha": [sha, sha, "f" * 40], "method": ["szz", "revert", "szz_fix"],
            "buggy": [True, True, False], "fix_sha": "f" * 40}  # fmt: skip
    store.upsert("labels", pd.DataFrame(rows))
    assert _data_section(store).set_index("table").loc["bug-introducing changes", "rows"] == 1


def test_headline_rows_read_in_their_own_units():
    from releaserisk.report import headline_table

    headline = pd.DataFrame({
        "metric": ["Deployment frequency", "Change lead time, median", "Change failure rate", "Rework rate"],
        "this week": [0.0, 32.16, 0.2857, float("nan")], "previous week": [1.0, 0.51, 0.0769, float("nan")],
        "change": [-1.0, 31.65, 0.2088, float("nan")], "tier": ["low", "high", "low", ""],
    })  # fmt: skip
    table = headline_table(headline).set_index("metric")
    assert table.loc["Deployment frequency"].tolist() == ["0.0 per week", "1.0 per week", "-1.0 per week", "low"]
    assert table.loc["Change lead time, median"].tolist() == ["32.2 h", "31 min", "+31.6 h", "high"]
    assert table.loc["Change failure rate"].tolist() == ["28.6 %", "7.7 %", "+20.9 pp", "low"]
    assert table.loc["Rework rate"].tolist() == ["—", "—", "—", ""]


def test_the_lag_section_lists_the_last_four_weeks_where_commits_waited(rendered):
    from releaserisk.report import weekly_sections

    with open_store(rendered["db"], read_only=True) as store:
        lag = weekly_sections(store, rendered["week"]).lag
        everything = store.query("SELECT DISTINCT service, environment FROM deployments")
    assert set(lag["environment"]) <= {"dev", "staging"} and lag["week"].str.fullmatch(r"\d{4}-W\d{2}").all()
    # only rows where commits waited are listed; the quiet ones are counted
    assert (lag["commits_ahead"] > 0).all()
    pairs = everything[everything["environment"] != "production"].shape[0]
    assert len(lag) + lag.attrs["quiet"] == 4 * pairs  # four weeks of every service and stage


def test_the_lag_table_keeps_rows_where_commits_waited_and_counts_the_rest():
    from releaserisk.report import _waiting

    lag = pd.DataFrame({"week": ["2026-W01"] * 3, "service": ["a", "b", "c"], "environment": ["staging"] * 3,
                        "commits_ahead": [0, 3, 0], "never_promoted": [0, 0, 1]})  # fmt: skip
    waiting = _waiting(lag)
    # a stage deployment that was never promoted but left no commit waiting is not a row of 0 commits
    assert waiting["service"].tolist() == ["b"] and waiting.attrs["quiet"] == 2
    assert _waiting(lag.iloc[:0]).attrs["quiet"] == 0


def test_iso_week_allows_the_current_week_and_refuses_one_not_started():
    wednesday = datetime(2026, 11, 25, 15, tzinfo=UTC)  # in 2026-W48
    assert iso_week(None, today=wednesday)[0] == "2026-W47"  # default: the last complete week
    label, monday, end = iso_week("2026-w48", today=wednesday)  # under way: a partial week is real
    assert (label, monday, end) == ("2026-W48", datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    with pytest.raises(InputError, match="week 2026-W49 has not started yet"):
        iso_week("2026-W49", today=wednesday)


ROOT = NOTEBOOKS.parent


def test_the_page_title_names_the_week_and_the_organisation(rendered):
    assert f"<title>Release health — week {rendered['week']} — demo</title>" in rendered["html"]
    assert rendered["paths"]["title"] == f"Release health — week {rendered['week']} — demo"


def test_every_section_says_its_window_and_n(rendered):
    from releaserisk.formatting import period

    _, monday, end = iso_week(rendered["week"])
    html = rendered["html"]
    week = period(monday, end)
    for noun in ("production deployment", "failed deployment", "incident", "canary analys", "scored change"):
        assert re.search(rf"{re.escape(week)}: \d+ {noun}", html), noun
    twelve = period(monday - pd.Timedelta(weeks=11), end)
    assert html.count(f"{twelve}: ") >= 2  # the trends and the findings cover twelve weeks, and say so


def test_incidents_name_deployments_the_deployments_table_shows(rendered):
    from releaserisk.formatting import html_table
    from releaserisk.report import weekly_sections

    with open_store(rendered["db"], read_only=True) as store:
        opened = store.execute("SELECT max(opened_at) FROM incidents").fetchone()[0].isocalendar()
        s = weekly_sections(store, f"{opened.year}-W{opened.week:02d}")
    assert "deployment_id" in s.deployments and "deployment_id" in s.failures
    this_week = s.incidents[s.incidents["deployment_id"].isin(s.deployments["deployment_id"])]
    assert len(this_week)
    shown = html_table(s.deployments)
    assert all(f">{d}<" in shown for d in this_week["deployment_id"])


def test_deployments_say_how_many_of_their_changes_were_scored(rendered, tmp_path):
    """A riskiest change of "—" must read as unknown risk: the scored count stands beside it."""
    from releaserisk.formatting import html_table
    from releaserisk.report import weekly_sections

    shutil.copy(rendered["db"], tmp_path / "copy.duckdb")
    with open_store(tmp_path / "copy.duckdb") as store:
        s = weekly_sections(store, rendered["week"])
        store.execute("DELETE FROM risk_scores")
        unscored = weekly_sections(store, rendered["week"])
    shown = s.deployments[s.deployments["changes"] > 0]
    assert len(shown) and (shown["scored_changes"] <= shown["changes"]).all()
    assert (shown["scored_changes"] > 0).any()
    assert (unscored.deployments["scored_changes"] == 0).all() and unscored.deployments["max_change_risk"].isna().all()
    assert ">scored</th>" in html_table(unscored.deployments)


def test_batch_sizes_account_for_every_production_deployment(rendered):
    from releaserisk.report import weekly_sections

    with open_store(rendered["db"], read_only=True) as store:
        s = weekly_sections(store, rendered["week"])
    assert s.batch["deployments"].sum() == s.window_deployments > 0
    none_new = s.batch[s.batch["bucket"] == "none new"]
    assert len(none_new) == 1 and none_new["deployments"].iloc[0] == s.batch.attrs["unbatched"] > 0
    assert "shipped no new change" in rendered["html"]


def test_without_a_week_the_latest_week_with_production_deployments_is_reported(rendered):
    from releaserisk.report import latest_deployment_week, weekly_sections

    with open_store(rendered["db"], read_only=True) as store:
        latest = latest_deployment_week(store)
        s = weekly_sections(store)
    assert latest == rendered["week"] == s.week
    assert s.week_note == f"No week was given: this is {latest}, the latest week with a production deployment."


def test_without_a_week_a_store_without_production_deployments_is_an_error(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    open_store(db).close()
    assert main(["--db", str(db), "report", "weekly", "--out", str(tmp_path)]) == 2
    assert "no successful deployment to a production environment (production, prod)" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.html"))


def test_unknown_services_are_an_error_listing_the_known_ones(rendered, tmp_path, capsys):
    argv = ["--db", str(rendered["db"]), "report", "weekly", "--week", rendered["week"], "--out", str(tmp_path)]
    assert main([*argv, "--services", "svc-a", "svc-z"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown service svc-z (known: svc-a, svc-b, svc-c)"
    assert not list(tmp_path.glob("*.html"))


def test_per_service_blocks_put_the_service_needing_attention_first(rendered):
    from releaserisk.report import weekly_sections

    with open_store(rendered["db"], read_only=True) as store:
        s = weekly_sections(store, rendered["week"], by="service")
        with pytest.raises(InputError, match="by must be one of service"):
            weekly_sections(store, rendered["week"], by="team")
    blocks = s.services
    assert sorted(b.service for b in blocks) == ["svc-a", "svc-b", "svc-c"]
    keys = [b.attention for b in blocks]
    assert keys == sorted(keys, reverse=True)
    failed = s.failures.groupby("service").size()
    assert [len(b.failures) for b in blocks] == [int(failed.get(b.service, 0)) for b in blocks]
    for block in blocks:
        assert block.numbers["metric"].tolist() == [
            "Deployment frequency", "Change lead time, median", "Change failure rate",
            "Failed deployment recovery time, median", "Rework rate",
        ]  # fmt: skip
        assert len(block.pending) <= 5 and block.summary().startswith(block.service)
    html = rendered["html"]
    positions = [html.index(f"<h3>{b.service}</h3>") for b in blocks]
    assert "<h2>Per service</h2>" in html and positions == sorted(positions)


def test_band_and_probability_agree_in_the_riskiest_changes(rendered):
    from releaserisk.gate import band
    from releaserisk.report import weekly_sections

    with open_store(rendered["db"], read_only=True) as store:
        risky = weekly_sections(store, rendered["week"]).risky_changes
    shown = risky["probability"].str.removesuffix(" %").astype(float) / 100
    assert [band(p, 0.5) for p in shown] == risky["band"].tolist()


def test_project_paths_resolve_against_the_repository_root(tmp_path):
    from releaserisk.report import project_path

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    wanted = tmp_path / "data" / "demo" / "releaserisk.duckdb"
    assert project_path("data/demo/releaserisk.duckdb", start=tmp_path) == wanted
    assert project_path("data/demo/releaserisk.duckdb", start=tmp_path / "notebooks") == wanted
    assert project_path(wanted, start=Path("/")) == wanted  # absolute as given
    assert not (tmp_path / "data").exists()  # resolving creates nothing


def test_a_store_opened_read_only_creates_nothing(tmp_path):
    from releaserisk.errors import StoreError

    missing = tmp_path / "data" / "demo" / "releaserisk.duckdb"
    with pytest.raises(StoreError, match="does not exist"):
        open_store(missing, read_only=True)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("cwd", [ROOT, ROOT / "notebooks"], ids=["from-root", "from-notebooks"])
def test_notebooks_run_with_papermill_from_the_root_and_from_notebooks(simulated, tmp_path, cwd):
    import papermill

    from releaserisk.report import _kernel_name

    relative = os.path.relpath(simulated["db"], ROOT)  # a path relative to the repository root
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / "canary_analysis.ipynb"), str(out), parameters={"db": relative},
                               kernel_name=_kernel_name(), progress_bar=False, cwd=str(cwd))  # fmt: skip
    outputs = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_headline_numbers_say_their_n_interval_and_whether_the_change_is_one():
    """With DORA's intervals and week-over-week tests, the five numbers read as a manager needs them."""
    from releaserisk.report import _headline, headline_table

    def week(period, deployments, failed, rate, low, high, p, significant, tiers):
        return {"group": "all", "period": period, "deploys_per_week": float(deployments),
                "deploys_per_week_tier": "elite", "deploys_per_week_n": deployments,
                "deploys_per_week_ci_low": deployments * 0.55, "deploys_per_week_ci_high": deployments * 1.7,
                "deploys_per_week_change_p_value": 0.8, "deploys_per_week_change_significant": False,
                "lead_time_median_hours": 32.16, "lead_time_median_hours_tier": "high",
                "lead_time_median_hours_n": 40, "lead_time_median_hours_ci_low": 20.0,
                "lead_time_median_hours_ci_high": np.nan, "lead_time_median_hours_change_p_value": 0.004,
                "lead_time_median_hours_change_significant": True,
                "change_failure_rate": rate, "change_failure_rate_tier": "low", "change_failure_rate_n": deployments,
                "change_failure_rate_ci_low": low, "change_failure_rate_ci_high": high,
                "change_failure_rate_change_p_value": p, "change_failure_rate_change_significant": significant,
                "change_failure_rate_tiers": tiers,
                "recovery_median_hours": np.nan, "recovery_median_hours_tier": "no data", "recovery_median_hours_n": 0,
                "rework_rate": rate, "rework_rate_n": deployments, "failed_deployments": failed}  # fmt: skip

    trend = pd.DataFrame([
        week("2025-W52", 13, 1, 1 / 13, 0.014, 0.333, np.nan, pd.NA, "elite, high, medium, low"),
        week("2026-W01", 14, 4, 4 / 14, 0.117, 0.547, 0.21, False, "low"),
    ])  # fmt: skip
    table = headline_table(_headline(trend)).set_index("metric")
    assert table.columns.tolist() == ["this week", "95 % interval", "previous week", "change", "tier"]
    cfr = table.loc["Change failure rate"]
    assert cfr["this week"] == "28.6 % (4 of 14 deployments)" and cfr["95 % interval"] == "11.7 – 54.7 %"
    assert cfr["change"] == "+20.9 pp — not a significant change (p = 0.210)" and cfr["tier"] == "low"
    lead = table.loc["Change lead time, median"]
    assert lead["this week"] == "32.2 h (40 changes)" and lead["95 % interval"] == "20.0 h – unbounded"
    assert lead["change"] == "0 min — a significant change (p = 0.004)"
    assert table.loc["Failed deployment recovery time, median"].tolist() == ["—", "—", "—", "—", "no data"]
    assert table.loc["Deployment frequency", "this week"] == "14.0 per week (14 deployments)"
    previous = headline_table(_headline(trend.iloc[:1])).set_index("metric")
    assert previous.loc["Change failure rate", "tier"] == "elite or high or medium or low"  # the interval spans all
    # the 40 changes came in 3 releases: the line says so (the interval counts the releases)
    trend["lead_time_deployments"] = [3, 3]
    lead = headline_table(_headline(trend)).set_index("metric").loc["Change lead time, median"]
    assert lead["this week"] == "32.2 h (40 changes in 3 deployments)"
    trend["lead_time_median_hours_ci_low"] = np.nan  # too few releases for either end
    lead = headline_table(_headline(trend)).set_index("metric").loc["Change lead time, median"]
    assert lead["95 % interval"] == "unbounded with 3 deployments"


def test_without_a_source_of_failures_outcomes_and_failed_deployments_are_unknown(tmp_path):
    """Release tags only: every deployment's outcome said 'ok' and the section '0 failed deployments. No
    production deployment failed this week.' beside a change failure rate of no data; both rest on nothing."""
    from releaserisk.report import weekly_sections

    db = tmp_path / "tags.duckdb"
    with open_store(db) as store:
        store.upsert("deployments", pd.DataFrame({
            "deployment_id": ["v1", "v2", "v3"], "service": "lib", "repo": "lib", "environment": "production",
            "sha": ["a" * 40, "b" * 40, "c" * 40], "status": "success", "kind": "regular",
            "finished_at": pd.to_datetime(["2025-03-04T10:00Z", "2025-03-05T10:00Z", "2025-02-25T10:00Z"]),
        }))  # fmt: skip
        s = weekly_sections(store, "2025-W10", by="service")
    assert s.deployments["outcome"].tolist() == ["unknown", "unknown"] and s.failures.empty
    assert s.failures_unknown.startswith("Unknown: nothing in the store can show whether any of this week's 2")
    (block,) = s.services
    assert block.failures_unknown and block.summary().startswith("lib: failed deployments unknown this week")
    assert s.batch["failures"].isna().all() and s.hotfixes["failures"].isna().all()
    # the notebook's cells for these sections, run in-process (a full render costs a kernel start)
    from IPython.display import HTML

    from releaserisk import formatting as fmt
    from releaserisk.report import html_table, text

    shown = []
    cells = ["".join(c["source"]) for c in json.loads((NOTEBOOKS / "weekly_report.ipynb").read_text())["cells"]]
    for cell in [c for c in cells if "<h3>Failed deployments</h3>" in c or "for block in s.services" in c]:
        exec(cell, {"s": s, "fmt": fmt, "HTML": HTML, "html_table": html_table, "text": text,
                    "display": lambda h: shown.append(h.data)})  # fmt: skip
    html = "".join(shown) + html_table(s.deployments)
    assert html.count(">unknown<") == 2 and ">ok<" not in html
    assert "0 failed deployments" not in html and "No production deployment failed this week." not in html
    assert html.count("Unknown: nothing in the store can show whether") == 2  # the section and the service block
    # no incident ingested at all: the incidents section says so, not "No incident was opened this week."
    assert s.incidents_unknown.startswith("Unknown: no incidents have been ingested")
    assert "Unknown: no incidents have been ingested, so none can be listed" in html
    assert "No incident was opened this week." not in html
