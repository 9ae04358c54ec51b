"""Pandera schemas for the frames that flow through the pipeline.

The schemas say what is valid; :mod:`brain_assets.quality.run` runs them, decides the severity
(``OHLCVGapSchema`` is meant to run at WARN level, the others at ERROR level) and turns the
result into a JSON-friendly outcome.

Checks that compare columns (high against open and close, and so on) are dataframe-level
checks with explicit names, so that a failure report says which rule broke, not just which
column.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Index, Series

from brain_assets.defaults import MAX_GAP_BARS

DEFAULT_MAX_GAP_BARS = MAX_GAP_BARS

_UTC_NS = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]


def _finite(series: pd.Series) -> pd.Series:
    """True for finite values; NaN counts as finite here because nullability reports it."""
    values = series.to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(np.isfinite(values) | np.isnan(values), index=series.index)


def _strictly_increasing(values: pd.Series | pd.Index, index: pd.Index) -> pd.Series:
    """Row-wise: is each value greater than the one before it? (The first row always is.)"""
    stamps = pd.Series(np.asarray(values), index=index)
    ok = stamps > stamps.shift(1)
    ok.iloc[:1] = True
    return ok


class OHLCVSchema(pa.DataFrameModel):
    """Bars a model may be trained on (ERROR level).

    Timestamps unique and strictly increasing; prices > 0 and volume >= 0, all finite and
    present; candles consistent (high covers open and close, low is below both).
    """

    timestamp: Series[_UTC_NS] = pa.Field(unique=True)
    open: Series[float] = pa.Field(gt=0)
    high: Series[float] = pa.Field(gt=0)
    low: Series[float] = pa.Field(gt=0)
    close: Series[float] = pa.Field(gt=0)
    volume: Series[float] = pa.Field(ge=0)

    class Config:
        # Exactly the conventional columns: an extra one means the loader went wrong.
        strict = True

    @pa.check("open", "high", "low", "close", "volume", name="finite")
    @classmethod
    def _values_finite(cls, series: Series[float]) -> pd.Series:
        # gt=0 lets +inf through; a price of inf poisons every later ratio.
        return _finite(series)

    @pa.dataframe_check(name="timestamp_strictly_increasing")
    @classmethod
    def _timestamps_increase(cls, df: pd.DataFrame) -> pd.Series:
        return _strictly_increasing(df["timestamp"], df.index)

    @pa.dataframe_check(name="high_ge_open_close")
    @classmethod
    def _high_covers_body(cls, df: pd.DataFrame) -> pd.Series:
        return (df["high"] >= df["open"]) & (df["high"] >= df["close"])

    @pa.dataframe_check(name="low_le_open_close")
    @classmethod
    def _low_under_body(cls, df: pd.DataFrame) -> pd.Series:
        return (df["low"] <= df["open"]) & (df["low"] <= df["close"])


class OHLCVGapSchema(pa.DataFrameModel):
    """Missing stretches of bars (WARN level): no gap above ``max_gap_bars()`` median spacings.

    A gap does not make the data wrong, but rolling features straddle it, so it is worth a
    warning. Use :func:`gap_schema` for another threshold.
    """

    timestamp: Series[_UTC_NS]

    @classmethod
    def max_gap_bars(cls) -> float:
        """The largest tolerated gap, in median bar spacings."""
        return DEFAULT_MAX_GAP_BARS

    @pa.dataframe_check(name="no_big_gap")
    @classmethod
    def _no_big_gap(cls, df: pd.DataFrame) -> pd.Series:
        stamps = pd.Series(pd.DatetimeIndex(df["timestamp"]).asi8, index=df.index, dtype=float)
        steps = stamps.diff()
        positive = steps[steps > 0]
        ok = pd.Series(True, index=df.index)
        if positive.empty:
            # Fewer than two distinct bars: no spacing to judge (other checks cover this).
            return ok
        limit = cls.max_gap_bars() * float(positive.median())
        # A row fails when the bar before it is too far back; NaN steps (first row) pass.
        ok = ~(steps > limit)
        return ok


def gap_schema(max_gap_bars: float = DEFAULT_MAX_GAP_BARS) -> type[OHLCVGapSchema]:
    """``OHLCVGapSchema`` with another gap threshold (in median bar spacings)."""
    if not max_gap_bars > 1:
        raise ValueError(f"max_gap_bars: expected a number > 1, got {max_gap_bars!r}")
    if max_gap_bars == DEFAULT_MAX_GAP_BARS:
        return OHLCVGapSchema
    threshold = float(max_gap_bars)

    def _threshold(cls: type[OHLCVGapSchema]) -> float:
        return threshold

    name = f"OHLCVGapSchema_{threshold:g}".replace(".", "_")
    return type(name, (OHLCVGapSchema,), {"max_gap_bars": classmethod(_threshold)})


class FeaturesSchema(pa.DataFrameModel):
    """A features frame: UTC timestamps as a unique, increasing index; finite float columns."""

    timestamp: Index[_UTC_NS] = pa.Field(unique=True, check_name=True)
    feature: Series[float] = pa.Field(alias=".+", regex=True)

    class Config:
        strict = True

    @pa.check(".+", regex=True, name="finite")
    @classmethod
    def _features_finite(cls, series: Series[float]) -> pd.Series:
        return _finite(series)

    @pa.dataframe_check(name="index_strictly_increasing")
    @classmethod
    def _index_increases(cls, df: pd.DataFrame) -> pd.Series:
        return _strictly_increasing(df.index, df.index)


class ImportanceSchema(pa.DataFrameModel):
    """Feature importances: one row per feature, a finite importance and a rank from 1."""

    feature: Series[str] = pa.Field(unique=True)
    importance: Series[float]
    rank: Series[int] = pa.Field(ge=1)

    @pa.check("importance", name="finite")
    @classmethod
    def _importance_finite(cls, series: Series[float]) -> pd.Series:
        return _finite(series)


class MetricsSchema(pa.DataFrameModel):
    """Evaluation metrics in long form: a metric name and its finite value per row."""

    metric: Series[str]
    value: Series[float]

    @pa.check("value", name="finite")
    @classmethod
    def _value_finite(cls, series: Series[float]) -> pd.Series:
        return _finite(series)
