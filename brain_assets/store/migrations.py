"""Schema migrations: numbered plain SQL files in ``sql/``, applied in order, each exactly once.

Each file runs in its own transaction together with the row that records it, so a failing file
leaves neither a half-applied schema nor a record. A session-level advisory lock serialises
processes that start together on a new database. Applied files are checksummed: editing a file
after it was applied is refused, since the database would no longer match the folder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from brain_assets.errors import MigrationError

# Any constant works; it only has to be the same for every process of the platform.
MIGRATION_LOCK_KEY = 0x42524149  # "BRAI"
_FILE_NAME = re.compile(r"^(?P<version>\d{3})_(?P<name>[a-z0-9_]+)\.sql$")


def _sql_dir() -> Path:
    from brain_assets.bundled import BUNDLE, CHECKOUT

    bundled = BUNDLE / "sql"
    return bundled if bundled.is_dir() else CHECKOUT / "sql"


SQL_DIR = _sql_dir()
"""The wheel's copy of the migrations, else the checkout's ``sql/``."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    if not sql_dir.is_dir():
        raise MigrationError(
            f"migrations folder {sql_dir} not found; install the project with `make install` "
            "or from its wheel (both carry the migrations)"
        )
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_lowercase_name.sql")
        version = int(match.group("version"))
        if version in found:
            raise MigrationError(f"{path} and {found[version].path} share version {version}")
        found[version] = Migration(version, match.group("name"), path)
    return [found[version] for version in sorted(found)]


def apply_migrations(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> list[int]:
    """Apply pending migrations on an autocommit connection; returns the versions applied."""
    migrations = discover(sql_dir)
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        applied = {version: checksum for version, checksum in rows}
        done: list[int] = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.path} changed after it was applied (checksum mismatch); "
                        "add a new migration file instead of editing an applied one"
                    )
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.sql)  # several statements: no parameters allowed
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"{migration.path} failed: {exc}") from exc
            done.append(migration.version)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def schema_version(conn: psycopg.Connection) -> int | None:
    """The highest applied migration, or None on a database the platform never touched."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return row[0] if row else None


def latest_version(sql_dir: Path = SQL_DIR) -> int:
    migrations = discover(sql_dir)
    return migrations[-1].version if migrations else 0
