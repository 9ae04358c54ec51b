"""Volatility regimes of each symbol's bars, and the per-regime scores the selector ranks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.regimes.classify import REGIMES, classified_rows, regime_frame
from brain_assets.store import validation as check
from brain_assets.store.bars import COPY_HEADER, COPY_TRAILER, PG_EPOCH_US
from brain_assets.store.base import StoreBase
from brain_assets.store.registry import rolled_back_for_regression

REGIME_SCORE_COLUMNS = (
    "model_id",
    "version",
    "model_type",
    "regime",
    "composite_score",
    "n_bars",
    "evaluation_date",
)

# The classified bars travel in binary COPY into a temporary table (a year of minute bars as one
# array parameter each took 12 s to adapt and parse), then only the new and changed bars are
# upserted: the join finds them in one hash join, where ON CONFLICT over every bar of the history
# cost seconds a day. Unchanged bars are left alone, so that updated_at keeps meaning "when these
# values last changed" and a re-run over the same history writes no new row versions.
_STAGE = """
    CREATE TEMP TABLE regime_import (
        bar_time timestamptz, regime_code int2, realized_vol float8, vol_percentile float8
    ) ON COMMIT DROP
"""
_UPSERT = """
    INSERT INTO volatility_regimes (symbol, bar_time, regime, realized_vol, vol_percentile)
    SELECT %(symbol)s, t.bar_time, (%(regimes)s::text[])[t.regime_code + 1], t.realized_vol,
           t.vol_percentile
    FROM regime_import t
    LEFT JOIN volatility_regimes v ON v.symbol = %(symbol)s AND v.bar_time = t.bar_time
    WHERE v.bar_time IS NULL
       OR (v.regime, v.realized_vol, v.vol_percentile) IS DISTINCT FROM
          ((%(regimes)s::text[])[t.regime_code + 1], t.realized_vol, t.vol_percentile)
    ORDER BY t.bar_time
    ON CONFLICT (symbol, bar_time) DO UPDATE
    SET regime = EXCLUDED.regime, realized_vol = EXCLUDED.realized_vol,
        vol_percentile = EXCLUDED.vol_percentile, updated_at = clock_timestamp()
    WHERE (volatility_regimes.regime, volatility_regimes.realized_vol,
           volatility_regimes.vol_percentile)
        IS DISTINCT FROM (EXCLUDED.regime, EXCLUDED.realized_vol, EXCLUDED.vol_percentile)
"""
_ROW_DTYPE = np.dtype(
    [
        ("fields", ">i2"),
        ("time_len", ">i4"),
        ("time", ">i8"),
        ("code_len", ">i4"),
        ("code", ">i2"),
        ("vol_len", ">i4"),
        ("vol", ">f8"),
        ("pct_len", ">i4"),
        ("pct", ">f8"),
    ]
)


def _copy_rows(micros: Any, labels: Any, vol: Any, percentile: Any) -> np.ndarray:
    """Binary COPY rows of (bar_time, regime_code, realized_vol, vol_percentile)."""
    rows = np.empty(len(micros), dtype=_ROW_DTYPE)
    rows["fields"] = 4
    rows["time_len"], rows["code_len"], rows["vol_len"], rows["pct_len"] = 8, 2, 8, 8
    rows["time"] = np.asarray(micros, dtype=np.int64) - PG_EPOCH_US
    rows["code"] = pd.Categorical(labels, categories=list(REGIMES)).codes
    rows["vol"], rows["pct"] = vol, percentile
    return rows


# One evaluation of a model is the set of its regime-tagged rows sharing one evaluation_date
# (store_regime_metrics writes them so); only each model's latest evaluation counts, so that a
# regime that has become too thin to evaluate does not live on through an older score. n_bars
# falls back to n_observations, which evaluate_model always reports and which is the same count.
# Candidates: the active version, and the newest version of each model type unless live
# monitoring rolled it back for a regression; older versions are history, not options.
_REGIME_SCORES_TEMPLATE = """
    WITH candidates AS (
        SELECT r.model_id FROM model_registry r
        WHERE r.symbol = %(symbol)s
          AND (r.is_active OR (
              r.version = (SELECT max(v.version) FROM model_registry v
                           WHERE v.symbol = r.symbol AND v.model_type = r.model_type)
              AND NOT {rolled_back}))
    ),
    latest AS (
        SELECT model_id, max(evaluation_date) AS evaluation_date
        FROM model_metrics
        WHERE symbol = %(symbol)s AND regime IS NOT NULL
          AND model_id IN (SELECT model_id FROM candidates)
        GROUP BY model_id
    )
    SELECT m.model_id, r.version, r.model_type, m.regime,
           (array_agg(m.value ORDER BY m.id DESC)
                FILTER (WHERE m.metric = 'composite_score'))[1] AS composite_score,
           coalesce(
               (array_agg(m.value ORDER BY m.id DESC) FILTER (WHERE m.metric = 'n_bars'))[1],
               (array_agg(m.value ORDER BY m.id DESC)
                    FILTER (WHERE m.metric = 'n_observations'))[1]) AS n_bars,
           m.evaluation_date
    FROM model_metrics m
    JOIN latest l ON l.model_id = m.model_id AND l.evaluation_date = m.evaluation_date
    JOIN model_registry r ON r.model_id = m.model_id AND r.symbol = m.symbol
    WHERE m.symbol = %(symbol)s AND m.regime IS NOT NULL
      AND m.metric IN ('composite_score', 'n_bars', 'n_observations')
    GROUP BY m.model_id, r.version, r.model_type, m.regime, m.evaluation_date
    ORDER BY array_position(%(regimes)s::text[], m.regime), composite_score DESC NULLS LAST,
             r.version DESC
