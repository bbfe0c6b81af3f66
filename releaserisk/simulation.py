"""A deterministic synthetic software organisation with planted, known effects.

:func:`simulate` writes, under ``out``:

* ``repo/`` — a real git repository built with ``git fast-import``: one folder per
  service (``src/*.py``, ``config/*.yaml``, ``migrations/*.sql``, ``tests/``), authors
  of varying experience (newcomers join over time), heavy-tailed change sizes, renames,
  and bug-introducing commits planted with a probability that rises with churn,
  spread, file hotness, config/migration edits and author inexperience. Each planted
  bug is later fixed by a commit that rewrites one of the lines the bug added (so
  SZZ can find it) and whose message references the bug's issue number.
* ``services.csv``, ``deployments.csv`` (dev → staging → production, with batches,
  hotfixes, rollbacks and skipped stages), ``incidents.csv`` (caused by deployments
  that carried bugs), and ``metrics.csv`` (canary latency samples and error counts for
  recent production deployments, regressed for the bad ones).
* ``truth/`` — ``bug_introducing.csv``, ``deployments.csv`` (failed or not, why, bugs
  carried), ``effects.json`` (the planted coefficients and the scenario).

With ``remedies=True`` it also plants the release remedies of issue 23 (a separate random
stream, so everything else stays byte-identical): ``flags.csv`` (a feature-flag log in the
generic flag CSV: ramps, releases, flag-caused incidents ended by a kill switch, a stale
flag still referenced in the code, a flag never turned on and without owner), those
incidents in ``incidents.csv`` (half name their flag in ``cause_flag_key``), and, after the
last week, a release of a destructive schema migration (``DROP COLUMN``) whose rollback
failed and was fixed forward by a hotfix. Their truth: ``truth/flag_incidents.csv``,
``truth/flags.csv`` (stale / never-on / unowned findings) and ``truth/migrations.csv``.

With ``repos=N`` (N > 1) it writes an organisation instead of ``repo/``: ``repos/repo-001`` …
``repos/repo-N``, each a git repository as above with 1 to 3 services (``svc-001-a/`` …, a
third of the commit rate: a few hundred commits in 26 weeks), ``org.toml`` (the organisation
manifest ``releaserisk ingest org`` reads), and the CSV files and ``truth/`` over all of them,
with their ``repo`` column set (``truth/bug_introducing.csv`` gains one). Repository ``k``
draws from its own random stream (``[seed, 25, k]``), so it is the same whatever N is: a
benchmark from 10 to 200 repositories compares like with like.

Everything derives from ``seed``: the same seed gives byte-identical files, git SHAs
included (fixed identities and dates). Scenarios (:data:`SCENARIOS`) mirror release
failure modes: ``healthy``, ``quarterly-batches``, ``daily-fragile``,
``broken-rollbacks``, ``hotfix-chaos``, ``slow-promotion``.

Nothing here imports an analysis module: the simulator only writes inputs.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from releaserisk.errors import InputError, SourceError

__all__ = ["SCENARIOS", "Scenario", "SimulationResult", "default_start", "simulate"]


@dataclass(frozen=True)
class Scenario:
    """The release-process knobs of one scenario."""

    deploy_every_days: float = 1.0  # mean days between production releases per service
    stage_hours: tuple[float, float] = (2.0, 4.0)  # dev -> staging, staging -> production
    skip_stage_probability: float = 0.02
    base_failure: float = 0.03  # failure chance of a deployment that carries no bug
    failure_per_bug: float = 0.45  # each planted bug in the batch fails it with this chance
    failure_per_change: float = 0.004  # integration risk: every change shipped adds this chance
    failure_drift: float = 0.0  # extra failure chance per week (rising fragility)
    rollback_share: float = 0.6  # failures remedied by rollback (else hotfix)
    rollback_fail_probability: float = 0.05
    rollback_hours: float = 0.5
    hotfix_hours: float = 3.0
    hotfix_skip_stages_probability: float = 0.2
    hotfix_failure: float = 0.05
    detection_hours: float = 2.0
    failed_job_probability: float = 0.02  # deploy jobs that fail outright (no incident)


SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario(),
    "quarterly-batches": Scenario(deploy_every_days=35.0, stage_hours=(24.0, 72.0), failure_per_change=0.006),
    "daily-fragile": Scenario(deploy_every_days=1.0, base_failure=0.03, failure_drift=0.012, failure_per_bug=0.5),
    "broken-rollbacks": Scenario(rollback_share=0.85, rollback_fail_probability=0.55, rollback_hours=6.0),
    "hotfix-chaos": Scenario(rollback_share=0.2, hotfix_skip_stages_probability=0.9, hotfix_failure=0.45,
                             hotfix_hours=1.0),
    "slow-promotion": Scenario(stage_hours=(40.0, 70.0), skip_stage_probability=0.3),
}  # fmt: skip

#: Planted log-odds of a commit introducing a bug (recorded in truth/effects.json).
BUG_MODEL = {
    "intercept": -4.3,
    "log1p_churn": 0.75,
    "log1p_extra_files": 0.5,
    "config_or_migration": 1.1,
    "hot_file": 0.5,
    "log1p_author_commits": -0.45,
}

ENVIRONMENTS = ("dev", "staging", "production")
_VERBS = ("Add", "Refactor", "Update", "Improve", "Rework", "Extend", "Simplify", "Document", "Tune", "Clean up")
_NOUNS = ("request handling", "caching layer", "retry policy", "metrics export", "schema", "input parsing",
          "pagination", "feature flag", "logging", "rate limits", "session store", "search index")  # fmt: skip
_SYMPTOMS = ("wrong totals", "timeout under load", "null pointer on empty input", "stale cache",
             "off-by-one in pagination", "memory leak", "race on shutdown", "bad migration default")  # fmt: skip
_FIRST = ("Ada", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mo", "Noor")


@dataclass
class SimulationResult:
    """Where the simulation wrote things, and what it planted.

    Attributes
    ----------
    out : Path
        The output directory.
    repo : Path
        The git repository (``out/repo``); in an organisation the folder of them (``out/repos``).
    scenario : str
    seed : int
    commits, bugs, deployments, incidents : int
        Totals over all repositories (bugs: planted bug-introducing commits).
    files : dict of str to Path
        The CSV, JSON and (organisations) ``manifest`` files written, by kind.
    repos : dict of str to Path
        Each repository's name (as in ``services.csv``) and path: ``{"demo": out/repo}`` for
        one repository.
    manifest : Path or None
        ``out/org.toml`` of an organisation (None for one repository).
    """

    out: Path
    repo: Path
    scenario: str
    seed: int
    commits: int
    bugs: int
    deployments: int
    incidents: int
    files: dict[str, Path] = field(default_factory=dict)
    repos: dict[str, Path] = field(default_factory=dict)
    manifest: Path | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (paths as strings)."""
        data = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()} | {
            "files": {k: str(v) for k, v in self.files.items()},
            "repos": {k: str(v) for k, v in self.repos.items()},
        }


