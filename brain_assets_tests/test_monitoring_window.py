"""The live window: only unseen bars, the most recent ones, after the target embargo."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from brain_assets.errors import ArtifactIntegrityError
from brain_assets.pipeline.monitoring import live_window
from brain_assets.pipeline.training import TrainedArtifact
from brain_assets.training.serialization import sha256_hex


def test_live_window_is_the_most_recent_unseen_bars() -> None:
    index = pd.date_range("2025-01-01", periods=100, freq="h", tz="UTC")
    table = pd.DataFrame({"x": np.arange(100.0)}, index=index)
    training_end = index[59]
    mask = live_window(table, training_end, horizon=2, window_bars=30)
    chosen = table.index[mask.to_numpy()]
    assert len(chosen) == 30
    assert chosen[-1] == index[-1]
    assert chosen[0] == index[70]
    everything = live_window(table, training_end, horizon=2, window_bars=1000)
    # Bars 60 and 61 are skipped: their 2-bar targets reach back into the training segment.
    assert table.index[everything.to_numpy()][0] == index[62]
    assert int(everything.sum()) == 38


def test_artifact_handed_between_assets_must_match_its_sha256() -> None:
    data = b"PK-model-bytes"
    document = {
        "model_type": "ridge",
        "artifact": base64.b64encode(data).decode(),
        "artifact_format": "skops",
        "sha256": sha256_hex(data),
        "hyperparameters": {},
        "feature_names": ["a"],
        "fit_seconds": 0.1,
        "training_start": "2025-01-01",
        "training_end": "2025-02-01",
    }
    assert TrainedArtifact.from_json(document).artifact == data
    document["artifact"] = base64.b64encode(b"tampered").decode()
    with pytest.raises(ArtifactIntegrityError, match="changed between assets"):
        TrainedArtifact.from_json(document)
