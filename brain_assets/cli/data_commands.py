"""``brain data``: the bar store. ``fetch`` pulls bars from an exchange (cli.fetch_command),
``import`` stores a folder of bar files (ccxt, CryptoDataDownload or Binance dump layouts),
``list`` shows what is stored per source, symbol and timeframe."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

import brain_assets.cli.fetch_command as fetch_command
from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, emit_rows, to_json
from brain_assets.library import BrainLibrary
from brain_assets.market_data.import_formats import AUTO, FORMAT_CHOICES
from brain_assets.store.bars import INVENTORY_COLUMNS, TIMEFRAME_SECONDS, BarBatch

if TYPE_CHECKING:
    from brain_assets.market_data.store_import import ImportedFile


def register(commands: Any) -> None:
    data = commands.add_parser(
        "data",
        help="the bar store: fetch from an exchange, import bar files, list stored bars",
        **described(
            "The bar store in PostgreSQL: the real bars the retrain reads with --source store. "
            "Fetch them from an exchange, import files in the layouts quants hold, and list "
            "what is stored per source, symbol and timeframe.",
            "brain data import ~/bars --format auto",
            "brain data list --symbol BTC/USDT",
        ),
    )
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    imports = actions.add_parser(
        "import",
        help="store a folder of bar files (ccxt, CryptoDataDownload or Binance dumps), one "
        "transaction per file",
        description="Stores every bar file of FOLDER in the bar store, one transaction per file,\n"
        "in file-name order. Layouts (--format):\n"
        "  ccxt                BTC-USDT.csv or .parquet: timestamp,open,high,low,close,volume\n"
        "  cryptodatadownload  banner line, then unix/date,symbol,open,...,Volume <BASE>;\n"
        "                      the base currency's volume column is used\n"
        "  binance-dump        data.binance.vision klines, BTCUSDT-1h-2024-01.zip or .csv\n"
        "  auto                recognise each file from its name and first lines (default)\n"
        "Bars are checked as every import checks them; a bar imported twice is stored once.",
        epilog="example:\n  brain data import ~/bars --format binance-dump",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imports.add_argument("folder", help="folder of bar files")
    imports.add_argument(
        "--format",
        dest="file_format",
        default=AUTO,
        choices=list(FORMAT_CHOICES),
        help="layout of the files (default: auto, recognised per file)",
    )
    imports.add_argument(
        "--timeframe",
        default=None,
        choices=list(TIMEFRAME_SECONDS),
        help="bar length (default: inferred per file from the median spacing)",
    )
    imports.add_argument("--source", default="files", help="source name to store under")
    imports.add_argument(
        "--symbols", nargs="+", default=None, help="only these symbols (default: every file)"
    )
    imports.set_defaults(handler=import_files)

    listing = actions.add_parser(
        "list",
        help="stored bars per source, symbol and timeframe",
        description="Per source, symbol and timeframe: first and last bar, bars, gaps and\n"
        "missing bars.",
        epilog="example:\n  brain data list --symbol BTC/USDT",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("--symbol", default=None)
    listing.set_defaults(handler=list_bars)

    fetch_command.register(actions)

    for parser in (imports, listing):
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def _range(batch: BarBatch) -> str:
    if batch.first_bar is None or batch.last_bar is None:
        return "no bars"
    return f"{batch.first_bar:%Y-%m-%d %H:%M} .. {batch.last_bar:%Y-%m-%d %H:%M} UTC"


def _how(done: ImportedFile) -> str:
    """The layout and how it was read, for people."""
    notes = [done.format]
    if "volume_column" in done.details:
        notes.append(f"volume from {done.details['volume_column']!r}")
    if "time_unit" in done.details:
        notes.append(f"open times in {done.details['time_unit']}")
    if "time_column" in done.details:
        notes.append(f"times from {done.details['time_column']}")
    if done.details.get("duplicates_dropped"):
        notes.append(f"{done.details['duplicates_dropped']} repeated identical row(s) dropped")
    return ", ".join(notes)


def batch_line(done: ImportedFile) -> str:
    """One file's import for people: symbol, timeframe, counts, range, file and layout."""
    batch = done.batch
    return (
        f"{batch.symbol}  {batch.timeframe}  received {batch.received}  new {batch.new}  "
        f"changed {batch.changed}  {_range(batch)}  ({done.path.name}: {_how(done)})"
    )


def batch_record(done: ImportedFile) -> dict[str, Any]:
    batch = done.batch
    return {
        "file": str(done.path),
        "format": done.format,
        **dataclasses.asdict(batch),
        "unchanged": batch.unchanged,
        **done.details,
    }


def import_files(args: argparse.Namespace) -> int:
    from brain_assets.market_data.store_import import import_bar_files

    done: list[ImportedFile] = []

    def report(imported: ImportedFile) -> None:
        done.append(imported)
        if not args.json:
            print(batch_line(imported), flush=True)

    with BrainLibrary() as brain:
        try:
            import_bar_files(
                brain,
                args.folder,
                file_format=args.file_format,
                timeframe=args.timeframe,
                source=args.source,
                symbols=args.symbols,
                progress=report,
            )
        except ValueError as exc:
            if args.json:
                print(to_json([batch_record(item) for item in done]))
            # Each file is its own transaction: say what stays stored.
            raise ValueError(
                f"{exc}\nnothing of that file was stored; {len(done)} file(s) before it were "
                "stored and stay stored (one transaction per file; re-running the import "
                "stores nothing twice)"
            ) from exc
    emit(
        args,
        [batch_record(item) for item in done],
        f"{len(done)} file(s) stored as source {args.source!r}, one transaction per file",
    )
    return 0


def list_bars(args: argparse.Namespace) -> int:
    with BrainLibrary() as brain:
        inventory = brain.bar_inventory(args.symbol)
    nothing = "no bars stored" + (f" for {args.symbol}" if args.symbol else "")
    emit_rows(args, inventory, INVENTORY_COLUMNS, nothing)
    return 0
