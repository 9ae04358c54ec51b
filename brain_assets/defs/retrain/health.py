"""Metadata of the market_data and data_quality assets: what the cleaning did and how each
symbol's data health moves from run to run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from brain_assets.defs.metadata import chart_line, markdown_table, row_count
from brain_assets.library import BrainLibrary
from brain_assets.market_data.base import MarketData
from brain_assets.pipeline.bars import PreparedBars
from brain_assets.plots import data_health_png, write_chart
from brain_assets.store.quality import CLEANING_CHECK

# Runs shown in the health chart: about a month of daily retrains.
HISTORY_RUNS = 30


def bars_metadata(
    prepared: Mapping[str, PreparedBars], sources: Mapping[str, MarketData]
) -> dict[str, Any]:
    rows = []
    for symbol, p in prepared.items():
        stamps = p.frame["timestamp"]
        data = sources[symbol]
        rows.append(
            {
                "symbol": symbol,
                "raw": p.cleaning.raw_rows,
                "rows": len(p.frame),
                "first": str(stamps.min()) if len(stamps) else None,
                "last": str(stamps.max()) if len(stamps) else None,
                "frequency": data.frequency,
                "source": data.source,
                "synthetic": bool(data.metadata.get("synthetic", False)),
                "edge": data.metadata.get("edge", "none known"),
                "cleaning": p.cleaning.summary()
                + ("" if p.left_out is None else f"; {p.left_out.reason()}"),
            }
        )
    columns = [
        "symbol",
        "raw",
        "rows",
        "first",
        "last",
        "frequency",
        "source",
        "synthetic",
        "edge",
    ]
    return {
        **row_count(sum(len(p.frame) for p in prepared.values())),
        "bars_dropped": dg.MetadataValue.int(sum(p.cleaning.dropped for p in prepared.values())),
        "bars_repaired": dg.MetadataValue.int(sum(p.cleaning.repaired for p in prepared.values())),
        "symbols": dg.MetadataValue.md(markdown_table(rows, columns)),
        "cleaning": dg.MetadataValue.md(markdown_table(rows, ["symbol", "cleaning"])),
    }


def _actions_table(prepared: Mapping[str, PreparedBars]) -> str:
    rows = [
        {
            "symbol": symbol,
            "rule": action.rule,
            "action": action.action,
            "bars": action.count,
            "examples": "; ".join(
                f"{e.get('timestamp')} ({e.get('values')})" for e in action.examples[:3]
            ),
        }
        for symbol, p in prepared.items()
        for action in p.cleaning.actions
    ]
    if not rows:
        return "No bar needed cleaning."
    return markdown_table(rows, ["symbol", "rule", "action", "bars", "examples"])


def health_history(brain: BrainLibrary, symbol: str, limit: int = HISTORY_RUNS) -> pd.DataFrame:
    """The symbol's last ``limit`` cleaning records, oldest first: dropped, repaired, blocked."""
    logs = brain.get_data_quality_logs(symbol, limit=limit * 4)
    logs = logs[logs["check_name"] == CLEANING_CHECK].head(limit).iloc[::-1]
    details = [d or {} for d in logs["details"]]
    cleaning = [d.get("cleaning", {}) for d in details]
    return pd.DataFrame(
        {
            "timestamp": list(logs["timestamp"]),
            "dropped": [int(c.get("dropped", 0)) for c in cleaning],
            "repaired": [int(c.get("repaired", 0)) for c in cleaning],
            # Each cleaning record carries the bars' verdict in its run.
            "blocked": [not d.get("usable", True) for d in details],
        }
    )


def health_charts(brain: BrainLibrary, prepared: Mapping[str, PreparedBars]) -> dict[str, Path]:
    """Each symbol's data-health chart over its last runs, as a chart file (none for a symbol
    without a cleaning record yet, or when the file cannot be written)."""
    charts = {}
    for symbol in prepared:
        history = health_history(brain, symbol)
        if len(history):
            png = data_health_png(history, f"{symbol}: data health, last {len(history)} runs")
            path = write_chart(png, symbol, "data_quality", "data_health")
            if path is not None:
                charts[symbol] = path
    return charts


def health_metadata(
    prepared: Mapping[str, PreparedBars], charts: Mapping[str, Path]
) -> dict[str, Any]:
    rows = [
        {
            "symbol": symbol,
            "usable": p.usable,
            "raw": p.cleaning.raw_rows,
            "kept": p.cleaning.clean_rows,
            "dropped": p.cleaning.dropped,
            "repaired": p.cleaning.repaired,
            "affected": f"{p.cleaning.affected_fraction:.2%}",
            "gaps": None if p.gaps is None else p.gaps.gaps,
            "rows_excluded_by_gaps": None if p.gaps is None else p.gaps.rows_excluded,
            "ohlcv_valid": p.valid.message,
        }
        for symbol, p in prepared.items()
    ]
    lines = [chart_line(path, f"{symbol}: data health") for symbol, path in charts.items()]
    return {
        # Numbers, so that the UI plots them run after run for each symbol's partition.
        "blocked_symbols": dg.MetadataValue.int(sum(not p.usable for p in prepared.values())),
        "bars_dropped": dg.MetadataValue.int(sum(p.cleaning.dropped for p in prepared.values())),
        "bars_repaired": dg.MetadataValue.int(sum(p.cleaning.repaired for p in prepared.values())),
        "affected_fraction": dg.MetadataValue.float(
            max((p.cleaning.affected_fraction for p in prepared.values()), default=0.0)
        ),
        "rows_excluded_by_gaps": dg.MetadataValue.int(
            sum(p.gaps.rows_excluded for p in prepared.values() if p.gaps is not None)
        ),
        "health": dg.MetadataValue.md(
            markdown_table(
                rows,
                [
                    "symbol",
                    "usable",
                    "raw",
                    "kept",
                    "dropped",
                    "repaired",
                    "affected",
                    "gaps",
                    "rows_excluded_by_gaps",
                    "ohlcv_valid",
                ],
            )
        ),
        "cleaning_applied": dg.MetadataValue.md(_actions_table(prepared)),
        "history": dg.MetadataValue.md("\n\n".join(lines) if lines else "no history yet"),
    }
