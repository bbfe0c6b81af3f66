"""Change metrics (Kamei et al., TSE 2013), computed incrementally in commit order.

:class:`ChangeMetricState` holds everything the 14 metrics need about the past —
per file, per author, per (author, subsystem) — and updates it commit by commit, so
a whole history is measured in one pass with no checkout and no per-commit git call.
Its state is saved to and restored from the store, so an incremental ingest resumes
exactly where the last one stopped.

Definitions (and where they depart from the paper)
--------------------------------------------------
Let a commit touch files F (submodules excluded; a renamed file is counted under its
new path and inherits the old path's history first).

NS       distinct subsystems: the first path component (``""`` for files at the root).
ND       distinct directories (the path's parent; ``""`` at the root).
NF       len(F), deleted and added files included.
entropy  −Σ p_f log2 p_f with p_f = (added_f + deleted_f) / (LA + LD); 0 when nothing
         changed. ``entropy_norm`` = entropy / log2(NF) for NF > 1 (Kamei's published
         data uses the normalised form; Zeng et al. the raw one).
LA, LD   lines added / deleted, summed over F (binary files count 0). Stored raw; the
         Kamei data divides LA and LD by LT (``releaserisk.model.read_feature_table``
         converts such tables back to raw counts).
LT       lines in the touched files before the change, summed over F (Kamei's data
         divides by NF). Exact: taken from a per-blob line count.
FIX      the message matches the configured fix pattern, or (once issues or pull
         requests are in the store) the commit cites an issue labelled as a bug or belongs
         to a pull request so labelled (``releaserisk.labels.mark_tracked_fixes``).
NDEV     distinct authors of earlier commits to any file of F.
AGE      mean, over files of F with history, of the days since that file's previous
         change (0 when no file has history). Ages use committer time, which follows
         commit order far better than author time; a negative gap (clock skew) counts 0.
NUC      distinct earlier commits that touched any file of F (the union; Zeng et al.'s
         data, where NUC often exceeds NF, uses this reading).
EXP      the author's earlier non-merge commits.
REXP     Σ over those commits of 1 / (1 + years between it and this commit).
         (Past 4,096 commits of one author, older commits are summed by moments of
         1,024-commit chunks, or all but the newest chunk by one local expansion: equal to the
         plain sum within 1e-14 relative, in time linear in the history; see ``_AuthorHistory``.)
SEXP     Σ over the subsystems of this commit of the author's earlier commits touching it.

History is per path: a deleted file's history ends with it (a later file at that path
starts afresh); a rename carries history to the new path. Merge commits are not
measured and do not update history (their content changes are their parents').
Identities are mailmap-canonical e-mail addresses, lower-cased.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from releaserisk.definitions import production_deployment

__all__ = [
    "DEPLOYMENT_FEATURES",
    "FEATURE_VERSION",
    "KAMEI_FEATURES",
    "ChangeMetricState",
    "FileChange",
    "change_features_of",
    "deployment_batch_features",
    "latest_production_deployment",
]

#: Bump when a definition above changes; stored with every feature row.
FEATURE_VERSION = 1

#: The 14 change metrics, in the paper's order.
KAMEI_FEATURES = (
    "ns", "nd", "nf", "entropy", "la", "ld", "lt", "fix",
    "ndev", "age", "nuc", "exp", "rexp", "sexp",
)  # fmt: skip

_SECONDS_PER_DAY = 86_400.0
_SECONDS_PER_YEAR = 365.25 * _SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file touched by a commit, as the metrics need it.

    ``lines_before`` is the line count of the file before the change (0 for an added
    or binary file); ``added``/``deleted`` are ``None`` for binary files.
    """

    path: str
    old_path: str | None
    status: str
    added: int | None
    deleted: int | None
    lines_before: int


def _subsystem(path: str) -> str:
    head, sep, _ = path.partition("/")
    return head if sep else ""


def _directory(path: str) -> str:
    head, sep, _ = path.rpartition("/")
    return head if sep else ""


