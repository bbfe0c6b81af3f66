"""Change metrics kept linear in the history's length: REXP over chunk moments, NUC's union size."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releaserisk import features
from releaserisk.features import _AuthorHistory, _Commits, _plain_rexp, _union_size

YEAR = 365.25 * 86_400
CHUNK, PLAIN_BELOW = 64, 256  # the production sizes (1024, 4096) scaled down: same code paths, 16x faster


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(features, "_REXP_CHUNK", CHUNK)
    monkeypatch.setattr(features, "_REXP_PLAIN_BELOW", PLAIN_BELOW)


def streamed(times):
    history = _AuthorHistory()
    values = []
    for t in times:
        values.append(history.rexp(t))
        history.append(t)
    return history, values


def author_times(kind: str, n: int, rng) -> np.ndarray:
    gaps = rng.exponential(3_600.0, n)  # a prolific author (or a bot): a commit an hour
    if kind == "sparse":  # a chunk spans years: its series would converge too slowly, summed plainly
        gaps = rng.exponential(0.4 * YEAR / CHUNK * 8, n)
    times = 1.5e9 + np.cumsum(gaps)
    if kind == "skew":  # committer clocks run wrong: some times lie before earlier ones, some far ahead
        times[rng.choice(n, n // 50, replace=False)] -= rng.uniform(0, 30 * 86_400, n // 50)
        times[rng.choice(n, 3, replace=False)] += 2 * YEAR
    if kind == "burst":  # an import: whole chunks at one second (radius 0)
        times[100:300] = times[100]
    return times


@pytest.mark.parametrize("kind", ["steady", "sparse", "skew", "burst"])
def test_rexp_equals_the_plain_sum_to_rounding(kind):
    rng = np.random.default_rng(len(kind))
    times = author_times(kind, 8 * PLAIN_BELOW + 100, rng)
    _, values = streamed(times)
    plain = [_plain_rexp(times[:i], t) for i, t in enumerate(times)]
    np.testing.assert_allclose(values, plain, rtol=1e-13, atol=0)
    # below the threshold the value is the plain sum bit for bit (every earlier output unchanged)
    assert values[:PLAIN_BELOW] == plain[:PLAIN_BELOW]


def test_a_steady_author_takes_the_far_expansion_not_the_chunks(monkeypatch):
    times = author_times("steady", 8 * PLAIN_BELOW + 100, np.random.default_rng(5))
    history, _ = streamed(times)
    t0, rho, latest, _, near = history.far  # built when the newest chunk completed
    assert near == (len(times) // CHUNK - 1) * CHUNK and latest <= t0 < latest + rho
    monkeypatch.setattr(features, "_series", None)  # the chunks' path would fail
    later = times[-1] + 3_600.0
    assert history.rexp(later) == pytest.approx(_plain_rexp(times, later), rel=1e-13)


def test_a_history_loaded_from_the_store_gives_the_streamed_values_bit_for_bit():
    times = author_times("skew", 4 * PLAIN_BELOW + 17, np.random.default_rng(3))
    history, _ = streamed(times[:-300])
    loaded = _AuthorHistory(times[:-300].tolist())
    for t in times[-300:]:
        assert loaded.rexp(t) == history.rexp(t)
        loaded.append(t)
        history.append(t)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the patched constants hold for every example
@given(st.lists(st.sets(st.integers(0, 300), max_size=120), min_size=1, max_size=5), st.integers(0, 130))
def test_union_size_is_the_size_of_the_union(monkeypatch, sets, split):
    monkeypatch.setattr(features, "_BITMAP_FROM", 8)
    grown = []  # built as the ingest builds them: the first ``split`` seqs at once, the rest one by one
    for seqs in sets:
        ordered = sorted(seqs)
        commits = _Commits(ordered[:split])
        for seq in ordered[split:]:
            commits.add(seq)
        grown.append(commits)
    assert _union_size(grown) == len(set().union(*sets))
    assert [c.ordered().tolist() for c in grown] == [sorted(s) for s in sets]


def test_union_size_with_one_set_twice(monkeypatch):
    monkeypatch.setattr(features, "_BITMAP_FROM", 2)
    shared, other = _Commits({1, 2, 3}), _Commits({3, 4, 200})
    assert shared.bits is not None and _union_size([shared, shared, other, _Commits({5})]) == 6
