"""The flag commands and the gate's rollback safety on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from releaserisk.cli import main

DATA = Path(__file__).parent / "ingest" / "data" / "flags"


def test_ingest_flags_each_format_and_reload(tmp_path, capsys):
    db = str(tmp_path / "s.duckdb")
    for fmt, name in (("launchdarkly", "launchdarkly_auditlog.json"), ("unleash", "unleash_events.json"),
                      ("flagsmith", "flagsmith_auditlog.json"), ("csv", "flags.csv")):  # fmt: skip
        assert main(["--db", db, "ingest", "flags", str(DATA / name), "--format", fmt, "--output", "json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert payload["format"] == fmt and payload["loaded"] > 0
    assert main(["--db", db, "ingest", "flags", str(DATA / "flags.csv")]) == 0
    out = capsys.readouterr()
    assert "3 flag change(s) from csv" in out.out


def test_bad_flag_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"items": 3}', encoding="utf-8")
    code = main(["--db", str(tmp_path / "s.duckdb"), "ingest", "flags", str(bad), "--format", "launchdarkly"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "'items' is not a list" in err


def test_flags_reports(tmp_path, capsys):
    db = str(tmp_path / "s.duckdb")
    assert main(["--db", db, "ingest", "flags", str(DATA / "unleash_events.json"), "--format", "unleash"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "flags", "stale", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["stale_flag_days"] == 30 and payload["rows"] == []  # search-v2 is archived
    assert main(["--db", db, "flags", "causes", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("incident_id,")
    assert main(["--db", db, "flags", "kill-switch"]) == 0
    assert "kill-switch time: median no data, n=0" in capsys.readouterr().out


@pytest.fixture
def gate_repo(git_repo, tmp_path):
    from releaserisk.ingest.git import ingest_git
    from releaserisk.model import RiskModel, save_model
    from releaserisk.store import open_store

    git_repo.write("app.py", "x = 1\n")
    for i in range(12):
        git_repo.write(f"src/m{i}.py", "\n".join(f"v{j} = {j}" for j in range(i + 3)) + "\n")
        git_repo.commit(f"add module {i}")
    git_repo.write("migrations/0042.sql", "ALTER TABLE users DROP COLUMN email;\n")
    git_repo.commit("drop email")
    db = tmp_path / "g.duckdb"
    with open_store(db) as store:
        ingest_git(store, git_repo.path, name="shop")
        frame = store.query("SELECT * FROM change_features WHERE repo = 'shop'")
    model = RiskModel(estimator="logistic").fit(frame, frame["la"] > 8)  # big changes buggy: the 1-line one is low
    save_model(model, tmp_path / "m.skops", {"model_id": "t"})
    return git_repo, db, tmp_path / "m.skops"


def test_score_json_carries_rollback_safe(gate_repo, capsys):
    repo, db, model = gate_repo
    args = ["--db", str(db), "score", "HEAD~1..HEAD", "--repo", str(repo.path), "--name", "shop", "--model", str(model),
            "--threshold", "0.99"]  # fmt: skip
    assert main([*args, "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["rollback_safe"] is False
    assert payload["rollback"]["reasons"] == ["drops column users.email in migrations/0042.sql"]
    assert payload["rollout"]["rollback"] == "forward-fix only; use expand/contract"
    assert main(args) == 0
    assert "rollback: UNSAFE" in capsys.readouterr().out
    assert main(["--db", str(db), "score", "HEAD~2..HEAD~1", "--repo", str(repo.path), "--name", "shop", "--model",
                 str(model), "--threshold", "0.99", "--format", "json"]) in (0, 1)  # fmt: skip
    assert json.loads(capsys.readouterr().out)["rollback_safe"] is True  # no migration in that commit


def test_unsafe_rollback_can_fail_the_gate(gate_repo, capsys, monkeypatch):
    repo, db, model = gate_repo
    monkeypatch.setenv("RELEASERISK_UNSAFE_ROLLBACK_GATE", "fail")
    code = main(["--db", str(db), "score", "HEAD~1..HEAD", "--repo", str(repo.path), "--name", "shop", "--model",
                 str(model), "--threshold", "0.99", "--format", "github"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "::error" in out and "rollback unsafe" in out


def test_dora_counts_flag_releases_on_request(tmp_path, capsys):
    import pandas as pd

    db = str(tmp_path / "s.duckdb")
    deployments = tmp_path / "d.csv"
    deployment = {"deployment_id": ["d1"], "service": ["payments"], "environment": ["production"], "sha": ["a" * 40],
                  "status": ["success"], "finished_at": ["2024-06-01T08:30:00Z"]}  # fmt: skip
    pd.DataFrame(deployment).to_csv(deployments, index=False)
    incidents = tmp_path / "i.csv"
    pd.DataFrame({"incident_id": ["i1"], "service": ["payments"], "opened_at": ["2024-06-01T10:05:00Z"],
                  "resolved_at": ["2024-06-01T11:00:00Z"]}).to_csv(incidents, index=False)  # fmt: skip
    for kind, path in (("deployments", deployments), ("incidents", incidents)):
        assert main(["--db", db, "ingest", kind, str(path)]) == 0
    assert main(["--db", db, "ingest", "flags", str(DATA / "flags.csv")]) == 0
    capsys.readouterr()
    assert main(["--db", db, "dora", "--format", "json"]) == 0
    assert "flag_releases" not in json.loads(capsys.readouterr().out)["summary"][0]
    assert main(["--db", db, "dora", "--count-flag-releases", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["summary"][0]
    # the 50 % ramp at 10:00, 5 minutes before the incident, is its cause, not d1 (95 minutes before)
    assert (row["flag_releases"], row["failed_flag_releases"], row["releases"]) == (2, 1, 3)
    assert main(["--db", db, "dora", "--count-flag-releases", "--detail", "incidents", "--format", "json"]) == 0
    incident = json.loads(capsys.readouterr().out)["rows"][0]
    assert incident["link_method"] == "flag_change" and incident["cause_gap_minutes"] == 5.0
