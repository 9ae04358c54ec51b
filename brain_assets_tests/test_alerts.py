"""Alerts against a real local HTTP server (127.0.0.1 only) and the run-failure sensor."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest

from brain_assets.alerts import ALERT_WEBHOOK_ENV, DELIVERY_FAILED, send_alert
from brain_assets.defs.alerts.sensors import alert_sensors, run_failure_alert

SECRET = "hunter2-Xy"


@dataclass
class Webhook:
    url: str
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            hook.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            self.send_response(hook.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/brain?token=abc"
    yield hook
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_webhook_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


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
    assert set(body) == {"event", "payload", "sent_at"}
    assert body["event"] == "model_rollback"
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
    assert len(webhook.requests) == 1
    (failure,) = events(caplog, DELIVERY_FAILED)
    fields = failure.fields  # type: ignore[attr-defined]
    assert fields["status"] == 500
    assert fields["alert_event"] == "model_promoted"
    assert "HTTP 500" in fields["error"]
    # The webhook's token stays out of the log: only scheme, host and port are named.
    assert "token" not in failure.getMessage()
    assert events(caplog, "model_promoted")


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


def test_run_failure_sensor_posts_the_failed_run(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert alert_sensors == [run_failure_alert]
    assert run_failure_alert.name == "run_failure_alert"
    assert run_failure_alert.default_status == dg.DefaultSensorStatus.RUNNING
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [exploding], instance=instance, partition_key="BTC/USDT", raise_on_error=False
        )
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()
        run_failure_alert(context)

    (request,) = webhook.requests
    body = request["body"]
    assert body["event"] == "run_failed"
    payload = body["payload"]
    assert payload["run_id"] == result.run_id
    assert payload["job_name"] == result.dagster_run.job_name
    assert payload["partition"] == "BTC/USDT"
    assert payload["error"]
    assert "bars are missing for BTC/USDT" in payload["step_errors"]["exploding"]


def test_a_rollback_posts_to_the_webhook(
    webhook: Webhook, brain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from brain_assets.versioning import DecisionPolicy, ModelVersioning

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
    assert body["payload"]["regressed_model_id"] == second
    assert body["payload"]["rolled_back_to"] == first
    assert body["payload"]["metric"] == "sharpe_ratio"
    assert body["payload"]["threshold"] == 0.05
