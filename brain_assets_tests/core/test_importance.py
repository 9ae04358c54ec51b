"""FeatureImportanceAnalyzer: rankings per method and model type, failures, sampling, storing."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.svm import LinearSVR

from brain_assets.importance.analyzer import (
    IMPORTANCE_METHODS,
    FeatureImportanceAnalyzer,
    ImportanceAnalysis,
)
from brain_assets.training.models import MODEL_TYPES, train_model

FEATURES = [f"x{i}" for i in range(6)]
FAST = {
    "ridge": {},
    "random_forest": {"n_estimators": 30},
    "hist_gradient_boosting": {"max_iter": 60},
}


def make_data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    X = pd.DataFrame(rng.normal(size=(n, 6)), index=index, columns=FEATURES)
    y = pd.Series(2 * X["x0"] - X["x1"] + rng.normal(scale=0.1, size=n), index=index)
    return X, y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return make_data()


@pytest.fixture(scope="module")
def models(data: tuple[pd.DataFrame, pd.Series]) -> dict[str, Any]:
    X, y = data
    return {
        model_type: train_model(model_type, X, y, hyperparameters=FAST[model_type]).estimator
        for model_type in MODEL_TYPES
    }


@dataclass
class StoreCall:
    symbol: str
    model_id: str
    method: str
    importances: dict[str, float]
    analysis_date: datetime | None


class RecordingBrain:
    """Collaborator stub: records store_feature_importance calls (the real store is tested
    against PostgreSQL in test_store_api.py)."""

    def __init__(self) -> None:
        self.calls: list[StoreCall] = []
        self.transactions = 0

    def store_feature_importances(
        self,
        symbol: str,
        model_id: str,
        tables: dict[str, Any],
        analysis_date: datetime | None = None,
    ) -> int:
        # The real store writes all methods of one analysis in one transaction.
        self.transactions += 1
        return sum(
            self.store_feature_importance(symbol, model_id, method, values, analysis_date)
            for method, values in tables.items()
        )

    def store_feature_importance(
        self,
        symbol: str,
        model_id: str,
        method: str,
        importances: Any,
        analysis_date: datetime | None = None,
    ) -> int:
        self.calls.append(StoreCall(symbol, model_id, method, dict(importances), analysis_date))
        return len(importances)


class ExplodingModel:
    """Any use of it means the analyzer did work it should have refused to start."""

    def predict(self, X: Any) -> np.ndarray:
        raise AssertionError("the model must not be used")


@pytest.fixture
def shap_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import shap` raise ImportError.
    monkeypatch.setitem(sys.modules, "shap", None)


def spy_on_explainers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import shap

    used: list[str] = []
    for name in ("TreeExplainer", "LinearExplainer"):
        original = getattr(shap, name)

        def wrapper(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            used.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(shap, name, wrapper)
    original_permutation = shap.explainers.Permutation

    def permutation(*args: Any, **kw: Any) -> Any:
        used.append("Permutation")
        return original_permutation(*args, **kw)

    monkeypatch.setattr(shap.explainers, "Permutation", permutation)
    return used


# -- rankings --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_method_ranks_x0_then_x1(
    model_type: str,
    data: tuple[pd.DataFrame, pd.Series],
    models: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = data
    used = spy_on_explainers(monkeypatch)
    analyzer = FeatureImportanceAnalyzer(permutation_repeats=3)

    tables = analyzer.analyze_feature_importance("BTC/USDT", models[model_type], X, y, FEATURES)

    assert list(tables) == list(IMPORTANCE_METHODS)
    assert analyzer.last_failures == {}
    for method, table in tables.items():
        assert list(table.columns) == ["feature", "importance", "rank"], method
        assert table["rank"].tolist() == list(range(1, 7)), method
        assert table["feature"].tolist()[:2] == ["x0", "x1"], method
        assert sorted(table["feature"]) == FEATURES
        assert np.isfinite(table["importance"]).all()
    assert used == (["LinearExplainer"] if model_type == "ridge" else ["TreeExplainer"])
    # Correlation is signed: x1 enters the target negatively.
    correlation = tables["correlation"].set_index("feature")["importance"]
    assert correlation["x0"] > 0 > correlation["x1"]


def test_model_agnostic_shap_fallback(
    data: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = data
    # LinearSVR is linear but outside sklearn.linear_model: it takes the model-agnostic path.
    model = LinearSVR(random_state=0, max_iter=5000).fit(X, y)
    used = spy_on_explainers(monkeypatch)
    # The permutation explainer works row by row: a small sample keeps the test quick.
    analyzer = FeatureImportanceAnalyzer(sample_size=40)

    tables = analyzer.analyze_feature_importance("BTC/USDT", model, X, y, FEATURES, ["shap"])

    assert used == ["Permutation"]
    assert tables["shap"]["feature"].tolist()[:2] == ["x0", "x1"]


def test_array_inputs_are_accepted(
    data: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = data
    model = train_model("ridge", X.to_numpy(), y.to_numpy()).estimator
    tables = FeatureImportanceAnalyzer().analyze_feature_importance(
        "BTC/USDT", model, X.to_numpy(), y.to_numpy(), FEATURES
    )
    assert all(table["feature"].iloc[0] == "x0" for table in tables.values())


def test_correlation_is_spearman_and_constant_feature_gets_zero() -> None:
    X, y = make_data(150)
    X["x5"] = 3.0
    model = train_model("ridge", X, y).estimator
    table = (
        FeatureImportanceAnalyzer()
        .analyze_feature_importance("ETH/USDT", model, X, y, FEATURES, ["correlation"])[
            "correlation"
        ]
        .set_index("feature")
    )

    assert table.loc["x5", "importance"] == 0.0
    assert table.loc["x5", "rank"] == 6
    for feature in FEATURES[:5]:
        expected = spearmanr(X[feature], y).statistic
        assert table.loc[feature, "importance"] == pytest.approx(expected, abs=1e-12)


# -- failures --------------------------------------------------------------------------------


@pytest.mark.usefixtures("shap_missing")
def test_failing_method_is_reported_and_others_still_run(
    data: tuple[pd.DataFrame, pd.Series],
    models: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    X, y = data
    analyzer = FeatureImportanceAnalyzer(permutation_repeats=2)

    with caplog.at_level(logging.INFO, logger="brain_assets"):
        tables = analyzer.analyze_feature_importance(
            "BTC/USDT", models["random_forest"], X, y, FEATURES
        )

    assert list(tables) == ["permutation", "correlation"]
    assert list(analyzer.last_failures) == ["shap"]
    # sys.modules["shap"] = None raises ModuleNotFoundError, a subclass of ImportError.
    assert analyzer.last_failures["shap"].startswith("ModuleNotFoundError")
    assert "shap" in analyzer.last_failures["shap"]
    assert analyzer.last_analysis is not None
    assert analyzer.last_analysis.failures == analyzer.last_failures
    failed = [
        r
        for r in caplog.records
        if getattr(r, "event", None) == ("feature_importance_analysis_failed")
    ]
    assert len(failed) == 1
    assert failed[0].fields["method"] == "shap"  # type: ignore[attr-defined]
    assert failed[0].fields["symbol"] == "BTC/USDT"  # type: ignore[attr-defined]
    assert "ModuleNotFoundError" in failed[0].fields["error"]  # type: ignore[attr-defined]
    done = [r for r in caplog.records if getattr(r, "event", None) == "feature_importance_analyzed"]
    assert len(done) == 1
    assert done[0].fields["methods"] == ["permutation", "correlation"]  # type: ignore[attr-defined]


def test_failures_reset_between_calls(
    data: tuple[pd.DataFrame, pd.Series], models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = data
    analyzer = FeatureImportanceAnalyzer(permutation_repeats=1)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "shap", None)
        analyzer.analyze_feature_importance("BTC/USDT", models["ridge"], X, y, FEATURES, ["shap"])
    assert "shap" in analyzer.last_failures
    analyzer.analyze_feature_importance("BTC/USDT", models["ridge"], X, y, FEATURES, ["shap"])
    assert analyzer.last_failures == {}


def test_unknown_method_is_refused_before_any_work(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    brain = RecordingBrain()
    analyzer = FeatureImportanceAnalyzer(brain)
    with pytest.raises(ValueError, match=r"'lime'.*shap, permutation, correlation"):
        analyzer.analyze_feature_importance(
            "BTC/USDT", ExplodingModel(), X, y, FEATURES, ["permutation", "lime"], model_id="m1"
        )
    assert brain.calls == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda X, y, names: (X, y.iloc[:-1], names), "y has"),
        (lambda X, y, names: (X, y, names[:-1]), "feature_names has 5"),
        (lambda X, y, names: (X, y, [*names[:-1], "other"]), "feature_names must equal"),
        (lambda X, y, names: (X.assign(x2=np.nan), y, names), "X contains NaN"),
        (lambda X, y, names: (X, y.where(y > 0), names), "y contains NaN"),
    ],
)
def test_bad_inputs_are_refused(
    data: tuple[pd.DataFrame, pd.Series], mutate: Any, message: str
) -> None:
    X, y, names = mutate(*data, list(FEATURES))
    with pytest.raises(ValueError, match=message):
        FeatureImportanceAnalyzer().analyze_feature_importance(
            "BTC/USDT", ExplodingModel(), X, y, names
        )


def test_constructor_validates_counts() -> None:
    with pytest.raises(ValueError, match="sample_size"):
        FeatureImportanceAnalyzer(sample_size=0)
    with pytest.raises(ValueError, match="permutation_repeats"):
        FeatureImportanceAnalyzer(permutation_repeats=0)


# -- sampling --------------------------------------------------------------------------------


def test_sampling_keeps_the_most_recent_rows(
    data: tuple[pd.DataFrame, pd.Series], models: dict[str, Any]
) -> None:
    X, y = data
    analyzer = FeatureImportanceAnalyzer(sample_size=100)
    analysis = analyzer.analyze(
        "BTC/USDT", models["ridge"], X, y, FEATURES, ["correlation", "permutation"]
    )
    assert isinstance(analysis, ImportanceAnalysis)
    assert analysis.rows_used == 100
    table = analysis.tables["correlation"].set_index("feature")
    tail_X, tail_y = X.iloc[-100:], y.iloc[-100:]
    for feature in FEATURES:
        expected = spearmanr(tail_X[feature], tail_y).statistic
        assert table.loc[feature, "importance"] == pytest.approx(expected, abs=1e-12)

    # Shuffled rows: "most recent" follows the DatetimeIndex, not the row order.
    order = np.random.default_rng(1).permutation(len(X))
    shuffled = analyzer.analyze(
        "BTC/USDT", models["ridge"], X.iloc[order], y.iloc[order], FEATURES, ["correlation"]
    )
    pd.testing.assert_frame_equal(shuffled.tables["correlation"], analysis.tables["correlation"])


def test_small_inputs_use_every_row(
    data: tuple[pd.DataFrame, pd.Series], models: dict[str, Any]
) -> None:
    X, y = data
    analysis = FeatureImportanceAnalyzer(sample_size=1000).analyze(
        "BTC/USDT", models["ridge"], X, y, FEATURES, "correlation"
    )
    assert analysis.rows_used == len(X)


# -- storing ---------------------------------------------------------------------------------


def test_each_successful_method_is_stored_once_under_one_analysis_date(
    data: tuple[pd.DataFrame, pd.Series], models: dict[str, Any]
) -> None:
    X, y = data
    brain = RecordingBrain()
    analyzer = FeatureImportanceAnalyzer(brain, permutation_repeats=2)

    tables = analyzer.analyze_feature_importance(
        "BTC/USDT", models["hist_gradient_boosting"], X, y, FEATURES, model_id="hgb-1"
    )

    assert [call.method for call in brain.calls] == list(IMPORTANCE_METHODS)
    assert brain.transactions == 1
    dates = {call.analysis_date for call in brain.calls}
    assert len(dates) == 1
    (shared,) = dates
    assert shared is not None
    assert shared.tzinfo is not None
    assert shared.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    for call in brain.calls:
        assert call.symbol == "BTC/USDT"
        assert call.model_id == "hgb-1"
        expected = dict(
            zip(tables[call.method]["feature"], tables[call.method]["importance"], strict=True)
        )
        assert call.importances == expected
        assert all(isinstance(value, float) for value in call.importances.values())
    assert analyzer.last_analysis is not None
    assert analyzer.last_analysis.stored == list(IMPORTANCE_METHODS)
    assert analyzer.last_analysis.analysis_date == shared


@pytest.mark.usefixtures("shap_missing")
def test_failed_method_is_not_stored_and_given_date_is_used(
    data: tuple[pd.DataFrame, pd.Series], models: dict[str, Any]
) -> None:
    X, y = data
    brain = RecordingBrain()
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    FeatureImportanceAnalyzer(brain, permutation_repeats=1).analyze_feature_importance(
        "BTC/USDT", models["ridge"], X, y, FEATURES, model_id="ridge-1", analysis_date=when
    )
    assert [call.method for call in brain.calls] == ["permutation", "correlation"]
    assert {call.analysis_date for call in brain.calls} == {when}


def test_nothing_is_stored_without_model_id(
    data: tuple[pd.DataFrame, pd.Series], models: dict[str, Any]
) -> None:
    X, y = data
    brain = RecordingBrain()
    FeatureImportanceAnalyzer(brain).analyze_feature_importance(
        "BTC/USDT", models["ridge"], X, y, FEATURES, ["correlation"]
    )
    assert brain.calls == []
