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

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from releaserisk.config import BUILD_PATHS, DEPENDENCY_PATHS, DOC_PATHS, TEST_PATHS, Settings
from releaserisk.errors import GitError, InputError
from releaserisk.gitcmd import run_git, storable_path, unquote_c_path
from releaserisk.store import SHA_PREFIX_MIN, Store, sha_prefix_match

__all__ = [
    "BUGGY_SHARE_RANGE",
    "LabelQuality",
    "LabelResult",
    "glob_regex",
    "is_comment_or_blank",
    "label_changes",
    "label_quality",
    "mark_tracked_fixes",
    "training_frame",
]

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


#: Buggy shares of labelled changes seen in curated data: 5 % to 36 % on Kamei et al.'s six
#: projects (TSE 2013, Table 3). Outside it, the labels more likely need a look than not.
BUGGY_SHARE_RANGE = (0.05, 0.35)
#: Above this share of counted fixes found by commit-message keywords alone, the summary
#: suggests ingesting the issue tracker (keyword fixes are the noisiest; Herbold et al. 2022).
_KEYWORD_SHARE_WARNING = 0.5
#: How a counted fix was found: its message, a cited bug issue, a bug-labelled pull request.
_FIX_RULES = ("keyword", "issue", "pull_request")
_FILE_KINDS = {"docs": DOC_PATHS, "tests": TEST_PATHS, "ci_build": BUILD_PATHS, "dependencies": DEPENDENCY_PATHS}


def glob_regex(globs: Iterable[str]) -> str:
    """One regular expression (RE2- and Python-compatible) matching any of gitignore-style globs.

    Parameters
    ----------
    globs : iterable of str
        ``*`` matches within a directory, ``**`` across directories, ``?`` one character;
        a glob without ``/`` matches the file name in any directory (as in .gitignore).

    Returns
    -------
    str
        An anchored alternation; ``\\b\\B`` (matches nothing, in RE2 too) for no globs.
    """
    parts = []
    for glob in globs:
        anchored = "/" in glob.rstrip("/")
        body, i = "", 0
        while i < len(glob):
            if glob.startswith("**/", i):
                body, i = body + "(?:.*/)?", i + 3
            elif glob.startswith("/**", i) and i + 3 == len(glob):
                body, i = body + "(?:/.*)?", i + 3
            elif glob.startswith("**", i):
                body, i = body + ".*", i + 2
            elif glob[i] == "*":
                body, i = body + "[^/]*", i + 1
            elif glob[i] == "?":
                body, i = body + "[^/]", i + 1
            else:
                body, i = body + re.escape(glob[i]), i + 1
        parts.append(("^" if anchored else "^(?:.*/)?") + body + "$")
    return "|".join(f"(?:{part})" for part in parts) or r"\b\B"


def _path_rules(settings: Settings) -> tuple[str, str]:
    """(include, exclude) regular expressions of ``settings.szz_paths``."""
    include = [g for g in settings.szz_paths if not g.startswith("!")]
    exclude = [g[1:] for g in settings.szz_paths if g.startswith("!")]
    return glob_regex(include), glob_regex(exclude)


