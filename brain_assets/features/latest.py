"""The features of the last few bars only: the predictor's hot path.

``Predictor.predict`` needs the features of the latest bar (and, for a sequence model, of the
context rows before it), but :func:`~brain_assets.features.technical.compute_features` builds
every feature of every bar it is given with pandas: about 10 ms for the few hundred recent bars
the engine passes, most of a prediction. :func:`latest_features` computes the same numbers for
the requested rows only, with numpy on plain arrays, in a fraction of a millisecond.

What it guarantees: its rows equal the last rows of ``compute_features`` for the same bars, to
rounding (``brain_assets_tests/core/test_latest_features.py`` checks every feature within a
relative 1e-9), NaN included (a row still in the warm-up). The two compute the same things in
different orders, nothing more:

* the recursive smoothings (the EMAs of MACD and the EMA ratios, Wilder's ATR and RSI) run over
  the whole history given, as pandas' ``ewm(adjust=False)`` does, starting at the first observed
  value when a series begins with NaN (``macd_line``, the close's change);
* every other feature reads a trailing window of at most :data:`LOOKBACK` bars, so only those
  windows of the requested rows are computed;
* the guarded ratios, the RSI's and the volume z-score's fill rules and the windowed skewness and
  kurtosis are technical.py's own functions, not copies.

A change of a feature's definition in technical.py must be made here too; the test fails until
it is.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from brain_assets.features.technical import (
    FEATURES,
    _excess_kurtosis,
    _moment_of_windows,
    _rsi_values,
    _safe_ratio_values,
    _skew,
    _volume_z_values,
)

__all__ = ["LOOKBACK", "latest_features"]

# Bars before a row that its windowed features read: vol_48 takes the std of 48 one-bar returns,
# and the first of them needs the close before.
LOOKBACK = 48

Columns = dict[str, np.ndarray]


def latest_features(
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    rows: int,
) -> np.ndarray:
    """The last ``rows`` rows of ``compute_features`` for these bars, ``(rows, len(FEATURES))``.

    The arrays are the bars' columns, oldest first, all of one length; columns of the result are
    in the order of :data:`~brain_assets.features.technical.FEATURES`.

    Raises:
        ValueError: arrays that are not 1-D or not of one length, or ``rows`` not within
            1 .. number of bars.
    """
    o, h, lo, c, v = _as_columns(open, high, low, close, volume)
    n = len(c)
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or not 1 <= rows <= n:
        raise ValueError(f"rows: expected an integer from 1 to the {n} bars given, got {rows!r}")
    rows = int(rows)
    # NaN before the first bar stands for "no bar": every window reaching there gives NaN, as
    # pandas' shifts and full-window rolling statistics do in the warm-up.
    span = rows + LOOKBACK
    to, th, tlo, tc, tv = (_tail(x, span) for x in (o, h, lo, c, v))
    # Bad bars (a zero or missing price) give inf or NaN features, as in compute_features, for
    # the caller to check; numpy's warnings would only repeat that.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(tc)
        # The first return of the tail lacks its previous close; no requested row reads it.
        r = np.concatenate(([np.nan], np.diff(log_close)))
        f: Columns = {}
        f.update(_return_features(log_close, r, rows))
        f.update(_volatility_features(r, th, tlo, rows))
        f.update(_smoothed_features(h, lo, c, rows))
        f.update(_window_features(th, tlo, tc, rows))
        f.update(_candle_features(to[-rows:], th[-rows:], tlo[-rows:], tc[-rows:]))
        f.update(_volume_features(tv, rows))
        returns_24 = _windows(r, 24, rows)
        f["ret_skew_24"] = _moment_of_windows(returns_24, _skew)
        f["ret_kurt_24"] = _moment_of_windows(returns_24, _excess_kurtosis)
    return np.column_stack([f[name] for name in FEATURES])


def _as_columns(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    columns = tuple(np.asarray(x, dtype=np.float64) for x in arrays)
    shapes = {x.shape for x in columns}
    if len(shapes) != 1 or columns[0].ndim != 1:
        raise ValueError(
            "open, high, low, close, volume: expected 1-D arrays of one length, got shapes "
            f"{[x.shape for x in columns]}"
        )
    return columns


def _tail(values: np.ndarray, span: int) -> np.ndarray:
    """The last ``span`` values, NaN in front when there are fewer."""
    if len(values) >= span:
        return values[-span:]
    return np.concatenate((np.full(span - len(values), np.nan), values))


def _lagged(values: np.ndarray, lag: int, rows: int) -> np.ndarray:
    """The values ``lag`` bars before each of the last ``rows``."""
    end = len(values) - lag
    return values[end - rows : end]


def _windows(values: np.ndarray, window: int, rows: int) -> np.ndarray:
    """The trailing windows of the last ``rows`` values, one a row: ``(rows, window)``.

    A narrower window of the same rows is a column slice of it (``windows[:, -narrower:]``).
    """
    # A copy by fancy indexing: a quarter of sliding_window_view's cost at the hot path's one row.
    first = len(values) - rows - window + 1
    return values[np.arange(first, first + rows)[:, np.newaxis] + np.arange(window)]


def _mean_std(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=1) of each window, NaN for one with a missing value."""
    size = windows.shape[1]
    mean = windows.sum(axis=1) / size
    centred = windows - mean[:, np.newaxis]
    std = np.sqrt((centred * centred).sum(axis=1) / (size - 1))
    # pandas' rolling mean and std are exact on a window of one repeated value (the value, 0);
    # a two-pass mean of it may be off by an ulp, and the std a rounding error above zero.
    same = (windows == windows[:, :1]).all(axis=1)
    return np.where(same, windows[:, 0], mean), np.where(same, 0.0, std)


