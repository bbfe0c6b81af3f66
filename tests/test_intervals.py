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


def _effects(values, clusters, sample_of, count=1):
    return intervals.cluster_design_effects(intervals.cluster_totals(values, clusters), sample_of, count)


def test_design_effect_is_one_for_single_values_and_grows_with_clustering():
    from scipy import stats

    rng = np.random.default_rng(5)
    values = rng.lognormal(size=400)
    assert [e[0] for e in _effects(values, np.arange(400), np.zeros(400, int))] == [1.0, 1.0, 1.0, 400]
    # 40 clusters of 10 equal values: rho = 1, so Kish's 1 + (m - 1) rho = 10 for the median and the ranks
    clustered = np.repeat(rng.lognormal(size=40), 10)
    median, p90, ranks, clusters = _effects(clustered, np.repeat(np.arange(40), 10), np.zeros(40, int))
    few = (stats.t.ppf(0.975, 39) / stats.norm.ppf(0.975)) ** 2  # 40 clusters: t with 39 degrees of freedom
    assert median[0] == pytest.approx(10 * few) and ranks[0] == pytest.approx(10) and clusters[0] == 40
    assert 9 * few < p90[0] < median[0]  # the tail's indicators are a little less correlated
    # a single cluster: one effective observation; an empty sample: no value
    median, p90, ranks, clusters = _effects(np.arange(5.0), np.zeros(5, int), np.array([1]), count=2)
    assert np.isnan(median[0]) and median[1] == p90[1] == ranks[1] == 5 and clusters.tolist() == [0, 1]
    with pytest.raises(ValueError):
        intervals.cluster_totals(np.array([1.0, np.nan]), np.array([0, 0]))
    with pytest.raises(ValueError):
        _effects(np.arange(3.0), np.array([0, 1, 1]), np.array([0, -1]))  # cluster 1 has values and no sample


def test_one_big_release_does_not_hide_the_clustering():
    # 60 commits in one release and 20 releases of 2, each release's lead times together: the sample median
    # falls inside the big release, whose share at or below it is then close to the sample's, so the
    # linearised variance of that share sees little between releases; Kish's size-weighted m does
    rng = np.random.default_rng(11)
    sizes = np.array([60] + [2] * 20)
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    values = np.exp(rng.normal(size=len(sizes))[clusters] + 0.2 * rng.normal(size=len(clusters)))
    median, _, ranks, count = _effects(values, clusters, np.zeros(len(sizes), int))
    weighted = (sizes**2).sum() / sizes.sum()  # 36.4: the size-weighted mean release
    assert count[0] == 21 and median[0] > 0.6 * weighted and ranks[0] > 0.6 * weighted


def test_design_effects_from_sums_equal_those_from_the_values():
    rng = np.random.default_rng(8)
    clusters = np.sort(rng.integers(0, 60, 500))
    clusters[-5:] = clusters[:5]  # a cluster's values in two runs (commits resolved by name come last)
    sample_of = np.arange(60) % 3
    values = rng.lognormal(size=500) + clusters * 0.05
    median, p90, ranks, count = _effects(values, clusters, sample_of, count=3)
    m = np.bincount(clusters, minlength=60).astype(float)
    y = np.log1p(values)
    total, square = np.bincount(clusters, weights=y, minlength=60), np.bincount(clusters, weights=y * y, minlength=60)
    sums = [np.bincount(sample_of, weights=w, minlength=3) for w in (m, None, m * m, total, square, total * total / m)]
    for got, expected in zip((median, p90, ranks), intervals.design_effects_from_sums(*sums), strict=True):
        np.testing.assert_allclose(got, expected)
    assert count.tolist() == np.bincount(sample_of[np.unique(clusters)], minlength=3).tolist()


