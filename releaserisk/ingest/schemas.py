"""Documented columns of every file kind (kept free of heavy imports: the CLI reads it at start-up)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEPLOY_KIND",
    "DEPLOY_STATUS",
    "DERIVED_DEPLOYMENT_SOURCES",
    "DERIVED_SOURCE_PREFIXES",
    "EXPLICIT",
    "FLAG_ACTIONS",
    "SCHEMAS",
    "TIME_ORDER",
    "Column",
]


@dataclass(frozen=True)
class Column:
    """One documented column: its type and, for enums, the allowed values.

    ``default``: an enum's value for a blank cell or an absent optional column; a required text
    column's value for a blank cell (the column itself must be there).
    """

    name: str
    kind: str = "str"  # str | timestamp | int | enum | list | float
    required: bool = False
    allowed: tuple[str, ...] = ()
    default: str | None = None
    aliases: tuple[tuple[str, str], ...] = ()  # other tools' words for an allowed value


def _req(name: str, kind: str = "str", allowed: tuple[str, ...] = ()) -> Column:
    return Column(name, kind, True, allowed)


DEPLOY_STATUS = ("success", "failure", "error", "cancelled")
#: How deploy tools spell the statuses (Argo CD and Spinnaker "Succeeded"/"SUCCEEDED", GitLab
#: "failed" and "canceled", Jenkins "ABORTED"); matched in any case.
DEPLOY_STATUS_ALIASES = (
    ("succeeded", "success"), ("successful", "success"), ("failed", "failure"), ("canceled", "cancelled"),
    ("aborted", "cancelled"), ("errored", "error"),
)  # fmt: skip
DEPLOY_KIND = ("regular", "hotfix", "rollback")
#: What a flag change did (``flag_changes.action``).
FLAG_ACTIONS = ("created", "on", "off", "rollout", "targeting", "archived")
FLAG_ACTION_ALIASES = (("enabled", "on"), ("disabled", "off"), ("percentage", "rollout"), ("deleted", "archived"))

#: kind -> (store table, columns). The CLI's ``ingest KIND FILE`` uses these names.
SCHEMAS: dict[str, tuple[str, tuple[Column, ...]]] = {
    "deployments": (
        "deployments",
        (
            _req("deployment_id"), _req("service"), _req("environment"), _req("sha"),
            Column("status", "enum", True, DEPLOY_STATUS, aliases=DEPLOY_STATUS_ALIASES),
            _req("finished_at", "timestamp"),
            Column("started_at", "timestamp"), Column("repo"),
            Column("kind", "enum", allowed=DEPLOY_KIND, default="regular"),
            Column("reverts_deployment_id"), Column("source"),
        ),
    ),
    "incidents": (
        "incidents",
        (
            _req("incident_id"), _req("service"), _req("opened_at", "timestamp"),
            Column("resolved_at", "timestamp"), Column("severity"), Column("title"),
            Column("cause_deployment_id"), Column("cause_sha"), Column("source"), Column("cause_flag_key"),
        ),
    ),
    "issues": (
        "issues",
        (
            _req("repo"), _req("issue"), _req("opened_at", "timestamp"), Column("title"), Column("labels", "list"),
            Column("closed_at", "timestamp"), Column("source"),
        ),
    ),
    "pull-requests": (
        "pull_requests",
        (
            _req("repo"), _req("number", "int"), Column("author"), _req("created_at", "timestamp"),
            Column("title"), Column("merged_at", "timestamp"), Column("closed_at", "timestamp"),
            Column("merge_commit_sha"), Column("base_ref"), Column("head_sha"),
            Column("additions", "int"), Column("deletions", "int"), Column("changed_files", "int"),
            Column("labels", "list"),
        ),
    ),
    "pr-commits": ("pr_commits", (_req("repo"), _req("number", "int"), _req("sha"), _req("authored_at", "timestamp"))),
    "pr-reviews": (
        "pr_reviews",
        # a review by a deleted account has no reviewer: kept as "" (a key column), someone other than the author,
        # as DevLake's batchFetchFirstReviews counts a comment whose account_id differs from the author's
        (_req("repo"), _req("number", "int"), Column("reviewer", required=True, default=""),
         _req("submitted_at", "timestamp"), Column("state")),
    ),
    "deployment-changes": ("deployment_changes", (_req("deployment_id"), _req("repo"), _req("sha"))),
    "services": (
        "services",
        (_req("service"), Column("repo"), Column("path_prefix"), Column("team"), Column("flag_prefix")),
    ),
    # the generic flag-change CSV (releaserisk.ingest.flags turns vendor audit logs into these columns)
    "flags": (
        "flag_changes",
        (
            _req("change_id"), _req("flag_key"), Column("environment"),  # none for created/archived
            Column("action", "enum", True, FLAG_ACTIONS, aliases=FLAG_ACTION_ALIASES), _req("changed_at", "timestamp"),
            Column("from_state"), Column("to_state"), Column("service"), Column("actor"), Column("owner"),
            Column("source"),
        ),
    ),
}  # fmt: skip

#: kind -> (earlier, later) timestamp pairs a row must not reverse: a deployment that
#: finished before it started, or an incident resolved before it opened, would give a
#: negative recovery or restore time. Pull requests are left alone: their exports do have
#: phases out of order (DevLake's cycle time drops negative spans for that reason).
TIME_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "deployments": (("started_at", "finished_at"),),
    "incidents": (("opened_at", "resolved_at"),),
    "issues": (("opened_at", "closed_at"),),
}

#: table -> values that mark a row loaded from a file as explicit. Derived rows (links
#: computed from the commit graph) are replaced on every re-derivation; explicit ones never.
EXPLICIT: dict[str, dict[str, object]] = {"deployment_changes": {"derived": False}}

#: ``deployments.source`` values written by derived sources (``ingest git-tags``, GitHub and
#: GitLab): their rows never overwrite a deployment another source wrote (README "Explicit
#: rows win"; :mod:`releaserisk.ingest.explicit`).
DERIVED_DEPLOYMENT_SOURCES = (
    "git-tag", "github-deployments", "github-releases", "gitlab-deployments", "gitlab-releases",
)  # fmt: skip
#: Prefixes of derived ``deployments.source`` values (a GitHub deploy workflow: ``github-workflow:NAME``).
DERIVED_SOURCE_PREFIXES = ("github-workflow:",)
