import json
import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from releaserisk.canary.config import load_canary_config
from releaserisk.canary.data import load_samples
from releaserisk.cli import main
from releaserisk.errors import ConfigError, InputError


def prometheus(series):
    return {"status": "success", "data": {"resultType": "matrix", "result": series}}


def test_prometheus_matrix_with_nan_and_empty_series(tmp_path):
    payload = prometheus([
        {"metric": {"__name__": "latency", "arm": "baseline"},
         "values": [[1700000000, "0.5"], [1700000060, "NaN"]]},
        {"metric": {"__name__": "latency", "arm": "canary"}, "values": [[1700000000, "0.7"]]},
        {"metric": {"__name__": "latency", "arm": "canary", "pod": "b"}, "values": []},
    ])  # fmt: skip
    path = tmp_path / "prom.json"
    path.write_text(json.dumps(payload))
    frame = load_samples(path)
    assert list(frame.arm) == ["baseline", "baseline", "canary"]
    assert frame.value.iloc[0] == 0.5 and math.isnan(frame.value.iloc[1])
    assert str(frame.ts.iloc[0]) == "2023-11-14 22:13:20+00:00"


def test_prometheus_errors(tmp_path):
    with pytest.raises(InputError, match="status is 'error'"):
        load_samples({"status": "error", "error": "bad query"})
    with pytest.raises(InputError, match="matrix"):
        load_samples({"status": "success", "data": {"resultType": "vector", "result": []}})
    with pytest.raises(InputError, match="no 'arm' label"):
        load_samples(prometheus([{"metric": {"__name__": "x"}, "values": [[1, "1"]]}]))
    assert len(load_samples(prometheus([{"metric": {"__name__": "x"}, "values": [[1, "1"]]}]), arm="canary")) == 1


def test_csv_validation_names_row_and_column(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("metric,arm,value\nlat,baseline,1\nlat,canry,2\n")
    with pytest.raises(InputError, match="column arm: row 2: 'canry' is not one of baseline, canary"):
        load_samples(path)
    path.write_text("metric,arm,value\nlat,baseline,fast\n")
    with pytest.raises(InputError, match="column value: row 1: 'fast' is not a number"):
        load_samples(path)
    path.write_text("metric,value\nlat,1\n")
    with pytest.raises(InputError, match="missing column"):
        load_samples(path)
    with pytest.raises(InputError, match="no such file"):
        load_samples(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ([{"metric": {"arm": "canary"}, "values": [[1, "1"], [2]]}], "not a \\[time, value\\] pair"),
        ([{"metric": {"arm": "canary"}, "values": [[1, "1", 3]]}], "not a \\[time, value\\] pair"),
        ([{"metric": {"arm": "canary"}, "values": [[1, "fast"]]}], "sample value 'fast' is not a number"),
        ([{"metric": {"arm": "canary"}, "values": [["noon", "1"]]}], "timestamp 'noon' is not a number"),
        ([{"metric": {"arm": "canary"}, "values": [[1, {"v": 1}]]}], "sample value is dict, not a number"),
        ([{"metric": {"arm": "canary"}, "values": "1,2"}], "values is not a list"),
        ([{"metric": ["arm"], "values": []}], "metric is not an object"),
        (["series"], "result 1 is not an object"),
        ({"a": 1}, "data.result is not a list"),
    ],
)
def test_malformed_prometheus_responses_are_input_errors(tmp_path, series, message):
    path = tmp_path / "prom.json"
    path.write_text(json.dumps(prometheus(series)))
    with pytest.raises(InputError, match=message):
        load_samples(path)


def test_sample_timestamps_are_validated_like_every_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("metric,arm,value,ts\nlat,canary,1,2024-05-01 10:00:00\n")
    with pytest.raises(InputError, match=r"column ts: row 1: timestamp .* has no time zone"):
        load_samples(path)  # was stored as 1970-01-01
    assert str(load_samples(path, assume_tz="UTC").ts[0]) == "2024-05-01 10:00:00+00:00"
    path.write_text("metric,arm,value,ts\n" + "lat,canary,1,2024-05-01T10:00:00Z\n" * 4999 + "lat,canary,1,soon\n")
    with pytest.raises(InputError, match="column ts: row 5000: 'soon' is not a valid timestamp"):
        load_samples(path)


