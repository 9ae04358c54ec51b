"""Bar files in the layouts quants hold, recognised and turned into the files source's table.

``brain data import --format`` names one of three layouts, or ``auto`` to recognise each file
from its name and first lines:

``ccxt``
    The files source's own layout (:mod:`brain_assets.market_data.files`): ``BTC-USDT.csv`` or
    ``.parquet`` with columns ``timestamp, open, high, low, close, volume``. Read by
    :class:`~brain_assets.market_data.files.FileSource` exactly as before.
``cryptodatadownload``
    CryptoDataDownload CSV: a banner line (``https://www.CryptoDataDownload.com``), then a
    header such as ``unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount``
    (older files: ``date,symbol,...,Volume BTC,Volume USD`` with times like ``2019-10-17 09-AM``
    or ``2019-10-17 09:00:00``); rows newest first. ``unix`` is epoch seconds or milliseconds
    (told apart per value by magnitude) and is used when present, else ``date`` (UTC). The
    volume is the base currency's column (``Volume BTC`` for BTC/USDT); the symbol comes from
    the ``symbol`` column, else from a file name such as ``Binance_BTCUSDT_1h.csv``.
``binance-dump``
    A kline dump from data.binance.vision: ``BTCUSDT-1h-2024-01.csv`` or ``.zip`` holding one
    CSV; 12 columns, with or without the header ``open_time,open,high,low,close,volume,...``;
    open times in epoch milliseconds (microseconds in 2025+ spot dumps, told apart by
    magnitude). The symbol and the interval come from the file name (``BTCUSDT`` is split at a
    known quote currency into ``BTC/USDT``).

:func:`recognise` reads only the name and the first lines; :func:`read_foreign` reads a whole
``cryptodatadownload`` or ``binance-dump`` file into a table with columns ``timestamp``
(``datetime64[ns, UTC]``), ``open, high, low, close, volume``, in the file's row order
(CryptoDataDownload's newest-first files are turned oldest first). No value is checked here:
the table goes through the files source's conversion and the bar store's validation like any
other file. Rows repeating a timestamp are kept here too: the import
(:func:`brain_assets.market_data.store_import.drop_repeated_bars`) drops identical copies and
refuses differing ones, in every layout.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

CCXT = "ccxt"
CRYPTODATADOWNLOAD = "cryptodatadownload"
BINANCE_DUMP = "binance-dump"
AUTO = "auto"
FORMATS: tuple[str, ...] = (CCXT, CRYPTODATADOWNLOAD, BINANCE_DUMP)
FORMAT_CHOICES: tuple[str, ...] = (AUTO, *FORMATS)

# What each layout looks like, for error messages.
EXPECTED: dict[str, str] = {
    CCXT: "BASE-QUOTE.csv or .parquet with columns timestamp,open,high,low,close,volume",
    CRYPTODATADOWNLOAD: "a CryptoDataDownload CSV: a banner line, then a header "
    "unix/date,symbol,open,high,low,close,Volume <BASE>,...",
    BINANCE_DUMP: "a Binance kline dump SYMBOL-INTERVAL-YYYY-MM[-DD].csv or .zip: 12 columns, "
    "open time in epoch ms or µs",
}

# Binance's quote currencies; a pair such as BTCUSDT is split at the longest one it ends with.
QUOTE_CURRENCIES: tuple[str, ...] = (
    "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI", "USD", "BTC", "ETH", "BNB", "EUR",
    "TRY", "GBP", "AUD", "BRL", "JPY", "RUB", "UAH", "ZAR", "PLN", "RON", "ARS", "MXN", "IDR",
    "BIDR", "NGN",
)  # fmt: skip

BINANCE_COLUMNS = 12
_BINANCE_NAME = re.compile(
    r"(?P<pair>[A-Za-z0-9]+)-(?P<interval>\d+[a-zA-Z]+)-\d{4}-\d{2}(-\d{2})?"
)
_CDD_NAME = re.compile(r"[A-Za-z0-9]+_(?P<pair>[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)?)_.*")
_AM_PM = r"\d{4}-\d{2}-\d{2} \d{1,2}-(?:AM|PM)"
_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Recognised:
    """A bar file and what :func:`recognise` found it to hold.

    ``timeframe`` is the interval the file name states (Binance dumps: ``1h``), else None;
    ``volume_column`` the CryptoDataDownload column read as the volume.
    """

    path: Path
    format: str
    symbol: str
    timeframe: str | None = None
    volume_column: str | None = None


def split_pair(pair: str, *, where: str) -> str:
    """``BTCUSDT`` -> ``BTC/USDT``, split at the longest known quote currency it ends with."""
    name = pair.strip().upper()
    for quote in sorted(QUOTE_CURRENCIES, key=len, reverse=True):
        if name.endswith(quote) and len(name) > len(quote):
            return f"{name[: -len(quote)]}/{quote}"
    known = ", ".join(QUOTE_CURRENCIES)
    raise ValueError(
        f"{where}: cannot split {pair!r} into base and quote currencies (known quote "
        f"currencies: {known})"
    )


@contextmanager
def open_csv(path: Path) -> Iterator[IO[bytes]]:
    """The CSV bytes of ``path``: the file itself, or the one CSV inside a ``.zip``."""
    where = f"file {path}"
    if path.suffix.lower() != ".zip":
        with path.open("rb") as stream:
            yield stream
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                name
                for name in archive.namelist()
                if not name.endswith("/") and not name.startswith("__MACOSX/")
            ]
            if len(members) != 1 or not members[0].lower().endswith(".csv"):
                raise ValueError(
                    f"{where}: a zipped dump must hold exactly one .csv file; it holds {members}"
                )
            with archive.open(members[0]) as stream:
                yield stream
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{where}: not a readable zip file: {exc}") from exc


def head_lines(path: Path, count: int = 3) -> list[str]:
    """The first ``count`` non-blank lines of a CSV (or of the CSV in a zip)."""
    try:
        with open_csv(path) as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError as exc:
        raise ValueError(f"file {path}: cannot read the file: {exc}") from exc
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    return [line for line in lines if line.strip()][:count]


def _fields(line: str) -> list[str]:
    return [cell.strip() for cell in next(csv.reader([line]), [])]


def _cdd_header_index(lines: list[str]) -> int | None:
    """The line holding a CryptoDataDownload header (after its banner), or None."""
    for index, line in enumerate(lines[:2]):
        names = [name.lower() for name in _fields(line)]
        has_time = "unix" in names or "unix timestamp" in names or "date" in names
        has_volume = any(name.startswith("volume") for name in names)
        if has_time and has_volume and "symbol" in names and "close" in names:
            return index
    return None


def looks_cryptodatadownload(lines: list[str]) -> bool:
    banner = bool(lines) and "cryptodatadownload" in lines[0].lower()
    return banner or _cdd_header_index(lines) is not None


def looks_binance_dump(lines: list[str]) -> bool:
    if not lines:
        return False
    cells = _fields(lines[0])
    return len(cells) == BINANCE_COLUMNS and (cells[0].isdigit() or cells[0] == "open_time")


def looks_ccxt(path: Path, lines: list[str]) -> bool:
    """A .csv/.parquet named BASE-QUOTE, or whose header names ``timestamp``; an empty CSV."""
    if path.suffix not in (".csv", ".parquet"):
        return False
    if path.suffix == ".parquet" or not lines or "-" in path.stem:
        return True
    return "timestamp" in [name.lower() for name in _fields(lines[0])]


def recognise(path: Path, wanted: str = AUTO) -> Recognised:
    """Which layout ``path`` holds (``wanted``, or recognised when ``auto``), and its symbol.

    Reads the name and the first lines only. Raises ValueError naming the file when it matches
    no layout, when it does not match the ``wanted`` one, or when its symbol cannot be told.
    """
    where = f"file {path}"
    if wanted not in FORMAT_CHOICES:
        raise ValueError(f"format must be one of {', '.join(FORMAT_CHOICES)}; got {wanted!r}")
    lines = [] if path.suffix == ".parquet" else head_lines(path)
    matches = {
        CRYPTODATADOWNLOAD: looks_cryptodatadownload(lines),
        BINANCE_DUMP: looks_binance_dump(lines),
        CCXT: looks_ccxt(path, lines),
    }
    first = f"its first line is {lines[0][:80]!r}" if lines else "it has no lines"
    if wanted == AUTO:
        chosen = next((name for name, hit in matches.items() if hit), None)
        if chosen is None:
            expected = "; or ".join(EXPECTED[name] for name in FORMATS)
            raise ValueError(f"{where}: not a known bar file layout ({first}); expected {expected}")
    else:
        others = [name for name, hit in matches.items() if hit and name != wanted]
        # ccxt keeps the files source's reading (and its errors): only a file that holds another
        # layout is refused.
        if others if wanted == CCXT else not matches[wanted]:
            hint = f"; it looks like {others[0]}: use --format {others[0]} or auto"
            hint = hint if others else ""
            raise ValueError(
                f"{where}: not a {wanted} file ({first}); expected {EXPECTED[wanted]}{hint}"
            )
        chosen = wanted
    if chosen == CRYPTODATADOWNLOAD:
        return _recognise_cdd(path, lines, where=where)
    if chosen == BINANCE_DUMP:
        return _recognise_binance(path, where=where)
    return Recognised(path, CCXT, path.stem.replace("-", "/"))


def _recognise_binance(path: Path, *, where: str) -> Recognised:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    match = _BINANCE_NAME.fullmatch(stem)
    if match is None:
        raise ValueError(
            f"{where}: a Binance kline dump's name gives its symbol and interval: expected "
            "SYMBOL-INTERVAL-YYYY-MM[-DD].csv or .zip, e.g. BTCUSDT-1h-2024-01.zip"
        )
    symbol = split_pair(match["pair"], where=where)
    return Recognised(path, BINANCE_DUMP, symbol, timeframe=match["interval"])


def _cdd_symbol(raw: str, currencies: list[str], *, where: str) -> str:
    """``BTC/USDT`` from a CryptoDataDownload symbol (``BTC/USDT``, ``BTC-USD``, ``BTCUSDT``),
    split by the file's volume currencies first, else by the known quote currencies."""
    name = raw.strip().upper()
    for separator in ("/", "-"):
        if separator in name:
            base, _, quote = name.partition(separator)
            return f"{base}/{quote}"
    for base in currencies:
        for quote in currencies:
            if base != quote and base + quote == name:
                return f"{base}/{quote}"
    return split_pair(name, where=where)


