"""Change-risk model: a scikit-learn estimator with time-ordered selection and calibration.

:class:`RiskModel` follows scikit-learn's conventions — keyword-only settings stored
unchanged in ``__init__``, work in :meth:`RiskModel.fit`, learned state ending in ``_``.
Rows passed to ``fit`` must be in time order (oldest first): the model never shuffles.

Fitting, with ``validation_fraction`` v:

1. The oldest ``1 - v`` of the rows fit each candidate; the newest ``v`` validate them
   (AUC). Candidates: ``logistic`` (log1p, standardised, class-weighted logistic
   regression — the baseline), ``boosting`` (histogram gradient boosting) and
   ``ensemble`` (the mean probability of logistic regression, gradient boosting and
   a random forest). ``estimator="auto"`` picks the best on the validation slice.
2. A Platt (sigmoid) calibrator is fitted on the chosen candidate's out-of-time
   predictions for the validation slice — the most recent, honest predictions.
3. The chosen candidate is refitted on all rows; the calibrator maps its scores.

Explanations: for the logistic model, exact linear contributions (coefficient ×
standardised log feature) that sum with the intercept to the uncalibrated decision
function. For tree models, signed occlusion contributions: the change in the
calibrated log-odds when the feature is replaced by its training median.

Evaluation (:func:`evaluate_predictions`) is effort-aware with effort = LA + LD:
changes are ranked by risk density p / effort (Kamei et al. 2013; Yang et al. 2016).
:func:`evaluate_time_split` also ranks the test rows by size alone (LA + LD, the simple
baseline of the JIT literature) and compares the two AUCs with DeLong's paired test
(:func:`size_baseline`, :func:`delong_test`).
"""

from __future__ import annotations

import json
import math
import platform
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from releaserisk._riskmath import explain_contributions, feature_matrix, logit, occlusion_contributions
from releaserisk.choices import ESTIMATORS
from releaserisk.errors import InputError, ModelError, ModelVersionError, UntrustedModelError
from releaserisk.features import KAMEI_FEATURES
from releaserisk.formatting import p_value
from releaserisk.scorecard import SCORECARD_MEMBER, Scorecard, check_archive

__all__ = [
    "ADVISORY_AUC",
    "MAX_ECE",
    "MIN_TEST_PER_CLASS",
    "TRUSTED_TYPES",
    "RiskModel",
    "advisory_reasons",
    "auc_by_age",
    "auc_interval",
    "calibration_table",
    "change_model_metadata",
    "delong_test",
    "deployment_training_frame",
    "dropped_rows_notes",
    "evaluate_predictions",
    "evaluate_time_split",
    "expected_calibration_error",
    "label_maturity_notes",
    "load_model",
    "native_threads",
    "read_feature_table",
    "rolling_origin",
    "save_model",
    "size_baseline",
    "size_comparison_line",
    "train_deployment_model",
]

_ESTIMATORS = ESTIMATORS


