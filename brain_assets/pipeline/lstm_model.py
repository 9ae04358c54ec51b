"""The retrain's ``lstm`` model type: walk-forward fit, context rows, attention and SHAP.

A ``StandardizedLSTM`` predicts row ``t`` from the window of rows ``t - sequence_length + 1 .. t``,
so predicting a segment needs the ``sequence_length - 1`` rows before it. Those rows are the past
(the end of the previous segment and the embargo): their features were known before the first bar
of the segment, and their targets are never used. :class:`ContextualModel` carries them, so the
evaluation and importance stages call ``predict(X)`` and get one prediction per row of ``X`` for
every model type alike.

Nothing here imports tensorflow at import time; ``StandardizedLSTM`` does so on first use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.importance.analyzer import spread_rows
from brain_assets.lstm.attribution import expected_gradients
from brain_assets.lstm.context import context_start
from brain_assets.lstm.model import FitResult, StandardizedLSTM
from brain_assets.lstm.windows import sliding_windows
from brain_assets.pipeline.settings import LSTMSettings
from brain_assets.training.split import WalkForwardSplit

# Background windows of the LSTM's expected gradients: the expectation they integrate over. Like
# the analyzer's model-agnostic fallback, a small sample keeps the cost linear in rows explained.
SHAP_BACKGROUND_WINDOWS = 50


@dataclass(frozen=True)
class LSTMFit:
    model: StandardizedLSTM
    result: FitResult
    seconds: float
    """Wall time of ``fit`` (TensorFlow's import on a process's first fit included)."""
    hyperparameters: dict[str, Any]
    validation_end: pd.Timestamp
    """Last row whose target steered the fit (early stopping): the model's data ends here."""


def fit_lstm(
    X: pd.DataFrame, y: pd.Series, split: WalkForwardSplit, config: LSTMSettings, seed: int
) -> LSTMFit:
    """Fit on the training segment, early-stopping on the validation segment.

    The validation windows get their context from the rows before the validation segment (the
    embargo and the end of the training segment), so every validation target is scored.
    """
    model = StandardizedLSTM(
        input_dim=X.shape[1],
        lstm_units=config.units,
        num_layers=config.layers,
        dropout_rate=config.dropout,
        use_bidirectional=config.bidirectional,
        sequence_length=config.sequence_length,
        learning_rate=config.learning_rate,
        seed=seed,
    )
    validation_from = context_start(split.validation.start, model)
    X_val = X.iloc[validation_from : split.validation.stop]
    y_val = y.iloc[validation_from : split.validation.stop]
    started = time.perf_counter()
    result = model.fit(
        X.iloc[split.train].to_numpy(dtype=np.float64),
        y.iloc[split.train].to_numpy(dtype=np.float64),
        X_val.to_numpy(dtype=np.float64),
        y_val.to_numpy(dtype=np.float64),
        **config.fit_settings(),
    )
    seconds = time.perf_counter() - started
    hyperparameters: dict[str, Any] = {
        **model.get_config(),
        **config.fit_settings(),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "best_val_loss": float(min(result.history["val_loss"])),
        "train_windows": result.n_train_windows,
    }
    return LSTMFit(
        model=model,
        result=result,
        seconds=seconds,
        hyperparameters=hyperparameters,
        validation_end=X.index[split.validation.stop - 1],
    )


def attention_by_lag(model: StandardizedLSTM, rows_with_context: pd.DataFrame) -> list[float]:
    """Mean attention weight of each lag over every window ending in the predicted rows.

    Entry ``k`` is lag ``k``: the row ``k`` bars before the predicted one (entry 0 is the predicted
    row itself). ``rows_with_context`` is the predicted rows preceded by their context rows, so
    there is one window per predicted row. The entries sum to 1.
    """
    weights = model.get_attention_weights(rows_with_context.to_numpy(dtype=np.float64))
    # Column j of a window is the row sequence_length - 1 - j bars before its last row.
    return [float(value) for value in weights.mean(axis=0)[::-1]]


def attention_metrics(attention_mean: list[float]) -> dict[str, float]:
    """``{"attention_lag_0": w0, ...}``: the mean attention per lag as storable metrics."""
    return {f"attention_lag_{lag}": float(value) for lag, value in enumerate(attention_mean)}


def lstm_shap_importances(
    model: StandardizedLSTM,
    rows_with_context: pd.DataFrame,
    *,
    explained_rows: int,
    samples: int,
    seed: int,
) -> np.ndarray:
    """Mean |SHAP value| per feature over ``explained_rows`` windows evenly spaced over the rows
    (all of them when there are fewer).

    Expected gradients (:func:`~brain_assets.lstm.attribution.expected_gradients`, the estimator
    of shap's GradientExplainer) attribute the prediction to every (lag, feature) input of a
    window; a feature's attribution is the sum over its lags, so the result is on the same footing
    as the row-wise models' SHAP: target units, one number per feature. (shap's DeepExplainer is
    not an option: it has no gradient for the TensorListStack op of Keras 3's LSTM.)
    """
    explained, background = shap_windows(model, rows_with_context, explained_rows, seed)
    per_input = expected_gradients(
        model.inference_model, explained, background, samples=samples, seed=seed
    )
    return np.asarray(np.abs(per_input.sum(axis=1)).mean(axis=0))


def shap_windows(
    model: StandardizedLSTM, rows_with_context: pd.DataFrame, explained_rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(explained, background)`` windows of :func:`lstm_shap_importances`: ``explained_rows``
    windows evenly spaced over the rows, and a seeded sample of
    ``SHAP_BACKGROUND_WINDOWS`` of them as the background."""
    windows = np.ascontiguousarray(
        sliding_windows(rows_with_context.to_numpy(dtype=np.float64), model.sequence_length)
    )
    rng = np.random.default_rng(seed)
    background_size = min(SHAP_BACKGROUND_WINDOWS, len(windows))
    background = windows[np.sort(rng.choice(len(windows), background_size, replace=False))]
    return spread_rows(windows, explained_rows), background
