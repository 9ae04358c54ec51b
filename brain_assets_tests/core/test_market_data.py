"""Market data sources: synthetic realism and determinism, files, ccxt rows, the factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy import stats

from brain_assets.market_data import (
    OHLCV_COLUMNS,
    REGIMES,
    FileSource,
    MarketData,
    MarketDataSource,
    SyntheticSource,
    make_source,
    ohlcv_from_ccxt,
    symbol_file_stem,
)
from brain_assets.quality.run import ohlcv_checks
from brain_assets.quality.schemas import OHLCVSchema

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


@pytest.fixture(scope="module")
def btc() -> MarketData:
    return SyntheticSource().load("BTC/USDT")


def _log_returns(frame: pd.DataFrame) -> pd.Series:
    return np.log(frame["close"]).diff().dropna()


def _assert_ohlcv_layout(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(OHLCV_COLUMNS)
    assert isinstance(frame.index, pd.RangeIndex)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    for name in OHLCV_COLUMNS[1:]:
        assert frame[name].dtype == np.float64, name


# --- synthetic ------------------------------------------------------------------------------


def test_synthetic_is_deterministic_per_symbol_and_seed(btc: MarketData) -> None:
    again = SyntheticSource().load("BTC/USDT")
    assert_frame_equal(btc.frame, again.frame, check_exact=True)
    eth = SyntheticSource().load("ETH/USDT")
    assert not np.allclose(btc.frame["close"].to_numpy(), eth.frame["close"].to_numpy())
    other_seed = SyntheticSource(seed=8).load("BTC/USDT")
    assert not btc.frame["close"].equals(other_seed.frame["close"])


def test_synthetic_layout_and_metadata(btc: MarketData) -> None:
    _assert_ohlcv_layout(btc.frame)
    assert len(btc.frame) == 4000
    assert btc.symbol == "BTC/USDT"
    assert btc.source == "synthetic"
    assert btc.metadata["synthetic"] is True
    assert btc.metadata["source"] == "synthetic"
    assert btc.metadata["seed"] == 7
    assert btc.frequency == "1h"
    assert btc.bar_seconds == 3600.0
    assert btc.frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert isinstance(SyntheticSource(), MarketDataSource)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_all_four_volatility_regimes_occur(symbol: str) -> None:
    data = SyntheticSource().load(symbol)
    counts = data.metadata["regime_counts"]
    assert set(counts) == set(REGIMES)
    assert all(count > 0 for count in counts.values()), counts
    realised = _log_returns(data.frame).rolling(24).std().dropna()
    low, high = realised.quantile(0.05), realised.quantile(0.95)
    assert high / low > 4, (symbol, high / low)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_returns_have_fat_tails(symbol: str) -> None:
    returns = _log_returns(SyntheticSource().load(symbol).frame)
    pearson_kurtosis = float(stats.kurtosis(returns.to_numpy(), fisher=False))
    assert pearson_kurtosis > 3.0


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_volume_rises_with_absolute_return(symbol: str) -> None:
    frame = SyntheticSource().load(symbol).frame
    returns = np.log(frame["close"]).diff()
    corr = returns.abs().corr(frame["volume"])
    assert corr > 0.2, corr


def test_returns_hold_a_weak_predictable_component() -> None:
    autocorrs = [
        float(_log_returns(SyntheticSource().load(symbol).frame).autocorr())
        for symbol in (*SYMBOLS, "BNB/USDT", "XRP/USDT")
    ]
    assert np.mean(autocorrs) > 0.02, autocorrs
    # Weak: nothing that makes the series trivially predictable.
    assert max(autocorrs) < 0.3, autocorrs


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_synthetic_candles_are_consistent_and_pass_the_schema(symbol: str) -> None:
    frame = SyntheticSource().load(symbol).frame
    body_top = frame[["open", "close"]].max(axis=1)
    body_bottom = frame[["open", "close"]].min(axis=1)
    assert (frame["high"] >= body_top).all()
    assert (frame["low"] <= body_bottom).all()
    assert (frame[["open", "high", "low", "close"]] > 0).all().all()
    assert (frame["volume"] >= 0).all()
    np.testing.assert_array_equal(frame["open"].to_numpy()[1:], frame["close"].to_numpy()[:-1])
    OHLCVSchema.validate(frame, lazy=True)
    outcomes = ohlcv_checks(frame, min_rows=100)
    assert all(outcome.passed for outcome in outcomes), [o.message for o in outcomes]


@pytest.mark.parametrize(
    ("bar", "seconds", "label"),
    [("1min", 60, "1min"), ("15min", 900, "15min"), ("4h", 14400, "4h"), ("1d", 86400, "1d")],
)
def test_synthetic_bar_is_configurable(bar: str, seconds: int, label: str) -> None:
    data = SyntheticSource(n_bars=50, bar=bar, start="2024-03-01T12:00:00Z").load("BTC/USDT")
    steps = data.frame["timestamp"].diff().dropna().dt.total_seconds()
    assert (steps == seconds).all()
    assert data.frequency == label
    assert data.frame["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 12:00", tz="UTC")


@pytest.mark.parametrize("bar", ["30s", "2d", "not-a-bar"])
def test_synthetic_rejects_bars_outside_the_range(bar: str) -> None:
    with pytest.raises(ValueError, match="bar"):
        SyntheticSource(bar=bar)


def test_synthetic_rejects_bad_sizes_and_symbols() -> None:
    with pytest.raises(ValueError, match="n_bars"):
        SyntheticSource(n_bars=0)
    with pytest.raises(ValueError, match="symbol"):
        SyntheticSource().load("  ")


# --- factory --------------------------------------------------------------------------------


def test_make_source_builds_each_kind(tmp_path: Path) -> None:
    synthetic = make_source("synthetic", seed=3, n_bars=10)
    assert isinstance(synthetic, SyntheticSource)
    assert synthetic.name == "synthetic"
    files = make_source("files", folder=tmp_path)
    assert isinstance(files, FileSource)
    assert files.name == "files"


def test_make_source_rejects_an_unknown_kind_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="kind") as info:
        make_source("exchange")
    assert "'synthetic'" in str(info.value)
    assert "'files'" in str(info.value)
    with pytest.raises(ValueError, match="synthetic"):
        make_source("synthetic", folder="x")


# --- files ----------------------------------------------------------------------------------


def _iso_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ISO-8601 text timestamps, as a CSV export would hold them."""
    out = frame.copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def test_file_name_replaces_slash() -> None:
    assert symbol_file_stem("BTC/USDT") == "BTC-USDT"
    with pytest.raises(ValueError, match="symbol"):
        symbol_file_stem("../etc")


