"""Git ingest scaling: 10k, 100k and 1M commits of one synthetic history vs the bare `git log`.

Run:  python benchmarks/ingest_scaling.py [--sizes 10000,100000,1000000] [--workers 1,2]
                                         [--cache /tmp/releaserisk-bench] [--memory-limit 1GB]

The history is written through ``git fast-import`` from a stream this script generates
(seeded, so every size is a prefix of the same history): a tree of 1,500 files in 60
packages at first (2,100 at 100k commits, 7,500 at 1M), files of a few dozen to a few
hundred lines that drift back to their own size, a few hundred of them touched with Zipf
(power-law) frequency, 40 authors of Zipf activity, one to a dozen files per commit, new
files, deletions and renames, and now and then a pull request — one to three commits on
a side branch merged with a merge commit. Repositories are cached under ``--cache`` (bare, one per size; a marker file
says the import finished) and reused.

Measured in the same run, on the same repository, each in its own child process:

* baseline — the bare ``git log`` command the ingest runs (same arguments, output read
  and discarded), the better of two runs (one before and one after the ingest: both
  read a warm page cache);
* ours — ``ingest_git`` into a fresh DuckDB file with the ``workers`` that
  ``releaserisk ingest git`` passes by default (``default_workers``: 1 on this 2-core
  machine, 2 — a first ingest of 20,000+ commits in two ``git log`` processes, see
  ``_segments`` — on 3 or more cores; ``--workers 1,2`` measures both): parsing, the
  14 change metrics, the Arrow batches and the DuckDB load in one transaction; its
  wall and CPU time (its own, and its git processes') and its peak RSS (the child's own:
  Python, Arrow and DuckDB; the git logs it runs are processes of their own, whose peak
  is about the baseline's, printed beside it).

Printed per size: the ratio to git log and, between consecutive sizes, the growth of
the time against the growth of the commits (target: 10x the commits in at most 11x the
time) and the ingest process's peak RSS (target: below 2 GiB at 1M commits).

Why the ingest grows faster than its commits (measured 2026-12-01 on these cached
histories, 2 cores shared with other sessions at load 2.6-4.2, CPU = user + system). The
ingest is one Python thread computing the metrics in commit order beside git (one ``git
log`` with workers=1; two with workers=2, split at 0.7 of the first-parent chain). On 2
cores its wall time is at least (Python CPU + git CPU) / 2, so its growth follows the
growth of that sum, and git's part grows 12-14x from 100k to 1M commits on this history
(see below). One run of ``--workers 1,2``: workers=2 (the CLI's) 16.04 s -> 230.45 s,
14.4x wall, 13.4x CPU (Python 9.54 -> 128.36 s, git 11.08 -> 147.88 s); workers=1 17.78
s -> 168.14 s, 9.5x wall, 12.1x CPU (Python 10.28 -> 122.21 s, git 10.18 -> 124.55 s);
git log 9.05 -> 124.93 s wall (13.8x). Run again at 1M (load 3.5-4.1): workers=2 249.5 s
(Python 148.4 s, git 169.7 s), workers=1 223.9 s (136.1 s, 141.6 s): the wall time of
one 1M run varies by a third with the load, so a wall growth below 11x (workers=1 above)
is luck of the load, not a property; the CPU growth misses the target for both (12.1x
and 13.4x). Two git processes cost 10 % more git CPU than one when run one after the
other (1M: the segments 88.4 s for 700,315 commits and 44.9 s for 299,685, the later
commits costing more; 133.3 s against 121.5 s for the whole log) and 19-20 % more when
run side by side with Python on 2 busy cores, so on this machine workers=2 is slower at
1M in both pairs of runs (230 against 168 s; 250 against 224 s) though faster at 100k
(16.0 against 17.8 s). The split is sensible: segment 2's output (136.6 MB) about fills
the 128 MiB buffer, so its git runs ahead while Python handles segment 1; with Python's
share proportional to the commits and git's growing along the history, a split nearer
0.85 would balance 2 busy cores better (a model estimate: about 5 % at 1M), a lower one
more cores. The target is within reach only where git is not on the 2 cores Python
needs: with 3 or more free cores and workers=2 the wall time is about Python's, whose
CPU grows 11.9-13.5x here (Python measured alone, replaying a saved ``git log`` output:
8.5 s -> 110 s, 12.9x, load 2.4-3.3).

Python's own cost per commit rises along the history too: replaying the 1M history's
saved ``git log`` output, the main thread spent 90 us per commit over the first 100k
commits and 123 us over the last 100k (parsing, a fixed cost per commit, 11.6 and 12.3
us). The rises: NUC's union (14 -> 26 us), because the sets of files below 512 commits
(tested member by member) fill up toward 512, and commits touching two hot files OR
bitmaps as long as the history (15,625 words at 1M; union time per call 36 -> 60 us,
4-10 % of it saved by counting bits as uint32 and starting from a copy); REXP (17 -> 27
us), because authors pass 4,096 commits (plain sums up to 4,096 times) and, this history
spanning 19 years with 40 authors, the rare authors' 1,024-commit chunks span years, so
the far expansion does not apply and chunk series plus whole chunks are summed; REXP's
far expansion, rebuilt over all of an author's times every 1,024 of their commits (2.6
-> 5.0 us). The OR and that rebuild grow without bound; the rest levels off (a file's
set at 512 commits, an author's plain sum at 4,096), which this history reaches between
100k and 1M commits. Stored values must not change, so the thresholds that decide these
paths stay. Tried and dropped: a cache of each set of hot files' union count, ORing only
the words added since (halved the words ORed, saved 2 % of the union's time), and
testing the members of bitmaps much sparser than the history instead of ORing them
(twice as slow: np.unique's sort costs more per member than 50 words of OR).

Why git log itself grows 13-15x from 100k to 1M commits (earlier measurements, load
2-12): git's cost per commit rises along the history, because this history's tree widens
(1,548 files at 10k commits, 2,122 at 100k, 4,562 at 500k, 7,499 at 1M; a package tree's
median 35 entries at 100k, 124 at 1M) and git diffs and inflates whole tree objects.
Instruction counts (valgrind callgrind, load-independent), the first 10k commits against
the last 10k of the 1M history, each walked alone: the walk and format 436M / 438M per
10k commits, the tree diffs 1,278M / 2,360M (1.85x), renames and line counts 3,009M /
4,356M (1.45x), total 1.51x. Per-commit cost linear in the tree's width gives 12.3x the
instructions for 10x the commits; the same 100k commits cost 11-12 % more CPU in the 1M
repository than in the 100k one (same instructions within 1 %; the difference is the 1.2
GB pack against 108 MB), so about 13.7x; git log measured 10.3 -> 144.5 s CPU (14.0x).
No argument of the ingest's ``git log`` causes it: without ``--topo-order --reverse``
the walk alone costs the same (1M: 9.4-9.8 s against 9.5-10.0 s CPU; 100k: 0.74-0.81 s
against 0.85 s); ``--raw`` alone grows 16.0x (3.8 -> 60.7 s) and ``--numstat`` adds 6.6
-> 83.5 s; without ``-M`` git costs more (100k: 11.5 s against 10.3 s: renames become
whole-file adds and deletes to count) and the rows differ; a 1 GiB
``core.deltaBaseCacheLimit`` saves 2.5 % of the instructions of the last 10k commits;
splitting the walk into segments cannot help, since the last 10k commits cost 1.51x the
first 10k even when walked alone. git log's peak RSS at 1M (2.2 GB) is mostly the
memory-mapped pack and index (file-backed, 1.6 GB: page cache); its own anonymous memory
peaks at 0.6 GB (0.3 GB without ``--topo-order --reverse``).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from releaserisk.gitcmd import git_env
from releaserisk.ingest.git import _LOG_ARGS

GENERATOR = "v2"  # bump when the generated history changes: cached repositories are keyed by it
PACKAGES, FILES_PER_PACKAGE = 60, 25
AUTHORS = 40
PR_PROBABILITY = 0.05  # a commit on main starts a pull request (side branch + merge) this often
START = 1_500_000_000  # 2017-07-14, one commit every ~10 minutes from there


# -- the history ------------------------------------------------------------------------
class _History:
    """Files as lists of lines, written as a fast-import stream commit by commit."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counter = 0
        self.mark = 0
        self.now = START
        self.files: dict[str, list[bytes]] = {}
        self.target: dict[str, int] = {}  # each file's own size: edits drift back to it
        self.paths: list[str] = []  # Zipf rank order: paths[0] is the hottest file
        self.zipf = self._cumulative(1.0, 20_000)
        self.authors = [(f"Developer {i:02d}", f"dev{i:02d}@example.com") for i in range(AUTHORS)]
        self.author_weights = self._cumulative(1.0, AUTHORS)

    @staticmethod
    def _cumulative(exponent: float, n: int) -> list[float]:
        total, out = 0.0, []
        for rank in range(1, n + 1):
            total += rank**-exponent
            out.append(total)
        return out

    def line(self, path: str) -> bytes:
        self.counter += 1
        n = self.counter
        if path.endswith(".py"):
            return b"    value_%d = compute(%d)" % (n, n % 97)
        return b"setting_%d: %d" % (n, n % 50)

    def new_file(self, path: str) -> None:
        size = min(int(self.rng.lognormvariate(3.3, 0.7)) + 3, 400)
        self.files[path] = [self.line(path) for _ in range(size)]
        self.target[path] = size

    def pick(self) -> str:
        limit = min(len(self.paths), len(self.zipf))
        rank = bisect.bisect(self.zipf, self.rng.random() * self.zipf[limit - 1])
        return self.paths[min(rank, limit - 1)]

    def edit(self, lines: list[bytes], path: str, operations: int) -> None:
        grow = 0.45 if len(lines) < self.target[path] else 0.15
        for _ in range(operations):
            roll = self.rng.random()
            if roll < 0.5 and lines:
                lines[self.rng.randrange(len(lines))] = self.line(path)
            elif roll < 0.5 + grow or len(lines) < 4:
                lines.insert(self.rng.randrange(len(lines) + 1), self.line(path))
            else:
                del lines[self.rng.randrange(len(lines))]

    def commit(self, out, branch: str, parents: list[int], message: str, changes: list[tuple]) -> int:
        """Write one commit; ``changes`` are ("M", path, lines) / ("D", path) / ("R", old, new)."""
        self.mark += 1
        self.now += self.rng.randint(60, 1140)
        who = bisect.bisect(self.author_weights, self.rng.random() * self.author_weights[-1])
        name, email = self.authors[min(who, AUTHORS - 1)]
        payload = message.encode() + b"\n"
        parts = [b"commit refs/heads/%s\nmark :%d\nauthor %s <%s> %d +0000\ncommitter %s <%s> %d +0000\ndata %d\n"
                 % (branch.encode(), self.mark, name.encode(), email.encode(), self.now, name.encode(),
                    email.encode(), self.now, len(payload)), payload]  # fmt: skip
        if parents:
            parts.append(b"from :%d\n" % parents[0])
            parts.extend(b"merge :%d\n" % p for p in parents[1:])
        for change in changes:
            if change[0] == "M":
                content = b"\n".join(change[2]) + b"\n"
                parts.append(b'M 100644 inline "%s"\ndata %d\n%s\n' % (change[1].encode(), len(content), content))
            elif change[0] == "D":
                parts.append(b'D "%s"\n' % change[1].encode())
            else:
                parts.append(b'R "%s" "%s"\n' % (change[1].encode(), change[2].encode()))
        parts.append(b"\n")
        out.write(b"".join(parts))
        return self.mark

    def message(self, n_files: int) -> str:
        verb = self.rng.choice(("Add", "Fix", "Refactor", "Update", "Fix bug in", "Improve", "Remove", "Rename"))
        return f"{verb} {self.rng.choice(('parser', 'cache', 'retry', 'metrics', 'schema', 'login'))} " \
               f"({n_files} file{'s' * (n_files > 1)}, change {self.mark + 1})"  # fmt: skip

    def change(self, overlay: dict[str, list[bytes]] | None = None) -> tuple[list[tuple], int]:
        """The changes of one ordinary commit (applied to ``overlay`` on a side branch)."""
        roll = self.rng.random()
        if roll < 0.01 and overlay is None:  # a new file
            package = self.rng.randrange(PACKAGES)
            path = f"src/pkg_{package:02d}/added_{self.mark + 1}.py"
            self.new_file(path)
            self.paths.insert(self.rng.randrange(len(self.paths) + 1), path)
            return [("M", path, self.files[path])], 1
        if roll < 0.013 and overlay is None and len(self.paths) > 100:  # a deletion of a cold file
            path = self.paths.pop(self.rng.randrange(len(self.paths) // 2, len(self.paths)))
            del self.files[path], self.target[path]
            return [("D", path)], 1
        if roll < 0.016 and overlay is None:  # a rename, then an edit
            index = self.rng.randrange(len(self.paths) // 4, len(self.paths))
            old = self.paths[index]
            new = old.rsplit("/", 1)[0] + f"/renamed_{self.mark + 1}.py"
            self.files[new], self.target[new] = self.files.pop(old), self.target.pop(old)
            self.paths[index] = new
            self.edit(self.files[new], new, 2)
            return [("R", old, new), ("M", new, self.files[new])], 1
        count = min(int(self.rng.paretovariate(1.6)), 12)
        chosen = list(dict.fromkeys(self.pick() for _ in range(count)))
        changes = []
        for path in chosen:
            if overlay is not None:
                lines = overlay.setdefault(path, list(self.files[path]))
            else:
                lines = self.files[path]
            self.edit(lines, path, max(1, int(self.rng.lognormvariate(1.3, 1.0))))
            changes.append(("M", path, lines))
        return changes, len(chosen)


def write_history(out, commits: int, seed: int = 25) -> None:
    """Write a fast-import stream of exactly ``commits`` commits on ``main`` (merges included)."""
    history = _History(seed)
    initial = []
    for package in range(PACKAGES):
        for index in range(FILES_PER_PACKAGE):
            path = f"src/pkg_{package:02d}/module_{index:02d}.py" if index else f"src/pkg_{package:02d}/config.yaml"
            history.new_file(path)
            history.paths.append(path)
            initial.append(("M", path, history.files[path]))
    history.rng.shuffle(history.paths)  # which files are hot is random, not alphabetical
    tip = history.commit(out, "main", [], "Initial import", initial)
    while history.mark < commits:
        if history.rng.random() < PR_PROBABILITY and commits - history.mark >= 5:
            tip = _pull_request(out, history, tip)
            continue
        changes, n_files = history.change()
        tip = history.commit(out, "main", [tip], history.message(n_files), changes)
    out.write(b"done\n")


def _pull_request(out, history: _History, base: int) -> int:
    """One to three commits on a side branch from ``base``, then a merge commit on main."""
    overlay: dict[str, list[bytes]] = {}
    side = base
    for _ in range(history.rng.randint(1, 3)):
        changes, n_files = history.change(overlay)
        side = history.commit(out, "topic", [side], history.message(n_files), changes)
    merged = [("M", path, lines) for path, lines in overlay.items()]
    history.files.update(overlay)
    return history.commit(out, "main", [base, side], f"Merge pull request #{history.mark + 1} from topic", merged)


def repository(cache: Path, commits: int) -> Path:
    """The cached bare repository of ``commits`` commits, generated on first use."""
    path = cache / f"history-{GENERATOR}-{commits}.git"
    done = path / "releaserisk-complete"
    if done.exists():
        return path
    subprocess.run(["rm", "-rf", str(path)], check=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True, env=git_env())
    started = time.perf_counter()
    proc = subprocess.Popen(["git", "-C", str(path), "fast-import", "--quiet", "--done"], stdin=subprocess.PIPE,
                            env=git_env())  # fmt: skip
    write_history(proc.stdin, commits)
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"git fast-import failed for {path}")
    done.write_text(f"{commits}\n")
    print(f"  generated {commits:,} commits in {time.perf_counter() - started:.1f} s -> {path}", flush=True)
    return path


# -- measurements -------------------------------------------------------------------------
def measured(args: list[str]) -> dict:
    """Run a child process, discard its stdout but a last JSON line; wall, CPU and peak RSS.

    The peak is the child's ``VmHWM`` (its high-water resident set), polled twice a
    second: ``ru_maxrss`` would report at least the RSS of this Python process, which a
    forked child counts as its own until it execs.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=git_env())
    peak = [0.0]
    poller = threading.Thread(target=_poll_peak, args=(proc, peak), daemon=True)
    poller.start()
    last = b""
    size = 0
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
        last = (last + chunk)[-4096:]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    poller.join()
    if status != 0:
        raise SystemExit(f"{args[0]} failed with status {status}")
    result = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mib": peak[0], "bytes": size}
    if args[0] == sys.executable:
        result |= json.loads(last.strip().splitlines()[-1])
    return result


def _poll_peak(proc: subprocess.Popen, peak: list[float]) -> None:
    status = Path(f"/proc/{proc.pid}/status")
    while True:  # until the process is reaped: its status file is gone
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except (OSError, ValueError):  # the process is gone (a zombie has no VmHWM either)
            return
        if "VmHWM" not in fields:
            return
        peak[0] = max(peak[0], int(fields["VmHWM"].split()[0]) / 1024)
        time.sleep(0.5)


def git_log(repo: Path) -> dict:
    return measured(["git", "-C", str(repo), *_LOG_ARGS, "HEAD"])


def cli_workers() -> int:
    """The ``workers`` that ``releaserisk ingest git PATH`` passes to ``ingest_git`` by default."""
    from releaserisk.cli import build_parser
    from releaserisk.ingest.git import default_workers

    return build_parser().parse_args(["ingest", "git", "REPO"]).workers or default_workers()


def ingest(repo: Path, workers: int, memory_limit: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="releaserisk-scaling-") as tmp:
        db = str(Path(tmp) / "bench.duckdb")
        args = [sys.executable, __file__, "--child", str(repo), db, "--workers", str(workers)]
        return measured(args + (["--memory-limit", memory_limit] if memory_limit else []))


def child(repo: str, db: str, workers: int, memory_limit: str | None) -> None:
    """The ingest, as ``releaserisk ingest git`` runs it (with ``workers``), timed from inside the child."""
    from releaserisk.ingest.git import ingest_git
    from releaserisk.store import open_store

    started, cpu, git_cpu = time.perf_counter(), time.process_time(), _children_cpu()
    with open_store(db) as store:
        if memory_limit:  # DuckDB keeps an open transaction's rows in memory up to its limit, then spills
            store.execute(f"SET memory_limit = '{memory_limit}'")
            store.execute(f"SET temp_directory = '{Path(db).parent / 'spill'}'")
        result = ingest_git(store, repo, name="bench", workers=workers)
    print(json.dumps({"ingest_wall": time.perf_counter() - started, "ingest_cpu_self": time.process_time() - cpu,
                      "ingest_cpu_git": _children_cpu() - git_cpu, "commits": result.new_commits,
                      "file_changes": result.file_changes}))  # fmt: skip


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="commits per history, comma-separated")
    parser.add_argument("--workers", help="ingest_git workers to measure, comma-separated (default: the CLI's)")
    parser.add_argument("--cache", default="/tmp/releaserisk-bench", help="where generated repositories are kept")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit of the ingest (default: DuckDB's, 80%% of RAM)")
    parser.add_argument("--child", nargs=2, metavar=("REPO", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, int(args.workers), args.memory_limit)
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    default = cli_workers()
    workers = [int(w) for w in args.workers.split(",")] if args.workers else [default]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine: times are noisy); "
        f"DuckDB memory_limit {args.memory_limit or 'default (80% of RAM)'}; "
        f"workers {', '.join(map(str, workers))} ('releaserisk ingest git' runs {default})"
    )
    rows: dict[int, list[dict]] = {w: [] for w in workers}
    for commits in sizes:
        repo = repository(cache, commits)
        before = git_log(repo)
        for w in workers:
            ours = ingest(repo, w, args.memory_limit)
            rows[w].append({"commits": ours["commits"], "file_changes": ours["file_changes"], "ours": ours})
            print(f"  {commits:,}, workers={w}: ingest {ours['ingest_wall']:.1f} s, peak RSS {ours['peak_mib']:,.0f} "
                  f"MiB (load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
        after = git_log(repo) if before["wall"] < 60 else before  # a 1M-commit git log takes minutes: once
        log = min(before, after, key=lambda r: r["wall"])
        for w in workers:
            rows[w][-1]["log"] = log
        print(f"  {commits:,}: git log {log['wall']:.1f} s (peak RSS {log['peak_mib']:,.0f} MiB)", flush=True)
    for w in workers:
        print(f"\nworkers={w}{' (the CLI default)' if w == default else ''}:")
        _table(rows[w])
    print("\ntargets: 10x the commits in <= 11x the time; peak RSS < 2,048 MiB at 1,000,000 commits")


def _table(rows: list[dict]) -> None:
    print(
        "| commits | file changes | git log wall / CPU | ingest wall | ingest CPU (Python + git) | ratio to git log "
        "(wall) | growth: commits / ingest wall / ingest CPU / git log wall | peak RSS: ingest process / git log |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for previous, row in zip([None, *rows], rows, strict=False):
        log, ours = row["log"], row["ours"]
        cpu = ours["ingest_cpu_self"] + ours["ingest_cpu_git"]
        growth = "—"
        if previous:
            before_cpu = previous["ours"]["ingest_cpu_self"] + previous["ours"]["ingest_cpu_git"]
            growth = (f"{row['commits'] / previous['commits']:.1f}x / "
                      f"{ours['ingest_wall'] / previous['ours']['ingest_wall']:.1f}x / {cpu / before_cpu:.1f}x / "
                      f"{log['wall'] / previous['log']['wall']:.1f}x")  # fmt: skip
        print(f"| {row['commits']:,} | {row['file_changes']:,} | {log['wall']:.2f} s / {log['cpu']:.2f} s "
              f"| {ours['ingest_wall']:.2f} s | {ours['ingest_cpu_self']:.2f} s + {ours['ingest_cpu_git']:.2f} s "
              f"| {ours['ingest_wall'] / log['wall']:.2f}x | {growth} "
              f"| {ours['peak_mib']:,.0f} MiB / {log['peak_mib']:,.0f} MiB |")  # fmt: skip


if __name__ == "__main__":
    main()
