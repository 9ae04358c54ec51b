"""Nightly feature analysis: each symbol's current model re-analysed on the latest bars, and the
trend of its ranking (the work is ``importance.nightly.run_nightly_feature_analysis``)."""

import time
from typing import Any

import dagster as dg

from brain_assets.defs.metadata import markdown_table
from brain_assets.defs.partitions import IO_MANAGER_KEY, run_symbols, symbols
from brain_assets.defs.resources import BrainResource, MarketDataResource, RetrainResource
from brain_assets.defs.retrain.assets import registry_entries
from brain_assets.defs.retries import MAX_RETRIES, WAIT_S, is_transient, retry_transient
from brain_assets.importance.nightly import (
    STAGE,
    TREND_TOP_N,
    NightlyAnalysis,
    run_nightly_feature_analysis,
)


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
    """Re-analyses each symbol's active model (the latest version of a symbol standing aside) on
    its most recent bars and records how the ranking moved against the previous analysis of the
    same model and method. Fails, once every symbol has run, when any symbol failed."""

    def report(result: NightlyAnalysis, done: int, total: int) -> None:
        line = f"{STAGE} [{done}/{total}] {result.symbol} in {result.seconds:.2f} s"
        if result.status == "analysed":
            context.log.info(f"{line}: v{result.version} {result.model_type}, {result.reason}")
        elif result.status == "no_model":
            context.log.warning(f"{line}: no model ({result.reason}); run daily_retrain first")
        else:
            context.log.error(f"{line}: FAILED: {result.reason}")

    def analyse(names: list[str]) -> list[NightlyAnalysis]:
        return run_nightly_feature_analysis(
            retrain.settings(), names, brain=brain.library, market=market, on_symbol=report
        )

    results = analyse(run_symbols(context))
    # A database blip retries only the symbols it hit: analysing the others again would store
    # a second analysis minutes after the first, and their trend would show no movement.
    for _ in range(MAX_RETRIES):
        blipped = [r.symbol for r in results if r.error is not None and is_transient(r.error)]
        if not blipped:
            break
        context.log.warning(f"{STAGE}: retrying {', '.join(blipped)} after a database error")
        time.sleep(WAIT_S)
        again = {result.symbol: result for result in analyse(blipped)}
        results = [again.get(result.symbol, result) for result in results]
    trend = dg.MetadataValue.md(_trend_markdown(results))
    failed = [result for result in results if result.failed]
    if failed:
        raise dg.Failure(
            description="; ".join(f"{result.symbol}: {result.reason}" for result in failed),
            metadata={"trend": trend},
        )
    context.add_output_metadata({"trend": trend})
    return {result.symbol: result.to_json() for result in results}


def _trend_markdown(results: list[NightlyAnalysis]) -> str:
    sections = []
    for result in results:
        for method, moves in result.trend.items():
            sections.append(
                f"### {result.symbol} · {method} (v{result.version} {result.model_type}, "
                f"{result.model_choice})\n\nentered top {TREND_TOP_N}: "
                f"{', '.join(moves['entered']) or 'none'}; left: "
                f"{', '.join(moves['left']) or 'none'}\n\n"
                + markdown_table(
                    moves["changes"][:10], ["feature", "rank", "previous_rank", "rank_change"]
                )
            )
    return "\n\n".join(sections) or "none"
