"""``compile_one_row``: one row predicted without scikit-learn's overhead, to the same number.

The three model types are trained as the retrain trains them (``train_model``, default
hyperparameters) on the features and target of a market with a signal, and the compiled function
is checked against ``estimator.predict`` on a held-out block, on rows that sit exactly on the
trees' split thresholds and on rows with missing values. Unknown models must give None, and a
Predictor must use the compiled path and still predict what scikit-learn predicts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from brain_assets.features.technical import FEATURES, build_dataset
from brain_assets.lifecycle.predictor import _build
from brain_assets.market_data.synthetic import signal_market
from brain_assets.records import ModelVersion
from brain_assets.training.fast_predict import OneRowModel, compile_one_row, one_row_model
from brain_assets.training.models import MODEL_TYPES, train_model
from brain_assets.training.serialization import deserialize_model, serialize_model

RTOL, ATOL = 1e-12, 1e-15
TRAIN_ROWS = 2400
TREE_TYPES = ("random_forest", "hist_gradient_boosting")
NAMES = list(FEATURES)


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The raw bars, and the modelling table's features and target (NaN rows dropped)."""
    bars = signal_market(3000, momentum=0.2, seed=11)
    X, y = build_dataset(bars, 1)
    return bars, X, y


@pytest.fixture(scope="module")
def models(market: tuple[pd.DataFrame, pd.DataFrame, pd.Series]) -> dict[str, Any]:
    """Each model type fitted as the retrain fits it, on the first rows of the table."""
    _, X, y = market
    return {
        model_type: train_model(
            model_type, X.iloc[:TRAIN_ROWS], y.iloc[:TRAIN_ROWS], seed=7
        ).estimator
        for model_type in MODEL_TYPES
    }


@pytest.fixture(scope="module")
def held_out(market: tuple[pd.DataFrame, pd.DataFrame, pd.Series]) -> pd.DataFrame:
    _, X, _ = market
    return X.iloc[TRAIN_ROWS:]


def assert_same(estimator: Any, rows: pd.DataFrame) -> None:
    """The compiled function equals ``estimator.predict`` on every row of ``rows``."""
    one_row = compile_one_row(estimator, feature_names=list(rows.columns))
    assert one_row is not None
    expected = np.asarray(estimator.predict(rows), dtype=np.float64)
    got = np.array([one_row(row) for row in rows.to_numpy()])
    assert all(isinstance(one_row(row), float) for row in rows.to_numpy()[:3])
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    # What the registry stores beside the artifact predicts the very same numbers once read back.
    model = one_row_model(estimator, feature_names=list(rows.columns))
    assert model is not None
    stored = OneRowModel.from_bytes(model.to_bytes()).function()
    np.testing.assert_array_equal([stored(row) for row in rows.to_numpy()], got)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_held_out_rows_predict_as_sklearn(
    models: dict[str, Any], held_out: pd.DataFrame, model_type: str
) -> None:
    assert len(held_out) >= 400
    assert_same(models[model_type], held_out)


def split_nodes(estimator: Any) -> list[tuple[int, float]]:
    """(feature, threshold) of every split of every tree."""
    if isinstance(estimator, RandomForestRegressor):
        pairs = []
        for member in estimator.estimators_:
            tree = member.tree_
            inner = tree.children_left != -1
            pairs += zip(tree.feature[inner].tolist(), tree.threshold[inner].tolist(), strict=True)
        return pairs
    pairs = []
    for (predictor,) in estimator._predictors:
        nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
        pairs += zip(nodes["feature_idx"].tolist(), nodes["num_threshold"].tolist(), strict=True)
    return pairs


def rows_at_thresholds(base: np.ndarray, pairs: list[tuple[int, float]]) -> pd.DataFrame:
    """For each split, rows whose feature is its threshold, and the floats just around it."""
    rows = []
    for feature, threshold in pairs:
        for value in (threshold, np.nextafter(threshold, -np.inf), np.nextafter(threshold, np.inf)):
            row = base.copy()
            row[feature] = value
            rows.append(row)
    return pd.DataFrame(np.array(rows), columns=NAMES)


