"""The activation floor on known answers: every try counted, skill beyond holding, enough bars in
the market, an error bar never narrower than for normal returns, benchmarks in every verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from brain_assets.calendar import periods_per_year
from brain_assets.decisions.policy import (
    SELECTION_TRIALS,
    DecisionPolicy,
    floor_verdict,
    gate_sharpe_error,
)
from brain_assets.evaluation.positions import PositionRule
from brain_assets.library import BrainLibrary
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import make_dataset
from brain_assets.pipeline.evaluation import SymbolEvaluation, evaluate_symbol, score_predictions
from brain_assets.pipeline.registration import register_evaluation
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol

HOURLY = 8760.0
SYMBOL = "BTC/USDT"
SETTINGS = RetrainSettings(model_types=("ridge", "random_forest"))


def scored(forecasts: np.ndarray, returns: np.ndarray, trials: int = 1) -> dict[str, float]:
    metrics, _, _ = score_predictions(
        forecasts, returns, returns, periods_per_year=HOURLY, rule=PositionRule(fee_bps=10.0)
    )
    return {k: v for k, v in {**metrics, SELECTION_TRIALS: float(trials)}.items() if v is not None}


def test_a_long_bias_on_a_rising_market_is_not_skill() -> None:
    # A market rising 10 bps a bar at 1% volatility: holding earns a Sharpe ratio near 9 a
    # year. A model long half the time, in blocks that know nothing of the market, beats
    # standing aside by a mile with no timing skill at all: the floor must say so.
    rng = np.random.default_rng(4)
    returns = rng.normal(0.001, 0.01, 6000)
    long = np.repeat(rng.random(120) < 0.5, 50)
    forecasts = np.where(long, 0.01, -0.001)
    metrics = scored(forecasts, returns)
    assert metrics["sharpe_ratio"] > 5 and 0.3 < metrics["beta_to_hold"] < 0.7
    verdict = floor_verdict(metrics, DecisionPolicy())
    assert not verdict.passed
    assert "beyond holding" in verdict.rule and "Sharpe ratio's" not in verdict.rule
    assert verdict.details["benchmarks"]["hold_total_return"] == metrics["hold_total_return"]
    # Without the condition the same numbers pass: it is the condition that refuses them.
    assert floor_verdict(metrics, DecisionPolicy(floor_beyond_hold=False)).passed


def test_timing_skill_passes_beyond_holding_too() -> None:
    # Forecasts that know the sign of the next bar half of the time: real timing skill.
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0, 0.01, 6000)
    informed = rng.random(returns.size) < 0.5
    forecasts = np.where(informed, 0.01 * np.sign(returns), rng.normal(0, 1e-3, returns.size))
    verdict = floor_verdict(scored(forecasts, returns, trials=50), DecisionPolicy())
    assert verdict.passed, verdict.rule
    assert verdict.details["appraisal_lower_bound"] > 0


def test_a_handful_of_lucky_trades_is_not_evidence() -> None:
    returns = np.zeros(2000)
    # Slightly negative forecasts close each position the bar after it opened.
    forecasts = np.full(2000, -1e-5)
    lucky = np.arange(100, 2000, 100)  # 19 bars in the market, each a winner
    forecasts[lucky - 1] = 0.01
    returns[lucky - 1] = 0.01
    returns += np.random.default_rng(1).normal(0, 1e-4, returns.size)
    metrics = scored(forecasts, returns)
    verdict = floor_verdict(metrics, DecisionPolicy())
    assert not verdict.passed and "fewer than the 100 needed" in verdict.rule


def test_the_error_bar_is_never_narrower_than_for_normal_returns() -> None:
    # Flat most of the time, a few large wins: positive skew shrinks Mertens' error term.
    returns = np.zeros(1000)
    returns[::50] = 0.02
    sharpe = returns.mean() / returns.std(ddof=1)
    normal = math.sqrt((1 + sharpe**2 / 2) / returns.size * HOURLY)
    assert gate_sharpe_error(returns, HOURLY) == pytest.approx(normal)


def retrain(brain: BrainLibrary, bars: pd.DataFrame, run: str) -> None:
    table = make_dataset(bars, SETTINGS.horizon)
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(SYMBOL, table, SETTINGS)
    evaluation = SymbolEvaluation(
        evaluate_symbol(SYMBOL, table, artifacts, SETTINGS, ppy), {}, pd.Series(dtype=object), ppy
    )
    register_evaluation(
        brain,
        SYMBOL,
        table,
        artifacts,
        evaluation.to_json(),
        SETTINGS,
        policy=DecisionPolicy(),
        run_id=run,
    )


def test_every_version_ever_tried_counts_as_a_trial(brain: BrainLibrary) -> None:
    bars = signal_market(1600, momentum=0.0, seed=3)
    for week, end in enumerate((1200, 1400, 1600)):
        retrain(brain, bars.iloc[:end], f"week-{week}")
    models = brain.list_models(SYMBOL)
    trials = [int(m[SELECTION_TRIALS]) for m in models["metrics"]]
    # Two model types a week: the second week's versions were the third and fourth tries.
    assert trials == [2, 2, 4, 4, 6, 6]
    # On a random walk nothing is let trade, and each verdict says what it was judged against.
    assert brain.get_active_model(SYMBOL) is None
    history = brain.get_activation_history(SYMBOL)
    floors = [row["floor"] for row in history["details"]]
    assert [f["selection_trials"] for f in floors if "selection_trials" in f] == trials
    assert all(f["benchmarks"]["stand_aside_total_return"] == 0.0 for f in floors)
    # Each version's walk-forward folds are stored with the bars they cover.
    folds = brain.get_fold_metrics(str(models["model_id"].iloc[0]), SYMBOL)
    assert list(folds["fold"]) == list(range(SETTINGS.walk_forward_folds))
    assert folds["window_start"].is_monotonic_increasing
    assert {"sharpe_ratio", "total_return", "hold_total_return"} <= set(folds.columns)
