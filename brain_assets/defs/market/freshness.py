"""Are each symbol's fetched bars fresh? Judged per symbol (partition) of ``exchange_bars``.

With hourly bars and the daily fetch (00:30 UTC), right after a fetch the newest stored bar is an
hour or two old and just before the next one about 25 hours: older than ``bars_max_age()`` (a day,
a bar and an hour's slack, so 26 hours for hourly bars and 49 for daily ones) means a fetch was
missed or brought nothing, and the symbol's retrain (which waits for new bars,
defs/automation.py) has not run on current data.

Two levels, as Dagster 1.13 offers them:
- ``BARS_FRESHNESS``: the asset's ``FreshnessPolicy`` (what Dagster recommends over freshness
  checks since 1.12), shown on the asset in the UI. It is asset-level: it fails only when no
  symbol at all was fetched within the window.
- ``bars_fresh``: a partitioned asset check, one result per symbol, judged on the newest stored
  bar that the symbol's latest materialisation reports (``LAST_BAR_KEY``; the materialisation's
  own time where it lacks it). It runs after every fetch of a symbol (it rides along in the
  fetch's run) and, without any run, every hour from ``bars_freshness_sensor``, so a symbol
  whose fetch stopped turns red too.

No ``from __future__ import annotations``: Dagster reads the check's context annotation.
"""

import os
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported by dagster
)

from brain_assets.defs.market.resources import exchange_configured
from brain_assets.defs.partitions import symbols
from brain_assets.environment import DEFAULT_TIMEFRAME, MARKET_ENV
from brain_assets.store.bars import TIMEFRAME_SECONDS

FETCH_INTERVAL = timedelta(hours=24)
"""The fetch's schedule: daily."""
SLACK = timedelta(hours=1)
"""How late a fetch may run before its symbols turn stale."""


def bars_max_age(timeframe: str | None = None) -> timedelta:
    """The age beyond which a symbol's newest bar is stale: a day between fetches, the bar
    still forming at the fetch (its open time is one bar before the fetch) and the slack.
    ``timeframe`` defaults to the deployment's (BRAIN_TIMEFRAME, else 1h): 26 hours for hourly
    bars, 49 for daily ones."""
    frame = timeframe or os.environ.get(MARKET_ENV["timeframe"], "").strip() or DEFAULT_TIMEFRAME
    if frame not in TIMEFRAME_SECONDS:
        raise ValueError(f"{MARKET_ENV['timeframe']}: unknown timeframe {frame!r}")
    return FETCH_INTERVAL + timedelta(seconds=TIMEFRAME_SECONDS[frame]) + SLACK


BARS_MAX_AGE = bars_max_age(DEFAULT_TIMEFRAME)
"""The hourly bars' max age (26 hours)."""

LAST_BAR_KEY = "last_bar_at"
"""exchange_bars' metadata: the open time of the newest bar stored for the symbol."""

BARS_KEY = dg.AssetKey("exchange_bars")
CHECK_NAME = "bars_fresh"
CHECK_INTERVAL_SECONDS = 3600
SEVERITY = dg.AssetCheckSeverity.WARN

BARS_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=bars_max_age())


def bars_age(last_bar: datetime, now: datetime) -> timedelta:
    """How old the newest bar is at ``now`` (both timezone-aware)."""
    return now - last_bar


def is_fresh(last_bar: datetime | None, now: datetime, max_age: timedelta | None = None) -> bool:
    """True when a bar exists and is no older than ``max_age`` (default: the deployment's)."""
    limit = bars_max_age() if max_age is None else max_age
    return last_bar is not None and bars_age(last_bar, now) <= limit


def _latest(instance: dg.DagsterInstance, symbol: str) -> dg.EventLogRecord | None:
    page = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BARS_KEY, asset_partitions=[symbol]),
        limit=1,
        ascending=False,
    )
    return page.records[0] if page.records else None


def judge(
    instance: dg.DagsterInstance, symbol: str, now: datetime
) -> tuple[bool, dict[str, Any], dg.EventLogRecord | None]:
    """``symbol``'s verdict at ``now``: passed, the metadata that explains it, and the
    materialisation it was judged on (None: the symbol was never fetched)."""
    record = _latest(instance, symbol)
    materialization = record.asset_materialization if record else None
    if record is None or materialization is None:
        return False, {"reason": "never fetched", "max_age_hours": _hours(bars_max_age())}, None
    reported = materialization.metadata.get(LAST_BAR_KEY)
    if isinstance(reported, dg.TimestampMetadataValue):
        last_bar, judged_on = datetime.fromtimestamp(reported.value, UTC), "newest stored bar"
    else:
        last_bar, judged_on = datetime.fromtimestamp(record.timestamp, UTC), "latest fetch"
    metadata = {
        "last_bar_at": dg.MetadataValue.timestamp(last_bar),
        "judged_on": judged_on,
        "age_hours": _hours(bars_age(last_bar, now)),
        "max_age_hours": _hours(bars_max_age()),
    }
    return is_fresh(last_bar, now), metadata, record


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _bars_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    passed, metadata, _ = judge(context.instance, context.partition_key, datetime.now(UTC))
    return dg.AssetCheckResult(passed=passed, severity=SEVERITY, metadata=metadata)


# A partitioned check (one result per symbol) is a preview feature of Dagster 1.13, used
# deliberately as the retrain's checks do (defs/retrain/checks.py).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    bars_fresh = dg.asset_check(
        asset=BARS_KEY,
        name=CHECK_NAME,
        partitions_def=symbols,
        description=(
            f"The symbol's newest fetched bar is at most {_hours(bars_max_age()):g} hours old; "
            "evaluated after each fetch and hourly by bars_freshness_sensor"
        ),
    )(_bars_fresh)


def evaluation(instance: dg.DagsterInstance, symbol: str, now: datetime) -> dg.AssetCheckEvaluation:
    """``bars_fresh`` for ``symbol`` as an event recorded without a run (the sensor's)."""
    passed, metadata, record = judge(instance, symbol, now)
    target = (
        AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
        )
        if record is not None
        else None
    )
    return dg.AssetCheckEvaluation(
        asset_key=BARS_KEY,
        check_name=CHECK_NAME,
        passed=passed,
        metadata=metadata,
        target_materialization_data=target,
        severity=SEVERITY,
        partition=symbol,
    )


@dg.sensor(
    name="bars_freshness_sensor",
    minimum_interval_seconds=CHECK_INTERVAL_SECONDS,
    # Running only where the deployment fetches (BRAIN_EXCHANGE): elsewhere nothing is fetched
    # and every symbol would be reported stale.
    default_status=(
        dg.DefaultSensorStatus.RUNNING if exchange_configured() else dg.DefaultSensorStatus.STOPPED
    ),
    description="Records bars_fresh for every symbol each hour, without a run",
)
def bars_freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    now = datetime.now(UTC)
    names = context.instance.get_dynamic_partitions(str(symbols.name))
    return dg.SensorResult(asset_events=[evaluation(context.instance, s, now) for s in names])
