"""Choosing the database and opening it: DSN resolution, a fast clear failure, the pool, and the
session limits that every connection of the Brain carries."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg_pool import ConnectionPool

from brain_assets.dsn import describe_target, scrub
from brain_assets.errors import BrainConnectionError

# libpq applies connect_timeout per address tried (localhost may resolve to two), so 4 s keeps a
# failed connection under the 10 s that callers are promised.
CONNECT_TIMEOUT_S = 4
POOL_OPEN_TIMEOUT_S = 10.0

STATEMENT_TIMEOUT_ENV = "BRAIN_STATEMENT_TIMEOUT_S"
LOCK_TIMEOUT_ENV = "BRAIN_LOCK_TIMEOUT_S"
IDLE_TX_TIMEOUT_ENV = "BRAIN_IDLE_TX_TIMEOUT_S"

# A session that sits idle inside a transaction for this long is ended by the server, which frees
# its locks: this is what unblocks a symbol whose lock holder froze (SIGSTOP, swapping, a
# debugger) or lost its host. The longest legitimate pause inside a transaction is registration
# scoring the champion under the symbol's lock (loading the model, TensorFlow's first import
# included, and predicting the test segment: tens of seconds on the 2-core bench machine), so
# 2 minutes leaves a wide margin while bounding how long a rollback can be held up.
DEFAULT_IDLE_TX_TIMEOUT_S = 120.0
# Longer than the idle timeout, so that a writer queued behind a frozen holder outlasts it and
# proceeds instead of failing; also longer than the longest legitimate hold (a registration of
# several versions, or a 10-million-bar import at about 70 s). A wait that still ends here fails
# with an error naming the symbol rather than queueing forever.
DEFAULT_LOCK_TIMEOUT_S = 300.0
# Longer than the lock timeout because a lock wait counts towards its statement's time: the lock
# timeout, whose error names the lock, must fire first. Well above the biggest legitimate
# statement: the bar upsert runs at about 146,000 bars/s (1 M bars in 6.9 s), so even 10 M bars
# take a small fraction of it. It stops a runaway query, nothing more; work whose length grows with
# the data it maintains (ANALYZE, archive moves, CREATE DATABASE) lifts it for itself, see
# SessionTimeouts.for_maintenance.
DEFAULT_STATEMENT_TIMEOUT_S = 600.0
# PostgreSQL keeps these settings in milliseconds in a signed 32-bit integer.
_MAX_TIMEOUT_MS = 2**31 - 1

# TCP keepalives, on both ends of a TCP connection (libpq and the server ignore them on a Unix
# socket, such as the embedded server's): a peer that vanished without closing its socket (power
# loss, network partition) is declared dead after 30 s of silence and 3 unanswered probes 10 s
# apart, about a minute, instead of the operating system's default of over two hours.
KEEPALIVES_IDLE_S = 30
KEEPALIVES_INTERVAL_S = 10
KEEPALIVES_COUNT = 3
# The same minute for data sent but never acknowledged, which keepalives do not cover (libpq 12+).
TCP_USER_TIMEOUT_MS = (KEEPALIVES_IDLE_S + KEEPALIVES_INTERVAL_S * KEEPALIVES_COUNT) * 1000

logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


@dataclass(frozen=True)
class SessionTimeouts:
    """Server-side limits of every session the Brain opens, in seconds; 0 disables one."""

    statement_s: float = DEFAULT_STATEMENT_TIMEOUT_S
    lock_s: float = DEFAULT_LOCK_TIMEOUT_S
    idle_in_transaction_s: float = DEFAULT_IDLE_TX_TIMEOUT_S

    def for_migrations(self) -> SessionTimeouts:
        """No statement or lock limit: a migration may rebuild a big table, and waits for another
        process's migrations on their advisory lock. The idle limit stays, so a frozen migrator
        still releases its locks."""
        return replace(self, statement_s=0.0, lock_s=0.0)

    def for_maintenance(self) -> SessionTimeouts:
        """No statement limit, for maintenance whose length follows the size of the data it
        handles rather than a fault: an archive move after months without maintenance, ANALYZE
        sampling a big table, CREATE DATABASE copying a template. Cancelling it would only leave
        the same, bigger, work to the next run. The lock and idle limits stay, so it still never
        queues forever behind another session's lock nor holds its own while frozen."""
        return replace(self, statement_s=0.0)

    def settings_ms(self) -> dict[str, int]:
        """These limits as PostgreSQL settings, in milliseconds (0: no limit)."""
        return {
            "statement_timeout": _milliseconds(self.statement_s),
            "lock_timeout": _milliseconds(self.lock_s),
            "idle_in_transaction_session_timeout": _milliseconds(self.idle_in_transaction_s),
        }

    def server_options(self) -> str:
        """The libpq ``options`` value (``-c name=value`` pairs) that sets these limits at
        connection start, without a round trip."""
        settings = {
            **self.settings_ms(),
            "tcp_keepalives_idle": KEEPALIVES_IDLE_S,
            "tcp_keepalives_interval": KEEPALIVES_INTERVAL_S,
            "tcp_keepalives_count": KEEPALIVES_COUNT,
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items())


