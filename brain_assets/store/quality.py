"""Data-quality logs: every check result, pass or fail, per symbol."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase

CLEANING_CHECK = "bar_cleaning"
"""The log of the cleaning policy's repairs and drops (``pipeline.bars`` writes it), named here,
beside the logs' reader, so that a reader of the logs does not import the cleaning itself."""
SUMMARY_COLUMNS = (
    "symbol",
    "check_name",
    "severity",
    "runs",
    "passed",
    "failed",
    "failure_count",
    "last_failure",
    "last_run",
)
LOG_COLUMNS = (
    "id",
    "symbol",
    "check_name",
    "severity",
    "passed",
    "failure_count",
    "details",
    "timestamp",
)


@dataclass(frozen=True)
class QualityResult:
    """One check result as log_data_quality takes it."""

    symbol: str
    check_name: str
    severity: str
    passed: bool
    failure_count: int = 0
    details: Mapping[str, Any] | None = None
    timestamp: datetime | None = None

    def row(self) -> tuple[Any, ...]:
        """The validated row of data_quality_logs (ValueError naming the field otherwise)."""
        if not isinstance(self.passed, bool | np.bool_):
            raise ValueError(f"passed must be a bool, got {type(self.passed).__name__}")
        return (
            check.symbol(self.symbol),
            check.text(self.check_name, "check_name"),
            check.severity(self.severity),
            bool(self.passed),
            check.failure_count(self.failure_count),
            check.json_document(self.details, "details"),
            check.optional_timestamp(self.timestamp, "timestamp") or datetime.now(UTC),
        )


class QualityMixin(StoreBase):
    def log_data_quality(
        self,
        symbol: str,
        check_name: str,
        severity: str,
        passed: bool,
        failure_count: int = 0,
        details: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
    ) -> int:
        """Record one check result; returns its id."""
        record = QualityResult(
            symbol, check_name, severity, passed, failure_count, details, timestamp
        ).row()
        with self.transaction() as conn:
            row = conn.execute(
                """INSERT INTO data_quality_logs
                       (symbol, check_name, severity, passed, failure_count, details, "timestamp")
                   VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s) RETURNING id""",
                record,
            ).fetchone()
        assert row is not None
        return int(row[0])

    def log_data_quality_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Record several check results in one transaction (each a mapping of
        log_data_quality's arguments); all are validated before any is written."""
        rows = [QualityResult(**dict(item)).row() for item in records]
        with self.transaction() as conn, conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO data_quality_logs
                       (symbol, check_name, severity, passed, failure_count, details, "timestamp")
                   VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)""",
                rows,
            )
        return len(rows)

    def get_data_quality_summary(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        *,
        symbol: str | None = None,
    ) -> pd.DataFrame:
        """Passes and failures per symbol, check and severity in [start_time, end_time)."""
        start = check.optional_timestamp(start_time, "start_time")
        end = check.optional_timestamp(end_time, "end_time")
        if start and end and start > end:
            raise ValueError("start_time must not be after end_time")
        rows = self._rows(
            """SELECT symbol, check_name, severity, count(*) AS runs,
                      count(*) FILTER (WHERE passed) AS passed,
                      count(*) FILTER (WHERE NOT passed) AS failed,
                      coalesce(sum(failure_count), 0) AS failure_count,
                      max("timestamp") FILTER (WHERE NOT passed) AS last_failure,
                      max("timestamp") AS last_run
               FROM data_quality_logs
               WHERE (%(start)s::timestamptz IS NULL OR "timestamp" >= %(start)s)
                 AND (%(end)s::timestamptz IS NULL OR "timestamp" < %(end)s)
                 AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
               GROUP BY symbol, check_name, severity
               ORDER BY symbol, check_name, severity""",
            {
                "start": start,
                "end": end,
                "symbol": None if symbol is None else check.symbol(symbol),
            },
        )
        return self._frame(rows, SUMMARY_COLUMNS)

    def get_data_quality_logs(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        failed_only: bool = False,
        limit: int = 100,
    ) -> pd.DataFrame:
        """The most recent check results, newest first."""
        rows = self._rows(
            """SELECT id, symbol, check_name, severity, passed, failure_count, details, "timestamp"
               FROM data_quality_logs
               WHERE (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
                 AND (%(since)s::timestamptz IS NULL OR "timestamp" >= %(since)s)
                 AND (NOT %(failed_only)s OR NOT passed)
               ORDER BY "timestamp" DESC, id DESC LIMIT %(limit)s""",
            {
                "symbol": None if symbol is None else check.symbol(symbol),
                "since": check.optional_timestamp(since, "since"),
                "failed_only": bool(failed_only),
                "limit": check.positive_int(limit, "limit"),
            },
        )
        return self._frame(rows, LOG_COLUMNS)
