"""GitLab → merge requests, reviews, deployments, releases, incidents and bug issues (python-gitlab).

Resources of one project (REST API v4), each read from its own watermark (the newest
``updated_at`` seen, passed back as ``updated_after``), all loaded in one transaction
(:func:`~releaserisk.ingest.sources.load_run`):

``merge_requests``
    ``GET /projects/:id/merge_requests`` → ``pull_requests`` (``iid`` as the number,
    target branch as base, ``merge_commit_sha`` or ``squash_commit_sha``); per merge
    request its commits (``…/commits``) → ``pr_commits`` and its notes (``…/notes``) →
    ``pr_reviews``: a system note "approved this merge request" is an ``APPROVED``
    review at the note's time (the approvals endpoint has no times), a user's comment
    by someone other than the author is ``COMMENTED`` — the pickup and review phases
    start at the first of them. GitLab's list omits line counts: additions, deletions
    and changed files stay NULL.
``deployments``
    ``GET /projects/:id/deployments`` → ``deployments``: ``success`` → success,
    ``failed`` → failure, ``canceled`` → cancelled; created, running, blocked and
    skipped deployments are not finished and are skipped (a later run reads them once
    they finish: their ``updated_at`` moves). Started = ``created_at``, finished =
    ``finished_at`` (``updated_at`` on servers older than 15.x).
``releases``
    ``GET /projects/:id/releases`` → deployments to ``release_environment`` (when set)
    at ``released_at``, sha = ``commit.id`` (GitLab peels the tag itself).
``issues``
    ``GET /projects/:id/issues`` → ``incidents`` for issues of type ``incident`` or
    carrying an incident label (opened = created, resolved = closed, severity = the
    incident's severity or a ``severity::``/``sev`` label, cause from ``root cause:
    <sha>`` / ``caused by deployment <id>`` in the description), and ``issues`` for
    issues carrying a bug label (commits citing ``#123`` are fixes).

Cost: 1 call per 100 listed items, plus 2 per merge request (commits, notes); per
1,000 merge requests about 2,010 calls, per 1,000 incidents (issues) 10.

Errors become :class:`~releaserisk.errors.GitLabError`, one line naming the project and
what to do. The token (``$GITLAB_TOKEN``) is used for requests only: never stored,
logged or printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from urllib.parse import quote

import pandas as pd

from releaserisk.config import Settings
from releaserisk.errors import GitLabError, InputError
from releaserisk.ingest.sources import Resource, SourceIngestResult, cause_columns, load_run, raised_reading, utc
from releaserisk.store import Store

__all__ = ["ingest_gitlab"]

#: GitLab deployment statuses that end a deployment, as the store spells them.
DEPLOYMENT_STATUS = {"success": "success", "failed": "failure", "canceled": "cancelled"}
_APPROVED = "approved this merge request"


class _Api:
    """python-gitlab's HTTP layer, counting calls and checking each answer's shape."""

    def __init__(self, gl, project: str, wait: bool, retries: int) -> None:
        self.gl = gl
        self.project = project
        # python-gitlab waits out 429s itself (Retry-After / RateLimit-Reset) when told to
        # obey the rate limit; these are per-request options
        self.options = {"obey_rate_limit": wait, "max_retries": retries}
        self.path = f"/projects/{quote(project, safe='')}"
        self.calls = 0
        self._count_requests()

    def _count_requests(self) -> None:
        session = self.gl.session

        def count(response, *args, **kwargs):
            self.calls += 1
            return response

        session.hooks["response"].append(count)

    def get(self, path: str) -> dict:
        answer = self.gl.http_get(self.path + path, **self.options)
        if not isinstance(answer, dict):  # python-gitlab hands back non-JSON bodies as they came
            raise _Garbage(f"GET {path or '/'} answered {type(answer).__name__}")
        return answer

    def list(self, path: str, **query) -> Iterator[dict]:
        query = {k: v for k, v in query.items() if v is not None}
        for item in self.gl.http_list(self.path + path, query_data=query, iterator=True, **self.options):
            if not isinstance(item, dict):
                raise _Garbage(f"GET {path} listed {type(item).__name__}, not objects")
            yield item


class _Garbage(Exception):
    """An answer that is not the JSON GitLab documents."""


def _username(user: dict | None) -> str | None:
    return (user or {}).get("username")


def _newest(items: Iterable[dict]) -> datetime | None:
    times = [utc(item.get("updated_at")) for item in items]
    return max((t for t in times if t is not None), default=None)


def _merge_requests(api: _Api, repo: str, since: datetime | None):
    listed = list(api.list("/merge_requests", state="all", order_by="updated_at", sort="desc",
                           updated_after=since.isoformat() if since else None))  # fmt: skip
    prs, commits, reviews = [], [], []
    for mr in listed:
        iid, author = mr["iid"], _username(mr.get("author"))
        prs.append({
            "repo": repo, "number": iid, "title": mr.get("title"), "author": author,
            "created_at": utc(mr.get("created_at")), "merged_at": utc(mr.get("merged_at")),
            "closed_at": utc(mr.get("closed_at") or mr.get("merged_at")), "base_ref": mr.get("target_branch"),
            "head_sha": mr.get("sha"), "merge_commit_sha": mr.get("merge_commit_sha") or mr.get("squash_commit_sha"),
            "additions": None, "deletions": None, "changed_files": None, "labels": list(mr.get("labels") or []),
        })  # fmt: skip
        for commit in api.list(f"/merge_requests/{iid}/commits"):
            commits.append({"repo": repo, "number": iid, "sha": commit["id"],
                            "authored_at": utc(commit.get("authored_date"))})  # fmt: skip
        for note in api.list(f"/merge_requests/{iid}/notes", sort="asc", order_by="created_at"):
            reviewer = _username(note.get("author"))
            body = (note.get("body") or "").strip().lower()
            if note.get("system"):
                state = "APPROVED" if body.startswith(_APPROVED) else None
            else:
                state = "COMMENTED" if reviewer != author else None
            if state and reviewer and note.get("created_at"):
                reviews.append({"repo": repo, "number": iid, "reviewer": reviewer,
                                "submitted_at": utc(note["created_at"]), "state": state})  # fmt: skip
    frames = {"pull_requests": pd.DataFrame(prs), "pr_commits": pd.DataFrame(commits),
              "pr_reviews": pd.DataFrame(reviews)}  # fmt: skip
    return frames, _newest(listed)


def _deployments(api: _Api, project: str, repo: str, since: datetime | None, environments: Sequence[str] | None):
    rows, newest = [], None
    for environment in environments or [None]:
        listed = list(api.list("/deployments", order_by="updated_at", sort="desc", environment=environment,
                               updated_after=since.isoformat() if since else None))  # fmt: skip
        newest = max(filter(None, [newest, _newest(listed)]), default=None)
        for d in listed:
            status = DEPLOYMENT_STATUS.get(d.get("status"))
            if status is None:
                continue
            rows.append({
                "deployment_id": f"gitlab:{project}:{d['id']}", "service": repo, "repo": repo,
                "environment": (d.get("environment") or {}).get("name"), "sha": d.get("sha"),
                "started_at": utc(d.get("created_at")), "finished_at": utc(d.get("finished_at") or d.get("updated_at")),
                "status": status, "kind": "regular", "source": "gitlab-deployments",
            })  # fmt: skip
    return {"deployments": pd.DataFrame(rows)}, newest


def _releases(api: _Api, project: str, repo: str, since: datetime | None, environment: str):
    rows, newest = [], None
    for release in api.list("/releases", order_by="released_at", sort="desc"):
        released = utc(release.get("released_at") or release.get("created_at"))
        if released is None or (release.get("upcoming_release")):
            continue
        if since and released <= utc(since):
            break
        newest = max(filter(None, [newest, released]), default=None)
        rows.append({
            "deployment_id": f"gitlab-release:{project}:{release['tag_name']}", "service": repo, "repo": repo,
            "environment": environment, "sha": (release.get("commit") or {}).get("id"), "started_at": released,
            "finished_at": released, "status": "success", "kind": "regular", "source": "gitlab-releases",
        })  # fmt: skip
    return {"deployments": pd.DataFrame(rows)}, newest


def _severity(issue: dict) -> str | None:
    severity = issue.get("severity")
    if severity and severity.upper() != "UNKNOWN":
        return severity.lower()
    for label in issue.get("labels") or []:
        if label.lower().startswith(("severity::", "sev")):
            return label
    return None


def _issues(api: _Api, project: str, repo: str, since, incident_labels: Iterable[str], bug_labels: Iterable[str]):
    listed = list(api.list("/issues", state="all", order_by="updated_at", sort="desc",
                           updated_after=since.isoformat() if since else None))  # fmt: skip
    incident_words = {label.lower() for label in incident_labels}
    bug_words = {label.lower() for label in bug_labels}
    incidents, bugs = [], []
    for issue in listed:
        labels = list(issue.get("labels") or [])
        lowered = {label.lower() for label in labels}
        kind = (issue.get("issue_type") or issue.get("type") or "").lower()
        if kind == "incident" or lowered & incident_words:
            incidents.append({
                "incident_id": f"gitlab:{project}#{issue['iid']}", "service": repo, "title": issue.get("title"),
                "severity": _severity(issue), "opened_at": utc(issue.get("created_at")),
                "resolved_at": utc(issue.get("closed_at")), **cause_columns(issue.get("description")),
                "source": "gitlab-issues",
            })  # fmt: skip
        if lowered & bug_words:
            bugs.append({"repo": repo, "issue": str(issue["iid"]), "title": issue.get("title"), "labels": labels,
                         "opened_at": utc(issue.get("created_at")), "closed_at": utc(issue.get("closed_at")),
                         "source": "gitlab-issues"})  # fmt: skip
    return {"incidents": pd.DataFrame(incidents), "issues": pd.DataFrame(bugs)}, _newest(listed)


def _client(base_url: str, token: str | None):
    import gitlab

    # retries 5xx with backoff; keep_base_url: next-page links from a proxy keep our URL
    return gitlab.Gitlab(base_url, private_token=token, retry_transient_errors=True, per_page=100, keep_base_url=True)


def _is_rate_limit(exc: BaseException) -> bool:
    return getattr(exc, "response_code", None) == 429


def _translate(exc: BaseException, project: str, base_url: str) -> GitLabError:
    """One-line, token-free messages for GitLab failures."""
    import gitlab.exceptions as errors

    code = getattr(exc, "response_code", None)
    if isinstance(exc, errors.GitlabAuthenticationError) or code == 401:
        return GitLabError(f"GitLab rejected the token for {project} (401): set GITLAB_TOKEN to a valid token")
    if code == 403:
        return GitLabError(f"permission denied (403) reading {project}: the token needs the read_api scope")
    if code == 404:
        return GitLabError(f"project {project} not found on {base_url} (check the path, or the token's access)")
    if code == 429:
        return GitLabError(f"GitLab rate limit reached while reading {project}; re-run later to resume")
    if code and code >= 500:
        return GitLabError(f"GitLab server error ({code}) for {project} after retries; try again later")
    if isinstance(exc, errors.GitlabParsingError | _Garbage | ValueError | KeyError | TypeError):
        return GitLabError(
            f"GitLab's answer for {project} is not the JSON its API documents (an HTML sign-in or proxy page?): "
            "check --base-url and the network, then re-run"
        )
    if code:
        return GitLabError(f"GitLab request for {project} failed with status {code}")
    return GitLabError(f"cannot reach GitLab at {base_url} for {project}: {type(exc).__name__}")


def ingest_gitlab(
    store: Store,
    project: str,
    *,
    name: str | None = None,
    base_url: str = "https://gitlab.com",
    token: str | None = None,
    since: datetime | None = None,
    environments: Sequence[str] | None = None,
    incident_labels: Iterable[str] = ("incident",),
    bug_labels: Iterable[str] = Settings.bug_labels,
    release_environment: str | None = None,
    wait: bool = True,
    retries: int = 5,
) -> SourceIngestResult:
    """Ingest a GitLab project's merge requests, deployments, releases, incidents and bug issues.

    Parameters
    ----------
    store : Store
    project : str
        ``GROUP/PROJECT`` (subgroups allowed: ``GROUP/SUB/PROJECT``).
    name : str, optional
        The repository's name in the store (default: the last path part, as ``ingest git``
        names a clone after its directory); also the service of its deployments and incidents.
    base_url : str
        The GitLab server (default ``https://gitlab.com``).
    token : str, optional
        Personal, project or group access token with ``read_api`` (default: ``$GITLAB_TOKEN``;
        used for requests only, never stored or printed).
    since : datetime, optional
        Read nothing updated before (default: continue from each resource's watermark).
    environments : sequence of str, optional
        Deployment environments to read (default: all).
    incident_labels : iterable of str
        Labels that make an issue an incident (issues of type ``incident`` are incidents anyway).
    bug_labels : iterable of str
        Labels that make an issue a bug (``Settings.bug_labels``).
    release_environment : str, optional
        Record releases as deployments to this environment.
    wait : bool
        Wait out rate limits (else stop; a re-run resumes from the watermarks).
    retries : int
        Retries of server errors and rate limits.

    Returns
    -------
    SourceIngestResult
        Rows per resource and API calls made.

    Raises
    ------
    InputError
        ``project`` is not ``GROUP/PROJECT``.
    GitLabError
        401, 403, 404, server errors after retries, a rate limit without ``wait``, or an
        answer that is not GitLab's JSON; the store is unchanged (a rate-limit stop keeps
        the resources already read).
    """
    parts = project.strip("/").split("/")
    if len(parts) < 2 or not all(part.strip() for part in parts):
        raise InputError(f"project must be GROUP/PROJECT, got {project!r}")
    repo = parts[-1] if name is None else name
    if not repo.strip():
        raise InputError("the repository name in the store (--name) cannot be empty")
    token = token if token is not None else os.environ.get("GITLAB_TOKEN")
    gl = _client(base_url, token)
    api = _Api(gl, project, wait, retries)
    result = SourceIngestResult("GitLab", project)
    bug_labels = list(bug_labels)
    resources = [
        Resource("merge_requests", ["pull_requests"], lambda s: _merge_requests(api, repo, s)),
        Resource("deployments", ["deployments"], lambda s: _deployments(api, project, repo, s, environments)),
        Resource("issues", ["issues"], lambda s: _issues(api, project, repo, s, incident_labels, bug_labels)),
    ]
    if release_environment:
        resources.append(
            Resource("releases", ["deployments"], lambda s: _releases(api, project, repo, s, release_environment))
        )
    try:
        api.get("")  # the project exists and the token may read it, before anything is read
        load_run(store, f"gitlab:{project}", resources, since, result, is_rate_limit=_is_rate_limit,
                 repos=[repo], bug_labels=bug_labels)  # fmt: skip
    except Exception as exc:
        if not _from_gitlab(exc):
            raise
        raise _translate(exc, project, base_url) from None
    finally:
        result.calls = api.calls
        gl.session.close()
    return result


def _from_gitlab(exc: BaseException) -> bool:
    """Whether ``exc`` comes from talking to GitLab (python-gitlab, requests, a bad answer), not our own code."""
    import gitlab
    import requests

    if isinstance(exc, gitlab.exceptions.GitlabError | requests.RequestException | _Garbage):
        return True
    if isinstance(exc, ValueError | KeyError | TypeError):  # a field missing from an answer, or not JSON
        return raised_reading(exc, gitlab, __file__)
    return False