# -- the history ---------------------------------------------------------------------------
class _Line:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _History:
    """Files as lists of unique lines, a fast-import stream, and the planted truth."""

    def __init__(self, rng: np.random.Generator, services: list[str]) -> None:
        self.rng = rng
        self.services = services
        self.files: dict[str, list[_Line]] = {}
        self.churn: dict[str, float] = {}  # recent churn per file (hotness), decays
        self.counter = 0
        self.stream: list[bytes] = []
        self.mark = 0
        self.commits: list[dict] = []
        self.author_commits: dict[str, int] = {}

    def line(self, path: str) -> _Line:
        self.counter += 1
        n = self.counter
        if path.endswith(".py"):
            text = f"    value_{n} = compute(step={n % 97}, scale={n % 13})"
        elif path.endswith(".sql"):
            text = f"ALTER TABLE t{n % 17} ADD COLUMN c{n} INTEGER DEFAULT {n % 7};"
        elif path.endswith(".yaml"):
            text = f"setting_{n}: {n % 50}"
        else:
            text = f"Line {n} of the documentation."
        return _Line(text)

    def new_file(self, path: str, lines: int) -> list[_Line]:
        content = [self.line(path) for _ in range(lines)]
        self.files[path] = content
        return content

    def commit(self, when: datetime, author: tuple[str, str], message: str, ops: list[tuple]) -> int:
        """Append a commit; ops are ("M", path) / ("D", path) / ("R", old, new) after content edits."""
        self.mark += 1
        stamp = int(when.timestamp())
        name, email = author
        payload = message.encode() + b"\n"
        head = (f"commit refs/heads/main\nmark :{self.mark}\nauthor {name} <{email}> {stamp} +0000\n"
                f"committer {name} <{email}> {stamp} +0000\ndata {len(payload)}\n").encode()  # fmt: skip
        parts = [head, payload]
        for op in ops:
            if op[0] == "R":
                parts.append(f'R "{op[1]}" "{op[2]}"\n'.encode())
            elif op[0] == "D":
                parts.append(f'D "{op[1]}"\n'.encode())
            else:
                content = ("\n".join([line.text for line in self.files[op[1]]]) + "\n").encode()
                parts.append(f'M 100644 inline "{op[1]}"\ndata {len(content)}\n'.encode() + content)
        parts.append(b"\n")
        self.stream.append(b"".join(parts))
        self.author_commits[email] = self.author_commits.get(email, 0) + 1
        return self.mark


def _authors(rng: np.random.Generator, weeks: int) -> list[dict]:
    people = []
    for i, first in enumerate(_FIRST):
        joined = 0 if i < 6 else int(rng.integers(1, max(weeks * 7 - 14, 2)))
        people.append({"name": f"{first} Example", "email": f"{first.lower()}@example.com", "joined": joined,
                       "activity": float(rng.lognormal(0, 0.6))})  # fmt: skip
    return people


def _message(rng: np.random.Generator, service: str) -> str:
    return f"{_VERBS[rng.integers(len(_VERBS))]} {_NOUNS[rng.integers(len(_NOUNS))]} in {service}"


def _pick_files(rng: np.random.Generator, history: _History, service: str, count: int) -> list[str]:
    own = sorted(p for p in history.files if p.startswith(f"{service}/"))
    others = sorted(p for p in history.files if not p.startswith(f"{service}/"))
    weights = np.array([1.0 + 3.0 * history.churn.get(p, 0.0) for p in own])
    chosen = list(rng.choice(own, size=min(count, len(own)), replace=False, p=weights / weights.sum()))
    if count > 1 and others and rng.random() < 0.12:  # cross-service change
        chosen[-1] = others[rng.integers(len(others))]
    return chosen


def _edit(rng: np.random.Generator, history: _History, path: str, size: int) -> tuple[list[_Line], int]:
    """Rewrite/insert/delete about ``size`` lines; return the lines added and the churn."""
    lines = history.files[path]
    added: list[_Line] = []
    churn = 0
    for _ in range(max(1, size)):
        roll = rng.random()
        if roll < 0.45 and lines:
            i = int(rng.integers(len(lines)))
            lines[i] = history.line(path)
            added.append(lines[i])
            churn += 2
        elif roll < 0.85 or not lines:
            i = int(rng.integers(len(lines) + 1))
            new = history.line(path)
            lines.insert(i, new)
            added.append(new)
            churn += 1
        elif len(lines) > 3:
            del lines[int(rng.integers(len(lines)))]
            churn += 1
    return added, churn


def _initial_tree(history: _History, rng: np.random.Generator) -> list[tuple]:
    ops = []
    for service in history.services:
        for i in range(int(rng.integers(5, 9))):
            path = f"{service}/src/module_{i}.py"
            history.new_file(path, int(rng.integers(30, 200)))
            ops.append(("M", path))
        for path, size in ((f"{service}/config/settings.yaml", 20), (f"{service}/migrations/0001_init.sql", 15),
                           (f"{service}/tests/test_module_0.py", 40)):  # fmt: skip
            history.new_file(path, size)
            ops.append(("M", path))
    history.new_file("README.md", 10)
    ops.append(("M", "README.md"))
    return ops


