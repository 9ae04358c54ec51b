"""Out-of-sample predictions of a retrain's models, the evidence every verdict rests on.

* The scikit-learn model types are judged by **walk-forward folds** (training.walk_forward): a
  model of the same type and hyperparameters is fitted on the rows before each test block and
  predicts the block, so that the last ``walk_forward_test_frac`` of the rows (thousands of bars,
  not a few hundred) are out of sample. The version that trades is the one refitted on every row
  (pipeline.training): the folds judge the *procedure*, the refit applies it to the latest data.
* The ``lstm`` is judged on its one test segment, the last ``1 - train_frac - val_frac`` of the
  rows, by the very network that trades: a fold refit costs a network fit each (seconds, where a
  forest fold costs a fraction of one), so the LSTM keeps today's cost and gets fewer
  out-of-sample bars, hence a wider error bar at the activation floor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brain_assets.lstm.context import context_start, with_context
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.settings import LSTM_MODEL_TYPE, RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, fitted_model, split_for
from brain_assets.training.models import single_threaded, train_model
from brain_assets.training.walk_forward import WalkForward, walk_forward_folds


@dataclass(frozen=True, eq=False)
class OutOfSample:
    """One model type's predictions on rows none of its fits saw."""

    predictions: pd.Series
    """Indexed by the out-of-sample rows (contiguous, oldest first)."""
    fold: np.ndarray
    """The fold number of each out-of-sample row."""
    folds: list[dict[str, object]]
    """Each fold's training and test sizes and periods (see WalkForward.describe)."""
    fit_seconds: float
    """Fitting the fold models (0 for the lstm, whose test segment needs no refit)."""
    predict_seconds: float


def folds_for(table: pd.DataFrame, settings: RetrainSettings) -> WalkForward:
    """The walk-forward folds of a symbol's modelling table under ``settings``."""
    return walk_forward_folds(
        table.index,
        folds=settings.walk_forward_folds,
        test_frac=settings.walk_forward_test_frac,
        embargo=settings.horizon,
        window=settings.walk_forward_window,
    )


def out_of_sample(
    artifact: TrainedArtifact, table: pd.DataFrame, settings: RetrainSettings
) -> OutOfSample:
    """``artifact``'s model type predicting rows it was not fitted on (see the module)."""
    if artifact.model_type == LSTM_MODEL_TYPE:
        return _test_segment(artifact, table, settings)
    X, y, _ = split_columns(table)
    plan = folds_for(table, settings)
    pieces: list[np.ndarray] = []
    fit_seconds = predict_seconds = 0.0
    for fold in plan.folds:
        trained = train_model(
            artifact.model_type,
            X.iloc[fold.train],
            y.iloc[fold.train],
            hyperparameters=artifact.hyperparameters,
            seed=settings.seed,
        )
        fit_seconds += trained.fit_seconds
        started = time.perf_counter()
        with single_threaded():
            pieces.append(np.asarray(trained.estimator.predict(X.iloc[fold.test]), np.float64))
        predict_seconds += time.perf_counter() - started
    rows = X.index[plan.test]
    return OutOfSample(
        predictions=pd.Series(np.concatenate(pieces), index=rows, name=artifact.model_type),
        fold=np.concatenate(
            [np.full(len(p), f.number) for p, f in zip(pieces, plan.folds, strict=True)]
        ),
        folds=plan.describe(table.index),
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
    )


def _test_segment(
    artifact: TrainedArtifact, table: pd.DataFrame, settings: RetrainSettings
) -> OutOfSample:
    X, _, _ = split_columns(table)
    split = split_for(table, settings)
    model = fitted_model(artifact)
    first = context_start(split.test.start, model)
    predictor = with_context(model, X.iloc[first : split.test.start])
    test = X.iloc[split.test]
    started = time.perf_counter()
    with single_threaded():
        values = np.asarray(predictor.predict(test), dtype=np.float64)
    seconds = time.perf_counter() - started
    if values.shape != (len(test),):
        raise ValueError(
            f"{artifact.model_type} gave {values.shape} predictions for {len(test)} test bars"
        )
    segment: dict[str, object] = {
        "fold": 0,
        "train": split.train.stop - split.train.start,
        "test": len(test),
        "train_period": [str(X.index[split.train.start]), artifact.training_end],
        "test_period": [str(test.index[0]), str(test.index[-1])],
    }
    return OutOfSample(
        predictions=pd.Series(values, index=test.index, name=artifact.model_type),
        fold=np.zeros(len(test), dtype=np.int64),
        folds=[segment],
        fit_seconds=0.0,
        predict_seconds=seconds,
    )
