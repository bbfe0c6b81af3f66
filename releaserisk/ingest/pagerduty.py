"""PagerDuty → incidents (PagerDuty's official ``pagerduty`` client, REST API v2).

``GET /incidents`` (classic pagination, 100 a page) → ``incidents``: id
``pagerduty:<ID>``, the service (mapped to a releaserisk service by the service map,
else PagerDuty's service name), title, severity (the incident's priority, ``P1``…, else
its urgency, ``high``/``low``), opened = ``created_at``, resolved = ``resolved_at``
(``last_status_change_at`` of a resolved incident on accounts without it), and the
cause from ``root cause: <sha>`` / ``caused by deployment <id>`` in the title.

The first run reads every incident (``date_range=all``); later runs read the incidents
created since the watermark less :data:`RECHECK` — an incident opened before the last
run may have been resolved since — and re-load them (upserts by id). PagerDuty lists
at most 10,000 incidents per query: a longer listing stops with an error naming
``--since`` rather than loading a silently truncated list.

Cost: 1 call per 100 incidents (10 per 1,000), plus one for the service map check.
The API key (``$PAGERDUTY_TOKEN``) is used for requests only: never stored or printed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pandas as pd

from releaserisk.errors import InputError, PagerDutyError
from releaserisk.ingest.sources import Resource, SourceIngestResult, cause_columns, load_run, quiet, raised_reading, utc
from releaserisk.store import Store

__all__ = ["RECHECK", "ingest_pagerduty"]

#: How far back of the watermark a run looks again for incidents resolved since.
RECHECK = timedelta(days=14)
_MAX_RANGE = timedelta(days=180)  # since..until may span at most 6 months
_TRANSIENT = (500, 502, 503, 504)


def _service(incident: dict, service_map: Mapping[str, str]) -> str | None:
    service = incident.get("service") or {}
    for key in (service.get("id"), service.get("summary")):
        if key is not None and key in service_map:
            return service_map[key]
    return service.get("summary")


def _resolved_at(incident: dict):
    if incident.get("resolved_at"):
        return utc(incident["resolved_at"])
    if incident.get("status") == "resolved":
        return utc(incident.get("last_status_change_at"))
    return None


class _Garbage(Exception):
    """An answer that is not the JSON PagerDuty documents, or a listing PagerDuty cut short."""


def _listing(client, since: datetime | None) -> Iterator[dict]:
    if since is None or datetime.now(UTC) - since > _MAX_RANGE:
        params = {"date_range": "all"}
    else:
        params = {"since": since.isoformat(), "until": datetime.now(UTC).isoformat()}
    with warnings.catch_warnings():
        # the client warns (and stops) when a listing lacks "more" or passes 10,000 items:
        # a truncated list must not be loaded as if it were whole
        warnings.simplefilter("error", UserWarning)
        try:
            for item in client.iter_all("incidents", params=params):
                if not isinstance(item, dict):
                    raise _Garbage("an incident that is not an object")
                yield item
        except UserWarning as warning:
            raise _Garbage(str(warning)) from None


def _incidents(client, since: datetime | None, service_map: Mapping[str, str]):
    start = since - RECHECK if since else None
    rows, newest = [], None
    for incident in _listing(client, start):
        created = utc(incident["created_at"])
        newest = max(filter(None, [newest, created]), default=None)
        priority = (incident.get("priority") or {}).get("summary")
        rows.append({
            "incident_id": f"pagerduty:{incident['id']}", "service": _service(incident, service_map),
            "title": incident.get("title") or incident.get("summary"),
            "severity": priority or incident.get("urgency"), "opened_at": created,
            "resolved_at": _resolved_at(incident), **cause_columns(incident.get("title")), "source": "pagerduty",
        })  # fmt: skip
    return {"incidents": pd.DataFrame(rows)}, newest


def _client(token: str, base_url: str | None, wait: bool, retries: int, transport=None):
    import pagerduty

    kwargs = {"transport": transport} if transport is not None else {}
    client = pagerduty.RestApiV2Client(token, base_url=base_url, **kwargs)
    client.retry = dict.fromkeys(_TRANSIENT, retries)  # 5xx: retry with the client's backoff
    client.max_http_attempts = retries + 1
    if not wait:
        client.retry[429] = 1  # one more try, then stop (the client otherwise retries 429 forever)
    return client


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _translate(exc: BaseException) -> PagerDutyError:
    """One-line, token-free messages (the client's own messages quote part of the key)."""
    code = _status(exc)
    if code == 401:
        return PagerDutyError("PagerDuty rejected the API key (401): set PAGERDUTY_TOKEN to a valid REST API key")
    if code == 403:
        return PagerDutyError("permission denied (403) reading PagerDuty incidents: the key needs read access")
    if code == 404:
        return PagerDutyError("PagerDuty answered 404 Not Found: check --base-url (EU accounts: api.eu.pagerduty.com)")
    if code == 429:
        return PagerDutyError("PagerDuty rate limit reached; re-run later to resume")
    if isinstance(exc, _Garbage) and "10000" in str(exc).replace(",", ""):
        return PagerDutyError("more than 10,000 incidents in one listing (PagerDuty's limit): read them in "
                              "windows with --since, oldest first")  # fmt: skip
    if isinstance(exc, _Garbage | KeyError | TypeError) or (code and code < 300):
        return PagerDutyError(
            "PagerDuty's answer is not the JSON its API documents (an HTML error or proxy page?): "
            "check --base-url and the network, then re-run"
        )
    if code and code >= 500:
        return PagerDutyError(f"PagerDuty server error ({code}) after retries; try again later")
    if code:
        return PagerDutyError(f"PagerDuty request failed with status {code}")
    return PagerDutyError(f"cannot reach PagerDuty: {type(exc).__name__}")


def _from_pagerduty(exc: BaseException) -> bool:
    import pagerduty

    if isinstance(exc, pagerduty.Error | _Garbage):
        return True
    name = type(exc).__module__.split(".")[0]
    if name in ("httpx", "httpx2", "httpcore"):  # transport errors: no connection, timeouts
        return True
    return isinstance(exc, KeyError | TypeError) and raised_reading(exc, pagerduty, __file__)


def ingest_pagerduty(
    store: Store,
    *,
    token: str | None = None,
    since: datetime | None = None,
    service_map: Mapping[str, str] | None = None,
    base_url: str | None = None,
    wait: bool = True,
    retries: int = 3,
    transport=None,
) -> SourceIngestResult:
    """Ingest PagerDuty incidents with their service, urgency or priority, opening and resolution.

    Parameters
    ----------
    store : Store
    token : str, optional
        REST API key (default ``$PAGERDUTY_TOKEN``; used for requests only, never stored or printed).
    since : datetime, optional
        Read incidents created since (default: continue from the watermark; first run: all).
    service_map : mapping, optional
        PagerDuty service id or name → releaserisk service
        (:func:`~releaserisk.ingest.sources.read_service_map`).
        Unmapped services keep PagerDuty's service name.
    base_url : str, optional
        API URL (default ``https://api.pagerduty.com``; EU: ``https://api.eu.pagerduty.com``).
    wait : bool
        Wait out rate limits (else stop after one retry; a re-run resumes).
    retries : int
        Retries of server errors.
    transport : httpx transport, optional
        For replaying recorded responses in tests.

    Returns
    -------
    SourceIngestResult

    Raises
    ------
    InputError
        No API key.
    PagerDutyError
        401, 403, 404, server errors after retries, a rate limit without ``wait``, a body
        that is not PagerDuty's JSON, or a listing cut at 10,000; the store is unchanged.
    """
    token = token if token is not None else os.environ.get("PAGERDUTY_TOKEN")
    if not token:
        raise InputError("no PagerDuty API key: set PAGERDUTY_TOKEN")
    mapping = dict(service_map or {})
    client = _client(token, base_url, wait, retries, transport)
    calls = []
    client.event_hooks["response"].append(calls.append)
    result = SourceIngestResult("PagerDuty", base_url or "api.pagerduty.com")
    resources = [Resource("incidents", [], lambda s: _incidents(client, s, mapping))]
    try:
        with quiet("pagerduty"):
            load_run(store, "pagerduty", resources, since, result, is_rate_limit=lambda exc: _status(exc) == 429)
    except Exception as exc:
        if not _from_pagerduty(exc):
            raise
        raise _translate(exc) from None
    finally:
        result.calls = len(calls)
        client.close()
    return result
