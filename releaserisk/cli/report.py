"""``report weekly``: the weekly HTML report."""

from __future__ import annotations

import argparse
import time

from releaserisk.choices import REPORT_GROUPS
from releaserisk.cli._base import EXIT_OK, add_format, settings_of
from releaserisk.cli.output import emit


def cmd_report(args: argparse.Namespace) -> int:
    from releaserisk.report import render_weekly

    started = time.perf_counter()
    paths = render_weekly(
        args.lake or settings_of(args).db,
        args.week,
        out_dir=args.out,
        services=args.services,
        config=args.config,
        by=args.report_by,
    )
    paths["seconds"] = round(time.perf_counter() - started, 2)
    picked = f"{paths['note']}\n" if paths["note"] else ""
    emit(args, paths, f"{picked}weekly report for {paths['week']}: {paths['html']} ({paths['seconds']:.1f} s)")
    return EXIT_OK


def register(sub) -> None:
    """Add ``report`` and its reports to the top-level sub-parsers."""
    report = sub.add_parser("report", help="render reports from notebooks").add_subparsers(
        dest="report", metavar="REPORT", required=True
    )
    p = report.add_parser("weekly", help="the weekly HTML report (reports/weekly-<ISO week>.html)")
    p.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: the latest week with a production deployment)")
    p.add_argument("--out", default="reports", help="output directory (default: reports)")
    p.add_argument("--services", nargs="*", help="limit the deployments table to these services (known names)")
    p.add_argument("--by", dest="report_by", choices=REPORT_GROUPS, help="one compact block per service, worst first")
    add_format(p)
    p.set_defaults(handler=cmd_report)
