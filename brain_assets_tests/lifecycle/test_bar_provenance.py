"""Bars with provenance: a symbol the bar store lacks fails (and alerts) instead of training on
made-up bars, every version records where its bars came from, and a version trained on
synthetic bars never trades where the deployment's bars are real."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import pytest

from brain_assets.cli.main import main
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.defs.resources import MarketDataResource
from brain_assets.errors import SyntheticBarsRefusedError
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.predictor import StandAside, load_predictor, load_predictor_from_bundle
from brain_assets.lifecycle.selection import ModelSelector
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.provenance import BarProvenance, bars_label
from brain_assets.records import Transition
from brain_assets_tests.dagster_helpers import run_assets

SYMBOL = "BTC/USDT"
SYNTHETIC_1H = BarProvenance("synthetic", "1h", synthetic=True)
REAL_1H = BarProvenance("store:binance", "1h", synthetic=False)
SEED = DecisionPolicy.seed()


def register(versioning: ModelVersioning, tag: str, bars: BarProvenance | None) -> str:
    return versioning.register_version(
        SYMBOL, "ridge", tag.encode(), metrics={"sharpe_ratio": 1.0}, horizon=1, bars=bars
    )


def test_a_symbol_the_store_lacks_fails_with_its_name_and_an_alert(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    with dg.instance_for_test() as instance:
        result = run_assets(instance, brain_dsn, ["ETH/USDT"], market=MarketDataResource())
    assert not result.success
    assert brain.list_models("ETH/USDT").empty
    logged = brain.get_data_quality_logs("ETH/USDT")
    load = logged[logged["check_name"] == "market_data_load"]
    assert len(load) == 1 and "ETH/USDT: the bar store holds no 1h bars" in str(
        load["details"].iloc[0]
    )
    alerts = [a for a in brain.get_alerts() if a["kind"] == "market_data_missing"]
    assert len(alerts) == 1 and alerts[0]["payload"]["symbol"] == "ETH/USDT"


def test_every_version_records_its_bars_and_the_tables_say_synthetic(
    brain: BrainLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRAIN_MARKET_SOURCE", "synthetic")
    versioning = ModelVersioning(brain, policy=SEED)
    model_id = register(versioning, "a", SYNTHETIC_1H)
    row = brain.get_model(model_id)
    assert row is not None
    assert (row.bar_source, row.bar_timeframe, row.synthetic_bars) == (
        "synthetic",
        "1h",
        True,
    )
    # The demo's deployment chose synthetic bars: there the version may trade.
    assert brain.get_active_model(SYMBOL).model_id == model_id
    assert bars_label(row) == "synthetic 1h (SYNTHETIC)"
    assert bars_label({"bar_source": None}) == "unknown"
    listed = brain.list_models(SYMBOL)
    assert list(listed["synthetic_bars"]) == [True]
    with pytest.raises(ValueError, match="bar source"):
        BarProvenance(" ", "1h", synthetic=False)


def test_a_synthetic_version_never_trades_where_the_bars_are_real(
    brain: BrainLibrary,
    brain_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("BRAIN_MARKET_SOURCE", raising=False)  # the default: auto, real bars
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    versioning = ModelVersioning(brain, policy=SEED)
    real = register(versioning, "real", REAL_1H)
    assert brain.get_active_model(SYMBOL).model_id == real
    made_up = versioning.register_version(
        SYMBOL, "ridge", b"made-up", metrics={"sharpe_ratio": 9.0}, horizon=1, bars=SYNTHETIC_1H
    )
    # A far better score, and still kept inactive, with the reason recorded.
    assert brain.get_active_model(SYMBOL).model_id == real
    last = brain.get_activation_history(SYMBOL).iloc[-1]
    assert last["model_id"] == made_up and last["action"] == "kept_inactive"
    assert last["reason"] == "synthetic_bars" and "synthetic bars" in last["details"]["rule"]
    # Not the best tradable version, not the selector's pick.
    assert brain.get_best_model(SYMBOL).model_id == real
    assert made_up not in brain.tradable_model_ids(SYMBOL)
    assert ModelSelector(brain).select_model_for_symbol(SYMBOL, "normal")["model_id"] == real
    # Every way of activating it is refused, and nothing changes.
    before = len(brain.get_activation_history(SYMBOL))
    with pytest.raises(SyntheticBarsRefusedError, match="version 2 was trained on synthetic"):
        versioning.promote(made_up)
    with pytest.raises(SyntheticBarsRefusedError):
        brain.apply_transition(
            Transition("activate", SYMBOL, made_up, "manual", check_active=False)
        )
    assert main(["rollback", SYMBOL, "--to", "2"]) == 2
    assert "trained on synthetic bars" in capsys.readouterr().err
    assert brain.get_active_model(SYMBOL).model_id == real
    assert len(brain.get_activation_history(SYMBOL)) == before
    # Once active in a deployment that chose synthetic bars, ...
    ModelVersioning(brain, policy=SEED, synthetic_allowed=True).promote(made_up)
    assert brain.get_active_model(SYMBOL).model_id == made_up
    versioning.promote(real)
    # ... a real deployment's rollback never returns to it.
    with pytest.raises(ValueError, match="no earlier version to roll back to"):
        versioning.rollback(SYMBOL)
    assert brain.get_active_model(SYMBOL).model_id == real


def test_a_demo_version_active_on_the_brain_stands_aside_where_the_bars_are_real(
    brain: BrainLibrary, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRAIN_MARKET_SOURCE", "synthetic")
    demo = register(ModelVersioning(brain, policy=SEED), "demo", SYNTHETIC_1H)
    assert brain.get_active_model(SYMBOL).model_id == demo
    # The same Brain, now a deployment whose bars are real.
    monkeypatch.delenv("BRAIN_MARKET_SOURCE")
    versioning = ModelVersioning(brain, policy=SEED)
    status = brain.trading_status(SYMBOL)
    assert status.stand_aside and "trained on synthetic bars" in status.reason
    with pytest.raises(StandAside, match="trained on synthetic bars"):
        load_predictor(brain, SYMBOL, cache_dir=tmp_path)
    pick = ModelSelector(brain).select_model_for_symbol(SYMBOL, "normal")
    assert pick is not None and pick["model_id"] is None
    # No way around the store's check: a second synthetic version cannot be switched on.
    other = versioning.register_version(
        SYMBOL, "ridge", b"demo-2", metrics={"sharpe_ratio": 3.0}, horizon=1, bars=SYNTHETIC_1H
    )
    with pytest.raises(SyntheticBarsRefusedError):
        brain.activate_model(other)
    # The first real version takes over, although the demo's scored higher.
    real = versioning.register_version(
        SYMBOL, "ridge", b"real", metrics={"sharpe_ratio": 0.5}, horizon=1, bars=REAL_1H
    )
    assert brain.get_active_model(SYMBOL).model_id == real
    history = brain.get_activation_history(SYMBOL)
    taken_out = history[(history["model_id"] == demo) & (history["action"] == "deactivated")]
    assert list(taken_out["reason"]) == ["synthetic_bars"]


def test_a_synthetic_bundle_is_refused_where_the_bars_are_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRAIN_MARKET_SOURCE", raising=False)
    artifact = tmp_path / "BTC-USDT_v1_ridge.skops"
    artifact.write_bytes(b"not deserialised before the check")
    sidecar = {
        "model_id": "m-1",
        "symbol": SYMBOL,
        "version": 1,
        "model_type": "ridge",
        "horizon": 1,
        "feature_names": ["ret_1"],
        "artifact_sha256": hashlib.sha256(artifact.read_bytes()).hexdigest(),
        "artifact_format": "skops",
        "metrics": {},
        "bar_source": "synthetic",
        "bar_timeframe": "1h",
        "synthetic_bars": True,
    }
    (tmp_path / (artifact.name + ".json")).write_text(json.dumps(sidecar))
    with pytest.raises(SyntheticBarsRefusedError, match="version 1 was trained on synthetic"):
        load_predictor_from_bundle(artifact)
