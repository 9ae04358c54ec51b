"""A version that loses live, for the rollback tests: fitted on the negated target, registered
with the honest-looking figures of a good one; and the bar file the files source reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from brain_assets.library import BrainLibrary
from brain_assets.pipeline.dataset import make_dataset
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol
from brain_assets.records import ModelVersion

SYMBOL = "BTC/USDT"


def write(folder: Path, frame: pd.DataFrame) -> None:
    out = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.to_csv(folder / "BTC-USDT.csv", index=False)


def register_reversed_model(brain: BrainLibrary, frame: pd.DataFrame, like: ModelVersion) -> str:
    """A version that predicts the opposite of what the market does (fitted on the negated
    target) but claims the honest-looking test figures of ``like``: it will lose live."""
    settings = RetrainSettings(model_types=("ridge",))
    table = make_dataset(frame, settings.horizon)
    flipped = table.assign(target=-table["target"])
    artifact = train_symbol(SYMBOL, flipped, settings)[0]
    return brain.register_model(
        SYMBOL,
        "ridge",
        artifact.artifact,
        metrics=like.metrics,
        feature_names=artifact.feature_names,
        training_start=artifact.training_start,
        training_end=artifact.training_end,
        artifact_format=artifact.artifact_format,
        horizon=1,
        data_start=table.index[0],
        data_end=table.index[-1],
        credible=True,
    )
