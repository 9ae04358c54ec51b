"""Monitoring and rollback jobs, and the monitoring schedule."""

import dagster as dg

from brain_assets.defs.jobs import per_symbol_runs

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


@dg.schedule(
    job=monitoring_job,
    cron_schedule="30 */6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def monitoring_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    return per_symbol_runs("monitoring_job", context)
