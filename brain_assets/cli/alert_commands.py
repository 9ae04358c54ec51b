"""``brain alerts``: the alert outbox. ``list`` shows what waits (or, with ``--all``, what was
delivered and given up too); ``retry`` makes alerts due now and runs one bounded delivery pass;
``test`` sends one test alert to the configured target (a webhook or an apprise URL) now."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, table

PENDING = "pending"
DELIVERED = "delivered"
GIVEN_UP = "given_up"
LIST_COLUMNS = (
    "id",
    "event",
    "symbol",
    "created",
    "attempts",
    "state",
    "next_attempt",
    "gives_up",
    "last_error",
)
RETRY_COLUMNS = ("id", "event", "outcome", "attempts", "next_attempt", "last_error")
MAX_SHOWN_ERROR = 60
"""Characters of ``last_error`` in a table (``--json`` has all of it)."""


def register(commands: Any) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="the alert outbox: list what waits or was given up, send alerts again",
        **described(
            "The alert outbox: list the alerts that wait or were given up, and send them again.",
            "brain alerts list",
            "brain alerts retry --all-given-up",
        ),
    )
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list",
        help="pending alerts, newest first (--all: delivered and given up too)",
        **described(
            "Pending alerts, newest first, with their attempts, last error, next attempt and "
            "when they will be given up; --all adds delivered and given-up ones.",
            "brain alerts list",
            "brain alerts list --all --limit 20 --json",
        ),
    )
    listing.add_argument(
        "--all", action="store_true", help="every alert, delivered and given up ones too"
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(handler=list_alerts)

    retry = actions.add_parser(
        "retry",
        help="make alerts due now (their age restarts) and try to deliver them once",
        **described(
            "Makes alerts due now, restarting their age, and tries each once; exit status 1 "
            "if one is not delivered, 2 for an unknown or delivered id.",
            "brain alerts retry 12 15",
            "brain alerts retry --all-given-up",
        ),
    )
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox ids (see list)")
    which = retry.add_mutually_exclusive_group()
    which.add_argument("--all-given-up", action="store_true", help="every alert that was given up")
    which.add_argument(
        "--all", action="store_true", help="every alert not delivered: given up or pending"
    )
    retry.set_defaults(handler=retry_alerts)

    test = actions.add_parser(
        "test",
        help="send one test alert to the target now (BRAIN_ALERT_WEBHOOK_URL: an http(s) "
        "webhook, or an apprise URL such as tgram://, discord://, mailto://)",
        **described(
            "Sends one test alert to the alert target now, outside the outbox, and says whether "
            "it was delivered; exit status 1 when it was not.",
            "brain alerts test",
            "brain alerts test --url https://hooks.example.com/brain --json",
        ),
    )
    test.add_argument(
        "--url",
        default=None,
        help="this target instead of BRAIN_ALERT_WEBHOOK_URL (it lands in your shell history)",
    )
    test.set_defaults(handler=run_alert_test)

    for parser in (listing, retry, test):
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def alert_state(row: Mapping[str, Any]) -> str:
    if row["delivered_at"] is not None:
        return DELIVERED
    if row["gave_up_at"] is not None:
        return GIVEN_UP
    return PENDING


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short_error(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_SHOWN_ERROR:
        return text
    return text[: MAX_SHOWN_ERROR - 3] + "..."


def _record(row: Mapping[str, Any], max_age_s: float) -> dict[str, Any]:
    state = alert_state(row)
    # The sensor's first pass after this time gives the alert up (its age restarts on a retry).
    gives_up = (
        (row["retried_at"] or row["created_at"]) + timedelta(seconds=max_age_s)
        if state == PENDING
        else None
    )
    return {
        "id": row["id"],
        "event": row["kind"],
        "symbol": row["symbol"],
        "state": state,
        "created_at": row["created_at"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "next_attempt_at": row["next_attempt_at"],
        "gives_up_at": gives_up,
        "delivered_at": row["delivered_at"],
        "gave_up_at": row["gave_up_at"],
        "retried_at": row["retried_at"],
        "dedupe_key": row["dedupe_key"],
        "payload": row["payload"],
    }


def _human(record: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        **record,
        "created": _when(record["created_at"]),
        "next_attempt": _when(record["next_attempt_at"]),
        "gives_up": _when(record["gives_up_at"]),
        "last_error": _short_error(record["last_error"]),
        **extra,
    }


def list_alerts(args: argparse.Namespace) -> int:
    from brain_assets.alerts import MAX_AGE_ENV, configured_max_age_s
    from brain_assets.library import BrainLibrary

    # Read before the database is opened: a bad value is named at once.
    max_age_s = configured_max_age_s()
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    with BrainLibrary() as brain:
        rows = brain.get_alerts(pending_only=not args.all, limit=args.limit)
    records = [_record(row, max_age_s) for row in rows]
    if not records:
        emit(args, [], "no alerts in the outbox" if args.all else "no pending alerts")
        return 0
    shown = "alerts" if args.all else "pending alerts"
    header = (
        f"{len(records)} {shown}, newest first (times UTC; an undelivered alert is given up "
        f"{max_age_s / 86400:g} days after it was queued or retried, {MAX_AGE_ENV})"
    )
    emit(args, records, f"{header}\n{table([_human(r) for r in records], LIST_COLUMNS)}")
    return 0


def retry_alerts(args: argparse.Namespace) -> int:
    from brain_assets import alerts
    from brain_assets.library import BrainLibrary

    if args.ids and (args.all or args.all_given_up):
        raise ValueError("give alert ids or --all-given-up or --all, not both")
    if not args.ids and not (args.all or args.all_given_up):
        raise ValueError("give the ids of the alerts to retry, --all-given-up or --all")
    with BrainLibrary() as brain:
        result = alerts.retry_alerts(brain, args.ids or None, given_up_only=args.all_given_up)
        rows = brain.get_alerts(ids=result.requeued, limit=max(len(result.requeued), 1))
    if not result.requeued:
        emit(
            args,
            {"requeued": [], "delivered": [], "failed": [], "not_reached": []},
            "no alert to retry",
        )
        return 0
    delivered, failed = set(result.delivery.delivered), set(result.delivery.failed)

    def outcome(alert_id: int) -> str:
        if alert_id in delivered:
            return DELIVERED
        return "failed" if alert_id in failed else "not_reached"

    records = [
        {**_record(row, 0.0), "outcome": outcome(int(row["id"]))}
        for row in sorted(rows, key=lambda row: int(row["id"]))
    ]
    summary = (
        f"{len(delivered)} of {len(result.requeued)} delivered"
        + (f"; {len(failed)} failed and will be tried again" if failed else "")
        + (
            f"; {len(result.not_reached)} not reached in this pass: the alert_outbox sensor "
            "sends them"
            if result.not_reached
            else ""
        )
    )
    emit(
        args,
        {
            "requeued": result.requeued,
            "delivered": result.delivery.delivered,
            "failed": result.delivery.failed,
            "not_reached": result.not_reached,
            "alerts": records,
        },
        f"{summary}\n{table([_human(r) for r in records], RETRY_COLUMNS)}",
    )
    # Not everything arrived: scripts (and cron) see it in the status, like a failed command.
    return 0 if len(delivered) == len(result.requeued) else 1


def run_alert_test(args: argparse.Namespace) -> int:
    """``brain alerts test``: 0 when the test alert was delivered, 1 otherwise (with why)."""
    from brain_assets.alerts import send_test_alert

    check = send_test_alert(args.url)
    document = {
        "target": check.target,
        "kind": check.kind,
        "delivered": check.delivered,
        "error": check.problem or (check.attempt.error if check.attempt else None),
    }
    # An apprise target reads "tgram:// (apprise)" already; a webhook's says its kind here.
    where = check.target or "no target"
    where += " (webhook)" if check.kind == "webhook" else ""
    if check.delivered:
        text = f"test alert delivered to {where}"
    elif check.target is None:
        text = f"no test alert sent: {document['error']}"
    else:
        text = f"test alert NOT delivered to {where}: {document['error']}"
    emit(args, document, text)
    return 0 if check.delivered else 1
