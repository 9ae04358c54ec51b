"""Real-looking exchange histories train under the default cleaning policy, a broken feed is
blocked, and a bad symbol never blocks another (brain_assets_tests/data/README.md lists the
defects of each sample file)."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest

from brain_assets.defs.resources import CleaningConfig, MarketDataResource, RetrainResource
from brain_assets.defs.retrain.assets import BLOCKED_TAG
from brain_assets.library import BrainLibrary
from brain_assets.store.embedded import EmbeddedServer
from brain_assets_tests.conftest import TEMPLATE
from brain_assets_tests.dagster_helpers import run_assets
from brain_assets_tests.paths import TEST_DATA

pytestmark = pytest.mark.slow

DATA = TEST_DATA
MARKET = MarketDataResource(source="files", folder=str(DATA))
RETRAIN = RetrainResource(min_rows=500, importance_sample=200, include_lstm=False)
BAR_OUTPUTS = {"market_data", "data_quality"}


@pytest.fixture
def dsn(pg_server: EmbeddedServer) -> str:
    return pg_server.ensure_database(f"i_{uuid.uuid4().hex[:12]}", template=TEMPLATE)


def retrain(
    instance: dg.DagsterInstance, dsn: str, symbols: list[str], **overrides: object
) -> dg.ExecuteInProcessResult:
    options: dict[str, object] = {"market": MARKET, "retrain": RETRAIN, **overrides}
    return run_assets(instance, dsn, symbols, **options)


def materialised(result: dg.ExecuteInProcessResult) -> set[tuple[str, str | None]]:
    return {
        (event.asset_key.to_user_string(), event.partition)
        for event in result.get_asset_materialization_events()
        for event in [event.event_specific_data.materialization]  # type: ignore[union-attr]
    }


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_history_with_bad_prints_duplicates_gaps_and_unsorted_rows_trains(dsn: str) -> None:
    result = retrain(dg.DagsterInstance.ephemeral(), dsn, ["BTC/USD"])
    assert result.success
    assert ("feature_importance", "BTC/USD") in materialised(result)
    checks = evaluations(result)
    assert checks["ohlcv_valid"].passed
    assert checks["ohlcv_valid"].partition == "BTC/USD"  # recorded against the symbol
    # The three missing days stay a gap: a warning that says what it cost.
    assert not checks["ohlcv_gaps"].passed
    with BrainLibrary(dsn) as brain:
        assert brain.get_active_model("BTC/USD") is not None
        logs = brain.get_data_quality_logs("BTC/USD")
        cleaning = logs[logs["check_name"] == "bar_cleaning"].iloc[0]
        assert cleaning["passed"] and cleaning["severity"] == "WARN"
        assert cleaning["failure_count"] == 3  # the bad prints; sorting and the copy lose nothing
        report = cleaning["details"]["cleaning"]
        counts = {a["rule"]: a["count"] for a in report["actions"]}
        assert counts == {"non_positive_price": 3, "unsorted": 1, "duplicate_identical": 1}
        dropped = next(a for a in report["actions"] if a["rule"] == "non_positive_price")
        assert [e["timestamp"][:10] for e in dropped["examples"]] == [
            "2019-06-14",
            "2020-03-13",
            "2021-02-08",
        ]
        gap_log = logs[logs["check_name"] == "ohlcv_gaps"].iloc[0]
        assert gap_log["severity"] == "WARN" and not gap_log["passed"]
        assert "row(s) excluded" in gap_log["details"]["message"]
        health = brain.get_asset_values("data_quality", ["BTC/USD"])["BTC/USD"]
        bars = brain.get_asset_values("market_data", ["BTC/USD"])["BTC/USD"]
    assert health["usable"] is True
    assert (health["raw_rows"], health["clean_rows"]) == (1001, 997)
    assert health["gaps"]["gaps"] == 1 and health["gaps"]["rows_excluded"] > 0
    assert len(bars) == 997 and bars["timestamp"].is_monotonic_increasing
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    features = next(
        e.event_specific_data.materialization  # type: ignore[union-attr]
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "features"
    )
    assert features.metadata["rows_excluded_by_gaps"].value == health["gaps"]["rows_excluded"]


def test_inconsistent_candles_and_conflicting_duplicates_follow_the_policy(dsn: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert retrain(instance, dsn, ["LTC/USD"]).success
    widen = RetrainResource(
        min_rows=500,
        importance_sample=200,
        include_lstm=False,
        model_types=["ridge"],
        cleaning=CleaningConfig(inconsistent_ohlc="widen", duplicates="keep_last"),
    )
    assert retrain(instance, dsn, ["LTC/USD"], retrain=widen).success
    with BrainLibrary(dsn) as brain:
        logs = brain.get_data_quality_logs("LTC/USD")
    reports = [
        d["cleaning"]
        for d, name in zip(logs["details"], logs["check_name"], strict=True)
        if name == "bar_cleaning"
    ]
    newest, oldest = reports  # newest first
    assert {a["rule"]: (a["action"], a["count"]) for a in oldest["actions"]} == {
        "inconsistent_ohlc": ("dropped", 4),
        "duplicate_conflicting": ("dropped", 2),
    }
    assert oldest["clean_rows"] == 995
    assert {a["rule"]: (a["action"], a["count"]) for a in newest["actions"]} == {
        "inconsistent_ohlc": ("widened", 4),
        "duplicate_conflicting": ("kept_last", 1),
    }
    assert newest["clean_rows"] == 1000 and newest["repaired"] == 4


def test_a_broken_feed_is_blocked_and_reported(dsn: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = retrain(instance, dsn, ["BROKEN/USD"])
    assert not result.success  # a blocking failure fails the run, so the failure alert fires
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[BLOCKED_TAG] == "BROKEN/USD"
    assert materialised(result) == {(key, "BROKEN/USD") for key in BAR_OUTPUTS}
    check = evaluations(result)["ohlcv_valid"]
    assert not check.passed
    assert check.metadata["failed_symbols"].value == ["BROKEN/USD"]
    assert "cleaning_limit" in check.metadata["failure_cases"].value
    with BrainLibrary(dsn) as brain:
        assert brain.get_active_model("BROKEN/USD") is None
        assert brain.list_models("BROKEN/USD").empty
        # A failed run's values are never published; read them under its run id.
        health = brain.get_asset_values("data_quality", ["BROKEN/USD"], run_id=result.run_id)[
            "BROKEN/USD"
        ]
        failed = brain.get_data_quality_logs("BROKEN/USD", failed_only=True)
    assert health["usable"] is False
    assert health["cleaning"]["affected"] == 50
    assert set(failed["check_name"]) >= {"bar_cleaning", "ohlcv_valid"}
    valid = failed[failed["check_name"] == "ohlcv_valid"].iloc[0]
    assert valid["severity"] == "ERROR"
    assert "5.00%" in valid["details"]["message"]


def test_the_cleaning_limit_is_a_setting(dsn: str) -> None:
    lenient = RetrainResource(
        min_rows=500,
        importance_sample=200,
        include_lstm=False,
        model_types=["ridge"],
        cleaning=CleaningConfig(max_affected_fraction=0.06),
    )
    result = retrain(dg.DagsterInstance.ephemeral(), dsn, ["BROKEN/USD"], retrain=lenient)
    assert result.success
    disabled = RetrainResource(
        min_rows=500, include_lstm=False, cleaning=CleaningConfig(enabled=False)
    )
    result = retrain(dg.DagsterInstance.ephemeral(), dsn, ["BTC/USD"], retrain=disabled)
    assert not result.success  # raw bad prints reach the schema, which refuses them
    assert not evaluations(result)["ohlcv_valid"].passed


def test_a_bad_symbol_never_blocks_another(dsn: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    # The broken feed is stored first: its market_data partition holds bad bars.
    assert not retrain(instance, dsn, ["BROKEN/USD"]).success

    alone = retrain(instance, dsn, ["ETH/USD"])
    assert alone.success
    check = evaluations(alone)["ohlcv_valid"]
    assert check.passed and check.partition == "ETH/USD"
    # The check judged this run's symbol only, not every symbol ever stored.
    assert "BROKEN/USD" not in check.metadata["results"].value
    with BrainLibrary(dsn) as brain:
        first = brain.get_active_model("ETH/USD")
        assert first is not None

    # Both together, as a backfill or `brain demo` launches them: one run per symbol.
    results = {symbol: retrain(instance, dsn, [symbol]) for symbol in ["BROKEN/USD", "ETH/USD"]}
    assert not results["BROKEN/USD"].success
    assert results["ETH/USD"].success
    with BrainLibrary(dsn) as brain:
        # The same bars again: the versions exist already (idempotent registration).
        assert len(brain.list_models("ETH/USD")) == len(RETRAIN.model_types)
        second = brain.get_active_model("ETH/USD")
        assert second is not None and second.model_id == first.model_id
        assert brain.list_models("BROKEN/USD").empty
        eth_logs = brain.get_data_quality_logs("ETH/USD", limit=1000)
    # Each ETH run logged its own bar checks once (no re-validation of other symbols).
    assert (eth_logs["check_name"] == "ohlcv_valid").sum() == 2
    assert eth_logs["passed"].all() or set(eth_logs.loc[~eth_logs["passed"], "check_name"]) <= {
        "ohlcv_gaps"
    }


def test_a_single_run_over_several_symbols_is_all_or_nothing(dsn: str) -> None:
    """A literal single Dagster run over a partition range (only the Python API makes one; the
    backfill policy splits UI backfills) is one step per asset: a blocking failure stops it
    whole, so nothing trains on bad bars and the check names the bad symbol."""
    result = retrain(dg.DagsterInstance.ephemeral(), dsn, ["BROKEN/USD", "ETH/USD"])
    assert not result.success
    check = evaluations(result)["ohlcv_valid"]
    assert check.metadata["failed_symbols"].value == ["BROKEN/USD"]
    assert {asset for asset, _ in materialised(result)} == BAR_OUTPUTS
    with BrainLibrary(dsn) as brain:
        assert brain.list_models("ETH/USD").empty
        assert brain.list_models("BROKEN/USD").empty
