"""Technical features computed from OHLCV bars without looking ahead.

Every feature at bar ``t`` depends only on bars ``<= t``: the code uses trailing rolling
windows, ``ewm`` with ``adjust=False`` and shifts by positive lags. It never uses
``center=True``, backward filling, or a statistic over the whole series (no global mean,
no global scaling). ``brain_assets_tests/core/test_features.py`` proves it by replacing every bar
after ``t`` with noise and checking that rows ``<= t`` stay bit-for-bit identical.

Two pandas shortcuts are avoided on purpose: ``Series.rolling(...).skew()`` and ``.kurt()``
subtract the mean of the *whole* series for numerical stability, so their values shift (by a
rounding error, but still) when future bars change. The windowed moments here are computed
per window instead.

Ratios are guarded: a zero denominator (a flat price window, a stretch of zero volume) gives a
neutral value rather than an infinity, so the features stay finite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from brain_assets.market_data.base import require_ohlcv

FEATURES: dict[str, str] = {
    "ret_1": "log return over the last bar",
    "ret_3": "log return over the last 3 bars",
    "ret_6": "log return over the last 6 bars",
    "ret_12": "log return over the last 12 bars",
    "ret_24": "log return over the last 24 bars",
    "ret_1_lag1": "the previous bar's 1-bar log return",
    "ret_1_lag2": "the 1-bar log return two bars back",
    "vol_6": "realised volatility: std of 1-bar log returns over 6 bars",
    "vol_12": "realised volatility: std of 1-bar log returns over 12 bars",
    "vol_24": "realised volatility: std of 1-bar log returns over 24 bars",
    "vol_48": "realised volatility: std of 1-bar log returns over 48 bars",
    "vol_ratio_6_24": "short over long realised volatility (vol_6 / vol_24); 1 when vol_24 is 0",
    "parkinson_vol_24": "Parkinson high-low volatility estimate over 24 bars",
    "atr_14": "average true range (Wilder, 14 bars) divided by the close",
    "rsi_14": "relative strength index (Wilder, 14 bars), 0 to 100",
    "stoch_k_14": "stochastic %K: close within the 14-bar low-high range, 0 to 1",
    "macd_line": "MACD line: EMA(12) - EMA(26) of the close, divided by the close",
    "macd_signal": "MACD signal: EMA(9) of macd_line",
    "macd_hist": "MACD histogram: macd_line - macd_signal",
    "bb_pct_b_20": "Bollinger %B: close within the 20-bar mean +/- 2 std band (0.5 = mean)",
    "bb_width_20": "Bollinger band width: 4 std of the close over 20 bars divided by its mean",
    "zscore_close_48": "z-score of the close against its 48-bar mean and std",
    "ema_ratio_12": "close / EMA(12) of the close - 1",
    "ema_ratio_26": "close / EMA(26) of the close - 1",
    "ema_ratio_12_48": "EMA(12) / EMA(48) of the close - 1 (trend)",
    "dist_max_24": "close / highest high of the last 24 bars - 1 (<= 0)",
    "dist_min_24": "close / lowest low of the last 24 bars - 1 (>= 0)",
    "hl_range": "bar range (high - low) divided by the close",
    "clv": "close location value: ((close - low) - (high - close)) / (high - low), -1 to 1",
    "body_ratio": "candle body (close - open) over the bar range (high - low), -1 to 1",
    "upper_shadow": "upper wick (high - max(open, close)) divided by the close",
    "lower_shadow": "lower wick (min(open, close) - low) divided by the close",
    "volume_z_24": "z-score of the volume against its 24-bar mean and std; 0 when std is 0",
    "volume_ratio_24": "volume / its 24-bar mean; 1 when that mean is 0",
    "volume_change": "change in log(1 + volume) from the previous bar",
    "ret_skew_24": "skewness of 1-bar log returns over 24 bars; 0 for a flat window",
    "ret_kurt_24": "excess kurtosis of 1-bar log returns over 24 bars; 0 for a flat window",
}

# Row t of the features is complete from this many rows on (rows 0 .. WARMUP_BARS - 1 have at
# least one NaN): vol_48 needs 48 one-bar returns, and the first return needs a previous close.
WARMUP_BARS = 48

# Below this, a denominator is rounding noise around zero rather than information.
_TINY = 1e-12

# Windows of a windowed moment computed at once. Each window's statistic uses its own row only,
# so chunks give the same numbers bit for bit, and the (rows x window) temporaries stay a few MB
# instead of several copies of 100 MB at a year of minute bars.
_MOMENT_CHUNK_ROWS = 16_384


def _safe_ratio(numerator: pd.Series, denominator: pd.Series, fill: float) -> pd.Series:
    """``numerator / denominator`` with ``fill`` where the denominator is (almost) zero.

    NaN (warm-up) stays NaN so that the warm-up rows remain recognisable.
    """
    ratio = _safe_ratio_values(
        numerator.to_numpy(dtype=np.float64), denominator.to_numpy(dtype=np.float64), fill
    )
    return pd.Series(ratio, index=numerator.index)


def _safe_ratio_values(numerator: np.ndarray, denominator: np.ndarray, fill: float) -> np.ndarray:
    """:func:`_safe_ratio` on arrays, shared with ``features.latest`` so both apply one rule."""
    tiny = np.abs(denominator) <= _TINY
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = numerator / np.where(tiny, np.nan, denominator)
    return np.where(tiny & ~np.isnan(numerator), fill, ratio)


def _window_moment(
    values: pd.Series, window: int, statistic: Callable[[np.ndarray], np.ndarray]
) -> pd.Series:
    """``statistic`` of each trailing window of ``window`` values (NaN when one is missing).

    Each window is computed on its own values only, unlike pandas' rolling skew/kurt (see the
    module docstring).
    """
    data = values.to_numpy(dtype=float)
    out = np.full(data.shape, np.nan)
    if data.size >= window:
        windows = np.lib.stride_tricks.sliding_window_view(data, window)
        for start in range(0, len(windows), _MOMENT_CHUNK_ROWS):
            block = windows[start : start + _MOMENT_CHUNK_ROWS]
            first = window - 1 + start
            out[first : first + len(block)] = _moment_of_windows(block, statistic)
    return pd.Series(out, index=values.index)


def _moment_of_windows(
    windows: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``statistic`` of each row of ``windows`` (one window a row), NaN for an incomplete one."""
    with np.errstate(invalid="ignore", divide="ignore"):
        result = statistic(windows)
    complete = ~np.isnan(windows).any(axis=1)
    return np.where(complete, result, np.nan)