def _bug_probability(churn: int, nf: int, config: bool, hot: bool, author_commits: int) -> float:
    b = BUG_MODEL
    z = (b["intercept"] + b["log1p_churn"] * math.log1p(churn) + b["log1p_extra_files"] * math.log1p(nf - 1)
         + b["config_or_migration"] * config + b["hot_file"] * hot
         + b["log1p_author_commits"] * math.log1p(author_commits))  # fmt: skip
    return 1.0 / (1.0 + math.exp(-z))


def _write_history(
    rng: np.random.Generator, start: datetime, weeks: int, services: list[str], per_day: float | None = None
) -> _History:
    history = _History(rng, services)
    people = _authors(rng, weeks)
    founder = (people[0]["name"], people[0]["email"])
    first_mark = history.commit(start, founder, "Initial import", _initial_tree(history, rng))
    history.commits.append({"mark": first_mark, "when": start, "service": None, "bug": False, "touched": services})
    pending_fixes: list[tuple[datetime, dict]] = []
    issue = 0
    per_day = per_day or 3.0 + 1.5 * len(services)  # mean commits per working day
    for day in range(weeks * 7):
        date = start + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        times = sorted(rng.uniform(9 * 3600, 18 * 3600, int(rng.poisson(per_day))))
        for seconds in times:
            when = date + timedelta(seconds=float(seconds))
            active = [p for p in people if p["joined"] <= day]
            weights = np.array([p["activity"] for p in active])
            person = active[int(rng.choice(len(active), p=weights / weights.sum()))]
            author = (person["name"], person["email"])
            # due fixes first: a fix rewrites one of the lines its bug added
            while pending_fixes and pending_fixes[0][0] <= when:
                _, bug = pending_fixes.pop(0)
                _commit_fix(history, rng, when, author, bug)
            history.commits.append(_commit_change(history, rng, when, author, issue))
            change = history.commits[-1]
            if change["bug"]:
                issue += 1
                change["issue"] = issue
                delay = timedelta(hours=float(rng.gamma(2.0, 40.0)))
                pending_fixes.append((when + delay, change))
                pending_fixes.sort(key=lambda item: item[0])
        for path in list(history.churn):
            history.churn[path] *= 0.9
    return history


def _commit_change(history: _History, rng: np.random.Generator, when: datetime, author, issue: int) -> dict:
    service = history.services[int(rng.integers(len(history.services)))]
    nf = 1 + min(int(rng.zipf(2.2)) - 1, 12)
    size = max(1, int(rng.lognormal(2.0, 1.1)))
    ops: list[tuple] = []
    added_lines: list[tuple[str, _Line]] = []
    churn = 0
    roll = rng.random()
    if roll < 0.05:  # a new file: mostly a module, sometimes a migration
        if roll < 0.04:
            index = sum(1 for p in history.files if p.startswith(f"{service}/src/"))
            path, size = f"{service}/src/module_{index}.py", int(rng.integers(10, 60))
        else:
            index = sum(1 for p in history.files if p.startswith(f"{service}/migrations/")) + 1
            path, size = f"{service}/migrations/{index:04d}_change.sql", int(rng.integers(3, 15))
        added_lines.extend((path, line) for line in history.new_file(path, size))
        ops.append(("M", path))
        churn += size
        files = [path]
    else:
        files = _pick_files(rng, history, service, nf)
        if rng.random() < 0.015:  # rename one file, then edit it
            old = files[0]
            if "/src/" in old:
                new = old.replace("module_", "component_")
                if new not in history.files:
                    history.files[new] = history.files.pop(old)
                    history.churn[new] = history.churn.pop(old, 0.0)
                    ops.append(("R", old, new))
                    files[0] = new
        for path in files:
            new_lines, file_churn = _edit(rng, history, path, max(1, size // len(files)))
            churn += file_churn
            added_lines.extend((path, line) for line in new_lines)
            ops.append(("M", path))
    hot = any(history.churn.get(p, 0.0) > 2.0 for p in files)
    config = any("/config/" in p or "/migrations/" in p for p in files)
    probability = _bug_probability(churn, len(files), config, hot, history.author_commits.get(author[1], 0))
    bug = bool(rng.random() < probability) and bool(added_lines)
    for path in files:
        history.churn[path] = history.churn.get(path, 0.0) + 1.0
    mark = history.commit(when, author, _message(rng, service), ops)
    return {"mark": mark, "when": when, "service": service, "bug": bug, "probability": probability,
            "lines": added_lines if bug else [], "touched": sorted({p.split("/", 1)[0] for p in files})}  # fmt: skip


def _commit_fix(history: _History, rng: np.random.Generator, when: datetime, author, bug: dict) -> None:
    alive = [(path, line) for path, line in bug["lines"] if path in history.files and line in history.files[path]]
    if not alive:
        bug["fixed_by"] = None
        return
    path, line = alive[int(rng.integers(len(alive)))]
    lines = history.files[path]
    lines[lines.index(line)] = history.line(path)
    symptom = _SYMPTOMS[int(rng.integers(len(_SYMPTOMS)))]
    mark = history.commit(when, author, f"Fix {symptom} in {path.split('/')[0]} (fixes #{bug['issue']})",
                          [("M", path)])  # fmt: skip
    history.churn[path] = history.churn.get(path, 0.0) + 1.0
    history.commits.append({"mark": mark, "when": when, "service": path.split("/")[0], "bug": False,
                            "fix_of": bug["mark"], "touched": [path.split("/")[0]]})  # fmt: skip
    bug["fixed_by"] = mark
    bug["fixed_at"] = when


def _git_import(history: _History, repo: Path) -> dict[int, str]:
    if shutil.which("git") is None:
        raise SourceError("git executable not found on PATH; the simulator builds a real repository")
    repo = repo.resolve()  # git -C changes directory: every path it gets must be absolute
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull, "LC_ALL": "C"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    marks = repo / ".git" / "sim-marks"
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet", f"--export-marks={marks}"],
                   input=b"".join(history.stream), check=True, env=env)  # fmt: skip
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "-f", "main"], check=True, env=env)
    table = {}
    for line in marks.read_text().splitlines():
        mark, sha = line.split()
        table[int(mark[1:])] = sha
    marks.unlink()
    return table


