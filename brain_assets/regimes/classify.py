"""A volatility regime for every bar, from information available at that bar only.

The rule, for bars ``t = 0, 1, ...`` in time order:

1. ``r_t = ln(close_t / close_{t-1})``, the one-bar log return.
2. ``realized_vol_t`` is the sample standard deviation (ddof=1) of the last ``window`` returns
   ``r_{t-window+1} .. r_t`` (default 24: one day of hourly bars). It is undefined for the first
   ``window`` bars.
3. ``vol_percentile_t`` is the mid-rank of ``realized_vol_t`` among the defined readings of the
   trailing ``lookback`` bars ``t-lookback+1 .. t`` (itself included; default 720: thirty days of
   hourly bars): ``(readings below + half the readings equal) / readings``. It is undefined until
   at least ``min_history`` readings (default 168: a week) exist. The mid-rank puts a flat
   stretch of identical readings at 0.5 (normal) instead of at either extreme.
4. ``regime_t``: percentile below 0.25 is ``low``, below 0.75 ``normal``, below 0.95 ``high``,
   otherwise ``extreme``. Bars with an undefined percentile get no regime (``None``), never a
   guess.

Every quantity at bar t uses closes up to and including ``close_t`` and nothing later, so the
regime of a bar is fixed once the bar has closed: appending or changing later bars never changes
it. A strategy deciding the position for bar t+1 may therefore use the regime of bar t.

Volatility is judged against the symbol's own recent history, not against fixed thresholds, so
the same rule fits BTC and a quiet stablecoin pair and follows slow changes in a market's level
of volatility. Bars are assumed evenly spaced: a missing bar makes one return span the gap.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

REGIMES = ("low", "normal", "high", "extreme")
"""The regime labels, from calm to wild: the order every report and ranking lists them in."""

DEFAULT_WINDOW = 24
DEFAULT_LOOKBACK = 720
DEFAULT_MIN_HISTORY = 168

# Upper percentile bounds (exclusive) of low, normal and high; anything above is extreme.
LOW_UPPER = 0.25
NORMAL_UPPER = 0.75
HIGH_UPPER = 0.95

REGIME_COLUMNS = ("realized_vol", "vol_percentile", "regime")

# Rows of the trailing-percentile computation handled at once: bounds the memory of the
# (rows x lookback) comparison to a few tens of MB whatever the length of the series.
_CHUNK_ROWS = 4096


def _count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return int(value)


def bar_times(frame: pd.DataFrame, name: str) -> pd.DatetimeIndex:
    """The UTC bar times of ``frame``: its ``timestamp`` column, else its DatetimeIndex.

    Naive times are taken as UTC. Order is the caller's to check: classification walks forward
    in time, storage only needs each bar once.
    """
    if "timestamp" in frame.columns:
        raw: Any = frame["timestamp"]
    elif isinstance(frame.index, pd.DatetimeIndex):
        raw = frame.index
    else:
        raise ValueError(f"{name}: needs a 'timestamp' column or a DatetimeIndex")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(raw, utc=True))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: timestamps are not readable as datetimes ({exc})") from exc
    if index.hasnans:
        raise ValueError(f"{name}: timestamps contain NaT")
    return index.rename("timestamp")


def _increasing_times(ohlcv: pd.DataFrame) -> pd.DatetimeIndex:
    index = bar_times(ohlcv, "ohlcv")
    if len(index) > 1 and not (np.diff(index.asi8) > 0).all():
        # The rule walks forward in time; sorting here would hide a data problem that the
        # quality checks are meant to report.
        raise ValueError("ohlcv: timestamps must be strictly increasing (sorted, no duplicates)")
    return index


def _numbers(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    try:
        return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}[{column!r}]: must be numeric ({exc})") from exc


def _closes(ohlcv: pd.DataFrame) -> np.ndarray:
    if "close" not in ohlcv.columns:
        raise ValueError("ohlcv: needs a 'close' column")
    close = _numbers(ohlcv, "close", "ohlcv")
    bad = ~np.isfinite(close) | (close <= 0.0)
    if bad.any():
        raise ValueError(
            f"ohlcv: close has {int(bad.sum())} non-positive, NaN or infinite value(s)"
        )
    return close


def realized_volatility(close: np.ndarray, window: int) -> np.ndarray:
    """Rolling sample std of one-bar log returns; NaN for the first ``window`` bars."""
    returns = np.full(close.size, np.nan)
    returns[1:] = np.diff(np.log(close))
    # pandas' fixed-window std runs forward through the data, so each value depends only on the
    # returns inside its window and before it: no later bar can reach back into it.
    vol = pd.Series(returns).rolling(window, min_periods=window).std(ddof=1).to_numpy()
    return np.asarray(vol, dtype=np.float64)


def trailing_percentile(values: np.ndarray, lookback: int, min_history: int) -> np.ndarray:
    """Mid-rank of each value among the defined values of its trailing ``lookback`` window."""
    n = values.size
    result = np.full(n, np.nan)
    if n == 0:
        return result
    padded = np.concatenate([np.full(lookback - 1, np.nan), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, lookback)
    for start in range(0, n, _CHUNK_ROWS):
        block = windows[start : start + _CHUNK_ROWS]
        current = block[:, -1:]
        valid = ~np.isnan(block)
        readings = valid.sum(axis=1)
        below = (block < current).sum(axis=1)
        equal = (block == current).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rank = (below + 0.5 * equal) / readings
        usable = ~np.isnan(current[:, 0]) & (readings >= min_history)
        result[start : start + block.shape[0]] = np.where(usable, rank, np.nan)
    return result


def regime_of_percentile(percentile: np.ndarray) -> np.ndarray:
    """The regime label of each percentile (object array; None where the percentile is NaN)."""
    labels = np.full(percentile.size, None, dtype=object)
    defined = ~np.isnan(percentile)
    band = np.searchsorted(np.array([LOW_UPPER, NORMAL_UPPER, HIGH_UPPER]), percentile, "right")
    labels[defined] = np.array(REGIMES, dtype=object)[band[defined]]
    return labels


def classify_regimes(
    ohlcv: pd.DataFrame,
    *,
    window: int = DEFAULT_WINDOW,
    lookback: int = DEFAULT_LOOKBACK,
    min_history: int = DEFAULT_MIN_HISTORY,
) -> pd.DataFrame:
    """The realised volatility, its trailing percentile and the regime of every bar.

    ``ohlcv`` has a ``close`` column and timestamps (a ``timestamp`` column, as every market-data
    source gives, or a DatetimeIndex), strictly increasing. Returns a frame indexed by the UTC
    timestamps (named ``timestamp``) with columns ``realized_vol`` and ``vol_percentile``
    (float, NaN while undefined) and ``regime`` (``'low'``, ``'normal'``, ``'high'``,
    ``'extreme'`` or ``None``). See the module docstring for the rule.

    Raises:
        ValueError: a window below 2, a lookback below 2, a min_history outside 1..lookback,
            missing or unsorted timestamps, or a close that is missing, non-positive or not
            finite. The message names the argument.
    """
    if not isinstance(ohlcv, pd.DataFrame):
        raise ValueError(f"ohlcv: must be a pandas DataFrame, got {type(ohlcv).__name__}")
    window = _count(window, "window", 2)
    lookback = _count(lookback, "lookback", 2)
    min_history = _count(min_history, "min_history", 1)
    if min_history > lookback:
        raise ValueError(f"min_history: must not exceed lookback ({lookback}), got {min_history}")
    index = _increasing_times(ohlcv)
    close = _closes(ohlcv)
    vol = realized_volatility(close, window)
    percentile = trailing_percentile(vol, lookback, min_history)
    return regime_frame(index, vol, percentile, regime_of_percentile(percentile))


def regime_frame(
    index: pd.DatetimeIndex, realized_vol: Any, vol_percentile: Any, regime: Any
) -> pd.DataFrame:
    """A frame of classify_regimes' shape (``timestamp`` index, the three REGIME_COLUMNS)."""
    return pd.DataFrame(
        {
            "realized_vol": np.asarray(realized_vol, dtype=np.float64),
            "vol_percentile": np.asarray(vol_percentile, dtype=np.float64),
            "regime": pd.Series(regime, index=index, dtype=object),
        },
        index=index,
    )