def _recognise_cdd(path: Path, lines: list[str], *, where: str) -> Recognised:
    header_at = _cdd_header_index(lines)
    if header_at is None:
        raise ValueError(
            f"{where}: no CryptoDataDownload header after the banner; expected "
            f"{EXPECTED[CRYPTODATADOWNLOAD]}"
        )
    names = _fields(lines[header_at])
    lowered = [name.lower() for name in names]
    missing = [name for name in ("open", "high", "low", "close") if name not in lowered]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; found {names}")
    volumes = {
        name[len("volume") :].strip().upper(): name
        for name in names
        if name.lower().startswith("volume")
    }
    raw_symbol = ""
    if header_at + 1 < len(lines):
        row = _fields(lines[header_at + 1])
        if len(row) == len(names):
            raw_symbol = row[lowered.index("symbol")]
    if not raw_symbol:
        match = _CDD_NAME.fullmatch(path.stem)
        if match is None:
            raise ValueError(
                f"{where}: no symbol in the 'symbol' column nor in the file name (expected a "
                "name such as Binance_BTCUSDT_1h.csv)"
            )
        raw_symbol = match["pair"]
    symbol = _cdd_symbol(raw_symbol, [c for c in volumes if c], where=where)
    base = symbol.split("/")[0]
    if base not in volumes:
        raise ValueError(
            f"{where}: cannot tell which column is the base-asset ({base}) volume of {symbol}: "
            f"volume columns {list(volumes.values())}; expected 'Volume {base}'"
        )
    column = volumes[base]
    return Recognised(path, CRYPTODATADOWNLOAD, symbol, volume_column=column)


