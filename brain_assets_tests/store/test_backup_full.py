"""Backups of the Brain and of the Dagster instance in one verified archive, and their restores.

What these tests hold the backup to: both databases in the archive with a manifest that tells
the truth; damage found and named; Dagster's runs, symbols and cursors back after the database
was dropped; a schema newer than the code refused before anything changes, an older one migrated
forward; single-database dumps of earlier versions still restored; no password on any command
line (pg_dump, pg_restore, psql, `brain psql`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import psycopg.conninfo
import pytest

from brain_assets.cli.instance import sqlalchemy_url
from brain_assets.cli.main import main
from brain_assets.library import BrainLibrary
from brain_assets.store.backup import (
    BRAIN_DUMP,
    DAGSTER_DUMP,
    MANIFEST,
    BackupVerificationError,
    RestoreRefusedError,
    SchemaTooNewError,
    backup,
    dagster_revisions,
    libpq_command,
    restore,
    verify_backup,
)
from brain_assets.store.embedded import EmbeddedServer, start_embedded
from brain_assets.store.migrations import SQL_DIR, apply_migrations, latest_version
from brain_assets_tests.conftest import TEMPLATE, count_rows
from brain_assets_tests.database_compare import (
    SECRET,
    assert_same_database,
    tables_of,
    with_password,
)

SYMBOL = "BTC/USDT"
CURSOR_KEY = "backup_probe_sensor_cursor"


@dg.asset
def backup_probe() -> None:
    """A trivial asset: materialising it leaves a run and its events in the instance."""


@pytest.fixture
def dagster_db(pg_server: EmbeddedServer) -> Iterator[str]:
    """The name of a database of its own for a Dagster instance, on the tests' server."""
    name = f"d_{uuid.uuid4().hex[:16]}"
    pg_server.ensure_database(name)
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def migrated_empty_dsn(pg_server: EmbeddedServer) -> Iterator[str]:
    """A database with the Brain schema and no rows."""
    name = f"m_{uuid.uuid4().hex[:16]}"
    yield pg_server.ensure_database(name, template=TEMPLATE)
    pg_server.drop_database(name)


@contextmanager
def dagster_instance(dsn: str) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance whose storage is the PostgreSQL database of ``dsn``, as in production."""
    storage = {"storage": {"postgres": {"postgres_url": sqlalchemy_url(dsn)}}}
    with dg.instance_for_test(overrides=storage) as instance:
        yield instance


def seed_dagster(dsn: str) -> str:
    """A symbol, a successful run and a sensor cursor in the instance at ``dsn``; the run id."""
    with dagster_instance(dsn) as instance:
        instance.add_dynamic_partitions("symbols", [SYMBOL])
        result = dg.materialize([backup_probe], instance=instance)
        assert result.success
        instance.run_storage.set_cursor_values({CURSOR_KEY: "storage_id=42"})
        return result.run_id


def dagster_state(dsn: str, run_id: str) -> tuple[list[str], Any, dict[str, str]]:
    """The instance's symbols, the status of run ``run_id`` and the probe's sensor cursor."""
    with dagster_instance(dsn) as instance:
        run = instance.get_run_by_id(run_id)
        return (
            list(instance.get_dynamic_partitions("symbols")),
            run.status if run else None,
            dict(instance.run_storage.get_cursor_values({CURSOR_KEY})),
        )


def dagster_head_and_previous() -> tuple[str, str]:
    """The installed Dagster's newest storage revision, and the one before it."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(dg.__file__).parent / "_core" / "storage" / "alembic"))
    current = script.get_current_head()
    assert current is not None
    head = script.get_revision(current)
    assert head is not None
    assert head.revision == dagster_revisions()[0]
    return head.revision, str(head.down_revision)


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        found = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            found[member.name] = handle.read()
    return found


def flip_byte_in(path: Path, member_name: str, copy: Path) -> Path:
    """A copy of the archive with one byte changed in the middle of ``member_name``."""
    shutil.copyfile(path, copy)
    with tarfile.open(copy) as tar:
        member = tar.getmember(member_name)
        offset = member.offset_data + member.size // 2
    with copy.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return copy


