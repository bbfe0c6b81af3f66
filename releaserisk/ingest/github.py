"""GitHub → pull requests, reviews, deployments, workflow runs, incidents and bug issues (PyGithub).

Resources, each loaded in its own transaction with its own watermark in
``ingest_runs`` (so a run stopped by the rate limit resumes where it stopped, and an
incremental run asks only for what changed since):

``pulls``
    All pull requests (newest update first, stopping at the watermark): author,
    title, times, merge commit, base/head, size, labels; their commits (sha, authored
    time), reviews and review comments (as ``COMMENTED`` reviews).
``deployments``
    Deployments of the chosen environments; status and finish time from the newest
    success, failure or error status. ``inactive`` is what GitHub sets on a deployment
    when a later one to the same environment supersedes it, so its time is the next
    deployment's, not this one's end: it counts (as success) only for a deployment with
    no other terminal status (apache/incubator-devlake#8654 had the same bug).
    Started = created. Deployments still in progress are skipped.
``workflows``
    Runs of the named deploy workflows: conclusion → status, head sha → sha.
``releases``
    Published releases as regular deployments to ``release_environment`` (when set); the
    sha is the commit the tag names (an annotated tag's ref names the tag object, which
    is peeled to its commit: 1 more call per annotated tag).
``incidents``
    Issues carrying an incident label: opened = created, resolved = closed; a body line
    ``root cause: <sha>`` or ``caused by deployment <id>`` fills the cause columns.
``issues``
    Issues carrying a bug label (``bug_labels``) into ``issues``: commits citing them
    (``#123``) are bug fixes for SZZ, and their opening bounds what a fix may blame.

Errors become :class:`GitHubError` with a one-line message naming the repository and
what to do. The token is used for requests only: never stored, logged or printed.
Cost: 1 call per 100 listed items (issues: a listing per incident and bug label), plus
4 calls per pull request (its details — the list omits sizes —, commits, reviews, review
comments) and 1 per deployment (statuses).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pandas as pd

from releaserisk.config import Settings
from releaserisk.errors import GitHubError, InputError
from releaserisk.ingest.explicit import keep_explicit_deployments, kept_line
from releaserisk.ingest.sources import cause_columns, quiet, raised_reading, watermark
from releaserisk.store import Store

__all__ = ["GitHubIngestResult", "ingest_github"]

_TERMINAL = {"success": "success", "failure": "failure", "error": "error"}
_SUPERSEDED = "inactive"
_CONCLUSION = {"success": "success", "failure": "failure", "timed_out": "failure", "startup_failure": "failure",
               "cancelled": "cancelled", "action_required": "cancelled"}  # fmt: skip
_RECHECK = timedelta(days=1)  # statuses of recent deployments and runs may still change


@dataclass
class GitHubIngestResult:
    """Rows loaded per resource, and the deployments left as an explicit source wrote them.

    ``kept`` maps an explicit source (a ``deployments`` file) to the ids of deployments it
    wrote that this run read too and did not overwrite (explicit rows win).
    """

    repo: str
    counts: dict[str, int] = field(default_factory=dict)
    kept: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """Rows per resource, and a line for the deployments kept."""
        counts = ", ".join(f"{k} {v:,}" for k, v in self.counts.items())
        return "\n".join(filter(None, [f"ingested {self.repo} from GitHub: {counts}", kept_line(self.kept)]))

    def to_dict(self) -> dict:
        return asdict(self)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _client(token: str | None, base_url: str | None, throttle: float | None, retries: int, wait: bool):
    from github import Auth, Github, GithubRetry

    # GithubRetry retries 5xx and secondary rate limits; a primary rate limit is waited
    # out in _with_rate_limit (which can report progress) rather than inside urllib3.
    retry = GithubRetry(total=retries, backoff_factor=0.5 if throttle else 0, max_rate_limit_wait=0)
    kwargs = {"per_page": 100, "retry": retry, "seconds_between_requests": throttle}
    if base_url:
        kwargs["base_url"] = base_url
    if token:
        kwargs["auth"] = Auth.Token(token)
    return Github(**kwargs)


def _root(exc: BaseException) -> BaseException:
    """The PyGithub exception inside requests'/urllib3's wrappers, if any."""
    from github import GithubException

    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, GithubException):
            return current
        seen.add(id(current))
        nested = [getattr(current, "reason", None), *getattr(current, "args", ())]
        inner = next((n for n in nested if isinstance(n, BaseException)), None)
        current = inner or current.__cause__ or current.__context__
    return exc


def _translate(exc: Exception, full_name: str) -> GitHubError:
    """One-line, token-free error messages for GitHub failures."""
    from github import BadCredentialsException, GithubException, RateLimitExceededException, UnknownObjectException

    exc = _root(exc)
    if isinstance(exc, UnknownObjectException):
        return GitHubError(f"repository {full_name} not found on GitHub (check the name, or the token's access)")
    if isinstance(exc, BadCredentialsException):
        return GitHubError(f"GitHub rejected the token for {full_name} (401): set GITHUB_TOKEN to a valid token")
    if isinstance(exc, RateLimitExceededException):
        return GitHubError(f"GitHub rate limit exhausted while reading {full_name}; re-run later to resume")
    if isinstance(exc, GithubException):
        if exc.status == 403:
            return GitHubError(f"permission denied (403) reading {full_name}: the token needs read access to it")
        if exc.status and exc.status >= 500:
            return GitHubError(f"GitHub server error ({exc.status}) for {full_name} after retries; try again later")
        return GitHubError(f"GitHub request for {full_name} failed with status {exc.status}")
    retry_error = type(exc).__name__ in ("RetryError", "MaxRetryError")
    if retry_error and "403" in str(exc):
        return GitHubError(f"GitHub kept refusing requests for {full_name} (secondary rate limit); try again later")
    if retry_error:
        return GitHubError(f"GitHub server errors for {full_name} persisted after retries; try again later")
    return GitHubError(f"cannot reach GitHub for {full_name}: {type(exc).__name__}")


def _garbage(exc: BaseException, full_name: str) -> GitHubError:
    """A response that is not the JSON GitHub documents: an HTML page, a cut-off body, another shape."""
    what = "malformed JSON" if isinstance(exc, json.JSONDecodeError) else "not the JSON its API documents"
    return GitHubError(
        f"GitHub's answer to a request for {full_name} is {what} (an HTML sign-in or proxy page?): "
        "check --base-url and the network, then re-run"
    )


class _Names(NamedTuple):
    """A GitHub repository's two names: ``OWNER/REPO`` for the API and ids, and its name in the store."""

    full: str
    store: str


