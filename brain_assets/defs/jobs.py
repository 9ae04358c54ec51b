"""Jobs and their schedules."""

import dagster as dg

from brain_assets.defs.partitions import symbols


def per_symbol_runs(job_name: str, context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    # One run per symbol: a symbol whose data fails a blocking check stops only its own run.
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(partition_key=symbol, run_key=f"{job_name}:{symbol}:{day}")
        for symbol in context.instance.get_dynamic_partitions(symbols.name)  # type: ignore[arg-type]
    ]


daily_retrain = dg.define_asset_job(
    "daily_retrain",
    selection=dg.AssetSelection.groups("daily_retrain"),
    description="Market data, quality checks, features, models, evaluation, registry, importance",
)

nightly_feature_analysis = dg.define_asset_job(
    "nightly_feature_analysis",
    selection=dg.AssetSelection.groups("nightly_feature_analysis"),
    description="Importance of each active model on the latest bars and its rank trend",
)


@dg.schedule(
    job=daily_retrain,
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_retrain_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    return per_symbol_runs("daily_retrain", context)


@dg.schedule(
    job=nightly_feature_analysis,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_feature_analysis_schedule(
    context: dg.ScheduleEvaluationContext,
) -> list[dg.RunRequest]:
    return per_symbol_runs("nightly_feature_analysis", context)
