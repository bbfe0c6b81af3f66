"""Which commits a CI gate scores: a revision range resolved against git and the store."""

from __future__ import annotations

from collections.abc import Sequence

from releaserisk.errors import GitError, InputError
from releaserisk.features import latest_production_deployment
from releaserisk.ingest.git import git

__all__ = ["commits_to_score"]


def commits_to_score(
    store, repo_path: str, repo: str, spec: str | None, production_environments: Sequence[str]
) -> tuple[str, list[str]]:
    """The non-merge commits in ``spec``; by default those since the last production deployment.

    Parameters
    ----------
    store : Store
        An open store holding the repository's history.
    repo_path : str
        The repository's work tree or git directory.
    repo : str
        The repository's name in the store.
    spec : str or None
        A git revision range (``v1.2..HEAD``); None means "since the newest successful
        production deployment of a commit of this repository", else ``HEAD`` alone.
    production_environments : sequence of str
        Environments that are production.

    Returns
    -------
    tuple of (str, list of str)
        The range used and its non-merge commit ids, newest first (``git rev-list`` order).

    Raises
    ------
    InputError
        The range names an unknown revision.
    """
    if spec is None:
        latest = latest_production_deployment(store, production_environments, repo=repo)
        spec = f"{latest['sha']}..HEAD" if latest else "HEAD^!"
    try:
        out = git(repo_path, "rev-list", "--no-merges", "--end-of-options", spec, "--")
    except GitError:
        raise InputError(f"unknown revision or range '{spec}' in {repo_path}") from None
    return spec, out.split()
