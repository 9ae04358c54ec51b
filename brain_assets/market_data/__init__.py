"""Market data sources: synthetic bars for tests and demos, CSV/Parquet files, ccxt rows.

Every source returns a :class:`MarketData` whose frame follows the OHLCV convention described
in :mod:`brain_assets.market_data.base`.
"""

from __future__ import annotations

from brain_assets.market_data.base import (
    OHLCV_COLUMNS,
    SOURCE_KINDS,
    MarketData,
    MarketDataSource,
    empty_ohlcv,
)
from brain_assets.market_data.files import FileSource, ohlcv_from_ccxt, symbol_file_stem
from brain_assets.market_data.sources import make_source
from brain_assets.market_data.synthetic import REGIMES, SyntheticSource, generate_ohlcv

__all__ = [
    "OHLCV_COLUMNS",
    "REGIMES",
    "SOURCE_KINDS",
    "FileSource",
    "MarketData",
    "MarketDataSource",
    "SyntheticSource",
    "empty_ohlcv",
    "generate_ohlcv",
    "make_source",
    "ohlcv_from_ccxt",
    "symbol_file_stem",
]
