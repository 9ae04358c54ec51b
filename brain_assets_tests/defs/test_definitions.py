"""The code location's wiring: a snapshot of the graph, schedules and partition keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from brain_assets.definitions import defs
from brain_assets.defs.jobs import daily_retrain_schedule, nightly_feature_analysis_schedule
from brain_assets.defs.partitions import add_symbols, validate_symbol
from brain_assets_tests.paths import REPO

REPO = REPO

EXPECTED_DEPS = {
    "exchange_bars": set(),
    # Lineage only: the bars exchange_bars fetched are what market_data reads from the store.
    "market_data": {"exchange_bars"},
    "data_quality": {"exchange_bars"},
    "features": {"market_data"},
    "trained_models": {"features"},
    "model_evaluation": {"features", "trained_models", "volatility_regime"},
    "registry_entries": {"features", "trained_models", "model_evaluation"},
    "feature_importance": {"features", "trained_models", "registry_entries"},
    "feature_importance_trend": {"registry_entries"},
    "volatility_regime": {"market_data"},
    "live_model_metrics": {"registry_entries"},
    "model_registry_state": {"live_model_metrics"},
}
EXPECTED_CHECKS = {
    ("market_data", "ohlcv_valid", True),
    ("market_data", "ohlcv_gaps", False),
    ("features", "features_valid", True),
    ("model_evaluation", "metrics_valid", True),
    ("feature_importance", "importance_valid", False),
    ("registry_entries", "active_model_fresh", False),
    ("live_model_metrics", "active_not_regressed", False),
    ("live_model_metrics", "live_inputs_in_distribution", False),
}
# Checks defined beside their asset, not in it: judged outside the asset's own run too.
STANDALONE_CHECKS = {("exchange_bars", "bars_fresh")}


def test_graph_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    deps = {
        key.to_user_string(): {parent.to_user_string() for parent in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert deps == EXPECTED_DEPS
    checks = {
        (spec.asset_key.to_user_string(), spec.name, spec.blocking)
        for key in graph.get_all_asset_keys()
        for spec in graph.get(key).assets_def.check_specs
    }
    assert checks == EXPECTED_CHECKS
    # Checks are evaluated inside their asset and partitioned like it: a symbol's run judges
    # that symbol only, and the UI shows each partition's result. bars_fresh (also partitioned)
    # is the one defined beside its asset: a sensor judges it hourly without a run.
    assert {
        (key.asset_key.to_user_string(), key.name)
        for checks in defs.asset_checks or []
        for key in checks.check_keys
    } == STANDALONE_CHECKS
    for key in graph.get_all_asset_keys():
        for spec in graph.get(key).assets_def.check_specs:
            assert spec.partitions_def is not None and spec.partitions_def.name == "symbols"  # type: ignore[attr-defined]
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def is not None and node.partitions_def.name == "symbols"  # type: ignore[attr-defined]
        # The retrain runs one symbol per run (a bad symbol stops only its own run);
        # monitoring and analysis have no blocking checks and batch symbols in one run.
        expected = (
            dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
            if node.group_name in ("daily_retrain", "market_feed")
            else dg.BackfillPolicy.single_run()
        )
        assert node.backfill_policy == expected, key
    assert {job.name for job in defs.jobs or []} == {
        "fetch_bars",
        "daily_retrain",
        "nightly_feature_analysis",
        "monitoring_job",
        "rollback_job",
        "maintenance",
    }
    assert {s.name for s in defs.schedules or []} == {
        "fetch_bars_schedule",
        "daily_retrain_schedule",
        "nightly_feature_analysis_schedule",
        "monitoring_schedule",
        "maintenance_schedule",
    }
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {
        "default_automation_condition_sensor",
        "bars_freshness_sensor",
        "rollback_sensor",
        "publish_run_values",
        "run_failure_alert",
        "alert_outbox",
    }
    assert sensors["rollback_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["default_automation_condition_sensor"].default_status == (
        dg.DefaultSensorStatus.RUNNING
    )
    # The retrain is automated (defs/automation.py); without BRAIN_EXCHANGE, as here, at its tick.
    conditions = {
        key.to_user_string(): graph.get(key).automation_condition
        for key in graph.get_all_asset_keys()
    }
    assert {name for name, condition in conditions.items() if condition} == {
        name for name in EXPECTED_DEPS if graph.get(dg.AssetKey(name)).group_name == "daily_retrain"
    }
    assert conditions["market_data"].get_label() == "retrain_tick(0 1 * * *)"  # type: ignore[union-attr]
    assert conditions["features"].get_label() == "with_the_retrain"  # type: ignore[union-attr]


def test_workspace_points_at_the_definitions() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]
    assert module == {"module_name": "brain_assets.definitions", "attribute": "defs"}


def test_schedules_request_one_run_per_symbol() -> None:
    with dg.instance_for_test() as instance:
        add_symbols(instance, ["BTC/USDT", "ETH/USDT"])
        check_schedules(instance)


def check_schedules(instance: dg.DagsterInstance) -> None:
    for schedule, status in (
        # Stopped: the automation sensor starts the retrain; this is the way back to the clock.
        (daily_retrain_schedule, dg.DefaultScheduleStatus.STOPPED),
        (nightly_feature_analysis_schedule, dg.DefaultScheduleStatus.RUNNING),
    ):
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 1, 2, 1, tzinfo=UTC)
        )
        requests = schedule(context)
        assert [r.partition_key for r in requests] == ["BTC/USDT", "ETH/USDT"]  # type: ignore[union-attr]
        assert len({r.run_key for r in requests}) == 2  # type: ignore[union-attr]
        assert schedule.default_status == status


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("", "empty"),
        ("BTC...USDT", "partition syntax"),
        ("A,B", "partition syntax"),
        ("BTC\tUSDT", "control"),
        (" BTC", "whitespace"),
    ],
)
def test_bad_symbols_are_refused_before_they_become_partitions(symbol: str, message: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(ValueError, match=message):
        add_symbols(instance, ["ETH/USDT", symbol])
    assert instance.get_dynamic_partitions("symbols") == []
    assert (
        validate_symbol("x'); DROP TABLE model_registry;--") == "x'); DROP TABLE model_registry;--"
    )


def test_the_fetch_runs_only_where_an_exchange_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brain_assets.defs.market.jobs import fetch_bars_schedule
    from brain_assets.defs.market.resources import exchange_resource

    # This process has no BRAIN_EXCHANGE: the schedule is defined but stopped.
    assert fetch_bars_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert exchange_resource().exchange == ""
    monkeypatch.setenv("BRAIN_EXCHANGE", "binance")
    monkeypatch.setenv("BRAIN_FETCH_SINCE", "2024-01-01")
    configured = exchange_resource()
    assert isinstance(configured.exchange, dg.EnvVar) or configured.exchange == "binance"


def test_dg_checks_and_lists_the_definitions(tmp_path: Path) -> None:
    """`dg check defs` and `dg list defs` find the code location through pyproject's [tool.dg]."""
    import json
    import subprocess
    import sys

    dg_cli = Path(sys.executable).with_name("dg")
    env = {
        "PATH": f"{dg_cli.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "VIRTUAL_ENV": sys.prefix,
        "DAGSTER_HOME": str(tmp_path),  # an ephemeral instance: nothing runs
    }

    def dg_run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(dg_cli), *argv], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
        )

    checked = dg_run("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = dg_run("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert {a["asset_key"] for a in found["assets"]} == set(EXPECTED_DEPS)
    assert {c["key"] for c in found["asset_checks"]} == {
        f"{a}:{n}" for a, n, *_ in EXPECTED_CHECKS | STANDALONE_CHECKS
    }
    assert "daily_retrain" in {j["name"] for j in found["jobs"]}
