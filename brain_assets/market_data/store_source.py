"""Bars from the Brain's bar store (filled by ``brain data fetch`` and ``brain data import``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from brain_assets.calendar import bar_seconds, frequency_label
from brain_assets.market_data.base import MarketData, check_symbol

if TYPE_CHECKING:
    from brain_assets.store.library import BrainStore


class StoreSource:
    """One symbol's bars of one timeframe from the bar store.

    ``source`` names the exchange (or ``files`` for imports) to read; empty means the only
    source that holds bars of the symbol and timeframe (several is an error that names them:
    mixing two exchanges' prints in one series would be wrong).
    """

    name = "store"

    def __init__(self, brain: BrainStore, timeframe: str = "1h", source: str = "") -> None:
        self.brain = brain
        self.timeframe = timeframe
        self.source = source

    def __repr__(self) -> str:
        return f"StoreSource(timeframe={self.timeframe!r}, source={self.source!r})"

    def holds(self, symbol: str) -> bool:
        """Whether the store has bars of ``symbol`` in this timeframe (from ``source``)."""
        sources = self.brain.bar_sources(symbol, self.timeframe)
        return bool(sources) and (not self.source or self.source in sources)

    def load(self, symbol: str) -> MarketData:
        symbol = check_symbol(symbol)
        chosen = self.source_for(symbol)
        frame = self.brain.load_bars(chosen, symbol, self.timeframe)
        spacing = bar_seconds(frame["timestamp"]) if frame["timestamp"].nunique() > 1 else None
        return MarketData(
            symbol=symbol,
            frame=frame,
            source=f"store:{chosen}",
            metadata={"store_source": chosen, "timeframe": self.timeframe, "bars": len(frame)},
            bar_seconds=spacing,
            frequency=None if spacing is None else frequency_label(spacing),
        )

    def source_for(self, symbol: str) -> str:
        """The bar store source ``load`` reads ``symbol`` from; a ValueError names why none."""
        symbol = check_symbol(symbol)
        sources = self.brain.bar_sources(symbol, self.timeframe)
        if self.source:
            if self.source not in sources:
                held = ", ".join(sources) or "none"
                raise ValueError(
                    f"{symbol}: the bar store has no {self.timeframe} bars from "
                    f"{self.source!r} (sources holding them: {held}); run `brain data fetch` or "
                    "`brain data import`"
                )
            chosen = self.source
        elif len(sources) == 1:
            chosen = sources[0]
        elif not sources:
            raise ValueError(
                f"{symbol}: the bar store has no {self.timeframe} bars; run `brain data fetch` "
                "or `brain data import`"
            )
        else:
            raise ValueError(
                f"{symbol}: several sources hold {self.timeframe} bars ({', '.join(sources)}); "
                "choose one with the market resource's store_source (BRAIN_BAR_SOURCE)"
            )
        return chosen
