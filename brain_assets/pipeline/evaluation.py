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
from brain_assets.pipeline.training import TrainedArtifact, fitted_model, split_for
from brain_assets.regimes.evaluation import evaluate_by_regime
from brain_assets.training.models import single_threaded


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


def score_predictions(
    predictions: np.ndarray,
    actuals: np.ndarray,
    returns: np.ndarray,
    *,
    periods_per_year: float,
    fee_bps: float,
    index: pd.Index | None = None,
) -> tuple[dict[str, float | None], pd.Series]:
    """evaluate_model's metrics plus the Sharpe ratio's standard error (None when undefined),
    and the strategy's net return on each bar (indexed by ``index``)."""
    metrics = evaluate_model(
        predictions, actuals, returns, periods_per_year=periods_per_year, fee_bps=fee_bps
    )
    net = strategy_returns(predictions, returns, fee_bps=fee_bps, index=index)
    metrics[SHARPE_SE] = sharpe_standard_error(net.to_numpy(), periods_per_year)
    return metrics, net


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
        model = fitted_model(artifact)
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
        metrics, net = score_predictions(
            predictions,
            y_test.to_numpy(),
            r_test.to_numpy(),
            periods_per_year=periods_per_year,
            fee_bps=settings.fee_bps,
            index=X_test.index,
        )
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


def best_evaluation(evaluations: list[ModelEvaluation]) -> ModelEvaluation:
    """The evaluation with the highest composite score (an undefined score ranks last)."""
    return max(evaluations, key=lambda e: e.metrics.get("composite_score") or float("-inf"))


@dataclass(frozen=True)
class SymbolEvaluation:
    """A symbol's models on its test segment, overall and per volatility regime."""

    evaluations: list[ModelEvaluation]
    by_regime: dict[str, dict[str, dict[str, float | None]]]
    regimes: pd.Series
    """The regime of each bar of the symbol's feature table."""
    periods_per_year: float

    @property
    def best(self) -> ModelEvaluation:
        return best_evaluation(self.evaluations)

    def to_json(self) -> dict[str, Any]:
        evaluations = self.evaluations
        return {
            "periods_per_year": self.periods_per_year,
            "models": {e.model_type: e.metrics for e in evaluations},
            # Per test bar, what the fair promotion test compares with the champion.
            "test_index": [str(t) for t in evaluations[0].equity.index],
            "bar_returns": {
                e.model_type: [float(v) for v in e.bar_returns]
                for e in evaluations
                if e.bar_returns is not None
            },
            "by_regime": self.by_regime,
            "extras": {e.model_type: e.extras for e in evaluations if e.extras},
        }

    def headline(self) -> dict[str, Any]:
        """The numbers worth plotting across runs: the best model's, and each model's score."""
        best = self.best
        return {
            "best_model_type": best.model_type,
            "best_composite_score": best.metrics.get("composite_score"),
            "best_sharpe_ratio": best.metrics.get("sharpe_ratio"),
            "best_information_coefficient": best.metrics.get("information_coefficient"),
            "test_bars": len(best.equity),
            **{
                f"composite_score_{e.model_type}": e.metrics.get("composite_score")
                for e in self.evaluations
            },
        }


def evaluate_per_regime(
    evaluations: list[ModelEvaluation],
    table: pd.DataFrame,
    regimes: pd.Series,
    *,
    periods_per_year: float,
    fee_bps: float,
) -> SymbolEvaluation:
    """:func:`evaluate_symbol`'s evaluations with each model's test-segment metrics per
    volatility regime (``regimes`` labels the bars of ``table``); a regime with too few test bars
    is left out."""
    _, y, next_return = split_columns(table)
    by_regime: dict[str, dict[str, dict[str, float | None]]] = {}
    for e in evaluations:
        if e.predictions is None:
            raise ValueError(f"{e.model_type}: the evaluation kept no predictions")
        test = e.predictions.index
        by_regime[e.model_type] = dict(
            evaluate_by_regime(
                e.predictions.to_numpy(),
                y.loc[test].to_numpy(),
                next_return.loc[test].to_numpy(),
                regimes.reindex(test).to_numpy(),
                periods_per_year=periods_per_year,
                fee_bps=fee_bps,
            )
        )
    return SymbolEvaluation(evaluations, by_regime, regimes, periods_per_year)
