"""The pre-deploy gate: score the commits about to ship, the batch, and advise a rollout.

Per commit: calibrated probability of introducing a defect, a band and the top three
reasons in plain words. Bands: ``low`` below ``medium_at`` (default 0.15), ``high`` at or
above the gate threshold (``Settings.risk_threshold``, default 0.5), ``medium`` in between.

**Batch risk** (DESIGN §4). ``1 − Π(1 − p)`` treats changes as independent and their
probabilities as exact; it saturates (a release of 40 changes at 10 % each is "98.5 %")
and was "100 %" for every real release. The batch is therefore described by

* the expected number of defective changes, ``Σp`` (exact under any dependence);
* its **percentile** among the repository's last :data:`HISTORY_DEPLOYMENTS` production
  deployments, each scored with the same model ("riskier than 93 % of the last 200");
* when those deployments include at least :data:`MIN_CALIBRATION_FAILURES` change failures
  (DORA: incident, rollback or hotfix) and as many successes, **P(the deployment fails)**
  from a logistic calibration of the outcome on ``log Σp`` — Platt scaling (Platt 1999)
  of the aggregate, fitted on this service's own outcomes, with a 95 % Wald interval.

The batch band, and with it the rollout plan of :data:`ROLLOUT_POLICY`, comes from the
percentile (below the 75th: low; 75th–95th: medium; from the 95th: high); without enough
history, from the riskiest change's band. A batch holding a change at or above the gate's
threshold (a high change, which fails the gate) is high whatever its percentile: "gate:
FAIL" beside "rolling 100 %, bake 0 min" told a team both to stop and to ship everything.
Never from an uncalibrated product.

**Trust.** A model saved as *advisory* (its time-ordered AUC interval reaches 0.55, it is not
clearly better than ranking changes by size, too few test positives, or ECE above 0.10:
:func:`releaserisk.model.advisory_reasons`) warns and
never fails the gate unless ``enforce_advisory``. A model records the repository it was
trained on (:func:`repository_identity`); :func:`check_model_repository` refuses a foreign one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from releaserisk.choices import CANARY_MODES
from releaserisk.definitions import production_deployment, production_environments
from releaserisk.errors import ForeignModelError, InputError, ModelError
from releaserisk.escape import markdown_cell
from releaserisk.scorecard import Scorecard

if TYPE_CHECKING:  # the gate scores with a Scorecard and must not import scikit-learn
    from releaserisk.config import Settings
    from releaserisk.model import RiskModel
    from releaserisk.rollback import RollbackSafety
    from releaserisk.store import Store

__all__ = [
    "HISTORY_DEPLOYMENTS",
    "MIN_CALIBRATION_FAILURES",
    "PERCENTILE_BANDS",
    "REASON_GROUPS",
    "ROLLOUT_POLICY",
    "BatchHistory",
    "GateResult",
    "band",
    "check_model_repository",
    "default_model_path",
    "deployment_history",
    "describe",
    "describe_group",
    "load_rollout_policy",
    "load_scorer",
    "reasons_for",
    "repository_identity",
    "score_commits",
]

#: 2: ``advisory``; the batch reports ``expected_defective``, ``percentile`` and a calibrated
#: ``any_defect`` (null when not calibrated) instead of 1 − Π(1 − p).
SCHEMA_VERSION = 2
#: Past production deployments a batch is compared with.
HISTORY_DEPLOYMENTS = 200
#: Fewer past deployments with changes than this: no percentile.
MIN_HISTORY = 20
#: Change failures (and successes) needed to calibrate P(deployment fails): 10 events per
#: parameter (Peduzzi et al., J Clin Epidemiol 1996) for the two of the calibration.
MIN_CALIBRATION_FAILURES = 20
#: Percentiles where the batch band turns medium and high.
PERCENTILE_BANDS = (75.0, 95.0)

#: Rollout plan per batch risk band (defaults; see README "Rollout advice").
ROLLOUT_POLICY: dict[str, dict[str, Any]] = {
    "low": {
        "strategy": "rolling",
        "steps_percent": [100],
        "bake_minutes": 0,
        "monitoring": "robust",
        "approval_required": False,
        "canary_config": {"judge": {"confidence": 0.98, "tolerance": 0.25}},
    },
    "medium": {
        "strategy": "canary",
        "steps_percent": [10, 50, 100],
        "bake_minutes": 30,
        "monitoring": "robust",
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
    # SEXP sums the author's earlier commits over each subsystem touched (Kamei et al. 2013): a
    # commit to two of them counts twice, so it is worded as changes per subsystem, not commits.
    "sexp": "its author made {v:,.0f} earlier change{s} to these subsystems (counted per subsystem)",
}

#: Correlated change metrics explained as one reason, in Kamei et al.'s (TSE 2013) five
#: dimensions. One sentence per dimension, with the sum of its members' contributions,
#: so "recent experience 98.7 (raises risk)" can no longer stand next to "145 earlier
#: commits (lowers risk)" for the same author.
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "diffusion": ("nf", "nd", "ns", "entropy"),
    "size": ("la", "ld", "lt"),
    "purpose": ("fix",),
    "history": ("nuc", "ndev", "age"),
    "experience": ("exp", "sexp", "rexp"),
}


def _plural(n: float, one: str, many: str) -> str:
    return f"{n:,.0f} {one if f'{n:,.0f}' == '1' else many}"


def describe_group(group: str, values: dict[str, float], contribution: float) -> str:
    """One plain-words reason for a dimension of the change, with units and its direction.

    Parameters
    ----------
    group : str
        A key of :data:`REASON_GROUPS`.
    values : dict
        The change's values of that dimension's metrics (missing ones are left out).
    contribution : float
        The summed contribution of the metrics (positive raises the risk).

    Returns
    -------
    str
        E.g. "the author has 145 earlier commits in this repository, 12 in the files' subsystems (lowers risk)".
    """
    v = values
    if group == "diffusion":
        parts = [f"touches {_plural(v['nf'], 'file', 'files')}" if "nf" in v else "touches files"]
        if "nd" in v:
            parts.append(f"in {_plural(v['nd'], 'directory', 'directories')}")
        if "ns" in v:
            parts.append(f"of {_plural(v['ns'], 'top-level area', 'top-level areas')}")
        text = " ".join(parts)
    elif group == "size":
        edits = []
        if "la" in v:
            edits.append(f"adds {_plural(v['la'], 'line', 'lines')}")
        if "ld" in v:
            edits.append(f"deletes {_plural(v['ld'], 'line', 'lines')}")
        text = " and ".join(edits) or "edits its files"
        if "lt" in v:
            text += f" in files of {_plural(v['lt'], 'line', 'lines')} on average"
    elif group == "purpose":
        text = "is a bug fix" if v.get("fix") else "is not a bug fix"
    elif group == "history":
        parts = []
        if "nuc" in v:
            parts.append(f"its files were changed {_plural(v['nuc'], 'time', 'times')} before")
        if "ndev" in v:
            parts.append(f"by {_plural(v['ndev'], 'developer', 'developers')}")
        text = " ".join(parts) or "its files"
        if "age" in v:
            text += f", last {v['age']:,.1f} days earlier"
    elif group == "experience":
        text = "the author has " + (
            f"{_plural(v['exp'], 'earlier commit', 'earlier commits')} in this repository"
            if "exp" in v
            else "history here"
        )
        if "sexp" in v:
            # A sum over the areas touched (SEXP), so it can exceed the commits: not "N commits".
            changes = _plural(v["sexp"], "earlier change", "earlier changes")
            text += f", {changes} to the same top-level areas (counted per area)"
    else:
        text = "; ".join(describe(f, x, contribution).rsplit(" (", 1)[0] for f, x in v.items())
    return f"{text} ({'raises' if contribution > 0 else 'lowers'} risk)"


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
            if key == "monitoring" and value not in CANARY_MODES:
                raise ConfigError(f"{path}: '{band_name}.monitoring' must be one of {', '.join(CANARY_MODES)}")
            policy[band_name][key] = value
    return policy


def band(probability: float, threshold: float, medium_at: float = 0.15) -> str:
    """low / medium / high for a probability."""
    if probability >= threshold:
        return "high"
    return "medium" if probability >= min(medium_at, threshold) else "low"


@dataclass
class GateResult:
    """Scores of a range of commits, their batch and the rollout advice.

    Attributes
    ----------
    commits : DataFrame
        ``sha, subject, probability, band, reasons``.
    batch : dict
        ``size, churn, authors, max_risk, mean_risk, expected_defective`` (Σp),
        ``percentile`` and ``history`` (past deployments compared with, or None),
        ``any_defect`` with ``any_defect_low``/``any_defect_high`` (calibrated P(the
        deployment fails) and its 95 % interval, or None), ``calibration`` (n, failures),
        ``band`` and ``band_from`` (percentile or changes).
    threshold : float
    model_id : str
    advice : dict
        The rollout plan of the batch band.
    fail_on : str or None
    notes : list of str
    advisory : list of str
        Why the model is advisory (empty: it gates).
    enforce_advisory : bool
        Fail the gate on an advisory model too.
    """

    commits: pd.DataFrame  # sha, subject, probability, band, reasons
    batch: dict[str, Any]
    threshold: float
    model_id: str
    advice: dict[str, Any]
    fail_on: str | None = None
    notes: list[str] = field(default_factory=list)
    advisory: list[str] = field(default_factory=list)
    enforce_advisory: bool = False
    rollback: RollbackSafety | None = None  # the batch's rollback safety (releaserisk.rollback)

    @property
    def above_threshold(self) -> bool:
        """Whether a commit reaches the threshold (or the ``fail_on`` band), advisory or not."""
        if self.commits.empty:
            return False
        if self.fail_on:
            order = ["low", "medium", "high"]
            return bool(self.commits["band"].map(order.index).max() >= order.index(self.fail_on))
        return bool(self.commits["probability"].max() >= self.threshold)

    @property
    def failed(self) -> bool:
        """Whether the gate fails: a commit above the threshold, scored by a model that may gate, or a
        batch that cannot be rolled back when ``unsafe_rollback_gate`` is ``fail``."""
        if self.rollback is not None and self.rollback.fails_gate:
            return True
        return self.above_threshold and (not self.advisory or self.enforce_advisory)

    @property
    def exit_code(self) -> int:
        """1 when the gate failed, else 0."""
        return 1 if self.failed else 0

    def _verdict(self) -> str:
        if self.advisory and self.above_threshold and not self.enforce_advisory:
            return "pass (advisory model: would fail)"
        return "FAIL" if self.failed else "pass"

    def _advisory_line(self) -> str:
        enforced = "enforced (--enforce-advisory)" if self.enforce_advisory else "the gate does not fail on it"
        return f"advisory model: {'; '.join(self.advisory)}; {enforced}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (schema :data:`SCHEMA_VERSION`)."""
        return {
            "version": SCHEMA_VERSION,
            "model_id": self.model_id,
            "threshold": self.threshold,
            "fail_on": self.fail_on,
            "gate": "fail" if self.failed else "pass",
            "advisory": bool(self.advisory),
            "advisory_reasons": list(self.advisory),
            "above_threshold": self.above_threshold,
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
            # None: not assessed (no repository to read migrations from), never "safe"; rollback_safe
            # speaks of the migrations alone, rollback_status of the rollback path too (untried, failing…)
            "rollback_safe": None if self.rollback is None else self.rollback.rollback_safe,
            "rollback_status": "not assessed" if self.rollback is None else self.rollback.status,
            "rollback": None if self.rollback is None else self.rollback.to_dict(),
        }

    def summary(self) -> str:
        """Text for a terminal or a CI log."""
        n = len(self.commits)
        lines = [
            f"releaserisk gate: {self._verdict()} "
            f"({n} commit{'s' * (n != 1)}, threshold {self.threshold:g}, model {self.model_id})"
        ]
        if self.advisory:
            lines.append(f"warning: {self._advisory_line()}")
        for r in self.commits.itertuples():
            lines.append(f"  {r.sha[:10]}  {r.probability:6.1%}  {r.band:<6}  {r.subject[:60]}")
            lines.extend(f"      - {reason}" for reason in r.reasons)
        if self.batch["size"]:
            lines.append(f"batch: {batch_sentence(self.batch)}")
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
        a = self.advice
        verdict = "❌ gate failed" if self.failed else "✅ gate passed"
        if self.advisory and self.above_threshold and not self.enforce_advisory:
            verdict = "⚠️ gate passed (advisory model: would fail)"
        head = f"### releaserisk: {verdict}\n\n"
        if self.advisory:
            head += f"> ⚠️ {markdown_cell(self._advisory_line())}\n\n"
        steps = " → ".join(f"{s}%" for s in a["steps_percent"])
        approval = ", approval required" if a["approval_required"] else ""
        batch = (
            f"\n\n**Batch**: {markdown_cell(batch_sentence(self.batch))}. "
            f"**Rollout**: {a['strategy']} {steps}, {a['monitoring']} monitoring{approval}.\n"
        )
        if self.rollback is not None and not self.rollback.rollback_safe:
            reasons = "".join(f"\n- {markdown_cell(reason)}" for reason in self.rollback.reasons)
            batch += f"\n**Rollback unsafe**: {self.rollback.advice}.{reasons}\n"
        return head + "\n".join(rows) + batch


