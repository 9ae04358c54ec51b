"""Fetch OHLCV bars from an exchange through ccxt into the Brain's bar store.

``fetch_symbol`` pages through ``exchange.fetch_ohlcv(symbol, timeframe, since, limit)``, ccxt's
unified call, and writes each page to the bar store in one transaction. What it relies on from
the exchange object is ccxt's contract: ``id``, ``rateLimit`` (milliseconds between requests),
``timeframes`` (the timeframes offered), ``load_markets()``, ``milliseconds()`` and
``fetch_ohlcv`` returning ``[[open_time_ms, open, high, low, close, volume], ...]`` from
``since`` on, oldest first, at most ``limit`` rows; errors are ccxt's exception classes.

* **Resume.** With bars stored for (exchange, symbol, timeframe) the fetch starts one bar after
  the last one stored; ``since`` matters only for the first fetch.
* **Closed candles only.** A bar whose period has not ended (open time + timeframe after now)
  is still changing: it is dropped and fetched again next time.
* **Overlap.** Exchanges repeat the bar at ``since`` or return bars before it; rows before the
  cursor are ignored, and the store's upsert would not duplicate them anyway.
* **Rate limit.** With ccxt's own throttle on (``enableRateLimit``, ccxt's default) nothing is
  added; otherwise ``rateLimit`` milliseconds pass between two requests.
* **Errors.** ccxt's ``NetworkError`` family (timeouts, rate-limit answers, exchange
  unavailable) is retried with exponential backoff; after ``max_retries`` the fetch stops with
  a clear error, keeping every page stored so far (the next fetch resumes after them). An
  unknown symbol, an unsupported timeframe or any other exchange error stops at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from brain_assets.errors import BrainError
from brain_assets.events import log_event
from brain_assets.store.bars import TIMEFRAME_SECONDS
from brain_assets.store.library import BrainLibrary

DEFAULT_PAGE = 500
DEFAULT_RETRIES = 5


class FetchError(BrainError, RuntimeError):
    """The exchange kept failing (network) or refused the request; stored pages stay stored."""


@dataclass(frozen=True)
class FetchResult:
    exchange: str
    symbol: str
    timeframe: str
    start: pd.Timestamp
    """The first open time asked for (one bar after the last stored, or ``since``)."""
    requests: int
    received: int
    new: int
    changed: int
    open_candles_dropped: int
    first_bar: pd.Timestamp | None
    last_bar: pd.Timestamp | None

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "start": self.start.isoformat(),
            "requests": self.requests,
            "received": self.received,
            "new": self.new,
            "changed": self.changed,
            "open_candles_dropped": self.open_candles_dropped,
            "first_bar": None if self.first_bar is None else self.first_bar.isoformat(),
            "last_bar": None if self.last_bar is None else self.last_bar.isoformat(),
        }


Progress = Callable[[str, pd.Timestamp, int], None]
"""Called after each stored page with the symbol, the last bar stored and the bars so far."""


def make_exchange(exchange_id: str, **options: Any) -> Any:
    """The ccxt exchange ``exchange_id`` (``binance``, ``kraken``, ...) with its rate limiter on.

    Needs the ``exchange`` extra: ``pip install 'brain-assets[exchange]'``.
    """
    try:
        import ccxt
    except ImportError as exc:  # pragma: no cover - the extra is installed by make install
        raise FetchError(
            "fetching from an exchange needs ccxt: pip install 'brain-assets[exchange]'"
        ) from exc
    if exchange_id not in ccxt.exchanges:
        raise ValueError(
            f"exchange {exchange_id!r} is not one ccxt knows (e.g. binance, kraken, coinbase)"
        )
    return getattr(ccxt, exchange_id)({"enableRateLimit": True, **options})


def _ccxt_errors() -> tuple[type[BaseException], type[BaseException], type[BaseException]]:
    """(transient, bad symbol, any other exchange error) from ccxt."""
    import ccxt

    return ccxt.NetworkError, ccxt.BadSymbol, ccxt.BaseError


def _utc(value: object, field: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: cannot read {value!r} as a time") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def fetch_symbol(
    brain: BrainLibrary,
    exchange: Any,
    symbol: str,
    timeframe: str,
    *,
    since: object = None,
    limit: int = DEFAULT_PAGE,
    now: object = None,
    max_retries: int = DEFAULT_RETRIES,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> FetchResult:
    """Fetch ``symbol``'s closed ``timeframe`` bars from ``exchange`` into the bar store.

    ``since`` (a time) is where a symbol with no stored bars starts; ``now`` defaults to the
    exchange's clock. Raises ValueError for a bad request (unknown symbol or timeframe, no
    ``since`` for a first fetch) and FetchError when the exchange keeps failing.
    """
    transient, bad_symbol, exchange_error = _ccxt_errors()
    name = str(exchange.id)
    if timeframe not in TIMEFRAME_SECONDS:
        raise ValueError(
            f"timeframe {timeframe!r} is not one the bar store keeps: "
            f"{', '.join(TIMEFRAME_SECONDS)}"
        )
    offered = getattr(exchange, "timeframes", None)
    if offered and timeframe not in offered:
        raise ValueError(f"exchange {name} does not offer timeframe {timeframe!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    last_request = [float("-inf")]

    def call(what: str, function: Callable[[], Any]) -> Any:
        for attempt in range(max_retries + 1):
            if not getattr(exchange, "enableRateLimit", False):
                wait = float(exchange.rateLimit) / 1000 - (time.monotonic() - last_request[0])
                if wait > 0:
                    sleep(wait)
            last_request[0] = time.monotonic()
            try:
                return function()
            except bad_symbol as exc:
                raise ValueError(f"exchange {name} has no symbol {symbol!r}: {exc}") from exc
            except transient as exc:
                if attempt == max_retries:
                    raise FetchError(
                        f"{name} {symbol}: {what} failed {max_retries + 1} times "
                        f"({type(exc).__name__}: {exc}); the bars stored so far are kept and the "
                        "next fetch resumes after them"
                    ) from exc
                delay = backoff_s * 2**attempt
                log_event(
                    "exchange_retry",
                    logging.WARNING,
                    exchange=name,
                    symbol=symbol,
                    attempt=attempt + 1,
                    delay_s=delay,
                    error=f"{type(exc).__name__}: {exc}",
                )
                sleep(delay)
            except exchange_error as exc:
                raise FetchError(
                    f"{name} {symbol}: {what} refused ({type(exc).__name__}: {exc})"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    markets = call("load_markets", exchange.load_markets)
    if markets is not None and symbol not in markets:
        raise ValueError(f"exchange {name} has no symbol {symbol!r}")
    last = brain.last_bar_time(name, symbol, timeframe)
    if last is not None:
        start = last + step
    elif since is not None:
        start = _utc(since, "since").ceil(step)
    else:
        raise ValueError(
            f"no {timeframe} bars of {symbol} from {name} are stored yet: give since (the first "
            "bar to fetch)"
        )
    clock = _utc(now, "now") if now is not None else _utc(exchange.milliseconds() * 1e6, "now")
    cursor = start
    requests = received = new = changed = dropped = 0
    first_bar: pd.Timestamp | None = None
    last_bar: pd.Timestamp | None = None
    while cursor + step <= clock:
        since_ms = int(cursor.value // 1_000_000)

        def page_call(since_ms: int = since_ms) -> Any:
            return exchange.fetch_ohlcv(symbol, timeframe, since=since_ms, limit=limit)

        page = call(f"fetch_ohlcv since {cursor.isoformat()}", page_call)
        requests += 1
        if not page:
            break
        frame = _page_frame(page, name, symbol)
        frame = frame[frame["timestamp"] >= cursor]
        closed = frame["timestamp"] + step <= clock
        dropped += int((~closed).sum())
        frame = frame[closed]
        if frame.empty:
            break  # nothing new and closed: the open candle, or a page before the cursor
        batch = brain.store_bars(
            name,
            symbol,
            timeframe,
            frame,
            details={"since": cursor.isoformat(), "limit": limit, "rows_in_page": len(page)},
        )
        received += batch.received
        new += batch.new
        changed += batch.changed
        first_bar = first_bar or frame["timestamp"].iloc[0]
        last_bar = frame["timestamp"].iloc[-1]
        cursor = last_bar + step
        if progress is not None:
            progress(symbol, last_bar, received)
    result = FetchResult(
        exchange=name,
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        requests=requests,
        received=received,
        new=new,
        changed=changed,
        open_candles_dropped=dropped,
        first_bar=first_bar,
        last_bar=last_bar,
    )
    log_event("bars_fetched", **result.to_json())
    return result


def _page_frame(page: Any, exchange: str, symbol: str) -> pd.DataFrame:
    """A ccxt OHLCV page as an OHLCV frame, or a ValueError naming what is wrong with it."""
    try:
        frame = pd.DataFrame(
            [row[:6] for row in page],
            columns=["time_ms", "open", "high", "low", "close", "volume"],
        )
        frame["timestamp"] = pd.to_datetime(frame.pop("time_ms"), unit="ms", utc=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{exchange} {symbol}: a page of bars is not ccxt's OHLCV: {exc}") from exc
    columns = ["timestamp", "open", "high", "low", "close", "volume"]
    frame = frame[columns]
    for column in columns[1:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    # Exchanges answer oldest first; sort defensively and keep one row per open time (the last).
    return (
        frame.sort_values("timestamp", kind="stable")
        .drop_duplicates("timestamp", keep="last")
        .reset_index(drop=True)
    )
