"""A fitted :class:`~releaserisk.model.RiskModel` as plain arrays: fast, safe scoring for the CI gate.

Why a second form of the same model: reading a skops file imports skops' type registry,
which imports every scikit-learn module (0.55 s of the 2.4 s a ``releaserisk score``
took on benchmarks/score_latency.py), and scoring a handful of commits needs only a dot
product and some tree look-ups. :func:`~releaserisk.model.save_model` therefore also
writes the fitted numbers into the model file, as a member of the same zip archive
that skops ignores, and the gate reads them with numpy alone:

* nothing in it can run code: ``numpy.load(..., allow_pickle=False)`` and JSON;
* every tree is checked before use — child and feature indices in range, no cycles —
  which is more than skops can do for HistGradientBoosting's ``TreePredictor``;
* tests/test_scorecard.py holds it to the scikit-learn model's probabilities
  and explanations for every estimator family.

A model file without the member (saved by an older releaserisk) is read through skops by
:func:`releaserisk.gate.load_scorer`: this module imports nothing of :mod:`releaserisk.model`.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from releaserisk._riskmath import explain_contributions, feature_matrix, logit, occlusion_contributions
from releaserisk.errors import ModelError

if TYPE_CHECKING:
    from releaserisk.model import RiskModel

__all__ = ["SCORECARD_MEMBER", "Scorecard", "check_archive", "explain_contributions", "feature_matrix", "logit"]

#: Name of the scorecard's member in a model file's zip archive.
SCORECARD_MEMBER = "releaserisk/scorecard.npz"
FORMAT_VERSION = 1
_TREE_FIELDS = ("feature", "threshold", "left", "right", "value", "missing_left", "offsets")
#: The model families a scorecard can hold, each recognised by one of its arrays.
_PART_KEYS = {"logistic": "logistic_coef", "boosting": "boosting_offsets", "forest": "forest_offsets"}


def check_archive(archive: zipfile.ZipFile, path: str | Path) -> None:
    """Read every member of a model file's archive through its CRC-32 before anything is loaded.

    skops reads only the members its schema names, and the scorecard only its own, so a
    damaged tree array elsewhere in the file went unnoticed until a model scored with it.
    Every member is decompressed and its CRC compared (as :meth:`zipfile.ZipFile.testzip`,
    which names only CRC failures; a damaged deflate stream raises other errors).

    Parameters
    ----------
    archive : zipfile.ZipFile
        The model file, open for reading.
    path : str or Path
        Its path, for the message.

    Raises
    ------
    ModelError
        Naming the first damaged member.
    """
    for info in archive.infolist():
        try:
            with archive.open(info) as member:
                while member.read(1 << 20):
                    pass
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ModelError(
                f"{path}: member {info.filename} is damaged ({exc}); restore the model file or retrain"
            ) from None


# -- tree ensembles as flat arrays -------------------------------------------------------
def _pack_trees(trees: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate trees; child indices become global, ``offsets`` holds each root."""
    sizes = [len(t["feature"]) for t in trees]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    packed = {key: np.concatenate([t[key] for t in trees]) for key in ("feature", "threshold", "value", "missing_left")}
    for key in ("left", "right"):
        packed[key] = np.concatenate(
            [np.where(t[key] >= 0, t[key] + o, -1) for t, o in zip(trees, offsets, strict=True)]
        )
    packed["offsets"] = offsets
    return packed


def _expected_kinds(key: str) -> str:
    """NumPy dtype kinds a scorecard array may have, by its name."""
    if key.endswith("_missing_left"):
        return "b"
    if key.endswith(("_feature", "_left", "_right", "_offsets")):
        return "iu"
    return "f"


def _check_trees(trees: dict[str, np.ndarray], n_features: int, name: str) -> None:
    """Refuse malformed trees: a crafted file must not index out of bounds or loop forever."""
    n = len(trees["feature"])
    if any(len(trees[k]) != n for k in _TREE_FIELDS if k != "offsets"):
        raise ModelError(f"scorecard {name}: tree arrays differ in length")
    offsets, left, right = trees["offsets"], trees["left"], trees["right"]
    leaf = left < 0
    node = np.arange(n)
    ok = (
        len(offsets) > 0
        and np.all((offsets >= 0) & (offsets < n))
        and np.all(leaf == (right < 0))
        and np.all(leaf | ((left > node) & (left < n) & (right > node) & (right < n)))
        and np.all(leaf | ((trees["feature"] >= 0) & (trees["feature"] < n_features)))
        and np.all(np.isfinite(trees["value"]))
    )
    # children always follow their parent, so every walk ends at a leaf
    if not ok:
        raise ModelError(f"scorecard {name}: malformed tree arrays; retrain or re-save the model")


