"""Monitoring that accumulates: the record since activation takes a losing version out, the
symbol stands aside without a credible earlier version, and live inputs unlike the training rows
are recorded and acted on; live metrics are kept apart from the evaluation's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brain_assets.calendar import periods_per_year
from brain_assets.decisions.policy import RECORD_BARS, DecisionPolicy
from brain_assets.features.drift import (
    drifted,
    feature_profile,
    population_stability,
    window_ceilings,
)
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import make_dataset, split_columns
from brain_assets.pipeline.evaluation import SymbolEvaluation, evaluate_symbol
from brain_assets.pipeline.monitoring import evaluate_active_model
from brain_assets.pipeline.registration import register_evaluation
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol
from brain_assets.records import Transition

SYMBOL = "BTC/USDT"
SETTINGS = RetrainSettings(model_types=("ridge",))
# The window test practically never fires at this confidence: what takes a version out in these
# tests is the cumulative record or the drift.
CUMULATIVE_ONLY = DecisionPolicy(rollback_confidence=1 - 1e-12, cooldown_bars=0)


def continued(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """``second``'s bars rescaled and re-timed to continue ``first``."""
    scale = float(first["close"].iloc[-1]) / float(second["open"].iloc[0])
    step = first["timestamp"].iloc[-1] - first["timestamp"].iloc[-2]
    tail = second.copy()
    for column in ("open", "high", "low", "close"):
        tail[column] = tail[column] * scale
    tail["timestamp"] = first["timestamp"].iloc[-1] + step * np.arange(1, len(tail) + 1)
    return pd.concat([first, tail], ignore_index=True)


def trade_on(brain: BrainLibrary, bars: pd.DataFrame) -> dict:
    table = make_dataset(bars, SETTINGS.horizon)
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(SYMBOL, table, SETTINGS)
    evaluation = SymbolEvaluation(
        evaluate_symbol(SYMBOL, table, artifacts, SETTINGS, ppy), {}, pd.Series(dtype=object), ppy
    )
    register_evaluation(
        brain, SYMBOL, table, artifacts, evaluation.to_json(), SETTINGS, policy=DecisionPolicy()
    )
    active = brain.get_active_model(SYMBOL)
    assert active is not None, brain.trading_status(SYMBOL).reason
    return active


@pytest.fixture(scope="module")
def flipped() -> pd.DataFrame:
    # Momentum for 3,000 bars, then reversal of the same strength: the version that learnt the
    # momentum loses on every bar it trades from the flip on.
    return signal_market(4200, momentum=0.2, flip_at=3000, seed=21)


def test_a_losing_record_takes_the_version_out_and_the_symbol_stands_aside(
    brain: BrainLibrary, flipped: pd.DataFrame
) -> None:
    active = trade_on(brain, flipped.iloc[:3000])
    evaluation = brain.get_model_metrics(active.model_id, SYMBOL)
    live = evaluate_active_model(brain, SYMBOL, flipped, SETTINGS, policy=CUMULATIVE_ONLY)
    assert live is not None
    cumulative = live.assessment.cumulative
    assert cumulative["alarm"] and live.assessment.trigger == "cumulative_loss"
    assert cumulative["upper_bound_bps"] < 0 < cumulative["bars"]
    # The window test alone would have kept it: the record is what found it.
    assert not live.assessment.window["significant"]
    versioning = ModelVersioning(brain, policy=CUMULATIVE_ONLY)
    assert versioning.check_and_rollback(
        live.model_id, SYMBOL, live.metrics, as_of=live.as_of, candidates=live.candidates
    )
    assert brain.get_active_model(SYMBOL) is None
    last = brain.get_activation_history(SYMBOL).iloc[-1]
    assert last["action"] == "deactivated" and last["details"]["trigger"] == "cumulative_loss"
    assert last["details"]["stand_aside"] is True
    assert "cumulative_loss" in brain.trading_status(SYMBOL).reason
    # Live numbers are stored apart: the evaluation's are unchanged, the live ones are there.
    assert brain.get_model_metrics(active.model_id, SYMBOL) == evaluation
    stored = brain.get_live_metrics(active.model_id, SYMBOL)
    assert stored[RECORD_BARS] == cumulative["bars"]
    history = brain.get_metric_history(active.model_id, SYMBOL, metric=RECORD_BARS)
    assert list(history["segment"]) == ["live"] and history["window_end"].notna().all()


def test_the_record_runs_from_the_activation(brain: BrainLibrary, flipped: pd.DataFrame) -> None:
    active = trade_on(brain, flipped.iloc[:3000])
    bars = flipped.iloc[:3600]
    first = evaluate_active_model(brain, SYMBOL, bars, SETTINGS, policy=CUMULATIVE_ONLY)
    assert first is not None
    # The same version activated again later (say by an operator at that bar): its record
    # restarts there, while the window still covers every bar it never saw.
    later = make_dataset(bars, 1).index[-200]
    model_id = active.model_id
    brain.apply_transition(Transition("stand_aside", SYMBOL, None, "manual", {}, model_id))
    brain.apply_transition(
        Transition("activate", SYMBOL, model_id, "manual", {"as_of": later.isoformat()})
    )
    again = evaluate_active_model(brain, SYMBOL, bars, SETTINGS, policy=CUMULATIVE_ONLY)
    assert again is not None
    assert first.metrics[RECORD_BARS] > 500
    assert again.metrics[RECORD_BARS] == 199
    assert again.n_bars == first.n_bars


