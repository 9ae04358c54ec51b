"""An IO manager that keeps asset values in PostgreSQL, keyed by the verbatim partition key.

Outputs and inputs are ``{symbol: value}`` dicts, whether a run covers one symbol or many
(a single-run backfill), so assets are written once for both.

Values are kept per run (brain_assets.store.asset_values): a run reads what it wrote itself, else
the published value, which is the latest value of a run that completed successfully; never the
value of another run still going. The ``publish_run_values`` sensor publishes a run's values when
it succeeds; since sensors need the daemon (in-process ``materialize`` and ``brain demo`` have
none), a read also publishes, first, any run with newer values that Dagster reports succeeded.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from brain_assets.defs.resources import BrainResource


def _asset_name(key: dg.AssetKey) -> str:
    return "/".join(key.path)


def _reading_run_id(context: dg.InputContext) -> str | None:
    """The run whose own values this input reads first: the run that produced the upstream output
    (in a re-execution, the parent run that did, for the steps not executed again), else the
    current run. None outside a run."""
    upstream = context.upstream_output
    if upstream is not None:
        try:
            return upstream.run_id
        except dg.DagsterInvariantViolationError:
            pass  # an asset outside this run's selection: Dagster builds no producing run
    try:
        return context.step_context.run_id
    except dg.DagsterInvariantViolationError:
        return None


def _instance(context: dg.InputContext) -> dg.DagsterInstance | None:
    try:
        return context.instance
    except dg.DagsterInvariantViolationError:
        return None


class BrainIOManager(dg.ConfigurableIOManager):
    brain: dg.ResourceDependency[BrainResource]

    def handle_output(self, context: dg.OutputContext, obj: Mapping[str, Any] | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, Mapping):
            raise TypeError(f"{context.asset_key.to_user_string()} must return {{symbol: value}}")
        expected = set(context.asset_partition_keys) if context.has_asset_partitions else {""}
        unknown = set(obj) - expected
        if unknown:
            raise ValueError(f"output has values for symbols outside this run: {sorted(unknown)}")
        self.brain.library.put_asset_values(
            _asset_name(context.asset_key), obj, run_id=context.run_id
        )

    def load_input(self, context: dg.InputContext) -> dict[str, Any]:
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else [""]
        asset = _asset_name(context.asset_key)
        run_id = _reading_run_id(context)
        instance = _instance(context)
        if instance is not None:
            self._publish_succeeded_runs(instance, asset, keys, reader=run_id)
        return self.brain.library.get_asset_values(asset, keys, run_id=run_id)

    def _publish_succeeded_runs(
        self, instance: dg.DagsterInstance, asset: str, keys: list[str], reader: str | None
    ) -> None:
        """Publishes the runs with values newer than the published ones that Dagster reports
        succeeded (what the sensor would have done had it run). Runs still going, failed or
        unknown to this instance stay unpublished."""
        library = self.brain.library
        for run_id in library.unpublished_runs(asset, keys):
            if run_id == reader:
                continue
            run = instance.get_run_by_id(run_id)
            if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
                library.publish_run(run_id)
