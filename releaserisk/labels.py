"""Change labels: which commits introduced defects.

Three methods, each stored in ``labels`` with its method name (a commit is buggy when any labels it):

``szz``
    AG-SZZ style (Kim et al. 2006; da Costa et al. 2017). For each bug-fixing
    commit that touches at most ``szz_max_files`` files, blame the fix's first parent
    on the lines the fix deleted or modified (``git blame --porcelain -w``: whitespace
    is ignored), skipping lines that are blank or comments for the file's language.
    The blamed commits are bug-introducing. A commit is a bug fix when its message
    matches the fix pattern, cites an ingested issue labelled as a bug (``#123``,
    ``GH-123``, ``PROJ-123``; labels in ``Settings.bug_labels``), or belongs to a pull
    request so labelled. Candidates authored after the cited bug issue was opened are
    dropped (they cannot have caused it), from ingested issues and ``issue_dates``.
``revert``
    A message ``This reverts commit <sha>`` labels the reverted commit.
``incident``
    An incident whose ``cause_sha`` names a commit (at least 7 hex digits, a prefix is
    enough) labels that commit: the deploy→incident link, down to the change.
Label horizon
    Commits younger than ``label_horizon_days`` before the newest commit are
    unlabelled: a defect may not have been found yet, so they are not "clean". The
    training frame (:func:`training_frame`) leaves them out.

Blame results are cached per fix (``labels`` rows with ``fix_sha``); re-running only
blames fixes not seen before. Blames run in parallel worker threads (each runs git).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from releaserisk.config import Settings
from releaserisk.errors import GitError, InputError
from releaserisk.ingest.git import _git_env
from releaserisk.store import SHA_PREFIX_MIN, Store, sha_prefix_match

__all__ = ["LabelResult", "is_comment_or_blank", "label_changes", "mark_tracked_fixes", "training_frame"]

_REVERT = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
#: ``git blame --porcelain``: every blamed line opens with "<sha> <original line> <final line>"
_BLAME_HEADER = re.compile(rb"^([0-9a-f]{40}) \d+ \d+", re.MULTILINE)

_LINE_COMMENTS = {
    "#": (
        ".py",
        ".sh",
        ".rb",
        ".pl",
        ".yml",
        ".yaml",
        ".toml",
        ".cfg",
        ".ini",
        ".r",
        ".mk",
        "makefile",
        ".cmake",
    ),
    "//": (
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".java",
        ".js",
        ".ts",
        ".go",
        ".rs",
        ".cs",
        ".kt",
        ".swift",
        ".scala",
    ),
    "--": (".sql", ".lua", ".hs"),
    ";": (".el", ".lisp", ".clj", ".asm"),
}
_BLOCK_PREFIXES = ("/*", "*", "*/")


def is_comment_or_blank(path: str, line: str) -> bool:
    """Whether a source line is blank or a comment in the file's language (by extension)."""
    text = line.strip()
    if not text:
        return True
    lower = path.lower()
    for marker, extensions in _LINE_COMMENTS.items():
        if lower.endswith(extensions) and text.startswith(marker):
            return True
    c_like = _LINE_COMMENTS["//"]
    return lower.endswith(c_like) and text.startswith(_BLOCK_PREFIXES)


