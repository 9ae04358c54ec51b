"""Alert sensors: every failed run of this code location becomes a ``run_failed`` alert, and the
``alert_outbox`` sensor delivers the alerts that are waiting in the Brain's outbox.

A ``run_failed`` alert goes through the outbox like a rollback's, so that a webhook that is down
gets it later and ``brain alerts list`` shows it; its run_id is its dedupe key, so a sensor that
evaluates the same run twice writes one alert. When the Brain's database does not answer (often
the very reason the run failed) the alert is posted directly instead, and that fallback logged.

The run-failure sensor opens the Brain itself rather than through a ``BrainResource`` parameter:
Dagster sets a resource up before the sensor's body runs, so an unreachable database would fail
the tick before the fallback could send anything. ``BrainLibrary()`` reaches the same database as
``defs.resources.brain_resource()``: ``$DATABASE_DSN``, else the embedded server.

No ``from __future__ import annotations`` here: Dagster inspects the context parameter's
annotation at definition time and cannot resolve it from a string.
"""

import logging
from typing import Any

import dagster as dg
import psycopg

from brain_assets.alerts import deliver_pending, dispatch_alert, queue_alert, send_alert
from brain_assets.defs.resources import BrainResource
from brain_assets.errors import BrainError
from brain_assets.events import log_event
from brain_assets.library import BrainLibrary
from brain_assets.logs import redact

PARTITION_TAG = "dagster/partition"
RUN_FAILED = "run_failed"
OUTBOX_UNAVAILABLE = "alert_outbox_unavailable"
DATABASE_DOWN = (BrainError, psycopg.OperationalError, psycopg.InterfaceError)
"""What a database that does not answer raises: the library's own errors (cannot connect, the
embedded server does not start, a statement failed on the way), or the driver's when a statement
outside the library's wrapping loses its connection."""
# Step errors can carry long messages (a DataFrame repr); the alert links to the run for detail.
MAX_ERROR_CHARS = 500


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _step_errors(context: dg.RunFailureSensorContext) -> dict[str, str]:
    errors: dict[str, str] = {}
    for event in context.get_step_failure_events():
        data = event.event_specific_data
        error = getattr(data, "error", None)
        # Dagster wraps the asset's exception ("Error occurred while executing op ..."); the
        # innermost cause is the one that says what went wrong.
        while getattr(error, "cause", None) is not None:
            error = error.cause  # type: ignore[union-attr]
        message = getattr(error, "message", None) or event.message or ""
        errors[event.step_key or "?"] = _shorten(str(message).strip())
    return errors


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
    description=(
        "Sends a run_failed alert (log event and webhook) for every failed run, through the "
        "Brain's outbox (posted directly when the database does not answer)"
    ),
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    alert_run_failed(
        run.run_id,
        {
            "run_id": run.run_id,
            "job_name": run.job_name,
            "partition": run.tags.get(PARTITION_TAG),
            "error": _shorten(context.failure_event.message or ""),
            "step_errors": _step_errors(context),
        },
    )


def alert_run_failed(run_id: str, payload: dict[str, Any]) -> None:
    """Queue the run's alert in the outbox (once per run_id) and try to deliver it; post it
    directly when the database does not answer."""
    try:
        brain = BrainLibrary()
    except DATABASE_DOWN as exc:
        _send_directly(run_id, payload, exc)
        return
    with brain:
        try:
            alert = queue_alert(brain, RUN_FAILED, payload, dedupe_key=run_id)
        except DATABASE_DOWN as exc:
            _send_directly(run_id, payload, exc)
            return
        # Not under the fallback's except: once queued the alert is safe (dispatch_alert
        # handles a failed delivery itself), and a direct post as well would send it twice.
        dispatch_alert(brain, alert)


def _send_directly(run_id: str, payload: dict[str, Any], exc: Exception) -> None:
    log_event(
        OUTBOX_UNAVAILABLE,
        logging.WARNING,
        alert_event=RUN_FAILED,
        run_id=run_id,
        error=redact(f"{type(exc).__name__}: {exc}"),
        fallback="posted directly, not kept in the outbox",
    )
    send_alert(RUN_FAILED, payload)


@dg.sensor(
    name="alert_outbox",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description=(
        "Posts the alerts waiting in the Brain's outbox (a rollback's alert whose immediate "
        "delivery failed) to the webhook, with exponential backoff between attempts"
    ),
)
def alert_outbox(context: dg.SensorEvaluationContext, brain: BrainResource) -> dg.SkipReason:
    # The pass is bounded (alerts.DELIVERY_DEADLINE_S), well inside a sensor tick's time limit;
    # whatever it did not reach is due again on the next tick.
    report = deliver_pending(brain.library)
    return dg.SkipReason(report.summary())


alert_sensors = [run_failure_alert, alert_outbox]
