"""``lake compact`` and ``lake load``: maintaining an organisation's lake."""

from __future__ import annotations

import argparse

from releaserisk.cli._base import EXIT_OK, add_format
from releaserisk.cli.output import emit, table_listing
from releaserisk.errors import InputError


def _lake_of(args: argparse.Namespace) -> str:
    location = args.lake_dir or args.lake
    if not location:
        raise InputError("name the lake: releaserisk --lake DIR lake …")
    return location


def cmd_lake_compact(args: argparse.Namespace) -> int:
    from releaserisk.lake import compact_lake

    result = compact_lake(_lake_of(args))
    emit(args, result.to_dict(), f"{result.summary()}\n{table_listing(result.tables)}")
    return EXIT_OK


def cmd_lake_load(args: argparse.Namespace) -> int:
    from releaserisk.lake import load_lake

    result = load_lake(_lake_of(args), args.into)
    emit(args, result.to_dict(), f"{result.summary()}\n{table_listing(result.tables)}")
    return EXIT_OK


def register(sub) -> None:
    """Add ``lake`` and its maintenance commands to the top-level sub-parsers."""
    lake = sub.add_parser("lake", help="maintain an organisation's Parquet lake (written by 'ingest org')")
    commands = lake.add_subparsers(dest="lake_command", metavar="COMMAND", required=True)
    p = commands.add_parser(
        "compact",
        help="merge each table's per-repository shards into one file",
        description="Readers see the same rows before and after; run it while no 'ingest org' writes the lake.",
    )
    p.add_argument("lake_dir", nargs="?", metavar="LAKE", help="the lake (default: --lake)")
    add_format(p)
    p.set_defaults(handler=cmd_lake_compact)
    p = commands.add_parser(
        "load",
        help="load the lake into one DuckDB store file, in one transaction",
        description="Rows of the lake replace the file's rows with the same keys; a failure loads nothing.",
    )
    p.add_argument("lake_dir", nargs="?", metavar="LAKE", help="the lake (default: --lake)")
    p.add_argument("--db", dest="into", required=True, metavar="FILE", help="the DuckDB store file to load into")
    add_format(p)
    p.set_defaults(handler=cmd_lake_load)
