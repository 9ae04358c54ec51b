"""Keras graph of :class:`~brain_assets.lstm.StandardizedLSTM`.

Keras (and through it tensorflow) is imported only inside the functions of this module, never at
import time: ``import brain_assets.lstm`` must stay cheap for the Dagster code location and the
``brain`` command. The custom layers are therefore defined on first use by :func:`layer_classes`
and registered with Keras' serialisation registry at that moment; :func:`load_network` calls it
before reading a ``.keras`` file so the registry is always populated when it is needed.

Two models share every trainable layer:

* the **training model** takes windows that numpy already standardised (float32) and returns the
  standardised target, so the loss and early stopping work on a unit-free scale;
* the **inference model** takes *raw* float64 windows, standardises them in-graph, and returns the
  prediction in the target's own units plus the attention weights per lag. It is the one saved, so
  a ``.keras`` file is self-contained: scaler statistics live in the configs of its first and last
  layers, and the estimator's constructor arguments ride in the first layer's ``metadata``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FEATURE_SCALER_NAME = "feature_scaler"
TARGET_SCALER_NAME = "target_scaler"
ATTENTION_NAME = "lag_attention"
PREDICTION_OUTPUT = "prediction"
ATTENTION_OUTPUT = "attention_weights"

LSTM_EXTRA_PACKAGES = ("tensorflow", "keras")
"""What the ``lstm`` extra installs (as import names); the core install has neither."""
LSTM_EXTRA_INSTALL = "pip install 'brain-assets[lstm]'"


class LSTMExtraMissingError(ModuleNotFoundError):
    """TensorFlow or Keras is not installed: the ``lstm`` extra was left out of this install."""

    def __init__(self, missing: str, doing: str = "the lstm model type") -> None:
        super().__init__(
            f"{doing} needs the `lstm` extra ({missing} is not installed): {LSTM_EXTRA_INSTALL}",
            name=missing,
        )


def lstm_extra_missing() -> str | None:
    """The first of TensorFlow and Keras that is not installed, without importing either (a
    look-up on ``sys.path``, microseconds); None when both are there.

    "Not installed" is a choice of the deployment (a core install, a machine TensorFlow has no
    wheel for): the retrain leaves the ``lstm`` out with one line. A TensorFlow that is installed
    but fails to load is another matter, reported by :func:`keras_import_error`.
    """
    for name in LSTM_EXTRA_PACKAGES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def _missing_extra(exc: BaseException) -> str | None:
    """The package of the ``lstm`` extra whose absence ``exc`` reports, if that is what it is."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        root = exc.name.split(".")[0]
        if root in LSTM_EXTRA_PACKAGES:
            return root
    return None


