"""Git history → ``repos``, ``commits``, ``file_changes`` and ``change_features``.

One streaming pass over ``git log -z --raw --numstat -M`` (oldest first, topological
order) feeds both the tables and :class:`releaserisk.features.ChangeMetricState`.
Why each flag:

* ``-z`` — paths come out verbatim (no C-quoting, no ``{a => b}`` rename shorthand),
  so paths with spaces, tabs, newlines, quotes and non-ASCII characters survive;
* ``--raw --no-abbrev`` — statuses (A/M/D/R/C/T), file modes (submodules, mode 160000,
  are skipped) and full blob ids, which key the line counts that make LT exact;
* ``--numstat`` — lines added/deleted per file (``-`` for binary files → NULL);
* ``%aN``/``%aE`` — author identity with ``.mailmap`` applied (``%an`` ignores it);
* ``--topo-order --reverse`` — parents before children, side branches kept together
  (they cost git no measurable CPU; what grows faster than the commits on a long
  history is git's diff work per commit: see ``benchmarks/ingest_scaling.py``).

Merge commits are stored (``is_merge``) but have no file changes: git shows no diff
for them. A merge may create blobs no non-merge commit made (conflict resolutions);
when a later commit modifies such a blob, its line count comes from one long-running
``git cat-file --batch`` process, so LT stays exact without any checkout.

Incremental runs read the saved metric state from the store and process only
``REV --not <previous head>``; they give exactly the rows a full run gives whenever
the new commits follow the stored ones in topological order (the normal case of a
branch that moved forward).
"""

from __future__ import annotations

import collections
import contextlib
import fnmatch
import itertools
import os
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa

from releaserisk.config import Settings
from releaserisk.errors import GitError, InputError, ShallowCloneError
from releaserisk.features import FEATURE_VERSION, ChangeMetricState, FileChange
from releaserisk.gitcmd import git_text, nul_tokens, popen_git, require_git, storable_path
from releaserisk.ingest.explicit import keep_explicit_deployments, kept_line
from releaserisk.resources import usable_cores
from releaserisk.store import Store

__all__ = ["GitIngestResult", "TagIngestResult", "ingest_git", "ingest_git_tags"]

_LOG_FORMAT = "%x01%H%x00%P%x00%aN%x00%aE%x00%at%x00%ct%x00%B"
#: The one ``git log`` the ingest runs (revisions follow); benchmarks time it as the baseline.
_LOG_ARGS = ("log", "-z", "--raw", "--numstat", "-M", "--no-abbrev", "--topo-order", "--reverse",
             f"--format={_LOG_FORMAT}")  # fmt: skip
_NULL_BLOB = b"0" * 40
_SUBMODULE_MODE = b"160000"
_FLUSH_EVERY = 20_000  # commits per Arrow batch: bounds memory on long histories
_PROGRESS_EVERY = 1_000


@dataclass(frozen=True)
class GitIngestResult:
    """What one git ingest did.

    Attributes
    ----------
    repo : str
        Repository name in the store.
    head_sha : str or None
        The ingested revision (None for an empty repository).
    new_commits, file_changes : int
        Rows added by this run.
    total_commits : int
        Commits stored for the repository after this run.
    """

    repo: str
    head_sha: str | None
    new_commits: int
    file_changes: int
    total_commits: int

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


# -- git process helpers ------------------------------------------------------------------
def git(path: str | os.PathLike[str], *args: str) -> str:
    """Run a git command in ``path`` and return its stdout as text (raise GitError on failure).

    For output without paths; path-bearing output is read as bytes through
    :mod:`releaserisk.gitcmd`.
    """
    return git_text(path, *args)


