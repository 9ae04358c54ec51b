"""Tests of ``brain_assets.lstm.StandardizedLSTM``.

Networks are tiny (one bidirectional layer of 16 units, windows of 8 rows, a few hundred rows) so
the whole file runs in seconds on two CPU cores; the expensive fit is shared by a module fixture.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from brain_assets.lstm import FitResult, StandardizedLSTM

SEQ = 8
LAG = 3
SMALL: dict[str, Any] = {
    "lstm_units": 16,
    "num_layers": 1,
    "sequence_length": SEQ,
    "dropout_rate": 0.0,
    "learning_rate": 0.02,
    "seed": 7,
}
FIT: dict[str, Any] = {"epochs": 10, "batch_size": 16, "patience": 3}


@dataclass(frozen=True)
class LaggedData:
    """Two white-noise features; the target is feature 0 three rows earlier."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


def _lagged_data(n_rows: int = 600, n_train: int = 450) -> LaggedData:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, 2))
    # An offset and scale on the target exercise the target scaler and its inversion.
    y = np.empty(n_rows)
    y[LAG:] = 5.0 + 2.0 * X[:-LAG, 0]
    y[:LAG] = 5.0
    return LaggedData(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


@pytest.fixture(scope="module")
def data() -> LaggedData:
    return _lagged_data()


@pytest.fixture(scope="module")
def fitted(data: LaggedData) -> tuple[StandardizedLSTM, FitResult]:
    model = StandardizedLSTM(input_dim=2, **SMALL)
    result = model.fit(data.X_train, data.y_train, data.X_val, data.y_val, **FIT)
    return model, result


# ---------------------------------------------------------------------------- import weight


def test_import_does_not_load_tensorflow() -> None:
    code = (
        "import brain_assets, brain_assets.lstm, sys; "
        "from brain_assets.lstm import StandardizedLSTM; "
        "StandardizedLSTM(input_dim=3); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith(('tensorflow', 'keras')))[:5]"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert completed.returncode == 0, completed.stderr


def test_lazy_export_from_package() -> None:
    import brain_assets

    assert brain_assets.StandardizedLSTM is StandardizedLSTM


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lstm_units": 0}, "lstm_units"),
        ({"num_layers": 0}, "num_layers"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
        ({"dropout_rate": -0.1}, "dropout_rate"),
        ({"sequence_length": 1}, "sequence_length"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"input_dim": 0}, "input_dim"),
        ({"lstm_units": True}, "lstm_units"),
    ],
)
def test_bad_constructor_args(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"input_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        StandardizedLSTM(**args)  # type: ignore[arg-type]


def _expect_fit_error(data: LaggedData, match: str, **overrides: object) -> None:
    arrays: dict[str, object] = {
        "X_train": data.X_train,
        "y_train": data.y_train,
        "X_val": data.X_val,
        "y_val": data.y_val,
    }
    arrays.update(overrides)
    model = StandardizedLSTM(input_dim=2, **SMALL)
    with pytest.raises(ValueError, match=match):
        model.fit(**arrays, epochs=1)  # type: ignore[arg-type]
    assert not model.is_fitted


def test_wrong_input_dim(data: LaggedData) -> None:
    _expect_fit_error(data, "input_dim", X_train=np.hstack([data.X_train, data.X_train[:, :1]]))


def test_nan_in_x(data: LaggedData) -> None:
    X = data.X_train.copy()
    X[10, 1] = np.nan
    _expect_fit_error(data, r"X_train contains non-finite values: 1 NaN", X_train=X)


def test_inf_in_y(data: LaggedData) -> None:
    y = data.y_train.copy()
    y[-1] = np.inf
    _expect_fit_error(data, r"y_train .*1 inf", y_train=y)


def test_nan_in_validation_target(data: LaggedData) -> None:
    y = data.y_val.copy()
    y[0] = np.nan
    _expect_fit_error(data, "y_val.*NaN", y_val=y)


def test_fewer_rows_than_sequence_length(data: LaggedData) -> None:
    _expect_fit_error(
        data,
        "fewer than sequence_length",
        X_train=data.X_train[: SEQ - 1],
        y_train=data.y_train[: SEQ - 1],
    )


def test_mismatched_lengths(data: LaggedData) -> None:
    _expect_fit_error(data, "length", y_train=data.y_train[:-1])


def test_wrong_window_length(data: LaggedData) -> None:
    windows = np.zeros((20, SEQ + 1, 2))
    _expect_fit_error(data, "sequence_length", X_train=windows, y_train=np.zeros(20))


def test_bad_fit_arguments(data: LaggedData) -> None:
    model = StandardizedLSTM(input_dim=2, **SMALL)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(data.X_train, data.y_train, data.X_val, data.y_val, batch_size=0)


def test_use_before_fit_is_refused(data: LaggedData, tmp_path: Path) -> None:
    model = StandardizedLSTM(input_dim=2, **SMALL)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(data.X_val)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.get_attention_weights(data.X_val)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.save(tmp_path / "model.keras")


def test_path_must_end_with_keras(tmp_path: Path) -> None:
    model = StandardizedLSTM(input_dim=2, **SMALL)
    with pytest.raises(ValueError, match=r"\.keras"):
        model.save(tmp_path / "model.h5")
    with pytest.raises(ValueError, match=r"\.keras"):
        StandardizedLSTM.load(tmp_path / "model.pkl")
    with pytest.raises(ValueError, match="bytes"):
        StandardizedLSTM.from_bytes(b"")


def test_get_config_round_trips_through_constructor() -> None:
    model = StandardizedLSTM(input_dim=4, lstm_units=8, use_bidirectional=False, seed=3)
    config = model.get_config()
    assert StandardizedLSTM(**config).get_config() == config
    assert config["lstm_units"] == 8
    assert config["use_bidirectional"] is False


# ---------------------------------------------------------------------------- fitted behaviour


@pytest.mark.slow
def test_learns_lagged_feature(
    fitted: tuple[StandardizedLSTM, FitResult], data: LaggedData
) -> None:
    model, result = fitted
    # Naive baseline: the training mean, scored on the standardised scale of the history.
    target = data.y_val[SEQ - 1 :]
    train_target = data.y_train[SEQ - 1 :]
    baseline = float(np.mean((target - train_target.mean()) ** 2) / train_target.var())
    best = min(result.history["val_loss"])
    assert best < 0.25 * baseline, (best, baseline)
    # And in the target's own units, from predict().
    raw_mse = float(np.nanmean((model.predict(data.X_val) - data.y_val) ** 2))
    assert raw_mse < 0.25 * float(np.mean((target - train_target.mean()) ** 2))


@pytest.mark.slow
def test_fit_result_fields(fitted: tuple[StandardizedLSTM, FitResult]) -> None:
    _, result = fitted
    assert set(result.history) == {"loss", "val_loss"}
    assert len(result.history["loss"]) == len(result.history["val_loss"]) == result.epochs_run
    assert 1 <= result.best_epoch <= result.epochs_run <= FIT["epochs"]
    assert result.train_seconds > 0
    assert result.n_train_windows == 450 - SEQ + 1
    expected = result.n_train_windows * result.epochs_run / result.train_seconds
    assert result.samples_per_second == pytest.approx(expected)


@pytest.mark.slow
def test_predict_aligns_with_rows(
    fitted: tuple[StandardizedLSTM, FitResult], data: LaggedData
) -> None:
    model, _ = fitted
    predictions = model.predict(data.X_val)
    assert predictions.shape == (len(data.X_val),)
    assert np.isnan(predictions[: SEQ - 1]).all()
    assert np.isfinite(predictions[SEQ - 1 :]).all()
    # 3-D windows give one prediction per window, the same numbers as the aligned 2-D rows.
    windows = np.stack([data.X_val[i : i + SEQ] for i in range(len(data.X_val) - SEQ + 1)])
    np.testing.assert_allclose(model.predict(windows), predictions[SEQ - 1 :], rtol=1e-6)
    # pandas input is accepted and gives the same result.
    frame = pd.DataFrame(data.X_val, columns=["a", "b"])
    np.testing.assert_array_equal(model.predict(frame), predictions)


@pytest.mark.slow
def test_predictions_match_keras_for_any_batch_size_from_one_graph(
    fitted: tuple[StandardizedLSTM, FitResult], data: LaggedData
) -> None:
    model, _ = fitted
    windows = np.stack([data.X_val[i : i + SEQ] for i in range(len(data.X_val) - SEQ + 1)])
    for size in (1, 7, len(windows)):
        expected = model.inference_model.predict_on_batch(windows[:size])[0].ravel()
        np.testing.assert_allclose(model.predict(windows[:size]), expected, rtol=1e-12)
    # One graph per network, whatever the batch sizes.
    call = model._inference_call()
    model.predict(windows[:3])
    assert model._inference_call() is call


def test_predict_rejects_bad_input(fitted: tuple[StandardizedLSTM, FitResult]) -> None:
    model, _ = fitted
    with pytest.raises(ValueError, match="input_dim"):
        model.predict(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="fewer than sequence_length"):
        model.predict(np.zeros((SEQ - 1, 2)))
    with pytest.raises(ValueError, match="inf"):
        model.get_attention_weights(np.full((SEQ, 2), np.inf))


@pytest.mark.slow
def test_attention_weights_are_a_softmax_over_lags(
    fitted: tuple[StandardizedLSTM, FitResult], data: LaggedData
) -> None:
    model, _ = fitted
    weights = model.get_attention_weights(data.X_val)
    assert weights.shape == (len(data.X_val) - SEQ + 1, SEQ)
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_save_load_round_trip(
    fitted: tuple[StandardizedLSTM, FitResult], data: LaggedData, tmp_path: Path
) -> None:
    model, _ = fitted
    path = tmp_path / "lstm.keras"
    model.save(path)
    loaded = StandardizedLSTM.load(str(path))
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(data.X_val), model.predict(data.X_val))
    np.testing.assert_array_equal(
        loaded.get_attention_weights(data.X_val), model.get_attention_weights(data.X_val)
    )
    assert loaded.evaluate(data.X_val, data.y_val) == model.evaluate(data.X_val, data.y_val)


