"""The demo's store reproduces its model through the README's own commands."""

import json

import numpy as np


def test_readme_train_on_the_demo_store_reproduces_the_demo_model(tmp_path, monkeypatch):
    from releaserisk.cli import main
    from releaserisk.demo import _DemoRun, _write_settings
    from releaserisk.gate import load_scorer
    from releaserisk.labels import training_frame
    from releaserisk.store import open_store

    base = tmp_path / "data" / "demo"
    base.mkdir(parents=True)
    db = base / "releaserisk.duckdb"
    run = _DemoRun(base, tmp_path / "reports", db, _write_settings(base, db))
    run.simulate("healthy", 7, 20)
    run.ingest()
    run.label()
    run.train()
    assert "label_horizon_days = 14" in (base / "releaserisk.toml").read_text()
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the README's command, run from anywhere: settings come with the store
    monkeypatch.delenv("RELEASERISK_LABEL_HORIZON_DAYS", raising=False)
    out = tmp_path / "again.skops"
    assert main(["--db", str(db), "train", "--out", str(out), "--format", "json"]) == 0
    demo, demo_meta = load_scorer(run.model_path)
    again, again_meta = load_scorer(out)
    assert again_meta["n_train"] == demo_meta["n_train"]
    assert again_meta["evaluation"]["auc"] == demo_meta["evaluation"]["auc"]
    with open_store(db, read_only=True) as store:
        frame = training_frame(store, settings=run.settings)
    assert np.allclose(demo.predict_proba(frame), again.predict_proba(frame))
    assert json.dumps(demo_meta["repositories"][0]["roots"]) == json.dumps(again_meta["repositories"][0]["roots"])
