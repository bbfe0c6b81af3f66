"""The pre-deploy gate: score the commits about to ship, the batch, and advise a rollout.

Per commit: calibrated probability of introducing a defect, a band and the top three
reasons in plain words. The batch: its size, churn, maximum and mean change risk and
``1 − Π(1 − p)`` — the probability that at least one change is defective. The band of
the batch selects a rollout plan from :data:`ROLLOUT_POLICY`.

Bands: ``low`` below ``medium_at`` (default 0.15), ``high`` at or above the gate
threshold (``Settings.risk_threshold``, default 0.5), ``medium`` in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from releaserisk.errors import InputError
from releaserisk.escape import markdown_cell

if TYPE_CHECKING:  # the gate scores with a Scorecard and must not import scikit-learn
    from releaserisk.model import RiskModel
    from releaserisk.rollback import RollbackSafety
    from releaserisk.scorecard import Scorecard

__all__ = ["ROLLOUT_POLICY", "GateResult", "band", "describe", "load_rollout_policy", "score_commits"]

SCHEMA_VERSION = 1

#: Rollout plan per batch risk band (defaults; see README "Rollout advice").
ROLLOUT_POLICY: dict[str, dict[str, Any]] = {
    "low": {
        "strategy": "rolling",
        "steps_percent": [100],
        "bake_minutes": 0,
        "monitoring": "fixed",
        "approval_required": False,
        "canary_config": {"judge": {"confidence": 0.98, "tolerance": 0.25}},
    },
    "medium": {
        "strategy": "canary",
        "steps_percent": [10, 50, 100],
        "bake_minutes": 30,
        "monitoring": "fixed",
        "approval_required": False,
        "canary_config": {"judge": {"confidence": 0.98, "tolerance": 0.25}, "scoring": {"pass": 95, "marginal": 75}},
    },
    "high": {
        "strategy": "canary",
        "steps_percent": [1, 5, 25, 100],
        "bake_minutes": 60,
        "monitoring": "sequential",
        "approval_required": True,
        "canary_config": {"sequential": {"alpha": 0.05}, "scoring": {"pass": 95, "marginal": 85}},
    },
}

_PHRASES = {
    "la": "adds {v:,.0f} line{s}",
    "ld": "deletes {v:,.0f} line{s}",
    "nf": "touches {v:,.0f} file{s}",
    "nd": "spans {v:,.0f} director{ies}",
    "ns": "spans {v:,.0f} subsystem{s}",
    # neutral words for these two: a reason reads "(lowers risk)" as often as "(raises risk)",
    # and "edits large files (21 lines before)" or "spreads its edits (entropy 0.00)" said the opposite
    "entropy": "has an edit entropy of {v:.2f} across its files",
    "lt": "edits files of {v:,.0f} line{s} on average",
    "ndev": "touches files {v:,.0f} developer{s} changed before",
    "age": "touches files last changed {v:,.1f} days before",
    "nuc": "touches files with {v:,.0f} earlier change{s}",
    "exp": "its author has {v:,.0f} earlier commit{s}",
    "rexp": "its author's recent experience is {v:,.1f}",
    "sexp": "its author has {v:,.0f} earlier commit{s} in these subsystems",
}


def describe(feature: str, value: float, contribution: float) -> str:
    """A plain-words reason, e.g. "adds 1,240 lines (raises risk)"."""
    if feature == "fix":
        text = "is a bug fix" if value else "is not a bug fix"
    else:
        one = f"{value:,.0f}" == "1"  # "adds 1 line": singular as the count is printed
        phrase = _PHRASES.get(feature, feature + " = {v}")
        text = phrase.format(v=value, s="" if one else "s", ies="y" if one else "ies")
    return f"{text} ({'raises' if contribution > 0 else 'lowers'} risk)"


_POLICY_KEYS = {"strategy": str, "steps_percent": list, "bake_minutes": int, "monitoring": str,
                "approval_required": bool, "canary_config": dict}  # fmt: skip


def load_rollout_policy(path) -> dict[str, dict[str, Any]]:
    """Read a rollout policy TOML (tables ``[low]``, ``[medium]``, ``[high]``) over the defaults.

    Raises
    ------
    ConfigError
        Unreadable file, unknown band or key, or a value of the wrong type.
    """
    import copy

    from releaserisk.config import read_toml
    from releaserisk.errors import ConfigError

    data = read_toml(path, "rollout policy")
    policy = copy.deepcopy(ROLLOUT_POLICY)
    for band_name, plan in data.items():
        if band_name not in policy or not isinstance(plan, dict):
            raise ConfigError(f"{path}: unknown band '{band_name}' (use [low], [medium], [high])")
        for key, value in plan.items():
            expected = _POLICY_KEYS.get(key)
            if expected is None:
                raise ConfigError(f"{path}: unknown key '{band_name}.{key}' (known: {', '.join(_POLICY_KEYS)})")
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"{path}: '{band_name}.{key}' must be a {expected.__name__}")
            policy[band_name][key] = value
    return policy


def band(probability: float, threshold: float, medium_at: float = 0.15) -> str:
    """low / medium / high for a probability."""
    if probability >= threshold:
        return "high"
    return "medium" if probability >= min(medium_at, threshold) else "low"


@dataclass
class GateResult:
    """Scores of a range of commits and the rollout advice."""

    commits: pd.DataFrame  # sha, subject, probability, band, reasons
    batch: dict[str, Any]
    threshold: float
    model_id: str
    advice: dict[str, Any]
    fail_on: str | None = None
    notes: list[str] = field(default_factory=list)
    rollback: RollbackSafety | None = None  # the batch's rollback safety (releaserisk.rollback)

    @property
    def failed(self) -> bool:
        """Whether the gate fails: a commit at or above the threshold (or the --fail-on band), or
        a batch that cannot be rolled back when ``unsafe_rollback_gate`` is ``fail``."""
        if self.rollback is not None and self.rollback.fails_gate:
            return True
        if self.commits.empty:
            return False
        if self.fail_on:
            order = ["low", "medium", "high"]
            return bool(self.commits["band"].map(order.index).max() >= order.index(self.fail_on))
        return bool(self.commits["probability"].max() >= self.threshold)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "model_id": self.model_id,
            "threshold": self.threshold,
            "fail_on": self.fail_on,
            "gate": "fail" if self.failed else "pass",
            "batch": self.batch,
            "rollout": self.advice,
            "commits": [
                {
                    "sha": r.sha,
                    "subject": r.subject,
                    "probability": round(float(r.probability), 4),
                    "band": r.band,
                    "reasons": list(r.reasons),
                }
                for r in self.commits.itertuples()
            ],
            "notes": self.notes,
            # None: not assessed (no repository to read migrations from), never "safe"
            "rollback_safe": None if self.rollback is None else self.rollback.rollback_safe,
            "rollback": None if self.rollback is None else self.rollback.to_dict(),
        }

    def summary(self) -> str:
        n = len(self.commits)
        lines = [
            f"releaserisk gate: {'FAIL' if self.failed else 'pass'} "
            f"({n} commit{'s' * (n != 1)}, threshold {self.threshold:g}, model {self.model_id})"
        ]
        for r in self.commits.itertuples():
            lines.append(f"  {r.sha[:10]}  {r.probability:6.1%}  {r.band:<6}  {r.subject[:60]}")
            lines.extend(f"      - {reason}" for reason in r.reasons)
        b = self.batch
        if b["size"]:
            lines.append(
                f"batch: {b['size']} change{'s' * (b['size'] != 1)}, churn {b['churn']:,}, max {b['max_risk']:.1%}, "
                f"mean {b['mean_risk']:.1%}, P(any defect) {b['any_defect']:.1%} -> {b['band']}"
            )
        a = self.advice
        steps = " → ".join(f"{s}%" for s in a["steps_percent"])
        lines.append(
            f"rollout: {a['strategy']} {steps}, bake {a['bake_minutes']} min, {a['monitoring']} monitoring"
            + (", approval required" if a["approval_required"] else "")
        )
        if self.rollback is not None:
            lines.append(self.rollback.summary())
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def score_rows(self, repo: str) -> pd.DataFrame:
        """The commits' scores as ``risk_scores`` rows (reasons as a JSON list)."""
        import json
        from datetime import UTC, datetime

        return pd.DataFrame(
            {
                "repo": repo,
                "sha": self.commits["sha"],
                "model_id": self.model_id,
                "probability": self.commits["probability"],
                "band": self.commits["band"],
                "explanation": [json.dumps(list(r)) for r in self.commits["reasons"]],
                "scored_at": datetime.now(UTC),
            }
        )

    def markdown(self) -> str:
        """GitHub step-summary markdown (subjects escaped for tables)."""
        rows = ["| commit | risk | band | subject | top reason |", "|---|---:|---|---|---|"]
        for r in self.commits.itertuples():
            subject = markdown_cell(r.subject[:80])
            reason = markdown_cell(r.reasons[0]) if len(r.reasons) else ""
            rows.append(f"| `{r.sha[:10]}` | {r.probability:.1%} | {r.band} | {subject} | {reason} |")
        b, a = self.batch, self.advice
        head = f"### releaserisk: {'❌ gate failed' if self.failed else '✅ gate passed'}\n\n"
        steps = " → ".join(f"{s}%" for s in a["steps_percent"])
        approval = ", approval required" if a["approval_required"] else ""
        batch = (
            f"\n\n**Batch**: {b['size']} changes, P(any defect) {b['any_defect']:.1%} ({b['band']}). "
            f"**Rollout**: {a['strategy']} {steps}, {a['monitoring']} monitoring{approval}.\n"
        )
        if self.rollback is not None and not self.rollback.rollback_safe:
            reasons = "".join(f"\n- {markdown_cell(reason)}" for reason in self.rollback.reasons)
            batch += f"\n**Rollback unsafe**: {self.rollback.advice}.{reasons}\n"
        return head + "\n".join(rows) + batch


