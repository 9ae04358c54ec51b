"""Walk-forward folds: their geometry, and that no fold model ever sees its test block."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline import folds as folds_module
from brain_assets.pipeline.dataset import make_dataset
from brain_assets.pipeline.folds import out_of_sample
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol
from brain_assets.training.walk_forward import walk_forward_folds


def test_folds_tile_the_last_share_of_rows_and_purge_the_embargo() -> None:
    plan = walk_forward_folds(1000, folds=4, test_frac=0.75, embargo=3)
    # floor(1000 * 0.75) = 750 tested rows in blocks of 188, 188, 187 and 187.
    assert [(f.test.start, f.test.stop) for f in plan.folds] == [
        (250, 438),
        (438, 626),
        (626, 813),
        (813, 1000),
    ]
    assert plan.test == slice(250, 1000)
    for fold in plan.folds:
        assert fold.train.start == 0
        assert fold.train.stop + 3 == fold.test.start


def test_rolling_folds_keep_the_first_folds_training_length() -> None:
    plan = walk_forward_folds(1000, folds=3, test_frac=0.5, embargo=1, window="rolling")
    lengths = {f.train.stop - f.train.start for f in plan.folds}
    assert lengths == {499}
    # Test blocks of 167, 167 and 166 rows from row 500; the last trains on the 499 rows that
    # end one row (the embargo) before it.
    assert plan.folds[-1].test == slice(834, 1000)
    assert plan.folds[-1].train == slice(334, 833)


def test_fold_settings_are_checked_by_name() -> None:
    for bad, name in (
        ({"folds": 0}, "folds"),
        ({"test_frac": 1.0}, "test_frac"),
        ({"embargo": -1}, "embargo"),
        ({"window": "sliding"}, "window"),
    ):
        with pytest.raises(ValueError, match=name):
            walk_forward_folds(100, **bad)
    with pytest.raises(ValueError, match="too few"):
        walk_forward_folds(5, folds=4, test_frac=0.5, embargo=2)
    with pytest.raises(ValueError, match="chronological"):
        walk_forward_folds(pd.DatetimeIndex(["2024-01-02", "2024-01-01"]))


@pytest.mark.parametrize("horizon", [1, 3])
def test_no_fold_model_is_fitted_on_a_row_whose_target_reaches_its_test_block(
    horizon: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars = signal_market(900, momentum=0.1, seed=2)
    settings = RetrainSettings(model_types=("ridge",), horizon=horizon)
    table = make_dataset(bars, horizon)
    (artifact,) = train_symbol("BTC/USDT", table, settings)
    seen: list[pd.Index] = []
    real = folds_module.train_model

    def recording(model_type: str, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> Any:
        seen.append(X.index)
        return real(model_type, X, y, **kwargs)

    monkeypatch.setattr(folds_module, "train_model", recording)
    oos = out_of_sample(artifact, table, settings)
    positions = {stamp: i for i, stamp in enumerate(table.index)}
    blocks = [oos.predictions.index[oos.fold == k] for k in range(settings.walk_forward_folds)]
    assert len(seen) == len(blocks) == settings.walk_forward_folds
    for trained, block in zip(seen, blocks, strict=True):
        last_target_end = positions[trained[-1]] + horizon
        assert last_target_end < positions[block[0]]
        assert not trained.isin(oos.predictions.index[oos.predictions.index >= block[0]]).any()
    # Every out-of-sample row is predicted once, in order, by the fold that tests it.
    assert oos.predictions.index.is_monotonic_increasing and oos.predictions.index.is_unique
    assert len(oos.predictions) == int(len(table) * settings.walk_forward_test_frac)
    assert np.isfinite(oos.predictions.to_numpy()).all()


def test_every_timing_event_carries_its_seconds(caplog: pytest.LogCaptureFixture) -> None:
    """The benches and the JSON log sum ``seconds`` by stage; the walk-forward stage's event
    once carried only its parts, which broke every consumer that listens at DEBUG."""
    import logging

    from brain_assets.calendar import periods_per_year
    from brain_assets.pipeline.evaluation import evaluate_symbol

    settings = RetrainSettings(model_types=("ridge",))
    table = make_dataset(signal_market(1500, momentum=0.0, seed=3), settings.horizon)
    with caplog.at_level(logging.DEBUG, logger="brain_assets"):
        artifacts = train_symbol("BTC/USDT", table, settings)
        evaluate_symbol("BTC/USDT", table, artifacts, settings, periods_per_year(table.index))
    timings = [r.fields for r in caplog.records if getattr(r, "event", None) == "compute_timing"]
    assert {fields["stage"] for fields in timings} == {"fit", "walk_forward"}
    for fields in timings:
        assert fields["seconds"] >= 0, fields
    walk_forward = next(fields for fields in timings if fields["stage"] == "walk_forward")
    assert walk_forward["seconds"] == pytest.approx(
        walk_forward["fit_seconds"] + walk_forward["predict_seconds"], abs=1e-3
    )
