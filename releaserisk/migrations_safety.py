"""Schema migrations in a batch, and whether the batch can still be rolled back.

A deployment rolled back to the previous version runs the previous code against the
*new* schema. That works only when the migration was additive (expand) — a new table, a
nullable column, an index. It breaks when the migration dropped or renamed a table or
column, changed a column's type, added a NOT NULL column without a default (the old code
does not write it), or deleted data. Those are the operations that the expand/contract
(parallel change) pattern spreads over several releases so that every step can be rolled
back (Sato, "ParallelChange", martinfowler.com 2014; Ambler & Sadalage, *Refactoring
Databases*, 2006); they are also what migration linters refuse (squawk's
``ban-drop-column``, ``renaming-column``, ``changing-column-type``,
``adding-required-field``; strong_migrations' ``remove_column``, ``rename_column``,
``change_column``).

Detection is by path (:data:`releaserisk.config.DEFAULT_MIGRATION_GLOBS`, configurable) and
framework: Alembic and Django (Python), Rails (Ruby), Flyway, Prisma, golang-migrate and
plain SQL, Liquibase (XML/YAML/JSON/SQL changelogs). Only the forward part of a migration is
read: an Alembic ``downgrade()``, a Rails ``def down``, a golang-migrate ``.down.sql`` or a
Flyway ``U__`` undo script is the rollback itself. Classification reads the text with
regular expressions, not a SQL parser: it errs towards flagging (a ``DROP COLUMN`` in a
comment is flagged too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

__all__ = [
    "FORWARD_FIX_ADVICE",
    "MigrationFinding",
    "classify_migration",
    "glob_regex",
    "is_migration",
    "migration_framework",
]

#: Rollout advice for a batch that cannot be rolled back.
FORWARD_FIX_ADVICE = "forward-fix only; use expand/contract"

_I = re.IGNORECASE


def _capture(template: str) -> Callable[[str], str]:
    """A function naming the capture group of ``template`` (its ``{}``)."""
    return template.format


# an SQL identifier, maybe quoted; a Python string; a Ruby symbol or string
_n = _capture(r"[`\"\[]?(?P<{}>[\w.$]+)[`\"\]]?")
_q = _capture(r"[\"'](?P<{}>[\w.]+)[\"']")
_s = _capture(r":?[\"']?(?P<{}>\w+)[\"']?")


# -- SQL ---------------------------------------------------------------------------------
_SQL_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_n('table')}", _I), "drops table {table}"),
    (re.compile(rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_n('table')}\s+RENAME\s+TO\s+{_n('to')}", _I),
     "renames table {table} to {to}"),
    (re.compile(rf"\bRENAME\s+TABLE\s+{_n('table')}\s+TO\s+{_n('to')}", _I), "renames table {table} to {to}"),
    (re.compile(rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_n('table')}[^;]*?\bDROP\s+(?:COLUMN\s+)?"
                r"(?:IF\s+EXISTS\s+)?(?!CONSTRAINT\b|INDEX\b|KEY\b|PRIMARY\b|FOREIGN\b|DEFAULT\b|NOT\b)"
                + _n("column"), _I),
     "drops column {table}.{column}"),
    (re.compile(rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_n('table')}[^;]*?\bRENAME\s+(?:COLUMN\s+)?"
                rf"(?!TO\b){_n('column')}\s+TO\s+{_n('to')}", _I),
     "renames column {table}.{column} to {to}"),
    (re.compile(rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_n('table')}[^;]*?\bALTER\s+(?:COLUMN\s+)?"
                rf"{_n('column')}\s+(?:SET\s+DATA\s+)?TYPE\b", _I),
     "changes the type of column {table}.{column}"),
    (re.compile(rf"\bALTER\s+TABLE\s+{_n('table')}[^;]*?\b(?:MODIFY|CHANGE)\s+(?:COLUMN\s+)?{_n('column')}", _I),
     "changes the type of column {table}.{column}"),
    (re.compile(rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_n('table')}[^;]*?\bALTER\s+(?:COLUMN\s+)?"
                rf"{_n('column')}\s+SET\s+NOT\s+NULL", _I),
     "makes column {table}.{column} NOT NULL"),
    (re.compile(r"\bDELETE\s+FROM\s+" + _n("table"), _I), "deletes rows of {table}"),
    (re.compile(r"\bTRUNCATE\s+(?:TABLE\s+)?" + _n("table"), _I), "deletes rows of {table}"),
)  # fmt: skip
_SQL_ADD_COLUMN = re.compile(rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_n('table')}(?P<body>[^;]*)", _I)
_SQL_ADD_ONE = re.compile(rf"\bADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?!CONSTRAINT\b|INDEX\b|PRIMARY\b|"
                          rf"UNIQUE\b|FOREIGN\b|KEY\b){_n('column')}(?P<definition>[^,]*)", _I)  # fmt: skip
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def _apply(rules: tuple[tuple[re.Pattern[str], str], ...], text: str) -> list[str]:
    """Each rule's reason, once per match, with the names it captured."""
    return [template.format(**m.groupdict()) for pattern, template in rules for m in pattern.finditer(text)]