def current_regime(frame: pd.DataFrame) -> dict[str, Any] | None:
    """The last classified bar of a :func:`classify_regimes` frame, or None if none has one.

    Returns ``{'timestamp', 'regime', 'realized_vol', 'percentile'}``.
    """
    missing = [column for column in REGIME_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"frame: lacks column(s) {missing}; pass classify_regimes' output")
    classified = frame[frame["regime"].notna()]
    if classified.empty:
        return None
    last = classified.iloc[-1]
    return {
        "timestamp": pd.Timestamp(classified.index[-1]),
        "regime": str(last["regime"]),
        "realized_vol": float(last["realized_vol"]),
        "percentile": float(last["vol_percentile"]),
    }


def classified_rows(
    frame: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The classified bars of a classify_regimes frame, validated, as column arrays in time order.

    Returns (bar times as int64 microseconds since the epoch, UTC; regimes; realized_vol;
    vol_percentile). Bars without a regime (not enough history yet) are skipped; every other bar
    must be whole.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame: must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in REGIME_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"frame: lacks column(s) {missing}; pass classify_regimes' output")
    times = bar_times(frame, "frame")
    if times.has_duplicates:
        raise ValueError("frame: duplicate timestamps")
    labels = frame["regime"].to_numpy(dtype=object)
    keep = ~pd.isna(labels)
    unknown = sorted({str(label) for label in labels[keep] if label not in REGIMES})
    if unknown:
        raise ValueError(
            f"frame['regime']: unknown label(s) {unknown}; valid regimes are "
            f"{', '.join(REGIMES)} (None for an unclassified bar)"
        )
    vol = _numbers(frame, "realized_vol", "frame")[keep]
    percentile = _numbers(frame, "vol_percentile", "frame")[keep]
    bad_vol = int(np.count_nonzero(~np.isfinite(vol) | (vol < 0.0)))
    if bad_vol:
        raise ValueError(
            f"frame['realized_vol']: {bad_vol} classified bar(s) with a negative, NaN or "
            "infinite value"
        )
    bad_pct = int(np.count_nonzero(~np.isfinite(percentile) | (percentile < 0) | (percentile > 1)))
    if bad_pct:
        raise ValueError(
            f"frame['vol_percentile']: {bad_pct} classified bar(s) outside [0, 1] or NaN"
        )
    # Time order gives concurrent writers of one symbol the same lock order (no deadlock).
    order = np.argsort(times.asi8[keep], kind="stable")
    micros = times[keep].as_unit("us").asi8[order]
    return micros, labels[keep][order].astype(str), vol[order], percentile[order]
