"""Import a folder of bar files (the ``files`` source's layout) into the bar store.

The folder is laid out as :mod:`brain_assets.market_data.files` describes: one file per symbol,
``BTC-USDT.csv`` or ``BTC-USDT.parquet``. Each file is read and checked by :class:`FileSource`
(the same reading and checks as the retrain's ``files`` source), then stored by
``BrainStore.store_bars`` as one batch whose details name the file.

Transactions: each file is one transaction. Files are imported in file-name order; a bad file
(unreadable, missing columns, an unknown bar spacing, a bar the store refuses) raises a
ValueError naming the file, and nothing of that file is stored. The files before it stay
stored: re-running the import once the file is fixed stores nothing twice (their bars come back
unchanged), so an import can always be repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from brain_assets.calendar import frequency_label
from brain_assets.market_data.files import EXTENSIONS, FileSource
from brain_assets.store.bars import (
    TIMEFRAME_SECONDS,
    BarBatch,
    BarsMixin,
    check_timeframe,
    timeframe_for_seconds,
)

Progress = Callable[[Path, BarBatch], None]


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


def import_folder(
    brain: BarsMixin,
    folder: str | Path,
    *,
    timeframe: str | None = None,
    source: str = "files",
    symbols: list[str] | None = None,
    progress: Progress | None = None,
) -> list[BarBatch]:
    """Store every symbol file of ``folder`` (or only ``symbols``' files) in the bar store.

    The timeframe is inferred per file from the median bar spacing when not given; a spacing
    that is not a known timeframe, or that contradicts the given one, is refused naming the
    file. ``progress(path, batch)`` is called after each file is stored. Returns one BarBatch
    per file, in order. Each file is one transaction: a bad file raises ValueError naming it,
    nothing of it is stored, and the files before it stay stored (see the module docstring).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder {root}: not a directory")
    if timeframe is not None:
        check_timeframe(timeframe)
    files = FileSource(root)
    if symbols is None:
        pairs = folder_symbols(root)
        if not pairs:
            raise ValueError(f"folder {root}: no .csv or .parquet bar files")
    else:
        pairs = []
        for symbol in symbols:
            try:
                pairs.append((symbol, files.path_for(symbol)))
            except FileNotFoundError as exc:
                raise ValueError(str(exc)) from exc
    batches: list[BarBatch] = []
    for symbol, path in pairs:
        batch = _import_file(brain, files, symbol, path, timeframe=timeframe, source=source)
        batches.append(batch)
        if progress is not None:
            progress(path, batch)
    return batches


def _import_file(
    brain: BarsMixin,
    files: FileSource,
    symbol: str,
    path: Path,
    *,
    timeframe: str | None,
    source: str,
) -> BarBatch:
    where = f"file {path}"
    try:
        data = files.load(symbol)  # its errors name the symbol and the file already
        spacing = data.bar_seconds
        inferred = None if spacing is None else timeframe_for_seconds(spacing)
        if spacing is not None and inferred is None:
            known = ", ".join(TIMEFRAME_SECONDS)
            raise ValueError(
                f"bar spacing of {frequency_label(spacing)} (median) is not a known timeframe "
                f"({known})"
            )
        if timeframe is not None and inferred is not None and inferred != timeframe:
            raise ValueError(
                f"bars are {inferred} apart (median spacing) but the timeframe given is {timeframe}"
            )
        chosen = timeframe or inferred
        if chosen is None:
            raise ValueError(
                f"{len(data.frame)} bar(s) are too few to infer the timeframe; give it "
                "(--timeframe)"
            )
        return brain.store_bars(source, symbol, chosen, data.frame, details={"file": str(path)})
    except ValueError as exc:
        message = str(exc)
        if str(path) in message:
            raise
        raise ValueError(f"{where}: {message}") from exc
