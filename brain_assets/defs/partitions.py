"""The one partitions definition: trading symbols, kept verbatim (``BTC/USDT``)."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from brain_assets.store import validation

symbols = dg.DynamicPartitionsDefinition(name="symbols")

DEMO_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")


def validate_symbol(symbol: object) -> str:
    """Dagster does not check dynamic keys; a bad one would break ranges or the store."""
    name = validation.symbol(symbol)
    if "..." in name or "," in name:
        raise ValueError(f"symbol {name!r} must not contain '...' or ',' (partition syntax)")
    return name


def add_symbols(instance: dg.DagsterInstance, names: Iterable[str]) -> list[str]:
    """Register symbols as partitions (validated first, all or none); returns the new ones."""
    wanted = [validate_symbol(name) for name in names]
    existing = set(instance.get_dynamic_partitions(symbols.name))  # type: ignore[arg-type]
    new = [name for name in dict.fromkeys(wanted) if name not in existing]
    if new:
        instance.add_dynamic_partitions(symbols.name, new)  # type: ignore[arg-type]
    return new


def run_symbols(context: dg.AssetExecutionContext) -> list[str]:
    """The symbols this run materialises (one, or several in a single-run backfill)."""
    try:
        return [validate_symbol(key) for key in context.partition_keys]
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
