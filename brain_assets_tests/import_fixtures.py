"""Bar files in the layouts ``brain data import --format`` reads, generated into a test's folder.

Each writer takes a canonical frame (``timestamp, open, high, low, close, volume``, oldest
first) and writes it as the layout holds it, so that a test can compare what was stored with
the frame it started from.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")
BANNER = "https://www.CryptoDataDownload.com"
BINANCE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)
EPOCH_SCALE = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000}


def bars(n: int, *, start: pd.Timestamp = START, freq: str = "1h", seed: int = 0) -> pd.DataFrame:
    """``n`` plausible OHLCV bars from ``start``, oldest first."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])[:n]
    spread = np.abs(rng.normal(0, 0.003, n)) * close
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq=freq),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 1000, n),
        }
    )


def repeat_rows(
    frame: pd.DataFrame, positions: list[int], *, change: dict[str, float] | None = None
) -> pd.DataFrame:
    """``frame`` with the bars at ``positions`` listed twice, each copy right after its original,
    as exports sometimes list a bar; ``change`` adds to the copies' values (conflicting copies).
    The writers' extra columns (trade counts, close times) still differ between the copies."""
    copies = frame.iloc[positions].copy()
    for name, delta in (change or {}).items():
        copies[name] = copies[name] + delta
    copies.index = copies.index + 0.5
    return pd.concat([frame, copies]).sort_index().reset_index(drop=True)


def epoch(frame: pd.DataFrame, unit: str) -> np.ndarray:
    """The frame's timestamps as integer epoch ``unit`` (s, ms or us)."""
    return pd.DatetimeIndex(frame["timestamp"]).asi8 // EPOCH_SCALE[unit]


def write_binance_dump(
    folder: Path,
    frame: pd.DataFrame,
    *,
    name: str = "BTCUSDT-1h-2024-01",
    unit: str = "ms",
    header: bool = False,
    zipped: bool = True,
) -> Path:
    """A data.binance.vision kline dump: 12 columns, open times in ``unit``, one CSV in a zip
    (``name.zip`` holding ``name.csv``) or a plain ``name.csv``."""
    step = int(pd.Series(frame["timestamp"]).diff().median().value) if len(frame) > 1 else 0
    opens = epoch(frame, unit)
    closes = opens + step // EPOCH_SCALE[unit] - 1
    rows = pd.DataFrame(
        {
            "open_time": opens,
            "open": frame["open"],
            "high": frame["high"],
            "low": frame["low"],
            "close": frame["close"],
            "volume": frame["volume"],
            "close_time": closes,
            "quote_volume": frame["volume"] * frame["close"],
            "count": np.arange(len(frame)) + 100,
            "taker_buy_volume": frame["volume"] / 2,
            "taker_buy_quote_volume": frame["volume"] * frame["close"] / 2,
            "ignore": 0,
        }
    )
    text = rows.to_csv(index=False, header=header)
    if header:
        assert text.startswith(BINANCE_HEADER)
    folder.mkdir(parents=True, exist_ok=True)
    if not zipped:
        path = folder / f"{name}.csv"
        path.write_text(text)
        return path
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.csv", text)
    return path


def write_cryptodatadownload(
    folder: Path,
    frame: pd.DataFrame,
    *,
    name: str = "Binance_BTCUSDT_1h",
    symbol: str | None = "BTC/USDT",
    unix: str | None = "s",
    am_pm: bool = False,
    banner: bool = True,
    quote: str = "USDT",
    base: str = "BTC",
) -> Path:
    """A CryptoDataDownload CSV, newest first: a banner, then ``unix,date,symbol,...`` (or the
    older ``date,symbol,...`` when ``unix`` is None, with ``09-AM`` times when ``am_pm``). The
    quote volume column holds volume x close, so a test sees which one was read."""
    newest_first = frame.iloc[::-1].reset_index(drop=True)
    stamps = pd.DatetimeIndex(newest_first["timestamp"])
    dates = stamps.strftime("%Y-%m-%d %I-%p") if am_pm else stamps.strftime("%Y-%m-%d %H:%M:%S")
    columns: dict[str, object] = {}
    if unix is not None:
        columns["unix"] = epoch(newest_first, unix)
    columns["date"] = dates
    columns["symbol"] = symbol if symbol is not None else ""
    for name_ in ("open", "high", "low", "close"):
        columns[name_] = newest_first[name_]
    columns[f"Volume {base}"] = newest_first["volume"]
    columns[f"Volume {quote}"] = newest_first["volume"] * newest_first["close"]
    if unix is not None:
        columns["tradecount"] = np.arange(len(frame)) + 10
    text = pd.DataFrame(columns).to_csv(index=False)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    path.write_text((BANNER + "\n" if banner else "") + text)
    return path


def write_ccxt(folder: Path, frame: pd.DataFrame, *, symbol: str = "BTC/USDT") -> Path:
    """The files source's own layout: ``BTC-USDT.csv`` with ISO timestamps."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol.replace('/', '-')}.csv"
    frame.to_csv(path, index=False)
    return path
