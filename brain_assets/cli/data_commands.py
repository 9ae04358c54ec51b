"""``brain data``: the bar store. ``fetch`` pulls bars from an exchange (cli.fetch_command),
``import`` stores a folder of bar files, ``list`` shows what is stored per source, symbol and
timeframe."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import brain_assets.cli.fetch_command as fetch_command
from brain_assets.cli.output import emit, emit_rows, to_json
from brain_assets.library import BrainLibrary
from brain_assets.store.bars import INVENTORY_COLUMNS, TIMEFRAME_SECONDS, BarBatch


def register(commands: Any) -> None:
    data = commands.add_parser(
        "data", help="the bar store: fetch from an exchange, import bar files, list stored bars"
    )
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    imports = actions.add_parser(
        "import",
        help="store a folder of bar files (BTC-USDT.csv or .parquet), one transaction per file",
    )
    imports.add_argument("folder", help="folder laid out as the files source expects")
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

    listing = actions.add_parser("list", help="stored bars per source, symbol and timeframe")
    listing.add_argument("--symbol", default=None)
    listing.set_defaults(handler=list_bars)

    fetch_command.register(actions)

    for parser in (imports, listing):
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def _range(batch: BarBatch) -> str:
    if batch.first_bar is None or batch.last_bar is None:
        return "no bars"
    return f"{batch.first_bar:%Y-%m-%d %H:%M} .. {batch.last_bar:%Y-%m-%d %H:%M} UTC"


def batch_line(path: Path, batch: BarBatch) -> str:
    """One file's import for people: symbol, timeframe, counts, range."""
    return (
        f"{batch.symbol}  {batch.timeframe}  received {batch.received}  new {batch.new}  "
        f"changed {batch.changed}  {_range(batch)}  ({path.name})"
    )


def batch_record(path: Path, batch: BarBatch) -> dict[str, Any]:
    return {"file": str(path), **dataclasses.asdict(batch), "unchanged": batch.unchanged}


def import_files(args: argparse.Namespace) -> int:
    from brain_assets.market_data.store_import import import_folder

    done: list[tuple[Path, BarBatch]] = []

    def report(path: Path, batch: BarBatch) -> None:
        done.append((path, batch))
        if not args.json:
            print(batch_line(path, batch), flush=True)

    with BrainLibrary() as brain:
        try:
            import_folder(
                brain,
                args.folder,
                timeframe=args.timeframe,
                source=args.source,
                symbols=args.symbols,
                progress=report,
            )
        except ValueError as exc:
            if args.json:
                print(to_json([batch_record(path, batch) for path, batch in done]))
            # Each file is its own transaction: say what stays stored.
            raise ValueError(
                f"{exc}\nnothing of that file was stored; {len(done)} file(s) before it were "
                "stored and stay stored (one transaction per file; re-running the import "
                "stores nothing twice)"
            ) from exc
    emit(
        args,
        [batch_record(path, batch) for path, batch in done],
        f"{len(done)} file(s) stored as source {args.source!r}, one transaction per file",
    )
    return 0


def list_bars(args: argparse.Namespace) -> int:
    with BrainLibrary() as brain:
        inventory = brain.bar_inventory(args.symbol)
    nothing = "no bars stored" + (f" for {args.symbol}" if args.symbol else "")
    emit_rows(args, inventory, INVENTORY_COLUMNS, nothing)
    return 0
