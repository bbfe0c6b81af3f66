"""Figures shared by the notebooks and the report: what they say, not how they look."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from releaserisk import plots


def by_period(labels):
    n = len(labels)
    return pd.DataFrame({"period": labels, "deployments": range(n), "change_failure_rate": [0.1] * n,
                         "lead_time_median_hours": [2.0] * n})  # fmt: skip


@pytest.mark.parametrize(
    ("labels", "unit", "shown"),
    [
        ([f"2026-W{w:02d}" for w in range(1, 13)], "week", 12),  # the weekly report's twelve weeks: all
        ([f"{2000 + i // 52}-W{i % 52 + 1:02d}" for i in range(780)], "week", 24),  # 15 years of weeks
        ([f"{2020 + i // 12}-{i % 12 + 1:02d}" for i in range(36)], "month", 18),
    ],
)
def test_trend_axis_names_its_period_and_labels_at_most_24(labels, unit, shown):
    figure = plots.dora_trend_figure(by_period(labels))
    bars, lead = figure.axes[0], figure.axes[1]
    assert bars.get_ylabel() == f"deployments per {unit}"
    ticks = [t.get_text() for t in bars.get_xticklabels()]
    assert len(ticks) == shown and ticks[0] == labels[0]
    assert [t.get_text() for t in lead.get_xticklabels()] == ticks
    assert len(bars.patches) == len(labels)  # every period is drawn, only the labels thin out


def test_trend_lines_mark_every_value_and_join_only_neighbouring_periods():
    import numpy as np

    frame = by_period([f"2026-W{w:02d}" for w in range(1, 7)])
    frame["lead_time_median_hours"] = [1.0, None, 3.0, 4.0, None, 5.0]  # quiet weeks have no lead time
    markers, line = plots.dora_trend_figure(frame).axes[1].lines
    assert markers.get_linestyle() == "None" and markers.get_xdata().tolist() == [0, 2, 3, 5]
    assert markers.get_ydata().tolist() == [1.0, 3.0, 4.0, 5.0]
    # the line is broken at the quiet weeks: its only segment joins weeks 3 and 4, never 1 to 3 or 4 to 6
    y = np.asarray(line.get_ydata(), dtype=float)
    segments = [i for i in range(len(y) - 1) if not np.isnan(y[i]) and not np.isnan(y[i + 1])]
    assert segments == [2]


def test_counts_get_whole_number_ticks_from_zero():
    frame = by_period([f"2026-W{w:02d}" for w in range(1, 4)])
    frame["deployments"] = [0, 1, 3]
    bars = plots.dora_trend_figure(frame).axes[0]
    bars.figure.canvas.draw()
    ticks = bars.get_yticks()
    assert bars.get_ylim()[0] == 0 and all(t == int(t) for t in ticks)
    quiet = by_period([f"2026-W{w:02d}" for w in range(1, 4)])
    quiet["deployments"] = [0, 0, 0]
    axis = plots.dora_trend_figure(quiet).axes[0]
    assert axis.get_ylim() == (0, 1)  # never centred on zero with negative ticks
    histogram = plots.risk_histogram([0.1, 0.2, 0.2, 0.7], 0.5).axes[0]
    histogram.figure.canvas.draw()
    assert all(t == int(t) for t in histogram.get_yticks())


def test_a_trend_without_failure_data_says_so_instead_of_an_empty_rate_axis():
    frame = by_period([f"2026-W{w:02d}" for w in range(1, 4)])
    frame["change_failure_rate"] = [None, None, None]  # tags as deployments: nothing records a failure
    figure = plots.dora_trend_figure(frame)
    assert len(figure.axes) == 2 and "change failure rate: no data" in figure.axes[0].get_title()
    assert len(plots.dora_trend_figure(by_period(["2026-W01", "2026-W02"])).axes) == 3  # with data: its own axis


def _buckets(rate):
    return pd.DataFrame({"bucket": ["1", "2-3"], "deployments": [4, 2], "failure_rate": [rate, rate],
                         "ci_low": [rate, rate], "ci_high": [rate, rate], "fitted_rate": [rate, rate]})  # fmt: skip


def test_batch_size_without_enough_outcomes_for_a_fit_says_so_instead_of_a_fitted_line():
    few = _buckets(0.25)
    few["fitted_rate"] = float("nan")  # release_analytics leaves the fit out below MIN_FIT_OUTCOMES
    ax = plots.batch_size_figure(few).axes[0]
    assert [line.get_label() for line in ax.lines if line.get_label() == "logistic fit"] == []
    assert "No logistic fit: 2 failed and 4 successful deployments; a fit needs at least 10 of each" in ax.get_title()


def test_batch_size_without_failure_data_says_so_instead_of_an_empty_axis():
    empty = plots.batch_size_figure(_buckets(float("nan"))).axes[0]
    assert not empty.axison and "no incident, rollback or hotfix" in empty.texts[0].get_text()
    drawn = plots.batch_size_figure(_buckets(0.25)).axes[0]
    assert drawn.axison and drawn.get_ylabel() == "change failure rate (%)"
