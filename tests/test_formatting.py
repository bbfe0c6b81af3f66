"""One number style per kind: shares, durations, timestamps, counts, headers, alignment, escaping."""

import html
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from releaserisk import formatting as fmt
from releaserisk.gate import band


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.2857, "28.6 %"), (0.0, "0.0 %"), (1.0, "100.0 %"), (float("nan"), "—"), (None, "—")],
)
def test_shares_are_percentages_with_one_decimal(value, shown):
    assert fmt.percent(value) == shown


def test_changes_of_shares_are_signed_percentage_points():
    assert fmt.percent_points(0.2088) == "+20.9 pp" and fmt.percent_points(-0.05) == "-5.0 pp"


@pytest.mark.parametrize(
    ("hours", "shown"),
    [(0.75, "45 min"), (0.9951, "1.0 h"), (3.24, "3.2 h"), (1250.0, "1,250.0 h"), (0.0, "0 min"), (None, "—")],
)
def test_durations_carry_their_unit(hours, shown):
    assert fmt.duration(hours) == shown


def test_timestamps_are_utc_to_the_minute():
    stamp = pd.Timestamp("2026-11-30 13:35:23.365192+00:00")
    assert fmt.timestamp(stamp) == "2026-11-30 13:35"
    assert fmt.timestamp(pd.Timestamp("2026-11-30 14:35:59+01:00")) == "2026-11-30 13:35"
    assert fmt.timestamp(pd.NaT) == "—"


def test_a_window_and_its_n_in_one_line():
    start, end = datetime(2025, 12, 29, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)
    assert fmt.caption(14, "production deployments", start, end) == (
        "Mon 29 Dec 2025 – Sun 04 Jan 2026 (UTC): 14 production deployments."
    )
    assert fmt.caption(1, "failed deployments") == "1 failed deployment."


@given(st.floats(min_value=0, max_value=1, allow_nan=False), st.sampled_from([0.5, 0.3, 0.15]))
def test_a_band_label_agrees_with_the_rounded_probability_shown(probability, threshold):
    edges = sorted({0.15, threshold})
    shown = fmt.percent_within(probability, edges)
    displayed = float(shown.removesuffix(" %")) / 100
    assert band(displayed, threshold) == band(probability, threshold), (probability, shown)
    assert abs(displayed - probability) <= 0.001 + 1e-12  # never more than one shown decimal off


def test_the_probabilities_of_the_issue_read_with_their_bands():
    assert fmt.percent_within(0.1496, [0.15, 0.5]) == "14.9 %"  # low: not "15.0 %"
    assert fmt.percent_within(0.1504, [0.15, 0.5]) == "15.0 %"  # medium
    assert fmt.percent_within(0.16, [0.15, 0.5]) == "16.0 %"


@pytest.mark.parametrize(
    "name",
    ["median_hours_to_rollback", "ci_low", "skipped_staging_rate", "restore_hours", "deployment_id", "opened_at",
     "days_since_last_rollback", "lead_time_p90_hours", "some_new_column"],
)  # fmt: skip
def test_headers_are_words_never_snake_case(name):
    assert "_" not in fmt.header(name)


def test_timestamp_headers_say_utc_and_durations_move_their_unit_into_the_cells():
    assert fmt.header("opened_at") == "opened (UTC)"
    frame = pd.DataFrame({"restore_hours": [0.5, 5.49], "opened_at": pd.to_datetime(["2026-01-01 03:28:53.1"] * 2,
                                                                                      utc=True)})  # fmt: skip
    text, numeric = fmt.format_frame(frame)
    assert text.columns.tolist() == ["time to restore", "opened (UTC)"]
    assert text["time to restore"].tolist() == ["30 min", "5.5 h"]
    assert text["opened (UTC)"].tolist() == ["2026-01-01 03:28"] * 2 and numeric == [True, True]


def test_intervals_of_a_share_read_as_one_column():
    frame = pd.DataFrame({"kind": ["regular"], "failure_rate": [0.073], "ci_low": [0.041], "ci_high": [0.126]})
    text, numeric = fmt.format_frame(frame)
    assert text.columns.tolist() == ["kind", "failure rate", "95 % interval"]
    assert text.iloc[0].tolist() == ["regular", "7.3 %", "4.1 – 12.6 %"] and numeric == [False, True, True]


def test_html_tables_align_text_left_numbers_right_and_escape():
    frame = pd.DataFrame({"kind": ["<b>x</b>", "y"], "deployments": [3.0, 12.0], "skipped_staging_rate": [1.0, 0.0],
                          "hours": [1.5, float("nan")], "n": np.array([2, 3])})  # fmt: skip
    table = fmt.html_table(frame)
    assert '<th class="rr-text">kind</th>' in table and '<td class="rr-text">&lt;b&gt;x&lt;/b&gt;</td>' in table
    assert '<td class="rr-num">3</td>' in table and '<td class="rr-num">12</td>' in table  # whole counts
    assert '<td class="rr-num">100.0 %</td>' in table  # a share of 1 is not a count of 1
    assert '<td class="rr-num">1.5 h</td>' in table and '<td class="rr-num">—</td>' in table
    assert '<th class="rr-num">skipped staging</th>' in table


def test_an_empty_table_is_one_sentence():
    assert fmt.html_table(pd.DataFrame(columns=["a"]), empty="No incident was opened this week.") == (
        '<p class="rr-empty">No incident was opened this week.</p>'
    )


def test_long_tables_say_how_many_rows_were_left_out():
    table = fmt.html_table(pd.DataFrame({"n": range(60)}), max_rows=50)
    assert table.count("<tr>") == 51 and "… and 10 more rows." in table


@given(st.text())
def test_escaped_text_reads_back_as_itself_and_holds_no_markup(value):
    from releaserisk.report import text

    escaped = text(value)  # the notebooks' escaper is the HTML sink's (releaserisk.escape.html_text)
    assert html.unescape(escaped) == value
    assert not re.search(r"[<>\"']", escaped)


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_no_user_string_reaches_a_table_unescaped(values):
    table = fmt.html_table(pd.DataFrame({"title": values}))
    cells = re.findall(r'<td class="rr-text">(.*?)</td>', table, flags=re.S)
    assert [html.unescape(c) for c in cells] == [v if v else "" for v in values]


def test_p_values_are_quoted_as_readers_should():
    from releaserisk.formatting import p_value

    assert (p_value(0.0), p_value(0.0004), p_value(0.0005), p_value(0.0649)) == (
        "p < 0.001", "p < 0.001", "p = 0.001", "p = 0.065"
    )  # fmt: skip
