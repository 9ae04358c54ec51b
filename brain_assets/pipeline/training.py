"""Train every configured model type of one symbol on a walk-forward split.

The scikit-learn models fit the training segment alone. The ``lstm`` model fits it too and uses the
validation segment for early stopping, which is what that segment is for; the test segment stays
unseen by every model.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from brain_assets.errors import ArtifactIntegrityError
from brain_assets.events import log_event
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.lineage import model_fingerprint, table_digest
from brain_assets.pipeline.lstm_model import fit_lstm
from brain_assets.pipeline.settings import LSTM_MODEL_TYPE, RetrainSettings
from brain_assets.training.models import train_model
from brain_assets.training.serialization import serialize_model, sha256_hex
from brain_assets.training.split import WalkForwardSplit, walk_forward_split


@dataclass(frozen=True)
class TrainedArtifact:
    """A fitted model as bytes (skops or .keras, never pickle) with what the registry records.

    ``training_end`` is the last row whose target shaped the model: the end of the training
    segment, or of the validation segment for a model that early-stopped on it (``lstm``).
    """

    model_type: str
    artifact: bytes
    artifact_format: str
    sha256: str
    hyperparameters: dict[str, Any]
    feature_names: list[str]
    fit_seconds: float
    training_start: str
    training_end: str
    horizon: int = 1
    fingerprint: str = ""
    """The version's identity (see pipeline.lineage); empty for artifacts made before it."""
    data_start: str = ""
    data_end: str = ""
    """First and last row of the modelling table the model was trained and evaluated on."""

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["artifact"] = base64.b64encode(self.artifact).decode()
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> TrainedArtifact:
        """Read back an artifact handed between assets; its bytes must still match its sha256."""
        data = base64.b64decode(document["artifact"])
        if sha256_hex(data) != document["sha256"]:
            raise ArtifactIntegrityError(
                f"{document['model_type']} artifact changed between assets: sha256 "
                f"{sha256_hex(data)} does not match the {document['sha256']} computed at training"
            )
        return cls(**{**document, "artifact": data})


def split_for(table: pd.DataFrame, settings: RetrainSettings) -> WalkForwardSplit:
    return walk_forward_split(
        table.index,
        train_frac=settings.train_frac,
        val_frac=settings.val_frac,
        embargo=settings.horizon,
    )


def split_summary(split: WalkForwardSplit) -> dict[str, Any]:
    periods = {
        "train": split.train_period,
        "validation": split.validation_period,
        "test": split.test_period,
    }
    return {
        "sizes": split.sizes(),
        "embargo": split.embargo,
        **{
            f"{name}_period": [str(period[0]), str(period[1])] if period else None
            for name, period in periods.items()
        },
    }


def train_symbol(
    symbol: str, table: pd.DataFrame, settings: RetrainSettings
) -> list[TrainedArtifact]:
    split = split_for(table, settings)
    X, y, _ = split_columns(table)
    X_train, y_train = X.iloc[split.train], y.iloc[split.train]
    start, end = X_train.index[0], X_train.index[-1]
    digest = table_digest(table)
    artifacts = []
    for model_type in settings.trained_model_types:
        if model_type == LSTM_MODEL_TYPE:
            artifact = _train_lstm(X, y, split, settings)
        else:
            trained = train_model(model_type, X_train, y_train, seed=settings.seed)
            data, fmt = serialize_model(trained.estimator)
            artifact = TrainedArtifact(
                model_type=model_type,
                artifact=data,
                artifact_format=fmt,
                sha256=sha256_hex(data),
                hyperparameters=trained.hyperparameters,
                feature_names=trained.feature_names,
                fit_seconds=trained.fit_seconds,
                training_start=start.isoformat(),
                training_end=end.isoformat(),
            )
        artifact = dataclasses.replace(
            artifact,
            horizon=settings.horizon,
            fingerprint=model_fingerprint(
                symbol, model_type, artifact.hyperparameters, settings, digest
            ),
            data_start=table.index[0].isoformat(),
            data_end=table.index[-1].isoformat(),
        )
        log_event(
            "compute_timing",
            logging.DEBUG,
            stage="fit",
            symbol=symbol,
            model_type=model_type,
            seconds=round(artifact.fit_seconds, 4),
        )
        artifacts.append(artifact)
    return artifacts


def _train_lstm(
    X: pd.DataFrame, y: pd.Series, split: WalkForwardSplit, settings: RetrainSettings
) -> TrainedArtifact:
    fitted = fit_lstm(X, y, split, settings.lstm_config, settings.seed)
    data, fmt = serialize_model(fitted.model)
    return TrainedArtifact(
        model_type=LSTM_MODEL_TYPE,
        artifact=data,
        artifact_format=fmt,
        sha256=sha256_hex(data),
        hyperparameters=fitted.hyperparameters,
        feature_names=[str(column) for column in X.columns],
        fit_seconds=fitted.seconds,
        training_start=X.index[split.train.start].isoformat(),
        training_end=fitted.validation_end.isoformat(),
    )
