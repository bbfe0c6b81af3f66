"""``init``, ``info`` and ``export``: the store itself."""

from __future__ import annotations

import argparse

from releaserisk.cli._base import EXIT_OK, add_format, open_db
from releaserisk.cli.output import counted, emit, table_listing
from releaserisk.escape import json_records


def cmd_init(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        counts = store.counts()
        payload = {"db": str(store.path), "schema_version": store.schema_version, "tables": counts}
        emit(args, payload, f"store {store.path} (schema {store.schema_version})\n{table_listing(counts)}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    with open_db(args, read_only=True) as store:
        counts = store.counts()
        runs = store.recent_ingests(5)
        payload = {
            "db": str(store.path),
            "schema_version": store.schema_version,
            "tables": counts,
            "recent_ingests": json_records(runs),
        }
        lines = [f"store {store.path} (schema {store.schema_version})", table_listing(counts)]
        if len(runs):
            lines.append("recent ingests:")
            lines += [f"  {r.source}  {r.status}  {r.finished_at}" for r in runs.itertuples()]
        emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    with open_db(args, read_only=True) as store:
        written = store.export_parquet(args.directory)
    text = f"exported {counted(len(written), 'table')} to {args.directory}\n{table_listing(written)}"
    emit(args, {"directory": args.directory, "tables": written}, text)
    return EXIT_OK


def register(sub) -> None:
    """Add ``init``, ``info`` and ``export`` to the top-level sub-parsers."""
    p = sub.add_parser("init", help="create or upgrade the store and list its tables")
    add_format(p)
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("info", help="show row counts and recent ingests of an existing store")
    add_format(p)
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser(
        "export",
        help="write every table as Parquet (hive-partitioned by repo or service)",
        description="A snapshot any engine can read, or another store can load with 'ingest parquet DIR'.",
    )
    p.add_argument("directory", help="output directory (DIR/<table>/...)")
    add_format(p)
    p.set_defaults(handler=cmd_export)
