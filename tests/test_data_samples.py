"""The committed sample inputs in data/: each loads with the README's command, and data/README.md names its columns."""

import re
from pathlib import Path

import pandas as pd
import pytest

from releaserisk.cli import main
from releaserisk.store import open_store

DATA = Path(__file__).resolve().parents[1] / "data"

#: file -> (``ingest`` kind, store table)
SAMPLES = {
    "services.csv": ("services", "services"),
    "deployments.csv": ("deployments", "deployments"),
    "incidents.csv": ("incidents", "incidents"),
    "pull_requests.csv": ("pull-requests", "pull_requests"),
    "metrics.csv": ("metrics", "metric_samples"),
}


def test_every_sample_is_listed_and_every_listed_file_exists():
    assert {p.name for p in DATA.glob("*.csv")} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_readme_names_every_column_and_the_command_that_loads_it(name):
    readme = (DATA / "README.md").read_text()
    kind, _ = SAMPLES[name]
    assert f"releaserisk --db sample.duckdb ingest {kind} data/{name}" in readme
    section = readme.split(f"### `{name}`")[1].split("###")[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert documented == set(pd.read_csv(DATA / name, nrows=0).columns), name


def test_every_sample_loads_through_the_cli_in_the_readme_order(tmp_path, capsys):
    db = tmp_path / "sample.duckdb"
    for name, (kind, table) in SAMPLES.items():
        assert main(["--db", str(db), "ingest", kind, str(DATA / name)]) == 0, capsys.readouterr().err
        with open_store(db, read_only=True) as store:
            assert store.counts()[table] == len(pd.read_csv(DATA / name)), name
    again = [main(["--db", str(db), "ingest", kind, str(DATA / name)]) for name, (kind, _) in SAMPLES.items()]
    assert again == [0] * len(SAMPLES)  # re-loading changes nothing
    with open_store(db, read_only=True) as store:
        assert store.counts()["deployments"] == len(pd.read_csv(DATA / "deployments.csv"))


def test_the_samples_make_a_week_of_dora_metrics_and_a_canary_verdict(tmp_path, capsys):
    import releaserisk as rr

    with open_store(tmp_path / "s.duckdb") as store:
        for name, (kind, _) in SAMPLES.items():
            if kind != "metrics":
                rr.ingest_file(store, kind, DATA / name)
        dora = rr.dora_metrics(store, "2026-11-16", "2026-11-23")
        assert rr.latest_deployment_week(store) == "2026-W47"
    row = dora.frame.iloc[0]
    assert row["deployments"] == 6 and row["failed_deployments"] == 3  # an incident, a rollback, a hotfix
    verdict = rr.judge(rr.load_samples(DATA / "metrics.csv"))
    assert verdict.verdict == "Fail"  # the sample canary is slower and fails more: never a pass
