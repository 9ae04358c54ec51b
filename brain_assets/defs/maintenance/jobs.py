"""The ``maintenance`` job and its monthly schedule (the work is in brain_assets.store, and in
brain_assets.plots for the chart files)."""

# No `from __future__ import annotations` here: Dagster inspects the op's annotations at
# definition time, and string annotations fail its context type check.

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from brain_assets.defs.partitions import symbols
from brain_assets.defs.resources import BrainResource
from brain_assets.plots import DEFAULT_CHART_RETENTION_DAYS, chart_root, prune_charts
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


class ChartRetentionConfig(dg.Config):
    retention_days: int = Field(
        default=DEFAULT_CHART_RETENTION_DAYS,
        description=(
            "Chart files not drawn again for this many days are deleted (at least 1); so are "
            "the chart folders of symbols no longer registered."
        ),
    )


@dg.op(
    name="prune_chart_files",
    description=(
        "Delete the chart files under $BRAIN_HOME/charts that no run drew within the retention "
        "window, and those of symbols no longer in the symbols partitions"
    ),
)
def prune_chart_files_op(
    context: dg.OpExecutionContext, config: ChartRetentionConfig
) -> dg.Output[dict[str, int]]:
    present = context.instance.get_dynamic_partitions(symbols.name)  # type: ignore[arg-type]
    root = chart_root()
    counts = prune_charts(root, retention_days=config.retention_days, symbols=present)
    context.log.info(
        ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items())
    )
    return dg.Output(
        counts,
        metadata={
            "charts_folder": dg.MetadataValue.path(str(root)),
            "retention_days": config.retention_days,
            **counts,
        },
    )


@dg.job(
    name="maintenance",
    description=(
        "Retention: old metrics, importance analyses and quality logs to the archive; old "
        "settled alerts out of the outbox; old chart files deleted"
    ),
)
def maintenance_job() -> None:
    archive_old_rows_op()
    prune_chart_files_op()


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
