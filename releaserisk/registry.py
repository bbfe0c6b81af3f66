"""The model registry: one row in ``models`` per trained model (DESIGN.md section 3).

The file on disk (skops, see :func:`releaserisk.save_model`) is what scores; the row
records where it is, when and on what it was trained, how it evaluated and with which
library versions, so a store can say which model produced its ``risk_scores``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["register_model"]


def register_model(
    store,
    *,
    model_id: str,
    path: str,
    level: str,
    train_start: Any,
    train_end: Any,
    features: Sequence[str],
    metrics: dict[str, Any],
    versions: dict[str, Any],
) -> None:
    """Record a trained model in the store's ``models`` table (replacing a row with its id).

    Parameters
    ----------
    store : Store
        An open, writable store.
    model_id : str
        The model's id, as its metadata records it.
    path : str
        Where the model file was saved.
    level : str
        ``change`` or ``deployment`` (:data:`releaserisk.choices.MODEL_LEVELS`).
    train_start, train_end : datetime-like
        Time of the oldest and newest training row (UTC).
    features : sequence of str
        Feature names, in the model's order.
    metrics : dict
        Time-ordered evaluation (stored as JSON).
    versions : dict
        Library versions the model was trained with (stored as JSON).
    """
    with store.transaction():
        store.execute("DELETE FROM models WHERE model_id = ?", [model_id])
        store.execute(
            "INSERT INTO models BY NAME SELECT ? AS model_id, ? AS path, ? AS level, ? AS created_at, "
            "? AS train_start, ? AS train_end, ? AS features, ? AS metrics, ? AS versions",
            [
                model_id,
                str(path),
                level,
                datetime.now(UTC),
                train_start,
                train_end,
                list(features),
                json.dumps(metrics, default=str),
                json.dumps(versions, default=str),
            ],
        )
