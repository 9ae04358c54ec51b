"""``load_predictor``: the engine's one call gives the evaluation's very predictions from raw bars.

A module fixture trains ridge and random forest once on a market with a real signal (no database);
each test registers them in its own fresh Brain.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from brain_assets.calendar import periods_per_year
from brain_assets.cli import predict_command
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.errors import BrainError
from brain_assets.evaluation.positions import PositionRule
from brain_assets.features.technical import WARMUP_BARS
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.predictor import Prediction, Predictor, StandAside, load_predictor
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import build_dataset_table, split_columns
from brain_assets.pipeline.evaluation import ModelEvaluation, evaluate_symbol
from brain_assets.pipeline.registration import register_symbol
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, fitted_model, train_symbol
from brain_assets.training.serialization import UnloadableArtifactError
from brain_assets_tests.settings import NO_FLOOR_POLICY as NO_FLOOR

SYMBOL = "BTC/USDT"
SETTINGS = RetrainSettings(model_types=("ridge", "random_forest"))


@dataclass(frozen=True)
class Trained:
    bars: pd.DataFrame
    table: pd.DataFrame
    artifacts: list[TrainedArtifact]
    evaluations: dict[str, ModelEvaluation]
    ppy: float
    own: dict[str, pd.Series]
    """Each registered model's own predictions on every row of the table (the version that
    trades is refitted on them; its evaluation's predictions come from the folds' models)."""


@pytest.fixture(scope="module")
def trained() -> Trained:
    bars = signal_market(1500, momentum=0.3, seed=1)
    table = build_dataset_table(bars, SETTINGS.horizon).table
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(SYMBOL, table, SETTINGS)
    evaluations = evaluate_symbol(SYMBOL, table, artifacts, SETTINGS, ppy)
    X, _, _ = split_columns(table)
    own = {
        a.model_type: pd.Series(np.asarray(fitted_model(a).predict(X)), index=X.index)
        for a in artifacts
    }
    return Trained(bars, table, artifacts, {e.model_type: e for e in evaluations}, ppy, own)


def register(
    brain: BrainLibrary, trained: Trained, policy: DecisionPolicy = NO_FLOOR
) -> dict[str, str]:
    """Register the trained versions; returns model type -> model_id."""
    registration = register_symbol(
        brain,
        SYMBOL,
        trained.artifacts,
        {t: e.metrics for t, e in trained.evaluations.items()},
        trained.ppy,
        policy=policy,
    )
    return registration.model_ids


def bars_through(trained: Trained, when: pd.Timestamp) -> pd.DataFrame:
    """The raw bars up to and including the bar at ``when``: all that its features may read."""
    position = int(np.flatnonzero(trained.bars["timestamp"] == when)[0])
    return trained.bars.iloc[: position + 1]


@pytest.mark.parametrize("model_type", ["ridge", "random_forest"])
def test_prediction_equals_the_retrains(
    brain: BrainLibrary, trained: Trained, model_type: str
) -> None:
    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids[model_type])
    predictor = load_predictor(brain, SYMBOL)
    assert (predictor.model_id, predictor.model_type) == (ids[model_type], model_type)
    assert predictor.bar_seconds == pytest.approx(3600.0)
    assert predictor.horizon == 1
    assert predictor.context_rows == 0
    assert predictor.min_bars == WARMUP_BARS + 1

    expected = trained.own[model_type]
    # The last bar, and one in the middle of the history.
    for when in (expected.index[-1], expected.index[len(expected) // 2]):
        prediction = predictor.predict(bars_through(trained, when))
        assert isinstance(prediction, Prediction)
        assert prediction.bar_time == when
        assert prediction.value == pytest.approx(float(expected.loc[when]), abs=1e-9, rel=1e-9)
        # From flat, the band the version was evaluated with decides the position.
        assert prediction.position == predictor.rule.next_position(prediction.value, 0)
        assert (prediction.symbol, prediction.model_id) == (SYMBOL, ids[model_type])
        assert prediction.version == predictor.version
        assert prediction.horizon == 1

    # 500 recent bars give the full history's prediction: the EMA memory has faded.
    when = expected.index[-1]
    recent = bars_through(trained, when).iloc[-500:]
    assert predictor.predict(recent).value == pytest.approx(float(expected.loc[when]), abs=1e-9)
    # Extra columns and another index change nothing.
    noisy = recent.assign(extra="x").set_index(pd.RangeIndex(10, 10 + len(recent)))
    assert predictor.predict(noisy).value == predictor.predict(recent).value


FRESH_ENGINE = """
import json, sys
import pandas as pd
from brain_assets.library import BrainLibrary
bars = pd.read_csv(sys.argv[2], parse_dates=["timestamp"])
with BrainLibrary(sys.argv[1]) as brain:
    predictor = brain.load_predictor("BTC/USDT")
    value = predictor.predict(bars).value
    loaded = sorted(name for name in ("sklearn", "skops") if name in sys.modules)
