"""Running the asset graph in process against a test database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from brain_assets.defs.analysis.assets import feature_importance_trend
from brain_assets.defs.io_manager import BrainIOManager
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.partitions import add_symbols
from brain_assets.defs.resources import (
    BrainResource,
    DecisionResource,
    MarketDataResource,
    RetrainResource,
)
from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
from brain_assets.library import BrainLibrary

NO_FLOOR = DecisionResource(floor_min_composite=None, floor_confidence=None)
"""Every version may trade: for tests of the graph's plumbing on small synthetic markets, where
no model shows credible skill and the default policy would (rightly) stand every symbol aside."""
FAST_RETRAIN = RetrainResource(min_rows=500, importance_sample=250, include_lstm=False)
SMALL_MARKET = MarketDataResource(source="synthetic", n_bars=1200)


def resources(
    dsn: str,
    market: MarketDataResource = SMALL_MARKET,
    retrain: RetrainResource = FAST_RETRAIN,
    monitoring: MonitoringResource | None = None,
    decisions: DecisionResource | None = None,
) -> dict[str, Any]:
    brain = BrainResource(dsn=dsn)
    return {
        "brain": brain,
        "brain_io_manager": BrainIOManager(brain=brain),
        "market": market,
        "retrain": retrain,
        "monitoring": monitoring or MonitoringResource(),
        # Tests of the graph default to NO_FLOOR; the policy's own tests pass DecisionResource().
        "decisions": decisions or NO_FLOOR,
    }


def run_assets(
    instance: dg.DagsterInstance,
    dsn: str,
    symbols: Sequence[str],
    assets: Sequence[Any] | None = None,
    selection: Sequence[Any] | None = None,
    **overrides: Any,
) -> dg.ExecuteInProcessResult:
    """One run over ``symbols`` (a single-run backfill when there are several)."""
    add_symbols(instance, symbols)
    tags = {}
    partition_key = None
    if len(symbols) == 1:
        partition_key = symbols[0]
    else:
        tags = {
            "dagster/asset_partition_range_start": symbols[0],
            "dagster/asset_partition_range_end": symbols[-1],
        }
    result = dg.materialize(
        assets if assets is not None else DAILY_RETRAIN_ASSETS,
        instance=instance,
        resources=resources(dsn, **overrides),
        partition_key=partition_key,
        tags=tags,
        selection=selection,
        raise_on_error=False,
    )
    if result.success:
        # What publish_run_values does under the daemon: the run's values become the ones
        # direct BrainLibrary reads (and later runs) see.
        with BrainLibrary(dsn) as brain:
            brain.publish_run(result.run_id)
    return result


def run_nightly(instance: dg.DagsterInstance, dsn: str, symbol: str) -> dg.ExecuteInProcessResult:
    return run_assets(instance, dsn, [symbol], assets=[feature_importance_trend])


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }
