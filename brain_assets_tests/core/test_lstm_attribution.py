"""Expected gradients (the LSTM's SHAP values) against closed forms and against shap's own
GradientExplainer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from brain_assets.lstm.attribution import expected_gradients

pytest.importorskip("tensorflow")

LAGS, FEATURES = 4, 3


def _keras() -> Any:
    from brain_assets.lstm.network import import_keras

    return import_keras()


def _linear_network(weights: np.ndarray, bias: float) -> Any:
    keras = _keras()
    inputs = keras.Input(shape=(LAGS, FEATURES), dtype="float64")
    flat = keras.layers.Flatten(dtype="float64")(inputs)
    dense = keras.layers.Dense(1, dtype="float64")
    output = dense(flat)
    dense.set_weights([weights.reshape(-1, 1), np.array([bias])])
    return keras.Model(inputs, output)


def _smooth_network(seed: int = 3) -> Any:
    keras = _keras()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(LAGS, FEATURES), dtype="float64")
    hidden = keras.layers.Dense(8, activation="tanh", dtype="float64")(inputs)
    flat = keras.layers.Flatten(dtype="float64")(hidden)
    output = keras.layers.Dense(1, dtype="float64")(flat)
    return keras.Model(inputs, [output, hidden])  # a second output, as the LSTM's attention


def test_a_linear_network_gets_weight_times_distance_from_a_single_reference() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=LAGS * FEATURES)
    network = _linear_network(weights, bias=0.7)
    explained = rng.normal(size=(5, LAGS, FEATURES))
    reference = rng.normal(size=(1, LAGS, FEATURES))
    values = expected_gradients(network, explained, reference, samples=3, seed=1)
    expected = weights.reshape(LAGS, FEATURES) * (explained - reference)
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-12)


def test_attributions_add_up_to_the_prediction_minus_the_reference() -> None:
    # Completeness of integrated gradients, which expected gradients average: with one reference
    # the sum over inputs converges to f(x) - f(reference) as the draws of the path point grow.
    network = _smooth_network()
    rng = np.random.default_rng(1)
    explained = rng.normal(size=(6, LAGS, FEATURES))
    reference = rng.normal(size=(1, LAGS, FEATURES))
    values = expected_gradients(network, explained, reference, samples=4000, seed=2)
    predict = lambda x: np.asarray(network(x)[0], dtype=float).ravel()  # noqa: E731
    gap = predict(explained) - predict(reference)[0]
    np.testing.assert_allclose(values.sum(axis=(1, 2)), gap, atol=0.02 * np.abs(gap).max())


def test_batches_split_the_same_draws() -> None:
    network = _smooth_network()
    rng = np.random.default_rng(2)
    explained = rng.normal(size=(7, LAGS, FEATURES))
    background = rng.normal(size=(5, LAGS, FEATURES))
    whole = expected_gradients(network, explained, background, samples=6, seed=4)
    # batch_size 12 -> two windows' draws per call; the batch size must not change the result.
    again = expected_gradients(network, explained, background, samples=6, seed=4, batch_size=12)
    different_seed = expected_gradients(network, explained, background, samples=6, seed=5)
    assert whole.shape == explained.shape
    np.testing.assert_allclose(again, whole, rtol=1e-12)
    assert not np.allclose(different_seed, whole)


def test_agrees_with_shaps_gradient_explainer() -> None:
    shap = pytest.importorskip("shap")
    keras = _keras()
    network = _smooth_network(seed=5)
    prediction_only = keras.Model(network.inputs, network.outputs[0])
    rng = np.random.default_rng(3)
    explained = rng.normal(size=(8, LAGS, FEATURES))
    background = rng.normal(size=(20, LAGS, FEATURES))
    ours = expected_gradients(network, explained, background, samples=3000, seed=6)
    state = np.random.get_state()
    try:
        theirs = shap.GradientExplainer(prediction_only, background, batch_size=3000).shap_values(
            explained, nsamples=3000, rseed=7
        )
    finally:
        np.random.set_state(state)
    theirs = np.asarray(theirs, dtype=float).reshape(explained.shape)
    # Two Monte Carlo estimates of one expectation: equal up to sampling noise.
    scale = np.abs(theirs).mean()
    assert np.abs(ours - theirs).mean() < 0.1 * scale
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.98


@pytest.mark.parametrize(
    ("explained_shape", "background_shape", "samples", "message"),
    [
        ((0, LAGS, FEATURES), (2, LAGS, FEATURES), 2, "explained must hold"),
        ((2, LAGS, FEATURES), (2, LAGS, FEATURES + 1), 2, "shaped like the explained"),
        ((2, LAGS, FEATURES), (0, LAGS, FEATURES), 2, "at least one"),
        ((2, LAGS, FEATURES), (2, LAGS, FEATURES), 0, "samples must be"),
    ],
)
def test_bad_inputs_are_refused_before_any_work(
    explained_shape: tuple[int, ...],
    background_shape: tuple[int, ...],
    samples: int,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        expected_gradients(
            object(), np.zeros(explained_shape), np.zeros(background_shape), samples=samples, seed=0
        )
