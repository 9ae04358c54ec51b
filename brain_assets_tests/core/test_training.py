"""Walk-forward split, model building and training, and pickle-free serialisation."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from threadpoolctl import threadpool_info

from brain_assets.training.models import (
    DEFAULT_HYPERPARAMETERS,
    FOREST_ROWS_PER_TREE,
    MODEL_TYPES,
    build_model,
    rows_per_tree,
    single_threaded,
    train_model,
)
from brain_assets.training.serialization import (
    deserialize_model,
    serialize_model,
    sha256_hex,
)
from brain_assets.training.split import walk_forward_split

# Small enough that every model fits in well under a second on 2 cores. The forest sees every
# feature per split: the toy tables have 4 features and one signal, where the default third of the
# features (sized for the 37 of the retrain) is a single random feature per split.
FAST: dict[str, dict[str, Any]] = {
    "ridge": {},
    "random_forest": {"n_estimators": 20, "max_features": 1.0},
    "hist_gradient_boosting": {"max_iter": 60},
}


def make_data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    X = pd.DataFrame(rng.normal(size=(n, 4)), index=index, columns=["x0", "x1", "x2", "x3"])
    y = pd.Series(0.5 * X["x0"] + rng.normal(scale=0.2, size=n), index=index, name="target")
    return X, y


# -- split -----------------------------------------------------------------------------------


@pytest.mark.parametrize("embargo", [0, 1, 5])
def test_split_is_chronological_with_embargo_gaps(embargo: int) -> None:
    index = pd.date_range("2024-01-01", periods=100, freq="D", tz="UTC")
    split = walk_forward_split(index, train_frac=0.6, val_frac=0.2, embargo=embargo)

    train, val, test = (split.positions(name) for name in ("train", "validation", "test"))
    assert train[0] == 0
    assert test[-1] == 99
    assert val[0] - train[-1] - 1 == embargo
    assert test[0] - val[-1] - 1 == embargo
    assert not set(train) & set(val)
    assert not set(val) & set(test)
    assert train.max() < val.min() <= val.max() < test.min()
    assert split.sizes() == {"train": 60, "validation": 20 - embargo, "test": 20 - embargo}
    assert split.train_period == (index[0], index[59])
    assert split.validation_period == (index[60 + embargo], index[79])
    assert split.test_period == (index[80 + embargo], index[99])


def test_split_embargo_of_horizon_keeps_targets_inside_their_segment() -> None:
    horizon = 3
    split = walk_forward_split(50, embargo=horizon)
    last_train_target_end = split.train.stop - 1 + horizon
    last_val_target_end = split.validation.stop - 1 + horizon
    assert last_train_target_end < split.validation.start
    assert last_val_target_end < split.test.start


def test_split_slices_work_with_iloc_and_count_gives_no_periods() -> None:
    X, _ = make_data(50)
    split = walk_forward_split(len(X), embargo=2)
    assert split.train_period is None
    assert len(X.iloc[split.train]) == 30
    assert X.iloc[split.test].index[-1] == X.index[-1]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"train_frac": 0.0}, "train_frac"),
        ({"train_frac": 1.0}, "train_frac"),
        ({"train_frac": float("nan")}, "train_frac"),
        ({"val_frac": -0.1}, "val_frac"),
        ({"val_frac": True}, "val_frac"),
        ({"train_frac": 0.7, "val_frac": 0.3}, "train_frac + val_frac"),
        ({"embargo": -1}, "embargo"),
        ({"embargo": 1.5}, "embargo"),
    ],
)
def test_split_rejects_bad_arguments(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("+", r"\+")):
        walk_forward_split(100, **kwargs)  # type: ignore[arg-type]


def test_split_rejects_too_few_rows_naming_the_row_count() -> None:
    with pytest.raises(ValueError, match=r"validation segment is empty.*10 rows"):
        walk_forward_split(10, embargo=2)
    with pytest.raises(ValueError, match="0 rows"):
        walk_forward_split(0)


def test_split_rejects_unsorted_index_and_odd_inputs() -> None:
    index = pd.date_range("2024-01-01", periods=30, freq="D", tz="UTC")[::-1]
    with pytest.raises(ValueError, match="chronological"):
        walk_forward_split(index)
    with pytest.raises(ValueError, match="index_or_n"):
        walk_forward_split(-5)
    with pytest.raises(ValueError, match="index_or_n"):
        walk_forward_split([1, 2, 3])  # type: ignore[arg-type]


# -- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_training_is_deterministic_and_learns_the_signal(model_type: str) -> None:
    X, y = make_data()
    split = walk_forward_split(X.index, embargo=1)
    X_train, y_train = X.iloc[split.train], y.iloc[split.train]
    X_test, y_test = X.iloc[split.test], y.iloc[split.test]

    first = train_model(model_type, X_train, y_train, hyperparameters=FAST[model_type], seed=7)
    second = train_model(model_type, X_train, y_train, hyperparameters=FAST[model_type], seed=7)

    np.testing.assert_array_equal(first.estimator.predict(X_test), second.estimator.predict(X_test))
    assert r2_score(y_test, first.estimator.predict(X_test)) > 0.5
    assert first.model_type == model_type
    assert first.feature_names == ["x0", "x1", "x2", "x3"]
    assert first.fit_seconds >= 0.0
    assert first.seed == 7
    expected = {**DEFAULT_HYPERPARAMETERS[model_type], **FAST[model_type]}
    assert first.hyperparameters == expected


def test_defaults_are_small_single_threaded_and_deterministic() -> None:
    forest = build_model("random_forest")
    assert forest.get_params()["n_jobs"] == 1
    assert forest.get_params()["n_estimators"] == 100
    boosting = build_model("hist_gradient_boosting", seed=3)
    assert boosting.get_params()["early_stopping"] is False
    assert boosting.get_params()["random_state"] == 3
    ridge = build_model("ridge", {"alpha": 2.5})
    assert [name for name, _ in ridge.steps] == ["scaler", "ridge"]
    assert ridge.get_params()["ridge__alpha"] == 2.5


def test_build_model_rejects_unknown_type_and_hyperparameters() -> None:
    with pytest.raises(ValueError, match="ridge, random_forest, hist_gradient_boosting"):
        build_model("xgboost")
    with pytest.raises(ValueError, match="n_trees"):
        build_model("random_forest", {"n_trees": 10})
    with pytest.raises(ValueError, match="random_state"):
        build_model("ridge", {"random_state": 1})
    with pytest.raises(ValueError, match="JSON"):
        build_model("ridge", {"alpha": float("nan")})


def test_train_model_rejects_bad_inputs() -> None:
    X, y = make_data(50)
    with pytest.raises(ValueError, match="y_train"):
        train_model("ridge", X, y.iloc[:-1])
    y_with_gap = y.copy()
    y_with_gap.iloc[-1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_model("ridge", X, y_with_gap)


def test_array_input_gets_positional_feature_names() -> None:
    X, y = make_data(60)
    trained = train_model("ridge", X.to_numpy(), y.to_numpy())
    assert trained.feature_names == ["x0", "x1", "x2", "x3"]


# -- forest rows per tree ----------------------------------------------------------------------


def drawn_rows(forest: RandomForestRegressor) -> list[tuple[float, int]]:
    """Per tree: the bootstrap draws at its root (the draw counts are the sample weights) and the
    distinct rows among them, which is what the tree sorts at every node."""
    return [
        (float(tree.tree_.weighted_n_node_samples[0]), int(tree.tree_.n_node_samples[0]))
        for tree in forest.estimators_
    ]


def test_forest_draws_at_most_max_samples_rows_per_tree() -> None:
    X, y = make_data(1200)
    trained = train_model(
        "random_forest", X, y, hyperparameters={"n_estimators": 5, "max_samples": 300}
    )

    assert trained.estimator.get_params()["max_samples"] == 300
    assert trained.hyperparameters["max_samples"] == 300
    for draws, distinct in drawn_rows(trained.estimator):
        assert draws == 300
        assert distinct <= 300


def test_forest_below_the_cap_is_the_plain_bootstrap() -> None:
    # A cap above the rows must not draw more rows than there are (scikit-learn would, with
    # replacement): the model is exactly the forest without a cap.
    X, y = make_data(400)
    capped = train_model(
        "random_forest", X, y, hyperparameters={**FAST["random_forest"], "max_samples": 5000}
    )
    plain = train_model(
        "random_forest", X, y, hyperparameters={**FAST["random_forest"], "max_samples": None}
    )

    assert capped.estimator.get_params()["max_samples"] is None
    assert capped.hyperparameters["max_samples"] == 5000
    assert all(draws == 400 for draws, _ in drawn_rows(capped.estimator))
    np.testing.assert_array_equal(capped.estimator.predict(X), plain.estimator.predict(X))


def test_default_forest_rows_per_tree_do_not_grow_with_the_rows() -> None:
    cap = DEFAULT_HYPERPARAMETERS["random_forest"]["max_samples"]
    assert cap == FOREST_ROWS_PER_TREE
    X, y = make_data(cap + 2000)
    trained = train_model("random_forest", X, y, hyperparameters={"n_estimators": 3})

    assert trained.estimator.get_params()["max_samples"] == cap
    assert all(draws == cap for draws, _ in drawn_rows(trained.estimator))
    assert rows_per_tree(cap, 100 * cap) == cap
    assert rows_per_tree(cap, cap) is None


def test_rows_per_tree_passes_shares_and_none_through() -> None:
    assert rows_per_tree(0.25, 10_000) == 0.25
    assert rows_per_tree(None, 10_000) is None
    assert rows_per_tree(np.int64(50), 10_000) == 50


def test_single_threaded_holds_every_thread_pool_to_one_and_restores_it() -> None:
    before = {info["filepath"]: info["num_threads"] for info in threadpool_info()}
    with single_threaded():
        assert all(info["num_threads"] == 1 for info in threadpool_info())
    after = {info["filepath"]: info["num_threads"] for info in threadpool_info()}
    assert after == before


# -- serialisation ---------------------------------------------------------------------------


class NotAModel:
    """A type outside the allowlist, standing in for a tampered artifact."""

    def __init__(self) -> None:
        self.payload = "anything"


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle must not be used")

    for name in ("dump", "dumps", "load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.usefixtures("no_pickle")
def test_serialization_round_trip_without_pickle(model_type: str) -> None:
    X, y = make_data(200)
    estimator = train_model(model_type, X, y, hyperparameters=FAST[model_type]).estimator

    data, fmt = serialize_model(estimator)
    restored = deserialize_model(data, fmt)

    assert fmt == "skops"
    assert data[:4] == b"PK\x03\x04"
    assert zipfile.is_zipfile(io.BytesIO(data))
    assert type(restored) is type(estimator)
    np.testing.assert_array_equal(restored.predict(X), estimator.predict(X))


def test_untrusted_type_is_refused_by_name() -> None:
    data = sio.dumps({"model": NotAModel()})
    with pytest.raises(ValueError, match=r"untrusted type.*NotAModel"):
        deserialize_model(data, "skops")


def rewrite_top_level_type(data: bytes, module: str, cls: str) -> bytes:
    """The same archive with the root object's type swapped, as an attacker would edit it."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "schema.json":
                schema = json.loads(content)
                schema["__module__"], schema["__class__"] = module, cls
                content = json.dumps(schema).encode()
            target.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    ("module", "cls"), [("subprocess", "Popen"), ("sklearn_evil.linear_model", "Ridge")]
)
def test_tampered_model_archive_is_refused(module: str, cls: str) -> None:
    X, y = make_data(50)
    data, fmt = serialize_model(train_model("ridge", X, y).estimator)
    tampered = rewrite_top_level_type(data, module, cls)
    with pytest.raises(ValueError, match=f"untrusted type.*{module}.{cls}"):
        deserialize_model(tampered, fmt)


def test_trust_is_by_exact_type_not_by_package() -> None:
    # A genuine scikit-learn estimator that no model type produces is as untrusted as os.system.
    X, y = make_data(50)
    data, fmt = serialize_model(train_model("ridge", X, y).estimator)
    tampered = rewrite_top_level_type(data, "sklearn.linear_model._base", "LinearRegression")
    with pytest.raises(ValueError, match=r"untrusted type.*sklearn\.linear_model\._base\.Linear"):
        deserialize_model(tampered, fmt)


def test_unknown_format_and_garbage_bytes_are_refused() -> None:
    X, y = make_data(50)
    data, _ = serialize_model(train_model("ridge", X, y).estimator)
    with pytest.raises(ValueError, match="unknown model format 'pickle'"):
        deserialize_model(data, "pickle")
    with pytest.raises(ValueError, match="skops archive"):
        deserialize_model(b"not a zip archive", "skops")


def test_sha256_hex() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
