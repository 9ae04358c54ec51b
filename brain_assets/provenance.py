"""Where a version's training bars came from, and whether a deployment may trade on them.

A model fitted to generated bars has learnt the generator, not a market: it is kept and shown
(the demo trains on such bars on purpose) but never trades where the bars are real.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brain_assets.records import ModelVersion

SYNTHETIC = "synthetic"
MARKET_SOURCE_ENV = "BRAIN_MARKET_SOURCE"


@dataclass(frozen=True)
class BarProvenance:
    """``source``: 'store:<exchange>', 'files' or 'synthetic'; ``timeframe``: the bar length
    ('1h'); ``synthetic``: generated bars. The range is the version's data_start..data_end."""

    source: str
    timeframe: str | None
    synthetic: bool

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"bar source: expected a non-empty name, got {self.source!r}")
        if self.timeframe is not None and (
            not isinstance(self.timeframe, str) or not self.timeframe.strip()
        ):
            raise ValueError(f"bar timeframe: expected a label like '1h', got {self.timeframe!r}")
        if not isinstance(self.synthetic, bool):
            raise ValueError(f"synthetic: expected True or False, got {self.synthetic!r}")

    def label(self) -> str:
        frame = f" {self.timeframe}" if self.timeframe else ""
        return f"{self.source}{frame}" + (" (SYNTHETIC)" if self.synthetic else "")


def synthetic_bars_allowed(source: str | None = None) -> bool:
    """Whether versions trained on synthetic bars may be activated: only in a deployment whose
    market source (``source``, else $BRAIN_MARKET_SOURCE, default 'auto') is 'synthetic'."""
    chosen = source if source is not None else os.environ.get(MARKET_SOURCE_ENV, "")
    return chosen.strip() == SYNTHETIC


def refused_here(model: ModelVersion) -> bool:
    """Whether a version was trained on synthetic bars that this deployment refuses: such a
    version does not trade here even if it is active (it was activated in a synthetic
    deployment on the same Brain, such as the demo's)."""
    return bool(model.synthetic_bars) and not synthetic_bars_allowed()


def refused_synthetic(version: int | str, symbol: str) -> str:
    """Why a synthetic version may not trade here: the one message every refusal gives."""
    return (
        f"{symbol} version {version} was trained on synthetic bars; this deployment's market "
        f"source is not synthetic ({MARKET_SOURCE_ENV}), so it never trades here"
    )


def bars_label(model: ModelVersion | Mapping[str, Any]) -> str:
    """A version's bars for a table: 'store:binance 1h', 'synthetic 1h (SYNTHETIC)', or
    'unknown' for a version registered before provenance was recorded. Also takes a row of
    the registry's table."""
    if isinstance(model, ModelVersion):
        model = model.to_dict()
    source = model.get("bar_source")
    if not source:
        return "unknown"
    timeframe = model.get("bar_timeframe") or None
    return BarProvenance(str(source), timeframe, bool(model.get("synthetic_bars"))).label()
