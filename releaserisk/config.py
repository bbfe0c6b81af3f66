"""Settings: ``releaserisk.toml`` or ``[tool.releaserisk]``, then environment, then flags.

Precedence, lowest first:

1. built-in defaults (the fields of :class:`Settings`);
2. ``releaserisk.toml`` in the working directory, or else the ``[tool.releaserisk]``
   table of ``pyproject.toml`` (an explicit ``path`` wins over both);
3. environment variables ``RELEASERISK_<FIELD>`` (lists are comma-separated);
4. explicit overrides, e.g. command-line flags.

Unknown keys are an error naming the key, wherever they come from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from releaserisk.errors import ConfigError

__all__ = ["Settings", "load_settings", "read_toml"]

DEFAULT_FIX_PATTERN = (
    r"(?i)\b(fix(e[sd]|ing)?|bug(s|fix)?|defects?|patch(e[sd])?|hotfix|crash(es|ed)?|"
    r"regression|fault|broken|resolves?|closes?)\b"
)

#: What an unsafe-to-roll-back batch does to the gate (``Settings.unsafe_rollback_gate``).
UNSAFE_ROLLBACK_GATE = ("warn", "fail")
#: Where schema migrations live, per framework: Alembic, Django, Rails, Flyway, Liquibase,
#: Prisma, golang-migrate, and plain SQL under a migrations directory.
DEFAULT_MIGRATION_GLOBS = (
    "**/alembic/versions/*.py", "**/migrations/versions/*.py",  # Alembic
    "**/migrations/[0-9]*.py",  # Django
    "**/db/migrate/*.rb",  # Rails
    "**/db/migration/*.sql", "**/V[0-9]*__*.sql",  # Flyway
    "**/changelog*.xml", "**/changelog*.yaml", "**/changelog*.yml", "**/changelog/**",  # Liquibase
    "**/prisma/migrations/*/migration.sql",  # Prisma
    "**/*.up.sql",  # golang-migrate
    "**/migrations/**/*.sql", "**/migrate/**/*.sql",  # plain SQL
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every tunable of releaserisk, with its default.

    Attributes
    ----------
    db : str
        Path of the DuckDB store.
    production_environments : tuple of str
        Environment names that count as production for DORA metrics (any case).
    environment_order : tuple of str
        The promotion pipeline, first stage first (any case).
    fix_pattern : str
        Regular expression that marks a commit message as a bug fix.
    label_horizon_days : int
        Commits younger than this (before the newest commit) stay unlabelled.
    szz_max_files : int
        SZZ skips fixes touching more files than this (tangled changes).
    risk_threshold : float
        Probability at or above which ``releaserisk score`` fails the gate.
    bug_labels : tuple of str
        Issue and pull-request labels (any case) that mark a bug: commits citing such an
        issue, and the commits of such a pull request, are bug fixes for SZZ.
    stale_flag_days : int
        A production flag fully on or off for longer than this (days) is stale when the code
        still references it (:func:`releaserisk.flags.stale_flags`).
    flag_service_pattern : str
        Regular expression with a group ``service`` that reads a flag's service from its key
        (e.g. ``^(?P<service>[a-z0-9]+)\\.`` for ``checkout.new-flow``); used when neither the
        flag log nor a ``services.flag_prefix`` names one. Empty: no rule.
    migration_globs : tuple of str
        Paths that hold schema migrations (``**`` spans directories), checked by the gate's
        rollback-safety classification (:mod:`releaserisk.migrations_safety`).
    cause_window_hours : float
        How long before an incident a deployment or flag change may be its candidate cause.
    unsafe_rollback_gate : str
        What a batch that cannot be rolled back does to the gate: ``warn`` (advice and a
        note only) or ``fail`` (the gate fails).
    """

    db: str = "releaserisk.duckdb"
    production_environments: tuple[str, ...] = ("production", "prod")
    environment_order: tuple[str, ...] = ("dev", "staging", "production")
    fix_pattern: str = DEFAULT_FIX_PATTERN
    label_horizon_days: int = 180
    szz_max_files: int = 50
    risk_threshold: float = 0.5
    bug_labels: tuple[str, ...] = ("bug", "defect", "regression", "type: bug", "type/bug", "kind/bug")
    stale_flag_days: int = 30
    flag_service_pattern: str = ""
    migration_globs: tuple[str, ...] = DEFAULT_MIGRATION_GLOBS
    cause_window_hours: float = 24.0
    unsafe_rollback_gate: str = "warn"

    def __post_init__(self) -> None:
        # environment names and labels match case-insensitively ("Production" is GitHub's usual
        # spelling, "Bug" a common label); queries compare lower(...) with these
        for name in ("production_environments", "environment_order", "bug_labels"):
            object.__setattr__(self, name, tuple(value.lower() for value in getattr(self, name)))
        if self.label_horizon_days < 0:
            raise ConfigError("label_horizon_days must be >= 0")
        if self.szz_max_files < 1:
            raise ConfigError("szz_max_files must be >= 1")
        if not 0.0 < self.risk_threshold <= 1.0:
            raise ConfigError("risk_threshold must be in (0, 1]")
        if not self.production_environments:
            raise ConfigError("production_environments must name at least one environment")
        if self.stale_flag_days < 0:
            raise ConfigError("stale_flag_days must be >= 0")
        if self.cause_window_hours <= 0:
            raise ConfigError("cause_window_hours must be > 0")
        if self.unsafe_rollback_gate not in UNSAFE_ROLLBACK_GATE:
            raise ConfigError(f"unsafe_rollback_gate must be one of {', '.join(UNSAFE_ROLLBACK_GATE)}")
        if self.flag_service_pattern:
            try:
                compiled = re.compile(self.flag_service_pattern)
            except re.error as exc:
                raise ConfigError(f"flag_service_pattern is not a regular expression: {exc}") from None
            if "service" not in compiled.groupindex:
                raise ConfigError("flag_service_pattern needs a group named 'service': (?P<service>...)")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(key: str, value: Any, source: str) -> Any:
    """Convert ``value`` to the type of field ``key``; raise ConfigError naming both."""
    default = _FIELDS[key].default
    try:
        if isinstance(default, tuple):
            if isinstance(value, str) and value.lstrip().startswith("["):
                value = json.loads(value)  # '["prod", "production"]', as other tools' settings take lists
            elif isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise TypeError
            return tuple(value)
        if isinstance(default, bool):
            raise TypeError  # no boolean settings yet; refuse rather than guess
        if isinstance(default, int):
            if isinstance(value, bool):
                raise TypeError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError, RecursionError):  # json.JSONDecodeError is a ValueError; nesting too deep
        kind = type(default).__name__ if not isinstance(default, tuple) else "list of strings"
        raise ConfigError(f"setting '{key}' from {source} must be a {kind}, got {value!r}") from None