@pytest.mark.parametrize("n", [10, 57, 400, 2000])
def test_quantile_ranks_with_a_design_effect(n):
    exact = intervals.quantile_interval_ranks(np.array([n]), 0.5)
    same = intervals.quantile_interval_ranks(np.array([n]), 0.5, design_effect=np.array([1.0]))
    assert same == exact  # d = 1: the exact ranks
    wider = intervals.quantile_interval_ranks(np.array([n]), 0.5, design_effect=np.array([4.0]))
    assert wider[0][0] <= exact[0][0] and wider[1][0] >= exact[1][0]
    assert (wider[0][0], wider[1][0]) != (exact[0][0], exact[1][0])
    if n >= 400:  # Woodruff's ranks n q -/+ z sqrt(d n q (1 - q)), within the rounding of the effective sample
        half = 1.96 * math.sqrt(4 * n * 0.25)
        assert abs((n / 2 - half) - wider[0][0]) <= 0.02 * n and abs((n / 2 + half) - wider[1][0]) <= 0.02 * n
    one = intervals.quantile_interval_ranks(np.array([n]), 0.5, design_effect=np.array([float(n)]))
    assert (one[0][0], one[1][0]) == (0, n + 1)  # one effective observation: unbounded


def test_rank_tests_inflate_the_variance_by_the_design_effect():
    values, offsets = np.concatenate([np.arange(30.0), np.arange(30.0) + 8]), np.array([0, 30, 60])
    current, previous = np.array([1]), np.array([0])
    plain = intervals.rank_tests(values, offsets, current, previous)
    assert plain[0] < 0.05
    ones = intervals.rank_tests(values, offsets, current, previous, design_effect=np.ones(2), clusters=[30, 30])
    np.testing.assert_array_equal(ones, plain)  # independent values: the test is unchanged
    clustered = intervals.rank_tests(values, offsets, current, previous, design_effect=np.array([6.0, 6.0]))
    assert clustered[0] > 0.05
    # few clusters: Student's t, not the normal, with the fewer clusters less one degrees of freedom
    few = intervals.rank_tests(values, offsets, current, previous, design_effect=np.ones(2), clusters=[3, 30])
    assert few[0] > plain[0]


def test_clustered_rank_tests_keep_their_false_alarms_near_five_percent():
    # under no change, releases of 10 commits whose lead times share the release's delay: counted as 100
    # independent values the rank test called half the periods a significant change
    rng = np.random.default_rng(4)
    releases, size, alarms, naive = 10, 10, 0, 0
    clusters = np.repeat(np.arange(2 * releases), size)
    for _ in range(400):
        values = rng.normal(size=2 * releases)[clusters] + 0.5 * rng.normal(size=len(clusters))
        samples = np.repeat([0, 1], releases)
        order = [np.sort(values[clusters // releases == g]) for g in (0, 1)]
        sorted_values, offsets = np.concatenate(order), np.array([0, releases * size, 2 * releases * size])
        *_, ranks, count = _effects(values, clusters, samples, count=2)
        p = intervals.rank_tests(sorted_values, offsets, np.array([1]), np.array([0]), design_effect=ranks,
                                 clusters=count)  # fmt: skip
        alarms += p[0] < 0.05
        naive += intervals.rank_tests(sorted_values, offsets, np.array([1]), np.array([0]))[0] < 0.05
    assert naive / 400 > 0.3
    assert 0.01 <= alarms / 400 <= 0.09


def test_indicator_correlation_is_sheppards_at_the_median_and_smaller_in_the_tail():
    from scipy import stats

    rho = np.array([0.0, 0.3, 0.8])
    np.testing.assert_allclose(intervals._indicator_correlation(rho, 0.5), 2 / np.pi * np.arcsin(rho), atol=1e-9)
    # at p90 against the bivariate normal's orthant probability, computed by scipy
    tail = intervals._indicator_correlation(rho[1:], 0.9)
    h = stats.norm.ppf(0.9)
    for r, got in zip(rho[1:], tail, strict=True):
        joint = stats.multivariate_normal(cov=[[1, r], [r, 1]]).cdf([h, h])
        assert got == pytest.approx((joint - 0.81) / 0.09, abs=2e-3)
    assert (tail < 2 / np.pi * np.arcsin(rho[1:])).all()
