"""The alert outbox (migrations 010, 013): alerts written with the change they announce, sent later.

``enqueue_alert`` joins the caller's open ``transaction()``, which is the point of an outbox: the
alert commits or rolls back together with the rollback it reports. Delivery
(``brain_assets.alerts.deliver_pending``) claims one due row at a time, posts it outside any
transaction and records the outcome in a second short transaction, so no lock or connection is
held while a webhook is slow. The delivery side raises the driver's errors as StoreError, which
the deliverer handles without knowing the driver.

An alert is pending while ``next_attempt_at`` is set, and settled once delivered (``delivered_at``)
or given up (``gave_up_at``: older than the maximum age). ``requeue_alerts`` (``brain alerts
retry``) makes pending or given-up alerts due again and restarts their age (``retried_at``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from brain_assets.errors import BrainError
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
    "dedupe_key",
    "retried_at",
)
_SELECT = f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM alert_outbox"  # noqa: S608 (constant names)
MAX_ERROR_CHARS = 1000
_RETURNING = f"RETURNING {', '.join(OUTBOX_COLUMNS)}"


class UnknownAlertError(BrainError, ValueError):
    """An outbox alert id that is not in the table (never written, or pruned by retention)."""

    exit_status = 2


def _age_text(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours"
    return f"{seconds:g} s"


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

    def enqueue_alert_once(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str,
        symbol: str | None = None,
    ) -> tuple[int, bool]:
        """Record an alert unless one of the same ``kind`` with the same ``dedupe_key`` (the
        identity of its cause, such as a run_id) is already there: ``(id, True)`` for a new
        alert, ``(id of the existing one, False)`` otherwise. Joins an open ``transaction()``
        like ``enqueue_alert``."""
        values = {
            "kind": check.text(kind, "kind"),
            "symbol": None if symbol is None else check.symbol(symbol),
            "payload": check.json_document(payload, "payload"),
            "key": check.text(dedupe_key, "dedupe_key"),
        }
        with self.transaction() as conn:
            # ON CONFLICT waits for a concurrent writer of the same key and then does nothing:
            # the SELECT after it sees that writer's committed row.
            row = conn.execute(
                """INSERT INTO alert_outbox (kind, symbol, payload, dedupe_key)
                   VALUES (%(kind)s, %(symbol)s, %(payload)s::jsonb, %(key)s)
                   ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
                   RETURNING id""",
                values,
            ).fetchone()
            if row is not None:
                return int(row[0]), True
            existing = conn.execute(
                "SELECT id FROM alert_outbox WHERE kind = %(kind)s AND dedupe_key = %(key)s",
                values,
            ).fetchone()
        assert existing is not None
        return int(existing[0]), False

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
                    {_RETURNING}""",  # noqa: S608 (constant names)
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
        """Give up on pending alerts older than ``max_age_s`` (counted from their last
        ``requeue_alerts`` when there was one): an alert that has waited that long (no webhook
        configured, or one that stayed down) is history, not news. Returns them."""
        age = _seconds(max_age_s, "max_age_s")
        with self._delivery_cursor("expiring outbox alerts") as cur:
            cur.execute(
                f"""UPDATE alert_outbox
                    SET gave_up_at = clock_timestamp(), next_attempt_at = NULL,
                        last_error = %(reason)s
                            || coalesce(' (last error: ' || last_error || ')', '')
                    WHERE next_attempt_at IS NOT NULL
                      AND coalesce(retried_at, created_at)
                          < clock_timestamp() - make_interval(secs => %(age)s)
                    {_RETURNING}""",  # noqa: S608 (constant names)
                {"age": age, "reason": f"not delivered within {_age_text(age)}"},
            )
            return cur.fetchall()

    def requeue_alerts(
        self, ids: Sequence[int] | None = None, *, given_up_only: bool = False
    ) -> list[int]:
        """Make alerts due now and restart their age, in one transaction; returns their ids,
        oldest first. With ``ids``: exactly those, each of which must exist
        (``UnknownAlertError`` otherwise) and not be delivered (``ValueError``); nothing changes
        when one is refused. Without: every given-up alert, and every pending one unless
        ``given_up_only``."""
        wanted = None if ids is None else sorted({check.positive_int(i, "alert id") for i in ids})
        if wanted is not None and not wanted:
            raise ValueError("no alert id given")
        with as_store_errors("requeueing outbox alerts"), self.transaction() as conn:
            if wanted is not None:
                found = conn.execute(
                    """SELECT id, delivered_at FROM alert_outbox WHERE id = ANY(%s::bigint[])
                       ORDER BY id FOR UPDATE""",
                    (wanted,),
                ).fetchall()
                missing = sorted(set(wanted) - {int(row[0]) for row in found})
                if missing:
                    raise UnknownAlertError(
                        f"unknown alert id{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(map(str, missing))} (see `brain alerts list --all`)"
                    )
                delivered = [row for row in found if row[1] is not None]
                if delivered:
                    raise ValueError(
                        "; ".join(
                            f"alert {row[0]} was delivered at {row[1].isoformat()}"
                            for row in delivered
                        )
                        + ": nothing to retry"
                    )
            rows = conn.execute(
                """UPDATE alert_outbox
                   SET next_attempt_at = clock_timestamp(), gave_up_at = NULL,
                       retried_at = clock_timestamp()
                   WHERE delivered_at IS NULL
                     AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
                     AND (%(ids)s::bigint[] IS NOT NULL OR gave_up_at IS NOT NULL
                          OR NOT %(given_up_only)s)
                   RETURNING id""",
                {"ids": wanted, "given_up_only": given_up_only},
            ).fetchall()
        return sorted(int(row[0]) for row in rows)

    def get_alerts(
        self,
        *,
        pending_only: bool = False,
        limit: int = 100,
        ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """The most recent alerts of the outbox, newest first (what was sent, what waits);
        only those of ``ids`` when given."""
        wanted = None if ids is None else [int(i) for i in ids]
        return self._rows(
            f"{_SELECT} WHERE (%(all)s OR next_attempt_at IS NOT NULL)"
            " AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))"
            " ORDER BY id DESC LIMIT %(limit)s",
            {
                "all": not pending_only,
                "ids": wanted,
                "limit": check.positive_int(limit, "limit"),
            },
        )
