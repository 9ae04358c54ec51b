"""``brain alerts list`` and ``brain alerts retry`` against a real database and a local webhook."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from brain_assets.alerts import (
    ALERT_WEBHOOK_ENV,
    MAX_AGE_ENV,
    REQUEUED,
    deliver_pending,
    queue_alert,
)
from brain_assets.cli.main import main
from brain_assets.library import BrainLibrary
from brain_assets.logs import LOGGER_NAME, remove_logging
from brain_assets_tests.webhook import Webhook, events, serve_webhook


@pytest.fixture(autouse=True)
def detach_cli_logging() -> Iterator[None]:
    """main() attaches a console handler to the stderr capsys swaps in for the test; left
    attached, later log lines would go to that closed stream."""
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    yield
    remove_logging()
    logger.setLevel(level)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


@pytest.fixture
def outbox(brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """One alert in each state: delivered, given up (with an error), pending (two)."""
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)
    monkeypatch.delenv(MAX_AGE_ENV, raising=False)
    ids = {
        name: queue_alert(brain, "model_rollback", {"symbol": symbol}).alert_id
        for name, symbol in (
            ("delivered", "A/X"),
            ("given_up", "B/X"),
            ("pending", "C/X"),
            ("waiting", "D/X"),
        )
    }
    with psycopg.connect(brain_dsn) as conn:
        conn.execute(
            """UPDATE alert_outbox SET delivered_at = clock_timestamp(), attempts = 1,
                   next_attempt_at = NULL WHERE id = %s""",
            (ids["delivered"],),
        )
        conn.execute(
            """UPDATE alert_outbox SET attempts = 40, last_error = 'HTTP 503 Service Unavailable',
                   created_at = clock_timestamp() - interval '10 days' WHERE id = %s""",
            (ids["given_up"],),
        )
        # Backoff running: not due for half an hour.
        conn.execute(
            """UPDATE alert_outbox SET attempts = 2, last_error = 'HTTP 500',
                   next_attempt_at = clock_timestamp() + interval '30 minutes' WHERE id = %s""",
            (ids["waiting"],),
        )
    # The old one is given up the way the sensor does it.
    assert deliver_pending(brain).abandoned == [ids["given_up"]]
    return ids


def rows(dsn: str) -> dict[int, dict[str, Any]]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM alert_outbox ORDER BY id")
        return {row["id"]: row for row in cur.fetchall()}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> Any:
    assert main([*argv, "--json"]) == status
    return json.loads(capsys.readouterr().out)


def test_list_shows_pending_alerts_by_default_and_all_with_all(
    outbox: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    pending = run_json(capsys, "alerts", "list")
    assert [r["id"] for r in pending] == [outbox["waiting"], outbox["pending"]]  # newest first
    waiting = pending[0]
    assert waiting["state"] == "pending" and waiting["event"] == "model_rollback"
    assert waiting["symbol"] == "D/X" and waiting["attempts"] == 2
    assert waiting["last_error"] == "HTTP 500" and waiting["next_attempt_at"]
    assert waiting["created_at"] and waiting["payload"] == {"symbol": "D/X"}
    assert waiting["gives_up_at"] > waiting["created_at"]

    every = run_json(capsys, "alerts", "list", "--all")
    states = {r["id"]: r["state"] for r in every}
    assert states == {
        outbox["delivered"]: "delivered",
        outbox["given_up"]: "given_up",
        outbox["pending"]: "pending",
        outbox["waiting"]: "pending",
    }
    given_up = next(r for r in every if r["id"] == outbox["given_up"])
    assert given_up["gave_up_at"] and given_up["gives_up_at"] is None
    assert given_up["last_error"].startswith("not delivered within 3 days (last error: HTTP 503")

    # For people: a table with the id, event, creation, attempts, state and last error.
    assert main(["alerts", "list", "--all"]) == 0
    text = capsys.readouterr().out
    header = text.splitlines()[1].split()
    assert header == [
        "id",
        "event",
        "symbol",
        "created",
        "attempts",
        "state",
        "next_attempt",
        "gives_up",
        "last_error",
    ]
    assert "given_up" in text and "delivered" in text and "not delivered within 3" in text
    assert text.startswith("4 alerts, newest first") and MAX_AGE_ENV in text


def test_list_of_an_empty_outbox_says_so(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    assert main(["alerts", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no pending alerts"
    assert run_json(capsys, "alerts", "list", "--all") == []


def test_list_names_a_bad_maximum_age(
    outbox: dict[str, int], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv(MAX_AGE_ENV, "a week")
    assert main(["alerts", "list"]) == 2
    assert (
        f"{MAX_AGE_ENV} must be a number of days > 0 (such as 3), got 'a week'"
        in capsys.readouterr().err
    )


def test_retry_delivers_a_given_up_alert(
    outbox: dict[str, int],
    brain_dsn: str,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="brain_assets")
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    before = rows(brain_dsn)
    result = run_json(capsys, "alerts", "retry", str(outbox["given_up"]))
    assert result["requeued"] == result["delivered"] == [outbox["given_up"]]
    assert result["failed"] == result["not_reached"] == []
    (alert,) = result["alerts"]
    assert alert["outcome"] == "delivered" and alert["state"] == "delivered"
    assert alert["attempts"] == 41

    (request,) = webhook.requests
    assert request["body"]["alert_id"] == outbox["given_up"]
    assert request["body"]["payload"] == {"symbol": "B/X"}
    after = rows(brain_dsn)
    row = after[outbox["given_up"]]
    assert row["delivered_at"] is not None and row["gave_up_at"] is None
    assert row["retried_at"] is not None and row["next_attempt_at"] is None
    # The others are untouched (the pending one is due, but retry sends only what it was given).
    for name in ("delivered", "pending", "waiting"):
        assert after[outbox[name]] == before[outbox[name]], name
    (requeued,) = events(caplog, REQUEUED)
    assert requeued.fields == {"alert_ids": [outbox["given_up"]]}  # type: ignore[attr-defined]


def test_retry_that_fails_again_keeps_the_alert_pending_with_a_fresh_age(
    outbox: dict[str, int],
    brain: BrainLibrary,
    brain_dsn: str,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    webhook.status = 502
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    assert main(["alerts", "retry", str(outbox["given_up"])]) == 1
    out = capsys.readouterr().out
    assert out.startswith("0 of 1 delivered; 1 failed and will be tried again")
    assert "failed" in out and "HTTP 502" in out
    row = rows(brain_dsn)[outbox["given_up"]]
    assert row["gave_up_at"] is None and row["next_attempt_at"] is not None
    assert row["last_error"].startswith("HTTP 502") and row["attempts"] == 41
    # Created ten days ago, but retried now: the sensor's next pass does not give it up again.
    assert deliver_pending(brain).abandoned == []
    assert rows(brain_dsn)[outbox["given_up"]]["gave_up_at"] is None


def test_retry_all_given_up_and_all(
    outbox: dict[str, int],
    brain_dsn: str,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    only_given_up = run_json(capsys, "alerts", "retry", "--all-given-up")
    assert only_given_up["delivered"] == [outbox["given_up"]]
    assert rows(brain_dsn)[outbox["waiting"]]["delivered_at"] is None

    everything = run_json(capsys, "alerts", "retry", "--all")
    # The pending ones, the one still in its backoff included, oldest first; never a delivered
    # alert a second time.
    assert everything["delivered"] == [outbox["pending"], outbox["waiting"]]
    assert [r["body"]["alert_id"] for r in webhook.requests] == [
        outbox["given_up"],
        outbox["pending"],
        outbox["waiting"],
    ]
    assert main(["alerts", "retry", "--all"]) == 0
    assert capsys.readouterr().out.strip() == "no alert to retry"


def test_retry_of_unknown_or_delivered_ids_changes_nothing(
    outbox: dict[str, int],
    brain_dsn: str,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    before = rows(brain_dsn)
    assert main(["alerts", "retry", str(outbox["given_up"]), "998", "999"]) == 2
    assert "unknown alert ids 998, 999" in capsys.readouterr().err
    assert main(["alerts", "retry", str(outbox["pending"]), str(outbox["delivered"])]) == 2
    err = capsys.readouterr().err
    assert f"alert {outbox['delivered']} was delivered at" in err and "nothing to retry" in err
    assert main(["alerts", "retry", "0"]) == 2
    assert "alert id must be at least 1" in capsys.readouterr().err
    assert rows(brain_dsn) == before and webhook.requests == []


def test_retry_needs_a_webhook_and_a_choice(
    outbox: dict[str, int],
    brain_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = rows(brain_dsn)
    assert main(["alerts", "retry", str(outbox["given_up"])]) == 1
    assert f"set {ALERT_WEBHOOK_ENV}; no alert was changed" in capsys.readouterr().err
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, "file:///tmp/hook?token=abc")
    assert main(["alerts", "retry", "--all"]) == 2
    err = capsys.readouterr().err
    assert "unsupported URL scheme 'file'" in err and "token" not in err
    assert main(["alerts", "retry"]) == 2
    assert "give the ids of the alerts to retry" in capsys.readouterr().err
    assert main(["alerts", "retry", "3", "--all"]) == 2
    assert "not both" in capsys.readouterr().err
    assert rows(brain_dsn) == before
    with pytest.raises(SystemExit) as refused:
        main(["alerts", "retry", "--all", "--all-given-up"])
    assert refused.value.code == 2