def _walk(trees: dict[str, np.ndarray], matrix: np.ndarray) -> np.ndarray:
    """Leaf values, shape (n_trees, n_rows): every tree walked for every row at once."""
    node = np.repeat(trees["offsets"][:, None], len(matrix), axis=1)
    rows = np.broadcast_to(np.arange(len(matrix)), node.shape)
    left, right, feature, threshold = trees["left"], trees["right"], trees["feature"], trees["threshold"]
    active = left[node] >= 0
    while active.any():
        at = node[active]
        x = matrix[rows[active], feature[at]]
        go_left = np.where(np.isnan(x), trees["missing_left"][at], x <= threshold[at])
        node[active] = np.where(go_left, left[at], right[at])
        active = left[node] >= 0
    return trees["value"][node]


def _hist_boosting_trees(clf) -> tuple[float, dict[str, np.ndarray]]:
    trees = []
    for (predictor,) in clf._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        trees.append(
            {
                "feature": nodes["feature_idx"].astype(np.int64),
                "threshold": nodes["num_threshold"].astype(float),
                "left": np.where(leaf, -1, nodes["left"].astype(np.int64)),  # unsigned in scikit-learn
                "right": np.where(leaf, -1, nodes["right"].astype(np.int64)),
                "value": nodes["value"].astype(float),
                "missing_left": nodes["missing_go_to_left"].astype(bool),
            }
        )
    return float(np.ravel(clf._baseline_prediction)[0]), _pack_trees(trees)


def _forest_trees(clf) -> dict[str, np.ndarray]:
    trees = []
    for estimator in clf.estimators_:
        tree = estimator.tree_
        counts = tree.value[:, 0, :]
        trees.append(
            {
                "feature": tree.feature.astype(np.int64),
                "threshold": tree.threshold.astype(float),
                "left": tree.children_left.astype(np.int64),
                "right": tree.children_right.astype(np.int64),
                "value": counts[:, 1] / counts.sum(axis=1),
                "missing_left": np.zeros(tree.node_count, dtype=bool),
            }
        )
    return _pack_trees(trees)


