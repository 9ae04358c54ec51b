"""Sensor-driven rollback: the sensor on a real instance, then the whole flow in process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from brain_assets.definitions import defs
from brain_assets.defs.monitoring.assets import live_model_metrics, model_registry_state
from brain_assets.defs.monitoring.jobs import rollback_job
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.monitoring.sensors import rollback_sensor
from brain_assets.defs.resources import MarketDataResource
from brain_assets.market_data.synthetic import generate_ohlcv
from brain_assets.store.library import BrainLibrary
from brain_assets.versioning import ModelVersioning
from brain_assets_tests.dagster_helpers import resources, run_assets

SYMBOL = "BTC/USDT"


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
        first_key = result.run_requests[0].run_key  # type: ignore[index]
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


def anti_persistent(frame: pd.DataFrame, after: pd.Timestamp) -> pd.DataFrame:
    """Bars after ``after`` with every other return's sign flipped: momentum becomes reversal,
    so a model that learnt momentum loses money there."""
    frame = frame.copy()
    returns = frame["close"].pct_change().fillna(0.0).to_numpy()
    late = (frame["timestamp"] > after).to_numpy()
    flip = np.where(np.arange(len(frame)) % 2 == 0, 1.0, -1.0)
    new_returns = np.where(late, returns * flip, returns)
    close = frame["close"].iloc[0] * np.cumprod(1 + new_returns)
    ratio_high = frame["high"] / frame[["open", "close"]].max(axis=1)
    ratio_low = frame["low"] / frame[["open", "close"]].min(axis=1)
    frame["close"] = close
    frame["open"] = np.r_[close[0], close[:-1]]
    frame["high"] = frame[["open", "close"]].max(axis=1) * ratio_high
    frame["low"] = frame[["open", "close"]].min(axis=1) * ratio_low
    return frame


def write(folder: Path, frame: pd.DataFrame) -> None:
    out = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.to_csv(folder / "BTC-USDT.csv", index=False)


@pytest.mark.slow
def test_regression_rolls_back_to_the_previous_version(brain_dsn: str, tmp_path: Path) -> None:
    frame, _ = generate_ohlcv(SYMBOL, seed=7, n_bars=1400, bar="1h", start="2024-01-01")
    write(tmp_path, frame)
    market = MarketDataResource(source="files", folder=str(tmp_path))
    monitoring = MonitoringResource(rollback_threshold=0.05)
    with dg.instance_for_test() as instance:
        # Two days of retrains (the second with a day of new bars: the same bars would register
        # nothing new); the second day's best trades.
        for bars in (1376, 1400):
            write(tmp_path, frame.head(bars))
            assert run_assets(instance, brain_dsn, [SYMBOL], market=market).success
        with BrainLibrary(brain_dsn) as brain:
            models = brain.list_models(SYMBOL)
            day_two = models[models["version"] > 3]
            best = day_two.sort_values("composite_score", ascending=False).iloc[0]
            if not best["is_active"]:
                ModelVersioning(brain).promote(best["model_id"], reason="test: day two")
            before = brain.get_active_model(SYMBOL)
            history = brain.get_activation_history(SYMBOL)
        assert before is not None and before["version"] > 3
        activated = history[history["action"] == "activated"]["model_id"]
        previous = activated[activated != before["model_id"]].iloc[-1]
        assert previous != before["model_id"]

        healthy = run_assets(
            instance,
            brain_dsn,
            [SYMBOL],
            assets=[live_model_metrics],
            market=market,
            monitoring=monitoring,
        )
        assert healthy.success
        result = rollback_sensor(dg.build_sensor_context(instance=instance))
        assert result.run_requests == []  # type: ignore[union-attr]

        write(tmp_path, anti_persistent(frame, pd.Timestamp(before["training_end"])))
        regressed = run_assets(
            instance,
            brain_dsn,
            [SYMBOL],
            assets=[live_model_metrics],
            market=market,
            monitoring=monitoring,
        )
        assert regressed.success
        result = rollback_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))  # type: ignore[union-attr]
        requests = result.run_requests or []  # type: ignore[union-attr]
        assert [r.partition_key for r in requests] == [SYMBOL]

        # Launch what the sensor asked for: rollback_job, for that partition.
        job_defs = dg.Definitions(
            assets=[live_model_metrics, model_registry_state],
            jobs=[rollback_job],
            resources=resources(brain_dsn, market=market, monitoring=monitoring),
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
    assert active is not None and active["model_id"] == previous
    last = history.iloc[-2:]
    assert last["action"].tolist() == ["deactivated", "activated"]
    assert set(last["reason"]) == {"rollback"}
    assert last["details"].iloc[-1]["regressed_model_id"] == before["model_id"]
