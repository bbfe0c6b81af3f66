"""Deployment → commit links, derived from the stored commit graph (no git process).

Per (service, environment, in any case), successful deployments are chained by finish time. The
changes of a deployment are the commits reachable from its sha and not from the
previous successful deployment's sha — ``git rev-list prev..this`` — computed by a
walk over ``commits.parents`` in decreasing ingest order (parents always come before
children in that order), marking what the previous deployment already had, exactly as
git's own revision walk does. The first deployment of a chain gets none (peer
practice: its history is unknown); a rollback to an older sha gets none; failed
deployments are not links of the chain. A previous deployment whose sha is no commit
of the ingested history (a release tagged on a branch not ingested) cannot bound the
range — ``prev..this`` would exclude nothing and hand its successor the whole history
(2,737 changes for one patch release of gunicorn) — so the range starts at the latest
earlier deployment whose sha is in the history. Where ``services.path_prefix`` is set
(monorepos), only commits touching that prefix count.

Deployments with explicitly loaded changes (``ingest deployment-changes``) keep them.
"""

from __future__ import annotations

import heapq

import pandas as pd
import pyarrow as pa

from releaserisk.store import SHA_PREFIX_MIN, Store, sha_prefix_match

__all__ = [
    "commit_range",
    "drop_superseded_links",
    "fill_commit_times",
    "link_deployment_changes",
    "resolve_deployed_shas",
]

_LINKS = pa.schema([("deployment_id", pa.string()), ("repo", pa.string()), ("sha", pa.string())])


def commit_range(graph: dict[str, tuple[int, list[str]]], include: str, exclude: str | None) -> list[str]:
    """Commits reachable from ``include`` but not from ``exclude``.

    Parameters
    ----------
    graph : dict
        sha -> (seq, parents), seq increasing from parents to children.
    """
    if include not in graph:
        return []
    heap: list[tuple[int, str]] = []
    state: dict[str, bool] = {}  # sha -> uninteresting (reachable from ``exclude``)?
    interesting = 0  # interesting commits still queued: the walk stops when none are left

    def push(sha: str, uninteresting: bool) -> None:
        nonlocal interesting
        if sha not in graph:
            return
        known = state.get(sha)
        if known is None:
            state[sha] = uninteresting
            interesting += not uninteresting
            heapq.heappush(heap, (-graph[sha][0], sha))
        elif uninteresting and not known:
            state[sha] = True
            interesting -= sha in queued

    queued: set[str] = set()
    push(include, False)
    queued.add(include)
    if exclude:
        push(exclude, True)
        queued.add(exclude)
    result = []
    while heap and interesting > 0:
        _, sha = heapq.heappop(heap)
        queued.discard(sha)
        uninteresting = state[sha]
        if not uninteresting:
            interesting -= 1
            result.append(sha)
        for parent in graph[sha][1]:
            fresh = parent not in state
            push(parent, uninteresting)
            if fresh and parent in graph:
                queued.add(parent)
    return result


def _chains(store: Store) -> pd.DataFrame:
    """Successful deployments with the sha of their chain predecessor and their repo."""
    return store.query(
        """
        WITH only_repo AS (SELECT CASE WHEN count(*) = 1 THEN min(repo) END AS repo FROM repos),
        ok AS (
            SELECT d.deployment_id, d.service, d.environment, d.sha, d.finished_at,
                   coalesce(d.repo, s.repo, (SELECT repo FROM only_repo)) AS repo, s.path_prefix
            FROM deployments d LEFT JOIN services s USING (service)
            WHERE d.status = 'success'
        ),
        known AS (
            SELECT ok.*, EXISTS (SELECT 1 FROM commits c WHERE c.repo = ok.repo AND c.sha = ok.sha) AS in_history
            FROM ok
        )
        SELECT * EXCLUDE (in_history),
               -- the latest earlier deployment whose commit is in the history bounds the range:
               -- one whose commit is not (a tag on a branch not ingested) cannot, and taking it
               -- would exclude nothing and give its successor the whole history
               last_value(CASE WHEN in_history THEN sha END IGNORE NULLS) OVER (
                   chain ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_sha,
               row_number() OVER chain AS position
        FROM known
        WHERE deployment_id NOT IN (SELECT deployment_id FROM deployment_changes WHERE NOT derived)
        -- environment names match in any case, as Settings' do
        WINDOW chain AS (PARTITION BY service, lower(environment) ORDER BY finished_at, deployment_id)
        """
    )


def fill_commit_times(store: Store) -> None:
    """Copy each linked commit's time onto its deployment_changes rows (commit times never change)."""
    store.execute(
        """
        UPDATE deployment_changes dc SET committed_at = c.committed_at
        FROM commits c WHERE dc.committed_at IS NULL AND c.repo = dc.repo AND c.sha = dc.sha
        """
    )


