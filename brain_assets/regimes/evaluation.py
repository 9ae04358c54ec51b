"""How a model does in each volatility regime, and recording that in the Brain Library.

Each regime's bars are evaluated with :func:`brain_assets.evaluation.comprehensive.evaluate_model`
as one series in time order. The strategy metrics therefore stitch the regime's separate stretches
together: a position change between the last bar of one stretch and the first bar of the next is
charged once, and trading done outside the regime is not. That is the price of comparing models on
the same bars; the forecast metrics (IC, hit rate, RMSE) are unaffected.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from brain_assets.evaluation.comprehensive import (
    MIN_OBSERVATIONS,
    ArrayInput,
    evaluate_model,
    storable_metrics,
)
from brain_assets.store import validation as check
from brain_assets.store.validation import REGIMES

if TYPE_CHECKING:
    from brain_assets.store.library import BrainLibrary

MIN_REGIME_BARS = 50
"""Fewest bars of a regime for its metrics to count: below that a Sharpe ratio or a hit rate is
mostly noise, so the regime gets no metrics at all rather than misleading ones."""


class RegimeResults(dict[str, dict[str, float | None]]):
    """``{regime: metrics}`` for the regimes with enough bars, in the order of ``REGIMES``.

    It is a plain dict of the evaluated regimes; the rest of the story is on attributes:

    * ``insufficient``: ``{regime: n_bars}`` for every regime with fewer than ``min_bars`` bars
      (zero included), so that the evaluated and the insufficient regimes together are all four;
    * ``unclassified``: bars without a regime (too little history), left out of every regime;
    * ``min_bars``: the threshold that was applied.
    """

    insufficient: dict[str, int]
    unclassified: int
    min_bars: int


def _regime_labels(regimes: object, n: int) -> np.ndarray:
    if regimes is None:
        raise ValueError("regimes: is required, got None")
    if isinstance(regimes, str):
        raise ValueError("regimes: must be one label per bar, got a single string")
    labels = np.asarray(regimes, dtype=object)
    if labels.ndim != 1 or labels.size != n:
        raise ValueError(f"regimes: has {labels.size} labels but predictions has {n} bars")
    cleaned = np.array([None if pd.isna(label) else label for label in labels], dtype=object)
    unknown = sorted(
        {str(label) for label in cleaned if label is not None and label not in REGIMES}
    )
    if unknown:
        raise ValueError(
            f"regimes: unknown label(s) {unknown}; valid regimes are {', '.join(REGIMES)} "
            "(None or NaN for an unclassified bar)"
        )
    return cleaned


def _check_alignment(named: Mapping[str, object]) -> None:
    series = [(name, value) for name, value in named.items() if isinstance(value, pd.Series)]
    for (first_name, first), (name, other) in itertools.pairwise(series):
        if len(first) == len(other) and not first.index.equals(other.index):
            raise ValueError(
                f"{first_name} and {name}: pandas Series with different indexes; "
                "align them first (values are paired by position)"
            )


def _length(name: str, values: object) -> int:
    try:
        return len(values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(
            f"{name}: must be a sequence of numbers, got {type(values).__name__}"
        ) from exc


def _take(values: ArrayInput, where: np.ndarray) -> ArrayInput:
    # A Series keeps its labels so that evaluate_model's alignment checks still see them.
    if isinstance(values, pd.Series):
        return values.iloc[where]
    return np.asarray(values)[where]


def evaluate_by_regime(
    predictions: ArrayInput,
    actuals: ArrayInput,
    returns: ArrayInput,
    regimes: Sequence[str | None] | np.ndarray | pd.Series,
    *,
    periods_per_year: float,
    fee_bps: float = 10.0,
    min_bars: int = MIN_REGIME_BARS,
) -> RegimeResults:
    """evaluate_model's metrics for each regime with at least ``min_bars`` bars.

    ``regimes[t]`` is the regime of bar t (None or NaN: unclassified), paired with the other
    inputs by position. Every evaluated regime's metrics carry ``n_bars``; regimes with fewer
    bars are absent and listed in ``result.insufficient`` (see :class:`RegimeResults`).
    ``periods_per_year`` is required because a regime's bars have gaps that would defeat
    inferring it from timestamps.

    Raises:
        ValueError: inputs of different lengths, an unknown regime label, ``min_bars`` below
            evaluate_model's minimum of 3, or whatever evaluate_model refuses (NaN values, a
            negative fee, a non-positive periods_per_year).
    """
    if isinstance(min_bars, bool | np.bool_) or not isinstance(min_bars, numbers.Integral):
        raise ValueError(f"min_bars: must be an integer, got {min_bars!r}")
    if min_bars < MIN_OBSERVATIONS:
        raise ValueError(f"min_bars: must be at least {MIN_OBSERVATIONS}, got {min_bars}")
    arrays = {"predictions": predictions, "actuals": actuals, "returns": returns}
    lengths = {name: _length(name, value) for name, value in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={size}" for name, size in lengths.items())
        raise ValueError(f"length mismatch: {described}; all must have the same length")
    n = lengths["predictions"]
    labels = _regime_labels(regimes, n)
    _check_alignment({**arrays, "regimes": regimes})

    results = RegimeResults()
    results.insufficient = {}
    results.unclassified = int(sum(label is None for label in labels))
    results.min_bars = int(min_bars)
    for regime in REGIMES:
        where = np.flatnonzero(labels == regime)
        if where.size < min_bars:
            results.insufficient[regime] = int(where.size)
            continue
        metrics = evaluate_model(
            _take(predictions, where),
            _take(actuals, where),
            _take(returns, where),
            periods_per_year=periods_per_year,
            fee_bps=fee_bps,
        )
        results[regime] = {**metrics, "n_bars": float(where.size)}
    return results


def store_regime_metrics(
    brain: BrainLibrary,
    model_id: str,
    symbol: str,
    per_regime: Mapping[str, Mapping[str, Any]],
    evaluation_date: datetime | str | None = None,
) -> dict[str, dict[str, float]]:
    """Record each regime's finite metrics as one evaluation, in one transaction.

    Every regime's rows share one ``evaluation_date`` (now, unless given), which is what makes
    them one evaluation for :class:`brain_assets.selection.ModelSelector`. Undefined (None) and
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