# Estimators and metrics are imported where they are used: a CI gate that loads a saved
# model must not pay for importing every model family (benchmarks/score_latency.py).
def _on_log_features(*steps):
    """A pipeline of ``steps`` (name, estimator) after log1p of the change metrics."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    return Pipeline([("log1p", FunctionTransformer(np.log1p)), *steps])


def _logistic(random_state: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    return _on_log_features(
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(class_weight="balanced", max_iter=5000, random_state=random_state)),
    )


def _boosting(random_state: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
        random_state=random_state,
    )  # fmt: skip
    return _on_log_features(("clf", clf))


#: Rows each tree of the forest is grown from, at most (a bootstrap of this size). Trees
#: grown from the whole history made the forest most of the training time on large
#: projects; with the cap, training stays under 10 s on 2 cores at any history size
#: (Kamei et al.'s Eclipse JDT, 28k rows: 21.7 s -> 8.4 s), and the test AUC and ECE of
#: all six shared datasets moved by at most 0.001.
FOREST_MAX_ROWS = 6_000

#: Trees in the forest. Even capped, the forest was 60-90 % of training time; 300 -> 200
#: trees took an 85k-row history from 8.6 s to 6.3 s, and moved test AUC on the six
#: shared datasets by at most 0.001 and ECE by at most 0.004 (150 trees: the same spread).
FOREST_TREES = 200


def _forest(random_state: int, rows: int | None = None):
    from sklearn.ensemble import RandomForestClassifier

    max_samples = None if rows is None or rows <= FOREST_MAX_ROWS else FOREST_MAX_ROWS / rows
    clf = RandomForestClassifier(
        n_estimators=FOREST_TREES, min_samples_leaf=5, max_features=0.5, max_samples=max_samples,
        random_state=random_state, n_jobs=2,
    )  # fmt: skip
    return _on_log_features(("clf", clf))


class _MeanEnsemble(BaseEstimator, ClassifierMixin):
    """Mean probability of logistic regression, gradient boosting and a random forest."""

    def __init__(self, *, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, X, y, *, fitted: dict[str, Any] | None = None):
        """Fit the members; ``fitted`` may hold the logistic and boosting ones, already fit on these rows."""
        fitted = fitted or {}
        logistic, boosting = fitted.get("logistic"), fitted.get("boosting")
        self.members_ = [
            logistic if logistic is not None else _logistic(self.random_state).fit(X, y),
            boosting if boosting is not None else _boosting(self.random_state).fit(X, y),
            _forest(self.random_state, rows=len(X)).fit(X, y),
        ]
        self.classes_ = self.members_[0].classes_
        return self

    def predict_proba(self, X):
        return np.mean([m.predict_proba(X) for m in self.members_], axis=0)


def _candidate(name: str, random_state: int):
    if name == "logistic":
        return _logistic(random_state)
    if name == "boosting":
        return _boosting(random_state)
    return _MeanEnsemble(random_state=random_state)


class RiskModel(ClassifierMixin, BaseEstimator):
    """Probability that a change introduces a defect, from its change metrics.

    Parameters
    ----------
    estimator : {"auto", "logistic", "boosting", "ensemble"}
        The model family; ``auto`` selects on the time-ordered validation slice.
    validation_fraction : float
        Newest share of the training rows used for selection and calibration.
    features : sequence of str
        Feature columns (default: the 14 Kamei change metrics).
    random_state : int
        Seed for the tree models.

    Attributes
    ----------
    estimator_ : estimator
        The chosen candidate, refitted on all rows.
    selected_ : str
        Name of the chosen candidate.
    validation_auc_ : dict
        Validation AUC of every candidate tried.
    calibrator_ : LogisticRegression
        Platt scaling of the candidate's log-odds.
    feature_names_in_ : ndarray of str
    medians_ : ndarray
        Training medians (reference point of occlusion explanations).
    classes_ : ndarray
    """

    def __init__(
        self,
        *,
        estimator: str = "auto",
        validation_fraction: float = 0.2,
        features: Sequence[str] = KAMEI_FEATURES,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.features = features
        self.random_state = random_state

    def _validate_params(self) -> None:
        if self.estimator not in _ESTIMATORS:
            raise ModelError(f"estimator must be one of {', '.join(_ESTIMATORS)}; got {self.estimator!r}")
        if not 0.05 <= self.validation_fraction <= 0.5:
            raise ModelError("validation_fraction must be in [0.05, 0.5]")

    def _matrix(self, X) -> np.ndarray:
        return feature_matrix(X, self.features)

    def fit(self, X, y) -> RiskModel:
        """Fit on rows in time order (oldest first).

        Native thread pools (BLAS, OpenMP) are limited while fitting (:func:`native_threads`).

        Parameters
        ----------
        X : DataFrame or array of shape (n, len(features))
        y : array-like of 0/1
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=native_threads()):
            return self._fit(X, y)

    def _fit(self, X, y) -> RiskModel:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score

        self._validate_params()
        matrix = self._matrix(X)
        target = np.asarray(y).astype(int)
        if len(np.unique(target)) < 2:
            raise ModelError("training labels contain a single class; need both buggy and clean changes")
        split = int(len(target) * (1 - self.validation_fraction))
        fit_x, fit_y, val_x, val_y = matrix[:split], target[:split], matrix[split:], target[split:]
        if len(np.unique(fit_y)) < 2 or len(np.unique(val_y)) < 2:
            raise ModelError("both time slices (fit and validation) need buggy and clean changes; add history")
        names = ["logistic", "boosting", "ensemble"] if self.estimator == "auto" else [self.estimator]
        scores, out_of_time = {}, {}
        fitted: dict[str, Any] = {}
        for name in names:
            candidate = _candidate(name, self.random_state)
            # the ensemble's logistic and boosting members are the candidates just fit on the same rows
            model = candidate.fit(fit_x, fit_y, fitted=fitted) if name == "ensemble" else candidate.fit(fit_x, fit_y)
            fitted[name] = model
            out_of_time[name] = model.predict_proba(val_x)[:, 1]
            scores[name] = float(roc_auc_score(val_y, out_of_time[name]))
        self.selected_ = max(scores, key=lambda n: (scores[n], -names.index(n)))
        self.validation_auc_ = scores
        self.calibrator_ = LogisticRegression(C=1e4).fit(logit(out_of_time[self.selected_])[:, None], val_y)
        self.estimator_ = _candidate(self.selected_, self.random_state).fit(matrix, target)
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(list(self.features), dtype=object)
        self.medians_ = np.median(matrix, axis=0)
        self.n_train_ = len(target)
        self.positive_rate_train_ = float(target.mean())
        return self

    def _raw_proba(self, matrix: np.ndarray) -> np.ndarray:
        return self.estimator_.predict_proba(matrix)[:, 1]

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of a defect."""
        raw = logit(self._raw_proba(self._matrix(X)))
        return self.calibrator_.decision_function(raw[:, None])

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, columns (clean, buggy)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= threshold).astype(int)

    def linear_contributions(self, X) -> tuple[np.ndarray, float]:
        """Exact per-feature terms of the logistic model's decision function, and its intercept."""
        if self.selected_ != "logistic":
            raise ModelError("linear contributions exist only for the logistic model")
        scaled = self.estimator_[:-1].transform(self._matrix(X))
        clf = self.estimator_[-1]
        return scaled * clf.coef_[0], float(clf.intercept_[0])

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Top signed contributions per row (positive raises the risk).

        Returns
        -------
        DataFrame
            Columns ``row, rank, feature, value, contribution``.
        """
        matrix = self._matrix(X)
        if self.selected_ == "logistic":
            contributions, _ = self.linear_contributions(matrix)
        else:
            contributions = occlusion_contributions(self.decision_function, matrix, self.medians_)
        return explain_contributions(matrix, contributions, self.features, top)


def native_threads() -> int:
    """Threads for BLAS and OpenMP while fitting: the free cores, at least one.

    The feature matrices are small (14 columns), so extra threads buy little, and on a busy
    machine they cost a lot: OpenMP's worker threads spin while waiting, and with every
    process using all cores a 3 s fit took 20-78 s on two shared cores. The free cores are
    the cores this process may use minus the 1-minute load average (``os.getloadavg``).

    Returns
    -------
    int
        Between 1 and the number of usable cores.
    """
    import os

    from releaserisk.resources import usable_cores

    cores = usable_cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


# -- evaluation ----------------------------------------------------------------------------
def calibration_table(y, p, bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed defect rate per equal-width probability bin (a reliability table).

    Parameters
    ----------
    y : array-like of 0/1
        Observed labels.
    p : array-like of float
        Predicted probabilities of a defect.
    bins : int
        Equal-width bins over [0, 1].

    Returns
    -------
    DataFrame
        ``lower, upper, n, mean_predicted, observed`` for every bin holding predictions.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(index, minlength=bins)
    held = n > 0
    predicted = np.bincount(index, weights=p, minlength=bins)[held] / n[held]
    observed = np.bincount(index, weights=y, minlength=bins)[held] / n[held]
    lower = np.arange(bins)[held] / bins
    return pd.DataFrame({"lower": lower, "upper": lower + 1 / bins, "n": n[held],
                         "mean_predicted": predicted, "observed": observed})  # fmt: skip


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """ECE over equal-width probability bins, weighted by bin size (see :func:`calibration_table`)."""
    table = calibration_table(y, p, bins)
    if table.empty:
        return 0.0
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["observed"] - table["mean_predicted"]).abs()).sum())


def _effort_curve(order: np.ndarray, y: np.ndarray, effort: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    effort_sorted = effort[order]
    found = np.cumsum(y[order]) / max(y.sum(), 1)
    spent = np.cumsum(effort_sorted) / max(effort_sorted.sum(), 1e-12)
    return np.r_[0.0, spent], np.r_[0.0, found]


def evaluate_predictions(y, p, effort, threshold: float = 0.5) -> dict[str, float]:
    """Classification, calibration and effort-aware metrics of predictions.

    Parameters
    ----------
    y : array-like of 0/1
    p : array-like of probabilities
    effort : array-like
        Inspection effort per change (LA + LD); zero effort counts as one line.
    threshold : float
        Probability threshold for precision/recall/F1.

    Returns
    -------
    dict
        auc, f1, precision, recall, brier, ece, recall_at_20_effort,
        effort_at_20_recall, popt.
    """
    from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    effort = np.maximum(np.asarray(effort, dtype=float), 1.0)
    predicted = (p >= threshold).astype(int)
    density = p / effort
    model_x, model_y = _effort_curve(np.lexsort((effort, -density)), y, effort)
    optimal_x, optimal_y = _effort_curve(np.lexsort((effort, -y)), y, effort)
    worst_x, worst_y = _effort_curve(np.lexsort((-effort, y)), y, effort)
    area = {
        name: float(np.trapezoid(cy, cx))
        for name, (cx, cy) in {
            "model": (model_x, model_y),
            "optimal": (optimal_x, optimal_y),
            "worst": (worst_x, worst_y),
        }.items()
    }
    popt = (area["model"] - area["worst"]) / max(area["optimal"] - area["worst"], 1e-12)
    return {
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan,
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "recall_at_20_effort": float(np.interp(0.2, model_x, model_y)),
        "effort_at_20_recall": float(model_x[np.searchsorted(model_y, 0.2, "left")]) if y.any() else math.nan,
        "popt": float(popt),
    }


# -- model trust ---------------------------------------------------------------------------
#: A model whose time-ordered test AUC interval reaches this is advisory (DESIGN §4): it
#: may be no better than chance at ranking changes.
ADVISORY_AUC = 0.55
#: Fewer buggy (or clean) changes than this in the test slice: too few to tell.
MIN_TEST_PER_CLASS = 10
#: Expected calibration error above this: the probabilities are not trustworthy.
MAX_ECE = 0.10


def auc_interval(y, p, *, level: float = 0.95, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the ROC AUC.

    Stratified percentile bootstrap: buggy and clean changes are resampled separately,
    so every resample keeps the slice's class counts (pROC's default, Robin et al.,
    BMC Bioinformatics 2011; percentile method, Efron & Tibshirani 1993, ch. 13).

    Parameters
    ----------
    y : array-like of 0/1
    p : array-like of scores
    level : float
        Confidence level.
    resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling (the interval is reproducible).

    Returns
    -------
    (float, float)
        Lower and upper bound; ``(nan, nan)`` without both classes.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    positives, negatives = p[y == 1], p[y == 0]
    if not len(positives) or not len(negatives):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    aucs = np.empty(resamples)
    for i in range(resamples):
        pos = rng.choice(positives, len(positives))
        neg = np.sort(rng.choice(negatives, len(negatives)))
        below = np.searchsorted(neg, pos, "left")  # clean changes scored lower; ties count half
        ties = np.searchsorted(neg, pos, "right") - below
        aucs[i] = (below.sum() + 0.5 * ties.sum()) / (len(pos) * len(neg))
    tail = (1 - level) / 2
    low, high = np.quantile(aucs, [tail, 1 - tail])
    return float(low), float(high)


def _placements(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: each positive's share of negatives scored lower, and vice versa."""
    neg = np.sort(negatives)
    pos = np.sort(positives)
    # a tie counts half (the Mann-Whitney kernel)
    v10 = (np.searchsorted(neg, positives, "left") + np.searchsorted(neg, positives, "right")) / (2 * len(neg))
    v01 = 1 - (np.searchsorted(pos, negatives, "left") + np.searchsorted(pos, negatives, "right")) / (2 * len(pos))
    return v10, v01


