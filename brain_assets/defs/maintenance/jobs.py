"""The ``maintenance`` job and its monthly schedule (the work is in brain_assets.store)."""

# No `from __future__ import annotations` here: Dagster inspects the op's annotations at
# definition time, and string annotations fail its context type check.

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from brain_assets.defs.resources import BrainResource
from brain_assets.store.maintenance import DEFAULT_RETENTION_DAYS, run_retention


class MaintenanceConfig(dg.Config):
    retention_days: int = Field(
        default=DEFAULT_RETENTION_DAYS,
        description=(
            "Rows older than this many days move to the archive tables, and alerts delivered or "
            "given up on longer ago leave the alert outbox (at least 1)."
        ),
    )


@dg.op(
    name="archive_old_rows",
    description=(
        "Move model metrics, feature importance and data-quality logs older than the retention "
        "window into their archive tables (rows of active models stay), then ANALYZE; delete "
        "asset values of runs that never succeeded, after a week, and alerts delivered or given "
        "up on before the window (pending alerts stay)"
    ),
)
def archive_old_rows_op(
    context: dg.OpExecutionContext, config: MaintenanceConfig, brain: BrainResource
) -> dg.Output[dict[str, int]]:
    moved = run_retention(brain.library, retention_days=config.retention_days)
    context.log.info(
        "archived " + ", ".join(f"{count} {table} rows" for table, count in moved.items())
    )
    return dg.Output(
        moved,
        metadata={
            "retention_days": config.retention_days,
            **{f"archived_{table}": count for table, count in moved.items()},
        },
    )


@dg.job(
    name="maintenance",
    description=(
        "Retention: old metrics, importance analyses and quality logs to the archive; old "
        "settled alerts out of the outbox"
    ),
)
def maintenance_job() -> None:
    archive_old_rows_op()


@dg.schedule(
    job=maintenance_job,
    cron_schedule="0 4 1 * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def maintenance_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    # The run key keeps it to one run per month when the daemon evaluates a tick again.
    when = context.scheduled_execution_time or datetime.now(UTC)
    return dg.RunRequest(run_key=f"maintenance:{when:%Y-%m}")
