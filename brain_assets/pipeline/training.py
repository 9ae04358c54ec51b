"""Train the version of every configured model type that would trade a symbol.

The scikit-learn models are refitted on every row of the modelling table: the walk-forward folds
(pipeline.folds) judge the procedure on rows each fold never saw, and the version that trades
applies it to the latest data. The ``lstm`` fits the training segment and uses the validation
segment for early stopping, which is what that segment is for; its test segment, unseen by it,
is what it is judged on.

A machine that cannot import TensorFlow still trains the scikit-learn models: the ``lstm`` type
is skipped for that call and the reason returned (see :func:`train_symbol_models`).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from brain_assets.errors import ArtifactIntegrityError
from brain_assets.events import log_event
from brain_assets.lstm.network import keras_import_error
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.lineage import model_fingerprint, table_digest
from brain_assets.pipeline.lstm_model import fit_lstm
from brain_assets.pipeline.settings import LSTM_MODEL_TYPE, RetrainSettings
from brain_assets.training.fast_predict import OneRowModel, one_row_model
from brain_assets.training.models import train_model
from brain_assets.training.serialization import deserialize_model, serialize_model, sha256_hex
from brain_assets.training.split import WalkForwardSplit, walk_forward_split

CODE_VERSION = "1"
"""Version of the training procedure (model types, hyperparameters, split, refit), the
``code_version`` of the ``trained_models`` asset: bump it by hand (``"2"``, ``"3"``...) in a change
that alters the fitted models, so that Dagster marks the asset and those downstream of it as changed
(docs/asset-graph.md#code-versions)."""


@dataclass(frozen=True)
class TrainedArtifact:
    """A fitted model as bytes (skops or .keras, never pickle) with what the registry records.

    ``training_end`` is the last row whose target shaped the model: the table's last row for a
    refitted scikit-learn model, the end of the validation segment for the ``lstm``.
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
    one_row: bytes = b""
    """The model's one-row prediction as arrays (``OneRowModel.to_bytes``), registered beside
    the artifact; empty for a model without one (the LSTM)."""

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["artifact"] = base64.b64encode(self.artifact).decode()
        document["one_row"] = base64.b64encode(self.one_row).decode()
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
        one_row = base64.b64decode(document.get("one_row", ""))
        if one_row:
            # Registered with its own sha256 computed then: it must be a one-row model now.
            try:
                OneRowModel.from_bytes(one_row)
            except ValueError as exc:
                raise ArtifactIntegrityError(
                    f"{document['model_type']} one-row model changed between assets: {exc}"
                ) from exc
        return cls(**{**document, "artifact": data, "one_row": one_row})


def fitted_model(artifact: TrainedArtifact) -> Any:
    """The model in ``artifact``, loaded once per process for the stages after training.

    Evaluation and importance predict with the same artifacts, one after the other in the run's
    process (the default executor): the second stage gets the model the first one loaded, and a
    LSTM that has predicted once is not loaded and traced again (about 0.3 s per symbol). The
    object is shared, so callers only predict with it. Keyed by the bytes themselves.
    """
    return _loaded_model(artifact.artifact, artifact.artifact_format)


# Eight: every model type of the last two symbols a process handled.
@functools.lru_cache(maxsize=8)
def _loaded_model(artifact: bytes, artifact_format: str) -> Any:
    return deserialize_model(artifact, artifact_format)


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


@dataclass(frozen=True)
class SymbolTraining:
    """What :func:`train_symbol_models` fitted, and which configured types it could not."""

    artifacts: list[TrainedArtifact]
    skipped_model_types: dict[str, str] = field(default_factory=dict)
    """Model type -> why it was not trained (``"ImportError: ..."``); empty when none was."""


def unavailable_model_types(settings: RetrainSettings) -> dict[str, str]:
    """The configured model types this process cannot train, with the reason for each.

    Only ``lstm`` can be unavailable: it needs TensorFlow, which may be missing or fail to load
    its shared libraries on a machine where scikit-learn works fine.
    """
    if LSTM_MODEL_TYPE not in settings.trained_model_types:
        return {}
    error = keras_import_error()
    if error is None:
        return {}
    return {LSTM_MODEL_TYPE: f"{type(error).__name__}: {error}"}


def train_symbol_models(
    symbol: str, table: pd.DataFrame, settings: RetrainSettings
) -> SymbolTraining:
    """Fit every configured model type that this process can train.

    TensorFlow is imported up front, before anything is fitted, and only a failure of that
    import skips ``lstm``: the other types train as usual, and the reason is logged
    (``model_type_skipped``) and returned. The distinction is made by *where* the error
    happens, not by its type: an ImportError raised while fitting (a lazily imported piece of
    keras, a bug of ours) is a failure of the fit and fails the call like any other error,
    because skipping it would hide a broken model type behind a run that looks healthy.

    Raises:
        RuntimeError: when every configured model type is unavailable (nothing to train).
    """
    skipped = unavailable_model_types(settings)
    for model_type, reason in skipped.items():
        log_event(
            "model_type_skipped",
            logging.WARNING,
            symbol=symbol,
            model_type=model_type,
            reason=reason,
        )
    wanted = [t for t in settings.trained_model_types if t not in skipped]
    if not wanted:
        raise RuntimeError(
            f"{symbol}: no configured model type can be trained in this process: "
            + "; ".join(f"{t}: {why}" for t, why in skipped.items())
        )
    split = split_for(table, settings)
    X, y, _ = split_columns(table)
    start, end = X.index[0], X.index[-1]
    digest = table_digest(table)
    artifacts = []
    for model_type in wanted:
        if model_type == LSTM_MODEL_TYPE:
            artifact = _train_lstm(X, y, split, settings)
        else:
            trained = train_model(model_type, X, y, seed=settings.seed)
            data, fmt = serialize_model(trained.estimator)
            one_row = one_row_model(trained.estimator, feature_names=trained.feature_names)
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
                one_row=b"" if one_row is None else one_row.to_bytes(),
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
    return SymbolTraining(artifacts, skipped)


def train_symbol(
    symbol: str, table: pd.DataFrame, settings: RetrainSettings
) -> list[TrainedArtifact]:
    """The artifacts of :func:`train_symbol_models` (a skipped type is only logged)."""
    return train_symbol_models(symbol, table, settings).artifacts


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
