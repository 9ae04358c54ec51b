"""Alert sensors: every failed run of this code location becomes a ``run_failed`` alert, and the
``alert_outbox`` sensor delivers the alerts that are waiting in the Brain's outbox.

No ``from __future__ import annotations`` here: Dagster inspects the context parameter's
annotation at definition time and cannot resolve it from a string.
"""

import dagster as dg

from brain_assets.alerts import deliver_pending, send_alert
from brain_assets.defs.resources import BrainResource

PARTITION_TAG = "dagster/partition"
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
    description="Sends a run_failed alert (log event and webhook) for every failed run",
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    send_alert(
        "run_failed",
        {
            "run_id": run.run_id,
            "job_name": run.job_name,
            "partition": run.tags.get(PARTITION_TAG),
            "error": _shorten(context.failure_event.message or ""),
            "step_errors": _step_errors(context),
        },
    )


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
