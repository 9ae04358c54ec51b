"""Importance that costs what it is worth: batched permutation (the same numbers as
scikit-learn's), evenly spread SHAP rows, and the measured effort per model type."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance

from brain_assets.importance import analyzer as analyzer_module
from brain_assets.importance.analyzer import (
    DEFAULT_EFFORT,
    EFFORT_BY_MODEL_TYPE,
    FeatureImportanceAnalyzer,
    effort_for,
    spread_rows,
)
from brain_assets.lstm.context import ContextualModel
from brain_assets.pipeline.importance import analyzer_for
from brain_assets.pipeline.settings import KNOWN_MODEL_TYPES, RetrainSettings
from brain_assets.training.models import MODEL_TYPES, train_model

FAST = {
    "ridge": {},
    "random_forest": {"n_estimators": 20},
    "hist_gradient_boosting": {"max_iter": 40},
}


def make_data(n: int = 240, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    X = pd.DataFrame(rng.normal(size=(n, 5)), index=index, columns=[f"f{i}" for i in range(5)])
    y = pd.Series(X["f0"] - 0.5 * X["f2"] + rng.normal(scale=0.3, size=n), index=index)
    return X, y


def sklearn_permutation(model: Any, X: Any, y: Any, repeats: int, seed: int) -> np.ndarray:
    result = permutation_importance(
        model, X, y, scoring="neg_mean_squared_error", n_repeats=repeats, random_state=seed
    )
    return np.asarray(result.importances_mean)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_batched_permutation_equals_scikit_learn(model_type: str) -> None:
    X, y = make_data()
    model = train_model(model_type, X, y, hyperparameters=FAST[model_type]).estimator
    analyzer = FeatureImportanceAnalyzer(permutation_repeats=3, seed=7)
    analysis = analyzer.analyze("BTC/USDT", model, X, y, list(X.columns), ["permutation"])
    ours = analysis.tables["permutation"].set_index("feature")["importance"]
    reference = pd.Series(sklearn_permutation(model, X, y, 3, 7), index=X.columns)
    np.testing.assert_allclose(ours[X.columns], reference, rtol=1e-9, atol=1e-12)
    # The model was trained on f0 and f2: the ranking says so.
    assert set(analysis.tables["permutation"]["feature"].head(2)) == {"f0", "f2"}


def test_batches_split_by_memory_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = make_data()
    model = train_model("ridge", X, y).estimator
    whole = FeatureImportanceAnalyzer(permutation_repeats=2, seed=3)._permutation(
        model, X, y.to_numpy()
    )
    # One feature's copy per predict call.
    monkeypatch.setattr(analyzer_module, "PERMUTATION_BATCH_CELLS", 1)
    split = FeatureImportanceAnalyzer(permutation_repeats=2, seed=3)._permutation(
        model, X, y.to_numpy()
    )
    np.testing.assert_array_equal(whole, split)


class LaggedSum:
    """A tiny sequence model: each row's prediction is the sum of feature 0 over its window."""

    sequence_length = 3

    def predict(self, X: Any) -> np.ndarray:
        values = np.asarray(X, dtype=float)
        if values.ndim == 3:
            return values[:, :, 0].sum(axis=1)
        out = np.full(len(values), np.nan)
        for end in range(self.sequence_length - 1, len(values)):
            out[end] = values[end - self.sequence_length + 1 : end + 1, 0].sum()
        return out


def test_sequence_blocks_do_not_share_windows() -> None:
    X, y = make_data(60)
    context = X.iloc[:2]
    model = ContextualModel(LaggedSum(), context)
    rows = X.iloc[2:].to_numpy()
    blocks = np.stack([rows, rows[::-1], rows * 2])
    together = model.predict_blocks(blocks)
    one_by_one = np.stack([model.predict(block) for block in blocks])
    np.testing.assert_allclose(together, one_by_one)
    assert model.cells_per_row == 3
    # And the permutation importance through the blocks equals scikit-learn's.
    ours = FeatureImportanceAnalyzer(permutation_repeats=2, seed=5)._permutation(
        model, X.iloc[2:], y.iloc[2:].to_numpy()
    )
    reference = sklearn_permutation(model, X.iloc[2:], y.iloc[2:], 2, 5)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)


def test_spread_rows_cover_the_whole_period() -> None:
    X, _ = make_data(101)
    chosen = spread_rows(X, 5)
    assert list(chosen.index) == list(X.index[[0, 25, 50, 75, 100]])
    assert spread_rows(X, None) is X
    assert spread_rows(X, 500) is X
    assert spread_rows(X.to_numpy(), 2).shape == (2, 5)


def test_tree_shap_explains_the_spread_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    shap = pytest.importorskip("shap")
    X, y = make_data()
    model = train_model("random_forest", X, y, hyperparameters=FAST["random_forest"]).estimator
    explained: list[int] = []
    original = shap.TreeExplainer.shap_values

    def counting(self: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
        explained.append(len(rows))
        return original(self, rows, *args, **kwargs)

    monkeypatch.setattr(shap.TreeExplainer, "shap_values", counting)
    few = FeatureImportanceAnalyzer(shap_rows=40).analyze("S/USDT", model, X, y, list(X.columns))
    everything = FeatureImportanceAnalyzer().analyze("S/USDT", model, X, y, list(X.columns))
    assert explained == [40, len(X)]
    top = few.tables["shap"]["feature"].head(2)
    assert set(top) == set(everything.tables["shap"]["feature"].head(2)) == {"f0", "f2"}


def test_effort_per_model_type_reaches_the_retrain_analyzer() -> None:
    assert set(EFFORT_BY_MODEL_TYPE) == set(KNOWN_MODEL_TYPES)
    settings = RetrainSettings(importance_sample=300, seed=4)
    for model_type in KNOWN_MODEL_TYPES:
        analyzer = analyzer_for(model_type, settings)
        assert analyzer.permutation_repeats == effort_for(model_type).permutation_repeats
        assert analyzer.shap_rows == effort_for(model_type).shap_rows
        assert (analyzer.sample_size, analyzer.seed) == (300, 4)
    assert effort_for("someone_elses_model") == DEFAULT_EFFORT


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_shap_rows_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ValueError, match="shap_rows"):
        FeatureImportanceAnalyzer(shap_rows=bad)
