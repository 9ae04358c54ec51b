"""Score the active model on a challenger's test bars, for the fair promotion test."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from brain_assets.evaluation.comprehensive import strategy_returns
from brain_assets.events import log_event
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ChampionScorer
from brain_assets.lstm.context import context_start, with_context
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.records import ModelVersion
from brain_assets.training.models import single_threaded
from brain_assets.training.serialization import (
    ArtifactEnvironmentError,
    UnloadableArtifactError,
    load_registered_model,
)


def unseen_rows(index: pd.Index, after: pd.Timestamp | None, horizon: int) -> np.ndarray:
    """Boolean mask of rows a model fitted up to ``after`` never saw: every row after it but the
    first ``horizon``, whose targets overlap the fitted ones (all rows when ``after`` is None)."""
    mask = np.zeros(len(index), dtype=bool)
    if after is None:
        mask[:] = True
        return mask
    mask[np.flatnonzero(index > after)[horizon:]] = True
    return mask


def model_predictions(
    brain: BrainLibrary, model: ModelVersion, table: pd.DataFrame, rows: pd.Index
) -> pd.Series:
    """A registered version's predictions on ``rows`` of ``table`` (contiguous, with the rows
    before them as a sequence model's context), its artifact verified against its sha256.

    Raises:
        UnloadableArtifactError: the version's artifact cannot be loaded (see
            training.serialization.load_registered_model).
    """
    X, _, _ = split_columns(table)
    names = list(model.feature_names or [])
    if names and names != list(X.columns):
        raise ValueError(
            f"version {model.version} was trained on other features than this table has"
        )
    estimator = load_registered_model(brain, model)
    positions = table.index.get_indexer(rows)
    if len(positions) == 0 or (positions < 0).any():
        raise ValueError("rows must be a non-empty selection of the table's rows")
    first, last = int(positions[0]), int(positions[-1])
    predictor = with_context(estimator, X.iloc[context_start(first, estimator) : first])
    segment = X.iloc[first : last + 1]
    with single_threaded():  # one core per symbol's run, as in training and evaluation
        values = np.asarray(predictor.predict(segment), dtype=np.float64)
    predicted = pd.Series(values, index=segment.index)
    return predicted.loc[rows]


def model_bar_returns(
    brain: BrainLibrary,
    model: ModelVersion,
    table: pd.DataFrame,
    rows: pd.Index,
    settings: RetrainSettings,
) -> pd.Series:
    """A registered version's net strategy return on each of ``rows``, its positions through
    the deployment's no-trade band from flat at the first row."""
    predictions = model_predictions(brain, model, table, rows).to_numpy()
    _, _, next_return = split_columns(table)
    rule = settings.position_rule
    return strategy_returns(
        predictions,
        next_return.loc[rows].to_numpy(),
        rule.positions(predictions),
        fee_bps=rule.fee_bps,
        index=rows,
    )


def champion_scorer(
    brain: BrainLibrary, table: pd.DataFrame, test_rows: pd.Index, settings: RetrainSettings
) -> ChampionScorer:
    """Scores the active version on the challengers' test bars that it was not trained on.

    An active version whose artifact cannot be loaded raises UnloadableArtifactError, which the
    registration turns into a fallback with an alert; any other failure means "cannot be
    scored" and the promotion compares composite scores instead."""

    def score(active: ModelVersion) -> pd.Series | None:
        end = active.training_end
        after = None if end is None else pd.Timestamp(end)
        horizon = int(active.horizon or settings.horizon)
        try:
            net = model_bar_returns(brain, active, table, test_rows, settings)
        except (UnloadableArtifactError, ArtifactEnvironmentError):
            # Not scoring problems: the champion cannot trade at all, or this host cannot
            # judge it (then nothing is decided).
            raise
        except Exception as exc:  # any other failure means "cannot be scored"; logged
            log_event(
                "champion_not_scored",
                logging.WARNING,
                symbol=active.symbol,
                model_id=active.model_id,
                error=str(exc),
            )
            return None
        # The embargo counts rows of the table, not of the test segment.
        unseen = table.index[unseen_rows(table.index, after, horizon)]
        return net[net.index.isin(unseen)]

    return score
