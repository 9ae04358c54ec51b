"""Features and training targets computed from OHLCV bars, strictly without look-ahead."""

from __future__ import annotations

from brain_assets.features.technical import (
    FEATURES,
    WARMUP_BARS,
    build_dataset,
    compute_features,
    make_target,
)

__all__ = ["FEATURES", "WARMUP_BARS", "build_dataset", "compute_features", "make_target"]
