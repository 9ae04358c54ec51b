"""``StandardizedLSTM``: the Brain Library's reference sequence model.

Stacked (bidirectional) LSTMs over a window of past feature rows, additive attention over the lags,
and one linear output. Features and target are standardised with statistics from the training data
only, and those statistics travel inside the single ``.keras`` file the model saves to.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import brain_assets.lstm.trainers as trainers
from brain_assets.lstm.epochs import run_epochs
from brain_assets.lstm.network import (
    NetworkSpec,
    build_networks,
    import_keras,
    load_network,
    save_network,
    scaler_configs,
)
from brain_assets.lstm.windows import (
    Scaler,
    aligned_targets,
    as_windows,
    fit_scaler,
    n_windows,
    validate_features,
    validate_target,
)

# Identifies files written by this class, so load() can refuse a foreign .keras model with a clear
# message instead of failing later on a missing layer.
_FORMAT_NAME = "brain_assets.StandardizedLSTM"
_FORMAT_VERSION = 1

# Windows per inference call. Windows are materialised (copied out of the strided view) one chunk
# at a time, so predicting over a long history never holds every window in memory at once.
_PREDICT_CHUNK = 4096


@dataclass(frozen=True)
class FitResult:
    """What one call of :meth:`StandardizedLSTM.fit` did.

    Attributes:
        history: ``{"loss": [...], "val_loss": [...]}``, one float per epoch run. Both are mean
            squared errors on the *standardised* target (unit-free), like :meth:`~StandardizedLSTM
            .evaluate`.
        best_epoch: 1-based epoch whose weights are kept: the lowest ``val_loss``, the first of
            equal ones (a NaN first epoch is kept, as Keras' early stopping does).
        epochs_run: epochs actually run (fewer than asked for when early stopping fired).
        train_seconds: wall-clock seconds spent training (validation passes included).
        samples_per_second: training windows processed per second, ``n_train_windows *
            epochs_run / train_seconds``.
        n_train_windows: number of training windows (samples) per epoch.
    """

    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    train_seconds: float
    samples_per_second: float
    n_train_windows: int = field(default=0)


def _check_int(name: str, value: Any, minimum: int) -> int:
    # bool is an int subclass; True as "lstm_units" is a bug on the caller's side, not 1.
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class StandardizedLSTM:
    """LSTM regressor over sliding windows with attention over the lags.

    The window ending at row ``t`` (rows ``t - sequence_length + 1 .. t``) predicts ``y[t]``.

    Args:
        input_dim: number of features per row.
        lstm_units: units per LSTM (per direction when bidirectional).
        num_layers: stacked LSTM layers, each returning its full sequence.
        dropout_rate: input dropout of every LSTM and dropout on the attention context,
            in ``[0, 1)``.
        use_bidirectional: wrap each LSTM in ``Bidirectional``.
        sequence_length: rows per window (lags seen by the model), at least 2.
        learning_rate: Adam learning rate.
        seed: seeds Keras, numpy, Python and TensorFlow at the start of every fit, and op
            determinism is switched on, so two fits with the same seed and data give identical
            losses on CPU.

    Raises:
        ValueError: for an argument outside its range (the message names it).
    """

    def __init__(
        self,
        input_dim: int,
        lstm_units: int = 128,
        num_layers: int = 2,
        dropout_rate: float = 0.2,
        use_bidirectional: bool = True,
        sequence_length: int = 24,
        learning_rate: float = 1e-3,
        seed: int = 42,
    ) -> None:
        self.input_dim = _check_int("input_dim", input_dim, 1)
        self.lstm_units = _check_int("lstm_units", lstm_units, 1)
        self.num_layers = _check_int("num_layers", num_layers, 1)
        self.sequence_length = _check_int("sequence_length", sequence_length, 2)
        self.seed = _check_int("seed", seed, 0)
        try:
            dropout = float(dropout_rate)
            rate = float(learning_rate)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"dropout_rate and learning_rate must be numbers: {exc}") from exc
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
        if not (math.isfinite(rate) and rate > 0.0):
            raise ValueError(
                f"learning_rate must be a positive finite number, got {learning_rate!r}"
            )
        if not isinstance(use_bidirectional, bool | np.bool_):
            raise ValueError(f"use_bidirectional must be a bool, got {use_bidirectional!r}")
        self.dropout_rate = dropout
        self.learning_rate = rate
        self.use_bidirectional = bool(use_bidirectional)

        self._inference_model: Any = None
        self._compiled_inference: tuple[Any, Any] | None = None
        self._feature_scaler: Scaler | None = None
        self._target_scaler: Scaler | None = None

    # ------------------------------------------------------------------ configuration

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (``StandardizedLSTM(**config)``)."""
        return {
            "input_dim": self.input_dim,
            "lstm_units": self.lstm_units,
            "num_layers": self.num_layers,
            "dropout_rate": self.dropout_rate,
            "use_bidirectional": self.use_bidirectional,
            "sequence_length": self.sequence_length,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
        }

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has produced a usable network."""
        return self._inference_model is not None

    @property
    def inference_model(self) -> Any:
        """The Keras model: raw float64 windows in, ``[prediction, attention_weights]`` out.

        Raises:
            RuntimeError: before :meth:`fit` or :meth:`load`.
        """
        self._require_fitted()
        return self._inference_model

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"StandardizedLSTM({args})"

    # ------------------------------------------------------------------ training

    def fit(
        self,
        X_train: Any,
        y_train: Any,
        X_val: Any,
        y_val: Any,
        epochs: int = 50,
        batch_size: int = 64,
        patience: int = 5,
        verbose: int = 0,
    ) -> FitResult:
        """Train from scratch, early-stopping on the validation loss and keeping the best weights.

        ``X_*`` is either a 2-D feature matrix ``(n_rows, input_dim)`` with ``y_*`` of length
        ``n_rows`` (windows are built here; the first ``sequence_length - 1`` targets have no full
        window and are unused), or 3-D windows ``(n_windows, sequence_length, input_dim)`` with
        ``y_*`` of length ``n_windows``. numpy arrays and pandas DataFrames/Series are accepted.
        Validation rows get no context from the end of the training rows: pass overlapping rows or
        3-D windows if the first validation targets matter.

        Scalers are fitted on the training data only. Every call rebuilds and re-seeds the network,
        so refitting an instance is the same as fitting a fresh one.

        Raises:
            ValueError: wrong ``input_dim``, NaN/inf, fewer rows than ``sequence_length``,
                mismatched lengths of X and y, or bad ``epochs``/``batch_size``/``patience``.
        """
        epochs = _check_int("epochs", epochs, 1)
        batch_size = _check_int("batch_size", batch_size, 1)
        patience = _check_int("patience", patience, 0)
        train_x, train_y = self._validated_pair(X_train, y_train, "X_train", "y_train")
        val_x, val_y = self._validated_pair(X_val, y_val, "X_val", "y_val")

        feature_scaler = fit_scaler(train_x.reshape(-1, self.input_dim))
        target_scaler = fit_scaler(train_y.reshape(-1, 1))
        train_windows = self._scaled_windows(train_x, feature_scaler)
        val_windows = self._scaled_windows(val_x, feature_scaler)
        train_target = target_scaler.transform(train_y.reshape(-1, 1)).astype(np.float32)
        val_target = target_scaler.transform(val_y.reshape(-1, 1)).astype(np.float32)

        spec = self._network_spec(feature_scaler, target_scaler)
        trainer = trainers.take(spec)
        self._seeded_keras()
        networks = build_networks(spec)
        trainers.start_from(trainer, networks.training)
        started = time.perf_counter()
        epochs_done = run_epochs(
            trainer,
            train_windows,
            train_target,
            val_windows,
            val_target,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            seed=self.seed,
            verbose=verbose,
        )
        train_seconds = time.perf_counter() - started
        trainers.copy_back(trainer, networks.training)
        trainers.give_back(spec, trainer)

        self._inference_model = networks.inference
        self._feature_scaler = feature_scaler
        self._target_scaler = target_scaler

        epochs_run = len(epochs_done.history["loss"])
        n_train = int(train_windows.shape[0])
        return FitResult(
            history=epochs_done.history,
            best_epoch=epochs_done.best_epoch,
            epochs_run=epochs_run,
            train_seconds=train_seconds,
            samples_per_second=n_train * epochs_run / train_seconds if train_seconds > 0 else 0.0,
            n_train_windows=n_train,
        )

    # ------------------------------------------------------------------ inference

    def predict(self, X: Any) -> np.ndarray:
        """Predict the target, in its original units, as a float64 array.

        For 2-D input ``(n_rows, input_dim)`` the result has length ``n_rows`` and is aligned to
        the input rows: entry ``t`` is the prediction of the window ending at row ``t``. **The first
        ``sequence_length - 1`` entries are NaN**, because those rows have no full window behind
        them. For 3-D input ``(n_windows, sequence_length, input_dim)`` the result has one entry per
        window and no NaN.

        Raises:
            RuntimeError: before :meth:`fit` or :meth:`load`.
            ValueError: wrong ``input_dim``, NaN/inf, or fewer rows than ``sequence_length``.
        """
        self._require_fitted()
        features = validate_features(X, "X", self.input_dim, self.sequence_length)
        predictions, _ = self._run_inference(features, want_attention=False)
        if features.ndim == 3:
            return predictions
        padded = np.full(features.shape[0], np.nan, dtype=np.float64)
        padded[self.sequence_length - 1 :] = predictions
        return padded

    def get_attention_weights(self, X: Any) -> np.ndarray:
        """Attention weight of every lag of every window, shape ``(n_windows, sequence_length)``.

        Each row is a softmax over the window's time steps (sums to 1); column ``j`` is the row
        ``sequence_length - 1 - j`` steps before the window's last row. For 2-D input there are
        ``n_rows - sequence_length + 1`` windows, in row order (window ``i`` ends at row ``i +
        sequence_length - 1``).

        Raises:
            RuntimeError: before :meth:`fit` or :meth:`load`.
            ValueError: as for :meth:`predict`.
        """
        self._require_fitted()
        features = validate_features(X, "X", self.input_dim, self.sequence_length)
        _, weights = self._run_inference(features, want_attention=True)
        return weights

    def evaluate(self, X: Any, y: Any) -> float:
        """Mean squared error on the standardised target: the units of ``FitResult.history``.

        Raises:
            RuntimeError: before :meth:`fit` or :meth:`load`.
            ValueError: as for :meth:`fit`.
        """
        self._require_fitted()
        features, target = self._validated_pair(X, y, "X", "y")
        predictions, _ = self._run_inference(features, want_attention=False)
        assert self._target_scaler is not None  # set together with the model
        error = self._target_scaler.transform(predictions) - self._target_scaler.transform(target)
        return float(np.mean(error**2))

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write the fitted model to one native ``.keras`` file (scalers and config included).

        Raises:
            ValueError: when ``path`` does not end with ``.keras``.
            RuntimeError: before :meth:`fit`.
        """
        target = Path(path)
        if target.suffix != ".keras":
            raise ValueError(f"path must end with .keras (native Keras format), got {str(path)!r}")
        self._require_fitted()
        save_network(self._inference_model, target)

    @classmethod
    def load(cls, path: str | Path) -> StandardizedLSTM:
        """Read a model written by :meth:`save`; its predictions are identical to the original's.

        Raises:
            ValueError: when ``path`` does not end with ``.keras`` or is not a StandardizedLSTM
                file.
            FileNotFoundError: when ``path`` does not exist.
        """
        source = Path(path)
        if source.suffix != ".keras":
            raise ValueError(f"path must end with .keras (native Keras format), got {str(path)!r}")
        if not source.is_file():
            raise FileNotFoundError(f"no such model file: {source}")
        model = load_network(source)
        try:
            feature_config, target_config = scaler_configs(model)
        except ValueError as exc:
            raise ValueError(f"{source} is not a StandardizedLSTM file: {exc}") from exc
        metadata = feature_config.get("metadata") or {}
        if metadata.get("format") != _FORMAT_NAME:
            raise ValueError(f"{source} is not a StandardizedLSTM file (format metadata missing)")
        if int(metadata.get("format_version", -1)) > _FORMAT_VERSION:
            raise ValueError(
                f"{source} was written by a newer format version {metadata['format_version']}; "
                f"this code reads up to {_FORMAT_VERSION}"
            )
        instance = cls(**metadata["config"])
        instance._inference_model = model
        instance._feature_scaler = Scaler(
            mean=np.asarray(feature_config["mean"], dtype=np.float64),
            std=np.asarray(feature_config["std"], dtype=np.float64),
        )
        instance._target_scaler = Scaler(
            mean=np.asarray([target_config["mean"]], dtype=np.float64),
            std=np.asarray([target_config["std"]], dtype=np.float64),
        )
        return instance

    def to_bytes(self) -> bytes:
        """The ``.keras`` file as bytes, for storing the artifact in a database column.

        The archive records its save time, so two calls give different bytes for the same model;
        hash the bytes you store, not the model.
        """
        self._require_fitted()
        with tempfile.TemporaryDirectory(prefix="brain_lstm_") as folder:
            path = Path(folder) / "model.keras"
            self.save(path)
            return path.read_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> StandardizedLSTM:
        """Rebuild a model from :meth:`to_bytes` output.

        Raises:
            ValueError: when ``data`` is empty or not a StandardizedLSTM ``.keras`` archive.
        """
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
            raise ValueError("data must be the non-empty bytes of a .keras archive")
        with tempfile.TemporaryDirectory(prefix="brain_lstm_") as folder:
            path = Path(folder) / "model.keras"
            path.write_bytes(bytes(data))
            return cls.load(path)

    # ------------------------------------------------------------------ internals

    def _require_fitted(self) -> None:
        if self._inference_model is None:
            raise RuntimeError("StandardizedLSTM is not fitted: call fit() or load() first")

    def _validated_pair(
        self, X: Any, y: Any, x_name: str, y_name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validated features (2-D or 3-D) and the targets aligned to their windows."""
        features = validate_features(X, x_name, self.input_dim, self.sequence_length)
        target = validate_target(y, y_name, int(features.shape[0]), x_name)
        return features, aligned_targets(target, features, self.sequence_length)

    def _scaled_windows(self, features: np.ndarray, scaler: Scaler) -> np.ndarray:
        # Scale the rows before windowing (each row once, not sequence_length times), then
        # materialise the windows as float32, the dtype the training model consumes.
        scaled = scaler.transform(features)
        return np.ascontiguousarray(as_windows(scaled, self.sequence_length), dtype=np.float32)

    def _run_inference(
        self, features: np.ndarray, want_attention: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the inference model chunk by chunk; returns (predictions, attention or empty)."""
        windows = as_windows(features, self.sequence_length)
        total = n_windows(features, self.sequence_length)
        predictions = np.empty(total, dtype=np.float64)
        weights = np.empty((total, self.sequence_length) if want_attention else (0, 0))
        call = self._inference_call()
        for start in range(0, total, _PREDICT_CHUNK):
            stop = min(start + _PREDICT_CHUNK, total)
            chunk = np.ascontiguousarray(windows[start:stop], dtype=np.float64)
            outputs = call(chunk)
            predictions[start:stop] = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
            if want_attention:
                weights[start:stop] = np.asarray(outputs[1], dtype=np.float64)
        return predictions, weights

    def _inference_call(self) -> Any:
        """``windows -> [predictions, attention]`` for the current inference model.

        On TensorFlow, one graph function per model whose batch dimension is unknown: traced once,
        whatever the batch sizes that follow. Keras' ``predict_on_batch`` traces again for a new
        batch shape, which cost about 0.2 s per fitted or loaded model in each stage that predicts
        (a permutation importance sends batches of several sizes).
        """
        model = self._inference_model
        cached = self._compiled_inference
        if cached is not None and cached[0] is model:
            return cached[1]
        if import_keras().backend.backend() != "tensorflow":
            call = model.predict_on_batch
        else:
            import tensorflow as tf

            spec = tf.TensorSpec((None, self.sequence_length, self.input_dim), tf.float64)
            graph = tf.function(
                lambda windows: model(windows, training=False), input_signature=[spec]
            )

            def call(chunk: np.ndarray) -> list[np.ndarray]:
                return [np.asarray(output) for output in graph(tf.constant(chunk))]

        self._compiled_inference = (model, call)
        return call

    def _network_spec(self, features: Scaler, target: Scaler) -> NetworkSpec:
        return NetworkSpec(
            input_dim=self.input_dim,
            sequence_length=self.sequence_length,
            lstm_units=self.lstm_units,
            num_layers=self.num_layers,
            dropout_rate=self.dropout_rate,
            use_bidirectional=self.use_bidirectional,
            learning_rate=self.learning_rate,
            feature_mean=features.mean.tolist(),
            feature_std=features.std.tolist(),
            target_mean=float(target.mean[0]),
            target_std=float(target.std[0]),
            metadata={
                "format": _FORMAT_NAME,
                "format_version": _FORMAT_VERSION,
                "config": self.get_config(),
            },
        )

    def _seeded_keras(self) -> Any:
        """Import keras, seed every generator and make TensorFlow ops deterministic."""
        keras = import_keras()
        keras.utils.set_random_seed(self.seed)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # Process-wide and sticky by design: without it, CPU reductions may reorder across
            # threads and two fits with the same seed drift apart in the last bits.
            tf.config.experimental.enable_op_determinism()
        return keras


def sequence_length_of(config: Any) -> int:
    """``sequence_length`` of the StandardizedLSTM whose ``.keras`` ``config.json`` is
    ``config`` (parsed), from the metadata its feature scaler carries, checked as
    :meth:`StandardizedLSTM.load` checks it (format, format version, the model's settings),
    without Keras; a ValueError naming what is wrong otherwise."""
    layers = config.get("config", {}).get("layers", []) if isinstance(config, dict) else []
    for layer in layers if isinstance(layers, list) else []:
        metadata = (layer.get("config") or {}).get("metadata") if isinstance(layer, dict) else None
        if not isinstance(metadata, dict) or metadata.get("format") != _FORMAT_NAME:
            continue
        try:
            if int(metadata.get("format_version", -1)) > _FORMAT_VERSION:
                raise ValueError(
                    f"written by a newer format version {metadata['format_version']}; this code "
                    f"reads up to {_FORMAT_VERSION}"
                )
            return StandardizedLSTM(**metadata["config"]).sequence_length
        except (KeyError, TypeError) as exc:
            raise ValueError(f"StandardizedLSTM metadata is not usable: {exc!r}") from exc
    raise ValueError("not a StandardizedLSTM file (format metadata missing)")
