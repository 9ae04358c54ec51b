"""Connections opened outside the pool (backups, the embedded server's administration) carry the
Brain's session limits, less the one their work cannot live with."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from brain_assets.library import BrainLibrary
from brain_assets.store import backup as backup_module
from brain_assets.store import connection
from brain_assets.store.backup import backup, verify_backup
from brain_assets.store.embedded import EmbeddedServer

LIMITS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


def set_timeouts(monkeypatch: pytest.MonkeyPatch, *, statement: str, lock: str, idle: str) -> None:
    monkeypatch.setenv(connection.STATEMENT_TIMEOUT_ENV, statement)
    monkeypatch.setenv(connection.LOCK_TIMEOUT_ENV, lock)
    monkeypatch.setenv(connection.IDLE_TX_TIMEOUT_ENV, idle)


def record_sessions(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every connection opened through connection.connect from now on, with its limits as the
    server reports them."""
    sessions: list[dict[str, Any]] = []
    real_connect = connection.connect

    def recording(
        dsn: str, timeouts: connection.SessionTimeouts | None = None, *, autocommit: bool = True
    ) -> psycopg.Connection:
        conn = real_connect(dsn, timeouts, autocommit=autocommit)
        shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in LIMITS}
        if not autocommit:
            conn.rollback()  # the caller sets its transaction's characteristics itself
        sessions.append({"database": conn.info.dbname, "autocommit": autocommit, **shown})
        return conn

    monkeypatch.setattr(connection, "connect", recording)
    return sessions


def test_a_backup_outlasting_the_idle_limit_completes_and_carries_the_limits(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    brain.register_model("BTC/USDT", "ridge", b"w", metrics={"rmse": 0.1}, activate=True)
    set_timeouts(monkeypatch, statement="45", lock="7.5", idle="0.5")
    sessions = record_sessions(monkeypatch)
    # pg_dump runs 2 s longer, four times the idle limit, while the transaction that exported its
    # snapshot waits idle for it to finish, as it does for a big store.
    real_run = backup_module._run

    def slow_pg_dump(tool: str, args: Sequence[str], **kwargs: Any) -> str:
        output = real_run(tool, args, **kwargs)
        if tool == "pg_dump" and any(arg.startswith("--snapshot=") for arg in args):
            time.sleep(2.0)
        return output

    monkeypatch.setattr(backup_module, "_run", slow_pg_dump)

    # A Dagster database that does not exist: its check is a second, autocommit, session.
    info = backup(brain_dsn, tmp_path / "brain.backup", dagster_database="no_such_dagster")

    assert info.row_counts["model_registry"] == 1
    assert info.dagster["status"] == "missing"
    assert verify_backup(tmp_path / "brain.backup").schema_version == info.schema_version
    exporter = [session for session in sessions if not session["autocommit"]]
    others = [session for session in sessions if session["autocommit"]]
    assert len(exporter) == 1 and others
    # Only the exporter goes without the idle limit; every session keeps the other two.
    assert exporter[0]["idle_in_transaction_session_timeout"] == "0"
    assert {session["idle_in_transaction_session_timeout"] for session in others} == {"500ms"}
    assert {(s["statement_timeout"], s["lock_timeout"]) for s in sessions} == {("45s", "7500ms")}


def test_the_embedded_servers_admin_sessions_carry_the_limits_but_the_statement_one(
    pg_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_timeouts(monkeypatch, statement="45", lock="7.5", idle="30")
    sessions = record_sessions(monkeypatch)
    name = f"a_{uuid.uuid4().hex[:16]}"
    dsn = pg_server.ensure_database(name)
    try:
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        pg_server.drop_database(name)
    # One session to create the database, one to drop it, both on the postgres database.
    assert (
        sessions
        == [
            {
                "database": "postgres",
                "autocommit": True,
                "statement_timeout": "0",
                "lock_timeout": "7500ms",
                "idle_in_transaction_session_timeout": "30s",
            }
        ]
        * 2
    )
    with pytest.raises(psycopg.OperationalError, match=name):
        psycopg.connect(dsn, connect_timeout=5).close()
