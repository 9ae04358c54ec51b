"""Volatility regimes: the no-look-ahead rule, agreement with the generator, per-regime
evaluation and the persisted regime history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from scipy import stats

from brain_assets.errors import UnknownModelError
from brain_assets.evaluation.comprehensive import evaluate_model
from brain_assets.library import BrainLibrary
from brain_assets.market_data.synthetic import REGIMES as TRUE_REGIMES
from brain_assets.market_data.synthetic import SyntheticSource, generate_ohlcv
from brain_assets.pipeline.regimes import store_regime_metrics
from brain_assets.regimes.classify import (
    DEFAULT_MIN_HISTORY,
    DEFAULT_WINDOW,
    REGIMES,
    classify_regimes,
    current_regime,
    regime_of_percentile,
)
from brain_assets.regimes.evaluation import MIN_REGIME_BARS, evaluate_by_regime
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"
# The first bar with a regime: `window` returns for the first reading, then `min_history`
# readings for the first percentile.
FIRST_CLASSIFIED = DEFAULT_WINDOW + DEFAULT_MIN_HISTORY - 1


@pytest.fixture(scope="module")
def ohlcv() -> pd.DataFrame:
    return SyntheticSource().load(SYMBOL).frame


@pytest.fixture(scope="module")
def classified(ohlcv: pd.DataFrame) -> pd.DataFrame:
    return classify_regimes(ohlcv)


# --- classification -----------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [FIRST_CLASSIFIED - 5, FIRST_CLASSIFIED, 700, 1500, 2890, 3998])
def test_no_look_ahead_changing_later_bars_changes_nothing_before(
    ohlcv: pd.DataFrame, classified: pd.DataFrame, cut: int
) -> None:
    rng = np.random.default_rng(cut)
    later = ohlcv.index > cut
    changed = ohlcv.copy()
    # Wild moves, so that any leak of later bars into earlier ones would show.
    changed.loc[later, "close"] *= np.exp(np.cumsum(rng.normal(0.0, 0.08, int(later.sum()))))
    changed.loc[later, ["open", "high", "low", "volume"]] *= 3.0
    again = classify_regimes(changed)
    pd.testing.assert_frame_equal(
        again.iloc[: cut + 1], classified.iloc[: cut + 1], check_exact=True
    )
    if later.sum() > DEFAULT_WINDOW:
        assert not np.allclose(
            again["realized_vol"].to_numpy()[cut + DEFAULT_WINDOW :],
            classified["realized_vol"].to_numpy()[cut + DEFAULT_WINDOW :],
        )


@pytest.mark.parametrize("cut", [FIRST_CLASSIFIED + 1, 1000, 3333])
def test_no_look_ahead_truncated_history_gives_the_same_regimes(
    ohlcv: pd.DataFrame, classified: pd.DataFrame, cut: int
) -> None:
    truncated = classify_regimes(ohlcv.iloc[: cut + 1])
    pd.testing.assert_frame_equal(truncated, classified.iloc[: cut + 1], check_exact=True)


def test_all_four_regimes_occur_and_follow_the_generators_regimes(
    ohlcv: pd.DataFrame, classified: pd.DataFrame
) -> None:
    _, truth = generate_ohlcv(SYMBOL)
    labelled = classified.assign(true=truth)
    labelled = labelled[labelled["regime"].notna()]
    counts = labelled["regime"].value_counts()
    assert set(counts.index) == set(REGIMES)
    assert (counts >= 50).all(), counts
    by_regime = labelled.groupby("regime")
    mean_vol = by_regime["realized_vol"].mean()[list(REGIMES)]
    mean_truth = by_regime["true"].mean()[list(REGIMES)]
    assert mean_vol.is_monotonic_increasing and mean_vol.is_unique, mean_vol
    assert mean_truth.is_monotonic_increasing and mean_truth.is_unique, mean_truth
    rank = labelled["regime"].map({name: i for i, name in enumerate(REGIMES)})
    assert stats.spearmanr(rank, labelled["true"]).statistic > 0.6
    # Calm stretches are recognised as calm and turbulent ones as turbulent.
    low_true = labelled.loc[labelled["regime"] == "low", "true"]
    assert (low_true <= TRUE_REGIMES.index("normal")).mean() > 0.95
    extreme_true = labelled.loc[labelled["regime"] == "extreme", "true"]
    assert (extreme_true >= TRUE_REGIMES.index("high")).mean() > 0.6


def test_bars_without_enough_history_have_no_regime(classified: pd.DataFrame) -> None:
    assert classified.index.name == "timestamp"
    assert isinstance(classified.index, pd.DatetimeIndex)
    assert str(classified.index.tz) == "UTC"
    assert list(classified.columns) == ["realized_vol", "vol_percentile", "regime"]
    assert classified["realized_vol"].iloc[:DEFAULT_WINDOW].isna().all()
    assert classified["realized_vol"].iloc[DEFAULT_WINDOW:].notna().all()
    assert classified["regime"].iloc[:FIRST_CLASSIFIED].isna().all()
    assert classified["vol_percentile"].iloc[:FIRST_CLASSIFIED].isna().all()
    assert classified["regime"].iloc[FIRST_CLASSIFIED:].isin(REGIMES).all()
    percentile = classified["vol_percentile"].dropna()
    assert ((percentile > 0) & (percentile < 1)).all()


def test_a_short_history_has_no_regime_at_all(ohlcv: pd.DataFrame) -> None:
    short = classify_regimes(ohlcv.iloc[:FIRST_CLASSIFIED])
    assert short["regime"].isna().all()
    assert current_regime(short) is None
    assert classify_regimes(ohlcv.iloc[:0]).empty


def test_a_datetime_index_works_like_a_timestamp_column(
    ohlcv: pd.DataFrame, classified: pd.DataFrame
) -> None:
    pd.testing.assert_frame_equal(classify_regimes(ohlcv.set_index("timestamp")), classified)


def test_a_flat_market_is_normal_not_extreme() -> None:
    times = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC")
    flat = pd.DataFrame({"timestamp": times, "close": np.full(400, 100.0)})
    result = classify_regimes(flat)
    assert set(result["regime"].dropna()) == {"normal"}
    assert set(result["vol_percentile"].dropna()) == {0.5}


def test_percentile_bands() -> None:
    percentile = np.array([0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9499, 0.95, 1.0, np.nan])
    labels = ["low", "low", "normal", "normal", "high", "high", "extreme", "extreme", None]
    assert regime_of_percentile(percentile).tolist() == labels


def test_current_regime_is_the_last_classified_bar(classified: pd.DataFrame) -> None:
    current = current_regime(classified)
    assert current is not None
    last = classified.iloc[-1]
    assert current == {
        "timestamp": classified.index[-1],
        "regime": last["regime"],
        "realized_vol": last["realized_vol"],
        "percentile": last["vol_percentile"],
    }
    with pytest.raises(ValueError, match="regime"):
        current_regime(classified.drop(columns="regime"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 1}, "window"),
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"window": True}, "window"),
        ({"lookback": 1}, "lookback"),
        ({"lookback": "720"}, "lookback"),
        ({"min_history": 0}, "min_history"),
        ({"lookback": 100, "min_history": 168}, "min_history"),
    ],
)
def test_bad_arguments_are_named(ohlcv: pd.DataFrame, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classify_regimes(ohlcv, **kwargs)


def _broken(ohlcv: pd.DataFrame, how: str) -> object:
    frame = ohlcv.iloc[:300].copy()
    if how == "unsorted":
        return frame.iloc[::-1]
    if how == "duplicate":
        return pd.concat([frame, frame.iloc[[-1]]])
    if how == "no close":
        return frame.drop(columns="close")
    if how == "no timestamps":
        return frame.drop(columns="timestamp")
    if how == "nan close":
        frame.loc[10, "close"] = np.nan
    elif how == "zero close":
        frame.loc[10, "close"] = 0.0
    elif how == "not a frame":
        return frame["close"]
    return frame


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("unsorted", "strictly increasing"),
        ("duplicate", "strictly increasing"),
        ("no close", "close"),
        ("no timestamps", "timestamp"),
        ("nan close", "close"),
        ("zero close", "close"),
        ("not a frame", "DataFrame"),
    ],
)
def test_bad_bars_are_refused(ohlcv: pd.DataFrame, how: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classify_regimes(_broken(ohlcv, how))  # type: ignore[arg-type]


# --- per-regime evaluation ----------------------------------------------------------------------


def _evaluation_inputs(n: int = 400, seed: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    actuals = rng.normal(0.0, 0.01, n)
    regimes = np.array(["low"] * 150 + ["normal"] * 150 + ["high"] * 80 + [None] * 20, dtype=object)
    regimes[::50] = "extreme"  # 8 bars: far below MIN_REGIME_BARS
    predictions = actuals + rng.normal(0.0, 0.01, n)
    return {"predictions": predictions, "actuals": actuals, "returns": actuals, "regimes": regimes}


def test_evaluate_by_regime_splits_bars_and_skips_thin_regimes() -> None:
    inputs = _evaluation_inputs()
    result = evaluate_by_regime(**inputs, periods_per_year=8760, fee_bps=5.0)
    assert list(result) == ["low", "normal", "high"]
    assert result.insufficient == {"extreme": 8}
    assert result.unclassified == 20
    assert result.min_bars == MIN_REGIME_BARS
    regimes = inputs["regimes"]
    for regime, metrics in result.items():
        mask = regimes == regime
        expected = evaluate_model(
            inputs["predictions"][mask],
            inputs["actuals"][mask],
            inputs["returns"][mask],
            periods_per_year=8760,
            fee_bps=5.0,
        )
        assert metrics == {**expected, "n_bars": float(mask.sum())}
    assert result["high"]["n_bars"] == 80 - 2  # bars 300 and 350 are extreme


def test_evaluate_by_regime_accepts_series_and_nan_labels() -> None:
    inputs = _evaluation_inputs()
    index = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC")
    series = {
        name: pd.Series(values, index=index) for name, values in inputs.items() if name != "regimes"
    }
    labels = pd.Series(inputs["regimes"], index=index).astype("category")
    result = evaluate_by_regime(
        series["predictions"],
        series["actuals"],
        series["returns"],
        labels,
        periods_per_year=8760,
        min_bars=5,
    )
    assert list(result) == list(REGIMES)
    assert result["extreme"]["n_bars"] == 8.0
    assert result.unclassified == 20


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regimes": ["low"] * 399}, "regimes"),
        ({"regimes": ["calm"] * 400}, "calm"),
        ({"regimes": "low"}, "regimes"),
        ({"actuals": np.zeros(10)}, "length mismatch"),
        ({"min_bars": 2}, "min_bars"),
        ({"min_bars": 10.0}, "min_bars"),
        ({"periods_per_year": -1.0}, "periods_per_year"),
        ({"predictions": 1.0}, "predictions"),
    ],
)
def test_evaluate_by_regime_bad_input(change: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {**_evaluation_inputs(), "periods_per_year": 8760, **change}
    with pytest.raises(ValueError, match=message):
        evaluate_by_regime(**kwargs)


def _register(brain: BrainLibrary, symbol: str = SYMBOL) -> str:
    return brain.register_model(symbol, "ridge", b"weights", metrics={"composite_score": 0.1})


def test_store_regime_metrics_is_one_evaluation(brain: BrainLibrary) -> None:
    model_id = _register(brain)
    result = evaluate_by_regime(**_evaluation_inputs(), periods_per_year=8760)
    stored = store_regime_metrics(brain, model_id, SYMBOL, result)
    assert set(stored) == {"low", "normal", "high"}
    per_regime = brain.get_regime_metrics(model_id, SYMBOL)
    assert set(per_regime) == {"low", "normal", "high"}
    for regime, metrics in per_regime.items():
        assert metrics == stored[regime]
        assert metrics["n_bars"] == result[regime]["n_bars"]
        assert None not in metrics.values()
    history = brain.get_metric_history(model_id, SYMBOL)
    regime_rows = history[history["regime"].notna()]
    assert regime_rows["evaluation_date"].nunique() == 1
    assert set(regime_rows["periods_per_year"]) == {8760.0}
    assert store_regime_metrics(brain, model_id, SYMBOL, {}) == {}


def test_store_regime_metrics_writes_nothing_on_bad_input(brain: BrainLibrary) -> None:
    model_id = _register(brain)
    other = _register(brain, "ETH/USDT")
    good = {"composite_score": 0.3, "n_bars": 60.0, "periods_per_year": 8760.0}
    before = count_rows(brain.dsn, "model_metrics")
    with pytest.raises(ValueError, match="regime"):
        store_regime_metrics(brain, model_id, SYMBOL, {"low": good, "calm": good})
    with pytest.raises(ValueError, match="no finite"):
        store_regime_metrics(brain, model_id, SYMBOL, {"low": good, "high": {"rmse": None}})
    with pytest.raises(UnknownModelError):
        store_regime_metrics(brain, other, SYMBOL, {"low": good, "high": good})
    assert count_rows(brain.dsn, "model_metrics") == before


# --- persisted regimes --------------------------------------------------------------------------


def test_store_regimes_round_trip(brain: BrainLibrary, classified: pd.DataFrame) -> None:
    written = brain.store_regimes(SYMBOL, classified)
    expected = classified[classified["regime"].notna()]
    assert written == len(expected) == len(classified) - FIRST_CLASSIFIED
    pd.testing.assert_frame_equal(brain.get_regime_history(SYMBOL), expected, check_exact=True)
    current = brain.get_current_regime(SYMBOL)
    assert current is not None
    assert current.pop("symbol") == SYMBOL
    assert isinstance(current.pop("updated_at"), pd.Timestamp)
    assert current == current_regime(classified)
    window = brain.get_regime_history(
        SYMBOL, start=expected.index[10], end=expected.index[19].to_pydatetime()
    )
    pd.testing.assert_frame_equal(window, expected.iloc[10:20], check_exact=True)
    assert brain.get_current_regime("ETH/USDT") is None
    empty = brain.get_regime_history("ETH/USDT")
    assert empty.empty and list(empty.columns) == ["realized_vol", "vol_percentile", "regime"]
    assert isinstance(empty.index, pd.DatetimeIndex)


def _updated_at(dsn: str) -> dict[pd.Timestamp, Any]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT bar_time, updated_at FROM volatility_regimes").fetchall()
    return {pd.Timestamp(bar): updated for bar, updated in rows}


def test_store_regimes_upsert_is_idempotent(brain: BrainLibrary, classified: pd.DataFrame) -> None:
    part = classified.iloc[FIRST_CLASSIFIED : FIRST_CLASSIFIED + 300]
    assert brain.store_regimes(SYMBOL, part) == 300
    first = _updated_at(brain.dsn)
    assert brain.store_regimes(SYMBOL, part) == 300
    assert count_rows(brain.dsn, "volatility_regimes") == 300
    assert _updated_at(brain.dsn) == first  # unchanged bars are not rewritten

    revised = part.copy()
    bar = revised.index[-1]
    revised.at[bar, "regime"] = "extreme"
    revised.at[bar, "vol_percentile"] = 0.99
    brain.store_regimes(SYMBOL, revised)
    after = _updated_at(brain.dsn)
    assert [stamp for stamp in after if after[stamp] != first[stamp]] == [bar]
    current = brain.get_current_regime(SYMBOL)
    assert current is not None
    assert (current["timestamp"], current["regime"], current["percentile"]) == (
        bar,
        "extreme",
        0.99,
    )
    # Another symbol's bars at the same times are separate rows.
    brain.store_regimes("ETH/USDT", part)
    assert count_rows(brain.dsn, "volatility_regimes") == 600


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("regime", "medium", "medium"),
        ("realized_vol", np.nan, "realized_vol"),
        ("realized_vol", -0.1, "realized_vol"),
        ("vol_percentile", 1.5, "vol_percentile"),
        ("vol_percentile", np.inf, "vol_percentile"),
    ],
)
def test_store_regimes_bad_bar_writes_nothing(
    brain: BrainLibrary, classified: pd.DataFrame, column: str, value: Any, message: str
) -> None:
    bad = classified.iloc[FIRST_CLASSIFIED : FIRST_CLASSIFIED + 50].copy()
    bad[column] = bad[column].astype(object)
    bad.at[bad.index[25], column] = value
    with pytest.raises(ValueError, match=message):
        brain.store_regimes(SYMBOL, bad)
    assert count_rows(brain.dsn, "volatility_regimes") == 0


def test_store_regimes_bad_frames(brain: BrainLibrary, classified: pd.DataFrame) -> None:
    part = classified.iloc[FIRST_CLASSIFIED : FIRST_CLASSIFIED + 10]
    with pytest.raises(ValueError, match="symbol"):
        brain.store_regimes(" ", part)
    with pytest.raises(ValueError, match="regime"):
        brain.store_regimes(SYMBOL, part.drop(columns="regime"))
    with pytest.raises(ValueError, match="duplicate"):
        brain.store_regimes(SYMBOL, pd.concat([part, part.iloc[[0]]]))
    with pytest.raises(ValueError, match="DatetimeIndex"):
        brain.store_regimes(SYMBOL, part.reset_index(drop=True))
    with pytest.raises(ValueError, match="start"):
        brain.get_regime_history(SYMBOL, start=part.index[5], end=part.index[5] - timedelta(1))
    assert count_rows(brain.dsn, "volatility_regimes") == 0
    # Nothing classified yet: nothing to store, and no error.
    assert brain.store_regimes(SYMBOL, classified.iloc[:FIRST_CLASSIFIED]) == 0
    # A frame with a timestamp column (classify_regimes' output after reset_index) is accepted.
    assert brain.store_regimes(SYMBOL, part.reset_index()) == 10


def test_latest_regime_reads_the_primary_key_backwards(
    brain: BrainLibrary, classified: pd.DataFrame
) -> None:
    brain.store_regimes(SYMBOL, classified)
    with brain.transaction() as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT * FROM volatility_regimes WHERE symbol = %s "
                "ORDER BY bar_time DESC LIMIT 1",
                (SYMBOL,),
            ).fetchall()
        )
    assert "Index Scan Backward using volatility_regimes_pkey" in plan, plan
