"""Matplotlib figures shared by the notebooks and the report. Nothing here prints."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from releaserisk.canary.result import JudgeResult

__all__ = [
    "ARM_COLOURS",
    "batch_size_figure",
    "canary_figure",
    "dora_trend_figure",
    "model_age_figure",
    "reliability_figure",
    "risk_histogram",
    "service_colours",
    "stage_figure",
]

ARM_COLOURS = {"baseline": "#4c72b0", "canary": "#dd8452"}


def canary_figure(result: JudgeResult, metrics: list[str] | None = None):
    """One panel per metric: the two arms' ECDFs, titled with class and interval.

    Parameters
    ----------
    result : JudgeResult
        A judgement that kept its samples.
    metrics : list of str, optional
        Which metrics to draw (default: all).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    chosen = [m for m in result.metrics if metrics is None or m.name in metrics]
    cols = min(3, max(len(chosen), 1))
    rows = max(1, math.ceil(len(chosen) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    samples = result.samples
    for i, m in enumerate(chosen):
        ax = fig.add_subplot(rows, cols, i + 1)
        for arm, colour in ARM_COLOURS.items():
            if samples is None:
                continue
            values = np.sort(
                samples.loc[(samples["metric"] == m.name) & (samples["arm"] == arm), "value"].dropna().to_numpy(float)
            )
            if len(values):
                ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", color=colour, label=arm)
        interval = "" if math.isnan(m.ci_low) else f"\nshift [{m.ci_low:.3g}, {m.ci_high:.3g}]"
        ax.set_title(f"{m.name}: {m.classification}{interval}", fontsize=9)
        ax.set_ylabel("share of samples ≤ value")
        ax.set_xlabel("value")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    return fig


def service_colours(services) -> dict[str, str]:
    """A stable colour per service name (same colour in every chart of a report)."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return {name: _hex(palette[i % len(palette)]) for i, name in enumerate(sorted(map(str, services)))}


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb[:3])


def _figure(width: float = 7.5, height: float = 3.2, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def _integer_axis(axis) -> None:
    """Counts get whole-number ticks from 0 (deployments, changes), never 2.5 or −0.04."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _period_line(ax, x, values, **style) -> None:
    """A marker at every period with a value, and a line only between neighbouring periods that have one.

    Periods without deployments have no rate or lead time. A line drawn across them
    invented a trend (a change failure rate "rising" from 0 % to 50 % through five weeks
    without a deployment); markers alone still show every value of a sparse history.
    """
    values = np.asarray(values, dtype=float)
    known = ~np.isnan(values)
    size = 5 if len(x) <= 60 else 2.5
    ax.plot(x[known], values[known], linestyle="none", marker="o", markersize=size, **style)
    line = {key: value for key, value in style.items() if key != "label"}
    ax.plot(x, values, **line)  # a NaN breaks the line: no segment across a period without data
    ax.set_ylim(bottom=0)  # rates and durations; an all-zero line otherwise centres on negative ticks


#: Period labels shown under a trend chart, at most; 15 years of weeks would overprint.
MAX_PERIOD_LABELS = 24


def dora_trend_figure(by_period):
    """Deployments per period (bars) and change failure rate (line), plus median lead time.

    Parameters
    ----------
    by_period : DataFrame
        :attr:`releaserisk.DoraResult.by_period` of one group, ISO weeks (``2026-W03``) or
        months (``2026-01``); the axis says which.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (left, right) = _figure(10, 3.2, 2)
    labels = list(by_period["period"])
    unit = "week" if labels and "-W" in labels[0] else "month"
    x = np.arange(len(labels))
    left.bar(x, by_period["deployments"], color="#4c72b0", label="production deployments")
    left.set_ylabel(f"deployments per {unit}")
    left.set_ylim(bottom=0, top=max(1, float(np.nanmax(by_period["deployments"], initial=0)) * 1.08))
    _integer_axis(left.yaxis)
    failure_rate = np.asarray(by_period["change_failure_rate"], dtype=float) * 100
    if np.isnan(failure_rate).all():
        # no source of failures (incidents, rollbacks, hotfixes): say so, not an empty 0-0.05 % axis
        left.set_title("Deployments (change failure rate: no data)")
    else:
        twin = left.twinx()
        _period_line(twin, x, failure_rate, color="#c44e52", label="change failure rate")
        twin.set_ylabel("change failure rate (%)")
        left.set_title("Deployments and change failure rate")
    right.set_title("Median change lead time")
    step = max(1, math.ceil(len(labels) / MAX_PERIOD_LABELS))
    left.set_xticks(x[::step], labels[::step], rotation=45, ha="right", fontsize=7)
    if np.isnan(np.asarray(by_period["lead_time_median_hours"], dtype=float)).all():
        # no empty axes: without commits linked to deployments there is no lead time to draw
        _say(right, "No lead time in these periods:\nno deployed commit is linked to its history.")
        return fig
    _period_line(right, x, by_period["lead_time_median_hours"], color="#55a868")
    right.set_ylabel("hours")
    right.set_xticks(x[::step], labels[::step], rotation=45, ha="right", fontsize=7)
    return fig


def _say(ax, sentence: str) -> None:
    """A panel without data: one sentence in place of empty axes."""
    ax.text(0.5, 0.5, sentence, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#555555")
    ax.set_axis_off()


def batch_size_figure(buckets):
    """Change failure rate by batch size with Wilson intervals and the logistic fit.

    Without a fit (``fitted_rate`` all NaN: too few failed or successful deployments,
    :data:`releaserisk.analytics.MIN_FIT_OUTCOMES`) the title says why instead of a line.
    """
    fig, (ax,) = _figure()
    present = buckets[buckets["deployments"] > 0]
    x = np.arange(len(present))
    rate = present["failure_rate"].to_numpy(float) * 100
    ax.set_title("Bigger batches fail more often?")
    if np.isnan(rate).all():
        # no source of failures: a sentence, not an empty axis around zero (seen on a lake of libraries)
        _say(ax, "No change failure rate by batch size:\nno incident, rollback or hotfix marks a failed deployment.")
        return fig
    err = np.vstack([rate - present["ci_low"].to_numpy(float) * 100, present["ci_high"].to_numpy(float) * 100 - rate])
    ax.errorbar(x, rate, yerr=err, fmt="o", color="#4c72b0", capsize=4, label="observed (95% Wilson)")
    fitted = present["fitted_rate"].to_numpy(float)
    if np.isnan(fitted).all():  # too few failed or successful deployments for a fit: say so, draw none
        from releaserisk.analytics import no_fit_sentence

        deployments = present["deployments"].to_numpy(float)
        failures = present["failures"].to_numpy(float) if "failures" in present else rate / 100 * deployments
        failed = round(float(np.nansum(failures)))
        sentence = no_fit_sentence(failed, round(float(deployments.sum())) - failed)
        ax.set_title(f"Bigger batches fail more often?\n{sentence}", fontsize=9)
    else:
        ax.plot(x, fitted * 100, color="#c44e52", label="logistic fit")
    ax.set_xticks(x, [f"{b}\n(n={n})" for b, n in zip(present["bucket"], present["deployments"], strict=True)])
    ax.set_xlabel("changes per deployment")
    ax.set_ylabel("change failure rate (%)")
    ax.legend(fontsize=8)
    return fig


def stage_figure(stages):
    """Median and p90 hours between environments."""
    fig, (ax,) = _figure()
    labels = [f"{a} → {b}" for a, b in zip(stages["from_env"], stages["to_env"], strict=True)]
    y = np.arange(len(labels))
    ax.barh(y, stages["p90_hours"], color="#dd8452", alpha=0.5, label="p90")
    ax.barh(y, stages["median_hours"], color="#dd8452", label="median")
    ax.set_yticks(y, labels)
    ax.set_xlabel("hours")
    ax.set_title("Time from one environment to the next")
    ax.legend(fontsize=8)
    return fig


def risk_histogram(probabilities, threshold: float):
    """Distribution of change risk with the gate threshold."""
    fig, (ax,) = _figure()
    ax.hist(np.asarray(probabilities, dtype=float) * 100, bins=20, color="#8172b3")
    ax.axvline(threshold * 100, color="#c44e52", linestyle="--", label=f"gate threshold {threshold:.0%}")
    ax.set_xlabel("predicted defect probability (%)")
    ax.set_ylabel("changes")
    _integer_axis(ax.yaxis)
    ax.set_title("Change risk")
    ax.legend(fontsize=8)
    return fig


def reliability_figure(table, ece: float | None = None):
    """Observed vs predicted defect rate per probability bin (:func:`releaserisk.model.calibration_table`).

    Points on the diagonal are calibrated; the number under each point is the bin's size.
    """
    fig, (ax,) = _figure(5.5, 4.2)
    ax.plot([0, 100], [0, 100], color="#999999", linestyle="--", label="calibrated")
    x, y = table["mean_predicted"] * 100, table["observed"] * 100
    ax.plot(x, y, color="#4c72b0", marker="o", label="this model")
    for xi, yi, n in zip(x, y, table["n"], strict=True):
        ax.annotate(f"{n:,}", (xi, yi), textcoords="offset points", xytext=(0, -12), ha="center", fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("predicted defect probability (%)")
    ax.set_ylabel("observed defect rate (%)")
    ax.set_title("Reliability" + (f" (ECE {ece:.3f})" if ece is not None else ""))
    ax.legend(fontsize=8, loc="upper left")
    return fig


def model_age_figure(rolling):
    """Test AUC by the model's age in months (:func:`releaserisk.model.rolling_origin`).

    One dot per test month, sized by its changes, and their weighted mean per age.
    """
    fig, (ax,) = _figure()
    if rolling["auc"].isna().all():
        _say(ax, "History too short (or too few buggy changes a month) for a rolling origin.")
        return fig
    from releaserisk.model import auc_by_age

    size = 40 * rolling["n_test"] / rolling["n_test"].max()  # a dot's area: its month's changes
    ax.scatter(rolling["age_months"], rolling["auc"], color="#8172b3", alpha=0.35, s=size + 4, label="one month")
    mean = auc_by_age(rolling)
    ax.plot(mean.index, mean.to_numpy(), color="#c44e52", marker="o", label="mean, weighted by changes")
    ax.axhline(0.5, color="#999999", linestyle="--", linewidth=1)
    ax.set_xlabel("model age (months since the training cut)")
    ax.set_ylabel("test AUC")
    ax.set_title("How fast the model ages")
    ax.legend(fontsize=8)
    return fig
