"""Anytime-valid canary monitoring: look as often as you like, false alarms stay ≤ α.

Re-running a fixed-horizon test at every look inflates false alarms (optional
stopping). The tests here are valid at every look simultaneously.

Event counts (errors, crashes)
    Condition on the total number of events n. With no regression each event comes
    from the canary with probability ρ, its traffic share. The mixture likelihood
    ratio with a Beta(ρc, (1−ρ)c) prior on the canary's share θ,

        E_n = B(a + k, b + n − k) / B(a, b) / (ρ^k (1 − ρ)^(n−k)),

    is a nonnegative martingale under the null, so by Ville's inequality
    P(sup_n E_n ≥ 1/α) ≤ α (Lindon, Sanden & Shirikian, "Rapid regression detection
    in software deployments through sequential testing", KDD 2022; Ramdas et al.,
    "Game-theoretic statistics and safe anytime-valid inference", Stat. Sci. 2023).
    It updates in O(1) per look from the two running counts.

Samples (latency, CPU, any measured value)
    Each look's new samples — or blocks of ``block_size`` samples per arm — are
    averaged per arm; the block differences ``D_j = mean(canary_j) - mean(baseline_j)``
    are nearly independent and nearly Gaussian when the blocks are long against the
    series' memory, even for autocorrelated and skewed samples (block means: Künsch, "The jackknife and the bootstrap
    for general stationary observations", Ann. Statist. 1989; Carlstein 1986). On them
    the scale-invariant Gaussian mixture e-process of Lai (1976) / Wang & Ramdas
    (2025), :func:`releaserisk.canary.plan.log_mixture_t`, tests "no shift" with the
    block variance estimated sequentially; inverting it at every shift ``mu`` gives a
    confidence sequence for the mean shift. It can decide from five blocks when the
    shift is large, where the DKW quantile bands used before needed thousands of
    samples. Short blocks of an autocorrelated metric (a look's four 5-minute samples)
    are *not* nearly independent: adjacent block means share the series' excursions and
    their spread understates the error of their mean. The t statistic inside the
    e-value is therefore deflated by the square root of the AR(1) batch-means factor
    :func:`releaserisk.canary.robust.ar1_block_inflation`, at the one-sided 95 % upper
    confidence limit of the lag-1 autocorrelation of the samples paired in order (the
    robust judge's estimate); the confidence sequence widens by the same factor. This is
    a plug-in, not an exact martingale under dependence. Simulated over six looks of
    four samples (600 runs), false alarms are 3.5 % at phi = 0.8 and 7 % at phi = 0.95,
    against 9 % and 36 % with the block means taken as independent. With history
    (below) the conformal rank holds false alarms at alpha whatever the dependence, so
    the e-values are left undeflated there (deflating would only cost power). The
    canary regresses when the e-value reaches ``1/alpha`` with the shift in the bad
    direction and its effect size (mean ratio) beyond ``allowed_increase``; it is shown
    within bound when the confidence sequence for the mean ratio lies inside
    the allowed bounds.

History calibration
    A day-to-day drift is a real shift to this test. With the metric's history
    (:func:`sequential_judge` ``history=``), the historical windows the robust judge
    uses are replayed through the same looks, and the e-value must also exceed the
    ``ceil((1 - alpha)(N + 1))``-th smallest of their N running maxima — a conformal
    bound on the largest e-value over all looks, so any-look false alarms stay <= alpha
    when the windows are exchangeable (Vovk et al. 2005), as well as ``1/alpha``.

A baseline that is not concurrent (the same window a day earlier) differs from the
canary by the metric's drift between the windows as well: the block differences then
share that drift, which no e-process on them can tell from a regression. Where the drift
is the series' own slow variation the AR(1) factor does not cover all of it: on
fractional Gaussian noise with H = 0.9 and the baseline a day (288 samples) earlier, six
looks of four samples, false alarms reach 9.5 % where 5 % are allowed (400 runs,
``benchmarks/canary_calibration.py`` (d); 2.5–5 % at H = 0.7). A long-memory batch-means
factor at the Hurst exponent's upper confidence limit (local Whittle, Robinson 1995)
brought them to 3.5 % in a simulation, but at four to 24 samples per arm that limit is
high for nearly every series, so it cost detection everywhere (replay: false alarms 11.0
-> 9.2 %, 1.2x regressions caught 45.1 -> 40.7 %) and was not kept (see
:mod:`releaserisk.canary.robust`). Without history the monitor still tests — a real
regression must not pass — but each such metric's state says ``concurrent = False`` with
a warning that false alarms are not held at alpha (see :mod:`releaserisk.canary.robust`,
"Baselines that are not concurrent").

Several metrics: Bonferroni on the e-values (each metric at alpha/m). Decisions:
RollBack as soon as one metric rejects; Promote only when every metric is shown within
its allowed bound; at the final look, NoData when a metric that must have data never
got any or when the evidence does not decide — with the samples per arm (events, for
counts) a decision would need; Continue otherwise. No data and no decision are never a
pass.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import betaln

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.data import factorize_runs, one_analysis
from releaserisk.canary.plan import PRIOR_PRECISION, log_mixture_t, sequential_blocks_needed
from releaserisk.canary.result import VERDICT_EXIT
from releaserisk.canary.scale import exponent, scaled, stable_mean, unscaled
from releaserisk.errors import InputError
from releaserisk.escape import json_safe

__all__ = ["SequentialMonitor", "SequentialResult", "sequential_judge"]

#: Prior concentration c of the Beta prior on the canary's share of events. Prior
#: sd ≈ √(ρ(1−ρ)/(c+1)) ≈ 0.1 at ρ = 0.5: centred on "no change", wide enough for
#: the rate ratios (1.2–3×) a canary must catch.
PRIOR_CONCENTRATION = 25.0
#: Rate ratio a count metric's sample-size hint aims at when no allowed bound is set.
HINT_RATE_RATIO = 1.5
#: Prior concentration for +inf values taken as events: uniform at an even split. Off-scale
#: values are rare with no regression, and one that produces them moves their share far
#: from the traffic share, where the counts' prior (concentrated on rate ratios of 1.2–3)
#: has little mass: 8 of 40 canary samples at +inf against none in the baseline reach
#: e = 28 with this prior and e = 2.4 with that one (reject at 20).
OFF_SCALE_CONCENTRATION = 2.0


class _CountTest:
    """Beta–binomial mixture e-process on the canary's share of events."""

    def __init__(
        self, metric: MetricConfig, share: float, alpha: float, concentration: float = PRIOR_CONCENTRATION
    ) -> None:
        self.metric = metric
        self.rho = share
        self.alpha = alpha
        self.a = share * concentration
        self.b = (1 - share) * concentration
        self.k = 0  # canary events
        self.n = 0  # all events
        self.threshold = math.log(1 / alpha)

    def add(self, arm: str, count: float) -> None:
        if not math.isfinite(count):
            raise InputError(f"event count of {self.metric.name} is not finite ({count})")
        count = round(count)
        if count < 0:
            raise InputError(f"negative event count for {self.metric.name}")
        if self.n + count > sys.float_info.max:  # the e-value's arithmetic is in floats
            raise InputError(
                f"event counts of {self.metric.name} add up to more than the largest float "
                f"({sys.float_info.max:.4g}): too many events to judge"
            )
        self.n += count
        if arm == "canary":
            self.k += count

    def log_e(self, rho: float | None = None, k: float | None = None, n: float | None = None) -> float:
        rho = self.rho if rho is None else rho
        k = self.k if k is None else k
        n = self.n if n is None else n
        return (
            betaln(self.a + k, self.b + n - k)
            - betaln(self.a, self.b)
            - (k * math.log(rho) + (n - k) * math.log1p(-rho))
        )

    def _ratio(self, theta: float) -> float:
        return theta / (1 - theta) * (1 - self.rho) / self.rho

    def needed(self) -> float:
        """Events a decision would need (see :meth:`events_needed`), never fewer than it has had, plus one."""
        return max(self.events_needed(), float(self.n + 1))

    def events_needed(self) -> float:
        """Events for the e-value to reach 1/α at a rate ratio of allowed_increase (or 1.5)."""
        ratio = self.metric.allowed_increase if self.metric.allowed_increase > 1 else HINT_RATE_RATIO
        theta = ratio * self.rho / (ratio * self.rho + 1 - self.rho)
        n = 1
        while n < 10**9:
            if self.log_e(k=n * theta, n=n) >= self.threshold:
                return float(n)
            n = max(n + 1, int(n * 1.1))
        return math.inf

    def state(self) -> dict[str, Any]:
        log_e = self.log_e() if self.n else 0.0
        share = self.k / self.n if self.n else math.nan
        direction = self.metric.direction
        worse = (share > self.rho and direction in ("increase", "either")) or (
            share < self.rho and direction in ("decrease", "either")
        )
        status = "no data" if not self.n else "reject" if (log_e >= self.threshold and worse) else "open"
        upper_ratio = math.inf
        if self.n and status == "open" and direction == "increase":
            # upper end of the confidence sequence for θ: where the e-value reaches 1/α
            def gap(theta: float) -> float:
                return self.log_e(theta) - self.threshold

            start = max(share, self.rho, 1e-9)
            top = 1 - 1e-12
            if start < top and gap(start) < 0 < gap(top):
                upper_ratio = self._ratio(brentq(gap, start, top, xtol=1e-10))
            if upper_ratio <= self.metric.allowed_increase and self.metric.allowed_increase > 1.0:
                status = "within bound"
        return {
            "metric": self.metric.name,
            "kind": "counts",
            "status": status,
            "e_value": math.exp(min(log_e, 700.0)),
            "threshold": 1 / self.alpha,
            "canary_events": self.k,
            "total_events": self.n,
            "rate_ratio": self._ratio(share) if self.n and 0 < share < 1 else math.nan,
            "rate_ratio_upper": upper_ratio,
            "needed": math.nan,  # filled in at the horizon (needed())
            "needed_unit": "events",
        }


class _MeanTest:
    """Mixture t e-process on block differences of the arms' means (see the module docstring).

    The block means are kept in the metric's unit (a mean of finite values always fits);
    their differences, sums and squares — and the baseline's mean — are computed in
    units of a power of two (:mod:`releaserisk.canary.scale`) at each look, so values
    near ±1e308 overflow nothing: every statistic here is invariant to that scale.
    """

    def __init__(self, metric: MetricConfig, alpha: float, block_size: int = 0, deflate: bool = True) -> None:
        self.metric = metric
        self.alpha = alpha
        self.threshold = math.log(1 / alpha)
        self.block_size = block_size
        self.deflate = deflate  # False when history calibrates the threshold (the ranks need no deflation)
        self.pending: dict[str, list[np.ndarray]] = {"baseline": [], "canary": []}
        self.means: dict[str, list[float]] = {"baseline": [], "canary": []}  # block means, in the metric's unit
        self.samples = {"baseline": 0, "canary": 0}
        self.baseline_mean = math.nan  # of the samples in blocks
        self.infinite = {"baseline": 0, "canary": 0}
        self.calibration = -math.inf  # history-calibrated log threshold (conformal), if any
        self.blocked: dict[str, list[np.ndarray]] = {"baseline": [], "canary": []}  # samples in blocks, in order
        self.autocorrelation = 0.0  # upper confidence limit of the paired difference series' lag-1 autocorrelation
        self.inflation = 1.0  # ar1_block_inflation of the block means at that autocorrelation

    def add(self, arm: str, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        infinite = ~np.isfinite(values)
        self.infinite[arm] += int(infinite.sum())
        self.pending[arm].append(values[~infinite])

    def close_blocks(self) -> None:
        """Turn pending samples into block differences (at a look)."""
        b = np.concatenate(self.pending["baseline"]) if self.pending["baseline"] else np.array([])
        c = np.concatenate(self.pending["canary"]) if self.pending["canary"] else np.array([])
        size = self.block_size
        if size == 0:  # one block per look, when both arms brought samples
            blocks = 1 if len(b) and len(c) else 0
            cut_b, cut_c = len(b) if blocks else 0, len(c) if blocks else 0
        else:
            blocks = min(len(b), len(c)) // size
            cut_b = cut_c = blocks * size
        if blocks:
            self.means["baseline"] += _block_means(b[:cut_b], blocks)
            self.means["canary"] += _block_means(c[:cut_c], blocks)
        self.samples["baseline"] += cut_b
        self.samples["canary"] += cut_c
        self.pending = {"baseline": [b[cut_b:]], "canary": [c[cut_c:]]}
        if blocks:
            self.blocked["baseline"].append(b[:cut_b])
            self.blocked["canary"].append(c[:cut_c])
            self._update_inflation()

    def _update_inflation(self) -> None:
        """Autocorrelation of the samples behind the blocks, and what it does to the block means.

        Block means of an autocorrelated series are themselves correlated when the blocks
        are short (a look's four 5-minute samples): taken as independent, they overstate
        the evidence — 9 % false alarms at phi = 0.8 and 36 % at 0.95 over six looks of
        four samples where 5 % are allowed. The samples of both arms, paired in order
        (the difference series when both are sampled on one grid), give the lag-1
        autocorrelation at its one-sided 95 % upper confidence limit, as in the robust
        judge, and :func:`releaserisk.canary.robust.ar1_block_inflation` the factor by
        which the e-process's t statistic is deflated.
        """
        from releaserisk.canary.robust import ar1_block_inflation, autocorrelation_upper_bound

        b, c = np.concatenate(self.blocked["baseline"]), np.concatenate(self.blocked["canary"])
        self.blocked = {"baseline": [b], "canary": [c]}
        self.baseline_mean = stable_mean(b)
        paired = min(len(b), len(c))
        unit = exponent(b[:paired], c[:paired])
        self.autocorrelation = autocorrelation_upper_bound(scaled(c[:paired], unit) - scaled(b[:paired], unit))
        per_arm = (self.samples["baseline"] + self.samples["canary"]) / 2.0
        if self.deflate:
            self.inflation = ar1_block_inflation(self.autocorrelation, per_arm, len(self.means["baseline"]))

    def _finite(self, arm: str) -> int:
        """The arm's finite samples so far: in blocks and pending."""
        return self.samples[arm] + sum(len(v) for v in self.pending[arm])

    def _off_scale(self) -> tuple[float, bool]:
        """Infinite values as events: ``(log e-value, rejected)`` of the count e-process.

        The fixed judge tests the canary's share of +inf once, with Fisher's exact test
        (:func:`releaserisk.canary.judge._off_scale`); repeated at every look that test is
        not anytime-valid (one +inf among a look's first samples gave RollBack). Here each
        +inf is an event and, with no regression, comes from the canary with probability
        its share of the samples so far: the Beta–binomial mixture e-process of
        :class:`_CountTest` (Lindon et al., KDD 2022) on those events with the prior of
        :data:`OFF_SCALE_CONCENTRATION`, rejected at ``1/alpha`` with the canary's share of
        them above its share of the samples.
        """
        in_b, in_c = self.infinite["baseline"], self.infinite["canary"]
        if not in_c or self.metric.direction == "decrease":
            return 0.0, False
        n_b, n_c = in_b + self._finite("baseline"), in_c + self._finite("canary")
        if not n_b:
            return 0.0, False
        events = _CountTest(self.metric, n_c / (n_b + n_c), self.alpha, OFF_SCALE_CONCENTRATION)
        events.add("canary", in_c)
        events.add("baseline", in_b)
        log_e = events.log_e()
        return log_e, log_e >= events.threshold and in_c / events.n > events.rho

    @property
    def differences(self) -> np.ndarray:
        """The block differences ``mean(canary_j) - mean(baseline_j)`` in the metric's unit (±inf beyond its range)."""
        d, unit = self._scaled()[:2]
        return np.array([unscaled(v, unit) for v in d])

    def _scaled(self) -> tuple[np.ndarray, int, float]:
        """Block differences and the baseline's mean in units of ``2**unit``, and ``unit``.

        ``unit`` is one more than the exponent of the largest block mean: a difference of
        two block means then lies in (-1, 1), a sum of n squares below n.
        """
        means_b, means_c = np.asarray(self.means["baseline"]), np.asarray(self.means["canary"])
        unit = exponent(means_b, means_c, [self.baseline_mean]) + 1
        return scaled(means_c, unit) - scaled(means_b, unit), unit, float(scaled(self.baseline_mean, unit))

    def log_e(self, mu: float = 0.0) -> float:
        d, unit, _ = self._scaled()
        d = d - float(scaled(mu, unit))
        return log_mixture_t(float(d.sum()), float(np.dot(d, d)), len(d), inflation=self.inflation)

    def _shift_bounds(self) -> tuple[float, float]:
        """The confidence sequence for the mean shift at this look, in closed form.

        ``E_n(mu) >= e^T`` iff ``q(mu) = S(mu)^2 / ((c + n) V(mu)) >= q*`` with
        ``q* = 1 - (c / (c + n))^(1/n) e^(-2T/n)``; with ``k = (c + n) q*`` this is a
        quadratic in ``mu`` whose roots are ``S/n ± sqrt(k (n V - S^2) / (n - k)) / n``;
        the t statistic deflated by ``sqrt(inflation)`` (:func:`log_mixture_t`) widens the
        half-width by that factor. When ``k >= n`` no shift is excluded yet: the sequence
        is the whole line. In units of ``2**unit`` (:meth:`_scaled`).
        """
        d = self._scaled()[0]
        n = len(d)
        threshold = max(self.threshold, self.calibration)
        c = PRIOR_PRECISION
        k = (c + n) * -math.expm1((math.log(c / (c + n)) - 2.0 * threshold) / n)
        if k >= n or not math.isfinite(threshold):
            return -math.inf, math.inf
        total, squares = float(d.sum()), float(np.dot(d, d))
        half = math.sqrt(max(self.inflation * k * (n * squares - total * total) / (n - k), 0.0)) / n
        return total / n - half, total / n + half

    def needed(self) -> float:
        """Samples per arm a decision would need: blocks needed times the samples per block.

        At least one block more than the metric has: the blocks it has did not decide,
        so a hint never asks for fewer samples than the arms already hold.
        """
        n = len(self.means["baseline"])
        per_block = (self.samples["baseline"] + self.samples["canary"]) / (2 * n) if n else math.nan
        return max(self.blocks_needed(), n + 1) * per_block

    def blocks_needed(self) -> float:
        """Blocks for the e-value to decide on the observed (or allowed-bound) effect, at 80 % power."""
        d, _, mean_b = self._scaled()
        if len(d) < 2 or d.std(ddof=1) == 0:
            return math.inf
        allowed = max(self.metric.allowed_increase - 1.0, 1.0 - self.metric.allowed_decrease, 0.0) * abs(mean_b)
        effect = allowed if allowed > 0 else abs(float(d.mean()))
        theta = effect / float(d.std(ddof=1)) / math.sqrt(self.inflation)
        return sequential_blocks_needed(theta, math.exp(-max(self.threshold, self.calibration)))

    def state(self) -> dict[str, Any]:
        m = self.metric
        n = len(self.means["baseline"])
        n_b, n_c = self.samples["baseline"], self.samples["canary"]
        base = {"metric": m.name, "kind": "samples", "blocks": n, "n_baseline": n_b, "n_canary": n_c}
        infinite_log_e, infinite_reject = self._off_scale()
        if infinite_reject:
            return {
                **base, "status": "reject", "e_value": math.exp(min(infinite_log_e, 700.0)),
                "threshold": 1 / self.alpha, "infinite_canary": self.infinite["canary"],
                "infinite_baseline": self.infinite["baseline"],
            }  # fmt: skip
        if n < 1:  # no block yet: what each arm brought, so "no data" is not read as "no samples"
            return {
                **base, "status": "no data", "e_value": math.nan, "finite_baseline": self._finite("baseline"),
                "finite_canary": self._finite("canary"), "infinite_baseline": self.infinite["baseline"],
                "infinite_canary": self.infinite["canary"],
            }  # fmt: skip
        log_e = self.log_e()
        threshold = max(self.threshold, self.calibration)
        d, unit, mean_b = self._scaled()  # in units of 2**unit: nothing below overflows
        shift = float(np.mean(d))
        ratio = (mean_b + shift) / mean_b if mean_b else math.nan
        low, high = self._shift_bounds()
        ratio_low = 1 + low / mean_b if mean_b > 0 else math.nan
        ratio_high = 1 + high / mean_b if mean_b > 0 else math.nan
        beyond_up = math.isnan(ratio) or ratio >= m.allowed_increase
        beyond_down = math.isnan(ratio) or ratio <= m.allowed_decrease
        worse = (shift > 0 and m.direction in ("increase", "either") and beyond_up) or (
            shift < 0 and m.direction in ("decrease", "either") and beyond_down
        )
        within = (m.direction == "decrease" or (m.allowed_increase > 1.0 and ratio_high <= m.allowed_increase)) and (
            m.direction == "increase" or (m.allowed_decrease < 1.0 and ratio_low >= m.allowed_decrease)
        )
        status = "reject" if (log_e >= threshold and worse) else "within bound" if within else "open"
        return {
            **base,
            "status": status,
            "e_value": math.exp(min(log_e, 700.0)),
            "threshold": math.exp(min(threshold, 700.0)),
            "shift": unscaled(shift, unit),
            "shift_low": unscaled(low, unit),
            "shift_high": unscaled(high, unit),
            "ratio": ratio,
            "ratio_low": ratio_low,
            "ratio_high": ratio_high,
            "autocorrelation": self.autocorrelation,
            "inflation": self.inflation,
            "needed": math.nan,  # filled in at the horizon (needed())
            "needed_unit": "samples per arm",
        }


def _block_means(values: np.ndarray, blocks: int) -> list[float]:
    """Means of ``blocks`` equal consecutive blocks of finite values, without overflow (metric's unit)."""
    unit = exponent(values)
    means = scaled(values, unit).reshape(blocks, -1).mean(axis=1)
    return np.ldexp(means, unit).tolist()  # a mean is no larger than the largest value: no overflow


@dataclass
class SequentialResult:
    """Outcome of sequential monitoring up to the latest look (house result pattern).

    Attributes
    ----------
    decision : str
        ``Promote``, ``RollBack``, ``Continue`` or ``NoData`` (also: undecided at the horizon).
    look : int
        The look (1-based) at which the decision was reached.
    reason : str
    metrics : list of dict
        Per-metric state at the decision (e-values, confidence sequence, status, and
        ``needed``: samples per arm — events for counts — a decision would need).
    history : DataFrame
        One row per look and metric (built on access from ``records``).
    """

    decision: str
    look: int
    reason: str
    metrics: list[dict[str, Any]]
    records: list[dict[str, Any]] = field(repr=False, default_factory=list)
    mode: str = "sequential"

    @property
    def history(self) -> pd.DataFrame:
        """One row per look and metric: the states at every look so far."""
        return pd.DataFrame(self.records)

    @property
    def exit_code(self) -> int:
        """0 promote, 1 roll back, 3 continue or no data."""
        return VERDICT_EXIT[self.decision]

    @property
    def verdict(self) -> str:
        """The decision (the name the fixed judge uses)."""
        return self.decision

    @property
    def frame(self) -> pd.DataFrame:
        """One row per metric at the decision, with a ``mode`` column."""
        return pd.DataFrame([{"mode": self.mode, **m} for m in self.metrics])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: mode, decision, look, reason and each metric's evidence (NaN and infinities as null)."""
        return json_safe(
            {
                "mode": self.mode,
                "decision": self.decision,
                "look": self.look,
                "reason": self.reason,
                "metrics": self.metrics,
            }
        )

    def summary(self) -> str:
        """A readable account of the decision and each metric's evidence."""
        lines = [f"sequential decision: {self.decision} at look {self.look}", f"  {self.reason}"]
        for m in self.metrics:
            if m["kind"] == "counts":
                detail = (
                    f"e-value {m['e_value']:.3g} (reject at {m['threshold']:.3g}), "
                    f"canary events {m['canary_events']} of {m['total_events']}"
                )
            elif m["status"] == "no data" and "finite_baseline" in m:
                infinite = m["infinite_baseline"] + m["infinite_canary"]
                detail = f"no block: finite samples {m['finite_baseline']} baseline, {m['finite_canary']} canary" + (
                    f"; infinite {m['infinite_baseline']} baseline, {m['infinite_canary']} canary" if infinite else ""
                )
            elif "infinite_canary" in m:
                detail = (
                    f"e-value {m['e_value']:.3g} (reject at {m['threshold']:.3g}) on +inf values: "
                    f"{m['infinite_canary']} in the canary, {m['infinite_baseline']} in the baseline"
                )
            elif m["status"] == "no data" or "ratio" not in m:
                detail = f"{m['n_baseline']}/{m['n_canary']} samples, {m['blocks']} blocks"
            else:
                detail = (
                    f"e-value {m['e_value']:.3g} (reject at {m['threshold']:.3g}), ratio {m['ratio']:.4g} "
                    f"in [{m['ratio_low']:.4g}, {m['ratio_high']:.4g}], {m['blocks']} blocks of "
                    f"{m['n_baseline']}/{m['n_canary']} samples"
                )
            if math.isfinite(m.get("needed", math.nan)):
                detail += f"; needs about {m['needed']:,.0f} {m['needed_unit']}"
            lines.append(f"  {m['metric']:<24} {m['status']:<13} {detail}")
            if m.get("warning"):
                lines.append(f"    warning: {m['warning']}")
        return "\n".join(lines)


class SequentialMonitor:
    """Feed observations as they arrive; ask for a decision at any look.

    Parameters
    ----------
    config : CanaryConfig
        ``alpha``, ``canary_share``, ``block_size`` and per-metric settings (``kind``).
    metrics : list of str
        The metrics monitored (fixes the Bonferroni split).

    Examples
    --------
    >>> from releaserisk.canary.config import CanaryConfig, MetricConfig
    >>> cfg = CanaryConfig(metrics={"errors": MetricConfig("errors", kind="counts", direction="increase")})
    >>> mon = SequentialMonitor(cfg, ["errors"])
    >>> mon.add_counts("errors", baseline=10, canary=40)
    >>> mon.look().decision
    'RollBack'
    """

    def __init__(self, config: CanaryConfig, metrics: list[str]) -> None:
        if not metrics:
            raise InputError("sequential monitoring needs at least one metric")
        self.config = config
        per_metric_alpha = config.alpha / len(metrics)
        self.tests: dict[str, _CountTest | _MeanTest] = {}
        for name in metrics:
            metric = config.metric(name)
            if metric.kind == "counts":
                self.tests[name] = _CountTest(metric, config.canary_share, per_metric_alpha)
            else:
                self.tests[name] = _MeanTest(metric, per_metric_alpha, config.block_size)
        self.looks = 0
        self._history: list[dict[str, Any]] = []
        self._decided: SequentialResult | None = None
        self._timing: dict[str, tuple[bool | None, pd.Timedelta | None]] = {}

    def _test(self, metric: str):
        try:
            return self.tests[metric]
        except KeyError:
            raise InputError(f"metric {metric!r} is not monitored") from None

    def add_counts(self, metric: str, *, baseline: float = 0, canary: float = 0) -> None:
        """Add event counts observed since the last call."""
        test = self._test(metric)
        if not isinstance(test, _CountTest):
            raise InputError(f"{metric} is a samples metric; use add_samples")
        test.add("baseline", baseline)
        test.add("canary", canary)

    def add_samples(self, metric: str, arm: str, values) -> None:
        """Add samples of one arm (NaN dropped; ±inf counted as off-scale, see judge._off_scale)."""
        test = self._test(metric)
        if not isinstance(test, _MeanTest):
            raise InputError(f"{metric} is a counts metric; use add_counts")
        test.add(arm, np.asarray(values, dtype=float))

    def calibrate(self, metric: str, log_threshold: float) -> None:
        """Raise a samples metric's rejection threshold to a history-calibrated log e-value.

        The metric's e-values are then left undeflated for autocorrelation, as the
        historical ones were (:func:`history_log_threshold`): the conformal rank needs no
        deflation to hold false alarms at alpha.
        """
        test = self._test(metric)
        if isinstance(test, _MeanTest):
            test.calibration = log_threshold
            # the conformal rank holds false alarms at alpha whatever the dependence; the
            # history's e-values were computed undeflated (history_log_threshold), so are these
            test.deflate, test.inflation = False, 1.0

    def describe_baseline(self, metric: str, concurrent: bool | None, lag: pd.Timedelta | None = None) -> None:
        """Record whether a metric's baseline is concurrent (see :func:`releaserisk.canary.robust.baseline_timing`).

        Parameters
        ----------
        metric : str
        concurrent : bool or None
            False: the baseline's window lies before (or after) the canary's.
        lag : Timedelta, optional
            Canary start minus baseline start, for the warning.
        """
        self._test(metric)
        self._timing[metric] = (concurrent, lag)

    def _baseline_note(self, name: str) -> dict[str, Any]:
        from releaserisk.canary.robust import not_concurrent_warning

        concurrent, lag = self._timing.get(name, (None, None))
        test = self.tests[name]
        calibrated = isinstance(test, _MeanTest) and test.calibration > -math.inf
        warning = not_concurrent_warning(lag) if concurrent is False and not calibrated else None
        return {"concurrent": concurrent, "warning": warning}

    def look(self, final: bool = False) -> SequentialResult:
        """Decide at this look. ``final=True`` marks the end of the planned horizon.

        Once RollBack or Promote is reached it stands; later looks return it again.
        """
        if self._decided is not None:
            return self._decided
        self.looks += 1
        for test in self.tests.values():
            if isinstance(test, _MeanTest):
                test.close_blocks()
        states = [{**test.state(), **self._baseline_note(name)} for name, test in self.tests.items()]
        if final:  # the sample-size hint of every undecided metric
            for state, test in zip(states, self.tests.values(), strict=True):
                if state["status"] == "open":
                    state["needed"] = test.needed()
        for s in states:
            self._history.append({"look": self.looks, **s})
        decision, reason = self._decide(states, final)
        result = SequentialResult(decision, self.looks, reason, states, list(self._history))
        if decision in ("RollBack", "Promote"):
            self._decided = result
        return result

    def _decide(self, states: list[dict[str, Any]], final: bool) -> tuple[str, str]:
        rejected = [s for s in states if s["status"] == "reject"]
        empty = [s["metric"] for s in states if s["status"] == "no data"]
        required_empty = [name for name in empty if self.tests[name].metric.must_have_data]
        open_ = [s for s in states if s["status"] == "open"]
        if rejected:
            caveat = " against a baseline that is not concurrent, uncalibrated: it may be drift" * bool(
                rejected[0].get("warning")
            )
            return "RollBack", f"{rejected[0]['metric']} regressed (anytime-valid test rejected){caveat}"
        if final and (required_empty or empty):
            return "NoData", f"no data for {', '.join(required_empty or empty)}"
        if all(s["status"] == "within bound" for s in states):
            return "Promote", "every metric is shown within its allowed bound"
        if final:
            hints = [
                f"{s['metric']} needs about {s['needed']:,.0f} {s['needed_unit']}"
                for s in open_
                if math.isfinite(s.get("needed", math.nan))
            ]
            undecided = ", ".join(s["metric"] for s in open_)
            hint = f"; {'; '.join(hints)}" if hints else "; set an allowed bound > 1 to be able to promote"
            return "NoData", f"inconclusive at the horizon: {undecided} neither regressed nor shown within bound{hint}"
        return "Continue", "no metric has crossed its boundary yet"


def sequential_judge(
    samples: pd.DataFrame,
    config: CanaryConfig | None = None,
    looks: int = 12,
    *,
    history: pd.DataFrame | None = None,
) -> SequentialResult:
    """Replay time-stamped samples through a :class:`SequentialMonitor` in ``looks`` windows.

    Parameters
    ----------
    samples : DataFrame
        From :func:`releaserisk.load_samples` (``kind`` counts rows carry event counts).
    config : CanaryConfig, optional
    looks : int
        Number of equally spaced looks over the samples' time range (the last is final).
    history : DataFrame, optional
        ``metric, ts, value`` (``arm`` optional) before the canary: each samples
        metric's threshold is raised to the conformal bound of the running maximum
        e-value over the comparable historical windows (module docstring).

    Returns
    -------
    SequentialResult
        The first decisive look, or the state at the final look.

    Raises
    ------
    InputError
        ``looks`` below 1, or samples the monitor cannot take.
    """
    config = config or CanaryConfig()
    if looks < 1:
        raise InputError("looks must be >= 1")
    samples = one_analysis(samples)
    metric_codes, metric_names = factorize_runs(samples["metric"].astype(str))
    names = sorted({str(name) for name in metric_names} | set(config.metrics))
    arm_codes, arm_names = factorize_runs(samples["arm"])
    if (arm_codes < 0).any() or not all(arm in ("baseline", "canary") for arm in arm_names):
        raise InputError("arm must be 'baseline' or 'canary'")
    is_canary = np.isin(arm_codes, [i for i, arm in enumerate(arm_names) if arm == "canary"])
    kinds = {}
    if "kind" in samples:  # the kind of each metric's first row
        first_row = np.full(len(metric_names), len(samples), dtype=np.int64)
        np.minimum.at(first_row, metric_codes, np.arange(len(samples)))
        kinds = dict(zip(map(str, metric_names), samples["kind"].to_numpy()[first_row], strict=True))
    metrics = {}
    for name in names:
        metric = config.metric(name)
        if kinds.get(name) == "counts" and metric.kind != "counts":
            metric = MetricConfig(**{**metric.__dict__, "kind": "counts"})
        metrics[name] = metric
    config = CanaryConfig(**{**config.__dict__, "metrics": metrics})
    monitor = SequentialMonitor(config, names)
    _describe_baselines(monitor, samples, metric_codes, metric_names, is_canary)
    if history is not None:
        for name in names:
            if metrics[name].kind == "samples":
                bound = history_log_threshold(samples, history, name, config, looks, len(names))
                if bound is not None:
                    monitor.calibrate(name, bound)
    # one sort by (look, metric, arm), then slices: no per-look pandas grouping
    width = len(metric_names) * 2
    keys = _look_of(samples, looks, is_canary) * width + metric_codes * 2 + is_canary
    order = np.argsort(keys, kind="stable")
    values = samples["value"].to_numpy(dtype=float)[order]
    bounds = np.searchsorted(keys[order], np.arange(looks * width + 1))
    result = None
    for look in range(looks):
        for code, name in enumerate(metric_names):
            for offset, arm in enumerate(("baseline", "canary")):
                key = look * width + code * 2 + offset
                part = values[bounds[key] : bounds[key + 1]]
                if not len(part):
                    continue
                if metrics[name].kind == "counts":
                    monitor.add_counts(name, **{arm: _look_count(name, part)})
                else:
                    monitor.add_samples(name, arm, part)
        result = monitor.look(final=look == looks - 1)
        if result.decision in ("RollBack", "Promote"):
            break
    return result


def _look_count(name: str, part: np.ndarray) -> float:
    """The events of one arm in one look (NaN counts none); a typed error when their sum leaves the float range."""
    with np.errstate(over="ignore"):
        total = float(np.nansum(part))
    if math.isinf(total) and np.isfinite(part[~np.isnan(part)]).all():
        raise InputError(
            f"event counts of {name} in one look add up to more than the largest float "
            f"({sys.float_info.max:.4g}): too many events to judge"
        )
    return total


def _describe_baselines(monitor, samples, metric_codes, metric_names, is_canary) -> None:
    """Tell the monitor, per metric, whether its arms' time ranges overlap."""
    from releaserisk.canary.robust import baseline_timing

    if "ts" not in samples:
        return
    ns = pd.to_datetime(samples["ts"], utc=True).to_numpy(dtype="datetime64[ns]")
    for code, name in enumerate(metric_names):
        own = metric_codes == code
        b_ts, c_ts = ns[own & ~is_canary], ns[own & is_canary]
        monitor.describe_baseline(str(name), *baseline_timing(b_ts, c_ts))


def _look_of(samples: pd.DataFrame, looks: int, is_canary: np.ndarray) -> np.ndarray:
    """The look (0-based) of each sample: equal slices of each arm's own time range.

    Each arm is sliced on its own clock so that a baseline from an earlier day (the same
    window yesterday) fills the same looks as the canary. Samples without a timestamp
    belong to the last look.
    """
    window = np.full(len(samples), looks - 1, dtype=np.int64)
    if "ts" not in samples:
        return window
    ns = pd.to_datetime(samples["ts"], utc=True).to_numpy(dtype="datetime64[ns]")
    known = ~np.isnat(ns)
    ns = ns.astype(np.int64)
    for arm in (~is_canary, is_canary):
        stamped = arm & known
        if not stamped.any():
            continue
        start, end = ns[stamped].min(), ns[stamped].max()
        span = pd.Timedelta(end - start, unit="ns") / looks
        if span > pd.Timedelta(0):
            window[stamped] = np.clip(((ns[stamped] - start) / span.value).astype(np.int64), 0, looks - 1)
    return window


def history_log_threshold(
    samples: pd.DataFrame, history: pd.DataFrame, name: str, config: CanaryConfig, looks: int, metrics: int
) -> float | None:
    """Conformal bound on the running-maximum log e-value of one metric over its history.

    Parameters
    ----------
    samples : DataFrame
        The canary's samples (fix the window length and the arms' lag).
    history : DataFrame
        ``metric, ts, value`` (``arm`` optional) before the canary.
    name : str
        The metric.
    config : CanaryConfig
        ``alpha`` and ``block_size``.
    looks : int
        Looks per window.
    metrics : int
        Number of monitored metrics (Bonferroni).

    Returns
    -------
    float or None
        The ``ceil((1 - a)(N + 1))``-th smallest of the N historical running maxima
        (``a = alpha / metrics``); None when history has fewer than
        ``ceil(1/a) - 1`` comparable windows.
    """
    from releaserisk.canary.robust import history_windows, min_history_windows

    alpha = config.alpha / metrics
    own = samples[samples["metric"].astype(str) == name]
    maxima = []
    for window in history_windows(own, history[history["metric"].astype(str) == name]):
        monitor = _MeanTest(config.metric(name), alpha, config.block_size, deflate=False)
        best = -math.inf
        for look in range(looks):
            for arm, values in window.items():
                part = np.array_split(values, looks)[look]
                monitor.add(arm, part)
            monitor.close_blocks()
            if len(monitor.differences) >= 2:
                best = max(best, monitor.log_e())
        maxima.append(best)
    if len(maxima) < min_history_windows(alpha):
        return None
    rank = math.ceil((1 - alpha) * (len(maxima) + 1))
    return math.inf if rank > len(maxima) else float(np.sort(maxima)[rank - 1])