# -- the scorecard ---------------------------------------------------------------------------
class Scorecard:
    """Calibrated defect probabilities and explanations from a model's arrays, with numpy only.

    Same interface as :class:`~releaserisk.model.RiskModel` for scoring: ``features``,
    ``selected_``, :meth:`decision_function`, :meth:`predict_proba`, :meth:`explain`.
    Build one with :meth:`from_model`; read one with :meth:`read`.
    """

    def __init__(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.features = list(meta["features"])
        self.selected_ = meta["selected"]
        self.meta = meta
        self.arrays = arrays
        self._parts = [part for part, key in _PART_KEYS.items() if key in arrays]

    # -- building and storage ------------------------------------------------------------
    @classmethod
    def from_model(cls, model: RiskModel) -> Scorecard:
        """The arrays of a fitted model (logistic, boosting or the mean ensemble)."""
        pipelines = model.estimator_.members_ if model.selected_ == "ensemble" else [model.estimator_]
        arrays: dict[str, np.ndarray] = {
            "medians": np.asarray(model.medians_, dtype=float),
            "calibration": np.array([model.calibrator_.coef_[0, 0], model.calibrator_.intercept_[0]]),
        }
        for pipeline in pipelines:
            clf = pipeline[-1]
            kind = type(clf).__name__
            if kind == "LogisticRegression":
                scaler = pipeline.named_steps["scale"]
                arrays.update(logistic_mean=scaler.mean_, logistic_scale=scaler.scale_,
                              logistic_coef=clf.coef_[0], logistic_intercept=clf.intercept_)  # fmt: skip
            elif kind == "HistGradientBoostingClassifier":
                baseline, trees = _hist_boosting_trees(clf)
                arrays.update({f"boosting_{k}": v for k, v in trees.items()})
                arrays["boosting_baseline"] = np.array([baseline])
            elif kind == "RandomForestClassifier":
                arrays.update({f"forest_{k}": v for k, v in _forest_trees(clf).items()})
            else:  # a new model family must get a scorecard form before it can be saved
                raise ModelError(f"no scorecard form for {kind}")
        meta = {"format": FORMAT_VERSION, "features": list(model.features), "selected": model.selected_}
        card = cls(meta, arrays)
        card.validate()
        return card

    def to_bytes(self) -> bytes:
        """The ``.npz`` bytes (metadata as a JSON string array)."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.array(json.dumps(self.meta)), **self.arrays)
        return buffer.getvalue()

    @classmethod
    def read(cls, path: str | Path) -> Scorecard | None:
        """The scorecard stored in a model file, or None when the file has none.

        Raises
        ------
        ModelError
            Unreadable archive, a damaged member (:func:`check_archive`), unknown format,
            or malformed arrays.
        """
        try:
            with zipfile.ZipFile(path) as archive:
                check_archive(archive, path)
                if SCORECARD_MEMBER not in archive.namelist():
                    return None
                data = archive.read(SCORECARD_MEMBER)
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
            raise ModelError(f"{path} is not a readable model file: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise ModelError(f"{path}: unknown scorecard format; retrain the model with this releaserisk")
        features = meta.get("features")
        if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
            raise ModelError(f"{path}: the scorecard names no features; the model file is damaged")
        if not isinstance(meta.get("selected"), str):
            raise ModelError(f"{path}: the scorecard names no model family; the model file is damaged")
        card = cls(meta, arrays)
        card.validate()
        return card

    def validate(self) -> None:
        """Check shapes and tree structure (see the module docstring).

        Raises
        ------
        ModelError
        """
        n = len(self.features)
        for key, array in self.arrays.items():  # a crafted file must fail here, not mid-scoring
            if array.dtype.kind not in _expected_kinds(key) or array.ndim > 1:
                raise ModelError(f"scorecard array {key} has the wrong type or shape")
        try:
            shapes_ok = self.arrays["medians"].shape == (n,) and self.arrays["calibration"].shape == (2,)
            if "logistic" in self._parts:
                shapes_ok &= all(self.arrays[f"logistic_{k}"].shape == (n,) for k in ("mean", "scale", "coef"))
                shapes_ok &= self.arrays["logistic_intercept"].shape == (1,)
                shapes_ok &= bool(np.all(self.arrays["logistic_scale"] > 0))
            if "boosting" in self._parts:
                shapes_ok &= self.arrays["boosting_baseline"].shape == (1,)
            numbers = [a for key, a in self.arrays.items() if a.dtype.kind == "f" and not key.endswith("threshold")]
            shapes_ok &= all(np.all(np.isfinite(a)) for a in numbers)  # thresholds may be +inf
            for part in ("boosting", "forest"):
                if part in self._parts:
                    _check_trees({k: self.arrays[f"{part}_{k}"] for k in _TREE_FIELDS}, n, part)
        except KeyError as exc:
            raise ModelError(f"scorecard lacks the array {exc}") from None
        expected = {"ensemble": 3, "logistic": 1, "boosting": 1}.get(self.selected_)
        if not shapes_ok or expected != len(self._parts):
            raise ModelError("scorecard arrays do not match its features or model family, or are not finite")

    # -- scoring --------------------------------------------------------------------------
    def _part_proba(self, part: str, logged: np.ndarray) -> np.ndarray:
        a = self.arrays
        if part == "logistic":
            scaled = (logged - a["logistic_mean"]) / a["logistic_scale"]
            return 1.0 / (1.0 + np.exp(-(scaled @ a["logistic_coef"] + a["logistic_intercept"][0])))
        trees = {k: a[f"{part}_{k}"] for k in _TREE_FIELDS}
        if part == "boosting":
            raw = a["boosting_baseline"][0] + _walk(trees, logged).sum(axis=0)
            return 1.0 / (1.0 + np.exp(-raw))
        # scikit-learn's trees compare float32 copies of the inputs
        return _walk(trees, logged.astype(np.float32).astype(float)).mean(axis=0)

    def _decision(self, matrix: np.ndarray) -> np.ndarray:
        logged = np.log1p(matrix)
        raw = np.mean([self._part_proba(part, logged) for part in self._parts], axis=0)
        slope, intercept = self.arrays["calibration"]
        return slope * logit(raw) + intercept

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of a defect."""
        return self._decision(feature_matrix(X, self.features))

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, columns (clean, buggy)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Top signed contributions per row, as :meth:`releaserisk.model.RiskModel.explain`."""
        matrix = feature_matrix(X, self.features)
        if self.selected_ == "logistic":
            a = self.arrays
            scaled = (np.log1p(matrix) - a["logistic_mean"]) / a["logistic_scale"]
            contributions = scaled * a["logistic_coef"]
        else:
            contributions = occlusion_contributions(self._decision, matrix, self.arrays["medians"])
        return explain_contributions(matrix, contributions, self.features, top)
