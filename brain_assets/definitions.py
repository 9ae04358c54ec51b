"""The Dagster code location: ``dagster dev -m brain_assets.definitions`` or workspace.yaml."""

from __future__ import annotations

import os

import dagster as dg

from brain_assets.defs.alerts.sensors import alert_sensors
from brain_assets.defs.analysis.assets import feature_importance_trend
from brain_assets.defs.automation import automate_retrain, automation_sensor
from brain_assets.defs.executor import executor_from_env
from brain_assets.defs.io_manager import BrainIOManager
from brain_assets.defs.jobs import (
    daily_retrain,
    daily_retrain_schedule,
    nightly_feature_analysis,
    nightly_feature_analysis_schedule,
)
from brain_assets.defs.maintenance.jobs import maintenance_job, maintenance_schedule
from brain_assets.defs.maintenance.publish import publish_run_values
from brain_assets.defs.market.assets import exchange_bars
from brain_assets.defs.market.freshness import bars_fresh, bars_freshness_sensor
from brain_assets.defs.market.jobs import fetch_bars, fetch_bars_schedule
from brain_assets.defs.market.resources import exchange_configured, exchange_resource
from brain_assets.defs.monitoring.assets import live_model_metrics, model_registry_state
from brain_assets.defs.monitoring.jobs import monitoring_job, monitoring_schedule, rollback_job
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.monitoring.sensors import rollback_sensor
from brain_assets.defs.partitions import IO_MANAGER_KEY
from brain_assets.defs.resources import (
    DecisionResource,
    RetrainResource,
    brain_resource,
    market_resource,
)
from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
from brain_assets.logs import LOG_DIR_ENV, configure_logging, logging_configured

if os.environ.get(LOG_DIR_ENV) and not logging_configured():
    # `brain dev` sets the folder: the UI, daemon and run workers then write one JSON log. A
    # process that configured its logging already (the `brain` command, its run workers) keeps
    # its own console level.
    configure_logging()


def build_resources() -> dict[str, object]:
    brain = brain_resource()
    return {
        "brain": brain,
        IO_MANAGER_KEY: BrainIOManager(brain=brain),
        "market": market_resource(),
        "exchange": exchange_resource(),
        # The LSTM trains with the others by default; the demo stays near one minute on 2 cores.
        "retrain": RetrainResource(include_lstm=True),
        "monitoring": MonitoringResource(),
        "decisions": DecisionResource(),
    }


defs = dg.Definitions(
    assets=[
        exchange_bars,
        # Started by new bars where the deployment fetches them, else by the 01:00 UTC tick.
        *automate_retrain(DAILY_RETRAIN_ASSETS, fetch=exchange_configured()),
        feature_importance_trend,
        live_model_metrics,
        model_registry_state,
    ],
    asset_checks=[bars_fresh],
    jobs=[
        fetch_bars,
        daily_retrain,
        nightly_feature_analysis,
        monitoring_job,
        rollback_job,
        maintenance_job,
    ],
    schedules=[
        fetch_bars_schedule,
        daily_retrain_schedule,
        nightly_feature_analysis_schedule,
        monitoring_schedule,
        maintenance_schedule,
    ],
    sensors=[
        automation_sensor,
        bars_freshness_sensor,
        rollback_sensor,
        publish_run_values,
        *alert_sensors,
    ],
    resources=build_resources(),
    executor=executor_from_env(),
)
