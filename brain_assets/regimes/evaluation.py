"""How a model does in each volatility regime.

Each regime's bars are evaluated with :func:`brain_assets.evaluation.comprehensive.evaluate_model`
as one series in time order. The strategy metrics therefore stitch the regime's separate stretches
together: a position change between the last bar of one stretch and the first bar of the next is
charged once, and trading done outside the regime is not. That is the price of comparing models on
the same bars; the forecast metrics (IC, hit rate, RMSE) are unaffected.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

import brain_assets.evaluation.inputs as check
from brain_assets.defaults import FEE_BPS
from brain_assets.evaluation.comprehensive import evaluate_model
from brain_assets.evaluation.inputs import MIN_OBSERVATIONS, ArrayInput
from brain_assets.regimes.classify import REGIMES

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
    fee_bps: float = FEE_BPS,
    min_bars: int = MIN_REGIME_BARS,
    positions: ArrayInput | None = None,
) -> RegimeResults:
    """evaluate_model's metrics for each regime with at least ``min_bars`` bars.

    ``regimes[t]`` is the regime of bar t (None or NaN: unclassified), paired with the other
    inputs by position. Every evaluated regime's metrics carry ``n_bars``; regimes with fewer
    bars are absent and listed in ``result.insufficient`` (see :class:`RegimeResults`).
    ``periods_per_year`` is required because a regime's bars have gaps that would defeat
    inferring it from timestamps. ``positions`` are the positions held over each bar (those of
    the whole record, cut by regime); without them the sign of each prediction.

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
    if positions is not None:
        arrays["positions"] = positions
    n = check.same_length({name: _length(name, value) for name, value in arrays.items()})
    labels = _regime_labels(regimes, n)
    check.series_alignment({**arrays, "regimes": regimes})

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
            None if positions is None else _take(positions, where),
            periods_per_year=periods_per_year,
            fee_bps=fee_bps,
        )
        results[regime] = {**metrics, "n_bars": float(where.size)}
    return results
