"""Definition diff: the same store under several DORA profiles, side by side, and why they disagree.

Users comparing tools get different numbers for the same metric and cannot see why
(apache/incubator-devlake#4989, #7220; dora-team/fourkeys#402). :class:`ProfileComparison`
puts each profile's summary side by side and lists, per deployment, pull request, change
and incident, the rule of the profile table (:data:`releaserisk.profiles.PROFILE_RULES`)
that makes the profiles disagree. The reasons are found in SQL over each result's own
working tables, so nothing is read that does not differ.

Reasons (``reason`` column, one row per entity and reason):

``deployments_counted``
    a production deployment that lists no change and names no ingested commit: a profile
    whose ``deployments_counted`` rule is ``traced to a commit`` has no such deployment.
``first_of_chain``
    a deployment with changes listed and no earlier successful deployment of its service
    and repository: a profile whose ``first_of_chain`` rule is ``none`` gives it no changes.
``failure_kind``
    failed by a rollback or a hotfix in a profile that counts them, not in one that counts
    incidents only (``failure``).
``incident_link``
    an incident linked to different deployments (``incident_link``), with each link method.
``lead_time_zero``
    a change whose lead time is under a minute: dropped where ``lead_time_zero`` is ``dropped``.
``undeployed_pr``
    a merged pull request without a production deployment: listed only where
    ``undeployed_prs`` is ``listed``.
``pr_deployment``
    a pull request deployed in one profile and not in another (merge commit only, a first
    deployment of a chain, or another repository's deployment).
``review_window``
    a pull request whose pickup differs because its first review came after the merge.
``change_deployments``
    a change listed by several production deployments: a profile whose
    ``change_deployments`` rule is ``every listing`` counts its lead time once per listing.
``failure_count``
    a failed deployment listing the root causes of several incidents: a profile whose
    ``failure_count`` rule is ``root-cause matches`` counts it once per incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from releaserisk.errors import InputError
from releaserisk.profiles import PROFILES
from releaserisk.store import Store

__all__ = ["COMPARED_METRICS", "METRIC_RULES", "ProfileComparison", "compare_results"]

#: Summary columns compared side by side.
COMPARED_METRICS = (
    "deployments",
    "deploys_per_week",
    "lead_time_median_hours",
    "lead_time_p90_hours",
    "change_failure_rate",
    "recovery_median_hours",
    "restore_median_hours",
    "rework_rate",
    "pr_cycle_median_hours",
)

_LEAD_RULES = ("lead_time_of", "change_deployments", "first_of_chain", "deployment_order", "rounding", "lead_time_zero",
               "span_guard", "pr_cycle", "pr_deployment", "pr_deployment_repo", "undeployed_prs")  # fmt: skip

#: The profile-table rules (:data:`releaserisk.profiles.PROFILE_RULES`) each compared metric rests on. Where
#: the profiles' values of a metric differ, the rules of its entry on which they choose differently are the
#: explanation at the metric's level: the per-row reasons cannot show a median kind or a rounding unit.
METRIC_RULES: dict[str, tuple[str, ...]] = {
    "deployments": ("deployments_counted",),
    "deploys_per_week": ("deployments_counted",),
    "lead_time_median_hours": (*_LEAD_RULES, "median"),
    "lead_time_p90_hours": _LEAD_RULES,
    "change_failure_rate": ("deployments_counted", "failure", "failure_count", "incident_link", "cause_match"),
    "recovery_median_hours": ("failure", "recovery", "recovery_guard", "incident_link", "cause_match", "median"),
    "restore_median_hours": (
        "restore_window",
        "restore_start",
        "restore_rounding",
        "span_guard",
        "incident_link",
        "cause_match",
        "median",
    ),
    "rework_rate": ("deployments_counted",),
    "pr_cycle_median_hours": (
        "pr_cycle",
        "pr_deployment",
        "pr_deployment_repo",
        "review_window",
        "undeployed_prs",
        "first_of_chain",
        "rounding",
        "span_guard",
        "median",
    ),
}


@dataclass
class ProfileComparison:
    """Several profiles' DORA metrics side by side and the per-row reasons they differ.

    Attributes
    ----------
    frame : DataFrame
        ``group, metric`` and one column per profile (the summary value), plus ``<profile>_n``.
    reasons : DataFrame
        ``entity`` (deployment, pull_request, change, incident), ``key`` (its id), ``reason``
        (a rule name, see the module docstring), ``detail`` (a sentence naming the profiles);
        the ``incident_link`` rows most-disagreeing first (the summary's example).
    profiles : list of str
    results : dict
        Profile -> its :class:`~releaserisk.dora.DoraResult` (drill-downs per profile).
    metric_rules : DataFrame
        Per metric where a profile shows another value or another n than the first (the reference):
        ``group, metric, profile, rule, choices`` — each rule of :data:`METRIC_RULES` on which that
        profile and the reference choose differently, ``choices`` naming both choices
        ("dora: interpolated; devlake: lower"), less the rules the window's rows show to have changed
        nothing (no change listed twice for ``change_deployments``, no rollback or hotfix for
        ``failure``: ``_inert_rules``).
    notes : dict
        Profile -> the notes of its result that not every compared profile has (why a number is
        no data in one profile and not in another).
    """

    frame: pd.DataFrame
    reasons: pd.DataFrame
    profiles: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    metric_rules: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_METRIC_RULE_COLUMNS))
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def rules(self) -> dict[str, dict[str, str]]:
        """Profile -> its rule choices (:func:`releaserisk.profiles.profile_rules`)."""
        from releaserisk.profiles import profile_rules

        return {p: profile_rules(p) for p in self.profiles}

    def summary(self) -> str:
        """The side-by-side table and the count of rows per reason, with an example each.

        Returns
        -------
        str
        """
        lines = [f"profiles compared: {', '.join(self.profiles)}"]
        header = f"  {'metric':<26}" + "".join(f"{p:>22}" for p in self.profiles)
        reference = self.profiles[0] if self.profiles else ""
        by_profile = self.metric_rules.groupby(["group", "metric", "profile"], sort=False)["rule"].agg(", ".join)
        for group, rows in self.frame.groupby("group", sort=False):
            lines.append(f"  {group}")
            lines.append(header)
            for _, row in rows.iterrows():
                cells = "".join(f"{_cell(row, p):>22}" for p in self.profiles)
                lines.append(f"  {row['metric']:<26}{cells}")
            mine = by_profile[by_profile.index.get_level_values(0) == group].reset_index()
            for metric, rows_of in mine.groupby("metric", sort=False):
                why = "; ".join(f"{r.profile} by {r.rule}" for r in rows_of.itertuples())
                lines.append(f"    {metric} differs from {reference}: {why}")
        for rule in dict.fromkeys(self.metric_rules["rule"]):
            lines.append(f"  rule {rule}: " + "; ".join(f"{p} {self.rules[p][rule]}" for p in self.profiles))
        for profile, notes in self.notes.items():
            lines.extend(f"  {profile} only: {note}" for note in notes)
        if self.reasons.empty:
            lines.append("  no row is treated differently")
        for reason, rows in self.reasons.groupby("reason", sort=False):
            first = rows.iloc[0]
            lines.append(f"  {reason}: {len(rows):,} {first['entity']}(s), e.g. {first['key']}: {first['detail']}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe side-by-side table and reasons (no NaN).

        Returns
        -------
        dict
            ``profiles, summary, reasons``.
        """
        from releaserisk.dora import _records

        return {"profiles": list(self.profiles), "summary": _records(self.frame), "reasons": _records(self.reasons),
                "metric_rules": _records(self.metric_rules), "notes": self.notes}  # fmt: skip


def _fmt(value, metric: str = "") -> str:
    """A cell in its metric's unit: rates in %, hours and counts with thousands separators."""
    if value is None or pd.isna(value):
        return "no data"
    if not isinstance(value, float):
        return f"{value:,}" if isinstance(value, int) else str(value)
    if metric == "deployments":
        return f"{value:,.0f}"
    if metric == "deploys_per_week":  # in its unit, with the digits the summary gives it
        from releaserisk.dora import _per_week

        return f"{_per_week(value)}/week"
    if metric.endswith("_rate"):
        return f"{value * 100:.1f} %"
    if metric.endswith("_hours"):
        return f"{value:,.1f} h"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


_METRIC_RULE_COLUMNS = ["group", "metric", "profile", "rule", "choices"]


def _cell(row: pd.Series, profile: str) -> str:
    """A side-by-side cell: the value in its unit and, beside a rate or a median, the n it rests on."""
    shown = _fmt(row[profile], row["metric"])
    n = row.get(f"{profile}_n")
    if row["metric"] == "deployments" or n is None or pd.isna(n):
        return shown
    return f"{shown} (n {int(n):,})"


def _metric_rules(frame: pd.DataFrame, rules: dict[str, dict[str, str]], inert: frozenset[str] = frozenset()
                  ) -> pd.DataFrame:  # fmt: skip
    """For each (group, metric) where a profile shows another value or another n than the reference (the first
    profile), the rules of :data:`METRIC_RULES` on which that profile and the reference choose differently, less
    the ``inert`` ones (rules the window's rows show to have changed nothing, :func:`_inert_rules`)."""
    reference, *others = list(rules)
    rows = []
    for record in frame.to_dict("records"):
        metric = record["metric"]
        for other in others:
            if _cell(record, other) == _cell(record, reference):
                continue
            candidates = tuple(r for r in METRIC_RULES.get(metric, ()) if r not in inert)
            if "lead_time_of" in candidates and rules[other]["lead_time_of"] != rules[reference]["lead_time_of"]:
                # per commit in one profile, per pull request in the other: they measure different
                # things, and the rules of each kind's unit say nothing more
                candidates = tuple(r for r in candidates if r in ("lead_time_of", "median"))
            if metric == "restore_median_hours" and not any("cause" in rules[p]["restore_start"]
                                                            for p in (reference, other)):  # fmt: skip
                # an incident's time to restore reads its link only where it starts at the cause deployment
                # (fourkeys); from the opening in both profiles, the link changes no restore time
                candidates = tuple(r for r in candidates if r not in ("incident_link", "cause_match"))
            for rule in candidates:
                if rules[other][rule] != rules[reference][rule]:
                    choices = f"{reference}: {rules[reference][rule]}; {other}: {rules[other][rule]}"
                    rows.append((record["group"], metric, other, rule, choices))
    return pd.DataFrame(rows, columns=_METRIC_RULE_COLUMNS)


def _own_notes(results: dict[str, Any]) -> dict[str, list[str]]:
    """Each profile's notes that not every compared profile has (empty lists left out)."""
    shared = set.intersection(*(set(r.notes) for r in results.values()))
    own = {p: [n for n in r.notes if n not in shared] for p, r in results.items()}
    return {p: notes for p, notes in own.items() if notes}


def _side_by_side(results: dict[str, Any]) -> pd.DataFrame:
    frames = []
    for profile, result in results.items():
        long = result.frame.melt(id_vars="group", value_vars=list(COMPARED_METRICS), var_name="metric")
        long = long.rename(columns={"value": profile})
        ns = {m: f"{m}_n" for m in COMPARED_METRICS if f"{m}_n" in result.frame}
        counts = result.frame.melt(id_vars="group", value_vars=list(ns.values()), var_name="metric")
        counts["metric"] = counts["metric"].str.removesuffix("_n")
        long = long.merge(counts.rename(columns={"value": f"{profile}_n"}), on=["group", "metric"], how="left")
        frames.append(long.set_index(["group", "metric"]))
    return pd.concat(frames, axis=1).reset_index()


def _reason_queries(works: dict[str, Any], rules: dict[str, dict[str, str]]) -> list[str]:
    """One SQL per reason that applies to these profiles, each giving ``entity, key, reason, detail``."""
    queries = []
    profiles = list(works)
    every, traced = _split(rules, "deployments_counted", "every")
    if every and traced:
        queries.append(f"""
            SELECT 'deployment', a.deployment_id, 'deployments_counted',
                   'lists no change and names no ingested commit: {", ".join(traced)} leave'
                   || CASE WHEN {len(traced)} = 1 THEN 's' ELSE '' END || ' it out (Four Keys knows a deployment '
                   || 'by the push of its commit), {", ".join(every)} count it'
            FROM {works[every[0]].prod} a
            WHERE a.deployment_id NOT IN (SELECT deployment_id FROM {works[traced[0]].prod})
              AND a.finished_at >= $start AND a.finished_at < $end""")
    none = [p for p in profiles if rules[p]["first_of_chain"] == "none"]
    linked = [p for p in profiles if rules[p]["first_of_chain"] != "none"]
    if none and linked:
        w = works[none[0]]
        queries.append(f"""
            SELECT 'deployment' AS entity, p.deployment_id AS key, 'first_of_chain' AS reason,
                   'first deployment of its chain: {", ".join(none)} give' || CASE WHEN {len(none)} = 1 THEN 's'
                   ELSE '' END || ' it no changes (' || count(*) || ' listed), {", ".join(linked)} keep them'
                   AS detail
            FROM {w.prod} p JOIN deployment_changes dc USING (deployment_id)
            WHERE p.first_of_chain AND p.finished_at >= $start AND p.finished_at < $end
            GROUP BY p.deployment_id""")
    broad = [p for p in profiles if "rollback" in rules[p]["failure"]]
    narrow = [p for p in profiles if "rollback" not in rules[p]["failure"]]
    if broad and narrow:
        w, n = works[broad[0]], works[narrow[0]]
        queries.append(f"""
            SELECT 'deployment', b.deployment_id, 'failure_kind',
                   b.failure_reason || ': a change failure in {", ".join(broad)}, not in {", ".join(narrow)} '
                   || '(incidents only)'
            FROM {w.deploys} b JOIN {n.deploys} n USING (deployment_id)
            WHERE b.failed AND NOT n.failed AND b.failure_reason <> 'incident'
              AND b.finished_at >= $start AND b.finished_at < $end""")
    if len(profiles) > 1:
        first = profiles[0]
        columns = ", ".join(f"{p}.deployment_id AS {p}_dep, {p}.link_method AS {p}_how" for p in profiles)
        joins = " ".join(f"JOIN {works[p].incident_links} {p} USING (incident_id)" for p in profiles[1:])
        differs = " OR ".join(f"{p}.deployment_id IS DISTINCT FROM {first}.deployment_id" for p in profiles[1:])
        parts = " || ', ' || ".join(
            f"'{p}: ' || coalesce({p}_dep, 'no deployment') || ' by ' || replace({p}_how, '_', ' ')" for p in profiles
        )
        queries.append(f"""
            SELECT 'incident', incident_id, 'incident_link', 'linked differently: ' || {parts}
            FROM (SELECT {first}.incident_id, {first}.opened_at, {columns}
                  FROM {works[first].incident_links} {first} {joins} WHERE {differs})
            WHERE opened_at >= $start AND opened_at < $end""")
    dropping = [p for p in profiles if rules[p]["lead_time_zero"] == "dropped"]
    keeping = [p for p in profiles if rules[p]["lead_time_zero"] != "dropped" and rules[p]["lead_time_of"] == "commit"]
    if dropping and keeping:
        w = works[keeping[0]]
        queries.append(f"""
            SELECT 'change', repo || ':' || sha, 'lead_time_zero',
                   'lead time under a minute: {", ".join(dropping)} drop it, {", ".join(keeping)} count it'
            FROM {w.changes}
            WHERE lead_time_hours >= 0 AND lead_time_hours < 1 / 60 AND deployed_at >= $start AND deployed_at < $end""")
    listing = [p for p in profiles if rules[p]["undeployed_prs"] == "listed"]
    leaving = [p for p in profiles if rules[p]["undeployed_prs"] != "listed"]
    if listing and leaving:
        w, other = works[listing[0]], works[leaving[0]]
        queries.append(f"""
            SELECT 'pull_request', a.repo || '#' || a.number, 'undeployed_pr',
                   'merged, not deployed: listed in {", ".join(listing)}, not in {", ".join(leaving)}'
            FROM {w.prs} a JOIN {other.prs} b USING (repo, number)
            WHERE a.deployment_id IS NULL AND b.deployment_id IS NULL
              AND a.merged_at >= $start AND a.merged_at < $end""")
    if len(profiles) > 1:
        first = profiles[0]
        for other in profiles[1:]:
            a, b = works[first], works[other]
            queries.append(f"""
                SELECT 'pull_request', a.repo || '#' || a.number, 'pr_deployment',
                       'deployed by ' || coalesce(a.deployment_id, 'nothing') || ' in {first}, by '
                       || coalesce(b.deployment_id, 'nothing') || ' in {other}'
                       || CASE WHEN fc.deployment_id IS NOT NULL THEN ' (first deployment of its chain)'
                               WHEN dr.repo <> a.repo THEN ' (a deployment of repository ' || dr.repo || ')'
                               ELSE ' (merge commit or PR commits)' END
                FROM {a.prs} a JOIN {b.prs} b USING (repo, number)
                LEFT JOIN (SELECT deployment_id FROM {a.prod} WHERE first_of_chain) fc
                  ON fc.deployment_id = coalesce(a.deployment_id, b.deployment_id)
                LEFT JOIN {a.prod} dr ON dr.deployment_id = coalesce(a.deployment_id, b.deployment_id)
                WHERE a.deployment_id IS DISTINCT FROM b.deployment_id
                  AND coalesce(a.deployed_at, b.deployed_at) >= $start
                  AND coalesce(a.deployed_at, b.deployed_at) < $end""")
            if rules[first]["review_window"] != rules[other]["review_window"]:
                queries.append(f"""
                    SELECT 'pull_request', a.repo || '#' || a.number, 'review_window',
                           'first review after the merge: pickup in '
                           || CASE WHEN a.pickup_minutes IS NULL THEN '{other}' ELSE '{first}' END
                           || ' only ({first}: review {rules[first]["review_window"]}, {other}: '
                           || '{rules[other]["review_window"]})'
                    FROM {a.prs} a JOIN {b.prs} b USING (repo, number)
                    WHERE (a.pickup_minutes IS NULL) <> (b.pickup_minutes IS NULL)
                      AND a.listed_at >= $start AND a.listed_at < $end""")
    queries += _counting_reasons(works, rules)
    return queries


def _split(rules: dict[str, dict[str, str]], rule: str, value: str) -> tuple[list[str], list[str]]:
    """The profiles whose ``rule`` is ``value``, and the others."""
    return [p for p in rules if rules[p][rule] == value], [p for p in rules if rules[p][rule] != value]


def _counting_reasons(works: dict[str, Any], rules: dict[str, dict[str, str]]) -> list[str]:
    """Reasons for rows one profile counts several times: listed changes, matched root causes."""
    queries = []
    every, first = _split(rules, "change_deployments", "every listing")
    if every and first:
        queries.append(f"""
            SELECT 'change', repo || ':' || sha, 'change_deployments',
                   'listed by ' || count(*) || ' production deployments: {", ".join(every)} count its lead time '
                   || count(*) || ' times, {", ".join(first)} once (its first deployment)'
            FROM {works[every[0]].changes}
            WHERE deployed_at >= $start AND deployed_at < $end
            GROUP BY repo, sha HAVING count(*) > 1""")
    matching, once = _split(rules, "failure_count", "root-cause matches")
    if matching and once:
        queries.append(f"""
            SELECT 'deployment', deployment_id, 'failure_count',
                   'lists the root causes of ' || incidents || ' incidents: {", ".join(matching)} count it '
                   || incidents || ' times in the change failure rate, {", ".join(once)} once'
            FROM {works[matching[0]].deploys}
            WHERE failed AND incidents > 1 AND finished_at >= $start AND finished_at < $end""")
    return queries


#: Rules whose every effect on a metric is one of a per-row reason's rows (the reason's query reads the window's
#: rows the metric reads): where the reason finds no row, the rule changed nothing in this window.
_RULE_REASONS = {
    "deployments_counted": "deployments_counted",
    "first_of_chain": "first_of_chain",
    "lead_time_zero": "lead_time_zero",
    "undeployed_prs": "undeployed_pr",
    "review_window": "review_window",
    "change_deployments": "change_deployments",
    "failure_count": "failure_count",
}


def _inert_rules(store: Store, works: dict[str, Any], rules: dict[str, dict[str, str]], reasons: pd.DataFrame,
                 start, end) -> frozenset[str]:  # fmt: skip
    """The rules the window's rows show to have changed no compared number, left out of the metric-level reasons.

    A rule the profiles choose differently explains a difference only where some row is treated by it: with no
    change listed twice, ``change_deployments`` cannot be why two lead times differ, and with no deployment
    rolled back or followed by a hotfix, ``failure`` cannot be why two failure rates differ. Rules without such
    a row test (a median kind, a rounding unit, the incident link) are never left out.
    """
    found = set(reasons["reason"])
    inert = {rule for rule, reason in _RULE_REASONS.items() if reason not in found}
    broad = [p for p in works if "rollback" in rules[p]["failure"]]
    if broad:
        remedied = store.query(
            f"""SELECT count(*) AS n FROM {works[broad[0]].deploys}
                WHERE (coalesce(rolled_back, false) OR coalesce(hotfixed, false))
                  AND finished_at >= $start AND finished_at < $end""",
            {"start": start, "end": end},
        )["n"].iloc[0]
        if not remedied:
            inert.add("failure")
    return frozenset(inert)


def _by_disagreement(store: Store, works: dict[str, Any], reasons: pd.DataFrame) -> pd.DataFrame:
    """``reasons`` with the ``incident_link`` rows ordered by how many profiles link the incident to another
    deployment than the reference does, most first: the summary's example is then one that shows why the
    failure rates differ, not an incident only one profile leaves unlinked."""
    rows = reasons["reason"] == "incident_link"
    if not rows.any():
        return reasons
    first, *others = list(works)
    differing = " + ".join(
        f"CASE WHEN {p}.deployment_id IS DISTINCT FROM {first}.deployment_id THEN 1 ELSE 0 END" for p in others
    )
    joins = " ".join(f"JOIN {works[p].incident_links} {p} USING (incident_id)" for p in others)
    weights = store.query(
        f"SELECT {first}.incident_id AS key, {differing} AS profiles FROM {works[first].incident_links} {first} {joins}"
    ).set_index("key")["profiles"]
    links = reasons[rows].copy()
    links["_w"] = links["key"].map(weights).fillna(0)
    links = links.sort_values(["_w", "key"], ascending=[False, True], kind="stable").drop(columns="_w")
    return pd.concat([reasons[~rows], links]).sort_values("reason", kind="stable").reset_index(drop=True)


def compare_results(store: Store, results: dict[str, Any]) -> ProfileComparison:
    """Compare :class:`~releaserisk.dora.DoraResult` objects of the same window, one per profile.

    Parameters
    ----------
    store : Store
        The store the results were computed on (their working tables live there).
    results : dict
        Profile name -> result, the first being the reference.

    Returns
    -------
    ProfileComparison

    Raises
    ------
    InputError
        Fewer than two profiles, an unknown one, or results over different windows.
    """
    profiles = list(results)
    if len(profiles) < 2 or any(p not in PROFILES for p in profiles):
        raise InputError(f"compare at least two of {', '.join(PROFILES)}")
    windows = {tuple(r.window) for r in results.values()}
    if len(windows) != 1:
        raise InputError("compared results must cover the same window")
    start, end = windows.pop()
    works = {p: r._work for p, r in results.items()}
    queries = _reason_queries(works, {p: r.rules for p, r in results.items()})
    sql = " UNION ALL ".join(f"SELECT * FROM ({q}) AS t(entity, key, reason, detail)" for q in queries)
    reasons = (
        store.query(f"SELECT * FROM ({sql}) ORDER BY reason, entity, key", {"start": start, "end": end})
        if queries
        else pd.DataFrame(columns=["entity", "key", "reason", "detail"])
    )
    reasons.columns = ["entity", "key", "reason", "detail"]
    rules = {p: r.rules for p, r in results.items()}
    inert = _inert_rules(store, works, rules, reasons, start, end)
    reasons = _by_disagreement(store, works, reasons)
    frame = _side_by_side(results)
    return ProfileComparison(
        frame=frame,
        reasons=reasons,
        profiles=profiles,
        results=results,
        metric_rules=_metric_rules(frame, rules, inert),
        notes=_own_notes(results),
    )