@dataclass(frozen=True)
class LabelResult:
    """What one labelling run did."""

    repo: str
    fixes: int
    fixes_blamed_now: int
    buggy_szz: int
    buggy_revert: int
    unlabelled_recent: int
    fixes_from_trackers: int = 0  # fixes citing a bug issue or in a bug pull request
    buggy_incident: int = 0  # commits an incident names as its cause

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _run(repo_path: str, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", repo_path, *args], capture_output=True, env=_git_env(), check=False)
    if proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {proc.stderr.decode('utf-8', 'replace').strip()[:200]}")
    return proc.stdout


def _deleted_lines(repo_path: str, fix: str) -> dict[str, list[int]]:
    """Line numbers (in the fix's parent) that the fix deleted or modified, per old path.

    Blank and comment lines are left out here, from the diff's own text, so a file whose
    changed lines are all comments is never blamed (blame is nearly all of SZZ's time).
    """
    diff = _run(repo_path, "diff", "-U0", "-w", "--no-color", "-M", "--no-ext-diff", f"{fix}^", fix)
    lines: dict[str, list[int]] = {}
    current, number, in_header = None, 0, False
    for raw in diff.split(b"\n"):
        if raw.startswith(b"diff --git "):
            in_header, current, number = True, None, 0
        elif in_header:  # a deleted line "-- x" would look like a "--- " header: only read headers here
            if raw.startswith(b"--- "):
                name = raw[4:]
                current = None if name == b"/dev/null" else name[2:].decode("utf-8", "replace")
            elif raw.startswith(b"+++ "):
                in_header = False
        elif raw.startswith(b"@@"):
            match = _HUNK.match(raw)
            number = int(match.group(1)) if match else 0
        elif raw.startswith(b"-") and current is not None and number:
            if not is_comment_or_blank(current, raw[1:].decode("utf-8", "replace")):
                lines.setdefault(current, []).append(number)
            number += 1
    return lines


def _blame(repo_path: str, fix: str, path: str, numbers: list[int]) -> set[str]:
    """Commits that last touched the given lines of the fix's parent."""
    args = ["blame", "--porcelain", "-w"]
    for n in numbers:
        args += ["-L", f"{n},{n}"]
    try:
        out = _run(repo_path, *args, f"{fix}^", "--", path)
    except GitError:
        return set()
    return {match.group(1).decode("ascii") for match in _BLAME_HEADER.finditer(out)}


def _szz_for_fix(repo_path: str, fix: str) -> set[str]:
    culprits: set[str] = set()
    for path, numbers in _deleted_lines(repo_path, fix).items():
        culprits |= _blame(repo_path, fix, path, numbers)
    culprits.discard(fix)
    return culprits


def label_changes(
    store: Store,
    repo: str,
    *,
    settings: Settings | None = None,
    issue_dates: dict[str, datetime] | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    checkpoint_every: int = 500,
    write_commit_graph: bool = False,
) -> LabelResult:
    """Label the stored commits of ``repo`` by SZZ and revert detection.

    Parameters
    ----------
    store : Store
        A writable store where ``repo`` was ingested (its path must still exist).
    repo : str
        Repository name in the store.
    settings : Settings, optional
        Fix pattern, ``szz_max_files`` and ``label_horizon_days``.
    issue_dates : dict, optional
        Fix sha → date the linked issue was opened; blamed commits made after it are
        dropped (they cannot have caused the reported bug). Added to the dates of the
        bug issues in the store's ``issues`` that fixes cite (the earliest wins).
    workers : int
        Parallel blame workers, at least 1.
    progress : callable, optional
        ``progress(done, total)`` after each blamed fix.
    checkpoint_every : int
        Blamed fixes saved per transaction. Blaming a large history takes minutes to an
        hour (git's own: 19,596 fixes); an interrupted run keeps what it saved, and the
        next run blames only the fixes not saved yet.
    write_commit_graph : bool
        Before blaming, run ``git commit-graph write --reachable --changed-paths`` in the
        repository. Off by default because it writes into the repository's ``.git`` (a
        cache file git maintains itself; no history changes). With it, git's blame skips
        commits that did not touch the file: labelling git.git (19,553 fixes, 2 workers)
        took 10 min instead of 31, for 6 s spent writing the graph.

    Returns
    -------
    LabelResult

    Raises
    ------
    InputError
        ``workers`` below 1.
    GitError
        The repository is not in the store, or its path no longer exists.
    """
    if workers < 1:
        raise InputError(f"workers must be at least 1; got {workers}")
    settings = settings or Settings()
    row = store.execute("SELECT path FROM repos WHERE repo = ?", [repo]).fetchone()
    if row is None:
        raise GitError(f"repository '{repo}' is not in the store; run 'releaserisk ingest git' first")
    repo_path = row[0]
    if not Path(repo_path).exists():
        raise GitError(f"{repo_path} (repository '{repo}') no longer exists; SZZ needs the git history")
    tracked = _tracked_fixes(store, repo, settings.bug_labels)
    issue_dates = _earliest(issue_dates, tracked.dropna(subset=["opened_at"]))
    fixes = store.query(
        """
        SELECT c.sha, c.message, f.nf FROM commits c JOIN change_features f USING (repo, sha)
        WHERE c.repo = ? AND (regexp_matches(c.message, ?) OR list_contains(?, c.sha))
          AND f.nf BETWEEN 1 AND ? AND NOT c.is_merge AND len(c.parents) = 1
        ORDER BY c.seq
        """,
        [repo, settings.fix_pattern, tracked["sha"].tolist(), settings.szz_max_files],
    )
    done = set(
        store.query("SELECT DISTINCT fix_sha FROM labels WHERE repo = ? AND method = 'szz_fix'", [repo])["fix_sha"]
    )
    todo = [sha for sha in fixes["sha"] if sha not in done]
    if todo and write_commit_graph:
        _run(repo_path, "commit-graph", "write", "--reachable", "--changed-paths")
    blamed = set(store.query("SELECT sha FROM labels WHERE repo = ? AND method = 'szz'", [repo])["sha"])
    rows: list[tuple[str, str, bool, str]] = []
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for i, (fix, culprits) in enumerate(
            zip(todo, pool.map(lambda f: _szz_for_fix(repo_path, f), todo), strict=True)
        ):
            rows.append((fix, "szz_fix", False, fix))  # marks the fix as blamed (the cache)
            rows.extend((culprit, "szz", True, fix) for culprit in culprits)
            if (i + 1) % checkpoint_every == 0:
                _save_szz(store, repo, rows, blamed)
                rows = []
            if progress:
                progress(i + 1, len(todo))
    finally:
        # on an interrupt, the blames not started yet are dropped instead of awaited
        pool.shutdown(wait=True, cancel_futures=True)
    direct = pd.concat([_revert_labels(store, repo), _incident_labels(store, repo)]).assign(
        labelled_at=datetime.now(UTC)
    )
    with store.transaction():
        mark_tracked_fixes(store, repo, settings.bug_labels, tracked)
        _save_szz(store, repo, rows, blamed)
        if len(direct):
            store.upsert("labels", direct)
        if issue_dates:
            _drop_after_issue(store, repo, issue_dates)
    counts = store.execute(
        "SELECT count(*) FILTER (method = 'szz'), count(*) FILTER (method = 'revert'), "
        "count(*) FILTER (method = 'incident') FROM labels WHERE repo = ?",
        [repo],
    ).fetchone()
    recent = store.execute(
        """
        SELECT count(*) FROM commits WHERE repo = ? AND NOT is_merge
          AND committed_at > (SELECT max(committed_at) FROM commits WHERE repo = ?)
                             - to_days(CAST(? AS INTEGER))
        """,
        [repo, repo, settings.label_horizon_days],
    ).fetchone()[0]
    from_trackers = int(fixes["sha"].isin(tracked["sha"]).sum())
    return LabelResult(repo, len(fixes), len(todo), counts[0], counts[1], recent, from_trackers, counts[2])


def _save_szz(store: Store, repo: str, rows: list[tuple[str, str, bool, str]], blamed: set[str]) -> None:
    """Save blamed fixes and their culprits in one transaction.

    Labels are keyed by (sha, method): a commit blamed by several fixes keeps the first
    (oldest) fix, in this batch, earlier batches and earlier runs (``blamed``).
    """
    frame = pd.DataFrame(rows, columns=["sha", "method", "buggy", "fix_sha"]).drop_duplicates(
        ["sha", "method"], keep="first"
    )
    frame = frame[~((frame["method"] == "szz") & frame["sha"].isin(blamed))]
    if len(frame):
        store.upsert("labels", frame.assign(repo=repo, labelled_at=datetime.now(UTC)))
        blamed.update(frame.loc[frame["method"] == "szz", "sha"])


def _revert_labels(store: Store, repo: str) -> pd.DataFrame:
    """The commits that a later commit reverted ("This reverts commit <sha>")."""
    return store.query(
        """
        WITH reverts AS (
            SELECT sha AS fix_sha,
                   regexp_extract(message, 'This reverts commit ([0-9a-f]{7,40})', 1) AS target
            FROM commits WHERE repo = ? AND message LIKE '%This reverts commit %'
        )
        SELECT DISTINCT ON (c.sha) c.repo, c.sha, 'revert' AS method, true AS buggy, r.fix_sha
        FROM reverts r JOIN commits c ON c.repo = ? AND starts_with(c.sha, r.target)
        WHERE r.target <> ''
        """,
        [repo, repo],
    )


def _incident_labels(store: Store, repo: str) -> pd.DataFrame:
    """The commits of ``repo`` that an incident names as its cause (``cause_sha``)."""
    return store.query(
        f"""
        WITH causes AS (
            SELECT lower(trim(cause_sha)) AS cause FROM incidents WHERE length(trim(cause_sha)) >= {SHA_PREFIX_MIN}
        )
        SELECT DISTINCT ON (c.sha) c.repo, c.sha, 'incident' AS method, true AS buggy, NULL::VARCHAR AS fix_sha
        FROM causes i JOIN commits c ON c.repo = ? AND {sha_prefix_match("c.sha", "i.cause")}
        """,
        [repo],
    )


def _tracked_fixes(store: Store, repo: str, bug_labels: Iterable[str]) -> pd.DataFrame:
    """Commits of ``repo`` that cite an ingested bug issue, or belong to a pull request labelled
    as a bug: ``sha`` and ``opened_at`` (the earliest cited bug issue's opening; NULL for PRs).
    """
    return store.query(
        r"""
        WITH cited AS (
            SELECT sha, unnest(list_concat(regexp_extract_all(message, '(?:#|\bGH-)(\d+)\b', 1),
                                           regexp_extract_all(message, '\b([A-Z][A-Z0-9_]+-\d+)\b', 1))) AS issue
            FROM commits WHERE repo = $repo
        ),
        bugs AS (
            SELECT ltrim(issue, '#') AS issue, opened_at FROM issues
            WHERE repo = $repo AND list_has_any(list_transform(labels, x -> lower(x)), $bugs)
        ),
        bug_prs AS (
            SELECT number, merge_commit_sha FROM pull_requests
            WHERE repo = $repo AND list_has_any(list_transform(labels, x -> lower(x)), $bugs)
        ),
        linked AS (
            SELECT c.sha, b.opened_at FROM cited c JOIN bugs b USING (issue)
            UNION ALL SELECT merge_commit_sha, NULL FROM bug_prs WHERE merge_commit_sha IS NOT NULL
            UNION ALL SELECT pc.sha, NULL FROM pr_commits pc JOIN bug_prs p USING (number) WHERE pc.repo = $repo
        )
        SELECT sha, min(opened_at) AS opened_at FROM linked GROUP BY sha
        """,
        {"repo": repo, "bugs": list(bug_labels)},
    )


def mark_tracked_fixes(store: Store, repo: str, bug_labels: Iterable[str], tracked: pd.DataFrame | None = None) -> int:
    """Set the FIX change metric of commits that cite a bug issue or belong to a bug pull request.

    DESIGN §4: FIX is a message matching the fix pattern *or a link to an issue labelled
    bug*; git ingestion sees only the message, so this completes it once issues or pull
    requests are in the store (git ingestion and ``label`` call it; both training and the
    CI gate read the stored column). Returns the number of commits newly marked.
    """
    if tracked is None:
        cited = store.execute(
            "SELECT (SELECT count(*) FROM issues WHERE repo = $repo) + "
            "(SELECT count(*) FROM pull_requests WHERE repo = $repo AND len(labels) > 0)",
            {"repo": repo},
        ).fetchone()[0]
        if not cited:  # nothing to cite: skip reading every commit message
            return 0
        tracked = _tracked_fixes(store, repo, bug_labels)
    if tracked.empty:
        return 0
    return store.execute(
        "UPDATE change_features SET fix = true WHERE repo = ? AND NOT coalesce(fix, false) AND list_contains(?, sha)",
        [repo, tracked["sha"].tolist()],
    ).fetchone()[0]


def _earliest(given: dict[str, datetime] | None, tracked: pd.DataFrame) -> dict[str, datetime]:
    """Fix sha -> the earliest known opening of an issue it fixes (given, or from the store)."""
    dates = dict(zip(tracked["sha"], pd.to_datetime(tracked["opened_at"], utc=True), strict=True))
    for sha, opened in (given or {}).items():
        opened = pd.Timestamp(opened)
        opened = opened.tz_localize("UTC") if opened.tzinfo is None else opened
        dates[sha] = min(dates.get(sha, opened), opened)
    return dates


def _drop_after_issue(store: Store, repo: str, issue_dates: dict[str, datetime]) -> None:
    dates = pd.DataFrame({"fix_sha": list(issue_dates), "opened": pd.to_datetime(list(issue_dates.values()), utc=True)})
    store.connection.register("_issues", dates)
    try:
        store.execute(
            """
            DELETE FROM labels l USING _issues i, commits c
            WHERE l.repo = ? AND l.method = 'szz' AND l.fix_sha = i.fix_sha
              AND c.repo = l.repo AND c.sha = l.sha AND c.authored_at > i.opened
            """,
            [repo],
        )
    finally:
        store.connection.unregister("_issues")


def training_frame(
    store: Store, repos: Iterable[str] | None = None, *, settings: Settings | None = None
) -> pd.DataFrame:
    """Change features with labels, oldest first, leaving out commits inside the label horizon.

    A commit is buggy when any method (szz, revert, incident) labels it; otherwise clean —
    unless it is younger than ``label_horizon_days`` before its repository's newest
    commit, in which case it is left out.

    Parameters
    ----------
    store : Store
    repos : iterable of str, optional
        Repositories to include (default: all).
    settings : Settings, optional
        ``label_horizon_days``.

    Returns
    -------
    DataFrame
        ``repo, sha``, ``time`` (commit time), the feature columns, ``effort`` (LA + LD)
        and ``bug`` (0/1): the columns :func:`releaserisk.model.evaluate_time_split` reads.
    """
    settings = settings or Settings()
    names = list(repos) if repos is not None else list(store.query("SELECT repo FROM repos")["repo"])
    return store.query(
        """
        WITH newest AS (SELECT repo, max(committed_at) AS latest FROM commits GROUP BY repo),
             bad AS (SELECT DISTINCT repo, sha FROM labels WHERE buggy AND method IN ('szz', 'revert', 'incident'))
        SELECT f.*, c.committed_at AS time, f.la + f.ld AS effort, (b.sha IS NOT NULL)::INTEGER AS bug
        FROM change_features f
        JOIN commits c USING (repo, sha)
        JOIN newest n USING (repo)
        LEFT JOIN bad b USING (repo, sha)
        WHERE list_contains(?, f.repo)
          AND c.committed_at <= n.latest - to_days(CAST(? AS INTEGER))
        ORDER BY c.committed_at, c.seq
        """,
        [names, settings.label_horizon_days],
    )
