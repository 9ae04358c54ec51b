"""An IO manager that keeps asset values in PostgreSQL, keyed by the verbatim partition key.

Outputs and inputs are ``{symbol: value}`` dicts, whether a run covers one symbol or many
(a single-run backfill), so assets are written once for both.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from brain_assets.defs.resources import BrainResource


def _asset_name(key: dg.AssetKey) -> str:
    return "/".join(key.path)


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
        return self.brain.library.get_asset_values(_asset_name(context.asset_key), keys)
