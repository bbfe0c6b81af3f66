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

Latency-type samples
    A time-uniform Dvoretzky–Kiefer–Wolfowitz band for each arm's CDF (Howard &
    Ramdas, "Sequential estimation of quantiles with applications to A/B-testing and
    best-arm identification", Bernoulli 2022, Thm. 2):
    sup_x |F̂_t(x) − F(x)| ≤ 0.85 √((log log(e t) + 0.8 log(1612/α)) / t) for all t.
    Inverting it gives a confidence sequence for the configured quantile of each arm;
    the canary regresses when its lower bound exceeds the baseline's upper bound
    times ``allowed_increase``.

Several metrics: Bonferroni on the e-values (each metric at α/m; a latency metric
splits its share between its two arms). Decisions: RollBack as soon as one metric
rejects; Promote when every metric is shown within its allowed bound, or when the
planned horizon ends without a rejection; NoData when a metric that must have data
never got any — no data is never a pass; Continue otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import betaln

from releaserisk.canary.config import CanaryConfig, MetricConfig
from releaserisk.canary.data import one_analysis
from releaserisk.canary.result import VERDICT_EXIT
from releaserisk.errors import InputError
from releaserisk.escape import json_safe

__all__ = ["SequentialMonitor", "SequentialResult", "dkw_radius", "sequential_judge"]

#: Prior concentration c of the Beta prior on the canary's share of events. Prior
#: sd ≈ √(ρ(1−ρ)/(c+1)) ≈ 0.1 at ρ = 0.5: centred on "no change", wide enough for
#: the rate ratios (1.2–3×) a canary must catch.
PRIOR_CONCENTRATION = 25.0


def dkw_radius(t: int, alpha: float) -> float:
    """Howard & Ramdas (2022) time-uniform DKW radius for ``t`` samples at level ``alpha``."""
    if t < 1:
        return math.inf
    return 0.85 * math.sqrt((math.log(math.log(math.e * t)) + 0.8 * math.log(1612.0 / alpha)) / t)


class _CountTest:
    """Beta–binomial mixture e-process on the canary's share of events."""

    def __init__(self, metric: MetricConfig, share: float, alpha: float) -> None:
        self.metric = metric
        self.rho = share
        self.alpha = alpha
        self.a = share * PRIOR_CONCENTRATION
        self.b = (1 - share) * PRIOR_CONCENTRATION
        self.k = 0  # canary events
        self.n = 0  # all events

    def add(self, arm: str, count: float) -> None:
        count = round(count)
        if count < 0:
            raise InputError(f"negative event count for {self.metric.name}")
        self.n += count
        if arm == "canary":
            self.k += count

    def log_e(self, rho: float | None = None) -> float:
        rho = self.rho if rho is None else rho
        k, n = self.k, self.n
        return (
            betaln(self.a + k, self.b + n - k)
            - betaln(self.a, self.b)
            - (k * math.log(rho) + (n - k) * math.log1p(-rho))
        )

    def _ratio(self, theta: float) -> float:
        return theta / (1 - theta) * (1 - self.rho) / self.rho

    def state(self) -> dict[str, Any]:
        threshold = math.log(1 / self.alpha)
        log_e = self.log_e() if self.n else 0.0
        share = self.k / self.n if self.n else math.nan
        direction = self.metric.direction
        worse = (share > self.rho and direction in ("increase", "either")) or (
            share < self.rho and direction in ("decrease", "either")
        )
        status = "no data" if not self.n else "reject" if (log_e >= threshold and worse) else "open"
        upper_ratio = math.inf
        if self.n and status == "open" and direction == "increase":
            # upper end of the confidence sequence for θ: where the e-value reaches 1/α
            def gap(theta: float) -> float:
                return self.log_e(theta) - threshold

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
        }


