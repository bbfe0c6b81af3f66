"""The machine's resources this process may use: how many cores, defined once.

Used for the defaults that size parallel work (git processes, Dask workers, BLAS threads), so
that two busy cores are never handed three busy processes by default.
"""

from __future__ import annotations

import os

__all__ = ["usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on, at least one.

    Returns
    -------
    int
        ``len(os.sched_getaffinity(0))`` where the platform has it (a container's or
        ``taskset``'s limit, which ``os.cpu_count`` ignores), else ``os.cpu_count()``.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
