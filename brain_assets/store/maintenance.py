"""Retention: old metrics, importance analyses and quality logs move into archive tables; old
settled alerts leave the alert outbox.

The live tables are read on every retrain and every dashboard refresh; a year of hourly history
per symbol makes them and their indexes large for no benefit. Rows past the retention window are
moved, not deleted: ``<table>_archive`` (migration 004) keeps them, with their original ids.

Alerts of the outbox (migration 010) that were delivered or given up on are deleted once past the
same window (``prune_alert_outbox``): nothing will send them again, and the change each announced
stays recorded where it was made (a rollback in model_activations). Pending alerts are never
deleted here, whatever their age: giving up on one is the delivery's decision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from brain_assets.dsn import describe_target, scrub
from brain_assets.errors import BrainError
from brain_assets.events import log_event
from brain_assets.store import connection
from brain_assets.store import validation as check
from brain_assets.store.library import BrainStore

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
    RetainedTable("input_drift", "checked_at", per_model=True),
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
    # The session limits, but no statement limit: ANALYZE of a big table reads its sample from
    # pages all over the table (slow on a cold disk), which is maintenance, not a runaway query;
    # the lock limit still bounds its wait behind a VACUUM or a schema change of the tables.
    limits = connection.session_timeouts().for_maintenance()
    try:
        with connection.connect(dsn, limits) as conn:
            conn.execute(statement)
    except psycopg.Error as exc:
        raise BrainError(
            f"ANALYZE failed on {describe_target(dsn)}: {scrub(str(exc).strip(), dsn)}"
        ) from None


def archive_old_rows(
    brain: BrainStore,
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
        # No statement limit for the move (SessionTimeouts.for_maintenance): it grows with the
        # backlog (months without maintenance, or a shorter window), and a move cancelled by the
        # limit rolls back whole, leaving a bigger one to the next run, which would fail the same
        # way for good. The lock timeout above still bounds its wait.
        conn.execute("SET LOCAL statement_timeout = 0")
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


def prune_alert_outbox(
    brain: BrainStore,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    now: datetime | None = None,
) -> int:
    """Delete the outbox's alerts that were delivered or given up on more than ``retention_days``
    before ``now`` (default: the current time); returns how many. Pending alerts stay, whatever
    their age. One transaction."""
    days, cutoff = _cutoff(retention_days, now)
    with brain.transaction() as conn:
        # Settled means next_attempt_at IS NULL (migration 010 ties it to delivered_at or
        # gave_up_at being set), so an alert claimed by a deliverer right now, whose lease keeps
        # next_attempt_at set, is never deleted under it. The age is the settling time, not the
        # creation time: an alert retried for days stays a full window after its last attempt.
        # No index serves this: the outbox holds a few alerts a day, and this runs monthly.
        cur = conn.execute(
            """DELETE FROM alert_outbox
               WHERE next_attempt_at IS NULL
                 AND coalesce(delivered_at, gave_up_at) < %(cutoff)s""",
            {"cutoff": cutoff},
        )
        pruned = cur.rowcount
    log_event("alert_outbox_pruned", retention_days=days, cutoff=cutoff.isoformat(), alerts=pruned)
    return pruned


def run_retention(
    brain: BrainStore, *, retention_days: int = DEFAULT_RETENTION_DAYS
) -> dict[str, int]:
    """Everything retention does, as the monthly job and ``brain maintenance`` both run it: old
    rows to the archive, values of runs that failed or never finished (older than a week:
    nothing reads them) and settled alerts past the window deleted. Counts by what was moved or
    deleted."""
    done = archive_old_rows(brain, retention_days=retention_days)
    done["asset_values_pruned"] = brain.prune_unpublished_values()
    done["alert_outbox_pruned"] = prune_alert_outbox(brain, retention_days=retention_days)
    return done


def archived_counts(brain: BrainStore) -> dict[str, int]:
    """Rows held in each archive table (keyed by the live table's name)."""
    counts: dict[str, int] = {}
    with brain.transaction() as conn:
        for spec in RETAINED_TABLES:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(spec.archive))
            ).fetchone()
            counts[spec.table] = int(row[0]) if row else 0
    return counts
