"""Market data sources by name: what ``make_source('files', folder=...)`` builds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from brain_assets.market_data.base import SOURCE_KINDS, MarketDataSource
from brain_assets.market_data.files import FileSource
from brain_assets.market_data.synthetic import SyntheticSource


def make_source(kind: str, **options: Any) -> MarketDataSource:
    """Build the source named ``kind`` ('synthetic' or 'files') with its keyword ``options``.

    ``make_source('synthetic', seed=7)`` or ``make_source('files', folder='data/ohlcv')``.
    """
    factories: Mapping[str, Any] = {"synthetic": SyntheticSource, "files": FileSource}
    factory = factories.get(kind)
    if factory is None:
        valid = ", ".join(repr(name) for name in SOURCE_KINDS)
        raise ValueError(f"kind: unknown market data source {kind!r}; valid kinds are {valid}")
    try:
        source: MarketDataSource = factory(**options)
    except TypeError as exc:
        # An unexpected keyword otherwise surfaces as a bare constructor TypeError.
        raise ValueError(f"options for the {kind!r} market data source: {exc}") from exc
    return source
