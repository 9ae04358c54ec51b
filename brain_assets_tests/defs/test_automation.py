"""What starts a symbol's retrain: its new bars where the deployment fetches, else the 01:00 tick.

The conditions are evaluated as the daemon's sensor does (``evaluate_automation_conditions``,
the cursor carried from tick to tick) against an ephemeral instance; the fetch is stood in for by
a materialisation of the symbol's ``exchange_bars`` partition recorded without a run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests,  # how the sensor turns requested partitions into runs
)

from brain_assets.definitions import build_resources
from brain_assets.defs.automation import (
    AUTOMATION_SENSOR,
    RETRAIN_CRON,
    automate_retrain,
    automation_sensor,
)
from brain_assets.defs.market.assets import exchange_bars
from brain_assets.defs.partitions import DAILY_RETRAIN_GROUP, add_symbols
from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS

BTC, ETH = "BTC/USDT", "ETH/USDT"


def code_location(*, fetch: bool) -> dg.Definitions:
    return dg.Definitions(
        assets=[exchange_bars, *automate_retrain(DAILY_RETRAIN_ASSETS, fetch=fetch)],
        sensors=[automation_sensor],
        resources=build_resources(),
    )


def retrain_keys(defs: dg.Definitions) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == DAILY_RETRAIN_GROUP}


class Ticks:
    """The automation sensor's successive evaluations, its cursor carried between them."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursor: AssetDaemonCursor | None = None
        self.last: dg.EvaluateAutomationConditionsResult | None = None

    def __call__(self, at: datetime | None = None) -> dict[str, set[str | None]]:
        """One tick: the partitions requested, by asset (only assets with a request)."""
        self.last = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=at
        )
        self.cursor = self.last.cursor
        graph = self.defs.resolve_asset_graph()
        requested = {
            key.to_user_string(): set(self.last.get_requested_partitions(key))
            for key in graph.get_all_asset_keys()
        }
        return {name: keys for name, keys in requested.items() if keys}

    def runs(self) -> Sequence[dg.RunRequest]:
        assert self.last is not None
        return build_run_requests(
            list(self.last._requested_subsets),  # what the sensor builds its runs from
            self.defs.resolve_asset_graph(),
            run_tags={},
            emit_backfills=False,
        )


def materialise(instance: dg.DagsterInstance, asset: str, symbol: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=symbol))


@pytest.fixture
def instance() -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, [BTC, ETH])
    return instance


def test_new_bars_start_that_symbols_retrain_once(instance: dg.DagsterInstance) -> None:
    defs = code_location(fetch=True)
    retrain = {key.to_user_string() for key in retrain_keys(defs)}
    tick = Ticks(defs, instance)
    # No bars fetched yet: nothing to retrain on.
    assert tick() == {}
    materialise(instance, "exchange_bars", BTC)
    # BTC/USDT's whole retrain (and nothing of ETH/USDT), in one run for that partition.
    assert tick() == {name: {BTC} for name in retrain}
    [run] = tick.runs()
    assert run.partition_key == BTC
    assert {key.to_user_string() for key in run.asset_selection or []} == retrain
    # The same arrival is not acted on twice, nor is the retrain's own output an arrival.
    assert tick() == {}
    for name in retrain:
        materialise(instance, name, BTC)
    assert tick() == {}
    # The next day's bars: the next retrain, of the symbols that got them.
    materialise(instance, "exchange_bars", ETH)
    assert tick() == {name: {ETH} for name in retrain}
    assert tick() == {}


def test_bars_fetched_twice_before_a_tick_start_one_retrain(
    instance: dg.DagsterInstance,
) -> None:
    tick = Ticks(code_location(fetch=True), instance)
    tick()
    materialise(instance, "exchange_bars", BTC)
    materialise(instance, "exchange_bars", BTC)
    assert tick()["market_data"] == {BTC}
    assert len(tick.runs()) == 1


def test_bars_arriving_during_a_retrain_wait_for_it_to_end(instance: dg.DagsterInstance) -> None:
    defs = code_location(fetch=True)
    tick = Ticks(defs, instance)
    tick()
    first = {dg.AssetKey("market_data"), dg.AssetKey("data_quality")}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=first)
    running = instance.create_run_for_job(
        job,
        asset_selection=frozenset(first),
        tags={"dagster/partition": BTC},
        status=dg.DagsterRunStatus.STARTED,
    )
    materialise(instance, "exchange_bars", BTC)
    assert tick() == {}  # never two retrains of one symbol at once
    instance.report_run_failed(running)
    # The arrival was kept: one retrain once the other has ended.
    assert tick()["market_data"] == {BTC}
    assert tick() == {}


def test_without_a_fetch_the_retrain_keeps_its_daily_tick(instance: dg.DagsterInstance) -> None:
    assert RETRAIN_CRON == "0 1 * * *"
    defs = code_location(fetch=False)
    retrain = {key.to_user_string() for key in retrain_keys(defs)}
    tick = Ticks(defs, instance)
    assert tick(datetime(2026, 1, 2, 0, 50, tzinfo=UTC)) == {}
    assert tick(datetime(2026, 1, 2, 0, 59, tzinfo=UTC)) == {}
    # At the tick: every symbol's retrain, one run per symbol.
    assert tick(datetime(2026, 1, 2, 1, 0, 30, tzinfo=UTC)) == {
        name: {BTC, ETH} for name in retrain
    }
    assert sorted(run.partition_key or "" for run in tick.runs()) == [BTC, ETH]
    # Only at the tick: not again that day, and new bars change nothing here.
    assert tick(datetime(2026, 1, 2, 1, 1, tzinfo=UTC)) == {}
    materialise(instance, "exchange_bars", BTC)
    assert tick(datetime(2026, 1, 2, 12, 0, tzinfo=UTC)) == {}
    assert tick(datetime(2026, 1, 3, 0, 59, tzinfo=UTC)) == {}
    assert tick(datetime(2026, 1, 3, 1, 0, 30, tzinfo=UTC)) == {
        name: {BTC, ETH} for name in retrain
    }


def test_the_sensor_evaluates_every_condition_and_runs_by_default() -> None:
    assert automation_sensor.name == AUTOMATION_SENSOR
    assert isinstance(automation_sensor, dg.AutomationConditionSensorDefinition)
    assert automation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # Runs, not backfills: one run per symbol, as the schedules launch them.
    assert not automation_sensor.emit_backfills
    # Only the retrain is automated; the fetch keeps its schedule.
    defs = code_location(fetch=True)
    graph = defs.resolve_asset_graph()
    automated = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition}
    assert automated == retrain_keys(defs)


def test_a_deployment_with_an_exchange_retrains_on_new_bars(tmp_path: Path) -> None:
    """The code location reads BRAIN_EXCHANGE when it loads: a fresh process with it set."""
    probe = (
        "from brain_assets.definitions import defs\n"
        "graph = defs.resolve_asset_graph()\n"
        "import dagster as dg\n"
        "print(graph.get(dg.AssetKey('market_data')).automation_condition.get_label())\n"
        "sensors = {s.name: s.default_status.value for s in defs.sensors}\n"
        "print(sensors['bars_freshness_sensor'], sensors['default_automation_condition_sensor'])\n"
    )
    env = {**os.environ, "BRAIN_EXCHANGE": "binance", "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["new_bars", "RUNNING", "RUNNING"]
