"""OHLCV bars from CSV or Parquet files, one file per symbol, and from ccxt's fetch_ohlcv rows.

File layout
-----------
A folder holds one file per symbol. The file name is the symbol with ``/`` replaced by ``-``
(a ``/`` cannot appear in a file name), followed by ``.csv`` or ``.parquet``::

    data/ohlcv/BTC-USDT.csv        <- symbol BTC/USDT
    data/ohlcv/ETH-USDT.parquet    <- symbol ETH/USDT

Having both ``BTC-USDT.csv`` and ``BTC-USDT.parquet`` is an error: which one is current would be
a guess.

Columns
-------
``timestamp, open, high, low, close, volume`` (names are matched after trimming spaces and
lower-casing; other columns are ignored and listed in the metadata). ``timestamp`` is either
ISO-8601 text (``2024-01-01T00:00:00Z``; without an offset it is taken as UTC) or integer epoch
milliseconds, as exchanges and ccxt give them.

Rows keep the file's order: the loader does not sort or drop duplicates, so that the quality
checks see (and report) what the file really holds. An empty file loads as an empty frame,
which the quality checks reject later with a clear message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from brain_assets.calendar import bar_seconds, frequency_label, parse_timestamps
from brain_assets.market_data.base import (
    MAX_BAR_SECONDS,
    MIN_BAR_SECONDS,
    OHLCV_COLUMNS,
    MarketData,
    check_symbol,
    empty_ohlcv,
    require_ohlcv,
)

EXTENSIONS: tuple[str, ...] = (".csv", ".parquet")


def symbol_file_stem(symbol: str) -> str:
    """The file name, without extension, that holds ``symbol``: ``BTC/USDT`` -> ``BTC-USDT``."""
    check_symbol(symbol)
    stem = symbol.strip().replace("/", "-")
    # A symbol must never reach outside the data folder.
    if "\\" in stem or stem.startswith(".") or stem in {"", "-"}:
        raise ValueError(f"symbol: {symbol!r} cannot be mapped to a file name")
    return stem


def _to_ohlcv(raw: pd.DataFrame, *, where: str) -> tuple[pd.DataFrame, list[str]]:
    """The conventional OHLCV frame from a freshly read table, and the ignored column names."""
    raw = raw.rename(columns=lambda name: str(name).strip().lower())
    require_ohlcv(raw, where)
    ignored = [str(name) for name in raw.columns if name not in OHLCV_COLUMNS]
    if raw.empty:
        return empty_ohlcv(), ignored
    columns: dict[str, pd.Series] = {
        "timestamp": parse_timestamps(raw["timestamp"], where=where),
    }
    for name in OHLCV_COLUMNS[1:]:
        try:
            columns[name] = pd.to_numeric(raw[name], errors="raise").astype("float64")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: column {name!r} is not numeric: {exc}") from exc
    # A fresh RangeIndex: the file's own index (Parquet can store one) means nothing here.
    frame = pd.DataFrame({name: series.to_numpy() for name, series in columns.items()})
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]")
    return frame, ignored


def infer_frequency(frame: pd.DataFrame, *, where: str) -> tuple[float | None, str | None]:
    """The bar spacing in seconds and its label, or ``(None, None)`` with too few bars to tell.

    Raises ValueError naming ``where`` when the spacing is outside one minute to one day.
    """
    stamps = frame["timestamp"].dropna()
    if stamps.nunique() < 2:
        return None, None
    seconds = bar_seconds(stamps)
    if not MIN_BAR_SECONDS <= seconds <= MAX_BAR_SECONDS:
        hint = ""
        if seconds < MIN_BAR_SECONDS:
            hint = " (epoch timestamps must be milliseconds, not seconds)"
        raise ValueError(
            f"{where}: bar spacing of {frequency_label(seconds)} ({seconds:g} s) is outside "
            f"the supported range of 1min to 1d{hint}"
        )
    return seconds, frequency_label(seconds)


class FileSource:
    """Bars read from ``folder/<BASE-QUOTE>.csv`` or ``.parquet`` (see the module docstring)."""

    name = "files"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"FileSource(folder={str(self.folder)!r})"

    def path_for(self, symbol: str) -> Path:
        """The single existing file of ``symbol``.

        Raises FileNotFoundError when there is none and ValueError when both a CSV and a
        Parquet file exist.
        """
        stem = symbol_file_stem(symbol)
        candidates = [self.folder / f"{stem}{ext}" for ext in EXTENSIONS]
        present = [path for path in candidates if path.is_file()]
        if not present:
            tried = ", ".join(str(path) for path in candidates)
            raise FileNotFoundError(
                f"symbol {symbol!r}: no data file in {self.folder} (tried {tried})"
            )
        if len(present) > 1:
            both = " and ".join(str(path) for path in present)
            raise ValueError(
                f"symbol {symbol!r}: ambiguous data files {both}; keep only one of them"
            )
        return present[0]

    def load(self, symbol: str) -> MarketData:
        """The bars of ``symbol`` from its file, in file order."""
        path = self.path_for(symbol)
        where = f"symbol {symbol!r}, file {path}"
        raw = _read_table(path, where=where)
        return table_market_data(raw, symbol=symbol, source=self.name, path=path, where=where)


def table_market_data(
    raw: pd.DataFrame, *, symbol: str, source: str, path: Path, where: str
) -> MarketData:
    """The MarketData of a freshly read table with the OHLCV columns, as :class:`FileSource`
    loads it: the conventional frame in the table's row order and the inferred bar spacing.

    Errors (a missing or non-numeric column, an unparseable timestamp, a spacing outside 1min
    to 1d) are ValueErrors naming ``where``.
    """
    frame, ignored = _to_ohlcv(raw, where=where)
    seconds, label = infer_frequency(frame, where=where)
    metadata: dict[str, Any] = {
        "source": source,
        "synthetic": False,
        "path": str(path),
        "format": path.suffix.lstrip("."),
        "rows": len(frame),
    }
    if ignored:
        metadata["ignored_columns"] = ignored
    return MarketData(
        symbol=symbol,
        frame=frame,
        source=source,
        metadata=metadata,
        bar_seconds=seconds,
        frequency=label,
    )


def _read_table(path: Path, *, where: str) -> pd.DataFrame:
    """The raw table in ``path``; an empty file gives an empty frame instead of an error."""
    try:
        if path.suffix == ".csv":
            if path.stat().st_size == 0:
                return pd.DataFrame(columns=list(OHLCV_COLUMNS))
            return pd.read_csv(path, float_precision="round_trip")
        if path.stat().st_size == 0:
            return pd.DataFrame(columns=list(OHLCV_COLUMNS))
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        # A CSV holding only blank lines: as empty as a zero-byte file.
        return pd.DataFrame(columns=list(OHLCV_COLUMNS))
    except (ValueError, OSError) as exc:
        # pyarrow's errors derive from these; re-raise with the symbol and the path in view.
        raise ValueError(f"{where}: cannot read the file: {exc}") from exc


def ohlcv_from_ccxt(rows: Sequence[Sequence[float | int]]) -> pd.DataFrame:
    """The OHLCV frame from ccxt's ``fetch_ohlcv`` rows ``[ms, open, high, low, close, volume]``.

    Row order is kept as given (see the module docstring).
    """
    for position, row in enumerate(rows):
        if len(row) != len(OHLCV_COLUMNS):
            raise ValueError(
                f"rows[{position}]: expected {len(OHLCV_COLUMNS)} values "
                f"[ms, open, high, low, close, volume], got {len(row)}"
            )
    if len(rows) == 0:
        return empty_ohlcv()
    raw = pd.DataFrame([list(row) for row in rows], columns=list(OHLCV_COLUMNS))
    raw["timestamp"] = pd.to_numeric(raw["timestamp"], errors="raise")
    frame, _ = _to_ohlcv(raw, where="ccxt rows")
    return frame
