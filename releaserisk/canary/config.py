"""Canary configuration (TOML), validated in one place.

Example::

    [judge]
    mode = "robust"          # kayenta | robust | sequential (see README, "Canary")
    confidence = 0.98        # interval confidence; 1 - confidence is the per-metric alpha
    tolerance = 0.25         # Kayenta's fraction of |estimate| the interval must clear
    looks = 1                # robust: planned looks at one canary (Bonferroni alpha / looks)
    equivalence_margin = 0.5 # robust: a Pass must rule out a harmful shift of this share of the baseline mean

    [scoring]
    pass = 95.0              # overall score >= pass -> Pass
    marginal = 75.0          # >= marginal -> Marginal, else Fail

    [sequential]
    alpha = 0.05             # false-alarm rate over the whole rollout, all looks
    canary_share = 0.5       # canary's share of traffic (for event counts)
    block_size = 0           # samples per block mean (0: one block per look)

    [groups.errors]
    weight = 60

    [metrics.latency_p99]
    direction = "increase"   # increase | decrease | either
    effect_size = "mean_ratio"   # or "cles"
    allowed_increase = 1.1   # effect size the canary may reach and still pass
    critical_increase = 1.5  # beyond this a critical metric zeroes the score
    critical = true
    must_have_data = true
    nan_strategy = "remove"  # remove | replace (NaN -> 0)
    outliers = "keep"        # keep | remove (IQR fences, outlier_factor)
    group = "latency"
    kind = "samples"         # samples | counts (sequential mode only)
    quantile = 0.5           # accepted for old configs; the sequential mode now compares block means
    classifier = "mann_whitney"  # or "mean_inequality" (Kayenta's simple mean test)

The names follow Kayenta's canary config: ``allowed_*`` are its effect-size
thresholds, ``critical_*`` its critical thresholds, ``must_have_data`` its
"data required". Unknown keys and impossible values raise :class:`ConfigError`
naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from releaserisk.choices import CANARY_MODES
from releaserisk.config import read_toml
from releaserisk.errors import ConfigError

__all__ = ["CANARY_MODES", "CanaryConfig", "MetricConfig", "load_canary_config"]

_DIRECTIONS = ("increase", "decrease", "either")
_EFFECT_SIZES = ("mean_ratio", "cles")
_NAN = ("remove", "replace")
_OUTLIERS = ("keep", "remove")
_KINDS = ("samples", "counts")
_CLASSIFIERS = ("mann_whitney", "mean_inequality")


@dataclass(frozen=True)
class MetricConfig:
    """How one metric is judged (see the module docstring for each key)."""

    name: str
    direction: str = "either"
    effect_size: str = "mean_ratio"
    allowed_increase: float = 1.0
    allowed_decrease: float = 1.0
    critical_increase: float = 1.0
    critical_decrease: float = 1.0
    critical: bool = False
    must_have_data: bool = False
    nan_strategy: str = "remove"
    outliers: str = "keep"
    outlier_factor: float = 3.0
    group: str = "default"
    kind: str = "samples"
    quantile: float = 0.5
    classifier: str = "mann_whitney"

    def __post_init__(self) -> None:
        where = f"metrics.{self.name}"
        for key, allowed in (
            ("direction", _DIRECTIONS),
            ("effect_size", _EFFECT_SIZES),
            ("nan_strategy", _NAN),
            ("outliers", _OUTLIERS),
            ("kind", _KINDS),
            ("classifier", _CLASSIFIERS),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{where}.{key} must be one of {', '.join(allowed)}; got {getattr(self, key)!r}")
        for key in ("allowed_increase", "allowed_decrease", "critical_increase", "critical_decrease"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{where}.{key} must be >= 0")
        if self.outlier_factor <= 0:
            raise ConfigError(f"{where}.outlier_factor must be > 0")
        if not 0 < self.quantile < 1:
            raise ConfigError(f"{where}.quantile must be in (0, 1)")


@dataclass(frozen=True)
class CanaryConfig:
    """The whole canary configuration.

    Attributes
    ----------
    mode : str
        One of :data:`CANARY_MODES` (default ``robust``).
    confidence : float
        Confidence level of the interval (default 0.98); ``1 - confidence`` is the
        per-metric false-alarm rate of the fixed-horizon modes.
    tolerance : float
        The interval must clear ``tolerance * |estimate|`` (default 0.25).
    pass_score, marginal_score : float
        Verdict thresholds on the 0–100 score.
    alpha : float
        Sequential mode: false-alarm rate over all looks and metrics.
    canary_share : float
        Sequential mode: the canary's share of traffic, for event counts.
    looks : int
        Robust mode: the number of looks planned at one canary; each look tests at
        ``(1 - confidence) / looks`` (Bonferroni) so that false alarms over all looks
        stay at ``1 - confidence``.
    equivalence_margin : float
        Robust mode: the harmful shift, as a share of the baseline mean (default 0.5), that
        a Pass must rule out — the margin of an equivalence test (Schuirmann, "A comparison
        of the two one-sided tests procedure…", J. Pharmacokinet. Biopharm. 1987). A
        metric whose shift is not significant but whose interval still reaches past the
        margin (or past its own ``allowed_*`` bound, when wider) is NoData, inconclusive,
        never Pass.
    block_size : int
        Sequential mode: samples per arm in one block mean (0: one block per look).
    metrics : dict of str to MetricConfig
        Per-metric settings; metrics present in the data but not here get defaults.
    group_weights : dict of str to float
        Relative group weights (normalised; need not sum to 100).
    """

    mode: str = "robust"
    confidence: float = 0.98
    tolerance: float = 0.25
    pass_score: float = 95.0
    marginal_score: float = 75.0
    alpha: float = 0.05
    canary_share: float = 0.5
    looks: int = 1
    equivalence_margin: float = 0.5
    block_size: int = 0
    metrics: Mapping[str, MetricConfig] = field(default_factory=dict)
    group_weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in CANARY_MODES:
            raise ConfigError(f"judge.mode must be one of {', '.join(CANARY_MODES)}; got {self.mode!r}")
        if self.looks < 1:
            raise ConfigError("judge.looks must be >= 1")
        if self.block_size < 0:
            raise ConfigError("sequential.block_size must be >= 0")
        if not 0 < self.confidence < 1:
            raise ConfigError("judge.confidence must be in (0, 1)")
        if self.tolerance < 0:
            raise ConfigError("judge.tolerance must be >= 0")
        if not self.equivalence_margin > 0:
            raise ConfigError("judge.equivalence_margin must be > 0 (a share of the baseline mean, 0.5 = 50 %)")
        if not 0 <= self.marginal_score <= self.pass_score <= 100:
            raise ConfigError("scoring needs 0 <= marginal <= pass <= 100")
        if not 0 < self.alpha < 1:
            raise ConfigError("sequential.alpha must be in (0, 1)")
        if not 0 < self.canary_share < 1:
            raise ConfigError("sequential.canary_share must be in (0, 1)")
        for group, weight in self.group_weights.items():
            if weight < 0:
                raise ConfigError(f"groups.{group}.weight must be >= 0")

    def metric(self, name: str) -> MetricConfig:
        """The settings of ``name`` (defaults when the config does not list it)."""
        return self.metrics.get(name) or MetricConfig(name=name)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _take(section: Mapping[str, Any], where: str, allowed: Mapping[str, type]) -> dict[str, Any]:
    out = {}
    for key, value in section.items():
        if key not in allowed:
            raise ConfigError(f"unknown key '{where}.{key}' (known: {', '.join(sorted(allowed))})")
        expected = allowed[key]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ConfigError(f"'{where}.{key}' must be a {expected.__name__}, got {value!r}")
        out[key] = value
    return out


_METRIC_KEYS = {
    f.name: (float if f.type == "float" else bool if f.type == "bool" else str) for f in fields(MetricConfig)
}
_METRIC_KEYS.pop("name")


def canary_config_from_dict(data: Mapping[str, Any]) -> CanaryConfig:
    """Build a :class:`CanaryConfig` from parsed TOML (raises ConfigError on any problem)."""
    known = {"judge", "scoring", "sequential", "metrics", "groups"}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown section '{key}' (known: {', '.join(sorted(known))})")
    judge = _take(
        _table(data, "judge"),
        "judge",
        {"mode": str, "confidence": float, "tolerance": float, "looks": int, "equivalence_margin": float},
    )
    scoring = _take(_table(data, "scoring"), "scoring", {"pass": float, "marginal": float})
    sequential = _take(
        _table(data, "sequential"), "sequential", {"alpha": float, "canary_share": float, "block_size": int}
    )
    metrics = {}
    for name, section in _table(data, "metrics").items():
        if not isinstance(section, Mapping):
            raise ConfigError(f"[metrics.{name}] must be a table")
        metrics[name] = MetricConfig(name=name, **_take(section, f"metrics.{name}", _METRIC_KEYS))
    weights = {}
    for name, section in _table(data, "groups").items():
        if not isinstance(section, Mapping):
            raise ConfigError(f"[groups.{name}] must be a table")
        weights[name] = _take(section, f"groups.{name}", {"weight": float}).get("weight", 1.0)
    return CanaryConfig(
        mode=judge.get("mode", "robust"),
        looks=judge.get("looks", 1),
        equivalence_margin=judge.get("equivalence_margin", 0.5),
        block_size=sequential.get("block_size", 0),
        confidence=judge.get("confidence", 0.98),
        tolerance=judge.get("tolerance", 0.25),
        pass_score=scoring.get("pass", 95.0),
        marginal_score=scoring.get("marginal", 75.0),
        alpha=sequential.get("alpha", 0.05),
        canary_share=sequential.get("canary_share", 0.5),
        metrics=metrics,
        group_weights=weights,
    )


def load_canary_config(path: str | os.PathLike[str]) -> CanaryConfig:
    """Read and validate a canary TOML file.

    Parameters
    ----------
    path : path-like
        A TOML file with ``[judge]``, ``[scoring]``, ``[sequential]`` and ``[metrics.NAME]`` tables.

    Returns
    -------
    CanaryConfig

    Raises
    ------
    ConfigError
        Unreadable file, invalid TOML, unknown key or impossible value.
    """
    file = Path(path)
    data = read_toml(file, "canary config")
    try:
        return canary_config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
