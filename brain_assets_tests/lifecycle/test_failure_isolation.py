"""One failure takes down only what it must.

* TensorFlow that cannot be imported disables the ``lstm`` model type for that run: the
  scikit-learn models train, evaluate and register, the skip is in the metadata and an alert is
  queued; an error raised while the LSTM fits still fails the run.
* An active version whose artifact cannot be loaded is taken out with an alert, and the previous
  good version (whose own artifact loads) trades instead, or the symbol stands aside.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from brain_assets.calendar import periods_per_year
from brain_assets.defs.monitoring.assets import live_model_metrics
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.resources import LSTMConfig, MarketDataResource, RetrainResource
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.predictor import StandAside, load_predictor
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.lstm.model import StandardizedLSTM
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import build_dataset_table, split_columns
from brain_assets.pipeline.evaluation import ModelEvaluation, evaluate_symbol
from brain_assets.pipeline.monitoring import evaluate_active_model
from brain_assets.pipeline.promotion import champion_scorer
from brain_assets.pipeline.registration import register_symbol
from brain_assets.pipeline.settings import LSTMSettings, RetrainSettings
from brain_assets.pipeline.training import (
    TrainedArtifact,
    fitted_model,
    train_symbol,
    train_symbol_models,
)
from brain_assets.store.registry import UNLOADABLE_TRIGGER
from brain_assets.training import serialization
from brain_assets.training.serialization import ArtifactEnvironmentError
from brain_assets_tests.dagster_helpers import SMALL_MARKET, run_assets
from brain_assets_tests.settings import NO_FLOOR_POLICY as NO_FLOOR
from brain_assets_tests.settings import TINY_LSTM

SYMBOL = "BTC/USDT"
SHARED_LIBRARY = "libtensorflow_cc.so.2: cannot open shared object file: No such file or directory"


def break_tensorflow(
    monkeypatch: pytest.MonkeyPatch, error: Callable[[], BaseException] = lambda: ImportError()
) -> None:
    """Every ``import tensorflow`` / ``import keras`` (or of a submodule) raises ``error()``,
    even when a previous test of this process imported them: the import statement goes through
    ``builtins.__import__`` whatever ``sys.modules`` holds."""
    real_import = builtins.__import__

    def guarded(
        name: str,
        globals: dict[str, Any] | None = None,
        locals: dict[str, Any] | None = None,
        fromlist: tuple[str, ...] = (),
        level: int = 0,
    ) -> Any:
        if level == 0 and name.split(".")[0] in ("tensorflow", "keras"):
            raise error()
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", guarded)


# -- A: TensorFlow that cannot be imported --------------------------------------------------


def small_table() -> pd.DataFrame:
    bars = signal_market(700, momentum=0.3, seed=3)
    return build_dataset_table(bars, 1).table


@pytest.mark.parametrize(
    "error",
    [lambda: ImportError(SHARED_LIBRARY), lambda: OSError(SHARED_LIBRARY)],
    ids=["ImportError", "OSError"],
)
def test_an_unloadable_tensorflow_skips_only_lstm(
    monkeypatch: pytest.MonkeyPatch, error: Callable[[], BaseException]
) -> None:
    break_tensorflow(monkeypatch, error)
    settings = RetrainSettings(model_types=("ridge",), include_lstm=True)
    training = train_symbol_models(SYMBOL, small_table(), settings)
    assert [a.model_type for a in training.artifacts] == ["ridge"]
    kind = type(error()).__name__
    assert training.skipped_model_types == {"lstm": f"{kind}: {SHARED_LIBRARY}"}
    # The list-returning API is unchanged.
    assert [a.model_type for a in train_symbol(SYMBOL, small_table(), settings)] == ["ridge"]


def test_nothing_left_to_train_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    break_tensorflow(monkeypatch, lambda: ImportError(SHARED_LIBRARY))
    settings = RetrainSettings(model_types=("lstm",))
    with pytest.raises(RuntimeError, match=r"no configured model type can be trained.*lstm"):
        train_symbol_models(SYMBOL, small_table(), settings)


def test_an_import_error_inside_the_fit_is_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    """The skip is decided by where the error happens: TensorFlow imports fine here, and an
    ImportError raised while fitting is a failure of the fit."""

    def broken_fit(self: StandardizedLSTM, *args: Any, **kwargs: Any) -> Any:
        raise ImportError("cannot import name 'LSTMCell' from a half-upgraded keras")

    monkeypatch.setattr(StandardizedLSTM, "fit", broken_fit)
    settings = RetrainSettings(
        model_types=("ridge",), include_lstm=True, lstm_config=LSTMSettings(**TINY_LSTM)
    )
    with pytest.raises(ImportError, match="half-upgraded"):
        train_symbol_models(SYMBOL, small_table(), settings)


LSTM_RETRAIN = RetrainResource(
    model_types=["ridge"],
    include_lstm=True,
    importance_sample=250,
    lstm_config=LSTMConfig(**TINY_LSTM),
)


def partition_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
        if materialization.asset_key.to_user_string() == asset:
            return dict(materialization.metadata)
    raise AssertionError(f"{asset} was not materialised")


@pytest.mark.slow
def test_retrain_without_tensorflow_registers_the_sklearn_models(
    brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_tensorflow(monkeypatch, lambda: ImportError(SHARED_LIBRARY))
    result = run_assets(
        dg.DagsterInstance.ephemeral(),
        brain_dsn,
        [SYMBOL],
        market=SMALL_MARKET,
        retrain=LSTM_RETRAIN,
    )
    assert result.success
    reason = f"ImportError: {SHARED_LIBRARY}"
    skipped = partition_metadata(result, "trained_models")["skipped_model_types"]
    assert skipped.value == {"lstm": reason}
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"model_evaluation", "registry_entries", "feature_importance"} <= materialised
    with BrainLibrary(brain_dsn) as brain:
        versions = brain.list_models(SYMBOL)
        assert list(versions["model_type"]) == ["ridge"]
        assert brain.get_active_model(SYMBOL) is not None
        stored = brain.get_asset_values("trained_models", [SYMBOL])[SYMBOL]
        assert stored["skipped_model_types"] == {"lstm": reason}
        assert [doc["model_type"] for doc in stored["models"]] == ["ridge"]
        evaluation = brain.get_asset_values("model_evaluation", [SYMBOL])[SYMBOL]
        assert set(evaluation["models"]) == {"ridge"}
        alerts = [a for a in brain.get_alerts() if a["kind"] == "model_type_skipped"]
        assert len(alerts) == 1
        assert alerts[0]["symbol"] == SYMBOL
        payload = alerts[0]["payload"]
        assert payload["model_types"] == ["lstm"]
        assert payload["reasons"] == [reason]
        assert payload["run_id"] == result.run_id
        assert payload["skipped"] == {SYMBOL: {"lstm": reason}}


@pytest.mark.slow
def test_an_error_inside_the_lstm_fit_still_fails_the_run(
    brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def diverging_fit(self: StandardizedLSTM, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("loss became NaN at epoch 1")

    monkeypatch.setattr(StandardizedLSTM, "fit", diverging_fit)
    result = run_assets(
        dg.DagsterInstance.ephemeral(),
        brain_dsn,
        [SYMBOL],
        market=SMALL_MARKET,
        retrain=LSTM_RETRAIN,
    )
    assert not result.success
    failures = [
        event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE
    ]
    assert [event.step_key for event in failures] == ["trained_models"]
    assert "loss became NaN" in str(failures[0].step_failure_data.error)
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "trained_models" not in materialised
    with BrainLibrary(brain_dsn) as brain:
        assert brain.list_models(SYMBOL).empty
        assert not [a for a in brain.get_alerts() if a["kind"] == "model_type_skipped"]


# -- B: an active version whose artifact cannot be loaded ----------------------------------

TRAIN_BARS = 1300
MODELS = RetrainSettings(model_types=("ridge", "random_forest", "hist_gradient_boosting"))


@dataclass(frozen=True)
class Trained:
    bars: pd.DataFrame
    """Every bar: the models were trained and evaluated on the first TRAIN_BARS only."""
    table: pd.DataFrame
    artifacts: dict[str, TrainedArtifact]
    evaluations: dict[str, ModelEvaluation]
    ppy: float


@pytest.fixture(scope="module")
def trained() -> Trained:
    bars = signal_market(1700, momentum=0.3, seed=1)
    table = build_dataset_table(bars.iloc[:TRAIN_BARS], MODELS.horizon).table
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(SYMBOL, table, MODELS)
    evaluations = evaluate_symbol(SYMBOL, table, artifacts, MODELS, ppy)
    return Trained(
        bars,
        table,
        {a.model_type: a for a in artifacts},
        {e.model_type: e for e in evaluations},
        ppy,
    )


def register(brain: BrainLibrary, trained: Trained, *model_types: str) -> dict[str, str]:
    registration = register_symbol(
        brain,
        SYMBOL,
        [trained.artifacts[t] for t in model_types],
        {t: trained.evaluations[t].metrics for t in model_types},
        trained.ppy,
        policy=NO_FLOOR,
    )
    return registration.model_ids


def ridge_then_forest(brain: BrainLibrary, trained: Trained) -> dict[str, str]:
    """ridge traded first, random_forest trades now: ridge is the previous good version."""
    ids = register(brain, trained, "ridge", "random_forest")
    versioning = ModelVersioning(brain, policy=NO_FLOOR)
    versioning.promote(ids["ridge"])
    versioning.promote(ids["random_forest"])
    return ids


CORRUPTIONS = ("sha256_mismatch", "refused_by_the_loader")


def corrupt(brain: BrainLibrary, model_id: str, how: str) -> None:
    """Test-only SQL: damage a stored artifact the way a bad write or a bad actor would."""
    with brain.transaction() as conn:
        if how == "sha256_mismatch":
            conn.execute(
                "UPDATE model_registry SET artifact = artifact || '\\x00'::bytea "
                "WHERE model_id = %s",
                (model_id,),
            )
        else:
            # Bytes that pass the integrity check (the hash is rewritten too) but that the
            # skops loader refuses to read.
            garbage = b"not a skops archive"
            conn.execute(
                "UPDATE model_registry SET artifact = %s, artifact_sha256 = %s WHERE model_id = %s",
                (garbage, hashlib.sha256(garbage).hexdigest(), model_id),
            )


def alerts_of(brain: BrainLibrary, kind: str) -> list[dict[str, Any]]:
    return [a for a in brain.get_alerts() if a["kind"] == kind]


def last_rows(brain: BrainLibrary, n: int) -> list[dict[str, Any]]:
    history = brain.get_activation_history(SYMBOL)
    return [dict(row) for _, row in history.tail(n).iterrows()]


def expected_error(how: str) -> str:
    return "ArtifactIntegrityError" if how == "sha256_mismatch" else "ValueError"


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_predictor_falls_back_to_the_previous_good_version(
    brain: BrainLibrary, trained: Trained, how: str
) -> None:
    ids = ridge_then_forest(brain, trained)
    broken, good = ids["random_forest"], ids["ridge"]
    corrupt(brain, broken, how)

    predictor = load_predictor(brain, SYMBOL, policy=NO_FLOOR)
    assert (predictor.model_id, predictor.model_type) == (good, "ridge")
    active = brain.get_active_model(SYMBOL)
    assert active is not None and active.model_id == good

    out, back = last_rows(brain, 2)
    assert (out["model_id"], out["action"], out["reason"]) == (broken, "deactivated", "rollback")
    assert out["details"]["trigger"] == UNLOADABLE_TRIGGER
    assert out["details"]["rolled_back_to"] == good
    assert out["details"]["error"].startswith(expected_error(how))
    assert (back["model_id"], back["action"], back["reason"]) == (good, "activated", "rollback")

    [alert] = alerts_of(brain, "model_rollback")
    assert alert["symbol"] == SYMBOL
    payload = alert["payload"]
    assert payload["trigger"] == UNLOADABLE_TRIGGER
    assert (payload["unloadable_model_id"], payload["rolled_back_to"]) == (broken, good)
    assert payload["error"].startswith(expected_error(how))
    assert payload["stand_aside"] is False

    # It predicts with the version it fell back to: exactly that version's own predictions.
    X, _, _ = split_columns(trained.table)
    expected = pd.Series(fitted_model(trained.artifacts["ridge"]).predict(X), index=X.index)
    when = expected.index[-1]
    bars = trained.bars[trained.bars["timestamp"] <= when]
    assert predictor.predict(bars).value == pytest.approx(float(expected.loc[when]), abs=1e-9)

    # The broken version is out for good: no second fallback, no second alert, and neither the
    # selector nor a later rollback may return to it.
    assert load_predictor(brain, SYMBOL, policy=NO_FLOOR).model_id == good
    assert len(brain.get_alerts()) == 1
    assert broken not in brain.tradable_model_ids(SYMBOL)
    assert ModelVersioning(brain).rollback_candidates(SYMBOL) == []


def test_nothing_loads_so_the_symbol_stands_aside(brain: BrainLibrary, trained: Trained) -> None:
    ids = ridge_then_forest(brain, trained)
    corrupt(brain, ids["random_forest"], "sha256_mismatch")
    corrupt(brain, ids["ridge"], "refused_by_the_loader")

    with pytest.raises(StandAside) as caught:
        load_predictor(brain, SYMBOL, policy=NO_FLOOR)
    assert UNLOADABLE_TRIGGER in caught.value.reason
    assert brain.get_active_model(SYMBOL) is None
    assert brain.trading_status(SYMBOL).stand_aside

    [alert] = alerts_of(brain, "model_stand_aside")
    payload = alert["payload"]
    assert payload["unloadable_model_id"] == ids["random_forest"]
    assert payload["stand_aside"] is True and payload["rolled_back_to"] is None
    [skipped] = payload["skipped"]
    assert skipped["model_id"] == ids["ridge"]
    assert skipped["why"].startswith("ValueError")

    # The candidate that failed to load carries the mark too.
    marks = brain.get_activation_history(SYMBOL)
    ridge_mark = marks[(marks["model_id"] == ids["ridge"]) & (marks["action"] == "warning")]
    assert list(ridge_mark["reason"]) == [UNLOADABLE_TRIGGER]

    # Asking again changes nothing and alerts nobody twice.
    with pytest.raises(StandAside):
        load_predictor(brain, SYMBOL, policy=NO_FLOOR)
    assert len(brain.get_alerts()) == 1


def test_an_unloadable_regime_pick_is_marked_and_the_active_version_serves(
    brain: BrainLibrary, trained: Trained
) -> None:
    ids = register(brain, trained, "ridge", "random_forest")
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["ridge"])
    for model_type, score in (("random_forest", 0.5), ("ridge", 0.1)):
        brain.store_model_metrics(
            ids[model_type], SYMBOL, {"composite_score": score, "n_bars": 80.0}, regime="high"
        )
    corrupt(brain, ids["random_forest"], "sha256_mismatch")

    predictor = load_predictor(brain, SYMBOL, regime="high", policy=NO_FLOOR)
    assert predictor.model_id == ids["ridge"]
    # The marked version no longer competes in the regime.
    assert "of the 1 model(s) evaluated" in predictor.reason
    active = brain.get_active_model(SYMBOL)
    assert active is not None and active.model_id == ids["ridge"]
    [alert] = alerts_of(brain, "model_artifact_unloadable")
    assert alert["payload"]["unloadable_model_id"] == ids["random_forest"]
    assert alert["payload"]["was_active"] is False


MONITOR = {"min_bars": 100, "window_bars": 200, "policy": NO_FLOOR}


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_monitoring_falls_back_and_evaluates_the_version_that_trades(
    brain: BrainLibrary, trained: Trained, how: str
) -> None:
    ids = ridge_then_forest(brain, trained)
    corrupt(brain, ids["random_forest"], how)

    live = evaluate_active_model(brain, SYMBOL, trained.bars, MODELS, **MONITOR)
    assert live is not None
    assert live.model_id == ids["ridge"]
    assert live.fell_back_from is not None
    assert live.fell_back_from["model_id"] == ids["random_forest"]
    assert live.fell_back_from["error"].startswith(expected_error(how))
    assert live.to_json()["fell_back_from"] == live.fell_back_from
    assert live.n_bars == 200
    active = brain.get_active_model(SYMBOL)
    assert active is not None and active.model_id == ids["ridge"]
    [alert] = alerts_of(brain, "model_rollback")
    assert alert["payload"]["unloadable_model_id"] == ids["random_forest"]
    # The live metrics stored are the restored version's.
    assert "sharpe_ratio" in brain.get_model_metrics(ids["ridge"], SYMBOL)


@pytest.mark.slow
def test_the_monitoring_asset_records_the_fallback(
    brain: BrainLibrary, brain_dsn: str, trained: Trained, tmp_path: Path
) -> None:
    ids = ridge_then_forest(brain, trained)
    corrupt(brain, ids["random_forest"], "sha256_mismatch")
    bars = trained.bars.assign(
        timestamp=trained.bars["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    bars.to_csv(tmp_path / "BTC-USDT.csv", index=False)
    result = run_assets(
        dg.DagsterInstance.ephemeral(),
        brain_dsn,
        [SYMBOL],
        assets=[live_model_metrics],
        market=MarketDataResource(source="files", folder=str(tmp_path)),
        monitoring=MonitoringResource(min_bars=100, window_bars=200),
    )
    assert result.success
    metadata = partition_metadata(result, "live_model_metrics")
    assert metadata["model_id"].value == ids["ridge"]
    fell_back_from = metadata["fell_back_from"].value
    assert fell_back_from["model_id"] == ids["random_forest"]
    assert fell_back_from["error"].startswith("ArtifactIntegrityError")
    [alert] = alerts_of(brain, "model_rollback")
    assert alert["payload"]["rolled_back_to"] == ids["ridge"]


def test_monitoring_stands_aside_when_nothing_loads(brain: BrainLibrary, trained: Trained) -> None:
    ids = ridge_then_forest(brain, trained)
    corrupt(brain, ids["random_forest"], "refused_by_the_loader")
    corrupt(brain, ids["ridge"], "sha256_mismatch")
    assert evaluate_active_model(brain, SYMBOL, trained.bars, MODELS, **MONITOR) is None
    assert brain.get_active_model(SYMBOL) is None
    [alert] = alerts_of(brain, "model_stand_aside")
    assert alert["payload"]["skipped"][0]["why"].startswith("ArtifactIntegrityError")


def test_monitoring_marks_a_rollback_candidate_that_cannot_load(
    brain: BrainLibrary, trained: Trained
) -> None:
    ids = register(brain, trained, "ridge", "random_forest")
    versioning = ModelVersioning(brain, policy=NO_FLOOR)
    versioning.promote(ids["random_forest"])
    versioning.promote(ids["ridge"])  # random_forest is the one a rollback would return to
    corrupt(brain, ids["random_forest"], "sha256_mismatch")

    live = evaluate_active_model(brain, SYMBOL, trained.bars, MODELS, **MONITOR)
    assert live is not None and live.model_id == ids["ridge"] and live.fell_back_from is None
    assert ids["random_forest"] not in live.candidates
    assert versioning.rollback_candidates(SYMBOL) == []
    [alert] = alerts_of(brain, "model_artifact_unloadable")
    assert alert["payload"]["unloadable_model_id"] == ids["random_forest"]


def register_boosting_challenger(brain: BrainLibrary, trained: Trained) -> Any:
    """Registers hist gradient boosting against the champion, scored on its own test bars."""
    challenger = trained.evaluations["hist_gradient_boosting"]
    assert challenger.bar_returns is not None
    return register_symbol(
        brain,
        SYMBOL,
        [trained.artifacts["hist_gradient_boosting"]],
        {"hist_gradient_boosting": challenger.metrics},
        trained.ppy,
        bar_returns_by_type={"hist_gradient_boosting": challenger.bar_returns},
        champion=champion_scorer(brain, trained.table, challenger.bar_returns.index, MODELS),
        policy=NO_FLOOR,
    )


def test_registration_takes_out_an_unloadable_champion(
    brain: BrainLibrary, trained: Trained
) -> None:
    ids = ridge_then_forest(brain, trained)
    corrupt(brain, ids["random_forest"], "sha256_mismatch")
    registration = register_boosting_challenger(brain, trained)
    new_id = registration.model_ids["hist_gradient_boosting"]
    history = brain.get_activation_history(SYMBOL)
    out = history[
        (history["model_id"] == ids["random_forest"]) & (history["action"] == "deactivated")
    ].iloc[-1]
    assert out["details"]["trigger"] == UNLOADABLE_TRIGGER
    assert out["details"]["rolled_back_to"] == ids["ridge"]
    [alert] = alerts_of(brain, "model_rollback")
    assert alert["payload"]["unloadable_model_id"] == ids["random_forest"]
    # The challenger was judged against ridge, the version that trades after the fallback.
    decision = history[history["model_id"] == new_id].iloc[-1]
    assert decision["details"]["active_model_id"] == ids["ridge"]
    assert registration.active_model_id in (ids["ridge"], new_id)
    assert ids["ridge"] not in registration.promoted


# -- C: a host that cannot read a sound artifact ---------------------------------------------

HOST_FAULTS = {
    "ImportError": lambda: ImportError(SHARED_LIBRARY),
    "OSError": lambda: OSError(28, "No space left on device", "/tmp/brain-model.keras"),
}


def break_the_reader(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    """Every artifact verifies, but this process cannot read it: what a client without keras
    or a full temporary disk sees."""

    def failing(data: bytes, fmt: str) -> Any:
        raise HOST_FAULTS[fault]()

    monkeypatch.setattr(serialization, "deserialize_model", failing)


def registry_state(brain: BrainLibrary) -> tuple[Any, ...]:
    active = brain.get_active_model(SYMBOL)
    return (
        None if active is None else active.model_id,
        len(brain.get_activation_history(SYMBOL)),
        len(brain.get_alerts()),
        tuple(brain.tradable_model_ids(SYMBOL)),
        len(brain.list_models(SYMBOL)),
    )


def without_one_row_models(brain: BrainLibrary) -> None:
    """As versions registered before their one-row models were stored: load_predictor reads
    their artifacts."""
    with brain.transaction() as conn:
        conn.execute("UPDATE model_registry SET one_row = NULL, one_row_sha256 = NULL")


@pytest.mark.parametrize("fault", HOST_FAULTS)
def test_a_host_fault_while_loading_changes_nothing(
    brain: BrainLibrary, trained: Trained, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    ids = ridge_then_forest(brain, trained)
    without_one_row_models(brain)
    before = registry_state(brain)
    break_the_reader(monkeypatch, fault)

    with pytest.raises(ArtifactEnvironmentError) as caught:
        load_predictor(brain, SYMBOL, policy=NO_FLOOR)
    message = str(caught.value)
    assert f"{SYMBOL} random_forest" in message and ids["random_forest"] in message
    assert fault in message and "left as it was" in message
    assert not isinstance(caught.value, ValueError)
    assert registry_state(brain) == before

    with pytest.raises(ArtifactEnvironmentError):
        evaluate_active_model(brain, SYMBOL, trained.bars, MODELS, **MONITOR)
    assert registry_state(brain) == before

    # Once the host is fixed, the same version trades: it was never the version's fault.
    monkeypatch.undo()
    assert load_predictor(brain, SYMBOL, policy=NO_FLOOR).model_id == ids["random_forest"]


def test_a_version_with_its_one_row_model_predicts_where_the_artifact_cannot_be_read(
    brain: BrainLibrary, trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine's prediction needs only the one-row model's arrays: a host that cannot import
    # what reads the artifact still trades, and whoever asks for the estimator hears why not.
    ids = ridge_then_forest(brain, trained)
    before = registry_state(brain)
    break_the_reader(monkeypatch, "ImportError")
    predictor = load_predictor(brain, SYMBOL, policy=NO_FLOOR)
    assert predictor.model_id == ids["random_forest"]
    X, _, _ = split_columns(trained.table)
    when = X.index[-1]
    expected = float(fitted_model(trained.artifacts["random_forest"]).predict(X.loc[[when]])[0])
    bars = trained.bars[trained.bars["timestamp"] <= when]
    assert predictor.predict(bars).value == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ArtifactEnvironmentError, match="ImportError"):
        _ = predictor.estimator
    assert registry_state(brain) == before


def test_a_host_fault_on_the_champion_registers_nothing(
    brain: BrainLibrary, trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    ridge_then_forest(brain, trained)
    before = registry_state(brain)
    break_the_reader(monkeypatch, "ImportError")
    with pytest.raises(ArtifactEnvironmentError, match="random_forest"):
        register_boosting_challenger(brain, trained)
    assert registry_state(brain) == before
