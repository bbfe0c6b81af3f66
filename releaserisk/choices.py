"""Named choices the library offers, defined once and importing nothing.

The library validates its arguments against these tuples and the command line offers
them as ``choices``; keeping them in a leaf module lets ``releaserisk --help`` and the
CI gate list them without importing scikit-learn, DuckDB or the simulator. Each owning
module re-exports its tuple (``releaserisk.model.ESTIMATORS`` is this ``ESTIMATORS``).
"""

from __future__ import annotations

#: Risk-model estimators (:class:`releaserisk.RiskModel` ``estimator=``).
ESTIMATORS = ("auto", "logistic", "boosting", "ensemble")

#: Risk-model levels: a change (commit) or a deployment's batch (``train --level``).
MODEL_LEVELS = ("change", "deployment")

#: DORA metric profiles (:func:`releaserisk.dora_metrics` ``profile=``).
DORA_PROFILES = ("dora", "devlake", "fourkeys")

#: Years of the DORA report whose tier cut-offs :func:`releaserisk.dora_metrics` knows.
DORA_BENCHMARK_YEARS = (2023, 2024)

#: Drill-down tables of a DORA result (:meth:`releaserisk.DoraResult.detail`).
DORA_DETAILS = ("deployments", "changes", "pull-requests", "incidents")

#: Aggregation periods of DORA trends: the CLI's word and pandas' period alias.
DORA_PERIODS = {"week": "W", "month": "M"}

#: Groupings of DORA aggregates.
DORA_GROUPS = ("service", "team", "repo")

#: Scenarios of the simulated organisation (:func:`releaserisk.simulate`).
SCENARIO_NAMES = ("healthy", "quarterly-batches", "daily-fragile", "broken-rollbacks", "hotfix-chaos", "slow-promotion")

#: Arms of a canary analysis.
CANARY_ARMS = ("baseline", "canary")

#: Canary judgement modes: Kayenta-compatible, robust (the default) and anytime-valid sequential.
CANARY_MODES = ("kayenta", "robust", "sequential")

#: Feature-flag log formats (``ingest flags --format``; :func:`releaserisk.ingest_flags`).
FLAG_FORMATS = ("launchdarkly", "unleash", "flagsmith", "csv")

#: Groupings of the weekly report's compact blocks (``report weekly --by``).
REPORT_GROUPS = ("service",)

#: Risk bands of the gate, lowest first.
RISK_BANDS = ("low", "medium", "high")

#: What the issues of a Jira query are loaded as (:func:`releaserisk.ingest.jira.ingest_jira` ``as_=``).
JIRA_KINDS = ("issues", "incidents")

__all__ = [
    "CANARY_ARMS",
    "CANARY_MODES",
    "DORA_BENCHMARK_YEARS",
    "DORA_DETAILS",
    "DORA_GROUPS",
    "DORA_PERIODS",
    "DORA_PROFILES",
    "ESTIMATORS",
    "FLAG_FORMATS",
    "JIRA_KINDS",
    "MODEL_LEVELS",
    "REPORT_GROUPS",
    "RISK_BANDS",
    "SCENARIO_NAMES",
]
