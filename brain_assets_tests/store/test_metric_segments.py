"""Every stored metric says which bars it was measured on: the evaluation's, a fold's or a live
window's; the evaluation's are what a version is judged and activated by."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from brain_assets.library import BrainLibrary
from brain_assets.records import Transition
from brain_assets.store.migrations import SQL_DIR, apply_migrations

SYMBOL = "ETH/USDT"


def test_live_and_fold_metrics_never_stand_in_for_the_evaluation(brain: BrainLibrary) -> None:
    model_id = brain.register_model(
        SYMBOL, "ridge", b"PK-bytes", metrics={"sharpe_ratio": 2.0, "composite_score": 0.2}
    )
    brain.store_model_metrics(
        model_id,
        SYMBOL,
        {"sharpe_ratio": -3.0, "composite_score": -0.4},
        segment="live",
        window_start="2024-03-01T00:00:00Z",
        window_end="2024-03-14T23:00:00Z",
    )
    brain.store_model_metrics(
        model_id, SYMBOL, {"sharpe_ratio": 9.0}, segment="fold", fold=2, window_start="2024-02-01"
    )
    assert brain.get_model_metrics(model_id, SYMBOL) == {
        "sharpe_ratio": 2.0,
        "composite_score": 0.2,
    }
    assert brain.get_live_metrics(model_id, SYMBOL)["sharpe_ratio"] == -3.0
    folds = brain.get_fold_metrics(model_id, SYMBOL)
    assert folds[["fold", "sharpe_ratio"]].to_dict("records") == [{"fold": 2, "sharpe_ratio": 9.0}]
    # The activation's baseline is the evaluation, not the last live window.
    brain.apply_transition(Transition("activate", SYMBOL, model_id, "manual"))
    assert brain.activation_baseline(model_id) == {"sharpe_ratio": 2.0, "composite_score": 0.2}
    with pytest.raises(ValueError, match="segment"):
        brain.store_model_metrics(model_id, SYMBOL, {"x": 1.0}, segment="backtest")
    with pytest.raises(ValueError, match="fold"):
        brain.store_model_metrics(model_id, SYMBOL, {"x": 1.0}, segment="fold")
    with pytest.raises(ValueError, match="window_start"):
        brain.store_model_metrics(
            model_id, SYMBOL, {"x": 1.0}, window_start="2024-02-02", window_end="2024-02-01"
        )
    assert brain.get_model_metrics(model_id, SYMBOL) == {
        "sharpe_ratio": 2.0,
        "composite_score": 0.2,
    }


def test_the_migration_labels_earlier_live_rows(empty_dsn: str, tmp_path: Path) -> None:
    earlier = tmp_path / "sql"
    earlier.mkdir()
    for path in sorted(SQL_DIR.glob("*.sql")):
        if int(path.name[:3]) < 11:
            shutil.copy(path, earlier / path.name)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        apply_migrations(conn, earlier)
        conn.execute(
            """INSERT INTO model_registry (model_id, symbol, version, model_type, artifact,
                   artifact_sha256, created_at)
               VALUES ('m1', %s, 1, 'ridge', 'x', repeat('0', 64), '2024-01-01T00:00Z')""",
            (SYMBOL,),
        )
        # Written with the registration, written by monitoring a day later, and per regime.
        conn.execute(
            """INSERT INTO model_metrics (model_id, symbol, metric, value, evaluation_date, regime)
               VALUES ('m1', %(s)s, 'sharpe_ratio', 2.0, '2024-01-01T00:00Z', NULL),
                      ('m1', %(s)s, 'sharpe_ratio', -3.0, '2024-01-02T00:00Z', NULL),
                      ('m1', %(s)s, 'sharpe_ratio', 1.0, '2024-01-01T00:05Z', 'high')""",
            {"s": SYMBOL},
        )
        assert 11 in apply_migrations(conn)
        labels = conn.execute(
            "SELECT value, segment FROM model_metrics ORDER BY evaluation_date"
        ).fetchall()
    assert labels == [(2.0, "evaluation"), (1.0, "evaluation"), (-3.0, "live")]
