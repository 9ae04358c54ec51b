"""Feature importance of a symbol's newly registered models on its most recent bars."""

from __future__ import annotations

import logging

import pandas as pd

from brain_assets.events import log_event
from brain_assets.importance.analyzer import FeatureImportanceAnalyzer, ImportanceAnalysis
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, split_for
from brain_assets.store.library import BrainLibrary
from brain_assets.training.serialization import deserialize_model


def analyze_symbol(
    brain: BrainLibrary,
    symbol: str,
    table: pd.DataFrame,
    artifacts: list[TrainedArtifact],
    model_ids: dict[str, str],
    settings: RetrainSettings,
) -> dict[str, ImportanceAnalysis]:
    """Analyse on the test segment: data none of the models was fitted on."""
    split = split_for(table, settings)
    X, y, _ = split_columns(table)
    X_test, y_test = X.iloc[split.test], y.iloc[split.test]
    analyzer = FeatureImportanceAnalyzer(
        brain, sample_size=settings.importance_sample, seed=settings.seed
    )
    results = {}
    for artifact in artifacts:
        model = deserialize_model(artifact.artifact, artifact.artifact_format)
        analysis = analyzer.analyze(
            symbol,
            model,
            X_test,
            y_test,
            list(X_test.columns),
            methods=settings.importance_methods,
            model_id=model_ids[artifact.model_type],
        )
        log_event(
            "compute_timing",
            logging.DEBUG,
            stage="importance",
            symbol=symbol,
            model_type=artifact.model_type,
            seconds=round(analysis.seconds, 4),
        )
        results[artifact.model_type] = analysis
    return results