#: REXP sums 1 / (1 + years) over every earlier commit of the author: O(n) per commit, so
#: O(n^2) over an author's history (a bot or a maintainer with 100,000 commits). Complete
#: chunks of this many of an author's commits are summarised by moments instead (see
#: :meth:`_AuthorHistory.rexp`); below it the sum is the plain one, bit for bit.
_REXP_CHUNK = 1024
_REXP_TERMS = 30  # series terms; with ratio <= 1/4 the truncation is < 4^-30 ~ 1e-18 relative
_REXP_RATIO = 0.25
_REXP_PLAIN_BELOW = 4 * _REXP_CHUNK  # shorter histories: the plain sum is as fast
_POWERS = np.arange(_REXP_TERMS)


class _AuthorHistory:
    """Commit times of one author in a growable numpy buffer (REXP is a vector sum).

    Every complete chunk of :data:`_REXP_CHUNK` times also keeps its centre ``c``, radius
    ``r`` (largest distance of a time from ``c``), latest time and normalised moments
    ``m_k = sum(((t_i - c) / r) ** k)``. For a commit at ``t`` no earlier than the chunk's
    latest time, with ``u = Y + t - c`` (``Y`` a year in seconds) and ``r <= u / 4``,

        sum_i 1 / (1 + (t - t_i) / Y) = sum_i Y / (u - (t_i - c)) = (Y / u) * sum_k m_k (r / u) ** k,

    a geometric series truncated after :data:`_REXP_TERMS` terms (relative error below
    1e-17, so the result equals the plain sum to within rounding). Chunks that do not
    qualify (clock skew, a chunk spanning years) and the incomplete last chunk are summed
    plainly. Chunks are fixed by position in the author's history, so a history loaded from
    the store gives exactly the values the streaming pass gave.

    That still costs a commit time in the number of chunks (n / 1024). So, as each chunk
    completes, the times of all complete chunks but the newest (the *far* times, latest
    ``l``) are also gathered into one local expansion around ``s0 = Y + t0`` (``t0`` the time
    that completed the chunk; ``rho = s0 - l``, ``v_i = rho / (s0 - t_i) <= 1``):

        sum_i Y / (s0 + d - t_i) = (Y / rho) * sum_k b_k (-d / rho) ** k,   b_k = sum_i v_i ** (k + 1),

    valid for a commit at ``t = t0 + d`` with ``|d| <= rho / 4`` and no far time after ``t``
    (truncation below 4^-30 relative, as for the chunks): a Horner evaluation of
    :data:`_REXP_TERMS` coefficients plus the plain sum of at most 2,047 near times. The
    expansion costs O(n) once per 1,024 commits of the author; a commit outside its range
    (clock skew, an author idle for months) takes the chunks. It is built at fixed
    positions too (each chunk's completion), so a loaded history gives the streamed values.
    (The local expansion of the fast multipole method, Greengard and Rokhlin, J. Comput.
    Phys. 73, 1987, for the kernel ``1 / (s - t)``.)
    """

    __slots__ = ("_arrays", "centres", "far", "latest", "moments", "n", "radii", "times")

    def __init__(self, times: Sequence[float] = ()) -> None:
        self.times = np.zeros(max(16, 2 * len(times)))
        self.times[: len(times)] = times
        self.n = len(times)
        self.centres: list[float] = []
        self.radii: list[float] = []
        self.latest: list[float] = []
        self.moments: list[np.ndarray] = []
        self._arrays: tuple | None = None
        self.far: tuple | None = None
        for start in range(0, self.n - _REXP_CHUNK + 1, _REXP_CHUNK):
            self._summarise(start)
        self._expand_far()

    def append(self, t: float) -> None:
        if self.n == len(self.times):
            self.times = np.concatenate([self.times, np.zeros(len(self.times))])
        self.times[self.n] = t
        self.n += 1
        if self.n % _REXP_CHUNK == 0:
            self._summarise(self.n - _REXP_CHUNK)
            self._expand_far()

    def _summarise(self, start: int) -> None:
        chunk = self.times[start : start + _REXP_CHUNK]
        low, high = float(chunk.min()), float(chunk.max())
        centre = (low + high) / 2
        radius = max(high - centre, centre - low) or 1.0
        scaled = (chunk - centre) / radius
        self.centres.append(centre)
        self.radii.append(radius)
        self.latest.append(high)
        self.moments.append(np.sum(scaled[:, None] ** _POWERS, axis=0))
        self._arrays = None

    def _expand_far(self) -> None:
        """The local expansion of the far times, as of the newest complete chunk (see the class)."""
        complete = self.n // _REXP_CHUNK * _REXP_CHUNK
        far = self.times[: complete - _REXP_CHUNK]
        self.far = None
        if complete < _REXP_PLAIN_BELOW or not len(far):
            return
        s0 = _SECONDS_PER_YEAR + float(self.times[complete - 1])
        rho = s0 - float(far.max())
        if rho <= 0:  # clock skew: a far time more than a year after t0
            return
        v = rho / (s0 - far)
        power = v.copy()
        coefficients = []
        for _ in range(_REXP_TERMS):
            coefficients.append(float(power.sum()))
            power *= v
        self.far = (s0 - _SECONDS_PER_YEAR, rho, s0 - rho, coefficients[::-1], complete - _REXP_CHUNK)

    def rexp(self, t: float) -> float:
        if self.n < _REXP_PLAIN_BELOW:
            return _plain_rexp(self.times[: self.n], t)
        if self.far is not None:
            t0, rho, latest, coefficients, near = self.far
            if latest <= t and abs(t - t0) <= _REXP_RATIO * rho:
                x = (t0 - t) / rho
                value = 0.0
                for b in coefficients:  # Horner, highest power first
                    value = value * x + b
                return _SECONDS_PER_YEAR / rho * value + _plain_rexp(self.times[near : self.n], t)
        if self._arrays is None:
            self._arrays = (np.array(self.centres), np.array(self.radii), np.array(self.latest),
                            np.array(self.moments))  # fmt: skip
        centres, radii, latest, moments = self._arrays
        u = _SECONDS_PER_YEAR + t - centres
        summarised = (latest <= t) & (radii <= _REXP_RATIO * u)
        tail = self.times[len(centres) * _REXP_CHUNK : self.n]
        if summarised.all():
            return _series(u, radii, moments) + _plain_rexp(tail, t)
        if not summarised.any():
            return _plain_rexp(self.times[: self.n], t)
        rest = [self.times[j * _REXP_CHUNK : (j + 1) * _REXP_CHUNK] for j in np.flatnonzero(~summarised)]
        return (_series(u[summarised], radii[summarised], moments[summarised])
                + _plain_rexp(np.concatenate([*rest, tail]), t))  # fmt: skip