def epoch_times(raw: pd.Series, *, where: str, column: str) -> tuple[pd.Series, str]:
    """Epoch numbers as ``datetime64[ns, UTC]`` and the unit(s) found (``ms``, ``µs+ms`` ...).

    Each value's unit is told by its magnitude: from 1e14 microseconds, from 1e11 milliseconds,
    else seconds (so every time after 1973 is read right). Missing values become NaT.
    """
    try:
        numbers = pd.to_numeric(raw, errors="raise").to_numpy(dtype="float64")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: column {column!r} is not epoch numbers: {exc}") from exc
    finite = np.isfinite(numbers)
    values = np.where(finite, numbers, 0.0)
    units = np.where(np.abs(values) >= 1e14, 0, np.where(np.abs(values) >= 1e11, 1, 2))
    scale = np.array([1_000, 1_000_000, 1_000_000_000], dtype="int64")[units]
    # Whole numbers whose nanoseconds fit in int64 (up to the year 2262).
    bad = (values != np.round(values)) | (np.abs(values * scale) >= 9.2e18)
    if np.any(bad):
        sample = raw[bad].astype(str).head(3).tolist()
        raise ValueError(
            f"{where}: column {column!r} holds values that are not whole epoch seconds, "
            f"milliseconds or microseconds of a supported time (first {sample})"
        )
    nanos = values.astype("int64") * scale
    nanos[~finite] = np.iinfo("int64").min  # NaT
    stamps = pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize("UTC")
    found = sorted(set(units[finite].tolist()))
    label = "+".join(("µs", "ms", "s")[unit] for unit in found) or "none"
    return pd.Series(stamps, index=raw.index), label