# -- the release process ----------------------------------------------------------------------
def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _release_process(rng, history: _History, shas: dict[int, str], scenario: Scenario, start: datetime, weeks: int,
                     repo: str = "demo", incident_prefix: str = "INC-"):  # fmt: skip
    """Deployments through dev -> staging -> production, with failures, incidents, remedies."""
    deployments, incidents, truth = [], [], []
    timeline = [(c["when"], shas[c["mark"]], c) for c in history.commits]
    end = start + timedelta(days=weeks * 7)
    counter = 0

    def head_at(when: datetime) -> str:
        sha = timeline[0][1]
        for t, s, _ in timeline:
            if t > when:
                break
            sha = s
        return sha

    def add(service, env, sha, at, status="success", kind="regular", reverts=None, started=None):
        nonlocal counter
        counter += 1
        deployment_id = f"{service}-{env[:4]}-{counter:05d}"
        deployments.append({"deployment_id": deployment_id, "service": service, "repo": repo, "environment": env,
                            "sha": sha, "status": status, "kind": kind, "reverts_deployment_id": reverts or "",
                            "started_at": _iso(started or at - timedelta(minutes=float(rng.uniform(5, 20)))),
                            "finished_at": _iso(at), "source": "simulator"})  # fmt: skip
        return deployment_id

    for service in history.services:
        last_prod_time = start
        last_prod_id = None
        last_prod_sha = None
        t = start + timedelta(days=float(rng.uniform(0.5, 2.0)))
        while t < end:
            if t.weekday() >= 5 and scenario.deploy_every_days < 7:
                t += timedelta(days=1)
                continue
            sha = head_at(t)
            dev_at = t
            staging_at = dev_at + timedelta(hours=float(rng.exponential(scenario.stage_hours[0])))
            prod_at = staging_at + timedelta(hours=float(rng.exponential(scenario.stage_hours[1])))
            if prod_at >= end:
                break
            add(service, "dev", sha, dev_at)
            skipped = rng.random() < scenario.skip_stage_probability
            if not skipped:
                add(service, "staging", sha, staging_at)
            if rng.random() < scenario.failed_job_probability:
                add(service, "production", sha, prod_at, status="failure")
                t = prod_at + timedelta(hours=1)
                continue
            carried = [c for c in history.commits if c["bug"] and last_prod_time < c["when"] <= dev_at
                       and service in c["touched"] and not (c.get("fixed_at") and c["fixed_at"] <= dev_at)]  # fmt: skip
            weeks_in = (prod_at - start).days / 7
            base = min(scenario.base_failure + scenario.failure_drift * weeks_in, 0.9)
            shipped = sum(
                1 for c in history.commits if last_prod_time < c["when"] <= dev_at and service in c["touched"]
            )
            survive = (1 - base) * (1 - scenario.failure_per_bug) ** len(carried)
            fails = rng.random() < 1 - survive * (1 - scenario.failure_per_change) ** shipped
            deployment_id = add(service, "production", sha, prod_at)
            truth.append({"deployment_id": deployment_id, "service": service, "failed": fails,
                          "bugs_carried": len(carried), "skipped_stage": skipped, "reason": ""})  # fmt: skip
            if fails:
                restore_at = _remedy(rng, scenario, service, deployment_id, last_prod_id, last_prod_sha, prod_at,
                                     head_at, add, truth, incidents, carried, incident_prefix)  # fmt: skip
                prod_at = restore_at
            last_prod_time, last_prod_id, last_prod_sha = prod_at, deployment_id, sha
            t = prod_at + timedelta(days=float(rng.exponential(scenario.deploy_every_days)) + 0.1)
    deployments.sort(key=lambda d: (d["finished_at"], d["deployment_id"]))
    incidents.sort(key=lambda i: i["opened_at"])
    return deployments, incidents, truth


def _remedy(rng, scenario, service, failed_id, previous_id, previous_sha, at, head_at, add, truth, incidents, carried,
            incident_prefix):  # fmt: skip
    opened = at + timedelta(hours=float(rng.exponential(scenario.detection_hours)) + 0.05)
    use_rollback = previous_sha is not None and rng.random() < scenario.rollback_share
    restored = None
    fix_from = opened
    if use_rollback:
        rollback_at = opened + timedelta(hours=float(rng.exponential(scenario.rollback_hours)) + 0.1)
        if rng.random() < scenario.rollback_fail_probability:
            add(service, "production", previous_sha, rollback_at, status="failure", kind="rollback",
                reverts=failed_id)  # fmt: skip
            truth[-1]["reason"] = "rollback failed, then hotfix"
            use_rollback = False
            fix_from = rollback_at
        else:
            add(service, "production", previous_sha, rollback_at, kind="rollback", reverts=failed_id)
            truth[-1]["reason"] = "rolled back"
            restored = rollback_at
    if not use_rollback:
        hotfix_at = fix_from + timedelta(hours=float(rng.exponential(scenario.hotfix_hours)) + 0.2)
        sha = head_at(hotfix_at)
        skip = rng.random() < scenario.hotfix_skip_stages_probability
        if not skip:
            add(service, "staging", sha, hotfix_at - timedelta(minutes=30), kind="hotfix")
        hotfix_id = add(service, "production", sha, hotfix_at, kind="hotfix")
        truth[-1]["reason"] = truth[-1]["reason"] or "hotfix"
        truth.append({"deployment_id": hotfix_id, "service": service, "failed": False, "bugs_carried": 0,
                      "skipped_stage": skip, "reason": ""})  # fmt: skip
        restored = hotfix_at
        if rng.random() < scenario.hotfix_failure:  # the hotfix breaks things again
            truth[-1]["failed"] = True
            truth[-1]["reason"] = "hotfix failed, fixed by hotfix"
            second = hotfix_at + timedelta(hours=float(rng.exponential(scenario.hotfix_hours)) + 0.2)
            again = add(service, "production", head_at(second), second, kind="hotfix")
            truth.append({"deployment_id": again, "service": service, "failed": False, "bugs_carried": 0,
                          "skipped_stage": True, "reason": ""})  # fmt: skip
            restored = second
    explicit = rng.random() < 0.5
    incidents.append({"incident_id": f"{incident_prefix}{len(incidents) + 1:04d}", "service": service,
                      "title": f"{service}: errors after release",
                      "severity": str(rng.choice(["sev1", "sev2", "sev3"])),
                      "opened_at": _iso(opened), "resolved_at": _iso(restored + timedelta(minutes=10)),
                      "cause_deployment_id": failed_id if explicit else "", "cause_sha": "",
                      "source": "simulator"})  # fmt: skip
    return restored


