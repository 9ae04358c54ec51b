"""The modelling table of one symbol: features, target and the next bar's return."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from brain_assets.features.gaps import GapReport, gap_affected_rows
from brain_assets.features.technical import WARMUP_BARS, build_dataset
from brain_assets.quality.schemas import DEFAULT_MAX_GAP_BARS

TARGET = "target"
NEXT_RETURN = "next_return"
"""The one-bar return a position taken at t earns; equals the target when the horizon is 1."""

CODE_VERSION = "1"
"""Version of the modelling table's rules (features, target, gap exclusion), the ``code_version`` of
the ``features`` asset: bump it by hand (``"2"``, ``"3"``...) in a change that alters the rows or
columns it produces, so that Dagster marks the asset and those downstream of it as changed
(docs/asset-graph.md#code-versions)."""


@dataclass(frozen=True)
class Dataset:
    """The modelling table and what the gaps in the bars cost it."""

    table: pd.DataFrame
    """Features, :data:`TARGET` and :data:`NEXT_RETURN`, indexed by the bar's timestamp."""
    gaps: GapReport
    """``rows_excluded`` counts the rows of ``table`` dropped because a window spans a gap."""


def build_dataset_table(
    ohlcv: pd.DataFrame, horizon: int, *, max_gap_bars: float = DEFAULT_MAX_GAP_BARS
) -> Dataset:
    """The modelling table of ``ohlcv`` without the rows whose windows span a gap.

    Drops the warm-up rows, the rows whose target or next return is not known yet, and the rows
    whose feature look-back (:data:`WARMUP_BARS` bars) or target window crosses a spacing of
    more than ``max_gap_bars`` bars: their returns would silently span the missing stretch.
    Without gaps the table is exactly the features and target of ``build_dataset`` plus the
    next return.
    """
    X, y = build_dataset(ohlcv, horizon)
    timestamps = pd.DatetimeIndex(pd.to_datetime(ohlcv["timestamp"], utc=True))
    # Also rejects unsorted or duplicated timestamps, which would misalign the mask below.
    affected, report = gap_affected_rows(
        timestamps, horizon=horizon, max_gap_bars=max_gap_bars, lookback=WARMUP_BARS
    )
    close = pd.Series(ohlcv["close"].to_numpy(), index=timestamps)
    next_return = (close.shift(-1) / close - 1.0).reindex(X.index)
    # X is a fresh frame of build_dataset's that nobody else holds: the columns are added to it
    # in place, and rows are dropped in one selection, and only when there are any to drop. At a
    # year of minute bars each copy of the table is 160 MB; the table used to be copied twice.
    table = X
    table[TARGET] = y
    table[NEXT_RETURN] = next_return
    known = table[NEXT_RETURN].notna().to_numpy()

    drop = pd.Series(affected, index=timestamps).reindex(table.index).to_numpy(dtype=bool)
    # Counted among the rows whose next return is known: a row without one goes anyway.
    excluded = int((drop & known).sum())
    keep = known & ~drop
    if not keep.all():
        table = table.loc[keep]
    # The count of rows actually removed from this table (NaN rows from bad bars, say, would
    # already be gone and must not be counted twice).
    report = dataclasses.replace(report, rows_excluded=excluded)
    return Dataset(table=table, gaps=report)


def make_dataset(
    ohlcv: pd.DataFrame, horizon: int, *, max_gap_bars: float = DEFAULT_MAX_GAP_BARS
) -> pd.DataFrame:
    """The modelling table of :func:`build_dataset_table`, without the gap report."""
    return build_dataset_table(ohlcv, horizon, max_gap_bars=max_gap_bars).table


def split_columns(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(features, target, next_return) of a modelling table."""
    return table.drop(columns=[TARGET, NEXT_RETURN]), table[TARGET], table[NEXT_RETURN]


def recent_rows(table: pd.DataFrame, window: int | None) -> pd.DataFrame:
    """The most recent ``window`` rows of a modelling table (all of it when ``window`` is None):
    what the retrain fits and evaluates on, so that a market whose behaviour changed is learnt
    from its recent bars instead of being outvoted by years of older ones."""
    return table if window is None else table.iloc[-window:]