def _series(u: np.ndarray, radii: np.ndarray, moments: np.ndarray) -> float:
    """Sum over summarised chunks of ``(Y / u) * sum_k m_k (r / u) ** k`` (see :class:`_AuthorHistory`)."""
    powers = (radii / u)[:, None] ** _POWERS
    return float(np.einsum("i,ij,ij->", _SECONDS_PER_YEAR / u, moments, powers))


def _plain_rexp(times: np.ndarray, t: float) -> float:
    if not len(times):
        return 0.0
    years = np.maximum(t - times, 0.0) / _SECONDS_PER_YEAR
    return float(np.sum(1.0 / (1.0 + years)))


#: A file's set of commits this large becomes a bitmap (see :func:`_union_size`).
_BITMAP_FROM = 512


def _popcount(words: np.ndarray) -> int:
    """Set bits in a ``uint64`` array."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        # at most 64 per word, so uint32 holds 67M words' count: twice as fast a sum of uint8s as int64
        return int(np.bitwise_count(words).sum(dtype=np.uint32))
    return int.from_bytes(words.tobytes(), "little").bit_count()


class _Commits:
    """Sequence numbers of the commits that touched one file (NUC counts their union).

    A set of ints; from :data:`_BITMAP_FROM` commits on a bitmap instead (bit ``seq`` of a
    growable ``uint64`` array, 1 bit per commit of the history instead of a set entry of
    about 70 bytes), so the union with another large set is a bitwise OR. ``top`` is the
    largest sequence number: the bitmap's words past it are zero.
    """

    __slots__ = ("bits", "n", "seqs", "top")

    def __init__(self, seqs=()) -> None:
        self.seqs: set[int] | None = set(seqs)
        self.n = len(self.seqs)
        self.top = max(self.seqs, default=-1)
        self.bits: np.ndarray | None = None
        if self.n >= _BITMAP_FROM:
            self._make_bits()

    def __len__(self) -> int:
        return self.n

    def add(self, seq: int) -> None:
        self.top = max(self.top, seq)
        if self.bits is None:
            self.seqs.add(seq)
            self.n = len(self.seqs)
            if self.n >= _BITMAP_FROM:
                self._make_bits()
            return
        word = seq >> 6
        if word >= len(self.bits):
            self.bits = np.concatenate([self.bits, np.zeros(max(word + 1, len(self.bits)), np.uint64)])
        bit = np.uint64(1 << (seq & 63))
        if not self.bits[word] & bit:
            self.bits[word] |= bit
            self.n += 1

    def _make_bits(self) -> None:
        seqs = np.fromiter(self.seqs, np.int64, len(self.seqs))
        bits = np.zeros(2 * (int(seqs.max()) // 64 + 1), np.uint64)
        np.bitwise_or.at(bits, seqs >> 6, np.left_shift(np.uint64(1), (seqs & 63).astype(np.uint64)))
        self.bits = bits
        self.seqs = None

    def ordered(self) -> np.ndarray:
        """The sequence numbers, ascending (``int64``)."""
        if self.bits is None:
            return np.sort(np.fromiter(self.seqs, np.int64, len(self.seqs)))
        return np.flatnonzero(np.unpackbits(self.bits.view(np.uint8), bitorder="little"))


def _list_column(arrays: list[np.ndarray], dtype: type) -> pa.Array:
    """One Arrow list per numpy array, built from their concatenation (no Python object per element)."""
    offsets = np.zeros(len(arrays) + 1, np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    values = np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)
    return pa.LargeListArray.from_arrays(offsets, values)


def _union_size(sets: list[_Commits]) -> int:
    """``len(set().union(*sets))``, in time of the small sets plus a bitwise OR of the large ones.

    A hot file's set of commits grows with the history; copying it into a union for every
    commit that touches it and another file made NUC quadratic in the history's length.
    The OR spans the words up to the largest sequence number only (not the bitmaps'
    doubled capacity), and the small sets' members are tested against it bit by bit.
    """
    unique = list({id(s): s for s in sets}.values())
    large = [s for s in unique if s.bits is not None]
    small = [s for s in unique if s.bits is None]
    if not large:
        largest = max(small, key=len)
        others: set = set()
        for commits in small:
            if commits is not largest:
                others.update(commits.seqs.difference(largest.seqs))  # iterates over the smaller set
        return len(largest) + len(others)
    if len(large) == 1:
        union, size = large[0].bits, large[0].n
    else:
        newest = max(large, key=lambda s: s.top)  # its bitmap reaches the last word
        words = newest.top // 64 + 1
        union = newest.bits[:words].copy()
        for commits in large:
            if commits is not newest:
                part = commits.bits[:words]
                union[: len(part)] |= part
        size = _popcount(union)
    if not small:
        return size
    members = set().union(*(s.seqs for s in small))
    seqs = np.fromiter(members, np.int64, len(members))
    word = seqs >> 6
    inside = word < len(union)
    marked = (union[np.where(inside, word, 0)] >> (seqs & 63).astype(np.uint64)) & np.uint64(1)
    return size + int(np.count_nonzero(~(inside & marked.astype(bool))))


class ChangeMetricState:
    """Incremental Kamei change metrics over a history processed in commit order.

    Parameters
    ----------
    fix_pattern : str
        Regular expression marking a message as a bug fix.
    """

    def __init__(self, fix_pattern: str) -> None:
        self.fix_regex = re.compile(fix_pattern)
        # path -> [last change time, set of commit seqs, set of authors]
        self.files: dict[str, list] = {}
        self.authors: dict[str, _AuthorHistory] = {}
        self.author_subsystems: dict[tuple[str, str], int] = {}
        self.dirty_files: set[str] = set()
        self.removed_files: set[str] = set()
        self.dirty_authors: set[str] = set()
        self.dirty_author_subsystems: set[tuple[str, str]] = set()

    def observe(self, seq: int, author: str, when: float, message: str, files: Sequence[FileChange]) -> tuple:
        """Measure one non-merge commit, then add it to the history.

        Returns
        -------
        tuple
            ``(ns, nd, nf, entropy, entropy_norm, la, ld, lt, fix, ndev, age, nuc, exp,
            rexp, sexp)``.
        """
        history = self.files
        for change in files:
            if change.old_path is not None and change.old_path != change.path and change.status == "R":
                moved = history.pop(change.old_path, None)
                if moved is not None:
                    history[change.path] = moved
                    self.removed_files.add(change.old_path)
                    self.dirty_files.discard(change.old_path)

        nf = len(files)
        subsystems = {_subsystem(c.path) for c in files}
        nd = len({_directory(c.path) for c in files})
        la = ld = lt = 0
        churn = []
        for c in files:
            a = c.added or 0
            d = c.deleted or 0
            la += a
            ld += d
            lt += c.lines_before
            churn.append(a + d)
        total = la + ld
        entropy = 0.0
        if total:
            for x in churn:
                if x:
                    p = x / total
                    entropy -= p * math.log2(p)
        entropy_norm = entropy / math.log2(nf) if nf > 1 else 0.0

        prior = [history[c.path] for c in files if c.path in history]
        if len(prior) == 1:
            ndev = len(prior[0][2])
            nuc = len(prior[0][1])
        elif prior:
            ndev = len(set().union(*(h[2] for h in prior)))
            nuc = _union_size([h[1] for h in prior])
        else:
            ndev = nuc = 0
        age = sum(max(when - h[0], 0.0) for h in prior) / len(prior) / _SECONDS_PER_DAY if prior else 0.0

        author_history = self.authors.get(author)
        exp = author_history.n if author_history else 0
        rexp = author_history.rexp(when) if author_history else 0.0
        sexp = sum(self.author_subsystems.get((author, s), 0) for s in subsystems)
        fix = self.fix_regex.search(message) is not None

        self._update(seq, author, when, files, subsystems)
        return (
            len(subsystems),
            nd,
            nf,
            entropy,
            entropy_norm,
            la,
            ld,
            lt,
            fix,
            ndev,
            age,
            nuc,
            exp,
            rexp,
            sexp,
        )

    def _update(self, seq: int, author: str, when: float, files: Sequence[FileChange], subsystems: set) -> None:
        history = self.files
        for c in files:
            if c.status == "D":
                if history.pop(c.path, None) is not None:
                    self.removed_files.add(c.path)
                self.dirty_files.discard(c.path)
                continue
            entry = history.get(c.path)
            if entry is None:
                history[c.path] = [when, _Commits((seq,)), {author}]
            else:
                entry[0] = when
                entry[1].add(seq)
                entry[2].add(author)
            self.dirty_files.add(c.path)
            self.removed_files.discard(c.path)
        author_history = self.authors.get(author)
        if author_history is None:
            author_history = self.authors[author] = _AuthorHistory()
        author_history.append(when)
        self.dirty_authors.add(author)
        for s in subsystems:
            key = (author, s)
            self.author_subsystems[key] = self.author_subsystems.get(key, 0) + 1
            self.dirty_author_subsystems.add(key)

    # -- persistence -----------------------------------------------------------------
    def changed_state_frames(self, repo: str) -> dict[str, pa.Table]:
        """The state rows changed since the last load, as Arrow tables for the store.

        Lists of commits and times go from numpy straight into Arrow list columns (no
        Python int or float per element: at 1M commits they were millions of objects).
        """
        files = sorted(self.dirty_files)
        authors = sorted(self.dirty_authors)
        pairs = sorted(self.dirty_author_subsystems)
        return {
            "git_file_state": pa.table(
                {
                    "repo": pa.array([repo] * len(files), pa.string()),
                    "path": pa.array(files, pa.string()),
                    "last_time": pa.array([self.files[p][0] for p in files], pa.float64()),
                    "commits": _list_column([self.files[p][1].ordered() for p in files], np.int64),
                    "authors": pa.array([sorted(self.files[p][2]) for p in files], pa.list_(pa.string())),
                }
            ),
            "git_author_state": pa.table(
                {
                    "repo": pa.array([repo] * len(authors), pa.string()),
                    "author": pa.array(authors, pa.string()),
                    "times": _list_column([self.authors[a].times[: self.authors[a].n] for a in authors], np.float64),
                }
            ),
            "git_author_subsystem": pa.table(
                {
                    "repo": pa.array([repo] * len(pairs), pa.string()),
                    "author": pa.array([a for a, _ in pairs], pa.string()),
                    "subsystem": pa.array([s for _, s in pairs], pa.string()),
                    "n": pa.array([self.author_subsystems[p] for p in pairs], pa.int64()),
                }
            ),
        }

    def load(self, files: pd.DataFrame, authors: pd.DataFrame, author_subsystems: pd.DataFrame) -> None:
        """Restore state saved by :meth:`changed_state_frames` (rows of one repository)."""
        self.files = {
            p: [float(t), _Commits(int(x) for x in c), set(a)]
            for p, t, c, a in zip(files["path"], files["last_time"], files["commits"], files["authors"], strict=True)
        }
        self.authors = {
            a: _AuthorHistory([float(x) for x in t]) for a, t in zip(authors["author"], authors["times"], strict=True)
        }
        self.author_subsystems = {
            (a, s): int(n)
            for a, s, n in zip(
                author_subsystems["author"],
                author_subsystems["subsystem"],
                author_subsystems["n"],
                strict=True,
            )
        }


#: Features of a deployment's batch (DESIGN.md section 4, "Deployment risk").
DEPLOYMENT_FEATURES = (
    "batch_size", "churn", "max_risk", "mean_risk", "any_defect", "authors",
    "hours_since_previous", "hour", "weekday", "is_hotfix", "is_rollback", "skipped_stage",
)  # fmt: skip


def deployment_batch_features(store, production_environments, pre_production: str | None) -> pd.DataFrame:
    """One row per successful production deployment with the features of its batch.

    Change risk comes from the newest ``risk_scores`` of each commit (score the history
    first); a batch without scored changes has risk 0, and ``scored_changes`` (not a
    feature) counts the changes that have a score. ``skipped_stage`` is 1 when the
    deployed sha had not reached ``pre_production`` before, for a service that deploys
    there at all.

    Returns
    -------
    DataFrame
        ``deployment_id, service, finished_at`` and :data:`DEPLOYMENT_FEATURES`.
    """
    return store.query(
        f"""
        WITH prod AS (
            SELECT deployment_id, service, sha, finished_at, coalesce(kind, 'regular') AS kind,
                   lag(finished_at) OVER (PARTITION BY service ORDER BY finished_at, deployment_id) AS previous_at
            FROM deployments WHERE {production_deployment()}
        ),
        scores AS (SELECT repo, sha, arg_max(probability, scored_at) AS p FROM risk_scores GROUP BY 1, 2),
        batch AS (
            SELECT dc.deployment_id, count(*) AS batch_size, sum(coalesce(f.la, 0) + coalesce(f.ld, 0)) AS churn,
                   coalesce(max(s.p), 0) AS max_risk, coalesce(avg(s.p), 0) AS mean_risk,
                   1 - coalesce(product(1 - s.p), 1) AS any_defect, count(DISTINCT c.author_email) AS authors,
                   count(s.p) AS scored_changes
            FROM deployment_changes dc
            LEFT JOIN change_features f ON f.repo = dc.repo AND f.sha = dc.sha
            LEFT JOIN commits c ON c.repo = dc.repo AND c.sha = dc.sha
            LEFT JOIN scores s ON s.repo = dc.repo AND s.sha = dc.sha
            GROUP BY dc.deployment_id
        ),
        staged AS (
            SELECT DISTINCT p.deployment_id FROM prod p JOIN deployments d
              ON d.service = p.service AND d.sha = p.sha AND lower(d.environment) = $pre AND d.status = 'success'
             AND d.finished_at <= p.finished_at
        ),
        -- a service that never deploys to the stage cannot skip it
        staging_services AS (
            SELECT DISTINCT service FROM deployments WHERE lower(environment) = $pre AND status = 'success'
        )
        SELECT p.deployment_id, p.service, p.finished_at,
               coalesce(b.batch_size, 0) AS batch_size, coalesce(b.churn, 0) AS churn,
               coalesce(b.max_risk, 0) AS max_risk, coalesce(b.mean_risk, 0) AS mean_risk,
               coalesce(b.any_defect, 0) AS any_defect, coalesce(b.authors, 0) AS authors,
               coalesce(b.scored_changes, 0) AS scored_changes,
               coalesce(date_diff('second', p.previous_at, p.finished_at) / 3600.0, 0) AS hours_since_previous,
               hour(p.finished_at) AS hour, isodow(p.finished_at) AS weekday,
               (p.kind = 'hotfix')::INTEGER AS is_hotfix, (p.kind = 'rollback')::INTEGER AS is_rollback,
               CASE WHEN s.deployment_id IS NULL AND u.service IS NOT NULL THEN 1 ELSE 0 END AS skipped_stage
        FROM prod p LEFT JOIN batch b USING (deployment_id) LEFT JOIN staged s USING (deployment_id)
        LEFT JOIN staging_services u ON u.service = p.service
        ORDER BY p.finished_at, p.deployment_id
        """,
        {"prod": list(production_environments), "pre": pre_production},
    )


def change_features_of(store, repo: str | None = None, shas: Sequence[str] | None = None) -> pd.DataFrame:
    """Stored change metrics of commits, with what the gate shows beside them, in commit order.

    Parameters
    ----------
    store : Store
        An open store.
    repo : str, optional
        Only this repository (default: all).
    shas : sequence of str, optional
        Only these full commit ids (default: all of the repository).

    Returns
    -------
    DataFrame
        Every ``change_features`` column plus ``subject`` (the message's first line),
        ``author`` and ``seq`` (the commit's position in its repository's history),
        ordered by repository and ``seq``.
    """
    return store.query(
        "SELECT f.*, split_part(c.message, chr(10), 1) AS subject, c.author, c.seq "
        "FROM change_features f JOIN commits c USING (repo, sha) "
        "WHERE ($repo IS NULL OR f.repo = $repo) AND ($shas IS NULL OR list_contains($shas, f.sha)) "
        "ORDER BY f.repo, c.seq",
        {"repo": repo, "shas": None if shas is None else list(shas)},
    )


def latest_production_deployment(
    store, production_environments: Sequence[str], repo: str | None = None, *, with_changes: bool = False
):
    """The newest successful production deployment, with the commits it shipped.

    Parameters
    ----------
    store : Store
        An open store.
    production_environments : sequence of str
        Environments that are production (``Settings.production_environments``), any case.
    repo : str, optional
        Only a deployment whose sha is a commit of this repository.
    with_changes : bool
        Only a deployment that shipped at least one new commit (a batch to show).

    Returns
    -------
    dict or None
        ``deployment_id``, ``sha``, ``finished_at`` and ``shas`` (the commits of its
        ``deployment_changes``, possibly empty); None when there is none.
    """
    row = store.execute(
        "SELECT d.deployment_id, d.sha, d.finished_at FROM deployments d "
        f"WHERE {production_deployment('d')} "
        "AND ($repo IS NULL OR EXISTS (SELECT 1 FROM commits c WHERE c.repo = $repo AND c.sha = d.sha)) "
        "AND (NOT $with_changes OR EXISTS "
        "(SELECT 1 FROM deployment_changes x WHERE x.deployment_id = d.deployment_id)) "
        "ORDER BY d.finished_at DESC, d.deployment_id DESC LIMIT 1",
        {"prod": [e.lower() for e in production_environments], "repo": repo, "with_changes": with_changes},
    ).fetchone()
    if row is None:
        return None
    shas = [
        r[0] for r in store.execute("SELECT sha FROM deployment_changes WHERE deployment_id = ?", [row[0]]).fetchall()
    ]
    return {"deployment_id": row[0], "sha": row[1], "finished_at": row[2], "shas": shas}
