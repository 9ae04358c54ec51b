"""fetch_bars: the daily fetch, half an hour before the daily retrain reads the bars."""

import dagster as dg

from brain_assets.defs.jobs import per_symbol_runs
from brain_assets.defs.market.resources import exchange_configured

fetch_bars = dg.define_asset_job(
    "fetch_bars",
    selection=dg.AssetSelection.groups("market_feed"),
    description="Each symbol's new closed bars from the configured exchange into the bar store",
)


@dg.schedule(
    job=fetch_bars,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    # Running only in a deployment that names an exchange (BRAIN_EXCHANGE): elsewhere there is
    # nothing to fetch from, and a daily failed run would only be noise.
    default_status=(
        dg.DefaultScheduleStatus.RUNNING
        if exchange_configured()
        else dg.DefaultScheduleStatus.STOPPED
    ),
)
def fetch_bars_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    return per_symbol_runs("fetch_bars", context)
