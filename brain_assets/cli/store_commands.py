"""Store-level subcommands: ``psql``."""

from __future__ import annotations

import argparse
import os
from typing import Any


def register(commands: Any) -> None:
    psql = commands.add_parser("psql", help="open psql on the Brain's database")
    psql.set_defaults(handler=run_psql)


def run_psql(args: argparse.Namespace) -> int:
    from brain_assets.settings import brain_home, configured_dsn
    from brain_assets.store.embedded import start_embedded

    dsn = configured_dsn()
    if dsn is not None:
        os.execvp("psql", ["psql", dsn])
    server = start_embedded(brain_home() / "pgdata")
    dsn = server.ensure_database("brain")
    psql = str(server.bin_dir / "psql")
    os.execv(psql, [psql, dsn])
    return 0
