"""Alerts against a real local HTTP server (127.0.0.1 only), the outbox and the alert sensors."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest

from brain_assets.alerts import (
    ABANDONED,
    ALERT_WEBHOOK_ENV,
    DELIVERY_FAILED,
    DUPLICATE,
    MAX_AGE_ENV,
    MAX_BACKOFF_S,
    SEND_ATTEMPTS,
    QueuedAlert,
    alert_text,
    backoff_s,
    configured_max_age_s,
    deliver_pending,
    dispatch_alert,
    queue_alert,
    send_alert,
    transaction_with_alerts,
)
from brain_assets.defs.alerts.sensors import (
    OUTBOX_UNAVAILABLE,
    alert_outbox,
    alert_sensors,
    run_failure_alert,
)
from brain_assets.defs.resources import BrainResource
from brain_assets.defs.retries import is_transient
from brain_assets.errors import StoreError
from brain_assets.library import BrainLibrary
from brain_assets.store.base import as_store_errors
from brain_assets_tests.outbox import make_due, outbox_row
from brain_assets_tests.webhook import Webhook, events, serve_webhook

SECRET = "hunter2-Xy"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


@pytest.fixture(autouse=True)
def no_webhook_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)
    monkeypatch.delenv(MAX_AGE_ENV, raising=False)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_alert_is_logged_and_posted_as_json(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    payload = {"symbol": "BTC/USDT", "dsn": f"postgresql://brain:{SECRET}@db:5432/huracan"}

    assert send_alert("model_rollback", payload, url=webhook.url) is True

    (request,) = webhook.requests
    assert request["path"] == "/hooks/brain?token=abc"
    assert request["content_type"] == "application/json"
    body = request["body"]
    assert set(body) == {"text", "event", "payload", "sent_at"}
    assert body["event"] == "model_rollback"
    # What a Slack-style webhook shows: one line naming the alert, its symbol, no secret.
    assert body["text"].startswith("Brain alert model_rollback for BTC/USDT: dsn=postgresql://")
    assert "\n" not in body["text"] and SECRET not in body["text"]
    assert body["payload"] == {
        "symbol": "BTC/USDT",
        "dsn": "postgresql://brain:***@db:5432/huracan",
    }
    assert body["sent_at"].endswith("+00:00")

    (record,) = events(caplog, "model_rollback")
    assert record.levelno == logging.WARNING
    assert record.fields["symbol"] == "BTC/USDT"  # type: ignore[attr-defined]
    assert SECRET not in record.getMessage()
    assert not events(caplog, DELIVERY_FAILED)


def test_webhook_url_comes_from_the_environment(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    assert send_alert("data_quality_failed", {"symbol": "ETH/USDT", "check": "gaps"}) is True
    assert webhook.requests[0]["body"]["payload"] == {"symbol": "ETH/USDT", "check": "gaps"}


def test_database_dsn_password_is_masked_in_the_body(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_DSN", f"postgresql://brain:{SECRET}@db:5432/huracan")
    assert send_alert("run_failed", {"error": f"auth failed for {SECRET}"}, url=webhook.url)
    assert SECRET not in json.dumps(webhook.requests[0]["body"])


def test_a_500_answer_returns_false_and_logs_the_failure(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    webhook.status = 500
    assert send_alert("model_promoted", {"symbol": "SOL/USDT"}, url=webhook.url) is False
    # A server error may pass: tried again, then reported once.
    assert len(webhook.requests) == SEND_ATTEMPTS
    (failure,) = events(caplog, DELIVERY_FAILED)
    fields = failure.fields  # type: ignore[attr-defined]
    assert fields["status"] == 500
    assert fields["attempts"] == SEND_ATTEMPTS
    assert fields["alert_event"] == "model_promoted"
    assert "HTTP 500" in fields["error"]
    # The webhook's token stays out of the log: only scheme, host and port are named.
    assert "token" not in failure.getMessage()
    assert events(caplog, "model_promoted")


def test_a_refusal_is_not_retried(webhook: Webhook) -> None:
    webhook.status = 403
    assert send_alert("model_promoted", {"symbol": "SOL/USDT"}, url=webhook.url) is False
    assert len(webhook.requests) == 1


def test_a_webhook_that_fails_twice_gets_the_alert_on_the_third_post(webhook: Webhook) -> None:
    webhook.fail_first = 2
    assert send_alert("model_promoted", {"symbol": "SOL/USDT"}, url=webhook.url) is True
    assert len(webhook.requests) == 3
    assert all(r["body"]["event"] == "model_promoted" for r in webhook.requests)


def test_a_closed_port_returns_false_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    url = f"http://127.0.0.1:{closed_port()}/hook"
    assert send_alert("model_promoted", {"symbol": "BNB/USDT"}, url=url, timeout_s=2) is False
    (failure,) = events(caplog, DELIVERY_FAILED)
    assert failure.fields["target"] == url.rsplit("/", 1)[0]  # type: ignore[attr-defined]
    assert failure.fields["error"]  # type: ignore[attr-defined]


def test_a_webhook_that_never_answers_times_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    # A listening socket that nobody accepts from: the connection opens, no answer ever comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        assert send_alert("model_promoted", {"symbol": "X/USDT"}, url=url, timeout_s=0.3) is False
    (failure,) = events(caplog, DELIVERY_FAILED)
    assert "timed out" in failure.fields["error"].lower()  # type: ignore[attr-defined]


@pytest.fixture
def trickling_url() -> Iterator[str]:
    """A server that answers one header byte every 50 ms, forever: no socket read ever times
    out, so only an overall deadline stops a client."""
    stop = threading.Event()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    def trickle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.05):
                    conn.sendall(b"a")
            except OSError:
                return  # the client gave up and closed: what the test expects

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_trickling_webhook_cannot_hold_send_alert_past_its_deadline(trickling_url: str) -> None:
    started = time.monotonic()
    delivered = send_alert(
        "model_promoted", {"symbol": "X/USDT"}, url=trickling_url, timeout_s=5, deadline_s=1.0
    )
    elapsed = time.monotonic() - started
    assert delivered is False
    assert elapsed < 2.0, f"send_alert took {elapsed:.1f} s with a 1 s deadline"


def test_a_non_http_url_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    assert send_alert("model_promoted", {}, url="file:///etc/passwd") is False
    assert events(caplog, DELIVERY_FAILED)


def test_without_a_url_only_the_log_event_is_written(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    assert send_alert("brain_library_initialization_failed", {"error": "down"}) is False
    (record,) = events(caplog, "brain_library_initialization_failed")
    assert record.fields == {"error": "down"}  # type: ignore[attr-defined]
    assert not events(caplog, DELIVERY_FAILED)


def test_payload_keys_that_clash_with_log_event_parameters_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    assert send_alert("run_failed", {"event": "x", "level": 3}) is False
    (record,) = events(caplog, "run_failed")
    assert record.fields == {"payload_event": "x", "payload_level": 3}  # type: ignore[attr-defined]


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["BTC/USDT"]))
def exploding() -> None:
    raise ValueError("bars are missing for BTC/USDT")


def failed_run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [exploding], instance=instance, partition_key="BTC/USDT", raise_on_error=False
    )
    assert not result.success
    return result


def sensor_tick(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> None:
    """One evaluation of the run-failure sensor for ``result``'s run, as the daemon makes it."""
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    ).for_run_failure()
    run_failure_alert(context)


