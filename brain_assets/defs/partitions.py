"""The one partitions definition: trading symbols, kept verbatim (``BTC/USDT``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dagster as dg

from brain_assets.store import validation

symbols = dg.DynamicPartitionsDefinition(name="symbols")

DEMO_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")

DAILY_RETRAIN_GROUP = "daily_retrain"
IO_MANAGER_KEY = "brain_io_manager"
# One run per symbol: a run is the unit that a blocking check stops, so a bad symbol stops only
# its own run; the run queue (dagster.yaml) runs them side by side on every core.
ONE_SYMBOL_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def per_symbol(group_name: str) -> dict[str, Any]:
    """The asset arguments every per-symbol asset stored by the Brain's IO manager shares."""
    return {
        "partitions_def": symbols,
        "backfill_policy": ONE_SYMBOL_PER_RUN,
        "group_name": group_name,
        "io_manager_key": IO_MANAGER_KEY,
    }


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