def _ewm(values: np.ndarray, alpha: float, min_periods: int) -> np.ndarray:
    """``ewm(alpha=alpha, adjust=False, min_periods=min_periods).mean()`` of ``values``.

    As pandas, the recursion starts at the first observed value and a row is NaN until
    ``min_periods`` values have been observed.
    """
    out = np.full(values.shape, np.nan)
    observed = ~np.isnan(values)
    if not observed.any():
        return out
    first = int(np.argmax(observed))
    if not np.isfinite(values[first:]).all():
        # pandas fades the weight across a missing value and starts afresh after a NaN mean (inf
        # meeting -inf); only bad input has either, so pandas itself handles it rather than a
        # second implementation of those rules.
        smoothed = pd.Series(values).ewm(alpha=alpha, adjust=False, min_periods=min_periods)
        return smoothed.mean().to_numpy(dtype=np.float64)
    out[first] = values[first]
    out[first + 1 :] = _recursion(values[first + 1 :], alpha, values[first])
    out[: first + min_periods - 1] = np.nan
    return out


_BLOCK = 128
"""Steps of the recursion computed at once (a few matrix-vector products for 500 bars)."""


@functools.lru_cache(maxsize=16)
def _block_weights(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The weights of a block of the recursion: ``alpha * decay**(i - j)`` for ``j <= i``, and
    ``decay**(i + 1)``, the weight of the value before the block."""
    decay = 1.0 - alpha
    steps = np.arange(_BLOCK)
    lag = np.subtract.outer(steps, steps)
    inside = np.where(lag >= 0, alpha * decay ** np.clip(lag, 0, None), 0.0)
    return inside, decay ** (steps + 1)


def _recursion(values: np.ndarray, alpha: float, before: float) -> np.ndarray:
    """``y[t] = alpha * values[t] + (1 - alpha) * y[t - 1]`` with ``y[-1] = before``.

    A block at a time, without scipy (half a second to import, which the engine's first
    prediction would pay): within a block every value is a weighted sum of the block's inputs and
    the value before it. The powers stay far from underflow in a block of 128 (the smallest
    weight, for the 12-bar EMA, is about 1e-9), and the sums agree with ``lfilter`` and pandas to
    about 1e-15 relative (brain_assets_tests/core/test_latest_features.py checks 1e-9).
    """
    inside, carried = _block_weights(alpha)
    out = np.empty(len(values))
    for start in range(0, len(values), _BLOCK):
        stop = min(start + _BLOCK, len(values))
        size = stop - start
        out[start:stop] = inside[:size, :size] @ values[start:stop] + carried[:size] * before
        before = out[stop - 1]
    return out


def _ema(values: np.ndarray, span: int) -> np.ndarray:
    return _ewm(values, 2.0 / (span + 1.0), span)


def _wilder(values: np.ndarray, period: int) -> np.ndarray:
    return _ewm(values, 1.0 / period, period)


def _return_features(log_close: np.ndarray, r: np.ndarray, rows: int) -> Columns:
    f: Columns = {}
    for k in (1, 3, 6, 12, 24):
        f[f"ret_{k}"] = log_close[-rows:] - _lagged(log_close, k, rows)
    f["ret_1_lag1"] = _lagged(r, 1, rows)
    f["ret_1_lag2"] = _lagged(r, 2, rows)
    return f


def _volatility_features(r: np.ndarray, h: np.ndarray, lo: np.ndarray, rows: int) -> Columns:
    f: Columns = {}
    returns_48 = _windows(r, 48, rows)
    for w in (6, 12, 24, 48):
        f[f"vol_{w}"] = _mean_std(returns_48[:, -w:])[1]
    f["vol_ratio_6_24"] = _safe_ratio_values(f["vol_6"], f["vol_24"], 1.0)
    hl_log_sq = np.log(h[-(rows + 23) :] / lo[-(rows + 23) :]) ** 2
    mean_24 = _mean_std(_windows(hl_log_sq, 24, rows))[0]
    f["parkinson_vol_24"] = (mean_24 / (4.0 * np.log(2.0))) ** 0.5
    return f


def _smoothed_features(h: np.ndarray, lo: np.ndarray, c: np.ndarray, rows: int) -> Columns:
    """The features with a recursive smoothing: ATR, RSI, MACD and the EMA ratios.

    They take the whole history (``h``, ``lo``, ``c`` untrimmed).
    """
    f: Columns = {}
    prev_close = np.concatenate(([np.nan], c[:-1]))
    true_range = np.maximum(np.maximum(h - lo, np.abs(h - prev_close)), np.abs(lo - prev_close))
    last_close = c[-rows:]
    f["atr_14"] = _wilder(true_range, 14)[-rows:] / last_close

    change = np.concatenate(([np.nan], np.diff(c)))
    gain = _wilder(np.maximum(change, 0.0), 14)[-rows:]
    loss = _wilder(np.maximum(-change, 0.0), 14)[-rows:]
    f["rsi_14"] = _rsi_values(gain, loss)

    ema_12 = _ema(c, 12)
    ema_26 = _ema(c, 26)
    macd_line = (ema_12 - ema_26) / c
    macd_signal = _ema(macd_line, 9)[-rows:]
    f["macd_line"] = macd_line[-rows:]
    f["macd_signal"] = macd_signal
    f["macd_hist"] = f["macd_line"] - macd_signal

    ema_12, ema_26 = ema_12[-rows:], ema_26[-rows:]
    ema_48 = _ema(c, 48)[-rows:]
    f["ema_ratio_12"] = last_close / ema_12 - 1.0
    f["ema_ratio_26"] = last_close / ema_26 - 1.0
    f["ema_ratio_12_48"] = ema_12 / ema_48 - 1.0
    return f


def _window_features(h: np.ndarray, lo: np.ndarray, c: np.ndarray, rows: int) -> Columns:
    """Stochastic %K, Bollinger bands, the close's z-score and distance to the 24-bar range."""
    f: Columns = {}
    last_close = c[-rows:]
    low_24, high_24 = _windows(lo, 24, rows), _windows(h, 24, rows)
    low_14 = low_24[:, -14:].min(axis=1)
    high_14 = high_24[:, -14:].max(axis=1)
    f["stoch_k_14"] = _safe_ratio_values(last_close - low_14, high_14 - low_14, 0.5)

    close_48 = _windows(c, 48, rows)
    mean_20, std_20 = _mean_std(close_48[:, -20:])
    lower_band = mean_20 - 2.0 * std_20
    f["bb_pct_b_20"] = _safe_ratio_values(last_close - lower_band, 4.0 * std_20, 0.5)
    f["bb_width_20"] = 4.0 * std_20 / mean_20
    mean_48, std_48 = _mean_std(close_48)
    f["zscore_close_48"] = _safe_ratio_values(last_close - mean_48, std_48, 0.0)

    f["dist_max_24"] = last_close / high_24.max(axis=1) - 1.0
    f["dist_min_24"] = last_close / low_24.min(axis=1) - 1.0
    return f


def _candle_features(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> Columns:
    f: Columns = {}
    bar_range = h - lo
    f["hl_range"] = bar_range / c
    f["clv"] = _safe_ratio_values((c - lo) - (h - c), bar_range, 0.0)
    f["body_ratio"] = _safe_ratio_values(c - o, bar_range, 0.0)
    f["upper_shadow"] = (h - np.where(o >= c, o, c)) / c
    f["lower_shadow"] = (np.where(o <= c, o, c) - lo) / c
    return f


def _volume_features(v: np.ndarray, rows: int) -> Columns:
    f: Columns = {}
    last_volume = v[-rows:]
    mean_24, std_24 = _mean_std(_windows(v, 24, rows))
    f["volume_z_24"] = _volume_z_values(last_volume, mean_24, std_24)
    f["volume_ratio_24"] = _safe_ratio_values(last_volume, mean_24, 1.0)
    log_volume = np.log1p(v[-(rows + 1) :])
    f["volume_change"] = np.diff(log_volume)
    return f
