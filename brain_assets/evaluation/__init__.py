"""Model evaluation: forecast quality and the net-of-fee performance of trading the forecasts.

``ComprehensiveEvaluation`` is the entry point; the module-level functions are the same
operations for callers that have no Brain Library to store results in.
"""

from __future__ import annotations

from brain_assets.evaluation.comprehensive import (
    METRIC_KEYS,
    ComprehensiveEvaluation,
    MetricsStore,
    equity_curve,
    evaluate_model,
    storable_metrics,
    strategy_returns,
)
from brain_assets.evaluation.metrics import COMPOSITE_SCALES, COMPOSITE_WEIGHTS, composite_score
from brain_assets.evaluation.report import generate_evaluation_report

__all__ = [
    "COMPOSITE_SCALES",
    "COMPOSITE_WEIGHTS",
    "METRIC_KEYS",
    "ComprehensiveEvaluation",
    "MetricsStore",
    "composite_score",
    "equity_curve",
    "evaluate_model",
    "generate_evaluation_report",
    "storable_metrics",
    "strategy_returns",
]
