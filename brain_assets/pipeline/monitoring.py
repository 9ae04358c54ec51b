"""Live evaluation of a symbol's active model on bars it was not trained on."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.calendar import periods_per_year
from brain_assets.decisions.policy import (
    INPUT_DRIFTED,
    INPUT_MAX_PSI,
    RECORD_BARS,
    RECORD_STD,
    RECORD_SUM,
    Assessment,
    DecisionPolicy,
)
from brain_assets.defaults import ROLLBACK_THRESHOLD
from brain_assets.evaluation.comprehensive import storable_metrics
from brain_assets.evaluation.metrics import net_returns
from brain_assets.events import log_event
from brain_assets.features.drift import drifted, population_stability, window_ceilings
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import DEFAULT_MONITORED, ModelVersioning
from brain_assets.pipeline.dataset import make_dataset, split_columns
from brain_assets.pipeline.evaluation import score_predictions
from brain_assets.pipeline.promotion import model_predictions, unseen_rows
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.records import ModelVersion
from brain_assets.training.serialization import ArtifactEnvironmentError, UnloadableArtifactError

DEFAULT_MIN_LIVE_BARS = 168
"""A week of hourly bars: fewer say too little to judge a model on."""
DEFAULT_LIVE_WINDOW_BARS = 336
"""The most recent two weeks of hourly bars. Long enough that a day's noise does not decide;
short enough that a change in the market is not diluted by weeks of older bars: with 720 bars a
signal that flipped needed three weekly steps to be seen in the replay, with 336 two
(bench/replay_bench.py)."""


# Keyword-only, so that as_of (which has a default) can stand next to the window it ends.
@dataclass(frozen=True, kw_only=True)
class LiveEvaluation:
    """The active model's metrics on the recent bars it never saw, and the verdict on them."""

    model_id: str
    version: int
    n_bars: int
    window: tuple[str, str]
    as_of: str = ""
    """The last bar of the live window: the market time the verdict is taken at."""
    metrics: dict[str, float]
    assessment: Assessment
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    """Rollback candidates' metrics on the same recent bars, by model_id."""
    fell_back_from: dict[str, Any] | None = None
    """The active version whose artifact could not be loaded and was taken out before this
    evaluation (model_id, version, error); None when the active version loaded."""

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "version": self.version,
            "n_bars": self.n_bars,
            "window": list(self.window),
            "metrics": self.metrics,
            "assessment": self.assessment.to_json(),
            "as_of": self.as_of,
            "candidates": self.candidates,
            "fell_back_from": self.fell_back_from,
        }


def seen_until(model: ModelVersion) -> pd.Timestamp | None:
    """The last row a version was trained or evaluated on: its data window's end, or its
    training window's end for a version registered before lineage was recorded."""
    end = model.data_end or model.training_end
    return None if end is None else pd.Timestamp(end)


def live_metrics(
    brain: BrainLibrary,
    model: ModelVersion,
    table: pd.DataFrame,
    rows: pd.Index,
    settings: RetrainSettings,
    periods_per_year: float,
) -> dict[str, float]:
    """A version's metrics on ``rows``, positions through the band from flat at the first row,
    with the Sharpe ratio's standard error."""
    predictions = model_predictions(brain, model, table, rows)
    _, y, next_return = split_columns(table)
    metrics, _, _ = score_predictions(
        predictions.to_numpy(),
        y.loc[rows].to_numpy(),
        next_return.loc[rows].to_numpy(),
        periods_per_year=periods_per_year,
        rule=settings.position_rule,
    )
    # An undefined standard error is left out, like every undefined metric.
    return storable_metrics(metrics)


@dataclass(frozen=True)
class _Record:
    """The active version on every bar it never saw: window metrics, record since activation."""

    window: pd.Index
    metrics: dict[str, float]


