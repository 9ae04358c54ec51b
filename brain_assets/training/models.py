"""The scikit-learn regressors the daily retrain fits, with small, deterministic defaults.

The defaults are sized for a 2-core machine retraining every symbol daily: a few seconds per model,
single-threaded (``n_jobs=1``, so parallel symbols do not oversubscribe the cores), and no early
stopping, whose internal random validation split would make a fit depend on more than the seed.
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

MODEL_TYPES: tuple[str, ...] = ("ridge", "random_forest", "hist_gradient_boosting")

DEFAULT_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "ridge": {"alpha": 1.0},
    "random_forest": {
        "n_estimators": 100,
        "max_depth": 6,
        "min_samples_leaf": 5,
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
    JSON-serialisable; ``seed`` is the ``random_state`` given to the estimator.
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
    started = time.perf_counter()
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
