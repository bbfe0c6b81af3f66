"""Risk model: time order, calibration, explanations, persistence, evaluation metrics."""

import numpy as np
import pandas as pd
import pytest

from releaserisk.errors import InputError, ModelError, ModelVersionError, UntrustedModelError
from releaserisk.features import KAMEI_FEATURES
from releaserisk.model import (
    RiskModel,
    evaluate_predictions,
    evaluate_time_split,
    load_model,
    read_feature_table,
    save_model,
)
from tests.conftest import shared_data


def synthetic(n=1500, seed=0):
    """Changes whose defect odds rise with size and fall with experience; a time column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.poisson(3, n).astype(float) for f in KAMEI_FEATURES})
    frame["la"] = rng.lognormal(3, 1.2, n).round()
    frame["ld"] = rng.lognormal(2, 1.2, n).round()
    frame["exp"] = rng.lognormal(3, 1.5, n).round()
    frame["fix"] = rng.integers(0, 2, n).astype(float)
    logit = -1.5 + 0.6 * np.log1p(frame["la"]) - 0.4 * np.log1p(frame["exp"]) - 0.5
    frame["bug"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["time"] = pd.date_range("2020-01-01", periods=n, freq="6h", tz="UTC")
    frame["effort"] = frame["la"] + frame["ld"]
    return frame


def test_fit_predict_and_estimator_conventions():
    frame = synthetic()
    model = RiskModel(estimator="logistic")
    assert model.get_params()["estimator"] == "logistic" and not hasattr(model, "estimator_")
    model.fit(frame, frame["bug"])
    p = model.predict_proba(frame)[:, 1]
    assert p.shape == (len(frame),) and (p > 0).all() and (p < 1).all()
    assert model.selected_ == "logistic" and set(model.validation_auc_) == {"logistic"}


def test_explanations_sum_to_the_linear_decision_function():
    frame = synthetic()
    model = RiskModel(estimator="logistic").fit(frame, frame["bug"])
    contributions, intercept = model.linear_contributions(frame.iloc[:20])
    raw = model.estimator_.decision_function(np.clip(frame.iloc[:20][list(KAMEI_FEATURES)].to_numpy(float), 0, None))
    assert np.allclose(contributions.sum(axis=1) + intercept, raw)
    top = model.explain(frame.iloc[:5])
    assert list(top.columns) == ["row", "rank", "feature", "value", "contribution"] and len(top) == 15
    assert (top[top["rank"] == 1]["feature"].isin(["la", "exp", "ld"])).all()


def test_calibration_improves_brier_on_held_back_data():
    frame = synthetic(3000, seed=2)
    cut = 2400
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    model = RiskModel(estimator="logistic").fit(train, train["bug"])
    uncalibrated = model.estimator_.predict_proba(np.clip(test[list(KAMEI_FEATURES)].to_numpy(float), 0, None))[:, 1]
    calibrated = model.predict_proba(test)[:, 1]
    brier = evaluate_predictions(test["bug"], calibrated, test["effort"])["brier"]
    brier_raw = evaluate_predictions(test["bug"], uncalibrated, test["effort"])["brier"]
    assert brier < brier_raw  # class weights push raw probabilities up; calibration brings them back


def test_time_split_never_shuffles(monkeypatch):
    frame = synthetic()
    seen = {}
    original = RiskModel.fit

    def spy(self, X, y):
        seen["last_train_time"] = X["time"].max()
        return original(self, X, y)

    monkeypatch.setattr(RiskModel, "fit", spy)
    result = evaluate_time_split(frame, split=0.8, estimator="logistic")
    test_start = frame["time"].iloc[int(len(frame) * 0.8)]
    assert seen["last_train_time"] < test_start
    assert result["n_train"] == 1200 and result["n_test"] == 300


def test_validation_slice_is_the_newest_rows():
    frame = synthetic()
    shuffled = frame.sample(frac=1.0, random_state=0)
    a = RiskModel(estimator="logistic").fit(frame, frame["bug"]).validation_auc_
    b = RiskModel(estimator="logistic").fit(shuffled, shuffled["bug"]).validation_auc_
    assert a != b  # the rows' order is the time order: the model must not reorder them


def test_save_load_round_trip_identical(tmp_path):
    frame = synthetic()
    model = RiskModel(estimator="auto").fit(frame, frame["bug"])
    path = save_model(model, tmp_path / "m.skops", {"repos": ["r"]})
    loaded, meta = load_model(path)
    assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert meta["repos"] == ["r"] and meta["features"] == list(KAMEI_FEATURES)


def test_untrusted_model_file_is_refused(tmp_path):
    import skops.io as sio

    from releaserisk.model import _MeanEnsemble

    class Evil(_MeanEnsemble):
        pass

    Evil.__module__ = "evil_module"
    sio.dump(Evil(), tmp_path / "evil.skops")
    with pytest.raises(UntrustedModelError, match="untrusted types"):
        load_model(tmp_path / "evil.skops")


def test_version_mismatch_and_missing_file(tmp_path):
    frame = synthetic()
    model = RiskModel(estimator="logistic").fit(frame, frame["bug"])
    path = save_model(model, tmp_path / "m.skops")
    import json

    import skops.io as sio

    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    meta = json.loads(loaded.metadata_)
    meta["versions"]["sklearn"] = "0.1.0"
    loaded.metadata_ = json.dumps(meta)
    sio.dump(loaded, tmp_path / "old.skops")
    with pytest.raises(ModelVersionError, match=r"0\.1\.0"):
        load_model(tmp_path / "old.skops")
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.skops")
    (tmp_path / "junk.skops").write_text("not a zip")
    with pytest.raises(ModelError, match="not a readable"):
        load_model(tmp_path / "junk.skops")


def test_single_class_and_bad_params():
    frame = synthetic().assign(bug=0)
    with pytest.raises(ModelError, match="single class"):
        RiskModel().fit(frame, frame["bug"])
    with pytest.raises(ModelError, match="estimator"):
        RiskModel(estimator="deep").fit(synthetic(), synthetic()["bug"])
    with pytest.raises(InputError, match="missing feature"):
        RiskModel().fit(synthetic().drop(columns="la"), synthetic()["bug"])


def test_effort_aware_metrics_by_hand():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.2, 0.1])
    effort = np.array([10, 10, 10, 70])
    m = evaluate_predictions(y, p, effort)
    # ranking by p/effort: rows 0,1,2,3; 20 % of effort (20 lines) reaches row 1: half the bugs
    assert m["recall_at_20_effort"] == pytest.approx(0.5)
    assert m["effort_at_20_recall"] == pytest.approx(0.1)
    assert m["auc"] == 0.75
    assert m["precision"] == 0.5 and m["recall"] == 0.5


def test_read_feature_tables_never_use_the_label_copy():
    zeng = read_feature_table(shared_data("jit/issta21/jdt.csv"))
    assert "__" not in zeng.columns and "Unnamed: 0" not in zeng.columns
    assert zeng["time"].is_monotonic_increasing
    kamei = read_feature_table(shared_data("jit/kamei/bugzilla.csv"))
    assert set(KAMEI_FEATURES) <= set(kamei.columns) and kamei["time"].is_monotonic_increasing


def test_read_feature_table_errors(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="bug"):
        read_feature_table(bad)
    with pytest.raises(InputError, match="no such file"):
        read_feature_table(tmp_path / "none.csv")


def test_cli_evaluate_dataset_json_and_errors(tmp_path, capsys):
    import json

    from releaserisk.cli import main

    path = tmp_path / "zeng.csv"
    frame = synthetic(600)
    frame.assign(date=frame["time"].astype("int64") // 10**9, entrophy=frame["entropy"]).drop(
        columns=["time", "entropy", "effort"]
    ).to_csv(path)
    assert main(["evaluate", "--dataset", str(path), "--format", "json", "--estimator", "logistic"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = {"auc", "f1", "precision", "recall", "brier", "ece", "popt", "n_train", "n_test"}
    expected |= {"recall_at_20_effort", "effort_at_20_recall", "positive_rate_train", "positive_rate_test"}
    assert expected <= set(out) and out["n_train"] == 480 and out["notes"] == []
    newest = frame.index >= 480  # most of the newest commits' fixes have not landed yet
    frame.loc[newest, "bug"] = frame.loc[newest, "bug"] * (np.arange(newest.sum()) % 4 == 0)
    frame.assign(date=frame["time"].astype("int64") // 10**9, entrophy=frame["entropy"]).drop(
        columns=["time", "entropy", "effort"]
    ).to_csv(path)
    assert main(["evaluate", "--dataset", str(path), "--estimator", "logistic"]) == 0
    assert "\nnote: the positive rate falls from" in capsys.readouterr().out
    assert main(["evaluate", "--dataset", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--db", str(tmp_path / "empty.duckdb"), "train"]) == 2
    assert "no repositories" in capsys.readouterr().err


def test_deployment_level_model_and_fallback(simulated, tmp_path):
    import shutil

    from releaserisk.features import DEPLOYMENT_FEATURES, deployment_batch_features
    from releaserisk.model import MIN_DEPLOYMENT_FAILURES, train_deployment_model
    from releaserisk.store import open_store

    db = tmp_path / "s.duckdb"
    shutil.copy(simulated["db"], db)
    with open_store(db) as store:
        frame = deployment_batch_features(store, ("production",), "staging")
    assert set(DEPLOYMENT_FEATURES) <= set(frame.columns) and frame["finished_at"].is_monotonic_increasing
    assert (frame["batch_size"] >= 0).all() and frame["any_defect"].between(0, 1).all()
    rng = np.random.default_rng(0)
    labelled = frame.assign(failed=rng.random(len(frame)) < 0.5 * frame["any_defect"] + 0.1)
    model, report = train_deployment_model(labelled, estimator="logistic")
    assert model is not None and report["failures"] >= MIN_DEPLOYMENT_FAILURES
    assert model.predict_proba(labelled).shape == (len(labelled), 2)
    few = labelled.assign(failed=False)
    few.loc[few.index[:3], "failed"] = True
    none, fallback = train_deployment_model(few)
    assert none is None and "aggregated change risk" in fallback["fallback"] and "fallback_auc" in fallback
    # the simulated history is scored; a note only if the model loses to the aggregated change risk
    loses = report["fallback_test_auc"] >= report["test_auc"]
    assert [n.startswith("on the newest 20 % of deployments") for n in report["notes"]] == ([True] if loses else [])
    # failures that follow the aggregated risk alone: the model cannot beat it, and says so
    follow = frame.assign(failed=frame["any_defect"] > frame["any_defect"].quantile(0.9))
    _, beaten = train_deployment_model(follow, estimator="logistic")
    assert beaten["fallback_test_auc"] == 1.0 and "prefer it" in beaten["notes"][-1]
    # unscored changes count as risk 0: the aggregated change risk then ranks nothing, say so
    unscored = labelled.assign(scored_changes=0, max_risk=0.0, mean_risk=0.0, any_defect=0.0)
    model, report = train_deployment_model(unscored, estimator="logistic")
    assert model is not None and "fallback_auc" not in report and "fallback_test_auc" not in report
    assert report["notes"][0].startswith("none of the deployed changes have a risk score")
    third = labelled.assign(scored_changes=labelled["batch_size"] // 3)  # whole changes: 24 % in all
    share = third["scored_changes"].sum() / third["batch_size"].sum()
    note = train_deployment_model(third, estimator="logistic")[1]["notes"][0]
    assert note.startswith(f"only {share:.0%} of the deployed changes have a risk score")


def test_cli_train_deployment_level(simulated, tmp_path, capsys):
    import json
    import shutil

    from releaserisk.cli import main

    db = tmp_path / "s.duckdb"
    shutil.copy(simulated["db"], db)
    code = main(["--db", str(db), "train", "--level", "deployment", "--out", str(tmp_path / "d.skops"),
                 "--format", "json"])  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["level"] == "deployment" and payload["deployments"] > 50
    assert ("path" in payload and (tmp_path / "d.skops").exists()) or "fallback" in payload


def test_cli_train_says_which_model_the_reported_auc_belongs_to(simulated, tmp_path, capsys, monkeypatch):
    import shutil

    import releaserisk.model
    from releaserisk.cli import main

    db = tmp_path / "s.duckdb"
    shutil.copy(simulated["db"], db)
    monkeypatch.setenv("RELEASERISK_LABEL_HORIZON_DAYS", "14")  # the simulated history is half a year
    args = ["--db", str(db), "train", "--estimator", "logistic", "--out", str(tmp_path / "m.skops")]
    assert main(args) == 0
    first, second = capsys.readouterr().out.splitlines()[:2]
    # one line: what was saved (fit on all rows) and what was measured (the procedure on the oldest rows)
    assert first.startswith("trained logistic model ") and " on all " in first and "-> " in first
    assert "its AUC is estimated by the same procedure fit on the oldest " in first and "(chose logistic)" in first
    assert second.startswith("size baseline (LA + LD, larger riskier) on the same ")
    # selection on the oldest 80 % may pick another family than selection on all rows
    real = releaserisk.model.evaluate_time_split
    monkeypatch.setattr(
        releaserisk.model, "evaluate_time_split", lambda *a, **k: {**real(*a, **k), "selected": "boosting"}
    )
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("trained logistic model ") and "(chose boosting): test AUC " in first


def test_a_test_slice_with_clearly_fewer_defects_gets_a_label_maturity_note():
    from releaserisk.model import label_maturity_notes

    flat = evaluate_time_split(synthetic(), estimator="logistic")
    assert flat["notes"] == []
    censored = synthetic()
    tail = censored.index >= 1200
    censored.loc[tail, "bug"] = censored.loc[tail, "bug"] * (np.arange(tail.sum()) % 3 == 0)  # two in three lost
    notes = evaluate_time_split(censored, estimator="logistic")["notes"]
    assert len(notes) == 1 and "positive rate falls from" in notes[0]
    # the exact binomial test: 18 defects in 100 against 30 % is significant at 1 % (p = 0.004), 25 is not
    assert label_maturity_notes([0] * 7 + [1] * 3, [1] * 18 + [0] * 82)
    assert not label_maturity_notes([0] * 7 + [1] * 3, [1] * 25 + [0] * 75)
    assert not label_maturity_notes([0, 0], [0, 0, 1])  # no defects before: nothing to compare


def test_rolling_origin_trains_only_on_earlier_months_and_tests_each_later_month():
    from releaserisk.model import rolling_origin

    frame = synthetic(1500)  # 6-hourly rows: Jan 2020 to early Jan 2021
    drifted = frame["time"] >= pd.Timestamp("2020-10-01", tz="UTC")
    # from October the relations flip: large changes by newcomers become the safe ones
    frame.loc[drifted, ["la", "exp"]] = 1e4 / (1 + frame.loc[drifted, ["la", "exp"]])
    table = rolling_origin(frame, warmup_months=6, max_age_months=3)
    months = frame["time"].dt.tz_localize(None).dt.to_period("M").astype(str)
    assert table["origin"].iloc[0] == "2020-07" and set(table["age_months"]) == {1, 2, 3}
    for row in table.itertuples():
        tested = (pd.Period(row.origin, "M") + row.age_months - 1).strftime("%Y-%m")
        assert row.n_test == (months == tested).sum()
        assert row.positive_rate == pytest.approx(frame.loc[months == tested, "bug"].mean())
    # a model trained before October ranks September well and October backwards; one that had
    # seen October (a leak) would not
    july = table[table["origin"] == "2020-07"].set_index("age_months")["auc"]
    assert july[3] > 0.65 and table[(table["origin"] == "2020-09") & (table["age_months"] == 2)]["auc"].item() < 0.4


def test_rolling_origin_rates_only_months_with_enough_of_each_class():
    from releaserisk import plots
    from releaserisk.model import auc_by_age, rolling_origin

    frame = synthetic(1500)
    months = frame["time"].dt.tz_localize(None).dt.to_period("M").astype(str)
    august = months == "2020-08"
    frame.loc[august, "bug"] = 0
    frame.loc[frame.index[august][:3], "bug"] = 1  # three buggy changes: an AUC of luck
    table = rolling_origin(frame, warmup_months=6, max_age_months=2)
    tested = table["origin"].map(lambda o: pd.Period(o, "M")) + table["age_months"] - 1
    in_august = tested.astype(str) == "2020-08"
    assert in_august.sum() == 2 and table.loc[in_august, "auc"].isna().all()
    assert table.loc[~in_august, "auc"].notna().all()
    loose = rolling_origin(frame, warmup_months=6, max_age_months=2, min_per_class=3)
    assert loose["auc"].notna().all()
    # a month weighs by its changes, and a month without an AUC not at all
    by_hand = pd.DataFrame({"age_months": [1, 1, 1, 2], "n_test": [100, 300, 50, 10], "auc": [0.6, 0.8, np.nan, 0.7]})
    assert auc_by_age(by_hand).to_dict() == pytest.approx({1: 0.75, 2: 0.7})
    unrated = by_hand.assign(auc=np.nan)
    assert "too few buggy changes" in plots.model_age_figure(unrated).axes[0].texts[0].get_text()


def test_cli_rolling_origin_and_dropped_rows_note(tmp_path, capsys):
    import json

    from releaserisk.cli import main

    frame = synthetic(1500)
    frame["date"] = (frame["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    frame = frame.drop(columns=["time", "effort"])
    frame.loc[[3, 700], "nuc"] = np.nan
    path = tmp_path / "zeng.csv"
    frame.to_csv(path, index=False)
    assert main(["evaluate", "--dataset", str(path), "--rolling", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["mean_auc_by_age"]) == {str(age) for age in range(1, 7)}
    assert out["notes"] == ["2 rows with an empty metric or label were left out of 1,500"]
    assert main(["evaluate", "--dataset", str(path), "--estimator", "logistic"]) == 0
    text = capsys.readouterr().out
    assert "n_train: 1198" in text and "note: 2 rows with an empty metric or label were left out" in text


def test_feature_rows_are_checked_before_scoring():
    frame = synthetic(400)
    model = RiskModel(estimator="logistic").fit(frame, frame["bug"])
    row = frame.iloc[:1].copy()
    for value, message in ((np.nan, "missing or infinite"), (np.inf, "missing or infinite")):
        with pytest.raises(InputError, match=message):
            model.predict_proba(row.assign(la=value))
    with pytest.raises(InputError, match="missing feature column\\(s\\): exp"):
        model.predict_proba(row.drop(columns=["exp"]))
    with pytest.raises(InputError, match="expected 14 feature columns"):
        model.predict_proba(np.zeros((1, 3)))
    # a negative age (clock skew between committers) scores as age 0
    assert model.predict_proba(row.assign(age=-5.0))[0, 1] == model.predict_proba(row.assign(age=0.0))[0, 1]


def test_calibration_table_by_hand_and_ece_is_its_weighted_gap():
    from releaserisk import plots
    from releaserisk.model import calibration_table, expected_calibration_error

    y, p = [0, 1, 1, 0, 1], [0.05, 0.15, 0.95, 0.99, 0.10]  # 0.10 falls in the 0.1-0.2 bin
    table = calibration_table(y, p)
    assert table["lower"].tolist() == [0.0, 0.1, 0.9] and table["n"].tolist() == [1, 2, 2]
    assert table["mean_predicted"].tolist() == pytest.approx([0.05, 0.125, 0.97])
    assert table["observed"].tolist() == [0.0, 1.0, 0.5]
    # |0 - 0.05| * 1/5 + |1 - 0.125| * 2/5 + |0.5 - 0.97| * 2/5
    assert expected_calibration_error(y, p) == pytest.approx(0.01 + 0.35 + 0.188)
    line = plots.reliability_figure(table, 0.548).axes[0].lines[1]
    assert line.get_xdata().tolist() == pytest.approx([5, 12.5, 97]) and line.get_ydata().tolist() == [0, 100, 50]
    empty = plots.model_age_figure(pd.DataFrame(columns=["origin", "age_months", "n_test", "positive_rate", "auc"]))
    assert "too short" in empty.axes[0].texts[0].get_text()


def _pairwise_auc_components(y, s):
    """The Mann-Whitney kernel written out pair by pair (DeLong et al. 1988, eq. 3-4)."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return kernel.mean(axis=1), kernel.mean(axis=0)


