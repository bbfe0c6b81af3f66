"""releaserisk: evidence about release risk and release-process health.

The public API is what ``__all__`` lists; everything else is private. Submodules are
imported lazily so that ``import releaserisk`` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "releaserisk.config",
    "load_settings": "releaserisk.config",
    "Store": "releaserisk.store",
    "open_store": "releaserisk.store",
    "ingest_git": "releaserisk.ingest.git",
    "GitIngestResult": "releaserisk.ingest.git",
    "judge": "releaserisk.canary.judge",
    "CanaryConfig": "releaserisk.canary.config",
    "MetricConfig": "releaserisk.canary.config",
    "load_canary_config": "releaserisk.canary.config",
    "load_samples": "releaserisk.canary.data",
    "mann_whitney_interval": "releaserisk.canary.judge",
    "JudgeResult": "releaserisk.canary.result",
    "SequentialMonitor": "releaserisk.canary.sequential",
    "sequential_judge": "releaserisk.canary.sequential",
}

__all__ = [
    "CanaryConfig",
    "GitIngestResult",
    "JudgeResult",
    "MetricConfig",
    "SequentialMonitor",
    "Settings",
    "Store",
    "__version__",
    "errors",
    "ingest_git",
    "judge",
    "load_canary_config",
    "load_samples",
    "load_settings",
    "mann_whitney_interval",
    "open_store",
    "sequential_judge",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from releaserisk import errors
    from releaserisk.canary.config import CanaryConfig, MetricConfig, load_canary_config
    from releaserisk.canary.data import load_samples
    from releaserisk.canary.judge import judge, mann_whitney_interval
    from releaserisk.canary.result import JudgeResult
    from releaserisk.canary.sequential import SequentialMonitor, sequential_judge
    from releaserisk.config import Settings, load_settings
    from releaserisk.ingest.git import GitIngestResult, ingest_git
    from releaserisk.store import Store, open_store


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
