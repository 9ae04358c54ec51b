"""Per-symbol progress of a stage, in Dagster's log and as a named event."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import dagster as dg

from brain_assets.events import log_event


def each_symbol(
    context: dg.AssetExecutionContext, stage: str, symbols: Sequence[str]
) -> Iterator[str]:
    total = len(symbols)
    for done, symbol in enumerate(symbols, 1):
        started = time.perf_counter()
        yield symbol
        seconds = time.perf_counter() - started
        context.log.info(f"{stage} [{done}/{total}] {symbol} in {seconds:.2f} s")
        log_event(
            "retrain_progress",
            stage=stage,
            symbol=symbol,
            done=done,
            total=total,
            seconds=round(seconds, 3),
        )
