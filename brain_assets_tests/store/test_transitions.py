"""The store's records and its one state-switching method: a Transition is checked, switched and
recorded in one transaction under the symbol's lock, or refused with nothing written."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from brain_assets.errors import StaleDecisionError, UnknownModelError
from brain_assets.library import BrainLibrary
from brain_assets.records import ModelVersion, TradingStatus, Transition
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"


def register(brain: BrainLibrary, score: float, symbol: str = SYMBOL) -> str:
    return brain.register_model(
        symbol,
        "ridge",
        f"weights-{score}".encode(),
        metrics={"sharpe_ratio": score, "composite_score": score},
        feature_names=["ret_1"],
    )


def test_getters_return_frozen_typed_records(brain: BrainLibrary) -> None:
    model_id = register(brain, 0.4)
    model = brain.get_model(model_id)
    assert isinstance(model, ModelVersion)
    assert (model.symbol, model.version, model.model_type) == (SYMBOL, 1, "ridge")
    assert model.metrics["composite_score"] == 0.4
    assert model.feature_names == ["ret_1"]
    assert isinstance(model.created_at, datetime)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.version = 2  # type: ignore[misc]
    assert model.to_dict()["model_id"] == model_id
    assert brain.get_model_version(SYMBOL, 1) == model
    status = brain.trading_status(SYMBOL)
    assert isinstance(status, TradingStatus)
    assert status.stand_aside and status.active is None


def test_json_metadata_round_trips_to_the_same_record(brain: BrainLibrary) -> None:
    model = brain.get_model(register(brain, 0.3))
    assert model is not None
    values = {
        k: v.isoformat() if isinstance(v, datetime) else v for k, v in model.to_dict().items()
    }
    assert ModelVersion.from_json(values) == model
    with pytest.raises(ValueError, match="'created_at' is not an ISO-8601 time"):
        ModelVersion.from_json({**values, "created_at": "yesterday"})


def test_activate_switches_and_records_with_a_baseline(brain: BrainLibrary, brain_dsn: str) -> None:
    first, second = register(brain, 0.2), register(brain, 0.5)
    before = brain.apply_transition(Transition("activate", SYMBOL, first, "manual"))
    assert before is None
    previous = brain.apply_transition(
        Transition("activate", SYMBOL, second, "promotion", {"why": "better"}, first)
    )
    assert previous == first
    active = brain.get_active_model(SYMBOL)
    assert active is not None and active.model_id == second
    history = brain.get_activation_history(SYMBOL)
    assert list(history["action"]) == ["activated", "deactivated", "activated"]
    assert history.iloc[-1]["details"]["baseline"]["composite_score"] == 0.5
    assert count_rows(brain_dsn, "model_activations") == 3


def test_a_stale_decision_writes_nothing(brain: BrainLibrary, brain_dsn: str) -> None:
    first, second = register(brain, 0.2), register(brain, 0.5)
    brain.apply_transition(Transition("activate", SYMBOL, first, "manual"))
    rows = count_rows(brain_dsn, "model_activations")
    # Decided while nothing was active; the first version is active now.
    with pytest.raises(StaleDecisionError, match=r"no version active, but .* is active now"):
        brain.apply_transition(Transition("activate", SYMBOL, second, "promotion"))
    with pytest.raises(StaleDecisionError):
        brain.apply_transition(Transition("stand_aside", SYMBOL, second, "rollback", {}, second))
    active = brain.get_active_model(SYMBOL)
    assert active is not None and active.model_id == first
    assert count_rows(brain_dsn, "model_activations") == rows


def test_a_version_of_another_symbol_is_refused(brain: BrainLibrary, brain_dsn: str) -> None:
    other = register(brain, 0.5, symbol="ETH/USDT")
    with pytest.raises(UnknownModelError, match="belongs to symbol 'ETH/USDT'"):
        brain.apply_transition(Transition("activate", SYMBOL, other, "manual"))
    assert brain.get_active_model("ETH/USDT") is None
    assert count_rows(brain_dsn, "model_activations") == 0


def test_stand_aside_and_records_without_a_switch(brain: BrainLibrary) -> None:
    model_id = register(brain, 0.2)
    brain.apply_transition(Transition("activate", SYMBOL, model_id, "manual"))
    brain.apply_transition(Transition("warn", SYMBOL, model_id, "drift", {"psi": 0.4}, model_id))
    assert brain.get_active_model(SYMBOL) is not None
    taken = brain.apply_transition(
        Transition("stand_aside", SYMBOL, None, "rollback", {"trigger": "x"}, model_id)
    )
    assert taken == model_id and brain.get_active_model(SYMBOL) is None
    brain.apply_transition(Transition("keep_inactive", SYMBOL, model_id, "below_floor"))
    history = brain.get_activation_history(SYMBOL)
    assert list(history["action"]) == ["activated", "warning", "deactivated", "kept_inactive"]
    assert "v1 was taken out" not in brain.trading_status(SYMBOL).reason  # kept_inactive is last


def test_a_transition_that_names_no_version_is_refused() -> None:
    with pytest.raises(ValueError, match="names the version"):
        Transition("activate", SYMBOL, None, "manual")
    with pytest.raises(ValueError, match="unknown 'retire'"):
        Transition("retire", SYMBOL, "m", "manual")  # type: ignore[arg-type]
