"""Intervals and two-sample tests against hand-computed and textbook values."""

import math

import numpy as np
import pytest

from releaserisk import intervals


def test_wilson_matches_the_hand_computation():
    low, high = intervals.wilson_interval([4, 0], [14, 0])
    assert (low[0], high[0]) == pytest.approx((0.1172, 0.5465), abs=1e-4)
    assert math.isnan(low[1]) and math.isnan(high[1])


def test_exact_poisson_interval_uses_gamma_quantiles():
    low, high = intervals.poisson_rate_interval([0, 4], [2.0, 2.0])
    assert low[0] == 0 and high[0] == pytest.approx(3.6889 / 2, abs=1e-4)  # Garwood, k = 0
    assert (low[1], high[1]) == pytest.approx((1.0899 / 2, 10.2416 / 2), abs=1e-4)


@pytest.mark.parametrize(
    ("n", "q", "ranks"),
    [(5, 0.5, (0, 6)), (6, 0.5, (1, 6)), (25, 0.5, (8, 18)), (100, 0.5, (40, 61)), (50, 0.9, (41, 50))],
)
def test_order_statistic_ranks_cover_at_least_95_percent(n, q, ranks):
    from scipy import stats

    low, high = intervals.quantile_interval_ranks(np.array([n]), q)
    assert (low[0], high[0]) == ranks
    if low[0] >= 1 and high[0] <= n:
        coverage = stats.binom.cdf(high[0] - 1, n, q) - stats.binom.cdf(low[0] - 1, n, q)
        assert coverage >= 0.95


def test_sorted_quantiles_interpolated_and_lower():
    values, offsets = np.array([1.0, 2.0, 3.0, 4.0, 10.0]), np.array([0, 4, 4, 5])
    assert intervals.sorted_quantile(values, offsets, 0.5)[[0, 2]].tolist() == [2.5, 10.0]
    assert intervals.sorted_quantile(values, offsets, 0.5, "lower")[[0, 2]].tolist() == [2.0, 10.0]
    assert math.isnan(intervals.sorted_quantile(values, offsets, 0.5)[1])
    assert intervals.sorted_quantile(values, offsets, 0.9)[0] == pytest.approx(3.7)


def test_two_proportion_test_on_both_sides_of_the_threshold():
    assert intervals.two_proportion_test(4, 14, 1, 13) > 0.05  # Fisher: expected counts below 5
    assert intervals.two_proportion_test(40, 100, 20, 100) == pytest.approx(0.00203, abs=1e-5)  # z = 3.09
    assert intervals.two_proportion_test(25, 100, 20, 100) > 0.05
    assert math.isnan(intervals.two_proportion_test(1, 0, 1, 3))


def test_rank_and_poisson_tests_on_both_sides_of_the_threshold():
    assert intervals.rank_test(np.arange(10.0), np.arange(10.0) + 100) < 0.05
    assert intervals.rank_test(np.arange(10.0), np.arange(10.0) + 1) > 0.05
    assert intervals.rank_test(np.ones(3), np.ones(4)) == 1.0
    assert intervals.poisson_rate_test(30, 7, 10, 7) < 0.05
    assert intervals.poisson_rate_test(12, 7, 10, 7) > 0.05


def sorted_groups(seed, low, high, count, decimals=1):
    """Groups of gamma values, each ascending, as rank_tests takes them: (values, offsets)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(low, high, count)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    group = np.repeat(np.arange(len(lengths)), lengths)
    values = np.round(rng.gamma(2.0, 3.0, offsets[-1]), decimals)
    return values[np.lexsort((values, group))], offsets


@pytest.mark.parametrize("decimals", [0, 6])  # many ties, and (almost) none
def test_rank_tests_pair_by_pair_equal_the_banded_search(monkeypatch, decimals):
    values, offsets = sorted_groups(7, 0, 40, 30, decimals)
    current = np.array([1, 2, 5, 9, 9, 20, 29])
    previous = np.array([0, 1, 4, 8, 3, 19, 0])  # a repeated current group, a distant previous one
    monkeypatch.setattr(intervals, "_VALUES_PER_PAIR_LOOP", 0)  # a loop over the pairs
    by_pairs = intervals.rank_tests(values, offsets, current, previous)
    monkeypatch.setattr(intervals, "_VALUES_PER_PAIR_LOOP", 10**9)  # one search for all pairs
    banded = intervals.rank_tests(values, offsets, current, previous)
    np.testing.assert_allclose(by_pairs, banded, rtol=1e-12)
    assert np.isfinite(by_pairs).sum() >= 5


def test_rank_tests_on_two_threads_equal_one_thread(monkeypatch):
    # many pairs are counted in two halves at once: every pair's p-value exactly as on one thread
    values, offsets = sorted_groups(11, 0, 30, 41)
    current = np.arange(1, len(offsets) - 1)
    previous = current - 1
    monkeypatch.setattr(intervals, "_VALUES_PER_PAIR_LOOP", 0)  # the loop over pairs
    one = intervals.rank_tests(values, offsets, current, previous)
    monkeypatch.setattr(intervals, "_PAIRS_PER_THREAD", 3)
    two = intervals.rank_tests(values, offsets, current, previous)
    np.testing.assert_array_equal(two, one)
    assert np.isfinite(one).sum() >= 30


def test_rank_tests_use_u_statistics_counted_beforehand_only_pair_by_pair(monkeypatch):
    values, offsets = sorted_groups(5, 1, 30, 12)
    current = np.arange(1, len(offsets) - 1)
    previous = current - 1
    monkeypatch.setattr(intervals, "_VALUES_PER_PAIR_LOOP", 0)  # pair by pair
    plain = intervals.rank_tests(values, offsets, current, previous)
    known = intervals.u_statistics(values, offsets, current, previous)
    known[::2] = np.nan  # some counted beforehand, the others counted here
    np.testing.assert_array_equal(intervals.rank_tests(values, offsets, current, previous, known), plain)
    wrong = np.full(len(current), 0.0)  # a known U is taken as it is...
    assert not np.array_equal(intervals.rank_tests(values, offsets, current, previous, wrong), plain)
    monkeypatch.setattr(intervals, "_VALUES_PER_PAIR_LOOP", 10**9)  # ...but one search for all pairs ignores it
    np.testing.assert_array_equal(
        intervals.rank_tests(values, offsets, current, previous, wrong),
        intervals.rank_tests(values, offsets, current, previous),
    )
