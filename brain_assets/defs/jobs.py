"""The daily retrain and nightly feature-analysis jobs and their schedules."""

import dagster as dg

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

daily_retrain_schedule = per_symbol_schedule(daily_retrain, "0 1 * * *")
nightly_feature_analysis_schedule = per_symbol_schedule(nightly_feature_analysis, "0 3 * * *")