def _rules_fingerprint(settings: Settings) -> str:
    """What the cached blames depend on: a change of any of these re-blames every fix."""
    rules = [settings.fix_pattern, settings.fix_exclude_pattern, settings.bot_authors, list(settings.szz_paths),
             settings.szz_max_files, list(settings.bug_labels)]  # fmt: skip
    return hashlib.sha256(json.dumps(rules).encode()).hexdigest()[:16]


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float | None, float | None]:
    """Wilson score 95 % interval of a proportion k/n (Wilson 1927); (None, None) for n = 0."""
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class LabelQuality:
    """How trustworthy one repository's labels are: the label-quality summary of ``label``.

    Attributes
    ----------
    repo : str
    fixes_by_rule : dict
        Counted bug fixes by the rule that found them: ``keyword`` (commit message),
        ``issue`` (cites an ingested bug issue), ``pull_request`` (in a pull request labelled
        bug); plus the commits labelled by ``revert`` and ``incident``.
    excluded_by_category : dict
        Candidate fixes that were not counted, by category: message rules (``typo``,
        ``style``, ``docs``, ``tests``, ``ci_build``, ``dependencies``, ``merge``,
        ``revert_of_revert``), ``bot`` authors, file rules (``docs_only``, ``tests_only``,
        ``ci_build_only``, ``dependencies_only``, ``non_source_only``), ``too_many_files``;
        ``reverted_revert`` counts reverts of a revert, which label nothing.
    labelled_changes, buggy_changes : int
        Changes outside the label horizon (the training set) and how many are buggy.
    buggy_share, buggy_share_low, buggy_share_high : float or None
        ``buggy_changes / labelled_changes`` with its Wilson 95 % interval.
    blames, failed_blames : int
        ``git blame`` runs (one per fix and file) over all runs, and those that failed.
    failed_share : float or None
        ``failed_blames / blames``.
    warnings : list of str
        Plain-language reasons to look at the labels before trusting a model on them.
    """

    repo: str
    fixes_by_rule: dict[str, int]
    excluded_by_category: dict[str, int]
    labelled_changes: int
    buggy_changes: int
    buggy_share: float | None
    buggy_share_low: float | None
    buggy_share_high: float | None
    blames: int
    failed_blames: int
    failed_share: float | None
    warnings: list[str] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """One row per rule and per exclusion category: ``kind`` (counted/excluded), ``name``, ``commits``."""
        rows = [("counted", k, v) for k, v in self.fixes_by_rule.items()]
        rows += [("excluded", k, v) for k, v in sorted(self.excluded_by_category.items(), key=lambda kv: -kv[1])]
        return pd.DataFrame(rows, columns=["kind", "name", "commits"])

    def summary(self) -> str:
        """The summary as text for a terminal, a notebook or a log."""
        counted = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.fixes_by_rule.items() if v) or "none"
        excluded = sorted(self.excluded_by_category.items(), key=lambda kv: -kv[1])
        lines = [f"label quality of {self.repo}", f"  bug fixes counted: {counted}"]
        lines.append(
            "  not counted as fixes: " + (", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded if v) or "none")
        )
        if self.buggy_share is None:
            lines.append("  buggy share: no labelled changes (all inside the label horizon)")
        else:
            lines.append(
                f"  buggy share: {self.buggy_share:.1%} of {self.labelled_changes:,} labelled changes "
                f"(95 % CI {self.buggy_share_low:.1%}–{self.buggy_share_high:.1%})"
            )
        share = f" ({self.failed_share:.1%})" if self.failed_share is not None else ""
        lines.append(f"  failed blames: {self.failed_blames:,} of {self.blames:,}{share}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-safe dict (``None`` where a share has no data)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LabelQuality:
        """Rebuild from :meth:`to_dict` output (as stored in ``label_quality``)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class LabelResult:
    """What one labelling run did.

    Attributes
    ----------
    repo : str
    fixes : int
        Counted bug fixes (candidates the rules did not exclude, within ``szz_max_files``).
    fixes_blamed_now : int
        Fixes blamed by this run (the others were blamed before).
    buggy_szz, buggy_revert, buggy_incident : int
        Commits labelled by each method.
    unlabelled_recent : int
        Commits inside the label horizon.
    fixes_from_trackers : int
        Counted fixes citing a bug issue or in a bug pull request.
    quality : LabelQuality or None
        The label-quality summary.
    """

    repo: str
    fixes: int
    fixes_blamed_now: int
    buggy_szz: int
    buggy_revert: int
    unlabelled_recent: int
    fixes_from_trackers: int = 0
    buggy_incident: int = 0
    quality: LabelQuality | None = None

    def summary(self) -> str:
        """What the run did, then the label-quality summary."""
        head = (
            f"{self.repo}: {self.fixes:,} bug fixes ({self.fixes_blamed_now:,} blamed now); buggy commits: "
            f"{self.buggy_szz:,} by SZZ, {self.buggy_revert:,} reverted, {self.buggy_incident:,} named by incidents; "
            f"{self.unlabelled_recent:,} recent commits unlabelled"
        )
        return head + ("\n" + self.quality.summary() if self.quality else "")

    def to_dict(self) -> dict:
        """JSON-safe dict, the quality summary nested under ``quality``."""
        data = {k: v for k, v in self.__dict__.items() if k != "quality"}
        data["quality"] = self.quality.to_dict() if self.quality else None
        return data


def _deleted_lines(repo_path: str, fix: str, source: _Eligible) -> dict[bytes, list[int]]:
    """Line numbers (in the fix's parent) that the fix deleted or modified, per old path (bytes).

    Only files whose path ``source`` matches (``szz_paths``). Blank and comment lines are
    left out here, from the diff's own text, so a file whose changed lines are all comments
    is never blamed (blame is nearly all of SZZ's time). Paths come from the patch headers
    through :func:`~releaserisk.gitcmd.unquote_c_path`, byte-exact; explicit prefixes keep a
    user's ``diff.noprefix``/``diff.mnemonicPrefix`` from changing them.
    """
    diff = run_git(repo_path, "diff", "-U0", "-w", "--no-color", "-M", "--no-ext-diff", "--no-textconv",
                   "--src-prefix=a/", "--dst-prefix=b/", f"{fix}^", fix)  # fmt: skip
    lines: dict[bytes, list[int]] = {}
    current, shown, number, in_header = None, "", 0, False
    for raw in diff.split(b"\n"):
        if raw.startswith(b"diff --git "):
            in_header, current, number = True, None, 0
        elif in_header:  # a deleted line "-- x" would look like a "--- " header: only read headers here
            if raw.startswith(b"--- "):
                name = unquote_c_path(raw[4:])
                current = None if name == b"/dev/null" else name[2:]
                shown = storable_path(current) if current is not None else ""
                if current is not None and not source.search(shown):
                    current = None
            elif raw.startswith(b"+++ "):
                in_header = False
        elif raw.startswith(b"@@"):
            match = _HUNK.match(raw)
            number = int(match.group(1)) if match else 0
        elif raw.startswith(b"-") and current is not None and number:
            if not is_comment_or_blank(shown, raw[1:].decode("utf-8", "replace")):
                lines.setdefault(current, []).append(number)
            number += 1
    return lines


def _blame(repo_path: str, fix: str, path: bytes, numbers: list[int]) -> set[str]:
    """Commits that last touched the given lines of the fix's parent (GitError when git refuses)."""
    args: list[str | bytes] = ["blame", "--porcelain", "-w"]
    for n in numbers:
        args += ["-L", f"{n},{n}"]
    out = run_git(repo_path, *args, f"{fix}^", "--", path)
    return {match.group(1).decode("ascii") for match in _BLAME_HEADER.finditer(out)}


@dataclass
class _FixBlame:
    culprits: set[str]
    files: int = 0
    failed: int = 0
    error: str | None = None


def _szz_for_fix(repo_path: str, fix: str, source: _Eligible) -> _FixBlame:
    """Blame one fix; a failed blame is counted, never taken for "no culprit"."""
    outcome = _FixBlame(set())
    try:
        deleted = _deleted_lines(repo_path, fix, source)
    except GitError as exc:
        return _FixBlame(set(), 1, 1, str(exc))
    for path, numbers in deleted.items():
        outcome.files += 1
        try:
            outcome.culprits |= _blame(repo_path, fix, path, numbers)
        except GitError as exc:
            outcome.failed += 1
            outcome.error = outcome.error or str(exc)
    outcome.culprits.discard(fix)
    return outcome


def _candidate_fixes(store: Store, repo: str, settings: Settings, tracked: pd.DataFrame) -> pd.DataFrame:
    """Every candidate bug fix with the rule that found it and the category that excludes it.

    Columns ``sha, rule`` (keyword, issue, pull_request) and ``excluded`` (None: counted).
    Issue- and PR-linked fixes are always counted (within ``szz_max_files``): a tracker
    that calls a change a bug fix outranks any rule about its message or files.
    """
    include, exclude = _path_rules(settings)
    kinds = " ".join(f"WHEN regexp_matches(fc.path, ${k}) THEN '{k}'" for k in _FILE_KINDS)
    frame = store.query(
        f"""
        WITH cand AS (
            SELECT c.sha, c.seq, c.author || ' ' || coalesce(c.author_email, '') AS who,
                   split_part(c.message, chr(10), 1) AS subject, f.nf,
                   coalesce($rules[list_position($tracked, c.sha)], 'keyword') AS rule
            FROM commits c JOIN change_features f USING (repo, sha)
            WHERE c.repo = $repo AND NOT c.is_merge AND len(c.parents) = 1
              AND (regexp_matches(c.message, $fix) OR list_contains($tracked, c.sha))
        ),
        files AS (
            SELECT fc.sha, regexp_matches(fc.path, $include) AND NOT regexp_matches(fc.path, $exclude) AS source,
                   CASE {kinds} ELSE 'non_source' END AS kind
            FROM file_changes fc SEMI JOIN cand USING (sha) WHERE fc.repo = $repo
        ),
        by_fix AS (
            SELECT sha, count(*) FILTER (source) AS source_files, count(DISTINCT kind) AS kinds, any_value(kind) AS kind
            FROM files GROUP BY sha
        )
        SELECT cand.*, coalesce(b.source_files, 0) AS source_files,
               CASE WHEN b.kinds = 1 THEN b.kind || '_only' ELSE 'non_source_only' END AS file_category
        FROM cand LEFT JOIN by_fix b USING (sha)
        ORDER BY cand.seq
        """,
        {
            "repo": repo,
            "fix": settings.fix_pattern,
            "tracked": tracked["sha"].tolist(),
            "rules": tracked["rule"].tolist(),
            "include": include,
            "exclude": exclude,
            **{kind: glob_regex(globs) for kind, globs in _FILE_KINDS.items()},
        },
    )
    excluded = pd.Series(None, index=frame.index, dtype=object)
    by_files = frame["source_files"] == 0
    excluded[by_files] = frame.loc[by_files, "file_category"]
    excluded = _message_categories(frame["subject"], settings.fix_exclude_pattern).combine_first(excluded)
    if settings.bot_authors:
        excluded[frame["who"].str.count(settings.bot_authors) > 0] = "bot"
    excluded[frame["rule"] != "keyword"] = None
    excluded[(frame["nf"] < 1) | (frame["nf"] > settings.szz_max_files)] = "too_many_files"
    excluded[frame["nf"] < 1] = "no_files"
    frame["excluded"] = excluded
    return frame[["sha", "rule", "excluded"]]


def _message_categories(subjects: pd.Series, pattern: str) -> pd.Series:
    """The exclusion category of each subject line: the first named group that matched."""
    result = pd.Series(None, index=subjects.index, dtype=object)
    if not pattern or subjects.empty:
        return result
    compiled = re.compile(pattern)
    if not compiled.groupindex:
        result[subjects.str.contains(compiled, regex=True)] = "excluded"
        return result
    names = sorted(compiled.groupindex, key=compiled.groupindex.get)
    matched = subjects.str.extract(compiled)[names].notna()  # extract names the columns of named groups
    hit = matched.any(axis=1)
    result[hit] = matched[hit].idxmax(axis=1)
    return result


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
    """Label the stored commits of ``repo`` by SZZ, revert and incident, and judge the labels.

    Parameters
    ----------
    store : Store
        A writable store where ``repo`` was ingested (its path must still exist).
    repo : str
        Repository name in the store.
    settings : Settings, optional
        ``fix_pattern``, ``fix_exclude_pattern``, ``bot_authors``, ``szz_paths``,
        ``szz_max_files``, ``szz_max_failed_share``, ``bug_labels`` and ``label_horizon_days``.
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
        With ``quality``, the label-quality summary (also stored in ``label_quality``;
        each candidate fix's rule and exclusion category are in ``label_fixes``).

    Raises
    ------
    InputError
        ``workers`` below 1.
    LakeError
        The store is a lake (read-only; ``ingest org`` labels each repository).
    GitError
        The repository is not in the store, its path no longer exists, or more than
        ``szz_max_failed_share`` of the blames failed (the labels and the summary are
        saved first, so ``train`` shows the failures too).
    """
    if workers < 1:
        raise InputError(f"workers must be at least 1; got {workers}")
    settings = settings or Settings()
    store.require_writable()  # before any blame: a lake is written by 'ingest org' alone
    row = store.execute("SELECT path FROM repos WHERE repo = ?", [repo]).fetchone()
    if row is None:
        raise GitError(f"repository '{repo}' is not in the store; run 'releaserisk ingest git' first")
    repo_path = row[0]
    if not Path(repo_path).exists():
        raise GitError(f"{repo_path} (repository '{repo}') no longer exists; SZZ needs the git history")
    tracked = _tracked_fixes(store, repo, settings.bug_labels)
    issue_dates = _earliest(issue_dates, tracked.dropna(subset=["opened_at"]))
    candidates = _candidate_fixes(store, repo, settings, tracked)
    counted = candidates.loc[candidates["excluded"].isna(), "sha"].tolist()
    rules = _rules_fingerprint(settings)
    if _last_rules(store, repo) not in (None, rules):
        _forget_blames(store, repo)  # the rules changed: blames made under the old ones are stale
    done = set(
        store.query("SELECT DISTINCT fix_sha FROM labels WHERE repo = ? AND method = 'szz_fix'", [repo])["fix_sha"]
    )
    todo = [sha for sha in counted if sha not in done]
    if todo and write_commit_graph:
        run_git(repo_path, "commit-graph", "write", "--reachable", "--changed-paths")
    blamed = set(store.query("SELECT sha FROM labels WHERE repo = ? AND method = 'szz'", [repo])["sha"])
    eligible = _Eligible(settings)
    _save_candidates(store, repo, candidates)
    rows: list[tuple[str, str, bool, str]] = []
    outcomes: list[tuple[str, int, int]] = []
    errors: list[str] = []
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for i, (fix, outcome) in enumerate(
            zip(todo, pool.map(lambda f: _szz_for_fix(repo_path, f, eligible), todo), strict=True)
        ):
            rows.append((fix, "szz_fix", False, fix))  # marks the fix as blamed (the cache)
            rows.extend((culprit, "szz", True, fix) for culprit in outcome.culprits)
            outcomes.append((fix, outcome.files, outcome.failed))
            if outcome.error and len(errors) < 3:
                errors.append(outcome.error)
            if (i + 1) % checkpoint_every == 0:
                _save_szz(store, repo, rows, blamed, outcomes)
                rows, outcomes = [], []
            if progress:
                progress(i + 1, len(todo))
    finally:
        # on an interrupt, the blames not started yet are dropped instead of awaited
        pool.shutdown(wait=True, cancel_futures=True)
    reverts = _revert_labels(store, repo)
    direct = pd.concat([reverts[~reverts["reverted_revert"]].drop(columns="reverted_revert"),
                        _incident_labels(store, repo)]).assign(labelled_at=datetime.now(UTC))  # fmt: skip
    with store.transaction():
        mark_tracked_fixes(store, repo, settings.bug_labels, tracked)
        _save_szz(store, repo, rows, blamed, outcomes)
        store.execute("DELETE FROM labels WHERE repo = ? AND method IN ('revert', 'incident')", [repo])
        if len(direct):
            store.upsert("labels", direct)
        if issue_dates:
            _drop_after_issue(store, repo, issue_dates)
        quality = _quality(store, repo, settings, int(reverts["reverted_revert"].sum()))
        run = {"repo": repo, "labelled_at": pd.Timestamp.now(tz="UTC"), "rules": rules}
        store.upsert("label_quality", pd.DataFrame([{**run, "summary": json.dumps(quality.to_dict())}]))
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
    from_trackers = int(((candidates["rule"] != "keyword") & candidates["excluded"].isna()).sum())
    if quality.failed_share is not None and quality.failed_share > settings.szz_max_failed_share:
        first = f"; first error: {errors[0]}" if errors else ""
        raise GitError(
            f"{quality.failed_blames:,} of {quality.blames:,} blames failed ({quality.failed_share:.1%}, above "
            f"szz_max_failed_share {settings.szz_max_failed_share:.0%}): SZZ labels of {repo} are incomplete; "
            f"labels and the label-quality summary were saved{first}"
        )
    return LabelResult(repo, len(counted), len(todo), counts[0], counts[1], recent, from_trackers, counts[2], quality)


class _Eligible:
    """``search(path)``: whether ``szz_paths`` lets SZZ blame the path (an include and no exclude)."""

    def __init__(self, settings: Settings) -> None:
        include, exclude = _path_rules(settings)
        self.include, self.exclude = re.compile(include), re.compile(exclude)

    def search(self, path: str) -> bool:
        return bool(self.include.search(path)) and not self.exclude.search(path)


def _last_rules(store: Store, repo: str) -> str | None:
    row = store.execute(
        "SELECT rules FROM label_quality WHERE repo = ? ORDER BY labelled_at DESC LIMIT 1", [repo]
    ).fetchone()
    return row[0] if row else None


def _forget_blames(store: Store, repo: str) -> None:
    """Drop cached SZZ blames (labels keep only each culprit's first fix, so they cannot be pruned per fix)."""
    with store.transaction():
        store.execute("DELETE FROM labels WHERE repo = ? AND method IN ('szz', 'szz_fix')", [repo])
        store.execute("UPDATE label_fixes SET blamed_files = NULL, failed_blames = NULL WHERE repo = ?", [repo])


def _save_candidates(store: Store, repo: str, candidates: pd.DataFrame) -> None:
    """The candidate fixes of this run, keeping the blame outcome of those blamed earlier."""
    outcome = store.query("SELECT sha, blamed_files, failed_blames FROM label_fixes WHERE repo = ?", [repo])
    frame = candidates.merge(outcome, on="sha", how="left").assign(repo=repo, labelled_at=datetime.now(UTC))
    with store.transaction():
        store.execute(
            "DELETE FROM label_fixes WHERE repo = ? AND NOT list_contains(?, sha)", [repo, frame["sha"].tolist()]
        )
        store.upsert("label_fixes", frame)


def _quality(store: Store, repo: str, settings: Settings, reverted_reverts: int) -> LabelQuality:
    """The label-quality summary from the stored labels and candidate fixes."""
    fixes = store.query(
        """
        SELECT rule, excluded, count(*) AS n, sum(blamed_files) AS blames, sum(failed_blames) AS failed
        FROM label_fixes WHERE repo = ? GROUP BY ALL
        """,
        [repo],
    )
    counted = fixes[fixes["excluded"].isna()]
    by_rule = {
        rule: int(counted.loc[counted["rule"] == rule, "n"].sum()) for rule in ("keyword", "issue", "pull_request")
    }
    methods = store.execute(
        "SELECT count(*) FILTER (method = 'revert'), count(*) FILTER (method = 'incident') FROM labels WHERE repo = ?",
        [repo],
    ).fetchone()
    by_rule.update(revert=int(methods[0]), incident=int(methods[1]))
    excluded = {str(k): int(v) for k, v in fixes.dropna(subset=["excluded"]).groupby("excluded")["n"].sum().items()}
    if reverted_reverts:
        excluded["reverted_revert"] = reverted_reverts
    frame = training_frame(store, [repo], settings=settings)
    n, k = len(frame), int(frame["bug"].sum()) if len(frame) else 0
    low, high = _wilson(k, n)
    blames, failed = int(fixes["blames"].fillna(0).sum()), int(fixes["failed"].fillna(0).sum())
    quality = LabelQuality(
        repo=repo,
        fixes_by_rule=by_rule,
        excluded_by_category=excluded,
        labelled_changes=n,
        buggy_changes=k,
        buggy_share=k / n if n else None,
        buggy_share_low=low,
        buggy_share_high=high,
        blames=blames,
        failed_blames=failed,
        failed_share=failed / blames if blames else None,
    )
    return LabelQuality(**{**asdict(quality), "warnings": _warnings(quality, settings)})


def _warnings(quality: LabelQuality, settings: Settings) -> list[str]:
    """Plain-language reasons to doubt the labels (DESIGN §4: ``label`` reports its own quality)."""
    notes = []
    low, high = BUGGY_SHARE_RANGE
    if quality.buggy_share is not None and not low <= quality.buggy_share <= high:
        notes.append(
            f"{quality.buggy_share:.1%} of labelled changes are buggy, outside the {low:.0%}–{high:.0%} seen on "
            "curated data (Kamei et al. 2013): check the fixes listed in label_fixes and tune fix_pattern, "
            "fix_exclude_pattern or szz_paths"
        )
    fixes = sum(quality.fixes_by_rule[r] for r in _FIX_RULES)
    if fixes and quality.fixes_by_rule["keyword"] / fixes > _KEYWORD_SHARE_WARNING:
        notes.append(
            f"{quality.fixes_by_rule['keyword']:,} of {fixes:,} fixes are found by commit-message keywords alone; "
            "ingest the issue tracker (releaserisk ingest github) so bug-labelled issues and pull requests decide"
        )
    if quality.failed_share is not None and quality.failed_share > 0:
        notes.append(
            f"{quality.failed_blames:,} blames failed ({quality.failed_share:.1%}); "
            f"the limit is szz_max_failed_share = {settings.szz_max_failed_share:.0%}"
        )
    return notes


def label_quality(store: Store, repo: str) -> LabelQuality | None:
    """The label-quality summary of the latest ``label`` run on ``repo``.

    Parameters
    ----------
    store : Store
    repo : str
        Repository name in the store.

    Returns
    -------
    LabelQuality or None
        None when ``repo`` was never labelled (or labelled before summaries were kept).
    """
    row = store.execute(
        "SELECT summary FROM label_quality WHERE repo = ? ORDER BY labelled_at DESC LIMIT 1", [repo]
    ).fetchone()
    return LabelQuality.from_dict(json.loads(row[0])) if row else None


def _save_szz(
    store: Store,
    repo: str,
    rows: list[tuple[str, str, bool, str]],
    blamed: set[str],
    outcomes: list[tuple[str, int, int]],
) -> None:
    """Save blamed fixes, their culprits and their blame outcomes in one transaction.

    Labels are keyed by (sha, method): a commit blamed by several fixes keeps the first
    (oldest) fix, in this batch, earlier batches and earlier runs (``blamed``).
    """
    if outcomes:
        done = pd.DataFrame(outcomes, columns=["sha", "blamed_files", "failed_blames"])
        store.connection.register("_blamed", done)
        try:
            with store.transaction():
                store.execute(
                    "UPDATE label_fixes f SET blamed_files = b.blamed_files, failed_blames = b.failed_blames "
                    "FROM _blamed b WHERE f.repo = ? AND f.sha = b.sha",
                    [repo],
                )
        finally:
            store.connection.unregister("_blamed")
    frame = pd.DataFrame(rows, columns=["sha", "method", "buggy", "fix_sha"]).drop_duplicates(
        ["sha", "method"], keep="first"
    )
    frame = frame[~((frame["method"] == "szz") & frame["sha"].isin(blamed))]
    if len(frame):
        store.upsert("labels", frame.assign(repo=repo, labelled_at=datetime.now(UTC)))
        blamed.update(frame.loc[frame["method"] == "szz", "sha"])


def _revert_labels(store: Store, repo: str) -> pd.DataFrame:
    """The commits that a later commit reverted ("This reverts commit <sha>").

    ``reverted_revert`` marks a reverted commit that was itself a revert: reverting it
    re-applies the original change, which says nothing about a defect (Herbold et al. 2022
    list such revert chains as SZZ noise), so it is not labelled.
    """
    return store.query(
        """
        WITH reverts AS (
            SELECT sha AS fix_sha,
                   regexp_extract(message, 'This reverts commit ([0-9a-f]{7,40})', 1) AS target
            FROM commits WHERE repo = ? AND message LIKE '%This reverts commit %'
        )
        SELECT DISTINCT ON (c.sha) c.repo, c.sha, 'revert' AS method, true AS buggy, r.fix_sha,
               c.message LIKE 'Revert "%' AS reverted_revert
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
    as a bug: ``sha``, ``opened_at`` (the earliest cited bug issue's opening; NULL for PRs) and
    ``rule`` (``issue`` when an issue is cited, else ``pull_request``).
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
            SELECT c.sha, b.opened_at, 'issue' AS rule FROM cited c JOIN bugs b USING (issue)
            UNION ALL SELECT merge_commit_sha, NULL, 'pull_request' FROM bug_prs WHERE merge_commit_sha IS NOT NULL
            UNION ALL SELECT pc.sha, NULL, 'pull_request' FROM pr_commits pc JOIN bug_prs p USING (number)
                      WHERE pc.repo = $repo
        )
        SELECT sha, min(opened_at) AS opened_at, min(rule) AS rule FROM linked GROUP BY sha
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
