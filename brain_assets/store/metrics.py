"""Evaluation metrics of model versions, overall and per volatility regime."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg

from brain_assets.errors import UnknownModelError
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase, copy_rows

_COPIED = ("model_id", "symbol", "metric", "value", "regime", "periods_per_year")
METRIC_HISTORY_COLUMNS = ("metric", "value", "evaluation_date", "regime", "periods_per_year")


def insert_metric_rows(
    conn: psycopg.Connection,
    model_id: str,
    symbol: str,
    values: Mapping[str, float],
    *,
    evaluation_date: datetime | None,
    regime: str | None,
    periods_per_year: float | None,
) -> int:
    """COPY validated metric values in (see copy_rows)."""
    rows = (
        (model_id, symbol, name, value, regime, periods_per_year) for name, value in values.items()
    )
    copy_rows(conn, "model_metrics", _COPIED, rows, dated="evaluation_date", date=evaluation_date)
    return len(values)


def require_model_of_symbol(conn: psycopg.Connection, model_id: str, symbol: str) -> None:
    row = conn.execute(
        "SELECT symbol FROM model_registry WHERE model_id = %s", (model_id,)
    ).fetchone()
    if row is None:
        raise UnknownModelError(f"unknown model_id {model_id!r}: register the model first")
    if row[0] != symbol:
        raise UnknownModelError(f"model {model_id} belongs to symbol {row[0]!r}, not {symbol!r}")


def latest_metrics(
    conn: psycopg.Connection, model_id: str, symbol: str, *, regime: str | None = None
) -> dict[str, float]:
    """The latest value of each metric of a model, overall or for one ``regime``."""
    rows = conn.execute(
        """SELECT DISTINCT ON (metric) metric, value FROM model_metrics
           WHERE model_id = %s AND symbol = %s AND regime IS NOT DISTINCT FROM %s
           ORDER BY metric, evaluation_date DESC, id DESC""",
        (model_id, symbol, regime),
    ).fetchall()
    return {metric: value for metric, value in rows}


class MetricsMixin(StoreBase):
    def store_model_metrics(
        self,
        model_id: str,
        symbol: str,
        metrics: Mapping[str, float],
        evaluation_date: datetime | None = None,
        regime: str | None = None,
        periods_per_year: float | None = None,
    ) -> int:
        """Record one evaluation of a registered model; returns the number of rows written.

        ``regime`` (low, normal, high, extreme) marks metrics measured on that regime's bars only;
        ``periods_per_year`` is the annualisation used (8760 for 1h bars on crypto's calendar).
        """
        model_id = check.text(model_id, "model_id")
        symbol = check.symbol(symbol)
        values = check.metrics(metrics)
        when = check.optional_timestamp(evaluation_date, "evaluation_date")
        regime = check.regime(regime)
        ppy = (
            None if periods_per_year is None else check.finite(periods_per_year, "periods_per_year")
        )
        if ppy is not None and ppy <= 0:
            raise ValueError(f"periods_per_year must be positive, got {ppy}")
        with self.transaction() as conn:
            if not self._registered_in_transaction(model_id, symbol):
                require_model_of_symbol(conn, model_id, symbol)
            return insert_metric_rows(
                conn,
                model_id,
                symbol,
                values,
                evaluation_date=when,
                regime=regime,
                periods_per_year=ppy,
            )

    def get_model_metrics(
        self, model_id: str, symbol: str, *, regime: str | None = None
    ) -> dict[str, float]:
        """The latest value of each metric of a model (overall, or for one regime).

        An unknown model or symbol gives an empty dict.
        """
        model_id = check.text(model_id, "model_id")
        symbol = check.symbol(symbol)
        regime = check.regime(regime)
        with self.transaction() as conn:
            return latest_metrics(conn, model_id, symbol, regime=regime)

    def get_metric_history(
        self, model_id: str, symbol: str, *, metric: str | None = None
    ) -> pd.DataFrame:
        """Every recorded value (all regimes), newest first."""
        rows = self._rows(
            """SELECT metric, value, evaluation_date, regime, periods_per_year FROM model_metrics
               WHERE model_id = %s AND symbol = %s AND (%s::text IS NULL OR metric = %s)
               ORDER BY evaluation_date DESC, id DESC""",
            (check.text(model_id, "model_id"), check.symbol(symbol), metric, metric),
        )
        return self._frame(rows, METRIC_HISTORY_COLUMNS)

    def get_regime_metrics(self, model_id: str, symbol: str) -> dict[str, dict[str, Any]]:
        """Latest metrics per regime: ``{'high': {'sharpe_ratio': ...}, ...}``."""
        rows = self._rows(
            """SELECT DISTINCT ON (regime, metric) regime, metric, value FROM model_metrics
               WHERE model_id = %s AND symbol = %s AND regime IS NOT NULL
               ORDER BY regime, metric, evaluation_date DESC, id DESC""",
            (check.text(model_id, "model_id"), check.symbol(symbol)),
        )
        result: dict[str, dict[str, Any]] = {}
        for row in rows:
            result.setdefault(row["regime"], {})[row["metric"]] = row["value"]
        return result