def test_delong_by_hand_and_against_its_pairwise_definition():
    from scipy.stats import norm

    from releaserisk.model import delong_test

    # two positives, two negatives: A ranks all four pairs right, B three of four
    # V10_B = (1, 0.5), V01_B = (0.5, 1): variance of the difference 0.125/2 + 0.125/2
    result = delong_test([1, 1, 0, 0], [0.8, 0.7, 0.6, 0.2], [0.9, 0.4, 0.5, 0.1])
    assert result["auc_p"] == 1.0 and result["auc_q"] == 0.75 and result["difference"] == 0.25
    assert result["se"] == pytest.approx(0.125**0.5) and result["z"] == pytest.approx(0.25 / 0.125**0.5)
    assert result["p_value"] == pytest.approx(0.4795001, abs=1e-6)
    # ties (a size ranking has many) and unequal class sizes, against the pairwise kernel
    rng = np.random.default_rng(4)
    y = (rng.random(60) < 0.3).astype(int)
    p = rng.integers(0, 5, 60) + 2 * y
    q = rng.integers(0, 3, 60) + y
    (a10, a01), (b10, b01) = _pairwise_auc_components(y, p), _pairwise_auc_components(y, q)
    m, n = y.sum(), (1 - y).sum()
    variance = (np.var(a10 - b10, ddof=1) / m) + (np.var(a01 - b01, ddof=1) / n)
    result = delong_test(y, p, q)
    assert result["auc_p"] == pytest.approx(a10.mean()) and result["auc_q"] == pytest.approx(b10.mean())
    assert result["se"] == pytest.approx(variance**0.5)
    assert result["p_value"] == pytest.approx(2 * norm.sf(abs(a10.mean() - b10.mean()) / variance**0.5))
    assert result["low"] == pytest.approx(result["difference"] - 1.959964 * result["se"])
    # the same ranking twice: no difference, nothing to test
    same = delong_test(y, p, 10 * p + 1)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_size_baseline_ranks_the_same_rows_by_lines_added_and_deleted():
    from releaserisk.model import size_baseline

    # sizes 3, 10, 40, 5, 100, 1 with bugs at 10 and 100: of 8 (bug, clean) pairs, 7 ranked right
    test = pd.DataFrame({"la": [1, 8, 30, 5, 90, 1], "ld": [2, 2, 10, 0, 10, 0], "bug": [0, 1, 0, 0, 1, 0]})
    perfect = np.array([0.1, 0.9, 0.2, 0.1, 0.8, 0.3])
    result = size_baseline(test, perfect)
    assert result["size_auc"] == 7 / 8 and result["auc_minus_size"] == 1 / 8
    assert result["size_auc_low"] <= 7 / 8 <= result["size_auc_high"]
    assert 0 < result["size_p_value"] < 1 and result["better_than_size"] is False  # 6 rows prove nothing
    assert size_baseline(test, test["la"] + test["ld"])["better_than_size"] is False  # size itself
    assert size_baseline(test, -(test["la"] + test["ld"]))["size_auc"] == 7 / 8


