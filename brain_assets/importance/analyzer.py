"""Which features a fitted model relies on, by three methods that fail independently.

- ``shap``: mean |SHAP value| per feature, from the fastest exact explainer for the model
  (``TreeExplainer`` for tree ensembles, ``LinearExplainer`` for linear models, a sampled
  model-agnostic permutation explainer otherwise).
- ``permutation``: the increase in mean squared error when one feature is shuffled, with the
  shuffles ``sklearn.inspection.permutation_importance`` draws for the same seed (and its result),
  but all features' shuffled copies of one repeat predicted in one call rather than one each.
- ``correlation``: signed Spearman correlation of each feature with the target; model-free, so it
  still says something when the model is poor.

shap is imported inside the SHAP method only: it is slow to import and optional at run time, and a
missing or broken shap must cost the SHAP table, not the other two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from brain_assets.events import log_event
from brain_assets.ranking import rank_importances
from brain_assets.training.models import single_threaded

IMPORTANCE_METHODS: tuple[str, ...] = ("shap", "permutation", "correlation")

# The model-agnostic SHAP fallback costs (rows x evaluations x background) predictions, so it
# explains fewer rows against a small background; tree and linear explainers use every sampled row.
FALLBACK_EXPLAINED_ROWS = 200
FALLBACK_BACKGROUND_ROWS = 50

# Shuffled copies are predicted together up to this many cells (rows x features) per call: about
# 32 MB of float64, so a wide or long sample is split into several calls rather than exhaust memory.
PERMUTATION_BATCH_CELLS = 1 << 22


@dataclass(frozen=True)
class ImportanceEffort:
    """How much work SHAP and permutation spend on one model.

    ``shap_rows``: rows SHAP explains, evenly spaced over the analysed rows (None: all of them;
    the model-agnostic fallback explains at most ``FALLBACK_EXPLAINED_ROWS``).
    ``permutation_repeats``: shuffles per feature.
    """

    shap_rows: int | None = None
    permutation_repeats: int = 5


# Chosen per model type with bench/importance_tradeoff.py (results/importance_tradeoff.json): the
# Spearman correlation of the top 20 with a high-sample reference (30 repeats, or every row) over 3
# symbols x 3 seeds at the demo's size, and the fewest repeats or rows from which every larger
# setting also reaches a median of 0.9. Ridge's permutation is nearly deterministic (0.97 with one
# shuffle) and its SHAP exact and cheap; forest SHAP settles by 50 rows (0.965), boosting's needs
# 100 (0.92); three shuffles reach 0.905 (forest), 0.92 (boosting) and 0.93 (LSTM, against 10).
EFFORT_BY_MODEL_TYPE: dict[str, ImportanceEffort] = {
    "ridge": ImportanceEffort(shap_rows=None, permutation_repeats=1),
    "random_forest": ImportanceEffort(shap_rows=50, permutation_repeats=3),
    "hist_gradient_boosting": ImportanceEffort(shap_rows=100, permutation_repeats=3),
    "lstm": ImportanceEffort(shap_rows=None, permutation_repeats=3),
}
DEFAULT_EFFORT = ImportanceEffort()


def effort_for(model_type: str) -> ImportanceEffort:
    """The measured effort for ``model_type``; the generic default for any other model."""
    return EFFORT_BY_MODEL_TYPE.get(model_type, DEFAULT_EFFORT)


TABLE_COLUMNS = ("feature", "importance", "rank")

Features = pd.DataFrame | np.ndarray


class FeatureImportanceStore(Protocol):
    """The part of ``BrainStore`` the analyzer writes to."""

    def store_feature_importances(
        self,
        symbol: str,
        model_id: str,
        tables: Any,
        analysis_date: datetime | None = None,
    ) -> Any: ...


@dataclass
class ImportanceAnalysis:
    """Everything one analysis produced.

    ``tables`` maps each successful method to its ranked table; ``failures`` maps each failed
    method to ``"ExceptionType: message"``; ``stored`` lists the methods written to the store (in
    order) under the one shared ``analysis_date``.
    """

    symbol: str
    model_id: str | None
    analysis_date: datetime
    rows_used: int
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    stored: list[str] = field(default_factory=list)
    seconds: float = 0.0


def store_tables(brain: FeatureImportanceStore, analysis: ImportanceAnalysis) -> None:
    """Every method's table of one analysis, in one transaction under its analysis_date: a
    failure leaves no partial analysis for get_top_features to read as the latest."""
    assert analysis.model_id is not None
    brain.store_feature_importances(
        analysis.symbol,
        analysis.model_id,
        {
            method: {
                str(feature): float(value)
                for feature, value in zip(table["feature"], table["importance"], strict=True)
            }
            for method, table in analysis.tables.items()
        },
        analysis_date=analysis.analysis_date,
    )
    analysis.stored.extend(analysis.tables)


def importance_table(items: Iterable[tuple[str, float]]) -> pd.DataFrame:
    """A ``feature, importance, rank`` frame sorted by rank, ranked by ``rank_importances``."""
    ranked = rank_importances((str(name), float(value)) for name, value in items)
    table = pd.DataFrame(ranked, columns=list(TABLE_COLUMNS))
    return table.astype({"feature": str, "importance": float, "rank": int})


def _normalise_methods(methods: Sequence[str] | str) -> tuple[str, ...]:
    # A bare string would otherwise be iterated letter by letter.
    requested = (methods,) if isinstance(methods, str) else tuple(methods)
    if not requested:
        raise ValueError(f"methods must name at least one of {', '.join(IMPORTANCE_METHODS)}")
    unknown = [name for name in requested if name not in IMPORTANCE_METHODS]
    if unknown:
        raise ValueError(
            f"unknown importance method(s) {', '.join(map(repr, unknown))}; "
            f"valid methods: {', '.join(IMPORTANCE_METHODS)}"
        )
    return tuple(dict.fromkeys(requested))


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise ValueError(f"analysis_date must be a datetime; got {type(value).__name__}")
    # Same convention as the store: bars are UTC, so a naive timestamp is read as UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _finite_importances(method: str, names: Sequence[str], values: np.ndarray) -> pd.DataFrame:
    values = np.asarray(values, dtype=float)
    if values.shape != (len(names),):
        raise ValueError(f"{method} produced {values.shape} importances for {len(names)} features")
    if not np.all(np.isfinite(values)):
        # The store rejects NaN/inf; failing here keeps the other methods' tables.
        bad = [name for name, value in zip(names, values, strict=True) if not np.isfinite(value)]
        raise ValueError(f"{method} produced non-finite importances for {', '.join(bad)}")
    return importance_table(zip(names, values.tolist(), strict=True))


def _spearman_importances(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed Spearman correlation of each column with ``y``; 0.0 where either side is constant."""
    y_ranks = pd.Series(y).rank(method="average").to_numpy()
    x_ranks = pd.DataFrame(X).rank(method="average").to_numpy()
    y_centred = y_ranks - y_ranks.mean()
    x_centred = x_ranks - x_ranks.mean(axis=0)
    denominator = np.sqrt((x_centred**2).sum(axis=0) * (y_centred**2).sum())
    numerator = (x_centred * y_centred[:, None]).sum(axis=0)
    # A constant column carries no ordering information: its correlation is undefined, and 0.0
    # (no monotonic relation) is the honest value to store and rank last.
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.where(denominator > 0, numerator / denominator, 0.0)
    return np.clip(correlation, -1.0, 1.0)