# -- release remedies: feature flags and a destructive migration (issue 23) ----------------
_FLAG_OWNER = "flags-team@example.com"


def _destructive_commit(history: _History, services: list[str], end: datetime, stale_key: str) -> dict:
    """After the last week: a migration dropping a column, and the code still reading a stale flag."""
    service = services[0]
    index = sum(1 for p in history.files if p.startswith(f"{service}/migrations/")) + 1
    path = f"{service}/migrations/{index:04d}_drop_legacy_email.sql"
    history.files[path] = [_Line("ALTER TABLE users DROP COLUMN legacy_email;")]
    flags_path = f"{services[-1]}/src/feature_flags.py"
    history.files[flags_path] = [_Line(f"LEGACY_SEARCH = flags.enabled('{stale_key}')")]
    when = end + timedelta(hours=1)
    author = ("Ada Example", "ada@example.com")
    mark = history.commit(when, author, f"Drop the legacy email column in {service}",
                          [("M", path), ("M", flags_path)])  # fmt: skip
    history.commits.append({"mark": mark, "when": when, "service": service, "bug": False, "touched": [service]})
    return {"mark": mark, "service": service, "path": path, "when": when}


def _flag_row(service, key, action, from_state, to_state, at, owner=_FLAG_OWNER, env="production"):
    change = f"{key}@{_iso(at)}:{action}"
    return {"change_id": change, "flag_key": key, "environment": env, "service": service, "action": action,
            "from_state": from_state, "to_state": to_state, "actor": "oncall@example.com" if action == "off" else owner,
            "owner": owner, "changed_at": _iso(at), "source": "simulator"}  # fmt: skip


def _flag_log(rng, services: list[str], start: datetime, end: datetime, incidents: list[dict]):
    """Flag ramps, flag-caused incidents fixed by a kill switch, a stale and a never-used flag."""
    rows, caused, findings = [], [], []
    busy = [(datetime.fromisoformat(i["opened_at"].replace("Z", "+00:00")),
             datetime.fromisoformat(i["resolved_at"].replace("Z", "+00:00"))) for i in incidents]  # fmt: skip

    def business_time(low: datetime, high: datetime) -> datetime:
        for _ in range(200):
            day = low + timedelta(days=float(rng.uniform(0, (high - low).days)))
            at = day.replace(hour=int(rng.integers(10, 16)), minute=int(rng.integers(0, 60)), second=0, microsecond=0)
            if at.weekday() < 5 and low <= at < high and all(not (a - timedelta(hours=30) <= at <= b) for a, b in busy):
                return at
        raise InputError("the simulated history is too short to plant flag incidents; use more weeks")

    for service in services:
        key = f"{service}.new-checkout"  # a released flag: created, ramped, fully on
        at = business_time(start + timedelta(days=3), end - timedelta(days=20))
        rows += [_flag_row(service, key, "created", None, None, at - timedelta(days=1), env=None),
                 _flag_row(service, key, "rollout", "0%", "10%", at),
                 _flag_row(service, key, "rollout", "10%", "50%", at + timedelta(days=2)),
                 _flag_row(service, key, "on", "50%", "on", at + timedelta(days=5))]  # fmt: skip
        for n in range(2):  # flag-caused incidents ended by a kill switch
            key = f"{service}.experiment-{n + 1}"
            flipped = business_time(start + timedelta(days=7), end - timedelta(days=2))
            opened = flipped + timedelta(minutes=float(rng.uniform(3, 20)))
            off = opened + timedelta(minutes=float(rng.uniform(4, 30)))
            busy.append((flipped, off + timedelta(hours=2)))
            rows += [_flag_row(service, key, "created", None, None, flipped - timedelta(days=1), env=None),
                     _flag_row(service, key, "on", "off", "on", flipped),
                     _flag_row(service, key, "off", "on", "off", off)]  # fmt: skip
            incident = f"INC-F{len(caused) + 1:03d}"
            explicit = len(caused) % 2 == 0
            incidents.append({"incident_id": incident, "service": service, "title": f"{service}: errors after {key}",
                              "severity": "sev2", "opened_at": _iso(opened),
                              "resolved_at": _iso(off + timedelta(minutes=10)), "cause_deployment_id": "",
                              "cause_sha": "", "cause_flag_key": key if explicit else "",
                              "source": "simulator"})  # fmt: skip
            caused.append({"incident_id": incident, "service": service, "flag_key": key,
                           "change_id": rows[-2]["change_id"], "flipped_at": _iso(flipped), "opened_at": _iso(opened),
                           "off_at": _iso(off), "kill_switch_minutes": round((off - opened).total_seconds() / 60, 2),
                           "explicit": explicit})  # fmt: skip
    stale, unused = f"{services[-1]}.legacy-search", f"{services[0]}.dark-launch"
    rows += [
        _flag_row(services[-1], stale, "created", None, None, start + timedelta(days=1), env=None),
        _flag_row(services[-1], stale, "on", "off", "on", start + timedelta(days=2)),
        _flag_row(services[0], unused, "created", None, None, start + timedelta(days=4), owner=None, env=None),
    ]
    findings += [{"flag_key": stale, "finding": "stale"}, {"flag_key": unused, "finding": "never_on"},
                 {"flag_key": unused, "finding": "unowned"}]  # fmt: skip
    rows.sort(key=lambda r: (r["changed_at"], r["change_id"]))
    incidents.sort(key=lambda i: i["opened_at"])
    return rows, caused, findings, stale


