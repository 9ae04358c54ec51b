"""Alerts: always a log event, and a JSON POST to a webhook when one is configured.

The webhook is ``send_alert(url=...)`` or ``$BRAIN_ALERT_WEBHOOK_URL``. Its body is
``{"event": ..., "payload": {...}, "sent_at": "<ISO 8601 UTC>"}``, which Slack-style relays,
Alertmanager receivers or a small HTTP service can forward. Delivery is best effort: a webhook that
is down, slow or failing is logged as ``alert_delivery_failed`` and never raises, because an alert
is usually sent while something else is already going wrong.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from brain_assets.events import log_event
from brain_assets.logs import redact, redact_value

ALERT_WEBHOOK_ENV = "BRAIN_ALERT_WEBHOOK_URL"
DELIVERY_FAILED = "alert_delivery_failed"

# log_event takes these as its own parameters; a payload key with the same name would collide.
_RESERVED_FIELDS = frozenset({"event", "level"})


def configured_webhook_url() -> str | None:
    """``$BRAIN_ALERT_WEBHOOK_URL`` when set and not blank."""
    raw = os.environ.get(ALERT_WEBHOOK_ENV, "").strip()
    return raw or None


def _safe_target(url: str) -> str:
    # Webhook URLs often carry their secret in the path or query (Slack, Teams): logs name only
    # the scheme, host and port.
    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def _as_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        (f"payload_{key}" if key in _RESERVED_FIELDS else key): value
        for key, value in payload.items()
    }


def send_alert(
    event: str,
    payload: dict[str, Any],
    *,
    url: str | None = None,
    timeout_s: float = 3.0,
) -> bool:
    """Log ``event`` at WARNING and POST it to the webhook; True when the webhook answered 2xx.

    Without a webhook (no ``url`` and no ``$BRAIN_ALERT_WEBHOOK_URL``) only the log event is
    written and the result is False. Passwords in the payload are masked in both the log and the
    request body.
    """
    safe_payload: dict[str, Any] = redact_value({str(key): value for key, value in payload.items()})
    log_event(event, logging.WARNING, **_as_fields(safe_payload))

    target = url.strip() if url and url.strip() else configured_webhook_url()
    if target is None:
        return False

    body = json.dumps(
        {
            "event": event,
            "payload": safe_payload,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        default=str,
    ).encode("utf-8")

    try:
        scheme = urllib.parse.urlsplit(target).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        # urllib would also open file:// and ftp:// URLs; an alert must only ever go to HTTP.
        _delivery_failed(event, target, f"unsupported URL scheme {scheme!r}")
        return False

    request = urllib.request.Request(
        target,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "brain-assets-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        _delivery_failed(event, target, f"HTTP {exc.code} {exc.reason}", status=exc.code)
        return False
    except Exception as exc:
        # Refused, reset, timed out, bad URL or a garbled answer: all mean "not delivered", and
        # the caller is usually handling a failure already, so nothing may escape from here.
        _delivery_failed(event, target, f"{type(exc).__name__}: {exc}")
        return False
    if 200 <= status < 300:
        return True
    _delivery_failed(event, target, f"HTTP {status}", status=status)
    return False


def _delivery_failed(event: str, target: str, error: str, *, status: int | None = None) -> None:
    safe_target = _safe_target(target)
    fields: dict[str, Any] = {
        "alert_event": event,
        "target": safe_target,
        # Some errors quote the URL they could not open; keep its secret part out of the log.
        "error": redact(error.replace(target, safe_target)),
    }
    if status is not None:
        fields["status"] = status
    log_event(DELIVERY_FAILED, logging.WARNING, **fields)
