"""Technical features: documented, finite, and above all free of look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from brain_assets.features import (
    FEATURES,
    WARMUP_BARS,
    build_dataset,
    compute_features,
    make_target,
)
from brain_assets.market_data import SyntheticSource
from brain_assets.quality.run import features_checks

N_BARS = 1500


@pytest.fixture(scope="module")
def ohlcv() -> pd.DataFrame:
    return SyntheticSource(n_bars=N_BARS).load("BTC/USDT").frame


@pytest.fixture(scope="module")
def features(ohlcv: pd.DataFrame) -> pd.DataFrame:
    return compute_features(ohlcv)


def _random_bars(rng: np.random.Generator, n: int, level: float) -> pd.DataFrame:
    """Valid but unrelated candles around ``level``, wildly different from the real ones."""
    close = level * np.exp(rng.normal(0.0, 0.3, size=n))
    open_ = level * np.exp(rng.normal(0.0, 0.3, size=n))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.5, size=n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.5, size=n))
    volume = rng.uniform(0.0, 1e7, size=n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume})


def test_every_feature_is_documented(features: pd.DataFrame) -> None:
    assert len(FEATURES) >= 28
    assert list(features.columns) == list(FEATURES)
    for name, description in FEATURES.items():
        assert description.strip(), name
    assert {"ret_1", "ret_24", "vol_24", "atr_14", "rsi_14", "macd_hist", "bb_pct_b_20"} <= set(
        FEATURES
    )


def test_features_layout(ohlcv: pd.DataFrame, features: pd.DataFrame) -> None:
    assert isinstance(features.index, pd.DatetimeIndex)
    assert features.index.name == "timestamp"
    assert str(features.index.tz) == "UTC"
    assert (features.index == pd.DatetimeIndex(ohlcv["timestamp"])).all()
    assert (features.dtypes == np.float64).all()


def test_warmup_rows_and_finite_values(features: pd.DataFrame) -> None:
    assert features.iloc[:WARMUP_BARS].isna().any(axis=1).all()
    settled = features.iloc[WARMUP_BARS:]
    assert np.isfinite(settled.to_numpy()).all()


def test_simple_features_match_their_definition(
    ohlcv: pd.DataFrame, features: pd.DataFrame
) -> None:
    close = ohlcv["close"].to_numpy()
    np.testing.assert_allclose(features["ret_1"].to_numpy()[1:], np.log(close[1:] / close[:-1]))
    np.testing.assert_allclose(features["ret_24"].to_numpy()[24:], np.log(close[24:] / close[:-24]))
    assert features["rsi_14"].dropna().between(0, 100).all()
    assert features["clv"].dropna().between(-1, 1).all()
    assert (features["dist_max_24"].dropna() <= 0).all()
    assert (features["dist_min_24"].dropna() >= 0).all()


@pytest.mark.parametrize("t", [WARMUP_BARS - 5, 60, 400, 999, N_BARS - 2])
def test_no_look_ahead(ohlcv: pd.DataFrame, features: pd.DataFrame, t: int) -> None:
    """Rewriting every bar after t must leave every feature at rows <= t bit-for-bit equal."""
    rng = np.random.default_rng(t)
    altered = ohlcv.copy()
    after = slice(t + 1, None)
    n_after = len(altered) - (t + 1)
    # Far from the real price level, so a leak through any global statistic would show.
    replacement = _random_bars(rng, n_after, level=float(ohlcv["close"].to_numpy()[t]) * 50.0)
    for name in ("open", "high", "low", "close", "volume"):
        altered.loc[altered.index[after], name] = replacement[name].to_numpy()
    assert not altered.iloc[t + 1 :].equals(ohlcv.iloc[t + 1 :])
    recomputed = compute_features(altered)
    assert_frame_equal(recomputed.iloc[: t + 1], features.iloc[: t + 1], check_exact=True)


def test_target_uses_the_future(ohlcv: pd.DataFrame) -> None:
    for horizon in (1, 3):
        target = make_target(ohlcv, horizon)
        assert target.name == "target"
        close = ohlcv["close"].to_numpy()
        expected = close[horizon:] / close[:-horizon] - 1.0
        np.testing.assert_allclose(target.to_numpy()[:-horizon], expected)
        assert target.iloc[-horizon:].isna().all()
        assert target.iloc[:-horizon].notna().all()


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True])
def test_horizon_must_be_a_positive_integer(ohlcv: pd.DataFrame, horizon: object) -> None:
    with pytest.raises(ValueError, match="horizon"):
        make_target(ohlcv, horizon)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="horizon"):
        build_dataset(ohlcv, horizon)  # type: ignore[arg-type]


@pytest.mark.parametrize("horizon", [1, 4])
def test_build_dataset_drops_warmup_and_tail(ohlcv: pd.DataFrame, horizon: int) -> None:
    X, y = build_dataset(ohlcv, horizon)
    stamps = pd.DatetimeIndex(ohlcv["timestamp"])
    assert len(X) == len(y) == N_BARS - WARMUP_BARS - horizon
    assert X.index[0] == stamps[WARMUP_BARS]
    assert X.index[-1] == stamps[N_BARS - 1 - horizon]
    assert X.index.equals(y.index)
    assert X.notna().all().all()
    assert y.notna().all()
    assert_series_equal(y, make_target(ohlcv, horizon).loc[X.index])
    outcome = features_checks(X)[0]
    assert outcome.passed, outcome.message


def test_features_stay_finite_through_zero_volume_and_flat_prices(ohlcv: pd.DataFrame) -> None:
    bars = ohlcv.copy()
    bars.loc[300:420, "volume"] = 0.0
    # A market halt: every price frozen at the last close for 60 bars.
    frozen = float(bars["close"].to_numpy()[599])
    bars.loc[600:660, ["open", "high", "low", "close"]] = frozen
    bars.loc[600:660, "volume"] = 0.0
    features = compute_features(bars).iloc[WARMUP_BARS:]
    bad = features.columns[~np.isfinite(features.to_numpy()).all(axis=0)]
    assert list(bad) == []
    assert (features.loc[features.index[400 - WARMUP_BARS], "volume_z_24"]) == 0.0
    assert (features.loc[features.index[400 - WARMUP_BARS], "volume_ratio_24"]) == 1.0
    assert (features.loc[features.index[650 - WARMUP_BARS], "ret_skew_24"]) == 0.0
    X, _ = build_dataset(bars)
    assert features_checks(X)[0].passed


def test_missing_column_is_reported(ohlcv: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="volume"):
        compute_features(ohlcv.drop(columns=["volume"]))


def test_short_input_gives_all_warmup(ohlcv: pd.DataFrame) -> None:
    short = compute_features(ohlcv.iloc[:10])
    assert len(short) == 10
    assert short.isna().any(axis=1).all()
    X, y = build_dataset(ohlcv.iloc[:10])
    assert X.empty
    assert y.empty


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_windowed_moments_in_chunks_are_bit_identical(
    ohlcv: pd.DataFrame, features: pd.DataFrame, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The skew and kurtosis windows are computed a block of rows at a time to bound memory on
    # long series; every window uses its own row only, so the block size changes nothing.
    # The fixture's 1,500 bars fit in one default block: ``features`` is the unchunked result.
    from brain_assets.features import technical

    monkeypatch.setattr(technical, "_MOMENT_CHUNK_ROWS", chunk)
    chunked = compute_features(ohlcv)
    assert_frame_equal(chunked, features, check_exact=True)
