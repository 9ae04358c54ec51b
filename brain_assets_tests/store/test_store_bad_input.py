"""Bad input fails with a ValueError that names the field, and writes nothing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from brain_assets.library import BrainLibrary
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"
TABLES = (
    "model_registry",
    "model_metrics",
    "feature_importance",
    "data_quality_logs",
    "model_activations",
)


def snapshot(dsn: str) -> dict[str, int]:
    return {table: count_rows(dsn, table) for table in TABLES}


@pytest.fixture
def model_id(brain: BrainLibrary) -> str:
    return brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1})


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("", "symbol must not be empty"),
        ("   ", "symbol must not be empty"),
        (None, "symbol must be a string"),
        (42, "symbol must be a string"),
        ("BTC\nUSDT", "control characters"),
        (" BTC/USDT", "whitespace"),
        ("X" * 65, "longer than 64"),
    ],
)
def test_bad_symbols(brain: BrainLibrary, brain_dsn: str, symbol: Any, message: str) -> None:
    before = snapshot(brain_dsn)
    with pytest.raises(ValueError, match=message):
        brain.register_model(symbol, "ridge", b"x", metrics={"rmse": 0.1})
    with pytest.raises(ValueError, match=message):
        brain.get_top_features(symbol)
    with pytest.raises(ValueError, match=message):
        brain.log_data_quality(symbol, "c", "ERROR", True)
    assert snapshot(brain_dsn) == before


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"rmse": math.nan}, r"metrics\['rmse'\] must be finite"),
        ({"rmse": math.inf}, r"metrics\['rmse'\] must be finite"),
        ({"rmse": np.float64("-inf")}, "must be finite"),
        ({"rmse": "0.1"}, r"metrics\['rmse'\] must be a real number"),
        ({"rmse": True}, "must be a real number"),
        ({"": 1.0}, "metrics name must not be empty"),
        ({}, "metrics must not be empty"),
        ([("rmse", 1.0)], "metrics must be a mapping"),
    ],
)
def test_bad_metrics(
    brain: BrainLibrary, brain_dsn: str, model_id: str, metrics: Any, message: str
) -> None:
    before = snapshot(brain_dsn)
    with pytest.raises(ValueError, match=message):
        brain.store_model_metrics(model_id, SYMBOL, metrics)
    with pytest.raises(ValueError, match=message):
        brain.register_model(SYMBOL, "ridge", b"x", metrics=metrics)
    assert snapshot(brain_dsn) == before


@pytest.mark.parametrize(
    ("importances", "message"),
    [
        ({"a": math.nan}, r"importances\['shap'\]\['a'\] must be finite"),
        ({"a": math.inf, "b": 1.0}, "must be finite"),
        ({"a": None}, "must be a real number"),
        ({}, "must not be empty"),
        ([1.0, 2.0], "must be a mapping"),
        ({" ": 1.0}, r"importances\['shap'\] feature must not be empty"),
    ],
)
def test_bad_importances(
    brain: BrainLibrary, brain_dsn: str, model_id: str, importances: Any, message: str
) -> None:
    before = snapshot(brain_dsn)
    with pytest.raises(ValueError, match=message):
        brain.store_feature_importance(SYMBOL, model_id, "shap", importances)
    assert snapshot(brain_dsn) == before


def test_other_bad_arguments_name_their_field(brain: BrainLibrary, model_id: str) -> None:
    cases = [
        (lambda: brain.store_model_metrics(model_id, SYMBOL, {"a": 1.0}, regime="calm"), "regime"),
        (
            lambda: brain.store_model_metrics(model_id, SYMBOL, {"a": 1.0}, periods_per_year=0),
            "periods_per_year",
        ),
        (lambda: brain.get_top_features(SYMBOL, top_n=0), "top_n"),
        (lambda: brain.get_top_features(SYMBOL, top_n=2.5), "top_n"),  # type: ignore[arg-type]
        (lambda: brain.log_data_quality(SYMBOL, "c", "FATAL", True), "severity"),
        (lambda: brain.log_data_quality(SYMBOL, "c", "ERROR", "yes"), "passed"),  # type: ignore[arg-type]
        (lambda: brain.log_data_quality(SYMBOL, "c", "ERROR", False, -1), "failure_count"),
        (
            lambda: brain.log_data_quality(SYMBOL, "c", "ERROR", False, details={"x": math.nan}),
            "details",
        ),
        (lambda: brain.register_model(SYMBOL, "ridge", b"", metrics={"a": 1.0}), "artifact"),
        (lambda: brain.register_model(SYMBOL, "ridge", "text", metrics={"a": 1.0}), "artifact"),  # type: ignore[arg-type]
        (lambda: brain.register_model(SYMBOL, "", b"x", metrics={"a": 1.0}), "model_type"),
        (
            lambda: brain.register_model(
                SYMBOL, "r", b"x", metrics={"a": 1.0}, hyperparameters={"alpha": math.nan}
            ),
            "hyperparameters",
        ),
        (
            lambda: brain.register_model(
                SYMBOL, "r", b"x", metrics={"a": 1.0}, feature_names=["a", "a"]
            ),
            "feature_names",
        ),
        (
            lambda: brain.register_model(
                SYMBOL,
                "r",
                b"x",
                metrics={"a": 1.0},
                training_start="2025-02-01",
                training_end="2025-01-01",
            ),
            "training_start",
        ),
        (lambda: brain.get_data_quality_summary("yesterday"), "start_time"),
    ]
    for call, field in cases:
        with pytest.raises(ValueError, match=field):
            call()


def test_metrics_for_unknown_or_foreign_model_are_refused(
    brain: BrainLibrary, brain_dsn: str, model_id: str
) -> None:
    before = snapshot(brain_dsn)
    with pytest.raises(ValueError, match="unknown model_id"):
        brain.store_model_metrics("no-such-model", SYMBOL, {"rmse": 0.1})
    with pytest.raises(ValueError, match="belongs to symbol 'BTC/USDT', not 'ETH/USDT'"):
        brain.store_model_metrics(model_id, "ETH/USDT", {"rmse": 0.1})
    with pytest.raises(ValueError, match="belongs to symbol"):
        brain.store_feature_importance("ETH/USDT", model_id, "shap", {"a": 1.0})
    with pytest.raises(ValueError, match="unknown model_id"):
        brain.activate_model("no-such-model")
    assert snapshot(brain_dsn) == before


@pytest.mark.parametrize(
    "symbol",
    ["BTC/USDT", "x'); DROP TABLE model_registry;--", 'we"ird\\sym%s', "ÉTH/€", "a;b--c"],
)
def test_hostile_symbols_are_stored_verbatim(brain: BrainLibrary, symbol: str) -> None:
    model_id = brain.register_model(symbol, "ridge", b"x", metrics={"rmse": 0.1}, activate=True)
    brain.store_feature_importance(symbol, model_id, "shap", {"f'; DELETE FROM x;--": 1.0})
    brain.log_data_quality(symbol, "c", "WARN", False, 1)
    assert brain.get_best_model(symbol).symbol == symbol
    assert brain.get_active_model(symbol).model_id == model_id
    assert brain.get_top_features(symbol)["feature"].tolist() == ["f'; DELETE FROM x;--"]
    assert brain.get_data_quality_summary(symbol=symbol)["symbol"].tolist() == [symbol]
    assert brain.list_symbols() == [symbol]
