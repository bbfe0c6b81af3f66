"""The DuckDB store: one file, numbered migrations, transactions and bulk upserts.

A :class:`Store` wraps one DuckDB connection. DuckDB allows one writing process
or many reading processes per file; a second writer gets :class:`StoreLockedError`.

Keys are declared in :data:`TABLE_KEYS` and enforced by :meth:`Store.upsert`, which
deletes the rows whose keys appear in the incoming frame and inserts the frame, in
one transaction. Loading the same frame twice therefore gives the same rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from releaserisk.errors import (
    InputError,
    LakeError,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
)

__all__ = [
    "SHA_PREFIX_MIN",
    "TABLE_KEYS",
    "Store",
    "deployments_of_unknown_commits",
    "open_snapshot",
    "open_store",
    "sha_prefix_match",
    "unknown_commit_note",
]

#: The key of every table: re-loading rows with the same key replaces them.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "repos": ("repo",),
    "commits": ("repo", "sha"),
    "file_changes": ("repo", "sha", "path"),
    "change_features": ("repo", "sha"),
    "services": ("service",),
    "pull_requests": ("repo", "number"),
    "pr_commits": ("repo", "number", "sha"),
    "pr_reviews": ("repo", "number", "reviewer", "submitted_at"),
    "deployments": ("deployment_id",),
    "deployment_changes": ("deployment_id", "repo", "sha"),
    "incidents": ("incident_id",),
    "flag_changes": ("source", "change_id"),
    "issues": ("repo", "issue"),
    "labels": ("repo", "sha", "method"),
    "metric_samples": ("analysis_id", "metric", "arm", "ts", "sample_index"),
    "risk_scores": ("repo", "sha", "model_id"),
    "models": ("model_id",),
    "ingest_runs": ("run_id",),
    "git_file_state": ("repo", "path"),
    "git_author_state": ("repo", "author"),
    "git_author_subsystem": ("repo", "author", "subsystem"),
    "git_blob_lines": ("repo", "blob"),
    "label_fixes": ("repo", "sha"),
    "label_quality": ("repo",),
}

_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
#: Migrations that only rewrite rows of existing tables. A snapshot of an older store copies
#: its rows into current tables, so these are applied to the copy as well.
DATA_MIGRATIONS = frozenset({3})


def _migrations() -> list[tuple[int, str]]:
    """The packaged migrations as (version, sql), in order."""
    found = []
    for entry in resources.files("releaserisk.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _check_is_duckdb(path: Path) -> None:
    """Refuse a non-empty file that is not a DuckDB database, without touching it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        header = fh.read(12)
    if header[8:12] != _DUCKDB_MAGIC:
        raise StoreCorruptError(f"{path} is not a DuckDB database; it was left unchanged")


def _is_lock_conflict(text: str) -> bool:
    """DuckDB's words for another process holding the file ("Could not set lock on file …:
    Conflicting lock is held"); a damaged file's messages may say "block", never these."""
    lowered = text.lower()
    return "could not set lock" in lowered or "conflicting lock" in lowered


def _is_permission_problem(text: str) -> bool:
    lowered = text.lower()
    return "permission denied" in lowered or "read-only file system" in lowered


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if _is_lock_conflict(text):
            raise StoreLockedError(
                f"{path} is in use by another process (DuckDB allows one writer); "
                "wait for it to finish or open the store read-only"
            ) from None
        if _is_permission_problem(text):
            raise StoreError(f"cannot open {path} for writing: permission denied (open it read-only)") from None
        raise _damaged(path, text) from None
    except duckdb.Error as exc:
        raise _damaged(path, str(exc)) from None


def _damaged(path: Path, text: str) -> StoreCorruptError:
    """DuckDB could not read the file: a damaged database, or random bytes that begin like one."""
    first = text.strip().splitlines()[0] if text.strip() else "unreadable"
    if "corrupt" in first.lower():
        return StoreCorruptError(f"{path} is damaged or not a DuckDB database ({first}); it was left unchanged")
    return StoreCorruptError(f"cannot open {path}: {first}")


