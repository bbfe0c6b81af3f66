"""The derived rows every source's ingest brings up to date, in one place.

Each ingest (git, git tags, GitHub, GitLab, Jira, PagerDuty, files) says which kinds of
rows it loaded; :func:`after_ingest` then runs, inside the ingest's transaction, the
steps those rows call for — and only those, so an incremental CI ingest stays cheap:

* new **commits** — complete abbreviated deployment shas they name
  (:func:`~releaserisk.ingest.links.resolve_deployed_shas`), re-link deployment chains
  when a successful deployment ships one of them (deployments read before git found
  nothing to link), else copy commit times onto existing links; mark the FIX metric of
  commits citing a bug issue (:func:`~releaserisk.labels.mark_tracked_fixes`);
* new **deployments** — recompute derived ``deployment_changes``
  (:func:`~releaserisk.ingest.links.link_deployment_changes`);
* explicit **deployment changes** — drop the derived links of their deployments
  (:func:`~releaserisk.ingest.links.drop_superseded_links`) and copy commit times onto them;
* new **issues** or **pull requests** — mark the FIX metric of the commits that cite
  them (GitHub's and GitLab's bug issues arrive after git, so git's own pass missed them).
"""

from __future__ import annotations

from collections.abc import Iterable

from releaserisk.config import Settings
from releaserisk.store import Store

__all__ = ["after_ingest"]

#: Kinds of rows an ingest may report as loaded.
LOADED_KINDS = frozenset({"commits", "deployments", "deployment_changes", "issues", "pull_requests"})


def _deployed_among(store: Store, repo: str, first_seq: int) -> bool:
    """Whether a successful deployment ships one of the commits ingested from ``first_seq`` on."""
    return store.execute(
        """
        SELECT EXISTS (
            SELECT 1 FROM deployments d JOIN commits c ON c.sha = d.sha
            WHERE c.repo = ? AND c.seq >= ? AND d.status = 'success')
        """,
        [repo, first_seq],
    ).fetchone()[0]


def _repos_with_commits(store: Store, repos: Iterable[str] | None) -> list[str]:
    known = store.query("SELECT DISTINCT repo FROM commits")["repo"].tolist()
    return known if repos is None else [r for r in repos if r in set(known)]


def after_ingest(
    store: Store,
    loaded: Iterable[str],
    *,
    repo: str | None = None,
    first_seq: int = 0,
    repos: Iterable[str] | None = None,
    bug_labels: Iterable[str] = Settings.bug_labels,
) -> None:
    """Bring derived rows up to date after an ingest loaded rows of the kinds in ``loaded``.

    Call inside the ingest's transaction, after its rows are written.

    Parameters
    ----------
    store : Store
        The writable store the ingest wrote to.
    loaded : iterable of str
        Kinds of rows loaded: ``commits``, ``deployments``, ``deployment_changes``,
        ``issues``, ``pull_requests`` (kinds without rows may be left out).
    repo : str, optional
        With ``commits``: the repository they belong to.
    first_seq : int
        With ``commits``: the ``seq`` of the first new commit (only those are looked at).
    repos : iterable of str, optional
        With ``issues`` or ``pull_requests``: the repositories they belong to (default:
        every repository with commits).
    bug_labels : iterable of str
        Labels marking bug issues and pull requests (``Settings.bug_labels``).

    Raises
    ------
    ValueError
        ``loaded`` names an unknown kind, or ``commits`` without ``repo``.
    """
    kinds = set(loaded)
    if kinds - LOADED_KINDS:
        raise ValueError(f"unknown kinds of loaded rows: {sorted(kinds - LOADED_KINDS)}")
    from releaserisk.ingest.links import (
        drop_superseded_links,
        fill_commit_times,
        link_deployment_changes,
        resolve_deployed_shas,
    )
    from releaserisk.labels import mark_tracked_fixes

    relink = "deployments" in kinds
    if "commits" in kinds:
        if repo is None:
            raise ValueError("loaded commits need the repo they belong to")
        resolved = resolve_deployed_shas(store, repo=repo, first_seq=first_seq)  # "9fceb02" deployed earlier
        # re-linking every chain on each CI gate's incremental ingest would cost seconds
        # on a large store: only when a deployment ships a new commit
        relink = relink or bool(resolved) or _deployed_among(store, repo, first_seq)
    if "deployment_changes" in kinds:
        drop_superseded_links(store)  # a deploy tool's explicit list replaces the graph's guess
    if relink:
        link_deployment_changes(store)
    elif kinds & {"commits", "deployment_changes"}:
        fill_commit_times(store)
    marked: list[str] = [repo] if "commits" in kinds else []
    if kinds & {"issues", "pull_requests"}:
        marked += _repos_with_commits(store, repos)
    for name in dict.fromkeys(marked):
        mark_tracked_fixes(store, name, bug_labels)  # FIX from cited bug issues too
