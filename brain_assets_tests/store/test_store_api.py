"""Every BrainLibrary call against the real embedded PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from brain_assets.library import BrainLibrary

SYMBOL = "BTC/USDT"


def register(
    brain: BrainLibrary, symbol: str = SYMBOL, score: float = 0.2, **kwargs: object
) -> str:
    options: dict[str, object] = {
        "metrics": {"sharpe_ratio": 1.0, "rmse": 0.01, "composite_score": score},
        "hyperparameters": {"alpha": 0.5, "layers": [1, 2]},
        "feature_names": ["ret_1", "rsi_14"],
    }
    options.update(kwargs)
    return brain.register_model(symbol, "ridge", b"weights-" + str(score).encode(), **options)  # type: ignore[arg-type]


def test_register_model_versions_increment_per_symbol(brain: BrainLibrary) -> None:
    first = register(brain)
    second = register(brain, score=0.5)
    other = register(brain, symbol="ETH/USDT")
    assert brain.get_model(first).version == 1
    assert brain.get_model(second).version == 2
    assert brain.get_model(other).version == 1
    stored = brain.get_model(second)
    assert stored is not None
    assert stored.hyperparameters == {"alpha": 0.5, "layers": [1, 2]}
    assert stored.feature_names == ["ret_1", "rsi_14"]
    assert stored.metrics["composite_score"] == 0.5
    assert stored.artifact_sha256 == hashlib.sha256(b"weights-0.5").hexdigest()
    assert list(brain.list_models(SYMBOL)["version"]) == [1, 2]
    assert brain.list_symbols() == ["BTC/USDT", "ETH/USDT"]


def test_registration_metrics_are_queryable(brain: BrainLibrary) -> None:
    model_id = register(brain, periods_per_year=8760)
    assert brain.get_model_metrics(model_id, SYMBOL) == {
        "sharpe_ratio": 1.0,
        "rmse": 0.01,
        "composite_score": 0.2,
    }
    history = brain.get_metric_history(model_id, SYMBOL)
    assert set(history["periods_per_year"]) == {8760.0}


def test_best_model_ranks_by_composite_score(brain: BrainLibrary) -> None:
    register(brain, score=0.1)
    best = register(brain, score=0.7)
    register(brain, score=0.3)
    result = brain.get_best_model(SYMBOL)
    assert result is not None
    assert result.model_id == best
    assert result.composite_score == 0.7
    assert {"model_id", "version", "model_type", "composite_score", "is_active"} <= set(
        result.to_dict()
    )


def test_best_model_of_unknown_symbol_is_none(brain: BrainLibrary) -> None:
    assert brain.get_best_model("NOPE/USDT") is None
    assert brain.get_active_model("NOPE/USDT") is None
    assert brain.get_top_features("NOPE/USDT").empty
    assert brain.get_model_metrics("no-such-model", "NOPE/USDT") == {}
    assert brain.list_models("NOPE/USDT").empty


def test_activation_keeps_one_active_and_records_history(brain: BrainLibrary) -> None:
    first = register(brain, activate=True)
    second = register(brain, score=0.9)
    assert brain.get_active_model(SYMBOL).model_id == first
    brain.activate_model(second, reason="promotion", details={"score": 0.9})
    active = brain.get_active_model(SYMBOL)
    assert active is not None
    assert active.model_id == second
    assert brain.get_model(first).is_active is False
    history = brain.get_activation_history(SYMBOL)
    assert list(zip(history["model_id"], history["action"], strict=True)) == [
        (first, "activated"),
        (first, "deactivated"),
        (second, "activated"),
    ]
    assert history["reason"].tolist() == ["manual", "promotion", "promotion"]
    # An operator's activation records the baseline a later rollback check compares with.
    assert history["details"].iloc[-1] == {
        "score": 0.9,
        "baseline": {"composite_score": 0.9, "rmse": 0.01, "sharpe_ratio": 1.0},
    }


def test_store_and_read_metrics_latest_and_per_regime(brain: BrainLibrary) -> None:
    model_id = register(brain)
    old = datetime(2025, 1, 1, tzinfo=UTC)
    new = old + timedelta(days=1)
    brain.store_model_metrics(model_id, SYMBOL, {"sharpe_ratio": 0.5}, evaluation_date=old)
    brain.store_model_metrics(
        model_id, SYMBOL, {"sharpe_ratio": 2.5}, evaluation_date=new, periods_per_year=8760
    )
    brain.store_model_metrics(model_id, SYMBOL, {"sharpe_ratio": -1.0}, regime="high")
    latest = brain.get_model_metrics(model_id, SYMBOL)
    # Registration's own value is the newest overall record.
    assert latest["sharpe_ratio"] == 1.0
    assert brain.get_model_metrics(model_id, SYMBOL, regime="high") == {"sharpe_ratio": -1.0}
    assert brain.get_regime_metrics(model_id, SYMBOL) == {"high": {"sharpe_ratio": -1.0}}
    history = brain.get_metric_history(model_id, SYMBOL, metric="sharpe_ratio")
    assert len(history) == 4
    assert history["evaluation_date"].is_monotonic_decreasing


def test_feature_importance_round_trip_and_latest_analysis(brain: BrainLibrary) -> None:
    model_id = register(brain)
    day1 = datetime(2025, 3, 1, tzinfo=UTC)
    brain.store_feature_importance(SYMBOL, model_id, "shap", {"a": 0.1, "b": 0.3}, day1)
    brain.store_feature_importance(
        SYMBOL,
        model_id,
        "correlation",
        pd.DataFrame({"feature": ["a", "b", "c"], "importance": [0.2, -0.9, 0.05]}),
        day1 + timedelta(hours=1),
    )
    brain.store_feature_importance(
        SYMBOL,
        model_id,
        "shap",
        pd.Series({"x": 1.0, "y": 3.0, "z": 2.0}),
        day1 + timedelta(days=1),
    )
    top = brain.get_top_features(SYMBOL, top_n=2)
    assert list(top.columns) == [
        "feature",
        "importance",
        "rank",
        "method",
        "analysis_date",
        "model_id",
    ]
    assert top["feature"].tolist() == ["y", "z"]
    assert top["rank"].tolist() == [1, 2]
    corr = brain.get_top_features(SYMBOL, top_n=20, method="correlation")
    # Ranked by absolute importance: the strongest negative correlation comes first.
    assert corr["feature"].tolist() == ["b", "a", "c"]
    assert corr["importance"].tolist() == [-0.9, 0.2, 0.05]
    assert set(corr["method"]) == {"correlation"}
    assert brain.get_top_features(SYMBOL, method="permutation").empty


def test_top_features_by_model(brain: BrainLibrary) -> None:
    first = register(brain)
    second = register(brain, score=0.4)
    brain.store_feature_importance(SYMBOL, first, "shap", {"a": 1.0})
    brain.store_feature_importance(SYMBOL, second, "shap", {"b": 1.0})
    assert brain.get_top_features(SYMBOL, model_id=first)["feature"].tolist() == ["a"]
    assert brain.get_top_features(SYMBOL)["feature"].tolist() == ["b"]


def test_data_quality_log_and_summary(brain: BrainLibrary) -> None:
    t0 = datetime(2025, 6, 1, tzinfo=UTC)
    brain.log_data_quality(SYMBOL, "ohlcv_schema", "ERROR", True, timestamp=t0)
    brain.log_data_quality(
        SYMBOL, "ohlcv_schema", "ERROR", False, 7, {"sample": [{"row": 3}]}, t0 + timedelta(hours=1)
    )
    brain.log_data_quality_many(
        [
            {
                "symbol": "ETH/USDT",
                "check_name": "gaps",
                "severity": "WARN",
                "passed": False,
                "failure_count": 2,
                "timestamp": t0,
            },
            {
                "symbol": "ETH/USDT",
                "check_name": "gaps",
                "severity": "WARN",
                "passed": True,
                "timestamp": t0 - timedelta(days=2),
            },
        ]
    )
    summary = brain.get_data_quality_summary(t0 - timedelta(minutes=1), t0 + timedelta(days=1))
    rows = {(r.symbol, r.check_name): r for r in summary.itertuples()}
    btc = rows[(SYMBOL, "ohlcv_schema")]
    assert (btc.runs, btc.passed, btc.failed, btc.failure_count) == (2, 1, 1, 7)
    assert btc.last_failure == t0 + timedelta(hours=1)
    eth = rows[("ETH/USDT", "gaps")]
    assert (eth.runs, eth.failed, eth.severity) == (1, 1, "WARN")
    logs = brain.get_data_quality_logs(SYMBOL, failed_only=True)
    assert logs["details"].iloc[0] == {"sample": [{"row": 3}]}
    assert brain.get_data_quality_summary(symbol="SOL/USDT").empty


def test_load_model_artifact_verifies_sha256(brain: BrainLibrary, brain_dsn: str) -> None:
    import psycopg

    from brain_assets.errors import ArtifactIntegrityError, UnknownModelError

    model_id = register(brain)
    assert brain.load_model_artifact(model_id) == b"weights-0.2"
    with psycopg.connect(brain_dsn) as conn:
        conn.execute(
            "UPDATE model_registry SET artifact = 'tampered' WHERE model_id = %s", (model_id,)
        )
    with pytest.raises(ArtifactIntegrityError, match="integrity"):
        brain.load_model_artifact(model_id)
    with pytest.raises(UnknownModelError, match="unknown model_id"):
        brain.load_model_artifact("missing")


def test_library_is_safe_to_share_between_threads(brain: BrainLibrary) -> None:
    model_id = register(brain)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(10):
                brain.store_model_metrics(model_id, SYMBOL, {f"m{worker}": float(i)})
                brain.get_model_metrics(model_id, SYMBOL)
        except BaseException as exc:  # collected and re-raised by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    latest = brain.get_model_metrics(model_id, SYMBOL)
    assert all(latest[f"m{n}"] == 9.0 for n in range(8))


def test_repr_and_target_show_no_password(brain: BrainLibrary) -> None:
    assert "BrainLibrary(" in repr(brain)
    assert "database=" in brain.target


def test_top_features_prefer_the_active_model_and_shap(brain: BrainLibrary) -> None:
    active = register(brain, activate=True)
    challenger = register(brain, score=0.9)
    when = datetime(2025, 5, 1, tzinfo=UTC)
    brain.store_feature_importances(
        SYMBOL,
        active,
        {"correlation": {"c": 0.9}, "shap": {"s": 0.5}, "permutation": {"p": 0.1}},
        when,
    )
    # A more recent analysis of a model that does not trade does not hide the active one's.
    brain.store_feature_importance(SYMBOL, challenger, "shap", {"x": 1.0}, when + timedelta(days=1))
    top = brain.get_top_features(SYMBOL)
    assert top[["feature", "method", "model_id"]].values.tolist() == [["s", "shap", active]]
    assert brain.get_top_features(SYMBOL, method="correlation")["feature"].tolist() == ["c"]
    assert brain.get_top_features(SYMBOL, model_id=challenger)["feature"].tolist() == ["x"]