def _milliseconds(seconds: float) -> int:
    # Rounded up: a positive limit below 1 ms must not turn into 0, which disables it.
    return math.ceil(seconds * 1000)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or _milliseconds(value) > _MAX_TIMEOUT_MS:
        raise ValueError(
            f"{name} must be a number of seconds between 0 (no limit) and "
            f"{_MAX_TIMEOUT_MS // 1000}, got {raw!r}"
        )
    return value


def session_timeouts(environ: Mapping[str, str] | None = None) -> SessionTimeouts:
    """The limits from ``$BRAIN_STATEMENT_TIMEOUT_S``, ``$BRAIN_LOCK_TIMEOUT_S`` and
    ``$BRAIN_IDLE_TX_TIMEOUT_S`` (blank or unset: the defaults); a ValueError names a bad one."""
    env = os.environ if environ is None else environ
    return SessionTimeouts(
        statement_s=_seconds(env, STATEMENT_TIMEOUT_ENV, DEFAULT_STATEMENT_TIMEOUT_S),
        lock_s=_seconds(env, LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT_S),
        idle_in_transaction_s=_seconds(env, IDLE_TX_TIMEOUT_ENV, DEFAULT_IDLE_TX_TIMEOUT_S),
    )


def connection_kwargs(dsn: str, timeouts: SessionTimeouts) -> dict[str, Any]:
    """libpq parameters to connect to ``dsn`` with: the timeouts and the keepalives.

    What the DSN sets itself wins: its ``connect_timeout`` (or ``$PGCONNECT_TIMEOUT``) and its
    keepalive parameters are kept, and its ``options`` (or ``$PGOPTIONS``, which libpq would no
    longer read once ``options`` is given) come after ours, where a later ``-c`` of the same
    setting overrides an earlier one. Every other parameter of the DSN reaches libpq untouched,
    the DSN itself being the connection string.
    """
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    own = params.get("options")
    theirs = str(own) if own else os.environ.get("PGOPTIONS", "")
    kwargs: dict[str, Any] = {"options": f"{timeouts.server_options()} {theirs}".strip()}
    # A keyword argument overrides both the DSN and the environment in libpq: ours only where
    # neither chose one, so that an operator who needs a longer wait (a server across a slow
    # link) gets it.
    if not params.get("connect_timeout") and not os.environ.get("PGCONNECT_TIMEOUT"):
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
    keepalives: dict[str, int] = {
        "keepalives": 1,
        "keepalives_idle": KEEPALIVES_IDLE_S,
        "keepalives_interval": KEEPALIVES_INTERVAL_S,
        "keepalives_count": KEEPALIVES_COUNT,
    }
    if psycopg.pq.version() >= 120000:
        keepalives["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
    kwargs.update({key: value for key, value in keepalives.items() if key not in params})
    return kwargs


def connect(
    dsn: str, timeouts: SessionTimeouts | None = None, *, autocommit: bool = True
) -> psycopg.Connection:
    """A single connection with the Brain's session limits (default: from the environment)."""
    limits = session_timeouts() if timeouts is None else timeouts
    return psycopg.connect(dsn, autocommit=autocommit, **connection_kwargs(dsn, limits))


def check_reachable(dsn: str, timeouts: SessionTimeouts | None = None) -> None:
    """Connect once, failing within about 10 s with a message naming host, port and database.

    The connection carries the session limits, so a server that refuses them (an unknown
    setting, a pooler that rejects ``options``) fails here, with its reason.
    """
    started = time.monotonic()
    try:
        with connect(dsn, timeouts) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = " ".join(scrub(str(exc), dsn).split())  # libpq's message spans lines
        raise BrainConnectionError(
            f"cannot connect to PostgreSQL at {describe_target(dsn)} "
            f"after {time.monotonic() - started:.1f} s: {reason}"
        ) from None


def open_pool(
    dsn: str, *, max_size: int = 10, timeouts: SessionTimeouts | None = None
) -> ConnectionPool:
    limits = session_timeouts() if timeouts is None else timeouts
    pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, **connection_kwargs(dsn, limits)},
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