def test_csv_round_trip(tmp_path: Path) -> None:
    frame = SyntheticSource(n_bars=200).load("BTC/USDT").frame
    _iso_frame(frame).to_csv(tmp_path / "BTC-USDT.csv", index=False)
    data = FileSource(tmp_path).load("BTC/USDT")
    assert_frame_equal(data.frame, frame, check_exact=True)
    assert data.symbol == "BTC/USDT"
    assert data.source == "files"
    assert data.metadata["path"] == str(tmp_path / "BTC-USDT.csv")
    assert data.metadata["synthetic"] is False
    assert data.frequency == "1h"
    assert data.bar_seconds == 3600.0


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame = SyntheticSource(n_bars=200, bar="15min").load("ETH/USDT").frame
    frame.to_parquet(tmp_path / "ETH-USDT.parquet", index=False)
    data = FileSource(tmp_path).load("ETH/USDT")
    assert_frame_equal(data.frame, frame, check_exact=True)
    assert data.metadata["format"] == "parquet"
    assert data.frequency == "15min"


def test_csv_with_epoch_milliseconds_and_naive_text(tmp_path: Path) -> None:
    stamps = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    values = {"open": [1.0, 2, 3], "high": [2.0, 3, 4], "low": [0.5, 1, 2], "close": [2.0, 3, 3]}
    epoch = pd.DataFrame({"timestamp": stamps.asi8 // 1_000_000, **values, "volume": 1.0})
    epoch.to_csv(tmp_path / "A-USDT.csv", index=False)
    naive = pd.DataFrame(
        {"timestamp": ["2024-01-01 00:00:00", "2024-01-01 01:00:00", "2024-01-01 02:00:00"]}
        | values
        | {"volume": [1.0, 1.0, 1.0]}
    )
    naive.to_csv(tmp_path / "B-USDT.csv", index=False)
    for symbol in ("A/USDT", "B/USDT"):
        frame = FileSource(tmp_path).load(symbol).frame
        _assert_ohlcv_layout(frame)
        assert list(frame["timestamp"]) == list(stamps), symbol


def test_loader_keeps_file_order_and_duplicates(tmp_path: Path) -> None:
    frame = SyntheticSource(n_bars=30).load("BTC/USDT").frame
    shuffled = frame.iloc[[2, 0, 1, 1, *range(3, 30)]].reset_index(drop=True)
    _iso_frame(shuffled).to_csv(tmp_path / "BTC-USDT.csv", index=False)
    loaded = FileSource(tmp_path).load("BTC/USDT").frame
    assert_frame_equal(loaded, shuffled, check_exact=True)
    assert not ohlcv_checks(loaded, min_rows=10)[0].passed


def test_extra_columns_are_ignored_and_recorded(tmp_path: Path) -> None:
    frame = SyntheticSource(n_bars=5).load("BTC/USDT").frame
    extra = _iso_frame(frame).assign(trades=1)
    extra.columns = [" Timestamp", "OPEN", "high", "low", "close", "volume", "trades"]
    extra.to_csv(tmp_path / "BTC-USDT.csv", index=False)
    data = FileSource(tmp_path).load("BTC/USDT")
    assert list(data.frame.columns) == list(OHLCV_COLUMNS)
    assert data.metadata["ignored_columns"] == ["trades"]


def test_missing_file_names_symbol_and_tried_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        FileSource(tmp_path).load("DOGE/USDT")
    text = str(info.value)
    assert "DOGE/USDT" in text
    assert str(tmp_path / "DOGE-USDT.csv") in text
    assert str(tmp_path / "DOGE-USDT.parquet") in text


def test_both_formats_present_is_ambiguous(tmp_path: Path) -> None:
    frame = SyntheticSource(n_bars=5).load("BTC/USDT").frame
    _iso_frame(frame).to_csv(tmp_path / "BTC-USDT.csv", index=False)
    frame.to_parquet(tmp_path / "BTC-USDT.parquet", index=False)
    with pytest.raises(ValueError, match="ambiguous") as info:
        FileSource(tmp_path).load("BTC/USDT")
    assert "BTC/USDT" in str(info.value)
    assert str(tmp_path / "BTC-USDT.csv") in str(info.value)


def test_missing_columns_are_listed(tmp_path: Path) -> None:
    frame = _iso_frame(SyntheticSource(n_bars=5).load("BTC/USDT").frame)
    path = tmp_path / "BTC-USDT.csv"
    frame.drop(columns=["volume", "low"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="missing column") as info:
        FileSource(tmp_path).load("BTC/USDT")
    text = str(info.value)
    assert "BTC/USDT" in text
    assert str(path) in text
    assert "'low'" in text
    assert "'volume'" in text


def test_unparseable_timestamps_name_symbol_and_path(tmp_path: Path) -> None:
    frame = _iso_frame(SyntheticSource(n_bars=5).load("BTC/USDT").frame)
    frame.loc[2, "timestamp"] = "yesterday"
    path = tmp_path / "BTC-USDT.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="timestamp") as info:
        FileSource(tmp_path).load("BTC/USDT")
    assert "BTC/USDT" in str(info.value)
    assert str(path) in str(info.value)


def test_non_numeric_prices_name_symbol_and_path(tmp_path: Path) -> None:
    frame = _iso_frame(SyntheticSource(n_bars=5).load("BTC/USDT").frame)
    frame["close"] = frame["close"].astype(object)
    frame.loc[1, "close"] = "n/a?"
    path = tmp_path / "BTC-USDT.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="close") as info:
        FileSource(tmp_path).load("BTC/USDT")
    assert "BTC/USDT" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["", "timestamp,open,high,low,close,volume\n"])
def test_empty_csv_gives_an_empty_frame(tmp_path: Path, content: str) -> None:
    (tmp_path / "BTC-USDT.csv").write_text(content)
    data = FileSource(tmp_path).load("BTC/USDT")
    assert data.frame.empty
    _assert_ohlcv_layout(data.frame)
    assert data.frequency is None
    assert not ohlcv_checks(data.frame, min_rows=1)[0].passed


def test_empty_parquet_gives_an_empty_frame(tmp_path: Path) -> None:
    SyntheticSource(n_bars=5).load("BTC/USDT").frame.iloc[:0].to_parquet(
        tmp_path / "BTC-USDT.parquet", index=False
    )
    data = FileSource(tmp_path).load("BTC/USDT")
    assert data.frame.empty
    _assert_ohlcv_layout(data.frame)


@pytest.mark.parametrize(
    ("freq", "seconds", "label"),
    [("1min", 60, "1min"), ("15min", 900, "15min"), ("1h", 3600, "1h"), ("1D", 86400, "1d")],
)
def test_frequency_is_inferred(tmp_path: Path, freq: str, seconds: int, label: str) -> None:
    frame = SyntheticSource(n_bars=20).load("BTC/USDT").frame
    frame["timestamp"] = pd.date_range("2024-01-01", periods=20, freq=freq, tz="UTC")
    # A missing bar must not change the inferred spacing (median, not minimum or mean).
    frame = frame.drop(index=7).reset_index(drop=True)
    frame.to_parquet(tmp_path / "BTC-USDT.parquet", index=False)
    data = FileSource(tmp_path).load("BTC/USDT")
    assert data.bar_seconds == seconds
    assert data.frequency == label


@pytest.mark.parametrize("freq", ["30s", "2D"])
def test_frequency_outside_the_range_is_rejected(tmp_path: Path, freq: str) -> None:
    frame = SyntheticSource(n_bars=10).load("BTC/USDT").frame
    frame["timestamp"] = pd.date_range("2024-01-01", periods=10, freq=freq, tz="UTC")
    path = tmp_path / "BTC-USDT.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ValueError, match="1min to 1d") as info:
        FileSource(tmp_path).load("BTC/USDT")
    assert "BTC/USDT" in str(info.value)
    assert str(path) in str(info.value)


# --- ccxt -----------------------------------------------------------------------------------


def test_ohlcv_from_ccxt() -> None:
    start = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    rows: list[list[float]] = [
        [start, 100.0, 110.0, 95.0, 105.0, 12.5],
        [start + 3_600_000, 105, 106, 101, 102, 0],
    ]
    frame = ohlcv_from_ccxt(rows)
    _assert_ohlcv_layout(frame)
    assert list(frame["timestamp"]) == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 01:00", tz="UTC"),
    ]
    assert frame["close"].tolist() == [105.0, 102.0]
    assert frame["volume"].tolist() == [12.5, 0.0]
    _assert_ohlcv_layout(ohlcv_from_ccxt([]))
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        ohlcv_from_ccxt([rows[0], [start, 1.0, 2.0]])


def test_the_demo_edge_market_says_what_it_carries() -> None:
    from brain_assets.market_data.synthetic import EDGE_MARKETS

    (symbol, momentum), *_ = EDGE_MARKETS.items()
    data = SyntheticSource(n_bars=3000).load(symbol)
    assert "AR(1) momentum" in data.metadata["edge"] and data.metadata["synthetic"] is True
    returns = np.log(data.frame["close"]).diff().dropna()
    assert returns.autocorr() == pytest.approx(momentum, abs=0.06)
    # The others carry none: no edge key, the regime-switching bars.
    assert "edge" not in SyntheticSource(n_bars=300).load("ETH/USDT").metadata
