"""Feature-importance analysis of fitted regressors (SHAP, permutation, Spearman correlation), and
the nightly analysis of each symbol's current model (``run_nightly_feature_analysis``).

Names load their module on first use so that importing this package stays light; shap itself is
imported only when a SHAP analysis runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "IMPORTANCE_METHODS": "brain_assets.importance.analyzer",
    "FeatureImportanceAnalyzer": "brain_assets.importance.analyzer",
    "ImportanceAnalysis": "brain_assets.importance.analyzer",
    "NightlyAnalysis": "brain_assets.importance.nightly",
    "run_nightly_feature_analysis": "brain_assets.importance.nightly",
}

__all__ = [
    "IMPORTANCE_METHODS",
    "FeatureImportanceAnalyzer",
    "ImportanceAnalysis",
    "NightlyAnalysis",
    "run_nightly_feature_analysis",
]

if TYPE_CHECKING:
    from brain_assets.importance.analyzer import (
        IMPORTANCE_METHODS,
        FeatureImportanceAnalyzer,
        ImportanceAnalysis,
    )
    from brain_assets.importance.nightly import NightlyAnalysis, run_nightly_feature_analysis


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'brain_assets.importance' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
