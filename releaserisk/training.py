"""Training a change-risk model on a store: one procedure for ``train``, the demo and notebooks.

Labelled changes older than the label horizon (:func:`releaserisk.training_frame`) →
time-ordered evaluation (:func:`releaserisk.evaluate_time_split`: train on the oldest
80 %, test on the newest 20 %, with a bootstrap AUC interval) → the model refitted on
every row → saved with skops and its metadata (repositories it is bound to, label
quality, advisory reasons; :func:`releaserisk.model.change_model_metadata`) →
registered in the store (:func:`releaserisk.registry.register_model`). DESIGN.md §4.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from releaserisk.config import Settings
from releaserisk.errors import InputError

__all__ = ["MIN_EVALUATION_CHANGES", "TrainedModel", "labelled_changes", "train_change_model"]

#: Fewest labelled changes for a time-ordered evaluation (below it the model is saved unevaluated).
MIN_EVALUATION_CHANGES = 200


@dataclass
class TrainedModel:
    """A change-risk model trained on a store, with what its file and registry row record.

    Attributes
    ----------
    model : RiskModel
        The fitted model.
    path : Path
        Where it was saved.
    metadata : dict
        JSON-safe metadata saved with it (``model_id``, ``evaluation``, ``advisory_reasons``…).
    n_changes : int
        Training rows (labelled changes).
    label_quality : dict
        Repository → :class:`releaserisk.labels.LabelQuality` (None when never labelled).
    """

    model: Any
    path: Path
    metadata: dict[str, Any]
    n_changes: int
    label_quality: dict[str, Any] = field(default_factory=dict)

    @property
    def evaluation(self) -> dict[str, Any]:
        """The time-ordered evaluation (empty below :data:`MIN_EVALUATION_CHANGES` changes)."""
        return self.metadata.get("evaluation") or {}

    def summary(self) -> str:
        """What was trained, how it evaluated, whether it may gate, and the labels it rests on.

        Returns
        -------
        str
            Lines of text.
        """
        from releaserisk.model import size_comparison_line

        evaluation = self.evaluation
        model_id = self.metadata["model_id"]
        line = f"trained {self.model.selected_} model {model_id} on all {self.n_changes:,} changes -> {self.path}"
        if evaluation:
            # the saved model has no held-out rows: the AUC is the whole procedure's, repeated on the oldest rows
            interval = f"95 % CI {evaluation['auc_low']:.3f}–{evaluation['auc_high']:.3f}"
            line += (
                f"; its AUC is estimated by the same procedure fit on the oldest {evaluation['n_train']:,} changes "
                f"(chose {evaluation['selected']}): test AUC {evaluation['auc']:.3f} ({interval}) on the newest "
                f"{evaluation['n_test']:,}"
            )
        lines = [line]
        size = size_comparison_line(evaluation) if evaluation else None
        if size:
            lines.append(size)
        advisory = self.metadata.get("advisory_reasons") or []
        if advisory:
            lines.append(f"advisory model: {'; '.join(advisory)}; score will warn and not fail the gate")
        for repo, quality in self.label_quality.items():
            lines.append(quality.summary() if quality else f"{repo}: no label-quality summary; run 'releaserisk label'")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: the metadata and the path.

        Returns
        -------
        dict
        """
        return {**self.metadata, "path": str(self.path)}


def labelled_changes(store, settings: Settings, repos: Sequence[str] | None = None) -> pd.DataFrame:
    """Changes with a label, older than the label horizon, of some or all repositories.

    Parameters
    ----------
    store : Store
        An open store with ingested and labelled history.
    settings : Settings
        ``label_horizon_days`` and the label settings.
    repos : sequence of str, optional
        Repository names (default: every stored repository).

    Returns
    -------
    DataFrame
        :func:`releaserisk.training_frame`'s rows.

    Raises
    ------
    InputError
        An unknown repository, or no labelled change old enough.
    """
    from releaserisk.labels import training_frame

    frame = training_frame(store, store.repositories(repos), settings=settings)
    if frame.empty:
        raise InputError("no labelled changes older than the label horizon; ingest more history or run 'label'")
    return frame


def train_change_model(
    store,
    settings: Settings,
    *,
    repos: Sequence[str] | None = None,
    estimator: str = "auto",
    out: str | os.PathLike[str] | None = None,
    model_id: str | None = None,
) -> TrainedModel:
    """Evaluate, fit, save and register a change-risk model on a store's labelled history.

    Parameters
    ----------
    store : Store
        An open, writable store.
    settings : Settings
        Label horizon and label settings; ``db`` gives the default model path.
    repos : sequence of str, optional
        Repositories to train on (default: all).
    estimator : str
        One of :data:`releaserisk.choices.ESTIMATORS`.
    out : path-like, optional
        Model file (default: :func:`releaserisk.gate.default_model_path`, next to the store).
    model_id : str, optional
        Default: a random 12-hex-digit id.

    Returns
    -------
    TrainedModel

    Raises
    ------
    InputError
        Unknown repository or no labelled changes.
    ModelError
        An unknown estimator.
    """
    from releaserisk.gate import default_model_path, repository_identity
    from releaserisk.labels import label_quality
    from releaserisk.model import RiskModel, change_model_metadata, evaluate_time_split, save_model
    from releaserisk.registry import register_model

    names = store.repositories(repos)
    frame = labelled_changes(store, settings, names)
    evaluation = evaluate_time_split(frame, estimator=estimator) if len(frame) >= MIN_EVALUATION_CHANGES else {}
    model = RiskModel(estimator=estimator).fit(frame, frame["bug"])
    qualities = {repo: label_quality(store, repo) for repo in names}
    metadata = change_model_metadata(
        model,
        frame,
        evaluation,
        model_id=model_id or uuid.uuid4().hex[:12],
        repositories=[repository_identity(store, repo) for repo in names],
        label_quality={repo: q.to_dict() for repo, q in qualities.items() if q},
    )
    path = save_model(model, out or default_model_path(settings.db, "+".join(names)), metadata)
    register_model(
        store,
        model_id=metadata["model_id"],
        path=str(path),
        level="change",
        train_start=frame["time"].min(),
        train_end=frame["time"].max(),
        features=list(model.features),
        metrics=evaluation,
        versions=json.loads(model.metadata_)["versions"],
    )
    return TrainedModel(model=model, path=Path(path), metadata=metadata, n_changes=len(frame), label_quality=qualities)
