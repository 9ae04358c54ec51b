"""The Brain Library: a trading engine's model memory on PostgreSQL.

Public names load on first use so that ``import brain_assets`` stays light (no tensorflow, no shap,
no Dagster): the Dagster code location and the ``brain`` command import it often.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BrainLibrary": "brain_assets.library",
    "BrainConnectionError": "brain_assets.errors",
    "ArtifactIntegrityError": "brain_assets.errors",
    "ArtifactEnvironmentError": "brain_assets.training.serialization",
    "UnknownModelError": "brain_assets.errors",
    "ComprehensiveEvaluation": "brain_assets.evaluation.comprehensive",
    "FeatureImportanceAnalyzer": "brain_assets.importance.analyzer",
    "ModelVersioning": "brain_assets.lifecycle.versioning",
    "ModelSelector": "brain_assets.lifecycle.selection",
    "StandardizedLSTM": "brain_assets.lstm",
    "Predictor": "brain_assets.lifecycle.predictor",
    "Prediction": "brain_assets.lifecycle.predictor",
    "StandAside": "brain_assets.lifecycle.predictor",
    "load_predictor": "brain_assets.lifecycle.predictor",
    "load_predictor_from_bundle": "brain_assets.lifecycle.predictor",
    "PredictorCacheError": "brain_assets.lifecycle.predictor_cache",
    "BarProvenance": "brain_assets.provenance",
    "MissingBarsError": "brain_assets.errors",
    "SyntheticBarsRefusedError": "brain_assets.errors",
    "run_nightly_feature_analysis": "brain_assets.importance.nightly",
    "NightlyAnalysis": "brain_assets.importance.nightly",
    "FeatureImportanceRecord": "brain_assets.store.importance",
    "ModelVersion": "brain_assets.records",
    "TradingStatus": "brain_assets.records",
    "Transition": "brain_assets.records",
    "StaleDecisionError": "brain_assets.errors",
}

__all__ = [
    "ArtifactEnvironmentError",
    "ArtifactIntegrityError",
    "BarProvenance",
    "BrainConnectionError",
    "BrainLibrary",
    "ComprehensiveEvaluation",
    "FeatureImportanceAnalyzer",
    "FeatureImportanceRecord",
    "MissingBarsError",
    "ModelSelector",
    "ModelVersion",
    "ModelVersioning",
    "NightlyAnalysis",
    "Prediction",
    "Predictor",
    "PredictorCacheError",
    "StaleDecisionError",
    "StandAside",
    "StandardizedLSTM",
    "SyntheticBarsRefusedError",
    "TradingStatus",
    "Transition",
    "UnknownModelError",
    "load_predictor",
    "load_predictor_from_bundle",
    "run_nightly_feature_analysis",
]

if TYPE_CHECKING:
    from brain_assets.errors import (
        ArtifactIntegrityError,
        BrainConnectionError,
        UnknownModelError,
    )
    from brain_assets.library import BrainLibrary


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'brain_assets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
