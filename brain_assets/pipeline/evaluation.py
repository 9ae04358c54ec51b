"""Evaluate each trained model of a symbol on its out-of-sample test segment."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.decisions.policy import SELECTION_TRIALS, SHARPE_SE, sharpe_standard_error
from brain_assets.evaluation.comprehensive import evaluate_model, strategy_returns
from brain_assets.events import log_event
from brain_assets.lstm.model import StandardizedLSTM
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.lstm_model import attention_by_lag, context_start, with_context
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, split_for
from brain_assets.training.models import single_threaded
from brain_assets.training.serialization import deserialize_model


@dataclass(frozen=True)
class ModelEvaluation:
    model_type: str
    metrics: dict[str, float | None]
    equity: pd.Series
    predict_seconds: float
    predictions: pd.Series | None = None
    """One prediction per test bar, indexed like the test segment."""
    bar_returns: pd.Series | None = None
    """The strategy's net return on each test bar (what the promotion test compares)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Model-specific results: for ``lstm``, ``attention_mean`` (mean attention weight per lag
    over the test windows, lag 0 = the predicted bar itself; sums to 1)."""


def evaluate_symbol(
    symbol: str,
    table: pd.DataFrame,
    artifacts: list[TrainedArtifact],
    settings: RetrainSettings,
    periods_per_year: float,
) -> list[ModelEvaluation]:
    """Score every model on the test segment; a sequence model reads its context rows from the
    bars just before the segment (validation and embargo rows, all in the past).

    Each model's metrics also carry the Sharpe ratio's standard error over the test bars and the
    number of models scored on them (the selection the activation floor deflates for)."""
    split = split_for(table, settings)
    X, y, next_return = split_columns(table)
    X_test, y_test, r_test = X.iloc[split.test], y.iloc[split.test], next_return.iloc[split.test]
    results = []
    for artifact in artifacts:
        model = deserialize_model(artifact.artifact, artifact.artifact_format)
        first = context_start(split.test.start, model)
        predictor = with_context(model, X.iloc[first : split.test.start])
        started = time.perf_counter()
        # One thread, as for the fit: hist gradient boosting predicts with OpenMP too.
        with single_threaded():
            predictions = np.asarray(predictor.predict(X_test), dtype=np.float64)
        seconds = time.perf_counter() - started
        if predictions.shape != (len(X_test),):
            raise ValueError(
                f"{artifact.model_type} gave {predictions.shape} predictions for "
                f"{len(X_test)} test bars"
            )
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
        net = strategy_returns(
            predictions, r_test.to_numpy(), fee_bps=settings.fee_bps, index=X_test.index
        )
        metrics[SHARPE_SE] = sharpe_standard_error(net.to_numpy(), periods_per_year)
        metrics[SELECTION_TRIALS] = float(len(artifacts))
        equity = pd.Series(np.cumprod(1.0 + net.to_numpy()), index=net.index, name="equity")
        extras: dict[str, Any] = {}
        if isinstance(model, StandardizedLSTM):
            extras["attention_mean"] = attention_by_lag(model, X.iloc[first : split.test.stop])
        results.append(
            ModelEvaluation(
                artifact.model_type,
                metrics,
                equity,
                seconds,
                predictions=pd.Series(predictions, index=X_test.index, name=artifact.model_type),
                bar_returns=net.rename(artifact.model_type),
                extras=extras,
            )
        )
    return results
