"""Alert targets given as apprise URLs (the ``alerts`` extra): a real apprise delivery through
its ``json://`` scheme to the local webhook receiver, with the outbox's durability unchanged (a
failing target keeps the alert queued with its backoff), and a clear error naming the extra where
apprise is not installed."""

from __future__ import annotations

import builtins
import logging
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from brain_assets import alerts
from brain_assets.alerts import (
    ALERT_WEBHOOK_ENV,
    ALERTS_EXTRA_INSTALL,
    APPRISE,
    DELIVERY_FAILED,
    WEBHOOK,
    channel_kind,
    deliver_pending,
    dispatch_alert,
    queue_alert,
    retry_alerts,
    send_alert,
    send_test_alert,
    transaction_with_alerts,
)
from brain_assets.cli.main import main
from brain_assets.library import BrainLibrary
from brain_assets_tests.outbox import make_due, outbox_row
from brain_assets_tests.webhook import Webhook, events, serve_webhook


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


@pytest.fixture(autouse=True)
def no_target_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)


def apprise_url(hook: Webhook) -> str:
    """The receiver as apprise's ``json://`` target (apprise POSTs its own JSON document)."""
    parts = urllib.parse.urlsplit(hook.url)
    return f"json://{parts.netloc}{parts.path}"


def test_the_scheme_decides_the_channel() -> None:
    assert channel_kind("https://hooks.example.org/x") == WEBHOOK
    assert channel_kind("HTTP://127.0.0.1:9/x") == WEBHOOK
    for url in ("tgram://token/chat", "discord://id/token", "mailto://u:p@example.org", "json://h"):
        assert channel_kind(url) == APPRISE


def test_send_alert_goes_through_apprise(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    payload = {"symbol": "BTC/USDT", "metric": "sharpe_ratio"}
    assert send_alert("model_rollback", payload, url=apprise_url(webhook)) is True
    [request] = webhook.requests
    assert request["path"] == "/hooks/brain"
    body = request["body"]
    assert body["title"] == "Brain alert: model_rollback"
    assert body["message"] == "Brain alert model_rollback for BTC/USDT: metric=sharpe_ratio"
    assert body["type"] == "warning"
    assert not events(caplog, DELIVERY_FAILED)


def test_the_outbox_delivers_through_apprise_only_on_success(
    webhook: Webhook, brain: BrainLibrary, brain_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Apprise answers a refused delivery with False, not an exception: the alert stays queued
    with its backoff, is tried again when due, and is marked delivered once apprise succeeds."""
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    target = apprise_url(webhook)
    webhook.fail_first = 1
    with transaction_with_alerts(brain) as batch:
        alert = batch.queue("model_rollback", {"symbol": "ETH/USDT", "metric": "sharpe"})
    # The dispatch after the commit used $BRAIN_ALERT_WEBHOOK_URL: none, so nothing was sent.
    assert webhook.requests == []

    first = deliver_pending(brain, target, base_backoff_s=60)
    assert first.failed == [alert.alert_id] and not first.delivered
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 1 and row["delivered_at"] is None
    assert "apprise: not delivered" in row["last_error"]
    assert 55 < row["due_in_s"] <= 60
    [failed] = events(caplog, DELIVERY_FAILED)
    assert failed.fields["target"] == "json:// (apprise)"  # type: ignore[attr-defined]

    # Not due yet: nothing is sent.
    assert deliver_pending(brain, target, base_backoff_s=60).failed == []
    assert len(webhook.requests) == 1

    make_due(brain_dsn, alert.alert_id)
    second = deliver_pending(brain, target, base_backoff_s=60)
    assert second.delivered == [alert.alert_id]
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 2 and row["delivered_at"] is not None
    assert row["next_attempt_at"] is None
    bodies = [request["body"] for request in webhook.requests]
    # The same alert each time, its outbox id in the message: receivers can drop duplicates.
    assert all(f"(alert_id {alert.alert_id})" in body["message"] for body in bodies)


def test_a_target_that_keeps_failing_keeps_the_alert_queued(
    webhook: Webhook, brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook.status = 500
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, apprise_url(webhook))
    alert = queue_alert(brain, "stand_aside", {"symbol": "LTC/USDT"})
    assert dispatch_alert(brain, alert) is False
    for _ in range(2):
        make_due(brain_dsn, alert.alert_id)
        assert deliver_pending(brain).failed == [alert.alert_id]
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 3
    assert row["delivered_at"] is None and row["gave_up_at"] is None
    assert row["next_attempt_at"] is not None
    assert len(webhook.requests) == 3


def hide_apprise(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def guarded(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "apprise":
            raise ModuleNotFoundError("No module named 'apprise'", name="apprise")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded)


def test_without_apprise_an_apprise_target_names_the_extra(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_apprise(monkeypatch)
    url = "tgram://123456:secret-token/987"
    with pytest.raises(ImportError, match=r"`alerts` extra"):
        alerts._import_apprise()
    assert send_alert("model_promoted", {}, url=url) is False

    alert = queue_alert(brain, "model_rollback", {"symbol": "BTC/USDT"})
    report = deliver_pending(brain, url)
    assert not report.webhook and not report.failed  # nothing attempted: it waits
    assert outbox_row(brain_dsn, alert.alert_id)["attempts"] == 0

    with pytest.raises(ValueError, match=r"the `alerts` extra is not installed") as raised:
        retry_alerts(brain, [alert.alert_id], url=url)
    assert ALERTS_EXTRA_INSTALL in str(raised.value) and "secret-token" not in str(raised.value)

    check = send_test_alert(url)
    assert check.kind == APPRISE and not check.delivered
    assert check.problem is not None and ALERTS_EXTRA_INSTALL in check.problem


def test_brain_alerts_test_sends_through_the_configured_target(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, apprise_url(webhook))
    assert main(["alerts", "test"]) == 0
    assert "test alert delivered to json:// (apprise)" in capsys.readouterr().out
    assert webhook.requests[0]["body"]["title"] == "Brain alert: alert_test"

    assert main(["alerts", "test", "--url", webhook.url]) == 0
    assert "(webhook)" in capsys.readouterr().out
    assert webhook.requests[1]["body"]["event"] == "alert_test"

    webhook.status = 500
    assert main(["alerts", "test"]) == 1
    out = capsys.readouterr().out
    assert "test alert NOT delivered to json:// (apprise): apprise: not delivered" in out

    monkeypatch.delenv(ALERT_WEBHOOK_ENV)
    assert main(["alerts", "test"]) == 1
    assert f"set {ALERT_WEBHOOK_ENV}" in capsys.readouterr().out
