"""Feature-flag change logs: LaunchDarkly, Unleash and Flagsmith audit logs, and a generic CSV.

Every format becomes rows of ``flag_changes`` (DESIGN §3): ``change_id, flag_key,
environment, service, action, from_state, to_state, actor, owner, changed_at, source``, with
``action`` one of :data:`~releaserisk.ingest.schemas.FLAG_ACTIONS` and states ``on``,
``off`` or a rollout share ``NN%`` (users served the flag's new variation). The rows go
through the same strict validation as every other file kind (kind ``flags``), then one
transaction upserts them on ``(source, change_id)``: a bad file loads nothing and loading
the same file again changes nothing.

Vendor shapes, from each vendor's public API reference:

* **LaunchDarkly** ``GET /api/v2/auditlog`` (and ``/auditlog/{id}``): ``items`` of entries
  with ``_id``, ``date`` (Unix epoch **milliseconds**), ``kind`` (``flag``), ``accesses``
  (``action`` such as ``updateOn``, ``updateFallthrough``, ``updateRules``,
  ``createFlag``, ``updateGlobalArchived``, on a resource
  ``proj/P:env/E:flag/KEY``), ``titleVerb`` (``turned on the flag``), ``member``,
  ``target`` and, in the detailed representation, ``previousVersion``/``currentVersion``
  (the flag: ``environments.E.on``, ``environments.E.fallthrough.rollout``,
  ``_maintainer``).
* **Unleash** ``GET /api/admin/events`` (``{"version": 1, "events": [...]}``; the event
  search returns ``{"events": [...], "total": n}``): ``id``, ``type``
  (``feature-environment-enabled``/``-disabled``, ``feature-strategy-add``/``-update``/
  ``-remove``, ``feature-created``, ``feature-archived``), ``featureName``,
  ``environment``, ``createdBy``, ``createdAt`` and the strategy in ``data``/``preData``
  (``parameters.rollout`` of ``flexibleRollout``, ``parameters.percentage`` of
  ``gradualRollout*``).
* **Flagsmith** ``GET /api/v1/audit/`` (``{"count", "next", "previous", "results"}``):
  ``id``, ``created_date``, ``log`` (``New Flag / Remote Config created: KEY``, ``Flag
  state / Remote Config value updated for feature: KEY``, …), ``author``,
  ``environment.name``, ``related_object_type`` and, in the detailed representation
  (``/audit/{id}/``), ``change_details`` (``[{"field": "enabled", "old": false, "new":
  true}]``). Without ``change_details`` a feature-state update cannot be told on from off
  and is read as a targeting change: export the detailed entries to see kill switches.
* **csv**: the columns of kind ``flags`` in :data:`~releaserisk.ingest.schemas.SCHEMAS`,
  as CSV, JSON or Parquet (README "Feature flags").

A dump may be one page, a JSON array of pages (a paginated export), JSON lines of pages,
or a bare array of entries. Entries that change no flag state (a renamed flag, a segment,
another resource kind) are skipped and counted. Vendors that record no maintainer give the
flag's creator as its owner. Actors are e-mail addresses or names, never API tokens.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from releaserisk.choices import FLAG_FORMATS
from releaserisk.config import Settings
from releaserisk.errors import InputError
from releaserisk.ingest.tabular import read_table, validate
from releaserisk.store import Store

__all__ = ["FLAG_FORMATS", "FlagIngestResult", "assign_flag_services", "ingest_flags", "parse_flag_log"]

_COLUMNS = ["change_id", "flag_key", "environment", "action", "from_state", "to_state", "actor", "owner", "changed_at"]


@dataclass(frozen=True)
class FlagIngestResult:
    """What one flag-log load did.

    Attributes
    ----------
    source : str
        The ``source`` of the rows (``launchdarkly``, ``unleash``, ``flagsmith`` or the CSV's).
    loaded : int
        Flag changes upserted.
    skipped : int
        Entries that change no flag state (other resources, renames, descriptions).
    unmapped : int
        Loaded changes of flags no service claims (see ``Settings.flag_service_pattern``).
    """

    source: str
    loaded: int
    skipped: int
    unmapped: int

    def summary(self) -> str:
        """One line for people."""
        text = f"{self.loaded} flag change(s) from {self.source}, {self.skipped} other entries skipped"
        if self.unmapped:
            text += f"; {self.unmapped} belong to no service (set services.flag_prefix or flag_service_pattern)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {"source": self.source, "loaded": self.loaded, "skipped": self.skipped, "unmapped": self.unmapped}


# -- reading dumps ----------------------------------------------------------------------
def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:  # JSON lines: one page (or entry) per line
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON or JSON lines ({exc.msg} at line {exc.lineno})") from None


def _entries(data: Any, list_key: str, where: str) -> Iterator[dict]:
    """The entries of one page, a list of pages, or a bare list of entries."""
    pages = data if isinstance(data, list) else [data]
    for number, page in enumerate(pages, 1):
        if isinstance(page, dict) and list_key in page:
            items = page[list_key]
            if not isinstance(items, list):
                raise InputError(f"{where}: page {number}: '{list_key}' is not a list")
            for item in items:
                if not isinstance(item, dict):
                    raise InputError(f"{where}: page {number}: an entry of '{list_key}' is not an object")
                yield item
        elif isinstance(page, dict) and isinstance(data, list):
            yield page  # a bare array of entries
        else:
            raise InputError(f"{where}: expected a page with '{list_key}' (or a list of pages or entries)")


def _name(person: Any) -> str | None:
    """An actor's e-mail or name (API tokens are never kept)."""
    if isinstance(person, dict):
        return person.get("email") or " ".join(filter(None, [person.get("firstName"), person.get("lastName")])) or None
    return person if isinstance(person, str) and person else None


def _percent(value: Any) -> str | None:
    try:
        return f"{float(value):g}%"
    except (TypeError, ValueError):
        return None


# -- LaunchDarkly -----------------------------------------------------------------------
_LD_RESOURCE = re.compile(r"(?:^|:)env/(?P<env>[^:;]+)(?:;[^:]*)?:flag/(?P<flag>[^:;]+)")
_LD_FLAG = re.compile(r"(?:^|:)flag/(?P<flag>[^:;]+)")
_LD_ACTIONS = {
    "createFlag": "created", "cloneFlag": "created", "updateOn": "toggle",
    "updateFallthrough": "fallthrough", "updateFallthroughVariationOrRollout": "fallthrough",
    "updateRules": "targeting", "updateTargets": "targeting", "updatePrerequisites": "targeting",
    "updateOffVariation": "targeting", "updateGlobalArchived": "archived", "deleteFlag": "archived",
}  # fmt: skip


def _ld_env(version: Any, env: str | None) -> dict:
    if not isinstance(version, dict) or not env:
        return {}
    found = (version.get("environments") or {}).get(env)
    return found if isinstance(found, dict) else {}


def _ld_rollout(env_state: dict) -> str | None:
    """Share of users served variation 0 (``true`` of a boolean flag) by the default rule."""
    fallthrough = env_state.get("fallthrough") or {}
    rollout = fallthrough.get("rollout")
    if isinstance(rollout, dict):
        weights = {v.get("variation"): v.get("weight", 0) for v in rollout.get("variations") or []}
        return _percent(weights.get(0, 0) / 1000)  # weights are thousandths of a percent
    if "variation" in fallthrough:
        return "100%" if fallthrough["variation"] == 0 else "0%"
    return None


def _ld_rows(entry: dict) -> list[dict]:
    if entry.get("kind") != "flag":
        return []
    maintainer = (entry.get("currentVersion") or {}).get("_maintainer") or {}
    base = {
        "actor": _name(entry.get("member")) or ("API access token" if entry.get("token") else None),
        "owner": _name(maintainer) if maintainer else None,
        "changed_at": _epoch_ms(entry.get("date")),
    }
    rows, seen = [], set()
    verb = str(entry.get("titleVerb") or "").lower()
    resources = [(a.get("action"), a.get("resource", "")) for a in entry.get("accesses") or []]
    resources = resources or [(None, r) for r in (entry.get("target") or {}).get("resources") or []]
    for action, resource in resources:
        kind = _LD_ACTIONS.get(action or "")
        if kind is None and action is None:  # no accesses: read the verb
            kind = "toggle" if ("turned on" in verb or "turned off" in verb) else None
        match = _LD_RESOURCE.search(resource) or _LD_FLAG.search(resource)
        if kind is None or match is None:
            continue
        env = match.groupdict().get("env")
        before, after = _ld_env(entry.get("previousVersion"), env), _ld_env(entry.get("currentVersion"), env)
        row = {"flag_key": match.group("flag"), "environment": env, **base}
        if kind == "toggle":
            on = after.get("on") if "on" in after else ("turned on" in verb if "turned" in verb else None)
            if on is None:
                continue
            row.update(action="on" if on else "off", to_state="on" if on else "off")
            row["from_state"] = ("on" if before["on"] else "off") if "on" in before else None
        elif kind == "fallthrough":
            to_state = _ld_rollout(after)
            row.update(action="rollout" if to_state else "targeting", from_state=_ld_rollout(before), to_state=to_state)
        else:
            row.update(action=kind, from_state=None, to_state=None)
            row["environment"] = env if kind == "targeting" else None
        key = (row["flag_key"], row["environment"], row["action"])
        if key not in seen:
            seen.add(key)
            rows.append({"change_id": f"{entry.get('_id')}:{row['environment'] or '*'}:{row['action']}", **row})
    return rows


def _epoch_ms(value: Any) -> Any:
    """LaunchDarkly dates are Unix epoch milliseconds; anything else is left for validation."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC).isoformat()
    return value


# -- Unleash ----------------------------------------------------------------------------
def _unleash_share(strategy: Any) -> str | None:
    if not isinstance(strategy, dict):
        return None
    parameters = strategy.get("parameters") or {}
    for name in ("rollout", "percentage"):
        if name in parameters:
            return _percent(parameters[name])
    return None


def _unleash_rows(entry: dict) -> list[dict]:
    kind = entry.get("type", "")
    flag = entry.get("featureName")
    if not flag:
        return []
    row = {
        "change_id": str(entry.get("id")),
        "flag_key": flag,
        "environment": entry.get("environment"),
        "actor": _name(entry.get("createdBy")),
        "owner": None,
        "changed_at": entry.get("createdAt"),
        "from_state": None,
        "to_state": None,
    }
    if kind == "feature-environment-enabled":
        row.update(action="on", from_state="off", to_state="on")
    elif kind == "feature-environment-disabled":
        row.update(action="off", from_state="on", to_state="off")
    elif kind in ("feature-strategy-add", "feature-strategy-update"):
        to_state = _unleash_share(entry.get("data"))
        from_state = _unleash_share(entry.get("preData"))
        row.update(action="rollout" if to_state else "targeting", from_state=from_state, to_state=to_state)
    elif kind == "feature-strategy-remove":
        row.update(action="targeting")
    elif kind == "feature-created":
        row.update(action="created", environment=None, owner=row["actor"])
    elif kind in ("feature-archived", "feature-deleted"):
        row.update(action="archived", environment=None)
    else:
        return []
    return [row]


# -- Flagsmith --------------------------------------------------------------------------
_FS_LOG = (
    (re.compile(r"^New Flag / Remote Config created: (?P<flag>\S+)"), "created"),
    (re.compile(r"^Flag / Remote Config Deleted: (?P<flag>\S+)", re.IGNORECASE), "archived"),
    (re.compile(r"^Segment rules updated for flag: (?P<flag>\S+)"), "targeting"),
    (re.compile(r"updated for feature '(?P<flag>[^']+)' and (?:identity|segment) "), "targeting"),
    (re.compile(r"deleted for feature '(?P<flag>[^']+)' and (?:identity|segment) "), "targeting"),
    (re.compile(r"^Flag state / Remote Config value updated for feature: (?P<flag>\S+)", re.IGNORECASE), "state"),
    (re.compile(r"went live for feature: (?P<flag>\S+) by Change Request"), "state"),
)


def _flagsmith_rows(entry: dict) -> list[dict]:
    log = str(entry.get("log") or "")
    found = next(((m, kind) for pattern, kind in _FS_LOG if (m := pattern.search(log))), None)
    if found is None:
        return []
    match, kind = found
    environment = entry.get("environment")
    row = {
        "change_id": str(entry.get("id")),
        "flag_key": match.group("flag"),
        "environment": environment.get("name") if isinstance(environment, dict) else environment,
        "actor": _name(entry.get("author")),
        "owner": None,
        "changed_at": entry.get("created_date"),
        "from_state": None,
        "to_state": None,
        "action": kind,
    }
    if kind == "state":
        changes = {c.get("field"): c for c in entry.get("change_details") or [] if isinstance(c, dict)}
        enabled = changes.get("enabled")
        if enabled is not None and enabled.get("new") is not None:
            state = "on" if enabled["new"] else "off"
            row.update(action=state, to_state=state)
            if enabled.get("old") is not None:
                row["from_state"] = "on" if enabled["old"] else "off"
        else:
            row["action"] = "targeting"
    elif kind in ("created", "archived"):
        row["environment"] = None
        if kind == "created":
            row["owner"] = row["actor"]
    return [row]


#: format -> (source name, list key of a page, entry parser)
_VENDORS: dict[str, tuple[str, str, Callable[[dict], list[dict]]]] = {
    "launchdarkly": ("launchdarkly", "items", _ld_rows),
    "unleash": ("unleash", "events", _unleash_rows),
    "flagsmith": ("flagsmith", "results", _flagsmith_rows),
}


def parse_flag_log(path: str | os.PathLike[str], fmt: str) -> tuple[pd.DataFrame, int]:
    """Read a vendor's flag audit log (or the generic file) into validated ``flag_changes`` rows.

    Parameters
    ----------
    path : path-like
        A JSON dump (vendor formats) or a CSV/JSON/Parquet file (``csv``).
    fmt : {"launchdarkly", "unleash", "flagsmith", "csv"}
        The file's format (:data:`FLAG_FORMATS`).

    Returns
    -------
    rows : DataFrame
        Validated rows with the columns of kind ``flags`` and ``source`` filled in.
    skipped : int
        Entries that changed no flag state.

    Raises
    ------
    InputError
        Unknown format, unreadable file, wrong shape, or a value validation refuses (the
        message names the file and the entry or row).
    """
    file = Path(path)
    if fmt == "csv":
        frame = validate(read_table(file), "flags", str(file))
        frame["source"] = frame["source"].fillna("csv") if "source" in frame else "csv"
        return frame, 0
    if fmt not in _VENDORS:
        raise InputError(f"unknown flag log format '{fmt}' (use {', '.join(FLAG_FORMATS)})")
    source, list_key, parse = _VENDORS[fmt]
    rows, skipped = [], 0
    for number, entry in enumerate(_entries(_load_json(file), list_key, str(file)), 1):
        try:
            parsed = parse(entry)
        except (AttributeError, TypeError, ValueError) as exc:
            raise InputError(f"{file}: entry {number} is not a {fmt} audit-log entry ({exc})") from None
        rows.extend(parsed)
        skipped += not parsed
    frame = pd.DataFrame(rows, columns=_COLUMNS, dtype=object)
    frame = validate(frame, "flags", f"{file} ({fmt} entries)")
    frame["source"] = source
    return frame, skipped


def assign_flag_services(store: Store, settings: Settings | None = None) -> int:
    """Give flag changes without a service the service that claims their key.

    A ``services.flag_prefix`` that the key starts with wins (the longest one); else the
    group ``service`` of ``Settings.flag_service_pattern``. A service named in the flag
    log itself is never replaced.

    Parameters
    ----------
    store : Store
    settings : Settings, optional

    Returns
    -------
    int
        Flag changes still without a service.
    """
    settings = settings or Settings()
    store.execute(
        """
        UPDATE flag_changes f SET service = m.service
        FROM (
            SELECT f.source, f.change_id, arg_max(s.service, length(s.flag_prefix)) AS service
            FROM flag_changes f JOIN services s ON starts_with(f.flag_key, s.flag_prefix)
            WHERE f.service IS NULL AND s.flag_prefix IS NOT NULL AND s.flag_prefix <> ''
            GROUP BY ALL
        ) m
        WHERE f.source = m.source AND f.change_id = m.change_id
        """
    )
    if settings.flag_service_pattern:
        group = re.compile(settings.flag_service_pattern).groupindex["service"]
        store.execute(
            "UPDATE flag_changes SET service = nullif(regexp_extract(flag_key, ?, ?), '') WHERE service IS NULL",
            [settings.flag_service_pattern, group],
        )
    return store.execute("SELECT count(*) FROM flag_changes WHERE service IS NULL").fetchone()[0]


def ingest_flags(
    store: Store, path: str | os.PathLike[str], fmt: str, *, settings: Settings | None = None
) -> FlagIngestResult:
    """Validate a whole flag log, then upsert it and map its flags to services, in one transaction.

    Parameters
    ----------
    store : Store
    path : path-like
        The dump (see the module docstring for each format's shape).
    fmt : {"launchdarkly", "unleash", "flagsmith", "csv"}
    settings : Settings, optional
        For ``flag_service_pattern``.

    Returns
    -------
    FlagIngestResult

    Raises
    ------
    InputError
        The file is refused; nothing is loaded.
    """
    frame, skipped = parse_flag_log(path, fmt)
    started = datetime.now(UTC)
    source = str(frame["source"].iloc[0]) if len(frame) else fmt
    with store.transaction():
        loaded = store.upsert("flag_changes", frame) if len(frame) else 0
        assign_flag_services(store, settings)
        unmapped = store.execute(
            "SELECT count(*) FROM flag_changes WHERE source = ? AND list_contains(?, change_id) AND service IS NULL",
            [source, frame["change_id"].tolist()],
        ).fetchone()[0]
        store.record_ingest(f"flags:{Path(path).name}", started, {"rows": loaded, "skipped": skipped})
    return FlagIngestResult(source, loaded, skipped, unmapped)