def test_run_failure_sensor_queues_the_failed_run_once_and_posts_it(
    webhook: Webhook,
    brain: BrainLibrary,
    brain_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    assert alert_sensors == [run_failure_alert, alert_outbox]
    assert run_failure_alert.name == "run_failure_alert"
    assert run_failure_alert.default_status == dg.DefaultSensorStatus.RUNNING
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)

    with dg.instance_for_test() as instance:
        result = failed_run(instance)
        sensor_tick(instance, result)
        # A second evaluation of the same run (a tick that crashed before its cursor moved)
        # writes no second alert and posts nothing more.
        sensor_tick(instance, result)

    (row,) = brain.get_alerts()
    assert row["kind"] == "run_failed" and row["dedupe_key"] == result.run_id
    assert row["attempts"] == 1 and row["delivered_at"] is not None
    (request,) = webhook.requests
    body = request["body"]
    assert body["event"] == "run_failed"
    assert body["alert_id"] == row["id"]
    payload = body["payload"]
    assert payload == row["payload"]
    assert payload["run_id"] == result.run_id
    assert payload["job_name"] == result.dagster_run.job_name
    assert payload["partition"] == "BTC/USDT"
    assert payload["error"]
    assert "bars are missing for BTC/USDT" in payload["step_errors"]["exploding"]
    # Announced once; the second evaluation only notes the duplicate.
    assert len(events(caplog, "run_failed")) == 1
    (duplicate,) = events(caplog, DUPLICATE)
    assert duplicate.fields["alert_id"] == row["id"]  # type: ignore[attr-defined]
    assert not events(caplog, OUTBOX_UNAVAILABLE)