def delong_test(y, p, q, *, level: float = 0.95) -> dict[str, float]:
    """DeLong's test for two correlated ROC AUCs: two scores of the same rows.

    DeLong, DeLong & Clarke-Pearson, "Comparing the areas under two or more correlated
    receiver operating characteristic curves: a nonparametric approach", Biometrics 44
    (1988): each AUC is the mean of its structural components (placement values, ties
    counting half); their covariance across positives and across negatives gives the
    variance of the difference, and z = difference / its standard error is compared
    with the normal distribution (as R's ``pROC::roc.test(method = "delong")``).

    Parameters
    ----------
    y : array-like of 0/1, shape (n,)
    p, q : array-like of float, shape (n,)
        Two scores of the same rows (higher: more likely 1).
    level : float
        Confidence level of the difference's interval.

    Returns
    -------
    dict
        ``auc_p``, ``auc_q``, ``difference`` (auc_p − auc_q), ``se``, ``z``,
        ``p_value`` (two-sided), ``low`` and ``high`` (normal interval of the
        difference). NaN throughout without both classes; with a zero standard error
        (identical rankings) z is 0 and the p-value 1 when the difference is 0.
    """
    from scipy.stats import norm

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    m, n = int((y == 1).sum()), int((y == 0).sum())
    if not m or not n:
        keys = ("auc_p", "auc_q", "difference", "se", "z", "p_value", "low", "high")
        return dict.fromkeys(keys, math.nan)
    v10, v01 = zip(*(_placements(s[y == 1], s[y == 0]) for s in (p, q)), strict=True)
    aucs = [float(np.mean(v)) for v in v10]
    cov = (np.cov(np.vstack(v10)) / m if m > 1 else 0.0) + (np.cov(np.vstack(v01)) / n if n > 1 else 0.0)
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]) if np.ndim(cov) else 0.0
    se = math.sqrt(max(variance, 0.0))
    difference = aucs[0] - aucs[1]
    if se > 0:
        z = difference / se
    else:
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    half = float(norm.ppf(0.5 + level / 2)) * se
    return {
        "auc_p": aucs[0],
        "auc_q": aucs[1],
        "difference": difference,
        "se": se,
        "z": z,
        "p_value": float(2 * norm.sf(abs(z))),
        "low": difference - half,
        "high": difference + half,
    }


