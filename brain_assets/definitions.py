"""The Dagster code location: ``dagster dev -m brain_assets.definitions`` or workspace.yaml."""

from __future__ import annotations

import dagster as dg

from brain_assets.defs.analysis.assets import feature_importance_trend
from brain_assets.defs.io_manager import BrainIOManager
from brain_assets.defs.jobs import (
    daily_retrain,
    daily_retrain_schedule,
    nightly_feature_analysis,
    nightly_feature_analysis_schedule,
)
from brain_assets.defs.monitoring.assets import live_model_metrics, model_registry_state
from brain_assets.defs.monitoring.jobs import monitoring_job, monitoring_schedule, rollback_job
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.monitoring.sensors import rollback_sensor
from brain_assets.defs.resources import MarketDataResource, RetrainResource, brain_resource
from brain_assets.defs.retrain.assets import retrain_assets
from brain_assets.defs.retrain.checks import retrain_checks


def build_resources() -> dict[str, object]:
    brain = brain_resource()
    return {
        "brain": brain,
        "brain_io_manager": BrainIOManager(brain=brain),
        "market": MarketDataResource(),
        "retrain": RetrainResource(),
        "monitoring": MonitoringResource(),
    }


defs = dg.Definitions(
    assets=[*retrain_assets, feature_importance_trend, live_model_metrics, model_registry_state],
    asset_checks=retrain_checks,
    jobs=[daily_retrain, nightly_feature_analysis, monitoring_job, rollback_job],
    schedules=[daily_retrain_schedule, nightly_feature_analysis_schedule, monitoring_schedule],
    sensors=[rollback_sensor],
    resources=build_resources(),
)
