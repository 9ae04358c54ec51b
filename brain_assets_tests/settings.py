"""Settings the tests share: a decision policy without the activation floor, and an LSTM small
enough to train in a second."""

from __future__ import annotations

from typing import Any

from brain_assets.decisions.policy import DecisionPolicy

NO_FLOOR_POLICY = DecisionPolicy(floor_min_composite=None, floor_confidence=None)
"""The default policy without the activation floor: the first version of a symbol trades, so that
tests of loading, predicting and rolling back have a model to work with."""

TINY_LSTM: dict[str, Any] = {
    "units": 4,
    "layers": 1,
    "sequence_length": 6,
    "epochs": 2,
    "batch_size": 64,
    "patience": 1,
    "shap_rows": 16,
    "shap_samples": 8,
}
"""LSTMSettings (or LSTMConfig) keywords of the smallest network the pipeline accepts."""