def test_a_run_failure_the_webhook_misses_waits_in_the_outbox(
    webhook: Webhook, brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook.fail_first = 1
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    with dg.instance_for_test() as instance:
        result = failed_run(instance)
        sensor_tick(instance, result)
    (row,) = brain.get_alerts(pending_only=True)
    assert row["kind"] == "run_failed" and "HTTP 503" in row["last_error"]

    make_due(brain_dsn, row["id"])
    with dg.build_sensor_context(resources={"brain": BrainResource(dsn=brain_dsn)}) as context:
        delivered = alert_outbox(context)
    assert isinstance(delivered, dg.SkipReason)
    assert delivered.skip_message == "1 delivered, 0 to retry, 0 given up"
    assert [r["body"]["alert_id"] for r in webhook.requests] == [row["id"], row["id"]]
    assert webhook.requests[-1]["body"]["payload"]["run_id"] == result.run_id


def test_run_failure_is_posted_directly_when_the_database_does_not_answer(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    monkeypatch.setenv("DATABASE_DSN", f"postgresql://brain:{SECRET}@127.0.0.1:{closed_port()}/x")
    with dg.instance_for_test() as instance:
        result = failed_run(instance)
        sensor_tick(instance, result)

    (request,) = webhook.requests
    body = request["body"]
    assert body["event"] == "run_failed" and "alert_id" not in body
    assert body["payload"]["run_id"] == result.run_id
    (fallback,) = events(caplog, OUTBOX_UNAVAILABLE)
    assert fallback.levelno == logging.WARNING
    fields = fallback.fields  # type: ignore[attr-defined]
    assert fields["run_id"] == result.run_id and fields["alert_event"] == "run_failed"
    assert "BrainConnectionError" in fields["error"] and "cannot connect" in fields["error"]
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_run_failure_is_posted_directly_when_queueing_loses_the_database(
    webhook: Webhook,
    brain: BrainLibrary,
    brain_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)

    def connection_lost(self: BrainLibrary, *args: Any, **kwargs: Any) -> tuple[int, bool]:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(BrainLibrary, "enqueue_alert_once", connection_lost)
    with dg.instance_for_test() as instance:
        result = failed_run(instance)
        sensor_tick(instance, result)
    (request,) = webhook.requests
    assert request["body"]["payload"]["run_id"] == result.run_id
    (fallback,) = events(caplog, OUTBOX_UNAVAILABLE)
    assert "server closed the connection" in fallback.fields["error"]  # type: ignore[attr-defined]
    assert brain.get_alerts() == []


def test_a_rollback_posts_to_the_webhook(
    webhook: Webhook, brain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from brain_assets.lifecycle.versioning import DecisionPolicy, ModelVersioning

    monkeypatch.setenv("BRAIN_ALERT_WEBHOOK_URL", webhook.url)
    # The seed's rules: these bare metrics have no standard error for a significance test.
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    metrics = {"composite_score": 0.5, "sharpe_ratio": 2.0}
    first = versioning.register_version("BTC/USDT", "ridge", b"a", metrics=metrics)
    second = versioning.register_version("BTC/USDT", "ridge", b"b", metrics=metrics)
    assert versioning.check_and_rollback(second, "BTC/USDT", {"sharpe_ratio": 0.2})
    [request] = webhook.requests
    body = request["body"]
    assert body["event"] == "model_rollback"
    assert body["text"].startswith("Brain alert model_rollback for BTC/USDT: ")
    assert body["payload"]["regressed_model_id"] == second
    assert body["payload"]["rolled_back_to"] == first
    assert body["payload"]["metric"] == "sharpe_ratio"
    assert body["payload"]["threshold"] == 0.05
    # It went through the outbox, which now says it was delivered, on the first attempt.
    (row,) = brain.get_alerts()
    assert body["alert_id"] == row["id"]
    assert row["kind"] == "model_rollback" and row["symbol"] == "BTC/USDT"
    assert row["attempts"] == 1 and row["delivered_at"] is not None
    assert row["next_attempt_at"] is None and row["last_error"] is None

    # An operator's rollback is announced the same way.
    versioning.rollback("BTC/USDT", to_version=2)
    operator = webhook.requests[-1]["body"]
    assert operator["event"] == "model_rollback"
    assert operator["payload"]["trigger"] == "operator"
    assert operator["payload"]["model_id"] == second
    assert [row["delivered_at"] is not None for row in brain.get_alerts()] == [True, True]


# -- the outbox ---------------------------------------------------------------------------------


def test_the_outbox_retries_with_exponential_backoff_until_delivered(
    webhook: Webhook, brain: BrainLibrary, brain_dsn: str
) -> None:
    webhook.fail_first = 2
    alert = queue_alert(brain, "model_rollback", {"symbol": "BTC/USDT", "metric": "sharpe"})

    first = deliver_pending(brain, webhook.url, base_backoff_s=60)
    assert first.failed == [alert.alert_id] and not first.delivered
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 1 and "HTTP 503" in row["last_error"]
    assert 55 < row["due_in_s"] <= 60

    # Not due yet: a pass in the meantime sends nothing.
    assert deliver_pending(brain, webhook.url, base_backoff_s=60).failed == []
    assert len(webhook.requests) == 1

    make_due(brain_dsn, alert.alert_id)
    deliver_pending(brain, webhook.url, base_backoff_s=60)
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 2
    assert 115 < row["due_in_s"] <= 120  # doubled

    make_due(brain_dsn, alert.alert_id)
    third = deliver_pending(brain, webhook.url, base_backoff_s=60)
    assert third.delivered == [alert.alert_id]
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 3 and row["delivered_at"] is not None
    assert row["next_attempt_at"] is None and row["gave_up_at"] is None

    make_due_noop = deliver_pending(brain, webhook.url, base_backoff_s=0)
    assert make_due_noop.delivered == [] and len(webhook.requests) == 3
    bodies = [r["body"] for r in webhook.requests]
    # The same alert each time: a receiver can drop a duplicate by its id.
    assert {b["alert_id"] for b in bodies} == {alert.alert_id}
    assert all(b["text"] == alert_text("model_rollback", alert.payload) for b in bodies)
    assert bodies[-1]["payload"] == {"symbol": "BTC/USDT", "metric": "sharpe"}


def age(dsn: str, alert_id: int, hours: float) -> None:
    """Time travel: ``alert_id`` was queued ``hours`` ago."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """UPDATE alert_outbox
               SET created_at = clock_timestamp() - make_interval(secs => %s) WHERE id = %s""",
            (hours * 3600.0, alert_id),
        )


def test_failed_attempts_go_on_until_the_age_runs_out(
    webhook: Webhook, brain: BrainLibrary, brain_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    webhook.status = 500
    alert = queue_alert(brain, "model_stand_aside", {"symbol": "ETH/USDT"})
    # Far more attempts than a day of hourly retries: no count gives the alert up.
    for attempt in range(1, 31):
        report = deliver_pending(brain, webhook.url, base_backoff_s=0)
        assert report.failed == [alert.alert_id] and report.abandoned == [], attempt
    assert len(webhook.requests) == 30
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 30 and row["gave_up_at"] is None
    assert row["next_attempt_at"] is not None

    # Two days old (more than the 24 h of old): still pending, still tried.
    age(brain_dsn, alert.alert_id, hours=48)
    assert deliver_pending(brain, webhook.url, base_backoff_s=0).failed == [alert.alert_id]
    # Past the default maximum age of 3 days it is given up, visibly.
    age(brain_dsn, alert.alert_id, hours=72.1)
    assert deliver_pending(brain, webhook.url).abandoned == [alert.alert_id]
    assert len(webhook.requests) == 31
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["gave_up_at"] is not None and row["next_attempt_at"] is None
    assert row["delivered_at"] is None
    assert row["last_error"].startswith("not delivered within 3 days (last error: HTTP 500")
    (abandoned,) = events(caplog, ABANDONED)
    assert abandoned.levelno == logging.ERROR
    assert abandoned.fields["alert_id"] == alert.alert_id  # type: ignore[attr-defined]
    assert abandoned.fields["attempts"] == 31  # type: ignore[attr-defined]
    assert deliver_pending(brain, webhook.url).abandoned == []
    assert len(webhook.requests) == 31


def test_the_backoff_is_capped_however_many_attempts_failed() -> None:
    assert [backoff_s(n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert backoff_s(8) == backoff_s(100) == MAX_BACKOFF_S == 3600.0
    # Weeks of hourly attempts (a long maximum age) must not overflow the doubling.
    assert backoff_s(5000) == MAX_BACKOFF_S


def test_the_maximum_age_is_set_in_days_by_the_environment(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert configured_max_age_s() == 3 * 86400.0
    young = queue_alert(brain, "model_rollback", {"symbol": "A/X"}).alert_id
    old = queue_alert(brain, "model_rollback", {"symbol": "B/X"}).alert_id
    age(brain_dsn, young, hours=11)
    age(brain_dsn, old, hours=13)
    monkeypatch.setenv(MAX_AGE_ENV, " 0.5 ")
    assert configured_max_age_s() == 43200.0
    assert deliver_pending(brain).abandoned == [old]
    assert outbox_row(brain_dsn, old)["last_error"] == "not delivered within 12 hours"
    assert outbox_row(brain_dsn, young)["next_attempt_at"] is not None


@pytest.mark.parametrize("raw", ["three", "0", "-1", "nan", "inf", "3d"])
def test_a_bad_maximum_age_is_refused_naming_the_variable(
    raw: str, brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alert = queue_alert(brain, "model_rollback", {"symbol": "A/X"})
    age(brain_dsn, alert.alert_id, hours=24 * 30)
    monkeypatch.setenv(MAX_AGE_ENV, raw)
    with pytest.raises(ValueError, match=f"{MAX_AGE_ENV} must be a number of days > 0"):
        deliver_pending(brain)
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["gave_up_at"] is None and row["next_attempt_at"] is not None


def test_an_alert_with_a_dedupe_key_is_written_once(brain: BrainLibrary) -> None:
    first = queue_alert(brain, "run_failed", {"run_id": "r1"}, dedupe_key="r1")
    again = queue_alert(brain, "run_failed", {"run_id": "r1", "error": "x"}, dedupe_key="r1")
    other_run = queue_alert(brain, "run_failed", {"run_id": "r2"}, dedupe_key="r2")
    other_kind = queue_alert(brain, "run_retried", {"run_id": "r1"}, dedupe_key="r1")
    assert not first.duplicate and again.duplicate and again.alert_id == first.alert_id
    assert not other_run.duplicate and not other_kind.duplicate
    rows = {row["id"]: row for row in brain.get_alerts()}
    assert sorted(rows) == sorted({first.alert_id, other_run.alert_id, other_kind.alert_id})
    assert rows[first.alert_id]["payload"] == {"run_id": "r1"}  # the first one stays
    # Keyless alerts (each rollback is its own cause) are never merged.
    a = queue_alert(brain, "model_rollback", {"symbol": "A/X"})
    b = queue_alert(brain, "model_rollback", {"symbol": "A/X"})
    assert a.alert_id != b.alert_id
    with pytest.raises(ValueError, match="dedupe_key must not be empty"):
        queue_alert(brain, "run_failed", {}, dedupe_key=" ")


def test_a_duplicate_inside_a_rolled_back_transaction_leaves_the_first(
    brain: BrainLibrary,
) -> None:
    first = queue_alert(brain, "run_failed", {"run_id": "r1"}, dedupe_key="r1")
    with pytest.raises(RuntimeError, match="undone"), brain.transaction():
        assert queue_alert(brain, "run_failed", {}, dedupe_key="r1").duplicate
        raise RuntimeError("undone")
    (row,) = brain.get_alerts()
    assert row["id"] == first.alert_id


def test_without_a_webhook_alerts_stay_in_the_outbox_and_expire(
    brain: BrainLibrary, brain_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    alert = queue_alert(brain, "model_rollback", {"symbol": "BTC/USDT"})
    assert dispatch_alert(brain, alert) is False
    (logged,) = events(caplog, "model_rollback")
    assert logged.fields == {"symbol": "BTC/USDT", "alert_id": alert.alert_id}  # type: ignore[attr-defined]
    report = deliver_pending(brain)
    assert not report.webhook and report.summary().startswith("no webhook configured")
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["attempts"] == 0 and row["next_attempt_at"] is not None  # recorded, waiting
    assert not events(caplog, DELIVERY_FAILED)

    # Not retried forever: past the maximum age it is given up, and says why.
    assert deliver_pending(brain, max_age_s=0).abandoned == [alert.alert_id]
    row = outbox_row(brain_dsn, alert.alert_id)
    assert row["gave_up_at"] is not None and row["next_attempt_at"] is None
    assert row["last_error"].startswith("not delivered within 0 s")
    assert deliver_pending(brain, max_age_s=0).abandoned == []


def test_a_hanging_webhook_cannot_hold_a_delivery_pass_past_its_deadline(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    ids = [queue_alert(brain, "model_rollback", {"symbol": s}).alert_id for s in ("A/X", "B/X")]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        started = time.monotonic()
        report = deliver_pending(brain, url, timeout_s=0.6, deadline_s=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 1.8, f"a 1 s pass took {elapsed:.1f} s"
    # The first POST used its 0.6 s, the second got what was left of the pass.
    assert report.failed == ids and not report.delivered
    for alert_id in ids:
        row = outbox_row(brain_dsn, alert_id)
        assert row["attempts"] == 1 and "timed out" in row["last_error"].lower()
        assert row["next_attempt_at"] is not None


def test_an_alert_queued_in_a_failed_transaction_is_not_kept(brain: BrainLibrary) -> None:
    with pytest.raises(RuntimeError, match="rollback failed"), brain.transaction():
        queue_alert(brain, "model_rollback", {"symbol": "BTC/USDT"})
        raise RuntimeError("rollback failed")
    assert brain.get_alerts() == []


def test_alerts_of_a_transaction_are_dispatched_only_once_it_commits(
    brain: BrainLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    import brain_assets.alerts as alerts_module

    dispatched: list[tuple[str, bool]] = []

    def record(brain: BrainLibrary, alert: QueuedAlert, **kwargs: Any) -> bool:
        dispatched.append((alert.event, brain.outbox_write_pending()))
        return False

    monkeypatch.setattr(alerts_module, "dispatch_alert", record)
    with (
        pytest.raises(RuntimeError, match="rollback failed"),
        transaction_with_alerts(brain) as batch,
    ):
        batch.queue("model_rollback", {"symbol": "BTC/USDT"})
        raise RuntimeError("rollback failed")
    assert dispatched == [] and brain.get_alerts() == []

    with transaction_with_alerts(brain) as batch:
        batch.queue("model_stand_aside", {"symbol": "BTC/USDT"})
        assert dispatched == []
    assert dispatched == [("model_stand_aside", False)]
    (row,) = brain.get_alerts()
    assert row["kind"] == "model_stand_aside"


def test_a_database_failure_while_dispatching_leaves_the_alert_queued(
    brain: BrainLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    alert = queue_alert(brain, "model_rollback", {"symbol": "BTC/USDT"})

    def connection_lost(**kwargs: Any) -> None:
        with as_store_errors("claiming an outbox alert"):
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(brain, "claim_due_alert", connection_lost)
    assert dispatch_alert(brain, alert, url="http://127.0.0.1:9/never") is False
    (row,) = brain.get_alerts(pending_only=True)
    assert row["id"] == alert.alert_id and row["attempts"] == 0


def test_the_store_raises_driver_errors_as_its_own_that_retries_still_classify() -> None:
    with (
        pytest.raises(StoreError, match="claiming an outbox alert failed") as caught,
        as_store_errors("claiming an outbox alert"),
    ):
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    assert is_transient(caught.value)


def test_delivering_inside_the_enqueuing_transaction_is_refused(brain: BrainLibrary) -> None:
    with brain.transaction():
        alert = queue_alert(brain, "model_rollback", {"symbol": "BTC/USDT"})
        # dispatch_alert leaves it to the sensor; a direct pass is a programming error.
        assert dispatch_alert(brain, alert, url="http://127.0.0.1:9/never") is False
        with pytest.raises(RuntimeError, match="after the transaction"):
            deliver_pending(brain, "http://127.0.0.1:9/never")
    (row,) = brain.get_alerts()
    assert row["attempts"] == 0 and row["next_attempt_at"] is not None


CRASH_EXIT_CODE = 17


def _rollback_then_crash(dsn: str, url: str) -> None:
    """A run worker killed right after its rollback committed (spawned: module level)."""
    os.environ[ALERT_WEBHOOK_ENV] = url
    import brain_assets.alerts as alerts_module
    import brain_assets.lifecycle.versioning as versioning_module

    brain = BrainLibrary(dsn)
    versioning = versioning_module.ModelVersioning(
        brain, policy=versioning_module.DecisionPolicy.seed()
    )
    metrics = {"composite_score": 0.5, "sharpe_ratio": 2.0}
    versioning.register_version("BTC/USDT", "ridge", b"a", metrics=metrics)
    second = versioning.register_version("BTC/USDT", "ridge", b"b", metrics=metrics)

    def killed(*args: Any, **kwargs: Any) -> bool:
        os._exit(CRASH_EXIT_CODE)  # no cleanup, no flush: as abrupt as a SIGKILL

    # What runs right after the commit: the process dies there, before any delivery.
    alerts_module.dispatch_alert = killed
    versioning.check_and_rollback(second, "BTC/USDT", {"sharpe_ratio": 0.2})
    os._exit(0)  # not reached: the crash comes first


def test_a_crash_right_after_the_rollback_commits_does_not_lose_its_alert(
    webhook: Webhook, brain: BrainLibrary, brain_dsn: str
) -> None:
    worker = multiprocessing.get_context("spawn").Process(
        target=_rollback_then_crash, args=(brain_dsn, webhook.url)
    )
    worker.start()
    worker.join(timeout=120)
    assert worker.exitcode == CRASH_EXIT_CODE

    # The rollback committed, and its alert with it; nothing reached the webhook.
    active = brain.get_active_model("BTC/USDT")
    assert active is not None and active.version == 1
    (row,) = brain.get_alerts(pending_only=True)
    assert row["kind"] == "model_rollback" and row["attempts"] == 0
    assert webhook.requests == []

    # Later, the sensor's pass sends it, once.
    assert deliver_pending(brain, webhook.url).delivered == [row["id"]]
    assert deliver_pending(brain, webhook.url).delivered == []
    (request,) = webhook.requests
    assert request["body"]["alert_id"] == row["id"]
    assert request["body"]["payload"]["rolled_back_to"] == active.model_id
    assert brain.get_alerts(pending_only=True) == []


def test_the_outbox_sensor_delivers_what_is_pending(
    webhook: Webhook, brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert alert_outbox.name == "alert_outbox"
    assert alert_outbox.default_status == dg.DefaultSensorStatus.RUNNING
    alert = queue_alert(brain, "data_quality_blocked", {"symbols": ["BTC/USDT", "ETH/USDT"]})
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    with dg.build_sensor_context(resources={"brain": BrainResource(dsn=brain_dsn)}) as context:
        result = alert_outbox(context)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "1 delivered, 0 to retry, 0 given up"
    (request,) = webhook.requests
    assert request["body"]["alert_id"] == alert.alert_id
    assert request["body"]["text"] == (
        "Brain alert data_quality_blocked: symbols=BTC/USDT,ETH/USDT"
    )


def test_non_finite_numbers_are_named_rather_than_refused(
    webhook: Webhook, brain: BrainLibrary
) -> None:
    # jsonb refuses NaN: refused inside a rollback's transaction, it would undo the rollback.
    alert = queue_alert(
        brain,
        "model_rollback",
        {"symbol": "BTC/USDT", "p_value": float("nan"), "detail": {"x": float("-inf")}},
    )
    assert dispatch_alert(brain, alert, url=webhook.url) is True
    (request,) = webhook.requests
    assert request["body"]["payload"] == {
        "symbol": "BTC/USDT",
        "p_value": "nan",
        "detail": {"x": "-inf"},
    }