def _sql_reasons(text: str) -> list[str]:
    text = _SQL_COMMENT.sub(" ", text)
    found = _apply(_SQL_RULES, text)
    for statement in _SQL_ADD_COLUMN.finditer(text):
        for add in _SQL_ADD_ONE.finditer(statement.group("body")):
            definition = add.group("definition")
            if re.search(r"\bNOT\s+NULL\b", definition, _I) and not re.search(r"\bDEFAULT\b", definition, _I):
                found.append(f"adds NOT NULL column {statement.group('table')}.{add.group('column')} without a default")
    return found


# -- Alembic -----------------------------------------------------------------------------
_ALEMBIC_RULES = (
    (re.compile(rf"\bop\.drop_table\(\s*{_q('table')}"), "drops table {table}"),
    (re.compile(rf"\bop\.rename_table\(\s*{_q('table')}\s*,\s*{_q('to')}"), "renames table {table} to {to}"),
    (re.compile(rf"\bop\.drop_column\(\s*{_q('table')}\s*,\s*{_q('column')}"), "drops column {table}.{column}"),
    (re.compile(rf"\bop\.alter_column\(\s*{_q('table')}\s*,\s*{_q('column')}[^)]*?\bnew_column_name\s*=\s*{_q('to')}",
                re.DOTALL), "renames column {table}.{column} to {to}"),
    (re.compile(rf"\bop\.alter_column\(\s*{_q('table')}\s*,\s*{_q('column')}[^)]*?\btype_\s*=", re.DOTALL),
     "changes the type of column {table}.{column}"),
    (re.compile(rf"\bop\.alter_column\(\s*{_q('table')}\s*,\s*{_q('column')}(?:(?!server_default)[^)])*?"
                r"\bnullable\s*=\s*False", re.DOTALL), "makes column {table}.{column} NOT NULL"),
)  # fmt: skip
_ALEMBIC_ADD = re.compile(
    rf"\bop\.add_column\(\s*{_q('table')}\s*,\s*sa\.Column\(\s*{_q('column')}(?P<args>.*?)\)\s*\)", re.DOTALL
)


def _alembic_reasons(text: str) -> list[str]:
    forward = re.split(r"\ndef\s+downgrade\s*\(", text, maxsplit=1)[0]
    found = _apply(_ALEMBIC_RULES, forward)
    for add in _ALEMBIC_ADD.finditer(forward):
        args = add.group("args")
        if re.search(r"nullable\s*=\s*False", args) and "server_default" not in args:
            found.append(f"adds NOT NULL column {add.group('table')}.{add.group('column')} without a default")
    return found + _embedded_sql(forward)


# -- Django ------------------------------------------------------------------------------
_KW = r"(?:{}\s*=\s*)?[\"'](?P<{}>[\w.]+)[\"']"


def _kw(name: str, group: str | None = None) -> str:
    return _KW.format(name, group or name)


