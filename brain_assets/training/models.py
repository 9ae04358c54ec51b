"""The scikit-learn regressors the daily retrain fits, with small, deterministic defaults.

The defaults are sized for a 2-core machine retraining every symbol daily: a few seconds per model,
single-threaded (``n_jobs=1``, and OpenMP and BLAS held to one thread while fitting, see
:func:`single_threaded`, so parallel symbols do not oversubscribe the cores), and no early
stopping, whose internal random validation split would make a fit depend on more than the seed.

Every model's fit grows at most linearly with the training rows. Ridge and hist gradient boosting
do by construction; a random forest draws, by default, as many rows per tree as there are training
rows and sorts them at every node, which made it 80% of a 100,000-bar retrain. Its ``max_samples``
is therefore a cap on the rows each tree draws (:data:`FOREST_ROWS_PER_TREE`, see
:func:`train_model`): the forest costs the same from that many rows on. With the tree shape of
the defaults below, ``bench/rf_tradeoff.py`` measured the same out-of-sample quality, within
noise, as the uncapped forest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

MODEL_TYPES: tuple[str, ...] = ("ridge", "random_forest", "hist_gradient_boosting")

FOREST_ROWS_PER_TREE = 10_000
"""Most training rows one tree of the random forest draws (its default ``max_samples``)."""

DEFAULT_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "ridge": {"alpha": 1.0},
    # Chosen with bench/rf_tradeoff.py (results in bench/results/rf_tradeoff*.json): on one-minute
    # regime-synthetic bars this forest fits in about 5 s at 100,000 and at 525,600 bars (the old
    # one, every row per tree, 117 s at 100,000) with the same out-of-sample IC and hit rate
    # within noise. The larger leaves and a third of the features per split are what make a
    # 10,000-row tree as good: with leaves of 5 and every feature, capped trees lost IC (squared
    # error splits chase the fat-tailed returns' variance), and on 3,000 hourly bars the new shape
    # also scored better. Leaves of 50, not 100 or 200 (as good on large data): the smallest
    # training segment the retrain accepts (min_rows 500, about 270 rows, about 170 distinct in
    # a bootstrap) can still be split, where leaves of 100 left every tree a constant.
    "random_forest": {
        "n_estimators": 100,
        "max_depth": 6,
        "min_samples_leaf": 50,
        "max_features": 0.33,
        "max_samples": FOREST_ROWS_PER_TREE,
        "n_jobs": 1,
    },
    "hist_gradient_boosting": {
        "max_iter": 150,
        "learning_rate": 0.05,
        "max_depth": None,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
        "early_stopping": False,
    },
}


@dataclass(frozen=True)
class TrainedModel:
    """A fitted estimator and what is needed to register it.

    ``hyperparameters`` are the values actually used (defaults merged with overrides) and are
    JSON-serialisable; ``seed`` is the ``random_state`` given to the estimator. The random
    forest's integer ``max_samples`` is recorded as the cap it is: the estimator's own
    ``max_samples`` is what was drawn for these rows (see :func:`train_model`).
    """

    model_type: str
    estimator: BaseEstimator
    hyperparameters: dict[str, Any]
    feature_names: list[str]
    fit_seconds: float
    seed: int


def _bare_estimator(model_type: str, seed: int) -> BaseEstimator:
    if model_type == "ridge":
        # Ridge penalises all coefficients equally, so features on different scales (a volume next
        # to a return) must be standardised first; the scaler travels with the model.
        return Pipeline([("scaler", StandardScaler()), ("ridge", Ridge(random_state=seed))])
    if model_type == "random_forest":
        return RandomForestRegressor(random_state=seed)
    return HistGradientBoostingRegressor(random_state=seed)


def _tunable_parameters(model_type: str, estimator: BaseEstimator) -> set[str]:
    if model_type == "ridge":
        final = estimator.named_steps["ridge"]
        return set(final.get_params(deep=False))
    return set(estimator.get_params(deep=False))


def resolve_hyperparameters(
    model_type: str, hyperparameters: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults for ``model_type`` updated with ``hyperparameters``, validated.

    Raises ``ValueError`` for an unknown model type, an unknown hyperparameter name, an attempt to
    set ``random_state`` (use the ``seed`` argument) or a value that is not JSON-serialisable (the
    registry stores hyperparameters as JSON).
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unknown model_type {model_type!r}; valid model types: {', '.join(MODEL_TYPES)}"
        )
    resolved = dict(DEFAULT_HYPERPARAMETERS[model_type])
    overrides = dict(hyperparameters or {})
    if "random_state" in overrides:
        raise ValueError("hyperparameter 'random_state' is set through the seed argument")
    allowed = _tunable_parameters(model_type, _bare_estimator(model_type, 0))
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) for {model_type}: {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(allowed - {'random_state'}))}"
        )
    resolved.update(overrides)
    try:
        json.dumps(resolved, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"hyperparameters must be JSON-serialisable: {error}") from error
    return resolved


def build_model(
    model_type: str, hyperparameters: Mapping[str, Any] | None = None, seed: int = 0
) -> BaseEstimator:
    """Unfitted ``model_type`` estimator: defaults, then overrides, and ``random_state=seed``."""
    resolved = resolve_hyperparameters(model_type, hyperparameters)
    estimator = _bare_estimator(model_type, seed)
    if model_type == "ridge":
        estimator.set_params(**{f"ridge__{name}": value for name, value in resolved.items()})
    else:
        estimator.set_params(**resolved)
    return estimator


def single_threaded() -> threadpool_limits:
    """A context that holds OpenMP and BLAS to one thread, for fitting and predicting.

    ``n_jobs=1`` does not reach hist gradient boosting, which runs OpenMP threads on every core.
    With other symbols' runs on the same cores those threads wait on each other at every barrier:
    a 6,000-row fit measured 0.8 s on one thread and 27 to 55 s on the default two on a loaded
    2-core machine. One thread per fit is the same rule as ``n_jobs=1``: the cores are shared
    between symbols, not within one."""
    return threadpool_limits(limits=1)


def rows_per_tree(
    max_samples: int | float | np.integer[Any] | None, n_rows: int
) -> int | float | None:
    """The forest's ``max_samples`` for ``n_rows`` training rows: an integer is a cap.

    scikit-learn draws an integer ``max_samples`` as it is, with replacement, even above the
    number of rows; here it means "at most": ``None`` (a bootstrap of every row, the same draw)
    when the rows are no more than the cap, the cap otherwise. A float (a share of the rows) and
    ``None`` pass through unchanged."""
    if isinstance(max_samples, int | np.integer) and not isinstance(max_samples, bool):
        return None if n_rows <= max_samples else int(max_samples)
    return max_samples


def _feature_names(X: pd.DataFrame | np.ndarray) -> list[str]:
    if isinstance(X, pd.DataFrame):
        return [str(column) for column in X.columns]
    return [f"x{position}" for position in range(np.shape(X)[1])]


def train_model(
    model_type: str,
    X_train: pd.DataFrame | np.ndarray,
    y_train: pd.Series | np.ndarray,
    *,
    hyperparameters: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> TrainedModel:
    """Fit a ``model_type`` regressor on ``X_train`` / ``y_train``; deterministic given ``seed``.

    A DataFrame's column names become ``feature_names`` (a bare array gets ``x0``, ``x1``, ...).
    The fit runs on one thread (:func:`single_threaded`). A random forest's integer
    ``max_samples`` caps the rows each tree draws (:func:`rows_per_tree`), so that its cost stops
    growing with the rows beyond the cap.
    Raises ``ValueError`` for empty or mismatched inputs or a non-finite target (drop the last
    ``horizon`` rows, whose forward return is unknown, before training).
    """
    if np.ndim(X_train) != 2:
        raise ValueError(f"X_train must be 2-dimensional; got shape {np.shape(X_train)}")
    n_rows = np.shape(X_train)[0]
    if n_rows == 0:
        raise ValueError("X_train has no rows")
    if len(y_train) != n_rows:
        raise ValueError(f"y_train has {len(y_train)} rows but X_train has {n_rows}")
    if not np.all(np.isfinite(np.asarray(y_train, dtype=float))):
        raise ValueError("y_train contains NaN or infinite values")
    resolved = resolve_hyperparameters(model_type, hyperparameters)
    estimator = build_model(model_type, resolved, seed=seed)
    if model_type == "random_forest":
        estimator.set_params(max_samples=rows_per_tree(resolved.get("max_samples"), n_rows))
    started = time.perf_counter()
    with single_threaded():
        estimator.fit(X_train, np.asarray(y_train, dtype=float))
    fit_seconds = time.perf_counter() - started
    return TrainedModel(
        model_type=model_type,
        estimator=estimator,
        hyperparameters=resolved,
        feature_names=_feature_names(X_train),
        fit_seconds=fit_seconds,
        seed=seed,
    )
