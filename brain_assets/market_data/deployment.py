"""The deployment's market source outside Dagster: what ``defs.resources.MarketDataResource``
loads inside a run, for code such as ``brain analyze`` that runs without one.

The same environment variables (``environment.MARKET_ENV``) choose it, with the same defaults,
so that a command and the scheduled job read the same bars."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import pandas as pd

from brain_assets.calendar import bar_seconds, frequency_label
from brain_assets.environment import DEFAULT_TIMEFRAME, MARKET_ENV, MARKET_SOURCES
from brain_assets.errors import MissingBarsError
from brain_assets.market_data.base import MarketData
from brain_assets.market_data.sources import make_source
from brain_assets.provenance import SYNTHETIC, BarProvenance

if TYPE_CHECKING:
    from brain_assets.market_data.store_source import StoreSource
    from brain_assets.store.library import BrainStore


@dataclass(frozen=True)
class DeploymentMarket:
    """``auto`` (default) and ``store``: the bar store; a symbol it lacks fails with its name
    (MissingBarsError) rather than training on made-up bars. ``files``: one file per symbol in
    ``folder``. ``synthetic``: generated bars (``seed``, ``n_bars``, ``bar``), chosen on purpose
    (the demo does): only such a deployment lets versions trained on synthetic bars trade."""

    source: str = "auto"
    folder: str = ""
    store_source: str = ""
    timeframe: str = DEFAULT_TIMEFRAME
    seed: int = 7
    n_bars: int = 3000
    bar: str = "1h"

    def __post_init__(self) -> None:
        if self.source not in MARKET_SOURCES:
            raise ValueError(
                f"market source {self.source!r} ({MARKET_ENV['source']} or --source) is not one "
                f"of {', '.join(MARKET_SOURCES)}"
            )
        if self.source == "files" and not self.folder.strip():
            raise ValueError(f"the files market source needs a folder ({MARKET_ENV['folder']})")

    @classmethod
    def from_environment(cls, **overrides: Any) -> DeploymentMarket:
        """The fields set in ``MARKET_ENV``'s variables, then ``overrides`` (None: not given)."""
        values: dict[str, Any] = {
            field: os.environ[variable].strip()
            for field, variable in MARKET_ENV.items()
            if os.environ.get(variable, "").strip()
        }
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown market setting(s): {', '.join(unknown)}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def load(self, symbol: str, brain: BrainStore | None = None) -> MarketData:
        """``symbol``'s bars; ``brain`` is the store the ``auto`` and ``store`` sources read."""
        if self.source in ("auto", "store"):
            store = self._store(brain)
            if not store.holds(symbol):
                raise MissingBarsError(
                    f"{symbol}: the bar store holds no {self.timeframe} bars"
                    + (f" from {self.store_source!r}" if self.store_source else "")
                    + "; fetch them (`brain data fetch` or the exchange_bars asset) or import "
                    "them (`brain data import`), or choose synthetic bars on purpose with "
                    f"{MARKET_ENV['source']}=synthetic; nothing is trained on made-up bars instead"
                )
            return store.load(symbol)
        if self.source == "files":
            return make_source("files", folder=self.folder).load(symbol)
        return make_source("synthetic", seed=self.seed, n_bars=self.n_bars, bar=self.bar).load(
            symbol
        )

    def provenance(
        self, symbol: str, brain: BrainStore | None, stamps: Sequence[object] | pd.Index
    ) -> BarProvenance:
        """Where ``load`` takes ``symbol``'s bars from, with the bar length of ``stamps`` (the
        rows a version was trained on)."""
        timeframe = frequency_label(bar_seconds(stamps)) if len(stamps) > 1 else None
        if self.source == "synthetic":
            return BarProvenance(SYNTHETIC, timeframe, synthetic=True)
        if self.source == "files":
            return BarProvenance("files", timeframe, synthetic=False)
        picked = self._store(brain).source_for(symbol)
        return BarProvenance(f"store:{picked}", timeframe, synthetic=False)

    def _store(self, brain: BrainStore | None) -> StoreSource:
        from brain_assets.market_data.store_source import StoreSource

        if brain is None:
            raise ValueError(f"the {self.source} market source reads the Brain's bar store")
        return StoreSource(brain, self.timeframe, self.store_source)
