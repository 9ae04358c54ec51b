"""Schedules that start one run per registered symbol."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # define_asset_job's return type, not exported by dagster
)

from brain_assets.defs.partitions import symbols


def per_symbol_runs(job_name: str, context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    # One run per symbol: a symbol whose data fails a blocking check stops only its own run.
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(partition_key=symbol, run_key=f"{job_name}:{symbol}:{day}")
        for symbol in context.instance.get_dynamic_partitions(symbols.name)  # type: ignore[arg-type]
    ]


def per_symbol_schedule(
    job: UnresolvedAssetJobDefinition,
    cron_schedule: str,
    *,
    running: bool = True,
    name: str | None = None,
) -> dg.ScheduleDefinition:
    """``name`` (default ``<job>_schedule``): at ``cron_schedule`` (UTC), one run of ``job`` per
    symbol; the run key keeps a re-evaluated tick from starting a symbol twice on one day."""

    @dg.schedule(
        name=name or f"{job.name}_schedule",
        job=job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
        ),
    )
    def schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        return per_symbol_runs(job.name, context)

    return schedule
