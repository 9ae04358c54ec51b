"""Feature-importance analysis of fitted regressors (SHAP, permutation, Spearman correlation).

``FeatureImportanceAnalyzer`` loads its module on first use so that importing this package stays
light; shap itself is imported only when a SHAP analysis runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["IMPORTANCE_METHODS", "FeatureImportanceAnalyzer", "ImportanceAnalysis"]

if TYPE_CHECKING:
    from brain_assets.importance.analyzer import (
        IMPORTANCE_METHODS,
        FeatureImportanceAnalyzer,
        ImportanceAnalysis,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from brain_assets.importance import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module 'brain_assets.importance' has no attribute {name!r}")
