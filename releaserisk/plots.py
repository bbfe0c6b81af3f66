"""Matplotlib figures shared by the notebooks and the report. Nothing here prints."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from releaserisk.canary.result import JudgeResult

__all__ = ["ARM_COLOURS", "canary_figure"]

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
