"""Register a symbol's newly trained models and keep its best model active."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brain_assets.evaluation.comprehensive import storable_metrics
from brain_assets.pipeline.training import TrainedArtifact
from brain_assets.store.library import BrainLibrary


@dataclass
class Registration:
    model_ids: dict[str, str] = field(default_factory=dict)
    active_model_id: str | None = None
    decision: dict[str, Any] = field(default_factory=dict)


def register_symbol(
    brain: BrainLibrary,
    symbol: str,
    artifacts: list[TrainedArtifact],
    metrics_by_type: Mapping[str, Mapping[str, float | None]],
    periods_per_year: float,
) -> Registration:
    """All of a symbol's new versions and the promotion decision, as one transaction.

    The best new version (by composite score) becomes active when the symbol has no active
    model or when it scores at least as well as the active one; otherwise the active model stays.
    """
    scores = metrics_by_type
    result = Registration()
    with brain.transaction():
        for artifact in artifacts:
            metrics = storable_metrics(scores[artifact.model_type])
            result.model_ids[artifact.model_type] = brain.register_model(
                symbol,
                artifact.model_type,
                artifact.artifact,
                metrics=metrics,
                hyperparameters=artifact.hyperparameters,
                feature_names=artifact.feature_names,
                training_start=artifact.training_start,
                training_end=artifact.training_end,
                artifact_format=artifact.artifact_format,
                periods_per_year=periods_per_year,
            )
        best_type = max(
            result.model_ids, key=lambda t: scores[t].get("composite_score") or float("-inf")
        )
        best_score = scores[best_type].get("composite_score")
        active = brain.get_active_model(symbol)
        active_score = None if active is None else active["composite_score"]
        promote = active is None or (
            best_score is not None and (active_score is None or best_score >= active_score)
        )
        result.decision = {
            "candidate": result.model_ids[best_type],
            "candidate_type": best_type,
            "candidate_score": best_score,
            "active_before": None if active is None else active["model_id"],
            "active_score": active_score,
            "promoted": promote,
        }
        if promote:
            brain.activate_model(
                result.model_ids[best_type], reason="promotion", details=result.decision
            )
            result.active_model_id = result.model_ids[best_type]
        else:
            assert active is not None
            result.active_model_id = active["model_id"]
    return result
