"""Input validation and sliding windows for :class:`~brain_assets.lstm.StandardizedLSTM`.

Pure numpy on purpose: every check here runs before tensorflow is imported, so a caller who passes
bad data learns it in milliseconds instead of after a multi-second framework start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# A feature whose training standard deviation falls below this is treated as constant: it is
# centred but divided by 1.0. Dividing by a tiny std instead would turn any later deviation of an
# "always constant" feature into an enormous input that saturates every LSTM gate.
STD_FLOOR = 1e-8


@dataclass(frozen=True)
class Scaler:
    """Per-column mean and standard deviation, fitted on training data only."""

    mean: np.ndarray
    std: np.ndarray

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Return ``(values - mean) / std`` in float64 (broadcast over the last axis)."""
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`."""
        return values * self.std + self.mean


def fit_scaler(values: np.ndarray) -> Scaler:
    """Fit a :class:`Scaler` over the first axis of a 2-D float array.

    Columns with a standard deviation below :data:`STD_FLOOR` get a std of 1.0 (see the constant's
    comment for why this beats clipping to the floor).
    """
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std < STD_FLOOR, 1.0, std)
    return Scaler(mean=np.asarray(mean, dtype=np.float64), std=np.asarray(std, dtype=np.float64))


def as_float_array(data: Any, name: str) -> np.ndarray:
    """Convert a numpy array, pandas DataFrame/Series or nested list to a float64 ndarray.

    Raises:
        ValueError: when the data is not numeric (the message names ``name``).
    """
    try:
        # Duck-typed pandas support keeps pandas out of this module's imports; na_value turns
        # pd.NA of nullable dtypes into NaN, which check_finite then reports.
        if hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):
            array = np.asarray(data.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, could not convert it to float: {exc}") from exc
    return array


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ValueError when ``array`` holds NaN or inf, saying how many and which kind."""
    n_nan = int(np.isnan(array).sum())
    n_inf = int(np.isinf(array).sum())
    if n_nan or n_inf:
        raise ValueError(
            f"{name} contains non-finite values: {n_nan} NaN and {n_inf} inf; "
            "impute or drop them before fitting or predicting"
        )


def validate_features(data: Any, name: str, input_dim: int, sequence_length: int) -> np.ndarray:
    """Validate a feature matrix (2-D rows) or a stack of windows (3-D) and return it as float64.

    Raises:
        ValueError: wrong number of dimensions, last dimension different from ``input_dim``,
            3-D windows whose length differs from ``sequence_length``, fewer rows than
            ``sequence_length`` (2-D), no windows at all (3-D), or NaN/inf values.
    """
    array = as_float_array(data, name)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (n_rows, input_dim) or 3-D (n_windows, sequence_length, "
            f"input_dim); got an array with shape {array.shape}"
        )
    if array.shape[-1] != input_dim:
        raise ValueError(
            f"{name} has {array.shape[-1]} features in its last dimension but the model was "
            f"built with input_dim={input_dim}"
        )
    if array.ndim == 2 and array.shape[0] < sequence_length:
        raise ValueError(
            f"{name} has {array.shape[0]} rows, fewer than sequence_length={sequence_length}: "
            "not even one full window can be built"
        )
    if array.ndim == 3:
        if array.shape[1] != sequence_length:
            raise ValueError(
                f"{name} holds windows of length {array.shape[1]} but the model uses "
                f"sequence_length={sequence_length}"
            )
        if array.shape[0] == 0:
            raise ValueError(f"{name} holds no windows")
    check_finite(array, name)
    return array


def validate_target(data: Any, name: str, n_rows: int, features_name: str) -> np.ndarray:
    """Validate a target vector of length ``n_rows`` and return it as 1-D float64.

    A single-column DataFrame or an ``(n, 1)`` array is accepted and flattened.

    Raises:
        ValueError: wrong shape, a length different from ``n_rows``, or NaN/inf values.
    """
    array = as_float_array(data, name)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one target per row); got shape {array.shape}")
    if array.shape[0] != n_rows:
        raise ValueError(
            f"{name} has length {array.shape[0]} but {features_name} has {n_rows} "
            "rows/windows: the lengths must match"
        )
    check_finite(array, name)
    return array


def n_windows(features: np.ndarray, sequence_length: int) -> int:
    """Number of windows that ``features`` (2-D rows or 3-D windows) yields."""
    if features.ndim == 3:
        return int(features.shape[0])
    return int(features.shape[0]) - sequence_length + 1


def sliding_windows(rows: np.ndarray, sequence_length: int) -> np.ndarray:
    """Read-only view of shape ``(n_rows - sequence_length + 1, sequence_length, n_features)``.

    Window ``i`` holds rows ``i .. i + sequence_length - 1`` in time order, so it *ends* at row
    ``i + sequence_length - 1`` and is paired with that row's target. It is a strided view (no
    copy): callers that need contiguous memory copy it in chunks.
    """
    view = np.lib.stride_tricks.sliding_window_view(rows, sequence_length, axis=0)
    # sliding_window_view puts the window axis last: (n_windows, n_features, sequence_length).
    return view.transpose(0, 2, 1)


def as_windows(features: np.ndarray, sequence_length: int) -> np.ndarray:
    """Windows for validated ``features``: a strided view for 2-D rows, the input itself for 3-D."""
    if features.ndim == 3:
        return features
    return sliding_windows(features, sequence_length)


def aligned_targets(target: np.ndarray, features: np.ndarray, sequence_length: int) -> np.ndarray:
    """Targets paired with :func:`as_windows` ``(features)``: drop the first rows for 2-D input."""
    if features.ndim == 3:
        return target
    return target[sequence_length - 1 :]