def test_a_model_no_better_than_size_says_so_and_is_advisory(tmp_path, capsys):
    import json

    from releaserisk.cli import main
    from releaserisk.model import advisory_reasons

    frame = synthetic(1000, seed=2)
    rng = np.random.default_rng(2)
    frame["bug"] = (rng.random(len(frame)) < 1 / (1 + np.exp(3 - 0.8 * np.log1p(frame["effort"])))).astype(int)
    path = tmp_path / "size.csv"  # defects follow size alone: no model can rank them better
    frame.assign(date=frame["time"].astype("int64") // 10**9).drop(columns=["time", "effort"]).to_csv(path)
    assert main(["evaluate", "--dataset", str(path), "--format", "json", "--estimator", "logistic"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["better_than_size"] is False and out["auc_minus_size_low"] < 0 < out["auc_minus_size_high"]
    assert out["size_auc"] > 0.6 and 0 < out["size_p_value"] <= 1
    assert main(["evaluate", "--dataset", str(path), "--estimator", "logistic"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("size baseline (LA + LD"))
    assert line.endswith("the model is not better than the size baseline") and "DeLong p = " in line
    reasons = advisory_reasons(out)
    assert any("not clearly better than ranking changes by size" in r for r in reasons)
    # one mechanism: the same evaluation shown better than size gates (no size reason)
    better = {**out, "better_than_size": True}
    assert not any("by size" in r for r in advisory_reasons(better))
    assert not any("by size" in r for r in advisory_reasons({k: v for k, v in out.items() if "size" not in k}))


def test_deployment_model_without_a_source_of_failures_says_unknown_not_0_failures(store):
    """Release tags only: no deployment's failure is known; '0 failed deployments (need 10)' rested on nothing."""
    from releaserisk.config import Settings
    from releaserisk.model import deployment_training_frame, train_deployment_model

    store.upsert("deployments", pd.DataFrame({
        "deployment_id": ["v1", "v2"], "service": "lib", "repo": "lib", "environment": "production",
        "sha": ["a" * 40, "b" * 40], "status": "success", "kind": "regular",
        "finished_at": pd.to_datetime(["2025-03-04T10:00Z", "2025-03-05T10:00Z"]),
    }))  # fmt: skip
    frame = deployment_training_frame(store, Settings())
    assert len(frame) == 2 and frame["failed"].isna().all()
    model, report = train_deployment_model(frame)
    assert model is None and report["failures"] is None and report["fallback"].startswith("no deployment's failure")
