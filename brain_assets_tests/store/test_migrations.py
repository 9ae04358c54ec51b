"""The migration runner: order, idempotence, races, edits and failures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from brain_assets.errors import MigrationError
from brain_assets.store.migrations import SQL_DIR, apply_migrations, discover, schema_version

EXPECTED_TABLES = {
    "model_registry",
    "model_activations",
    "model_metrics",
    "feature_importance",
    "data_quality_logs",
    "schema_migrations",
}


def tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_migrations_apply_once_and_are_idempotent(empty_dsn: str) -> None:
    versions = [m.version for m in discover()]
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        assert schema_version(conn) is None
        assert apply_migrations(conn) == versions
        assert apply_migrations(conn) == []
        assert schema_version(conn) == versions[-1]
        recorded = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert [row[0] for row in recorded] == versions
    assert EXPECTED_TABLES <= tables(empty_dsn)


def test_required_indexes_exist(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        apply_migrations(conn)
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            ).fetchall()
        )
    assert "(symbol, analysis_date DESC)" in indexes["feature_importance_symbol_date"]
    assert "(model_id, evaluation_date DESC)" in indexes["model_metrics_model_date"]
    one_active = indexes["model_registry_one_active_per_symbol"]
    assert "UNIQUE" in one_active and "WHERE is_active" in one_active


def test_processes_starting_together_on_a_new_database(empty_dsn: str) -> None:
    code = "import sys; from brain_assets import BrainLibrary; BrainLibrary(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, empty_dsn], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [(proc.wait(timeout=120), proc.stderr.read().decode()) for proc in procs]  # type: ignore[union-attr]
    assert [rc for rc, _ in results] == [0, 0, 0, 0], results
    with psycopg.connect(empty_dsn) as conn:
        rows = conn.execute("SELECT version, count(*) FROM schema_migrations GROUP BY 1").fetchall()
    assert rows and all(count == 1 for _, count in rows)
    assert EXPECTED_TABLES <= tables(empty_dsn)


def test_edited_migration_is_refused(empty_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(SQL_DIR, folder)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        apply_migrations(conn, folder)
        first = sorted(folder.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited later\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            apply_migrations(conn, folder)


def test_failing_migration_leaves_nothing_behind(empty_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "001_ok.sql").write_text("CREATE TABLE first_table (id int);")
    (folder / "002_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();"
    )
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"002_broken\.sql failed"):
            apply_migrations(conn, folder)
        assert schema_version(conn) == 1
    assert "first_table" in tables(empty_dsn)
    assert "half_done" not in tables(empty_dsn)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["1_short.sql"], "named NNN_lowercase_name.sql"),
        (["001_a.sql", "001_b.sql"], "share version 1"),
    ],
)
def test_badly_named_files_are_refused(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="not found"):
        discover(tmp_path / "nowhere")
