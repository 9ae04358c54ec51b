"""The rows of history a sequence model reads before the first row it predicts, and a wrapper that
lets row-wise tooling (metrics, permutation importance, the predictor) call it one row at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from brain_assets.lstm.model import StandardizedLSTM


def context_rows(model: Any) -> int:
    """Rows of history ``model`` reads before the first row it predicts (0 for row-wise models)."""
    if isinstance(model, StandardizedLSTM):
        return model.sequence_length - 1
    return 0


def context_start(first_row: int, model: Any) -> int:
    """Position of the first context row for a segment starting at ``first_row``.

    Raises:
        ValueError: when the table has fewer rows before ``first_row`` than the model needs.
    """
    needed = context_rows(model)
    if first_row < needed:
        raise ValueError(
            f"the segment starts at row {first_row} but the model needs {needed} rows of context "
            "before it; use a shorter sequence_length or a larger training fraction"
        )
    return first_row - needed


class ContextualModel(RegressorMixin, BaseEstimator):
    """A fitted sequence model bound to the rows that precede whatever it is asked to predict.

    ``predict(X)`` prepends ``context`` to ``X`` and returns one prediction per row of ``X``, so
    the row-wise tooling (metrics, ``sklearn.inspection.permutation_importance``) works unchanged.
    It is a scikit-learn estimator only because ``permutation_importance`` insists on one; it is
    never fitted.
    """

    def __init__(self, model: Any = None, context: pd.DataFrame | None = None) -> None:
        self.model = model
        self.context = context

    def fit(self, X: Any, y: Any) -> ContextualModel:
        raise TypeError("ContextualModel wraps an already fitted model; it cannot be refitted")

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if self.context is None:
            raise ValueError("ContextualModel needs its context rows")
        if isinstance(X, pd.DataFrame) and list(X.columns) != list(self.context.columns):
            raise ValueError("X must have the same columns, in the same order, as the context")
        rows = np.asarray(X, dtype=np.float64)
        history = np.vstack([self.context.to_numpy(dtype=np.float64), rows])
        predictions = np.asarray(self.model.predict(history), dtype=np.float64)
        return predictions[len(self.context) :]

    @property
    def cells_per_row(self) -> int:
        """Rows per window: what one predicted row costs in memory, against a row-wise model."""
        return int(getattr(self.model, "sequence_length", 1))

    def predict_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """``predict`` of each block of ``blocks`` ``(n_blocks, rows, features)``, in one call of
        the network: each block gets the context in front, and no window spans two blocks."""
        if self.context is None:
            raise ValueError("ContextualModel needs its context rows")
        n_blocks, n_rows, _ = blocks.shape
        context = np.broadcast_to(
            self.context.to_numpy(dtype=np.float64), (n_blocks, *self.context.shape)
        )
        histories = np.concatenate([context, np.asarray(blocks, dtype=np.float64)], axis=1)
        length = len(self.context) + 1
        # (blocks, rows, features, length) views -> (blocks x rows, length, features) windows.
        windows = np.lib.stride_tricks.sliding_window_view(histories, length, axis=1)
        windows = windows.transpose(0, 1, 3, 2).reshape(n_blocks * n_rows, length, -1)
        return np.asarray(self.model.predict(windows), dtype=np.float64).reshape(n_blocks, n_rows)


def with_context(model: Any, context: pd.DataFrame) -> Any:
    """``model`` itself when it needs no context, else a :class:`ContextualModel` over it.

    Row-wise models stay unwrapped so that the analyzer still recognises trees and linear models
    and picks their exact SHAP explainers.
    """
    needed = context_rows(model)
    if needed == 0:
        return model
    if len(context) != needed:
        raise ValueError(f"the model needs exactly {needed} context rows, got {len(context)}")
    return ContextualModel(model, context)