def batch_sentence(batch: dict[str, Any]) -> str:
    """The batch in one sentence: size, expected defective changes, percentile, calibrated risk.

    Parameters
    ----------
    batch : dict
        :attr:`GateResult.batch`.

    Returns
    -------
    str
        E.g. "12 changes, churn 340, 0.81 expected defective; riskier than 93 % of the last
        200 production deployments; P(deployment fails) 18 % (95 % CI 12–26 %, fitted on
        200 deployments, 31 failed) -> high".
    """
    size = batch["size"]
    parts = [f"{size} change{'s' * (size != 1)}, churn {batch.get('churn', 0):,}"]
    if batch.get("expected_defective") is not None:
        parts[0] += f", {batch['expected_defective']:.2f} expected defective"
    if batch.get("percentile") is not None:
        parts.append(f"riskier than {batch['percentile']:.0f} % of the last {batch['history']} production deployments")
    if batch.get("any_defect") is not None and batch.get("calibration"):
        c = batch["calibration"]
        parts.append(
            f"P(deployment fails) {batch['any_defect']:.0%} (95 % CI {batch['any_defect_low']:.0%}–"
            f"{batch['any_defect_high']:.0%}, fitted on {c['n']} deployments, {c['failures']} failed)"
        )
    raised = batch.get("band_from") == "changes" and batch.get("percentile") is not None
    why = " (a change at the gate's threshold)" if raised else ""
    return "; ".join(parts) + f" -> {batch.get('band', 'low')}{why}"


