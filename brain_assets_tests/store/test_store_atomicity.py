"""Every call is one transaction; the one-active-version rule holds even against direct SQL."""

from __future__ import annotations

import psycopg
import pytest

from brain_assets.library import BrainLibrary
from brain_assets.store import importance as importance_module
from brain_assets.store import registry as registry_module
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"


class Injected(RuntimeError):
    pass


def test_error_after_registry_insert_leaves_no_rows(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_mid_write(*args: object, **kwargs: object) -> int:
        raise Injected("disk full, say")

    # The registry row is already inserted when the metric rows are written.
    monkeypatch.setattr(registry_module, "insert_metric_rows", fail_mid_write)
    with pytest.raises(Injected):
        brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1}, activate=True)
    for table in ("model_registry", "model_metrics", "model_activations"):
        assert count_rows(brain_dsn, table) == 0, table


def test_error_halfway_through_importance_copy_leaves_no_rows(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1})
    real_rank = importance_module.rank_importances

    def rank_then_poison(items: object) -> list[tuple[str, float, int]]:
        ranked = real_rank(items)  # type: ignore[arg-type]
        # A value PostgreSQL refuses, after 49 good rows have gone into the COPY stream.
        return [*ranked[:49], ("poison", float("nan"), 50)]

    monkeypatch.setattr(importance_module, "rank_importances", rank_then_poison)
    values = {f"f{i:02d}": float(i + 1) for i in range(60)}
    with pytest.raises(psycopg.errors.CheckViolation):
        brain.store_feature_importance(SYMBOL, model_id, "shap", values)
    assert count_rows(brain_dsn, "feature_importance") == 0


def test_grouped_calls_roll_back_together(brain: BrainLibrary, brain_dsn: str) -> None:
    with pytest.raises(Injected), brain.transaction():
        model_id = brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1})
        brain.store_feature_importance(SYMBOL, model_id, "shap", {"a": 1.0})
        brain.log_data_quality(SYMBOL, "c", "ERROR", True)
        raise Injected("caller fails after three writes")
    for table in ("model_registry", "feature_importance", "data_quality_logs"):
        assert count_rows(brain_dsn, table) == 0, table
    with brain.transaction():
        model_id = brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1})
        brain.store_feature_importance(SYMBOL, model_id, "shap", {"a": 1.0})
    assert brain.get_top_features(SYMBOL)["feature"].tolist() == ["a"]


def test_a_failed_call_inside_a_group_rolls_back_only_itself(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    with brain.transaction():
        model_id = brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1})
        with pytest.raises(ValueError, match="belongs to symbol"):
            brain.store_feature_importance("ETH/USDT", model_id, "shap", {"a": 1.0})
        brain.store_feature_importance(SYMBOL, model_id, "shap", {"a": 1.0})
    assert count_rows(brain_dsn, "feature_importance") == 1


def test_database_refuses_a_second_active_version(brain: BrainLibrary, brain_dsn: str) -> None:
    brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1}, activate=True)
    second = brain.register_model(SYMBOL, "ridge", b"y", metrics={"rmse": 0.1})
    with psycopg.connect(brain_dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("UPDATE model_registry SET is_active = true WHERE model_id = %s", (second,))
    # Another symbol may have its own active version.
    brain.register_model("ETH/USDT", "ridge", b"z", metrics={"rmse": 0.1}, activate=True)
    with psycopg.connect(brain_dsn) as conn:
        active = conn.execute(
            "SELECT symbol, count(*) FROM model_registry WHERE is_active GROUP BY symbol"
        ).fetchall()
    assert sorted(active) == [("BTC/USDT", 1), ("ETH/USDT", 1)]


def test_database_refuses_non_finite_values_even_without_the_api(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    model_id = brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1})
    with psycopg.connect(brain_dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO model_metrics (model_id, symbol, metric, value) "
            "VALUES (%s, %s, 'x', 'NaN')",
            (model_id, SYMBOL),
        )


def test_database_refuses_rows_naming_an_unregistered_or_foreign_model(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    model_id = brain.register_model(SYMBOL, "ridge", b"x", metrics={"rmse": 0.1})
    bad_rows = [
        ("model_metrics (model_id, symbol, metric, value)", ("nope", SYMBOL, "m", 1.0)),
        ("model_metrics (model_id, symbol, metric, value)", (model_id, "ETH/USDT", "m", 1.0)),
        (
            "feature_importance (model_id, symbol, method, feature, importance, rank)",
            (model_id, "ETH/USDT", "shap", "f", 1.0, 1),
        ),
    ]
    for target, row in bad_rows:
        with (
            psycopg.connect(brain_dsn) as conn,
            pytest.raises(psycopg.errors.ForeignKeyViolation, match="not registered for symbol"),
        ):
            placeholders = ", ".join(["%s"] * len(row))
            conn.execute(f"INSERT INTO {target} VALUES ({placeholders})", row)
    with (
        psycopg.connect(brain_dsn) as conn,
        pytest.raises(psycopg.errors.ForeignKeyViolation, match="not registered for symbol"),
    ):
        conn.execute(
            "UPDATE model_metrics SET symbol = 'ETH/USDT' WHERE model_id = %s", (model_id,)
        )
    with (
        psycopg.connect(brain_dsn) as conn,
        pytest.raises(psycopg.errors.ForeignKeyViolation, match="still has metrics"),
    ):
        conn.execute("DELETE FROM model_registry WHERE model_id = %s", (model_id,))
    assert count_rows(brain_dsn, "model_registry") == 1
