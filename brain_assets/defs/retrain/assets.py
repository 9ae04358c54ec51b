"""The daily retrain's assets, one partition per symbol; each stage calls the core per symbol."""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from brain_assets.alerts import alert_through_outbox
from brain_assets.calendar import bar_seconds, frequency_label, periods_per_year
from brain_assets.defs.market.assets import exchange_bars
from brain_assets.defs.metadata import (
    METRICS_SHOWN,
    chart_line,
    chart_path,
    column_schema,
    markdown_table,
    partition_numbers,
    registry_markdown,
    row_count,
)
from brain_assets.defs.partitions import (
    DAILY_RETRAIN_GROUP,
    IO_MANAGER_KEY,
    ONE_SYMBOL_PER_RUN,
    per_symbol,
    run_symbols,
    symbols,
)
from brain_assets.defs.progress import each_symbol
from brain_assets.defs.resources import (
    BrainResource,
    DecisionResource,
    MarketDataResource,
    RetrainResource,
)
from brain_assets.defs.retrain.checks import check_specs, evaluate, record_checks
from brain_assets.defs.retrain.health import bars_metadata, health_charts, health_metadata
from brain_assets.defs.retries import retry_transient
from brain_assets.errors import MissingBarsError
from brain_assets.evaluation.report import generate_evaluation_report
from brain_assets.events import log_event
from brain_assets.market_data.base import MarketData
from brain_assets.pipeline.bars import PreparedBars, prepare_bars
from brain_assets.pipeline.dataset import CODE_VERSION as FEATURES_VERSION
from brain_assets.pipeline.dataset import (
    TARGET,
    build_dataset_table,
    recent_rows,
    split_columns,
)
from brain_assets.pipeline.evaluation import CODE_VERSION as EVALUATION_VERSION
from brain_assets.pipeline.evaluation import SymbolEvaluation, evaluate_per_regime, evaluate_symbol
from brain_assets.pipeline.importance import analyze_symbol
from brain_assets.pipeline.lstm_model import attention_metrics
from brain_assets.pipeline.registration import CODE_VERSION as REGISTRATION_VERSION
from brain_assets.pipeline.registration import register_evaluation
from brain_assets.pipeline.training import CODE_VERSION as TRAINING_VERSION
from brain_assets.pipeline.training import (
    TrainedArtifact,
    split_for,
    split_summary,
    train_symbol_models,
)
from brain_assets.plots import (
    attention_bars_png,
    equity_curves_png,
    importance_bars_png,
    write_chart,
)
from brain_assets.regimes.classify import REGIMES

BLOCKED_TAG = "brain/blocked_symbols"
COMMON = per_symbol(DAILY_RETRAIN_GROUP)


