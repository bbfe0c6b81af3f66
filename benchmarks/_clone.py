"""Shared by the benchmarks that run PyDriller (imported as a sibling module of the scripts)."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def owned_clone(repo: str) -> Iterator[str]:
    """A local clone of ``repo`` (hard links, no checkout) in a temporary directory.

    GitPython refuses repositories owned by another user (e.g. fetched mirrors); the
    clone is ours and holds the same history.
    """
    with tempfile.TemporaryDirectory() as tmp:
        clone = str(Path(tmp) / "clone")
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", "--local", repo, clone], check=True)
        yield clone
