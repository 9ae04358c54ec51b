"""Feature importance of a symbol's newly registered models on its most recent bars."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.events import log_event
from brain_assets.importance.analyzer import (
    FeatureImportanceAnalyzer,
    ImportanceAnalysis,
    effort_for,
    importance_table,
    store_tables,
)
from brain_assets.library import BrainLibrary
from brain_assets.lstm.context import context_rows, with_context
from brain_assets.lstm.model import StandardizedLSTM
from brain_assets.pipeline.dataset import split_columns
from brain_assets.pipeline.lstm_model import lstm_shap_importances
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, fitted_model, split_for

SHAP_DISABLED = "skipped: SHAP for lstm is switched off (lstm_config.shap_rows=0)"


def analyze_symbol(
    brain: BrainLibrary,
    symbol: str,
    table: pd.DataFrame,
    artifacts: list[TrainedArtifact],
    model_ids: dict[str, str],
    settings: RetrainSettings,
) -> dict[str, ImportanceAnalysis]:
    """Analyse on the test segment: data none of the models was fitted on."""
    split = split_for(table, settings)
    X, y, _ = split_columns(table)
    results = {}
    for artifact in artifacts:
        model = fitted_model(artifact)
        analysis = analyze_model(
            analyzer_for(artifact.model_type, settings, brain),
            symbol,
            model,
            X,
            y,
            settings,
            rows=split.test,
            model_id=model_ids[artifact.model_type],
        )
        log_event(
            "compute_timing",
            logging.DEBUG,
            stage="importance",
            symbol=symbol,
            model_type=artifact.model_type,
            seconds=round(analysis.seconds, 4),
        )
        results[artifact.model_type] = analysis
    return results


def analyzer_for(
    model_type: str, settings: RetrainSettings, brain: BrainLibrary | None = None
) -> FeatureImportanceAnalyzer:
    """An analyzer with the measured effort for ``model_type`` (see ``effort_for``)."""
    effort = effort_for(model_type)
    return FeatureImportanceAnalyzer(
        brain,
        sample_size=settings.importance_sample,
        seed=settings.seed,
        permutation_repeats=effort.permutation_repeats,
        shap_rows=effort.shap_rows,
    )


def analyze_model(
    analyzer: FeatureImportanceAnalyzer,
    symbol: str,
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    settings: RetrainSettings,
    *,
    rows: slice | None = None,
    model_id: str | None = None,
) -> ImportanceAnalysis:
    """Run ``settings.importance_methods`` on the most recent ``analyzer.sample_size`` rows of
    ``X.iloc[rows]`` (default: all of ``X``), for any model type.

    ``X`` and ``y`` are the chronological table the rows come from: a sequence model takes the
    rows just before the analysed ones as its context, so every analysed row has a prediction.
    Permutation shuffles the analysed rows only; context rows keep their values.
    For ``lstm``, SHAP comes from :func:`~brain_assets.pipeline.lstm_model.lstm_shap_importances`
    instead of the analyzer's model-agnostic fallback, which would treat each masked row as a time
    series of its own. It is stored under the analyzer's ``analysis_date``, so it reads back as
    part of the same analysis; its failure (or ``shap_rows=0``) is reported in ``failures``.
    """
    segment = rows if rows is not None else slice(0, len(X))
    stop = segment.stop
    needed = context_rows(model)
    start = max(segment.start, stop - analyzer.sample_size, needed)
    if start >= stop:
        raise ValueError(
            f"no rows to analyse: {stop} rows, and the model needs {needed} rows of context"
        )
    X_rows, y_rows = X.iloc[start:stop], y.iloc[start:stop]
    methods = tuple(settings.importance_methods)
    predictor = with_context(model, X.iloc[start - needed : start])
    if not isinstance(model, StandardizedLSTM) or "shap" not in methods:
        return analyzer.analyze(
            symbol, predictor, X_rows, y_rows, list(X.columns), methods, model_id=model_id
        )

    others = [method for method in methods if method != "shap"]
    # Computed without storing, so that SHAP's table joins the others in one transaction.
    compute_only = FeatureImportanceAnalyzer(
        None,
        sample_size=analyzer.sample_size,
        seed=analyzer.seed,
        permutation_repeats=analyzer.permutation_repeats,
        shap_rows=analyzer.shap_rows,
    )
    if others:
        analysis = compute_only.analyze(
            symbol, predictor, X_rows, y_rows, list(X.columns), others, model_id=model_id
        )
    else:
        analysis = ImportanceAnalysis(
            symbol=symbol,
            model_id=model_id,
            analysis_date=datetime.now(UTC),
            rows_used=len(X_rows),
        )
    started = time.perf_counter()
    _lstm_shap(analyzer, symbol, model, X.iloc[start - needed : stop], analysis, settings)
    analysis.seconds += time.perf_counter() - started
    if analyzer.brain is not None and model_id is not None and analysis.tables:
        store_tables(analyzer.brain, analysis)
    return analysis


def _lstm_shap(
    analyzer: FeatureImportanceAnalyzer,
    symbol: str,
    model: StandardizedLSTM,
    rows_with_context: pd.DataFrame,
    analysis: ImportanceAnalysis,
    settings: RetrainSettings,
) -> None:
    config = settings.lstm_config
    if config.shap_rows == 0:
        analysis.failures["shap"] = SHAP_DISABLED
        log_event(
            "feature_importance_method_skipped",
            symbol=symbol,
            model_id=analysis.model_id,
            method="shap",
            reason=SHAP_DISABLED,
        )
        return
    names = [str(column) for column in rows_with_context.columns]
    try:
        values = lstm_shap_importances(
            model,
            rows_with_context,
            explained_rows=config.shap_rows,
            samples=config.shap_samples,
            seed=settings.seed,
        )
        if values.shape != (len(names),) or not np.all(np.isfinite(values)):
            raise ValueError(f"shap produced {values.shape} non-finite or misshapen importances")
        table = importance_table(zip(names, values.tolist(), strict=True))
    except Exception as error:  # SHAP's failure must not cost the other methods' tables
        analysis.failures["shap"] = f"{type(error).__name__}: {error}"
        log_event(
            "feature_importance_analysis_failed",
            logging.WARNING,
            symbol=symbol,
            model_id=analysis.model_id,
            method="shap",
            error=analysis.failures["shap"],
        )
        return
    analysis.tables["shap"] = table