@dg.multi_asset(
    outs={
        "market_data": dg.AssetOut(
            is_required=False,
            io_manager_key=IO_MANAGER_KEY,
            kinds={"pandas", "postgres"},
            description="OHLCV bars per symbol from the configured source, after the cleaning "
            "policy (bad prints, inconsistent candles and duplicated bars dropped or repaired, "
            "gaps kept).",
        ),
        "data_quality": dg.AssetOut(
            is_required=False,
            io_manager_key=IO_MANAGER_KEY,
            kinds={"postgres"},
            description="Each symbol's data health in this run: the cleaning applied, the bar "
            "checks by severity, gaps and the modelling rows they exclude. Materialised even "
            "when the bars are blocked, so the UI shows bad days too.",
        ),
    },
    partitions_def=symbols,
    backfill_policy=ONE_SYMBOL_PER_RUN,
    group_name=DAILY_RETRAIN_GROUP,
    check_specs=check_specs("market_data"),
    # Lineage only: the bars exchange_bars fetched are what market_data reads from the store
    # (the daily loop in the UI reads fetch -> retrain); the retrain runs without it too.
    deps=[exchange_bars],
    name="market_data",
    # Selecting only market_data (or only data_quality) in the UI must work.
    can_subset=True,
)
@retry_transient
def market_data(
    context: dg.AssetExecutionContext,
    market: MarketDataResource,
    retrain: RetrainResource,
    brain: BrainResource,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    settings = retrain.settings()
    prepared: dict[str, PreparedBars] = {}
    sources: dict[str, MarketData] = {}
    for symbol in each_symbol(context, "market_data", run_symbols(context)):
        data = _load_bars(context, market, brain, symbol)
        sources[symbol] = data
        prepared[symbol] = prepare_bars(symbol, data.frame, settings)
        _log_left_out(symbol, prepared[symbol])
    run_id = context.run.run_id
    results = record_checks(
        brain.library,
        run_id,
        {
            name: {symbol: p.outcomes()[name] for symbol, p in prepared.items()}
            for name in ("ohlcv_valid", "ohlcv_gaps")
        },
        extra_records=[p.cleaning_record(run_id) for p in prepared.values()],
    )
    _report_blocked(context, brain, prepared)
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    if "market_data" in selected:
        first = next(iter(prepared.values())).frame
        yield dg.Output(
            {symbol: p.frame for symbol, p in prepared.items()},
            output_name="market_data",
            metadata={
                **bars_metadata(prepared, sources),
                "dagster/column_schema": column_schema(first),
            },
        )
    if "data_quality" in selected:
        health = {symbol: {**p.health(), "run_id": run_id} for symbol, p in prepared.items()}
        charts = health_charts(brain.library, prepared)
        for symbol, path in charts.items():
            context.add_asset_metadata(
                {"health_chart": chart_path(path)}, asset_key="data_quality", partition_key=symbol
            )
        yield dg.Output(
            health, output_name="data_quality", metadata=health_metadata(prepared, charts)
        )
    checks = {key.name for key in context.selected_asset_check_keys}
    yield from (result for result in results if result.check_name in checks)


def _load_bars(
    context: dg.AssetExecutionContext,
    market: MarketDataResource,
    brain: BrainResource,
    symbol: str,
) -> MarketData:
    """``symbol``'s bars; a load that fails is logged (and alerted when bars are missing)."""
    try:
        return market.load(symbol, brain.library)
    except (ValueError, FileNotFoundError) as exc:
        # Recorded before failing so that the quality log shows why nothing trained.
        brain.library.log_data_quality(
            symbol, "market_data_load", "ERROR", False, 1, {"error": str(exc)}
        )
        log_event("data_quality_failed", logging.ERROR, symbol=symbol, check="load", error=str(exc))
        if isinstance(exc, MissingBarsError):
            alert_through_outbox(
                brain.library,
                "market_data_missing",
                {"symbol": symbol, "run_id": context.run.run_id, "error": str(exc)},
                # A step retried in the same run alerts once.
                dedupe_key=f"{context.run.run_id}:{symbol}",
            )
        raise dg.Failure(description=f"market data for {symbol}: {exc}") from exc


def _log_left_out(symbol: str, prepared: PreparedBars) -> None:
    stretch = prepared.left_out
    if stretch is not None:
        log_event(
            "bars_left_out",
            logging.WARNING,
            symbol=symbol,
            start=stretch.start.isoformat(),
            left_out_rows=stretch.left_out_rows,
            reason=stretch.reason(),
        )


def _report_blocked(
    context: dg.AssetExecutionContext, brain: BrainResource, prepared: dict[str, PreparedBars]
) -> None:
    """Tags the run and alerts when some symbols' bars were refused."""
    run_id = context.run.run_id
    blocked = [symbol for symbol, p in prepared.items() if not p.usable]
    if blocked:
        # A tag, so that the runs list can be filtered to the runs whose bars were refused.
        context.instance.add_run_tags(run_id, {BLOCKED_TAG: ",".join(blocked)})
        # Through the outbox: a webhook that is down now gets it from the alert_outbox sensor.
        alert_through_outbox(
            brain.library,
            "data_quality_blocked",
            {
                "symbols": blocked,
                "run_id": run_id,
                "reasons": {s: prepared[s].valid.message for s in blocked},
            },
        )


@dg.asset(
    **COMMON,
    kinds={"pandas"},
    check_specs=check_specs("features"),
    code_version=FEATURES_VERSION,
)
@retry_transient
def features(
    context: dg.AssetExecutionContext,
    market_data: dict[str, pd.DataFrame],
    retrain: RetrainResource,
    brain: BrainResource,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """Technical features from bars up to and including t, the forward-return target and the
    next bar's return (what a position earns). Rows whose look-back or target spans a gap are
    left out."""
    settings = retrain.settings()
    tables: dict[str, pd.DataFrame] = {}
    gaps = []
    for symbol in each_symbol(context, "features", list(market_data)):
        dataset = build_dataset_table(
            market_data[symbol], settings.horizon, max_gap_bars=settings.max_gap_bars
        )
        tables[symbol] = recent_rows(dataset.table, settings.train_window_bars)
        gaps.append({"symbol": symbol, "rows": len(dataset.table), **dataset.gaps.to_dict()})
    first = next(iter(tables.values()))
    names = list(split_columns(first)[0].columns)
    yield dg.Output(
        tables,
        metadata={
            **row_count(sum(len(t) for t in tables.values())),
            "rows_excluded_by_gaps": dg.MetadataValue.int(
                sum(int(g["rows_excluded"]) for g in gaps)
            ),
            "gaps": dg.MetadataValue.md(
                markdown_table(
                    gaps, ["symbol", "rows", "gaps", "rows_excluded", "largest_gap_bars"]
                )
            ),
            "dagster/column_schema": column_schema(first),
            "feature_count": dg.MetadataValue.int(len(names)),
            "features": dg.MetadataValue.md(", ".join(f"`{n}`" for n in names)),
            "target": dg.MetadataValue.text(f"{TARGET}: return over {settings.horizon} bar(s)"),
            "bar_frequency": dg.MetadataValue.text(frequency_label(bar_seconds(first.index))),
        },
    )
    yield from record_checks(
        brain.library, context.run.run_id, evaluate("features", tables, settings)
    )


@dg.asset(**COMMON, kinds={"sklearn", "keras"}, code_version=TRAINING_VERSION)
@retry_transient
def trained_models(
    context: dg.AssetExecutionContext,
    features: dict[str, pd.DataFrame],
    retrain: RetrainResource,
    brain: BrainResource,
) -> dict[str, dict[str, Any]]:
    """Every configured model type fitted on the walk-forward training segment (skops bytes).

    A model type this machine cannot train (``lstm`` without a loadable TensorFlow) is left out
    of this run only: the others train, and ``skipped_model_types`` says why, with an alert."""
    settings = retrain.settings()
    result: dict[str, dict[str, Any]] = {}
    rows = []
    skipped: dict[str, dict[str, str]] = {}
    for symbol in each_symbol(context, "trained_models", list(features)):
        training = train_symbol_models(symbol, features[symbol], settings)
        artifacts = training.artifacts
        split = split_summary(split_for(features[symbol], settings))
        result[symbol] = {
            "split": split,
            "models": [a.to_json() for a in artifacts],
            "skipped_model_types": training.skipped_model_types,
        }
        context.add_asset_metadata(
            {"skipped_model_types": dg.MetadataValue.json(training.skipped_model_types)},
            partition_key=symbol,
        )
        if training.skipped_model_types:
            skipped[symbol] = training.skipped_model_types
        rows += [
            {
                "symbol": symbol,
                "model_type": a.model_type,
                "fit_seconds": a.fit_seconds,
                "artifact_kb": round(len(a.artifact) / 1024, 1),
                "hyperparameters": ", ".join(f"{k}={v}" for k, v in a.hyperparameters.items()),
            }
            for a in artifacts
        ]
    if skipped:
        # One alert for the run: the cause (this machine's TensorFlow) is the same for every
        # symbol, and the outbox delivers it even if the webhook is down right now.
        alert_through_outbox(
            brain.library,
            "model_type_skipped",
            {
                **({"symbol": next(iter(skipped))} if len(skipped) == 1 else {}),
                "symbols": sorted(skipped),
                "model_types": sorted({t for types in skipped.values() for t in types}),
                "reasons": sorted({why for types in skipped.values() for why in types.values()}),
                "run_id": context.run.run_id,
                "skipped": skipped,
            },
        )
    context.add_output_metadata(
        {
            "models": dg.MetadataValue.md(
                markdown_table(
                    rows, ["symbol", "model_type", "fit_seconds", "artifact_kb", "hyperparameters"]
                )
            )
        }
    )
    return result


def _artifacts(entry: dict[str, Any]) -> list[TrainedArtifact]:
    return [TrainedArtifact.from_json(doc) for doc in entry["models"]]


@dg.asset(
    **COMMON,
    ins={"volatility_regime": dg.AssetIn("volatility_regime")},
    kinds={"pandas"},
    check_specs=check_specs("model_evaluation"),
    code_version=EVALUATION_VERSION,
)
@retry_transient
def model_evaluation(
    context: dg.AssetExecutionContext,
    features: dict[str, pd.DataFrame],
    trained_models: dict[str, dict[str, Any]],
    volatility_regime: dict[str, pd.DataFrame],
    retrain: RetrainResource,
    brain: BrainResource,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """Out-of-sample metrics (24/7 annualisation, net of fees), overall and per volatility
    regime, with equity curves over the shaded regimes."""
    settings = retrain.settings()
    result: dict[str, dict[str, Any]] = {}
    sections = []
    for symbol in each_symbol(context, "model_evaluation", list(trained_models)):
        table = features[symbol]
        ppy = periods_per_year(table.index)
        evaluation = evaluate_per_regime(
            evaluate_symbol(symbol, table, _artifacts(trained_models[symbol]), settings, ppy),
            table,
            volatility_regime[symbol]["regime"],
            periods_per_year=ppy,
            fee_bps=settings.fee_bps,
        )
        result[symbol] = evaluation.to_json()
        charts = _evaluation_charts(symbol, evaluation)
        sections.append(_evaluation_section(symbol, evaluation, charts))
        # Numbers plotted by the UI across this partition's materialisations; the chart files.
        context.add_asset_metadata(
            {
                **partition_numbers(evaluation.headline()),
                **{key: chart_path(path) for key, path in charts.items()},
            },
            partition_key=symbol,
        )
    yield dg.Output(result, metadata={"evaluation": dg.MetadataValue.md("\n\n".join(sections))})
    yield from record_checks(
        brain.library, context.run.run_id, evaluate("model_evaluation", result, settings)
    )


def _evaluation_charts(symbol: str, evaluation: SymbolEvaluation) -> dict[str, Path]:
    """The equity curves over the shaded regimes and each LSTM's attention per lag, as chart
    files keyed by their metadata name (one that cannot be written is left out)."""
    evaluations = evaluation.evaluations
    test = evaluations[0].equity.index
    equity = equity_curves_png(
        {e.model_type: e.equity for e in evaluations},
        f"{symbol}: test-segment equity over volatility regimes",
        regimes=evaluation.regimes.reindex(test),
    )
    charts = {"equity_chart": write_chart(equity, symbol, "model_evaluation", "equity")}
    for e in evaluations:
        attention = e.extras.get("attention_mean")
        if attention:
            png = attention_bars_png(attention, f"{symbol}: {e.model_type} mean attention per lag")
            charts[f"attention_chart_{e.model_type}"] = write_chart(
                png, symbol, "model_evaluation", f"attention_{e.model_type}"
            )
    return {key: path for key, path in charts.items() if path is not None}


def _evaluation_section(symbol: str, evaluation: SymbolEvaluation, charts: dict[str, Path]) -> str:
    evaluations = evaluation.evaluations
    rows = [{"model_type": e.model_type, **e.metrics} for e in evaluations]
    comparison = [
        {
            "model_type": model_type,
            **{
                regime: (
                    f"{scores[regime]['composite_score']:.3f} ({scores[regime]['n_bars']})"
                    if regime in scores and scores[regime].get("composite_score") is not None
                    else "too few bars"
                )
                for regime in REGIMES
            },
        }
        for model_type, scores in evaluation.by_regime.items()
    ]
    parts = [
        f"### {symbol}",
        markdown_table(rows, ["model_type", *METRICS_SHOWN]),
        "**Composite score by volatility regime (bars)**",
        markdown_table(comparison, ["model_type", *REGIMES]),
        *(chart_line(path, f"{symbol}: {key.replace('_', ' ')}") for key, path in charts.items()),
    ]
    best = evaluation.best
    parts.append(
        generate_evaluation_report(
            best.metrics,
            title=f"{symbol}: best model ({best.model_type})",
            per_regime=evaluation.by_regime[best.model_type],
        )
    )
    return "\n\n".join(parts)


@dg.asset(
    **COMMON,
    kinds={"postgres"},
    check_specs=check_specs("registry_entries"),
    code_version=REGISTRATION_VERSION,
)
@retry_transient
def registry_entries(
    context: dg.AssetExecutionContext,
    features: dict[str, pd.DataFrame],
    trained_models: dict[str, dict[str, Any]],
    model_evaluation: dict[str, dict[str, Any]],
    market: MarketDataResource,
    retrain: RetrainResource,
    decisions: DecisionResource,
    brain: BrainResource,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """New model versions in the registry (artifact + sha256) and the symbol's active model:
    a version trades only above the activation floor, and replaces the active one only when it
    beats it on the same recent bars (see decisions.policy)."""
    settings = retrain.settings()
    policy = decisions.policy()
    result: dict[str, dict[str, Any]] = {}
    sections = []
    for symbol in each_symbol(context, "registry_entries", list(trained_models)):
        evaluation = model_evaluation[symbol]
        extras = evaluation.get("extras", {})
        # The LSTM's mean attention per lag is stored as metrics of its version.
        metrics_by_type = {
            model_type: {
                **metrics,
                **attention_metrics(extras.get(model_type, {}).get("attention_mean", [])),
            }
            for model_type, metrics in evaluation["models"].items()
        }
        table = features[symbol]
        registration = register_evaluation(
            brain.library,
            symbol,
            table,
            _artifacts(trained_models[symbol]),
            evaluation,
            settings,
            policy=policy,
            run_id=context.run.run_id,
            metrics_by_type=metrics_by_type,
            bars=market.provenance(symbol, brain.library, table.index),
        )
        active = brain.library.get_active_model(symbol)
        result[symbol] = {
            "model_ids": registration.model_ids,
            "new_model_ids": registration.new_model_ids,
            "active_model_id": registration.active_model_id,
            "promoted": registration.promoted,
            "active_data_end": None
            if active is None or active.data_end is None
            else pd.Timestamp(active.data_end).isoformat(),
            "latest_bar": table.index[-1].isoformat(),
        }
        sections.append(registry_markdown(brain.library, symbol))
        metrics = {} if active is None else (active.metrics or {})
        context.add_asset_metadata(
            partition_numbers(
                {
                    "stand_aside": active is None,
                    "active_version": None if active is None else int(active.version),
                    "active_model_type": None if active is None else active.model_type,
                    "active_composite_score": metrics.get("composite_score"),
                    "active_sharpe_ratio": metrics.get("sharpe_ratio"),
                    "active_information_coefficient": metrics.get("information_coefficient"),
                    "new_versions": len(registration.new_model_ids),
                    "training_rows": len(table),
                    "training_start": None if active is None else str(active.training_start),
                    "training_end": None if active is None else str(active.training_end),
                }
            ),
            partition_key=symbol,
        )
    yield dg.Output(result, metadata={"registry": dg.MetadataValue.md("\n\n".join(sections))})
    yield from record_checks(
        brain.library,
        context.run.run_id,
        evaluate("registry_entries", result, settings),
    )


@dg.asset(**COMMON, kinds={"shap", "postgres"}, check_specs=check_specs("feature_importance"))
@retry_transient
def feature_importance(
    context: dg.AssetExecutionContext,
    features: dict[str, pd.DataFrame],
    trained_models: dict[str, dict[str, Any]],
    registry_entries: dict[str, dict[str, Any]],
    retrain: RetrainResource,
    brain: BrainResource,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """SHAP, permutation and correlation importance of each new model, stored with ranks."""
    settings = retrain.settings()
    result: dict[str, dict[str, Any]] = {}
    sections = []
    for symbol in each_symbol(context, "feature_importance", list(registry_entries)):
        # Versions without a stored analysis: the ones this registration added, and any whose
        # analysis an earlier, failed run never wrote. A version registered and analysed before
        # (same fingerprint) is not analysed again.
        model_ids = {
            model_type: model_id
            for model_type, model_id in registry_entries[symbol]["model_ids"].items()
            if brain.library.get_top_features(symbol, top_n=1, model_id=model_id).empty
        }
        analyses = analyze_symbol(
            brain.library,
            symbol,
            features[symbol],
            [a for a in _artifacts(trained_models[symbol]) if a.model_type in model_ids],
            model_ids,
            settings,
        )
        result[symbol] = {
            model_type: {
                "model_id": model_ids[model_type],
                "failures": analysis.failures,
                "top": {m: t.head(10).to_dict("records") for m, t in analysis.tables.items()},
            }
            for model_type, analysis in analyses.items()
        }
        log_event(
            "brain_integration_complete",
            symbol=symbol,
            model_ids=sorted(model_ids.values()),
            active_model_id=registry_entries[symbol]["active_model_id"],
        )
        active_id = registry_entries[symbol]["active_model_id"]
        top = brain.library.get_top_features(symbol, top_n=15, model_id=active_id)
        if not top.empty:
            png = importance_bars_png(top, f"{symbol}: {top['method'].iloc[0]} importance")
            chart = write_chart(png, symbol, "feature_importance", "importance")
            if chart is not None:
                context.add_asset_metadata(
                    {"importance_chart": chart_path(chart)}, partition_key=symbol
                )
                sections.append(f"### {symbol}\n\n" + chart_line(chart, f"{symbol}: importance"))
    yield dg.Output(result, metadata={"importance": dg.MetadataValue.md("\n\n".join(sections))})
    yield from record_checks(
        brain.library, context.run.run_id, evaluate("feature_importance", result, settings)
    )


retrain_assets = [
    market_data,
    features,
    trained_models,
    model_evaluation,
    registry_entries,
    feature_importance,
]
