"""DORA metric profiles: one declarative table of named rule choices, each with its source.

A profile (``dora``, ``devlake``, ``fourkeys``) is a column of :data:`PROFILE_RULES`: for each
rule, the choice that profile makes, and beside it the peer's code or document that makes
it, so a reviewer can hold the table against the peer. :mod:`releaserisk.dora` builds its
SQL from these choices and nowhere tests a profile's name; the README's "Metric
definitions" table is :func:`profile_table_markdown` (a test keeps them equal).

Sources
-------
``dora``: DESIGN.md §6 and Google Cloud DORA's metric definitions (dora.dev/guides/dora-metrics-four-keys).
``devlake``: apache/incubator-devlake, ``backend/plugins/dora/tasks/`` (``change_lead_time_calculator.go``,
``incident_deploy_connector.go``, ``prev_deployment_commit_enricher.go``) and ``grafana/dashboards/DORA*.json``.
``fourkeys``: dora-team/fourkeys, ``queries/*.sql`` (the deployments, changes and incidents tables) and
the metric queries of ``METRICS.md`` and ``dashboard/fourkeys_dashboard.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from releaserisk.choices import DORA_PROFILES
from releaserisk.errors import InputError

__all__ = ["PROFILES", "PROFILE_RULES", "ProfileRule", "profile_rules", "profile_table", "profile_table_markdown"]

PROFILES = DORA_PROFILES


@dataclass(frozen=True)
class ProfileRule:
    """One rule of the profile table.

    Attributes
    ----------
    name : str
        The rule's key, read by :mod:`releaserisk.dora`.
    decides : str
        What the rule decides.
    dora, devlake, fourkeys : tuple of (str, str)
        Each profile's choice and its source (file and construct, or document).
    """

    name: str
    decides: str
    dora: tuple[str, str]
    devlake: tuple[str, str]
    fourkeys: tuple[str, str]


_DESIGN = "DESIGN.md §6"
_CALC = "change_lead_time_calculator.go"
_FK_LEAD = "fourkeys_dashboard.json / METRICS.md Lead Time for Changes"
_FK_CFR = "fourkeys_dashboard.json / METRICS.md Change Failure Rate"
_FK_RESTORE = "fourkeys_dashboard.json / METRICS.md Median Time to Restore Services"
#: BigQuery's TIMESTAMP_DIFF "returns the whole number of specified date_part intervals" between two
#: timestamps, negative when the first is earlier: -90 minutes is -1 hour, not -2 (a floor)
_TRUNC = "GoogleSQL TIMESTAMP_DIFF: -90 min is -1 h"

#: The profile table. Each choice is (value, source).
PROFILE_RULES: tuple[ProfileRule, ...] = (
    ProfileRule(
        "deployments_counted", "which successful production deployments count at all (frequency, failure rate, "
                               "drill-downs)",
        ("every", _DESIGN),
        ("every", "DORA.json Deployment Frequency: cicd_deployment_commits with result SUCCESS and environment "
                  "PRODUCTION"),
        ("traced to a commit", "deployments.sql: JOIN changes_raw ON changes_raw.id = deploys.main_commit, CROSS "
                               "JOIN array_commits: no deployment without the push of its commit (here: a listed "
                               "change, or a sha in the ingested history); it filters no environment, taking "
                               "the deploy events sent to it as production's (METRICS.md: 'releases to "
                               "production'), so the production environments here are its scope"),
    ),
    ProfileRule(
        "deployment_order", "which production deployment is 'first' (ties by id)",
        ("finished", _DESIGN),
        ("started", f"{_CALC} batchFetchDeployments: ORDER BY cd.commit_sha, dc.started_date, dc.id"),
        ("finished", "deployments.sql: time_created is the deployment's finish"),
    ),
    ProfileRule(
        "chain_order", "which successful production deployment of a service and repo comes first in its chain",
        ("finished", _DESIGN + ": ingest/links.py chains deployments by finish time"),
        ("finished", "prev_deployment_commit_enricher.go: ORDER BY cicd_scope_id, repo_url, environment, "
                     "finished_date"),
        ("finished", "no chain (the dora profile's rule)"),
    ),
    ProfileRule(
        "first_of_chain", "changes of a deployment with no earlier successful one of its service and repo",
        ("as linked", _DESIGN + ": deployment_changes as stored"),
        ("none", f"{_CALC} batchFetchDeployments: WHERE dc.prev_success_deployment_commit_id <> ''"),
        ("as linked", "changes.sql / deployments.sql: the changes a deployment lists"),
    ),
    ProfileRule(
        "change_deployments", "which production deployments of a commit give it a lead time",
        ("first", _DESIGN + ": the first production deployment containing it"),
        ("first", "no per-commit lead time (the dora profile's rule, for the changes drill-down)"),
        ("every listing", _FK_LEAD + ": one value per row of 'deployments d, d.changes'"),
    ),
    ProfileRule(
        "lead_time_of", "what one lead-time value measures",
        ("commit", _DESIGN + ": first production deployment containing it - committer time"),
        ("pull request", f"{_CALC}: PrCycleTime; DORA dashboard reads project_pr_metrics.pr_cycle_time"),
        ("commit", _FK_LEAD + ": TIMESTAMP_DIFF(d.time_created, c.time_created, MINUTE)"),
    ),
    ProfileRule(
        "rounding", "unit of lead time and PR phases",
        ("exact", _DESIGN + ": microseconds"),
        ("ceil minute", f"{_CALC} computeTimeSpan: math.Ceil(span.Minutes())"),
        ("whole minutes toward zero", _FK_LEAD + ": TIMESTAMP_DIFF(d.time_created, c.time_created, MINUTE), "
                                      "the whole number of minutes (" + _TRUNC + ")"),
    ),
    ProfileRule(
        "commit_time", "a commit's time as a per-commit lead time reads it",
        ("exact", _DESIGN + ": committer time, microseconds"),
        ("exact", "no per-commit lead time (the dora profile's rule, for the changes drill-down)"),
        ("to the second", "changes.sql: TIMESTAMP_TRUNC(TIMESTAMP(JSON_EXTRACT_SCALAR(commit, '$.timestamp')), "
                          "second); the deployment's time_created is not truncated"),
    ),
    ProfileRule(
        "lead_time_zero", "a lead time of zero (under a minute when rounded)",
        ("kept", _DESIGN),
        ("kept", f"{_CALC} computeTimeSpan: only minutes < 0 are nil"),
        ("dropped", _FK_LEAD + ": IF(TIMESTAMP_DIFF(...) > 0, ..., NULL) 'Ignore automated pushes'"),
    ),
    ProfileRule(
        "pr_cycle", "a pull request's cycle time",
        ("first commit to deployment", _DESIGN),
        ("sum of parts", f"{_CALC}: cycleTime += coding, created->merged, deploy, each when not nil"),
        ("first commit to deployment", "no pull-request metric (the dora profile's rule)"),
    ),
    ProfileRule(
        "pr_deployment", "which commits of a PR find its deployment",
        ("merge or PR commit", _DESIGN),
        ("merge commit", f"{_CALC}: deploymentsMap[pr.MergeCommitSha], commits_diffs cd.commit_sha AS merge_sha"),
        ("merge or PR commit", "no pull-request metric (the dora profile's rule)"),
    ),
    ProfileRule(
        "pr_deployment_repo", "in which repositories' deployment changes a PR's commit is looked up",
        ("its own", _DESIGN + ": deployment_changes matched by (repo, sha)"),
        ("any", f"{_CALC} batchFetchDeployments: commits_diffs joined by sha alone (it has no repository "
                "column), deploymentsMap[pr.MergeCommitSha]"),
        ("its own", "no pull-request metric (the dora profile's rule)"),
    ),
    ProfileRule(
        "review_window", "which reviews by others start pickup and end review",
        ("before merge", _DESIGN + ": a post-merge approval is no phase of the way in"),
        ("any time", f"{_CALC} batchFetchFirstReviews: MIN(created_date) WHERE account_id != author_id, "
                     "no merge bound"),
        ("before merge", "no pull-request metric (the dora profile's rule)"),
    ),
    ProfileRule(
        "undeployed_prs", "merged pull requests without a production deployment",
        ("left out", _DESIGN + ": the PR drill-down lists deployed PRs"),
        ("listed", f"{_CALC}: every pr.merged_date IS NOT NULL row gets a metric; deploy parts nil"),
        ("left out", "no pull-request metric (the dora profile's rule)"),
    ),
    ProfileRule(
        "incident_link", "which deployment an incident fails",
        ("explicit, else cause sha, else latest prior", _DESIGN + ": cause shipped by the time it opened"),
        ("latest prior of any service (strictly before)",
         "incident_deploy_connector.go: finished_date < created_date in the project, ORDER BY finished_date DESC; "
         "no service, no cause"),
        ("cause sha of any service, any time",
         _FK_CFR + ": incidents' root causes (incidents.sql) = deployments' changes; no service"),
    ),
    ProfileRule(
        "cause_match", "how an incident's root-cause commit is matched to a deployment's commits",
        ("prefix", _DESIGN + ": 'root cause: 9fceb02', an abbreviation of 7+ characters in any case"),
        ("not read", "incident_deploy_connector.go links by time alone (incident_link)"),
        ("exact", "incidents.sql: REGEXP_EXTRACT(metadata, r\"root cause: ([[:alnum:]]*)\") joined by "
                  "root.changes = root_cause; " + _FK_CFR + ": i.change = changes (an abbreviation matches nothing)"),
    ),
    ProfileRule(
        "failure", "what makes a deployment a change failure",
        ("incident, rollback or hotfix", _DESIGN),
        ("incident", "grafana/dashboards/DORA.json change failure rate: deployments with an incident"),
        ("incident", _FK_CFR + ": deployments' changes joined to incidents' root causes"),
    ),
    ProfileRule(
        "failure_count", "the numerator of the change failure rate (over production deployments)",
        ("failed deployments", _DESIGN),
        ("failed deployments", "DORA.json _change_failure_rate: sum(has_incident) / count(deployment_id), "
                               "has_incident 0 or 1"),
        ("root-cause matches", _FK_CFR + ": SUM(IF(i.incident_id IS NULL, 0, 1)) / COUNT(DISTINCT deploy_id) "
                               "over every deployment's changes joined to incidents' root causes"),
    ),
    ProfileRule(
        "recovery", "failed deployment recovery time",
        ("earliest remedy", _DESIGN + ": rollback, next rollback/hotfix, or its incidents all resolved"),
        ("per incident, whole minutes toward zero",
         "DORADetails-FailedDeploymentRecoveryTime.json: one row per incident, TIMESTAMPDIFF(MINUTE, "
         "deployment_finished_date, incident_resolution_date) (MySQL: the whole minutes, sign put back after)"),
        ("incident resolution", "METRICS.md: time to restore of the deployment's incidents"),
    ),
    ProfileRule(
        "recovery_guard", "a failed deployment recovery span that ends before it starts",
        ("exclude", _DESIGN + ": the span guard"),
        ("keep", "DORADetails-FailedDeploymentRecoveryTime.json: percent_rank() over TIMESTAMPDIFF(MINUTE, "
                 "deployment_finished_date, incident_resolution_date), no filter on its sign"),
        ("keep", "no recovery metric; as its time to restore (span_guard)"),
    ),
    ProfileRule(
        "restore_window", "which incidents the time to restore of a window or period covers",
        ("opened", _DESIGN + ": incidents opened in it"),
        ("resolved", "DORADetails-TimetoRestoreService.json and DORA.json _incidents: "
                     "$__timeFilter(i.resolution_date) (its Incident Count panel: i.created_date)"),
        ("opened", "fourkeys_dashboard.json Median Time to Restore Services: WHERE time_created > ..."),
    ),
    ProfileRule(
        "restore_start", "when time to restore starts",
        ("opened", _DESIGN),
        ("opened", "incident lead_time_minutes: created_date -> resolution_date"),
        ("earlier of opened and cause deployment", "incidents.sql: time_created = LEAST(issue, root-cause deploy)"),
    ),
    ProfileRule(
        "restore_rounding", "unit of time to restore",
        ("exact", _DESIGN),
        ("whole minutes toward zero", "incident lead_time_minutes: uint(resolution.Sub(created).Minutes()) "
                                      "(github/tasks/issue_extractor.go; jira: uint(seconds) / 60)"),
        ("whole hours toward zero", _FK_RESTORE + ": TIMESTAMP_DIFF(time_resolved, time_created, HOUR), the whole "
                                    "number of hours, negative kept (" + _TRUNC + ")"),
    ),
    ProfileRule(
        "median", "median kind",
        ("interpolated", _DESIGN),
        ("lower", "grafana/dashboards/DORA.json: max(x) WHERE percent_rank <= 0.5"),
        ("interpolated", "PERCENTILE_CONT(..., 0.5)"),
    ),
    ProfileRule(
        "span_guard", "a span that ends before it starts (clock skew)",
        ("exclude", _DESIGN + ": out of aggregates, flagged in drill-downs, counted in a note"),
        ("drop", f"{_CALC} computeTimeSpan: minutes < 0 -> nil"),
        ("keep", _FK_RESTORE + ": TIMESTAMP_DIFF(time_resolved, time_created, HOUR), no filter "
                 "(lead time: lead_time_zero)"),
    ),
    ProfileRule(
        "frequency_bucket", "deployment frequency bucket",
        ("none", _DESIGN + ": deployments per week with a tier"),
        ("median deployment days per week, else per month",
         "DORA.json Deployment Frequency (2023 report): max(days_deployed) WHERE percent_rank <= 0.5 over "
         "Monday-start weeks (WEEKDAY) and months; elite >= 5 days a week, high >= 1, medium >= 1 a month, low"),
        ("daily/weekly/monthly/yearly",
         "METRICS.md / fourkeys_dashboard.json Deployment Frequency: PERCENTILE_CONT medians over the Sunday-start "
         "weeks (TIMESTAMP_TRUNC(day, WEEK)) of the last three months (DATE_SUB(CURRENT_DATE(), INTERVAL 3 MONTH), "
         "CURRENT_DATE() being the window's last day)"),
    ),
    ProfileRule(
        "stat_buckets", "the peer's verdicts on lead time, change failure rate and time to restore",
        ("none", _DESIGN + ": tiers of the DORA report (the benchmark year)"),
        ("none", "the dora profile's tiers"),
        ("lead time, failure rate, restore over the last three months",
         "fourkeys_dashboard.json 'Lead Time to Change Bucket', 'Change Failure Rate', 'Median Time to Restore "
         "Services': < 24 h One day, < 168 h One week, < 730 h One month, < 4380 h Six months, else One year; "
         "<= .15 0-15%, < .46 16-45%, else 46-60%"),
    ),
)  # fmt: skip

_BY_NAME = {rule.name: rule for rule in PROFILE_RULES}


def profile_rules(profile: str) -> dict[str, str]:
    """The choice of every rule in ``profile``.

    Parameters
    ----------
    profile : {"dora", "devlake", "fourkeys"}

    Returns
    -------
    dict
        Rule name -> choice.

    Raises
    ------
    InputError
        An unknown profile.
    """
    if profile not in PROFILES:
        raise InputError(f"profile must be one of {', '.join(PROFILES)}")
    return {rule.name: getattr(rule, profile)[0] for rule in PROFILE_RULES}


def profile_table() -> pd.DataFrame:
    """The profile table as a frame.

    Returns
    -------
    DataFrame
        ``rule, decides`` and per profile its choice and ``<profile>_source``.
    """
    rows = []
    for rule in PROFILE_RULES:
        row = {"rule": rule.name, "decides": rule.decides}
        for profile in PROFILES:
            row[profile], row[f"{profile}_source"] = getattr(rule, profile)
        rows.append(row)
    return pd.DataFrame(rows)


def profile_table_markdown() -> str:
    """The profile table as the README's Markdown table (choice, then its source in parentheses).

    Returns
    -------
    str
    """
    lines = ["| rule | decides | " + " | ".join(PROFILES) + " |", "|---|---|" + "---|" * len(PROFILES)]
    for rule in PROFILE_RULES:
        cells = [f"{value} ({source})" for value, source in (getattr(rule, p) for p in PROFILES)]
        lines.append(f"| `{rule.name}` | {rule.decides} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
