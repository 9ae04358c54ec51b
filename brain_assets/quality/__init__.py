"""Data-quality schemas (pandera) and a Dagster-free runner that reports their outcome."""

from __future__ import annotations

from brain_assets.quality.run import (
    CheckOutcome,
    features_checks,
    ohlcv_checks,
    run_check,
)
from brain_assets.quality.schemas import (
    FeaturesSchema,
    ImportanceSchema,
    MetricsSchema,
    OHLCVGapSchema,
    OHLCVSchema,
    gap_schema,
)

__all__ = [
    "CheckOutcome",
    "FeaturesSchema",
    "ImportanceSchema",
    "MetricsSchema",
    "OHLCVGapSchema",
    "OHLCVSchema",
    "features_checks",
    "gap_schema",
    "ohlcv_checks",
    "run_check",
]
