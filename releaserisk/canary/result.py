"""Result objects of canary analyses: frames for analysts, summary() for people, to_dict() for JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd

from releaserisk.escape import json_safe

__all__ = ["GroupScore", "JudgeResult", "MetricResult"]

#: CLI exit code per verdict (DESIGN.md section 7).
VERDICT_EXIT = {"Pass": 0, "Promote": 0, "Fail": 1, "RollBack": 1, "Marginal": 3, "Continue": 3, "NoData": 3}


@dataclass(frozen=True)
class MetricResult:
    """The classification of one metric."""

    name: str
    group: str
    classification: str  # Pass | High | Low | NoData | NoDataFailure
    n_baseline: int
    n_canary: int
    critical_metric: bool = False
    critical: bool = False  # a critical failure (zeroes the score)
    ci_low: float = math.nan
    ci_high: float = math.nan
    estimate: float = math.nan
    deviation: float = math.nan  # mean ratio canary / baseline
    effect_size: float = math.nan
    reason: str | None = None
    warning: str | None = None
    mode: str = "kayenta"
    paired: bool = False  # robust: judged on the difference series of time-aligned pairs
    n_effective: float = math.nan  # robust: effective sample size (autocorrelation-adjusted)
    p_value: float = math.nan  # robust: p-value of the test that decided (history-calibrated if history_windows)
    history_windows: int = 0  # robust: comparable historical windows the p-value was ranked among
    concurrent: bool | None = None  # robust: arms' time ranges overlap (None: no timestamps)
    inconclusive: bool = False  # robust NoData with data in both arms: the evidence does not decide yet

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes null)."""
        return json_safe(asdict(self))


@dataclass(frozen=True)
class GroupScore:
    """Score of one metric group (None when no metric of it could be scored)."""

    name: str
    score: float | None
    weight: float
    metrics: int


@dataclass(frozen=True)
class JudgeResult:
    """Outcome of the fixed-horizon judge.

    Attributes
    ----------
    metrics : list of MetricResult
    groups : list of GroupScore
    score : float or None
        Weighted overall score 0–100 (None when nothing could be scored).
    verdict : str
        ``Pass``, ``Marginal``, ``Fail`` or ``NoData``.
    reason : str
        Why the verdict is what it is.
    samples : DataFrame
        The samples judged (for plots).
    mode : str
        ``kayenta`` or ``robust``.
    alpha : float
        A metric's false-alarm rate over all planned looks (``1 - confidence``).
    looks : int
        Robust mode: the looks planned at this canary; each tests at ``alpha / looks``.
    """

    metrics: list[MetricResult]
    groups: list[GroupScore]
    score: float | None
    verdict: str
    reason: str
    samples: pd.DataFrame | None = field(default=None, repr=False)
    mode: str = "kayenta"
    alpha: float = math.nan
    looks: int = 1

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 marginal or no data."""
        return VERDICT_EXIT[self.verdict]

    @property
    def frame(self) -> pd.DataFrame:
        """One row per metric (the columns of :class:`MetricResult`, ``mode`` among them)."""
        return pd.DataFrame([m.to_dict() for m in self.metrics], columns=[f.name for f in fields(MetricResult)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: mode, alpha and looks, verdict, score, reason, groups and metrics (NaN as null)."""
        return json_safe(
            {
                "mode": self.mode,
                "alpha": self.alpha,
                "looks": self.looks,
                "verdict": self.verdict,
                "score": self.score,
                "reason": self.reason,
                "groups": [asdict(g) for g in self.groups],
                "metrics": [m.to_dict() for m in self.metrics],
            }
        )

    def summary(self) -> str:
        """A readable table of the judgement."""
        score = self.score if self.score is not None else "n/a"
        lines = [f"canary verdict: {self.verdict}  (score {score}, mode {self.mode})"]
        lines.append(f"  {self.reason}")
        if self.mode == "robust" and not math.isnan(self.alpha):
            per_look = self.alpha / self.looks
            lines.append(
                f"  false alarms per metric <= {self.alpha:.3g} over {self.looks} planned look(s) "
                f"({per_look:.3g} each); judging one canary at more looks needs looks (--looks) raised"
            )
        header = f"  {'metric':<24} {'class':<14} {'interval':>27} {'estimate':>12} {'effect':>8} {'n':>11}"
        lines.append(header)
        for m in self.metrics:
            interval = "" if math.isnan(m.ci_low) else f"[{m.ci_low:.4g}, {m.ci_high:.4g}]"
            estimate = "" if math.isnan(m.estimate) else f"{m.estimate:.4g}"
            effect = "" if math.isnan(m.effect_size) else f"{m.effect_size:.3g}"
            label = m.classification + (" !" if m.critical else "")
            lines.append(
                f"  {m.name[:24]:<24} {label:<14} {interval:>27} {estimate:>12} {effect:>8} "
                f"{m.n_baseline:>5}/{m.n_canary:<5}"
            )
            if not math.isnan(m.n_effective):
                how = "paired" if m.paired else "unpaired"
                calibration = f", ranked among {m.history_windows} historical windows" if m.history_windows else ""
                baseline = {True: ", concurrent baseline", False: ", baseline not concurrent"}.get(m.concurrent, "")
                lines.append(f"    {how}, effective n {m.n_effective:.1f}, p {m.p_value:.3g}{calibration}{baseline}")
            if m.classification == "NoData" and m.reason:
                lines.append(f"    {m.reason}")  # what it lacked: the samples that would decide
            if m.warning:
                lines.append(f"    warning: {m.warning}")
        for g in self.groups:
            value = "no data" if g.score is None else f"{g.score:.1f}"
            lines.append(f"  group {g.name}: {value} (weight {g.weight:g})")
        return "\n".join(lines)

    def plot(self, metrics: list[str] | None = None):
        """ECDFs of both arms per metric with the shift interval; returns a matplotlib Figure."""
        from releaserisk.plots import canary_figure

        return canary_figure(self, metrics)
