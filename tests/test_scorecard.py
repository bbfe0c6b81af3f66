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
        # a damaged model is an input error (exit 2), never a KeyError, IndexError or TypeError (exit 70)
        (
            {"meta": lambda a: np.array(json.dumps({k: v for k, v in json.loads(str(a)).items() if k != "features"}))},
            "names no features",
        ),
        ({"meta": lambda a: np.array(json.dumps({**json.loads(str(a)), "features": 3}))}, "names no features"),
        ({"meta": lambda a: np.array(json.dumps({**json.loads(str(a)), "selected": None}))}, "names no model family"),
        ({"boosting_baseline": lambda a: a[:0]}, "do not match"),
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


def corrupt(path, target, size=200, seed=0):
    """A copy of a model file with ``size`` random bytes written into its largest array member.

    Returns the member's name. The archive's directory stays intact: only the CRC can tell.
    """
    import shutil
    import struct

    shutil.copy(path, target)
    with zipfile.ZipFile(target) as archive:
        info = max((i for i in archive.infolist() if i.filename.endswith(".npy")), key=lambda i: i.compress_size)
    with open(target, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", f.read(4))
        size = min(size, info.compress_size)
        f.seek(info.header_offset + 30 + name_length + extra_length + (info.compress_size - size) // 2)
        f.write(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return info.filename


def test_a_damaged_member_anywhere_in_the_file_is_refused(boosting_file, frame, tmp_path):
    from releaserisk.model import load_model

    bad = tmp_path / "bad.skops"
    member = corrupt(boosting_file, bad)  # the trees skops reads, not the scorecard the gate reads
    assert member != SCORECARD_MEMBER and Scorecard.read(boosting_file) is not None
    with pytest.raises(ModelError, match=f"member {member} is damaged"):
        load_scorer(bad)
    with pytest.raises(ModelError, match=f"member {member} is damaged"):
        load_model(bad)
    without_card = rewrite(boosting_file, tmp_path / "old.skops")  # the skops path checks every member too
    damaged = corrupt(without_card, tmp_path / "old-bad.skops")
    with pytest.raises(ModelError, match=f"member {damaged} is damaged"):
        load_scorer(tmp_path / "old-bad.skops")


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
