"""The ``lstm`` model type in the daily retrain: training, test-segment context, attention,
importance, the keras artifact and the graph end to end.

The networks are tiny (4 units, windows of 6 rows, 2 epochs) on 1200 synthetic hourly bars, so the
file runs in well under a minute on two CPU cores; one module fixture trains them for every test.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, replace
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from brain_assets.defs.resources import LSTMConfig, RetrainResource
from brain_assets.importance.analyzer import FeatureImportanceAnalyzer
from brain_assets.library import BrainLibrary
from brain_assets.lstm.context import ContextualModel, context_start, with_context
from brain_assets.lstm.model import StandardizedLSTM
from brain_assets.market_data.sources import make_source
from brain_assets.pipeline import importance as pipeline_importance
from brain_assets.pipeline.dataset import make_dataset, split_columns
from brain_assets.pipeline.evaluation import ModelEvaluation, evaluate_symbol
from brain_assets.pipeline.importance import analyze_model
from brain_assets.pipeline.lstm_model import attention_metrics
from brain_assets.pipeline.settings import LSTM_MODEL_TYPE, LSTMSettings, RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, fitted_model, split_for, train_symbol
from brain_assets.training.serialization import deserialize_model, sha256_hex
from brain_assets.training.split import WalkForwardSplit
from brain_assets_tests.dagster_helpers import SMALL_MARKET, check_results, run_assets
from brain_assets_tests.settings import TINY_LSTM as TINY

SYMBOL = "BTC/USDT"
SETTINGS = RetrainSettings(
    model_types=("ridge",),
    include_lstm=True,
    importance_sample=250,
    lstm_config=LSTMSettings(**TINY),
)


@dataclass(frozen=True)
class Trained:
    table: pd.DataFrame
    split: WalkForwardSplit
    artifacts: dict[str, TrainedArtifact]
    evaluations: dict[str, ModelEvaluation]


@pytest.fixture(scope="module")
def trained() -> Trained:
    bars = make_source("synthetic", seed=7, n_bars=1200, bar="1h").load(SYMBOL).frame
    table = make_dataset(bars, SETTINGS.horizon)
    artifacts = train_symbol(SYMBOL, table, SETTINGS)
    evaluations = evaluate_symbol(SYMBOL, table, artifacts, SETTINGS, periods_per_year=8760.0)
    return Trained(
        table=table,
        split=split_for(table, SETTINGS),
        artifacts={a.model_type: a for a in artifacts},
        evaluations={e.model_type: e for e in evaluations},
    )


def _lstm(trained: Trained) -> StandardizedLSTM:
    artifact = trained.artifacts[LSTM_MODEL_TYPE]
    model = deserialize_model(artifact.artifact, artifact.artifact_format)
    assert isinstance(model, StandardizedLSTM)
    return model


# -- settings -------------------------------------------------------------------------------


def test_include_lstm_adds_the_model_type_once() -> None:
    assert RetrainSettings().trained_model_types == (
        "ridge",
        "random_forest",
        "hist_gradient_boosting",
    )
    assert RetrainSettings(include_lstm=True).trained_model_types[-1] == "lstm"
    both = RetrainSettings(model_types=("lstm", "ridge"), include_lstm=True)
    assert both.trained_model_types == ("lstm", "ridge")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"units": 0}, "lstm_config.units"),
        ({"sequence_length": 1}, "lstm_config.sequence_length"),
        ({"epochs": True}, "lstm_config.epochs"),
        ({"learning_rate": 0.0}, "lstm_config.learning_rate"),
        ({"dropout": 1.0}, "lstm_config.dropout"),
        ({"shap_rows": -1}, "lstm_config.shap_rows"),
    ],
)
def test_bad_lstm_settings_are_refused_by_name(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        LSTMSettings(**kwargs)


def test_unknown_model_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown model type.*'gru'"):
        RetrainSettings(model_types=("ridge", "gru"))


def test_resource_carries_the_lstm_config() -> None:
    resource = RetrainResource(include_lstm=True, lstm_config=LSTMConfig(**TINY))
    settings = resource.settings()
    assert settings.include_lstm
    assert settings.lstm_config == LSTMSettings(**TINY)
    assert RetrainResource().settings().lstm_config == LSTMSettings()
    assert not RetrainResource().settings().include_lstm


# -- training -------------------------------------------------------------------------------


def test_lstm_artifact_is_keras_with_its_hyperparameters(trained: Trained) -> None:
    artifact = trained.artifacts[LSTM_MODEL_TYPE]
    assert artifact.artifact_format == "keras"
    assert artifact.artifact[:2] == b"PK"  # the .keras zip, not a pickle
    assert artifact.sha256 == sha256_hex(artifact.artifact)
    params = artifact.hyperparameters
    assert params["lstm_units"] == 4 and params["sequence_length"] == 6
    assert params["epochs"] == 2 and params["patience"] == 1 and params["batch_size"] == 64
    assert 1 <= params["best_epoch"] <= params["epochs_run"] <= 2
    json.dumps(params, allow_nan=False)  # the registry stores it as JSON
    assert artifact.feature_names == list(split_columns(trained.table)[0].columns)


def test_lstm_early_stops_on_the_validation_segment(trained: Trained) -> None:
    index = trained.table.index
    lstm = trained.artifacts[LSTM_MODEL_TYPE]
    ridge = trained.artifacts["ridge"]
    # Early stopping read the validation targets, so the model's data ends with that segment;
    # the scikit-learn versions are refitted on every row (their folds judge them).
    assert lstm.training_end == index[trained.split.validation.stop - 1].isoformat()
    assert ridge.training_end == index[-1].isoformat()
    assert lstm.training_start == ridge.training_start == index[0].isoformat()
    assert pd.Timestamp(lstm.training_end) < index[trained.split.test.start]


# -- evaluation -----------------------------------------------------------------------------


def test_every_test_bar_gets_a_prediction_from_past_context_only(trained: Trained) -> None:
    model = _lstm(trained)
    X = split_columns(trained.table)[0]
    test = trained.split.test
    predictions = trained.evaluations[LSTM_MODEL_TYPE].predictions
    assert predictions is not None
    assert predictions.index.equals(X.index[test])
    assert np.isfinite(predictions.to_numpy()).all()
    # The window of test bar t is rows t-5..t: the same numbers as predicting the whole table,
    # to float32's precision (the network runs in float32, and a batch of another size may
    # round its sums differently: keras 3.15 differs in the 7th significant digit).
    full = model.predict(X.to_numpy())
    np.testing.assert_allclose(predictions.to_numpy(), full[test], rtol=1e-5, atol=1e-9)
    # Only the 5 rows before the segment are read: the rest of the past may be anything...
    first = context_start(test.start, model)
    assert first == test.start - 5 and first >= trained.split.validation.start
    scrambled = X.copy()
    scrambled.iloc[:first] = 1e6
    # ...and a future row never changes an earlier prediction.
    scrambled.iloc[test.start + 50 :] = -1e6
    again = ContextualModel(model, scrambled.iloc[first : test.start]).predict(scrambled.iloc[test])
    np.testing.assert_allclose(again[:50], predictions.to_numpy()[:50], rtol=1e-5, atol=1e-9)
    assert not np.allclose(again[50:], predictions.to_numpy()[50:], rtol=1e-3)


def test_row_wise_models_are_not_wrapped(trained: Trained) -> None:
    artifact = trained.artifacts["ridge"]
    ridge = deserialize_model(artifact.artifact, artifact.artifact_format)
    X = split_columns(trained.table)[0]
    assert with_context(ridge, X.iloc[0:0]) is ridge
    assert trained.evaluations["ridge"].extras == {}
    with pytest.raises(ValueError, match="exactly 5 context rows"):
        with_context(_lstm(trained), X.iloc[:3])


def test_attention_mean_per_lag(trained: Trained) -> None:
    attention = trained.evaluations[LSTM_MODEL_TYPE].extras["attention_mean"]
    assert len(attention) == TINY["sequence_length"]
    assert sum(attention) == pytest.approx(1.0, abs=1e-5)
    assert all(weight > 0 for weight in attention)
    model = _lstm(trained)
    X = split_columns(trained.table)[0]
    test = trained.split.test
    weights = model.get_attention_weights(X.iloc[test.start - 5 : test.stop].to_numpy())
    # Lag 0 is the predicted bar itself: the last column of every window.
    assert attention[0] == pytest.approx(float(weights[:, -1].mean()))
    assert list(attention_metrics(attention)) == [f"attention_lag_{k}" for k in range(6)]


def test_stages_after_training_share_one_loaded_model_per_artifact(trained: Trained) -> None:
    artifact = trained.artifacts[LSTM_MODEL_TYPE]
    first = fitted_model(artifact)
    assert fitted_model(artifact) is first
    # Keyed by the bytes: an equal copy hits, different bytes load their own model.
    copy = replace(artifact, artifact=bytes(bytearray(artifact.artifact)))
    assert fitted_model(copy) is first
    other = fitted_model(trained.artifacts["ridge"])
    assert other is not first
    X, _, _ = split_columns(trained.table)
    rows = X.iloc[trained.split.test.start - SETTINGS.lstm_config.context_rows :]
    np.testing.assert_array_equal(first.predict(rows), _lstm(trained).predict(rows))


def test_keras_artifact_trust_and_garbage(trained: Trained) -> None:
    data = trained.artifacts[LSTM_MODEL_TYPE].artifact
    with pytest.raises(ValueError, match=r"\.keras archive"):
        deserialize_model(b"not a zip", "keras")
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "config.json":
                config = json.loads(content)
                config["module"] = "os"
                content = json.dumps(config).encode()
            target.writestr(name, content)
    with pytest.raises(ValueError, match=r"untrusted module.*os"):
        deserialize_model(buffer.getvalue(), "keras")


# -- importance -----------------------------------------------------------------------------


def _analysis(trained: Trained, settings: RetrainSettings, model: Any) -> Any:
    X, y, _ = split_columns(trained.table)
    analyzer = FeatureImportanceAnalyzer(sample_size=settings.importance_sample, seed=0)
    return analyze_model(analyzer, SYMBOL, model, X, y, settings, rows=trained.split.test)


def test_lstm_importance_by_every_method(trained: Trained) -> None:
    analysis = _analysis(trained, SETTINGS, _lstm(trained))
    assert analysis.failures == {}
    assert set(analysis.tables) == {"shap", "permutation", "correlation"}
    n_features = trained.table.shape[1] - 2
    for table in analysis.tables.values():
        assert len(table) == n_features
        assert np.isfinite(table["importance"]).all()
    assert analysis.rows_used == 230 == len(trained.table.iloc[trained.split.test])


def test_lstm_shap_switched_off_or_failing_keeps_the_other_methods(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = replace(SETTINGS, lstm_config=replace(SETTINGS.lstm_config, shap_rows=0))
    analysis = _analysis(trained, off, _lstm(trained))
    assert analysis.failures["shap"].startswith("skipped: ")
    assert set(analysis.tables) == {"permutation", "correlation"}

    def broken(*args: Any, **kwargs: Any) -> np.ndarray:
        raise RuntimeError("explainer exploded")

    monkeypatch.setattr(pipeline_importance, "lstm_shap_importances", broken)
    analysis = _analysis(trained, SETTINGS, _lstm(trained))
    assert analysis.failures == {"shap": "RuntimeError: explainer exploded"}
    assert set(analysis.tables) == {"permutation", "correlation"}


@pytest.mark.parametrize("methods", [("permutation", "correlation"), ("shap",)])
def test_lstm_importance_over_a_whole_history(trained: Trained, methods: tuple[str, ...]) -> None:
    # How the nightly analysis calls it: every bar, the latest sample_size of them analysed.
    X, y, _ = split_columns(trained.table)
    analyzer = FeatureImportanceAnalyzer(sample_size=100, seed=0)
    settings = replace(SETTINGS, importance_methods=methods)
    analysis = analyze_model(analyzer, SYMBOL, _lstm(trained), X, y, settings)
    assert analysis.failures == {}
    assert set(analysis.tables) == set(methods)
    assert analysis.rows_used == 100


def test_row_wise_importance_is_unchanged(trained: Trained) -> None:
    artifact = trained.artifacts["ridge"]
    ridge = deserialize_model(artifact.artifact, artifact.artifact_format)
    X, y, _ = split_columns(trained.table)
    test = trained.split.test
    direct = FeatureImportanceAnalyzer(sample_size=250, seed=0).analyze(
        SYMBOL, ridge, X.iloc[test], y.iloc[test], list(X.columns)
    )
    through_pipeline = _analysis(trained, SETTINGS, ridge)
    for method, table in direct.tables.items():
        pd.testing.assert_frame_equal(through_pipeline.tables[method], table)


# -- the graph ------------------------------------------------------------------------------


@pytest.mark.slow
def test_daily_retrain_registers_an_lstm_version(brain_dsn: str) -> None:
    retrain = RetrainResource(
        model_types=["ridge"],
        include_lstm=True,
        importance_sample=250,
        lstm_config=LSTMConfig(**TINY),
    )
    result = run_assets(
        dg.DagsterInstance.ephemeral(), brain_dsn, [SYMBOL], market=SMALL_MARKET, retrain=retrain
    )
    assert result.success
    assert all(check_results(result).values())
    with BrainLibrary(brain_dsn) as brain:
        versions = brain.list_models(SYMBOL)
        assert set(versions["model_type"]) == {"ridge", "lstm"}
        lstm_id = str(versions.loc[versions["model_type"] == "lstm", "model_id"].iloc[0])
        record = brain.get_model(lstm_id)
        assert record is not None
        assert record.artifact_format == "keras"
        assert record.hyperparameters["best_epoch"] >= 1
        assert record.hyperparameters["lstm_units"] == 4
        metrics = brain.get_model_metrics(lstm_id, SYMBOL)
        assert {"composite_score", "rmse", "exposure", "annual_cost"} <= set(metrics)
        # A Sharpe ratio exists once the band let the model into the market at all.
        assert ("sharpe_ratio" in metrics) == (metrics["exposure"] > 0)
        for method in ("permutation", "correlation", "shap"):
            top = brain.get_top_features(SYMBOL, top_n=5, method=method, model_id=lstm_id)
            assert len(top) == 5, method
        loaded = deserialize_model(brain.load_model_artifact(lstm_id), "keras")
        stored = brain.get_asset_values("trained_models", [SYMBOL])[SYMBOL]
        features = brain.get_asset_values("features", [SYMBOL])[SYMBOL]
    trained = next(
        TrainedArtifact.from_json(doc) for doc in stored["models"] if doc["model_type"] == "lstm"
    )
    assert record.artifact_sha256 == trained.sha256
    original = deserialize_model(trained.artifact, trained.artifact_format)
    X = split_columns(features)[0].to_numpy()
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))