def test_population_stability_on_known_distributions() -> None:
    rng = np.random.default_rng(2)
    train = pd.DataFrame({"x": rng.normal(0, 1, 5000), "flat": np.ones(5000)})
    profile = feature_profile(train)
    assert len(profile["features"]["x"]["edges"]) == 9
    assert profile["features"]["flat"]["shares"] == [0.0, 1.0]
    same = population_stability(profile, pd.DataFrame({"x": rng.normal(0, 1, 2000), "flat": 1.0}))
    assert same["x"] < 0.02 and same["flat"] == 0.0
    shifted = population_stability(
        profile, pd.DataFrame({"x": rng.normal(1.0, 1, 2000), "flat": 1.0})
    )
    # A one-standard-deviation shift: a large shift by the usual convention.
    assert shifted["x"] > 0.25
    with pytest.raises(ValueError, match="missing feature"):
        population_stability(profile, pd.DataFrame({"x": [0.0]}))


def test_a_slow_feature_wandering_as_it_did_in_training_is_not_drift() -> None:
    # A persistent feature (AR(1) at 0.99, like a 48-bar volatility) over 3,000 training rows:
    # any 100-row window of it sits in a few deciles, far above the 0.25 convention. A live
    # window like those is not drift; one beyond anything the training rows reached is.
    rng = np.random.default_rng(8)
    slow = np.zeros(3100)
    for i in range(1, slow.size):
        slow[i] = 0.99 * slow[i - 1] + rng.normal()
    train = pd.DataFrame({"slow": slow[:3000]})
    profile = feature_profile(train)
    ceilings = window_ceilings(profile, train, 100)
    # A window the training rows themselves went through (windows start every 25 rows).
    like_training = population_stability(profile, pd.DataFrame({"slow": slow[1000:1100]}))
    assert like_training["slow"] > 0.25
    assert like_training["slow"] <= ceilings["slow"]
    assert drifted(like_training, ceilings, 0.25) == []
    beyond = population_stability(profile, pd.DataFrame({"slow": slow[3000:] + 100.0}))
    assert drifted(beyond, ceilings, 0.25) == ["slow"]
    # Too few training rows for one window: no ceiling, the threshold alone decides.
    assert window_ceilings(profile, train.iloc[:50], 100) == {"slow": 0.0}


def test_drifted_inputs_are_recorded_and_can_stand_the_version_aside(brain: BrainLibrary) -> None:
    calm = signal_market(3000, momentum=0.2, volatility=0.01, seed=5)
    wild = signal_market(600, momentum=0.2, volatility=0.05, seed=6)
    bars = continued(calm, wild)
    active = trade_on(brain, calm)
    assert active.feature_profile["features"].keys() == set(
        split_columns(make_dataset(calm, 1))[0].columns
    )
    policy = DecisionPolicy(drift_action="stand_aside", rollback_confidence=1 - 1e-12)
    live = evaluate_active_model(brain, SYMBOL, bars, SETTINGS, policy=policy)
    assert live is not None
    drift = live.assessment.drift
    assert drift["flagged"] and drift["max_psi"] > 1.0
    recorded = brain.get_input_drift(SYMBOL)
    assert len(recorded) == 1 and bool(recorded["flagged"].iloc[0])
    assert recorded["psi"].iloc[0]["vol_24"] > 0.25
    # The momentum still pays in the wild market, so drift alone is what takes it out.
    assert live.assessment.trigger == "input_drift" and live.assessment.regressed
    assert ModelVersioning(brain, policy=policy).check_and_rollback(
        live.model_id, SYMBOL, live.metrics, as_of=live.as_of
    )
    assert brain.get_active_model(SYMBOL) is None
    last = brain.get_activation_history(SYMBOL).iloc[-1]
    assert last["details"]["trigger"] == "input_drift"


def test_drift_is_only_flagged_under_the_default_action(brain: BrainLibrary) -> None:
    calm = signal_market(3000, momentum=0.2, volatility=0.01, seed=5)
    bars = continued(calm, signal_market(600, momentum=0.2, volatility=0.05, seed=6))
    trade_on(brain, calm)
    live = evaluate_active_model(
        brain, SYMBOL, bars, SETTINGS, policy=DecisionPolicy(rollback_confidence=1 - 1e-12)
    )
    assert live is not None
    assert live.assessment.drift["flagged"] and live.assessment.drift["action"] == "flag"
    assert not live.assessment.regressed
