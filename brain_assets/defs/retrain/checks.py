"""Asset checks generated from the Pandera schemas of brain_assets.quality.

One factory makes every check: it validates each symbol of the run with the core runner, writes
every result (pass or fail) to ``data_quality_logs``, and fails when any symbol fails. Blocking
ERROR checks stop the run's downstream assets, so no model trains on bad data. Dagster's checks
are per asset, not per partition: in a single run over several symbols, one bad symbol stops the
downstream assets of all of them (the schedule launches one run per symbol for that reason).
"""

import logging
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg
import pandas as pd

from brain_assets.defs.resources import BrainResource, RetrainResource
from brain_assets.defs.retrain import assets
from brain_assets.defs.retrain.metadata import markdown_table
from brain_assets.events import log_event
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.quality.run import CheckOutcome, features_checks, ohlcv_checks, run_check
from brain_assets.quality.schemas import ImportanceSchema, MetricsSchema

Evaluate = Callable[[Any, RetrainSettings], CheckOutcome]
SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}
# Metrics that are defined for every evaluation; a model lacking one cannot be ranked.
REQUIRED_METRICS = (
    "composite_score",
    "rmse",
    "mae",
    "directional_accuracy",
    "total_return",
    "max_drawdown",
    "exposure",
    "periods_per_year",
    "n_observations",
)


def quality_check(
    asset: dg.AssetsDefinition,
    name: str,
    evaluate: Evaluate,
    *,
    severity: str,
    blocking: bool,
    description: str,
) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=name, blocking=blocking, description=description)
    def _check(
        context: dg.AssetCheckExecutionContext,
        value: Mapping[str, Any],
        brain: BrainResource,
        retrain: RetrainResource,
    ) -> dg.AssetCheckResult:
        settings = retrain.settings()
        outcomes = {symbol: evaluate(item, settings) for symbol, item in value.items()}
        brain.library.log_data_quality_many(
            {
                "symbol": symbol,
                "check_name": name,
                "severity": outcome.severity,
                "passed": outcome.passed,
                "failure_count": outcome.failure_count,
                "details": {
                    "message": outcome.message,
                    "rows": outcome.row_count,
                    "failure_cases": outcome.failure_cases[:5],
                    "run_id": context.op_execution_context.run_id,
                },
            }
            for symbol, outcome in outcomes.items()
        )
        failed = [symbol for symbol, outcome in outcomes.items() if not outcome.passed]
        for symbol in failed:
            log_event(
                "data_quality_failed",
                logging.WARNING,
                symbol=symbol,
                check=name,
                severity=outcomes[symbol].severity,
                failures=outcomes[symbol].failure_count,
            )
        cases = [{"symbol": s, **case} for s in failed for case in outcomes[s].failure_cases[:10]]
        return dg.AssetCheckResult(
            passed=not failed,
            severity=SEVERITY[severity],
            metadata={
                "failed_symbols": dg.MetadataValue.json(failed),
                "failure_count": sum(o.failure_count for o in outcomes.values()),
                "results": dg.MetadataValue.md(
                    markdown_table(
                        [
                            {
                                "symbol": s,
                                "passed": o.passed,
                                "failures": o.failure_count,
                                "rows": o.row_count,
                                "message": o.message,
                            }
                            for s, o in outcomes.items()
                        ],
                        ["symbol", "passed", "failures", "rows", "message"],
                    )
                ),
                "failure_cases": dg.MetadataValue.md(
                    markdown_table(cases, ["symbol", "check", "column", "index", "failure_case"])
                )
                if cases
                else dg.MetadataValue.text("none"),
            },
        )

    return _check


def _ohlcv_valid(frame: pd.DataFrame, settings: RetrainSettings) -> CheckOutcome:
    return ohlcv_checks(frame, min_rows=settings.min_rows, max_gap_bars=settings.max_gap_bars)[0]


def _ohlcv_gaps(frame: pd.DataFrame, settings: RetrainSettings) -> CheckOutcome:
    return ohlcv_checks(frame, min_rows=0, max_gap_bars=settings.max_gap_bars)[1]


def _features_valid(table: pd.DataFrame, settings: RetrainSettings) -> CheckOutcome:
    return features_checks(table, min_rows=max(1, settings.min_rows // 2))[0]


def _metrics_valid(entry: Mapping[str, Any], settings: RetrainSettings) -> CheckOutcome:
    rows = [
        {
            "metric": f"{model_type}.{metric}",
            "value": float("nan") if metrics.get(metric) is None else float(metrics[metric]),
        }
        for model_type, metrics in entry["models"].items()
        for metric in REQUIRED_METRICS
    ]
    return run_check("metrics_valid", MetricsSchema, pd.DataFrame(rows), severity="ERROR")


def _importance_valid(entry: Mapping[str, Any], settings: RetrainSettings) -> CheckOutcome:
    # The asset keeps the top rows of every (model, method) table; validate them all together
    # with the method in the feature name so that uniqueness holds per table.
    rows = [
        {
            "feature": f"{model_type}.{method}.{row['feature']}",
            "importance": row["importance"],
            "rank": row["rank"],
        }
        for model_type, result in entry.items()
        for method, table in result["top"].items()
        for row in table
    ]
    frame = pd.DataFrame(rows, columns=["feature", "importance", "rank"]).astype(
        {"feature": object, "importance": float, "rank": int}
    )
    return run_check("importance_valid", ImportanceSchema, frame, severity="ERROR")


retrain_checks = [
    quality_check(
        assets.market_data,
        "ohlcv_valid",
        _ohlcv_valid,
        severity="ERROR",
        blocking=True,
        description="OHLCVSchema: unique increasing timestamps, "
        "consistent OHLC, positive prices, volume >= 0, finite, enough rows",
    ),
    quality_check(
        assets.market_data,
        "ohlcv_gaps",
        _ohlcv_gaps,
        severity="WARN",
        blocking=False,
        description="No gap longer than max_gap_bars bars",
    ),
    quality_check(
        assets.features,
        "features_valid",
        _features_valid,
        severity="ERROR",
        blocking=True,
        description="FeaturesSchema: finite floats, increasing index",
    ),
    quality_check(
        assets.model_evaluation,
        "metrics_valid",
        _metrics_valid,
        severity="ERROR",
        blocking=True,
        description="MetricsSchema: every required metric is finite",
    ),
    quality_check(
        assets.feature_importance,
        "importance_valid",
        _importance_valid,
        severity="ERROR",
        blocking=False,
        description="ImportanceSchema: unique features, finite importance, rank >= 1",
    ),
]
