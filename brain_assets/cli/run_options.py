"""Options that ``brain demo`` and ``brain retrain`` share: where the runs' bars come from and
how many runs go side by side."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from brain_assets.environment import DEFAULT_TIMEFRAME, MARKET_ENV, MARKET_SOURCES


def add_workers_argument(parser: Any) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs side by side (default: BRAIN_WORKERS, else one per available core)",
    )


def add_source_arguments(parser: Any, runs: str) -> None:
    """``--source``, ``--folder`` and ``--timeframe``; ``runs`` names the runs in the help."""
    parser.add_argument(
        "--source",
        choices=MARKET_SOURCES,
        default=None,
        help=f"market source for {runs} (default: the deployment's, {MARKET_ENV['source']})",
    )
    parser.add_argument("--folder", default=None, help="folder of the files source")
    parser.add_argument(
        "--timeframe", default=None, help=f"bar store timeframe (default {DEFAULT_TIMEFRAME})"
    )


def files_folder(folder: str | None) -> Path:
    """The ``--folder`` of ``--source files``, resolved; a ValueError when it is missing or is
    not a folder."""
    if not folder:
        raise ValueError("--source files needs --folder DIR (one file per symbol)")
    resolved = Path(folder).expanduser().resolve()
    if not resolved.is_dir():
        raise ValueError(f"--folder {resolved} is not a folder")
    return resolved


def use_source(args: argparse.Namespace) -> None:
    """Point the runs at ``--source``: the spawned workers build the deployment's resources
    from these variables (defs.resources.market_resource)."""
    if args.folder and args.source != "files":
        raise ValueError("--folder goes with --source files")
    if args.source is None:
        if (
            getattr(args, "command", None) == "demo"
            and not os.environ.get(MARKET_ENV["source"], "").strip()
        ):
            # The demo's markets are generated on purpose, and said to be: a deployment only
            # trains on synthetic bars when it chose them (see defs.resources).
            os.environ[MARKET_ENV["source"]] = "synthetic"
        return
    os.environ[MARKET_ENV["source"]] = args.source
    if args.source == "files":
        os.environ[MARKET_ENV["folder"]] = str(files_folder(args.folder))
    if args.timeframe:
        os.environ[MARKET_ENV["timeframe"]] = args.timeframe
