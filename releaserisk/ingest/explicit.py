"""Explicit rows win: derived deployment sources never overwrite a deployment a file wrote.

A team declares what a tool cannot know — that release ``tag:lib:1.2.1`` was a hotfix, that
a deployment was a rollback of another — by loading a ``deployments`` file with the same
``deployment_id``. Derived sources (``ingest git-tags``, GitHub and GitLab releases,
deployments and deploy workflows) re-write their ids on every run; without this rule the
next nightly run reset such a hotfix to ``regular`` and the change failure rate halved
without a word. A row is derived when its ``source`` is one of the names those sources
write (:data:`~releaserisk.ingest.schemas.DERIVED_DEPLOYMENT_SOURCES`); any other source —
a file's name, the file's own ``source`` column, or none — is explicit.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import pyarrow as pa

from releaserisk.ingest.schemas import DERIVED_DEPLOYMENT_SOURCES, DERIVED_SOURCE_PREFIXES
from releaserisk.store import Store

__all__ = ["is_derived", "keep_explicit_deployments", "kept_line"]


def is_derived(source: str | None) -> bool:
    """Whether a ``deployments.source`` value is one a derived source writes (None: explicit)."""
    return source is not None and (source in DERIVED_DEPLOYMENT_SOURCES or source.startswith(DERIVED_SOURCE_PREFIXES))


def keep_explicit_deployments(store: Store, frame: Any) -> tuple[Any, dict[str, list[str]]]:
    """Drop from a derived source's deployments those a file (or any explicit source) already wrote.

    Parameters
    ----------
    store : Store
        The store about to receive ``frame``.
    frame : pandas.DataFrame or pyarrow.Table
        Deployments read from a derived source, with a ``deployment_id`` column.

    Returns
    -------
    (frame, kept)
        The rows that may be written (same type as given), and the ids kept as they are,
        by the explicit source that wrote them (``{"hotfix2.csv": ["tag:black:23.9.1"]}``).
    """
    arrow = isinstance(frame, pa.Table)
    ids = frame.column("deployment_id").to_pylist() if arrow else frame["deployment_id"].tolist()
    if not ids:
        return frame, {}
    rows = [
        (deployment, source or "(no source)")
        for deployment, source in store.execute(
            "SELECT deployment_id, source FROM deployments WHERE list_contains(?, deployment_id) ORDER BY 1",
            [ids],
        ).fetchall()
        if not is_derived(source)
    ]
    if not rows:
        return frame, {}
    kept: dict[str, list[str]] = {}
    for deployment, source in rows:
        kept.setdefault(source, []).append(deployment)
    explicit = {deployment for deployment, _ in rows}
    keep = [i not in explicit for i in ids]
    return (frame.filter(pa.array(keep)) if arrow else frame[pd.Series(keep, index=frame.index)]), kept


def kept_line(kept: dict[str, list[str]]) -> str | None:
    """The summary line saying which deployments were kept as an explicit source wrote them, or None."""
    if not kept:
        return None
    counts = Counter({source: len(ids) for source, ids in kept.items()})
    total = sum(counts.values())
    sources = (
        ", ".join(f"{n:,} from {source}" for source, n in counts.most_common())
        if len(counts) > 1
        else (f"loaded from {next(iter(counts))}")
    )
    ids = [i for group in kept.values() for i in group]
    shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3:,} more" if len(ids) > 3 else "")
    return (
        f"kept {total:,} deployment{'' if total == 1 else 's'} {sources} as {'it was' if total == 1 else 'they were'} "
        f"(explicit rows win over derived ones): {shown}"
    )
