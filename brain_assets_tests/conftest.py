"""Fixtures: one embedded PostgreSQL per test session, a fresh database per test.

Every test database is a copy of a migrated template, so a test starts from the real schema in
milliseconds and never sees another test's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from brain_assets.library import BrainLibrary
from brain_assets.store.embedded import EmbeddedServer, start_embedded
from brain_assets.store.migrations import apply_migrations

TEMPLATE = "brain_template"


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test may touch the working directory's .brain or a DATABASE_DSN set in the shell."""
    home = tmp_path_factory.mktemp("brain_home")
    keys = ("BRAIN_HOME", "DATABASE_DSN", "BRAIN_LOG_DIR", "BRAIN_MARKET_SOURCE")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ["BRAIN_HOME"] = str(home)
    os.environ["BRAIN_LOG_DIR"] = str(home / "logs")
    os.environ.pop("DATABASE_DSN", None)
    # The suite trains on generated bars (dagster_helpers.SMALL_MARKET): a deployment that chose
    # them, so that its versions may trade; tests of a real deployment unset it.
    os.environ["BRAIN_MARKET_SOURCE"] = "synthetic"
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedServer:
    server = start_embedded(tmp_path_factory.mktemp("pg") / "pgdata")
    dsn = server.ensure_database(TEMPLATE)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)
    return server


@pytest.fixture
def brain_dsn(pg_server: EmbeddedServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = pg_server.ensure_database(name, template=TEMPLATE)
    yield dsn
    pg_server.drop_database(name)


@pytest.fixture
def brain(brain_dsn: str) -> Iterator[BrainLibrary]:
    library = BrainLibrary(brain_dsn)
    yield library
    library.close()


@pytest.fixture
def empty_dsn(pg_server: EmbeddedServer) -> Iterator[str]:
    """A database the platform has never touched (no schema)."""
    name = f"e_{uuid.uuid4().hex[:16]}"
    dsn = pg_server.ensure_database(name)
    yield dsn
    pg_server.drop_database(name)


def count_rows(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
    assert row is not None
    return int(row[0])
