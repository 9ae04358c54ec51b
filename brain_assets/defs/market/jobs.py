"""fetch_bars: the daily fetch, half an hour before the daily retrain reads the bars."""

import dagster as dg

from brain_assets.defs.market.resources import exchange_configured
from brain_assets.defs.schedules import per_symbol_schedule

fetch_bars = dg.define_asset_job(
    "fetch_bars",
    selection=dg.AssetSelection.groups("market_feed"),
    description="Each symbol's new closed bars from the configured exchange into the bar store",
)

# Running only in a deployment that names an exchange (BRAIN_EXCHANGE): elsewhere there is
# nothing to fetch from, and a daily failed run would only be noise.
fetch_bars_schedule = per_symbol_schedule(fetch_bars, "30 0 * * *", running=exchange_configured())
