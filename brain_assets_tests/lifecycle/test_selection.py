"""ModelSelector: the best model of a symbol in a volatility regime, with an honest fallback."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from brain_assets import ModelSelector
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.library import BrainLibrary
from brain_assets.market_data.synthetic import SyntheticSource
from brain_assets.pipeline.regimes import store_regime_metrics
from brain_assets.regimes.classify import classify_regimes
from brain_assets.regimes.evaluation import MIN_REGIME_BARS, RegimeResults, evaluate_by_regime

SYMBOL = "BTC/USDT"
EXTREME_BARS_KEPT = 20  # fewer than MIN_REGIME_BARS: too little evidence to rank models there


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """Classified synthetic bars with the next bar's log return as the forecast target.

    Only the first few extreme bars are kept, so that the extreme regime is thin.
    """
    ohlcv = SyntheticSource().load(SYMBOL).frame
    frame = classify_regimes(ohlcv)
    close = ohlcv.set_index("timestamp")["close"]
    frame["target"] = np.log(close).diff().shift(-1)
    frame = frame.dropna(subset=["regime", "target"])
    extreme = frame.index[frame["regime"] == "extreme"]
    frame = frame.drop(extreme[EXTREME_BARS_KEPT:])
    assert (frame["regime"].value_counts()[["low", "normal", "high"]] > 4 * MIN_REGIME_BARS).all()
    return frame


def skilled_in(bars: pd.DataFrame, regimes: set[str], seed: int) -> np.ndarray:
    """Forecasts with the right sign on the bars of ``regimes`` and a coin flip elsewhere."""
    rng = np.random.default_rng(seed)
    target = bars["target"].to_numpy()
    noise = rng.normal(0.0, target.std(), target.size)
    skilled = bars["regime"].isin(regimes).to_numpy()
    return np.where(skilled, target * rng.uniform(0.5, 1.5, target.size), noise)


def evaluate_and_store(
    brain: BrainLibrary, model_id: str, bars: pd.DataFrame, predictions: np.ndarray, **kwargs: Any
) -> RegimeResults:
    per_regime = evaluate_by_regime(
        predictions,
        bars["target"].to_numpy(),
        bars["target"].to_numpy(),
        bars["regime"],
        periods_per_year=8760,
        fee_bps=5.0,
        **kwargs,
    )
    store_regime_metrics(brain, model_id, SYMBOL, per_regime)
    return per_regime


def register(brain: BrainLibrary, model_type: str, **kwargs: Any) -> str:
    return brain.register_model(
        SYMBOL,
        model_type,
        f"fake artifact of {model_type}".encode(),
        metrics={"composite_score": 0.1},
        **kwargs,
    )


@pytest.fixture
def models(brain: BrainLibrary, bars: pd.DataFrame) -> dict[str, str]:
    """A: skilled in high volatility; B: skilled in low volatility; C: active, no skill."""
    ids = {
        "A": register(brain, "high_vol_specialist"),
        "B": register(brain, "low_vol_specialist"),
        "C": register(brain, "baseline", activate=True),
    }
    a = evaluate_and_store(brain, ids["A"], bars, skilled_in(bars, {"high", "extreme"}, 1))
    b = evaluate_and_store(brain, ids["B"], bars, skilled_in(bars, {"low"}, 2))
    evaluate_and_store(brain, ids["C"], bars, skilled_in(bars, set(), 3))
    assert a["high"]["directional_accuracy"] == b["low"]["directional_accuracy"] == 1.0
    assert a.insufficient == {"extreme": EXTREME_BARS_KEPT}
    return ids


def test_the_high_volatility_specialist_wins_high_and_the_low_one_wins_low(
    brain: BrainLibrary, models: dict[str, str]
) -> None:
    selector = ModelSelector(brain)
    high = selector.select_model_for_symbol(SYMBOL, "high")
    assert high is not None
    assert high["model_id"] == models["A"]
    assert high["model_type"] == "high_vol_specialist"
    assert high["version"] == 1
    assert high["regime"] == "high"
    assert high["fallback"] is False
    assert high["n_bars"] >= MIN_REGIME_BARS
    assert "high_vol_specialist" in high["reason"] and "high regime" in high["reason"]
    scores = brain.get_regime_scores(SYMBOL)
    in_high = scores[scores["regime"] == "high"].set_index("model_id")["composite_score"]
    assert high["score"] == in_high.max() == in_high[models["A"]]

    low = selector.select_model_for_symbol(SYMBOL, "low")
    assert low is not None
    assert (low["model_id"], low["regime"], low["fallback"]) == (models["B"], "low", False)


def test_a_thin_regime_falls_back_to_the_active_model(
    brain: BrainLibrary, models: dict[str, str]
) -> None:
    choice = ModelSelector(brain).select_model_for_symbol(SYMBOL, "extreme")
    assert choice is not None
    assert choice["model_id"] == models["C"]
    assert choice["fallback"] is True
    assert choice["regime"] == "extreme"
    assert (choice["score"], choice["n_bars"]) == (None, 0)
    assert "active model" in choice["reason"]
    assert f"at least {MIN_REGIME_BARS} bars" in choice["reason"]


def test_scores_on_too_few_bars_are_not_trusted(
    brain: BrainLibrary, bars: pd.DataFrame, models: dict[str, str]
) -> None:
    # A newer evaluation of A scores the thin extreme regime too (min_bars lowered for it).
    evaluate_and_store(
        brain, models["A"], bars, skilled_in(bars, {"high", "extreme"}, 1), min_bars=5
    )
    scores = brain.get_regime_scores(SYMBOL)
    thin = scores[(scores["regime"] == "extreme")]
    assert thin["n_bars"].tolist() == [float(EXTREME_BARS_KEPT)]
    strict = ModelSelector(brain).select_model_for_symbol(SYMBOL, "extreme")
    assert strict is not None
    assert (strict["model_id"], strict["fallback"]) == (models["C"], True)
    lenient = ModelSelector(brain, min_bars=EXTREME_BARS_KEPT).select_model_for_symbol(
        SYMBOL, "extreme"
    )
    assert lenient is not None
    assert (lenient["model_id"], lenient["fallback"]) == (models["A"], False)
    assert lenient["n_bars"] == EXTREME_BARS_KEPT


def test_only_the_latest_evaluation_of_a_model_counts(
    brain: BrainLibrary, bars: pd.DataFrame, models: dict[str, str]
) -> None:
    # A is re-evaluated after losing its edge: its old high-volatility score must not win.
    evaluate_and_store(brain, models["A"], bars, skilled_in(bars, set(), 4))
    choice = ModelSelector(brain).select_model_for_symbol(SYMBOL, "high")
    assert choice is not None
    assert choice["model_id"] != models["A"]
    scores = brain.get_regime_scores(SYMBOL)
    assert scores.groupby("model_id")["evaluation_date"].nunique().eq(1).all()
    assert len(scores) == 3 * 3  # three models, three regimes with enough bars


def test_none_uses_the_stored_current_regime(
    brain: BrainLibrary, bars: pd.DataFrame, models: dict[str, str]
) -> None:
    selector = ModelSelector(brain)
    unknown = selector.select_model_for_symbol(SYMBOL)
    assert unknown is not None
    assert (unknown["model_id"], unknown["regime"], unknown["fallback"]) == (
        models["C"],
        None,
        True,
    )
    assert "no volatility regime is stored" in unknown["reason"]

    classified = bars[["realized_vol", "vol_percentile", "regime"]]
    last_high = classified.index[classified["regime"] == "high"][-1]
    brain.store_regimes(SYMBOL, classified.loc[:last_high])
    assert brain.get_current_regime(SYMBOL)["regime"] == "high"
    now = selector.select_model_for_symbol(SYMBOL)
    assert now is not None
    assert (now["model_id"], now["regime"], now["fallback"]) == (models["A"], "high", False)

    calm = classified[classified["regime"] == "low"].iloc[[-1]]
    calm.index = pd.DatetimeIndex([last_high + pd.Timedelta(hours=1)], name="timestamp")
    brain.store_regimes(SYMBOL, calm)
    later = selector.select_model_for_symbol(SYMBOL)
    assert later is not None
    assert (later["model_id"], later["regime"]) == (models["B"], "low")


def test_without_an_active_model_the_selector_stands_aside(brain: BrainLibrary) -> None:
    # Versions exist but none is active (none passed the floor, or the last was taken out):
    # the selector must not bring one back through a regime choice.
    register(brain, "weak", composite_score=0.1)
    register(brain, "strong", composite_score=0.9)
    choice = ModelSelector(brain).select_model_for_symbol(SYMBOL, "normal")
    assert choice is not None
    assert (choice["model_id"], choice["stand_aside"], choice["fallback"]) == (None, True, True)
    assert choice["reason"].startswith("stand aside")


def test_invalid_regime_and_unknown_symbol(brain: BrainLibrary, models: dict[str, str]) -> None:
    selector = ModelSelector(brain)
    with pytest.raises(ValueError, match="low, normal, high, extreme"):
        selector.select_model_for_symbol(SYMBOL, "calm")
    with pytest.raises(ValueError, match="symbol"):
        selector.select_model_for_symbol("", "low")
    assert selector.select_model_for_symbol("DOGE/USDT", "high") is None
    assert selector.select_model_for_symbol("DOGE/USDT") is None
    assert brain.get_regime_scores("DOGE/USDT").empty
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="min_bars"):
            ModelSelector(brain, min_bars=bad)


def test_regime_scores_frame(brain: BrainLibrary, models: dict[str, str]) -> None:
    scores = brain.get_regime_scores(SYMBOL)
    assert list(scores.columns) == [
        "model_id",
        "version",
        "model_type",
        "regime",
        "composite_score",
        "n_bars",
        "evaluation_date",
    ]
    assert scores["regime"].drop_duplicates().tolist() == ["low", "normal", "high"]
    for _, group in scores.groupby("regime", sort=False):
        assert group["composite_score"].is_monotonic_decreasing
    assert set(scores["model_id"]) == set(models.values())
    # Another symbol's models never appear.
    other = brain.register_model("ETH/USDT", "ridge", b"x", metrics={"composite_score": 0.5})
    brain.store_model_metrics(
        other, "ETH/USDT", {"composite_score": 9.0, "n_bars": 500.0}, regime="high"
    )
    assert set(brain.get_regime_scores(SYMBOL)["model_id"]) == set(models.values())


def test_versions_rolled_back_for_a_regression_or_superseded_are_not_candidates(
    brain: BrainLibrary, models: dict[str, str], bars: pd.DataFrame
) -> None:
    from brain_assets.lifecycle.versioning import ModelVersioning

    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    # A takes over, then regresses live: monitoring rolls it back to C.
    versioning.promote(models["A"])
    assert versioning.check_and_rollback(models["A"], SYMBOL, {"composite_score": -0.9})
    answer = ModelSelector(brain).select_model_for_symbol(SYMBOL, "high")
    assert answer is not None and answer["model_id"] != models["A"]
    # A newer low-volatility specialist supersedes B, even with a worse score there.
    newer = register(brain, "low_vol_specialist")
    evaluate_and_store(brain, newer, bars, skilled_in(bars, set(), 4))
    low = ModelSelector(brain).select_model_for_symbol(SYMBOL, "low")
    assert low is not None and low["model_id"] != models["B"]
