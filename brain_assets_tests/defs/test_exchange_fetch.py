"""The exchange fetcher against an object that keeps ccxt's fetch_ohlcv contract."""

from __future__ import annotations

import json
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest

from brain_assets.library import BrainLibrary
from brain_assets.market_data.exchange import FetchError, fetch_symbol

SYMBOL = "BTC/USDT"
HOUR_MS = 3_600_000
START = pd.Timestamp("2025-01-01", tz="UTC")


class FakeExchange:
    """ccxt's contract, with a real exchange's habits: pages that repeat the bar before
    ``since``, at most ``limit`` rows, the still-open candle at the end, a gap, errors on
    demand. Records every ``since`` asked for and every pause taken."""

    id = "fakex"
    rateLimit = 50  # noqa: N815 (ccxt's attribute name)
    enableRateLimit = False  # noqa: N815
    timeframes = {"1h": "1h", "1d": "1d"}  # noqa: RUF012

    def __init__(self, hours: int, *, gap: tuple[int, int] | None = None) -> None:
        rng = np.random.default_rng(0)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, hours)))
        self.times = [int(START.value // 1_000_000) + i * HOUR_MS for i in range(hours)]
        self.rows = {
            t: [t, c * 0.999, c * 1.002, c * 0.998, c, 10.0 + i % 7]
            for i, (t, c) in enumerate(zip(self.times, close, strict=True))
        }
        if gap is not None:
            for i in range(*gap):
                del self.rows[self.times[i]]
        # "Now" is 30 minutes into the last hour: its candle is still open.
        self.now_ms = self.times[-1] + HOUR_MS // 2
        self.requested: list[int] = []
        self.failures: list[BaseException] = []

    def load_markets(self) -> dict[str, Any]:
        return {SYMBOL: {"symbol": SYMBOL}}

    def milliseconds(self) -> int:
        return self.now_ms

    def arrive(self, hours: int) -> None:
        """New hours of bars appear; the clock moves with them."""
        last = self.times[-1]
        for i in range(1, hours + 1):
            t = last + i * HOUR_MS
            self.times.append(t)
            self.rows[t] = [t, 101.0, 102.0, 100.0, 101.5, 5.0]
        self.now_ms = self.times[-1] + HOUR_MS // 2

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[float]]:
        assert timeframe == "1h" and since is not None and limit is not None
        self.requested.append(since)
        if self.failures:
            raise self.failures.pop(0)
        if symbol != SYMBOL:
            raise ccxt.BadSymbol(f"fakex does not have market symbol {symbol}")
        # One bar of overlap before since, as some exchanges answer.
        page = [row for t, row in sorted(self.rows.items()) if t >= since - HOUR_MS]
        return [list(row) for row in page[:limit] if row[0] <= self.now_ms]


@pytest.fixture
def pauses() -> list[float]:
    """The pauses the fetcher asked for (none is really slept)."""
    return []


def fetch(brain: BrainLibrary, exchange: FakeExchange, pauses: list[float], **kw: Any) -> Any:
    return fetch_symbol(
        brain, exchange, SYMBOL, "1h", limit=500, sleep=pauses.append, backoff_s=1.0, **kw
    )


def test_a_year_of_bars_in_pages_then_only_the_new_ones(
    brain: BrainLibrary, pauses: list[float]
) -> None:
    exchange = FakeExchange(24 * 365, gap=(4000, 4005))
    exchange.failures = [ccxt.RateLimitExceeded("429 too many requests")]
    first = fetch(brain, exchange, pauses, since="2025-01-01")
    stored = brain.load_bars("fakex", SYMBOL, "1h")
    closed = 24 * 365 - 1 - 5  # the open candle never; the five missing hours are missing
    assert len(stored) == closed == first.new == first.received
    assert stored["timestamp"].is_unique and stored["timestamp"].is_monotonic_increasing
    assert stored["timestamp"].iloc[-1] == START + pd.Timedelta(hours=24 * 365 - 2)
    assert first.open_candles_dropped == 1
    # Pages of 500 rows, each repeating one bar; one refused with a 429 and asked again.
    assert first.requests == len(exchange.requested) - 1
    assert closed / 500 <= first.requests <= closed // 499 + 2
    assert 1.0 in pauses  # the backoff after the 429
    assert any(0 < p <= 0.05 for p in pauses)  # the exchange's rate limit between requests
    inventory = brain.bar_inventory(SYMBOL).iloc[0]
    assert (inventory["bars"], inventory["gaps"], inventory["missing_bars"]) == (closed, 1, 5)

    # Two days later: the second fetch asks only for what came after the last stored bar.
    exchange.arrive(48)
    exchange.requested.clear()
    second = fetch(brain, exchange, pauses, since="2025-01-01")
    last_stored = int(stored["timestamp"].iloc[-1].value // 1_000_000)
    assert exchange.requested[0] == last_stored + HOUR_MS
    assert second.new == 48 and second.changed == 0
    assert len(brain.load_bars("fakex", SYMBOL, "1h")) == closed + 48
    # Right away again: no closed bar can be new yet, so the exchange is not even asked.
    third = fetch(brain, exchange, pauses)
    assert (third.requests, third.new, third.received) == (0, 0, 0)


def test_an_empty_page_ends_the_fetch(brain: BrainLibrary, pauses: list[float]) -> None:
    exchange = FakeExchange(100)
    exchange.now_ms += 10 * HOUR_MS  # the exchange has no bars for the last ten hours
    result = fetch(brain, exchange, pauses, since=START)
    assert result.new == 100 and result.open_candles_dropped == 0
    assert exchange.requested[-1] == exchange.times[-1] + HOUR_MS  # answered with nothing


def test_permanent_errors_stop_with_a_clear_message_and_keep_what_was_stored(
    brain: BrainLibrary, pauses: list[float]
) -> None:
    exchange = FakeExchange(2000)
    with pytest.raises(ValueError, match="fakex has no symbol 'DOGE/USDT'"):
        fetch_symbol(brain, exchange, "DOGE/USDT", "1h", since=START, sleep=pauses.append)
    with pytest.raises(ValueError, match="does not offer timeframe '4h'"):
        fetch_symbol(brain, exchange, SYMBOL, "4h", since=START, sleep=pauses.append)
    with pytest.raises(ValueError, match="give since"):
        fetch(brain, exchange, pauses)
    # The network keeps failing after the first page: the fetch gives up after its retries,
    # the first page stays stored, and the next fetch resumes after it.
    original = exchange.fetch_ohlcv
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> list[list[float]]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ccxt.RequestTimeout("read timed out")
        return original(*args, **kwargs)

    exchange.fetch_ohlcv = flaky  # type: ignore[method-assign]
    with pytest.raises(FetchError, match="failed 3 times"):
        fetch(brain, exchange, pauses, since=START, max_retries=2)
    assert len(brain.load_bars("fakex", SYMBOL, "1h")) == 500
    exchange.fetch_ohlcv = original  # type: ignore[method-assign]
    resumed = fetch(brain, exchange, pauses)
    assert resumed.start == START + pd.Timedelta(hours=500)
    assert len(brain.load_bars("fakex", SYMBOL, "1h")) == 1999
    # An exchange error that is not transient stops at once.
    exchange.failures = [ccxt.ExchangeError("account suspended")]
    exchange.arrive(5)
    with pytest.raises(FetchError, match="refused"):
        fetch(brain, exchange, pauses)


def test_brain_data_fetch_command(
    brain: BrainLibrary,
    brain_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from brain_assets.cli.main import main
    from brain_assets.market_data import exchange as exchange_module

    fake = FakeExchange(1200)
    monkeypatch.setattr(exchange_module, "make_exchange", lambda name: fake)
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    argv = ["data", "fetch", "--exchange", "fakex", "--since", "2025-01-01", "--json"]
    # One symbol the exchange does not list: reported, the other still fetched, exit 1.
    assert main([*argv, "BTC/USDT", "DOGE/USDT"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out[0]["symbol"] == SYMBOL and out[0]["new"] == 1199
    assert "no symbol 'DOGE/USDT'" in out[1]["error"]
    assert main(["data", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["source"], row["symbol"], row["bars"]) == ("fakex", SYMBOL, 1199)


def test_the_exchange_bars_asset_fetches_into_the_store(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from brain_assets.defs.io_manager import BrainIOManager
    from brain_assets.defs.market.assets import exchange_bars
    from brain_assets.defs.market.resources import ExchangeResource
    from brain_assets.defs.resources import BrainResource
    from brain_assets.market_data import exchange as exchange_module

    fake = FakeExchange(800)
    monkeypatch.setattr(exchange_module, "make_exchange", lambda name: fake)
    store = BrainResource(dsn=brain_dsn)

    def run(exchange: ExchangeResource) -> dg.ExecuteInProcessResult:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("symbols", [SYMBOL])
            return dg.materialize(
                [exchange_bars],
                instance=instance,
                partition_key=SYMBOL,
                resources={
                    "brain": store,
                    "brain_io_manager": BrainIOManager(brain=store),
                    "exchange": exchange,
                },
                raise_on_error=False,
            )

    unconfigured = run(ExchangeResource())
    assert not unconfigured.success
    assert "no exchange configured" in str(unconfigured.all_events)
    result = run(ExchangeResource(exchange="fakex", since="2025-01-01"))
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
    assert metadata["bars_new"].value == 799
    assert metadata["stored_bars"].value == 799
    assert metadata["fetched_to"].value.startswith("2025-02-03")
    assert len(brain.load_bars("fakex", SYMBOL, "1h")) == 799