def import_keras(doing: str = "the lstm model type") -> Any:
    """Import and return ``keras`` on the TensorFlow backend (the caller's choice wins if set).

    Raises:
        LSTMExtraMissingError: keras or TensorFlow is not installed (a ModuleNotFoundError whose
            message names the ``lstm`` extra and how to install it).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import keras
    except ModuleNotFoundError as exc:
        if (missing := _missing_extra(exc)) is not None:
            raise LSTMExtraMissingError(missing, doing) from exc
        raise
    return keras


def keras_import_error() -> ImportError | OSError | None:
    """Why keras (and TensorFlow under it) cannot be imported in this process; None if it can.

    Only the import is tried: a missing package or a shared library that fails to load (a
    CUDA/cuDNN or glibc mismatch surfaces as ImportError, a library that ctypes cannot open as
    OSError) makes the ``lstm`` model type unavailable on this machine, which is a fact about
    the deployment and not about a model. Anything else raised here (an AttributeError from a
    mismatched keras/TensorFlow pair, say) propagates: it is a bug to see, not a type to skip.
    An import that failed is tried again on the next call, so a fixed environment recovers
    without a restart. A package that is not installed at all comes back as
    :class:`LSTMExtraMissingError`, whose message says how to install the ``lstm`` extra.
    """
    try:
        keras = import_keras()
        if keras.backend.backend() == "tensorflow":
            # keras imports TensorFlow lazily in places; the fit's seeding imports it for sure.
            import tensorflow  # noqa: F401
    except LSTMExtraMissingError as exc:
        return exc
    except (ImportError, OSError) as exc:
        if (missing := _missing_extra(exc)) is not None:
            return LSTMExtraMissingError(missing)
        return exc
    return None


@dataclass(frozen=True)
class LayerClasses:
    """The custom layer classes, created lazily because they subclass ``keras.layers.Layer``."""

    standardize: Any
    destandardize: Any
    attention: Any


@functools.cache
def layer_classes() -> LayerClasses:
    """Define and register the custom layers (once per process) and return them.

    Defining them inside a function is what keeps keras out of ``import brain_assets.lstm``;
    ``functools.cache`` keeps the registration idempotent, because registering a second class
    object under the same name would make saved files resolve to whichever came last.
    """
    keras = import_keras()
    register = keras.saving.register_keras_serializable(package="brain_assets")
    # Registered in this order, each once per process (see the docstring).
    standardize, destandardize = _scaler_layers(keras, register)
    return LayerClasses(
        standardize=standardize,
        destandardize=destandardize,
        attention=_attention_layer(keras, register),
    )


def _scaler_layers(keras: Any, register: Any) -> tuple[Any, Any]:
    """The layers that standardise the raw input and map the output back to the target's units.

    Their configs carry the scaler statistics, which is what makes a saved file self-contained.
    """
    ops = keras.ops

    @register
    class WindowStandardize(keras.layers.Layer):
        """``(x - mean) / std`` per feature, computed in float64 and emitted as float32.

        Works in float64 because raw features (prices, volumes) can be large numbers whose small
        moves float32 would round away before the subtraction. ``metadata`` is an opaque JSON
        dictionary stored verbatim in the config: it is how one ``.keras`` file carries the
        estimator's own settings without a side file.
        """

        def __init__(
            self,
            mean: list[float],
            std: list[float],
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            kwargs.setdefault("dtype", "float64")
            super().__init__(**kwargs)
            self.mean = [float(v) for v in mean]
            self.std = [float(v) for v in std]
            self.metadata = dict(metadata or {})

        def call(self, inputs: Any) -> Any:
            mean = ops.convert_to_tensor(np.asarray(self.mean), dtype="float64")
            std = ops.convert_to_tensor(np.asarray(self.std), dtype="float64")
            scaled = (ops.cast(inputs, "float64") - mean) / std
            return ops.cast(scaled, "float32")

        def compute_output_spec(self, inputs: Any) -> Any:
            return keras.KerasTensor(inputs.shape, dtype="float32")

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update({"mean": self.mean, "std": self.std, "metadata": self.metadata})
            return config

    @register
    class TargetDestandardize(keras.layers.Layer):
        """``y * std + mean`` in float64: maps the network's standardised output back to units."""

        def __init__(self, mean: float, std: float, **kwargs: Any) -> None:
            kwargs.setdefault("dtype", "float64")
            super().__init__(**kwargs)
            self.mean = float(mean)
            self.std = float(std)

        def call(self, inputs: Any) -> Any:
            return ops.cast(inputs, "float64") * self.std + self.mean

        def compute_output_spec(self, inputs: Any) -> Any:
            return keras.KerasTensor(inputs.shape, dtype="float64")

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update({"mean": self.mean, "std": self.std})
            return config

    return WindowStandardize, TargetDestandardize