def _pulls(repo, names: _Names, since: datetime | None) -> tuple[dict[str, pd.DataFrame], datetime | None]:
    prs, commits, reviews = [], [], []
    newest = None
    for pr in repo.get_pulls(state="all", sort="updated", direction="desc"):
        updated = _utc(pr.updated_at)
        if since and updated and updated <= since:
            break
        newest = max(newest, updated) if newest and updated else (updated or newest)
        author = pr.user.login if pr.user else None
        prs.append({
            "repo": names.store, "number": pr.number, "title": pr.title, "author": author,
            "created_at": _utc(pr.created_at), "merged_at": _utc(pr.merged_at), "closed_at": _utc(pr.closed_at),
            "base_ref": pr.base.ref if pr.base else None, "head_sha": pr.head.sha if pr.head else None,
            "merge_commit_sha": pr.merge_commit_sha, "additions": pr.additions, "deletions": pr.deletions,
            "changed_files": pr.changed_files, "labels": [label.name for label in pr.labels],
        })  # fmt: skip
        for c in pr.get_commits():
            authored = c.commit.author.date if c.commit and c.commit.author else None
            commits.append({"repo": names.store, "number": pr.number, "sha": c.sha, "authored_at": _utc(authored)})
        for r in pr.get_reviews():
            if r.submitted_at is not None and r.user is not None:
                reviews.append({"repo": names.store, "number": pr.number, "reviewer": r.user.login,
                                "submitted_at": _utc(r.submitted_at), "state": r.state})  # fmt: skip
        for comment in pr.get_review_comments():
            if comment.user is not None:
                reviews.append({"repo": names.store, "number": pr.number, "reviewer": comment.user.login,
                                "submitted_at": _utc(comment.created_at), "state": "COMMENTED"})  # fmt: skip
    return {"pull_requests": pd.DataFrame(prs), "pr_commits": pd.DataFrame(commits),
            "pr_reviews": pd.DataFrame(reviews)}, newest  # fmt: skip