_DJANGO_RULES = (
    (re.compile(rf"migrations\.DeleteModel\(\s*{_kw('name', 'table')}"), "drops table {table}"),
    (re.compile(rf"migrations\.RenameModel\(\s*{_kw('old_name', 'table')}\s*,\s*{_kw('new_name', 'to')}"),
     "renames table {table} to {to}"),
    (re.compile(rf"migrations\.RemoveField\(\s*{_kw('model_name', 'table')}\s*,\s*{_kw('name', 'column')}"),
     "drops column {table}.{column}"),
    (re.compile(rf"migrations\.RenameField\(\s*{_kw('model_name', 'table')}\s*,\s*{_kw('old_name', 'column')}\s*,\s*"
                rf"{_kw('new_name', 'to')}"), "renames column {table}.{column} to {to}"),
    (re.compile(rf"migrations\.AlterField\(\s*{_kw('model_name', 'table')}\s*,\s*{_kw('name', 'column')}"),
     "alters column {table}.{column} (type or nullability)"),
)  # fmt: skip
_DJANGO_ADD = re.compile(
    rf"migrations\.AddField\(\s*{_kw('model_name', 'table')}\s*,\s*{_kw('name', 'column')}\s*,\s*(?:field\s*=\s*)?"
    r"models\.(?P<type>\w+)\((?P<args>[^)]*)\)"
)
_DJANGO_RUNPYTHON = re.compile(r"migrations\.RunPython\((?P<args>[^)]*)\)")


def _django_reasons(text: str) -> list[str]:
    found = _apply(_DJANGO_RULES, text)
    for add in _DJANGO_ADD.finditer(text):
        args = add.group("args")
        relation = add.group("type") in ("ManyToManyField",)
        if not relation and not re.search(r"\bnull\s*=\s*True|\bdefault\s*=", args):
            # Django columns are NOT NULL unless null=True; a default is applied once, in the migration only
            found.append(f"adds NOT NULL column {add.group('table')}.{add.group('column')} without a default")
    for call in _DJANGO_RUNPYTHON.finditer(text):
        args = [a.strip() for a in call.group("args").split(",") if a.strip()]
        if len(args) < 2 and "reverse_code" not in call.group("args"):
            found.append("runs Python code without reverse_code (Django cannot reverse it)")
    return found + _embedded_sql(text)


# -- Rails -------------------------------------------------------------------------------
_RAILS_RULES = (
    (re.compile(rf"\bdrop_table\s*\(?\s*{_s('table')}"), "drops table {table}"),
    (re.compile(rf"\brename_table\s*\(?\s*{_s('table')}\s*,\s*{_s('to')}"), "renames table {table} to {to}"),
    (re.compile(rf"\bremove_column\s*\(?\s*{_s('table')}\s*,\s*{_s('column')}"), "drops column {table}.{column}"),
    (re.compile(rf"\brename_column\s*\(?\s*{_s('table')}\s*,\s*{_s('column')}\s*,\s*{_s('to')}"),
     "renames column {table}.{column} to {to}"),
    (re.compile(rf"\bchange_column\s*\(?\s*{_s('table')}\s*,\s*{_s('column')}\s*,"),
     "changes the type of column {table}.{column}"),
    (re.compile(rf"\bchange_column_null\s*\(?\s*{_s('table')}\s*,\s*{_s('column')}\s*,\s*false"),
     "makes column {table}.{column} NOT NULL"),
    (re.compile(r"raise\s+ActiveRecord::IrreversibleMigration"), "declares itself irreversible"),
)  # fmt: skip
_RAILS_ADD = re.compile(rf"\badd_column\s*\(?\s*{_s('table')}\s*,\s*{_s('column')}(?P<args>[^\n]*)")


def _rails_reasons(text: str) -> list[str]:
    forward = re.split(r"\n\s*def\s+down\b", text, maxsplit=1)[0]
    found = _apply(_RAILS_RULES, forward)
    for add in _RAILS_ADD.finditer(forward):
        args = add.group("args")
        if re.search(r"null:\s*false", args) and "default:" not in args:
            found.append(f"adds NOT NULL column {add.group('table')}.{add.group('column')} without a default")
    return found + _embedded_sql(forward)