def score_commits(
    model: Scorecard | RiskModel,
    features: pd.DataFrame,
    *,
    threshold: float,
    model_id: str,
    fail_on: str | None = None,
    policy: dict[str, dict[str, Any]] | None = None,
    history: BatchHistory | None = None,
    advisory: Sequence[str] = (),
    enforce_advisory: bool = False,
    rollback: RollbackSafety | None = None,
) -> GateResult:
    """Score commits (rows of ``change_features`` with ``sha`` and ``subject``) and their batch.

    Parameters
    ----------
    model : Scorecard or RiskModel
        A fitted model, or its scorecard (:func:`load_scorer`).
    features : DataFrame
        One row per non-merge commit in the range, with the model's feature columns.
    threshold : float
        Gate threshold on a commit's probability (the ``high`` band starts here).
    model_id : str
    fail_on : {"low", "medium", "high"}, optional
        Fail when any commit reaches this band instead of the threshold.
    policy : dict, optional
        Rollout plan per band (default :data:`ROLLOUT_POLICY`; see :func:`load_rollout_policy`).
    history : BatchHistory, optional
        Past production deployments scored with the same model
        (:func:`deployment_history`): the batch's percentile and calibrated risk.
    advisory : sequence of str
        Why the model is advisory (its metadata's ``advisory_reasons``); empty: it gates.
    enforce_advisory : bool
        Fail the gate on an advisory model too.
    rollback : RollbackSafety, optional
        The batch's rollback safety (:func:`releaserisk.rollback.assess_rollback`): an unsafe
        batch gets forward-fix advice and, when so configured, fails the gate.

    Returns
    -------
    GateResult

    Raises
    ------
    InputError
        ``threshold`` is not a probability.
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
        reasons = reasons_for(model, frame)
    bands = [band(p, threshold) for p in probabilities]
    commits = pd.DataFrame(
        {
            # feature rows from elsewhere (a notebook, a CSV) may lack them
            "sha": frame["sha"] if "sha" in frame else pd.Series([None] * len(frame), dtype=object),
            "subject": frame["subject"] if "subject" in frame else pd.Series([None] * len(frame), dtype=object),
            "probability": probabilities,
            "band": bands,
            "reasons": reasons,
        }
    )
    batch = {
        "size": len(frame),
        "churn": int((frame["la"] + frame["ld"]).sum()) if len(frame) else 0,
        "authors": int(frame["author"].nunique()) if "author" in frame and len(frame) else 0,
        "max_risk": float(probabilities.max()) if len(probabilities) else 0.0,
        "mean_risk": float(probabilities.mean()) if len(probabilities) else 0.0,
        **_batch_risk(probabilities, bands, history),
    }
    plan = (policy or ROLLOUT_POLICY)[batch["band"]]
    advice = {"band": batch["band"], **plan}
    if rollback is not None and rollback.advice:
        advice["rollback"] = rollback.advice
    return GateResult(
        commits, batch, threshold, model_id, advice, fail_on, notes, list(advisory), enforce_advisory, rollback,
    )  # fmt: skip


def _batch_risk(probabilities: np.ndarray, bands: list[str], history: BatchHistory | None) -> dict[str, Any]:
    """Σp, percentile and calibrated P(fails) of a batch, and the band they give (module docstring)."""
    expected = float(probabilities.sum())
    risk: dict[str, Any] = {"expected_defective": expected, "percentile": None, "history": None,
                            "any_defect": None, "any_defect_low": None, "any_defect_high": None,
                            "calibration": None}  # fmt: skip
    order = ["low", "medium", "high"]
    risk["band"] = max(bands, key=order.index) if bands else "low"
    risk["band_from"] = "changes"
    if history is not None and history.n >= MIN_HISTORY and len(probabilities):
        risk["percentile"] = history.percentile(expected)
        risk["history"] = history.n
        medium, high = PERCENTILE_BANDS
        risk["band"] = "high" if risk["percentile"] >= high else "medium" if risk["percentile"] >= medium else "low"
        risk["band_from"] = "percentile"
        if "high" in bands and risk["band"] != "high":
            # a change at or above the gate's threshold fails the gate: the plan for shipping
            # its batch anyway cannot be the low band's full rollout without a bake
            risk["band"], risk["band_from"] = "high", "changes"
        calibrated = history.calibrated(expected)
        if calibrated is not None:
            risk["any_defect"], risk["any_defect_low"], risk["any_defect_high"] = calibrated
            risk["calibration"] = {"n": history.n, "failures": history.failures}
    return risk


def reasons_for(model: Scorecard | RiskModel, frame: pd.DataFrame, top: int = 3) -> list[list[str]]:
    """The ``top`` reasons per row in plain words, one per dimension (:data:`REASON_GROUPS`).

    Contributions of correlated metrics are summed per dimension, the dimensions ranked by
    the size of that sum, and each described with the change's own numbers
    (:func:`describe_group`). A metric outside the five dimensions is its own reason.

    Parameters
    ----------
    model : Scorecard or RiskModel
    frame : DataFrame
        Feature rows.
    top : int
        Reasons per row.

    Returns
    -------
    list of list of str
    """
    features = list(model.features)
    explained = model.explain(frame, top=len(features))
    contributions = explained.pivot_table(index="row", columns="feature", values="contribution", aggfunc="sum")
    contributions = contributions.reindex(index=range(len(frame)), columns=features, fill_value=0.0).fillna(0.0)
    groups = {g: [f for f in members if f in features] for g, members in REASON_GROUPS.items()}
    groups = {g: members for g, members in groups.items() if members}
    grouped = {f for members in groups.values() for f in members}
    groups.update({f: [f] for f in features if f not in grouped})
    sums = pd.DataFrame({g: contributions[members].sum(axis=1) for g, members in groups.items()})
    order = np.argsort(-np.abs(sums.to_numpy()), axis=1, kind="stable")[:, :top]
    names = list(sums.columns)
    values = frame[features].to_numpy(dtype=float)
    index = {f: j for j, f in enumerate(features)}
    reasons = []
    for i, picks in enumerate(order):
        row = []
        for k in picks:
            group = names[k]
            members = {f: float(values[i, index[f]]) for f in groups[group]}
            row.append(describe_group(group, members, float(sums.iat[i, k])))
        reasons.append(row)
    return reasons


def load_scorer(path: str | os.PathLike[str]) -> tuple[Scorecard | RiskModel, dict[str, Any]]:
    """What the CI gate scores with: a model file's scorecard, else the skops model itself.

    Parameters
    ----------
    path : str or Path
        A model file written by :func:`releaserisk.model.save_model`.

    Returns
    -------
    (Scorecard or RiskModel, dict)
        The scorer and the model's metadata.

    Raises
    ------
    ModelError
        Missing or unreadable file, malformed scorecard (and, for a file without a
        scorecard, every error of :func:`releaserisk.model.load_model`).
    """
    source = Path(path)
    if not source.is_file():
        raise ModelError(f"model file {source} does not exist (train one with 'releaserisk train')")
    card = Scorecard.read(source)
    if card is None:  # saved before scorecards existed: the slow, audited skops path
        from releaserisk.model import load_model

        return load_model(source)
    return card, dict(card.meta.get("metadata", {}))


# -- batch history ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchHistory:
    """Past production deployments of a repository, each batch scored with the model of the gate.

    Attributes
    ----------
    expected : ndarray
        Σp of each past deployment's changes.
    failed : ndarray of bool
        Whether it was a change failure (DORA: incident, rollback or hotfix).
    coef : ndarray or None
        Calibration ``(intercept, slope)`` of P(fails) on ``log Σp``; None with fewer than
        :data:`MIN_CALIBRATION_FAILURES` failures or successes.
    cov : ndarray or None
        Their 2×2 covariance (inverse Fisher information).
    """

    expected: np.ndarray
    failed: np.ndarray
    coef: np.ndarray | None = None
    cov: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Past deployments compared with."""
        return len(self.expected)

    @property
    def failures(self) -> int:
        """Change failures among them."""
        return int(self.failed.sum())

    def percentile(self, expected: float) -> float:
        """Percent of past deployments with a lower Σp (ties count half), 0–100."""
        below = np.sum(self.expected < expected) + 0.5 * np.sum(self.expected == expected)
        return float(100.0 * below / self.n)

    def calibrated(self, expected: float) -> tuple[float, float, float] | None:
        """P(the deployment fails) for a batch of Σp ``expected``, with a 95 % Wald interval."""
        if self.coef is None or self.cov is None:
            return None
        x = np.array([1.0, math.log(max(expected, _MIN_EXPECTED))])
        eta, se = float(x @ self.coef), math.sqrt(max(float(x @ self.cov @ x), 0.0))
        return _sigmoid(eta), _sigmoid(eta - 1.959964 * se), _sigmoid(eta + 1.959964 * se)

    @classmethod
    def fit(cls, expected, failed) -> BatchHistory:
        """Calibrate P(fails) on ``log Σp`` by logistic regression, when the outcomes allow.

        Parameters
        ----------
        expected : array-like
            Σp per past deployment.
        failed : array-like of bool
            Change failure per past deployment.

        Returns
        -------
        BatchHistory
        """
        expected = np.asarray(expected, dtype=float)
        failed = np.asarray(failed, dtype=bool)
        if min(failed.sum(), (~failed).sum()) < MIN_CALIBRATION_FAILURES:
            return cls(expected, failed)
        design = np.column_stack([np.ones(len(expected)), np.log(np.maximum(expected, _MIN_EXPECTED))])
        coef, cov = _logistic_newton(design, failed.astype(float))
        return cls(expected, failed, coef, cov)


