"""Register a symbol's newly trained models through champion/challenger promotion."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from brain_assets.decisions.policy import SELECTION_TRIALS, DecisionPolicy
from brain_assets.evaluation.comprehensive import storable_metrics
from brain_assets.features.drift import feature_profile
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ChampionScorer, ModelVersioning
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.promotion import champion_scorer
from brain_assets.pipeline.regimes import store_regime_metrics
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact
from brain_assets.provenance import BarProvenance, bars_label
from brain_assets.records import ModelVersion

CODE_VERSION = "1"
"""Version of the registration and its activation gate (decisions.policy), the ``code_version`` of
the ``registry_entries`` asset: bump it by hand (``"2"``, ``"3"``...) in a change that alters which
version is registered or trades, so that Dagster marks the asset and those downstream of it as
changed (docs/asset-graph.md#code-versions)."""


@dataclass
class Registration:
    model_ids: dict[str, str] = field(default_factory=dict)
    """Model type -> model_id, new or (same fingerprint) already registered."""
    new_model_ids: dict[str, str] = field(default_factory=dict)
    """The versions this call added; a repeated registration adds none."""
    active_model_id: str | None = None
    promoted: list[str] = field(default_factory=list)


def register_symbol(
    brain: BrainLibrary,
    symbol: str,
    artifacts: list[TrainedArtifact],
    metrics_by_type: Mapping[str, Mapping[str, float | None]],
    periods_per_year: float,
    *,
    per_regime_by_type: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    tolerance: float = 0.0,
    run_id: str | None = None,
    bar_returns_by_type: Mapping[str, pd.Series] | None = None,
    champion: ChampionScorer | None = None,
    policy: DecisionPolicy | None = None,
    as_of: object = None,
    folds_by_type: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    profile: Mapping[str, Any] | None = None,
    bars: BarProvenance | None = None,
    synthetic_allowed: bool | None = None,
) -> Registration:
    """All of a symbol's new versions, as one transaction.

    Versions are registered best score first, so that on a symbol's first day the best credible
    model is the first to trade and the others are judged as challengers against it.
    ``per_regime_by_type`` (model type -> regime -> metrics) is stored with each version.
    ``bar_returns_by_type`` (each model's net return per out-of-sample bar) and ``champion``
    (scores the active version on those bars) feed the fair promotion test; ``as_of`` is the
    last bar known. ``folds_by_type`` (each fold's periods and metrics) is stored as the
    versions' fold metrics, ``profile`` (pipeline.drift) as their feature profile. ``bars``
    is where the training bars came from; ``synthetic_allowed`` whether a version trained on
    synthetic bars may trade (see ModelVersioning).

    Every version ever registered for the symbol was a try at finding skill on its bars: the
    new versions' ``selection_trials``, which the activation floor deflates by, counts them all,
    this retrain's included.
    """
    if policy is not None and tolerance:
        raise ValueError("give the tolerance inside the policy: DecisionPolicy(tolerance=...)")
    versioning = ModelVersioning(
        brain,
        policy=policy if policy is not None else DecisionPolicy(tolerance=tolerance),
        synthetic_allowed=synthetic_allowed,
    )
    registrar = _SymbolRegistrar(
        brain,
        symbol,
        versioning,
        metrics_by_type,
        periods_per_year,
        returns=dict(bar_returns_by_type or {}),
        champion=champion,
        run_id=run_id,
        as_of=as_of,
        per_regime_by_type=per_regime_by_type or {},
        folds_by_type=folds_by_type or {},
        profile=profile,
        bars=bars,
    )
    return registrar.register_all(artifacts)


@dataclass
class _SymbolRegistrar:
    """The inputs of one :func:`register_symbol` call and the champion scores it has seen."""

    brain: BrainLibrary
    symbol: str
    versioning: ModelVersioning
    metrics_by_type: Mapping[str, Mapping[str, float | None]]
    periods_per_year: float
    returns: dict[str, pd.Series]
    champion: ChampionScorer | None
    run_id: str | None
    as_of: object
    per_regime_by_type: Mapping[str, Mapping[str, Mapping[str, Any]]]
    folds_by_type: Mapping[str, Sequence[Mapping[str, Any]]]
    profile: Mapping[str, Any] | None
    bars: BarProvenance | None
    own: dict[str, pd.Series] = field(default_factory=dict)
    """This call's new versions -> their out-of-sample returns."""
    scored: dict[str, pd.Series | None] = field(default_factory=dict)
    """Earlier champions -> their scores on this call's bars."""

    def register_all(self, artifacts: list[TrainedArtifact]) -> Registration:
        brain, symbol = self.brain, self.symbol
        result = Registration()
        with brain.transaction():
            # Held to the end: the "already registered?" answers below stay true while we write.
            brain.lock_symbol(symbol)
            before = brain.get_active_model(symbol)
            existing_ids = {
                artifact.model_type: brain.find_model_by_fingerprint(symbol, artifact.fingerprint)
                for artifact in artifacts
                if artifact.fingerprint
            }
            trials = brain.count_versions(symbol) + sum(
                1 for artifact in artifacts if existing_ids.get(artifact.model_type) is None
            )
            for artifact in sorted(artifacts, key=self.score, reverse=True):
                existing = existing_ids.get(artifact.model_type)
                if existing is not None:
                    result.model_ids[artifact.model_type] = existing
                    continue
                model_id = self.register_new(artifact, trials, len(artifacts))
                result.model_ids[artifact.model_type] = model_id
                result.new_model_ids[artifact.model_type] = model_id
                self.store_extras(artifact, model_id)
            active = brain.get_active_model(symbol)
        result.active_model_id = None if active is None else active.model_id
        # Only a new version is a promotion: an earlier one can also become active here, when
        # the champion's artifact turned out unloadable and the registry fell back to it.
        if (
            active is not None
            and (before is None or before.model_id != active.model_id)
            and active.model_id in result.new_model_ids.values()
        ):
            result.promoted.append(active.model_id)
        return result

    def score(self, artifact: TrainedArtifact) -> float:
        value = self.metrics_by_type[artifact.model_type].get("composite_score")
        return float("-inf") if value is None else float(value)

    def score_champion(self, active: ModelVersion) -> pd.Series | None:
        # A version promoted earlier in this call is scored on these very bars already; any
        # other champion is scored once for all the challengers.
        model_id = str(active.model_id)
        if model_id in self.own:
            return self.own[model_id]
        if model_id not in self.scored:
            self.scored[model_id] = None if self.champion is None else self.champion(active)
        return self.scored[model_id]

    def register_new(self, artifact: TrainedArtifact, trials: int, n_challengers: int) -> str:
        """Registers ``artifact`` as a new version; ``trials`` counts every try on the symbol."""
        model_type = artifact.model_type
        return self.versioning.register_version(
            self.symbol,
            model_type,
            artifact.artifact,
            metrics=storable_metrics(
                {**self.metrics_by_type[model_type], SELECTION_TRIALS: trials}
            ),
            bar_returns=self.returns.get(model_type),
            champion_returns=self.score_champion,
            n_challengers=n_challengers,
            as_of=self.as_of,
            hyperparameters=artifact.hyperparameters,
            feature_names=artifact.feature_names,
            training_start=artifact.training_start,
            training_end=artifact.training_end,
            artifact_format=artifact.artifact_format,
            periods_per_year=self.periods_per_year,
            feature_profile=self.profile,
            bars=self.bars,
            horizon=artifact.horizon,
            fingerprint=artifact.fingerprint or None,
            run_id=self.run_id,
            data_start=artifact.data_start or None,
            data_end=artifact.data_end or None,
            one_row=artifact.one_row or None,
        )

    def store_extras(self, artifact: TrainedArtifact, model_id: str) -> None:
        """The new version's fold and regime metrics; its returns for later champion scores."""
        model_type = artifact.model_type
        for fold in self.folds_by_type.get(model_type, []):
            _store_fold(self.brain, model_id, self.symbol, fold, self.periods_per_year)
        if model_type in self.returns:
            self.own[model_id] = self.returns[model_type]
        per_regime = self.per_regime_by_type.get(model_type)
        if per_regime:
            store_regime_metrics(self.brain, model_id, self.symbol, per_regime)


def _store_fold(
    brain: BrainLibrary,
    model_id: str,
    symbol: str,
    fold: Mapping[str, Any],
    periods_per_year: float,
) -> None:
    metrics = storable_metrics(fold.get("metrics") or {})
    if not metrics:
        return
    period = fold.get("test_period") or [None, None]
    brain.store_model_metrics(
        model_id,
        symbol,
        metrics,
        periods_per_year=periods_per_year,
        segment="fold",
        fold=int(fold["fold"]),
        window_start=period[0],
        window_end=period[1],
    )


def register_evaluation(
    brain: BrainLibrary,
    symbol: str,
    table: pd.DataFrame,
    artifacts: list[TrainedArtifact],
    evaluation: Mapping[str, Any],
    settings: RetrainSettings,
    *,
    policy: DecisionPolicy,
    run_id: str | None = None,
    metrics_by_type: Mapping[str, Mapping[str, float | None]] | None = None,
    bars: BarProvenance | None = None,
    synthetic_allowed: bool | None = None,
) -> Registration:
    """:func:`register_symbol` for a retrain's evaluation (``SymbolEvaluation.to_json()``): the
    out-of-sample returns feed the promotion test, the folds and the training rows' feature
    profile are stored with each version. ``metrics_by_type`` replaces the evaluation's metrics
    (the asset adds the LSTM's attention to them)."""
    returns = {
        model_type: pd.Series(
            values,
            index=pd.DatetimeIndex(pd.to_datetime(evaluation["test_index"][model_type], utc=True)),
        )
        for model_type, values in evaluation.get("bar_returns", {}).items()
    }
    # Every model's out-of-sample rows end at the table's end: their union is contiguous.
    tested = [r.index for r in returns.values()]
    test_rows = functools.reduce(pd.Index.union, tested) if tested else None
    X, _, _ = split_columns(table)
    return register_symbol(
        brain,
        symbol,
        artifacts,
        metrics_by_type if metrics_by_type is not None else evaluation["models"],
        evaluation["periods_per_year"],
        per_regime_by_type=evaluation.get("by_regime"),
        run_id=run_id,
        bar_returns_by_type=returns,
        champion=None if test_rows is None else champion_scorer(brain, table, test_rows, settings),
        policy=policy,
        as_of=table.index[-1],
        folds_by_type=evaluation.get("folds"),
        profile=feature_profile(X),
        bars=bars,
        synthetic_allowed=synthetic_allowed,
    )


def registry_summary(brain: BrainLibrary, symbol: str, *, limit: int = 10) -> dict[str, Any]:
    """The active version, the challengers and the latest activations, for people."""
    models = brain.list_models(symbol)
    models["bars"] = [
        bars_label({str(k): v for k, v in row.items()}) for row in models.to_dict("records")
    ]
    history = brain.get_activation_history(symbol)
    return {
        "active": models[models["is_active"]].to_dict("records"),
        "challengers": models[~models["is_active"]]
        .sort_values("version", ascending=False)
        .head(limit)
        .to_dict("records"),
        "activations": history.sort_values("activation_id", ascending=False)
        .head(limit)
        .to_dict("records"),
    }
