"""``flags``: feature-flag findings — stale flags, incidents' candidate causes, kill-switch times."""

from __future__ import annotations

import argparse

from releaserisk.cli._base import EXIT_OK, add_format, open_db, settings_of
from releaserisk.cli.output import emit_frame


def cmd_flags_stale(args: argparse.Namespace) -> int:
    from releaserisk.flags import stale_flags

    settings = settings_of(args)
    with open_db(args, read_only=True) as store:
        frame = stale_flags(store, settings)
    text = "\n".join(f"{r.flag_key} ({r.service or 'no service'}): {r.reasons}" for r in frame.itertuples())
    emit_frame(args, frame, text or "no stale, unused or unowned flags", stale_flag_days=settings.stale_flag_days)
    return EXIT_OK


def cmd_flags_causes(args: argparse.Namespace) -> int:
    from releaserisk.flags import candidate_causes

    settings = settings_of(args)
    with open_db(args, read_only=True) as store:
        frame = candidate_causes(store, settings)
    frame = frame[frame["rank"] <= args.top]
    text = frame.to_string(index=False) if len(frame) else "no incident has a candidate cause"
    emit_frame(args, frame, text, cause_window_hours=settings.cause_window_hours)
    return EXIT_OK


def cmd_flags_kill_switch(args: argparse.Namespace) -> int:
    from releaserisk.flags import kill_switch_summary, kill_switch_times

    with open_db(args, read_only=True) as store:
        frame = kill_switch_times(store, settings_of(args))
    summary = kill_switch_summary(frame)
    median = "no data" if summary["median_minutes"] is None else f"{summary['median_minutes']:.1f} min"
    interval = "" if summary["ci_low"] is None else f" (95% CI {summary['ci_low']:.1f}–{summary['ci_high']:.1f})"
    text = f"kill-switch time: median {median}{interval}, n={summary['n']}"
    if len(frame):
        text = frame.to_string(index=False) + "\n" + text
    emit_frame(args, frame, text, summary=summary)
    return EXIT_OK


def register(sub) -> None:
    """Add ``flags`` and its reports to the top-level sub-parsers."""
    flags = sub.add_parser("flags", help="feature-flag findings: stale flags, candidate causes, kill switches")
    reports = flags.add_subparsers(dest="report", metavar="REPORT", required=True)
    p = reports.add_parser(
        "stale",
        help="flags fully on/off longer than stale_flag_days and still in the code, never turned on, or unowned",
        description="Code references are counted with git grep at HEAD of each ingested repository (no checkout).",
    )
    add_format(p, ("text", "json", "csv"))
    p.set_defaults(handler=cmd_flags_stale)
    p = reports.add_parser(
        "causes", help="each incident's candidate causes among deployments and flag changes, most likely first"
    )
    p.add_argument("--top", type=int, default=3, help="candidates per incident (default 3)")
    add_format(p, ("text", "json", "csv"))
    p.set_defaults(handler=cmd_flags_causes)
    p = reports.add_parser("kill-switch", help="incident opened -> a flag of its service turned off")
    add_format(p, ("text", "json", "csv"))
    p.set_defaults(handler=cmd_flags_kill_switch)