_MIN_EXPECTED = 1e-4  # Σp of an empty or all-but-certain-clean batch, so that log is defined


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _logistic_newton(design: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression by Newton–Raphson (IRLS), with its covariance.

    Two parameters do not need scikit-learn (whose import the gate avoids). A tiny ridge
    (1e-6) keeps the Hessian invertible when the outcome is separable.
    """
    coef = np.zeros(design.shape[1])
    ridge = 1e-6 * np.eye(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ coef)))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hessian, design.T @ (y - p))
        coef = coef + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(design @ coef)))
    hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge
    return coef, np.linalg.inv(hessian)


def deployment_history(
    store: Store,
    model: Scorecard | RiskModel,
    repo: str,
    *,
    settings: Settings,
    service: str | None = None,
    last: int = HISTORY_DEPLOYMENTS,
) -> BatchHistory:
    """The last ``last`` successful production deployments of ``repo`` scored with ``model``.

    Each deployment's batch (its ``deployment_changes``) is scored change by change and
    summed (Σp); its outcome is DORA's change failure (:func:`releaserisk.dora.change_failures`).
    Deployments without changes (the first of a chain) are left out.

    Parameters
    ----------
    store : Store
    model : Scorecard or RiskModel
        The model the gate scores with.
    repo : str
    settings : Settings
        ``production_environments`` and the failure rules of DORA.
    service : str, optional
        Only this service's deployments (default: every service deploying ``repo``).
    last : int
        How many deployments, newest first.

    Returns
    -------
    BatchHistory
    """
    rows = store.query(
        f"""
        WITH recent AS (
            SELECT deployment_id, finished_at FROM deployments
            WHERE repo = $repo AND {production_deployment()}
              AND ($service IS NULL OR service = $service)
            ORDER BY finished_at DESC LIMIT $last
        )
        SELECT r.deployment_id, r.finished_at, f.*
        FROM recent r JOIN deployment_changes dc USING (deployment_id)
        JOIN change_features f ON f.repo = dc.repo AND f.sha = dc.sha
        """,
        {"repo": repo, "prod": production_environments(settings), "service": service, "last": last},
    )
    if rows.empty:
        return BatchHistory(np.array([]), np.array([], dtype=bool))
    rows["p"] = model.predict_proba(rows)[:, 1]
    batches = rows.groupby("deployment_id").agg(expected=("p", "sum"), finished_at=("finished_at", "max"))
    from releaserisk.dora import change_failures  # only with history: the gate on a new repository skips it

    start = batches["finished_at"].min()
    until = batches["finished_at"].max() + pd.Timedelta(seconds=1)
    outcome = change_failures(store, start, until, settings=settings)[["deployment_id", "failed"]]
    batches = batches.join(outcome.set_index("deployment_id")["failed"], how="left")
    return BatchHistory.fit(batches["expected"].to_numpy(), batches["failed"].fillna(False).astype(bool).to_numpy())


# -- repository binding ---------------------------------------------------------------------------
def repository_identity(store: Store, repo: str) -> dict[str, Any]:
    """What identifies a repository across clones and folder names: its root commits.

    Parameters
    ----------
    store : Store
    repo : str
        Repository name in the store.

    Returns
    -------
    dict
        ``name``, ``roots`` (sorted shas of its parentless commits) and ``store`` (the
        store file the model was trained from).
    """
    roots = store.query(
        "SELECT sha FROM commits WHERE repo = ? AND len(coalesce(parents, [])) = 0 ORDER BY sha", [repo]
    )["sha"].tolist()
    return {"name": repo, "roots": roots, "store": str(store.path)}


def check_model_repository(
    metadata: dict[str, Any], identity: dict[str, Any], *, allow_foreign: bool = False
) -> list[str]:
    """Refuse a model trained on another repository than the one about to be scored.

    The same repository is recognised by a shared root commit (the name may differ
    between a developer's clone and a CI checkout).

    Parameters
    ----------
    metadata : dict
        The model's metadata (``repositories``: a list of :func:`repository_identity`).
    identity : dict
        :func:`repository_identity` of the scored repository.
    allow_foreign : bool
        Score with a foreign model anyway (deliberate transfer), with a note.

    Returns
    -------
    list of str
        Notes for the gate (a foreign model allowed, or a model that records no repository).

    Raises
    ------
    ForeignModelError
        The model was trained on other repositories and ``allow_foreign`` is false.
    """
    trained = metadata.get("repositories")
    if not trained:
        return ["the model does not record the repository it was trained on (saved before releaserisk bound models "
                "to repositories); retrain it to have foreign models refused"]  # fmt: skip
    roots = {root for r in trained for root in r.get("roots", [])}
    if roots & set(identity["roots"]):
        return []
    names = ", ".join(
        f"'{r['name']}' (root {', '.join(x[:10] for x in r.get('roots', [])) or 'none'})" for r in trained
    )
    here = f"'{identity['name']}' (root {', '.join(x[:10] for x in identity['roots']) or 'none'})"
    if allow_foreign:
        return [f"scored with a model trained on {names}, not on {here} (--allow-foreign-model)"]
    raise ForeignModelError(
        f"the model was trained on repository {names}, not on {here}; train one on this repository "
        "('releaserisk train') or pass --allow-foreign-model to transfer it deliberately"
    )


def _named(identity: dict[str, Any]) -> str:
    roots = ", ".join(root[:10] for root in identity.get("roots", [])) or "none"
    return f"'{identity['name']}' (root {roots})"


def default_model_path(db: str | os.PathLike[str], repo: str) -> Path:
    """Where ``train`` saves and ``score`` looks for a repository's model: next to the store.

    Parameters
    ----------
    db : path-like
        The store file.
    repo : str
        Repository name (characters unsafe in a file name become ``_``).

    Returns
    -------
    pathlib.Path
        ``<store dir>/models/<repo>.skops``.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", repo).lstrip(".") or "repository"
    return Path(db).resolve().parent / "models" / f"{safe}.skops"
