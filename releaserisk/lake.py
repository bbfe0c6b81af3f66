"""The lake: an organisation's store as Parquet shards, one set per repository.

Layout (a local directory or any fsspec URL the workers share, e.g. ``s3://bucket/lake``)::

    LAKE/
      _lake.json                                    the manifest: the live shards, written only by the coordinator
      <table>/lake_repo=<repo>/part-<generation>.parquet   one repository's rows of one table
      <table>/compacted/part-<generation>.parquet          many repositories' rows, written by ``lake compact``

Every shard holds the table's columns (those of the DuckDB store, :mod:`releaserisk.store`)
plus ``lake_repo``, the repository whose ingest wrote the row: the unit of replacement.
``<repo>`` in a folder name is percent-encoded (``/`` → ``%2F``), as Hive escapes partition
values. An ingest task writes a whole new generation of its repository's shards (each under
a temporary name, then renamed), and the coordinator alone commits them by rewriting
``_lake.json`` (again temporary name, then rename), after which the replaced generation's
files are deleted. A reader therefore sees, for each repository, one complete generation:
the files listed in ``_lake.json``. Files not listed (a killed task's, an older
generation's) are never read and are removed by the next ingest or compaction.

The manifest (JSON)::

    {"format": 1, "schema_version": 9,
     "repos": {"<repo>": {"generation": "…", "fingerprint": "…", "ingested_at": "…",
                          "files": {"<table>": "<table>/lake_repo=<repo>/part-<generation>.parquet"},
                          "rows": {"<table>": 123}}},
     "compacted": {"<table>": [{"file": "<table>/compacted/part-….parquet",
                               "repos": {"<repo>": "<generation>"}}]},
     "failed": {"<repo>": {"error": "…", "at": "…"}}}

A compacted file's rows of a repository are live while that repository's generation in
``repos`` is still the one recorded next to the file; a later ingest of the repository
writes its own shards and so supersedes them.

This is the table format of Delta Lake and Apache Iceberg reduced to what one coordinator
needs: immutable data files plus a manifest of the live ones, committed by an atomic
rename (Armbrust et al., "Delta Lake: High-Performance ACID Table Storage over Cloud
Object Stores", VLDB 2020).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb

from releaserisk.errors import InputError, LakeError
from releaserisk.store import TABLE_KEYS, Store, open_store

__all__ = [
    "LAKE_FORMAT",
    "Lake",
    "LakeManifest",
    "compact_lake",
    "load_lake",
    "open_lake",
]

#: Version of the manifest's layout; a lake written by a newer releaserisk is refused.
LAKE_FORMAT = 1
MANIFEST = "_lake.json"
REPO_COLUMN = "lake_repo"
_TEMP_MARK = ".tmp-"


def generation_id() -> str:
    """A new, sortable, unique generation name (UTC time, then random)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def shard_path(table: str, repo: str, generation: str) -> str:
    """Where a repository's shard of a table lives, relative to the lake's root."""
    return f"{table}/{REPO_COLUMN}={quote(repo, safe='')}/part-{generation}.parquet"


