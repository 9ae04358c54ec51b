"""Live evaluation of a symbol's active model on bars it was not trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.calendar import periods_per_year
from brain_assets.evaluation.comprehensive import evaluate_model, storable_metrics
from brain_assets.pipeline.dataset import make_dataset, split_columns
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.store.library import BrainLibrary
from brain_assets.training.serialization import deserialize_model
from brain_assets.versioning import DEFAULT_MONITORED, ModelVersioning, assess_regression

DEFAULT_MIN_LIVE_BARS = 168
"""A week of hourly bars: fewer say too little to judge a model on."""
DEFAULT_LIVE_WINDOW_BARS = 720
"""The most recent 30 days of hourly bars: recent enough to see a regression, long enough that
one bad day does not trigger a rollback."""


@dataclass(frozen=True)
class LiveEvaluation:
    model_id: str
    version: int
    n_bars: int
    window: tuple[str, str]
    metrics: dict[str, float]
    assessment: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "version": self.version,
            "n_bars": self.n_bars,
            "window": list(self.window),
            "metrics": self.metrics,
            "assessment": self.assessment,
        }


def live_window(
    table: pd.DataFrame,
    training_end: pd.Timestamp,
    horizon: int,
    window_bars: int = DEFAULT_LIVE_WINDOW_BARS,
) -> pd.Series:
    """The most recent ``window_bars`` rows whose features AND target come strictly after the
    training segment's last target (the first ``horizon`` rows after training_end are skipped:
    their targets overlap it)."""
    after = table.index > training_end
    positions = np.flatnonzero(after)[horizon:][-window_bars:]
    mask = np.zeros(len(table), dtype=bool)
    mask[positions] = True
    return pd.Series(mask, index=table.index)


def evaluate_active_model(
    brain: BrainLibrary,
    symbol: str,
    ohlcv: pd.DataFrame,
    settings: RetrainSettings,
    *,
    rollback_threshold: float = 0.05,
    monitored: tuple[str, ...] = DEFAULT_MONITORED,
    min_bars: int = DEFAULT_MIN_LIVE_BARS,
    window_bars: int = DEFAULT_LIVE_WINDOW_BARS,
) -> LiveEvaluation | None:
    """Evaluate, store and assess the active model on its most recent ``window_bars`` bars
    after its training.

    Returns None when the symbol has no active model; raises ValueError when fewer than
    ``min_bars`` unseen bars exist (nothing to judge the model on yet).
    """
    active = brain.get_active_model(symbol)
    if active is None:
        return None
    if active["training_end"] is None:
        raise ValueError(f"{symbol}: active model {active['model_id']} has no training window")
    table = make_dataset(ohlcv, settings.horizon, max_gap_bars=settings.max_gap_bars)
    mask = live_window(table, pd.Timestamp(active["training_end"]), settings.horizon, window_bars)
    if int(mask.sum()) < min_bars:
        raise ValueError(
            f"{symbol}: only {int(mask.sum())} bars after the active model's training window "
            f"(ends {active['training_end']}); at least {min_bars} are needed"
        )
    X, y, next_return = split_columns(table)
    model = deserialize_model(
        brain.load_model_artifact(active["model_id"]), active["artifact_format"]
    )
    # Predict over every row so that a sequence model has its past context, then keep the
    # unseen rows only.
    predictions = np.asarray(model.predict(X), dtype=float)[mask.to_numpy()]
    live = table.index[mask.to_numpy()]
    metrics = evaluate_model(
        predictions,
        y[mask].to_numpy(),
        next_return[mask].to_numpy(),
        periods_per_year=periods_per_year(table.index),
        fee_bps=settings.fee_bps,
    )
    values = storable_metrics(metrics)
    brain.store_model_metrics(
        active["model_id"], symbol, values, periods_per_year=values.get("periods_per_year")
    )
    assessment = assess_regression(
        ModelVersioning(brain).baseline(active["model_id"]),
        values,
        threshold=rollback_threshold,
        monitored=monitored,
    )
    return LiveEvaluation(
        model_id=active["model_id"],
        version=active["version"],
        n_bars=int(mask.sum()),
        window=(str(live[0]), str(live[-1])),
        metrics=values,
        assessment=assessment,
    )
