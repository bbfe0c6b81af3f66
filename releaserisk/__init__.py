"""releaserisk: evidence about release risk and release-process health.

The public API is what ``__all__`` lists, built from one table (``_EXPORTS``: public
name → the module defining it); everything else is private. Submodules are imported
lazily so that ``import releaserisk`` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "TrainedModel": "releaserisk.training",
    "labelled_changes": "releaserisk.training",
    "train_change_model": "releaserisk.training",
    "CANARY_MODES": "releaserisk.canary.config",
    "CanaryConfig": "releaserisk.canary.config",
    "CanaryPlan": "releaserisk.canary.plan",
    "ChangeMetricState": "releaserisk.features",
    "DoraResult": "releaserisk.dora",
    "FlagIngestResult": "releaserisk.ingest.flags",
    "GateResult": "releaserisk.gate",
    "GitIngestResult": "releaserisk.ingest.git",
    "JudgeResult": "releaserisk.canary.result",
    "KAMEI_FEATURES": "releaserisk.features",
    "LabelQuality": "releaserisk.labels",
    "LabelResult": "releaserisk.labels",
    "MetricConfig": "releaserisk.canary.config",
    "MigrationFinding": "releaserisk.migrations_safety",
    "PROFILE_RULES": "releaserisk.profiles",
    "ProfileComparison": "releaserisk.dora_compare",
    "ProfileRule": "releaserisk.profiles",
    "ReleaseAnalytics": "releaserisk.analytics",
    "RiskModel": "releaserisk.model",
    "RollbackSafety": "releaserisk.rollback",
    "SCENARIOS": "releaserisk.simulation",
    "Scorecard": "releaserisk.scorecard",
    "SequentialMonitor": "releaserisk.canary.sequential",
    "SequentialResult": "releaserisk.canary.sequential",
    "ServiceBlock": "releaserisk.report",
    "Settings": "releaserisk.config",
    "SourceIngestResult": "releaserisk.ingest.sources",
    "Store": "releaserisk.store",
    "TagIngestResult": "releaserisk.ingest.git",
    "WeeklySections": "releaserisk.report",
    "after_ingest": "releaserisk.ingest.steps",
    "analysis_samples": "releaserisk.canary.data",
    "assess_rollback": "releaserisk.rollback",
    "auc_by_age": "releaserisk.model",
    "calibration_table": "releaserisk.model",
    "candidate_causes": "releaserisk.flags",
    "classify_migration": "releaserisk.migrations_safety",
    "classify_tag": "releaserisk.ingest.tags",
    "command_data": "releaserisk.escape",
    "command_property": "releaserisk.escape",
    "dora_metrics": "releaserisk.dora",
    "evaluate_predictions": "releaserisk.model",
    "evaluate_time_split": "releaserisk.model",
    "fenced_block": "releaserisk.escape",
    "flag_releases": "releaserisk.flags",
    "html_text": "releaserisk.escape",
    "ingest_file": "releaserisk.ingest.tabular",
    "ingest_flags": "releaserisk.ingest.flags",
    "ingest_git": "releaserisk.ingest.git",
    "ingest_git_tags": "releaserisk.ingest.git",
    "ingest_org": "releaserisk.ingest.org",
    "read_org_manifest": "releaserisk.ingest.org",
    "OrgIngestResult": "releaserisk.ingest.org",
    "OrgManifest": "releaserisk.ingest.org",
    "RepoSpec": "releaserisk.ingest.org",
    "Lake": "releaserisk.lake",
    "open_lake": "releaserisk.lake",
    "compact_lake": "releaserisk.lake",
    "load_lake": "releaserisk.lake",
    "ingest_github": "releaserisk.ingest.github",
    "ingest_gitlab": "releaserisk.ingest.gitlab",
    "ingest_jira": "releaserisk.ingest.jira",
    "ingest_pagerduty": "releaserisk.ingest.pagerduty",
    "csv_cell": "releaserisk.escape",
    "csv_frame": "releaserisk.escape",
    "csv_text": "releaserisk.escape",
    "json_records": "releaserisk.escape",
    "json_safe": "releaserisk.escape",
    "judge": "releaserisk.canary.judge",
    "kill_switch_summary": "releaserisk.flags",
    "kill_switch_times": "releaserisk.flags",
    "label_changes": "releaserisk.labels",
    "label_quality": "releaserisk.labels",
    "latest_deployment_week": "releaserisk.report",
    "link_deployment_changes": "releaserisk.ingest.links",
    "load_canary_config": "releaserisk.canary.config",
    "load_history": "releaserisk.canary.data",
    "load_model": "releaserisk.model",
    "load_samples": "releaserisk.canary.data",
    "load_scorer": "releaserisk.gate",
    "load_settings": "releaserisk.config",
    "mann_whitney_interval": "releaserisk.canary.judge",
    "markdown_cell": "releaserisk.escape",
    "one_analysis": "releaserisk.canary.data",
    "one_line": "releaserisk.escape",
    "open_snapshot": "releaserisk.store",
    "open_store": "releaserisk.store",
    "parse_instant": "releaserisk.inputs",
    "plain_text": "releaserisk.escape",
    "plan_canary": "releaserisk.canary.plan",
    "profile_rules": "releaserisk.profiles",
    "profile_table": "releaserisk.profiles",
    "project_path": "releaserisk.report",
    "read_feature_table": "releaserisk.model",
    "read_file": "releaserisk.inputs",
    "release_analytics": "releaserisk.analytics",
    "render_weekly": "releaserisk.report",
    "rollback_readiness": "releaserisk.rollback",
    "rolling_origin": "releaserisk.model",
    "save_model": "releaserisk.model",
    "score_commits": "releaserisk.gate",
    "sequential_judge": "releaserisk.canary.sequential",
    "simulate": "releaserisk.simulation",
    "stale_flags": "releaserisk.flags",
    "stop_commands": "releaserisk.escape",
    "terminal_text": "releaserisk.escape",
    "training_frame": "releaserisk.labels",
    "weekly_sections": "releaserisk.report",
    "workflow_command": "releaserisk.escape",
}

#: The public API: ``_EXPORTS`` is the one list; ``__all__`` follows from it (and the
#: type-checking imports below are checked against it by tests/test_exported_members.py).
__all__ = sorted([*_EXPORTS, "__version__", "errors"])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from releaserisk import errors
    from releaserisk.analytics import ReleaseAnalytics, release_analytics
    from releaserisk.canary.config import CANARY_MODES, CanaryConfig, MetricConfig, load_canary_config
    from releaserisk.canary.data import analysis_samples, load_history, load_samples, one_analysis
    from releaserisk.canary.judge import judge, mann_whitney_interval
    from releaserisk.canary.plan import CanaryPlan, plan_canary
    from releaserisk.canary.result import JudgeResult
    from releaserisk.canary.sequential import SequentialMonitor, SequentialResult, sequential_judge
    from releaserisk.config import Settings, load_settings
    from releaserisk.dora import DoraResult, dora_metrics
    from releaserisk.dora_compare import ProfileComparison
    from releaserisk.escape import (
        command_data,
        command_property,
        csv_cell,
        csv_frame,
        csv_text,
        fenced_block,
        html_text,
        json_records,
        json_safe,
        markdown_cell,
        one_line,
        plain_text,
        stop_commands,
        terminal_text,
        workflow_command,
    )
    from releaserisk.features import KAMEI_FEATURES, ChangeMetricState
    from releaserisk.flags import candidate_causes, flag_releases, kill_switch_summary, kill_switch_times, stale_flags
    from releaserisk.gate import GateResult, load_scorer, score_commits
    from releaserisk.ingest.flags import FlagIngestResult, ingest_flags
    from releaserisk.ingest.git import GitIngestResult, TagIngestResult, ingest_git, ingest_git_tags
    from releaserisk.ingest.github import ingest_github
    from releaserisk.ingest.gitlab import ingest_gitlab
    from releaserisk.ingest.jira import ingest_jira
    from releaserisk.ingest.links import link_deployment_changes
    from releaserisk.ingest.org import OrgIngestResult, OrgManifest, RepoSpec, ingest_org, read_org_manifest
    from releaserisk.ingest.pagerduty import ingest_pagerduty
    from releaserisk.ingest.sources import SourceIngestResult
    from releaserisk.ingest.steps import after_ingest
    from releaserisk.ingest.tabular import ingest_file
    from releaserisk.ingest.tags import classify_tag
    from releaserisk.inputs import parse_instant, read_file
    from releaserisk.labels import LabelQuality, LabelResult, label_changes, label_quality, training_frame
    from releaserisk.lake import Lake, compact_lake, load_lake, open_lake
    from releaserisk.migrations_safety import MigrationFinding, classify_migration
    from releaserisk.model import (
        RiskModel,
        auc_by_age,
        calibration_table,
        evaluate_predictions,
        evaluate_time_split,
        load_model,
        read_feature_table,
        rolling_origin,
        save_model,
    )
    from releaserisk.profiles import PROFILE_RULES, ProfileRule, profile_rules, profile_table
    from releaserisk.report import (
        ServiceBlock,
        WeeklySections,
        latest_deployment_week,
        project_path,
        render_weekly,
        weekly_sections,
    )
    from releaserisk.rollback import RollbackSafety, assess_rollback, rollback_readiness
    from releaserisk.scorecard import Scorecard
    from releaserisk.simulation import SCENARIOS, simulate
    from releaserisk.store import Store, open_snapshot, open_store
    from releaserisk.training import TrainedModel, labelled_changes, train_change_model


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("releaserisk.errors")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'releaserisk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
