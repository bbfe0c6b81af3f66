"""The arithmetic a fitted change-risk model and its scorecard share (numpy and pandas only).

:mod:`releaserisk.model` (scikit-learn) and :mod:`releaserisk.scorecard` (numpy only, for the
CI gate) both score and explain with these functions, so each is defined once and neither
module imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from releaserisk.errors import InputError

__all__ = ["explain_contributions", "feature_matrix", "logit", "occlusion_contributions"]


def feature_matrix(X, features: Sequence[str]) -> np.ndarray:
    """Validated float matrix of the feature columns, negatives clipped to 0.

    Raises
    ------
    InputError
        A missing column, a wrong shape, or a missing or infinite value.
    """
    if isinstance(X, pd.DataFrame):
        missing = [f for f in features if f not in X.columns]
        if missing:
            raise InputError(f"missing feature column(s): {', '.join(missing)}")
        X = X[list(features)]
    matrix = np.asarray(X, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] != len(features):
        raise InputError(f"expected {len(features)} feature columns, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InputError("features contain missing or infinite values")
    return np.clip(matrix, 0.0, None)  # counts and ages; clock skew can make an age negative


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, with probabilities clipped to [1e-6, 1 - 1e-6]."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def occlusion_contributions(
    decision: Callable[[np.ndarray], np.ndarray], matrix: np.ndarray, medians: np.ndarray
) -> np.ndarray:
    """Per-feature change of the decision function when the feature is set to its training median."""
    base = decision(matrix)
    contributions = np.empty_like(matrix)
    for j in range(matrix.shape[1]):
        probe = matrix.copy()
        probe[:, j] = medians[j]
        contributions[:, j] = base - decision(probe)
    return contributions


def explain_contributions(
    matrix: np.ndarray, contributions: np.ndarray, features: Sequence[str], top: int
) -> pd.DataFrame:
    """The ``top`` contributions per row by magnitude: columns ``row, rank, feature, value, contribution``."""
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :top]
    rows = [
        (i, rank, features[j], matrix[i, j], float(contributions[i, j]))
        for i, columns in enumerate(order)
        for rank, j in enumerate(columns, 1)
    ]
    return pd.DataFrame(rows, columns=["row", "rank", "feature", "value", "contribution"])