class _QuantileTest:
    """Confidence sequences for one quantile of each arm, from time-uniform DKW bands."""

    def __init__(self, metric: MetricConfig, alpha: float) -> None:
        self.metric = metric
        self.alpha = alpha
        self.values: dict[str, list[float]] = {"baseline": [], "canary": []}

    def add(self, arm: str, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        self.values[arm].extend(values.tolist())

    def _bounds(self, arm: str) -> tuple[float, float]:
        values = np.sort(np.asarray(self.values[arm]))
        t = len(values)
        if not t:
            return -math.inf, math.inf
        eps = dkw_radius(t, self.alpha / 2)
        q = self.metric.quantile
        lo_index = math.ceil((q - eps) * t) - 1
        hi_index = math.ceil((q + eps) * t) - 1
        low = values[lo_index] if lo_index >= 0 else -math.inf
        high = values[hi_index] if hi_index < t else math.inf
        return float(low), float(high)

    def state(self) -> dict[str, Any]:
        b_low, b_high = self._bounds("baseline")
        c_low, c_high = self._bounds("canary")
        m = self.metric
        has_data = bool(self.values["baseline"]) and bool(self.values["canary"])
        high = m.direction in ("increase", "either") and c_low > b_high * max(m.allowed_increase, 1.0)
        low = m.direction in ("decrease", "either") and c_high < b_low * min(m.allowed_decrease, 1.0)
        within = (
            m.direction == "increase"
            and m.allowed_increase > 1.0
            and math.isfinite(c_high)
            and c_high <= b_low * m.allowed_increase
        )
        status = "no data" if not has_data else "reject" if (high or low) else "within bound" if within else "open"
        return {
            "metric": m.name,
            "kind": "samples",
            "status": status,
            "quantile": m.quantile,
            "baseline_low": b_low,
            "baseline_high": b_high,
            "canary_low": c_low,
            "canary_high": c_high,
            "n_baseline": len(self.values["baseline"]),
            "n_canary": len(self.values["canary"]),
        }


@dataclass
class SequentialResult:
    """Outcome of sequential monitoring up to the latest look.

    Attributes
    ----------
    decision : str
        ``Promote``, ``RollBack``, ``Continue`` or ``NoData``.
    look : int
        The look (1-based) at which the decision was reached.
    reason : str
    metrics : list of dict
        Per-metric state at the decision (e-values, bounds, status).
    history : DataFrame
        One row per look and metric.
    """

    decision: str
    look: int
    reason: str
    metrics: list[dict[str, Any]]
    history: pd.DataFrame = field(repr=False)

    @property
    def exit_code(self) -> int:
        """0 promote, 1 roll back, 3 continue or no data."""
        return VERDICT_EXIT[self.decision]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: decision, look, reason and each metric's evidence (NaN and infinities as null)."""
        return json_safe(
            {
                "mode": "sequential",
                "decision": self.decision,
                "look": self.look,
                "reason": self.reason,
                "metrics": self.metrics,
            }
        )

    def summary(self) -> str:
        lines = [f"sequential decision: {self.decision} at look {self.look}", f"  {self.reason}"]
        for m in self.metrics:
            if m["kind"] == "counts":
                detail = (
                    f"e-value {m['e_value']:.3g} (reject at {m['threshold']:.3g}), "
                    f"canary events {m['canary_events']} of {m['total_events']}"
                )
            else:
                detail = (
                    f"q{m['quantile']:g} canary [{m['canary_low']:.4g}, {m['canary_high']:.4g}] "
                    f"baseline [{m['baseline_low']:.4g}, {m['baseline_high']:.4g}]"
                )
            lines.append(f"  {m['metric']:<24} {m['status']:<13} {detail}")
        return "\n".join(lines)


class SequentialMonitor:
    """Feed observations as they arrive; ask for a decision at any look.

    Parameters
    ----------
    config : CanaryConfig
        ``alpha``, ``canary_share`` and per-metric settings (``kind`` counts or samples).
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
        self.tests: dict[str, _CountTest | _QuantileTest] = {}
        for name in metrics:
            metric = config.metric(name)
            if metric.kind == "counts":
                self.tests[name] = _CountTest(metric, config.canary_share, per_metric_alpha)
            else:
                self.tests[name] = _QuantileTest(metric, per_metric_alpha)
        self.looks = 0
        self._history: list[dict[str, Any]] = []
        self._decided: SequentialResult | None = None

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
        """Add latency-type samples of one arm."""
        test = self._test(metric)
        if not isinstance(test, _QuantileTest):
            raise InputError(f"{metric} is a counts metric; use add_counts")
        test.add(arm, np.asarray(values, dtype=float))

    def look(self, final: bool = False) -> SequentialResult:
        """Decide at this look. ``final=True`` marks the end of the planned horizon.

        Once RollBack or Promote is reached it stands; later looks return it again.
        """
        if self._decided is not None:
            return self._decided
        self.looks += 1
        states = [test.state() for test in self.tests.values()]
        for s in states:
            self._history.append({"look": self.looks, **s})
        rejected = [s for s in states if s["status"] == "reject"]
        empty = [s["metric"] for s in states if s["status"] == "no data"]
        required_empty = [name for name in empty if self.tests[name].metric.must_have_data]
        if rejected:
            decision, reason = "RollBack", f"{rejected[0]['metric']} regressed (anytime-valid test rejected)"
        elif final and (required_empty or len(empty) == len(states)):
            decision, reason = "NoData", f"no data for {', '.join(required_empty or empty)}"
        elif all(s["status"] == "within bound" for s in states):
            decision, reason = "Promote", "every metric is within its allowed bound"
        elif final:
            decision, reason = "Promote", "horizon reached without a regression"
        else:
            decision, reason = "Continue", "no metric has crossed its boundary yet"
        result = SequentialResult(decision, self.looks, reason, states, pd.DataFrame(self._history))
        if decision in ("RollBack", "Promote"):
            self._decided = result
        return result


def sequential_judge(samples: pd.DataFrame, config: CanaryConfig | None = None, looks: int = 12) -> SequentialResult:
    """Replay time-stamped samples through a :class:`SequentialMonitor` in ``looks`` windows.

    Parameters
    ----------
    samples : DataFrame
        From :func:`releaserisk.load_samples` (``kind`` counts rows carry event counts).
    config : CanaryConfig, optional
    looks : int
        Number of equally spaced looks over the samples' time range (the last is final).

    Returns
    -------
    SequentialResult
        The first decisive look, or the state at the final look.
    """
    config = config or CanaryConfig()
    if looks < 1:
        raise InputError("looks must be >= 1")
    samples = one_analysis(samples)
    names = sorted(set(samples["metric"].astype(str)) | set(config.metrics))
    kinds = samples.groupby("metric")["kind"].first().to_dict() if "kind" in samples else {}
    metrics = {}
    for name in names:
        metric = config.metric(name)
        if kinds.get(name) == "counts" and metric.kind != "counts":
            metric = MetricConfig(**{**metric.__dict__, "kind": "counts"})
        metrics[name] = metric
    config = CanaryConfig(**{**config.__dict__, "metrics": metrics})
    monitor = SequentialMonitor(config, names)
    ts = samples["ts"] if "ts" in samples else pd.Series(pd.NaT, index=samples.index)
    if ts.isna().all():
        window = pd.Series(looks - 1, index=samples.index)
    else:
        start, end = ts.min(), ts.max()
        span = (end - start) / looks if end > start else pd.Timedelta(0)
        window = ((ts - start) / span).fillna(looks - 1).astype(int).clip(0, looks - 1) if span else 0 * ts.notna()
        window = pd.Series(window, index=samples.index).astype(int)
    by_window = dict(tuple(samples.groupby(window)))
    result = None
    for look in range(looks):
        chunk = by_window.get(look)
        if chunk is not None:
            for (name, arm), part in chunk.groupby(["metric", "arm"]):
                values = part["value"].to_numpy(dtype=float)
                if metrics[name].kind == "counts":
                    total = float(np.nansum(values))
                    monitor.add_counts(name, **{arm: total})
                else:
                    monitor.add_samples(name, arm, values)
        result = monitor.look(final=look == looks - 1)
        if result.decision in ("RollBack", "Promote"):
            break
    return result
