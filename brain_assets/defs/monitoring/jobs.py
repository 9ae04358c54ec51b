"""Monitoring and rollback jobs, and the monitoring schedule."""

import dagster as dg

from brain_assets.defs.schedules import per_symbol_schedule

monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=dg.AssetSelection.assets("live_model_metrics"),
    description="Evaluate each active model on its latest unseen bars",
)

rollback_job = dg.define_asset_job(
    "rollback_job",
    selection=dg.AssetSelection.assets("model_registry_state"),
    description="check_and_rollback for one symbol, then record the active version",
)

monitoring_schedule = per_symbol_schedule(
    monitoring_job, "30 */6 * * *", name="monitoring_schedule"
)
