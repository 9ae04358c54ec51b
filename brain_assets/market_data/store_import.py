"""Import a folder of bar files into the bar store.

Three layouts are read (:mod:`brain_assets.market_data.import_formats`), each file's recognised
from its name and first lines unless one is named: ``ccxt``, the ``files`` source's own layout
(:mod:`brain_assets.market_data.files`: one file per symbol, ``BTC-USDT.csv`` or
``BTC-USDT.parquet``), read and checked by :class:`FileSource` as the retrain's ``files``
source reads it; ``cryptodatadownload`` CSVs and ``binance-dump`` kline dumps (``.csv`` or
``.zip``), turned into the same table and then converted and checked by the same code. Each file
is stored by ``BrainStore.store_bars`` as one batch whose details name the file and its layout.
A symbol may come in several files (monthly dumps): each is its own batch, and a bar that two
files hold is stored once (the store's upsert: the same values count as unchanged).

Repeated bars inside one file, in every layout: a row that repeats an earlier row's timestamp
with identical values (open, high, low, close and volume as read) is the same bar listed twice,
as CryptoDataDownload and Binance exports sometimes list it; one copy is kept and the others are
dropped and counted (``duplicates_dropped`` in the file's details and its batch's details). Rows
that share a timestamp but differ in a value cannot be told apart: the file is refused, naming
the count and the first such timestamps, and nothing of it is stored. The bar store itself
still refuses a frame holding a timestamp twice; the files source and the retrain's cleaning
policy keep their own handling of what a file holds.

Transactions: each file is one transaction. Every file's layout is recognised before any is
stored; then files are imported in file-name order; a bad file (unreadable, missing columns, an
unknown bar spacing, a bar the store refuses) raises a ValueError naming the file, and nothing
of that file is stored. The files before it stay stored: re-running the import once the file is
fixed stores nothing twice (their bars come back unchanged), so an import can always be
repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brain_assets.calendar import frequency_label
from brain_assets.market_data.files import (
    EXTENSIONS,
    FileSource,
    symbol_file_stem,
    table_market_data,
)
from brain_assets.market_data.import_formats import (
    AUTO,
    CCXT,
    FORMAT_CHOICES,
    Recognised,
    read_foreign,
    recognise,
)
from brain_assets.store.bars import (
    TIMEFRAME_SECONDS,
    BarBatch,
    BarsMixin,
    check_timeframe,
    timeframe_for_seconds,
)

Progress = Callable[[Path, BarBatch], None]
# Files other layouts than ccxt may come in (Binance dumps are often zipped).
FOREIGN_EXTENSIONS: tuple[str, ...] = (*EXTENSIONS, ".zip")


@dataclass(frozen=True)
class ImportedFile:
    """One stored file: its layout (``ccxt``, ``cryptodatadownload``, ``binance-dump``), the
    batch, and how it was read (``details``: e.g. ``volume_column``, ``time_unit``, and
    ``duplicates_dropped``, the identical repeated rows dropped)."""

    path: Path
    format: str
    batch: BarBatch
    details: dict[str, Any] = field(default_factory=dict)


def folder_symbols(folder: Path) -> list[tuple[str, Path]]:
    """(symbol, file) for every bar file in ``folder``, in file-name order.

    A file name's ``-`` is read as ``/`` (``BTC-USDT.csv`` holds ``BTC/USDT``); for a symbol whose
    own name holds a ``-``, name it in ``symbols``. Other files (README, hidden files) are skipped.
    """
    found: list[tuple[str, Path]] = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in EXTENSIONS and not path.name.startswith("."):
            found.append((path.stem.replace("-", "/"), path))
    return found


def bar_files(folder: Path, file_format: str = AUTO) -> list[Path]:
    """The bar files of ``folder`` in file-name order: ``.csv`` and ``.parquet``, and ``.zip``
    unless the layout is ccxt. Other files (README, hidden files) are skipped."""
    suffixes = EXTENSIONS if file_format == CCXT else FOREIGN_EXTENSIONS
    return [
        path
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix in suffixes and not path.name.startswith(".")
    ]


def import_folder(
    brain: BarsMixin,
    folder: str | Path,
    *,
    timeframe: str | None = None,
    source: str = "files",
    symbols: list[str] | None = None,
    progress: Progress | None = None,
    file_format: str = AUTO,
) -> list[BarBatch]:
    """Store every bar file of ``folder`` (or only ``symbols``' files); one BarBatch per file.

    As :func:`import_bar_files`, with ``progress(path, batch)`` called after each file.
    """

    def report(done: ImportedFile) -> None:
        if progress is not None:
            progress(done.path, done.batch)

    imported = import_bar_files(
        brain,
        folder,
        file_format=file_format,
        timeframe=timeframe,
        source=source,
        symbols=symbols,
        progress=report,
    )
    return [done.batch for done in imported]


def import_bar_files(
    brain: BarsMixin,
    folder: str | Path,
    *,
    file_format: str = AUTO,
    timeframe: str | None = None,
    source: str = "files",
    symbols: list[str] | None = None,
    progress: Callable[[ImportedFile], None] | None = None,
) -> list[ImportedFile]:
    """Store every bar file of ``folder`` (or only ``symbols``' files) in the bar store.

    ``file_format`` is ``auto`` (each file recognised from its name and first lines) or one of
    ``ccxt``, ``cryptodatadownload``, ``binance-dump``. Every file is recognised before any is
    stored: a file of no known layout (or not of the one named) is refused naming it. The
    timeframe is inferred per file from the median bar spacing when not given (a Binance dump's
    name states it too); a spacing that is not a known timeframe, or that contradicts the given
    or stated one, is refused naming the file. ``progress(imported)`` is called after each file
    is stored. Returns one ImportedFile per file, in file-name order. Each file is one
    transaction: a bad file raises ValueError naming it, nothing of it is stored, and the files
    before it stay stored (see the module docstring).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder {root}: not a directory")
    if timeframe is not None:
        check_timeframe(timeframe)
    if file_format not in FORMAT_CHOICES:
        raise ValueError(f"format must be one of {', '.join(FORMAT_CHOICES)}; got {file_format!r}")
    files = FileSource(root)
    found: list[Recognised] = []
    if file_format == CCXT and symbols is not None:
        for symbol in symbols:
            try:
                path = files.path_for(symbol)
            except FileNotFoundError as exc:
                raise ValueError(str(exc)) from exc
            recognise(path, CCXT)  # refuses a file that holds another layout
            found.append(Recognised(path, CCXT, symbol))
    else:
        found = [recognise(path, file_format) for path in bar_files(root, file_format)]
        if not found:
            kinds = ", ".join(EXTENSIONS if file_format == CCXT else FOREIGN_EXTENSIONS)
            raise ValueError(f"folder {root}: no bar files ({kinds})")
        if symbols is not None:
            found = _only(found, symbols, root)
    imported: list[ImportedFile] = []
    for item in found:
        done = _import_file(brain, files, item, timeframe=timeframe, source=source)
        imported.append(done)
        if progress is not None:
            progress(done)
    return imported


def _only(found: list[Recognised], symbols: list[str], root: Path) -> list[Recognised]:
    """The files of ``symbols``; a ccxt file matches by name, so a symbol holding a ``-`` is
    found too. A symbol with no file is refused."""
    kept: list[Recognised] = []
    for symbol in symbols:
        stem = symbol_file_stem(symbol)
        mine = [
            Recognised(item.path, item.format, symbol) if item.format == CCXT else item
            for item in found
            if (item.path.stem == stem if item.format == CCXT else item.symbol == symbol)
        ]
        if not mine:
            raise ValueError(f"symbol {symbol!r}: no data file in {root}")
        kept.extend(item for item in mine if item not in kept)
    return sorted(kept, key=lambda item: item.path.name)


def drop_repeated_bars(frame: pd.DataFrame, *, where: str) -> tuple[pd.DataFrame, int]:
    """``frame`` without the rows that repeat an earlier row exactly, and how many were dropped.

    A row is a repeat when its timestamp and every value (``open, high, low, close, volume``,
    as read) equal an earlier row's: the first copy is kept, in place. Rows sharing a timestamp
    but differing in a value raise a ValueError naming ``where``, how many timestamps conflict,
    the first ones and what differs. Rows without a timestamp are left for the store to refuse.
    """
    stamps = frame["timestamp"]
    known = stamps.notna()
    repeated = (frame.duplicated(keep="first") & known).to_numpy()
    kept = frame.loc[~repeated].reset_index(drop=True) if repeated.any() else frame
    kept_stamps = kept["timestamp"]
    clashing = kept_stamps.duplicated(keep=False) & kept_stamps.notna()
    if clashing.any():
        conflicts = kept_stamps[clashing].drop_duplicates().sort_values()
        first = conflicts.iloc[0]
        copies = kept.loc[kept_stamps == first]
        differing = [
            f"{name} {' vs '.join(repr(float(value)) for value in copies[name])}"
            for name in copies.columns
            if name != "timestamp" and copies[name].nunique(dropna=False) > 1
        ]
        shown = ", ".join(str(stamp) for stamp in conflicts.head(3))
        more = ", ..." if len(conflicts) > 3 else ""
        what = "; ".join(differing) or "values differ"
        raise ValueError(
            f"{where}: {len(conflicts)} timestamp(s) appear more than once with different "
            f"values (first {shown}{more}; at {first}: {what}); identical copies of a bar are "
            "dropped, but differing ones cannot be told apart: keep one row per timestamp"
        )
    return kept, int(repeated.sum())


def _import_file(
    brain: BarsMixin,
    files: FileSource,
    found: Recognised,
    *,
    timeframe: str | None,
    source: str,
) -> ImportedFile:
    path = found.path
    where = f"file {path}"
    try:
        details: dict[str, Any] = {}
        reading = f"symbol {found.symbol!r}, file {path}"
        if found.format == CCXT:
            data = files.load(found.symbol)  # its errors name the symbol and the file already
        else:
            table, details = read_foreign(found, where=reading)
            data = table_market_data(
                table, symbol=found.symbol, source=source, path=path, where=reading
            )
        # Zero steps do not count in the median spacing: it is the same with or without copies.
        frame, dropped = drop_repeated_bars(data.frame, where=reading)
        details["duplicates_dropped"] = dropped
        spacing = data.bar_seconds
        inferred = None if spacing is None else timeframe_for_seconds(spacing)
        if spacing is not None and inferred is None:
            known = ", ".join(TIMEFRAME_SECONDS)
            raise ValueError(
                f"bar spacing of {frequency_label(spacing)} (median) is not a known timeframe "
                f"({known})"
            )
        named = found.timeframe if found.timeframe in TIMEFRAME_SECONDS else None
        if timeframe is not None and named is not None and named != timeframe:
            raise ValueError(
                f"the file name says {named} bars but the timeframe given is {timeframe}"
            )
        if timeframe is not None and inferred is not None and inferred != timeframe:
            raise ValueError(
                f"bars are {inferred} apart (median spacing) but the timeframe given is {timeframe}"
            )
        if named is not None and inferred is not None and inferred != named:
            raise ValueError(
                f"bars are {inferred} apart (median spacing) but the file name says {named}"
            )
        chosen = timeframe or named or inferred
        if chosen is None:
            raise ValueError(
                f"{len(frame)} bar(s) are too few to infer the timeframe; give it (--timeframe)"
            )
        batch = brain.store_bars(
            source,
            found.symbol,
            chosen,
            frame,
            details={"file": str(path), "format": found.format, **details},
        )
        return ImportedFile(path, found.format, batch, details)
    except ValueError as exc:
        message = str(exc)
        if str(path) in message:
            raise
        raise ValueError(f"{where}: {message}") from exc