def _skew(windows: np.ndarray) -> np.ndarray:
    """Population skewness of each row; 0 for a row without spread."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    var = (centred**2).mean(axis=1)
    third = (centred**3).mean(axis=1)
    flat = var <= _TINY**2
    return np.where(flat, 0.0, third / np.where(flat, 1.0, var) ** 1.5)


def _excess_kurtosis(windows: np.ndarray) -> np.ndarray:
    """Population excess kurtosis of each row; 0 for a row without spread."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    var = (centred**2).mean(axis=1)
    fourth = (centred**4).mean(axis=1)
    flat = var <= _TINY**2
    return np.where(flat, 0.0, fourth / np.where(flat, 1.0, var) ** 2 - 3.0)


def _ema(values: pd.Series, span: int) -> pd.Series:
    """Recursive EMA that only ever looks back (``adjust=False``), NaN for the first bars."""
    return values.ewm(span=span, adjust=False, min_periods=span).mean()


def _wilder(values: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing (an EMA with alpha = 1 / period), NaN for the first bars."""
    return values.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()


def _timestamp_index(ohlcv: pd.DataFrame) -> pd.DatetimeIndex:
    """The bars' timestamps as a UTC index named ``timestamp``."""
    index = pd.DatetimeIndex(pd.to_datetime(ohlcv["timestamp"], utc=True), name="timestamp")
    return index


def compute_features(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """Every feature of :data:`FEATURES`, one row per bar, indexed by the bar's timestamp.

    The first :data:`WARMUP_BARS` rows hold NaN where a window is not yet full; later rows are
    finite for valid OHLCV input (positive prices, non-negative volume).
    """
    require_ohlcv(ohlcv, "ohlcv")
    index = _timestamp_index(ohlcv)
    o, h, lo, c, v = (
        pd.Series(ohlcv[name].to_numpy(dtype=float), index=index)
        for name in ("open", "high", "low", "close", "volume")
    )
    log_close = pd.Series(np.log(c.to_numpy()), index=index)
    r = log_close.diff()

    f: dict[str, pd.Series] = {}
    f.update(_return_features(log_close, r))
    f.update(_volatility_features(r, h, lo))
    f.update(_oscillator_features(h, lo, c))
    f.update(_trend_features(h, lo, c))
    f.update(_candle_features(o, h, lo, c))
    f.update(_volume_features(v))
    f["ret_skew_24"] = _window_moment(r, 24, _skew)
    f["ret_kurt_24"] = _window_moment(r, 24, _excess_kurtosis)

    # Without a copy: every feature is float64 already, and a copy of each would hold a second
    # set of columns until the frame (one more copy, its 2-D block) is built. Every series is on
    # ``index``, so the arrays line up by position.
    features = pd.DataFrame(
        {name: f[name].to_numpy(dtype=np.float64, copy=False) for name in FEATURES}, index=index
    )
    return features


def _return_features(log_close: pd.Series, r: pd.Series) -> dict[str, pd.Series]:
    """Log returns over trailing spans, and the last two 1-bar returns (``r``)."""
    f: dict[str, pd.Series] = {}
    for k in (1, 3, 6, 12, 24):
        f[f"ret_{k}"] = log_close - log_close.shift(k)
    f["ret_1_lag1"] = r.shift(1)
    f["ret_1_lag2"] = r.shift(2)
    return f


def _volatility_features(r: pd.Series, h: pd.Series, lo: pd.Series) -> dict[str, pd.Series]:
    """Realised volatility of the 1-bar returns ``r``, and Parkinson's high-low estimate."""
    f: dict[str, pd.Series] = {}
    for w in (6, 12, 24, 48):
        f[f"vol_{w}"] = r.rolling(w).std()
    f["vol_ratio_6_24"] = _safe_ratio(f["vol_6"], f["vol_24"], 1.0)
    hl_log_sq = pd.Series(np.log((h / lo).to_numpy()) ** 2, index=r.index)
    f["parkinson_vol_24"] = (hl_log_sq.rolling(24).mean() / (4.0 * np.log(2.0))) ** 0.5
    return f


def _oscillator_features(h: pd.Series, lo: pd.Series, c: pd.Series) -> dict[str, pd.Series]:
    """Average true range, RSI and stochastic %K."""
    f: dict[str, pd.Series] = {}
    prev_close = c.shift(1)
    true_range = pd.concat([h - lo, (h - prev_close).abs(), (lo - prev_close).abs()], axis=1).max(
        axis=1, skipna=False
    )
    f["atr_14"] = _wilder(true_range, 14) / c

    change = c.diff()
    gain = _wilder(change.clip(lower=0.0), 14)
    loss = _wilder((-change).clip(lower=0.0), 14)
    f["rsi_14"] = pd.Series(_rsi_values(gain.to_numpy(), loss.to_numpy()), index=c.index)

    low_14 = lo.rolling(14).min()
    high_14 = h.rolling(14).max()
    f["stoch_k_14"] = _safe_ratio(c - low_14, high_14 - low_14, 0.5)
    return f


def _rsi_values(gain: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """RSI from Wilder-smoothed gains and losses (shared with ``features.latest``)."""
    # No losses: RSI is 100 (50 when the price did not move at all).
    rs_fill = np.where(gain > _TINY, 100.0, 50.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = 100.0 - 100.0 / (1.0 + gain / np.where(loss > _TINY, loss, np.nan))
    return np.where((loss <= _TINY) & ~np.isnan(gain), rs_fill, rsi)


def _trend_features(h: pd.Series, lo: pd.Series, c: pd.Series) -> dict[str, pd.Series]:
    """MACD, Bollinger bands, the close's z-score, EMA ratios and distance to the 24-bar range."""
    f: dict[str, pd.Series] = {}
    ema_12 = _ema(c, 12)
    ema_26 = _ema(c, 26)
    ema_48 = _ema(c, 48)
    macd_line = (ema_12 - ema_26) / c
    macd_signal = macd_line.ewm(span=9, adjust=False, min_periods=9).mean()
    f["macd_line"] = macd_line
    f["macd_signal"] = macd_signal
    f["macd_hist"] = macd_line - macd_signal

    mean_20 = c.rolling(20).mean()
    std_20 = c.rolling(20).std()
    f["bb_pct_b_20"] = _safe_ratio(c - (mean_20 - 2.0 * std_20), 4.0 * std_20, 0.5)
    f["bb_width_20"] = 4.0 * std_20 / mean_20
    f["zscore_close_48"] = _safe_ratio(c - c.rolling(48).mean(), c.rolling(48).std(), 0.0)

    f["ema_ratio_12"] = c / ema_12 - 1.0
    f["ema_ratio_26"] = c / ema_26 - 1.0
    f["ema_ratio_12_48"] = ema_12 / ema_48 - 1.0

    f["dist_max_24"] = c / h.rolling(24).max() - 1.0
    f["dist_min_24"] = c / lo.rolling(24).min() - 1.0
    return f


def _candle_features(
    o: pd.Series, h: pd.Series, lo: pd.Series, c: pd.Series
) -> dict[str, pd.Series]:
    """The shape of each bar on its own: range, close location, body and wicks."""
    f: dict[str, pd.Series] = {}
    bar_range = h - lo
    f["hl_range"] = bar_range / c
    f["clv"] = _safe_ratio((c - lo) - (h - c), bar_range, 0.0)
    f["body_ratio"] = _safe_ratio(c - o, bar_range, 0.0)
    body_top = o.where(o >= c, c)
    body_bottom = o.where(o <= c, c)
    f["upper_shadow"] = (h - body_top) / c
    f["lower_shadow"] = (body_bottom - lo) / c
    return f


def _volume_features(v: pd.Series) -> dict[str, pd.Series]:
    """The volume against its 24-bar level, and its change from the previous bar."""
    f: dict[str, pd.Series] = {}
    vol_mean = v.rolling(24).mean()
    vol_std = v.rolling(24).std()
    z = _volume_z_values(v.to_numpy(), vol_mean.to_numpy(), vol_std.to_numpy())
    f["volume_z_24"] = pd.Series(z, index=v.index)
    f["volume_ratio_24"] = _safe_ratio(v, vol_mean, 1.0)
    log_volume = pd.Series(np.log1p(v.to_numpy()), index=v.index)
    f["volume_change"] = log_volume - log_volume.shift(1)
    return f


def _volume_z_values(volume: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The volume's z-score, 0 for a flat window (shared with ``features.latest``)."""
    # Scale the zero test to the volume level: tiny lots and huge lots are both legitimate.
    flat_volume = std <= 1e-9 * np.abs(mean) + _TINY
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (volume - mean) / np.where(flat_volume, np.nan, std)
    return np.where(flat_volume & ~np.isnan(std), 0.0, z)


def _check_horizon(horizon: int) -> int:
    """``horizon`` when it is an integer >= 1; a ValueError naming it otherwise."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon: expected an integer >= 1, got {horizon!r}")
    return int(horizon)


def make_target(ohlcv: pd.DataFrame, horizon: int = 1) -> pd.Series:
    """The forward return ``close[t + horizon] / close[t] - 1``, named ``target``.

    This is the only place that looks ahead, by design; the last ``horizon`` rows are NaN.
    """
    horizon = _check_horizon(horizon)
    require_ohlcv(ohlcv, "ohlcv")
    close = pd.Series(ohlcv["close"].to_numpy(dtype=float), index=_timestamp_index(ohlcv))
    target = close.shift(-horizon) / close - 1.0
    target.name = "target"
    return target


def build_dataset(ohlcv: pd.DataFrame, horizon: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """Features and target aligned on the same rows, ready for training.

    Drops the warm-up rows (features not yet defined) and the last ``horizon`` rows (target not
    yet known): exactly the rows where a feature or the target is NaN.
    """
    horizon = _check_horizon(horizon)
    features = compute_features(ohlcv)
    target = make_target(ohlcv, horizon)
    keep = features.notna().all(axis=1).to_numpy() & target.notna().to_numpy()
    return features.loc[keep], target.loc[keep]
