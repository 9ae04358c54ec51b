"""exchange_bars: each symbol's new closed bars fetched into the bar store."""

from typing import Any

import dagster as dg
import pandas as pd

from brain_assets.defs.market.freshness import BARS_FRESHNESS, LAST_BAR_KEY
from brain_assets.defs.market.resources import ExchangeResource
from brain_assets.defs.partitions import IO_MANAGER_KEY, ONE_SYMBOL_PER_RUN, run_symbols, symbols
from brain_assets.defs.progress import each_symbol
from brain_assets.defs.resources import BrainResource
from brain_assets.defs.retries import retry_transient
from brain_assets.errors import BrainError

GROUP = "market_feed"


@dg.asset(
    partitions_def=symbols,
    backfill_policy=ONE_SYMBOL_PER_RUN,
    group_name=GROUP,
    io_manager_key=IO_MANAGER_KEY,
    kinds={"ccxt", "postgres"},
    freshness_policy=BARS_FRESHNESS,
)
@retry_transient
def exchange_bars(
    context: dg.AssetExecutionContext, exchange: ExchangeResource, brain: BrainResource
) -> dict[str, dict[str, Any]]:
    """The symbol's closed bars since the last one stored, from the configured exchange into
    the bar store (``bars``; one transaction per page; resumable). market_data reads them."""
    try:
        client = exchange.client()
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
    from brain_assets.market_data.exchange import FetchError, fetch_symbol

    since = exchange.since or None
    result: dict[str, dict[str, Any]] = {}
    for symbol in each_symbol(context, "exchange_bars", run_symbols(context)):
        try:
            fetched = fetch_symbol(
                brain.library,
                client,
                symbol,
                exchange.timeframe,
                since=since,
                limit=exchange.page_limit,
                progress=lambda s, last, n: context.log.info(f"{s}: {n} bars, up to {last}"),
            )
        except (ValueError, FetchError, BrainError) as exc:
            raise dg.Failure(description=f"{symbol}: {exc}") from exc
        result[symbol] = fetched.to_json()
        inventory = brain.library.bar_inventory(symbol)
        mine = inventory[
            (inventory["source"] == fetched.exchange)
            & (inventory["timeframe"] == exchange.timeframe)
        ]
        stored = mine.iloc[0].to_dict() if not mine.empty else {}
        context.add_asset_metadata(
            {
                "exchange": fetched.exchange,
                "timeframe": exchange.timeframe,
                "requests": fetched.requests,
                "bars_new": fetched.new,
                "bars_changed": fetched.changed,
                "fetched_from": str(fetched.first_bar or "nothing new"),
                "fetched_to": str(fetched.last_bar or "nothing new"),
                "open_candles_dropped": fetched.open_candles_dropped,
                "stored_bars": int(stored.get("bars", 0)),
                "stored_range": f"{stored.get('first_bar')} .. {stored.get('last_bar')}",
                "stored_gaps": int(stored.get("gaps", 0)),
                **_last_bar(stored.get("last_bar")),
            },
            partition_key=symbol,
        )
    return result


def _last_bar(value: object) -> dict[str, dg.MetadataValue]:
    """The newest stored bar's open time, which the bars_fresh check judges (none: no bars)."""
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return {}
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return {LAST_BAR_KEY: dg.MetadataValue.timestamp(stamp.to_pydatetime())}
