"""The modelling table of one symbol: features, target and the next bar's return."""

from __future__ import annotations

import pandas as pd

from brain_assets.features.technical import build_dataset

TARGET = "target"
NEXT_RETURN = "next_return"
"""The one-bar return a position taken at t earns; equals the target when the horizon is 1."""


def make_dataset(ohlcv: pd.DataFrame, horizon: int) -> pd.DataFrame:
    X, y = build_dataset(ohlcv, horizon)
    timestamps = pd.DatetimeIndex(pd.to_datetime(ohlcv["timestamp"], utc=True))
    close = pd.Series(ohlcv["close"].to_numpy(), index=timestamps)
    next_return = (close.shift(-1) / close - 1.0).reindex(X.index)
    table = X.copy()
    table[TARGET] = y
    table[NEXT_RETURN] = next_return
    return table.dropna(subset=[NEXT_RETURN])


def split_columns(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(features, target, next_return) of a modelling table."""
    return table.drop(columns=[TARGET, NEXT_RETURN]), table[TARGET], table[NEXT_RETURN]
