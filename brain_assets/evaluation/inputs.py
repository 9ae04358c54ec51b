"""Checks on what an evaluation is given: bad input fails with a ValueError that names the
argument, before any metric is computed."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.calendar import periods_per_year as infer_periods_per_year
from brain_assets.evaluation.metrics import FloatArray, sign_positions

ArrayInput = Sequence[float] | np.ndarray | pd.Series
IndexInput = Sequence[Any] | pd.Index | pd.Series

MIN_OBSERVATIONS = 3
"""Fewest observations a metric or a statistic accepts (the CUSUM excepted, which runs from one
bar): the least for which a sample standard deviation (ddof=1), a skewness, an IC t-statistic and
the T - 1 degrees of freedom of the paired test are all defined. A floor for validity, not a
recommendation."""


def float_array(name: str, values: object) -> FloatArray:
    """A 1-D float copy of ``values`` without NaN or inf, or a ValueError that names it."""
    if values is None:
        raise ValueError(f"{name}: is required, got None")
    try:
        if isinstance(values, pd.Series | pd.Index):
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: must be numeric ({exc})") from exc
    if array.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional, got shape {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    return np.array(array, dtype=np.float64)


def same_length(lengths: Mapping[str, int]) -> int:
    """The one length of all the named inputs; a ValueError listing them when they differ."""
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={size}" for name, size in lengths.items())
        raise ValueError(f"length mismatch: {described}; all must have the same length")
    return next(iter(lengths.values()))


def series_alignment(named: Mapping[str, object]) -> None:
    """Refuse Series whose indexes differ: the arrays are paired by position, not by label.

    Two Series with different labels (say actuals already shifted by one bar) would otherwise be
    paired silently in a way the caller probably did not mean.
    """
    series = [(name, value) for name, value in named.items() if isinstance(value, pd.Series)]
    for (first_name, first), (name, other) in itertools.pairwise(series):
        if len(first) == len(other) and not first.index.equals(other.index):
            raise ValueError(
                f"{first_name} and {name}: pandas Series with different indexes; "
                "align them first (values are paired by position)"
            )


def fee(fee_bps: float) -> float:
    try:
        value = float(fee_bps)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fee_bps: must be a number, got {fee_bps!r}") from exc
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"fee_bps: must be a finite number >= 0, got {fee_bps!r}")
    return value


def positions(predictions: FloatArray, trades: object) -> FloatArray:
    """``trades`` as positions in [-1, 1]; without trades, the sign of each prediction."""
    if trades is None:
        return sign_positions(predictions)
    held = float_array("trades", trades)
    if held.size and (held.min() < -1.0 or held.max() > 1.0):
        raise ValueError(
            f"trades: positions must lie in [-1, 1], got min {held.min():g} and max {held.max():g}"
        )
    return held


def bar_index(index: IndexInput | None, predictions: object, n: int) -> pd.Index | None:
    """The timestamps (or labels) of the bars: ``index`` if given, else a Series' own index."""
    if index is None:
        return predictions.index if isinstance(predictions, pd.Series) else None
    resolved = pd.Index(index.to_numpy() if isinstance(index, pd.Series) else index)
    if len(resolved) != n:
        raise ValueError(f"index: has {len(resolved)} entries but the inputs have {n}")
    if not isinstance(resolved, pd.DatetimeIndex) and resolved.dtype == object:
        # Timestamps given as strings or datetime objects: make them a DatetimeIndex so that the
        # bar frequency can be inferred. Labels that are not timestamps stay plain labels (fine
        # for aligning the equity curve when periods_per_year is given explicitly).
        try:
            resolved = pd.DatetimeIndex(pd.to_datetime(resolved, utc=True))
        except (TypeError, ValueError, OverflowError):
            pass
    return resolved


def periods_per_year(value: float | None, index: pd.Index | None) -> float:
    """``value`` when given, else what the timestamps of ``index`` imply (8760 for 1h bars)."""
    if value is not None:
        try:
            ppy = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"periods_per_year: must be a number, got {value!r}") from exc
        if not math.isfinite(ppy) or ppy <= 0.0:
            raise ValueError(f"periods_per_year: must be a finite number > 0, got {value!r}")
        return ppy
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            "periods_per_year or a timestamp index is needed: pass periods_per_year, "
            "index=<timestamps>, or predictions as a pandas Series with a DatetimeIndex"
        )
    try:
        return float(infer_periods_per_year(index))
    except ValueError as exc:
        raise ValueError(f"index: cannot infer periods_per_year ({exc})") from exc
