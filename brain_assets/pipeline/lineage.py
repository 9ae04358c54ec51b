"""The identity of a model version: what it was trained on and how, as one sha256.

Two trainings with the same fingerprint are the same version (the models are deterministic for a
fixed seed), so the registry returns the existing version instead of adding a copy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

import pandas as pd

from brain_assets.pipeline.settings import LSTM_MODEL_TYPE, RetrainSettings

PROCEDURE = 2
"""How versions are trained and judged; a new number whenever that changes, so that a version
trained the old way never stands in for one trained the new way. 2: the scikit-learn versions are
refitted on every row and judged on walk-forward folds through the no-trade band."""


def table_digest(table: pd.DataFrame) -> str:
    """sha256 of a modelling table's values, index and column names (order-sensitive)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in table.columns]).encode())
    hashed = pd.util.hash_pandas_object(table, index=True).to_numpy()
    digest.update(hashed.tobytes())
    return digest.hexdigest()


def model_fingerprint(
    symbol: str,
    model_type: str,
    hyperparameters: dict[str, Any],
    settings: RetrainSettings,
    data_digest: str,
) -> str:
    """The version identity: symbol, model type, horizon, every setting that changes the fitted
    model or its evaluation, and the data it saw."""
    relevant: dict[str, Any] = {
        "procedure": PROCEDURE,
        "symbol": symbol,
        "model_type": model_type,
        "hyperparameters": hyperparameters,
        "horizon": settings.horizon,
        "train_frac": settings.train_frac,
        "val_frac": settings.val_frac,
        "seed": settings.seed,
        "fee_bps": settings.fee_bps,
        "band_margin": settings.band_margin,
        "walk_forward": [
            settings.walk_forward_folds,
            settings.walk_forward_test_frac,
            settings.walk_forward_window,
        ],
        "data": data_digest,
    }
    if model_type == LSTM_MODEL_TYPE:
        relevant["lstm"] = asdict(settings.lstm_config)
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
