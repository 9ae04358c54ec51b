"""The alert outbox (migration 010): alerts written with the change they announce, sent later.

``enqueue_alert`` joins the caller's open ``transaction()``, which is the point of an outbox: the
alert commits or rolls back together with the rollback it reports. Delivery
(``brain_assets.alerts.deliver_pending``) claims one due row at a time, posts it outside any
transaction and records the outcome in a second short transaction, so no lock or connection is
held while a webhook is slow. The delivery side raises the driver's errors as StoreError, which
the deliverer handles without knowing the driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase, as_store_errors

OUTBOX_COLUMNS = (
    "id",
    "created_at",
    "kind",
    "symbol",
    "payload",
    "attempts",
    "last_error",
    "next_attempt_at",
    "delivered_at",
    "gave_up_at",
)
_SELECT = f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM alert_outbox"  # noqa: S608 (constant names)
MAX_ERROR_CHARS = 1000


def _seconds(value: float, field: str) -> float:
    seconds = check.finite(value, field)
    if seconds < 0:
        raise ValueError(f"{field} must be >= 0, got {seconds}")
    return seconds


def _error(text: str) -> str:
    # The error of a misbehaving webhook can be its whole answer; the row keeps the start of it.
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_ERROR_CHARS else flat[: MAX_ERROR_CHARS - 3] + "..."


class OutboxMixin(StoreBase):
    def enqueue_alert(
        self, kind: str, payload: Mapping[str, Any], *, symbol: str | None = None
    ) -> int:
        """Record an alert for delivery; returns its id. Inside an open ``transaction()`` the row
        commits (or not) with everything else written in it."""
        values = (
            check.text(kind, "kind"),
            None if symbol is None else check.symbol(symbol),
            check.json_document(payload, "payload"),
        )
        with self.transaction() as conn:
            row = conn.execute(
                """INSERT INTO alert_outbox (kind, symbol, payload)
                   VALUES (%s, %s, %s::jsonb) RETURNING id""",
                values,
            ).fetchone()
        assert row is not None
        return int(row[0])

    def outbox_write_pending(self) -> bool:
        """Whether this thread is inside an open ``transaction()``: what it enqueued is not
        committed yet, and announcing it now could announce a change that still rolls back."""
        return self._bound.get() is not None

    @contextmanager
    def _delivery_cursor(self, what: str) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        with (
            as_store_errors(what),
            self.transaction() as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            yield cur

    def claim_due_alert(
        self,
        *,
        lease_s: float,
        ids: Sequence[int] | None = None,
        exclude: Sequence[int] = (),
    ) -> dict[str, Any] | None:
        """The oldest due alert (among ``ids`` when given, never one of ``exclude``), with its
        attempt counted, or None.

        Its next attempt moves ``lease_s`` ahead first, so that a second deliverer (the sensor
        while a run delivers its own alert) skips it, and a deliverer that dies while posting
        leaves it due again once the lease is over rather than lost.
        """
        lease = _seconds(lease_s, "lease_s")
        wanted = None if ids is None else [int(i) for i in ids]
        skipped = [int(i) for i in exclude]
        if self.outbox_write_pending():
            raise RuntimeError(
                "alerts are delivered after the transaction that enqueued them commits, "
                "not inside one"
            )
        with self._delivery_cursor("claiming an outbox alert") as cur:
            cur.execute(
                f"""UPDATE alert_outbox
                    SET attempts = attempts + 1,
                        next_attempt_at = clock_timestamp() + make_interval(secs => %(lease)s)
                    WHERE id = (
                        SELECT id FROM alert_outbox
                        WHERE next_attempt_at <= clock_timestamp()
                          AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
                          AND NOT id = ANY(%(skipped)s::bigint[])
                        ORDER BY next_attempt_at, id
                        LIMIT 1
                        FOR UPDATE SKIP LOCKED)
                    RETURNING {", ".join(OUTBOX_COLUMNS)}""",  # noqa: S608 (constant names)
                {"lease": lease, "ids": wanted, "skipped": skipped},
            )
            return cur.fetchone()

    def mark_alert_delivered(self, alert_id: int) -> None:
        with as_store_errors("marking an outbox alert delivered"), self.transaction() as conn:
            conn.execute(
                """UPDATE alert_outbox
                   SET delivered_at = clock_timestamp(), next_attempt_at = NULL
                   WHERE id = %s AND delivered_at IS NULL""",
                (int(alert_id),),
            )

    def mark_alert_failed(self, alert_id: int, error: str, *, retry_in_s: float | None) -> None:
        """Record a failed attempt: due again in ``retry_in_s`` seconds, or given up (None)."""
        retry = None if retry_in_s is None else _seconds(retry_in_s, "retry_in_s")
        with as_store_errors("marking an outbox alert failed"), self.transaction() as conn:
            conn.execute(
                """UPDATE alert_outbox
                   SET last_error = %(error)s,
                       next_attempt_at = CASE WHEN %(retry)s::float8 IS NULL THEN NULL
                           ELSE clock_timestamp() + make_interval(secs => %(retry)s::float8) END,
                       gave_up_at = CASE WHEN %(retry)s::float8 IS NULL
                           THEN clock_timestamp() END
                   WHERE id = %(id)s AND delivered_at IS NULL""",
                {"id": int(alert_id), "error": _error(error), "retry": retry},
            )

    def expire_alerts(self, max_age_s: float) -> list[dict[str, Any]]:
        """Give up on pending alerts older than ``max_age_s``: an alert that has waited that long
        (no webhook configured, or one that stayed down) is history, not news. Returns them."""
        age = _seconds(max_age_s, "max_age_s")
        with self._delivery_cursor("expiring outbox alerts") as cur:
            cur.execute(
                f"""UPDATE alert_outbox
                    SET gave_up_at = clock_timestamp(), next_attempt_at = NULL,
                        last_error = %(reason)s
                            || coalesce(' (last error: ' || last_error || ')', '')
                    WHERE next_attempt_at IS NOT NULL
                      AND created_at < clock_timestamp() - make_interval(secs => %(age)s)
                    RETURNING {", ".join(OUTBOX_COLUMNS)}""",  # noqa: S608 (constant names)
                {"age": age, "reason": f"not delivered within {age:g} s"},
            )
            return cur.fetchall()

    def get_alerts(self, *, pending_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent alerts of the outbox, newest first (what was sent, what waits)."""
        return self._rows(
            f"{_SELECT} WHERE %(all)s OR next_attempt_at IS NOT NULL"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"all": not pending_only, "limit": check.positive_int(limit, "limit")},
        )
