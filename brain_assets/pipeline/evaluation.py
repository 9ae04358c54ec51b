"""Evaluate each trained model of a symbol on the rows its fits never saw, net of costs.

Forecasts become positions through the deployment's no-trade band (evaluation.positions), the
rule the engine trades by; the out-of-sample rows are the walk-forward folds (pipeline.folds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.decisions.policy import APPRAISAL_SE, SHARPE_SE, gate_sharpe_error
from brain_assets.evaluation.comprehensive import evaluate_model, strategy_returns
from brain_assets.evaluation.metrics import hold_returns, residual_to_benchmark
from brain_assets.evaluation.positions import PositionRule
from brain_assets.events import log_event
from brain_assets.lstm.context import context_start
from brain_assets.lstm.model import StandardizedLSTM
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.folds import out_of_sample
from brain_assets.pipeline.lstm_model import attention_by_lag
from brain_assets.pipeline.settings import LSTM_MODEL_TYPE, RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, fitted_model
from brain_assets.regimes.evaluation import evaluate_by_regime

CODE_VERSION = "1"
"""Version of the out-of-sample evaluation (folds, positions, costs, metrics), the ``code_version``
of the ``model_evaluation`` asset: bump it by hand (``"2"``, ``"3"``...) in a change that alters a
metric, so that Dagster marks the asset and those downstream of it as changed
(docs/asset-graph.md#code-versions)."""

FOLD_METRICS = (
    "sharpe_ratio",
    SHARPE_SE,
    "total_return",
    "hold_total_return",
    "max_drawdown",
    "information_coefficient",
    "directional_accuracy",
    "turnover",
    "annual_cost",
    "exposure",
    "composite_score",
    "n_observations",
)
"""What is stored of each walk-forward fold: enough to see whether the skill is steady."""


@dataclass(frozen=True)
class ModelEvaluation:
    model_type: str
    metrics: dict[str, float | None]
    equity: pd.Series
    predict_seconds: float
    predictions: pd.Series | None = None
    """One prediction per out-of-sample bar, indexed like the bars."""
    bar_returns: pd.Series | None = None
    """The strategy's net return on each out-of-sample bar (what the promotion test compares)."""
    positions: pd.Series | None = None
    """The position held over each out-of-sample bar (the no-trade band's, from flat)."""
    folds: list[dict[str, Any]] = field(default_factory=list)
    """Each walk-forward fold: sizes, periods and :data:`FOLD_METRICS` under ``metrics``."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Model-specific results: for ``lstm``, ``attention_mean`` (mean attention weight per lag
    over the test windows, lag 0 = the predicted bar itself; sums to 1)."""


def score_predictions(
    predictions: np.ndarray,
    actuals: np.ndarray,
    returns: np.ndarray,
    *,
    periods_per_year: float,
    rule: PositionRule,
    index: pd.Index | None = None,
    start_position: int = 0,
) -> tuple[dict[str, float | None], pd.Series, np.ndarray]:
    """evaluate_model's metrics of the band's positions, plus the standard errors of the Sharpe
    ratio and of the appraisal ratio (the Sharpe ratio left once the beta to holding is removed;
    None when undefined), the strategy's net return on each bar (indexed by ``index``) and the
    positions held."""
    positions = rule.positions(predictions, start=start_position)
    metrics = evaluate_model(
        predictions,
        actuals,
        returns,
        positions,
        periods_per_year=periods_per_year,
        fee_bps=rule.fee_bps,
    )
    net = strategy_returns(predictions, returns, positions, fee_bps=rule.fee_bps, index=index)
    metrics[SHARPE_SE] = gate_sharpe_error(net.to_numpy(), periods_per_year)
    hold = hold_returns(np.asarray(returns, dtype=np.float64), rule.fee_bps)
    _, residual = residual_to_benchmark(net.to_numpy(), hold)
    metrics[APPRAISAL_SE] = gate_sharpe_error(residual, periods_per_year)
    return metrics, net, positions


def _fold_metrics(
    oos_fold: np.ndarray,
    predictions: np.ndarray,
    actuals: np.ndarray,
    returns: np.ndarray,
    positions: np.ndarray,
    net: np.ndarray,
    *,
    periods_per_year: float,
    fee_bps: float,
) -> dict[int, dict[str, float]]:
    """:data:`FOLD_METRICS` of each fold, with the positions carried over from the one before
    (a fold's first bar pays for the position it opens, as evaluate_model charges it)."""
    scored: dict[int, dict[str, float]] = {}
    for number in np.unique(oos_fold):
        rows = oos_fold == number
        if int(rows.sum()) < 3:
            continue
        values = evaluate_model(
            predictions[rows],
            actuals[rows],
            returns[rows],
            positions[rows],
            periods_per_year=periods_per_year,
            fee_bps=fee_bps,
        )
        values[SHARPE_SE] = gate_sharpe_error(net[rows], periods_per_year)
        scored[int(number)] = {
            key: float(v) for key in FOLD_METRICS if (v := values.get(key)) is not None
        }
    return scored


def evaluate_symbol(
    symbol: str,
    table: pd.DataFrame,
    artifacts: list[TrainedArtifact],
    settings: RetrainSettings,
    periods_per_year: float,
) -> list[ModelEvaluation]:
    """Score every model type on its out-of-sample rows (see pipeline.folds), positions through
    the deployment's no-trade band, net of fees; with each fold's own metrics.

    Each model's metrics also carry the Sharpe ratio's standard error over those bars; the
    number of tries the activation floor deflates for is the registration's to count."""
    _, y, next_return = split_columns(table)
    rule = settings.position_rule
    results = []
    for artifact in artifacts:
        oos = out_of_sample(artifact, table, settings)
        rows = oos.predictions.index
        predictions = oos.predictions.to_numpy()
        log_event(
            "compute_timing",
            logging.DEBUG,
            stage="walk_forward",
            symbol=symbol,
            model_type=artifact.model_type,
            seconds=round(oos.fit_seconds + oos.predict_seconds, 4),
            fit_seconds=round(oos.fit_seconds, 4),
            predict_seconds=round(oos.predict_seconds, 4),
        )
        actuals = y.loc[rows].to_numpy()
        returns = next_return.loc[rows].to_numpy()
        metrics, net, positions = score_predictions(
            predictions,
            actuals,
            returns,
            periods_per_year=periods_per_year,
            rule=rule,
            index=rows,
        )
        # The band the version was judged with, which the engine's predictor applies too.
        metrics.update(fee_bps=rule.fee_bps, band_margin=rule.margin)
        by_fold = _fold_metrics(
            oos.fold,
            predictions,
            actuals,
            returns,
            positions,
            net.to_numpy(),
            periods_per_year=periods_per_year,
            fee_bps=rule.fee_bps,
        )
        folds = [
            {**described, "metrics": by_fold.get(int(described["fold"]), {})}  # type: ignore[call-overload]
            for described in oos.folds
        ]
        equity = pd.Series(np.cumprod(1.0 + net.to_numpy()), index=rows, name="equity")
        extras: dict[str, Any] = {}
        model = fitted_model(artifact) if artifact.model_type == LSTM_MODEL_TYPE else None
        if isinstance(model, StandardizedLSTM):
            X, _, _ = split_columns(table)
            first = context_start(int(table.index.searchsorted(rows[0])), model)
            stop = int(table.index.searchsorted(rows[-1])) + 1
            extras["attention_mean"] = attention_by_lag(model, X.iloc[first:stop])
        results.append(
            ModelEvaluation(
                artifact.model_type,
                metrics,
                equity,
                oos.predict_seconds,
                predictions=oos.predictions,
                bar_returns=net.rename(artifact.model_type),
                positions=pd.Series(positions, index=rows, name=artifact.model_type),
                folds=folds,
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
            # Per out-of-sample bar, what the fair promotion test compares with the champion.
            "test_index": {e.model_type: [str(t) for t in e.equity.index] for e in evaluations},
            "bar_returns": {
                e.model_type: [float(v) for v in e.bar_returns]
                for e in evaluations
                if e.bar_returns is not None
            },
            "folds": {e.model_type: e.folds for e in evaluations},
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
            "best_annual_cost": best.metrics.get("annual_cost"),
            "best_excess_return_vs_hold": best.metrics.get("excess_return_vs_hold"),
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
    """:func:`evaluate_symbol`'s evaluations with each model's out-of-sample metrics per
    volatility regime (``regimes`` labels the bars of ``table``), with the positions the band
    held; a regime with too few bars is left out."""
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
                positions=None if e.positions is None else e.positions.to_numpy(),
            )
        )
    return SymbolEvaluation(evaluations, by_regime, regimes, periods_per_year)