def _deployments(repo, names: _Names, since, environments: Sequence[str] | None):
    rows, newest = [], None
    for environment in environments or [None]:
        listing = repo.get_deployments(environment=environment) if environment else repo.get_deployments()
        for d in listing:
            created = _utc(d.created_at)
            if since and created and created < since - _RECHECK:
                break
            newest = max(newest, created) if newest else created
            final = _final_status(d.get_statuses())
            if final is None:
                continue
            rows.append({
                "deployment_id": f"github:{names.full}:{d.id}", "service": names.store,
                "repo": names.store, "environment": d.environment, "sha": d.sha,
                "started_at": created, "finished_at": final[1], "status": final[0],
                "kind": "regular", "source": "github-deployments",
            })  # fmt: skip
    return {"deployments": pd.DataFrame(rows)}, newest


def _final_status(statuses):
    """The status that ended a deployment: the newest success, failure or error, else ``inactive``.

    GitHub lists statuses newest first. ``inactive`` is set later, when the next
    deployment supersedes this one, so it is the end only of a deployment that never
    reported another one.
    """
    superseded = None
    for status in statuses:
        if status.state in _TERMINAL:
            return status.state, _utc(status.created_at)
        if status.state == _SUPERSEDED and superseded is None:
            superseded = ("success", _utc(status.created_at))
    return superseded


def _workflow_runs(repo, names: _Names, since, workflows: Sequence[str], environment: str):
    rows, newest = [], None
    wanted = {n.lower() for n in workflows}
    for workflow in repo.get_workflows():
        if workflow.name.lower() not in wanted and workflow.path.rsplit("/", 1)[-1].lower() not in wanted:
            continue
        for run in workflow.get_runs():
            created = _utc(run.created_at)
            if since and created and created < since - _RECHECK:
                break
            newest = max(newest, created) if newest else created
            if run.status != "completed" or run.conclusion not in _CONCLUSION:
                continue
            rows.append({
                "deployment_id": f"github-run:{names.full}:{run.id}", "service": names.store,
                "repo": names.store, "environment": environment, "sha": run.head_sha,
                "started_at": created, "finished_at": _utc(run.updated_at), "status": _CONCLUSION[run.conclusion],
                "kind": "regular", "source": f"github-workflow:{workflow.name}",
            })  # fmt: skip
    return {"deployments": pd.DataFrame(rows)}, newest


def _releases(repo, names: _Names, since, environment: str):
    rows, newest = [], None
    for release in repo.get_releases():
        published = _utc(release.published_at)
        if release.draft or published is None:
            continue
        if since and published <= since:
            break
        newest = max(newest, published) if newest else published
        sha = _tagged_commit(repo, release.tag_name) if release.tag_name else None
        rows.append({
            "deployment_id": f"github-release:{names.full}:{release.tag_name}", "service": names.store,
            "repo": names.store, "environment": environment, "sha": sha, "started_at": published,
            "finished_at": published, "status": "success", "kind": "regular", "source": "github-releases",
        })  # fmt: skip
    return {"deployments": pd.DataFrame(rows)}, newest


def _tagged_commit(repo, tag: str) -> str:
    """The commit a tag names: a lightweight tag's ref names it; an annotated tag's ref names a tag object."""
    target = repo.get_git_ref(f"tags/{tag}").object
    for _ in range(8):  # a tag of a tag of ... : git allows chains; a few levels are plenty
        if target.type != "tag":
            break
        target = repo.get_git_tag(target.sha).object
    return target.sha


