"""Git's commit-graph file: whether SZZ's blames will be slow on a repository.

``git blame`` walks history path by path; on a long history it is about three times
faster when the commit-graph carries changed-path Bloom filters (git 2.27+,
``git commit-graph write --changed-paths``). Format: git's
``Documentation/gitformat-commit-graph.txt`` — an 8-byte header, then a table of
12-byte chunk entries whose ids include ``BIDX`` (the Bloom filter index).
"""

from __future__ import annotations

from pathlib import Path

from releaserisk.errors import GitError
from releaserisk.ingest.git import git

__all__ = ["COMMIT_GRAPH_HINT_COMMITS", "blame_would_be_slow", "has_changed_path_filters"]

#: Commits from which SZZ without a changed-path commit-graph is worth a hint (git.git, 82k: 31 min vs 10).
COMMIT_GRAPH_HINT_COMMITS = 20_000


def has_changed_path_filters(graph: Path) -> bool:
    """Whether a commit-graph file has a changed-path Bloom filter chunk.

    Parameters
    ----------
    graph : Path
        A ``commit-graph`` or ``commit-graphs/*.graph`` file.

    Returns
    -------
    bool
        True when its chunk table lists ``BIDX``.
    """
    with graph.open("rb") as handle:
        return b"BIDX" in handle.read(8 + 12 * 16)


def blame_would_be_slow(store, repo: str, min_commits: int | None = None) -> bool:
    """A long stored history whose repository has no commit-graph with changed-path filters.

    Parameters
    ----------
    store : Store
        An open store.
    repo : str
        The repository's name in the store.
    min_commits : int, optional
        History length from which blames count as long (default :data:`COMMIT_GRAPH_HINT_COMMITS`).

    Returns
    -------
    bool
        True when ``label --commit-graph`` would pay off.
    """
    limit = COMMIT_GRAPH_HINT_COMMITS if min_commits is None else min_commits
    path, commits = store.execute(
        "SELECT any_value(r.path), count(c.sha) FROM repos r LEFT JOIN commits c USING (repo) WHERE r.repo = ?",
        [repo],
    ).fetchone()
    if commits < limit:
        return False
    try:
        info = Path(path) / git(path, "rev-parse", "--git-path", "objects/info").strip()
    except GitError:
        return False
    graphs = [info / "commit-graph", *sorted((info / "commit-graphs").glob("*.graph"))]
    return not any(has_changed_path_filters(g) for g in graphs if g.is_file())