def _live_record(
    brain: BrainLibrary,
    active: ModelVersion,
    table: pd.DataFrame,
    unseen: pd.Index,
    window_bars: int,
    settings: RetrainSettings,
    periods_per_year: float,
) -> _Record:
    """One pass of the band over every unseen row (from flat at the first), the engine's path:
    the window's metrics start from the position the path holds there, and the record runs
    from the version's activation on."""
    rule = settings.position_rule
    predictions = model_predictions(brain, active, table, unseen).to_numpy()
    positions = rule.positions(predictions)
    _, y, next_return = split_columns(table)
    returns = next_return.loc[unseen].to_numpy()
    net = net_returns(positions, returns, rule.fee_bps)
    first = max(0, len(unseen) - window_bars)
    window = unseen[first:]
    metrics, _, _ = score_predictions(
        predictions[first:],
        y.loc[window].to_numpy(),
        returns[first:],
        periods_per_year=periods_per_year,
        rule=rule,
        start_position=int(positions[first - 1]) if first else 0,
    )
    values = storable_metrics(metrics)
    activated = brain.activated_at(str(active.model_id))
    since = None if activated is None else _utc(activated)
    record = net if since is None else net[unseen > since]
    values.update(
        {
            RECORD_BARS: float(record.size),
            RECORD_SUM: float(record.sum()),
            RECORD_STD: float(record.std(ddof=1)) if record.size > 1 else 0.0,
            "record_total_return": float(np.prod(1.0 + record) - 1.0),
        }
    )
    return _Record(window=window, metrics=values)


