"""The live window: only unseen bars, the most recent ones, after the target embargo."""

from __future__ import annotations

import base64

import pandas as pd
import pytest

from brain_assets.errors import ArtifactIntegrityError
from brain_assets.pipeline.promotion import unseen_rows
from brain_assets.pipeline.training import TrainedArtifact
from brain_assets.training.serialization import sha256_hex


def test_unseen_bars_start_after_the_target_embargo() -> None:
    index = pd.date_range("2025-01-01", periods=100, freq="h", tz="UTC")
    training_end = index[59]
    unseen = index[unseen_rows(index, training_end, horizon=2)]
    # Bars 60 and 61 are skipped: their 2-bar targets reach back into the training segment.
    assert unseen[0] == index[62] and len(unseen) == 38
    # The live window is the most recent of them.
    assert unseen[-30:][0] == index[70] and unseen[-30:][-1] == index[-1]
    assert unseen_rows(index, None, horizon=2).all()


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