@pytest.mark.parametrize("model_type", TREE_TYPES)
def test_rows_at_split_thresholds_go_where_sklearn_sends_them(
    models: dict[str, Any], held_out: pd.DataFrame, model_type: str
) -> None:
    estimator = models[model_type]
    pairs = split_nodes(estimator)
    # Every 5th split keeps the block to a few thousand rows, every tree still covered.
    chosen = pairs[::5]
    if model_type == "random_forest":
        # The forest compares the row cast to float32: thresholds whose float32 rounds above
        # them send the threshold itself right, where a float64 comparison would send it left.
        rounded_up = [(f, t) for f, t in pairs if float(np.float32(t)) > t]
        assert rounded_up
        chosen += rounded_up[:200]
    for base in held_out.to_numpy()[[0, len(held_out) // 2]]:
        assert_same(estimator, rows_at_thresholds(base, chosen))


@pytest.mark.parametrize("model_type", TREE_TYPES)
def test_missing_values_take_the_side_sklearn_takes(
    models: dict[str, Any], held_out: pd.DataFrame, model_type: str
) -> None:
    estimator = models[model_type]
    block = held_out.iloc[:60].to_numpy().copy()
    # One missing feature per row, every feature in turn, and a row missing them all.
    for i, row in enumerate(block):
        row[i % len(FEATURES)] = np.nan
    block[-1, :] = np.nan
    rows = pd.DataFrame(block, columns=NAMES)
    # Both models accept missing values at predict time with these defaults; should that
    # change, the compiled function must refuse them as scikit-learn does.
    try:
        estimator.predict(rows)
    except ValueError:
        one_row = compile_one_row(estimator)
        assert one_row is not None
        with pytest.raises(ValueError, match="NaN"):
            one_row(block[0])
        return
    assert_same(estimator, rows)


def test_ridge_scaler_flags(held_out: pd.DataFrame, market: Any) -> None:
    _, X, y = market
    for scaler in (StandardScaler(with_mean=False), StandardScaler(with_std=False)):
        pipeline = Pipeline([("scaler", scaler), ("ridge", Ridge(alpha=3.0))])
        pipeline.fit(X.iloc[:TRAIN_ROWS], y.iloc[:TRAIN_ROWS])
        assert_same(pipeline, held_out)


def test_forest_refuses_what_sklearn_refuses(models: dict[str, Any]) -> None:
    one_row = compile_one_row(models["random_forest"])
    assert one_row is not None
    row = np.zeros(len(FEATURES))
    row[0] = 1e39  # finite in float64, infinite once cast to float32: scikit-learn refuses it
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="infinite"):
        one_row(row)
    with pytest.raises(ValueError, match="expected one row of"):
        one_row(np.zeros(len(FEATURES) - 1))


class _OwnForest(RandomForestRegressor):
    """A subclass may predict otherwise: not compiled."""


def test_unknown_estimators_give_none(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.Series], models: dict[str, Any]
) -> None:
    _, X, y = market
    X_small, y_small = X.iloc[:300], y.iloc[:300]
    two_targets = np.column_stack([y_small, -y_small])
    unknown = [
        object(),
        LinearRegression().fit(X_small, y_small),
        Ridge().fit(X_small, y_small),
        Pipeline([("ridge", Ridge())]).fit(X_small, y_small),
        Pipeline([("a", StandardScaler()), ("b", StandardScaler()), ("ridge", Ridge())]).fit(
            X_small, y_small
        ),
        RandomForestRegressor(n_estimators=3, random_state=0).fit(X_small, two_targets),
        _OwnForest(n_estimators=3, random_state=0).fit(X_small, y_small),
        HistGradientBoostingRegressor(loss="absolute_error", max_iter=3).fit(X_small, y_small),
        HistGradientBoostingRegressor(loss="poisson", max_iter=3).fit(X_small, y_small.abs()),
    ]
    for estimator in unknown:
        assert compile_one_row(estimator) is None, type(estimator).__name__
    # Rows in another column order than the model was fitted on.
    for estimator in models.values():
        assert compile_one_row(estimator, feature_names=NAMES[::-1]) is None