def database_exists(pg_server: EmbeddedServer, name: str) -> bool:
    with psycopg.connect(pg_server.uri("postgres")) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def test_backup_archives_both_databases_with_a_manifest_and_verifies_them(
    brain: BrainLibrary, brain_dsn: str, pg_server: EmbeddedServer, dagster_db: str, tmp_path: Path
) -> None:
    model_id = brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    seed_dagster(pg_server.uri(dagster_db))
    path = tmp_path / "brain.backup"

    info = backup(brain_dsn, path, dagster_database=dagster_db)

    # Written atomically: the archive alone, no temporary file or folder left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["brain.backup"]
    assert path.stat().st_mode & 0o777 == 0o600
    content = members(path)
    assert list(content) == [MANIFEST, BRAIN_DUMP, DAGSTER_DUMP]
    manifest = json.loads(content[MANIFEST])
    assert manifest["format"] == "brain-assets-backup" and manifest["format_version"] == 1
    assert manifest["schema_version"] == latest_version() == info.schema_version
    created = datetime.fromisoformat(manifest["created_at"])
    assert datetime.now(UTC) - created < timedelta(minutes=5)
    with psycopg.connect(brain_dsn) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    assert server is not None and manifest["server_version"] == server[0]
    assert "pg_dump" in manifest["pg_dump_version"]
    head, _ = dagster_revisions()
    assert manifest["dagster"]["status"] == "included"
    assert manifest["dagster"]["alembic_revision"] == head
    for role, name in (("brain", BRAIN_DUMP), ("dagster", DAGSTER_DUMP)):
        entry = manifest["dumps"][role]
        assert entry["file"] == name
        assert entry["bytes"] == len(content[name])
        assert entry["sha256"] == hashlib.sha256(content[name]).hexdigest()
        assert content[name].startswith(b"PGDMP")
    assert manifest["dumps"]["brain"]["row_counts"]["model_registry"] == 1
    assert manifest["dumps"]["dagster"]["database"] == dagster_db
    dagster_rows = manifest["dumps"]["dagster"]["row_counts"]
    assert dagster_rows["runs"] == 1 and dagster_rows["dynamic_partitions"] == 1
    assert dagster_rows["kvs"] >= 1

    # What `brain backup` verified, and the same again on the file as it lies on disk.
    assert [check.role for check in info.verified.dumps] == ["brain", "dagster"]
    assert all(check.entries > 0 for check in info.verified.dumps)
    assert "model_registry" in info.verified.dumps[0].tables
    assert "runs" in info.verified.dumps[1].tables
    assert info.verified.dumps[0].sha256 == manifest["dumps"]["brain"]["sha256"]
    again = verify_backup(path)
    assert again.schema_version == latest_version() and again.dagster_revision == head
    lines = "\n".join(again.lines())
    assert "brain.dump" in lines and "dagster.dump" in lines
    assert "matches the manifest" in lines and "pg_restore --list" in lines
    assert brain.get_model(model_id) is not None


def test_one_changed_byte_fails_verification_naming_the_file(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    pg_server: EmbeddedServer,
    dagster_db: str,
    tmp_path: Path,
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    seed_dagster(pg_server.uri(dagster_db))
    path = tmp_path / "brain.backup"
    backup(brain_dsn, path, dagster_database=dagster_db)
    target_dagster = f"r_{uuid.uuid4().hex[:16]}"

    for name in (BRAIN_DUMP, DAGSTER_DUMP):
        damaged = flip_byte_in(path, name, tmp_path / f"damaged-{name}.backup")
        with pytest.raises(BackupVerificationError, match=rf"{name} in .*damaged-{name}.*sha256"):
            verify_backup(damaged)
        # A restore verifies first: the damaged archive changes nothing.
        with pytest.raises(BackupVerificationError, match=rf"{name} in .*sha256"):
            restore(empty_dsn, damaged, dagster_database=target_dagster)
        assert tables_of(empty_dsn) == []
        assert not database_exists(pg_server, target_dagster)

    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BackupVerificationError, match=r"truncated\.backup"):
        verify_backup(truncated)

    # The manifest is checked against the dumps, not trusted: a claimed version must match.
    forged = tmp_path / "forged.backup"
    content = members(path)
    manifest = json.loads(content[MANIFEST])
    manifest["schema_version"] = 99
    with tarfile.open(forged, "w") as tar:
        for name, data in [(MANIFEST, json.dumps(manifest).encode()), *list(content.items())[1:]]:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupVerificationError, match=r"brain\.dump in .*forged.*version"):
        verify_backup(forged)


