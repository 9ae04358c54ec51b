"""Register a symbol's newly trained models through champion/challenger promotion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.evaluation.comprehensive import storable_metrics
from brain_assets.pipeline.regimes import store_regime_metrics
from brain_assets.pipeline.training import TrainedArtifact
from brain_assets.store.library import BrainLibrary
from brain_assets.versioning import ChampionScorer, ModelVersioning


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
) -> Registration:
    """All of a symbol's new versions, as one transaction.

    Versions are registered best score first, so that on a symbol's first day the best credible
    model is the first to trade and the others are judged as challengers against it.
    ``per_regime_by_type`` (model type -> regime -> metrics) is stored with each version.
    ``bar_returns_by_type`` (each model's net return per test bar) and ``champion`` (scores the
    active version on those bars) feed the fair promotion test; ``as_of`` is the last bar known.
    """
    if policy is not None and tolerance:
        raise ValueError("give the tolerance inside the policy: DecisionPolicy(tolerance=...)")
    versioning = ModelVersioning(
        brain, policy=policy if policy is not None else DecisionPolicy(tolerance=tolerance)
    )
    returns = dict(bar_returns_by_type or {})
    own: dict[str, pd.Series] = {}

    scored: dict[str, pd.Series | None] = {}

    def score_champion(active: Mapping[str, Any]) -> pd.Series | None:
        # A version promoted earlier in this call is scored on these very bars already; any
        # other champion is scored once for all the challengers.
        model_id = str(active["model_id"])
        if model_id in own:
            return own[model_id]
        if model_id not in scored:
            scored[model_id] = None if champion is None else champion(active)
        return scored[model_id]

    def score(artifact: TrainedArtifact) -> float:
        value = metrics_by_type[artifact.model_type].get("composite_score")
        return float("-inf") if value is None else float(value)

    result = Registration()
    with brain.transaction():
        # Held to the end: the "already registered?" answers below stay true while we write.
        brain.lock_symbol(symbol)
        before = brain.get_active_model(symbol)
        for artifact in sorted(artifacts, key=score, reverse=True):
            fingerprint = artifact.fingerprint or None
            if fingerprint is not None:
                existing = brain.find_model_by_fingerprint(symbol, fingerprint)
                if existing is not None:
                    result.model_ids[artifact.model_type] = existing
                    continue
            lineage: dict[str, Any] = {
                "horizon": artifact.horizon,
                "fingerprint": fingerprint,
                "run_id": run_id,
                "data_start": artifact.data_start or None,
                "data_end": artifact.data_end or None,
            }
            result.model_ids[artifact.model_type] = versioning.register_version(
                symbol,
                artifact.model_type,
                artifact.artifact,
                metrics=storable_metrics(metrics_by_type[artifact.model_type]),
                bar_returns=returns.get(artifact.model_type),
                champion_returns=score_champion,
                n_challengers=len(artifacts),
                as_of=as_of,
                hyperparameters=artifact.hyperparameters,
                feature_names=artifact.feature_names,
                training_start=artifact.training_start,
                training_end=artifact.training_end,
                artifact_format=artifact.artifact_format,
                periods_per_year=periods_per_year,
                **lineage,
            )
            result.new_model_ids[artifact.model_type] = result.model_ids[artifact.model_type]
            if artifact.model_type in returns:
                own[result.model_ids[artifact.model_type]] = returns[artifact.model_type]
            per_regime = (per_regime_by_type or {}).get(artifact.model_type)
            if per_regime:
                store_regime_metrics(
                    brain, result.model_ids[artifact.model_type], symbol, per_regime
                )
        active = brain.get_active_model(symbol)
    result.active_model_id = None if active is None else active["model_id"]
    # Only a new version is a promotion: an earlier one can also become active here, when the
    # champion's artifact turned out unloadable and the registry fell back to it.
    if (
        active is not None
        and (before is None or before["model_id"] != active["model_id"])
        and active["model_id"] in result.new_model_ids.values()
    ):
        result.promoted.append(active["model_id"])
    return result


def registry_summary(brain: BrainLibrary, symbol: str, *, limit: int = 10) -> dict[str, Any]:
    """The active version, the challengers and the latest activations, for people."""
    models = brain.list_models(symbol)
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
