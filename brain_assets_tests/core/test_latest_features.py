"""``latest_features``: the predictor's few rows equal ``compute_features``' last rows.

Synthetic and real bars, every row requested and only the last few, and the edges where the
guarded ratios and fills decide: flat prices, zero volume, a history shorter than the warm-up.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pandas as pd
import pytest

from brain_assets.features.latest import LOOKBACK, latest_features
from brain_assets.features.technical import FEATURES, WARMUP_BARS, compute_features
from brain_assets.market_data.synthetic import signal_market
from brain_assets_tests.paths import REAL_HISTORIES

OHLCV = ("open", "high", "low", "close", "volume")
RTOL, ATOL = 1e-9, 1e-12


def latest(bars: pd.DataFrame, rows: int) -> np.ndarray:
    return latest_features(*(bars[name].to_numpy(dtype=np.float64) for name in OHLCV), rows=rows)


def assert_same_rows(bars: pd.DataFrame, rows: int) -> np.ndarray:
    """latest_features' rows, checked against compute_features' last ``rows`` rows."""
    got = latest(bars, rows)
    expected = compute_features(bars).to_numpy()[len(bars) - rows :]
    assert got.shape == (rows, len(FEATURES))
    for j, name in enumerate(FEATURES):
        # NaN (and inf) where compute_features has them, nowhere else.
        np.testing.assert_allclose(got[:, j], expected[:, j], rtol=RTOL, atol=ATOL, err_msg=name)
    return got


def real_bars(name: str) -> pd.DataFrame:
    """A real daily history, less its rows with a price <= 0 (the cleaning drops them, and the
    predictor refuses them)."""
    bars = pd.read_csv(REAL_HISTORIES / f"{name}.csv")
    positive = (bars[["open", "high", "low", "close"]] > 0).all(axis=1)
    return bars.loc[positive].reset_index(drop=True)


@pytest.mark.parametrize("rows", [1, 2, 6, 100, 600])
@pytest.mark.parametrize(("momentum", "seed"), [(0.3, 1), (-0.2, 7)])
def test_synthetic_bars(rows: int, momentum: float, seed: int) -> None:
    assert_same_rows(signal_market(600, momentum=momentum, seed=seed), rows)


def test_a_long_history_and_its_recent_bars() -> None:
    bars = signal_market(3000, momentum=0.3, seed=1)
    assert_same_rows(bars, 3000)
    # What the engine passes: 500 recent bars, and a sequence model's context rows.
    recent = bars.iloc[-500:].reset_index(drop=True)
    for rows in (1, 6, 24):
        got = assert_same_rows(recent, rows)
        assert np.isfinite(got).all()


@pytest.mark.parametrize("name", ["BTC-USD", "ETH-USD", "LTC-USD"])
@pytest.mark.parametrize("rows", [1, 30, 500])
def test_real_recent_bars(name: str, rows: int) -> None:
    assert_same_rows(real_bars(name).iloc[-500:].reset_index(drop=True), rows)


@pytest.mark.parametrize("name", ["ETH-USD", "LTC-USD"])
def test_real_full_history(name: str) -> None:
    # LTC's opens outside the day's range and its zero-volume days included.
    bars = real_bars(name)
    assert_same_rows(bars, len(bars))


def test_btc_full_history_differs_only_where_pandas_rolling_std_drifts() -> None:
    """pandas' rolling std updates one running sum over the whole series; after BTC's 2013-14
    swings it is off by about 2e-11 (relative) in 2015, which the cancellation in Bollinger %B
    near the lower band magnifies past 1e-9. There latest_features is the exact one."""
    bars = real_bars("BTC-USD")
    got = latest(bars, len(bars))
    expected = compute_features(bars).to_numpy()
    column = list(FEATURES).index("bb_pct_b_20")
    close = np.isclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
    assert close[:, np.arange(len(FEATURES)) != column].all()
    stray = np.flatnonzero(~close[:, column])
    assert len(stray) <= 3
    getcontext().prec = 40
    for row in stray:
        window = [Decimal(float(x)) for x in bars["close"].to_numpy()[row - 19 : row + 1]]
        mean = sum(window) / 20
        std = (sum((x - mean) ** 2 for x in window) / 19).sqrt()
        exact = float((Decimal(float(bars["close"].iloc[row])) - mean + 2 * std) / (4 * std))
        assert abs(got[row, column] - exact) < abs(expected[row, column] - exact)
        assert got[row, column] == pytest.approx(exact, rel=1e-9)


def bars_of(close: np.ndarray, volume: np.ndarray) -> pd.DataFrame:
    """Consistent candles around ``close`` (open = previous close), hourly."""
    n = len(close)
    open_ = np.concatenate(([close[0]], close[:-1]))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": volume,
        }
    )


def test_flat_prices_take_the_neutral_fills() -> None:
    n = 300
    flat = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
            **{name: np.full(n, 123.45) for name in ("open", "high", "low", "close")},
            "volume": np.full(n, 7.0),
        }
    )
    got = dict(zip(FEATURES, assert_same_rows(flat, 3).T, strict=True))
    neutral = {
        "rsi_14": 50.0,
        "vol_48": 0.0,
        "vol_ratio_6_24": 1.0,
        "stoch_k_14": 0.5,
        "bb_pct_b_20": 0.5,
        "bb_width_20": 0.0,
        "zscore_close_48": 0.0,
        "clv": 0.0,
        "body_ratio": 0.0,
        "volume_z_24": 0.0,
        "volume_ratio_24": 1.0,
        "volume_change": 0.0,
        "ret_skew_24": 0.0,
        "ret_kurt_24": 0.0,
    }
    for name, value in neutral.items():
        assert (got[name] == value).all(), name
    # The EMAs of a constant are that constant, to rounding.
    np.testing.assert_allclose(got["macd_line"], 0.0, atol=1e-15)

    # A flat stretch inside a moving market: flat windows, and the Wilder averages still fading.
    close = signal_market(300, seed=3)["close"].to_numpy().copy()
    close[150:260] = close[149]
    bars = bars_of(close, np.full(300, 5.0))
    for rows in (1, 60, 300):
        assert_same_rows(bars.iloc[:260], min(rows, 260))
        assert_same_rows(bars, rows)


def test_zero_volume_stretches() -> None:
    market = signal_market(400, seed=4)
    volume = market["volume"].to_numpy().copy()
    volume[100:160] = 0.0  # longer than the 24-bar window
    volume[200:210] = 0.0  # shorter
    volume[-30:] = 0.0
    bars = bars_of(market["close"].to_numpy(), volume)
    got = dict(zip(FEATURES, assert_same_rows(bars, 400).T, strict=True))
    assert got["volume_z_24"][-1] == 0.0
    assert got["volume_ratio_24"][-1] == 1.0
    assert got["volume_change"][-1] == 0.0
    for end in (130, 159, 165, 205, 215):
        assert_same_rows(bars.iloc[:end], 1)


@pytest.mark.parametrize("n", [1, 2, 14, 30, WARMUP_BARS, WARMUP_BARS + 1, LOOKBACK + 5])
def test_fewer_bars_than_the_warm_up(n: int) -> None:
    bars = signal_market(n + 1, seed=5).iloc[:n]
    got = assert_same_rows(bars, n)
    # Rows before WARMUP_BARS miss at least one feature; the candle features never wait.
    assert np.isnan(got[: min(n, WARMUP_BARS)]).any(axis=1).all()
    assert np.isfinite(got[:, list(FEATURES).index("hl_range")]).all()
    assert_same_rows(bars, 1)


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")
def test_missing_and_zero_values_match_too() -> None:
    """Bad bars (the predictor refuses them) give compute_features' NaN and inf all the same."""
    bars = signal_market(400, seed=6)
    bars.loc[200, "close"] = np.nan
    bars.loc[250, "volume"] = np.nan
    bars.loc[300, ["open", "high", "low", "close"]] = 0.0
    for end in (201, 230, 260, 310, 400):
        assert_same_rows(bars.iloc[:end], min(end, 120))


@pytest.mark.parametrize(
    ("rows", "columns"),
    [
        (0, None),
        (61, None),
        (True, None),
        (1.0, None),
        (1, ([1.0, 2.0], [1.0])),
        (1, (np.ones((2, 2)),) * 5),
    ],
)
def test_bad_arguments_are_refused(rows: object, columns: tuple[object, ...] | None) -> None:
    bars = signal_market(60, seed=8)
    arrays = [bars[name].to_numpy() for name in OHLCV]
    if columns is not None:
        arrays[: len(columns)] = columns
    with pytest.raises(ValueError, match=r"rows: expected|1-D arrays of one length"):
        latest_features(*arrays, rows=rows)  # type: ignore[arg-type]
