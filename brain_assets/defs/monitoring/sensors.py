"""rollback_sensor: every new live_model_metrics materialisation that regressed gets exactly one
rollback run for its partition."""

import dagster as dg

from brain_assets.defs.monitoring.assets import LIVE_METRICS_KEY
from brain_assets.defs.monitoring.jobs import rollback_job
from brain_assets.defs.partitions import symbols

SYMBOLS = str(symbols.name)

PAGE = 100
MAX_PAGES = 20


@dg.sensor(
    name="rollback_sensor",
    job=rollback_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
    description="Requests rollback_job for a symbol whose live metrics regressed",
)
def rollback_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    # A cursor over storage ids sees every materialisation once; @asset_sensor would only see
    # the latest one and skip a regression followed quickly by another event.
    cursor = int(context.cursor) if context.cursor else None
    requests: dict[str, dg.RunRequest] = {}
    # A symbol removed since its event was written cannot be requested any more (Dagster
    # refuses unknown partition keys, and the failed tick would never move the cursor on).
    known = set(context.instance.get_dynamic_partitions(SYMBOLS))
    for _ in range(MAX_PAGES):
        page = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=LIVE_METRICS_KEY, after_storage_id=cursor),
            limit=PAGE,
            ascending=True,
        )
        for record in page.records:
            cursor = record.storage_id
            materialization = record.asset_materialization
            if materialization is None or materialization.partition is None:
                continue
            regressed = materialization.metadata.get("regressed")
            symbol = materialization.partition
            if regressed is not None and regressed.value is True and symbol in known:
                # The run key names the event: evaluating the same events again requests
                # nothing new, and the rollback itself is a no-op once the model is inactive.
                requests[symbol] = dg.RunRequest(
                    partition_key=symbol,
                    run_key=f"rollback:{symbol}:{record.storage_id}",
                    tags={"brain/trigger": "live_model_metrics", "brain/storage_id": str(cursor)},
                )
        if not page.has_more:
            break
    return dg.SensorResult(
        run_requests=list(requests.values()),
        cursor=None if cursor is None else str(cursor),
    )