@dataclass
class LakeManifest:
    """The live shards of a lake, as recorded in ``_lake.json`` (see the module docstring).

    Attributes
    ----------
    repos : dict
        Repository name → ``{"generation", "fingerprint", "ingested_at", "files", "rows"}``.
    compacted : dict
        Table → list of ``{"file", "repos"}`` (repository → generation held in that file).
    failed : dict
        Repository name → ``{"error", "at"}`` of its last failed ingest.
    schema_version : int
        Store schema version the shards were written with.
    """

    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    compacted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    schema_version: int = 0

    def to_json(self) -> str:
        """The manifest as JSON text (sorted keys, so two equal manifests are equal files)."""
        body = {
            "format": LAKE_FORMAT,
            "schema_version": self.schema_version,
            "repos": self.repos,
            "compacted": self.compacted,
            "failed": self.failed,
        }
        return json.dumps(body, indent=1, sort_keys=True) + "\n"

    def live_files(self, table: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
        """The shards of ``table`` a reader must read.

        Returns
        -------
        tuple
            ``(whole, filtered)``: files read whole, and ``(compacted file, repositories)``
            pairs whose rows are live only for the listed repositories.
        """
        whole = [entry["files"][table] for _, entry in sorted(self.repos.items()) if table in entry.get("files", {})]
        filtered = []
        for part in self.compacted.get(table, []):
            live = [r for r, gen in sorted(part["repos"].items()) if self.repos.get(r, {}).get("generation") == gen]
            if live:
                filtered.append((part["file"], live))
        return whole, filtered

    def loose_shards(self) -> int:
        """The most per-repository (not compacted) shards any one table has."""
        per_table: dict[str, int] = {}
        for entry in self.repos.values():
            for table in entry.get("files", {}):
                per_table[table] = per_table.get(table, 0) + 1
        return max(per_table.values(), default=0)

    def referenced(self) -> set[str]:
        """Every file the manifest lists (relative paths)."""
        files = {f for entry in self.repos.values() for f in entry.get("files", {}).values()}
        files |= {part["file"] for parts in self.compacted.values() for part in parts}
        return files

    def sources_of(self, repo: str) -> dict[str, tuple[list[str], bool]]:
        """The files holding ``repo``'s live rows, per table: ``(files, needs_filter)``."""
        sources: dict[str, tuple[list[str], bool]] = {}
        entry = self.repos.get(repo)
        if entry is None:
            return sources
        for table, file in entry.get("files", {}).items():
            sources[table] = ([file], False)
        for table, parts in self.compacted.items():
            if table in sources:
                continue
            files = [p["file"] for p in parts if p["repos"].get(repo) == entry["generation"]]
            if files:
                sources[table] = (files, True)
        return sources


class Lake:
    """A lake at a local path or fsspec URL: its manifest and its files.

    Parameters
    ----------
    location : str or path-like
        A directory (created on first write) or a URL such as ``s3://bucket/lake``
        (any filesystem fsspec knows; its credentials come from fsspec's usual sources).

    Raises
    ------
    InputError
        The URL's protocol is unknown to fsspec (a missing optional package such as s3fs).
    """

    def __init__(self, location: str | os.PathLike[str]) -> None:
        import fsspec.core

        text = os.fspath(location)
        try:
            self.fs, root = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as exc:
            raise InputError(f"cannot open lake {text}: {exc}") from None
        self.location = text
        self.root = root.rstrip("/") or "/"
        protocols = (self.fs.protocol,) if isinstance(self.fs.protocol, str) else tuple(self.fs.protocol)
        self.local = "file" in protocols or "local" in protocols

    # -- paths -------------------------------------------------------------------------
    def path(self, relative: str) -> str:
        """A file's path on the lake's filesystem."""
        return f"{self.root}/{relative}"

    def url(self, relative: str) -> str:
        """A file's address for DuckDB: a local path, or a URL of a registered filesystem."""
        if self.local:
            return self.path(relative)
        return self.fs.unstrip_protocol(self.path(relative))

    def check_writable(self) -> None:
        """Refuse a location that can never hold a lake, before any repository is run.

        Raises
        ------
        LakeError
            The location exists and is not a folder (a file, say).
        """
        if self.fs.exists(self.root) and not self.fs.isdir(self.root):
            raise LakeError(f"{self.location} is a file, not a folder: a lake is a folder; choose another --lake")

    # -- the manifest ------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether a manifest has been committed here."""
        return self.fs.exists(self.path(MANIFEST))

    def read_manifest(self) -> LakeManifest:
        """The committed manifest (an empty one for a lake not written yet).

        Raises
        ------
        LakeError
            The manifest is not valid JSON of this layout, or written by a newer releaserisk.
        """
        if not self.exists():
            return LakeManifest()
        try:
            with self.fs.open(self.path(MANIFEST), "rb") as handle:
                body = json.loads(handle.read().decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError("not an object")
            if int(body.get("format", 0)) > LAKE_FORMAT:
                raise LakeError(
                    f"{self.location} was written by a newer releaserisk (lake format {body['format']}); upgrade"
                )
            return LakeManifest(
                repos=dict(body["repos"]),
                compacted=dict(body.get("compacted", {})),
                failed=dict(body.get("failed", {})),
                schema_version=int(body.get("schema_version", 0)),
            )
        except LakeError:
            raise
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise LakeError(f"{self.location}/{MANIFEST} is damaged ({exc}); nothing was read") from None

    def write_manifest(self, manifest: LakeManifest) -> None:
        """Commit a manifest: write it under a temporary name, then rename it into place."""
        self.fs.makedirs(self.root, exist_ok=True)
        self.put_text(MANIFEST, manifest.to_json())

    # -- files -------------------------------------------------------------------------
    def put_text(self, relative: str, text: str) -> None:
        """Write a small file atomically (temporary name, then rename)."""
        target = self.path(relative)
        temporary = target + _TEMP_MARK + uuid.uuid4().hex
        with self.fs.open(temporary, "wb") as handle:
            handle.write(text.encode("utf-8"))
        self._rename(temporary, target)

    def put_file(self, local: Path, relative: str) -> None:
        """Copy a local file into the lake atomically (temporary name, then rename)."""
        target = self.path(relative)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        temporary = target + _TEMP_MARK + uuid.uuid4().hex
        if self.local:
            os.replace(local, temporary)  # same machine: no copy when the temp dir shares the disk
        else:
            self.fs.put_file(str(local), temporary)
        self._rename(temporary, target)

    def _rename(self, source: str, target: str) -> None:
        if self.local:
            os.replace(source, target)  # atomic on POSIX
        else:  # object stores: a copy then a delete; the manifest commit is what makes it visible
            self.fs.mv(source, target)

    def remove(self, relatives: Iterable[str]) -> None:
        """Delete files (missing ones are ignored: a crash may have removed them already)."""
        for relative in relatives:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(relative))

    def unreferenced(self, manifest: LakeManifest) -> list[str]:
        """Files under the lake's tables that the manifest does not list (left by killed tasks)."""
        keep = manifest.referenced()
        found = []
        for table in TABLE_KEYS:
            base = self.path(table)
            if not self.fs.exists(base):
                continue
            for name in self.fs.find(base):
                relative = name[len(self.root) + 1 :] if name.startswith(self.root + "/") else name
                if relative not in keep:
                    found.append(relative)
        return found

    def register(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Let DuckDB read this lake's filesystem (nothing to do for a local directory)."""
        if not self.local:
            connection.register_filesystem(self.fs)


# -- one repository's shards ------------------------------------------------------------
def write_shards(store: Store, lake: Lake, repo: str, generation: str) -> tuple[dict[str, str], dict[str, int]]:
    """Write every non-empty table of ``store`` as one shard of ``repo`` (this generation).

    The store holds one repository's rows only (an ingest task's working store). Each
    shard is written to a local temporary file and moved into the lake under a temporary
    name, then renamed: a killed task leaves no file under a shard's name.

    Parameters
    ----------
    store : Store
        The task's store.
    lake : Lake
    repo : str
        The repository (the value of ``lake_repo`` in every row).
    generation : str
        The generation these shards form.

    Returns
    -------
    tuple of dict
        Table → shard path (relative to the lake), and table → rows.
    """
    files, rows = {}, {}
    with tempfile.TemporaryDirectory(prefix="releaserisk-shard-") as scratch:
        for table, count in store.counts().items():
            if not count:
                continue
            local = Path(scratch) / f"{table}.parquet"
            store.connection.execute(
                f"COPY (SELECT *, ?::VARCHAR AS {REPO_COLUMN} FROM \"{table}\") TO '{_sql_text(str(local))}' "
                "(FORMAT parquet, COMPRESSION zstd)",
                [repo],
            )
            relative = shard_path(table, repo, generation)
            lake.put_file(local, relative)
            files[table], rows[table] = relative, count
    return files, rows


def load_repository(store: Store, lake: Lake, sources: dict[str, tuple[list[str], bool]], repo: str) -> dict[str, int]:
    """Load ``repo``'s live rows from the lake into a (fresh, in-memory) store.

    This is how an ingest task resumes: its change-metric state (``git_*`` tables), its
    labels and its watermarks are rows of its own shards.

    Parameters
    ----------
    store : Store
        The task's working store.
    lake : Lake
    sources : dict
        :meth:`LakeManifest.sources_of` the repository: only this travels to a worker,
        not the whole organisation's manifest.
    repo : str

    Returns
    -------
    dict
        Rows loaded per table.

    Raises
    ------
    LakeError
        A listed shard is missing or unreadable.
    """
    lake.register(store.connection)
    loaded = {}
    with store.transaction():
        for table, (files, filtered) in sources.items():
            if table not in TABLE_KEYS:
                continue
            where = f" WHERE {REPO_COLUMN} = ?" if filtered else ""
            source = _read_parquet([lake.url(f) for f in files])
            columns = _columns(store, table)
            present = _file_columns(store, source)
            select = ", ".join(_column_expr(c, t, present) for c, t in columns)
            try:
                store.execute(
                    f'INSERT INTO "{table}" SELECT {select} FROM {source}{where}', [repo] if filtered else None
                )
            except duckdb.Error as exc:
                raise LakeError(f"cannot read {repo}'s shard of {table}: {str(exc).splitlines()[0]}") from None
            loaded[table] = store.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return loaded


# -- a store over the lake ----------------------------------------------------------------
def open_lake(location: str | os.PathLike[str]) -> Store:
    """A read-only store whose tables are views over the lake's live shards.

    Every analysis, notebook and report runs on it unchanged. Tables no shard holds stay
    empty tables. Writing raises :class:`~releaserisk.errors.StoreError` (ingest into a
    lake with ``releaserisk ingest org``; for a writable file, :func:`load_lake`).

    Parameters
    ----------
    location : str or path-like
        The lake (a directory or fsspec URL).

    Returns
    -------
    Store
        In memory; ``store.lake`` names the lake.

    Raises
    ------
    LakeError
        No lake there, its manifest is damaged, or a listed shard is unreadable.
    """
    lake = Lake(location)
    if not lake.exists():
        raise LakeError(f"{lake.location} is not a lake (no {MANIFEST}); run 'releaserisk ingest org' first")
    manifest = lake.read_manifest()
    store = open_store(":memory:")
    lake.register(store.connection)
    # every analysis reads the same shards many times: parse each footer once per session
    store.execute("SET parquet_metadata_cache = true")
    try:
        for table in store.tables():
            query = _live_rows_query(store, lake, manifest, table)
            if query is None:
                continue
            store.execute(f'DROP TABLE "{table}"')
            store.execute(f'CREATE VIEW "{table}" AS {query}')
    except duckdb.Error as exc:
        store.close()
        raise LakeError(f"cannot read the lake {lake.location}: {str(exc).splitlines()[0]}") from None
    store.read_only = True
    store.lake = lake.location
    store.path = Path(lake.location) if lake.local else store.path
    return store


def _live_rows_query(
    store: Store, lake: Lake, manifest: LakeManifest, table: str, with_repo: bool = False
) -> str | None:
    """``SELECT`` of a table's live rows, with the store's column names and types (None: no shard).

    ``with_repo`` keeps ``lake_repo`` too (what a compacted file holds).
    """
    whole, filtered = manifest.live_files(table)
    if not whole and not filtered:
        return None
    columns = _columns(store, table) + ([(REPO_COLUMN, "VARCHAR")] if with_repo else [])
    urls = [lake.url(f) for f in whole]
    groups = _same_schema(store, urls)
    if groups is None:  # schemas unknown: let DuckDB unify them by name
        sources = [(_read_parquet(urls), "")] if urls else []
    else:
        sources = [(_read_parquet(group, by_name=False), "") for group in groups]
    for file, repos in filtered:
        names = ", ".join(_sql_literal(r) for r in repos)
        sources.append((_read_parquet([lake.url(file)]), f" WHERE {REPO_COLUMN} IN ({names})"))
    parts = []
    for source, where in sources:
        present = _file_columns(store, source)
        parts.append(f"SELECT {', '.join(_column_expr(c, t, present) for c, t in columns)} FROM {source}{where}")
    return " UNION ALL ".join(parts)


def _columns(store: Store, table: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in store.execute(f'DESCRIBE "{table}"').fetchall()]


def _file_columns(store: Store, source: str) -> dict[str, str]:
    return {row[0]: row[1] for row in store.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def _column_expr(name: str, sql_type: str, present: dict[str, str]) -> str:
    if present.get(name) == sql_type:
        return f'"{name}"'  # no cast: DuckDB pushes filters on the column into the Parquet scan
    # a shard written before a migration added this column reads as NULL
    value = f'"{name}"' if name in present else "NULL"
    return f'CAST({value} AS {sql_type}) AS "{name}"'


def _same_schema(store: Store, urls: list[str]) -> list[list[str]] | None:
    """``urls`` grouped by identical Parquet schema (names, order and types), in first-seen order.

    A scan of files that share one schema needs no ``union_by_name``, which would otherwise
    re-read every file's footer each time a query binds the view (most of a lake's cost when
    its tables are hundreds of small shards). Shards normally share their writer's schema;
    a shard written before a migration forms its own group. None: the filesystem reports
    other names than the ones asked for, so the groups are unknown.
    """
    if len(urls) < 2:
        return [urls] if urls else []
    listed = ", ".join(_sql_literal(u) for u in urls)
    schemas: dict[str, list[str]] = {}
    rows = store.execute(
        f"SELECT file_name, name, type, converted_type, logical_type FROM parquet_schema([{listed}])"
    ).fetchall()
    for file, *column in rows:  # metadata rows: a few per shard, in each file's column order
        schemas.setdefault(file, []).append(repr(column))
    if set(schemas) != set(urls):
        return None
    groups: dict[tuple[str, ...], list[str]] = {}
    for url in urls:
        groups.setdefault(tuple(schemas[url]), []).append(url)
    return list(groups.values())


def _read_parquet(urls: list[str], by_name: bool = True) -> str:
    listed = ", ".join(_sql_literal(u) for u in urls)
    union = "union_by_name = true, " if by_name and len(urls) > 1 else ""
    return f"read_parquet([{listed}], {union}hive_partitioning = false)"


def _sql_literal(text: str) -> str:
    return "'" + _sql_text(text) + "'"


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


# -- maintenance ------------------------------------------------------------------------
@dataclass
class CompactionResult:
    """What ``lake compact`` did.

    Attributes
    ----------
    tables : dict
        Table → rows written into its compacted file.
    files_before, files_after : int
        Live files before and after.
    removed : int
        Files deleted (the merged shards, and files no manifest listed).
    """

    tables: dict[str, int]
    files_before: int
    files_after: int
    removed: int

    def summary(self) -> str:
        """One line: files before and after."""
        return (
            f"compacted {len(self.tables)} tables: {self.files_before} live files → {self.files_after}; "
            f"{self.removed} removed"
        )

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return {"tables": self.tables, "files_before": self.files_before, "files_after": self.files_after,
                "removed": self.removed}  # fmt: skip


def compact_lake(location: str | os.PathLike[str]) -> CompactionResult:
    """Merge each table's live shards into one compacted file per table.

    Readers see the same rows before and after (the new manifest is committed by one
    rename); the merged shards are deleted afterwards, with any file no manifest lists.
    Run it when no ``ingest org`` is running on the lake (the coordinator is the lake's
    only writer).

    Parameters
    ----------
    location : str or path-like

    Returns
    -------
    CompactionResult

    Raises
    ------
    LakeError
        No lake there, or its manifest or a shard is unreadable.
    """
    lake = Lake(location)
    if not lake.exists():
        raise LakeError(f"{lake.location} is not a lake (no {MANIFEST})")
    manifest = lake.read_manifest()
    before = manifest.referenced()
    generation = generation_id()
    written: dict[str, int] = {}
    store = open_store(":memory:")
    lake.register(store.connection)
    try:
        holders = {r: e["generation"] for r, e in manifest.repos.items()}
        with tempfile.TemporaryDirectory(prefix="releaserisk-compact-") as scratch:
            for table in store.tables():
                query = _live_rows_query(store, lake, manifest, table, with_repo=True)
                if query is None:
                    continue
                local = Path(scratch) / f"{table}.parquet"
                written[table] = store.execute(
                    f"COPY ({query} ORDER BY {REPO_COLUMN}) TO '{_sql_text(str(local))}' "
                    "(FORMAT parquet, COMPRESSION zstd)"
                ).fetchone()[0]
                relative = f"{table}/compacted/part-{generation}.parquet"
                lake.put_file(local, relative)
                manifest.compacted[table] = [{"file": relative, "repos": holders}]
    except duckdb.Error as exc:
        raise LakeError(f"cannot compact {lake.location}: {str(exc).splitlines()[0]}") from None
    finally:
        store.close()
    for entry in manifest.repos.values():
        entry["files"] = {}
    lake.write_manifest(manifest)
    stale = sorted((before - manifest.referenced()) | set(lake.unreferenced(manifest)))
    lake.remove(stale)
    return CompactionResult(written, len(before), len(manifest.referenced()), len(stale))


@dataclass
class LakeLoadResult:
    """Rows loaded from a lake into a DuckDB file, per table."""

    tables: dict[str, int]
    db: str

    def summary(self) -> str:
        """One line: rows and tables loaded."""
        return f"loaded {sum(self.tables.values()):,} rows in {len(self.tables)} tables into {self.db}"

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return {"db": self.db, "tables": self.tables}


def load_lake(location: str | os.PathLike[str], db: str | os.PathLike[str]) -> LakeLoadResult:
    """Load the lake's live rows into a DuckDB store file, in one transaction.

    Rows of the lake replace the file's rows with the same keys (upsert); a failure
    loads nothing.

    Parameters
    ----------
    location : str or path-like
        The lake.
    db : path-like
        The store file (created if missing).

    Returns
    -------
    LakeLoadResult

    Raises
    ------
    LakeError
        No lake there, or a shard is unreadable.
    StoreError
        The file cannot be opened for writing.
    """
    with open_store(db):  # create and migrate the file first; then it is written through ATTACH
        pass
    source = open_lake(location)
    loaded = {}
    try:
        source.execute(f"ATTACH {_sql_literal(str(db))} AS target")
        source.connection.execute("BEGIN TRANSACTION")
        for table in source.tables():
            count = source.execute(f'SELECT count(*) FROM main."{table}"').fetchone()[0]
            if not count:
                continue
            same_key = " AND ".join(f'old."{k}" = new."{k}"' for k in TABLE_KEYS[table])
            source.execute(f'DELETE FROM target."{table}" AS old USING main."{table}" AS new WHERE {same_key}')
            source.execute(f'INSERT INTO target."{table}" BY NAME SELECT * FROM main."{table}"')
            loaded[table] = count
        source.connection.execute("COMMIT")
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            source.connection.execute("ROLLBACK")
        raise LakeError(f"cannot load {location} into {db}: {str(exc).splitlines()[0]}; nothing was loaded") from None
    finally:
        source.close()
    return LakeLoadResult(loaded, str(db))