@pytest.mark.slow
def test_bytes_round_trip(fitted: tuple[StandardizedLSTM, FitResult], data: LaggedData) -> None:
    model, _ = fitted
    blob = model.to_bytes()
    assert blob[:2] == b"PK"  # a .keras file is a zip archive
    restored = StandardizedLSTM.from_bytes(blob)
    np.testing.assert_array_equal(restored.predict(data.X_val), model.predict(data.X_val))


@pytest.mark.slow
# Raised inside keras' own save (TensorFlow's __array__ vs numpy 2), not by the code under test.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_load_refuses_foreign_keras_file(tmp_path: Path) -> None:
    import keras

    foreign = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    path = tmp_path / "foreign.keras"
    foreign.save(path)
    with pytest.raises(ValueError, match="not a StandardizedLSTM"):
        StandardizedLSTM.load(path)


@pytest.mark.slow
def test_same_seed_gives_identical_losses(
    fitted: tuple[StandardizedLSTM, FitResult], data: LaggedData
) -> None:
    model, first = fitted
    again = StandardizedLSTM(input_dim=2, **SMALL)
    second = again.fit(data.X_train, data.y_train, data.X_val, data.y_val, **FIT)
    assert second.history == first.history
    np.testing.assert_array_equal(again.predict(data.X_val), model.predict(data.X_val))


