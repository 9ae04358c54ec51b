"""The daily retrain and nightly feature-analysis jobs and their schedules."""

import dagster as dg

from brain_assets.defs.automation import RETRAIN_CRON
from brain_assets.defs.partitions import DAILY_RETRAIN_GROUP
from brain_assets.defs.schedules import per_symbol_schedule

daily_retrain = dg.define_asset_job(
    "daily_retrain",
    selection=dg.AssetSelection.groups(DAILY_RETRAIN_GROUP),
    description="Market data, quality checks, features, models, evaluation, registry, importance",
)

nightly_feature_analysis = dg.define_asset_job(
    "nightly_feature_analysis",
    selection=dg.AssetSelection.groups("nightly_feature_analysis"),
    description="Importance of each active model on the latest bars and its rank trend",
)

# Stopped: the retrain's automation conditions start it (defs/automation.py); both running would
# retrain every symbol twice. Start it (and stop default_automation_condition_sensor) to go back to
# the clock alone: docs/operations.md.
daily_retrain_schedule = per_symbol_schedule(daily_retrain, RETRAIN_CRON, running=False)
nightly_feature_analysis_schedule = per_symbol_schedule(nightly_feature_analysis, "0 3 * * *")