def _labelled_issues(repo, since, labels: Sequence[str]):
    """Issues (not pull requests) carrying any of ``labels``, each once, and the newest update.

    One listing per label; the labels are checked here too (any case), whatever the server matched.
    """
    issues, newest, seen = [], None, set()
    wanted = {label.lower() for label in labels}
    for label in labels:
        listing = repo.get_issues(state="all", labels=[label], since=since) if since else repo.get_issues(
            state="all", labels=[label]
        )  # fmt: skip
        for issue in listing:
            if issue.pull_request is not None or issue.number in seen:
                continue
            if not wanted & {lb.name.lower() for lb in issue.labels}:
                continue
            seen.add(issue.number)
            issues.append(issue)
            updated = _utc(issue.updated_at)
            newest = max(newest, updated) if newest and updated else (updated or newest)
    return issues, newest


def _incidents(repo, names: _Names, since, labels: Sequence[str]):
    issues, newest = _labelled_issues(repo, since, labels)
    rows = []
    for issue in issues:
        body = issue.body or ""
        rows.append({
            "incident_id": f"github:{names.full}#{issue.number}", "service": names.store,
            "title": issue.title, "severity": next((lb.name for lb in issue.labels if lb.name.startswith("sev")), None),
            "opened_at": _utc(issue.created_at), "resolved_at": _utc(issue.closed_at),
            **cause_columns(body),
            "source": "github-issues",
        })  # fmt: skip
    return {"incidents": pd.DataFrame(rows)}, newest


def _bug_issues(repo, names: _Names, since, labels: Sequence[str]):
    issues, newest = _labelled_issues(repo, since, labels)
    rows = [{
        "repo": names.store, "issue": str(issue.number), "title": issue.title,
        "labels": [lb.name for lb in issue.labels], "opened_at": _utc(issue.created_at),
        "closed_at": _utc(issue.closed_at), "source": "github-issues",
    } for issue in issues]  # fmt: skip
    return {"issues": pd.DataFrame(rows)}, newest


def _with_rate_limit(call: Callable, gh, wait: bool, notify: Callable[[str], None] | None):
    """Run ``call``; when the primary rate limit runs out, wait for the reset and run it again."""
    from github import RateLimitExceededException

    while True:
        try:
            return call()
        except Exception as raised:
            exc = _root(raised)
            if not isinstance(exc, RateLimitExceededException) or not wait:
                raise
            reset = None
            headers = getattr(exc, "headers", None) or {}
            if "x-ratelimit-reset" in headers:
                reset = int(headers["x-ratelimit-reset"])
            delay = max((reset or time.time() + 60) - time.time(), 0) + 1
            if notify:
                notify(f"GitHub rate limit reached; waiting {delay:.0f} s for the reset")
            time.sleep(delay)


#: Tables each resource writes, as :func:`~releaserisk.ingest.steps.after_ingest` names them.
_LOADS = {"pulls": ["pull_requests"], "deployments": ["deployments"], "workflows": ["deployments"],
          "releases": ["deployments"], "incidents": [], "issues": ["issues"]}  # fmt: skip


def _ingest_resource(
    store: Store, repo, names: _Names, resource: str, fetch: Callable, since, gh, wait, notify
) -> tuple[int, dict[str, list[str]]]:
    """Read one resource from its watermark (or ``since``) and load it in one transaction.

    Returns the rows loaded and the deployments kept as an explicit source wrote them.
    """
    from releaserisk.ingest.steps import after_ingest

    source = f"github:{names.full}:{resource}"
    start_from = since or watermark(store, source)
    started = datetime.now(UTC)
    frames, newest = _with_rate_limit(lambda: fetch(repo, start_from), gh, wait, notify)
    kept: dict[str, list[str]] = {}
    with store.transaction():
        loaded = 0
        for table, frame in frames.items():
            if table == "deployments" and len(frame):
                frame, kept = keep_explicit_deployments(store, frame)  # explicit rows win
            if len(frame):
                loaded += store.upsert(table, frame)
        if loaded:
            after_ingest(store, _LOADS[resource], repos=[names.store])
        mark = max(filter(None, [newest, start_from]), default=None)
        store.record_ingest(source, started, {"rows": loaded}, mark.isoformat() if mark else None)
    return loaded, kept