@pytest.mark.slow
def test_a_kept_training_network_gives_the_numbers_of_a_new_one(data: LaggedData) -> None:
    # A fit trains a kept network of its architecture (no new graph to trace), started from the
    # fit's own seeded weights and dropout generators with a fresh optimizer.
    from brain_assets.lstm import trainers

    config = {**SMALL, "dropout_rate": 0.2, "use_bidirectional": True}

    def fit(seed: int, first_row: int) -> tuple[StandardizedLSTM, FitResult]:
        model = StandardizedLSTM(input_dim=2, **{**config, "seed": seed})
        rows = slice(first_row, None)
        return model, model.fit(
            data.X_train[rows], data.y_train[rows], data.X_val, data.y_val, **FIT
        )

    trainers.forget()
    new_model, new = fit(7, 0)
    other_model, _ = fit(11, 50)  # trains the kept network on other rows from another seed
    other_predictions = other_model.predict(data.X_val)
    kept_model, kept = fit(7, 0)
    assert kept.history == new.history
    np.testing.assert_array_equal(kept_model.predict(data.X_val), new_model.predict(data.X_val))
    # Each fitted model owns its weights: the fit after it left them alone.
    np.testing.assert_array_equal(other_model.predict(data.X_val), other_predictions)


@pytest.mark.slow
def test_early_stopping_restores_best_weights() -> None:
    # A target that is pure noise: the validation loss bottoms out early and then rises as the
    # network memorises the training rows, so early stopping has something to undo.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(260, 2))
    y = rng.normal(size=260)
    model = StandardizedLSTM(input_dim=2, **{**SMALL, "learning_rate": 0.05})
    result = model.fit(X[:160], y[:160], X[160:], y[160:], epochs=12, batch_size=8, patience=2)
    val_loss = result.history["val_loss"]
    assert 1 <= result.best_epoch <= result.epochs_run
    assert result.best_epoch == int(np.argmin(val_loss)) + 1
    assert result.epochs_run < 12, val_loss  # the noise target really triggered early stopping
    after = model.evaluate(X[160:], y[160:])
    assert after == pytest.approx(min(val_loss), rel=1e-4)
    if result.best_epoch < result.epochs_run:
        assert after != pytest.approx(val_loss[-1], rel=1e-4)


