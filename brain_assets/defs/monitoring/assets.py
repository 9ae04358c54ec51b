"""Live monitoring of each symbol's active model, and the registry state the UI shows."""

import logging
from collections.abc import Iterator
from typing import Any

import dagster as dg

from brain_assets.alerts import alert_through_outbox
from brain_assets.defs.metadata import markdown_table, registry_markdown
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.partitions import IO_MANAGER_KEY, run_symbols, symbols
from brain_assets.defs.progress import each_symbol
from brain_assets.defs.resources import (
    BrainResource,
    DecisionResource,
    MarketDataResource,
    RetrainResource,
)
from brain_assets.defs.retrain.assets import registry_entries
from brain_assets.defs.retrain.checks import check_specs, evaluate, quality_records, record_checks
from brain_assets.defs.retries import retry_transient
from brain_assets.events import log_event
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.pipeline.bars import PreparedBars, prepare_bars
from brain_assets.pipeline.monitoring import LiveEvaluation, evaluate_active_model

GROUP = "monitoring"
LIVE_METRICS_KEY = dg.AssetKey("live_model_metrics")


@dg.asset(
    partitions_def=symbols,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    io_manager_key=IO_MANAGER_KEY,
    deps=[registry_entries],
    kinds={"postgres"},
    check_specs=check_specs("live_model_metrics"),
)
@retry_transient
def live_model_metrics(
    context: dg.AssetExecutionContext,
    market: MarketDataResource,
    retrain: RetrainResource,
    monitoring: MonitoringResource,
    decisions: DecisionResource,
    brain: BrainResource,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """The ACTIVE model of each symbol evaluated on the most recent bars it never saw, stored
    in model_metrics, and judged against its honest baseline (see decisions.policy); the
    earlier versions a rollback could return to are evaluated on the same bars.

    Each partition's materialisation carries ``regressed``; rollback_sensor reads it."""
    settings = retrain.settings()
    result: dict[str, dict[str, Any]] = {}
    for symbol in each_symbol(context, "live_model_metrics", run_symbols(context)):
        # The bars that judge the trading model pass the same cleaning and schema as training.
        bars = prepare_bars(symbol, market.load(symbol, brain.library).frame, settings)
        _log_bars_quality(brain, symbol, bars, context.run.run_id)
        if not bars.usable:
            log_event(
                "data_quality_failed",
                logging.WARNING,
                symbol=symbol,
                check="ohlcv_valid",
                stage="monitoring",
                message=bars.valid.message,
            )
            context.log.warning(f"{symbol}: bars failed ohlcv_valid; no verdict this time")
            result[symbol] = _no_verdict(context, symbol, "blocked", bars.valid.message)
            continue
        live = evaluate_active_model(
            brain.library,
            symbol,
            bars.frame,
            settings,
            rollback_threshold=decisions.rollback_threshold,
            monitored=tuple(monitoring.monitored_metrics),
            min_bars=monitoring.min_bars,
            window_bars=monitoring.window_bars,
            policy=decisions.policy(),
        )
        if live is None:
            # Either nothing was ever active, or the active artifact could not be loaded and no
            # earlier version could: the Brain's reason says which.
            reason = brain.library.trading_status(symbol).reason
            context.log.warning(f"{symbol}: no active model to monitor: {reason}")
            result[symbol] = _no_verdict(context, symbol, "stand_aside", reason)
            continue
        result[symbol] = live.to_json()
        drift = live.assessment.drift or {}
        if drift.get("flagged"):
            _alert_drift(brain, symbol, live, drift)
        context.add_asset_metadata(_live_metadata(live, drift), partition_key=symbol)
    yield dg.Output(result)
    yield from record_checks(
        brain.library, context.run.run_id, evaluate("live_model_metrics", result, settings)
    )


def _log_bars_quality(brain: BrainResource, symbol: str, bars: PreparedBars, run_id: str) -> None:
    """The cleaning record and every check's outcome on the bars, in one write."""
    brain.library.log_data_quality_many(
        [
            bars.cleaning_record(run_id),
            *(
                record
                for name, outcome in bars.outcomes().items()
                for record in quality_records(name, {symbol: outcome}, run_id)
            ),
        ]
    )


def _no_verdict(
    context: dg.AssetExecutionContext, symbol: str, why: str, message: str
) -> dict[str, Any]:
    """Marks the partition not regressed with ``why`` (blocked, stand_aside); its result row."""
    context.add_asset_metadata(
        {"regressed": False, "model_id": "none", why: message}, partition_key=symbol
    )
    return {"model_id": None, why: message}


def _alert_drift(
    brain: BrainResource, symbol: str, live: LiveEvaluation, drift: dict[str, Any]
) -> None:
    # Through the outbox: the retrain that the drift calls for is an operator's call.
    alert_through_outbox(
        brain.library,
        "input_drift",
        {
            "symbol": symbol,
            "model_id": live.model_id,
            "version": live.version,
            "max_psi": drift["max_psi"],
            "drifted_features": drift["drifted_features"],
            "threshold": drift["threshold"],
            "action": drift["action"],
            "window": list(live.window),
        },
    )


def _live_metadata(live: LiveEvaluation, drift: dict[str, Any]) -> dict[str, Any]:
    """The partition's materialisation metadata: the verdict and what it rests on."""
    worst = live.assessment.worst or {}
    cumulative = live.assessment.cumulative or {}
    fallback = (
        {"fell_back_from": dg.MetadataValue.json(live.fell_back_from)}
        if live.fell_back_from
        else {}
    )
    return {
        **fallback,
        "regressed": live.assessment.regressed,
        "model_id": live.model_id,
        "version": live.version,
        "bars": live.n_bars,
        "window": f"{live.window[0]} .. {live.window[1]}",
        "worst_metric": str(worst.get("metric")),
        "relative_degradation": float(worst.get("relative_degradation", 0.0)),
        "threshold": live.assessment.threshold,
        "p_value": float(1.0 if live.assessment.p_value is None else live.assessment.p_value),
        "rule": live.assessment.rule or "",
        "trigger": str(live.assessment.trigger or "none"),
        **_record_and_drift_metadata(cumulative, drift),
        "comparison": dg.MetadataValue.md(
            markdown_table(
                live.assessment.comparisons,
                ["metric", "baseline", "new", "relative_degradation"],
            )
        ),
    }


def _record_and_drift_metadata(
    cumulative: dict[str, Any], drift: dict[str, Any]
) -> dict[str, float | int]:
    """The record since activation and the inputs' drift, as numbers the UI can plot (only
    those measured: a record too short to judge has no bound yet)."""
    shown: dict[str, float | int] = {}
    if cumulative:
        shown["record_bars"] = int(cumulative["bars"])
        shown["record_mean_bps"] = float(cumulative["mean_bps"])
        if cumulative.get("upper_bound_bps") is not None:
            shown["record_upper_bound_bps"] = float(cumulative["upper_bound_bps"])
    if drift:
        shown["input_max_psi"] = float(drift["max_psi"])
        shown["input_drifted_features"] = int(drift["drifted_features"])
    return shown


@dg.asset(
    partitions_def=symbols,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    io_manager_key=IO_MANAGER_KEY,
    kinds={"postgres"},
)
@retry_transient
def model_registry_state(
    context: dg.AssetExecutionContext,
    live_model_metrics: dict[str, dict[str, Any]],
    monitoring: MonitoringResource,
    decisions: DecisionResource,
    brain: BrainResource,
) -> dict[str, dict[str, Any]]:
    """Rolls a symbol back (or, with no version fit to return to, stands it aside) when its
    live metrics regressed, then records which version is active (the table people read in
    the UI)."""
    versioning = ModelVersioning(brain.library, policy=decisions.policy())
    result: dict[str, dict[str, Any]] = {}
    for symbol in each_symbol(context, "model_registry_state", list(live_model_metrics)):
        live = live_model_metrics[symbol]
        rolled_back = bool(live.get("model_id")) and versioning.check_and_rollback(
            live["model_id"],
            symbol,
            live["metrics"],
            decisions.rollback_threshold,
            monitored=tuple(monitoring.monitored_metrics),
            as_of=live.get("as_of") or None,
            candidates=live.get("candidates"),
        )
        active = brain.library.get_active_model(symbol)
        result[symbol] = {
            "rolled_back": rolled_back,
            "active_model_id": None if active is None else active.model_id,
        }
        context.add_asset_metadata(
            {
                "rolled_back": rolled_back,
                "active_version": None if active is None else active.version,
                "registry": dg.MetadataValue.md(registry_markdown(brain.library, symbol)),
            },
            partition_key=symbol,
        )
    return result
