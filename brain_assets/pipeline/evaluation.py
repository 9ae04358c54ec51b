"""Evaluate each trained model of a symbol on its out-of-sample test segment."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd

from brain_assets.evaluation.comprehensive import equity_curve, evaluate_model
from brain_assets.events import log_event
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, split_for
from brain_assets.training.serialization import deserialize_model


@dataclass(frozen=True)
class ModelEvaluation:
    model_type: str
    metrics: dict[str, float | None]
    equity: pd.Series
    predict_seconds: float


def evaluate_symbol(
    symbol: str,
    table: pd.DataFrame,
    artifacts: list[TrainedArtifact],
    settings: RetrainSettings,
    periods_per_year: float,
) -> list[ModelEvaluation]:
    split = split_for(table, settings)
    X, y, next_return = split_columns(table)
    X_test, y_test, r_test = X.iloc[split.test], y.iloc[split.test], next_return.iloc[split.test]
    results = []
    for artifact in artifacts:
        model = deserialize_model(artifact.artifact, artifact.artifact_format)
        started = time.perf_counter()
        predictions = model.predict(X_test)
        seconds = time.perf_counter() - started
        log_event(
            "compute_timing",
            logging.DEBUG,
            stage="predict",
            symbol=symbol,
            model_type=artifact.model_type,
            seconds=round(seconds, 4),
        )
        metrics = evaluate_model(
            predictions,
            y_test.to_numpy(),
            r_test.to_numpy(),
            periods_per_year=periods_per_year,
            fee_bps=settings.fee_bps,
        )
        equity = equity_curve(
            predictions, r_test.to_numpy(), fee_bps=settings.fee_bps, index=X_test.index
        )
        results.append(ModelEvaluation(artifact.model_type, metrics, equity, seconds))
    return results