def _utc(value: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _input_drift(
    brain: BrainLibrary,
    active: ModelVersion,
    table: pd.DataFrame,
    window: pd.Index,
    policy: DecisionPolicy,
) -> dict[str, float]:
    """The window's Population Stability Index against the version's training profile, each
    feature's ceiling over the training rows (features.drift), recorded per check; {} for a
    version registered without a profile."""
    profile = active.feature_profile
    if not profile:
        return {}
    X, _, _ = split_columns(table)
    psi = population_stability(profile, X.loc[window])
    # The rows the version was trained and evaluated on.
    start, end = active.data_start, seen_until(active)
    seen = np.ones(len(X), dtype=bool)
    if start is not None:
        seen &= X.index >= pd.Timestamp(start)
    if end is not None:
        seen &= X.index <= end
    ceilings = window_ceilings(profile, X.loc[seen], len(window))
    threshold = policy.drift_psi_threshold
    brain.record_input_drift(
        str(active.symbol),
        str(active.model_id),
        psi,
        window_start=window[0],
        window_end=window[-1],
        bars=len(window),
        threshold=threshold,
        ceilings=ceilings,
    )
    names = drifted(psi, ceilings, threshold)
    if names:
        log_event(
            "input_drift",
            logging.WARNING,
            symbol=active.symbol,
            model_id=active.model_id,
            max_psi=round(max(psi.values()), 4),
            drifted=names,
        )
    return {INPUT_MAX_PSI: max(psi.values()), INPUT_DRIFTED: float(len(names))}


def evaluate_active_model(
    brain: BrainLibrary,
    symbol: str,
    ohlcv: pd.DataFrame,
    settings: RetrainSettings,
    *,
    rollback_threshold: float = ROLLBACK_THRESHOLD,
    monitored: tuple[str, ...] = DEFAULT_MONITORED,
    min_bars: int = DEFAULT_MIN_LIVE_BARS,
    window_bars: int = DEFAULT_LIVE_WINDOW_BARS,
    policy: DecisionPolicy | None = None,
    synthetic_allowed: bool | None = None,
) -> LiveEvaluation | None:
    """Evaluate, store and assess the active model on the most recent ``window_bars`` bars it
    never saw (after the data window it was trained and evaluated on).

    The earlier versions a rollback could return to are evaluated on the same bars, so that the
    rollback never returns to a model that fails there too; one whose artifact cannot be loaded
    is marked so (``fall_back_from_unloadable``), and a rollback never returns to it.

    An active model whose artifact cannot be loaded is taken out through
    ``ModelVersioning.fall_back_from_unloadable`` (with an alert), and the version that trades
    after it is evaluated instead, once; ``fell_back_from`` says so.

    Returns None when the symbol has no active model (also after a fallback that found no
    version to trade); raises ValueError when fewer than ``min_bars`` unseen bars exist
    (nothing to judge the model on yet). ``synthetic_allowed``: see ModelVersioning.
    """
    versioning = ModelVersioning(brain, policy=policy, synthetic_allowed=synthetic_allowed)
    active = brain.get_active_model(symbol)
    if active is None:
        return None

    def evaluate(model: ModelVersion) -> LiveEvaluation:
        return _evaluate(
            brain,
            versioning,
            model,
            ohlcv,
            settings,
            rollback_threshold=rollback_threshold,
            monitored=monitored,
            min_bars=min_bars,
            window_bars=window_bars,
        )

    try:
        return evaluate(active)
    except UnloadableArtifactError as exc:
        if exc.model_id != active.model_id:
            raise
        replacement = versioning.fall_back_from_unloadable(symbol, exc.model_id, exc.error)
        fell_back_from = {
            "model_id": exc.model_id,
            "version": exc.version,
            "error": exc.error,
        }
    if replacement is None:
        return None
    # Once: the fallback loaded the version it chose.
    return dataclasses.replace(evaluate(replacement), fell_back_from=fell_back_from)


def _evaluate(
    brain: BrainLibrary,
    versioning: ModelVersioning,
    active: ModelVersion,
    ohlcv: pd.DataFrame,
    settings: RetrainSettings,
    *,
    rollback_threshold: float,
    monitored: tuple[str, ...],
    min_bars: int,
    window_bars: int,
) -> LiveEvaluation:
    symbol = str(active.symbol)
    seen = seen_until(active)
    if seen is None:
        raise ValueError(f"{symbol}: active model {active.model_id} has no training window")
    table = make_dataset(ohlcv, settings.horizon, max_gap_bars=settings.max_gap_bars)
    unseen = table.index[unseen_rows(table.index, seen, settings.horizon)]
    if min(len(unseen), window_bars) < min_bars:
        raise ValueError(
            f"{symbol}: only {len(unseen)} bars after the active model's data window "
            f"(ends {seen}); at least {min_bars} are needed"
        )
    ppy = periods_per_year(table.index)
    live = _live_record(brain, active, table, unseen, window_bars, settings, ppy)
    rows = live.window
    values = {**live.metrics, **_input_drift(brain, active, table, rows, versioning.policy)}
    brain.store_model_metrics(
        active.model_id,
        symbol,
        values,
        periods_per_year=ppy,
        segment="live",
        window_start=rows[0],
        window_end=rows[-1],
    )
    candidates: dict[str, dict[str, float]] = {}
    for candidate in versioning.rollback_candidates(symbol):
        if candidate.credible is False or candidate.horizon not in (None, active.horizon):
            continue  # never a rollback target: not worth scoring
        its_unseen = unseen_rows(table.index, seen_until(candidate), settings.horizon)
        own = rows[rows.isin(table.index[its_unseen])]
        if len(own) < min_bars:
            continue
        try:
            metrics = live_metrics(brain, candidate, table, own, settings, ppy)
        except UnloadableArtifactError as exc:
            # Marked (with an alert), so that a rollback of this run cannot return to it.
            versioning.fall_back_from_unloadable(symbol, exc.model_id, exc.error)
            continue
        except ArtifactEnvironmentError:
            raise  # the host's fault, not the version's: nothing is decided on it
        except Exception as exc:  # one old version must not stop monitoring; logged
            log_event(
                "rollback_candidate_not_scored",
                logging.WARNING,
                symbol=symbol,
                model_id=candidate.model_id,
                error=str(exc),
            )
            continue
        # Handed to the rollback, not stored: stored live metrics would become the candidate's
        # activation baseline under the seed's rules, measured on the window that failed.
        candidates[str(candidate.model_id)] = metrics
    assessment = versioning.assess(active.model_id, values, rollback_threshold, monitored=monitored)
    return LiveEvaluation(
        model_id=active.model_id,
        version=active.version,
        n_bars=len(rows),
        window=(str(rows[0]), str(rows[-1])),
        metrics=values,
        assessment=assessment,
        as_of=str(rows[-1]),
        candidates=candidates,
    )
