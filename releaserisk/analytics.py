"""Release-process analytics: where the release process hurts, as DataFrames.

Built on the DORA deployment rows (failure attribution is defined once, in
:mod:`releaserisk.dora`) and the raw ``deployments`` table, aggregated in DuckDB:

* :meth:`ReleaseAnalytics.failure_by_batch_size` — change failure rate per batch-size
  bucket with Wilson 95 % intervals, and a logistic fit of failure on log2 batch size;
* :meth:`ReleaseAnalytics.rollbacks` — per service: rollbacks, their success, hours from
  the failed deployment to its rollback, days since the last rollback (services that
  never rolled back included);
* :meth:`ReleaseAnalytics.hotfixes` — hotfix share, failure rate of hotfixes vs regular
  deployments, and how often hotfixes skipped a stage;
* :meth:`ReleaseAnalytics.stage_promotion` — hours from each environment to the next
  along ``Settings.environment_order``, skipped stages, failed deployments per stage;
* :meth:`ReleaseAnalytics.environment_lag` — per week, service and pre-production
  stage, how far the stage runs ahead of production (commits and hours, promotion waits);
* :meth:`ReleaseAnalytics.frequency_vs_failure` — deployments and change failure rate
  per week.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from releaserisk.config import Settings
from releaserisk.definitions import (
    guarded,
    in_production_environment,
    is_clock_skew,
    pre_production_stages,
    production_deployment,
    production_environments,
    span_hours,
)
from releaserisk.dora import DoraResult, _records, dora_metrics
from releaserisk.intervals import wilson_interval
from releaserisk.store import Store

__all__ = ["MIN_FIT_OUTCOMES", "ReleaseAnalytics", "no_fit_sentence", "release_analytics", "wilson_interval"]

_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

#: Fewest failed and fewest successful deployments for the batch-size logistic fit: ten
#: events per variable (Peduzzi et al. 1996, J Clin Epidemiol 49:1373), the fit having one.
MIN_FIT_OUTCOMES = 10


def no_fit_sentence(failed: int, succeeded: int) -> str:
    """Why the batch-size chart and table show no logistic fit, in one sentence.

    Parameters
    ----------
    failed, succeeded : int
        Deployments (that shipped changes) which failed and which did not.

    Returns
    -------
    str
    """
    return (
        f"No logistic fit: {failed:,} failed and {succeeded:,} successful deployments; a fit needs at least "
        f"{MIN_FIT_OUTCOMES} of each."
    )


@dataclass
class ReleaseAnalytics:
    """Release-process findings over one window (see the module docstring)."""

    store: Store
    dora: DoraResult
    settings: Settings

    def _deployments(self) -> pd.DataFrame:
        """Production deployments of the window with their batch size (changes shipped)."""
        deploys = self.dora.deployments
        sizes = self.store.query(
            "SELECT deployment_id, count(*) AS batch_size FROM deployment_changes GROUP BY deployment_id"
        )
        frame = deploys.merge(sizes, on="deployment_id", how="left")
        frame["batch_size"] = frame["batch_size"].fillna(0).astype(int)
        return frame

    def failure_by_batch_size(self) -> pd.DataFrame:
        """Failure rate per batch-size bucket, Wilson intervals and a logistic fit.

        Columns: ``bucket, min_size, deployments, failures, failure_rate, ci_low, ci_high,
        fitted_rate``. Deployments that shipped nothing (first of a chain, rollbacks) are
        left out. ``fitted_rate`` is a logistic regression of failure on log2 batch size,
        evaluated at each bucket's median size; NaN unless at least :data:`MIN_FIT_OUTCOMES`
        deployments failed and as many did not (then ``attrs["fit_note"]`` says why): four
        deployments separated perfectly gave a "fit" of 100 % and 0 %.
        """
        frame = self._deployments()
        frame = frame[frame["batch_size"] > 0]
        edges = [*_BUCKETS, math.inf]
        labels = [f"{lo}" if hi == lo + 1 else (f"{lo}+" if hi == math.inf else f"{lo}-{hi - 1}")
                  for lo, hi in pairwise(edges)]  # fmt: skip
        frame = frame.assign(bucket=pd.cut(frame["batch_size"], bins=edges, right=False, labels=labels))
        grouped = frame.groupby("bucket", observed=False).agg(
            deployments=("failed", "size"), failures=("failed", "sum"), median_size=("batch_size", "median")
        )
        grouped["failures"] = grouped["failures"].astype(int)
        grouped["failure_rate"] = (grouped["failures"] / grouped["deployments"]).where(grouped["deployments"] > 0)
        grouped["ci_low"], grouped["ci_high"] = wilson_interval(grouped["failures"], grouped["deployments"])
        grouped["fitted_rate"] = np.nan
        failed = int(frame["failed"].fillna(False).astype(bool).sum())
        fit_ok = min(failed, len(frame) - failed) >= MIN_FIT_OUTCOMES
        if not fit_ok and frame["failed"].notna().any():
            grouped.attrs["fit_note"] = no_fit_sentence(failed, len(frame) - failed)
        if fit_ok:
            from sklearn.linear_model import LogisticRegression

            x = np.log2(frame["batch_size"].to_numpy(float))[:, None]
            fit = LogisticRegression(C=1e6).fit(x, frame["failed"].astype(int))
            present = grouped["median_size"].notna()
            grouped.loc[present, "fitted_rate"] = fit.predict_proba(
                np.log2(grouped.loc[present, "median_size"].to_numpy(float))[:, None]
            )[:, 1]
            grouped.attrs["log2_size_coefficient"] = float(fit.coef_[0][0])
        grouped.insert(0, "min_size", _BUCKETS)
        return self._without_evidence(grouped.reset_index(), ["failures", "failure_rate", "ci_low", "ci_high"])

    def rollbacks(self) -> pd.DataFrame:
        """Per service deploying to production in the window: rollbacks, successful ones, hours
        from the failed deployment to its rollback, and days since its last successful rollback.

        Services that never rolled back are listed too (0 rollbacks; ``days_since_last_rollback``
        missing): an untried rollback path is a finding. ``days_since_last_rollback`` looks back
        over all history, not just the window. Empty when the store records no rollback at all
        (deployments from tags cannot show one), rather than 0 everywhere.
        """
        start, end = self.dora.window
        params = {"prod": production_environments(self.settings), "start": start, "end": end}
        if not self.store.execute(
            f"SELECT count(*) FROM deployments WHERE kind = 'rollback' AND {in_production_environment()}",
            {"prod": params["prod"]},
        ).fetchone()[0]:
            return pd.DataFrame(columns=["service", "rollbacks", "succeeded", "success_rate",
                                         "median_hours_to_rollback", "max_hours_to_rollback",
                                         "days_since_last_rollback"])  # fmt: skip
        hours = span_hours("f.finished_at", "r.finished_at")
        frame = self.store.query(
            f"""
            WITH prod AS (
                SELECT * FROM deployments WHERE {in_production_environment()} AND finished_at < $end
            ),
            services AS (SELECT DISTINCT service FROM prod WHERE finished_at >= $start),
            r AS (  -- a rollback recorded before the deployment it reverts finished is clock skew
                SELECT r.service, r.status, {guarded(hours)} AS hours_after_failure,
                       coalesce({is_clock_skew(hours)}, false) AS clock_skew
                FROM prod r LEFT JOIN deployments f ON f.deployment_id = r.reverts_deployment_id
                WHERE r.kind = 'rollback' AND r.finished_at >= $start
            ),
            last AS (
                SELECT service, max(finished_at) AS at FROM prod
                WHERE kind = 'rollback' AND status = 'success' GROUP BY service
            )
            SELECT s.service, count(r.service) AS rollbacks, count(*) FILTER (r.status = 'success') AS succeeded,
                   succeeded / nullif(rollbacks, 0) AS success_rate,
                   median(hours_after_failure) AS median_hours_to_rollback,
                   max(hours_after_failure) AS max_hours_to_rollback,
                   date_diff('second', any_value(last.at), $end) / 86400.0 AS days_since_last_rollback,
                   count(*) FILTER (r.clock_skew) AS clock_skew
            FROM services s LEFT JOIN r USING (service) LEFT JOIN last USING (service)
            GROUP BY s.service ORDER BY s.service
            """,
            params,
        )
        skewed = int(frame.pop("clock_skew").sum())
        if skewed:
            frame.attrs["note"] = (
                f"{skewed:,} rollback{'s' if skewed > 1 else ''} finished before the deployment "
                f"{'they revert' if skewed > 1 else 'it reverts'} left out of the hours (clock skew)"
            )
        return frame

    def _pre_production(self) -> list[str]:
        """The pre-production stages (:func:`releaserisk.definitions.pre_production_stages`)."""
        return pre_production_stages(self.settings)

    def _skipped_stages(self) -> pd.DataFrame:
        """Per production deployment of the window and pre-production stage its service uses:
        whether the sha had not reached that stage (successfully) by the time it reached production.

        A service that never deploys to a stage cannot skip it: it has no row for that stage,
        rather than counting as skipping it every time.
        """
        start, end = self.dora.window
        return self.store.query(
            f"""
            WITH prod AS (
                SELECT deployment_id, service, sha, finished_at FROM deployments
                WHERE {production_deployment()} AND finished_at >= $start AND finished_at < $end
            ),
            reached AS (
                SELECT service, sha, lower(environment) AS environment, min(finished_at) AS at FROM deployments
                WHERE status = 'success' AND list_contains($pre, lower(environment)) GROUP BY ALL
            ),
            used AS (SELECT DISTINCT service, environment FROM reached)
            SELECT p.deployment_id, u.environment, r.at IS NULL OR r.at > p.finished_at AS skipped
            FROM prod p JOIN used u USING (service)
            LEFT JOIN reached r ON r.service = p.service AND r.sha = p.sha AND r.environment = u.environment
            """,
            {"prod": production_environments(self.settings), "pre": self._pre_production(),
             "start": start, "end": end},
        )  # fmt: skip

    def hotfixes(self) -> pd.DataFrame:
        """Hotfix vs regular production deployments: share, failure rate, stages skipped.

        ``skipped_stage_rate`` is the share of deployments that skipped at least one
        pre-production stage their service uses, and ``skipped_<stage>_rate`` the share
        that skipped that stage, among deployments of services that use it (NaN when none do).
        """
        frame = self._deployments()
        skipped = self._skipped_stages().pivot_table(
            index="deployment_id", columns="environment", values="skipped", aggfunc="first"
        )
        stages = [env for env in self._pre_production() if env in skipped.columns]
        skipped = skipped.reindex(columns=stages).astype(float)
        skipped["any"] = skipped.max(axis=1, skipna=True)
        frame = frame.merge(skipped, left_on="deployment_id", right_index=True, how="left")
        rows = []
        for kind in ("regular", "hotfix", "rollback"):
            part = frame[frame["kind"] == kind]
            low, high = wilson_interval([part["failed"].sum()], [len(part)])
            rows.append({
                "kind": kind, "deployments": len(part), "share": len(part) / len(frame) if len(frame) else np.nan,
                "failures": int(part["failed"].sum()),
                "failure_rate": part["failed"].mean() if len(part) else np.nan,
                "ci_low": low[0], "ci_high": high[0],
                "skipped_stage_rate": part["any"].mean(),
                **{f"skipped_{stage}_rate": part[stage].mean() for stage in stages},
            })  # fmt: skip
        return self._without_evidence(pd.DataFrame(rows), ["failures", "failure_rate", "ci_low", "ci_high"])

    def _without_evidence(self, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """Failure columns as missing when the store has no source of failures (not 0 %)."""
        if not self.dora.failures_tracked:
            frame[columns] = np.nan
            frame.attrs["note"] = self.dora.notes[0]
        return frame

    def stage_promotion(self) -> pd.DataFrame:
        """Hours from each environment to the next per (service, sha), summarised per stage pair.

        ``skipped`` counts shas that reached the next stage without reaching this one first,
        among services that deploy to this stage at all; ``failed_deployments`` counts the
        next stage's failed deployments in the window.
        """
        order = list(self.settings.environment_order)
        start, end = self.dora.window
        firsts = self.store.query(
            """
            SELECT service, sha, lower(environment) AS environment,
                   min(finished_at) FILTER (status = 'success') AS reached,
                   count(*) FILTER (status <> 'success' AND finished_at >= $start AND finished_at < $end) AS failed
            FROM deployments WHERE list_contains($order, lower(environment))
            GROUP BY ALL
            """,
            {"order": order, "start": start, "end": end},
        )
        wide = firsts.pivot_table(index=["service", "sha"], columns="environment", values="reached", aggfunc="first")
        last = order[-1]
        if last not in wide:
            return pd.DataFrame(columns=["from_env", "to_env", "promotions", "median_hours", "p90_hours",
                                         "skipped", "failed_deployments"])  # fmt: skip
        wide = wide[(wide[last] >= start) & (wide[last] < end)]
        failures = firsts.groupby("environment")["failed"].sum()
        rows = []
        services = wide.index.get_level_values("service")
        for a, b in pairwise(order):
            if a not in wide or b not in wide:
                continue
            # a sha that reached a only after b was not promoted from a: it skipped a
            promoted = wide[a] <= wide[b]
            hours = (wide[b] - wide[a]).where(promoted).dt.total_seconds() / 3600.0
            # only services that deploy to a at all can skip it
            uses_a = services.isin(services[wide[a].notna()])
            rows.append({
                "from_env": a, "to_env": b, "promotions": int(promoted.sum()),
                "median_hours": float(hours.median()) if promoted.any() else np.nan,
                "p90_hours": float(hours.quantile(0.9)) if promoted.any() else np.nan,
                "skipped": int((wide[b].notna() & uses_a & ~promoted).sum()),
                "failed_deployments": int(failures.get(b, 0)),
            })  # fmt: skip
        return pd.DataFrame(rows)

    def environment_lag(self) -> pd.DataFrame:
        """Per ISO week, service and pre-production stage it uses: how far the stage runs ahead
        of production.

        Columns: ``week`` (Monday, UTC), ``service``, ``environment``; at the week's end (or
        the window's), ``commits_ahead`` — commits deployed to the stage and not yet to
        production — and ``hours_ahead`` — how long the oldest of them has waited (0 when none
        waits); of the shas first deployed to the stage that week, ``stage_deployments``,
        ``median_promotion_hours`` until production had them, and ``never_promoted`` (not in
        production by the window's end). Commits come from ``deployment_changes``; a commit
        abandoned in a stage (a reset branch) stays ahead until production ships it.
        """
        stages = self._pre_production()
        if not stages:
            return pd.DataFrame()
        start, end = self.dora.window
        return self.store.query(
            f"""
            WITH weeks AS (
                SELECT week, least(week + INTERVAL 7 DAY, $end) AS week_end
                FROM (SELECT unnest(generate_series(date_trunc('week', $start::TIMESTAMPTZ AT TIME ZONE 'UTC'),
                                                   ($end::TIMESTAMPTZ AT TIME ZONE 'UTC') - INTERVAL 1 MICROSECOND,
                                                   INTERVAL 7 DAY)) AT TIME ZONE 'UTC' AS week)
            ),
            stage_services AS (
                SELECT DISTINCT service, lower(environment) AS environment FROM deployments
                WHERE list_contains($stages, lower(environment)) AND status = 'success'
            ),
            first_in AS (  -- when each commit first reached each stage, and production
                SELECT d.service, dc.repo, dc.sha,
                       CASE WHEN {in_production_environment("d")} THEN NULL
                            ELSE lower(d.environment) END AS environment,
                       min(d.finished_at) AS first_at
                FROM deployment_changes dc JOIN deployments d USING (deployment_id)
                WHERE d.status = 'success' AND (list_contains($stages, lower(d.environment))
                                                OR {in_production_environment("d")})
                GROUP BY ALL
            ),
            commits AS (
                SELECT s.service, s.environment, s.first_at AS staged_at, p.first_at AS shipped_at
                FROM first_in s LEFT JOIN first_in p
                  ON p.environment IS NULL AND p.service = s.service AND p.repo = s.repo AND p.sha = s.sha
                WHERE s.environment IS NOT NULL
            ),
            ahead AS (
                SELECT w.week, c.service, c.environment, count(*) AS commits_ahead,
                       date_diff('second', min(c.staged_at), any_value(w.week_end)) / 3600.0 AS hours_ahead
                FROM weeks w JOIN commits c
                  ON c.staged_at < w.week_end AND (c.shipped_at IS NULL OR c.shipped_at >= w.week_end)
                GROUP BY ALL
            ),
            shipped AS (
                SELECT service, sha, min(finished_at) AS shipped_at FROM deployments
                WHERE {production_deployment()} GROUP BY ALL
            ),
            shas AS (
                SELECT d.service, lower(d.environment) AS environment, d.sha, min(d.finished_at) AS staged_at,
                       any_value(p.shipped_at) AS shipped_at
                FROM deployments d LEFT JOIN shipped p USING (service, sha)
                WHERE d.status = 'success' AND list_contains($stages, lower(d.environment)) GROUP BY ALL
            ),
            promoted AS (
                SELECT date_trunc('week', staged_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS week, service,
                       environment, count(*) AS stage_deployments,
                       median(date_diff('second', staged_at, shipped_at) / 3600.0)
                         FILTER (shipped_at >= staged_at) AS median_promotion_hours,
                       count(*) FILTER (shipped_at IS NULL OR shipped_at >= $end) AS never_promoted
                FROM shas WHERE staged_at >= $start AND staged_at < $end GROUP BY ALL
            )
            SELECT w.week, s.service, s.environment, coalesce(a.commits_ahead, 0) AS commits_ahead,
                   coalesce(a.hours_ahead, 0) AS hours_ahead,
                   coalesce(p.stage_deployments, 0) AS stage_deployments,
                   p.median_promotion_hours, coalesce(p.never_promoted, 0) AS never_promoted
            FROM weeks w CROSS JOIN stage_services s
            LEFT JOIN ahead a USING (week, service, environment)
            LEFT JOIN promoted p USING (week, service, environment)
            ORDER BY w.week, s.service, list_position($stages, s.environment)
            """,
            {"stages": stages, "prod": production_environments(self.settings), "start": start, "end": end},
        )

    def frequency_vs_failure(self) -> pd.DataFrame:
        """Deployments and change failure rate per period (all services), with the rate's n and 95 % interval.

        Returns
        -------
        DataFrame
            ``period, period_start, deployments, failed_deployments, change_failure_rate,
            change_failure_rate_ci_low, change_failure_rate_ci_high, change_failure_rate_change_significant``.
        """
        weekly = self.dora.by_period
        columns = ["period", "period_start", "deployments", "failed_deployments", "change_failure_rate",
                   "change_failure_rate_ci_low", "change_failure_rate_ci_high",
                   "change_failure_rate_change_significant"]  # fmt: skip
        return weekly[columns].copy()

    @property
    def frame(self) -> pd.DataFrame:
        """The headline table: failure rate per batch-size bucket (:meth:`failure_by_batch_size`)."""
        return self.failure_by_batch_size()

    def to_dict(self) -> dict:
        """Every analysis as JSON-safe records (no NaN).

        Returns
        -------
        dict
            ``window`` and one list of records per analysis.
        """
        return {
            "window": [str(self.dora.window[0]), str(self.dora.window[1])],
            "failure_by_batch_size": _records(self.failure_by_batch_size()),
            "rollbacks": _records(self.rollbacks()),
            "hotfixes": _records(self.hotfixes()),
            "stage_promotion": _records(self.stage_promotion()),
            "environment_lag": _records(self.environment_lag()),
            "frequency_vs_failure": _records(self.frequency_vs_failure()),
        }

    def summary(self) -> str:
        """The findings as text: failure rate per batch size and per deployment kind with 95 % intervals,
        rollbacks, and promotion times per stage.

        Returns
        -------
        str
        """
        start, end = self.dora.window
        lines = [f"Release-process analytics {start:%Y-%m-%d} → {end:%Y-%m-%d}"]

        def rate(row) -> str:
            if pd.isna(row["failure_rate"]):
                return "no data"
            return (f"{row['failure_rate'] * 100:.1f} % ({int(row['failures'])} of {int(row['deployments'])}; "
                    f"95 % CI {row['ci_low'] * 100:.0f}–{row['ci_high'] * 100:.0f} %)")  # fmt: skip

        lines.append("  failure rate by batch size")
        for _, row in self.failure_by_batch_size().iterrows():
            if row["deployments"]:
                lines.append(f"    {row['bucket']:>6} changes  {rate(row)}")
        lines.append("  failure rate by kind")
        for _, row in self.hotfixes().iterrows():
            if row["deployments"]:
                lines.append(f"    {row['kind']:<8}  {rate(row)}")
        rollbacks = self.rollbacks()
        if len(rollbacks):
            total, succeeded = int(rollbacks["rollbacks"].sum()), int(rollbacks["succeeded"].sum())
            lines.append(f"  rollbacks: {total} ({succeeded} succeeded); services that never rolled back: "
                         f"{int((rollbacks['rollbacks'] == 0).sum())}")  # fmt: skip
        for _, row in self.stage_promotion().iterrows():
            median = "no data" if pd.isna(row["median_hours"]) else f"median {row['median_hours']:.1f} h"
            lines.append(f"  {row['from_env']} → {row['to_env']}: {row['promotions']} promotions, {median}, "
                         f"{row['skipped']} skipped")  # fmt: skip
        lines.extend(f"  note: {note}" for note in self.dora.notes)
        return "\n".join(lines)


def release_analytics(
    store: Store, since=None, until=None, *, settings: Settings | None = None, dora: DoraResult | None = None
) -> ReleaseAnalytics:
    """Release-process analytics over ``[since, until)`` (reusing ``dora`` when given).

    Parameters
    ----------
    store : Store
    since, until : date or str, optional
        The window (default: all deployments), as :func:`releaserisk.dora_metrics`.
    settings : Settings, optional
        Production environments, environment order, bug labels.
    dora : DoraResult, optional
        A result over the same window, to reuse instead of computing it again.

    Returns
    -------
    ReleaseAnalytics
        Each analysis is a method returning a DataFrame.
    """
    settings = settings or Settings()
    dora = dora or dora_metrics(store, since, until, settings=settings)
    return ReleaseAnalytics(store=store, dora=dora, settings=settings)