def _attention_layer(keras: Any, register: Any) -> Any:
    """The attention over the window's lags, whose weights the model reports."""
    ops = keras.ops

    @register
    class LagAttention(keras.layers.Layer):
        """Additive (Bahdanau-style) attention over the time steps of one sequence.

        ``score_t = v . tanh(W h_t + b)``, ``alpha = softmax_t(score)``, ``context = sum_t
        alpha_t h_t``. There is no decoder state to attend from, so the query is a learned vector
        (``v``): the weights say how much each lag of the window contributed to the prediction.
        Returns ``[context (batch, features), weights (batch, time)]``.
        """

        def __init__(self, units: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = int(units)

        def build(self, input_shape: Any) -> None:
            features = int(input_shape[-1])
            self.w = self.add_weight(
                name="w", shape=(features, self.units), initializer="glorot_uniform"
            )
            self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
            self.v = self.add_weight(name="v", shape=(self.units, 1), initializer="glorot_uniform")

        def call(self, inputs: Any) -> list[Any]:
            hidden = ops.tanh(ops.matmul(inputs, self.w) + self.b)
            scores = ops.squeeze(ops.matmul(hidden, self.v), axis=-1)
            weights = ops.softmax(scores, axis=-1)
            context = ops.sum(inputs * ops.expand_dims(weights, axis=-1), axis=1)
            return [context, weights]

        def compute_output_spec(self, inputs: Any) -> list[Any]:
            batch, time, features = inputs.shape
            return [
                keras.KerasTensor((batch, features), dtype=self.compute_dtype),
                keras.KerasTensor((batch, time), dtype=self.compute_dtype),
            ]

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update({"units": self.units})
            return config

    return LagAttention


@dataclass(frozen=True)
class NetworkSpec:
    """Everything :func:`build_networks` needs; all fields are plain Python values."""

    input_dim: int
    sequence_length: int
    lstm_units: int
    num_layers: int
    dropout_rate: float
    use_bidirectional: bool
    learning_rate: float
    feature_mean: list[float]
    feature_std: list[float]
    target_mean: float
    target_std: float
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Networks:
    """The compiled training model and the (uncompiled) inference model that shares its layers."""

    training: Any
    inference: Any


def build_networks(spec: NetworkSpec) -> Networks:
    """Build both models. The caller seeds Keras first: layer initialisers draw from that seed."""
    keras = import_keras()
    layers = keras.layers
    classes = layer_classes()

    # Shared trainable stack, applied to two different inputs below.
    recurrent = []
    for index in range(spec.num_layers):
        lstm = layers.LSTM(
            spec.lstm_units,
            return_sequences=True,
            dropout=spec.dropout_rate,
            name=f"lstm_{index}",
        )
        if spec.use_bidirectional:
            lstm = layers.Bidirectional(lstm, name=f"bidirectional_lstm_{index}")
        recurrent.append(lstm)
    attention = classes.attention(units=spec.lstm_units, name=ATTENTION_NAME)
    context_dropout = layers.Dropout(spec.dropout_rate, name="context_dropout")
    head = layers.Dense(1, name="head")

    def core(scaled: Any) -> tuple[Any, Any]:
        hidden = scaled
        for layer in recurrent:
            hidden = layer(hidden)
        context, weights = attention(hidden)
        return head(context_dropout(context)), weights

    shape = (spec.sequence_length, spec.input_dim)
    scaled_input = keras.Input(shape=shape, dtype="float32", name="scaled_windows")
    scaled_prediction, _ = core(scaled_input)
    training = keras.Model(scaled_input, scaled_prediction, name="standardized_lstm_training")
    training.compile(
        # clipnorm guards the recurrent stack against the occasional exploding gradient on
        # heavy-tailed market data; it does not change anything when gradients are tame.
        optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate, clipnorm=1.0),
        loss="mse",
    )

    raw_input = keras.Input(shape=shape, dtype="float64", name="windows")
    standardized = classes.standardize(
        mean=spec.feature_mean,
        std=spec.feature_std,
        metadata=spec.metadata,
        name=FEATURE_SCALER_NAME,
    )(raw_input)
    prediction, weights = core(standardized)
    prediction = classes.destandardize(
        mean=spec.target_mean, std=spec.target_std, name=TARGET_SCALER_NAME
    )(prediction)
    weights = layers.Identity(name=ATTENTION_OUTPUT)(weights)
    prediction = layers.Identity(name=PREDICTION_OUTPUT, dtype="float64")(prediction)
    inference = keras.Model(raw_input, [prediction, weights], name="standardized_lstm")
    return Networks(training=training, inference=inference)


def save_network(model: Any, path: Path) -> None:
    """Write the inference model to ``path`` in the native ``.keras`` zip format."""
    with warnings.catch_warnings():
        # Keras converts TensorFlow variables with np.array(); numpy 2 then complains that
        # TensorFlow's __array__ lacks a copy= keyword. Harmless, not actionable by our callers,
        # and it would turn into an error for anyone running with -W error.
        warnings.filterwarnings(
            "ignore",
            message="__array__ implementation doesn't accept a copy keyword",
            category=DeprecationWarning,
        )
        model.save(path)


def load_network(path: Path) -> Any:
    """Read an inference model written by :func:`save_network`.

    ``safe_mode`` stays on (no lambda deserialisation); ``compile=False`` because the inference
    model is never trained directly.

    Raises:
        LSTMExtraMissingError: TensorFlow or Keras is not installed here (the ``lstm`` extra).
    """
    keras = import_keras("loading an lstm model")
    layer_classes()
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def scaler_configs(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the configs of the feature and target scaler layers of an inference model."""
    return (
        model.get_layer(FEATURE_SCALER_NAME).get_config(),
        model.get_layer(TARGET_SCALER_NAME).get_config(),
    )
