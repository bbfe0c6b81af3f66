"""A whole organisation: many repositories ingested in parallel into a lake.

Each repository is one task: git history with change metrics, SZZ labels and (when
configured) release tags as deployments — the same functions as ``ingest git``, ``label``
and ``ingest git-tags`` — run in a working store of its own, which is then written as
that repository's shards of the lake (:mod:`releaserisk.lake`). Tasks are independent, so
they fan out on ``dask.distributed`` (Rocklin, "Dask: Parallel Computation with Blocked
algorithms and Task Scheduling", SciPy 2015): a ``LocalCluster`` of worker processes on one
machine, or any scheduler's cluster. The coordinator is the lake's only writer of its
manifest: it commits each repository's shards as that repository's task completes, so a
stopped run keeps what finished and the next run does the rest.

A task resumes from its repository's shards (change-metric state, labels and watermarks
are rows like any other), so every run is incremental; a repository whose refs, manifest
entry and settings have not changed since its last successful run is not run at all.

The manifest (TOML; paths relative to its folder)::

    lake = "lake"                 # optional: where the lake is (--lake overrides)
    clones = "clones"             # optional: where repositories given by url are cloned

    [defaults]                    # optional: any per-repository key below
    rev = ["HEAD"]
    labels = true
    tags = false                  # true: final version tags; "release-*": a glob; false: none
    environment = "production"    # of the deployments recorded from tags

    [scan]                        # optional: every git repository directly under a folder
    path = "/srv/git"

    [[repos]]
    name = "payments"             # default: the folder (or URL) name
    path = "repos/payments"       # or: url = "https://git.example.com/payments.git"
    rev = ["main", "stable"]
    tags = "v*"
    services = [{ service = "payments-api", path_prefix = "api/", team = "payments" }]
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import resource
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from releaserisk import __version__
from releaserisk.config import Settings, read_toml
from releaserisk.errors import GitError, InputError, LakeError, ReleaseRiskError
from releaserisk.gitcmd import git_text, run_git
from releaserisk.lake import (
    CompactionResult,
    Lake,
    LakeManifest,
    compact_lake,
    generation_id,
    load_repository,
    write_shards,
)
from releaserisk.resources import usable_cores
from releaserisk.store import open_store

__all__ = [
    "OrgIngestResult",
    "OrgManifest",
    "RepoOutcome",
    "RepoSpec",
    "ingest_org",
    "read_org_manifest",
]

#: How long to try to reach a ``--scheduler`` before giving up.
SCHEDULER_TIMEOUT = "10s"
#: ``ingest org`` compacts the lake when a table has this many per-repository shards: each
#: query pays a file open and a footer per shard, which on hundreds of small shards costs
#: more than the rows (the small-files problem that Delta Lake's auto compaction and
#: Iceberg's ``rewrite_data_files`` address the same way).
AUTO_COMPACT_SHARDS = 64
#: A LocalCluster's start leaves a core idle: the coordinator runs tasks meanwhile, while
#: more than this many tasks per worker remain.
HEAD_START_AFTER = 2
#: Threads that ask git for the repositories' refs while planning a run.
FINGERPRINT_THREADS = 4
_TOP_KEYS = {"lake", "clones", "defaults", "scan", "repos"}
_REPO_KEYS = {"name", "path", "url", "rev", "labels", "tags", "environment", "services"}
_DEFAULT_KEYS = _REPO_KEYS - {"name", "path", "url", "services"}
_SCAN_KEYS = {"path"}
_SERVICE_KEYS = {"service", "path_prefix", "team"}


@dataclass(frozen=True)
class RepoSpec:
    """One repository of an organisation manifest.

    Attributes
    ----------
    name : str
        Its name in the store (the ``repo`` column).
    path : str or None
        A local clone (work tree or bare, full history).
    url : str or None
        Or a clone URL: cloned (``--mirror``) into the manifest's clones folder, fetched on
        later runs.
    rev : tuple of str
        Revisions whose history is ingested (as ``ingest git --rev``).
    labels : bool
        Run SZZ labelling after the ingest.
    tags : bool
        Record release tags as deployments (as ``ingest git-tags``).
    tag_pattern : str or None
        Glob over tag names (None: final version tags).
    environment : str
        Environment of the deployments recorded from tags.
    services : tuple of tuple
        ``(service, path_prefix, team)`` rows for the ``services`` table; the first one
        is the service tags deploy (default: the repository's name).
    """

    name: str
    path: str | None = None
    url: str | None = None
    rev: tuple[str, ...] = ("HEAD",)
    labels: bool = True
    tags: bool = False
    tag_pattern: str | None = None
    environment: str = "production"
    services: tuple[tuple[str, str, str | None], ...] = ()

    @property
    def tag_service(self) -> str:
        """The service the repository's tags deploy."""
        return self.services[0][0] if self.services else self.name


@dataclass(frozen=True)
class OrgManifest:
    """A parsed organisation manifest.

    Attributes
    ----------
    repos : tuple of RepoSpec
    lake : str or None
        The lake it names (relative paths resolved against the manifest's folder).
    clones : pathlib.Path
        Where repositories given by URL are cloned.
    source : pathlib.Path
        The manifest file.
    """

    repos: tuple[RepoSpec, ...]
    lake: str | None
    clones: Path
    source: Path


def read_org_manifest(path: str | os.PathLike[str]) -> OrgManifest:
    """Read and check an organisation manifest (format in the module docstring).

    Parameters
    ----------
    path : path-like
        The TOML file.

    Returns
    -------
    OrgManifest

    Raises
    ------
    ConfigError
        The file cannot be read or is not TOML.
    InputError
        An unknown key, a value of the wrong type, a repository without ``path`` or
        ``url`` (or with both), a path that does not exist, two repositories (or two
        services) with the same name, or no repository at all.
    """
    source = Path(path)
    data = read_toml(source, "organisation manifest")
    where = source.parent
    _unknown(data, _TOP_KEYS, f"{source}")
    defaults = _table(data.get("defaults", {}), f"{source}: [defaults]")
    _unknown(defaults, _DEFAULT_KEYS, f"{source}: [defaults]")
    listed = [_repo_spec(dict(e), defaults, where, f"{source}: [[repos]] #{i + 1}")
              for i, e in enumerate(_array(data.get("repos", []), source))]  # fmt: skip
    _check_names(listed, source)
    found = []
    if "scan" in data:  # an explicit [[repos]] entry of the same name wins over the scan
        names = {r.name for r in listed}
        found = [r for r in _scanned(_table(data["scan"], f"{source}: [scan]"), defaults, where, source)
                 if r.name not in names]  # fmt: skip
    repos = found + listed
    if not repos:
        raise InputError(f"{source} lists no repositories (add [[repos]] entries or a [scan] folder)")
    _check_services(repos, source)
    lake = data.get("lake")
    if lake is not None and not isinstance(lake, str):
        raise InputError(f"{source}: lake must be a string")
    if lake is not None and "://" not in lake:
        lake = str((where / lake).resolve())
    clones = data.get("clones", ".releaserisk-clones")
    if not isinstance(clones, str):
        raise InputError(f"{source}: clones must be a string")
    return OrgManifest(tuple(repos), lake, (where / clones).resolve(), source)


def _unknown(table: dict, known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise InputError(f"{where}: unknown key '{extra[0]}' (known: {', '.join(sorted(known))})")


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a table")
    return value


def _array(value: Any, source: Path) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InputError(f"{source}: repos must be an array of tables ([[repos]])")
    return value


def _scanned(scan: dict, defaults: dict, where: Path, source: Path) -> list[RepoSpec]:
    """One repository per git repository directly under ``[scan] path`` (work trees and bare)."""
    _unknown(scan, _SCAN_KEYS, f"{source}: [scan]")
    folder = scan.get("path")
    if not isinstance(folder, str):
        raise InputError(f"{source}: [scan] needs path, a folder of clones")
    base = (where / folder).resolve()
    if not base.is_dir():
        raise InputError(f"{source}: [scan] path {base} is not a folder")
    found = []
    for child in sorted(base.iterdir()):
        if child.is_dir() and (
            (child / ".git").exists() or ((child / "HEAD").is_file() and (child / "objects").is_dir())
        ):
            found.append(_repo_spec({"path": str(child)}, defaults, where, f"{source}: [scan] {child.name}"))
    _check_names(found, source)
    return found


def _repo_spec(entry: dict, defaults: dict, where: Path, label: str) -> RepoSpec:
    _unknown(entry, _REPO_KEYS, label)
    merged = {**defaults, **entry}
    path, url = merged.get("path"), merged.get("url")
    if (path is None) == (url is None):
        raise InputError(f"{label}: give either path or url")
    for key in ("path", "url", "name", "environment"):
        if key in merged and not isinstance(merged[key], str):
            raise InputError(f"{label}: {key} must be a string")
    if path is not None:
        resolved = (where / path).resolve()
        if not resolved.exists():
            raise InputError(f"{label}: path {resolved} does not exist")
        path = str(resolved)
    default_name = (
        Path(path).name.removesuffix(".git") if path else url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    )
    name = merged.get("name", default_name)
    if not name or any(c in name for c in "\n\r\0"):
        raise InputError(f"{label}: name must be a non-empty single line")
    rev = merged.get("rev", ["HEAD"])
    if isinstance(rev, str):
        rev = [rev]
    if not isinstance(rev, list) or not rev or not all(isinstance(r, str) and r for r in rev):
        raise InputError(f"{label}: rev must be a revision or a list of revisions")
    labels = merged.get("labels", True)
    if not isinstance(labels, bool):
        raise InputError(f"{label}: labels must be true or false")
    tags = merged.get("tags", False)
    if not isinstance(tags, bool | str) or tags == "":
        raise InputError(f"{label}: tags must be true, false or a glob such as 'v*'")
    services = tuple(_service(s, label) for s in merged.get("services", []))
    return RepoSpec(
        name=name, path=path, url=url, rev=tuple(rev), labels=labels, tags=bool(tags),
        tag_pattern=tags if isinstance(tags, str) else None,
        environment=merged.get("environment", "production"), services=services,
    )  # fmt: skip


def _service(value: Any, label: str) -> tuple[str, str, str | None]:
    if not isinstance(value, dict):
        raise InputError(f"{label}: services must be tables like {{ service = 'api', path_prefix = 'api/' }}")
    _unknown(value, _SERVICE_KEYS, f"{label}: services")
    service = value.get("service")
    if not isinstance(service, str) or not service:
        raise InputError(f"{label}: every service needs a name (service = '…')")
    prefix, team = value.get("path_prefix", ""), value.get("team")
    if not isinstance(prefix, str) or (team is not None and not isinstance(team, str)):
        raise InputError(f"{label}: path_prefix and team must be strings")
    return service, prefix, team


def _check_names(repos: list[RepoSpec], source: Path) -> None:
    seen: set[str] = set()
    for repo in repos:
        if repo.name in seen:
            raise InputError(f"{source}: two repositories are named '{repo.name}'; give one a different name")
        seen.add(repo.name)


def _check_services(repos: list[RepoSpec], source: Path) -> None:
    owner: dict[str, str] = {}
    for repo in repos:
        for service, _, _ in repo.services:
            if service in owner and owner[service] != repo.name:
                raise InputError(f"{source}: service '{service}' is listed in both {owner[service]} and {repo.name}")
            owner[service] = repo.name


# -- one repository: the task ---------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    spec: RepoSpec
    lake: str
    sources: dict[str, tuple[list[str], bool]]  # the repository's live shards (not the whole manifest)
    settings: Settings
    generation: str
    clones: str
    threads: int | None
    fingerprint: str | None = None  # the plan's, for a local path (a URL's is known after the fetch)


@dataclass
class RepoOutcome:
    """What one repository's task did.

    Attributes
    ----------
    repo : str
    status : str
        ``ingested``, ``unchanged`` (not run: nothing changed) or ``failed``.
    generation : str or None
        The generation of shards written.
    files, rows : dict
        Table → shard path and rows (empty unless ingested).
    fingerprint : str or None
        What the repository looked like when ingested (refs, manifest entry, settings).
    new_commits, total_commits, deployments, buggy : int
        Commits added, commits in the lake, deployments from tags, commits labelled buggy.
    seconds : float
        Wall time of the task (seconds).
    peak_rss_mib : float
        Peak resident memory of the process that ran it (MiB).
    error : str or None
        Why it failed.
    """

    repo: str
    status: str
    generation: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    fingerprint: str | None = None
    new_commits: int = 0
    total_commits: int = 0
    deployments: int = 0
    buggy: int = 0
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    error: str | None = None


def repo_fingerprint(spec: RepoSpec, settings: Settings) -> str | None:
    """A digest of what a run of this repository depends on: its refs, its manifest entry,
    the settings and releaserisk's version (None for a URL, which must be fetched to know).

    Raises
    ------
    GitError
        git is missing or the path is not a repository.
    """
    if spec.path is None:
        return None
    try:
        refs = git_text(spec.path, "show-ref", "--head")  # HEAD and every ref in one process
    except GitError:  # no ref at all (a new repository) exits 1; not a repository fails here again
        refs = git_text(spec.path, "for-each-ref", "--format=%(objectname) %(refname)")
    relevant = {k: v for k, v in dataclasses.asdict(settings).items() if k != "db"}
    digest = hashlib.sha256()
    for part in (refs, repr(dataclasses.asdict(spec)), repr(sorted(relevant.items())), __version__):
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()


def _checkout(spec: RepoSpec, clones: str) -> str:
    """The local clone of a repository given by URL (cloned or fetched now).

    Raises
    ------
    GitError
        The clone or fetch failed; the message names the URL without its credentials.
    """
    from urllib.parse import quote

    from releaserisk.ingest.git import _strip_credentials

    target = Path(clones) / (quote(spec.name, safe="") + ".git")
    try:
        if target.exists():
            run_git(target, "fetch", "--prune", "--tags", "origin", "+refs/heads/*:refs/heads/*")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            run_git(target.parent, "clone", "--mirror", "--quiet", spec.url, str(target))
    except GitError as exc:  # git's message may quote the URL, token and all
        url = _strip_credentials(spec.url or "")
        raise GitError(f"cannot fetch {url}: {str(exc).replace(spec.url or '', url)}") from None
    return str(target)


def ingest_repository(task: _Task) -> RepoOutcome:
    """Run one repository's task (in a worker or in-process); never raises.

    Returns
    -------
    RepoOutcome
        ``ingested`` with the shards written, or ``failed`` with the reason.
    """
    started = time.perf_counter()
    spec = task.spec
    lake = Lake(task.lake)
    written: dict[str, str] = {}
    try:
        path = spec.path or _checkout(spec, task.clones)
        fingerprint = task.fingerprint or repo_fingerprint(dataclasses.replace(spec, path=path), task.settings)
        with open_store(":memory:") as store:
            if task.threads:
                store.execute(f"SET threads = {int(task.threads)}")
            load_repository(store, lake, task.sources, spec.name)
            counts = _ingest_into(store, spec, path, task.settings)
            written, rows = write_shards(store, lake, spec.name, task.generation)
        outcome = RepoOutcome(spec.name, "ingested", task.generation, written, rows, fingerprint, **counts)
    except Exception as exc:  # one repository's failure is reported; the others go on
        lake.remove(written.values())
        reason = str(exc) if isinstance(exc, ReleaseRiskError) else _unexpected(exc)
        outcome = RepoOutcome(spec.name, "failed", error=reason)
    outcome.seconds = time.perf_counter() - started
    outcome.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return outcome


def _unexpected(exc: Exception) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _ingest_into(store, spec: RepoSpec, path: str, settings: Settings) -> dict[str, int]:
    """git, services, tags and labels of one repository, into its working store."""
    from releaserisk.ingest.git import ingest_git, ingest_git_tags
    from releaserisk.labels import label_changes

    result = ingest_git(store, path, name=spec.name, rev=list(spec.rev), settings=settings)
    new_commits = result.new_commits
    if spec.services:
        frame = pd.DataFrame(
            [{"service": s, "repo": spec.name, "path_prefix": p, "team": t} for s, p, t in spec.services]
        )
        with store.transaction():
            store.upsert("services", frame)
    deployments = 0
    if spec.tags:
        tags = ingest_git_tags(
            store, path, pattern=spec.tag_pattern, service=spec.tag_service, environment=spec.environment,
            name=spec.name,
        )  # fmt: skip
        deployments = tags.deployments
        off_history = tags.frame.loc[tags.frame["recorded"] & ~tags.frame["in_history"], "sha"].unique().tolist()
        if off_history:
            # A release tagged on a commit outside ``rev`` (a maintenance branch, a release
            # commit never merged back) would ship no changes: its history is the
            # repository's too, so it is ingested (incrementally) and its links follow.
            result = ingest_git(store, path, name=spec.name, rev=[*spec.rev, *off_history], settings=settings)
            new_commits += result.new_commits
    buggy = 0
    if spec.labels and result.total_commits:
        labelled = label_changes(store, spec.name, settings=settings, workers=1)
        buggy = labelled.buggy_szz + labelled.buggy_revert
    return {"new_commits": new_commits, "total_commits": result.total_commits, "deployments": deployments,
            "buggy": buggy}  # fmt: skip


# -- the coordinator ------------------------------------------------------------------------
@dataclass
class OrgIngestResult:
    """What one ``ingest org`` run did, repository by repository.

    Attributes
    ----------
    lake : str
    frame : pandas.DataFrame
        One row per repository: ``repo``, ``status`` (ingested / unchanged / failed),
        ``new_commits``, ``total_commits``, ``deployments``, ``buggy``, ``seconds``,
        ``peak_rss_mib``, ``error``.
    workers : int
        Processes the tasks ran on (1: in this process).
    seconds : float
        Wall time of the run, compaction included.
    compaction : CompactionResult or None
        The lake's compaction after the run, when there was one.
    """

    lake: str
    frame: pd.DataFrame
    workers: int
    seconds: float
    compaction: CompactionResult | None = None

    @property
    def failed(self) -> pd.DataFrame:
        """The repositories that failed, with the reason."""
        return self.frame[self.frame["status"] == "failed"]

    def summary(self) -> str:
        """Counts per status, commits added, and one line per failure."""
        counts = self.frame["status"].value_counts()
        parts = [f"{counts.get(s, 0)} {s}" for s in ("ingested", "unchanged", "failed") if counts.get(s, 0)]
        lines = [
            f"{len(self.frame)} repositories into {self.lake}: {', '.join(parts) or 'nothing to do'}; "
            f"{int(self.frame['new_commits'].sum()):,} new commits; {self.seconds:.1f} s on {self.workers} "
            f"worker{'s' if self.workers != 1 else ''}"
        ]
        if self.compaction is not None:
            lines.append(f"  {self.compaction.summary()}")
        lines += [f"  failed: {r.repo}: {r.error}" for r in self.failed.itertuples()]
        if len(self.failed):
            lines.append("  run the same command again to retry only the failed repositories")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-safe form."""
        from releaserisk.escape import json_records

        return {"lake": self.lake, "workers": self.workers, "seconds": round(self.seconds, 3),
                "compaction": self.compaction.to_dict() if self.compaction else None,
                "repos": json_records(self.frame)}  # fmt: skip


def ingest_org(
    manifest: OrgManifest | str | os.PathLike[str],
    lake: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    settings: Settings | None = None,
    progress: Callable[[RepoOutcome, int, int], None] | None = None,
    compact: bool | None = None,
) -> OrgIngestResult:
    """Ingest every repository of an organisation into a lake, in parallel on Dask.

    Parameters
    ----------
    manifest : OrgManifest or path-like
        The organisation (see :func:`read_org_manifest`).
    lake : str or path-like, optional
        The lake (a directory or fsspec URL); default: the manifest's ``lake``.
    workers : int, optional
        Worker processes of a ``dask.distributed.LocalCluster`` (default: the machine's
        cores); 1 runs the tasks one by one in this process.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead; its
        workers must reach the repositories' paths (or their URLs) and the lake.
    settings : Settings, optional
        Fix pattern and labelling rules (default: defaults).
    progress : callable, optional
        ``progress(outcome, done, total)`` as each repository finishes.
    compact : bool, optional
        Compact the lake after the run (:func:`~releaserisk.lake.compact_lake`): True when
        any repository was ingested, False never; default (None) when a table has
        :data:`AUTO_COMPACT_SHARDS` per-repository shards or more.

    Returns
    -------
    OrgIngestResult

    Raises
    ------
    InputError
        No lake given, bad manifest, or the scheduler cannot be reached.
    LakeError
        The lake's manifest is damaged, or compacting it failed (the repositories' shards
        are committed; the lake stays readable uncompacted).
    """
    started = time.perf_counter()
    org = manifest if isinstance(manifest, OrgManifest) else read_org_manifest(manifest)
    location = os.fspath(lake) if lake is not None else org.lake
    if location is None:
        raise InputError("no lake given: pass --lake DIR or set lake = '…' in the manifest")
    settings = settings or Settings()
    store_lake = Lake(location)
    store_lake.check_writable()
    state = store_lake.read_manifest()
    store_lake.remove(store_lake.unreferenced(state))  # a killed run's half-written shards
    with open_store(":memory:") as probe:
        state.schema_version = probe.schema_version
    outcomes, todo = _plan(org, state, settings)
    generation = generation_id()
    tasks = [
        _Task(spec, location, state.sources_of(spec.name), settings, generation, str(org.clones), None, fingerprint)
        for spec, fingerprint in todo
    ]
    done = [len(outcomes)]
    total = len(org.repos)
    committer = _Committer(store_lake, state)

    def commit(outcome: RepoOutcome) -> None:
        committer.record(outcome)
        outcomes.append(outcome)
        done[0] += 1
        if progress:
            progress(outcome, done[0], total)

    if progress:
        for number, outcome in enumerate(outcomes, start=1):
            progress(outcome, number, total)
    used, closing = 1, None
    try:
        if tasks and (scheduler or (workers or usable_cores()) > 1):
            used, closing = _run_on_dask(tasks, workers or usable_cores(), scheduler, commit)
        else:
            for task in tasks:
                commit(ingest_repository(task))
    finally:  # what finished is committed even when the run is interrupted
        committer.flush()
    try:
        if not store_lake.exists():  # a first run with nothing to do still leaves an (empty) lake
            store_lake.write_manifest(state)
        frame = pd.DataFrame([_row(o) for o in outcomes]).sort_values("repo", ignore_index=True)
        compaction = None
        if _should_compact(compact, state, frame):
            try:
                compaction = compact_lake(location)
            except LakeError as exc:
                raise LakeError(f"the repositories landed, but compacting the lake failed: {exc}") from None
    finally:
        if closing is not None:  # the cluster shut down while the lake was compacted: done before returning
            closing.result()
    return OrgIngestResult(location, frame, used, time.perf_counter() - started, compaction)


def _should_compact(compact: bool | None, state: LakeManifest, frame: pd.DataFrame) -> bool:
    if compact is False or not (frame["status"] == "ingested").any():
        return False
    return compact is True or state.loose_shards() >= AUTO_COMPACT_SHARDS


def _plan(
    org: OrgManifest, state: LakeManifest, settings: Settings
) -> tuple[list[RepoOutcome], list[tuple[RepoSpec, str | None]]]:
    """Repositories not to run (unchanged since their last success) and those to run with their
    fingerprints, largest first."""
    unchanged, todo = [], []
    for spec, fingerprint in zip(org.repos, _fingerprints(org.repos, settings), strict=True):
        entry = state.repos.get(spec.name)
        if entry and fingerprint and entry.get("fingerprint") == fingerprint and spec.name not in state.failed:
            rows = entry.get("rows", {})
            unchanged.append(RepoOutcome(spec.name, "unchanged", entry["generation"],
                                         total_commits=int(rows.get("commits", 0))))  # fmt: skip
        else:
            todo.append((spec, fingerprint))
    # the largest repositories first, so that no worker is left with a big one at the end
    todo.sort(key=lambda item: -_object_bytes(item[0]))
    return unchanged, todo


def _object_bytes(spec: RepoSpec) -> float:
    """Bytes of a repository's packed git objects: a free proxy for how long its task runs
    (a first run knows nothing else). Infinite when unknown (a URL not cloned yet, a linked
    work tree), so those start first rather than last."""
    if spec.path is None:
        return math.inf
    root = Path(spec.path)
    for objects in (root / ".git" / "objects", root / "objects"):
        if objects.is_dir():
            return float(sum(p.stat().st_size for p in (objects / "pack").glob("*.pack")))
    return math.inf


def _fingerprints(specs: Sequence[RepoSpec], settings: Settings) -> list[str | None]:
    """Each repository's fingerprint (None where git fails: its task will say why).

    A few threads, since each is one short git process: the waits overlap.
    """

    def one(spec: RepoSpec) -> str | None:
        try:
            return repo_fingerprint(spec, settings)
        except GitError:
            return None

    with ThreadPoolExecutor(max_workers=FINGERPRINT_THREADS) as pool:
        return list(pool.map(one, specs))


class _Committer:
    """The coordinator's writes to the lake's manifest: each outcome recorded, committed in batches.

    Rewriting ``_lake.json`` after every repository would write it as many times as there
    are repositories (quadratic bytes for thousands of them); it is committed at most every
    ``interval`` seconds and at the end. A stopped run loses only the uncommitted outcomes:
    their shards are unlisted (invisible, removed by the next run), which re-runs them.
    The files a commit replaces are deleted only after that commit.
    """

    def __init__(self, lake: Lake, state: LakeManifest, interval: float = 2.0) -> None:
        self.lake, self.state, self.interval = lake, state, interval
        self.replaced: set[str] = set()
        self.dirty = False
        self.last = time.monotonic()

    def record(self, outcome: RepoOutcome) -> None:
        if outcome.status == "ingested":
            previous = self.state.repos.get(outcome.repo, {}).get("files", {})
            self.state.repos[outcome.repo] = {
                "generation": outcome.generation,
                "fingerprint": outcome.fingerprint,
                "ingested_at": datetime.now(UTC).isoformat(),
                "files": outcome.files,
                "rows": outcome.rows,
            }
            self.state.failed.pop(outcome.repo, None)
            self.replaced |= set(previous.values()) - set(outcome.files.values())
        else:
            self.state.failed[outcome.repo] = {"error": outcome.error or "", "at": datetime.now(UTC).isoformat()}
        self.dirty = True
        if time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        if not self.dirty:
            return
        self.lake.write_manifest(self.state)
        self.lake.remove(self.replaced)
        self.replaced, self.dirty, self.last = set(), False, time.monotonic()


def _run_on_dask(tasks: Sequence[_Task], workers: int, scheduler: str | None, commit) -> tuple[int, Future]:
    """Run the tasks on a Dask cluster, committing each outcome as it arrives.

    Returns the workers used and the cluster's shutdown, under way in a thread: closing a
    ``LocalCluster`` waits a second or so for its processes to exit, time the coordinator
    spends compacting the lake instead (the caller waits for it before returning). A run
    that fails or is interrupted closes the cluster before the error propagates.

    A ``LocalCluster`` takes seconds to start (a process per worker, each importing pandas
    and DuckDB) and keeps about one core busy meanwhile: this process runs the first tasks
    itself until the workers are up, instead of leaving the other core idle — while more
    than :data:`HEAD_START_AFTER` tasks per worker remain, so a few tasks all go to the cluster.
    """
    from distributed import Client, as_completed

    cluster = client = None
    finished = False
    queue = [dataclasses.replace(t, threads=1) for t in tasks]  # one DuckDB thread per task: no oversubscription
    try:
        try:
            if scheduler:
                client = _connect(scheduler)
            else:
                with ThreadPoolExecutor(max_workers=1) as starter:
                    starting = starter.submit(_local_cluster, min(workers, len(tasks)))
                    try:
                        while len(queue) > HEAD_START_AFTER * workers and not starting.done():
                            commit(ingest_repository(queue.pop(0)))
                    finally:  # interrupted meanwhile: the cluster is still closed below
                        cluster = starting.result()
                client = Client(cluster)
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler {scheduler or 'LocalCluster'}: {exc}") from None
        used = len(client.scheduler_info().get("workers", {})) or 1
        futures = {
            client.submit(ingest_repository, t, pure=False, key=f"ingest-repo-{t.generation}-{t.spec.name}"): t
            for t in queue
        }
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # a worker died (killed, out of memory): that repository failed
                outcome = RepoOutcome(futures[future].spec.name, "failed", error=f"worker lost: {exc}")
            commit(outcome)
        finished = True
        closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="releaserisk-close-cluster")
        closing = closer.submit(_close, client, cluster)
        closer.shutdown(wait=False)  # the thread finishes the close; the caller waits on ``closing``
        return used, closing
    finally:
        if not finished:
            _close(client, cluster)


def _close(client, cluster) -> None:
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _connect(scheduler: str):
    """A client of the scheduler at ``scheduler``.

    Raises
    ------
    InputError
        The address is malformed, nothing answers there in time, or what answers is no
        Dask scheduler (a web server's bytes read as a frame length asked for exabytes).
    """
    from distributed import Client

    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        reason = "it does not speak Dask's protocol" if isinstance(exc, MemoryError) else str(exc)
        raise InputError(f"cannot reach the Dask scheduler {scheduler}: {reason}") from None


def _local_cluster(workers: int):
    """A ``LocalCluster`` of single-threaded worker processes, without Dask's statistical
    profiler (nobody reads its samples, and it wakes every 10 ms to walk the task's stack).

    Each worker imports this module (pandas, DuckDB, Arrow: about a second of CPU) as it
    starts (Dask's ``preload``), while the coordinator's head start keeps the other core
    busy — instead of on its first task, when both cores would import and none ingest.
    The scheduler's HTTP server (which ``dashboard_address=None`` still binds to port 8787
    on every interface) listens on a free port of the loopback interface: a second run on
    the machine warned "Port 8787 is already in use".
    """
    import logging

    import dask
    from distributed import LocalCluster

    settings = {"distributed.worker.profile.enabled": False, "distributed.worker.preload": [__name__]}
    with dask.config.set(settings):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )  # fmt: skip


def _row(outcome: RepoOutcome) -> dict[str, Any]:
    return {
        "repo": outcome.repo, "status": outcome.status, "new_commits": outcome.new_commits,
        "total_commits": outcome.total_commits, "deployments": outcome.deployments, "buggy": outcome.buggy,
        "seconds": round(outcome.seconds, 3), "peak_rss_mib": round(outcome.peak_rss_mib, 1), "error": outcome.error,
    }  # fmt: skip
