"""The volatility regime of every bar of each symbol, its history stored in the Brain."""

from typing import Any

import dagster as dg
import pandas as pd

from brain_assets.defs.metadata import markdown_table
from brain_assets.defs.partitions import DAILY_RETRAIN_GROUP, per_symbol
from brain_assets.defs.progress import each_symbol
from brain_assets.defs.resources import BrainResource
from brain_assets.defs.retries import retry_transient
from brain_assets.regimes.classify import classify_regimes, current_regime
from brain_assets.store.validation import REGIMES


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
        frame = classify_regimes(market_data[symbol])
        brain.library.store_regimes(symbol, frame)
        frames[symbol] = frame
        now = current_regime(frame)
        counts = frame["regime"].value_counts()
        rows.append(
            {
                "symbol": symbol,
                "current": None if now is None else now["regime"],
                "as_of": None if now is None else str(now["timestamp"]),
                **{regime: int(counts.get(regime, 0)) for regime in REGIMES},
                "unclassified": int(frame["regime"].isna().sum()),
            }
        )
    context.add_output_metadata(
        {
            "regimes": dg.MetadataValue.md(
                markdown_table(rows, ["symbol", "current", "as_of", *REGIMES, "unclassified"])
            ),
        }
    )
    return frames