class Store:
    """A releaserisk database: one DuckDB connection to one file.

    Use :func:`open_store` to create one. The store is a context manager that
    closes the connection on exit.

    Parameters
    ----------
    connection : duckdb.DuckDBPyConnection
        An open connection whose schema is up to date.
    path : pathlib.Path
        The database file (``:memory:`` for an in-memory store).
    read_only : bool
        Whether the connection refuses writes.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
        # Weeks, days and months are computed in UTC whatever the machine's zone.
        connection.execute("SET TimeZone = 'UTC'")
        self.connection = connection
        self.path = path
        self.read_only = read_only
        self.created = False  # set by open_store when this open created the file
        self.lake: str | None = None  # set by lake.open_lake: the tables are views over that lake
        self._depth = 0

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(duckdb.Error):
            self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        self.close()
        if exc_type is not None and self.created:
            self._remove_if_unused()

    def _remove_if_unused(self) -> None:
        """Delete the file this open created when the failed command saved nothing into it.

        A mistyped ``--db`` or a bad input file must not leave an empty ``.duckdb`` behind
        (the next command would find "a store" with nothing in it). A store holding any
        row, or any logged ingest, is kept.
        """
        try:
            with duckdb.connect(str(self.path), read_only=True) as con:
                tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
                held = sum(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables if t in TABLE_KEYS)
        except duckdb.Error:
            return
        if not held:
            for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    # -- schema ----------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The highest migration applied to this database (0 for a new file)."""
        exists = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()[0]
        if not exists:
            return 0
        return self.connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks, each in its own transaction.

        Returns
        -------
        list of int
            The versions applied now.

        Raises
        ------
        SchemaVersionError
            The database is newer than this code.
        """
        migrations = _migrations()
        current = self.schema_version
        newest = migrations[-1][0]
        if current > newest:
            raise SchemaVersionError(
                f"{self.path} has schema version {current}, newer than this releaserisk "
                f"knows ({newest}); upgrade releaserisk"
            )
        pending = [(v, sql) for v, sql in migrations if v > current]
        if pending and self.read_only:
            raise StoreError(f"{self.path} needs schema upgrades; open it once for writing (releaserisk init)")
        for version, sql in pending:
            with self.transaction():
                self.connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)"
                )
                self.connection.execute(sql)
                self.connection.execute("INSERT INTO schema_version VALUES (?, now())", [version])
        return [v for v, _ in pending]

    def tables(self) -> list[str]:
        """Names of the data tables (those with a declared key), in declaration order."""
        present = {
            row[0]
            for row in self.connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        return [name for name in TABLE_KEYS if name in present]

    def counts(self) -> dict[str, int]:
        """Row count of every data table."""
        return {t: self.connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in self.tables()}

    # -- transactions -------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        """Whether a :meth:`transaction` block is open (its writes are not yet visible to other connections)."""
        return self._depth > 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block atomically: commit on success, roll back on any exception.

        Nested uses join the outermost transaction.

        Raises
        ------
        LakeError
            The store is a lake's views, which are written only by ``ingest org``.
        """
        self.require_writable()
        if self._depth:
            self._depth += 1
            try:
                yield self.connection
            finally:
                self._depth -= 1
            return
        self.connection.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self.connection
        except BaseException:
            self._depth = 0
            with contextlib.suppress(duckdb.Error):  # a failed commit has already ended the transaction
                self.connection.execute("ROLLBACK")
            raise
        self._depth = 0
        with self._writing():
            self.connection.execute("COMMIT")

    def require_writable(self) -> None:
        """Refuse to go on when the store is a lake's views (check before long work that writes).

        Raises
        ------
        LakeError
            The store is a lake, which only ``ingest org`` writes.
        """
        if self.lake is not None:
            raise LakeError(
                f"{self.lake} is a lake, read-only here: ingest into it with 'releaserisk ingest org', "
                "or load it into a file with 'releaserisk lake load --db FILE'"
            )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write to the file (read-only directory, full disk) into a StoreError.

        DuckDB writes a ``.wal`` file beside the database at commit: in a directory the user
        cannot write to, the commit fails although the open succeeded. Nothing was written.
        """
        try:
            yield
        except (duckdb.BinderException, duckdb.CatalogException) as exc:
            # a write outside a transaction on a lake's views: DuckDB's "Can only delete from
            # base table" (or "… is not an table") is the lake's read-only rule
            if self.lake is not None and ("base table" in str(exc) or "is not an table" in str(exc)):
                self.require_writable()
            raise
        except (duckdb.IOException, duckdb.TransactionException, duckdb.PermissionException) as exc:
            text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            writing = _is_permission_problem(text) or "no space left" in text.lower()
            if isinstance(exc, duckdb.IOException) and not writing:
                raise  # reading a damaged file, say: the caller's message says what it was reading
            if _is_permission_problem(text):
                raise StoreError(
                    f"cannot write to {self.path}: permission denied (is its directory read-only?); nothing was saved"
                ) from None
            raise StoreError(f"cannot write to {self.path}: {text}; nothing was saved") from None

    def record_ingest(
        self, source: str, started: datetime, counts: dict[str, Any], watermark: str | None = None
    ) -> None:
        """Log a successful ingest in ``ingest_runs`` (call inside the ingest's transaction).

        ``source`` is ``kind:detail`` (``git:REPO``, ``git-tags:REPO``, ``deployments:FILE``,
        ``github:OWNER/REPO:RESOURCE``, ``metrics:ANALYSIS``); ``watermark`` is where an
        incremental source resumes.
        """
        self.connection.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, now(), 'success', ?, ?)",
            [uuid.uuid4().hex, source, started, json.dumps(counts), watermark],
        )

    def recent_ingests(self, limit: int = 5) -> pd.DataFrame:
        """The newest ingest runs, newest first.

        Parameters
        ----------
        limit : int
            How many runs.

        Returns
        -------
        DataFrame
            ``source, status, finished_at, counts`` (``counts`` as JSON text).
        """
        return self.query(
            "SELECT source, status, finished_at, counts FROM ingest_runs ORDER BY finished_at DESC LIMIT ?", [limit]
        )

    def repositories(self, requested: Sequence[str] | None = None) -> list[str]:
        """Names of ingested repositories: ``requested`` checked against the store, or all.

        Parameters
        ----------
        requested : sequence of str, optional
            Names the user asked for; None or empty means every stored repository.

        Returns
        -------
        list of str
            Repository names, sorted when all are returned.

        Raises
        ------
        InputError
            The store has no repositories, or a requested one is unknown.
        """
        known = [row[0] for row in self.connection.execute("SELECT repo FROM repos ORDER BY repo").fetchall()]
        if not known:
            raise InputError("the store has no repositories; run 'releaserisk ingest git PATH' first")
        unknown = sorted(set(requested or []) - set(known))
        if unknown:
            raise InputError(f"unknown repository {', '.join(unknown)} (stored: {', '.join(known)})")
        return list(requested) if requested else known

    # -- reading and writing ------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a parameterised query and return a DataFrame."""
        return self.connection.execute(sql, params).df()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run a parameterised statement (outside a transaction it commits: a failed write is a StoreError)."""
        with self._writing():
            return self.connection.execute(sql, params)

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None):
        """Run a parameterised query and return a pyarrow Table (cheaper than a DataFrame for big results)."""
        result = self.connection.execute(sql, params)
        fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table  # duckdb < 1.4 lacks the former
        return fetch()

    def append(self, table: str, rows: pa.Table) -> None:
        """Insert rows as they are (no key check), columns matched by name.

        For bulk loads inside a long transaction (a git history): the rows go in through
        a relation over the Arrow table, not a registered view — DuckDB keeps a dropped
        view, and the Arrow table it holds, until the transaction commits, so a history
        loaded batch by batch kept every batch in memory.

        Parameters
        ----------
        table : str
            An existing table.
        rows : pyarrow.Table
            Rows whose column names are columns of ``table``; columns it lacks become NULL.

        Raises
        ------
        InputError
            ``rows`` has a column ``table`` lacks.
        """
        schema = self.arrow(f'SELECT * FROM "{table}" LIMIT 0').schema
        unknown = [name for name in rows.column_names if name not in schema.names]
        if unknown:
            raise InputError(f"table '{table}' has no column(s) {', '.join(unknown)}")
        columns = [
            rows.column(field.name) if field.name in rows.column_names else pa.nulls(len(rows), field.type)
            for field in schema
        ]
        with self._writing():
            self.connection.from_arrow(pa.table(columns, names=schema.names)).insert_into(table)

    def upsert(self, table: str, frame: Any) -> int:
        """Insert rows, replacing those with the same key.

        Parameters
        ----------
        table : str
            A table of :data:`TABLE_KEYS`.
        frame : pandas.DataFrame or pyarrow.Table
            Rows to load; columns are matched by name, missing ones become NULL.
            Within the frame, the last row of a key wins.

        Returns
        -------
        int
            The number of rows loaded.
        """
        if table not in TABLE_KEYS:
            raise InputError(f"unknown table '{table}'")
        keys = TABLE_KEYS[table]
        names = frame.column_names if hasattr(frame, "column_names") else list(frame.columns)  # Arrow or pandas
        missing = [k for k in keys if k not in names]
        if missing:
            raise InputError(f"rows for '{table}' lack key column(s): {', '.join(missing)}")
        view = f"_upsert_{table}"
        self.connection.register(view, frame)
        try:
            key_list = ", ".join(f'"{k}"' for k in keys)
            match = " AND ".join(f't."{k}" = n."{k}"' for k in keys)
            with self.transaction() as con:
                # Keep the last row of each key within the frame.
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE _incoming AS SELECT * EXCLUDE (_ord) FROM "
                    f"(SELECT *, row_number() OVER () AS _ord FROM {view}) "
                    f"QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY _ord DESC) = 1"
                )
                con.execute(f'DELETE FROM "{table}" t WHERE EXISTS (SELECT 1 FROM _incoming n WHERE {match})')
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _incoming')
                loaded = con.execute("SELECT count(*) FROM _incoming").fetchone()[0]
                con.execute("DROP TABLE _incoming")
        finally:
            self.connection.unregister(view)
        return loaded

    # -- portability --------------------------------------------------------------
    def _partition_column(self, table: str) -> str | None:
        columns = {r[0] for r in self.connection.execute(f'DESCRIBE "{table}"').fetchall()}
        for candidate in ("repo", "service"):
            if candidate in columns:
                return candidate
        return None

    def export_parquet(self, directory: str | os.PathLike[str]) -> dict[str, int]:
        """Write every non-empty table as hive-partitioned Parquet (by repo or service).

        Parameters
        ----------
        directory : path-like
            Created if missing; each table goes to ``directory/<table>/``, which must not
            exist yet (an earlier export's partitions would survive beside the new ones,
            and a later import would load both).

        Returns
        -------
        dict
            Rows written per table.

        Raises
        ------
        InputError
            A table's folder already exists there, or the directory cannot be written.
        """
        out = Path(directory)
        counts = self.counts()
        taken = [t for t in counts if (out / t).exists()]
        if taken:
            raise InputError(f"{out} already holds {', '.join(taken[:3])}{' …' if len(taken) > 3 else ''}; "
                             "export to a new directory")  # fmt: skip
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror}") from None
        written = {}
        for table, rows in counts.items():
            if not rows:
                continue
            target = out / table
            target.mkdir(parents=True, exist_ok=True)
            partition = self._partition_column(table)
            if partition:  # a folder of repo=…/ or service=…/ partitions
                options = f'FORMAT parquet, OVERWRITE_OR_IGNORE true, PARTITION_BY ("{partition}")'
            else:  # one file in the table's folder
                options, target = "FORMAT parquet", target / "data.parquet"
            self.connection.execute(f"COPY (SELECT * FROM \"{table}\") TO '{_sql_path(target)}' ({options})")
            written[table] = rows
        return written

    def import_parquet(self, directory: str | os.PathLike[str]) -> dict[str, int]:
        """Upsert every table found under ``directory`` (as written by :meth:`export_parquet`).

        One transaction: a failure loads nothing.

        Parameters
        ----------
        directory : path-like
            Holding ``<table>/…/*.parquet`` folders.

        Returns
        -------
        dict
            Rows loaded per table.

        Raises
        ------
        InputError
            Not a directory, no exported table in it, a file that is not Parquet, or a
            column whose values do not fit the table.
        """
        base = Path(directory)
        if not base.is_dir():
            raise InputError(f"{base} is not a directory")
        folders = {t: base / t for t in TABLE_KEYS if any((base / t).glob("**/*.parquet"))}
        if not folders:
            raise InputError(f"{base} holds no exported tables (expected {base}/<table>/…/*.parquet)")
        started = datetime.now(UTC)
        loaded = {}
        with self.transaction():
            for table, folder in folders.items():
                glob = _sql_path(folder) + "/**/*.parquet"
                try:
                    frame = self.connection.execute(
                        f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
                    ).df()
                except duckdb.Error as exc:
                    raise InputError(f"cannot read {folder}: {str(exc).splitlines()[0]}") from None
                try:
                    loaded[table] = self.upsert(table, frame)
                except (duckdb.ConversionException, duckdb.BinderException, duckdb.InvalidInputException) as exc:
                    # a column of the wrong type, or one the table lacks: not an export of a store
                    raise InputError(f"{folder} does not match table {table}: {str(exc).splitlines()[0]}") from None
            self.record_ingest(f"parquet:{base}", started, loaded)
        return loaded


#: Shortest abbreviated sha trusted to name a commit (git's own default abbreviation).
SHA_PREFIX_MIN = 7


def sha_prefix_match(full: str, given: str) -> str:
    """SQL: the full sha ``full`` starts with the (lower-case, trimmed) abbreviation ``given``.

    Deploy tools and incident reports write ``9fceb02``; the commit graph knows all 40
    characters. The equality on the first :data:`SHA_PREFIX_MIN` characters lets DuckDB
    hash-join; ``starts_with`` alone would compare every pair. ``given`` must already be
    lower-case and at least :data:`SHA_PREFIX_MIN` long (filter on it in the query).
    """
    n = SHA_PREFIX_MIN
    return f"left({full}, {n}) = left({given}, {n}) AND starts_with({full}, {given})"


def deployments_of_unknown_commits(store: Store) -> pd.DataFrame:
    """Successful deployments whose sha is no commit of their repository's ingested history.

    Such a deployment gets no changes and no lead time. The sha may be an annotated tag
    object rather than its commit (a release read before tags were peeled), a commit on a
    branch that was not ingested (``ingest git --rev main --rev BRANCH``), or a build id.
    Only deployments of repositories with ingested commits are looked at: one naming an
    unknown repository is :func:`releaserisk.dora.unknown_repositories`' case. A deployment
    naming no repository belongs to the store's only repository, if it has one.

    Parameters
    ----------
    store : Store

    Returns
    -------
    DataFrame
        ``deployment_id, repo, sha, source``, oldest first.
    """
    return store.query(
        f"SELECT deployment_id, repo, sha, source FROM ({_UNKNOWN_COMMITS}) ORDER BY finished_at, deployment_id",
        {"since": None, "until": None},
    )


#: Successful deployments whose sha is no commit of their repository (see deployments_of_unknown_commits).
_UNKNOWN_COMMITS = """
    WITH only_repo AS (SELECT CASE WHEN count(*) = 1 THEN min(repo) END AS repo FROM repos),
    placed AS (
        SELECT d.deployment_id, coalesce(d.repo, s.repo, (SELECT repo FROM only_repo)) AS repo,
               d.sha, d.source, d.finished_at
        FROM deployments d LEFT JOIN services s USING (service)
        WHERE d.status = 'success' AND d.sha IS NOT NULL
          AND ($since IS NULL OR d.finished_at >= $since) AND ($until IS NULL OR d.finished_at < $until))
    SELECT * FROM placed p
    WHERE repo IN (SELECT DISTINCT repo FROM commits)
      AND NOT EXISTS (SELECT 1 FROM commits c WHERE c.repo = p.repo AND c.sha = p.sha)
"""


def unknown_commit_note(store: Store, since: datetime | None = None, until: datetime | None = None) -> str | None:
    """One line on successful deployments whose sha is no ingested commit, or None.

    See :func:`deployments_of_unknown_commits`.

    Parameters
    ----------
    store : Store
    since, until : datetime, optional
        Only deployments finished in ``[since, until)`` (a DORA window: one old release tag off
        the ingested branch was named in every window's notes, years after it).

    Returns
    -------
    str or None
    """
    # the count and three examples, not every row: a store whose deployments name build ids has
    # a million (fetching them cost 1.2 s of a DORA call)
    first = store.query(
        f"SELECT count(*) OVER () AS n, deployment_id, sha FROM ({_UNKNOWN_COMMITS}) "
        "ORDER BY finished_at, deployment_id LIMIT 3",
        {"since": since, "until": until},
    )
    if first.empty:
        return None
    examples = ", ".join(f"{d} ({str(sha)[:12]})" for d, sha in zip(first["deployment_id"], first["sha"], strict=True))
    n = int(first["n"].iloc[0])
    windowed = " in the window" if since is not None or until is not None else ""
    return (
        f"{n:,} successful deployment{'s' if n > 1 else ''}{windowed} {'name shas' if n > 1 else 'names a sha'} "
        f"that {'are' if n > 1 else 'is'} "
        f"no commit of the ingested history, e.g. {examples}: {'they get' if n > 1 else 'it gets'} no changes and no "
        "lead time. An annotated tag's object (re-ingest the source), a branch not ingested (ingest git --rev main "
        "--rev BRANCH) or a build id instead of a commit sha are the usual causes"
    )


def _sql_path(path: Path) -> str:
    """A path quoted for use inside a single-quoted SQL literal (COPY takes no parameters)."""
    return str(path).replace("'", "''")


def open_snapshot(path: str | os.PathLike[str]) -> Store:
    """An in-memory, writable copy of a store file, which is only read (never locked for writing).

    For CI jobs that must not modify the shared store: work happens in memory and is
    discarded on close.

    Parameters
    ----------
    path : path-like
        An existing store file, of this schema version or an earlier one.

    Returns
    -------
    Store
        The copy, at this schema version (data migrations applied).

    Raises
    ------
    StoreError
        The file does not exist, is locked for writing, is not a DuckDB database, or
        is newer than this releaserisk.
    """
    file = Path(path)
    if not file.exists():
        raise StoreError(f"{file} does not exist (run 'releaserisk init' first)")
    _check_is_duckdb(file)
    store = open_store(":memory:")
    try:
        store.execute(f"ATTACH '{_sql_path(file)}' AS snapshot (READ_ONLY)")
    except duckdb.Error as exc:
        store.close()
        text = str(exc).splitlines()[0]
        if _is_lock_conflict(text):
            raise StoreLockedError(f"{file} is being written by another process; try again") from None
        raise _damaged(file, text) from None
    version = store.execute("SELECT coalesce(max(version), 0) FROM snapshot.schema_version").fetchone()[0]
    if version > store.schema_version:
        store.close()
        raise SchemaVersionError(f"{file} has schema version {version}, newer than this releaserisk knows")
    # a store of an earlier schema version lacks the newer tables: those stay empty here
    present = {
        row[0]
        for row in store.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'snapshot'").fetchall()
    }
    with store.transaction():
        for table in store.tables():
            if table in present:
                store.execute(f'INSERT INTO main."{table}" BY NAME SELECT * FROM snapshot."{table}"')
        for migration, sql in _migrations():
            if migration in DATA_MIGRATIONS and migration > version:
                store.execute(sql)
    store.execute("DETACH snapshot")
    return store


def open_store(
    path: str | os.PathLike[str] = "releaserisk.duckdb",
    *,
    read_only: bool = False,
    lake: str | os.PathLike[str] | None = None,
) -> Store:
    """Open (creating and migrating if needed) a releaserisk store.

    Parameters
    ----------
    path : path-like
        The database file, or ``":memory:"``; the folder of a lake opens the lake (as ``lake``).
    read_only : bool
        Open without write access (many readers may share a file).
    lake : str or path-like, optional
        Open this lake instead (a directory or fsspec URL written by ``ingest org``):
        a read-only store of views over its Parquet shards, see :func:`releaserisk.lake.open_lake`.

    Returns
    -------
    Store

    Raises
    ------
    StoreError
        The directory is missing, or read-only access to a missing file.
    StoreLockedError
        Another process is writing to the file.
    StoreCorruptError
        The file is not a DuckDB database (it is not modified).
    SchemaVersionError
        The file was written by a newer releaserisk.
    LakeError
        ``lake`` is not a lake, or its manifest or a shard is unreadable.
    """
    if lake is not None:
        from releaserisk.lake import open_lake  # the lake builds on the store: imported on demand

        return open_lake(lake)
    if str(path) == ":memory:":
        store = Store(duckdb.connect(":memory:"), Path(":memory:"), read_only=False)
        store.migrate()
        return store
    file = Path(path)
    if file.is_dir() and (file / "_lake.json").is_file():  # a lake: notebooks given its folder as their db
        from releaserisk.lake import open_lake

        return open_lake(file)
    if file.is_dir():
        raise StoreError(f"{file} is a directory; give the path of a .duckdb file (or of a lake)")
    if read_only and not file.exists():  # read-only never creates: say the file is missing, not "cannot create"
        raise StoreError(f"{file} does not exist (run 'releaserisk init' first)")
    if not file.parent.is_dir():
        raise StoreError(f"cannot create {file}: directory {file.parent} does not exist")
    _check_is_duckdb(file)
    created = not file.exists()
    store = Store(_connect(file, read_only), file, read_only)
    store.created = created
    try:
        store.migrate()
    except BaseException:
        store.close()
        if created:
            store._remove_if_unused()
        raise
    return store
