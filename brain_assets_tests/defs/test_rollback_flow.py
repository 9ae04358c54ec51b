"""Sensor-driven rollback: the sensor on a real instance, then the whole flow in process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from brain_assets.definitions import defs
from brain_assets.defs.monitoring.assets import live_model_metrics, model_registry_state
from brain_assets.defs.monitoring.jobs import rollback_job
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.monitoring.sensors import rollback_sensor
from brain_assets.defs.resources import DecisionResource, MarketDataResource, RetrainResource
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.market_data.synthetic import signal_market
from brain_assets_tests.dagster_helpers import check_results, resources, run_assets
from brain_assets_tests.reversed_model import register_reversed_model, write

SYMBOL = "BTC/USDT"
POLICY = DecisionResource()  # the default policy: floor, paired promotion, significance


def report(instance: dg.DagsterInstance, symbol: str, regressed: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="live_model_metrics", partition=symbol, metadata={"regressed": regressed}
        )
    )


def test_sensor_requests_one_rollback_for_a_regressed_partition_only() -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", [SYMBOL, "ETH/USDT"])
        report(instance, "ETH/USDT", regressed=False)
        report(instance, SYMBOL, regressed=True)
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        result = rollback_sensor(context)
        assert isinstance(result, dg.SensorResult)
        assert [(r.partition_key, r.job_name) for r in result.run_requests or []] == [
            (SYMBOL, None)
        ]
        assert rollback_sensor.job_name == "rollback_job"
        first_key = result.run_requests[0].run_key
        # Evaluated again from its cursor, the sensor sees nothing new and requests nothing.
        again = rollback_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert again.run_requests == []  # type: ignore[union-attr]
        # Evaluated again from the start (a lost cursor), it names the same event: Dagster
        # drops a run whose run_key it has already launched.
        replay = rollback_sensor(dg.build_sensor_context(instance=instance))
        assert [r.run_key for r in replay.run_requests or []] == [first_key]  # type: ignore[union-attr]
        report(instance, SYMBOL, regressed=True)
        later = rollback_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert [r.partition_key for r in later.run_requests or []] == [SYMBOL]  # type: ignore[union-attr]
        assert later.run_requests[0].run_key != first_key  # type: ignore[index,union-attr]


def test_sensor_skips_a_symbol_removed_since_its_event() -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", [SYMBOL, "GONE/USDT"])
        report(instance, "GONE/USDT", regressed=True)
        instance.delete_dynamic_partition("symbols", "GONE/USDT")
        report(instance, SYMBOL, regressed=True)
        result = rollback_sensor(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in result.run_requests or []] == [SYMBOL]  # type: ignore[union-attr]
        assert result.cursor is not None  # type: ignore[union-attr]


@pytest.mark.slow
def test_regression_rolls_back_to_the_previous_version(brain_dsn: str, tmp_path: Path) -> None:
    # A market of constant statistics: a model that learnt it keeps working.
    frame = signal_market(3000, momentum=0.2, seed=3)
    market = MarketDataResource(source="files", folder=str(tmp_path))
    retrain = RetrainResource(model_types=["ridge", "random_forest"], fee_bps=5.0)
    # Six weeks of new bars, all judged: enough for the previous version to be credibly good
    # on them, which a rollback to it requires.
    monitoring = MonitoringResource(min_bars=120, window_bars=1000)
    with dg.instance_for_test() as instance:
        write(tmp_path, frame.head(2000))
        day_one = run_assets(
            instance, brain_dsn, [SYMBOL], market=market, retrain=retrain, decisions=POLICY
        )
        assert day_one.success
        with BrainLibrary(brain_dsn) as brain:
            previous = brain.get_active_model(SYMBOL)
            assert previous is not None, brain.trading_status(SYMBOL).reason
            # An operator puts a broken model live (it predicts the wrong sign).
            broken = register_reversed_model(brain, frame.head(2000), previous)
            ModelVersioning(brain).promote(broken, reason="test: operator")

        # New bars: the broken model loses on them, the previous one does not.
        write(tmp_path, frame.head(3000))
        regressed = run_assets(
            instance,
            brain_dsn,
            [SYMBOL],
            assets=[live_model_metrics],
            market=market,
            retrain=retrain,
            monitoring=monitoring,
            decisions=POLICY,
        )
        assert regressed.success
        # The UI shows the verdict as a (warning) check on the partition too.
        assert check_results(regressed) == {
            "active_not_regressed": False,
            "live_inputs_in_distribution": True,
        }
        result = rollback_sensor(dg.build_sensor_context(instance=instance))
        requests = result.run_requests or []  # type: ignore[union-attr]
        assert [r.partition_key for r in requests] == [SYMBOL]

        # Launch what the sensor asked for: rollback_job, for that partition.
        job_defs = dg.Definitions(
            assets=[live_model_metrics, model_registry_state],
            jobs=[rollback_job],
            resources=resources(
                brain_dsn,
                market=market,
                retrain=retrain,
                monitoring=monitoring,
                decisions=POLICY,
            ),
        )
        job = job_defs.resolve_job_def(str(rollback_sensor.job_name))
        rollback = job.execute_in_process(
            instance=instance, partition_key=requests[0].partition_key
        )
        assert rollback.success
        materialised = {
            e.asset_key.to_user_string() for e in rollback.get_asset_materialization_events()
        }
        assert materialised == {"model_registry_state"}
    with BrainLibrary(brain_dsn) as brain:
        active = brain.get_active_model(SYMBOL)
        history = brain.get_activation_history(SYMBOL)
        best = brain.get_best_model(SYMBOL)
    assert active is not None and active.model_id == previous.model_id
    last = history.iloc[-2:]
    assert last["action"].tolist() == ["deactivated", "activated"]
    assert set(last["reason"]) == {"rollback"}
    details = last["details"].iloc[-1]
    assert details["regressed_model_id"] == broken
    assert details["p_value"] < 0.05 and details["trigger"] == "metric_regression"
    # The rolled-back version is out of the running for "best" too.
    assert best is not None and best.model_id != broken
