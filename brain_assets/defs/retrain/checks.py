"""Data-quality checks generated from the Pandera schemas, evaluated inside the asset they guard.

Each check is declared once (schema-backed evaluation, severity, blocking) and becomes an
``AssetCheckSpec`` on its asset, partitioned by symbol. The asset evaluates it on the values it
has just computed, so a check only ever sees its own run's symbols: a separate ``@asset_check``
is not partitioned in the same way, and its input would load every symbol ever stored, letting one
bad symbol fail every other symbol's runs. In a run for one symbol, Dagster records the result
against that symbol's partition; a failed blocking (ERROR) check fails the step, so nothing
downstream runs and the run-failure alert fires.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from brain_assets.defs.metadata import markdown_table
from brain_assets.defs.partitions import symbols
from brain_assets.events import log_event
from brain_assets.library import BrainLibrary
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.quality.run import CheckOutcome, features_checks, run_check
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


@dataclass(frozen=True)
class QualityCheck:
    """One check: which asset it guards and how it judges one symbol's value.

    ``evaluate`` is None for the bar checks, whose outcomes come from ``prepare_bars`` (they
    need the cleaning report as well as the value).
    """

    asset: str
    name: str
    severity: str
    blocking: bool
    description: str
    evaluate: Evaluate | None = None

    def spec(self) -> dg.AssetCheckSpec:
        # Partitioned check specs are a preview feature of Dagster 1.13, used deliberately (the
        # UI then shows each symbol's result); the snapshot test pins the behaviour we rely on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.AssetCheckSpec(
                self.name,
                asset=self.asset,
                blocking=self.blocking,
                description=self.description,
                partitions_def=symbols,
            )


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
    # No model analysed (every version was already registered, with its analysis): nothing to
    # judge, which is not a failure.
    return run_check(
        "importance_valid",
        ImportanceSchema,
        frame,
        severity="ERROR",
        min_rows=None if entry else 0,
    )


MAX_MODEL_AGE = pd.Timedelta(days=30)
"""An active version trained on data more than this older than the newest bar draws a warning:
the retrain keeps running, but no challenger has beaten it for a month of market time."""


def _outcome(name: str, passed: bool, message: str) -> CheckOutcome:
    return CheckOutcome(name, passed, "WARN", 0 if passed else 1, row_count=1, message=message)


def _active_model_fresh(entry: Mapping[str, Any], settings: RetrainSettings) -> CheckOutcome:
    if entry.get("active_model_id") is None:
        return _outcome("active_model_fresh", True, "no active version: the symbol stands aside")
    if entry.get("active_data_end") is None:
        return _outcome("active_model_fresh", True, "the active version records no data window")
    age = pd.Timestamp(entry["latest_bar"]) - pd.Timestamp(entry["active_data_end"])
    return _outcome(
        "active_model_fresh",
        age <= MAX_MODEL_AGE,
        f"the active version's data ends {age} before the newest bar (limit {MAX_MODEL_AGE})",
    )


def _active_not_regressed(entry: Mapping[str, Any], settings: RetrainSettings) -> CheckOutcome:
    if not entry.get("model_id"):
        return _outcome("active_not_regressed", True, "no active version to judge")
    assessment = entry.get("assessment") or {}
    regressed = bool(assessment.get("regressed"))
    return _outcome(
        "active_not_regressed",
        not regressed,
        str(assessment.get("rule") or ("regressed" if regressed else "no regression")),
    )


def _inputs_in_distribution(entry: Mapping[str, Any], settings: RetrainSettings) -> CheckOutcome:
    drift = (entry.get("assessment") or {}).get("drift")
    if not entry.get("model_id") or drift is None:
        return _outcome(
            "live_inputs_in_distribution", True, "no training profile to compare the inputs with"
        )
    if not drift["flagged"]:
        return _outcome(
            "live_inputs_in_distribution",
            True,
            f"largest PSI {drift['max_psi']:.3f}, none above {drift['threshold']:g}",
        )
    return _outcome("live_inputs_in_distribution", False, str(drift["rule"]))


QUALITY_CHECKS: tuple[QualityCheck, ...] = (
    QualityCheck(
        "market_data",
        "ohlcv_valid",
        "ERROR",
        True,
        "OHLCVSchema on the cleaned bars: unique increasing timestamps, consistent OHLC, "
        "positive finite prices, volume >= 0, enough rows; and the cleaning dropped or repaired "
        "no more than its limit",
    ),
    QualityCheck(
        "market_data",
        "ohlcv_gaps",
        "WARN",
        False,
        "No gap longer than max_gap_bars bars; says how many modelling rows gaps exclude",
    ),
    QualityCheck(
        "features",
        "features_valid",
        "ERROR",
        True,
        "FeaturesSchema: finite floats, increasing index",
        _features_valid,
    ),
    QualityCheck(
        "model_evaluation",
        "metrics_valid",
        "ERROR",
        True,
        "MetricsSchema: every required metric is finite",
        _metrics_valid,
    ),
    QualityCheck(
        "feature_importance",
        "importance_valid",
        "ERROR",
        False,
        "ImportanceSchema: unique features, finite importance, rank >= 1",
        _importance_valid,
    ),
    QualityCheck(
        "registry_entries",
        "active_model_fresh",
        "WARN",
        False,
        "The active version was trained on data ending at most 30 days before the newest bar",
        _active_model_fresh,
    ),
    QualityCheck(
        "live_model_metrics",
        "active_not_regressed",
        "WARN",
        False,
        "The active version's live metrics show no regression (the rollback's own verdict): "
        "its record since activation does not credibly lose, its window did not break down",
        _active_not_regressed,
    ),
    QualityCheck(
        "live_model_metrics",
        "live_inputs_in_distribution",
        "WARN",
        False,
        "The live window's features look like the active version's training rows: no "
        "feature's Population Stability Index above the decision policy's drift threshold",
        _inputs_in_distribution,
    ),
)
BY_NAME = {check.name: check for check in QUALITY_CHECKS}


def check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """The specs of every check guarding ``asset``, for its decorator."""
    return [check.spec() for check in QUALITY_CHECKS if check.asset == asset]


def evaluate(
    asset: str, values: Mapping[str, Any], settings: RetrainSettings
) -> dict[str, dict[str, CheckOutcome]]:
    """``{check name: {symbol: outcome}}`` for every schema-backed check of ``asset``."""
    return {
        check.name: {symbol: check.evaluate(value, settings) for symbol, value in values.items()}
        for check in QUALITY_CHECKS
        if check.asset == asset and check.evaluate is not None
    }


def quality_records(
    name: str, outcomes: Mapping[str, CheckOutcome], run_id: str
) -> list[dict[str, Any]]:
    """Rows for ``data_quality_logs``, one per symbol, pass or fail."""
    return [
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
                "run_id": run_id,
            },
        }
        for symbol, outcome in outcomes.items()
    ]


def check_result(name: str, outcomes: Mapping[str, CheckOutcome]) -> dg.AssetCheckResult:
    """The Dagster result of check ``name`` over the run's symbols (failed if any symbol is)."""
    check = BY_NAME[name]
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
        asset_key=check.asset,
        check_name=name,
        passed=not failed,
        severity=SEVERITY[check.severity],
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


def record_checks(
    brain: BrainLibrary,
    run_id: str,
    outcomes: Mapping[str, Mapping[str, CheckOutcome]],
    extra_records: Iterable[Mapping[str, Any]] = (),
) -> list[dg.AssetCheckResult]:
    """Write every outcome (and ``extra_records``) to the quality log in one transaction, and
    return the Dagster results to yield."""
    records = [*extra_records]
    for name, by_symbol in outcomes.items():
        records += quality_records(name, by_symbol, run_id)
    if records:
        brain.log_data_quality_many(records)
    return [check_result(name, by_symbol) for name, by_symbol in outcomes.items()]
