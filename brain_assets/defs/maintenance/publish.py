"""Publication of a run's asset values when the run succeeds (brain_assets.store.asset_values).

Until then other runs never read them. The IO manager also publishes a succeeded run lazily when
it reads, so runs without the daemon (in-process ``materialize``, ``brain demo``) stay correct;
this sensor makes the values visible to readers outside Dagster as soon as the run ends.

No ``from __future__ import annotations`` here: Dagster inspects the context parameter's
annotation at definition time and cannot resolve it from a string.
"""

import dagster as dg

from brain_assets.defs.resources import BrainResource


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="publish_run_values",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
    description=(
        "Publishes the asset values of every run that succeeded: from then on other runs read "
        "them instead of the values published before"
    ),
)
def publish_run_values(context: dg.RunStatusSensorContext, brain: BrainResource) -> None:
    run_id = context.dagster_run.run_id
    published = brain.library.publish_run(run_id)
    if published:
        context.log.info(f"published {published} asset value(s) of run {run_id}")
