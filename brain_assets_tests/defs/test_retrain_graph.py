"""The daily retrain materialised in process against the real embedded PostgreSQL."""

from __future__ import annotations

import dagster as dg
import pytest

from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
from brain_assets.library import BrainLibrary
from brain_assets_tests.dagster_helpers import NO_FLOOR, check_results, run_assets, run_nightly

pytestmark = pytest.mark.slow

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture(scope="module")
def retrained(
    pg_server: object, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dg.DagsterInstance, str, dg.ExecuteInProcessResult]:
    import uuid

    from brain_assets_tests.conftest import TEMPLATE

    name = f"m_{uuid.uuid4().hex[:12]}"
    dsn = pg_server.ensure_database(name, template=TEMPLATE)  # type: ignore[attr-defined]
    instance = dg.DagsterInstance.ephemeral()
    result = run_assets(instance, dsn, SYMBOLS, decisions=NO_FLOOR)
    return instance, dsn, result


def test_one_run_materialises_every_asset_for_both_symbols(retrained) -> None:  # type: ignore[no-untyped-def]
    _, _, result = retrained
    assert result.success
    materialised = {
        (event.asset_key.to_user_string(), event.partition)
        for event in result.get_asset_materialization_events()
        for event in [event.event_specific_data.materialization]  # type: ignore[union-attr]
    }
    keys = {key.to_user_string() for asset in DAILY_RETRAIN_ASSETS for key in asset.keys}
    assert "data_quality" in keys
    for key in keys:
        for symbol in SYMBOLS:
            assert (key, symbol) in materialised
    assert check_results(result) == {
        "ohlcv_valid": True,
        "ohlcv_gaps": True,
        "features_valid": True,
        "metrics_valid": True,
        "importance_valid": True,
        "active_model_fresh": True,
    }


def test_store_holds_models_metrics_importance_and_quality(retrained) -> None:  # type: ignore[no-untyped-def]
    _, dsn, _ = retrained
    with BrainLibrary(dsn) as brain:
        for symbol in SYMBOLS:
            best = brain.get_best_model(symbol)
            active = brain.get_active_model(symbol)
            assert best is not None and active is not None
            assert active.model_id == best.model_id
            assert set(brain.list_models(symbol)["model_type"]) == {
                "ridge",
                "random_forest",
                "hist_gradient_boosting",
            }
            metrics = brain.get_model_metrics(best.model_id, symbol)
            assert metrics["periods_per_year"] == 8760.0
            assert {"max_drawdown", "composite_score", "rmse", "hold_total_return"} <= set(metrics)
            assert ("sharpe_ratio" in metrics) == (metrics["exposure"] > 0)
            assert metrics["composite_score"] == pytest.approx(best.composite_score)
            for method in ("shap", "permutation", "correlation"):
                top = brain.get_top_features(symbol, top_n=5, method=method)
                assert len(top) == 5
                assert top["rank"].tolist() == [1, 2, 3, 4, 5]
                assert set(top["model_id"]) == {active.model_id}
            artifact = brain.load_model_artifact(best.model_id)
            assert artifact[:2] == b"PK"  # skops zip archive, not a pickle
        summary = brain.get_data_quality_summary()
        checks = set(zip(summary["symbol"], summary["check_name"], strict=True))
        for symbol in SYMBOLS:
            assert (symbol, "ohlcv_valid") in checks
            assert (symbol, "features_valid") in checks
        assert summary["failed"].sum() == 0


def test_metadata_people_read_in_the_ui(retrained) -> None:  # type: ignore[no-untyped-def]
    _, _, result = retrained
    metadata = {
        event.asset_key.to_user_string(): event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
        for event in result.get_asset_materialization_events()
    }
    assert "BTC/USDT" in metadata["market_data"]["symbols"].value
    assert metadata["market_data"]["bars_dropped"].value == 0  # synthetic bars are clean
    health = metadata["data_quality"]
    assert health["blocked_symbols"].value == 0
    assert "ETH/USDT" in health["health"].value
    # Charts are files named in the metadata, never image bytes (test_chart_files.py).
    assert "data health**: chart file `" in health["history"].value
    assert health["health_chart"].value.endswith(".png")
    assert metadata["features"]["feature_count"].value >= 25
    assert "equity chart**: chart file `" in metadata["model_evaluation"]["evaluation"].value
    assert "sharpe_ratio" in metadata["model_evaluation"]["evaluation"].value
    assert "importance**: chart file `" in metadata["feature_importance"]["importance"].value
    assert metadata["feature_importance"]["importance_chart"].value.endswith(".png")
    registry = metadata["registry_entries"]["registry"].value
    assert "**Active**" in registry and "**Challengers**" in registry
    assert (
        "Composite score by volatility regime" in metadata["model_evaluation"]["evaluation"].value
    )


def test_nightly_analysis_records_the_rank_trend(retrained) -> None:  # type: ignore[no-untyped-def]
    instance, dsn, _ = retrained
    first = run_nightly(instance, dsn, "BTC/USDT")
    assert first.success
    second = run_nightly(instance, dsn, "BTC/USDT")
    assert second.success
    with BrainLibrary(dsn) as brain:
        trend = brain.get_asset_values("feature_importance_trend", ["BTC/USDT"])["BTC/USDT"]
        active = brain.get_active_model("BTC/USDT")
    assert active is not None
    assert trend["model_id"] == active.model_id
    shap = trend["trend"]["shap"]
    # The first nightly run compared with the retrain's analysis; the second with the first.
    assert shap["previous_available"] is True
    assert all(change["previous_rank"] is not None for change in shap["changes"][:5])


def test_numbers_per_partition_that_the_ui_plots(retrained) -> None:  # type: ignore[no-untyped-def]
    _, _, result = retrained
    by_partition = {
        (event.asset_key.to_user_string(), event.partition): (
            event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
        )
        for event in result.get_asset_materialization_events()
    }
    for symbol in SYMBOLS:
        registry = by_partition[("registry_entries", symbol)]
        assert isinstance(registry["active_composite_score"], dg.FloatMetadataValue)
        assert isinstance(registry["training_rows"], dg.IntMetadataValue)
        assert registry["stand_aside"].value is False  # NO_FLOOR: a version is active
        assert "registry" in registry  # the run-level table is on every partition too
        evaluation = by_partition[("model_evaluation", symbol)]
        assert isinstance(evaluation["best_composite_score"], dg.FloatMetadataValue)
        assert isinstance(evaluation["composite_score_ridge"], dg.FloatMetadataValue)
        schema = by_partition[("market_data", symbol)]["dagster/column_schema"].value
        assert [c.name for c in schema.columns] == [
            "timestamp",
            "open",
            "high",
            "low",
            "close",
            "volume",
        ]
    # Two symbols in one run: each partition carries its own numbers.
    scores = {by_partition[("model_evaluation", s)]["best_composite_score"].value for s in SYMBOLS}
    assert len(scores) == 2
