"""A run's Dagster storage keeps its PostgreSQL connections instead of opening one per event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy

from brain_assets.cli.instance import prepare_dagster_environment
from brain_assets.defs.run_workers import storage_connections_held

WRITES = 30


@pytest.fixture
def pg_instance(
    brain_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    monkeypatch.setenv("BRAIN_HOME", str(tmp_path / "home"))
    # Set here so that the test undoes what the call writes into the environment.
    for name in ("DAGSTER_HOME", "DAGSTER_PG_URL", "BRAIN_MAX_CONCURRENT_RUNS"):
        monkeypatch.setenv(name, "")
    prepare_dagster_environment()
    with dg.DagsterInstance.get() as instance:
        yield instance


def connections_for_events(instance: dg.DagsterInstance) -> int:
    """PostgreSQL connections the event log opens while a run records ``WRITES`` events."""
    opened = []
    engine = instance.event_log_storage._engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "connect", lambda *_: opened.append(1))
    run = instance.create_run_for_job(job_def=dg.GraphDefinition("noop").to_job())
    for number in range(WRITES):
        instance.report_engine_event(f"event {number}", run)
    return len(opened)


def test_held_connections_serve_every_event_of_a_run(pg_instance: dg.DagsterInstance) -> None:
    # dagster-postgres alone: a connection, so a PostgreSQL backend process, per write.
    assert connections_for_events(pg_instance) >= WRITES
    with storage_connections_held(pg_instance):
        assert connections_for_events(pg_instance) <= 2
        engine = pg_instance.event_log_storage._engine  # type: ignore[attr-defined]
        assert engine.pool.checkedin() >= 1  # kept for the next write
    assert engine.pool.checkedin() == 0  # closed after the run