def test_non_finite_values_read_alike_in_every_format(tmp_path):
    words = ["NaN", "+Inf", "-Inf", "inf", "Infinity", "1.5"]
    frame = pd.DataFrame({"metric": "lat", "arm": "canary", "value": words})
    frame.to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "s.json").write_text(frame.to_json(orient="records"))
    frame.assign(value=[float(w) for w in words]).to_parquet(tmp_path / "s.parquet")
    read = {suffix: load_samples(tmp_path / f"s.{suffix}")["value"].tolist() for suffix in ("csv", "json", "parquet")}
    for values in read.values():
        assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, math.inf, math.inf, 1.5]
    frame.to_parquet(tmp_path / "t.parquet")  # text in a number column: the export's schema is wrong
    with pytest.raises(InputError, match=r"column value: Parquet type .*string where a number is expected"):
        load_samples(tmp_path / "t.parquet")


def test_deeply_nested_canary_input_is_an_input_error(tmp_path):
    (tmp_path / "s.json").write_text('{"status": "success", "data": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError, match="nested too deeply"):
        load_samples(tmp_path / "s.json")


def test_counts_and_json_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"metric": "errors", "arm": "canary", "count": 3}\n{"metric": "errors", "arm": "baseline", "count": 1}\n'
    )
    frame = load_samples(path)
    assert set(frame.kind) == {"counts"} and frame.value.sum() == 4


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[judge]\nconfidance = 0.9\n", "unknown key 'judge.confidance'"),
        ("[metrics.lat]\ndirection = 'up'\n", "metrics.lat.direction"),
        ("[metrics.lat]\nallowed_increase = -1.0\n", "allowed_increase"),
        ("[metrics.lat]\ncritical = 'yes'\n", "metrics.lat.critical"),
        ("[judge]\nconfidence = 1.5\n", "judge.confidence"),
        ("[scoring]\npass = 50\nmarginal = 80\n", "marginal <= pass"),
        ("[groups.g]\nweight = -2\n", "groups.g.weight"),
        ("[bogus]\n", "unknown section 'bogus'"),
    ],
)
def test_config_errors_name_the_key(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_canary_config(path)


def test_cli_canary_fixed_json_and_exit_codes(tmp_path, capsys):
    data = tmp_path / "s.csv"
    rows = [("lat", "baseline", v) for v in (1, 2, 3, 4)] + [("lat", "canary", v) for v in (10, 20, 30, 40)]
    pd.DataFrame(rows, columns=["metric", "arm", "value"]).to_csv(data, index=False)
    config = tmp_path / "c.toml"
    config.write_text('[judge]\nmode = "kayenta"\nconfidence = 0.95\n')
    code = main(["canary", "--config", str(config), "--data", str(data), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["verdict"] == "Fail"
    assert out["metrics"][0]["ci_low"] == 6.0 and out["metrics"][0]["estimate"] == 22.5
    same = tmp_path / "same.csv"
    pd.DataFrame([("lat", arm, v) for arm in ("baseline", "canary") for v in (1, 2, 3)],
                 columns=["metric", "arm", "value"]).to_csv(same, index=False)  # fmt: skip
    assert main(["canary", "--data", str(same)]) == 0


def test_cli_canary_github_format_and_errors(tmp_path, capsys, monkeypatch):
    base, can = tmp_path / "b.csv", tmp_path / "c.csv"
    base.write_text("metric,value\nerr,1\nerr,2.2\nerr,1.1\nerr,2.5\nerr,3\n")
    can.write_text("metric,value\nerr,20\nerr,22\nerr,21\nerr,25\nerr,30\n")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = main(["canary", "--baseline", str(base), "--canary", str(can), "--format", "github"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("::error::canary Fail")
    assert "### releaserisk canary: Fail" in summary.read_text()
    assert main(["canary"]) == 2
    assert "error: give samples" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[metrics.x]\nnope = 1\n")
    assert main(["canary", "--config", str(bad), "--data", str(base)]) == 2


def test_a_file_of_many_analyses_is_judged_one_analysis_at_a_time(tmp_path, capsys):
    """Judged whole, the canaries of eight deployments were pooled into one verdict."""
    from releaserisk.canary.judge import judge
    from releaserisk.canary.sequential import sequential_judge

    rows = [("good", "lat", arm, v) for arm in ("baseline", "canary") for v in (1, 2, 3, 4, 5)]
    rows += [("bad", "lat", "baseline", v) for v in (1, 2, 3, 4, 5)] + [("bad", "lat", "canary", v) for v in
                                                                         (50, 60, 70, 80, 90)]  # fmt: skip
    data = tmp_path / "many.csv"
    pd.DataFrame(rows, columns=["analysis_id", "metric", "arm", "value"]).to_csv(data, index=False)
    assert main(["canary", "--data", str(data)]) == 2
    assert "the samples hold 2 canary analyses (bad, good); choose one (--analysis ID)" in capsys.readouterr().err
    assert main(["canary", "--data", str(data), "--analysis", "good"]) == 0
    assert main(["canary", "--data", str(data), "--analysis", "bad"]) == 1
    assert main(["canary", "--data", str(data), "--analysis", "nope"]) == 2
    assert "no samples of analysis 'nope'" in capsys.readouterr().err
    samples = load_samples(data)
    for judged in (judge, sequential_judge):  # the library refuses the mix too
        with pytest.raises(InputError, match="2 canary analyses"):
            judged(samples)
    single = tmp_path / "one.csv"
    pd.DataFrame(rows[:10], columns=["analysis_id", "metric", "arm", "value"]).to_csv(single, index=False)
    assert main(["canary", "--data", str(single)]) == 0  # one analysis needs no choosing


def test_cli_ingest_metrics_is_idempotent(tmp_path, capsys):
    data = tmp_path / "s.csv"
    data.write_text("metric,arm,ts,value\nlat,baseline,2024-01-01T00:00:00Z,1\nlat,baseline,2024-01-01T00:00:00Z,2\n")
    db = str(tmp_path / "s.duckdb")
    for _ in range(2):
        assert main(["--db", db, "ingest", "metrics", str(data), "--analysis", "a1"]) == 0
    from releaserisk.store import open_store

    with open_store(db) as store:
        assert store.counts()["metric_samples"] == 2
    assert main(["--db", db, "ingest", "metrics", str(data)]) == 2  # no id anywhere
    assert "need an analysis_id column or an analysis id (--analysis ID)" in capsys.readouterr().err


def test_cli_ingest_metrics_of_many_analyses_stores_each_or_the_one_chosen(tmp_path, capsys):
    data = tmp_path / "many.csv"
    data.write_text("analysis_id,metric,arm,ts,value\n" + "".join(
        f"{a},lat,{arm},2024-01-01T00:00:00Z,{v}\n" for a in ("a1", "a2") for arm in ("baseline", "canary")
        for v in (1, 2)))  # fmt: skip
    from releaserisk.store import open_store

    db = str(tmp_path / "all.duckdb")
    assert main(["--db", db, "ingest", "metrics", str(data), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"analysis_ids": ["a1", "a2"], "samples": 8}
    with open_store(db) as store:
        assert store.query("SELECT analysis_id, count(*) AS n FROM metric_samples GROUP BY 1 ORDER BY 1")[
            "n"].tolist() == [4, 4]  # fmt: skip
    one = str(tmp_path / "one.duckdb")
    assert main(["--db", one, "ingest", "metrics", str(data), "--analysis", "a2"]) == 0
    assert capsys.readouterr().out == "stored 4 samples of a2\n"
    with open_store(one) as store:
        assert set(store.query("SELECT analysis_id FROM metric_samples")["analysis_id"]) == {"a2"}


def test_a_negative_event_count_is_refused_for_every_judge(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("metric,arm,count\nerrors,baseline,2\nerrors,canary,-3\n")
    with pytest.raises(InputError, match="column count: row 2: -3 is negative"):
        load_samples(path)


@given(st.lists(st.sampled_from(["a", "b", "latency", "b"]), max_size=30), st.booleans())
def test_factorize_runs_agrees_with_pandas_factorize(labels, as_arrow):
    from releaserisk.canary.data import factorize_runs

    series = pd.Series(labels, dtype="string[pyarrow]" if as_arrow else object)
    codes, names = factorize_runs(series)
    expected_codes, expected_names = pd.factorize(series)
    assert list(codes) == list(expected_codes)
    assert list(names) == list(expected_names)


def test_an_arm_left_empty_is_refused_by_the_sequential_judge():
    from releaserisk.canary.sequential import sequential_judge

    samples = pd.DataFrame({"metric": ["m"] * 3, "arm": ["baseline", None, "canary"], "value": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match="arm must be"):
        sequential_judge(samples, looks=1)
