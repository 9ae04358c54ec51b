"""What every market-data source hands to the pipeline, and how a source is picked by name.

A source turns a symbol such as ``BTC/USDT`` into a :class:`MarketData`: the OHLCV frame plus
where it came from. The frame follows one convention everywhere:

* columns exactly ``timestamp`` (``datetime64[ns, UTC]``), ``open``, ``high``, ``low``,
  ``close``, ``volume`` (``float64``);
* a default ``RangeIndex``;
* rows in file or generation order. Sources never sort or deduplicate: unsorted or duplicated
  bars are a data problem that the quality checks must see and report, not one to hide here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pandas as pd

OHLCV_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

# The platform's models and calendars are built for bars from one minute to one day; finer data
# is tick noise for a daily retrain, coarser data leaves too few rows to train on.
MIN_BAR_SECONDS = 60.0
MAX_BAR_SECONDS = 86_400.0

SOURCE_KINDS: tuple[str, ...] = ("synthetic", "files")


@dataclass(frozen=True)
class MarketData:
    """One symbol's bars and their provenance.

    ``bar_seconds`` and ``frequency`` are ``None`` when the frame has too few distinct
    timestamps to infer a spacing (an empty or one-row file); the quality checks reject such a
    frame later, so loading does not fail on it.
    """

    symbol: str
    frame: pd.DataFrame
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    bar_seconds: float | None = None
    frequency: str | None = None


@runtime_checkable
class MarketDataSource(Protocol):
    """Anything that can load one symbol's OHLCV bars."""

    name: str

    def load(self, symbol: str) -> MarketData:
        """The bars of ``symbol`` (for example ``BTC/USDT``)."""
        ...


def require_ohlcv(frame: object, where: str) -> pd.DataFrame:
    """``frame`` itself when it is a DataFrame with every OHLCV column; otherwise a ValueError
    that names ``where``, the missing columns and the ones found."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [name for name in OHLCV_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(
            f"{where}: missing column(s) {missing}; expected {list(OHLCV_COLUMNS)}, "
            f"found {[str(name) for name in frame.columns]}"
        )
    return frame


def empty_ohlcv() -> pd.DataFrame:
    """A zero-row OHLCV frame with the conventional dtypes."""
    frame = pd.DataFrame(
        {
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{name: pd.Series([], dtype="float64") for name in OHLCV_COLUMNS[1:]},
        }
    )
    return frame


def check_symbol(symbol: object) -> str:
    """``symbol`` itself when it is a usable, non-blank string; a ValueError otherwise."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError(f"symbol: expected a non-empty string such as 'BTC/USDT', got {symbol!r}")
    return symbol