def _destructive_release(episode: dict, shas: dict[int, str], deployments: list[dict], truth: list[dict],
                         incidents: list[dict]) -> list[dict]:  # fmt: skip
    """Ship the destructive migration; its rollback fails, a hotfix fixes forward."""
    service, sha = episode["service"], shas[episode["mark"]]
    previous = [d for d in deployments if d["service"] == service and d["environment"] == "production"
                and d["status"] == "success"][-1]  # fmt: skip
    at = episode["when"] + timedelta(hours=1)

    def add(suffix, when, status, kind, reverts="", deployed=sha):
        deployments.append({"deployment_id": f"{service}-prod-m{suffix}", "service": service, "repo": "demo",
                            "environment": "production", "sha": deployed, "status": status, "kind": kind,
                            "reverts_deployment_id": reverts, "started_at": _iso(when - timedelta(minutes=10)),
                            "finished_at": _iso(when), "source": "simulator"})  # fmt: skip
        return deployments[-1]["deployment_id"]

    shipped = add("1", at, "success", "regular")
    rollback = add("2", at + timedelta(hours=1), "failure", "rollback", reverts=shipped, deployed=previous["sha"])
    hotfix = add("3", at + timedelta(hours=3), "success", "hotfix")
    truth += [{"deployment_id": shipped, "service": service, "failed": True, "bugs_carried": 0,
               "skipped_stage": False, "reason": "rollback failed, then hotfix"},
              {"deployment_id": hotfix, "service": service, "failed": False, "bugs_carried": 0,
               "skipped_stage": False, "reason": ""}]  # fmt: skip
    incidents.append({"incident_id": "INC-M001", "service": service, "title": f"{service}: writes fail after migration",
                      "severity": "sev1", "opened_at": _iso(at + timedelta(minutes=30)),
                      "resolved_at": _iso(at + timedelta(hours=3, minutes=10)), "cause_deployment_id": shipped,
                      "cause_sha": "", "cause_flag_key": "", "source": "simulator"})  # fmt: skip
    return [{"sha": sha, "path": episode["path"], "reversible": False,
             "reason": f"drops column users.legacy_email in {episode['path']}", "deployment_id": shipped,
             "rollback_deployment_id": rollback, "rollback_status": "failure"}]  # fmt: skip