# -- Liquibase ---------------------------------------------------------------------------
_LB_ATTR = r"""["']?{}["']?\s*[=:]\s*["']?(?P<{}>[\w.]+)"""


def _a(name: str, group: str) -> str:
    return _LB_ATTR.format(name, group)


_LB_RULES = (
    (re.compile(rf"dropTable[^>]*?{_a('tableName', 'table')}", re.DOTALL), "drops table {table}"),
    (re.compile(rf"renameTable[^>]*?{_a('oldTableName', 'table')}", re.DOTALL), "renames table {table}"),
    (re.compile(rf"dropColumn[^>]*?{_a('tableName', 'table')}[^>]*?{_a('columnName', 'column')}", re.DOTALL),
     "drops column {table}.{column}"),
    (re.compile(rf"renameColumn[^>]*?{_a('oldColumnName', 'column')}[^>]*?{_a('tableName', 'table')}", re.DOTALL),
     "renames column {table}.{column}"),
    (re.compile(rf"modifyDataType[^>]*?{_a('columnName', 'column')}[^>]*?{_a('tableName', 'table')}", re.DOTALL),
     "changes the type of column {table}.{column}"),
    (re.compile(rf"addNotNullConstraint(?:(?!defaultNullValue)[^>])*?{_a('columnName', 'column')}"
                rf"(?:(?!defaultNullValue)[^>])*?{_a('tableName', 'table')}(?:(?!defaultNullValue)[^>])*>", re.DOTALL),
     "makes column {table}.{column} NOT NULL"),
    (re.compile(rf"<delete\b[^>]*?{_a('tableName', 'table')}|-\s*delete:\s*\n\s*{_a('tableName', 'table2')}"),
     "deletes rows of {table}"),
)  # fmt: skip


def _liquibase_reasons(text: str) -> list[str]:
    if re.search(r"^\s*--\s*liquibase\s+formatted\s+sql", text, _I | re.MULTILINE):
        forward = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--rollback"))
        return _sql_reasons(forward)
    forward = re.sub(r"<rollback>.*?</rollback>", " ", text, flags=re.DOTALL)
    found = []
    for pattern, template in _LB_RULES:
        for m in pattern.finditer(forward):
            groups = {k: v for k, v in m.groupdict().items() if v}
            groups.setdefault("table", groups.get("table2"))
            found.append(template.format(**groups))
    return found + _embedded_sql(forward)


def _embedded_sql(text: str) -> list[str]:
    """SQL run by a framework migration (``op.execute``, ``RunSQL``, ``execute``, ``<sql>``)."""
    literals = re.findall(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'|"([^"\n]*)"|\'([^\'\n]*)\'|<sql>(.*?)</sql>', text, re.DOTALL)
    sql = ";\n".join(part for parts in literals for part in parts if part)
    return _sql_reasons(sql) if re.search(r"\b(DROP|DELETE|TRUNCATE|ALTER|RENAME)\b", sql, _I) else []


# -- detection -----------------------------------------------------------------------------
#: Frameworks told apart by path and content.
FRAMEWORKS = ("alembic", "django", "rails", "flyway", "liquibase", "prisma", "golang-migrate", "sql")