@pytest.mark.slow
def test_fit_on_3d_windows_and_pandas(data: LaggedData) -> None:
    def windows(rows: np.ndarray) -> np.ndarray:
        return np.stack([rows[i : i + SEQ] for i in range(len(rows) - SEQ + 1)])

    model = StandardizedLSTM(input_dim=2, **SMALL)
    result = model.fit(
        windows(data.X_train),
        pd.Series(data.y_train[SEQ - 1 :]),
        windows(data.X_val),
        data.y_val[SEQ - 1 :],
        epochs=2,
        batch_size=32,
    )
    assert result.n_train_windows == len(data.X_train) - SEQ + 1
    assert model.predict(windows(data.X_val)).shape == (len(data.X_val) - SEQ + 1,)


def scaler_config(metadata: dict[str, Any]) -> dict[str, Any]:
    """A ``config.json`` as a StandardizedLSTM's ``.keras`` holds it, cut to what matters."""
    return {"config": {"layers": [{"config": {}}, {"config": {"metadata": metadata}}]}}


def test_the_sequence_length_is_read_and_checked_without_keras() -> None:
    from brain_assets.lstm.model import _FORMAT_NAME, sequence_length_of

    settings = {"input_dim": 3, "lstm_units": 4, "num_layers": 1, "sequence_length": 6}
    good = {"format": _FORMAT_NAME, "format_version": 1, "config": settings}
    assert sequence_length_of(scaler_config(good)) == 6
    with pytest.raises(ValueError, match="newer format version 9"):
        sequence_length_of(scaler_config({**good, "format_version": 9}))
    with pytest.raises(ValueError, match="not usable"):
        sequence_length_of(scaler_config({**good, "config": {**settings, "unknown": 1}}))
    with pytest.raises(ValueError, match="sequence_length"):
        sequence_length_of(scaler_config({**good, "config": {**settings, "sequence_length": 1}}))
    with pytest.raises(ValueError, match="format metadata missing"):
        sequence_length_of(scaler_config({"format": "other"}))
