"""Property tests: external JIT feature tables (Kamei et al., Zeng et al.) parse to the same metrics."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releaserisk.errors import InputError
from releaserisk.features import KAMEI_FEATURES
from releaserisk.model import read_feature_table

counts = st.integers(min_value=0, max_value=10_000)
row = st.fixed_dictionaries(
    {
        **{f: counts for f in KAMEI_FEATURES if f not in ("entropy", "rexp", "age", "fix", "nf", "lt")},
        "nf": st.integers(min_value=1, max_value=50),
        "lt": st.integers(min_value=1, max_value=5_000),
        "entropy": st.floats(min_value=0, max_value=6, allow_nan=False),
        "rexp": st.floats(min_value=0, max_value=1e4, allow_nan=False),
        "age": st.floats(min_value=0, max_value=5e3, allow_nan=False),
        "fix": st.booleans(),
        "bug": st.booleans(),
        "seconds": st.integers(min_value=0, max_value=2_000_000_000),
    }
)
tables = st.lists(row, min_size=1, max_size=25)
flag_styles = st.sampled_from(["int", "word", "upper"])


def written(value: bool, style: str):
    return int(value) if style == "int" else (str(value) if style == "word" else str(value).upper())


def expected(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["fix"] = frame["fix"].astype(float)
    frame["bug"] = frame["bug"].astype(int)
    frame["time"] = pd.to_datetime(frame.pop("seconds"), unit="s", utc=True)
    return frame


def read(text_frame: pd.DataFrame) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        text_frame.to_csv(path, index=False)
        return read_feature_table(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables, flag_styles)
def test_zeng_tables_read_back_every_metric(rows, style):
    source = expected(rows)
    out = pd.DataFrame(
        {"date": [r["seconds"] for r in rows], "bug": [written(r["bug"], style) for r in rows],
         "__": [int(r["bug"]) for r in rows],  # the label's copy: must never become a feature
         **{("entrophy" if f == "entropy" else f): source[f] for f in KAMEI_FEATURES if f != "fix"},
         "fix": [written(r["fix"], style) for r in rows]}
    )  # fmt: skip
    parsed = read(out)
    order = source.sort_values("time", kind="stable").reset_index(drop=True)
    for column in [*KAMEI_FEATURES, "bug"]:
        np.testing.assert_allclose(parsed[column].to_numpy(float), order[column].to_numpy(float), err_msg=column)
    assert parsed["time"].tolist() == order["time"].tolist()
    assert "__" not in parsed.columns
    np.testing.assert_allclose(parsed["effort"], order["la"] + order["ld"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables, flag_styles)
def test_kamei_tables_convert_relative_churn_back_to_counts(rows, style):
    source = expected(rows)
    source["time"] = source["time"].dt.floor("min")  # Kamei's dates have minutes only
    lt_per_file = source["lt"] / source["nf"]
    out = pd.DataFrame(
        {"commitdate": source["time"].dt.strftime("%Y/%-m/%-d %-H:%M"), "ns": source["ns"], "nm": source["nd"],
         "nf": source["nf"], "entropy": source["entropy"], "la": source["la"] / source["lt"],
         "ld": source["ld"] / source["lt"], "lt": lt_per_file, "fix": [written(r["fix"], style) for r in rows],
         "ndev": source["ndev"], "pd": source["age"], "npt": source["nuc"] / source["nf"], "exp": source["exp"],
         "rexp": source["rexp"], "sexp": source["sexp"], "bug": [written(r["bug"], style) for r in rows]}
    )  # fmt: skip
    parsed = read(out)
    order = source.sort_values("time", kind="stable").reset_index(drop=True)
    for column in [*KAMEI_FEATURES, "bug"]:
        np.testing.assert_allclose(
            parsed[column].to_numpy(float), order[column].to_numpy(float), rtol=1e-9, atol=1e-6, err_msg=column
        )
    assert parsed["time"].tolist() == order["time"].tolist()


def test_iso_dates_are_read_too(tmp_path):
    path = tmp_path / "iso.csv"
    frame = pd.DataFrame({f: [1, 2] for f in KAMEI_FEATURES}).rename(columns={"entropy": "entrophy"})
    frame.insert(0, "date", ["2021-03-04T05:06:07Z", "2020-01-01 00:00:00"])
    frame["bug"] = ["true", "false"]
    frame.to_csv(path, index=False)
    parsed = read_feature_table(path)
    assert parsed["time"].tolist() == [pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2021-03-04 05:06:07Z")]
    assert parsed["bug"].tolist() == [0, 1]
    kamei = pd.DataFrame({c: [1.0] for c in ["ns", "nm", "nf", "entropy", "la", "ld", "lt", "fix", "ndev", "pd", "npt",
                                             "exp", "rexp", "sexp", "bug"]})  # fmt: skip
    kamei.insert(0, "commitdate", ["2003-10-10 16:10:00"])  # not Kamei's own 2003/10/10 16:10 layout
    kamei.to_csv(path, index=False)
    assert read_feature_table(path)["time"].tolist() == [pd.Timestamp("2003-10-10 16:10", tz="UTC")]


@pytest.mark.parametrize(
    ("drop", "change", "message"),
    [
        ("ns", None, "missing column\\(s\\) ns"),
        (None, ("bug", "maybe"), "row 3 has a bad value"),
        (None, ("bug", 2), "row 3 has a bad value"),
        (None, ("la", "twelve"), "row 3 has a bad value"),
        (None, ("date", "not a date"), "row 3 has a bad value"),
        (None, ("exp", None), None),  # an empty cell is missing data, not a bad value: see below
    ],
)
def test_bad_tables_name_the_problem(tmp_path, drop, change, message):
    frame = pd.DataFrame({f: [1, 2] for f in KAMEI_FEATURES}).rename(columns={"entropy": "entrophy"})
    frame["date"], frame["bug"] = [1_600_000_000, 1_600_000_100], [0, 1]
    if drop:
        frame = frame.drop(columns=[drop])
    if change:
        frame[change[0]] = frame[change[0]].astype(object)
        frame.loc[1, change[0]] = change[1]
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    if message is None:
        assert len(read_feature_table(path)) == 1
        return
    with pytest.raises(InputError, match=message):
        read_feature_table(path)


def test_empty_cells_leave_their_rows_out_and_are_counted(tmp_path):
    frame = pd.DataFrame({f: [1.0, 2.0, 3.0, 4.0] for f in KAMEI_FEATURES}).rename(columns={"entropy": "entrophy"})
    frame["date"], frame["bug"] = [40, 10, 30, 20], [0, 1, 0, 1]
    frame.loc[0, "entrophy"] = np.nan  # NA, n/a and empty all read as missing
    frame.loc[3, "bug"] = np.nan
    frame["comment"] = [None, None, None, None]  # a column that is not read may be empty
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    parsed = read_feature_table(path)
    assert parsed["la"].tolist() == [2.0, 3.0]  # rows 0 and 3 left out, the rest sorted by time
    assert parsed.attrs["dropped_rows"] == 2
    frame["exp"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match="column\\(s\\) exp have no values"):
        read_feature_table(path)