def score_commits(
    model: Scorecard | RiskModel,
    features: pd.DataFrame,
    *,
    threshold: float,
    model_id: str,
    fail_on: str | None = None,
    policy: dict[str, dict[str, Any]] | None = None,
    rollback: RollbackSafety | None = None,
) -> GateResult:
    """Score commits (rows of ``change_features`` with ``sha`` and ``subject``) and their batch.

    Parameters
    ----------
    model : Scorecard or RiskModel
        A fitted model, or its scorecard (:func:`releaserisk.scorecard.load_scorer`).
    features : DataFrame
        One row per non-merge commit in the range, with the model's feature columns.
    threshold : float
        Gate threshold on a commit's probability (the ``high`` band starts here).
    model_id : str
    fail_on : {"low", "medium", "high"}, optional
        Fail when any commit reaches this band instead of the threshold.
    policy : dict, optional
        Rollout plan per band (default :data:`ROLLOUT_POLICY`; see :func:`load_rollout_policy`).
    rollback : RollbackSafety, optional
        The batch's rollback safety (:func:`releaserisk.rollback.assess_rollback`): an unsafe
        batch gets forward-fix advice and, when so configured, fails the gate.

    Returns
    -------
    GateResult
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be a probability in (0, 1], got {threshold:g}")
    frame = features.reset_index(drop=True)
    notes: list[str] = []
    if frame.empty:
        probabilities = np.array([])
        reasons: list[list[str]] = []
        notes.append("no non-merge commits in the range")
    else:
        probabilities = model.predict_proba(frame)[:, 1]
        top = model.explain(frame, top=3)
        # one pass over the explanations (filtering them per commit was quadratic in the range)
        phrases = [describe(f, v, c) for f, v, c in zip(top["feature"], top["value"], top["contribution"], strict=True)]
        by_row = pd.Series(phrases, dtype=object).groupby(top["row"].to_numpy(), sort=False).agg(list)
        reasons = [by_row.get(i, []) for i in range(len(frame))]
    commits = pd.DataFrame(
        {
            # feature rows from elsewhere (a notebook, a CSV) may lack them
            "sha": frame["sha"] if "sha" in frame else pd.Series([None] * len(frame), dtype=object),
            "subject": frame["subject"] if "subject" in frame else pd.Series([None] * len(frame), dtype=object),
            "probability": probabilities,
            "band": [band(p, threshold) for p in probabilities],
            "reasons": reasons,
        }
    )
    any_defect = 1.0 - float(np.prod(1.0 - probabilities)) if len(probabilities) else 0.0
    batch_band = band(any_defect, threshold) if len(probabilities) else "low"
    batch = {
        "size": len(frame),
        "churn": int((frame["la"] + frame["ld"]).sum()) if len(frame) else 0,
        "authors": int(frame["author"].nunique()) if "author" in frame and len(frame) else 0,
        "max_risk": float(probabilities.max()) if len(probabilities) else 0.0,
        "mean_risk": float(probabilities.mean()) if len(probabilities) else 0.0,
        "any_defect": any_defect if not math.isnan(any_defect) else 0.0,
        "band": batch_band,
    }
    plan = (policy or ROLLOUT_POLICY)[batch_band]
    advice = {"band": batch_band, **plan}
    if rollback is not None and rollback.advice:
        advice["rollback"] = rollback.advice
    return GateResult(commits, batch, threshold, model_id, advice, fail_on, notes, rollback)
