"""The ``releaserisk`` command.

Conventions (DESIGN.md section 7): ``--db`` defaults to ``./releaserisk.duckdb``
(or ``RELEASERISK_DB`` / the config file); ``--format text|json`` (``csv`` and
``github`` where they apply); JSON goes to stdout and diagnostics to stderr. Exit
codes: 0 pass, 1 gate failed, 2 usage or input error, 3 inconclusive, 70 internal
error (a bug), 130 interrupted. User mistakes print one ``error: ...`` line;
``--debug`` shows the traceback.

One module per command group registers its sub-parsers next to its handlers
(:mod:`.store`, :mod:`.ingest`, :mod:`.lake`, :mod:`.model`, :mod:`.score`, :mod:`.canary`,
:mod:`.dora`, :mod:`.flags`, :mod:`.report`, :mod:`.demo`); :mod:`.output` holds the output
formats. Handlers parse, call the library and format: no SQL and no domain logic
here. Heavy modules are imported inside the handlers so that ``releaserisk --help``
and CI gates start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from releaserisk import __version__
from releaserisk.cli import canary, demo, dora, flags, ingest, lake, model, report, score, store
from releaserisk.cli._base import (
    EXIT_GATE_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from releaserisk.errors import ReleaseRiskError
from releaserisk.escape import terminal_text

__all__ = [
    "EXIT_GATE_FAILED",
    "EXIT_INCONCLUSIVE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "run",
]

#: Command groups in the order ``--help`` lists them.
_GROUPS = (store, ingest, lake, model, report, demo, score, dora, flags, canary)


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's rule for bad input: one ``error:`` line and exit 2.

    argparse's own error prints the whole usage block first; ``--help`` still shows it.
    Subcommands' parsers are of this class too (``add_subparsers`` uses the parent's).
    """

    def error(self, message: str):
        sys.stderr.write(f"error: {self.prog}: {_one_line(message)} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(
        prog="releaserisk",
        description="How risky is the next release, and how healthy is the release process?",
    )
    parser.add_argument("--version", action="version", version=f"releaserisk {__version__}")
    parser.add_argument("--db", help="DuckDB store (default: ./releaserisk.duckdb or RELEASERISK_DB)")
    parser.add_argument(
        "--lake",
        default=os.environ.get("RELEASERISK_LAKE") or None,
        help="read an organisation's lake (folder or fsspec URL written by 'ingest org') instead of --db "
        "(or RELEASERISK_LAKE)",
    )
    parser.add_argument("--config", help="config file (default: releaserisk.toml or pyproject.toml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        group.register(sub)
    return parser


def _one_line(text: str) -> str:
    # one line, even when the message quotes a library's multi-line text (a CSV parser's); a
    # quoted value's control or bidi characters shown as escapes (a U+202E would reverse the line)
    return terminal_text(" ".join(str(text).split()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ReleaseRiskError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except OSError as exc:  # a path the user gave cannot be read or written
        if args.debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"error: {_one_line(exc.strerror or exc)}{_one_line(where)}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing was committed by the interrupted step\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line, and exit with a code no gate result uses
        if args.debug:
            raise
        sys.stderr.write(
            f"error: internal error ({type(exc).__name__}: {_one_line(exc)[:300]}); rerun with --debug for the "
            "traceback and report it\n"
        )
        return EXIT_INTERNAL


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