def ingest_github(
    store: Store,
    full_name: str,
    *,
    name: str | None = None,
    token: str | None = None,
    since: datetime | None = None,
    environments: Sequence[str] | None = None,
    incident_labels: Iterable[str] = ("incident",),
    bug_labels: Iterable[str] = Settings.bug_labels,
    deploy_workflows: Sequence[str] = (),
    workflow_environment: str = "production",
    release_environment: str | None = None,
    base_url: str | None = None,
    wait: bool = True,
    notify: Callable[[str], None] | None = None,
    throttle: float | None = 0.25,
    retries: int = 5,
) -> GitHubIngestResult:
    """Ingest a GitHub repository's pull requests, deployments and incidents.

    Parameters
    ----------
    store : Store
    full_name : str
        ``OWNER/REPO``.
    name : str, optional
        The repository's name in the store, on every row this writes (pull requests,
        deployments, issues) and as the service of its deployments and incidents.
        Default: ``REPO``, as ``ingest git`` names a clone after its directory; it must
        match the name the git history was ingested under, or pull requests and
        deployments cannot be joined to commits.
    token : str, optional
        API token (used for requests only; never stored or printed).
    since : datetime, optional
        Fetch nothing older (default: continue from each resource's watermark).
    environments : sequence of str, optional
        Deployment environments to read (default: all).
    incident_labels : iterable of str
        Issue labels that mark incidents.
    bug_labels : iterable of str
        Issue labels that mark bugs (default: ``Settings.bug_labels``).
    deploy_workflows : sequence of str
        Names (or file names) of Actions workflows that deploy.
    workflow_environment : str
        Environment recorded for workflow-run deployments.
    release_environment : str, optional
        Record published releases as deployments to this environment.
    base_url : str, optional
        GitHub Enterprise API URL.
    wait : bool
        Wait for the primary rate limit to reset (else stop with an error; a re-run resumes).
    notify : callable, optional
        Receives progress messages (rate-limit waits).
    throttle : float, optional
        Seconds between requests (PyGithub's politeness delay; 0 in tests).
    retries : int
        Retries for server errors and secondary rate limits.

    Returns
    -------
    GitHubIngestResult
    """
    if "/" not in full_name or full_name.count("/") != 1:
        raise InputError(f"repository must be OWNER/REPO, got {full_name!r}")
    names = _Names(full=full_name, store=full_name.split("/")[1] if name is None else name)
    if not names.store.strip():
        raise InputError("the repository name in the store (--name) cannot be empty")
    gh = _client(token, base_url, throttle, retries, wait)
    result = GitHubIngestResult(repo=full_name)
    resources: list[tuple[str, Callable]] = [
        ("pulls", lambda r, s: _pulls(r, names, s)),
        ("deployments", lambda r, s: _deployments(r, names, s, environments)),
        ("incidents", lambda r, s: _incidents(r, names, s, list(incident_labels))),
        ("issues", lambda r, s: _bug_issues(r, names, s, list(bug_labels))),
    ]
    if deploy_workflows:
        resources.append(("workflows", lambda r, s: _workflow_runs(r, names, s, deploy_workflows,
                                                                   workflow_environment)))  # fmt: skip
    if release_environment:
        resources.append(("releases", lambda r, s: _releases(r, names, s, release_environment)))
    try:
        with quiet("github"):
            repo = _with_rate_limit(lambda: gh.get_repo(full_name), gh, wait, notify)
            for resource, fetch in resources:
                loaded, kept = _ingest_resource(store, repo, names, resource, fetch, since, gh, wait, notify)
                result.counts[resource] = loaded
                for explicit, ids in kept.items():
                    result.kept.setdefault(explicit, []).extend(ids)
    except GitHubError:
        raise
    except Exception as exc:
        from github import GithubException, RateLimitExceededException

        if isinstance(exc, GithubException | RateLimitExceededException) or type(exc).__name__ in (
            "RetryError", "MaxRetryError", "ConnectionError",
        ):  # fmt: skip
            raise _translate(exc, full_name) from None
        import github

        # RecursionError: a body nested deeper than the JSON parser follows is garbage too
        garbled = ValueError | TypeError | KeyError | AttributeError | RecursionError
        if isinstance(exc, garbled) and raised_reading(exc, github, __file__):
            raise _garbage(exc, full_name) from None
        raise
    finally:
        gh.close()
    return result