def _strip_credentials(url: str) -> str:
    """Remove user:token@ from a remote URL before it is stored."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


@dataclass(frozen=True)
class _RepoInfo:
    path: Path
    name: str
    head: str | None
    remote_url: str | None
    default_branch: str | None


def _inspect(path: str | os.PathLike[str], name: str | None, rev: str) -> _RepoInfo:
    require_git()
    location = Path(path)
    if not location.exists():
        raise GitError(f"{location} does not exist")
    try:
        facts = git(location, "rev-parse", "--is-shallow-repository", "--is-bare-repository", "--absolute-git-dir")
    except GitError:
        raise GitError(f"{location} is not a git repository") from None
    shallow, bare, git_dir = facts.splitlines()[:3]
    if shallow == "true":
        raise ShallowCloneError(
            f"{location} is a shallow clone; change metrics need full history: "
            "run 'git fetch --unshallow' (in CI: actions/checkout with fetch-depth: 0)"
        )
    root = Path(git_dir) if bare == "true" else location.resolve()
    default_name = root.name.removesuffix(".git") if bare == "true" else root.name
    has_commits = bool(git(location, "rev-list", "-n", "1", "--all").strip())
    head = None
    if has_commits or rev != "HEAD":
        try:
            head = git(location, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip()
        except GitError:
            raise GitError(f"unknown revision '{rev}' in {location}") from None
    remote = git(location, "config", "--default", "", "--get", "remote.origin.url").strip() or None
    branch = git(location, "symbolic-ref", "-q", "--short", "HEAD").strip() if has_commits else ""
    return _RepoInfo(
        path=root,
        name=name or default_name,
        head=head,
        remote_url=_strip_credentials(remote) if remote else None,
        default_branch=branch or None,
    )


class _BlobLines:
    """Line counts per blob id; unknown blobs are read once via ``git cat-file --batch``."""

    def __init__(self, repo_path: Path, known: dict[bytes, int | None]) -> None:
        self.repo_path = repo_path
        self.counts = known
        # the entries after the first ``loaded`` are new (a dict keeps insertion order): a
        # second dict of them doubled the memory of a long history's blobs (2M at 1M commits)
        self.loaded = len(known)
        self._proc: subprocess.Popen | None = None

    def new(self) -> tuple[tuple[bytes, ...], tuple[int | None, ...]]:
        """Blob ids and line counts learnt since the store's were loaded."""
        ids = tuple(itertools.islice(self.counts.keys(), self.loaded, None))
        return ids, tuple(itertools.islice(self.counts.values(), self.loaded, None))

    def get(self, blob: bytes) -> int | None:
        if blob == _NULL_BLOB:
            return 0
        try:
            return self.counts[blob]
        except KeyError:
            count = self._read(blob)
            self.set(blob, count)
            return count

    def set(self, blob: bytes, count: int | None) -> None:
        if blob not in self.counts:
            self.counts[blob] = count

    def _read(self, blob: bytes) -> int | None:
        if self._proc is None:
            self._proc = popen_git(self.repo_path, "cat-file", "--batch", stdin=subprocess.PIPE)
        self._proc.stdin.write(blob + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            return None
        content = self._proc.stdout.read(int(header[2]) + 1)[:-1]
        if b"\0" in content[:8000]:  # git's own binary heuristic
            return None
        return content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait()
            self._proc = None


class _GitLog:
    """One ``git log`` process whose output a thread drains into a byte-bounded buffer.

    Reading on a thread keeps git busy while Python computes metrics: with a plain
    blocking read, git stalls on a full 64 KiB pipe and the two run one after the
    other instead of side by side. The buffer lets a second worker run ahead while the
    first one's output is processed; its byte bound caps memory.
    """

    BUFFER_BYTES = 128 << 20

    def __init__(self, path: Path, args: list[str]) -> None:
        self.proc = popen_git(path, *args)
        self.chunks_ready: collections.deque[bytes | None] = collections.deque()
        self.buffered = 0
        self.closed = False
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _put(self, chunk: bytes | None) -> None:
        with self.condition:
            while chunk is not None and self.buffered > self.BUFFER_BYTES and not self.closed:
                self.condition.wait()
            self.chunks_ready.append(chunk)
            self.buffered += len(chunk or b"")
            self.condition.notify_all()

    def _drain(self) -> None:
        try:
            while not self.closed and (chunk := self.proc.stdout.read1(1 << 20)):
                self._put(chunk)
        finally:
            self._put(None)

    def chunks(self) -> Iterator[bytes]:
        while True:
            with self.condition:
                while not self.chunks_ready:
                    self.condition.wait()
                chunk = self.chunks_ready.popleft()
                self.buffered -= len(chunk or b"")
                self.condition.notify_all()
            if chunk is None:
                return
            yield chunk

    def finish(self, where: Path) -> None:
        self.thread.join()
        self.proc.wait()
        if self.proc.returncode != 0:
            error = self.proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git log failed in {where}: {error[-1] if error else self.proc.returncode}")

    def kill(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.thread.join()


@dataclass(slots=True)
class _Commit:
    sha: str
    parents: list[str]
    author: str
    email: str
    authored: int
    committed: int
    message: str
    raw: list  # (status, old_blob, new_blob, old_path, new_path, is_submodule)
    numstat: list  # (added, deleted) per raw entry; None for binary


def _parse_log(chunks: Iterable[bytes]) -> Iterator[_Commit]:
    """Parse ``git log -z --raw --numstat`` output with :data:`_LOG_FORMAT` headers."""
    tokens = nul_tokens(chunks)
    token = next(tokens, None)
    while token is not None:
        header = token.lstrip(b"\n")
        if not header.startswith(b"\x01"):
            raise GitError(f"unexpected git log output near {header[:60]!r}")
        parents, name, email, authored, committed, message = (next(tokens) for _ in range(6))
        commit = _Commit(
            sha=header[1:].decode("ascii"),
            parents=parents.decode("ascii").split() if parents else [],
            author=name.decode("utf-8", "replace"),
            email=email.decode("utf-8", "replace"),
            authored=int(authored),
            committed=int(committed),
            message=message.decode("utf-8", "replace").rstrip("\n"),
            raw=[],
            numstat=[],
        )
        token = None
        for entry in tokens:
            if entry[:1] == b"\n":
                entry = entry[1:]
            if not entry:
                continue
            lead = entry[:1]
            if lead == b"\x01":
                token = entry
                break
            if lead == b":":
                old_mode, new_mode, old_blob, new_blob, status = entry[1:].split(b" ")
                kind = status[:1].decode()
                first = next(tokens)
                second = next(tokens) if kind in "RC" else None
                old_path = storable_path(first) if second is not None else None
                new_path = storable_path(second if second is not None else first)
                submodule = old_mode == _SUBMODULE_MODE or new_mode == _SUBMODULE_MODE
                commit.raw.append((kind, old_blob, new_blob, old_path, new_path, submodule))
            else:
                added, deleted, path = entry.split(b"\t", 2)
                if not path:  # rename/copy: old and new paths follow
                    next(tokens)
                    next(tokens)
                commit.numstat.append((None, None) if added == b"-" else (int(added), int(deleted)))
        if len(commit.numstat) != len(commit.raw):
            raise GitError(f"git log output for {commit.sha} has mismatched raw/numstat entries")
        yield commit


# -- batches for the store ------------------------------------------------------------
class _Batch:
    """Column lists for the three history tables, flushed as Arrow tables."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.reset()

    def reset(self) -> None:
        self.commits = {k: [] for k in ("sha", "parents", "author", "author_email", "authored_at",
                                        "committed_at", "message", "is_merge", "seq")}  # fmt: skip
        self.files = {k: [] for k in ("sha", "path", "old_path", "status", "added", "deleted")}
        self.features = {k: [] for k in ("sha", "ns", "nd", "nf", "entropy", "entropy_norm", "la", "ld", "lt",
                                         "fix", "ndev", "age", "nuc", "exp", "rexp", "sexp")}  # fmt: skip

    def flush(self, store: Store) -> None:
        if not self.commits["sha"]:
            return
        for table, columns, timestamps in (
            ("commits", self.commits, ("authored_at", "committed_at")),
            ("file_changes", self.files, ()),
            ("change_features", self.features, ()),
        ):
            if not columns["sha"]:
                continue
            data = dict(columns)
            for name in timestamps:
                data[name] = pa.array(data[name], pa.timestamp("s", tz="UTC"))
            arrow = pa.table({"repo": pa.array([self.repo] * len(columns["sha"]), pa.string()), **data})
            if table == "change_features":
                arrow = arrow.append_column("feature_version", pa.array([FEATURE_VERSION] * len(arrow), pa.int32()))
            store.append(table, arrow)
        self.reset()


def _file_changes(commit: _Commit, blobs: _BlobLines) -> list[FileChange]:
    changes = []
    for (kind, old_blob, new_blob, old_path, new_path, submodule), (added, deleted) in zip(
        commit.raw, commit.numstat, strict=True
    ):
        if submodule:
            continue
        before = blobs.get(old_blob) if kind not in "A" else 0
        if kind != "D":
            if added is None or before is None:
                blobs.set(new_blob, None)
            else:
                blobs.set(new_blob, before + added - deleted)
        changes.append(FileChange(new_path, old_path, kind, added, deleted, before or 0))
    return changes


# -- state ----------------------------------------------------------------------------
#: Newest commits of a history looked up to tell whether the store already has it.
_SECOND_COPY_LOOKBACK = 100


def _refuse_a_second_copy(store: Store, info: _RepoInfo) -> None:
    """Refuse to store, under a name taken from a directory, a history the store has under another.

    A CI checkout in ``/work/checkout`` scoring against a store that ingested the same
    repository as ``shop`` would otherwise ingest the whole history again as
    ``checkout`` (minutes on a long history) and score against that copy. An explicit
    ``name`` is trusted: a fork or a split repository may share commits on purpose.
    """
    if info.head is None or store.execute("SELECT 1 FROM repos WHERE repo = ?", [info.name]).fetchone():
        return
    # the newest commits: a CI checkout's HEAD is often new, its parents are not
    recent = git(info.path, "rev-list", f"--max-count={_SECOND_COPY_LOOKBACK}", info.head).split()
    row = store.execute("SELECT repo, sha FROM commits WHERE list_contains(?, sha) LIMIT 1", [recent]).fetchone()
    if row is not None:
        raise InputError(
            f"{info.path} holds repository '{row[0]}' of the store (its commit {row[1][:10]} is stored there), "
            f"not '{info.name}': pass --name {row[0]} (or --name {info.name} to store a second copy)"
        )


def _position(store: Store, repo: str) -> tuple[int, str | None]:
    """The next commit sequence number and the previously ingested head."""
    head_row = store.execute("SELECT head_sha FROM repos WHERE repo = ?", [repo]).fetchone()
    next_seq = store.execute("SELECT coalesce(max(seq) + 1, 0) FROM commits WHERE repo = ?", [repo]).fetchone()[0]
    return next_seq, head_row[0] if head_row else None


def _heads(info: _RepoInfo, more_revs: list[str]) -> list[str]:
    """The commits of the first revision (``info.head``) and of ``more_revs``, each once."""
    heads = [info.head] if info.head else []
    for rev in more_revs:
        try:
            heads.append(git(info.path, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip())
        except GitError:
            raise GitError(f"unknown revision '{rev}' in {info.path}") from None
    return list(dict.fromkeys(heads))


def _previous_heads(store: Store, repo: str, previous_head: str | None) -> list[str]:
    """The heads the previous run ingested: its watermark (several with several ``rev``), else the repo's head."""
    row = store.execute(
        "SELECT watermark FROM ingest_runs WHERE source = ? AND status = 'success' ORDER BY finished_at DESC LIMIT 1",
        [f"git:{repo}"],
    ).fetchone()
    heads = row[0].split() if row and row[0] else []
    return heads if previous_head in heads else [previous_head] if previous_head else []


def _load_state(
    store: Store, repo: str, settings: Settings, commits: list[_Commit]
) -> tuple[ChangeMetricState, dict[bytes, int | None]]:
    """The saved metric state for what ``commits`` touch: their files, authors and old blobs.

    Loading only that slice keeps an incremental run (a CI gate scoring a few commits)
    independent of the size of the history.
    """
    paths = sorted({p for c in commits for entry in c.raw for p in (entry[3], entry[4]) if p})
    authors = sorted({c.email.lower() for c in commits})
    old_blobs = sorted({entry[1].decode("ascii") for c in commits for entry in c.raw if entry[1] != _NULL_BLOB})
    state = ChangeMetricState(settings.fix_pattern)
    state.load(
        store.query(
            "SELECT path, last_time, commits, authors FROM git_file_state WHERE repo = ? AND list_contains(?, path)",
            [repo, paths],
        ),
        store.query(
            "SELECT author, times FROM git_author_state WHERE repo = ? AND list_contains(?, author)", [repo, authors]
        ),
        store.query(
            "SELECT author, subsystem, n FROM git_author_subsystem WHERE repo = ? AND list_contains(?, author)",
            [repo, authors],
        ),
    )
    rows = store.execute(
        "SELECT blob, lines FROM git_blob_lines WHERE repo = ? AND list_contains(?, blob)", [repo, old_blobs]
    ).fetchall()
    return state, {b.encode("ascii"): n for b, n in rows}


def _save_state(store: Store, repo: str, state: ChangeMetricState, blobs: _BlobLines, increment: bool) -> None:
    if state.removed_files:
        gone = pa.table({"path": sorted(state.removed_files)})
        store.connection.register("_gone", gone)
        store.execute("DELETE FROM git_file_state WHERE repo = ? AND path IN (SELECT path FROM _gone)", [repo])
        store.connection.unregister("_gone")
    for table, frame in state.changed_state_frames(repo).items():
        if len(frame):
            store.upsert(table, frame)
    ids, lines = blobs.new()
    if ids and increment:
        # a new commit may bring back content an earlier run stored (a revert): its blob is in
        # the store but was not loaded (only the blobs the new commits change are), so not new
        stored = store.execute(
            # a semi-join on the new ids: list_contains would scan the list once per stored blob
            "SELECT blob FROM git_blob_lines WHERE repo = ? AND blob IN (SELECT unnest(?::VARCHAR[]))",
            [repo, [blob.decode("ascii") for blob in ids]],
        ).fetchall()
        if stored:
            known = {blob.encode("ascii") for (blob,) in stored}
            kept = [i for i, blob in enumerate(ids) if blob not in known]
            ids, lines = tuple(ids[i] for i in kept), tuple(lines[i] for i in kept)
    if ids:
        new = pa.table(
            {
                "repo": pa.array([repo] * len(ids), pa.string()),
                # hex ids are ASCII: Arrow takes the bytes as they are, no Python str per blob
                "blob": pa.array(ids, pa.binary()).view(pa.string()),
                "lines": pa.array(lines, pa.int64()),
            }
        )
        store.append("git_blob_lines", new)


# -- the ingest -------------------------------------------------------------------------
def ingest_git(
    store: Store,
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    rev: str | Sequence[str] = "HEAD",
    settings: Settings | None = None,
    progress: Callable[..., None] | None = None,
    workers: int = 1,
) -> GitIngestResult:
    """Ingest a repository's history (incrementally) with its change metrics.

    Parameters
    ----------
    store : Store
        An open, writable store.
    path : path-like
        A work tree or bare repository with full (non-shallow) history.
    name : str, optional
        Name of the repository in the store (default: its directory name).
    rev : str or sequence of str
        Revision whose history is ingested (default ``HEAD``), or several (``main`` and
        ``stable``, a maintenance branch releases are tagged on): their union is
        ingested once, in one topological order. The first is the repository's head.
    settings : Settings, optional
        For the fix pattern (default: :class:`~releaserisk.config.Settings` defaults).
    progress : callable, optional
        Called as ``progress(commits_done)`` every 1,000 commits and
        ``progress(commits_done, finished=True)`` at the end.
    workers : int
        ``2`` splits a first ingest of a long history (>= 20,000 commits) across two
        git processes (see :func:`_segments`); metrics are still computed in commit order.
        The CLI passes :func:`default_workers` (2 on 3 or more cores).

    Returns
    -------
    GitIngestResult

    Raises
    ------
    GitError
        git is missing, ``path`` is not a repository, or ``rev`` is unknown.
    ShallowCloneError
        The repository is a shallow clone.
    """
    settings = settings or Settings()
    revs = list(dict.fromkeys([rev] if isinstance(rev, str) else rev))
    if not revs:
        raise InputError("give at least one revision to ingest")
    info = _inspect(path, name, revs[0])
    heads = _heads(info, revs[1:])
    if name is None:
        _refuse_a_second_copy(store, info)
    started = datetime.now(UTC)
    with store.transaction():
        seq, previous_head = _position(store, info.name)
        previous_heads = _previous_heads(store, info.name, previous_head)
        new_commits = new_files = 0
        if heads and not set(heads) <= set(previous_heads):
            new_commits, new_files = _ingest_range(store, info, settings, seq, heads, previous_heads, progress, workers)
        store.upsert(
            "repos",
            pa.table(
                {
                    "repo": [info.name],
                    "path": [str(info.path)],
                    "remote_url": pa.array([info.remote_url], pa.string()),
                    "default_branch": pa.array([info.default_branch], pa.string()),
                    "head_sha": pa.array([info.head or previous_head], pa.string()),
                    "ingested_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
                }
            ),
        )
        if new_commits:
            from releaserisk.ingest.steps import after_ingest

            after_ingest(store, ["commits"], repo=info.name, first_seq=seq, bug_labels=settings.bug_labels)
        total = store.execute("SELECT count(*) FROM commits WHERE repo = ?", [info.name]).fetchone()[0]
        result = GitIngestResult(info.name, info.head, new_commits, new_files, total)
        # every head, so the next run reads only what is new on any of them
        store.record_ingest(f"git:{info.name}", started, result.to_dict(), watermark=" ".join(heads) or None)
    return result


#: Full ingests of histories at least this long split git's work across two processes.
PARALLEL_MIN_COMMITS = 20_000
_SPLIT_AT = 0.7


def default_workers() -> int:
    """git processes a first ingest of a long history runs by default: 2 with 3+ usable cores, else 1.

    Each git process and the Python thread computing the metrics is a busy process, so a
    second git log pays only where a core is free for it. On 2 cores it competed with the
    other two: at 1M commits (``benchmarks/ingest_scaling.py``) one git took 168, 224 and
    179 s against 230, 250 and 201 s for two, in three pairs of runs.

    Returns
    -------
    int
        1 or 2, for the ``workers`` argument of :func:`ingest_git`.
    """
    return 2 if usable_cores() >= 3 else 1


def _segments(info: _RepoInfo, heads: list[str], previous_heads: list[str], workers: int) -> list[list[str]]:
    """Revision arguments of the git log processes, oldest history first.

    With two workers the history is split at a commit of the first-parent chain: the
    ancestors of that commit, then the rest. Processed in that order they are a valid
    topological order — the same as ingesting up to the midpoint and then incrementally.
    """
    if previous_heads:
        return [[*heads, "--not", *previous_heads]]
    if workers < 2:
        return [heads]
    total = int(git(info.path, "rev-list", "--count", info.head))
    if total < PARALLEL_MIN_COMMITS:
        return [[info.head]]
    chain = git(info.path, "rev-list", "--first-parent", "--reverse", info.head).split()
    # Later commits cost git more (bigger trees, more rename candidates), so the split
    # sits past the middle of the first-parent chain: on git's own history 0.7 gave
    # halves of 13 s and 15 s, where 0.5 gave 7 s and 22 s.
    split = chain[int(len(chain) * _SPLIT_AT)]
    return [[split], [*heads, "--not", split]]


def _ingest_range(
    store: Store,
    info: _RepoInfo,
    settings: Settings,
    seq: int,
    heads: list[str],
    previous_heads: list[str],
    progress: Callable[..., None] | None,
    workers: int = 1,
) -> tuple[int, int]:
    segments = _segments(info, heads, previous_heads, workers)
    logs = [_GitLog(info.path, [*_LOG_ARGS, *revisions]) for revisions in segments]
    blobs = None
    batch = _Batch(info.name)
    commits = files = 0
    try:
        if previous_heads:
            # An increment: read it first (it is short), skip commits already stored (a
            # rewritten branch), then load just the state those commits touch.
            pending = list(_parse_log(logs[0].chunks()))
            logs[0].finish(info.path)
            known = store.query(
                "SELECT sha FROM commits WHERE repo = ? AND list_contains(?, sha)",
                [info.name, [c.sha for c in pending]],
            )["sha"]
            pending = [c for c in pending if c.sha not in set(known)]
            state, known_blobs = _load_state(store, info.name, settings, pending)
            streams: list[Iterable[_Commit]] = [pending]
        else:
            state, known_blobs = ChangeMetricState(settings.fix_pattern), {}
            streams = [_parse_log(log.chunks()) for log in logs]
        blobs = _BlobLines(info.path, known_blobs)
        for index, stream in enumerate(streams):
            for commit in stream:
                files += _add_commit(batch, commit, seq, state, blobs)
                seq += 1
                commits += 1
                if commits % _FLUSH_EVERY == 0:
                    batch.flush(store)
                if progress and commits % _PROGRESS_EVERY == 0:
                    progress(commits)
            if not previous_heads:
                logs[index].finish(info.path)
        batch.flush(store)
        _save_state(store, info.name, state, blobs, increment=bool(previous_heads))
    finally:
        if blobs is not None:
            blobs.close()
        for log in logs:
            log.kill()
        if progress:
            progress(commits, finished=True)
    return commits, files


def _add_commit(batch: _Batch, commit: _Commit, seq: int, state: ChangeMetricState, blobs: _BlobLines) -> int:
    """Append one commit's rows to the batch; return its number of file changes."""
    c = batch.commits
    c["sha"].append(commit.sha)
    c["parents"].append(commit.parents)
    c["author"].append(commit.author)
    c["author_email"].append(commit.email)
    c["authored_at"].append(commit.authored)
    c["committed_at"].append(commit.committed)
    c["message"].append(commit.message)
    is_merge = len(commit.parents) > 1
    c["is_merge"].append(is_merge)
    c["seq"].append(seq)
    if is_merge:
        return 0
    changes = _file_changes(commit, blobs)
    f = batch.files
    for ch in changes:
        f["sha"].append(commit.sha)
        f["path"].append(ch.path)
        f["old_path"].append(ch.old_path)
        f["status"].append(ch.status)
        f["added"].append(ch.added)
        f["deleted"].append(ch.deleted)
    metrics = state.observe(seq, commit.email.lower(), float(commit.committed), commit.message, changes)
    feats = batch.features
    feats["sha"].append(commit.sha)
    for key, value in zip(list(feats)[1:], metrics, strict=True):
        feats[key].append(value)
    return len(changes)


@dataclass(frozen=True)
class TagIngestResult:
    """What one ``ingest git-tags`` did, tag by tag.

    Attributes
    ----------
    repo, service, environment : str
        Where the tags were recorded.
    frame : DataFrame
        One row per tag looked at: ``tag``, ``sha`` (the commit it names, annotated tags
        peeled), ``at`` (tagger date, else commit date; UTC), ``lightweight`` (a tag without
        a tagger date: ``at`` is its commit's date), ``kind`` (see
        :func:`~releaserisk.ingest.tags.classify_tag`), ``recorded`` (bool), ``skipped_because``
        (None when recorded) and ``in_history`` (the commit is in the ingested history).
    removed : list of str
        Tags an earlier run recorded that are no longer taken (their deployments deleted).
    history_ingested : bool
        Whether the store holds any commit of the repository.
    kept : dict
        Deployment ids of recorded tags left as an explicit source wrote them (a
        ``deployments`` file declaring a release a hotfix), by that source: explicit rows
        win over derived ones (:mod:`releaserisk.ingest.explicit`).
    """

    repo: str
    service: str
    environment: str
    frame: pd.DataFrame
    removed: list[str]
    history_ingested: bool = True
    kept: dict[str, list[str]] = field(default_factory=dict)

    @property
    def deployments(self) -> int:
        """Tags recorded as deployments."""
        return int(self.frame["recorded"].sum())

    @property
    def skipped(self) -> dict[str, int]:
        """Tags not recorded, counted per reason."""
        reasons = self.frame.loc[~self.frame["recorded"], "skipped_because"]
        return {str(reason): int(n) for reason, n in reasons.value_counts(sort=True).items()}

    @property
    def lightweight(self) -> int:
        """Recorded tags that are lightweight: dated by their commit, so the release commit's lead time is 0."""
        return int((self.frame["recorded"] & self.frame["lightweight"]).sum())

    @property
    def unreachable(self) -> list[str]:
        """Recorded tags whose commit is not in the ingested history (their releases get no changes)."""
        return self.frame.loc[self.frame["recorded"] & ~self.frame["in_history"], "tag"].tolist()

    def summary(self, with_warning: bool = True) -> str:
        """Counts, skipped tags per reason and (``with_warning``) a warning naming tags outside the history."""
        lines = [f"recorded {self.deployments:,} tag{'' if self.deployments == 1 else 's'} as "
                 f"{self.environment} deployments of {self.service}"]  # fmt: skip
        if self.lightweight:
            n = self.lightweight
            lines.append(f"{n:,} of them {'is a lightweight tag' if n == 1 else 'are lightweight tags'}: dated by "
                         "the tagged commit (no tagger date), so each release commit's lead time is 0")  # fmt: skip
        kept = kept_line(self.kept)
        if kept:
            lines.append(kept)
        for reason, n in self.skipped.items():
            lines.append(f"skipped {n:,} tag{'' if n == 1 else 's'}: {reason}")
        if self.removed:
            lines.append(f"removed {len(self.removed):,} earlier recorded tag(s) no longer taken: "
                         f"{_first(self.removed)}")  # fmt: skip
        warning = self.warning() if with_warning else None
        if warning:
            lines.append(f"warning: {warning}")
        return "\n".join(lines)

    def warning(self) -> str | None:
        """One line naming the recorded tags whose commit is not in the ingested history, or None."""
        missing = self.unreachable
        if not missing:
            return None
        if not self.history_ingested:
            return (
                f"no history of '{self.repo}' is ingested, so its {len(missing):,} release tag(s) get no changes and "
                "no lead time yet: run 'releaserisk ingest git PATH' (the tags link once their commits are in)"
            )
        return (
            f"{len(missing):,} release tag{'s are' if len(missing) > 1 else ' is'} not in the ingested history of "
            f"'{self.repo}' ({_first(missing)}), so {'they get' if len(missing) > 1 else 'it gets'} no changes "
            "and no lead time, and the next release counts its changes from the last release in the history: "
            "ingest the branches they are on too (ingest git PATH --rev main --rev BRANCH)"
        )

    def to_dict(self) -> dict:
        """JSON-safe counts, reasons and tag lists."""
        recorded = self.frame.loc[self.frame["recorded"], "tag"].tolist()
        return {"repo": self.repo, "service": self.service, "environment": self.environment,
                "deployments": self.deployments, "recorded": recorded, "skipped": self.skipped,
                "unreachable": self.unreachable, "removed": list(self.removed), "lightweight": self.lightweight,
                "kept": {source: list(ids) for source, ids in self.kept.items()}}  # fmt: skip


def _first(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more:,} more" if more > 0 else "")


def _list_tags(path: Path) -> pd.DataFrame:
    """Every tag with the commit it names and its release time (the pattern is applied by :func:`_select_tags`,
    which says what it left out: a tag git's own ref filter leaves out is not seen to be skipped, and a deployment
    an earlier run recorded for it would never be removed)."""
    out = git(
        path,
        "for-each-ref",
        "--format=%(refname:short)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)"
        "%00%(creatordate:unix)",
        "refs/tags",
    )
    rows = [line.split("\0") for line in out.splitlines() if line]
    frame = pd.DataFrame(rows, columns=["tag", "object", "type", "peeled", "peeled_type", "at"])
    # an annotated tag's object is the tag itself: its commit is the peeled object; a tag
    # of a tag (or of a tree) is peeled by git itself
    peeled = frame["peeled"].where(frame["peeled_type"] == "commit")
    frame["sha"] = frame["object"].where(frame["type"] == "commit", peeled)
    for index in frame.index[frame["sha"].isna() & frame["type"].eq("tag")]:
        with contextlib.suppress(GitError):  # a tag of a tree or a blob names no commit
            ref = f"refs/tags/{frame.tag[index]}^{{commit}}"
            frame.loc[index, "sha"] = git(path, "rev-parse", "--verify", ref).strip()
    frame["at"] = pd.to_datetime(frame["at"].astype("int64"), unit="s", utc=True)
    frame["lightweight"] = frame["type"].eq("commit")  # no tag object: creatordate is the commit's date
    return frame[["tag", "sha", "at", "lightweight"]]


def _select_tags(tags: pd.DataFrame, pattern: str | None, include_prereleases: bool, now: datetime) -> pd.DataFrame:
    """Mark the tags taken as releases and say why each other one is not."""
    from releaserisk.ingest.tags import TAG_KINDS, classify_tag
    from releaserisk.inputs import FUTURE_TOLERANCE

    tags = tags.assign(kind=[classify_tag(t) for t in tags["tag"]])
    # a chosen pattern takes what it matches but pre-releases and branch names; the
    # default takes final version numbers only
    wanted = {"release", "other", "major"} if pattern else {"release"}
    if include_prereleases:
        wanted.add("prerelease")
    reason = tags["kind"].map(TAG_KINDS).where(~tags["kind"].isin(wanted))
    reason = reason.where(tags["sha"].notna(), "names no commit")
    # a lightweight tag is dated by its commit, whose clock may be wrong (a commit of 2030): a release that has
    # not happened yet would stretch every default DORA window and the weekly report's latest week to it
    future = tags["at"] > pd.Timestamp(now) + FUTURE_TOLERANCE
    reason = reason.where(
        ~future | reason.notna(), "dated after this ingest's clock (a wrong clock in the tag or its commit)"
    )
    if pattern:
        reason = reason.where([_matches(t, pattern) for t in tags["tag"]], f"does not match the pattern {pattern}")
    return tags.assign(recorded=reason.isna(), skipped_because=reason.astype(object).where(reason.notna(), None))


def _matches(tag: str, pattern: str) -> bool:
    """Whether ``tag`` matches ``pattern`` as git's ref filter reads it: a glob over the whole name (``*`` also
    crossing a ``/``: ``*`` takes ``pkg/1.0``), or the name's leading path components (``pkg`` takes ``pkg/1.0``)."""
    return fnmatch.fnmatchcase(tag, pattern) or tag.startswith(pattern.rstrip("/") + "/")


def ingest_git_tags(
    store: Store,
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    service: str,
    environment: str = "production",
    name: str | None = None,
    include_prereleases: bool = False,
) -> TagIngestResult:
    """Record each release tag as a successful deployment at the tag's date.

    For libraries that release by tag. By default every tag naming a final release is
    taken — a PEP 440 or SemVer version without pre-release or development parts
    (``v1.2.3``, ``1.2``, ``flask-2.0.1``; not ``1.2.3rc1``, ``2.0.0-beta.1``,
    ``1.2.3.dev0``, nor branch-like names ``1.x``, ``8.0.x``): see
    :func:`~releaserisk.ingest.tags.classify_tag`. The deployment id is
    ``tag:<service>:<tag>``, its sha the tagged commit (annotated tags peeled), its time
    the tagger date (annotated tags) or the commit date (lightweight tags: the release
    commit's lead time is then 0; the summary counts them). A tag an earlier run recorded
    for this service and repository that is no longer taken — not matched by ``pattern``, no
    longer a release, or deleted from the repository — has its deployment removed. A deployment an explicit source
    wrote under a tag's id (a ``deployments`` file marking a release a hotfix) is kept as
    it is: explicit rows win over derived ones.

    Parameters
    ----------
    store : Store
    path : path-like
        The repository (work tree or bare).
    pattern : str, optional
        Glob over tag names (``release-*``; ``*`` crosses ``/``, and a leading path component
        ``pkg`` takes ``pkg/1.0``, as git's ref filter does); it takes what it matches except
        pre-releases and branch-like names, and the summary counts the tags it does not match.
        Default: final version tags.
    service : str
        The service the tags deploy.
    environment : str
        Environment of the recorded deployments.
    name : str, optional
        Repository name in the store (default: the directory name, as :func:`ingest_git`).
    include_prereleases : bool
        Take pre-releases and development releases too.

    Returns
    -------
    TagIngestResult
        Tag by tag: recorded or why not, and whether its commit is in the ingested history.

    Raises
    ------
    GitError
        ``path`` is not a repository.
    """
    info = _inspect(path, name, "HEAD")
    started = datetime.now(UTC)
    tags = _select_tags(_list_tags(info.path), pattern, include_prereleases, started)
    taken = tags[tags["recorded"]]
    frame = pa.table(
        {
            "deployment_id": pa.array([f"tag:{service}:{tag}" for tag in taken["tag"]], pa.string()),
            "service": pa.array([service] * len(taken), pa.string()),
            "repo": pa.array([info.name] * len(taken), pa.string()),
            "environment": pa.array([environment] * len(taken), pa.string()),
            "sha": pa.array(taken["sha"].tolist(), pa.string()),
            "started_at": pa.array(taken["at"], pa.timestamp("us", tz="UTC")),
            "finished_at": pa.array(taken["at"], pa.timestamp("us", tz="UTC")),
            "status": pa.array(["success"] * len(taken), pa.string()),
            "kind": pa.array(["regular"] * len(taken), pa.string()),
            "source": pa.array(["git-tag"] * len(taken), pa.string()),
        }
    )
    # what an earlier run recorded for this service and repository and this one does not take: a tag no longer
    # matching, no longer a release by the rules, or deleted from the repository (a withdrawn release)
    recorded = [f"tag:{service}:{tag}" for tag in taken["tag"]]
    stale = """FROM deployments WHERE source = 'git-tag' AND service = $service AND repo = $repo
               AND starts_with(deployment_id, $prefix) AND NOT list_contains($recorded, deployment_id)"""
    params = {"service": service, "repo": info.name, "prefix": f"tag:{service}:", "recorded": recorded}
    with store.transaction():
        removed = store.execute(f"SELECT deployment_id {stale} ORDER BY finished_at", params).fetchall()
        if removed:
            store.execute(f"DELETE {stale}", params)
        frame, kept = keep_explicit_deployments(store, frame)
        if frame.num_rows:
            store.upsert("deployments", frame)
        if frame.num_rows or removed:
            from releaserisk.ingest.steps import after_ingest

            after_ingest(store, ["deployments"])
        known = store.execute(
            "SELECT sha FROM commits WHERE repo = ? AND list_contains(?, sha)", [info.name, taken["sha"].tolist()]
        ).fetchall()
        result = TagIngestResult(
            repo=info.name,
            service=service,
            environment=environment,
            frame=tags.assign(in_history=tags["sha"].isin({sha for (sha,) in known})).reset_index(drop=True),
            removed=[deployment.split(":", 2)[2] for (deployment,) in removed],
            kept=kept,
            history_ingested=bool(
                store.execute("SELECT count(*) FROM commits WHERE repo = ?", [info.name]).fetchone()[0]
            ),
        )
        store.record_ingest(f"git-tags:{info.name}", started, {"rows": result.deployments})
    return result
