"""Every exception releaserisk raises on purpose, in one place.

The tree::

    ReleaseRiskError                 base: catch this to catch everything we raise
    ├── ConfigError                  bad or unknown setting in releaserisk.toml / env / flags
    ├── InputError                   a user-supplied file or value is invalid
    ├── SourceError                  a data source failed
    │   ├── GitError                 git missing, not a repository, bad revision, ...
    │   │   └── ShallowCloneError    history is truncated; metrics would be wrong
    │   ├── GitHubError              GitHub API: not found, auth, permission, server, garbage
    │   ├── GitLabError              GitLab API: the same kinds
    │   ├── JiraError                Jira API: the same kinds
    │   └── PagerDutyError           PagerDuty API: the same kinds
    ├── StoreError                   the DuckDB store cannot be used
    │   ├── StoreLockedError         another process holds the write lock
    │   ├── StoreCorruptError        the file is not a DuckDB database
    │   ├── SchemaVersionError       the file was written by a newer releaserisk
    │   └── LakeError                a lake's manifest or shard cannot be read, or a lake was written to
    └── ModelError                   a model cannot be trained, saved or loaded
        ├── UntrustedModelError      a model file contains types we do not trust
        ├── ModelVersionError        saved with another scikit-learn version
        └── ForeignModelError        trained on another repository than the one scored

The CLI turns any of these into a one-line ``error: ...`` message and exit code 2.
Messages never contain credentials.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ForeignModelError",
    "GitError",
    "GitHubError",
    "GitLabError",
    "InputError",
    "JiraError",
    "LakeError",
    "ModelError",
    "ModelVersionError",
    "PagerDutyError",
    "ReleaseRiskError",
    "SchemaVersionError",
    "ShallowCloneError",
    "SourceError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "UntrustedModelError",
]


class ReleaseRiskError(Exception):
    """Base class of every error releaserisk raises deliberately."""


class ConfigError(ReleaseRiskError):
    """A setting is unknown, mistyped or out of range."""


class InputError(ReleaseRiskError):
    """A user-supplied file, column or value is invalid."""


class SourceError(ReleaseRiskError):
    """A data source (git, GitHub, ...) failed."""


class GitError(SourceError):
    """git is missing, the path is not a repository, or a git command failed."""


class ShallowCloneError(GitError):
    """The repository is a shallow clone, so history-based metrics would be wrong."""


class GitHubError(SourceError):
    """The GitHub API refused or failed a request."""


class GitLabError(SourceError):
    """The GitLab API refused or failed a request, or answered something that is not its JSON."""


class JiraError(SourceError):
    """The Jira API refused or failed a request, or answered something that is not its JSON."""


class PagerDutyError(SourceError):
    """The PagerDuty API refused or failed a request, or answered something that is not its JSON."""


class StoreError(ReleaseRiskError):
    """The DuckDB store cannot be opened or used."""


class StoreLockedError(StoreError):
    """Another process holds the database file's write lock."""


class StoreCorruptError(StoreError):
    """The file exists but is not a DuckDB database (it is left untouched)."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this version of releaserisk knows."""


class LakeError(StoreError):
    """A lake cannot be used: no manifest, a damaged manifest or shard, or a write to its views."""


class ModelError(ReleaseRiskError):
    """A model cannot be trained, saved, loaded or applied."""


class UntrustedModelError(ModelError):
    """A model file contains types outside the reviewed trusted list."""


class ModelVersionError(ModelError):
    """A model file was saved with a different scikit-learn (minor) version."""


class ForeignModelError(ModelError):
    """A model trained on one repository was asked to gate another (``--allow-foreign-model`` allows it)."""