"""
_REGIME_SCORES = _REGIME_SCORES_TEMPLATE.format(rolled_back=rolled_back_for_regression("r"))


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    index = pd.DatetimeIndex([_utc(row["bar_time"]) for row in rows], name="timestamp")
    if not rows:
        index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
    return regime_frame(
        index,
        [row["realized_vol"] for row in rows],
        [row["vol_percentile"] for row in rows],
        [row["regime"] for row in rows],
    )


class RegimesMixin(StoreBase):
    def store_regimes(self, symbol: str, frame: pd.DataFrame) -> int:
        """Upsert the classified bars of ``frame`` (classify_regimes' output) for ``symbol``.

        Bars without a regime are skipped; a bar stored before is overwritten with the new
        values. Returns the number of classified bars stored. Validated before any SQL, and one
        statement, so a bad frame writes nothing.
        """
        symbol = check.symbol(symbol)
        micros, labels, vol, percentile = classified_rows(frame)
        if not len(micros):
            return 0
        rows = _copy_rows(micros, labels, vol, percentile)
        with self.transaction() as conn:
            conn.execute(_STAGE)
            with (
                conn.cursor() as cur,
                cur.copy("COPY regime_import FROM STDIN (FORMAT binary)") as copy,
            ):
                copy.write(COPY_HEADER)
                copy.write(rows.tobytes())
                copy.write(COPY_TRAILER)
            # Without statistics the planner would probe the index once per imported bar.
            conn.execute("ANALYZE regime_import")
            conn.execute(_UPSERT, {"symbol": symbol, "regimes": list(REGIMES)})
        return len(micros)

    def get_current_regime(self, symbol: str) -> dict[str, Any] | None:
        """The regime of the symbol's latest stored bar, or None when none is stored.

        Returns ``{'symbol', 'timestamp', 'regime', 'realized_vol', 'percentile', 'updated_at'}``
        (the keys of :func:`brain_assets.regimes.classify.current_regime`, plus two).
        """
        rows = self._rows(
            """SELECT symbol, bar_time, regime, realized_vol, vol_percentile, updated_at
               FROM volatility_regimes WHERE symbol = %s ORDER BY bar_time DESC LIMIT 1""",
            (check.symbol(symbol),),
        )
        if not rows:
            return None
        row = rows[0]
        return {
            "symbol": row["symbol"],
            "timestamp": _utc(row["bar_time"]),
            "regime": row["regime"],
            "realized_vol": row["realized_vol"],
            "percentile": row["vol_percentile"],
            "updated_at": _utc(row["updated_at"]),
        }

    def get_regime_history(
        self,
        symbol: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> pd.DataFrame:
        """Stored regimes of ``symbol`` with ``start <= bar time <= end``, oldest first.

        The frame has the shape of classify_regimes' output: a UTC DatetimeIndex named
        ``timestamp`` and columns realized_vol, vol_percentile and regime.
        """
        symbol = check.symbol(symbol)
        first = check.optional_timestamp(start, "start")
        last = check.optional_timestamp(end, "end")
        if first and last and first > last:
            raise ValueError(f"start ({first.isoformat()}) is after end ({last.isoformat()})")
        rows = self._rows(
            """SELECT bar_time, regime, realized_vol, vol_percentile FROM volatility_regimes
               WHERE symbol = %s
                 AND (%s::timestamptz IS NULL OR bar_time >= %s)
                 AND (%s::timestamptz IS NULL OR bar_time <= %s)
               ORDER BY bar_time""",
            (symbol, first, first, last, last),
        )
        return _history_frame(rows)

    def get_regime_scores(self, symbol: str) -> pd.DataFrame:
        """Per-regime composite score and bar count of each model's latest regime evaluation.

        Columns: model_id, version, model_type, regime, composite_score (NaN when undefined),
        n_bars, evaluation_date; ordered by regime (low to extreme), then best score first.
        An unknown symbol gives an empty frame.
        """
        rows = self._rows(
            _REGIME_SCORES, {"symbol": check.symbol(symbol), "regimes": list(REGIMES)}
        )
        return self._frame(rows, REGIME_SCORE_COLUMNS)
