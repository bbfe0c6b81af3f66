"""``simulate`` and ``demo``: a synthetic organisation, and the whole pipeline on it."""

from __future__ import annotations

import argparse
import sys

from releaserisk.choices import SCENARIO_NAMES
from releaserisk.cli._base import EXIT_OK, add_format, monday
from releaserisk.cli.output import emit


def cmd_simulate(args: argparse.Namespace) -> int:
    from releaserisk.simulation import simulate

    result = simulate(
        args.out,
        scenario=args.scenario,
        seed=args.seed,
        weeks=args.weeks,
        services=args.services,
        start=args.start,
        remedies=args.remedies,
        repos=args.repos,
    )
    where = (
        f"{len(result.repos)} repositories in {result.out}, manifest {result.manifest}"
        if result.manifest
        else result.out
    )
    emit(
        args,
        result.to_dict(),
        f"simulated {result.scenario}: {result.commits:,} commits ({result.bugs} bug-introducing), "
        f"{result.deployments:,} deployments, {result.incidents} incidents -> {where}",
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from releaserisk.demo import run_demo

    def show(entry: dict) -> None:
        if args.format == "text":
            sys.stdout.write(f"[{entry['seconds']:6.1f} s] {entry['step']:<9} {entry['detail']}\n")
            sys.stdout.flush()

    result = run_demo(args.data, args.out, scenario=args.scenario, seed=args.seed, weeks=args.weeks, on_step=show)
    emit(args, result.to_dict(), f"demo finished in {result.seconds:.1f} s; open {result.report}")
    return EXIT_OK


def register(sub) -> None:
    """Add ``simulate`` and ``demo`` to the top-level sub-parsers."""
    p = sub.add_parser("simulate", help="write a synthetic organisation with planted effects")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--scenario", default="healthy", choices=SCENARIO_NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weeks", type=int, default=26)
    p.add_argument("--services", type=int, default=3, help="services (with --repos: at most per repository, 1-3)")
    p.add_argument(
        "--repos", type=int, default=1,
        help="repositories (default 1: DIR/repo); more write an organisation: DIR/repos/repo-001 ... and the "
        "manifest DIR/org.toml for 'ingest org'",
    )  # fmt: skip
    p.add_argument("--start", type=monday, help="first week, as a date in it (default 2025-01-06)")
    p.add_argument(
        "--remedies", action="store_true",
        help="also plant feature flags (flag-caused incidents, kill switches, a stale flag) and a destructive "
        "migration whose rollback failed, with truth tables",
    )  # fmt: skip
    add_format(p)
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("demo", help="the whole pipeline on simulated data: ingest, train, score, canary, report")
    p.add_argument("--scenario", default="healthy", choices=SCENARIO_NAMES)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--weeks", type=int, default=52, help="history length (default 52: a year)")
    p.add_argument("--data", default="data/demo", help="where the simulated data and store go (default data/demo)")
    p.add_argument("--out", default="reports", help="report directory (default reports)")
    add_format(p)
    p.set_defaults(handler=cmd_demo)