def size_baseline(test: pd.DataFrame, probabilities, *, seed: int = 0) -> dict[str, Any]:
    """The size heuristic beside a model: rank the same test changes by LA + LD, larger riskier.

    "Big changes are risky" is the simple baseline of the JIT literature: Kamei et al.
    (TSE 2013) compare their model with size-based rankings (LA, LT, churn), and Yang et
    al., "Effort-aware just-in-time defect prediction: simple unsupervised models could
    be better than supervised models" (FSE 2016) find such rankings competitive. A model
    that does not rank better than it adds nothing a size limit would not give.

    Parameters
    ----------
    test : DataFrame
        The test rows, with ``la``, ``ld`` and ``bug``.
    probabilities : array-like of float
        The model's predictions for those rows.
    seed : int
        Seed of the size AUC's bootstrap interval (:func:`auc_interval`).

    Returns
    -------
    dict
        ``size_auc`` with ``size_auc_low``/``size_auc_high`` (95 % bootstrap interval,
        as the model's), ``auc_minus_size`` with ``auc_minus_size_low``/``_high`` and
        ``size_p_value`` (DeLong's paired test, :func:`delong_test`), and
        ``better_than_size``: True only when the difference's 95 % interval is above 0.
    """
    size = test["la"].to_numpy(dtype=float) + test["ld"].to_numpy(dtype=float)
    y = test["bug"].to_numpy(dtype=int)
    low, high = auc_interval(y, size, seed=seed)
    paired = delong_test(y, probabilities, size)
    return {
        "size_auc": paired["auc_q"],
        "size_auc_low": low,
        "size_auc_high": high,
        "auc_minus_size": paired["difference"],
        "auc_minus_size_low": paired["low"],
        "auc_minus_size_high": paired["high"],
        "size_p_value": paired["p_value"],
        "better_than_size": bool(paired["low"] > 0),
    }


def size_comparison_line(evaluation: dict[str, Any]) -> str | None:
    """One plain line: the size baseline's AUC beside the model's, and whether the model is better.

    Parameters
    ----------
    evaluation : dict
        :func:`evaluate_time_split`'s result.

    Returns
    -------
    str or None
        None for an evaluation without the size baseline (saved by an older releaserisk).
    """
    if "better_than_size" not in evaluation:
        return None
    e = evaluation
    verdict = (
        "the model ranks changes better than their size"
        if e["better_than_size"]
        else "the model is not better than the size baseline"
    )
    return (
        f"size baseline (LA + LD, larger riskier) on the same {e['n_test']:,} test changes: AUC {e['size_auc']:.3f} "
        f"(95 % CI {e['size_auc_low']:.3f}–{e['size_auc_high']:.3f}); model minus size {e['auc_minus_size']:+.3f} "
        f"(95 % CI {e['auc_minus_size_low']:+.3f} to {e['auc_minus_size_high']:+.3f}, DeLong "
        f"{p_value(e['size_p_value'])}): {verdict}"
    )


def advisory_reasons(evaluation: dict[str, Any]) -> list[str]:
    """Why a model should advise rather than gate, from its time-ordered evaluation.

    Parameters
    ----------
    evaluation : dict
        :func:`evaluate_time_split`'s result (empty: not evaluated).

    Returns
    -------
    list of str
        Empty for a model that may gate; otherwise one plain sentence per reason: no
        evaluation, fewer than :data:`MIN_TEST_PER_CLASS` buggy or clean test changes, an
        AUC interval reaching :data:`ADVISORY_AUC`, an AUC not clearly above the size
        baseline's (:func:`size_baseline`), or an ECE above :data:`MAX_ECE`.

    Notes
    -----
    One rule, two baselines: a model gates only when it has been shown to rank changes
    better than a simpler rule — than chance, and than their size. A model no better
    than size fails changes for reasons (experience, history, diffusion) that have not
    been shown to add anything over "big changes are risky", which cannot be defended
    to the change's author; a size limit would gate as well and can be read.
    """
    if not evaluation:
        return ["not evaluated: too few labelled changes for a time-ordered test (200 needed)"]
    reasons = []
    buggy = evaluation.get("n_test_buggy", round(evaluation["n_test"] * evaluation["positive_rate_test"]))
    clean = evaluation["n_test"] - buggy
    if min(buggy, clean) < MIN_TEST_PER_CLASS:
        reasons.append(
            f"the time-ordered test slice has {buggy} bug-introducing and {clean} clean changes: too few to tell "
            "whether the model ranks changes better than chance"
        )
    low, high = evaluation.get("auc_low"), evaluation.get("auc_high")
    if low is not None and not math.isnan(low) and low <= ADVISORY_AUC:
        reasons.append(
            f"time-ordered test AUC {evaluation['auc']:.3f} (95 % CI {low:.3f}–{high:.3f}) reaches {ADVISORY_AUC}: "
            "not clearly better than chance"
        )
    if evaluation.get("better_than_size") is False:
        reasons.append(
            f"time-ordered test AUC {evaluation['auc']:.3f} is not clearly better than ranking changes by size "
            f"(LA + LD: AUC {evaluation['size_auc']:.3f}; difference {evaluation['auc_minus_size']:+.3f}, 95 % CI "
            f"{evaluation['auc_minus_size_low']:+.3f} to {evaluation['auc_minus_size_high']:+.3f}, DeLong "
            f"{p_value(evaluation['size_p_value'])}): a size limit would gate as well"
        )
    if evaluation.get("ece", 0.0) > MAX_ECE:
        reasons.append(
            f"calibration error (ECE) {evaluation['ece']:.3f} is above {MAX_ECE}: its probabilities are not trustworthy"
        )
    return reasons


