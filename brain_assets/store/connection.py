"""Choosing the database and opening it: DSN resolution, a fast clear failure, the pool."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg
from psycopg_pool import ConnectionPool

from brain_assets.errors import BrainConnectionError
from brain_assets.settings import brain_home, configured_dsn
from brain_assets.store.dsn import describe_target, scrub
from brain_assets.store.embedded import embedded_dsn

# libpq applies connect_timeout per address tried (localhost may resolve to two), so 4 s keeps a
# failed connection under the 10 s that callers are promised.
CONNECT_TIMEOUT_S = 4
POOL_OPEN_TIMEOUT_S = 10.0

logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Target:
    dsn: str
    origin: str  # "argument", "DATABASE_DSN" or "embedded"


def resolve(dsn: str | None) -> Target:
    """An explicit DSN wins, then ``$DATABASE_DSN``, then the embedded server under BRAIN_HOME."""
    if dsn is not None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ValueError("dsn must be a non-empty PostgreSQL connection string or None")
        describe_target(dsn)  # raises a masked ValueError for a malformed DSN
        return Target(dsn.strip(), "argument")
    from_env = configured_dsn()
    if from_env is not None:
        describe_target(from_env)
        return Target(from_env, "DATABASE_DSN")
    return Target(embedded_dsn(brain_home()), "embedded")


def check_reachable(dsn: str) -> None:
    """Connect once, failing within about 10 s with a message naming host, port and database."""
    started = time.monotonic()
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = " ".join(scrub(str(exc), dsn).split())  # libpq's message spans lines
        raise BrainConnectionError(
            f"cannot connect to PostgreSQL at {describe_target(dsn)} "
            f"after {time.monotonic() - started:.1f} s: {reason}"
        ) from None


def open_pool(dsn: str, *, max_size: int = 10) -> ConnectionPool:
    pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
        # A long-lived process (the Dagster daemon) outlives server restarts: check on checkout.
        check=ConnectionPool.check_connection,
        open=False,
        name="brain",
        timeout=30.0,
    )
    try:
        pool.open(wait=True, timeout=POOL_OPEN_TIMEOUT_S)
    except Exception as exc:
        pool.close()
        raise BrainConnectionError(
            f"cannot open a connection pool to PostgreSQL at {describe_target(dsn)}: "
            f"{scrub(str(exc), dsn)}"
        ) from None
    return pool
