"""Store-level subcommands: ``psql``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from brain_assets.cli.help_text import described


def register(commands: Any) -> None:
    psql = commands.add_parser(
        "psql",
        help="open psql on the Brain's database",
        **described(
            "Opens psql on the Brain's database; the credentials go in the environment, "
            "never on the command line.",
            "brain psql",
        ),
    )
    psql.set_defaults(handler=run_psql)


def psql_command(dsn: str) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of an interactive psql on ``dsn``.

    The connection, password included, goes in PG* environment variables; argv, which ``ps``
    shows to every user of the machine, names only the psql binary.
    """
    from brain_assets.store.backup import libpq_command

    return libpq_command("psql", dsn, prompt=True)


def run_psql(args: argparse.Namespace) -> int:
    from brain_assets.environment import brain_home, configured_dsn
    from brain_assets.store.embedded import start_embedded

    dsn = configured_dsn()
    if dsn is None:
        dsn = start_embedded(brain_home() / "pgdata").ensure_database("brain")
    argv, env = psql_command(dsn)
    os.execve(argv[0], argv, env)
    return 0
