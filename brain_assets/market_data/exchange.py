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
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from brain_assets.errors import BrainError
from brain_assets.events import log_event
from brain_assets.store.bars import TIMEFRAME_SECONDS, BarBatch
from brain_assets.store.library import BrainStore

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
    brain: BrainStore,
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
    call = _ExchangeCaller(exchange, symbol, _ccxt_errors(), max_retries, backoff_s, sleep)
    name = call.name
    _check_request(exchange, name, timeframe, limit)
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    markets = call("load_markets", exchange.load_markets)
    if markets is not None and symbol not in markets:
        raise ValueError(f"exchange {name} has no symbol {symbol!r}")
    start = _start_time(brain, name, symbol, timeframe, step, since)
    clock = _utc(now, "now") if now is not None else _utc(exchange.milliseconds() * 1e6, "now")
    tally = _Tally()
    cursor = start
    while cursor + step <= clock:
        since_ms = int(cursor.value // 1_000_000)

        def page_call(since_ms: int = since_ms) -> Any:
            return exchange.fetch_ohlcv(symbol, timeframe, since=since_ms, limit=limit)

        page = call(f"fetch_ohlcv since {cursor.isoformat()}", page_call)
        tally.requests += 1
        if not page:
            break
        frame = _closed_rows(_page_frame(page, name, symbol), cursor, step, clock, tally)
        if frame.empty:
            break  # nothing new and closed: the open candle, or a page before the cursor
        batch = brain.store_bars(
            name,
            symbol,
            timeframe,
            frame,
            details={"since": cursor.isoformat(), "limit": limit, "rows_in_page": len(page)},
        )
        last_bar = tally.add_page(batch, frame)
        cursor = last_bar + step
        if progress is not None:
            progress(symbol, last_bar, tally.received)
    result = tally.result(name, symbol, timeframe, start)
    log_event("bars_fetched", **result.to_json())
    return result


def _check_request(exchange: Any, name: str, timeframe: str, limit: int) -> None:
    """A ValueError for a timeframe the store or the exchange lacks, or a bad page size."""
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


def _start_time(
    brain: BrainStore,
    name: str,
    symbol: str,
    timeframe: str,
    step: pd.Timedelta,
    since: object,
) -> pd.Timestamp:
    """One bar after the last stored, else ``since`` rounded up to a bar boundary."""
    last = brain.last_bar_time(name, symbol, timeframe)
    if last is not None:
        return last + step
    if since is not None:
        return _utc(since, "since").ceil(step)
    raise ValueError(
        f"no {timeframe} bars of {symbol} from {name} are stored yet: give since (the first "
        "bar to fetch)"
    )


def _closed_rows(
    frame: pd.DataFrame,
    cursor: pd.Timestamp,
    step: pd.Timedelta,
    clock: pd.Timestamp,
    tally: _Tally,
) -> pd.DataFrame:
    """The page's rows from ``cursor`` on whose period has ended; counts the open ones dropped."""
    frame = frame[frame["timestamp"] >= cursor]
    closed = frame["timestamp"] + step <= clock
    tally.open_candles_dropped += int((~closed).sum())
    return frame[closed]


class _ExchangeCaller:
    """Calls the exchange with throttling, retrying transient errors with exponential backoff.

    The throttle applies only when ccxt's own limiter is off, so requests are not delayed twice.
    """

    def __init__(
        self,
        exchange: Any,
        symbol: str,
        errors: tuple[type[BaseException], type[BaseException], type[BaseException]],
        max_retries: int,
        backoff_s: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.exchange = exchange
        self.name = str(exchange.id)
        self.symbol = symbol
        self.transient, self.bad_symbol, self.exchange_error = errors
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.last_request = float("-inf")

    def __call__(self, what: str, function: Callable[[], Any]) -> Any:
        name, symbol, max_retries = self.name, self.symbol, self.max_retries
        for attempt in range(max_retries + 1):
            self._throttle()
            try:
                return function()
            except self.bad_symbol as exc:
                raise ValueError(f"exchange {name} has no symbol {symbol!r}: {exc}") from exc
            except self.transient as exc:
                if attempt == max_retries:
                    raise FetchError(
                        f"{name} {symbol}: {what} failed {max_retries + 1} times "
                        f"({type(exc).__name__}: {exc}); the bars stored so far are kept and the "
                        "next fetch resumes after them"
                    ) from exc
                self._back_off(attempt, exc)
            except self.exchange_error as exc:
                raise FetchError(
                    f"{name} {symbol}: {what} refused ({type(exc).__name__}: {exc})"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _throttle(self) -> None:
        if not getattr(self.exchange, "enableRateLimit", False):
            since_last = time.monotonic() - self.last_request
            wait = float(self.exchange.rateLimit) / 1000 - since_last
            if wait > 0:
                self.sleep(wait)
        self.last_request = time.monotonic()

    def _back_off(self, attempt: int, exc: BaseException) -> None:
        delay = self.backoff_s * 2**attempt
        log_event(
            "exchange_retry",
            logging.WARNING,
            exchange=self.name,
            symbol=self.symbol,
            attempt=attempt + 1,
            delay_s=delay,
            error=f"{type(exc).__name__}: {exc}",
        )
        self.sleep(delay)


@dataclass
class _Tally:
    """What the pages of one fetch added up to."""

    requests: int = 0
    received: int = 0
    new: int = 0
    changed: int = 0
    open_candles_dropped: int = 0
    first_bar: pd.Timestamp | None = None
    last_bar: pd.Timestamp | None = None

    def add_page(self, batch: BarBatch, frame: pd.DataFrame) -> pd.Timestamp:
        """Counts a stored page; returns its last bar."""
        self.received += batch.received
        self.new += batch.new
        self.changed += batch.changed
        self.first_bar = self.first_bar or frame["timestamp"].iloc[0]
        last_bar: pd.Timestamp = frame["timestamp"].iloc[-1]
        self.last_bar = last_bar
        return last_bar

    def result(self, name: str, symbol: str, timeframe: str, start: pd.Timestamp) -> FetchResult:
        # The tally's fields are FetchResult's counts, by name.
        return FetchResult(
            exchange=name, symbol=symbol, timeframe=timeframe, start=start, **asdict(self)
        )


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
