"""Retention: old metrics, importance analyses and quality logs move into archive tables.

The live tables are read on every retrain and every dashboard refresh; a year of hourly history
per symbol makes them and their indexes large for no benefit. Rows past the retention window are
moved, not deleted: ``<table>_archive`` (migration 004) keeps them, with their original ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from brain_assets.errors import BrainError
from brain_assets.events import log_event
from brain_assets.store import validation as check
from brain_assets.store.connection import CONNECT_TIMEOUT_S
from brain_assets.store.dsn import describe_target, scrub
from brain_assets.store.library import BrainLibrary

DEFAULT_RETENTION_DAYS = 365
ARCHIVED_AT = "archived_at"
# The move waits for registrations and activations in flight (see the lock below); a writer stuck
# for longer than this fails the run instead of stalling every writer queued behind it.
LOCK_TIMEOUT = "60s"


class ArchiveSchemaError(BrainError, RuntimeError):
    """An archive table is missing or no longer has its live table's columns."""


@dataclass(frozen=True)
class RetainedTable:
    table: str
    time_column: str
    # Rows of a model that is active stay live whatever their age: they describe the model that
    # trades now, and the dashboards and the champion/challenger comparison read them.
    per_model: bool

    @property
    def archive(self) -> str:
        return f"{self.table}_archive"


RETAINED_TABLES = (
    RetainedTable("model_metrics", "evaluation_date", per_model=True),
    RetainedTable("feature_importance", "analysis_date", per_model=True),
    RetainedTable("data_quality_logs", "timestamp", per_model=False),
)


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        """SELECT attname FROM pg_attribute
           WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped
           ORDER BY attnum""",
        (table,),
    ).fetchall()
    return [row[0] for row in rows]


def _moved_columns(conn: psycopg.Connection, spec: RetainedTable) -> list[str]:
    """The live table's columns, once the archive is known to hold every one of them.

    Read from the catalog rather than written here, so that a live column added by a later
    migration is never dropped silently on its way into an archive that lacks it.
    """
    live = _columns(conn, spec.table)
    archive = _columns(conn, spec.archive)
    if not archive:
        raise ArchiveSchemaError(
            f"archive table {spec.archive} does not exist; apply the migrations (004) first"
        )
    missing = [column for column in live if column not in archive]
    if missing or ARCHIVED_AT not in archive:
        raise ArchiveSchemaError(
            f"archive table {spec.archive} lacks columns of {spec.table}: "
            f"{', '.join(missing or [ARCHIVED_AT])}; add them with a migration"
        )
    return live


def _move(conn: psycopg.Connection, spec: RetainedTable, cutoff: datetime) -> int:
    columns = _moved_columns(conn, spec)
    column_list = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    keep_active = sql.SQL(
        " AND NOT EXISTS (SELECT 1 FROM model_registry AS r"
        " WHERE r.model_id = t.model_id AND r.is_active)"
        if spec.per_model
        else ""
    )
    # archived_at is the transaction's start (now()), not the column default, so that one run's
    # rows share one value and can be found again as a batch.
    statement = sql.SQL(
        """WITH moved AS (
               DELETE FROM {table} AS t WHERE t.{time_column} < %(cutoff)s{keep_active}
               RETURNING {columns})
           INSERT INTO {archive} ({columns}, {archived_at})
           SELECT {columns}, now() FROM moved"""
    ).format(
        table=sql.Identifier(spec.table),
        time_column=sql.Identifier(spec.time_column),
        keep_active=keep_active,
        columns=column_list,
        archive=sql.Identifier(spec.archive),
        archived_at=sql.Identifier(ARCHIVED_AT),
    )
    with conn.cursor() as cur:
        cur.execute(statement, {"cutoff": cutoff})
        return cur.rowcount


def _cutoff(retention_days: object, now: object) -> tuple[int, datetime]:
    days = check.positive_int(retention_days, "retention_days")
    moment = check.optional_timestamp(now, "now") or datetime.now(UTC)
    try:
        return days, moment - timedelta(days=days)
    except OverflowError:
        raise ValueError(f"retention_days is too large: {days}") from None


def analyze(dsn: str, tables: list[str]) -> None:
    """Refresh the planner's statistics of ``tables`` (their sizes just changed a lot)."""
    statement = sql.SQL("ANALYZE {}").format(
        sql.SQL(", ").join(sql.Identifier(table) for table in tables)
    )
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute(statement)
    except psycopg.Error as exc:
        raise BrainError(
            f"ANALYZE failed on {describe_target(dsn)}: {scrub(str(exc).strip(), dsn)}"
        ) from None


def archive_old_rows(
    brain: BrainLibrary,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    now: datetime | None = None,
) -> dict[str, int]:
    """Move rows older than ``retention_days`` to the archive tables; returns rows moved per table.

    model_metrics go by evaluation_date, feature_importance by analysis_date, data_quality_logs by
    timestamp; metrics and importance of a model that is active stay whatever their age. All
    tables move in one transaction, so a failure leaves every table as it was. The tables are
    analysed after the commit (a failing ANALYZE raises BrainError; the move stands). ``now``
    (default: the current time) is where the window ends. Call it outside
    ``brain.transaction()``: it commits before analysing.
    """
    days, cutoff = _cutoff(retention_days, now)
    started = time.monotonic()
    moved: dict[str, int] = {}
    with brain.transaction() as conn:
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Whether a model is active must not change while its rows are judged: SHARE mode waits
        # for registrations and activations in flight and holds new ones off until the move
        # commits (metric and importance inserts still go through: their foreign-key checks only
        # take row locks).
        conn.execute("LOCK TABLE model_registry IN SHARE MODE")
        for spec in RETAINED_TABLES:
            moved[spec.table] = _move(conn, spec, cutoff)
    analyze(
        brain.dsn,
        [name for spec in RETAINED_TABLES for name in (spec.table, spec.archive)],
    )
    log_event(
        "maintenance_completed",
        retention_days=days,
        cutoff=cutoff.isoformat(),
        seconds=round(time.monotonic() - started, 3),
        **{f"archived_{table}": count for table, count in moved.items()},
    )
    return moved


def archived_counts(brain: BrainLibrary) -> dict[str, int]:
    """Rows held in each archive table (keyed by the live table's name)."""
    counts: dict[str, int] = {}
    with brain.transaction() as conn:
        for spec in RETAINED_TABLES:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(spec.archive))
            ).fetchone()
            counts[spec.table] = int(row[0]) if row else 0
    return counts
