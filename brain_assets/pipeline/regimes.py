"""The regimes stage: classify and store each symbol's bars, and record a model's per-regime
evaluation as one evaluation in the Brain Library."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from brain_assets.evaluation.comprehensive import storable_metrics
from brain_assets.library import BrainLibrary
from brain_assets.regimes.classify import REGIMES, classify_regimes, current_regime
from brain_assets.store import validation as check

SUMMARY_COLUMNS = ("symbol", "current", "as_of", *REGIMES, "unclassified")
"""The keys of :func:`classify_symbol`'s summary, in display order."""


def classify_symbol(
    brain: BrainLibrary, symbol: str, ohlcv: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Classify the bars of ``symbol``, store the classified ones, and summarise: the current
    regime and its bar, and how many bars fell in each regime."""
    frame = classify_regimes(ohlcv)
    brain.store_regimes(symbol, frame)
    now = current_regime(frame)
    counts = frame["regime"].value_counts()
    summary = {
        "symbol": symbol,
        "current": None if now is None else now["regime"],
        "as_of": None if now is None else str(now["timestamp"]),
        **{regime: int(counts.get(regime, 0)) for regime in REGIMES},
        "unclassified": int(frame["regime"].isna().sum()),
    }
    return frame, summary


def store_regime_metrics(
    brain: BrainLibrary,
    model_id: str,
    symbol: str,
    per_regime: Mapping[str, Mapping[str, Any]],
    evaluation_date: datetime | str | None = None,
) -> dict[str, dict[str, float]]:
    """Record each regime's finite metrics as one evaluation, in one transaction.

    Every regime's rows share one ``evaluation_date`` (now, unless given), which is what makes
    them one evaluation for :class:`~brain_assets.lifecycle.selection.ModelSelector`. Undefined and
    non-finite values are left out. Returns ``{regime: stored metrics}``; an empty
    ``per_regime`` (no regime had enough bars) stores nothing.

    Raises:
        ValueError: an unknown regime, a regime with no finite metric, or what
            ``store_model_metrics`` refuses; nothing is written then.
        UnknownModelError: ``model_id`` is not a registered model of ``symbol``.
    """
    when = check.optional_timestamp(evaluation_date, "evaluation_date") or datetime.now(UTC)
    stored: dict[str, dict[str, float]] = {}
    for regime, metrics in per_regime.items():
        check.regime(regime)
        values = storable_metrics(metrics)
        if not values:
            raise ValueError(f"per_regime[{regime!r}]: no finite numeric metric to store")
        ppy = values.get("periods_per_year")
        if ppy is not None and not (math.isfinite(ppy) and ppy > 0):
            raise ValueError(f"per_regime[{regime!r}]: periods_per_year must be positive")
        stored[regime] = values
    if not stored:
        return stored
    with brain.transaction():
        for regime, values in stored.items():
            brain.store_model_metrics(
                model_id,
                symbol,
                values,
                evaluation_date=when,
                regime=regime,
                periods_per_year=values.get("periods_per_year"),
            )
    return stored