def drop_superseded_links(store: Store) -> int:
    """Delete the derived links of deployments that now have explicitly loaded changes.

    A deploy tool's list of what a deployment shipped supersedes the graph's guess; the
    explicit rows themselves are never deleted or replaced by a derivation.

    Parameters
    ----------
    store : Store
        Writable.

    Returns
    -------
    int
        Derived links deleted.
    """
    return store.execute(
        """
        DELETE FROM deployment_changes
        WHERE derived AND deployment_id IN (SELECT deployment_id FROM deployment_changes WHERE NOT derived)
        """
    ).fetchone()[0]


def resolve_deployed_shas(store: Store, *, repo: str | None = None, first_seq: int = 0) -> int:
    """Replace abbreviated or upper-case deployment shas by the full commit sha they name.

    Deploy tools often record ``9fceb02`` (an image tag, a release name); the commit
    graph knows ``9fceb02d0ae598e95dc970b74767f19372d61af8``, and a deployment whose sha
    matches no commit gets no changes and no lead time. A prefix of at least
    :data:`~releaserisk.store.SHA_PREFIX_MIN` characters naming exactly one commit is replaced; an
    ambiguous or unknown one is left as it is. ``repo`` and ``first_seq`` limit the
    commits looked at (an incremental ingest's new ones).

    Returns
    -------
    int
        Deployments whose sha was completed.
    """
    candidates = store.execute(
        "SELECT count(*) FROM deployments WHERE length(sha) BETWEEN ? AND 39 OR sha <> lower(sha)",
        [SHA_PREFIX_MIN],
    ).fetchone()[0]
    if not candidates:  # the common case: every tool recorded full shas
        return 0
    before = store.execute("SELECT count(*) FROM deployments WHERE length(sha) = 40 AND sha = lower(sha)").fetchone()
    store.execute(
        f"""
        UPDATE deployments d SET sha = m.full_sha FROM (
            SELECT d.deployment_id, min(c.sha) AS full_sha
            FROM deployments d JOIN commits c ON {sha_prefix_match("c.sha", "lower(d.sha)")}
            WHERE (length(d.sha) BETWEEN $min AND 39 OR d.sha <> lower(d.sha))
              AND ($repo IS NULL OR c.repo = $repo) AND c.seq >= $first
            GROUP BY d.deployment_id HAVING count(DISTINCT c.sha) = 1
        ) m
        WHERE d.deployment_id = m.deployment_id
        """,
        {"min": SHA_PREFIX_MIN, "repo": repo, "first": first_seq},
    )
    after = store.execute("SELECT count(*) FROM deployments WHERE length(sha) = 40 AND sha = lower(sha)").fetchone()
    return after[0] - before[0]


def link_deployment_changes(store: Store) -> int:
    """Recompute the derived ``deployment_changes`` of every deployment.

    Abbreviated deployment shas are completed first (:func:`resolve_deployed_shas`).

    Returns
    -------
    int
        Links written.
    """
    resolve_deployed_shas(store)
    chains = _chains(store)
    deployment_ids: list[str] = []
    repos: list[str] = []
    shas: list[str] = []
    for repo, group in chains[chains["repo"].notna() & chains["prev_sha"].notna()].groupby("repo"):
        commits = store.query("SELECT sha, seq, parents FROM commits WHERE repo = ?", [repo])
        graph = {s: (q, list(p)) for s, q, p in zip(commits["sha"], commits["seq"], commits["parents"], strict=True)}
        for deployment, sha, prev in zip(group["deployment_id"], group["sha"], group["prev_sha"], strict=True):
            found = commit_range(graph, sha, prev)
            deployment_ids.extend([deployment] * len(found))
            repos.extend([repo] * len(found))
            shas.extend(found)
    links = pa.table({"deployment_id": deployment_ids, "repo": repos, "sha": shas}, schema=_LINKS)
    with store.transaction():
        store.execute("DELETE FROM deployment_changes WHERE derived")
        # a plain insert: each deployment lists a commit once, and deployments with
        # explicitly loaded changes are not in the chains. Monorepos keep only commits
        # touching the service's folder, filtered here rather than inserted and deleted
        store.connection.register("_links", links)
        try:
            store.execute(
                """
                INSERT INTO deployment_changes (deployment_id, repo, sha, derived)
                SELECT l.deployment_id, l.repo, l.sha, true
                FROM _links l JOIN deployments d USING (deployment_id) LEFT JOIN services s USING (service)
                WHERE coalesce(s.path_prefix, '') = '' OR EXISTS (
                    SELECT 1 FROM file_changes f
                    WHERE f.repo = l.repo AND f.sha = l.sha AND starts_with(f.path, s.path_prefix))
                """
            )
        finally:
            store.connection.unregister("_links")
        fill_commit_times(store)
    return store.execute("SELECT count(*) FROM deployment_changes WHERE derived").fetchone()[0]