print(json.dumps({"value": value, "imported": loaded}))
"""


@pytest.mark.parametrize("model_type", ["ridge", "random_forest"])
def test_an_engine_predicts_without_importing_scikit_learn(
    brain: BrainLibrary, brain_dsn: str, trained: Trained, tmp_path: Path, model_type: str
) -> None:
    # The version's one-row model is stored beside its artifact at registration: a fresh engine
    # process loads and predicts without scikit-learn (about a second of imports).
    import subprocess
    import sys

    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids[model_type])
    when = trained.own[model_type].index[-1]
    csv = tmp_path / "bars.csv"
    bars_through(trained, when).iloc[-500:].to_csv(csv, index=False)
    done = subprocess.run(
        [sys.executable, "-c", FRESH_ENGINE, brain_dsn, str(csv)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported"] == [], done.stderr
    assert result["value"] == pytest.approx(float(trained.own[model_type].loc[when]), abs=1e-9)
    # The estimator is still there for whoever asks, read from the verified artifact.
    predictor = load_predictor(brain, SYMBOL)
    assert predictor._estimator is None and predictor.one_row is not None
    X, _, _ = split_columns(trained.table)
    assert float(predictor.estimator.predict(X.loc[[when]])[0]) == pytest.approx(
        float(trained.own[model_type].loc[when]), abs=1e-12
    )
    assert predictor.estimator is predictor.estimator  # read once


def test_a_tampered_one_row_model_falls_back_to_the_artifact(
    brain: BrainLibrary, trained: Trained, caplog: pytest.LogCaptureFixture
) -> None:
    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["ridge"])
    with brain.transaction() as conn:
        conn.execute(
            "UPDATE model_registry SET one_row = one_row || '\\x00'::bytea WHERE model_id = %s",
            (ids["ridge"],),
        )
    with caplog.at_level("WARNING", logger="brain_assets"):
        predictor = load_predictor(brain, SYMBOL)
    assert "one_row_refused" in caplog.text and "integrity" in caplog.text
    # Served from the artifact (the model of record), which passed its own check.
    assert predictor.model_id == ids["ridge"] and predictor._estimator is not None
    when = trained.own["ridge"].index[-1]
    value = predictor.predict(bars_through(trained, when)).value
    assert value == pytest.approx(float(trained.own["ridge"].loc[when]), abs=1e-9)
    assert brain.get_active_model(SYMBOL) is not None  # nothing was taken out


def test_refuses_bars_it_cannot_read(brain: BrainLibrary, trained: Trained) -> None:
    register(brain, trained)
    predictor = load_predictor(brain, SYMBOL)
    bars = trained.bars.iloc[:600].reset_index(drop=True)

    with pytest.raises(ValueError, match=rf"10 given, {WARMUP_BARS + 1} needed"):
        predictor.predict(bars.iloc[-10:])
    predictor.predict(bars.iloc[-(WARMUP_BARS + 1) :])  # the minimum is enough

    swapped = bars.copy()
    swapped.iloc[[300, 301]] = swapped.iloc[[301, 300]].to_numpy()
    with pytest.raises(ValueError, match="not sorted by time"):
        predictor.predict(swapped)
    duplicated = pd.concat([bars, bars.iloc[[-1]]], ignore_index=True)
    with pytest.raises(ValueError, match="duplicated timestamp"):
        predictor.predict(duplicated)

    hole = bars.copy()
    hole.loc[550, "close"] = np.nan
    with pytest.raises(ValueError, match=r"missing or infinite value\(s\) in column 'close'"):
        predictor.predict(hole)
    zero = bars.copy()
    zero.loc[10, "low"] = 0.0
    with pytest.raises(ValueError, match="non-positive value"):
        predictor.predict(zero)

    two_hourly = (
        bars.set_index("timestamp")
        .resample("2h")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .reset_index()
    )
    with pytest.raises(ValueError, match=r"2h bars .* trained on 1h bars"):
        predictor.predict(two_hourly)

    with pytest.raises(ValueError, match=r"missing column\(s\) \['volume'\]"):
        predictor.predict(bars.drop(columns=["volume"]))

    # A gap of 5 bars among the last 49: the retrain never trains on such a row.
    gapped = bars.drop(index=range(580, 585)).reset_index(drop=True)
    with pytest.raises(ValueError, match=r"a gap of 6\.0 bars"):
        predictor.predict(gapped)
    # Once the gap is older than the look-back, the bars are fine again.
    predictor.predict(bars.drop(index=range(480, 485)).reset_index(drop=True))


def test_stand_aside_and_unknown_symbol(brain: BrainLibrary, trained: Trained) -> None:
    with pytest.raises(ValueError, match=r"unknown symbol 'BTC/USDT'"):
        load_predictor(brain, SYMBOL)
    with pytest.raises(ValueError, match=r"unknown symbol 'BTC/USDT'"):
        load_predictor(brain, SYMBOL, regime="high")
    # No version can pass a floor of 1.0 on the composite score: the symbol stands aside.
    register(brain, trained, DecisionPolicy(floor_min_composite=1.0, floor_confidence=None))
    assert brain.get_active_model(SYMBOL) is None
    reason = brain.trading_status(SYMBOL).reason
    with pytest.raises(StandAside) as caught:
        load_predictor(brain, SYMBOL)
    assert caught.value.reason == reason
    assert caught.value.symbol == SYMBOL
    assert isinstance(caught.value, BrainError)
    assert not isinstance(caught.value, ValueError)
    with pytest.raises(StandAside, match="stand aside"):
        load_predictor(brain, SYMBOL, regime="high")


def test_regime_uses_the_selectors_pick(brain: BrainLibrary, trained: Trained) -> None:
    from brain_assets.lifecycle.selection import ModelSelector

    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["ridge"])
    brain.store_model_metrics(
        ids["random_forest"], SYMBOL, {"composite_score": 0.5, "n_bars": 80.0}, regime="high"
    )
    brain.store_model_metrics(
        ids["ridge"], SYMBOL, {"composite_score": 0.1, "n_bars": 80.0}, regime="high"
    )
    pick = ModelSelector(brain).select_model_for_symbol(SYMBOL, "high")
    assert pick is not None
    high = load_predictor(brain, SYMBOL, regime="high")
    assert high.model_id == pick["model_id"] == ids["random_forest"]
    assert high.regime == "high"
    assert high.reason == pick["reason"]
    # Too little evidence in "low": the selector falls back to the active version.
    low = load_predictor(brain, SYMBOL, regime="low")
    assert low.model_id == ids["ridge"]
    with pytest.raises(ValueError, match="not a regime"):
        load_predictor(brain, SYMBOL, regime="calm")
    expected = trained.own["random_forest"]
    when = expected.index[-1]
    value = high.predict(bars_through(trained, when)).value
    assert value == pytest.approx(float(expected.loc[when]), abs=1e-9)


def test_tampered_artifact_is_refused(brain: BrainLibrary, trained: Trained) -> None:
    """Never served: the version is taken out with an alert; with no earlier version to fall
    back to (test_failure_isolation covers the fallback), the symbol stands aside."""
    ids = register(brain, trained)
    active = brain.get_active_model(SYMBOL)
    assert active is not None
    with brain.transaction() as conn:
        conn.execute(
            "UPDATE model_registry SET artifact = artifact || '\\x00'::bytea WHERE model_id = %s",
            (active.model_id,),
        )
    assert active.model_id in ids.values()
    with pytest.raises(StandAside, match="artifact_unloadable"):
        load_predictor(brain, SYMBOL)
    assert brain.get_active_model(SYMBOL) is None
    [alert] = brain.get_alerts()
    assert alert["kind"] == "model_stand_aside"
    assert alert["payload"]["unloadable_model_id"] == active.model_id
    assert alert["payload"]["error"].startswith("ArtifactIntegrityError")


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="brain")
    commands = parser.add_subparsers(dest="command", required=True)
    predict_command.register(commands)
    args = parser.parse_args(list(argv))
    return int(args.handler(args))


def test_predict_command(
    brain: BrainLibrary,
    brain_dsn: str,
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["ridge"])
    expected = trained.own["ridge"]
    when = expected.index[-1]
    recent = bars_through(trained, when).iloc[-500:].copy()
    csv = tmp_path / "bars.csv"
    # Epoch milliseconds, as exchanges give them; the files source reads them.
    recent.assign(timestamp=recent["timestamp"].astype("int64") // 10**6).to_csv(csv, index=False)

    assert run_cli("predict", SYMBOL, "--file", str(csv), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model_id"] == ids["ridge"]
    assert result["stand_aside"] is False
    assert pd.Timestamp(result["bar_time"]) == when
    assert result["value"] == pytest.approx(float(expected.loc[when]), abs=1e-9)
    assert result["position"] == PositionRule(fee_bps=SETTINGS.fee_bps).next_position(
        result["value"], 0
    )

    assert run_cli("predict", SYMBOL, "--file", str(csv)) == 0
    out = capsys.readouterr().out
    assert "ridge v" in out and "bar_time" in out and "position" in out

    # Bad input: exit 2 with the reason on stderr.
    short = tmp_path / "short.csv"
    recent.iloc[-5:].to_csv(short, index=False)
    assert run_cli("predict", SYMBOL, "--file", str(short)) == 2
    assert "5 given, 49 needed" in capsys.readouterr().err
    assert run_cli("predict", SYMBOL, "--file", str(tmp_path / "missing.csv")) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert run_cli("predict", "NOPE/USDT", "--file", str(csv)) == 2
    assert "unknown symbol 'NOPE/USDT'" in capsys.readouterr().err

    # Stand aside: exit 3 and the reason.
    with brain.transaction() as conn:
        conn.execute("UPDATE model_registry SET is_active = false WHERE symbol = %s", (SYMBOL,))
    assert run_cli("predict", SYMBOL, "--file", str(csv), "--json") == 3
    aside = json.loads(capsys.readouterr().out)
    assert aside["stand_aside"] is True
    assert aside["reason"] == brain.trading_status(SYMBOL).reason
    assert run_cli("predict", SYMBOL, "--file", str(csv)) == 3
    assert "stand aside" in capsys.readouterr().out


def test_prediction_keeps_the_engines_position_inside_the_band(
    brain: BrainLibrary, trained: Trained
) -> None:
    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["ridge"])
    predictor = load_predictor(brain, SYMBOL)
    # The version records the fee and margin it was evaluated with; the predictor applies them.
    assert predictor.rule == SETTINGS.position_rule
    threshold = predictor.rule.entry_threshold
    values = trained.own["ridge"]
    small = values[(values.abs() < threshold) & (values.abs() > 0)]
    assert len(small) > 0
    when = small.index[-1]
    bars = bars_through(trained, when)
    # A forecast too small to pay the round trip opens nothing, and keeps what is held unless
    # it points against it.
    assert predictor.predict(bars, position=0).position == 0
    held = 1 if values.loc[when] > 0 else -1
    assert predictor.predict(bars, position=held).position == held
    assert predictor.predict(bars, position=-held).position == 0
    with pytest.raises(ValueError, match="position"):
        predictor.predict(bars, position=2)


def test_predictor_is_a_plain_value(brain: BrainLibrary, trained: Trained) -> None:
    register(brain, trained)
    predictor = load_predictor(brain, SYMBOL)
    assert isinstance(predictor, Predictor)
    assert "estimator" not in repr(predictor)
    bars = trained.bars.iloc[-300:]
    first, second = predictor.predict(bars), predictor.predict(bars)
    assert first == second
    assert json.loads(json.dumps(first.to_dict()))["bar_time"] == first.bar_time.isoformat()


@pytest.mark.slow
def test_lstm_prediction_equals_the_evaluations(
    brain: BrainLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sequence model reads the rows before the latest bar as its context, as in evaluation;
    its network is read in the background, and the first prediction waits for it."""
    import threading

    from brain_assets.lifecycle import predictor as predictor_module
    from brain_assets.pipeline.settings import LSTMSettings

    settings = RetrainSettings(
        model_types=("ridge",),
        include_lstm=True,
        lstm_config=LSTMSettings(units=4, sequence_length=6, epochs=2, patience=1),
    )
    bars = signal_market(1500, momentum=0.3, seed=1)
    table = build_dataset_table(bars, settings.horizon).table
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(SYMBOL, table, settings)
    evaluations = {
        e.model_type: e for e in evaluate_symbol(SYMBOL, table, artifacts, settings, ppy)
    }
    ids = register_symbol(
        brain,
        SYMBOL,
        artifacts,
        {t: e.metrics for t, e in evaluations.items()},
        ppy,
        policy=NO_FLOOR,
    ).model_ids
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["lstm"])
    release = threading.Event()
    read = predictor_module._read_estimator

    def held_read(model: Any, data: bytes) -> Any:
        assert release.wait(60)
        return read(model, data)

    monkeypatch.setattr(predictor_module, "_read_estimator", held_read)
    predictor = load_predictor(brain, SYMBOL)  # returns while the network is still unread
    assert predictor.model_type == "lstm" and not predictor.ready
    assert predictor.context_rows == 5
    release.set()
    assert predictor.min_bars == WARMUP_BARS + 6
    expected = evaluations["lstm"].predictions
    assert expected is not None
    trained = Trained(bars, table, artifacts, evaluations, ppy, own={})
    for when in (expected.index[-1], expected.index[0]):
        value = predictor.predict(bars_through(trained, when)).value
        assert value == pytest.approx(float(expected.loc[when]), abs=1e-9, rel=1e-6)
    assert predictor.ready
    with pytest.raises(ValueError, match=rf"{WARMUP_BARS + 5} given, {WARMUP_BARS + 6} needed"):
        predictor.predict(bars.iloc[: WARMUP_BARS + 5])

    # A read that fails in the background is raised by the prediction, naming the version.
    def failing_read(model: Any, data: bytes) -> Any:
        raise UnloadableArtifactError(model, ValueError("not a network after all"))

    monkeypatch.setattr(predictor_module, "_read_estimator", failing_read)
    broken = load_predictor(brain, SYMBOL)
    with pytest.raises(UnloadableArtifactError, match=rf"lstm v\d+ \({ids['lstm']}\).*after all"):
        broken.predict(bars)