def change_model_metadata(
    model: RiskModel,
    frame: pd.DataFrame,
    evaluation: dict[str, Any],
    *,
    model_id: str,
    repositories: list[dict[str, Any]],
    label_quality: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a change-risk model file records about its training, its trust and its repository.

    Parameters
    ----------
    model : RiskModel
        The fitted model.
    frame : DataFrame
        Its training rows (``repo``, ``time``, ``bug``).
    evaluation : dict
        :func:`evaluate_time_split` on the same rows (empty: too few to evaluate).
    model_id : str
    repositories : list of dict
        :func:`releaserisk.gate.repository_identity` of each repository trained on.
    label_quality : dict, optional
        Repository → :meth:`releaserisk.labels.LabelQuality.to_dict`.

    Returns
    -------
    dict
        JSON-safe metadata for :func:`save_model`, with ``advisory`` and
        ``advisory_reasons`` (:func:`advisory_reasons`).
    """
    reasons = advisory_reasons(evaluation)
    return {
        "model_id": model_id,
        "level": "change",
        "repos": [r["name"] for r in repositories],
        "repositories": repositories,
        "train_start": str(frame["time"].min()),
        "train_end": str(frame["time"].max()),
        "n_train": len(frame),
        "positive_rate": float(frame["bug"].mean()),
        "selected": model.selected_,
        "validation_auc": model.validation_auc_,
        "evaluation": evaluation,
        "advisory": bool(reasons),
        "advisory_reasons": reasons,
        "label_quality": label_quality or {},
    }


# -- deployment level ------------------------------------------------------------------
#: Fewer failed deployments than this and a deployment model is not trained.
MIN_DEPLOYMENT_FAILURES = 20


def deployment_training_frame(store, settings) -> pd.DataFrame:
    """Successful production deployments with their batch features and change-failure label.

    Parameters
    ----------
    store : Store
        An open store with deployments, their changes and (ideally) change risk scores.
    settings : Settings
        ``production_environments`` and ``environment_order`` (the stage before
        production is the one a skipped stage is measured against).

    Returns
    -------
    DataFrame
        :func:`releaserisk.features.deployment_batch_features` plus ``failed`` (bool): the
        deployment was a change failure by :func:`releaserisk.dora.change_failures` (DORA's definition);
        null for every row when the store has no source of failures (unknown, not false).

    Raises
    ------
    InputError
        The store has no production deployments.
    """
    from datetime import timedelta

    from releaserisk.definitions import last_pre_production_stage
    from releaserisk.dora import change_failures
    from releaserisk.features import deployment_batch_features

    frame = deployment_batch_features(store, settings.production_environments, last_pre_production_stage(settings))
    if frame.empty:
        raise InputError("no production deployments in the store; ingest deployments first")
    window_end = frame["finished_at"].max() + timedelta(seconds=1)
    failed = change_failures(store, frame["finished_at"].min(), window_end, settings=settings)[
        ["deployment_id", "failed"]
    ]
    if len(failed) and failed["failed"].isna().all():  # no source of failures: unknown, not all false
        return frame.merge(failed, on="deployment_id", how="left")
    return frame.merge(failed, on="deployment_id", how="left").fillna({"failed": False})


def train_deployment_model(frame: pd.DataFrame, *, estimator: str = "auto") -> tuple[RiskModel | None, dict[str, Any]]:
    """Fit a deployment-level model on batch features labelled by change failure.

    Parameters
    ----------
    frame : DataFrame
        Time-sorted rows of :func:`releaserisk.features.deployment_batch_features`
        with a ``failed`` (0/1) column.

    Returns
    -------
    (model or None, report)
        With fewer than :data:`MIN_DEPLOYMENT_FAILURES` failures (or a single class in
        a time slice) no model is trained: the report says so, and gives how well the
        aggregated change risk (``any_defect``, P(any change defective)) ranks failures —
        the fallback to use instead. ``notes`` say when few deployed changes have a
        risk score, and when the fallback ranks the newest deployments at least as well
        as the model. With ``failed`` unknown (null) throughout, no model either, and the
        report's ``failures`` is None (unknown), not 0.
    """
    from sklearn.metrics import roc_auc_score

    from releaserisk.features import DEPLOYMENT_FEATURES

    if frame["failed"].isna().all() and len(frame):
        return None, {"deployments": len(frame), "failures": None, "notes": [], "fallback": (
            "no deployment's failure is known (the store has no incidents, rollbacks or hotfixes): use the "
            "aggregated change risk P(any change defective) of each batch instead of a deployment model")}  # fmt: skip
    y = frame["failed"].astype(int).to_numpy()
    report: dict[str, Any] = {"deployments": len(frame), "failures": int(y.sum()), "notes": []}
    scored = _scored_share(frame)
    if scored is not None and scored < 0.5:
        share = "none" if scored == 0 else f"only {scored:.0%}"
        report["notes"].append(
            f"{share} of the deployed changes have a risk score, and a change without one counts as risk 0: "
            "score the history first ('releaserisk score --repo PATH HEAD --threshold 1' scores every commit "
            "without failing)"
        )
    has_risk = scored is None or scored > 0  # without scores, the aggregated change risk ranks nothing
    if len(np.unique(y)) == 2 and has_risk:
        report["fallback_auc"] = float(roc_auc_score(y, frame["any_defect"]))
    if y.sum() < MIN_DEPLOYMENT_FAILURES:
        report["fallback"] = (
            f"only {int(y.sum())} failed deployments (need {MIN_DEPLOYMENT_FAILURES}): use the aggregated "
            "change risk P(any change defective) of each batch instead of a deployment model"
        )
        return None, report
    try:
        cut = int(len(frame) * 0.8)
        model = RiskModel(estimator=estimator, features=DEPLOYMENT_FEATURES).fit(frame.iloc[:cut], y[:cut])
        test = frame.iloc[cut:]
        if len(np.unique(y[cut:])) == 2:
            report["test_auc"] = float(roc_auc_score(y[cut:], model.predict_proba(test)[:, 1]))
            if has_risk:
                report["fallback_test_auc"] = float(roc_auc_score(y[cut:], test["any_defect"]))
                if report["fallback_test_auc"] >= report["test_auc"]:
                    report["notes"].append(
                        f"on the newest 20 % of deployments the aggregated change risk ranks failures as well or "
                        f"better (AUC {report['fallback_test_auc']:.3f} vs {report['test_auc']:.3f}): prefer it"
                    )
        model = RiskModel(estimator=estimator, features=DEPLOYMENT_FEATURES).fit(frame, y)
    except ModelError as exc:
        report["fallback"] = f"{exc}: use the aggregated change risk instead"
        return None, report
    report["selected"] = model.selected_
    return model, report


def _scored_share(frame: pd.DataFrame) -> float | None:
    """Share of the deployed changes that have a risk score (None: unknown, or no changes)."""
    if "scored_changes" not in frame or not frame["batch_size"].sum():
        return None
    return float(frame["scored_changes"].sum() / frame["batch_size"].sum())


# -- persistence ------------------------------------------------------------------------------
#: The reviewed list of types a model file may contain beyond skops' defaults. Loading
#: a file with any other type raises UntrustedModelError: a model file is code.
TRUSTED_TYPES = (
    "releaserisk.model.RiskModel",
    "releaserisk.model._MeanEnsemble",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.common.PREDICTOR_RECORD_DTYPE",
    "collections.OrderedDict",
    "sklearn.tree._tree.Tree",
)


def _versions() -> dict[str, str]:
    import sklearn

    return {"sklearn": sklearn.__version__, "numpy": np.__version__, "python": platform.python_version()}


def save_model(model: RiskModel, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Save a fitted model with skops, with metadata (features, versions, metrics, window).

    The file also carries the model's :class:`~releaserisk.scorecard.Scorecard`, the
    data-only form the CI gate scores with (:func:`releaserisk.gate.load_scorer`).

    Parameters
    ----------
    model : RiskModel
        A fitted model.
    path : path-like
        The ``.skops`` file to write (directories are created).
    metadata : dict, optional
        Recorded with the library versions and the feature list.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import skops.io as sio

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    model.metadata_ = json.dumps({**(metadata or {}), "versions": _versions(), "features": list(model.features)})
    card = Scorecard.from_model(model)
    card.meta["metadata"] = json.loads(model.metadata_)
    # deflated: tree ensembles are mostly small integers, and model files travel through CI caches
    sio.dump(model, target, compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(target, "a") as archive:  # skops reads only the members its schema names
        archive.writestr(SCORECARD_MEMBER, card.to_bytes())
    return target


def load_model(path: str | Path, *, check_versions: bool = True) -> tuple[RiskModel, dict[str, Any]]:
    """Load a model saved by :func:`save_model`, trusting only :data:`TRUSTED_TYPES`.

    Parameters
    ----------
    path : path-like
        The ``.skops`` file.
    check_versions : bool
        Refuse a file saved with another scikit-learn minor version.

    Returns
    -------
    (RiskModel, dict)
        The model and its metadata.

    Raises
    ------
    ModelError
        Missing or unreadable file, or a damaged member (CRC,
        :func:`releaserisk.scorecard.check_archive`).
    UntrustedModelError
        The file contains a type outside the trusted list.
    ModelVersionError
        Saved with another scikit-learn minor version (when ``check_versions``).
    """
    import skops.io as sio

    source = Path(path)
    if not source.is_file():
        raise ModelError(f"model file {source} does not exist (train one with 'releaserisk train')")
    try:
        with zipfile.ZipFile(source) as archive:
            check_archive(archive, source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{source} is not a readable skops model file: {exc}") from None
    try:
        untrusted = sio.get_untrusted_types(file=source)
    except Exception as exc:  # skops raises several types for a damaged archive
        raise ModelError(f"{source} is not a readable skops model file: {exc}") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise UntrustedModelError(f"{source} contains untrusted types: {', '.join(unexpected)}; refusing to load")
    try:
        model = sio.load(source, trusted=list(untrusted))
    except Exception as exc:
        raise ModelError(f"cannot load {source}: {exc}") from None
    if not isinstance(model, RiskModel):
        raise ModelError(f"{source} does not hold a releaserisk RiskModel")
    metadata = json.loads(getattr(model, "metadata_", "{}"))
    saved = metadata.get("versions", {}).get("sklearn", "")
    current = _versions()["sklearn"]
    if check_versions and saved.split(".")[:2] != current.split(".")[:2]:
        raise ModelVersionError(
            f"{source} was saved with scikit-learn {saved or 'unknown'}, this is {current}; retrain the model"
        )
    return model, metadata


# -- external feature tables and time-ordered evaluation -----------------------------------
def _numbers(values: pd.Series) -> pd.Series:
    """Floats (read_csv already turns True/False into booleans); anything else is NaN."""
    return pd.to_numeric(values, errors="coerce").astype(float)


def _timestamps(values: pd.Series, layout: str | None) -> pd.Series:
    """UTC times from unix seconds (numbers) or text, in ``layout`` first, then any ISO-like form."""
    seconds = pd.to_numeric(values, errors="coerce")
    times = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    text = values[seconds.isna()]
    if text.empty:
        return times
    parsed = pd.to_datetime(text, format=layout, utc=True, errors="coerce") if layout else None
    if parsed is None or parsed.isna().any():
        parsed = pd.to_datetime(text, format="mixed", utc=True, errors="coerce")
    return times.where(seconds.notna(), parsed.reindex(times.index))


#: Kamei et al.'s columns: ``nm`` is ND, ``pd`` AGE, ``npt`` NUC/NF.
_KAMEI_COLUMNS = ["ns", "nm", "nf", "entropy", "la", "ld", "lt", "fix", "ndev", "pd", "npt", "exp", "rexp", "sexp"]


def _require(raw: pd.DataFrame, columns: Sequence[str], source: Path) -> None:
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}")


def read_feature_table(path: str | Path) -> pd.DataFrame:
    """Read a JIT feature table (CSV) in the Kamei et al. or Zeng et al. conventions.

    Recognised columns: Kamei et al. (``commitdate``, ``nm`` = ND, ``pd`` = AGE,
    ``npt`` = NUC/NF, LA/LD relative to LT and LT per file) — converted back to raw
    counts so they mean what releaserisk's own metrics mean; Zeng et al. (``date`` in
    unix seconds, ``entrophy``). Only the change metrics and the label are read:
    any other column (row indices, the label's copy ``__``) is ignored, never a feature.
    Rows with an empty cell in a column that is read are left out and counted in
    ``frame.attrs["dropped_rows"]``; text where a number belongs raises.

    Returns
    -------
    DataFrame
        The 14 feature columns, ``time`` (UTC), ``bug`` (0/1) and ``effort`` (LA + LD),
        sorted by time (stable).

    Raises
    ------
    InputError
        No such file, no label, missing or empty columns, or a bad value (with its line).
    """
    import warnings

    source = Path(path)
    try:
        with warnings.catch_warnings():
            # index_col=False: a row with a field more than the header must not turn the first
            # column into the row index, shifting every value into its neighbour's column
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(source, index_col=False)
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except pd.errors.ParserWarning:
        raise InputError(f"{source}: cannot read: a row has more fields than the header") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{source}: cannot read: {exc}") from None
    if "bug" not in raw.columns:
        raise InputError(f"{source}: no 'bug' label column")
    frame = pd.DataFrame(index=raw.index)
    if "commitdate" in raw.columns:  # Kamei et al. (TSE 2013)
        _require(raw, _KAMEI_COLUMNS, source)
        used = ["commitdate", *_KAMEI_COLUMNS, "bug"]
        frame["time"] = _timestamps(raw["commitdate"], layout="%Y/%m/%d %H:%M")
        nf = _numbers(raw["nf"])
        lt = _numbers(raw["lt"]) * nf
        columns = {"ns": raw["ns"], "nd": raw["nm"], "nf": nf, "entropy": raw["entropy"],
                   "la": _numbers(raw["la"]) * lt, "ld": _numbers(raw["ld"]) * lt, "lt": lt, "fix": raw["fix"],
                   "ndev": raw["ndev"], "age": raw["pd"], "nuc": _numbers(raw["npt"]) * nf,
                   "exp": raw["exp"], "rexp": raw["rexp"], "sexp": raw["sexp"]}  # fmt: skip
    elif "date" in raw.columns:  # Zeng et al. (ISSTA 2021)
        entropy = "entrophy" if "entrophy" in raw.columns else "entropy"
        _require(raw, [entropy if f == "entropy" else f for f in KAMEI_FEATURES], source)
        frame["time"] = _timestamps(raw["date"], layout=None)
        columns = {f: raw[entropy if f == "entropy" else f] for f in KAMEI_FEATURES}
        used = ["date", *(entropy if f == "entropy" else f for f in KAMEI_FEATURES), "bug"]
    else:
        raise InputError(f"{source}: unknown format (expected a 'commitdate' or 'date' column)")
    for name, values in columns.items():
        frame[name] = _numbers(values)
    frame["bug"] = _numbers(raw["bug"])
    empty = _empty_cells(raw, used, source)
    bad = (frame[[*KAMEI_FEATURES, "bug", "time"]].isna().any(axis=1) | ~frame["bug"].isin([0, 1])) & ~empty
    if bad.any():
        raise InputError(f"{source}: row {int(np.flatnonzero(bad.to_numpy())[0]) + 2} has a bad value")
    frame = frame[~empty].astype({"bug": int})
    frame["effort"] = frame["la"] + frame["ld"]
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    frame.attrs["dropped_rows"] = int(empty.sum())
    return frame


def _empty_cells(raw: pd.DataFrame, used: Sequence[str], source: Path) -> pd.Series:
    """Rows with an empty cell in a column that is read: missing data, left out and counted.

    Public JIT tables have the odd empty metric (an entropy of a change with no lines);
    text where a number belongs is a different thing, a bad value, and stops the read.
    """
    cells = raw[list(used)].isna()
    hollow = [c for c in used if cells[c].all()]
    if hollow:
        raise InputError(f"{source}: column(s) {', '.join(hollow)} have no values")
    return cells.any(axis=1)


def evaluate_time_split(
    frame: pd.DataFrame, *, split: float = 0.8, estimator: str = "auto", random_state: int = 0
) -> dict[str, Any]:
    """Train on the oldest ``split`` of the rows, test on the rest (never shuffled).

    Parameters
    ----------
    frame : DataFrame
        Time-sorted rows with the feature columns, ``bug`` and ``effort``.

    Returns
    -------
    dict
        The metrics of :func:`evaluate_predictions` plus ``auc_low``/``auc_high`` (95 %
        bootstrap interval, :func:`auc_interval`), the size baseline on the same test
        rows and DeLong's paired comparison (:func:`size_baseline`), n_train, n_test, n_test_buggy,
        positive_rate_train, positive_rate_test, selected model, train_seconds and
        ``notes`` (:func:`label_maturity_notes`).
    """
    import time

    if not 0.1 <= split <= 0.95:
        raise InputError("split must be in [0.1, 0.95]")
    cut = int(len(frame) * split)
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    if len(test) < 10 or train["bug"].nunique() < 2 or test["bug"].nunique() < 2:
        raise InputError("too few rows or a single class in the train or test slice")
    started = time.perf_counter()
    model = RiskModel(estimator=estimator, random_state=random_state).fit(train, train["bug"])
    seconds = time.perf_counter() - started
    probabilities = model.predict_proba(test)[:, 1]
    metrics = evaluate_predictions(test["bug"], probabilities, test["effort"])
    auc_low, auc_high = auc_interval(test["bug"], probabilities, seed=random_state)
    newest = train["bug"].iloc[int(len(train) * (1 - model.validation_fraction)) :]
    return {
        **metrics,
        "auc_low": auc_low,
        "auc_high": auc_high,
        **size_baseline(test, probabilities, seed=random_state),
        "n_train": len(train),
        "n_test": len(test),
        "n_test_buggy": int(test["bug"].sum()),
        "positive_rate_train": float(train["bug"].mean()),
        "positive_rate_test": float(test["bug"].mean()),
        "selected": model.selected_,
        "train_seconds": round(seconds, 2),
        "notes": [*dropped_rows_notes(frame), *label_maturity_notes(newest, test["bug"])],
    }


def dropped_rows_notes(frame: pd.DataFrame) -> list[str]:
    """A note when :func:`read_feature_table` left rows with empty cells out."""
    dropped = frame.attrs.get("dropped_rows", 0)
    if not dropped:
        return []
    rows = "1 row" if dropped == 1 else f"{dropped:,} rows"
    were = "was" if dropped == 1 else "were"
    return [f"{rows} with an empty metric or label {were} left out of {dropped + len(frame):,}"]


def label_maturity_notes(newest_train, test, alpha: float = 0.01) -> list[str]:
    """A warning when the test slice has clearly fewer defects than the newest training rows.

    SZZ labels a commit only once a fix for it lands, often years later, so the newest
    commits of a history look cleaner than they will be (and projects also mature).
    Calibration measured on such a slice (ECE, Brier) rewards a model that under-predicts.
    "Clearly fewer": a one-sided exact binomial test of the test slice's defects
    against the newest training slice's rate at ``alpha``.

    Returns
    -------
    list of str
        Empty, or one note with both rates.
    """
    from scipy.stats import binomtest

    before = float(np.mean(newest_train))
    test = np.asarray(test, dtype=int)
    if not len(test) or not 0 < before < 1:
        return []
    if binomtest(int(test.sum()), len(test), before, alternative="less").pvalue >= alpha:
        return []
    return [
        f"the positive rate falls from {before:.2f} in the newest training rows to {test.mean():.2f} in the "
        "test slice: recent labels may be incomplete (SZZ labels a commit only once its fix lands), so ece "
        "and brier are measured against labels that may still change"
    ]


def rolling_origin(
    frame: pd.DataFrame,
    *,
    warmup_months: int = 6,
    max_age_months: int = 6,
    estimator: str = "logistic",
    min_per_class: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """How a model's AUC decays with its age: train on months 1..k, test on k+1, k+2, ...

    Parameters
    ----------
    frame : DataFrame
        Time-sorted rows with ``time``, features and ``bug``.
    warmup_months : int
        Months of history before the first training origin.
    max_age_months : int
        Test months after each origin.
    min_per_class : int
        Buggy and clean changes a test month needs for an AUC. A month with one buggy
        change scores 0 or 1 by luck, and such months made the chart of a small
        project's model age mostly noise.
    progress : callable, optional
        ``progress(done, total)`` after each training origin.

    Returns
    -------
    DataFrame
        ``origin, age_months, n_test, positive_rate, auc`` (AUC NaN for a month with
        fewer than ``min_per_class`` of either class). Summarise with :func:`auc_by_age`.
    """
    from sklearn.metrics import roc_auc_score

    months = frame["time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M")
    periods = sorted(months.unique())
    rows = []
    origins = range(warmup_months, len(periods))
    for done, k in enumerate(origins, 1):
        if progress:
            progress(done, len(origins))
        origin = periods[k]
        train = frame[months < origin]
        if train["bug"].nunique() < 2 or len(train) < 50:
            continue
        try:
            model = RiskModel(estimator=estimator).fit(train, train["bug"])
        except ModelError:
            continue
        for age in range(1, max_age_months + 1):
            if k + age - 1 >= len(periods):
                break
            test = frame[months == periods[k + age - 1]]
            if test.empty:
                continue
            buggy = int(test["bug"].sum())
            if min(buggy, len(test) - buggy) >= max(min_per_class, 1):
                auc = float(roc_auc_score(test["bug"], model.predict_proba(test)[:, 1]))
            else:
                auc = math.nan
            rows.append((str(origin), age, len(test), float(test["bug"].mean()), auc))
    return pd.DataFrame(rows, columns=["origin", "age_months", "n_test", "positive_rate", "auc"])


def auc_by_age(rolling: pd.DataFrame) -> pd.Series:
    """Mean test AUC per model age in months, each month weighted by its changes.

    Parameters
    ----------
    rolling : DataFrame
        :func:`rolling_origin`'s table; months without an AUC are left out.

    Returns
    -------
    Series
        Indexed by ``age_months``; ages with no AUC at all are absent.
    """
    rated = rolling.dropna(subset=["auc"])
    weighted = (rated["auc"] * rated["n_test"]).groupby(rated["age_months"]).sum()
    return (weighted / rated.groupby("age_months")["n_test"].sum()).rename("auc")