def _is_tree_model(estimator: Any) -> bool:
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

    return isinstance(
        estimator,
        (
            RandomForestRegressor,
            ExtraTreesRegressor,
            GradientBoostingRegressor,
            HistGradientBoostingRegressor,
            DecisionTreeRegressor,
            ExtraTreeRegressor,
        ),
    )


def _is_linear_model(estimator: Any) -> bool:
    # Every scikit-learn linear regressor lives in sklearn.linear_model and exposes a 1-D coef_
    # once fitted; that is all LinearExplainer needs.
    module = type(estimator).__module__
    coef = getattr(estimator, "coef_", None)
    return (
        module.startswith("sklearn.linear_model")
        and coef is not None
        and np.ndim(coef) == 1
        and hasattr(estimator, "intercept_")
    )


def _split_pipeline(model: Any, X: Features) -> tuple[Any, Any]:
    """``(final estimator, X as it reaches it)`` for a Pipeline; ``(model, X)`` otherwise."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model.steps) > 1:
        return model.steps[-1][1], model[:-1].transform(X)
    return model, X


def _mean_abs_shap(values: Any) -> np.ndarray:
    array = np.abs(np.asarray(values, dtype=float))
    if array.ndim == 3:  # (rows, features, outputs) for multi-output models
        array = array.mean(axis=2)
    return np.asarray(array.mean(axis=0))


def spread_rows(X: Any, count: int | None) -> Any:
    """``count`` rows of ``X`` evenly spaced from its first to its last (all when ``count`` is
    None or not smaller): a subsample that still covers the whole analysed period."""
    n_rows = np.shape(X)[0]
    if count is None or count >= n_rows:
        return X
    chosen = np.unique(np.linspace(0, n_rows - 1, count).round().astype(int))
    return X.iloc[chosen] if isinstance(X, pd.DataFrame) else np.asarray(X)[chosen]


def _cells_per_row(model: Any) -> int:
    # A sequence model turns each row into a window of rows; its batch size must allow for that.
    return int(getattr(model, "cells_per_row", 1))


def _predict_copies(model: Any, copies: np.ndarray, columns: list[str] | None) -> np.ndarray:
    """Predictions ``(copies, rows)`` for a stack of equally long row blocks ``(copies, rows,
    features)``, each block predicted as if on its own, in one call of the model where it can."""
    if hasattr(model, "predict_blocks"):  # a sequence model: windows must not cross blocks
        return np.asarray(model.predict_blocks(copies), dtype=float)
    n_copies, n_rows, n_features = copies.shape
    rows = copies.reshape(n_copies * n_rows, n_features)
    # A model fitted on a DataFrame wants the same column names back.
    data = rows if columns is None else pd.DataFrame(rows, columns=columns)
    return np.asarray(model.predict(data), dtype=float).reshape(n_copies, n_rows)


class FeatureImportanceAnalyzer:
    """Rank a fitted model's features by SHAP, permutation and correlation importance.

    ``sample_size`` caps the rows analysed (the most recent ones); ``seed`` makes the permutation
    shuffles and the SHAP fallback reproducible; ``permutation_repeats`` is the number of shuffles
    per feature; ``shap_rows`` caps the rows SHAP explains, evenly spaced over the analysed ones
    (None: all; see :class:`ImportanceEffort` and :func:`effort_for` for per-model-type values).
    With a ``brain`` (a ``BrainStore``), tables are stored when a ``model_id`` is
    given.

    Failures of a single method are logged as ``feature_importance_analysis_failed`` and reported
    in ``last_failures`` (method -> ``"ExceptionType: message"``) after
    ``analyze_feature_importance``; ``analyze`` returns them in an ``ImportanceAnalysis`` instead,
    which is the safer choice when one analyzer is shared between threads.
    """

    def __init__(
        self,
        brain: FeatureImportanceStore | None = None,
        *,
        sample_size: int = 1000,
        seed: int = 0,
        permutation_repeats: int = DEFAULT_EFFORT.permutation_repeats,
        shap_rows: int | None = DEFAULT_EFFORT.shap_rows,
    ) -> None:
        counts = [("sample_size", sample_size), ("permutation_repeats", permutation_repeats)]
        if shap_rows is not None:
            counts.append(("shap_rows", shap_rows))
        for name, value in counts:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer; got {seed!r}")
        self.brain = brain
        self.sample_size = int(sample_size)
        self.seed = int(seed)
        self.permutation_repeats = int(permutation_repeats)
        self.shap_rows = None if shap_rows is None else int(shap_rows)
        self.last_failures: dict[str, str] = {}
        self.last_analysis: ImportanceAnalysis | None = None

    # -- public API -------------------------------------------------------------------------

    def analyze_feature_importance(
        self,
        symbol: str,
        model: Any,
        X: Features,
        y: pd.Series | np.ndarray,
        feature_names: Sequence[str],
        methods: Sequence[str] = IMPORTANCE_METHODS,
        *,
        model_id: str | None = None,
        analysis_date: datetime | None = None,
    ) -> dict[str, pd.DataFrame]:
        """Tables (columns feature, importance, rank; sorted by rank) of the methods that worked.

        Methods that failed are missing from the result and listed in ``self.last_failures``;
        ``self.last_analysis`` holds the full ``ImportanceAnalysis``. See ``analyze``.
        """
        analysis = self.analyze(
            symbol,
            model,
            X,
            y,
            feature_names,
            methods,
            model_id=model_id,
            analysis_date=analysis_date,
        )
        self.last_failures = dict(analysis.failures)
        self.last_analysis = analysis
        return analysis.tables

    def analyze(
        self,
        symbol: str,
        model: Any,
        X: Features,
        y: pd.Series | np.ndarray,
        feature_names: Sequence[str],
        methods: Sequence[str] = IMPORTANCE_METHODS,
        *,
        model_id: str | None = None,
        analysis_date: datetime | None = None,
    ) -> ImportanceAnalysis:
        """Run ``methods`` on ``model`` over the most recent ``sample_size`` rows of ``X``, ``y``.

        All methods are computed before anything is stored, then each table is stored (when the
        analyzer has a ``brain`` and ``model_id`` is given) under one shared ``analysis_date``
        (default: now, UTC), so the methods of one call read back as one analysis. An error of the
        store itself (unknown model, database down) propagates.

        Raises ``ValueError`` before any work for an unknown method, mismatched lengths of ``X``,
        ``y`` or ``feature_names``, or NaN/inf in ``X`` or ``y``.
        """
        started = time.perf_counter()
        requested = _normalise_methods(methods)
        names = self._check_inputs(X, y, feature_names)
        when = _utc(analysis_date)
        X_sample, y_sample = self._recent_rows(X, y)
        analysis = ImportanceAnalysis(
            symbol=symbol, model_id=model_id, analysis_date=when, rows_used=len(y_sample)
        )

        runners: dict[str, Callable[[], np.ndarray]] = {
            "shap": lambda: self._shap(model, X_sample),
            "permutation": lambda: self._permutation(model, X_sample, y_sample),
            "correlation": lambda: _spearman_importances(np.asarray(X_sample, float), y_sample),
        }
        for method in requested:
            try:
                # One thread, as the retrain fits: symbols run side by side, one per core.
                with single_threaded():
                    values = runners[method]()
                analysis.tables[method] = _finite_importances(method, names, values)
            except Exception as error:  # one method's failure must not cost the others
                analysis.failures[method] = f"{type(error).__name__}: {error}"
                log_event(
                    "feature_importance_analysis_failed",
                    logging.WARNING,
                    symbol=symbol,
                    model_id=model_id,
                    method=method,
                    error=analysis.failures[method],
                )

        if self.brain is not None and model_id is not None and analysis.tables:
            store_tables(self.brain, analysis)

        analysis.seconds = time.perf_counter() - started
        log_event(
            "feature_importance_analyzed",
            symbol=symbol,
            model_id=model_id,
            methods=list(analysis.tables),
            failed=list(analysis.failures),
            stored=bool(analysis.stored),
            rows=analysis.rows_used,
            seconds=round(analysis.seconds, 3),
        )
        return analysis

    # -- input handling ---------------------------------------------------------------------

    @staticmethod
    def _check_inputs(
        X: Features, y: pd.Series | np.ndarray, feature_names: Sequence[str]
    ) -> list[str]:
        if np.ndim(X) != 2:
            raise ValueError(f"X must be 2-dimensional; got shape {np.shape(X)}")
        n_rows, n_columns = np.shape(X)
        if n_rows == 0:
            raise ValueError("X has no rows")
        if np.ndim(y) != 1 or len(y) != n_rows:
            raise ValueError(f"y has shape {np.shape(y)} but X has {n_rows} rows")
        if isinstance(feature_names, str):
            raise ValueError("feature_names must be a sequence of names, not one string")
        names = [str(name) for name in feature_names]
        if len(names) != n_columns:
            raise ValueError(f"feature_names has {len(names)} names but X has {n_columns} columns")
        if len(set(names)) != len(names):
            raise ValueError("feature_names contains duplicate names")
        if isinstance(X, pd.DataFrame) and [str(c) for c in X.columns] != names:
            # Stored importances are keyed by name: a relabelled frame would store them under the
            # wrong features.
            raise ValueError("feature_names must equal X.columns (same names, same order)")
        try:
            values = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"X must be numeric: {error}") from error
        if not np.all(np.isfinite(values)):
            raise ValueError("X contains NaN or infinite values")
        try:
            target = np.asarray(y, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"y must be numeric: {error}") from error
        if not np.all(np.isfinite(target)):
            raise ValueError("y contains NaN or infinite values")
        return names

    def _recent_rows(self, X: Features, y: pd.Series | np.ndarray) -> tuple[Features, np.ndarray]:
        """The most recent ``sample_size`` rows of ``X`` (same type) and ``y`` (as floats).

        The analysis should describe the regime the model will trade next, so when there are more
        rows than the cap it keeps the latest ones rather than a random sample spread over the
        whole history. Rows are taken as chronological, except that a DataFrame with an unsorted
        DatetimeIndex is ordered by it first.
        """
        n_rows = len(y)
        order = np.arange(n_rows)
        if (
            isinstance(X, pd.DataFrame)
            and isinstance(X.index, pd.DatetimeIndex)
            and not X.index.is_monotonic_increasing
        ):
            order = np.argsort(X.index.asi8, kind="stable")
        chosen = order[-self.sample_size :]
        target = np.asarray(y, dtype=float)[chosen]
        if isinstance(X, pd.DataFrame):
            return X.iloc[chosen], target
        return np.asarray(X)[chosen], target

    # -- methods ----------------------------------------------------------------------------

    def _permutation(self, model: Any, X: Features, y: np.ndarray) -> np.ndarray:
        values = np.asarray(X, dtype=float)
        n_rows, n_features = values.shape
        columns = list(X.columns) if isinstance(X, pd.DataFrame) else None
        # scikit-learn's draws: one seed for every column, and each repeat shuffles the column
        # already shuffled by the repeats before it; the result then equals
        # permutation_importance's for the same seed.
        column_seed = np.random.RandomState(self.seed).randint(np.iinfo(np.int32).max + 1)
        shuffles = np.random.RandomState(column_seed)
        draw, order = np.arange(n_rows), np.arange(n_rows)
        baseline = float(np.mean((_predict_copies(model, values[None], columns)[0] - y) ** 2))
        per_call = max(1, PERMUTATION_BATCH_CELLS // max(1, values.size * _cells_per_row(model)))
        increases = np.empty((n_features, self.permutation_repeats))
        for repeat in range(self.permutation_repeats):
            shuffles.shuffle(draw)
            order = order[draw]
            for first in range(0, n_features, per_call):
                chosen = np.arange(first, min(first + per_call, n_features))
                copies = np.repeat(values[None], len(chosen), axis=0)
                copies[np.arange(len(chosen)), :, chosen] = values[order][:, chosen].T
                predictions = _predict_copies(model, copies, columns)
                increases[chosen, repeat] = np.mean((predictions - y) ** 2, axis=1) - baseline
        return increases.mean(axis=1)

    def _shap(self, model: Any, X: Features) -> np.ndarray:
        import shap

        n_features = np.shape(X)[1]
        final, X_final = _split_pipeline(model, X)
        if np.shape(X_final)[1] == n_features:
            if _is_tree_model(final):
                # No background data: the tree_path_dependent algorithm is exact and the fastest;
                # its cost is linear in the rows explained, and the ranking settles within ~100.
                explained = spread_rows(X_final, self.shap_rows)
                return _mean_abs_shap(shap.TreeExplainer(final).shap_values(explained))
            if _is_linear_model(final):
                # Explain the linear step on the data it actually sees (e.g. standardised): the
                # scaler is a per-feature affine map, so feature identities are unchanged.
                explainer = shap.LinearExplainer(final, X_final)
                return _mean_abs_shap(explainer.shap_values(spread_rows(X_final, self.shap_rows)))
        return self._shap_fallback(shap, model, X)

    def _shap_fallback(self, shap: Any, model: Any, X: Features) -> np.ndarray:
        """Model-agnostic SHAP via the permutation explainer on a small, recent sample."""
        values = np.asarray(X, dtype=float)
        columns = list(X.columns) if isinstance(X, pd.DataFrame) else None

        def predict(rows: np.ndarray) -> np.ndarray:
            # A model fitted on a DataFrame wants the same column names back.
            data = rows if columns is None else pd.DataFrame(rows, columns=columns)
            return np.asarray(model.predict(data), dtype=float)

        limit = min(FALLBACK_EXPLAINED_ROWS, self.shap_rows or FALLBACK_EXPLAINED_ROWS)
        explained = spread_rows(values, limit)
        rng = np.random.default_rng(self.seed)
        background_size = min(FALLBACK_BACKGROUND_ROWS, len(values))
        background = values[np.sort(rng.choice(len(values), background_size, replace=False))]
        explainer = shap.explainers.Permutation(
            predict, shap.maskers.Independent(background), seed=self.seed
        )
        explanation = explainer(explained, max_evals=2 * values.shape[1] + 1, silent=True)
        return _mean_abs_shap(explanation.values)