def cdd_dates(raw: pd.Series, *, where: str) -> pd.Series:
    """CryptoDataDownload's ``date`` column as ``datetime64[ns, UTC]``: ``2019-10-17 09-AM``
    or ISO-8601 text such as ``2019-10-17 09:00:00``, both UTC."""
    text = raw.astype("string").str.strip()
    am_pm = text.str.fullmatch(_AM_PM, case=False).fillna(False).astype(bool)
    rest = ~am_pm & text.notna()
    parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    try:
        if am_pm.any():
            parsed[am_pm] = pd.to_datetime(
                text[am_pm].str.upper(), format="%Y-%m-%d %I-%p", utc=True
            )
        if rest.any():
            parsed[rest] = pd.to_datetime(text[rest], format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        sample = text.dropna().head(3).tolist()
        raise ValueError(
            f"{where}: cannot parse column 'date' as '2019-10-17 09-AM' or ISO-8601 text "
            f"(first values {sample}): {exc}"
        ) from exc
    return parsed


def read_foreign(found: Recognised, *, where: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table (``timestamp, open, high, low, close, volume``) of a ``cryptodatadownload`` or
    ``binance-dump`` file, and notes on how it was read (time unit, volume column)."""
    if found.format == BINANCE_DUMP:
        return _read_binance(found.path, where=where)
    if found.format == CRYPTODATADOWNLOAD:
        return _read_cdd(found, where=where)
    raise ValueError(f"{where}: {found.format} files are read by the files source")


def _read_csv(path: Path, *, where: str, **options: Any) -> pd.DataFrame:
    try:
        with open_csv(path) as stream:
            data = stream.read()
        return pd.read_csv(io.BytesIO(data), float_precision="round_trip", **options)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: cannot read the file: {exc}") from exc


def _read_binance(path: Path, *, where: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    lines = head_lines(path, 1)
    has_header = bool(lines) and _fields(lines[0])[:1] == ["open_time"]
    raw = _read_csv(path, where=where, header=0 if has_header else None)
    if raw.shape[1] != BINANCE_COLUMNS:
        raise ValueError(
            f"{where}: a Binance kline dump has {BINANCE_COLUMNS} columns; this file has "
            f"{raw.shape[1]}"
        )
    stamps, unit = epoch_times(raw.iloc[:, 0], where=where, column="open_time")
    table = pd.DataFrame({"timestamp": stamps})
    for position, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        table[name] = raw.iloc[:, position]
    return table, {"time_unit": unit, "header": has_header}


def _read_cdd(found: Recognised, *, where: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    lines = head_lines(found.path)
    header_at = _cdd_header_index(lines) or 0
    raw = _read_csv(found.path, where=where, skiprows=header_at)
    raw = raw.rename(columns=lambda name: str(name).strip())
    columns = {name.lower(): name for name in raw.columns}
    symbols = raw[columns["symbol"]].dropna().astype(str).str.strip().unique().tolist()
    if len(symbols) > 1:
        raise ValueError(f"{where}: the 'symbol' column holds several symbols: {symbols[:5]}")
    notes: dict[str, Any] = {"volume_column": found.volume_column}
    time_column = columns.get("unix") or columns.get("unix timestamp")
    if time_column is not None:
        stamps, unit = epoch_times(raw[time_column], where=where, column=time_column)
        notes["time_column"] = f"{time_column} ({unit})"
    else:
        stamps = cdd_dates(raw[columns["date"]], where=where)
        notes["time_column"] = columns["date"]
    table = pd.DataFrame({"timestamp": stamps})
    for name in ("open", "high", "low", "close"):
        table[name] = raw[columns[name]]
    table["volume"] = raw[str(found.volume_column)]
    known = stamps.dropna()
    if len(known) >= 2 and known.iloc[0] > known.iloc[-1]:
        # The layout lists the newest bar first; the platform's frames run oldest first.
        table = table.iloc[::-1].reset_index(drop=True)
        notes["newest_first"] = True
    return table, notes
