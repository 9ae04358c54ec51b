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

# What each metric row says of how it was measured: the columns after its name and value.
_MEASURED = ("regime", "periods_per_year", "segment", "fold", "window_start", "window_end")
_COPIED = ("model_id", "symbol", "metric", "value", *_MEASURED)
METRIC_HISTORY_COLUMNS = ("metric", "value", "evaluation_date", *_MEASURED)
SEGMENTS = ("evaluation", "fold", "live")
"""Which bars a metric row was measured on: the out-of-sample record a version was registered
with (overall, or per regime), one walk-forward fold of it, or monitoring's live bars."""


def insert_metric_rows(
    conn: psycopg.Connection,
    model_id: str,
    symbol: str,
    values: Mapping[str, float],
    *,
    evaluation_date: datetime | None,
    regime: str | None,
    periods_per_year: float | None,
    segment: str = "evaluation",
    fold: int | None = None,
    window: tuple[datetime | None, datetime | None] = (None, None),
) -> int:
    """COPY validated metric values in (see copy_rows)."""
    rows = (
        (model_id, symbol, name, value, regime, periods_per_year, segment, fold, *window)
        for name, value in values.items()
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


def segment_of(value: object) -> str:
    if value not in SEGMENTS:
        raise ValueError(f"segment must be one of {', '.join(SEGMENTS)}, got {value!r}")
    return str(value)


def latest_metrics(
    conn: psycopg.Connection,
    model_id: str,
    symbol: str,
    *,
    regime: str | None = None,
    segment: str = "evaluation",
) -> dict[str, float]:
    """The latest value of each metric of a model in one ``segment``, overall or for one
    ``regime``."""
    rows = conn.execute(
        """SELECT DISTINCT ON (metric) metric, value FROM model_metrics
           WHERE model_id = %s AND symbol = %s AND regime IS NOT DISTINCT FROM %s
             AND segment = %s AND fold IS NULL
           ORDER BY metric, evaluation_date DESC, id DESC""",
        (model_id, symbol, regime, segment),
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
        *,
        segment: str = "evaluation",
        fold: int | None = None,
        window_start: datetime | str | None = None,
        window_end: datetime | str | None = None,
    ) -> int:
        """Record one evaluation of a registered model; returns the number of rows written.

        ``regime`` (low, normal, high, extreme) marks metrics measured on that regime's bars only;
        ``periods_per_year`` is the annualisation used (8760 for 1h bars on crypto's calendar).
        ``segment`` says which bars (see :data:`SEGMENTS`): ``fold`` rows carry their fold's
        number in ``fold``; ``window_start`` and ``window_end`` bound the bars.
        """
        model_id = check.text(model_id, "model_id")
        symbol = check.symbol(symbol)
        values = check.metrics(metrics)
        when = check.optional_timestamp(evaluation_date, "evaluation_date")
        regime = check.regime(regime)
        segment = segment_of(segment)
        if (fold is None) != (segment != "fold"):
            raise ValueError(f"fold must be given for segment 'fold' only, got fold={fold!r}")
        if fold is not None and (isinstance(fold, bool) or not isinstance(fold, int) or fold < 0):
            raise ValueError(f"fold must be an integer >= 0, got {fold!r}")
        window = (
            check.optional_timestamp(window_start, "window_start"),
            check.optional_timestamp(window_end, "window_end"),
        )
        if window[0] and window[1] and window[0] > window[1]:
            raise ValueError("window_start must not be after window_end")
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
                segment=segment,
                fold=fold,
                window=window,
            )

    def get_model_metrics(
        self,
        model_id: str,
        symbol: str,
        *,
        regime: str | None = None,
        segment: str = "evaluation",
    ) -> dict[str, float]:
        """The latest value of each metric of a model: its out-of-sample evaluation by default
        (overall, or for one regime), or another ``segment`` (``live``: see get_live_metrics).

        An unknown model or symbol gives an empty dict.
        """
        model_id = check.text(model_id, "model_id")
        symbol = check.symbol(symbol)
        regime = check.regime(regime)
        with self.transaction() as conn:
            return latest_metrics(
                conn, model_id, symbol, regime=regime, segment=segment_of(segment)
            )

    def get_live_metrics(self, model_id: str, symbol: str) -> dict[str, float]:
        """The latest live-monitoring metrics of a model (bars it never saw); {} if never."""
        return self.get_model_metrics(model_id, symbol, segment="live")

    def get_fold_metrics(self, model_id: str, symbol: str) -> pd.DataFrame:
        """The walk-forward folds of a model's evaluation: one row per fold (``fold``,
        ``window_start``, ``window_end`` and one column per metric), oldest fold first."""
        rows = self._rows(
            """SELECT fold, window_start, window_end, metric, value FROM model_metrics
               WHERE model_id = %s AND symbol = %s AND segment = 'fold'
               ORDER BY fold, metric, id""",
            (check.text(model_id, "model_id"), check.symbol(symbol)),
        )
        if not rows:
            return pd.DataFrame(columns=["fold", "window_start", "window_end"])
        long = pd.DataFrame(rows)
        windows = long.groupby("fold")[["window_start", "window_end"]].first()
        # The latest row of each (fold, metric) if a fold was ever stored twice.
        values = long.pivot_table(index="fold", columns="metric", values="value", aggfunc="last")
        return windows.join(values).reset_index().rename_axis(columns=None)

    def get_metric_history(
        self, model_id: str, symbol: str, *, metric: str | None = None
    ) -> pd.DataFrame:
        """Every recorded value (all regimes and segments), newest first."""
        rows = self._rows(
            f"SELECT {', '.join(METRIC_HISTORY_COLUMNS)} FROM model_metrics"  # noqa: S608
            """ WHERE model_id = %s AND symbol = %s AND (%s::text IS NULL OR metric = %s)
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
