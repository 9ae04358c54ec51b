"""Registering the same training again adds nothing: versions carry a fingerprint of what they
were trained on and how, with their horizon, run id and data window."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest

from brain_assets.defs.resources import MarketDataResource, RetrainResource
from brain_assets.library import BrainLibrary
from brain_assets.store.embedded import EmbeddedServer
from brain_assets_tests.conftest import TEMPLATE, count_rows
from brain_assets_tests.dagster_helpers import run_assets

SYMBOL = "BTC/USDT"
FAST = RetrainResource(
    min_rows=500,
    importance_sample=200,
    include_lstm=False,
    model_types=["ridge", "hist_gradient_boosting"],
)
TABLES = ("model_registry", "model_metrics", "feature_importance", "model_activations")
FINGERPRINT = "ab" * 32


def counts(dsn: str) -> dict[str, int]:
    return {table: count_rows(dsn, table) for table in TABLES}


def test_the_same_fingerprint_returns_the_existing_version(brain: BrainLibrary) -> None:
    lineage = {
        "horizon": 3,
        "fingerprint": FINGERPRINT,
        "run_id": "run-1",
        "data_start": "2024-01-01T00:00:00Z",
        "data_end": "2024-03-01T00:00:00Z",
    }
    first = brain.register_model(SYMBOL, "ridge", b"model", metrics={"rmse": 0.1}, **lineage)
    again = brain.register_model(
        SYMBOL, "ridge", b"other bytes", metrics={"rmse": 0.2}, **{**lineage, "run_id": "run-2"}
    )
    assert again == first
    models = brain.list_models(SYMBOL)
    assert len(models) == 1
    row = models.iloc[0]
    assert (row["horizon"], row["fingerprint"], row["run_id"]) == (3, FINGERPRINT, "run-1")
    assert str(row["data_start"])[:10] == "2024-01-01"
    assert brain.get_model_metrics(first, SYMBOL)["rmse"] == pytest.approx(0.1)
    # Without a fingerprint every call is a new version, as before.
    brain.register_model(SYMBOL, "ridge", b"model", metrics={"rmse": 0.1})
    assert len(brain.list_models(SYMBOL)) == 2
    assert brain.find_model_by_fingerprint(SYMBOL, FINGERPRINT) == first
    assert brain.find_model_by_fingerprint("ETH/USDT", FINGERPRINT) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fingerprint", "not-hex", "fingerprint must be 64 lowercase hex digits"),
        ("horizon", 0, "horizon must be at least 1"),
        ("data_end", "2023-01-01T00:00:00Z", "data_start must not be after data_end"),
    ],
)
def test_bad_lineage_is_refused_before_anything_is_written(
    brain: BrainLibrary, brain_dsn: str, field: str, value: object, message: str
) -> None:
    lineage: dict[str, object] = {"data_start": "2024-01-01T00:00:00Z", field: value}
    with pytest.raises(ValueError, match=message):
        brain.register_model(SYMBOL, "ridge", b"model", metrics={"rmse": 0.1}, **lineage)
    assert count_rows(brain_dsn, "model_registry") == 0


@pytest.fixture
def dsn(pg_server: EmbeddedServer) -> str:
    return pg_server.ensure_database(f"r_{uuid.uuid4().hex[:12]}", template=TEMPLATE)


@pytest.mark.slow
def test_retraining_on_the_same_bars_adds_no_rows(dsn: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = run_assets(instance, dsn, [SYMBOL], retrain=FAST)
    assert first.success
    before = counts(dsn)
    assert before["model_registry"] == 2
    second = run_assets(instance, dsn, [SYMBOL], retrain=FAST)
    assert second.success
    assert counts(dsn) == before
    with BrainLibrary(dsn) as brain:
        models = brain.list_models(SYMBOL)
    assert set(models["run_id"]) == {first.run_id}
    assert set(models["horizon"]) == {1}
    assert models["fingerprint"].str.fullmatch("[0-9a-f]{64}").all()
    # New bars are a new training: new versions.
    longer = MarketDataResource(source="synthetic", n_bars=1300)
    assert run_assets(instance, dsn, [SYMBOL], retrain=FAST, market=longer).success
    assert count_rows(dsn, "model_registry") == 4


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "function", "registered_before_failure"),
    [
        ("trained_models", "train_symbol_models", 0),
        ("model_evaluation", "evaluate_symbol", 0),
        # Fails after the registration committed: the versions exist, the step does not.
        ("registry_entries", "registry_markdown", 2),
        ("feature_importance", "analyze_symbol", 2),
    ],
)
def test_a_run_re_executed_after_a_later_step_failed_registers_nothing_twice(
    dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    function: str,
    registered_before_failure: int,
) -> None:
    from brain_assets.defs.retrain import assets

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{step} worker died")

    instance = dg.DagsterInstance.ephemeral()
    with monkeypatch.context() as patch:
        patch.setattr(assets, function, broken)
        failed = run_assets(instance, dsn, [SYMBOL], retrain=FAST)
    assert not failed.success
    assert not failed.is_node_success(step)
    after_failure = counts(dsn)
    assert after_failure["model_registry"] == registered_before_failure
    assert after_failure["feature_importance"] == 0

    rerun = run_assets(instance, dsn, [SYMBOL], retrain=FAST)
    assert rerun.success
    after = counts(dsn)
    assert after["model_registry"] == 2
    if registered_before_failure:
        assert after["model_activations"] == after_failure["model_activations"]
    # The analysis the failed run never wrote is written now, once per version.
    with BrainLibrary(dsn) as brain:
        for model_id in brain.list_models(SYMBOL)["model_id"]:
            assert not brain.get_top_features(SYMBOL, top_n=1, model_id=model_id).empty
    # And once more: nothing new anywhere.
    assert run_assets(instance, dsn, [SYMBOL], retrain=FAST).success
    assert counts(dsn) == after
