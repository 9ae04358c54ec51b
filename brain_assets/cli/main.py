"""``brain``: the operator's command. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from brain_assets.cli import (
    data_commands,
    model_commands,
    operate_commands,
    predict_command,
    query_commands,
    replay_command,
    retrain_commands,
    run_commands,
    store_commands,
)
from brain_assets.errors import BrainError
from brain_assets.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brain",
        description="The Brain Library: models, metrics and feature importance per symbol.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    retrain_commands.register(commands)
    query_commands.register(commands)
    operate_commands.register(commands)
    store_commands.register(commands)
    replay_command.register(commands)
    predict_command.register(commands)
    data_commands.register(commands)
    model_commands.register(commands)
    run_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our events go to the JSON log and, from WARNING (DEBUG with --verbose), to stderr;
    # other libraries' warnings reach stderr through logging's last-resort handler.
    configure_logging(console_level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, ConnectionError, BrainError) as exc:
        print(f"brain {args.command}: {exc}", file=sys.stderr)
        return 2
