"""Nightly feature analysis: the active model's importance on the latest bars, and its trend."""

from typing import Any

import dagster as dg

from brain_assets.defs.metadata import markdown_table
from brain_assets.defs.partitions import IO_MANAGER_KEY, run_symbols, symbols
from brain_assets.defs.progress import each_symbol
from brain_assets.defs.resources import BrainResource, MarketDataResource, RetrainResource
from brain_assets.defs.retrain.assets import registry_entries
from brain_assets.defs.retries import retry_transient
from brain_assets.importance.trend import compare_rankings
from brain_assets.pipeline.bars import prepare_bars
from brain_assets.pipeline.dataset import make_dataset, split_columns
from brain_assets.pipeline.importance import analyze_model, analyzer_for
from brain_assets.training.serialization import deserialize_model

TREND_TOP_N = 20


@dg.asset(
    partitions_def=symbols,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="nightly_feature_analysis",
    io_manager_key=IO_MANAGER_KEY,
    deps=[registry_entries],
    kinds={"shap", "postgres"},
)
@retry_transient
def feature_importance_trend(
    context: dg.AssetExecutionContext,
    market: MarketDataResource,
    retrain: RetrainResource,
    brain: BrainResource,
) -> dict[str, dict[str, Any]]:
    """Re-analyses each symbol's ACTIVE model on its most recent bars and records how the
    ranking moved against the previous analysis of the same model and method."""
    settings = retrain.settings()
    library = brain.library
    result: dict[str, dict[str, Any]] = {}
    sections = []
    for symbol in each_symbol(context, "feature_importance_trend", run_symbols(context)):
        active = library.get_active_model(symbol)
        if active is None:
            context.log.warning(f"{symbol}: no active model; run daily_retrain first")
            result[symbol] = {"model_id": None, "trend": {}}
            continue
        model = deserialize_model(
            library.load_model_artifact(active["model_id"]), active["artifact_format"]
        )
        bars = prepare_bars(symbol, market.load(symbol, library).frame, settings)
        if not bars.usable:
            context.log.warning(f"{symbol}: bars failed ohlcv_valid ({bars.valid.message})")
            result[symbol] = {"model_id": active["model_id"], "trend": {}}
            continue
        table = make_dataset(bars.frame, settings.horizon, max_gap_bars=settings.max_gap_bars)
        X, y, _ = split_columns(table)
        previous = {
            method: library.get_top_features(
                symbol, top_n=1000, method=method, model_id=active["model_id"]
            )
            for method in settings.importance_methods
        }
        # analyze_model gives a sequence model its past context rows.
        analysis = analyze_model(
            analyzer_for(active["model_type"], settings, library),
            symbol,
            model,
            X,
            y,
            settings,
            model_id=active["model_id"],
        )
        trend = {
            method: compare_rankings(previous[method], table, TREND_TOP_N)
            for method, table in analysis.tables.items()
        }
        result[symbol] = {
            "model_id": active["model_id"],
            "trend": trend,
            "failures": analysis.failures,
        }
        for method, moves in trend.items():
            sections.append(
                f"### {symbol} · {method}\n\nentered top {TREND_TOP_N}: "
                f"{', '.join(moves['entered']) or 'none'}; left: "
                f"{', '.join(moves['left']) or 'none'}\n\n"
                + markdown_table(
                    moves["changes"][:10], ["feature", "rank", "previous_rank", "rank_change"]
                )
            )
    context.add_output_metadata({"trend": dg.MetadataValue.md("\n\n".join(sections) or "none")})
    return result
