"""Alerts: always a log event, and a delivery to the alert target when one is configured.

The target is ``url=...`` or ``$BRAIN_ALERT_WEBHOOK_URL``, of one of two kinds, by its scheme:

- an ``http(s)://`` URL: a webhook, which gets a JSON POST (below);
- any other scheme: an `apprise <https://github.com/caronc/apprise>`_ URL (``tgram://``,
  ``discord://``, ``mailto://``, ``pagerduty://``, ``json://`` ...), delivered through apprise,
  the optional ``alerts`` extra (``pip install 'brain-assets[alerts]'``), imported on first use.
  The message is the one-line ``text`` below (with the ``alert_id`` of an outbox alert), under
  the title ``Brain alert: <event>``. An alert counts as delivered only when apprise reports
  success; apprise reports a failure by returning False, not by raising, and it is then a failed
  attempt like a webhook's 5xx. Without apprise installed such a target is a configuration error
  naming the extra: nothing is attempted and outbox alerts wait, as for an unusable URL.

Everything below (the outbox, its retries and backoff, the maximum age) is the same for both.
A webhook's body is::

    {"text": "<one-line summary>", "event": ..., "payload": {...}, "sent_at": "<ISO 8601 UTC>"}

``text`` is what Slack-style incoming webhooks display; the structured fields are for
Alertmanager receivers or a small HTTP service. Alerts that went through the outbox also carry
``alert_id`` (the outbox row, the same on every retry: a receiver can drop duplicates by it) and
``created_at``.

Two ways to send:

- ``send_alert``: post now, with a few quick retries, and never longer than ``deadline_s`` in all.
  Nothing is kept: used only where the database does not answer (the run-failure sensor's
  fallback).
- The outbox (table ``alert_outbox``): ``queue_alert`` writes the alert inside the caller's
  transaction, so that it commits with the change it announces (a rollback); ``dispatch_alert``
  after the commit logs it and tries to post it once, bounded; ``deliver_pending`` (the
  ``alert_outbox`` sensor, every minute) posts whatever is still due, retrying with exponential
  backoff capped at ``MAX_BACKOFF_S``, for as long as the alert is younger than the maximum age
  (``$BRAIN_ALERT_MAX_AGE_DAYS``, default ``DEFAULT_MAX_AGE_DAYS``): a webhook that is down for a
  weekend still gets the alerts. Older ones are given up, visibly: ``gave_up_at`` in the table,
  an ``alert_abandoned`` log event, and ``brain alerts list`` / ``brain alerts retry``. Delivery
  is at least once: a deliverer killed between the POST and recording it sends that alert again.

Without a webhook the alert is only logged (and, through the outbox, kept in the database, never
attempted, and given up once it is older than the maximum age). A webhook that is down, slow or
failing is logged as ``alert_delivery_failed`` and never raises, because an alert is usually sent
while something else is already going wrong.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from brain_assets.errors import BrainError
from brain_assets.events import log_event
from brain_assets.logs import redact, redact_value

if TYPE_CHECKING:
    from brain_assets.store.library import BrainStore

ALERT_WEBHOOK_ENV = "BRAIN_ALERT_WEBHOOK_URL"
"""The alert target: an http(s) webhook or an apprise URL (see the module's docstring)."""
WEBHOOK = "webhook"
APPRISE = "apprise"
WEBHOOK_SCHEMES = ("http", "https")
ALERTS_EXTRA_INSTALL = "pip install 'brain-assets[alerts]'"
DELIVERY_FAILED = "alert_delivery_failed"
DELIVERED = "alert_delivered"
ABANDONED = "alert_abandoned"
DUPLICATE = "alert_duplicate"
REQUEUED = "alert_requeued"

REQUEST_TIMEOUT_S = 3.0
"""One POST, connecting and answering together."""
DELIVERY_DEADLINE_S = 10.0
"""One ``send_alert`` with its retries, or one ``deliver_pending`` pass over the outbox."""
SEND_ATTEMPTS = 3
"""POSTs ``send_alert`` makes at most (a webhook that refuses with a 4xx gets one)."""
FIRST_PAUSE_S = 0.5
"""``send_alert``'s pause before its second POST; it doubles before each one after."""

BACKOFF_S = 30.0
"""Wait after an outbox alert's first failed attempt; it doubles after each one after."""
MAX_BACKOFF_S = 3600.0
"""The longest wait between two attempts: an alert keeps being tried hourly until its age runs
out, so that a webhook back after a long outage gets it within the hour."""
MAX_AGE_ENV = "BRAIN_ALERT_MAX_AGE_DAYS"
DEFAULT_MAX_AGE_DAYS = 3.0
"""An outbox alert still undelivered after this long is given up: by then it is history. Days
rather than hours, so that a webhook down over a weekend does not lose Friday's alerts."""
LEASE_MARGIN_S = 60.0
"""How long past its POST's timeout a claimed alert stays reserved for the deliverer that claimed
it; if that deliverer dies, the alert is due again after that."""
MIN_ATTEMPT_S = 0.2
"""Less time than this left in a pass: no further POST is started."""
MAX_TEXT_CHARS = 300

# log_event takes these as its own parameters; a payload key with the same name would collide.
_RESERVED_FIELDS = frozenset({"event", "level"})


def configured_webhook_url() -> str | None:
    """``$BRAIN_ALERT_WEBHOOK_URL`` when set and not blank."""
    raw = os.environ.get(ALERT_WEBHOOK_ENV, "").strip()
    return raw or None


def configured_max_age_s() -> float:
    """The outbox's maximum age in seconds: ``$BRAIN_ALERT_MAX_AGE_DAYS`` (days, fractions
    allowed) when set and not blank, else ``DEFAULT_MAX_AGE_DAYS``. A value that is not a
    positive number is refused with an error naming the variable."""
    raw = os.environ.get(MAX_AGE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_DAYS * 86400.0
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days <= 0:
        raise ValueError(f"{MAX_AGE_ENV} must be a number of days > 0 (such as 3), got {raw!r}")
    return days * 86400.0


def _target(url: str | None) -> str | None:
    return url.strip() if url and url.strip() else configured_webhook_url()


def _scheme(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def channel_kind(url: str) -> str:
    """``webhook`` for an http(s) URL, ``apprise`` for any other."""
    return WEBHOOK if _scheme(url) in WEBHOOK_SCHEMES else APPRISE


def _safe_target(url: str) -> str:
    # Webhook URLs often carry their secret in the path or query (Slack, Teams): logs name only
    # the scheme, host and port. An apprise URL may carry it anywhere, its host included (a
    # Telegram bot token, a Discord webhook id): logs name only its scheme.
    if channel_kind(url) == APPRISE:
        return f"{_scheme(url) or '?'}:// (apprise)"
    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def _import_apprise() -> Any:
    """``apprise``, or an ImportError naming the ``alerts`` extra."""
    try:
        import apprise
    except ImportError as exc:
        raise ImportError(
            f"apprise alert targets need the `alerts` extra: {ALERTS_EXTRA_INSTALL}"
        ) from exc
    return apprise


def _scheme_error(url: str) -> str | None:
    """Why ``url`` cannot be an alert target; None when it can."""
    scheme = _scheme(url)
    # urllib would also open file:// and ftp:// URLs: it only ever gets http(s) ones.
    if scheme in WEBHOOK_SCHEMES:
        return None
    try:
        apprise = _import_apprise()
    except ImportError:
        return (
            f"unsupported URL scheme {scheme!r}: http(s) URLs get a JSON POST and other schemes "
            f"go through apprise, but the `alerts` extra is not installed ({ALERTS_EXTRA_INSTALL})"
        )
    if not apprise.Apprise().add(url):
        return (
            f"unsupported URL scheme {scheme!r}: not http(s), and apprise does not accept the "
            "URL (a scheme it does not know, or a malformed URL)"
        )
    return None


def _scrub(error: str, target: str) -> str:
    # Some errors quote the URL they could not open; keep its secret part out of logs and rows.
    return redact(error.replace(target, _safe_target(target)))


def _strict_json(value: Any) -> Any:
    # NaN and infinity are not JSON: strict receivers refuse them, and so does the outbox's jsonb
    # column, where the refusal would abort the rollback the alert belongs to. Named instead.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict_json(item) for item in value]
    return value


def _safe_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = _strict_json(
        redact_value({str(key): value for key, value in payload.items()})
    )
    return safe


def _as_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        (f"payload_{key}" if key in _RESERVED_FIELDS else key): value
        for key, value in payload.items()
    }


def _short(value: Any) -> str | None:
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        value = ",".join(str(v) for v in value)
    if value is None or not isinstance(value, str | int | float | bool):
        return None  # nested details stay in the structured payload
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def alert_text(event: str, payload: Mapping[str, Any]) -> str:
    """One line for people: ``Brain alert model_rollback for BTC/USDT: metric=sharpe_ratio, ...``
    (scalar and list values only; nested details stay in the payload)."""
    symbol = payload.get("symbol")
    head = f"Brain alert {event}" + (f" for {symbol}" if isinstance(symbol, str) else "")
    details = [
        f"{key}={short}"
        for key, value in payload.items()
        if key != "symbol" and (short := _short(value)) is not None
    ]
    line = " ".join((head + (": " + ", ".join(details) if details else "")).split())
    return line if len(line) <= MAX_TEXT_CHARS else line[: MAX_TEXT_CHARS - 3] + "..."


def alert_body(event: str, payload: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The JSON document a webhook receives (see the module's docstring)."""
    return {
        "text": alert_text(event, payload),
        "event": event,
        "payload": dict(payload),
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


# -- one POST -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: an HTTP status, or an error without one."""

    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """Worth a quick second try: no answer, a server error, or 'later' (408, 429)."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)


def _post(url: str, body: bytes, timeout_s: float) -> Attempt:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "brain-assets-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return Attempt(exc.code, f"HTTP {exc.code} {exc.reason}")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # Refused, reset, timed out (OSError), a garbled answer or a bad URL: not delivered.
        return Attempt(None, f"{type(exc).__name__}: {exc}")
    return Attempt(status) if 200 <= status < 300 else Attempt(status, f"HTTP {status}")


def _notify(url: str, document: Mapping[str, Any]) -> Attempt:
    """One delivery through apprise: its ``text`` (and ``alert_id``) under a title naming the
    event. Apprise says False, not an exception, when the service refused or did not answer;
    its own log lines of that attempt become the error."""
    try:
        apprise = _import_apprise()
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return Attempt(None, "apprise does not accept the URL")
        alert_id = document.get("alert_id")
        body = str(document["text"]) + (f" (alert_id {alert_id})" if alert_id is not None else "")
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as said:
            delivered = bool(
                notifier.notify(
                    body=body,
                    title=f"Brain alert: {document['event']}",
                    notify_type=apprise.NotifyType.WARNING,
                )
            )
            told = " ".join(line.strip() for line in said.getvalue().splitlines()[-2:])
    except Exception as exc:  # an alert never raises: a plugin's error is a failed attempt
        return Attempt(None, f"apprise: {type(exc).__name__}: {exc}")
    if delivered:
        return Attempt(200)
    return Attempt(None, "apprise: not delivered" + (f" ({told})" if told else ""))


def _deliver(url: str, document: Mapping[str, Any], timeout_s: float) -> Attempt:
    """One delivery of ``document`` (an ``alert_body``) to ``url``, by its kind."""
    if channel_kind(url) == APPRISE:
        return _notify(url, document)
    return _post(url, json.dumps(document, default=str).encode("utf-8"), timeout_s)


def _post_within(url: str, document: Mapping[str, Any], timeout_s: float) -> Attempt:
    """One delivery (a POST, or an apprise notification) that returns within ``timeout_s``
    whatever the receiver does.

    The socket timeout alone bounds each connect and each read, not their sum: a server that
    trickles its answer a byte at a time could hold a caller for minutes, and apprise's own
    timeouts are per service. The delivery runs in a daemon thread instead, and is abandoned
    (reported as timed out) when the time is up.
    """
    if (refused := _scheme_error(url)) is not None:
        return Attempt(None, refused)
    outcome: list[Attempt] = []
    worker = threading.Thread(
        target=lambda: outcome.append(_deliver(url, document, timeout_s)),
        name="brain-alert-post",
        daemon=True,
    )
    worker.start()
    worker.join(timeout_s)
    return outcome[0] if outcome else Attempt(None, f"timed out: no answer within {timeout_s:g} s")


def _delivery_failed(
    event: str, target: str, attempt: Attempt, *, level: int = logging.WARNING, **extra: Any
) -> None:
    fields: dict[str, Any] = {
        "alert_event": event,
        "target": _safe_target(target),
        "error": _scrub(attempt.error or "not delivered", target),
    }
    if attempt.status is not None:
        fields["status"] = attempt.status
    log_event(DELIVERY_FAILED, level, **fields, **extra)


# -- send now, keep nothing -----------------------------------------------------------------------


def send_alert(
    event: str,
    payload: Mapping[str, Any],
    *,
    url: str | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
    deadline_s: float = DELIVERY_DEADLINE_S,
) -> bool:
    """Log ``event`` at WARNING and deliver it to the alert target; True when the webhook
    answered 2xx (or apprise reported success, for an apprise target).

    A POST that gets no answer, a 5xx, 408 or 429 is tried again (``SEND_ATTEMPTS`` in all, with
    a pause doubling from ``FIRST_PAUSE_S``) while ``deadline_s`` allows; each POST waits at most
    ``timeout_s``. Without a webhook (no ``url`` and no ``$BRAIN_ALERT_WEBHOOK_URL``) only the
    log event is written and the result is False. Passwords in the payload are masked in both the
    log and the request body.
    """
    safe = _safe_payload(payload)
    log_event(event, logging.WARNING, **_as_fields(safe))
    target = _target(url)
    if target is None:
        return False
    if (refused := _scheme_error(target)) is not None:
        _delivery_failed(event, target, Attempt(None, refused), attempts=0)
        return False
    document = alert_body(event, safe)
    end = time.monotonic() + deadline_s
    pause = FIRST_PAUSE_S
    for number in range(1, SEND_ATTEMPTS + 1):
        attempt = _post_within(target, document, max(min(timeout_s, end - time.monotonic()), 0.0))
        if attempt.ok:
            return True
        # A pause that would leave too little time for the next POST is not worth taking.
        last = (
            number == SEND_ATTEMPTS
            or not attempt.transient
            or end - time.monotonic() - pause < MIN_ATTEMPT_S
        )
        if last:
            _delivery_failed(event, target, attempt, attempts=number)
            return False
        time.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable: the last attempt returns")


@dataclass(frozen=True)
class TargetCheck:
    """Where alerts go (``target``: scheme, host and port only), by which ``kind`` of channel,
    and what one test alert sent there came to (``attempt``; None when nothing was sent)."""

    target: str | None
    kind: str | None
    problem: str | None = None
    attempt: Attempt | None = None

    @property
    def delivered(self) -> bool:
        return self.attempt is not None and self.attempt.ok


TEST_EVENT = "alert_test"


def send_test_alert(url: str | None = None, *, timeout_s: float = REQUEST_TIMEOUT_S) -> TargetCheck:
    """One ``alert_test`` alert to ``url`` or ``$BRAIN_ALERT_WEBHOOK_URL`` now, within
    ``timeout_s``, kept nowhere: does an alert reach the target as configured? ``problem`` says
    why nothing was sent (no target, an unusable one, apprise's extra missing)."""
    target = _target(url)
    if target is None:
        return TargetCheck(None, None, f"no alert target: set {ALERT_WEBHOOK_ENV}")
    safe, kind = _safe_target(target), channel_kind(target)
    if (refused := _scheme_error(target)) is not None:
        return TargetCheck(safe, kind, refused)
    payload = {"note": "a test alert sent by `brain alerts test`; nothing is wrong"}
    log_event(TEST_EVENT, target=safe, kind=kind)
    attempt = _post_within(target, alert_body(TEST_EVENT, payload), timeout_s)
    if attempt.error is not None:
        attempt = Attempt(attempt.status, _scrub(attempt.error, target))
    return TargetCheck(safe, kind, attempt=attempt)


# -- the outbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedAlert:
    """An alert written to the outbox, to be dispatched once its transaction has committed."""

    alert_id: int
    event: str
    payload: dict[str, Any]
    duplicate: bool = False
    """The outbox already held this alert (same event and ``dedupe_key``): nothing was written,
    and ``alert_id`` is the earlier row's."""


def queue_alert(
    brain: BrainStore,
    event: str,
    payload: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
) -> QueuedAlert:
    """Write the alert into the outbox, inside the caller's open ``brain.transaction()`` when
    there is one (then it commits or rolls back with the change it reports). Passwords are masked
    before the row is written. With ``dedupe_key`` (the identity of the alert's cause, such as a
    run_id) an alert of the same event and key is written only once."""
    safe = _safe_payload(payload)
    symbol = safe.get("symbol")
    symbol = symbol if isinstance(symbol, str) and symbol.strip() else None
    if dedupe_key is None:
        return QueuedAlert(brain.enqueue_alert(event, safe, symbol=symbol), event, safe)
    alert_id, created = brain.enqueue_alert_once(event, safe, dedupe_key=dedupe_key, symbol=symbol)
    return QueuedAlert(alert_id, event, safe, duplicate=not created)


def dispatch_alert(brain: BrainStore, alert: QueuedAlert, *, url: str | None = None) -> bool:
    """After the commit: log the alert at WARNING and try once to deliver it, within
    ``REQUEST_TIMEOUT_S``. True when it was delivered; otherwise it waits in the outbox for the
    ``alert_outbox`` sensor. Never raises for a webhook or database failure: the change the
    alert reports has already happened, and the alert is safe in the outbox.

    A ``duplicate`` was announced when it was first queued: it is not logged again, and only
    posted if it is still due (a delivered one is not sent twice)."""
    if alert.duplicate:
        log_event(DUPLICATE, alert_event=alert.event, alert_id=alert.alert_id)
    else:
        log_event(
            alert.event,
            logging.WARNING,
            **{**_as_fields(alert.payload), "alert_id": alert.alert_id},
        )
    if brain.outbox_write_pending():
        # Called inside a transaction that is not ours: the row is not committed yet, and the
        # change it announces may still roll back. The sensor delivers it after the commit.
        return False
    try:
        report = deliver_pending(brain, url, ids=[alert.alert_id], expire=False)
    except BrainError as exc:
        log_event(
            DELIVERY_FAILED,
            logging.WARNING,
            alert_event=alert.event,
            alert_id=alert.alert_id,
            error=redact(f"{type(exc).__name__}: {exc}"),
            queued=True,
        )
        return False
    return alert.alert_id in report.delivered


def alert_through_outbox(
    brain: BrainStore,
    event: str,
    payload: Mapping[str, Any],
    *,
    url: str | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """``queue_alert`` in a transaction of its own, then ``dispatch_alert``."""
    alert = queue_alert(brain, event, payload, dedupe_key=dedupe_key)
    return dispatch_alert(brain, alert, url=url)


class AlertBatch:
    """The alerts queued in one ``transaction_with_alerts``."""

    def __init__(self, brain: BrainStore) -> None:
        self._brain = brain
        self.queued: list[QueuedAlert] = []

    def queue(self, event: str, payload: Mapping[str, Any]) -> QueuedAlert:
        alert = queue_alert(self._brain, event, payload)
        self.queued.append(alert)
        return alert


@contextmanager
def transaction_with_alerts(brain: BrainStore) -> Iterator[AlertBatch]:
    """A ``brain.transaction()`` whose ``queue``d alerts are written into the outbox inside it,
    so that each commits with the change it announces or not at all, and are dispatched once it
    has committed: the webhook may be slow or down, and must not hold the transaction's locks.
    A crash between the commit and the dispatch loses nothing; the outbox sensor sends them."""
    batch = AlertBatch(brain)
    with brain.transaction():
        yield batch
    for alert in batch.queued:
        dispatch_alert(brain, alert)


@dataclass
class DeliveryReport:
    """What one ``deliver_pending`` pass did, by outbox id."""

    webhook: bool = True
    delivered: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)

    def summary(self) -> str:
        if not self.webhook and not self.abandoned:
            return "no webhook configured: alerts stay in the outbox"
        return (
            f"{len(self.delivered)} delivered, {len(self.failed)} to retry, "
            f"{len(self.abandoned)} given up"
        )


def backoff_s(attempts: int, *, base_s: float = BACKOFF_S, max_s: float = MAX_BACKOFF_S) -> float:
    """The wait after an alert's ``attempts``-th failed attempt: base, 2 x base, 4 x base, ...
    up to ``max_s``."""
    wait = float(base_s)
    # Doubling step by step stops at the cap: 2 ** attempts overflows a float after days of
    # hourly attempts.
    for _ in range(max(attempts - 1, 0)):
        if wait >= max_s or wait <= 0:
            break
        wait *= 2
    return float(min(wait, max_s))


def _abandoned(row: Mapping[str, Any], reason: str) -> None:
    log_event(
        ABANDONED,
        logging.ERROR,
        alert_id=row["id"],
        alert_event=row["kind"],
        attempts=row["attempts"],
        reason=reason,
    )


def deliver_pending(
    brain: BrainStore,
    url: str | None = None,
    *,
    ids: Sequence[int] | None = None,
    limit: int = 50,
    timeout_s: float = REQUEST_TIMEOUT_S,
    deadline_s: float = DELIVERY_DEADLINE_S,
    base_backoff_s: float = BACKOFF_S,
    max_backoff_s: float = MAX_BACKOFF_S,
    max_age_s: float | None = None,
    expire: bool = True,
) -> DeliveryReport:
    """POST the outbox alerts that are due (only ``ids`` when given), oldest first.

    One POST per alert per pass, each within ``timeout_s``, and no new POST once ``deadline_s``
    is spent: a pass is bounded whatever the webhook does. A delivered alert is marked so; a
    failed one is due again after ``backoff_s(attempts)``, however many attempts it took. With
    ``expire``, alerts older than ``max_age_s`` (default: ``configured_max_age_s()``) are given
    up first, and that is the only way an alert is given up. Without a target (or with one that
    cannot be used: a scheme neither http(s) nor apprise's, an apprise URL without the ``alerts``
    extra) nothing is attempted and the alerts stay pending.
    """
    end = time.monotonic() + deadline_s
    report = DeliveryReport()
    if expire:
        age = configured_max_age_s() if max_age_s is None else max_age_s
        for old in brain.expire_alerts(age):
            report.abandoned.append(int(old["id"]))
            _abandoned(old, str(old["last_error"]))
    target = _target(url)
    if target is None:
        report.webhook = False
        return report
    if (refused := _scheme_error(target)) is not None:
        # A configuration error, not the alerts' fault: they wait for a usable URL.
        log_event(DELIVERY_FAILED, logging.WARNING, target=_safe_target(target), error=refused)
        report.webhook = False
        return report
    # Each alert at most once per pass, even one whose backoff is already over (a zero backoff).
    tried: list[int] = []
    while len(tried) < limit:
        remaining = end - time.monotonic()
        if remaining < MIN_ATTEMPT_S:
            break
        post_timeout = min(timeout_s, remaining)
        row = brain.claim_due_alert(lease_s=post_timeout + LEASE_MARGIN_S, ids=ids, exclude=tried)
        if row is None:
            break
        alert_id = int(row["id"])
        tried.append(alert_id)
        payload = redact_value(row["payload"] or {})
        body = alert_body(
            row["kind"], payload, alert_id=alert_id, created_at=row["created_at"].isoformat()
        )
        attempt = _post_within(target, body, post_timeout)
        if attempt.ok:
            brain.mark_alert_delivered(alert_id)
            report.delivered.append(alert_id)
            log_event(
                DELIVERED,
                alert_id=alert_id,
                alert_event=row["kind"],
                attempts=row["attempts"],
                target=_safe_target(target),
            )
            continue
        error = _scrub(attempt.error or "not delivered", target)
        attempts = int(row["attempts"])
        # No attempt count gives up: capped at max_backoff_s, attempts go on until the age runs
        # out, which is the one limit an operator reasons about ("alerts wait up to 3 days").
        retry = backoff_s(attempts, base_s=base_backoff_s, max_s=max_backoff_s)
        brain.mark_alert_failed(alert_id, error, retry_in_s=retry)
        _delivery_failed(
            row["kind"], target, attempt, alert_id=alert_id, attempts=attempts, retry_in_s=retry
        )
        report.failed.append(alert_id)
    return report


# -- sending again ------------------------------------------------------------------------------


@dataclass
class RetryReport:
    """What ``retry_alerts`` did: the alerts it made due again, and its delivery pass over them."""

    requeued: list[int]
    delivery: DeliveryReport

    @property
    def not_reached(self) -> list[int]:
        """Requeued alerts the bounded pass had no time for: the ``alert_outbox`` sensor sends
        them."""
        tried = {*self.delivery.delivered, *self.delivery.failed}
        return [alert_id for alert_id in self.requeued if alert_id not in tried]


def retry_alerts(
    brain: BrainStore,
    ids: Sequence[int] | None = None,
    *,
    given_up_only: bool = False,
    url: str | None = None,
) -> RetryReport:
    """Make alerts due now (``ids``, or every given-up alert and, unless ``given_up_only``, every
    pending one: see ``requeue_alerts``), with their age restarted, then run one bounded delivery
    pass over them. Refused, with nothing changed, when there is no usable target (``url`` or
    ``$BRAIN_ALERT_WEBHOOK_URL``; an apprise URL without the ``alerts`` extra is not usable):
    the alerts would only wait again."""
    target = _target(url)
    if target is None:
        raise BrainError(
            f"no webhook to send alerts to: set {ALERT_WEBHOOK_ENV}; no alert was changed"
        )
    if (refused := _scheme_error(target)) is not None:
        raise ValueError(
            f"webhook {_safe_target(target)} ({ALERT_WEBHOOK_ENV}): {refused}; no alert was changed"
        )
    requeued = brain.requeue_alerts(ids, given_up_only=given_up_only)
    if not requeued:
        return RetryReport([], DeliveryReport())
    log_event(REQUEUED, alert_ids=requeued)
    delivery = deliver_pending(brain, target, ids=requeued, limit=len(requeued), expire=False)
    return RetryReport(requeued, delivery)
