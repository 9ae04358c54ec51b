"""Volatility regimes: classify bars without look-ahead, evaluate models per regime."""

from __future__ import annotations

from brain_assets.regimes.classify import (
    DEFAULT_LOOKBACK,
    DEFAULT_MIN_HISTORY,
    DEFAULT_WINDOW,
    HIGH_UPPER,
    LOW_UPPER,
    NORMAL_UPPER,
    classify_regimes,
    current_regime,
)
from brain_assets.regimes.evaluation import (
    MIN_REGIME_BARS,
    RegimeResults,
    evaluate_by_regime,
    store_regime_metrics,
)
from brain_assets.store.validation import REGIMES

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_MIN_HISTORY",
    "DEFAULT_WINDOW",
    "HIGH_UPPER",
    "LOW_UPPER",
    "MIN_REGIME_BARS",
    "NORMAL_UPPER",
    "REGIMES",
    "RegimeResults",
    "classify_regimes",
    "current_regime",
    "evaluate_by_regime",
    "store_regime_metrics",
]
