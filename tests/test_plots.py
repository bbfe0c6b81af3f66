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


def test_trend_lines_join_the_periods_that_have_values():
    frame = by_period([f"2026-W{w:02d}" for w in range(1, 6)])
    frame["lead_time_median_hours"] = [1.0, None, 3.0, None, 5.0]  # quiet weeks have no lead time
    lead = plots.dora_trend_figure(frame).axes[1].lines[0]
    assert lead.get_xdata().tolist() == [0, 2, 4] and lead.get_ydata().tolist() == [1.0, 3.0, 5.0]


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


def test_batch_size_without_failure_data_says_so_instead_of_an_empty_axis():
    empty = plots.batch_size_figure(_buckets(float("nan"))).axes[0]
    assert not empty.axison and "no incident, rollback or hotfix" in empty.texts[0].get_text()
    drawn = plots.batch_size_figure(_buckets(0.25)).axes[0]
    assert drawn.axison and drawn.get_ylabel() == "change failure rate (%)"