def glob_regex(globs: Iterable[str]) -> str:
    """One regular expression matching any of the path globs (``**`` spans directories).

    Parameters
    ----------
    globs : iterable of str
        ``*`` matches within a path segment, ``**/`` any number of directories, ``[0-9]`` a class.

    Returns
    -------
    str
        An anchored regular expression (Python and DuckDB/RE2 syntax alike).
    """
    parts = []
    for glob in globs:
        out, i = "", 0
        while i < len(glob):
            if glob.startswith("**/", i):
                out, i = out + "(?:[^/]*/)*", i + 3
            elif glob.startswith("**", i):
                out, i = out + ".*", i + 2
            elif glob[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif glob[i] == "?":
                out, i = out + "[^/]", i + 1
            elif glob[i] == "[":
                end = glob.index("]", i)
                out, i = out + glob[i : end + 1], end + 1
            else:
                out, i = out + re.escape(glob[i]), i + 1
        parts.append(out)
    return "^(?:" + "|".join(parts) + ")$" if parts else "^$"


def is_migration(path: str, globs: Sequence[str]) -> bool:
    """Whether ``path`` (relative, ``/``-separated) is a forward schema migration.

    Parameters
    ----------
    path : str
    globs : sequence of str
        ``Settings.migration_globs``.

    Returns
    -------
    bool
        False for rollback scripts (``*.down.sql``, Flyway ``U__`` undo scripts).
    """
    name = PurePosixPath(path).name
    if name.endswith(".down.sql") or re.match(r"U\d+__", name):
        return False
    return re.match(glob_regex(globs), path) is not None


def migration_framework(path: str, text: str = "") -> str:
    """The migration framework of a file, from its path and content.

    Parameters
    ----------
    path : str
    text : str, optional
        The file's content (tells Alembic from Django, Liquibase-formatted SQL from plain SQL).

    Returns
    -------
    str
        One of :data:`FRAMEWORKS`.
    """
    p = PurePosixPath(path)
    if p.suffix == ".py":
        if "from alembic import op" in text or "alembic" in p.parts or "versions" in p.parts:
            return "alembic"
        return "django"
    if p.suffix == ".rb":
        return "rails"
    if p.suffix in (".xml", ".yaml", ".yml", ".json") or re.search(r"--\s*liquibase\s+formatted", text, _I):
        return "liquibase"
    if p.name == "migration.sql" and "prisma" in p.parts:
        return "prisma"
    if p.name.endswith(".up.sql"):
        return "golang-migrate"
    if re.match(r"[VR]\d*__", p.name) or p.parent.name == "migration":
        return "flyway"
    return "sql"


_READERS = {
    "alembic": _alembic_reasons, "django": _django_reasons, "rails": _rails_reasons, "liquibase": _liquibase_reasons,
    "flyway": _sql_reasons, "prisma": _sql_reasons, "golang-migrate": _sql_reasons, "sql": _sql_reasons,
}  # fmt: skip


@dataclass(frozen=True)
class MigrationFinding:
    """One migration file and whether a rollback past it is safe.

    Attributes
    ----------
    path : str
    framework : str
        One of :data:`FRAMEWORKS`.
    reversible : bool
        False when the forward migration drops or renames a table or column, changes a type,
        adds NOT NULL without a default, or deletes data.
    reasons : tuple of str
        Each with the file: ``"drops column users.email in migrations/0042.sql"``.
    sha : str, optional
        The commit that added or changed the file.
    """

    path: str
    framework: str
    reversible: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    sha: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {"path": self.path, "framework": self.framework, "reversible": self.reversible,
                "reasons": list(self.reasons), "sha": self.sha}  # fmt: skip


def classify_migration(path: str, text: str, sha: str | None = None) -> MigrationFinding:
    """Classify one migration file as reversible or not, with the reasons.

    Parameters
    ----------
    path : str
        The file's path in the repository (named in each reason).
    text : str
        Its content at the commit being shipped.
    sha : str, optional
        That commit.

    Returns
    -------
    MigrationFinding
    """
    framework = migration_framework(path, text)
    seen: dict[str, None] = {}
    for reason in _READERS[framework](text):
        seen.setdefault(f"{reason} in {path}", None)
    return MigrationFinding(path, framework, not seen, tuple(seen), sha)


def findings_frame(findings: Sequence[MigrationFinding]) -> pd.DataFrame:
    """The findings as a table: ``sha, path, framework, reversible, reasons`` (one row per file).

    Parameters
    ----------
    findings : sequence of MigrationFinding

    Returns
    -------
    DataFrame
    """
    columns = ["sha", "path", "framework", "reversible", "reasons"]
    return pd.DataFrame([{**f.to_dict()} for f in findings], columns=columns)