def _check_keys(values: Mapping[str, Any], source: str) -> None:
    for key in values:
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ConfigError(f"unknown setting '{key}' in {source} (known: {known})")


def read_toml(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """Read a TOML file: every releaserisk TOML (settings, canary configs, rollout policies).

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        What the file is, for the error message ("canary config", "rollout policy").

    Returns
    -------
    dict
        The parsed document.

    Raises
    ------
    ConfigError
        The file cannot be read, is not UTF-8, is not valid TOML (TOML 1.0, via :mod:`tomllib`),
        or nests deeper than the parser can follow.
    """
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text (TOML must be)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:  # arrays or tables nested deeper than the parser can follow
        raise ConfigError(f"{path} is not valid TOML: nested too deeply") from None


def _read_file(path: Path) -> tuple[dict[str, Any], str]:
    data = read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("releaserisk", {})
        return data, f"{path} [tool.releaserisk]"
    return data, str(path)


def _file_values(path: str | os.PathLike[str] | None, cwd: Path) -> tuple[dict[str, Any], str]:
    if path is not None:
        return _read_file(Path(path))
    for candidate in (cwd / "releaserisk.toml", cwd / "pyproject.toml"):
        if candidate.is_file():
            return _read_file(candidate)
    return {}, "defaults"


def _env_values(environ: Mapping[str, str]) -> dict[str, str]:
    prefix = "RELEASERISK_"
    values = {}
    for name, value in environ.items():
        if name.startswith(prefix):
            key = name[len(prefix) :].lower()
            if key not in _FIELDS:
                raise ConfigError(f"unknown setting '{key}' in environment variable {name}")
            values[key] = value
    return values


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build :class:`Settings` from file, environment and overrides.

    Parameters
    ----------
    path : path-like, optional
        Explicit config file (``*.toml``; a ``pyproject.toml`` is read from its
        ``[tool.releaserisk]`` table). Default: look in ``cwd``.
    overrides : mapping, optional
        Highest-precedence values, e.g. from CLI flags. ``None`` values are ignored.
    environ : mapping, optional
        Environment to read ``RELEASERISK_*`` variables from (default ``os.environ``).
    cwd : path-like, optional
        Directory searched for config files (default: the working directory).

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        A key is unknown, a value has the wrong type, or the file is unreadable.
    """
    merged: dict[str, Any] = {}
    file_values, source = _file_values(path, Path(cwd) if cwd else Path.cwd())
    _check_keys(file_values, source)
    merged.update({k: _coerce(k, v, source) for k, v in file_values.items()})
    env = _env_values(os.environ if environ is None else environ)
    merged.update({k: _coerce(k, v, f"RELEASERISK_{k.upper()}") for k, v in env.items()})
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_keys(flags, "overrides")
    merged.update({k: _coerce(k, v, "command-line flags") for k, v in flags.items()})
    return Settings(**merged)
