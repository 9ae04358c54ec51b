"""SHAP values of a differentiable network by expected gradients, in batched gradient calls.

The attribution of input ``i`` of an explained window ``x`` is the expectation, over background
windows ``x'`` and ``a ~ U(0, 1)``, of ``(x_i - x'_i) * df/dx_i`` at ``x' + a (x - x')`` (expected
gradients, Erion et al. 2021): integrated gradients averaged over a background distribution, whose
attributions add up, in expectation, to ``f(x)`` minus the mean prediction over the background.
It is the estimator behind shap's ``GradientExplainer``; that one draws and differentiates one
explained window at a time in eager mode. Here all draws of many windows go through one gradient
call (six times faster at the retrain's size: bench/importance_tradeoff.py).

TensorFlow is imported on first use, never at import time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Points (explained windows x draws) per gradient call: a few MB of float64 at the retrain's
# window size, and few enough calls that the per-call overhead vanishes.
GRADIENT_BATCH = 4096


def expected_gradients(
    network: Any,
    explained: np.ndarray,
    background: np.ndarray,
    *,
    samples: int,
    seed: int,
    batch_size: int = GRADIENT_BATCH,
) -> np.ndarray:
    """Attributions shaped like ``explained``: one per input of every explained window.

    ``network`` is a Keras model on the TensorFlow backend whose (first) output is one prediction
    per input window and depends on that window only (no batch statistics). ``background`` holds
    the reference windows (same shape per window as ``explained``); each explained window gets
    ``samples`` draws of a background window and an interpolation point, from ``seed``.

    Raises:
        ValueError: for empty or mismatched inputs, or ``samples`` below 1.
    """
    explained = np.asarray(explained, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    if explained.ndim < 2 or len(explained) == 0:
        raise ValueError(f"explained must hold at least one window; got shape {explained.shape}")
    if len(background) == 0 or background.shape[1:] != explained.shape[1:]:
        raise ValueError(
            f"background windows {background.shape[1:]} must be shaped like the explained ones "
            f"{explained.shape[1:]}, and there must be at least one"
        )
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1; got {samples!r}")
    gradient = _gradient_function(network)
    rng = np.random.default_rng(seed)
    window_shape = explained.shape[1:]
    spread = (1,) * len(window_shape)
    per_call = max(1, batch_size // samples)
    # Drawn up front, so that the batch size changes how the work is split and not the result.
    picks = rng.integers(len(background), size=(len(explained), samples))
    steps = rng.uniform(size=(len(explained), samples, *spread))
    attributions = np.empty_like(explained)
    for first in range(0, len(explained), per_call):
        chosen = slice(first, first + per_call)
        block = explained[chosen]
        references = background[picks[chosen]]
        differences = block[:, None] - references
        points = (references + steps[chosen] * differences).reshape(-1, *window_shape)
        gradients = gradient(points).reshape(len(block), samples, *window_shape)
        attributions[chosen] = (gradients * differences).mean(axis=1)
    return attributions


def _gradient_function(network: Any) -> Any:
    """``points -> d prediction / d points`` as float64 numpy, on the TensorFlow backend."""
    from brain_assets.lstm.network import import_keras

    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "expected gradients need Keras' TensorFlow backend; "
            f"KERAS_BACKEND is {keras.backend.backend()!r}"
        )
    import tensorflow as tf

    def gradient(points: np.ndarray) -> np.ndarray:
        inputs = tf.convert_to_tensor(points, dtype=network.inputs[0].dtype)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = network(inputs, training=False)
            prediction = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
            # Each window's prediction depends on that window alone, so the gradient of the sum
            # is every prediction's gradient with respect to its own window.
            total = tf.reduce_sum(prediction)
        return np.asarray(tape.gradient(total, inputs), dtype=np.float64)

    return gradient
