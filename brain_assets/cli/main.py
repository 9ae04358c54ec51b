"""``brain``: the operator's command. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import brain_assets.cli.alert_commands as alert_commands
import brain_assets.cli.analyze_command as analyze_command
import brain_assets.cli.completion as completion
import brain_assets.cli.data_commands as data_commands
import brain_assets.cli.model_commands as model_commands
import brain_assets.cli.operate_commands as operate_commands
import brain_assets.cli.predict_command as predict_command
import brain_assets.cli.query_commands as query_commands
import brain_assets.cli.replay_command as replay_command
import brain_assets.cli.retrain_commands as retrain_commands
import brain_assets.cli.run_commands as run_commands
import brain_assets.cli.store_commands as store_commands
from brain_assets.errors import BrainError
from brain_assets.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brain",
        description="The Brain Library: models, metrics and feature importance per symbol.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    parser.add_argument("--version", action="version", version=f"brain {version()}")
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
    alert_commands.register(commands)
    analyze_command.register(commands)
    completion.register(commands, parser)
    return parser


def version() -> str:
    """The installed distribution's version, else the package's own (a checkout on sys.path)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("brain-assets")
    except PackageNotFoundError:
        import brain_assets

        return brain_assets.__version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our events go to the JSON log and, from WARNING (DEBUG with --verbose), to stderr;
    # other libraries' warnings reach stderr through logging's last-resort handler.
    configure_logging(console_level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OverflowError, ConnectionError, BrainError) as exc:
        print(f"brain {args.command}: {exc}", file=sys.stderr)
        return exit_status(exc)


USAGE = 2
"""A bad argument: argparse's own status, and a value the command cannot use (a malformed
time, an unknown model_id or version, a restore that needs --force)."""
FAILED = 1
"""The arguments were fine and the command could not be carried out: the database does not
answer, a lock timed out, an artifact failed its check (BrainError.exit_status)."""


def exit_status(exc: BaseException) -> int:
    """USAGE or FAILED for an error a subcommand raised (StandAside's 3 is predict's own)."""
    if isinstance(exc, BrainError):
        return exc.exit_status
    if isinstance(exc, ConnectionError):
        return FAILED
    return USAGE
