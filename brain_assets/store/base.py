"""The shared machinery of BrainStore: pool, transactions, row helpers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Self

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from brain_assets.dsn import describe_target, mask_dsn

# SymbolLockTimeoutError lives in brain_assets.errors with the other lock-timeout errors; it is
# imported here too because callers (and tests) have imported it from this module.
from brain_assets.errors import (
    BrainConnectionError,
    LockTimeoutError,
    StoreError,
    SymbolLockTimeoutError,
)
from brain_assets.events import log_event
from brain_assets.store import connection
from brain_assets.store.migrations import apply_migrations, schema_version
from brain_assets.store.target import resolve
from brain_assets.store.validation import symbol as check_symbol

# Per-symbol writers (registration, activation, rollback) take this advisory lock class with
# hashtext(symbol) as the second key, so that they serialise per symbol and never block others.
SYMBOL_LOCK_CLASS = 0x42524149

_migrated: set[str] = set()
_migrated_lock = threading.Lock()


__all__ = [
    "SYMBOL_LOCK_CLASS",
    "StoreBase",
    "SymbolLockTimeoutError",
    "as_store_errors",
    "copy_rows",
]


def copy_rows(
    conn: psycopg.Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple[object, ...]],
    *,
    dated: str,
    date: object | None,
) -> None:
    """COPY ``rows`` into ``table``: one statement whatever their number.

    Without a ``date`` the ``dated`` column is left to its default, the database's transaction
    time: the same for every row of one write, and independent of the client's clock. ``table``
    and the column names are this package's constants, never user input.
    """
    names = [*columns, dated] if date is not None else list(columns)
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row if date is None else (*row, date))


@contextmanager
def as_store_errors(what: str) -> Iterator[None]:
    """Raise the driver's errors of the enclosed block as StoreError, for callers that run
    outside the store and handle a failed database call without knowing its driver."""
    try:
        yield
    except psycopg.Error as exc:
        raise StoreError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


class StoreBase:
    """Connection pool, migrations and transaction scoping for the Brain store."""

    def __init__(self, dsn: str | None = None, *, max_connections: int = 10) -> None:
        started = time.monotonic()
        self._closed = True
        try:
            target = resolve(dsn)
            self._dsn = target.dsn
            self.origin = target.origin
            self.timeouts = connection.session_timeouts()
            connection.check_reachable(self._dsn, self.timeouts)
            self._migrate()
            self._pool = connection.open_pool(
                self._dsn, max_size=max_connections, timeouts=self.timeouts
            )
        except (BrainConnectionError, ValueError) as exc:
            log_event("brain_library_initialization_failed", logging.ERROR, error=str(exc))
            raise
        self._closed = False
        self._bound: ContextVar[psycopg.Connection | None] = ContextVar(
            f"brain_tx_{id(self)}", default=None
        )
        self._tx_models: ContextVar[set[tuple[str, str]] | None] = ContextVar(
            f"brain_tx_models_{id(self)}", default=None
        )
        log_event(
            "brain_library_initialized",
            dsn=self.masked_dsn,
            origin=self.origin,
            schema_version=self.schema_version(),
            seconds=round(time.monotonic() - started, 3),
        )

    def _migrate(self) -> None:
        with _migrated_lock:
            if self._dsn in _migrated:
                return
            with connection.connect(self._dsn, self.timeouts.for_migrations()) as conn:
                apply_migrations(conn)
            _migrated.add(self._dsn)

    @property
    def masked_dsn(self) -> str:
        return mask_dsn(self._dsn)

    @property
    def target(self) -> str:
        """Host, port, database and user, for people (no password)."""
        return describe_target(self._dsn)

    @property
    def dsn(self) -> str:
        """The full connection string (with its password) for code that opens its own connection."""
        return self._dsn

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.masked_dsn!r}, origin={self.origin!r})"

    def close(self) -> None:
        if not self._closed:
            self._pool.close()
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction; calls made inside it on this library (same thread) join it.

        Every public method is atomic on its own; use this to make several of them one unit::

            with brain.transaction():
                model_id = brain.register_model(...)
                brain.store_feature_importance("BTC/USDT", model_id, "shap", values)
        """
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        bound = self._bound.get()
        if bound is not None:
            # Joining without a savepoint: validation runs before any SQL, so a call that fails
            # inside a group has written nothing; a database error fails the whole group.
            yield bound
            return
        with self._pool.connection() as conn:
            token = self._bound.set(conn)
            models_token = self._tx_models.set(set())
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._tx_models.reset(models_token)
                self._bound.reset(token)

    def _rows(
        self, query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        with self.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def _registered_in_transaction(self, model_id: str, symbol: str) -> bool:
        """Whether this open transaction registered (model_id, symbol) itself: then a later call
        in it need not look the model up again (the foreign key still checks every row)."""
        registered = self._tx_models.get()
        return registered is not None and (model_id, symbol) in registered

    def _remember_registered(self, model_id: str, symbol: str) -> None:
        registered = self._tx_models.get()
        if registered is not None:
            registered.add((model_id, symbol))

    def lock_symbol(self, symbol: str) -> None:
        """Hold ``symbol``'s writer lock until the enclosing ``transaction()`` ends, so that a
        read-then-write sequence for the symbol cannot interleave with another writer's."""
        name = check_symbol(symbol)
        with self.transaction() as conn:
            self._lock_symbol(conn, name)

    def _lock_symbol(self, conn: psycopg.Connection, symbol: str) -> None:
        with self._waiting_for_lock(
            SymbolLockTimeoutError,
            f"the writer lock of symbol {symbol!r}",
            "another registration, activation or rollback of it",
        ):
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SYMBOL_LOCK_CLASS, symbol)
            )

    @contextmanager
    def _waiting_for_lock(
        self, error: type[LockTimeoutError], lock: str, holder: str
    ) -> Iterator[None]:
        """Turn a lock wait of the enclosed statement that ran out into ``error``, whose message
        names ``lock`` and who holds such a lock (``holder``), instead of psycopg's error, which
        names neither. Wrap only the statement that takes the lock: a QueryCanceled of any other
        statement is no lock wait."""
        try:
            yield
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            # QueryCanceled: a statement timeout configured below the lock timeout ran out first,
            # or the wait was cancelled; either way the lock was not obtained.
            reason = " ".join(str(exc).split())
            raise error(
                f"gave up waiting for {lock} ({reason}; "
                f"{connection.LOCK_TIMEOUT_ENV}={self.timeouts.lock_s:g} s): {holder} holds the "
                "lock; this transaction is rolled back, nothing of it is kept; try again later"
            ) from exc

    @staticmethod
    def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=list(columns))

    def schema_version(self) -> int | None:
        with self.transaction() as conn:
            return schema_version(conn)
