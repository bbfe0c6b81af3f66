"""Settings: ``releaserisk.toml`` or ``[tool.releaserisk]``, then environment, then flags.

Precedence, lowest first:

1. built-in defaults (the fields of :class:`Settings`);
2. ``releaserisk.toml`` in the working directory, else the ``releaserisk.toml`` next to the
   store named by the ``db`` override (``--db``), else the ``[tool.releaserisk]`` table of
   ``pyproject.toml`` (an explicit ``path`` wins over all);
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
# -- what is not a bug fix (DESIGN §4 "Labels") ----------------------------------------------
# Keyword SZZ takes any commit whose message says "fix" for a bug fix. Herbold et al.
# ("Problems with SZZ and features: an empirical study of the state of practice of defect
# prediction data collection", EMSE 27, 2022) found that a large share of such commits
# are not bug fixes (documentation, tests, refactoring, build and style changes) and that
# blaming non-production files (tests, docs) adds most wrong bug-introducing labels; Rosa
# et al. ("Evaluating SZZ implementations through a developer-informed oracle", ICSE 2021)
# found the best precision when only source code lines are blamed. The defaults below turn
# those findings into rules; every one can be changed in releaserisk.toml.

#: Message rules: a commit whose message matches is not a bug fix (unless an issue or pull
#: request labelled as a bug says it is). Each named group is a category of the
#: label-quality summary; a pattern of one's own without groups reports "excluded".
DEFAULT_FIX_EXCLUDE_PATTERN = (
    r"(?im)"
    r"(?P<typo>\b(typos?|spelling|misspell\w*|mis-spell\w*|grammar|wording)\b)"
    r"|(?P<style>^style(\(.*?\))?!?:|\b(lint(s|er|ers|ing)?|flake8|pylint|ruff|isort|mypy|pyright|pep ?8|pre-commit|"
    r"re-?format\w*|auto-?format\w*|code (formatting|style)|formatting (only|changes?|fix(es)?|issues?)|"
    r"trailing (whitespace|spaces?)|whitespace (only|changes?|fix(es)?|clean-?up)|clang-format|prettier|eslint|"
    r"type (hints?|annotations?|checking)|typing errors?)\b|\b(run|ran|apply|applied) black\b)"
    r"|(?P<docs>^docs?(\(.*?\))?!?:|\b(docstrings?|readme|changelog|documentation)\b)"
    r"|(?P<tests>^tests?(\(.*?\))?!?:|\b(flaky|failing|broken) (unit )?tests?\b|\bfix(es|ed)? (the )?tests?\b"
    r"|\btest (suite|failures?)\b)"
    r"|(?P<ci_build>^(ci|build)(\(.*?\))?!?:|\b(ci|github actions?|travis|appveyor|circleci|azure pipelines|"
    r"tox|nox|build (scripts?|config\w*|system))\b)"
    r"|(?P<dependencies>^(chore|build|fix)\(deps(-dev)?\)|\b(bump(s|ed)?|upgrade[sd]?|pin(s|ned)?)\b.*\b(from|to) v?\d"
    r"|\b(update|upgrade|bump|pin|unpin)\w* (the )?(dev-?)?dependenc(y|ies)\b|\brequirements\.txt\b|\block ?file\b)"
    r"|(?P<merge>\b(merge|rebase) conflicts?\b|\bconflicts? (resolution|resolved)\b|^merge (branch|remote|pull))"
    r"|(?P<revert_of_revert>^revert \"revert\b|^reapply\b)"
)
#: Authors (name or e-mail) whose commits are dependency or housekeeping bots, never bug fixes.
DEFAULT_BOT_AUTHORS = (
    r"(?i)\[bot\]|\b(dependabot|renovate|greenkeeper|pre-commit-ci|snyk-bot|pyup-bot|github-actions)\b"
)

#: Documentation files.
DOC_PATHS = ("docs/**", "doc/**", "*.md", "*.rst", "*.txt", "*.adoc", "*.rdoc", "CHANGELOG*", "CHANGES*",
             "NEWS*", "HISTORY*", "AUTHORS*", "CONTRIBUTORS*", "LICENSE*", "COPYING*")  # fmt: skip
#: Test code (tests are code, but a bug in a test is not a defect of the product).
TEST_PATHS = ("test/**", "tests/**", "testing/**", "__tests__/**", "src/test/**", "**/test/**", "**/tests/**",
              "test_*.py", "*_test.py", "conftest.py", "*_test.go", "*Test.java", "*Tests.java", "*Test.kt",
              "*.test.*", "*.spec.*", "*_spec.rb")  # fmt: skip
#: Continuous-integration and build configuration.
BUILD_PATHS = (".github/**", ".gitlab-ci.yml", ".circleci/**", ".travis.yml", "appveyor.yml",
               "azure-pipelines.yml", "Jenkinsfile", "tox.ini", "noxfile.py", "setup.py", "setup.cfg",
               "pyproject.toml", "Makefile", "CMakeLists.txt", "*.cmake", "Dockerfile", ".pre-commit-config.yaml",
               "build.gradle", "pom.xml")  # fmt: skip
#: Dependency manifests and lock files.
DEPENDENCY_PATHS = ("requirements*.txt", "requirements/**", "*.lock", "package.json", "package-lock.json",
                    "go.mod", "go.sum", "Gemfile", "Pipfile", "environment.yml")  # fmt: skip
#: Source code, by extension.
SOURCE_PATHS = ("*.py", "*.pyx", "*.pxd", "*.pyi", "*.c", "*.h", "*.cc", "*.cpp", "*.cxx", "*.hpp", "*.hh",
                "*.java", "*.kt", "*.kts", "*.scala", "*.groovy", "*.js", "*.jsx", "*.mjs", "*.cjs", "*.ts",
                "*.tsx", "*.vue", "*.svelte", "*.go", "*.rs", "*.rb", "*.php", "*.cs", "*.fs", "*.swift", "*.m",
                "*.mm", "*.pl", "*.pm", "*.sh", "*.bash", "*.lua", "*.r", "*.R", "*.jl", "*.hs", "*.ml",
                "*.ex", "*.exs", "*.erl", "*.clj", "*.dart", "*.sql", "*.f90", "*.zig")  # fmt: skip
#: Which files SZZ blames and which a fix must touch: gitignore-style globs, a leading
#: "!" excludes. A path counts when it matches an include and no exclude.
DEFAULT_SZZ_PATHS = SOURCE_PATHS + tuple(f"!{glob}" for glob in DOC_PATHS + TEST_PATHS + BUILD_PATHS + DEPENDENCY_PATHS)


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
    fix_exclude_pattern : str
        Regular expression (Python syntax): a commit whose message matches is not a bug
        fix, unless an issue or pull request labelled as a bug links it. Named groups
        are the categories the label-quality summary counts. Default
        :data:`DEFAULT_FIX_EXCLUDE_PATTERN` (typo, style, docs, tests, ci_build,
        dependencies, merge, revert_of_revert; Herbold et al., EMSE 2022). Empty: none.
    bot_authors : str
        Regular expression over author name and e-mail: such commits (dependabot,
        renovate, ...) are not bug fixes. Empty: none.
    szz_paths : tuple of str
        Globs of the files SZZ blames (a leading ``!`` excludes; ``*`` stays within a
        directory, ``**`` crosses them, a glob without ``/`` matches the file name
        anywhere). A keyword fix that touches none of them is not a bug fix. Default
        :data:`DEFAULT_SZZ_PATHS`: source code, without docs, tests, CI/build
        configuration and dependency files (Rosa et al., ICSE 2021).
    szz_max_failed_share : float
        ``label`` fails when more than this share of its blames fail (a failed blame
        would otherwise be a silently missing label).
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
    fix_exclude_pattern: str = DEFAULT_FIX_EXCLUDE_PATTERN
    bot_authors: str = DEFAULT_BOT_AUTHORS
    szz_paths: tuple[str, ...] = DEFAULT_SZZ_PATHS
    szz_max_failed_share: float = 0.05

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
        for name in ("fix_pattern", "fix_exclude_pattern", "bot_authors"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ConfigError(f"{name} is not a valid regular expression: {exc}") from None
        if not any(not glob.startswith("!") for glob in self.szz_paths):
            raise ConfigError("szz_paths must include at least one glob (a leading '!' excludes)")
        if not 0.0 <= self.szz_max_failed_share <= 1.0:
            raise ConfigError("szz_max_failed_share must be in [0, 1]")


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


def _file_values(
    path: str | os.PathLike[str] | None, cwd: Path, db: str | os.PathLike[str] | None = None
) -> tuple[dict[str, Any], str]:
    if path is not None:
        return _read_file(Path(path))
    # a store's own releaserisk.toml (the demo writes one) comes with it, wherever it is run from
    beside_store = [Path(db).parent / "releaserisk.toml"] if db else []
    for candidate in (cwd / "releaserisk.toml", *beside_store, cwd / "pyproject.toml"):
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
    file_values, source = _file_values(path, Path(cwd) if cwd else Path.cwd(), (overrides or {}).get("db"))
    _check_keys(file_values, source)
    merged.update({k: _coerce(k, v, source) for k, v in file_values.items()})
    env = _env_values(os.environ if environ is None else environ)
    merged.update({k: _coerce(k, v, f"RELEASERISK_{k.upper()}") for k, v in env.items()})
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_keys(flags, "overrides")
    merged.update({k: _coerce(k, v, "command-line flags") for k, v in flags.items()})
    return Settings(**merged)
