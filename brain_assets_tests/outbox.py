"""The alert outbox as the alert tests read and move it: one row, and its backoff cut short."""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg.rows


def outbox_row(dsn: str, alert_id: int) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            """SELECT *, extract(epoch FROM next_attempt_at - clock_timestamp()) AS due_in_s
               FROM alert_outbox WHERE id = %s""",
            (alert_id,),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def make_due(dsn: str, alert_id: int) -> None:
    """Time travel: the backoff of ``alert_id`` is over."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE alert_outbox SET next_attempt_at = clock_timestamp() WHERE id = %s",
            (alert_id,),
        )