def test_dagster_runs_symbols_and_cursors_survive_backup_drop_restore(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    pg_server: EmbeddedServer,
    dagster_db: str,
    tmp_path: Path,
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    run_id = seed_dagster(pg_server.uri(dagster_db))
    before = dagster_state(pg_server.uri(dagster_db), run_id)
    assert before == ([SYMBOL], dg.DagsterRunStatus.SUCCESS, {CURSOR_KEY: "storage_id=42"})
    path = tmp_path / "brain.backup"
    backup(brain_dsn, path, dagster_database=dagster_db)

    pg_server.drop_database(dagster_db)
    restored = restore(empty_dsn, path, dagster_database=dagster_db)

    assert dagster_state(pg_server.uri(dagster_db), run_id) == before
    assert restored.dagster["status"] == "restored"
    assert restored.dagster["needs_upgrade"] is False
    assert restored.dagster["row_counts"]["runs"] == 1
    assert_same_database(brain_dsn, empty_dsn)

    # Both now hold data: a second restore is refused, naming both databases, unless forced.
    with pytest.raises(RestoreRefusedError) as refused:
        restore(empty_dsn, path, dagster_database=dagster_db)
    assert "model_registry: 1 rows" in str(refused.value)
    assert f"database {dagster_db!r}" in str(refused.value) and "runs: 1 rows" in str(refused.value)
    with dagster_instance(pg_server.uri(dagster_db)) as instance:
        instance.add_dynamic_partitions("symbols", ["ETH/USDT"])
    forced = restore(empty_dsn, path, force=True, dagster_database=dagster_db)
    assert forced.replaced and forced.dagster["replaced"]
    assert dagster_state(pg_server.uri(dagster_db), run_id) == before

    # A target that keeps Dagster in the Brain's database (DATABASE_DSN) cannot take the
    # backup's separate Dagster database: refused, or the Brain alone when asked.
    with pytest.raises(RestoreRefusedError, match="--no-dagster"):
        restore(empty_dsn, path, force=True)
    alone = restore(empty_dsn, path, force=True, skip_dagster=True)
    assert alone.dagster["status"] == "skipped"


def test_a_missing_or_shared_dagster_database_is_recorded(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    missing = backup(brain_dsn, tmp_path / "missing.backup", dagster_database="no_dagster_here")
    assert missing.dagster["status"] == "missing"
    assert "'no_dagster_here' does not exist" in missing.dagster["detail"]
    assert "backup_without_dagster" in caplog.text
    assert list(members(tmp_path / "missing.backup")) == [MANIFEST, BRAIN_DUMP]
    assert "dagster: missing" in "\n".join(verify_backup(tmp_path / "missing.backup").lines())

    assert backup(brain_dsn, tmp_path / "none.backup").dagster["status"] == "none"
    # A database the platform never touched backs up too (and verifies: no entries, no schema).
    blank = backup(empty_dsn, tmp_path / "blank.backup")
    assert blank.schema_version is None and blank.verified.dumps[0].entries == 0

    # With DATABASE_DSN the instance keeps its tables in the Brain's database: in brain.dump.
    run_id = seed_dagster(brain_dsn)
    shared = backup(brain_dsn, tmp_path / "shared.backup")
    head, _ = dagster_revisions()
    assert shared.dagster["status"] == "in_brain_database"
    assert shared.dagster["alembic_revision"] == head
    assert shared.row_counts["runs"] == 1
    restored = restore(empty_dsn, tmp_path / "shared.backup")
    assert restored.dagster["status"] == "in_brain_database"
    assert dagster_state(empty_dsn, run_id)[0] == [SYMBOL]


def test_a_newer_schema_is_refused_and_nothing_changes(
    brain: BrainLibrary,
    brain_dsn: str,
    pg_server: EmbeddedServer,
    migrated_empty_dsn: str,
    tmp_path: Path,
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    with psycopg.connect(brain_dsn) as conn:  # as a later brain-assets would have left it
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (99, "from_the_future", "0" * 64),
        )
    path = tmp_path / "future.backup"
    made = backup(brain_dsn, path)
    assert made.schema_version == 99
    with BrainLibrary(migrated_empty_dsn) as target:
        target.log_data_quality(SYMBOL, "no_gaps", "INFO", True)
    dagster_name = f"r_{uuid.uuid4().hex[:16]}"

    for force in (False, True):
        with pytest.raises(SchemaTooNewError) as refused:
            restore(migrated_empty_dsn, path, force=force, dagster_database=dagster_name)
        message = str(refused.value)
        assert "schema version 99" in message and f"version {latest_version()}" in message
        assert "upgrade brain-assets first" in message

    assert count_rows(migrated_empty_dsn, "data_quality_logs") == 1
    assert count_rows(migrated_empty_dsn, "model_registry") == 0
    with psycopg.connect(migrated_empty_dsn) as conn:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert row is not None and row[0] == latest_version()
    assert not database_exists(pg_server, dagster_name)


def test_an_older_schema_is_restored_then_migrated_forward_over_a_newer_target(
    brain: BrainLibrary, brain_dsn: str, pg_server: EmbeddedServer, tmp_path: Path
) -> None:
    old_sql = tmp_path / "sql"
    old_sql.mkdir()
    for file in sorted(SQL_DIR.glob("00[1-5]_*.sql")):
        shutil.copy(file, old_sql / file.name)
    old_name = f"o_{uuid.uuid4().hex[:16]}"
    old_dsn = pg_server.ensure_database(old_name)
    try:
        with psycopg.connect(old_dsn, autocommit=True) as conn:
            assert apply_migrations(conn, old_sql) == [1, 2, 3, 4, 5]
            conn.execute(
                "INSERT INTO data_quality_logs (symbol, check_name, severity, passed) "
                "VALUES (%s, %s, %s, %s)",
                (SYMBOL, "from_v5", "WARN", False),
            )
        path = tmp_path / "old.backup"
        assert backup(old_dsn, path).schema_version == 5
        old_tables = set(tables_of(old_dsn))
    finally:
        pg_server.drop_database(old_name)
    # The target is at the newest schema and holds data in tables that version 5 lacks.
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    brain.start_replay("replay-1", SYMBOL, {"days": 3})

    newer_tables = sorted(set(tables_of(brain_dsn)) - old_tables)
    assert {"bar_batches", "bars", "replay_runs", "replay_steps"} <= set(newer_tables)

    with pytest.raises(RestoreRefusedError, match="replay_runs: 1 rows"):
        restore(brain_dsn, path)
    restored = restore(brain_dsn, path, force=True)

    assert restored.backup_schema_version == 5
    assert restored.migrated == tuple(range(6, latest_version() + 1))
    assert restored.schema_version == latest_version()
    assert restored.dropped == tuple(newer_tables)
    assert count_rows(brain_dsn, "data_quality_logs") == 1
    assert count_rows(brain_dsn, "model_registry") == 0
    assert count_rows(brain_dsn, "replay_runs") == 0
    # The next open of the Brain finds nothing to migrate and works.
    with BrainLibrary(brain_dsn) as reopened:
        assert reopened.schema_version() == latest_version()
        reopened.register_model(SYMBOL, "ridge", b"new", metrics={"rmse": 0.2})
        reopened.start_replay("replay-2", SYMBOL, {})


def test_single_database_dumps_of_earlier_versions_still_restore(
    brain: BrainLibrary, brain_dsn: str, empty_dsn: str, tmp_path: Path
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    old = tmp_path / "brain.dump"
    argv, env = libpq_command("pg_dump", brain_dsn, ["--format=custom", f"--file={old}"])
    subprocess.run(argv, env=env, check=True)

    report = verify_backup(old)
    assert report.legacy and report.schema_version == latest_version()
    assert "single-database dump" in "\n".join(report.lines())
    restored = restore(empty_dsn, old, dagster_database="no_dagster_here")

    assert restored.verified.legacy
    assert restored.dagster["status"] == "not_in_backup"
    assert_same_database(brain_dsn, empty_dsn)


def test_no_password_on_any_command_line(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    launched: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    class Recorder(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **options: Any) -> None:
            launched.append(([str(a) for a in args], dict(options.get("env") or {})))
            super().__init__(args, *rest, **options)

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    path = tmp_path / "brain.backup"
    backup(with_password(brain_dsn), path)
    restore(with_password(empty_dsn), path)
    monkeypatch.setattr(subprocess, "Popen", real_popen)

    assert {Path(argv[0]).name for argv, _ in launched} >= {"pg_dump", "pg_restore", "psql"}
    # The tools that connect (pg_dump, and psql running pg_restore's SQL) get the password from
    # the environment; none of the command lines holds it.
    connecting = [(argv, env) for argv, env in launched if "--no-password" in argv]
    assert {Path(argv[0]).name for argv, _ in connecting} == {"pg_dump", "psql"}
    for _, env in connecting:
        assert env["PGPASSWORD"] == SECRET
    for argv, _ in launched:
        assert not any(SECRET in arg for arg in argv), argv

    # `brain psql`: the argv it execs names psql only; the connection is in the environment.
    monkeypatch.setenv("DATABASE_DSN", with_password(brain_dsn))
    execs: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(
        "os.execve", lambda file, argv, env: execs.append((file, list(argv), dict(env)))
    )
    assert main(["psql"]) == 0
    [(file, argv, env)] = execs
    assert argv == [file] and Path(file).name == "psql"
    assert SECRET not in " ".join(argv)
    database = psycopg.conninfo.conninfo_to_dict(brain_dsn)["dbname"]
    assert env["PGPASSWORD"] == SECRET and env["PGDATABASE"] == database
    # And that argv with that environment reaches the Brain's database.
    answer = subprocess.run(
        argv,
        env=env,
        input="SELECT current_database(), count(*) FROM model_registry;\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert database in answer.stdout and "| " in answer.stdout
    assert SECRET not in capsys.readouterr().out


def test_cli_backup_verify_and_restore_the_embedded_brain_and_dagster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("BRAIN_HOME", str(home))
    for variable in ("DAGSTER_HOME", "DAGSTER_PG_URL"):  # set by the CLI; undone after the test
        monkeypatch.setenv(variable, "unset")
    server = start_embedded(home / "pgdata")
    try:
        assert main(["symbols", "add", SYMBOL]) == 0
        with BrainLibrary() as brain:
            model_id = brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
        # A Dagster database one storage migration behind the installed Dagster's.
        head, previous = dagster_head_and_previous()
        with psycopg.connect(server.uri("dagster")) as conn:
            conn.execute("UPDATE alembic_version SET version_num = %s", (previous,))
        path = tmp_path / "nightly.backup"
        capsys.readouterr()

        assert main(["backup", str(path)]) == 0
        out = capsys.readouterr().out
        assert "dagster: database 'dagster'" in out and "verified:" in out
        assert "brain.dump" in out and "dagster.dump" in out and "matches the manifest" in out
        assert main(["backup", "--verify", str(path), "--json"]) == 0
        verified = json.loads(capsys.readouterr().out)
        assert verified["ok"] and verified["dagster_revision"] == previous
        assert main(["backup", "--verify", str(tmp_path / "nothing.backup")]) == 2
        assert "nothing.backup not found" in capsys.readouterr().err

        server.drop_database("brain")
        server.drop_database("dagster")
        assert main(["restore", str(path), "--json"]) == 0
        restored = json.loads(capsys.readouterr().out)
        assert restored["dagster"]["status"] == "restored"
        assert restored["dagster"]["alembic_revision"] == previous
        assert restored["dagster"]["upgraded_to"] == head
        with psycopg.connect(server.uri("dagster")) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
        assert main(["symbols", "list", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == [SYMBOL]
        with BrainLibrary() as brain:
            assert brain.load_model_artifact(model_id) == b"weights"

        assert main(["restore", str(path)]) == 2
        assert "--force" in capsys.readouterr().err
        assert main(["restore", str(path), "--force"]) == 0
        assert "dagster: database 'dagster' restored" in capsys.readouterr().out
    finally:
        server.release()
