"""``dora``: DORA metrics with drill-down and peer-compatible profiles."""

from __future__ import annotations

import argparse

from releaserisk.choices import DORA_BENCHMARK_YEARS, DORA_DETAILS, DORA_GROUPS, DORA_PERIODS, DORA_PROFILES
from releaserisk.cli._base import EXIT_OK, add_format, open_db, settings_of
from releaserisk.cli.output import emit, emit_frame, hint, write_csv

#: Options that ask for one profile's rows or periods: --compare prints the window's summaries side by side.
_ONE_PROFILE = (("detail", "--detail"), ("freq", "--freq"), ("count_flag_releases", "--count-flag-releases"))


def cmd_dora(args: argparse.Namespace) -> int:
    from releaserisk.dora import dora_metrics
    from releaserisk.errors import InputError

    if args.compare:
        given = [flag for name, flag in _ONE_PROFILE if getattr(args, name)]
        if given:  # they were dropped without a word: the rows shown were the --profile's, dora by default
            raise InputError(
                f"--compare shows the window's summaries side by side; {', '.join(given)} "
                f"{'is' if len(given) == 1 else 'are'} for one profile: run it with --profile NAME instead"
            )
    # --compare devlake,fourkeys compares those two, the first the reference (not dora added in front)
    profile = args.profile or (args.compare[0] if args.compare else "dora")
    with open_db(args, read_only=True) as store:
        result = dora_metrics(
            store,
            args.since,
            args.until,
            freq=DORA_PERIODS[args.freq or "week"],
            by=args.by,
            profile=profile,
            benchmark=args.benchmark,
            settings=settings_of(args),
            compare=args.compare,
            count_flag_releases=args.count_flag_releases,
        )
        frame = result.detail(args.detail) if args.detail else None  # read while the store is open
        text = result.detail_text(args.detail) if args.detail and args.format == "text" else ""
        if not store.counts()["deployments"]:
            hint(
                "the store has no deployments; load them with 'releaserisk ingest deployments FILE', "
                "'ingest github' or 'ingest git-tags'"
            )
    if frame is not None:  # text: a column without a source says "unknown", and why, once
        columns, note = result.unobserved if args.detail == "deployments" else ([], None)
        emit_frame(args, frame, text, detail=args.detail, unknown={"columns": columns, "why": note})
        return EXIT_OK
    if result.comparison is not None:  # csv: the per-row reasons; text and json: side by side and reasons
        comparison = result.comparison
        emit_frame(args, comparison.reasons, comparison.summary(), key="reasons", **comparison.to_dict())
        return EXIT_OK
    # --freq asks for the periods: text and csv give them (json holds them always, weekly by default)
    if args.format == "csv":
        write_csv(result.by_period if args.freq else result.frame)
    else:
        text = result.summary() + (f"\n{result.period_summary()}" if args.freq else "")
        emit(args, result.to_dict(), text)
    return EXIT_OK


def _profiles(text: str) -> list[str]:
    """``--compare dora,devlake,fourkeys``: two or more known profiles."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DORA_PROFILES]
    choices = f"give two or more of {', '.join(DORA_PROFILES)}, comma-separated"
    if unknown:
        raise argparse.ArgumentTypeError(f"no profile {', '.join(map(repr, unknown))}: {choices}")
    if len(set(names)) < 2:
        raise argparse.ArgumentTypeError(choices)
    return names


def register(sub) -> None:
    """Add ``dora`` to the top-level sub-parsers."""
    p = sub.add_parser("dora", help="DORA metrics with drill-down and peer-compatible profiles")
    p.add_argument("--since", help="window start (ISO date, UTC)")
    p.add_argument("--until", help="window end, exclusive (ISO date, UTC)")
    p.add_argument(
        "--freq", choices=tuple(DORA_PERIODS),
        help="per-period rows, each against the period before: text adds them after the window's summary, csv "
        "gives them instead of it (json: by_period, weekly without --freq)",
    )  # fmt: skip
    p.add_argument("--by", choices=DORA_GROUPS)
    p.add_argument("--profile", choices=DORA_PROFILES, help="default: dora; with --compare, its first profile")
    p.add_argument(
        "--benchmark", type=int, choices=DORA_BENCHMARK_YEARS, default=max(DORA_BENCHMARK_YEARS),
        help="DORA report year for tiers",
    )  # fmt: skip
    p.add_argument("--detail", choices=DORA_DETAILS, help="print the rows behind the numbers instead")
    p.add_argument(
        "--compare", type=_profiles, metavar="PROFILES",
        help="profiles side by side and why they disagree per row, e.g. dora,devlake,fourkeys (csv: the rows)",
    )  # fmt: skip
    p.add_argument(
        "--count-flag-releases", action="store_true",
        help="count production flags turned on or ramped up as releases and blame flag-caused incidents on the "
        "flag, not the last deployment (Sleuth's practice; a departure from DORA)",
    )  # fmt: skip
    add_format(p, ("text", "json", "csv"))
    p.set_defaults(handler=cmd_dora)
