"""Jira → bug issues or incidents (the ``jira`` package, REST API v2).

A JQL query chooses the issues; ``as_`` says what they are:

``issues``
    Rows of ``issues`` under the key commit messages cite (``PROJ-123``), one per
    repository whose commits may cite them, with the issue type and labels as labels
    (a ``Bug`` is a bug by ``Settings.bug_labels``): their fixes become FIX commits and
    SZZ candidates younger than the issue are dropped.
``incidents``
    Rows of ``incidents``: id ``jira:PROJ-123``, opened = ``created``, resolved =
    ``resolutiondate``, severity from a configured field (a custom "Severity" field)
    else the priority, service from a configured field else the first component; the
    cause from ``root cause: <sha>`` / ``caused by deployment <id>`` in the summary.

Incremental runs add ``updated >= <watermark less a day>`` to the query (JQL reads
times in the user's time zone, so a day of slack covers any offset) and re-load what
changed (upserts by key). Jira Cloud pages with ``nextPageToken`` (``/search/jql``),
Jira Server/Data Center with ``startAt`` (``/search``); the client retries 429 and 5xx.

Cost: 1 call per 100 issues (10 per 1,000 issues or incidents), plus 2 per run
(server info, field names); the run's result does not count them (the client's session
is private).
The token is used for requests only: never stored or printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta

import pandas as pd

from releaserisk.choices import JIRA_KINDS
from releaserisk.config import Settings
from releaserisk.errors import InputError, JiraError
from releaserisk.ingest.sources import Resource, SourceIngestResult, cause_columns, load_run, quiet, raised_reading, utc
from releaserisk.store import Store

__all__ = ["JIRA_KINDS", "ingest_jira"]

_SLACK = timedelta(days=1)
_PAGE = 100
_ORDER_BY = re.compile(r"\s+ORDER\s+BY\s+.*$", re.IGNORECASE | re.DOTALL)


def _jql(query: str, since: datetime | None) -> str:
    """The user's query, restricted to issues updated since the watermark, oldest update first."""
    base = _ORDER_BY.sub("", query.strip())
    if since is not None:
        base = f'({base}) AND updated >= "{(since - _SLACK):%Y/%m/%d %H:%M}"'
    return f"{base} ORDER BY updated ASC"


def _search(client, jql: str, fields: list[str]) -> Iterator[dict]:
    """Every issue of a JQL search: Cloud's token pages or Server's offset pages."""
    if getattr(client, "deploymentType", None) == "Cloud":
        token = None
        while True:
            page = client.enhanced_search_issues(jql, nextPageToken=token, maxResults=_PAGE, fields=list(fields),
                                                 json_result=True)  # fmt: skip
            yield from _issues_of(page)
            token = page.get("nextPageToken")
            if not token or page.get("isLast", True):
                return
    start = 0
    while True:
        page = client.search_issues(jql, startAt=start, maxResults=_PAGE, fields=list(fields), json_result=True)
        issues = _issues_of(page)
        yield from issues
        start += len(issues)
        if not issues or start >= int(page.get("total", 0)):
            return


def _issues_of(page) -> list[dict]:
    if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
        raise _Garbage("a search page without an issues list")
    return page["issues"]


class _Garbage(Exception):
    """An answer that is not the JSON Jira documents."""


