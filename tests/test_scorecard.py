"""The scorecard: the gate's data-only copy of a model scores exactly as the model, and refuses bad files."""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from releaserisk.errors import ModelError
from releaserisk.gate import load_scorer
from releaserisk.model import RiskModel, save_model
from releaserisk.scorecard import SCORECARD_MEMBER, Scorecard
from tests.test_model import synthetic


@pytest.fixture(scope="module")
def frame():
    return synthetic(n=800, seed=3)


@pytest.fixture(scope="module", params=["logistic", "boosting", "ensemble"])
def saved(request, frame, tmp_path_factory):
    model = RiskModel(estimator=request.param).fit(frame, frame["bug"])
    path = save_model(model, tmp_path_factory.mktemp(request.param) / "m.skops", {"model_id": request.param})
    return model, path


@pytest.fixture(scope="module")
def boosting_file(frame, tmp_path_factory):
    model = RiskModel(estimator="boosting").fit(frame, frame["bug"])
    return save_model(model, tmp_path_factory.mktemp("boosting") / "m.skops")


def test_scorecard_scores_and_explains_exactly_as_the_model(saved, frame):
    model, path = saved
    card, metadata = load_scorer(path)
    assert isinstance(card, Scorecard) and card.selected_ == model.selected_
    assert metadata["model_id"] == model.selected_ and metadata["features"] == list(model.features)
    # unseen rows, including zeros and values beyond the training range
    probe = synthetic(n=300, seed=11)
    probe.loc[:4, list(model.features)] = 0.0
    probe.loc[5:9, "la"] = 1e6
    np.testing.assert_allclose(card.predict_proba(probe), model.predict_proba(probe), rtol=0, atol=1e-12)
    ours, theirs = card.explain(probe.head(40)), model.explain(probe.head(40))
    assert ours["feature"].tolist() == theirs["feature"].tolist()
    np.testing.assert_allclose(ours["contribution"], theirs["contribution"], rtol=0, atol=1e-9)


def rewrite(path, target, member_bytes=None):
    """Copy a model file, dropping the scorecard member or replacing it."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename != SCORECARD_MEMBER:
                dst.writestr(info, src.read(info))
        if member_bytes is not None:
            dst.writestr(SCORECARD_MEMBER, member_bytes)
    return target


def tampered(path, **changes):
    with zipfile.ZipFile(path) as archive, np.load(io.BytesIO(archive.read(SCORECARD_MEMBER))) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key, change in changes.items():
        arrays[key] = change(arrays[key])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_file_without_scorecard_is_read_through_skops(frame, tmp_path):
    model = RiskModel(estimator="logistic").fit(frame, frame["bug"])
    path = save_model(model, tmp_path / "m.skops")
    loaded, _ = load_scorer(rewrite(path, tmp_path / "old.skops"))
    assert isinstance(loaded, RiskModel)
    assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"boosting_left": lambda a: np.where(a >= 0, a + 10**9, a)}, "malformed tree"),  # child out of range
        ({"boosting_right": lambda a: np.where(a > 0, 0, a)}, "malformed tree"),  # points back to the root: a loop
        ({"boosting_feature": lambda a: a + 99}, "malformed tree"),
        ({"boosting_offsets": lambda a: a[:0]}, "malformed tree"),
        ({"medians": lambda a: a[:3]}, "do not match"),
        ({"calibration": lambda a: np.array([np.nan, 0.0])}, "do not match"),
        ({"boosting_left": lambda a: a.astype(float)}, "wrong type"),
        ({"medians": lambda a: a.astype(str)}, "wrong type"),
        ({"meta": lambda a: np.array(json.dumps({**json.loads(str(a)), "format": 99}))}, "unknown scorecard format"),
    ],
)
def test_malformed_scorecards_are_refused(boosting_file, tmp_path, changes, message):
    bad = rewrite(boosting_file, tmp_path / "bad.skops", tampered(boosting_file, **changes))
    with pytest.raises(ModelError, match=message):
        load_scorer(bad)


def test_pickled_arrays_and_damaged_files_are_refused(frame, tmp_path):
    model = RiskModel(estimator="logistic").fit(frame, frame["bug"])
    path = save_model(model, tmp_path / "m.skops")
    pickled = tampered(path, medians=lambda a: np.array([object()] * len(a), dtype=object))
    with pytest.raises(ModelError, match="not a readable"):
        load_scorer(rewrite(path, tmp_path / "pickle.skops", pickled))
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable"):
        load_scorer(tmp_path / "junk.skops")
    with pytest.raises(ModelError, match="does not exist"):
        load_scorer(tmp_path / "missing.skops")


def test_gate_path_imports_neither_scikit_learn_nor_skops(saved, frame, tmp_path):
    # the import of the stack is most of the gate's latency (benchmarks/score_latency.py)
    _, path = saved
    rows = frame.head(5).drop(columns="time")  # no sha or subject: scored all the same
    rows.to_csv(tmp_path / "rows.csv", index=False)
    code = (
        "import sys, pandas as pd\n"
        "from releaserisk.gate import load_scorer\n"
        "from releaserisk.gate import score_commits\n"
        f"card, meta = load_scorer({str(path)!r})\n"
        f"rows = pd.read_csv({str(tmp_path / 'rows.csv')!r})\n"
        "assert len(score_commits(card, rows, threshold=0.5, model_id='m').commits) == 5\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops', 'scipy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
