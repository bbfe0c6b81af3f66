"""Arithmetic on canary samples that cannot overflow: values in units of a common power of two.

A metric's values are finite doubles, any of them up to about 1.8e308, but a sum, a
square or a difference of two of them need not be: the mean of thirty values of 1e308
overflows to inf when summed first, the variance of values of 1e200 to inf, and the
square of 1e-308 underflows to 0 — an arm that seems to have no spread. Every statistic
the judges use (a t statistic, a mean ratio, an autocorrelation, an e-value, the
Mann–Whitney interval's root search with its tolerance scaled alike) is invariant to
multiplying both arms by one positive constant; a power of two, ``2**e``, changes no
digit of the values. So the judges compute in units of ``2**e`` with ``e`` the binary
exponent of the largest absolute value (every value then lies in (-1, 1), a difference
in (-2, 2), a sum of n squares below 4 n) and give intervals and means back in the
metric's unit. Within the float range the results are the same, bit for bit, as the
computation in the metric's unit; a result beyond it (an interval end above 1.8e308) is
reported as ±inf, while the decision, taken in the scaled unit, stays right.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["exponent", "scaled", "stable_mean", "unscaled"]


def exponent(*arrays) -> int:
    """The binary exponent ``e`` with every finite value's magnitude below ``2**e`` (and at least half the largest's).

    Parameters
    ----------
    *arrays : array-like of float
        Values of one or more arms (non-finite values are ignored).

    Returns
    -------
    int
        ``math.frexp(max |x|)[1]``; 0 when there is no finite nonzero value.
    """
    largest = 0.0
    for values in arrays:
        x = np.asarray(values, dtype=float)
        if x.size:
            finite = np.abs(x[np.isfinite(x)])
            if finite.size:
                largest = max(largest, float(finite.max()))
    return math.frexp(largest)[1] if largest > 0.0 else 0


def scaled(values, e: int) -> np.ndarray:
    """``values / 2**e``, exactly (``numpy.ldexp``; only values below ``2**(e - 1074)`` lose digits).

    Parameters
    ----------
    values : array-like of float
    e : int
        From :func:`exponent`.

    Returns
    -------
    ndarray of float
    """
    return np.ldexp(np.asarray(values, dtype=float), -e)


def unscaled(value: float, e: int) -> float:
    """``value * 2**e`` back in the metric's unit: ±inf beyond the float range, NaN stays NaN.

    Parameters
    ----------
    value : float
        A result in units of ``2**e``.
    e : int

    Returns
    -------
    float
    """
    value = float(value)
    if not math.isfinite(value):
        return value
    try:
        return math.ldexp(value, e)
    except OverflowError:
        return math.copysign(math.inf, value)


def stable_mean(values) -> float:
    """The mean of finite values without overflow: ``mean(x / 2**e) * 2**e`` (always representable).

    Bit for bit ``numpy.mean`` wherever that does not overflow or underflow.

    Parameters
    ----------
    values : array-like of float
        Non-empty.

    Returns
    -------
    float
        NaN for no values; ±inf or NaN only when the values hold them.
    """
    x = np.asarray(values, dtype=float)
    if not x.size:
        return math.nan
    e = exponent(x)
    return unscaled(float(np.mean(scaled(x, e))), e)
