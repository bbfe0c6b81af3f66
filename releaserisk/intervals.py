"""Confidence intervals and two-sample tests for delivery metrics, vectorised over groups.

Every aggregate a team reads carries its number of observations and a 95 % interval, and a
change between two periods is called significant only by a two-sample test:

=====================  ==========================================  ===========================================
quantity               interval                                    change between two periods
=====================  ==========================================  ===========================================
rate (CFR, rework)     Wilson score (Wilson 1927; Brown, Cai &     two-proportion z-test, pooled (Agresti 2013,
                       DasGupta 2001 recommend it for small n)     §3.1.3); Fisher's exact test when an expected
                                                                   cell count is below 5 (Cochran 1954)
median, p90            distribution-free order-statistic interval  Mann–Whitney–Wilcoxon rank-sum test, normal
                       [x_(l), x_(u)] from Binomial(n, q) ranks    approximation with tie and continuity
                       (Conover 1999, §3.2; Hahn & Meeker 1991);   corrections, exact for small samples without
                       an end with no rank is unbounded (NaN);     ties (scipy.stats.mannwhitneyu); values in
                       values in clusters: the ranks of n / d      clusters: the variance times the design
                       effective values (Woodruff 1952; Kish 1965  effect (Kish 1965; approximating Rosner,
                       for the design effect d)                    Glynn & Lee 2003)
event frequency        exact Poisson (Garwood 1936), through the   conditional binomial test of k1 given k1+k2
                       Gamma / chi-square quantiles                with exposures t1, t2 (Przyborowski &
                                                                   Wilenski 1940)
=====================  ==========================================  ===========================================
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np


def _stats():
    # scipy.stats costs ~0.5 s to import: the CI gate (rollback readiness needs only Wilson) must not pay it
    from scipy import stats

    return stats


__all__ = [
    "ClusterTotals",
    "by_pairs",
    "cluster_design_effects",
    "cluster_totals",
    "design_effects_from_sums",
    "order_statistics",
    "poisson_rate_interval",
    "poisson_rate_test",
    "poisson_rate_tests",
    "quantile_interval_ranks",
    "rank_test",
    "rank_tests",
    "signed_log",
    "sorted_quantile",
    "two_proportion_test",
    "two_proportion_tests",
    "u_statistics",
    "wilson_interval",
]

CONFIDENCE = 0.95


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions.

    Parameters
    ----------
    successes, trials : array-like
        Counts per group.
    z : float
        Normal quantile (1.959964 for 95 %).

    Returns
    -------
    (ndarray, ndarray)
        Lower and upper ends, NaN where ``trials`` is 0. Source: Wilson (1927), JASA 22:209.
    """
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / trials
        centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
        half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def poisson_rate_interval(
    counts: np.ndarray, exposure: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson rate: events per unit of ``exposure``.

    Parameters
    ----------
    counts : array-like
        Events (deployments) per group.
    exposure : array-like
        Length of each group's window (weeks for deployments per week); NaN where 0.
    confidence : float

    Returns
    -------
    (ndarray, ndarray)
        ``gamma.ppf(a/2, k) / t`` and ``gamma.ppf(1 - a/2, k + 1) / t`` (lower end 0 when k is 0).
        Source: Garwood (1936), Biometrika 28:437.
    """
    k = np.asarray(counts, dtype=float)
    t = np.asarray(exposure, dtype=float)
    alpha = 1 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, _stats().gamma.ppf(alpha / 2, np.maximum(k, 1e-300)), 0.0) / t
        high = _stats().gamma.ppf(1 - alpha / 2, k + 1) / t
    bad = ~(t > 0)
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def quantile_interval_ranks(
    n: np.ndarray, q: float, confidence: float = CONFIDENCE, design_effect: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks ``(l, u)`` of the order statistics bounding the ``q`` quantile.

    With B ~ Binomial(n, q) the number of observations below the true quantile, the
    interval ``[x_(l), x_(u)]`` covers it with probability P(l <= B <= u - 1), at least
    ``confidence`` (equal tails, each at most (1 - confidence) / 2). Source: Conover,
    *Practical Nonparametric Statistics* (3rd ed., 1999), §3.2.

    Observations drawn in clusters (the commits of one deployment share its deploy time)
    are not independent: with a ``design_effect`` d > 1 (:func:`cluster_design_effects`)
    the ranks are those of the ``floor(n / d)`` effective observations, scaled back to the
    ``n`` ones: ``n q -/+ z sqrt(d n q (1 - q))`` in the normal limit, which is Woodruff's
    interval for a quantile under cluster sampling (Woodruff 1952, JASA 47:635; Kish,
    *Survey Sampling*, 1965, §8.2 for the design effect). At d = 1 the ranks are exact.

    Parameters
    ----------
    n : array-like
        Sample sizes.
    q : float
        The quantile (0.5 for the median, 0.9 for p90).
    confidence : float
    design_effect : array-like, optional
        Per sample, at least 1 (NaN or missing: 1).

    Returns
    -------
    (ndarray, ndarray)
        Integer ranks; ``l`` is 0 when no order statistic gives a lower bound at this ``n``
        and ``u`` is ``n + 1`` when none gives an upper bound (the interval is unbounded there).
    """
    n = np.asarray(n, dtype=float)
    if design_effect is not None:
        d = np.nan_to_num(np.asarray(design_effect, dtype=float), nan=1.0)
        clustered = d > 1
        if clustered.any():
            effective = np.where(clustered, np.floor(n / np.where(clustered, d, 1.0)), n)
            effective = np.where(n > 0, np.maximum(effective, 1), 0)
            low, high = quantile_interval_ranks(effective, q, confidence)
            scale = np.where(effective > 0, n / np.maximum(effective, 1), 1.0)
            # scaled outward (a lower rank down, an upper one up): the effective sample's count of values
            # below the bound, scaled (u - 1 of them below x_(u))
            low = np.where(low > 0, np.floor((low - 1) * scale) + 1, 0)
            high = np.where(high <= effective, np.ceil((high - 1) * scale) + 1, n + 1)
            return np.clip(low, 0, n + 1).astype(int), np.clip(high, 0, n + 1).astype(int)
    # the ranks depend on n alone: computed once per distinct n (12k groups share a few hundred)
    n, back = np.unique(n, return_inverse=True)
    alpha = 1 - confidence
    safe = np.maximum(n, 1)
    # largest j with P(B <= j) <= alpha/2; the lower rank is j + 1
    j = _stats().binom.ppf(alpha / 2, safe, q)
    j = np.where(_stats().binom.cdf(j, safe, q) > alpha / 2, j - 1, j)
    low = j + 1
    high = _stats().binom.ppf(1 - alpha / 2, safe, q) + 1
    low = np.where(n > 0, np.clip(low, 0, n + 1), 0)
    high = np.where(n > 0, np.clip(high, 0, n + 1), 1)
    return low.astype(int)[back], high.astype(int)[back]


def sorted_quantile(values: np.ndarray, offsets: np.ndarray, q: float, kind: str = "interpolated") -> np.ndarray:
    """The ``q`` quantile of each group of ``values`` (sorted within each group).

    Parameters
    ----------
    values : ndarray
        All groups' values, each group ascending, one after the other.
    offsets : ndarray
        ``len(groups) + 1`` start positions (Arrow list offsets).
    q : float
    kind : {"interpolated", "lower"}
        ``interpolated``: linear between the closest ranks at ``(n - 1) q`` (Hyndman & Fan
        1996 type 7, DuckDB's ``quantile_cont``, BigQuery's ``PERCENTILE_CONT``); ``lower``:
        the value at 0-based rank ``ceil(n q) - 1`` (DuckDB's ``quantile_disc``; for the median,
        the lower median, as DevLake's ``max(x) WHERE percent_rank <= 0.5``).

    Returns
    -------
    ndarray
        NaN for empty groups.
    """
    starts = offsets[:-1].astype(np.int64)
    n = np.diff(offsets).astype(np.int64)
    out = np.full(len(n), np.nan)
    present = n > 0
    if not present.any():
        return out
    s, m = starts[present], n[present]
    if kind == "lower":
        out[present] = values[s + np.maximum(np.ceil(m * q).astype(np.int64) - 1, 0)]
        return out
    h = (m - 1) * q
    lo = np.floor(h).astype(np.int64)
    frac = h - lo
    below, above = values[s + lo], values[s + np.minimum(lo + 1, m - 1)]
    out[present] = below + (above - below) * frac
    return out


def order_statistics(values: np.ndarray, offsets: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The 1-based ``ranks``-th value of each sorted group, NaN where the rank is outside 1..n."""
    starts = offsets[:-1].astype(np.int64)
    n = np.diff(offsets).astype(np.int64)
    ranks = np.asarray(ranks, dtype=np.int64)
    inside = (ranks >= 1) & (ranks <= n)
    out = np.full(len(n), np.nan)
    out[inside] = values[starts[inside] + ranks[inside] - 1]
    return out


def _cluster_runs(clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs of equal values in ``clusters``: each run's cluster and start (for :func:`cluster_totals`)."""
    clusters = np.asarray(clusters)
    if not len(clusters):
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    starts = np.flatnonzero(np.concatenate([[True], clusters[1:] != clusters[:-1]]))
    return clusters[starts].astype(np.intp, copy=False), starts


def signed_log(values: np.ndarray) -> np.ndarray:
    """``sign(x) log(1 + |x|)``: durations on the scale where their clusters' correlation is estimated (lead
    times are skewed over orders of magnitude; a peer profile keeps negative spans)."""
    values = np.asarray(values, dtype=float)
    # as DuckDB's sign(x) * ln(1 + abs(x)) in _sql_design_effects computes it: the same ranks by either path
    if not len(values) or values.min() >= 0:  # durations under the span guard: a third of the work
        return np.log(1 + values)
    return np.sign(values) * np.log(1 + np.abs(values))


class ClusterTotals(NamedTuple):
    """Per cluster id (an index into each array): its values' count, and the sum and sum of squares of their
    :func:`signed_log`. Made by :func:`cluster_totals`."""

    size: np.ndarray
    total: np.ndarray
    square: np.ndarray


def cluster_totals(values: np.ndarray, clusters: np.ndarray) -> ClusterTotals:
    """Each cluster's count, and sum and sum of squares of :func:`signed_log` values, counted run by run.

    Parameters
    ----------
    values : ndarray of float, shape (m,)
        No NaN (a NaN is no value: leave it out).
    clusters : ndarray of int, shape (m,)
        Each value's cluster, non-negative; a cluster's values usually lie together (a
        deployment's changes), which makes this one pass over runs.

    Returns
    -------
    ClusterTotals

    Raises
    ------
    ValueError
        A NaN value or a negative cluster.
    """
    values, clusters = np.asarray(values, dtype=float), np.asarray(clusters)
    if np.isnan(values).any() or (len(clusters) and clusters.min() < 0):
        raise ValueError("cluster_totals: a NaN value or a negative cluster")
    run_cluster, starts = _cluster_runs(clusters)
    size_of = int(run_cluster.max(initial=-1)) + 1
    lengths = np.diff(np.append(starts, len(values)))
    y = signed_log(values)
    total = np.add.reduceat(y, starts) if len(starts) else np.empty(0)
    square = np.add.reduceat(np.square(y, out=y), starts) if len(starts) else np.empty(0)  # y no longer needed
    del y
    size, total, square = (np.bincount(run_cluster, weights=w, minlength=size_of) for w in (lengths, total, square))
    return ClusterTotals(size, total, square)


def cluster_design_effects(
    totals: ClusterTotals, sample_of: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per sample, the design effects of its median, its p90 and its ranks, and its number of clusters.

    See :func:`design_effects_from_sums`, which this feeds with each sample's sums over its
    clusters.

    Parameters
    ----------
    totals : ClusterTotals
        :func:`cluster_totals` of the samples' values and clusters.
    sample_of : ndarray of int, shape (k,)
        Each cluster's sample, in ``[0, count)``: a cluster lies within one sample (negative:
        a cluster with no value here).
    count : int
        Number of samples.

    Returns
    -------
    (ndarray, ndarray, ndarray, ndarray)
        The design effects of the median, the p90 and the ranks (float, >= 1; NaN for an
        empty sample) and the clusters holding the sample's values (int), each of shape
        (count,).

    Raises
    ------
    ValueError
        A cluster with values and no sample.
    """
    sample_of = np.asarray(sample_of, dtype=np.intp)[: len(totals.size)]
    used = np.flatnonzero(totals.size > 0)
    if len(used) and (len(sample_of) < len(totals.size) or sample_of[used].min() < 0):
        raise ValueError("cluster_design_effects: a cluster with values has no sample")
    owner, m, s, q = sample_of[used], totals.size[used], totals.total[used], totals.square[used]
    sums = (np.bincount(owner, weights=w, minlength=count) for w in (m, None, m * m, s, q, s * s / m))
    return (*design_effects_from_sums(*sums), np.bincount(owner, minlength=count).astype(np.int64))


def design_effects_from_sums(
    n: np.ndarray,
    c: np.ndarray,
    mm: np.ndarray,
    s: np.ndarray,
    q: np.ndarray,
    ssm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design effects of a sample's median, p90 and ranks, from its sums over its clusters.

    Values drawn in clusters (the commits of one deployment share its deploy time) carry
    less information than as many independent ones; the design effect d is the factor by
    which an estimator's variance exceeds the independent one's (Kish, *Survey Sampling*,
    1965, §8.2): ``1 + (sum(m^2) / n - 1) rho`` for clusters of sizes m, with rho the
    correlation within a cluster of what the estimator counts. Here rho is derived from the
    intraclass correlation of the values' :func:`signed_log` (one-way ANOVA estimator for
    unequal cluster sizes, Donner 1986, Int. Stat. Rev. 54:67), as a bivariate normal gives
    it: for a quantile (Woodruff's interval inverts the share of values at or below it) the
    correlation of the indicator ``X <= x_p`` (the normal orthant probability by Sheppard's
    integral; ``(2 / pi) asin(rho)`` at the median), for ranks Spearman's ``(6 / pi)
    asin(rho / 2)`` (Pearson 1907). The size-weighted mean cluster size ``sum(m^2) / n``
    sees the clustering when one big release holds most commits, which the linearised
    variance of the share at the quantile does not (the quantile then falls inside it).

    Below 1 d is taken as 1: an interval is never narrower than the independent one. With C
    clusters the variance rests on C - 1 degrees of freedom: the quantiles' d is multiplied
    by ``(t_{C-1} / z)^2`` at 95 % (a Student t reference for the Wald interval, as survey
    practice refers Woodruff's), unless every cluster is one value; :func:`rank_tests`
    refers its statistic to t itself. One cluster: d = n (one effective observation). In
    simulations of lead times in releases (log-normal, intraclass correlation 0 to 0.8, 5 to
    50 releases of equal or geometric sizes, or one release of 60 commits beside 20 of 2)
    the median's 95 % interval covered the truth 95-100 % of the time, against 15-98 % for
    the interval counting every commit as independent; it errs wide.

    Parameters
    ----------
    n, c : ndarray, shape (s,)
        Values and clusters per sample.
    mm : ndarray, shape (s,)
        Sum over the sample's clusters of ``m^2``, with ``m`` a cluster's values.
    s, q, ssm : ndarray, shape (s,)
        Sums over the clusters of ``S``, ``Q`` and ``S^2 / m``, with ``S`` and ``Q`` the sum
        and sum of squares of a cluster's :func:`signed_log` values.

    Returns
    -------
    (ndarray, ndarray, ndarray)
        The design effects of the median, the p90 and the ranks, >= 1, NaN where ``n`` is 0
        or missing.
    """
    n, c = np.asarray(n, dtype=float), np.asarray(c, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = _intraclass(n, c, mm, s, q, ssm)
        weighted = mm / n  # the size-weighted mean cluster size
        # few releases: the variance rests on C - 1 degrees of freedom (Student's t, as survey practice refers
        # Woodruff's interval); not where every cluster is one value (the exact interval stands)
        few = np.where(c < n, (_stats().t.ppf(0.975, np.maximum(c - 1, 1)) / _stats().norm.ppf(0.975)) ** 2, 1.0)
        median = (1 + (weighted - 1) * _indicator_correlation(rho, 0.5)) * few
        p90 = (1 + (weighted - 1) * _indicator_correlation(rho, 0.9)) * few
        ranks = 1 + (weighted - 1) * (6 / np.pi) * np.arcsin(rho / 2)
    effects = []
    for effect in (median, p90, ranks):
        effect = np.where(c == 1, n, np.nan_to_num(effect, nan=1.0))
        # to 9 digits: the same sums added in another order (DuckDB's or numpy's) give the same ranks
        effects.append(np.where(n > 0, np.round(np.maximum(effect, 1.0), 9), np.nan))
    return effects[0], effects[1], effects[2]


#: Gauss-Legendre nodes and weights for Sheppard's integral (:func:`_indicator_correlation`).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)


def _indicator_correlation(rho: np.ndarray, quantile: float) -> np.ndarray:
    """The correlation of ``X <= x_p`` and ``Y <= y_p`` for a standard bivariate normal with correlation ``rho``
    (>= 0) at its ``quantile`` p: ``(1 / 2 pi) int_0^rho exp(-h^2 / (1 + r)) / sqrt(1 - r^2) dr / (p (1 - p))``
    with ``h`` the normal p-quantile (Sheppard 1899), by 24-point Gauss-Legendre; ``(2 / pi) asin(rho)`` at the
    median."""
    if quantile == 0.5:
        return (2 / np.pi) * np.arcsin(rho)
    rho = np.minimum(np.asarray(rho, dtype=float), 0.999)  # the integrand's pole at r = 1
    h = _stats().norm.ppf(quantile)
    r = (_NODES[:, None] + 1) / 2 * rho[None, :]
    integral = (_WEIGHTS[:, None] * np.exp(-h * h / (1 + r)) / np.sqrt(1 - r * r)).sum(axis=0) * rho / 2
    return integral / (2 * np.pi) / (quantile * (1 - quantile))


def _intraclass(n: np.ndarray, c: np.ndarray, mm: np.ndarray, s: np.ndarray, q: np.ndarray, ssm: np.ndarray):
    """One-way ANOVA intraclass correlation for unequal cluster sizes (Donner 1986), in [0, 1]; 0 where it has
    no within- or between-cluster degrees of freedom."""
    with np.errstate(invalid="ignore", divide="ignore"):
        within = (q - ssm) / (n - c)
        between = (ssm - s * s / n) / (c - 1)
        size = (n - mm / n) / (c - 1)  # m0, the adjusted mean cluster size
        rho = (between - within) / (between + (size - 1) * within)
    return np.clip(np.nan_to_num(rho, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def two_proportion_test(x1, n1, x2, n2) -> float:
    """Two-sided p-value for equal proportions ``x1/n1`` and ``x2/n2`` (NaN when either n is 0).

    Pooled two-proportion z-test (Agresti, *Categorical Data Analysis*, 3rd ed. 2013,
    §3.1.3); Fisher's exact test instead when an expected cell count is below 5
    (Cochran 1954), where the normal approximation is poor.

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Successes and trials of both samples.

    Returns
    -------
    float
    """
    if not n1 or not n2:
        return float("nan")
    pooled = (x1 + x2) / (n1 + n2)
    expected = np.array([n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)])
    if pooled in (0.0, 1.0):
        return 1.0
    if (expected < 5).any():
        return float(_stats().fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue)
    z = (x1 / n1 - x2 / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * _stats().norm.sf(abs(z)))


def poisson_rate_test(k1, t1, k2, t2) -> float:
    """Two-sided p-value for equal Poisson rates ``k1/t1`` and ``k2/t2``.

    Conditional on ``k1 + k2``, ``k1`` is Binomial(k1 + k2, t1 / (t1 + t2)) under equal
    rates; exact binomial test (Przyborowski & Wilenski 1940). NaN without exposure.

    Parameters
    ----------
    k1, t1, k2, t2 : float
        Event counts and exposures (e.g. days) of both periods.

    Returns
    -------
    float
    """
    if not (t1 > 0 and t2 > 0):
        return float("nan")
    total = int(k1 + k2)
    if total == 0:
        return 1.0
    return float(_stats().binomtest(int(k1), total, t1 / (t1 + t2)).pvalue)


def rank_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann–Whitney–Wilcoxon p-value for a shift between samples ``a`` and ``b``.

    Parameters
    ----------
    a, b : ndarray
        The two samples (NaN-free).

    Returns
    -------
    float
        As :func:`rank_tests` (normal approximation, continuity correction); NaN when either
        sample is empty.
    """
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    values, offsets = np.concatenate([a, b]), np.array([0, len(a), len(a) + len(b)])
    return float(rank_tests(values, offsets, np.array([0]), np.array([1]))[0])


def two_proportion_tests(x1, n1, x2, n2) -> np.ndarray:
    """Vectorised :func:`two_proportion_test`: two-sided p-values, NaN where either n is 0.

    Pooled z-test; where an expected count is below 5, Fisher's exact test, two-sided as
    twice the smaller tail of the hypergeometric distribution (capped at 1).

    Parameters
    ----------
    x1, n1, x2, n2 : array-like
        Successes and trials of both samples, per comparison.

    Returns
    -------
    ndarray
    """
    x1, n1, x2, n2 = (np.asarray(v, dtype=float) for v in (x1, n1, x2, n2))
    p = np.full(x1.shape, np.nan)
    ok = (n1 > 0) & (n2 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    expected = np.minimum(np.minimum(n1 * pooled, n1 * (1 - pooled)), np.minimum(n2 * pooled, n2 * (1 - pooled)))
    degenerate = ok & ((pooled == 0) | (pooled == 1))
    small = ok & ~degenerate & (expected < 5)
    large = ok & ~degenerate & ~small
    p[degenerate] = 1.0
    p[large] = 2 * _stats().norm.sf(np.abs(z[large]))
    if small.any():
        total, drawn, successes = (n1 + n2)[small], n1[small], (x1 + x2)[small]
        k = x1[small]
        tails = np.minimum(
            _stats().hypergeom.cdf(k, total, successes, drawn), _stats().hypergeom.sf(k - 1, total, successes, drawn)
        )
        p[small] = np.minimum(1.0, 2 * tails)
    return p


def poisson_rate_tests(k1, t1, k2, t2) -> np.ndarray:
    """Vectorised :func:`poisson_rate_test`: two-sided exact conditional test, as twice the smaller
    binomial tail (capped at 1); NaN without exposure.

    Parameters
    ----------
    k1, t1, k2, t2 : array-like
        Event counts and exposures of both periods, per comparison.

    Returns
    -------
    ndarray
    """
    k1, t1, k2, t2 = (np.asarray(v, dtype=float) for v in (k1, t1, k2, t2))
    total = k1 + k2
    with np.errstate(invalid="ignore", divide="ignore"):
        share = t1 / (t1 + t2)
        tails = np.minimum(_stats().binom.cdf(k1, total, share), _stats().binom.sf(k1 - 1, total, share))
    p = np.where(total == 0, 1.0, np.minimum(1.0, 2 * tails))
    return np.where((t1 > 0) & (t2 > 0), p, np.nan)


def rank_tests(
    values: np.ndarray,
    offsets: np.ndarray,
    current: np.ndarray,
    previous: np.ndarray,
    known: np.ndarray | None = None,
    design_effect: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> np.ndarray:
    """Two-sided Mann–Whitney p-values between sorted groups ``current[i]`` and ``previous[i]``, all at once.

    Each group is a slice of ``values`` (ascending within it, Arrow-style ``offsets``). U
    counts, for each value of the current group, the previous group's values below it
    (ties count one half): a ``searchsorted`` per pair when the groups are large, else one
    for every pair at once by shifting each group's values into its own band. The p-value
    is the normal approximation with a continuity correction and without the tie
    correction, which makes the test conservative when there are ties (Mann & Whitney
    1947; Lehmann, *Nonparametrics*, 1975, §1.4).

    Parameters
    ----------
    values, offsets : ndarray
        Groups as in :func:`sorted_quantile`.
    current, previous : ndarray
        Row indices of the groups to compare, pairwise.
    known : ndarray, optional
        The U statistic of some pairs, already counted pair by pair (:func:`u_statistics`),
        NaN for the others; used when the pairs are counted one by one, where it is the same
        number (a caller can count them earlier, beside other work).
    design_effect : ndarray, optional
        Per group, the design effect of its ranks when its values come in clusters
        (:func:`cluster_design_effects`; NaN: 1). U's variance is the sum of each group's
        part, each times its design effect: ``m n (n d_m + m d_n + 1) / 12`` for ``m`` current
        and ``n`` previous values (Kish 1965, §8.2, applied to the two parts of U's Hájek
        projection): an approximation to the clustered rank-sum test of Rosner, Glynn & Lee
        (2003, Biometrics 59:1089), without which the commits of one deployment count as
        independent evidence of a change.
    clusters : ndarray of int, optional
        Per group, its clusters: where either group of a pair has fewer clusters than values,
        the statistic is referred to Student's t with the smaller count less one degrees of
        freedom instead of the normal.

    Returns
    -------
    ndarray
        NaN where either group is empty.
    """
    current, previous = np.asarray(current, dtype=np.int64), np.asarray(previous, dtype=np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    na, nb = lengths[current], lengths[previous]
    p = np.full(len(current), np.nan)
    large = np.flatnonzero((na > 0) & (nb > 0))
    if not len(large):
        return p
    if by_pairs(len(large), len(values)):
        u = np.full(len(large), np.nan) if known is None else np.asarray(known, dtype=float)[large]
        missing = np.flatnonzero(np.isnan(u))
        if len(missing):
            u[missing] = _u_by_pairs(values, offsets, current[large][missing], previous[large][missing])
    else:
        u = _u_banded(values, offsets, lengths, current, previous, large)
    m, n = na[large].astype(float), nb[large].astype(float)
    d_m = d_n = 1.0
    if design_effect is not None:
        d = np.nan_to_num(np.asarray(design_effect, dtype=float), nan=1.0)
        d_m, d_n = d[current[large]], d[previous[large]]
    sigma = np.sqrt(m * n * (n * d_m + m * d_n + 1) / 12)
    z = np.maximum(np.abs(u - m * n / 2) - 0.5, 0) / sigma
    tail = _stats().norm.sf(z)
    if clusters is not None:
        c = np.asarray(clusters, dtype=float)
        c_m, c_n = c[current[large]], c[previous[large]]
        clustered = (c_m < m) | (c_n < n)
        df = np.maximum(np.minimum(c_m, c_n) - 1, 1)
        tail = np.where(clustered, _stats().t.sf(z, df), tail)
    p[large] = np.minimum(1.0, 2 * tail)
    return p


def by_pairs(pairs: int, values: int) -> bool:
    """Whether :func:`rank_tests` counts its U statistics one pair at a time (else in one search over every group).

    Parameters
    ----------
    pairs : int
        Compared pairs whose groups are both non-empty.
    values : int
        Values of every group together.

    Returns
    -------
    bool
    """
    return pairs * _VALUES_PER_PAIR_LOOP <= values


def u_statistics(values: np.ndarray, offsets: np.ndarray, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Mann–Whitney U of each group ``current[i]`` against ``previous[i]``, counted pair by pair, as
    :func:`rank_tests` counts them when :func:`by_pairs` says so (groups as in :func:`rank_tests`, none empty),
    on the calling thread alone (for work beside other work).

    Parameters
    ----------
    values, offsets : ndarray
        Groups as in :func:`sorted_quantile`.
    current, previous : ndarray
        Row indices of the groups to compare, pairwise.

    Returns
    -------
    ndarray
        For each value of the current group, the previous group's values below it (ties one half), summed.
    """
    current, previous = np.asarray(current, dtype=np.int64), np.asarray(previous, dtype=np.int64)
    return _u_by_pairs(values, offsets, current, previous, threads=1)


#: Below this many values per compared pair on average, one vectorised search over every
#: group beats a loop over the pairs (a loop step costs about as much as searching 64
#: values; above it, each pair's small search stays in cache: 4-10x faster on the 12k
#: service-months of benchmarks/dora.py).
_VALUES_PER_PAIR_LOOP = 64


#: From this many pairs on, :func:`_u_by_pairs` searches the second half of them on a second
#: thread (numpy's search releases the GIL): 11k pairs of benchmarks/dora.py at 1M deployments.
_PAIRS_PER_THREAD = 2_000


def _u_by_pairs(
    values: np.ndarray, offsets: np.ndarray, current: np.ndarray, previous: np.ndarray, threads: int = 2
) -> np.ndarray:
    """Mann–Whitney U of each ``current`` group against its ``previous`` group, one pair at a time.

    For each value of the current group, the previous group's values below it count one
    and those equal to it one half: the mean of the left and right insertion points. Many
    pairs are split in two halves searched on two threads at once (unless ``threads`` is 1:
    the GIL costs some CPU, a loss where other work keeps the cores busy); each pair's U is
    the same whichever thread counts it.
    """
    u = np.empty(len(current))
    offsets, mines, theirs_ = offsets.tolist(), current.tolist(), previous.tolist()

    def count(pairs: range) -> None:
        for i in pairs:
            mine, theirs = mines[i], theirs_[i]
            a, b = values[offsets[mine] : offsets[mine + 1]], values[offsets[theirs] : offsets[theirs + 1]]
            u[i] = 0.5 * (int(np.searchsorted(b, a, "left").sum()) + int(np.searchsorted(b, a, "right").sum()))

    if threads < 2 or len(current) < 2 * _PAIRS_PER_THREAD:
        count(range(len(current)))
        return u
    half = len(current) // 2
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(count, range(half, len(current)))
        count(range(half))
        second.result()
    return u


def _u_banded(
    values: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    current: np.ndarray,
    previous: np.ndarray,
    large: np.ndarray,
) -> np.ndarray:
    """Mann–Whitney U of the pairs ``large`` of (``current``, ``previous``), all in one search."""
    lo, span = values.min(), max(float(np.ptp(values)), 1e-300)
    # every value scaled into [0, 1] and shifted into band 2g of its group g: one sorted array
    # of all groups as they lie (no copy per pair)
    scaled = (values - lo) / span
    group = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)  # 10M values: half the memory of int64
    keys = 2.0 * group
    keys += scaled  # in place: one 10M array fewer at the peak
    u = np.zeros(len(current))
    pending = large
    while len(pending):  # one round per repeat of a current group (one round in dora)
        _, first = np.unique(current[pending], return_index=True)
        pairs = pending[first]
        u[pairs] = _u_statistics(scaled, keys, group, offsets, current[pairs], previous[pairs])
        pending = np.delete(pending, first)
    return u[large]


def _u_statistics(
    scaled: np.ndarray,
    keys: np.ndarray,
    group: np.ndarray,
    offsets: np.ndarray,
    current: np.ndarray,
    previous: np.ndarray,
) -> np.ndarray:
    """Mann–Whitney U of each (distinct) ``current`` group against its ``previous`` group.

    Each value of a current group, shifted into its previous group's band, is searched in
    ``keys``: the insertion point less the band's start counts the previous values below
    it. Values of other groups are searched too (the needles stay sorted when each group's
    previous group is the one before it, which keeps the search fast) and weigh nothing.
    """
    starts = offsets[:-1].astype(np.int64)
    target = np.maximum(np.arange(len(starts), dtype=np.int32) - 1, 0)
    target[current] = previous
    band = target[group]
    needles = 2.0 * band
    needles += scaled  # in place (arrays of 10M values: the peak memory of a DORA call)
    left = np.searchsorted(keys, needles, "left")
    # ties count one half; only values equal to the next previous value can have any (one search fewer)
    tied = np.flatnonzero(keys[np.minimum(left, len(keys) - 1)] == needles)
    extra = 0.5 * (np.searchsorted(keys, needles[tied], "right") - left[tied]) if len(tied) else None
    del needles
    left -= starts[band]
    del band
    below = left.astype(float)
    del left
    if extra is not None:
        below[tied] += extra
    mine = np.zeros(len(starts), dtype=bool)
    mine[current] = True
    below[~mine[group]] = 0.0
    return np.bincount(group, weights=below, minlength=len(starts))[current]