def _canary_metrics(rng, deployments: list[dict], truth: list[dict], recent: int = 8) -> list[dict]:
    bad = {t["deployment_id"] for t in truth if t["failed"]}
    production = [d for d in deployments if d["environment"] == "production" and d["status"] == "success"]
    rows = []
    for d in production[-recent:]:
        regressed = d["deployment_id"] in bad
        start = datetime.strptime(d["finished_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        for minute in range(60):
            ts = _iso(start + timedelta(minutes=minute))
            for arm in ("baseline", "canary"):
                shift = 0.35 if (regressed and arm == "canary") else 0.0
                for value in rng.lognormal(4.0 + shift, 0.3, 5):
                    rows.append({"analysis_id": d["deployment_id"], "metric": "latency_ms", "arm": arm, "ts": ts,
                                 "value": round(float(value), 3)})  # fmt: skip
                ratio = 2.5 if (regressed and arm == "canary") else 1.0
                rows.append({"analysis_id": d["deployment_id"], "metric": "errors", "arm": arm, "ts": ts,
                             "value": int(rng.poisson(2.0 * ratio))})  # fmt: skip
    return rows


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


_DEPLOYMENT_COLUMNS = ["deployment_id", "service", "repo", "environment", "sha", "status", "kind",
                       "reverts_deployment_id", "started_at", "finished_at", "source"]  # fmt: skip
_INCIDENT_COLUMNS = ["incident_id", "service", "title", "severity", "opened_at", "resolved_at", "cause_deployment_id",
                     "cause_sha", "source"]  # fmt: skip
_BUG_COLUMNS = ["sha", "service", "issue", "probability", "fix_sha"]
_TRUTH_DEPLOYMENT_COLUMNS = ["deployment_id", "service", "failed", "bugs_carried", "skipped_stage", "reason"]


def _bug_rows(history: _History, shas: dict[int, str], repo: str | None = None) -> list[dict]:
    """truth/bug_introducing.csv rows; ``repo`` names the repository in an organisation."""
    return [{**({"repo": repo} if repo else {}), "sha": shas[c["mark"]], "service": c["service"], "issue": c["issue"],
             "probability": round(c["probability"], 6), "fix_sha": shas[c["fixed_by"]] if c.get("fixed_by") else ""}
            for c in history.commits if c["bug"]]  # fmt: skip


def _check_arguments(scenario: str, services: int, weeks: int, repos: int, remedies: bool) -> None:
    if scenario not in SCENARIOS:
        raise InputError(f"unknown scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    if not 1 <= services <= 20:
        raise InputError("services must be between 1 and 20")
    if not 2 <= weeks <= 520:
        raise InputError("weeks must be between 2 and 520")
    if not 1 <= repos <= MAX_REPOS:
        raise InputError(f"repos must be between 1 and {MAX_REPOS}")
    if remedies and repos > 1:
        raise InputError("remedies are planted in a one-repository simulation only: drop --remedies or --repos")


def default_start(weeks: int, now: datetime | None = None) -> datetime:
    """The first day of a simulated history of ``weeks`` weeks: 2025-01-06, or earlier if it would end too late.

    Every event of a history (incidents resolve in the days after its last deployment)
    must lie before the ingest's clock, which refuses later times; so a history whose
    last week would not have ended a week before ``now`` starts as many whole weeks earlier
    as that takes (a Monday still). The default lengths (26, 52 weeks) keep 2025-01-06.

    Parameters
    ----------
    weeks : int
        Length of the history.
    now : datetime, optional
        The clock (default: now, UTC).

    Returns
    -------
    datetime
        A Monday at 00:00 UTC.
    """
    start = datetime(2025, 1, 6, tzinfo=UTC)
    late = start + timedelta(weeks=weeks + 1) - (now or datetime.now(UTC))
    if late > timedelta(0):
        start -= timedelta(weeks=math.ceil(late / timedelta(weeks=1)))
    return start


def simulate(
    out: str | os.PathLike[str],
    *,
    scenario: str = "healthy",
    seed: int = 0,
    weeks: int = 26,
    services: int = 3,
    start: datetime | None = None,
    remedies: bool = False,
    repos: int = 1,
) -> SimulationResult:
    """Write a synthetic organisation's history under ``out`` (see the module docstring).

    Parameters
    ----------
    out : path-like
        Output directory (created; an existing ``repo/`` or ``repos/`` inside is replaced).
    scenario : str
        One of :data:`SCENARIOS`.
    seed : int
        Everything derives from it.
    weeks : int
        Length of the history.
    services : int
        Number of services (top-level folders of one repository); with ``repos > 1`` the
        most per repository (each has between 1 and that many, at most 3).
    start : datetime, optional
        First day (default 2025-01-06, a Monday, UTC — moved back by whole weeks when the
        history would not have ended a week before today: ingest refuses future times).
    remedies : bool
        Also plant feature flags and a destructive migration whose rollback failed (see the
        module docstring); without it the outputs are those of earlier versions. One
        repository only.
    repos : int
        Number of repositories (1 to :data:`MAX_REPOS`). 1 writes ``repo/`` as always;
        more write an organisation: ``repos/repo-001`` … and ``org.toml`` (see the module
        docstring). Repository ``k`` is the same whatever ``repos`` is.

    Returns
    -------
    SimulationResult

    Raises
    ------
    InputError
        An unknown scenario, or a count out of range.
    SourceError
        git is not installed.
    """
    _check_arguments(scenario, services, weeks, repos, remedies)
    start = start or default_start(weeks)
    base = Path(out)
    (base / "truth").mkdir(parents=True, exist_ok=True)
    if repos > 1:
        return _simulate_organisation(base, scenario=scenario, seed=seed, weeks=weeks, services=services,
                                      start=start, repos=repos)  # fmt: skip
    rng = np.random.default_rng(seed)
    names = [f"svc-{chr(ord('a') + i)}" for i in range(services)]
    history = _write_history(rng, start, weeks, names)
    end = start + timedelta(days=weeks * 7)
    stale_key = f"{names[-1]}.legacy-search"
    episode = _destructive_commit(history, names, end, stale_key) if remedies else None
    shas = _git_import(history, base / "repo")
    config = SCENARIOS[scenario]
    deployments, incidents, truth = _release_process(rng, history, shas, config, start, weeks)
    metrics = _canary_metrics(rng, deployments, truth)
    if episode is not None:  # its own random stream: the rest stays as without remedies
        flag_rows, flag_incidents, flag_findings, _ = _flag_log(
            np.random.default_rng([seed, 23]), names, start, end, incidents
        )
        migrations = _destructive_release(episode, shas, deployments, truth, incidents)
    files = {
        "services": _write_csv(base / "services.csv",
                               [{"service": s, "repo": "demo", "path_prefix": f"{s}/", "team": f"team-{s[-1]}"}
                                for s in names], ["service", "repo", "path_prefix", "team"]),
        "deployments": _write_csv(base / "deployments.csv", deployments, _DEPLOYMENT_COLUMNS),
        "incidents": _write_csv(base / "incidents.csv", incidents,
                                _INCIDENT_COLUMNS + (["cause_flag_key"] if remedies else [])),
        "metrics": _write_csv(base / "metrics.csv", metrics, ["analysis_id", "metric", "arm", "ts", "value"]),
        "truth_bugs": _write_csv(base / "truth" / "bug_introducing.csv", _bug_rows(history, shas), _BUG_COLUMNS),
        "truth_deployments": _write_csv(base / "truth" / "deployments.csv", truth, _TRUTH_DEPLOYMENT_COLUMNS),
    }  # fmt: skip
    effects = {"scenario": scenario, "seed": seed, "weeks": weeks, "services": names, "bug_model": BUG_MODEL,
               "release_process": asdict(config),
               "canary": {"latency_log_shift": 0.35, "error_rate_ratio": 2.5}}  # fmt: skip
    if episode is not None:
        files["flags"] = _write_csv(base / "flags.csv", flag_rows, list(flag_rows[0]))
        files["truth_flag_incidents"] = _write_csv(base / "truth" / "flag_incidents.csv", flag_incidents,
                                                   list(flag_incidents[0]))  # fmt: skip
        files["truth_flags"] = _write_csv(base / "truth" / "flags.csv", flag_findings, ["flag_key", "finding"])
        files["truth_migrations"] = _write_csv(base / "truth" / "migrations.csv", migrations, list(migrations[0]))
        effects["remedies"] = {"flag_incidents": len(flag_incidents), "stale_flag": stale_key,
                               "destructive_migration": migrations[0]["path"]}  # fmt: skip
    files["truth_effects"] = _write_json(base / "truth" / "effects.json", effects)
    return SimulationResult(
        out=base, repo=base / "repo", scenario=scenario, seed=seed, commits=len(history.commits),
        bugs=sum(c["bug"] for c in history.commits), deployments=len(deployments), incidents=len(incidents),
        files=files, repos={"demo": base / "repo"},
    )  # fmt: skip


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


# -- organisations: many repositories (issue 25) ----------------------------------------------
#: Most repositories one simulation writes (their names keep three digits and sort).
MAX_REPOS = 999
#: Services per repository of an organisation: 1 to this many (or ``services`` if smaller).
MAX_SERVICES_PER_REPO = 3
_ORG_STREAM = 25  # repository k draws from default_rng([seed, 25, k]): the same whatever the org's size
_ORG_METRIC_DEPLOYMENTS = 1  # canary samples of each repository's last production release (8 in one repo)


def _org_commit_rate(services: int) -> float:
    """Mean commits per working day of an organisation's repository.

    A third of the one-repository rate (``3 + 1.5 * services``): a few hundred commits per
    repository in 26 weeks, so hundreds of repositories are written in seconds and each is
    ingested in about a second.
    """
    return 1.0 + 0.5 * services


@dataclass
class _OrgRepo:
    """One repository of a simulated organisation, with its release process and truth."""

    name: str
    path: Path
    services: list[str]
    history: _History
    shas: dict[int, str]
    deployments: list[dict]
    incidents: list[dict]
    truth: list[dict]
    metrics: list[dict]


def _org_repo(base: Path, k: int, *, seed: int, config: Scenario, weeks: int, services: int,
              start: datetime) -> _OrgRepo:  # fmt: skip
    """Repository ``k`` (1-based) from its own random stream."""
    rng = np.random.default_rng([seed, _ORG_STREAM, k])
    name = f"repo-{k:03d}"
    count = int(rng.integers(1, min(services, MAX_SERVICES_PER_REPO) + 1))
    names = [f"svc-{k:03d}-{chr(ord('a') + i)}" for i in range(count)]
    history = _write_history(rng, start, weeks, names, per_day=_org_commit_rate(count))
    path = base / "repos" / name
    shas = _git_import(history, path)
    deployments, incidents, truth = _release_process(rng, history, shas, config, start, weeks, repo=name,
                                                     incident_prefix=f"INC-{k:03d}-")  # fmt: skip
    metrics = _canary_metrics(rng, deployments, truth, recent=_ORG_METRIC_DEPLOYMENTS)
    return _OrgRepo(name, path, names, history, shas, deployments, incidents, truth, metrics)


def _write_manifest(path: Path, repos: list[_OrgRepo]) -> Path:
    """``org.toml``: the organisation manifest ``releaserisk ingest org`` reads (paths relative to it)."""
    lines = ["# releaserisk organisation manifest (written by releaserisk simulate)", "[defaults]",
             'rev = ["HEAD"]', "labels = true"]  # fmt: skip
    for repo in repos:  # names are ours ([a-z0-9-]): quoting needs no escapes
        services = ", ".join(f'{{ service = "{s}", path_prefix = "{s}/" }}' for s in repo.services)
        lines += ["", "[[repos]]", f'name = "{repo.name}"', f'path = "repos/{repo.name}"', f"services = [{services}]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _simulate_organisation(base: Path, *, scenario: str, seed: int, weeks: int, services: int, start: datetime,
                           repos: int) -> SimulationResult:  # fmt: skip
    """``repos`` repositories under ``base/repos``, their release processes in shared CSV files."""
    config = SCENARIOS[scenario]
    shutil.rmtree(base / "repos", ignore_errors=True)  # a larger earlier organisation leaves no stale repository
    # Two threads: while one builds a history in Python (holding the GIL), git fast-import
    # runs for the other; each repository has its own random stream, so the order is free.
    with ThreadPoolExecutor(max_workers=2) as pool:
        made = list(pool.map(lambda k: _org_repo(base, k, seed=seed, config=config, weeks=weeks, services=services,
                                                 start=start), range(1, repos + 1)))  # fmt: skip
    deployments = sorted((d for r in made for d in r.deployments), key=lambda d: (d["finished_at"], d["deployment_id"]))
    incidents = sorted((i for r in made for i in r.incidents), key=lambda i: (i["opened_at"], i["incident_id"]))
    files = {
        "services": _write_csv(base / "services.csv",
                               [{"service": s, "repo": r.name, "path_prefix": f"{s}/", "team": f"team-{r.name[5:]}"}
                                for r in made for s in r.services], ["service", "repo", "path_prefix", "team"]),
        "deployments": _write_csv(base / "deployments.csv", deployments, _DEPLOYMENT_COLUMNS),
        "incidents": _write_csv(base / "incidents.csv", incidents, _INCIDENT_COLUMNS),
        "metrics": _write_csv(base / "metrics.csv", [m for r in made for m in r.metrics],
                              ["analysis_id", "metric", "arm", "ts", "value"]),
        "truth_bugs": _write_csv(base / "truth" / "bug_introducing.csv",
                                 [row for r in made for row in _bug_rows(r.history, r.shas, r.name)],
                                 ["repo", *_BUG_COLUMNS]),
        "truth_deployments": _write_csv(base / "truth" / "deployments.csv", [t for r in made for t in r.truth],
                                        _TRUTH_DEPLOYMENT_COLUMNS),
        "manifest": _write_manifest(base / "org.toml", made),
    }  # fmt: skip
    effects = {"scenario": scenario, "seed": seed, "weeks": weeks, "services": [s for r in made for s in r.services],
               "repos": {r.name: r.services for r in made}, "bug_model": BUG_MODEL, "release_process": asdict(config),
               "commits_per_working_day": "1 + 0.5 per service of the repository",
               "canary": {"latency_log_shift": 0.35, "error_rate_ratio": 2.5}}  # fmt: skip
    files["truth_effects"] = _write_json(base / "truth" / "effects.json", effects)
    return SimulationResult(
        out=base, repo=base / "repos", scenario=scenario, seed=seed,
        commits=sum(len(r.history.commits) for r in made),
        bugs=sum(c["bug"] for r in made for c in r.history.commits), deployments=len(deployments),
        incidents=len(incidents), files=files, repos={r.name: r.path for r in made}, manifest=files["manifest"],
    )  # fmt: skip
