"""What every command shares: exit codes, settings, the store, argument types."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
#: A bug in releaserisk (sysexits' EX_SOFTWARE): never 1, which a CI gate reads as "too risky".
EXIT_INTERNAL = 70
#: Interrupted by the user (128 + SIGINT).
EXIT_INTERRUPTED = 130

FORMATS = ("text", "json")


def settings_of(args: argparse.Namespace):
    """Settings of this invocation (file, environment, flags), read once."""
    if getattr(args, "_settings", None) is None:
        from releaserisk.config import load_settings

        args._settings = load_settings(args.config, overrides={"db": args.db})
    return args._settings


def open_db(args: argparse.Namespace, read_only: bool = False):
    """The store named by ``--lake`` or ``--db`` (or the settings), opened for this command."""
    from releaserisk.store import open_store

    if getattr(args, "lake", None):
        return open_store(lake=args.lake)
    return open_store(settings_of(args).db, read_only=read_only)


def add_format(parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS) -> None:
    """The ``--format`` option, with the formats this command can write."""
    parser.add_argument("--format", choices=formats, default="text", help="output format (default: text)")


def probability(text: str) -> float:
    """An argparse type: a probability in (0, 1], as the gate threshold must be."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in (0, 1]")
    return value


def monday(text: str):
    """An argparse type: the Monday (00:00 UTC) of the ISO week holding a date."""
    from datetime import UTC, date, datetime, timedelta

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    first = day - timedelta(days=day.weekday())
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (worker counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value
