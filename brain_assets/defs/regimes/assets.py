"""The volatility regime of every bar of each symbol, its history stored in the Brain."""

from typing import Any

import dagster as dg
import pandas as pd

from brain_assets.defs.metadata import markdown_table
from brain_assets.defs.partitions import DAILY_RETRAIN_GROUP, per_symbol
from brain_assets.defs.progress import each_symbol
from brain_assets.defs.resources import BrainResource
from brain_assets.defs.retries import retry_transient
from brain_assets.pipeline.regimes import SUMMARY_COLUMNS, classify_symbol


@dg.asset(
    **per_symbol(DAILY_RETRAIN_GROUP),
    ins={"market_data": dg.AssetIn("market_data")},
    kinds={"pandas", "postgres"},
)
@retry_transient
def volatility_regime(
    context: dg.AssetExecutionContext,
    market_data: dict[str, pd.DataFrame],
    brain: BrainResource,
) -> dict[str, pd.DataFrame]:
    """Realised volatility against its own trailing history (no future bar): low, normal, high
    or extreme per bar. The current regime is what ModelSelector uses by default."""
    frames: dict[str, pd.DataFrame] = {}
    rows: list[dict[str, Any]] = []
    for symbol in each_symbol(context, "volatility_regime", list(market_data)):
        frames[symbol], summary = classify_symbol(brain.library, symbol, market_data[symbol])
        rows.append(summary)
    context.add_output_metadata(
        {"regimes": dg.MetadataValue.md(markdown_table(rows, SUMMARY_COLUMNS))}
    )
    return frames
