"""`releaserisk canary --mode/--history` and `canary plan` from the command line."""

import json

import numpy as np
import pandas as pd
import pytest

from releaserisk.cli import main


def write_arms(path, baseline, canary, start="2026-03-02 10:00"):
    ts = pd.date_range(start, periods=len(baseline), freq="min", tz="UTC")
    rows = pd.DataFrame({
        "metric": "lat", "arm": np.repeat(["baseline", "canary"], len(baseline)),
        "ts": np.r_[ts, ts].astype(str), "value": np.r_[baseline, canary],
    })  # fmt: skip
    rows.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("mode", ["kayenta", "robust", "sequential"])
def test_every_mode_reports_itself_and_its_evidence(tmp_path, capsys, mode):
    rng = np.random.default_rng(1)
    data = write_arms(tmp_path / "s.csv", rng.normal(100, 5, 60), rng.normal(200, 5, 60))
    code = main(["canary", "--data", str(data), "--mode", mode, "--looks", "6", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    verdict = out["verdict" if mode != "sequential" else "decision"]
    assert out["mode"] == mode and code == 1 and verdict in ("Fail", "RollBack")
    if mode == "robust":
        assert out["metrics"][0]["n_effective"] > 1 and out["metrics"][0]["paired"] is True
        assert "interval" in out["metrics"][0]["reason"]


@pytest.mark.parametrize("mode", ["kayenta", "robust", "sequential"])
def test_no_samples_with_replace_and_must_have_data_is_never_a_pass(tmp_path, capsys, mode):
    empty = tmp_path / "empty.csv"
    empty.write_text("metric,arm,ts,value\n")
    config = tmp_path / "c.toml"
    config.write_text('[metrics.lat]\nnan_strategy = "replace"\nmust_have_data = true\n')
    code = main(["canary", "--config", str(config), "--data", str(empty), "--mode", mode, "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code != 0 and out["verdict" if mode != "sequential" else "decision"] in ("Fail", "NoData")


def test_history_file_calibrates_the_robust_judge(tmp_path, capsys):
    rng = np.random.default_rng(2)
    ts = pd.date_range("2026-02-20", "2026-03-02", freq="5min", tz="UTC", inclusive="left")
    history = tmp_path / "history.csv"
    pd.DataFrame({"metric": "lat", "ts": ts.astype(str), "value": rng.normal(100, 5, len(ts))}).to_csv(
        history, index=False
    )
    data = write_arms(tmp_path / "s.csv", rng.normal(100, 5, 24), rng.normal(100, 5, 24))
    code = main(["canary", "--data", str(data), "--history", str(history), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["metrics"][0]["history_windows"] >= 49
    assert main(["canary", "--data", str(data), "--history", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_canary_plan(tmp_path, capsys):
    rng = np.random.default_rng(3)
    baseline = tmp_path / "b.csv"
    ts = pd.date_range("2026-03-01", periods=300, freq="min", tz="UTC")
    pd.DataFrame({"metric": "lat", "ts": ts.astype(str), "value": rng.normal(100, 20, 300)}).to_csv(
        baseline, index=False
    )
    needed = {}
    for effect in ("1.1", "1.2", "1.5"):
        assert main(["canary", "plan", "--baseline", str(baseline), "--effect", effect, "--format", "json"]) == 0
        plans = json.loads(capsys.readouterr().out)["plans"]
        needed[effect] = {p["mode"]: p["samples_per_arm"] for p in plans}
    for mode in ("kayenta", "robust", "sequential"):
        assert needed["1.1"][mode] > needed["1.2"][mode] > needed["1.5"][mode]
    assert main(["canary", "plan", "--baseline", str(baseline)]) == 0
    assert "minutes" in capsys.readouterr().out
    assert main(["canary", "plan", "--baseline", str(baseline), "--effect", "1"]) == 2
    assert "effect" in capsys.readouterr().err


def test_looks_split_alpha_in_robust_mode_and_must_be_positive(tmp_path, capsys):
    rng = np.random.default_rng(28)
    data = write_arms(tmp_path / "s.csv", rng.normal(100, 5, 60), rng.normal(102.5, 5, 60))
    assert main(["canary", "--data", str(data), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["looks"] == 1
    assert main(["canary", "--data", str(data), "--looks", "6", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["looks"] == 6
    with pytest.raises(SystemExit) as exit_:
        main(["canary", "--data", str(data), "--looks", "0"])
    assert exit_.value.code == 2 and "not at least 1" in capsys.readouterr().err
