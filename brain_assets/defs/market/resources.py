"""Which exchange the deployment fetches bars from (environment variables: see
docs/configuration.md)."""

import os
from typing import Any

import dagster as dg
from pydantic import Field

from brain_assets.environment import DEFAULT_TIMEFRAME, EXCHANGE_ENV
from brain_assets.market_data.exchange import DEFAULT_PAGE

__all__ = ["EXCHANGE_ENV", "ExchangeResource", "exchange_configured", "exchange_resource"]


class ExchangeResource(dg.ConfigurableResource):
    """A ccxt exchange id (``binance``, ``kraken``, ...); empty: no exchange configured, and the
    fetch refuses to run. ``since``: the first bar of a symbol fetched for the first time."""

    exchange: str = ""
    timeframe: str = DEFAULT_TIMEFRAME
    since: str = Field(default="", description="ISO time of the first bar of a new symbol")
    page_limit: int = DEFAULT_PAGE

    def client(self) -> object:
        from brain_assets.market_data.exchange import make_exchange

        if not self.exchange.strip():
            raise ValueError(
                "no exchange configured: set BRAIN_EXCHANGE (for example binance) or the "
                "exchange resource's config"
            )
        return make_exchange(self.exchange.strip())


def exchange_resource() -> ExchangeResource:
    """The deployment's exchange: each variable of EXCHANGE_ENV that is set, through EnvVar."""
    settings: dict[str, Any] = {
        field: dg.EnvVar(variable)
        for field, variable in EXCHANGE_ENV.items()
        if os.environ.get(variable, "").strip()
    }
    return ExchangeResource(**settings)


def exchange_configured() -> bool:
    return bool(os.environ.get(EXCHANGE_ENV["exchange"], "").strip())
