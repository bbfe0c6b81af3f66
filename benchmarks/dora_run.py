"""One measured step of benchmarks/dora.py, run in its own process so its peak memory is its own.

Not meant to be run by hand: ``python benchmarks/dora_run.py build PATH DEPLOYMENTS SERVICES PER``
builds a store; ``... measure PATH MEMORY_LIMIT`` times the calls and prints one JSON line.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path

from releaserisk.dora import dora_metrics
from releaserisk.store import open_store


def build(path: Path, deployments: int, services: int, per_deployment: int) -> None:
    with open_store(path) as store:
        con = store.connection
        con.execute(
            f"""
            INSERT INTO deployments (deployment_id, service, repo, environment, sha, started_at, finished_at,
                                     status, kind, reverts_deployment_id, source)
            SELECT 'd' || i, 'svc' || (i % {services}), 'r',
                   CASE WHEN i % 10 = 0 THEN 'staging' ELSE 'production' END,
                   'sha' || i, TIMESTAMPTZ '2023-01-01' + to_seconds(i * 30),
                   TIMESTAMPTZ '2023-01-01' + to_seconds(i * 30 + 600),
                   CASE WHEN i % 37 = 0 THEN 'failure' ELSE 'success' END,
                   CASE WHEN i % 53 = 0 THEN 'rollback' WHEN i % 41 = 0 THEN 'hotfix' ELSE 'regular' END,
                   NULL, 'bench'
            FROM range({deployments}) t(i)
            """
        )
        con.execute(
            f"""
            INSERT INTO commits (repo, sha, parents, author, committed_at, authored_at, is_merge, seq)
            SELECT 'r', 'c' || j, [], 'a' || (j % 500), TIMESTAMPTZ '2023-01-01' + to_seconds(j * 3 - 86400),
                   TIMESTAMPTZ '2023-01-01' + to_seconds(j * 3 - 86400), false, j
            FROM range({deployments * per_deployment}) t(j)
            """
        )
        con.execute(
            f"""
            INSERT INTO deployment_changes (deployment_id, repo, sha, derived, committed_at)
            SELECT 'd' || (j // {per_deployment}), 'r', 'c' || j, true,
                   TIMESTAMPTZ '2023-01-01' + to_seconds(j * 3 - 86400)
            FROM range({deployments * per_deployment}) t(j)
            """
        )
        con.execute(
            f"""
            INSERT INTO incidents (incident_id, service, title, severity, opened_at, resolved_at,
                                   cause_deployment_id, cause_sha, source)
            SELECT 'i' || k, 'svc' || (k % {services}), 'incident', 'sev2',
                   TIMESTAMPTZ '2023-01-01' + to_seconds(k * 600 + 900),
                   TIMESTAMPTZ '2023-01-01' + to_seconds(k * 600 + 4500),
                   NULL, NULL, 'bench'
            FROM range({deployments // 20}) t(k)
            """
        )
        con.execute("INSERT INTO repos (repo) VALUES ('r')")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu() -> float:
    """User + system CPU seconds of this process, DuckDB's threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(call):
    """``(result, wall seconds, CPU seconds)`` of ``call()``: on a shared machine the CPU time is the steadier."""
    wall, cpu = time.perf_counter(), _cpu()
    result = call()
    return result, time.perf_counter() - wall, _cpu() - cpu


def measure(path: Path, memory_limit: str, what: str) -> dict:
    with open_store(path) as store:
        store.execute(f"SET memory_limit = '{memory_limit}'")
        store.execute(f"SET temp_directory = '{path.parent / 'spill'}'")
        # the bare scan: every value the metrics use, read once (context for the ratio)
        started = time.perf_counter()
        for table, columns in (
            ("deployments", "deployment_id, service, environment, status, kind, sha, started_at, finished_at"),
            ("deployment_changes", "deployment_id, repo, sha, committed_at"),
            ("incidents", "incident_id, service, opened_at, resolved_at"),
        ):
            store.execute(f"SELECT {', '.join(f'min({c})' for c in columns.split(', '))} FROM {table}").fetchall()
        scan = time.perf_counter() - started
        before = _peak_mib()
        out: dict = {"scan": scan, "rss_before": before}
        # a fresh process pays scipy.stats' import (intervals) on the first call: timed on its own
        _, out["import"], _ = _timed(lambda: importlib.import_module("scipy.stats"))
        if what in ("full", "call"):
            result, out["full"], out["full_cpu"] = _timed(lambda: dora_metrics(store, by="service", freq="M"))
            out["rss_full"] = _peak_mib()
            out["summary_rows"], out["period_rows"] = len(result.frame), len(result.by_period)
        if what == "call":  # a repeat of the call alone (benchmarks/dora.py --repeat)
            return out
        if what == "full":

            def read_pages() -> dict[str, int]:
                return {
                    name: sum(len(page) for page in result.pages(name, rows=500_000))
                    for name in ("deployments", "changes", "pull-requests", "incidents")
                }

            out["drill_rows"], out["drill"], out["drill_cpu"] = _timed(read_pages)
            out["rss_drill"] = _peak_mib()
        else:  # the definition diff, timed on its own
            result, out["diff"], out["diff_cpu"] = _timed(
                lambda: dora_metrics(store, by="service", freq="M", compare=["dora", "devlake", "fourkeys"])
            )
            out["reasons"] = len(result.comparison.reasons)
            out["rss_diff"] = _peak_mib()
    return out


if __name__ == "__main__":
    step, path = sys.argv[1], Path(sys.argv[2])
    if step == "build":
        build(path, *(int(a) for a in sys.argv[3:6]))
    else:
        print(json.dumps(measure(path, sys.argv[3], sys.argv[4])))