def _name(value) -> str | None:
    """A field's display value: option ``value``, object ``name``, or the text itself."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return value.get("value") or value.get("name")
    return value if isinstance(value, str) else None


def _read(client, query: str, since, as_: str, repos: list[str], severity_field, service_field, service_map):
    fields = ["summary", "issuetype", "labels", "priority", "created", "updated", "resolutiondate", "components"]
    fields += [f for f in (severity_field, service_field) if f]
    rows, newest = [], None
    for issue in _search(client, _jql(query, since), fields):
        values = issue.get("fields") or {}
        key = issue["key"]
        newest = max(filter(None, [newest, utc(values.get("updated"))]), default=None)
        if as_ == "issues":
            labels = [t for t in [_name(values.get("issuetype"))] if t] + list(values.get("labels") or [])
            rows += [{"repo": repo, "issue": key, "title": values.get("summary"), "labels": labels,
                      "opened_at": utc(values.get("created")), "closed_at": utc(values.get("resolutiondate")),
                      "source": "jira"} for repo in repos]  # fmt: skip
            continue
        service = _name(values.get(service_field)) if service_field else _name(values.get("components"))
        severity = _name(values.get(severity_field)) if severity_field else None
        rows.append({
            "incident_id": f"jira:{key}", "service": service_map.get(service, service) if service else None,
            "title": values.get("summary"),
            "severity": severity or _name(values.get("priority")),
            "opened_at": utc(values.get("created")), "resolved_at": utc(values.get("resolutiondate")),
            **cause_columns(values.get("summary")), "source": "jira",
        })  # fmt: skip
    return {as_: pd.DataFrame(rows)}, newest


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)


def _translate(exc: BaseException, server: str) -> JiraError:
    code = _status(exc)
    if code == 401:
        return JiraError(f"Jira at {server} rejected the credentials (401): set JIRA_EMAIL and JIRA_TOKEN")
    if code == 403:
        return JiraError(f"permission denied (403) by Jira at {server}: the account needs browse permission")
    if code == 404:
        return JiraError(f"Jira answered 404 Not Found at {server}: check --server (the site URL, without /rest)")
    if code == 400:
        return JiraError(f"Jira refused the query (400): check the JQL ({_first_line(exc)})")
    if code == 429:
        return JiraError(f"Jira rate limit reached at {server}; re-run later to resume")
    if code and code >= 500:
        return JiraError(f"Jira server error ({code}) at {server} after retries; try again later")
    if isinstance(exc, _Garbage | ValueError | KeyError | TypeError) or (code and code < 300):
        return JiraError(
            f"Jira's answer at {server} is not the JSON its API documents (an HTML sign-in or proxy page?): "
            "check --server and the network, then re-run"
        )
    if code:
        return JiraError(f"Jira request failed with status {code} at {server}")
    return JiraError(f"cannot reach Jira at {server}: {type(exc).__name__}")


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "text", None) or ""
    return (text.strip().splitlines() or ["no detail"])[0][:200]


def _from_jira(exc: BaseException) -> bool:
    import jira
    import requests

    if isinstance(exc, jira.JIRAError | requests.RequestException | _Garbage):
        return True
    # an answer that is not JSON or lacks a field
    return isinstance(exc, ValueError | KeyError | TypeError) and raised_reading(exc, jira, __file__)


def _client(server: str, email: str | None, token: str | None, retries: int):
    from jira import JIRA

    # Cloud: e-mail + API token (basic); Server/Data Center: a personal access token (bearer)
    auth = {"basic_auth": (email, token)} if email and token else {"token_auth": token} if token else {}
    return JIRA(server, max_retries=retries, get_server_info=True, timeout=60, **auth)


def ingest_jira(
    store: Store,
    server: str,
    jql: str,
    *,
    as_: str = "issues",
    email: str | None = None,
    token: str | None = None,
    since: datetime | None = None,
    repos: Iterable[str] | None = None,
    severity_field: str | None = None,
    service_field: str | None = None,
    service_map: Mapping[str, str] | None = None,
    bug_labels: Iterable[str] = Settings.bug_labels,
    wait: bool = True,
    retries: int = 3,
) -> SourceIngestResult:
    """Ingest the issues a JQL query finds as bug issues or as incidents.

    Parameters
    ----------
    store : Store
    server : str
        The Jira site (``https://acme.atlassian.net``).
    jql : str
        The query (``project = SHOP AND issuetype = Bug``); an ORDER BY is replaced.
    as_ : {"issues", "incidents"}
        What the issues are (:data:`JIRA_KINDS`).
    email, token : str, optional
        Jira Cloud: account e-mail and API token; Server/Data Center: a personal access
        token alone (defaults ``$JIRA_EMAIL``, ``$JIRA_TOKEN``; never stored or printed).
    since : datetime, optional
        Read issues updated since (default: continue from the watermark).
    repos : iterable of str, optional
        With ``issues``: the repositories whose commits cite them (default: all in the store).
    severity_field, service_field : str, optional
        With ``incidents``: field ids (``customfield_10050``) holding severity and service
        (defaults: the priority, the first component).
    service_map : mapping, optional
        Jira service (component) name → releaserisk service.
    bug_labels : iterable of str
        Labels that mark bugs, for the FIX metric.
    wait : bool
        Retry rate limits (else stop at the first 429; a re-run resumes).
    retries : int
        Retries of 429 and 5xx answers.

    Returns
    -------
    SourceIngestResult

    Raises
    ------
    InputError
        An unknown ``as_``, an empty query, or issues for a store without repositories.
    JiraError
        401, 403, 404, a refused query, server errors after retries, a rate limit, or an
        answer that is not Jira's JSON; the store is unchanged.
    """
    if as_ not in JIRA_KINDS:
        raise InputError(f"--as must be one of {', '.join(JIRA_KINDS)}, got {as_!r}")
    if not jql.strip():
        raise InputError("the JQL query is empty")
    targets = list(repos) if repos is not None else store.query("SELECT repo FROM repos ORDER BY repo")["repo"].tolist()
    if as_ == "issues" and not targets:
        raise InputError("no repository to attach Jira issues to: ingest git first, or pass --repo")
    email = email if email is not None else os.environ.get("JIRA_EMAIL")
    token = token if token is not None else os.environ.get("JIRA_TOKEN")
    server = server.rstrip("/")
    result = SourceIngestResult("Jira", server)
    client = None
    try:
        with quiet("jira"):
            client = _client(server, email, token, retries if wait else 0)
            resources = [Resource(as_, [as_] if as_ == "issues" else [], lambda s: _read(
                client, jql, s, as_, targets, severity_field, service_field, dict(service_map or {})))]  # fmt: skip
            load_run(store, f"jira:{server}:{jql}", resources, since, result, is_rate_limit=lambda e: _status(e) == 429,
                     repos=targets, bug_labels=bug_labels)  # fmt: skip
    except Exception as exc:
        if not _from_jira(exc):
            raise
        raise _translate(exc, server) from None
    finally:
        if client is not None:
            client.close()
    return result