def test_categorical_boosting_gives_none(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.Series],
) -> None:
    _, X, y = market
    X_small = X.iloc[:300].copy()
    X_small[NAMES[0]] = (np.arange(300) % 3).astype(float)
    model = HistGradientBoostingRegressor(max_iter=3, categorical_features=[0])
    model.fit(X_small, y.iloc[:300])
    assert compile_one_row(model) is None


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_a_malformed_one_row_file_is_refused(models: dict[str, Any], model_type: str) -> None:
    model = one_row_model(models[model_type])
    assert model is not None
    import io
    import zipfile

    broken_zip = io.BytesIO()
    with zipfile.ZipFile(broken_zip, "w") as archive:
        archive.writestr("kind.npy", b"not an array")
    one_array = io.BytesIO()
    np.save(one_array, np.zeros(3))
    for data in (
        b"PK not an npz",
        b"PK\x03\x04" + b"\x00" * 40,
        broken_zip.getvalue(),
        one_array.getvalue(),
    ):
        with pytest.raises(ValueError, match="not a one-row model file"):
            OneRowModel.from_bytes(data)
    first = next(iter(model.arrays))
    with pytest.raises(ValueError, match="not a one-row model file"):
        OneRowModel.from_bytes(
            dataclasses.replace(
                model, arrays={k: v for k, v in model.arrays.items() if k != first}
            ).to_bytes()
        )
    # Arrays of the right names that do not make a model: a child outside the trees, or a
    # scaler of another length than the ridge.
    if model.kind == "ridge":
        breaks = [{"mean": np.zeros(len(model.arrays["mean"]) + 1)}]
    else:
        left = np.asarray(model.arrays["left"])
        inner = int(np.flatnonzero(left != np.arange(len(left)))[0])
        cycle = left.copy()
        cycle[inner] = inner - 1 if inner > 0 else inner  # a child before its parent
        breaks = [
            {"left": left + len(model.arrays["value"])},  # outside the nodes
            {"left": cycle},
            {"depth": np.asarray(int(model.arrays["depth"]) - 1)},  # walks stop on inner nodes
            {"depth": np.asarray(10**9)},
            {"roots": np.asarray(model.arrays["roots"])[::-1]},
        ]
    for change in breaks:
        broken = {**model.arrays, **change}
        with pytest.raises(ValueError, match="malformed one-row model"):
            OneRowModel.from_bytes(dataclasses.replace(model, arrays=broken).to_bytes())


def predictor_for(model_type: str, estimator: Any) -> Any:
    """A Predictor as load_predictor builds it, from the bytes the registry would store."""
    data, fmt = serialize_model(estimator)
    version = ModelVersion(
        model_id=f"id-{model_type}",
        symbol="BTC/USDT",
        version=1,
        model_type=model_type,
        artifact_sha256="unused",
        artifact_format=fmt,
        feature_names=NAMES,
        horizon=1,
    )
    loaded = deserialize_model(data, fmt)
    return _build(version, loaded, reason="test", regime=None, source="bundle", cached_at=None)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_predictor_uses_the_compiled_path(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.Series],
    models: dict[str, Any],
    model_type: str,
) -> None:
    bars, X, _ = market
    predictor = predictor_for(model_type, models[model_type])
    assert predictor.one_row is not None
    assert "one_row" not in repr(predictor)
    through_sklearn = dataclasses.replace(predictor, one_row=None)
    for end in (len(bars) - 1, len(bars) - 200):
        recent = bars.iloc[end - 499 : end + 1]
        fast = predictor.predict(recent).value
        slow = through_sklearn.predict(recent).value
        assert fast == pytest.approx(slow, rel=RTOL, abs=ATOL)
    # The model's prediction of the table's own row for that bar, too.
    when = bars["timestamp"].iloc[-200]
    expected = float(models[model_type].predict(X.loc[[when]])[0])
    assert predictor.predict(bars.iloc[-699:-199]).value == pytest.approx(expected, abs=1e-9)
