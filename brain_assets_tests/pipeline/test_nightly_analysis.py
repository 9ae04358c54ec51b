"""The nightly feature analysis outside Dagster: the core function, its stored trend read back
as history, ``brain analyze``, and the asset that wraps the core function."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from brain_assets.cli.main import main
from brain_assets.defs.analysis.assets import feature_importance_trend
from brain_assets.defs.resources import MarketDataResource, RetrainResource
from brain_assets.importance.nightly import NightlyAnalysis, run_nightly_feature_analysis
from brain_assets.library import BrainLibrary
from brain_assets.market_data.deployment import DeploymentMarket
from brain_assets.pipeline.bars import prepare_bars
from brain_assets.pipeline.dataset import make_dataset, split_columns
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.store.importance import FeatureImportanceRecord
from brain_assets.store.maintenance import archive_old_rows
from brain_assets.training.models import train_model
from brain_assets.training.serialization import serialize_model
from brain_assets_tests.conftest import count_rows
from brain_assets_tests.dagster_helpers import run_assets

ACTIVE, ASIDE, NONE, BROKEN = "BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"
# Ridge only: its SHAP is exact and its permutation one shuffle (importance.analyzer's efforts).
SETTINGS = RetrainSettings(model_types=("ridge",), min_rows=100, importance_sample=150)
MARKET = DeploymentMarket(source="synthetic", n_bars=300)


def register_ridge(brain: BrainLibrary, symbol: str, *, activate: bool, seed: int = 0) -> str:
    """A real ridge version of ``symbol``, fitted on the bars MARKET gives it."""
    bars = prepare_bars(symbol, MARKET.load(symbol).frame, SETTINGS)
    X, y, _ = split_columns(make_dataset(bars.frame, SETTINGS.horizon))
    artifact, artifact_format = serialize_model(train_model("ridge", X, y, seed=seed).estimator)
    return brain.register_model(
        symbol,
        "ridge",
        artifact,
        artifact_format=artifact_format,
        metrics={"composite_score": 0.1 + seed},
        feature_names=list(X.columns),
        horizon=SETTINGS.horizon,
        activate=activate,
    )


@pytest.fixture
def universe(brain: BrainLibrary) -> dict[str, str]:
    """BTC trades an active version; ETH stands aside with two versions; XRP's only version has
    an artifact that cannot be read; SOL has no version at all."""
    models = {ACTIVE: register_ridge(brain, ACTIVE, activate=True)}
    register_ridge(brain, ASIDE, activate=False)
    models[ASIDE] = register_ridge(brain, ASIDE, activate=False, seed=1)
    models[BROKEN] = brain.register_model(
        BROKEN, "ridge", b"not a model", artifact_format="skops", metrics={"composite_score": 0.1}
    )
    assert brain.get_active_model(ASIDE) is None
    return models


def analyse(brain: BrainLibrary, *symbols: str) -> dict[str, NightlyAnalysis]:
    results = run_nightly_feature_analysis(SETTINGS, list(symbols), brain=brain, market=MARKET)
    assert [result.symbol for result in results] == list(symbols)
    return {result.symbol: result for result in results}


def test_every_symbol_is_analysed_and_one_failure_stops_no_other(
    brain: BrainLibrary, universe: dict[str, str]
) -> None:
    seen: list[tuple[str, int, int]] = []
    results = run_nightly_feature_analysis(
        SETTINGS,
        [BROKEN, ACTIVE, NONE, ASIDE],
        brain=brain,
        market=MARKET,
        on_symbol=lambda result, done, total: seen.append((result.symbol, done, total)),
    )
    by_symbol = {result.symbol: result for result in results}
    assert seen == [(BROKEN, 1, 4), (ACTIVE, 2, 4), (NONE, 3, 4), (ASIDE, 4, 4)]

    broken = by_symbol[BROKEN]
    assert broken.status == "failed" and broken.failed
    assert broken.model_id == universe[BROKEN] and broken.error is not None
    assert "artifact" in broken.reason.lower()
    assert by_symbol[NONE].status == "no_model" and by_symbol[NONE].model_id is None

    active, aside = by_symbol[ACTIVE], by_symbol[ASIDE]
    assert (active.status, active.model_choice, active.model_id) == (
        "analysed",
        "active",
        universe[ACTIVE],
    )
    # Standing aside: the latest registered version (v2), not the first one.
    assert (aside.status, aside.model_choice, aside.model_id, aside.version) == (
        "analysed",
        "latest",
        universe[ASIDE],
        2,
    )
    assert "stands aside" in aside.reason
    for result in (active, aside):
        assert set(result.methods) == set(SETTINGS.importance_methods)
        assert result.trend["shap"]["previous_available"] is False
        stored = brain.get_top_features(result.symbol, top_n=5, model_id=result.model_id)
        assert not stored.empty
        assert stored["analysis_date"].iloc[0] == result.analysis_date
        json.dumps(result.to_json())  # the asset's value and --json need plain JSON
    assert brain.get_top_features(BROKEN).empty


def test_a_bad_symbol_fails_before_anything_is_analysed(
    brain: BrainLibrary, brain_dsn: str, universe: dict[str, str]
) -> None:
    for bad in ([ACTIVE, " ETH/USDT"], [ACTIVE, ""], ACTIVE):
        with pytest.raises(ValueError, match="symbol"):
            run_nightly_feature_analysis(SETTINGS, bad, brain=brain, market=MARKET)
    with pytest.raises(ValueError, match="settings"):
        run_nightly_feature_analysis({}, [ACTIVE], brain=brain, market=MARKET)  # type: ignore[arg-type]
    assert count_rows(brain_dsn, "feature_importance") == 0


def test_the_trend_reads_back_as_history(brain: BrainLibrary, universe: dict[str, str]) -> None:
    first = analyse(brain, ACTIVE)[ACTIVE]
    second = analyse(brain, ACTIVE)[ACTIVE]
    assert first.analysis_date is not None and second.analysis_date is not None
    assert second.trend["shap"]["previous_available"] is True

    history = brain.get_feature_importance_history(ACTIVE)
    assert all(isinstance(record, FeatureImportanceRecord) for record in history)
    dates = [record.analysis_date for record in history]
    assert dates == sorted(dates) and set(dates) == {first.analysis_date, second.analysis_date}
    assert {record.method for record in history} == set(SETTINGS.importance_methods)
    assert {record.model_id for record in history} == {universe[ACTIVE]}
    earliest = [record for record in history if record.analysis_date == first.analysis_date]
    assert all(record.previous_rank is None and record.rank_change is None for record in earliest)

    # The second analysis's rank changes are what its trend reported.
    shap_changes = {
        change["feature"]: change["rank_change"] for change in second.trend["shap"]["changes"]
    }
    latest_shap = {
        record.feature: record.rank_change
        for record in history
        if record.analysis_date == second.analysis_date and record.method == "shap"
    }
    assert shap_changes and all(latest_shap[f] == c for f, c in shap_changes.items())

    feature = second.trend["shap"]["changes"][0]["feature"]
    one = brain.get_feature_importance_history(ACTIVE, feature=feature)
    assert len(one) == 2 * len(SETTINGS.importance_methods)
    assert {record.feature for record in one} == {feature}
    recent = brain.get_feature_importance_history(ACTIVE, feature, since=second.analysis_date)
    assert {record.analysis_date for record in recent} == {second.analysis_date}
    # Against the analysis before it, though that one is older than since.
    assert all(record.previous_rank is not None for record in recent)
    shap_only = brain.get_feature_importance_history(
        ACTIVE, since=second.analysis_date, method="shap"
    )
    assert {record.method for record in shap_only} == {"shap"}
    assert (
        brain.get_feature_importance_history(ACTIVE, since=datetime.now(UTC) + timedelta(1)) == []
    )
    assert brain.get_feature_importance_history(NONE) == []
    assert brain.get_feature_importance_history(ACTIVE, feature="no_such_feature") == []


def test_history_rejects_bad_arguments_by_name(brain: BrainLibrary) -> None:
    with pytest.raises(ValueError, match="since"):
        brain.get_feature_importance_history(ACTIVE, since="last tuesday")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="since"):
        brain.get_feature_importance_history(ACTIVE, since=20240101)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="feature"):
        brain.get_feature_importance_history(ACTIVE, feature=" ret_1")
    with pytest.raises(ValueError, match="symbol"):
        brain.get_feature_importance_history("")


def test_history_includes_archived_analyses(brain: BrainLibrary, universe: dict[str, str]) -> None:
    model_id = universe[ASIDE]  # not active, so retention moves its old rows
    old = datetime.now(UTC) - timedelta(days=400)
    brain.store_feature_importances(ASIDE, model_id, {"shap": {"ret_1": 0.9, "rsi_14": 0.1}}, old)
    assert archive_old_rows(brain, retention_days=30)["feature_importance"] == 2
    history = brain.get_feature_importance_history(ASIDE, "ret_1")
    assert [(r.analysis_date, r.rank) for r in history] == [(old, 1)]
    result = analyse(brain, ASIDE)[ASIDE]
    later = brain.get_feature_importance_history(
        ASIDE, "ret_1", since=result.analysis_date, method="shap"
    )
    assert [r.previous_rank for r in later] == [1]


def write_bars(folder: Path, *symbols: str) -> None:
    source = DeploymentMarket(source="synthetic", n_bars=600)
    for symbol in symbols:
        frame = source.load(symbol).frame
        out = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        out.to_csv(folder / f"{symbol.replace('/', '-')}.csv", index=False)


def test_brain_analyze(
    brain: BrainLibrary,
    brain_dsn: str,
    universe: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    write_bars(tmp_path, ACTIVE, ASIDE, BROKEN)
    files = ["--source", "files", "--folder", str(tmp_path)]

    # Every symbol with a registered model; XRP's failure makes the status 1.
    assert main(["analyze", *files]) == 1
    out = capsys.readouterr().out
    lines = {line.split("] ")[-1].split(":")[0]: line for line in out.splitlines() if "] " in line}
    assert set(lines) == {ACTIVE, ASIDE, BROKEN}
    assert "analysed v1 ridge, the active version" in lines[ACTIVE]
    assert "analysed v2 ridge, the latest registered version" in lines[ASIDE]
    assert "FAILED" in lines[BROKEN]
    assert "2 analysed, 0 without a model, 1 failed (XRP/USDT)" in out

    assert main(["analyze", ACTIVE, NONE, *files, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [(row["symbol"], row["status"]) for row in document] == [
        (ACTIVE, "analysed"),
        (NONE, "no_model"),
    ]
    assert document[0]["trend"]["shap"]["previous_available"] is True
    assert len({r.analysis_date for r in brain.get_feature_importance_history(ACTIVE)}) == 2


def test_brain_analyze_bad_arguments(
    brain: BrainLibrary,
    brain_dsn: str,
    universe: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    assert main(["analyze", ACTIVE, " ETH/USDT"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brain analyze: symbol") and "' ETH/USDT'" in err
    assert main(["analyze", ACTIVE, "--folder", str(tmp_path)]) == 2
    assert "--folder goes with --source files" in capsys.readouterr().err
    assert main(["analyze", "--source", "files", "--folder", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert count_rows(brain_dsn, "feature_importance") == 0


def test_the_market_defaults_match_the_dagster_resource() -> None:
    resource, core = MarketDataResource(), DeploymentMarket()
    for name in ("source", "folder", "store_source", "timeframe", "seed", "n_bars", "bar"):
        assert getattr(core, name) == getattr(resource, name), name


def test_the_asset_wraps_the_core_and_analyses_a_symbol_standing_aside(
    brain_dsn: str, brain: BrainLibrary, universe: dict[str, str]
) -> None:
    retrain = RetrainResource(min_rows=100, importance_sample=150, model_types=["ridge"])
    market = MarketDataResource(source="synthetic", n_bars=300)
    result = run_assets(
        dg.DagsterInstance.ephemeral(),
        brain_dsn,
        [ASIDE],
        assets=[feature_importance_trend],
        retrain=retrain,
        market=market,
    )
    assert result.success
    value = brain.get_asset_values("feature_importance_trend", [ASIDE])[ASIDE]
    assert (value["status"], value["model_id"], value["model_choice"]) == (
        "analysed",
        universe[ASIDE],
        "latest",
    )
    failed = run_assets(
        dg.DagsterInstance.ephemeral(),
        brain_dsn,
        [BROKEN],
        assets=[feature_importance_trend],
        retrain=retrain,
        market=market,
    )
    assert not failed.success
    failure = next(event for event in failed.all_events if event.is_step_failure)
    assert "XRP/USDT" in str(failure.event_specific_data)


def test_a_database_blip_retries_only_the_symbols_it_hit(
    brain_dsn: str, brain: BrainLibrary, universe: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from brain_assets.defs.analysis import assets as analysis_assets

    real = analysis_assets.run_nightly_feature_analysis
    calls: list[list[str]] = []

    def blip_once(settings: Any, names: list[str], **kwargs: Any) -> list[Any]:
        calls.append(list(names))
        results = real(settings, names, **kwargs)
        if len(calls) == 1:  # the first pass loses the connection while analysing ACTIVE
            lost = psycopg.OperationalError("server closed the connection unexpectedly")
            return [
                dataclasses.replace(r, status="failed", reason=str(lost), error=lost)
                if r.symbol == ACTIVE
                else r
                for r in results
            ]
        return results

    monkeypatch.setattr(analysis_assets, "run_nightly_feature_analysis", blip_once)
    monkeypatch.setattr(analysis_assets, "WAIT_S", 0.0)
    result = run_assets(
        dg.DagsterInstance.ephemeral(),
        brain_dsn,
        [ACTIVE, ASIDE],
        assets=[feature_importance_trend],
        retrain=RetrainResource(min_rows=100, importance_sample=150, model_types=["ridge"]),
        market=MarketDataResource(source="synthetic", n_bars=300),
    )
    assert result.success
    assert calls == [[ACTIVE, ASIDE], [ACTIVE]]
    values = brain.get_asset_values("feature_importance_trend", [ACTIVE, ASIDE])
    assert values[ACTIVE]["status"] == values[ASIDE]["status"] == "analysed"
