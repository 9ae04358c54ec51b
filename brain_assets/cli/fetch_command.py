"""``brain data fetch``: closed bars from an exchange into the bar store, resumable."""

from __future__ import annotations

import argparse
from typing import Any

from brain_assets.cli.output import emit, table
from brain_assets.environment import DEFAULT_TIMEFRAME
from brain_assets.market_data.exchange import DEFAULT_PAGE


def register(data_commands: Any) -> None:
    fetch = data_commands.add_parser(
        "fetch",
        help="fetch closed OHLCV bars from an exchange (ccxt) into the bar store",
        description="Pages through the exchange's OHLCV history for each symbol, from the bar\n"
        "after the last one stored (or --since for a symbol fetched for the first time),\n"
        "drops the still-open candle, honours the exchange's rate limit, retries network\n"
        "errors and writes each page in one transaction.",
        epilog="example:\n  brain data fetch BTC/USDT ETH/USDT --exchange binance --timeframe 1h",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch.add_argument("symbols", nargs="+", metavar="SYMBOL")
    fetch.add_argument("--exchange", required=True, help="a ccxt exchange id, e.g. binance")
    fetch.add_argument("--timeframe", default=DEFAULT_TIMEFRAME)
    fetch.add_argument("--since", default=None, help="first bar of a new symbol (ISO time)")
    fetch.add_argument("--limit", type=int, default=DEFAULT_PAGE, help="bars per request")
    fetch.add_argument("--json", action="store_true", help="machine-readable output")
    fetch.set_defaults(handler=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    # Looked up at each call: tests replace make_exchange with a fake exchange.
    from brain_assets.library import BrainLibrary
    from brain_assets.market_data.exchange import FetchError, fetch_symbol, make_exchange

    exchange = make_exchange(args.exchange)
    results: list[dict[str, Any]] = []
    failed: list[str] = []

    def progress(symbol: str, last: Any, count: int) -> None:
        if not args.json:
            print(f"  {symbol}: {count} bars, up to {last:%Y-%m-%d %H:%M}", flush=True)

    with BrainLibrary() as brain:
        for symbol in args.symbols:
            try:
                fetched = fetch_symbol(
                    brain,
                    exchange,
                    symbol,
                    args.timeframe,
                    since=args.since,
                    limit=args.limit,
                    progress=progress,
                )
            except (ValueError, FetchError) as exc:
                # One symbol's failure is reported and the others are still fetched.
                failed.append(symbol)
                results.append({"symbol": symbol, "error": str(exc)})
                if not args.json:
                    print(f"  {symbol}: FAILED: {exc}", flush=True)
                continue
            results.append(fetched.to_json())
    columns = ["symbol", "new", "changed", "first_bar", "last_bar", "requests", "error"]
    emit(args, results, table(results, columns))
    return 1 if failed else 0
