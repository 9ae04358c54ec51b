"""Volatility regimes of each symbol's bars, and the per-regime scores the selector ranks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase
from brain_assets.store.registry import rolled_back_for_regression

REGIME_HISTORY_COLUMNS = ("realized_vol", "vol_percentile", "regime")
REGIME_SCORE_COLUMNS = (
    "model_id",
    "version",
    "model_type",
    "regime",
    "composite_score",
    "n_bars",
    "evaluation_date",
)

# Unchanged bars are left alone so that updated_at keeps meaning "when these values last changed"
# and a re-run over the same history writes no new row versions.
_UPSERT = """
    INSERT INTO volatility_regimes (symbol, bar_time, regime, realized_vol, vol_percentile)
    SELECT %s, t.bar_time, t.regime, t.realized_vol, t.vol_percentile
    FROM unnest(%s::timestamptz[], %s::text[], %s::float8[], %s::float8[])
        AS t(bar_time, regime, realized_vol, vol_percentile)
    ON CONFLICT (symbol, bar_time) DO UPDATE
    SET regime = EXCLUDED.regime, realized_vol = EXCLUDED.realized_vol,
        vol_percentile = EXCLUDED.vol_percentile, updated_at = clock_timestamp()
    WHERE (volatility_regimes.regime, volatility_regimes.realized_vol,
           volatility_regimes.vol_percentile)
        IS DISTINCT FROM (EXCLUDED.regime, EXCLUDED.realized_vol, EXCLUDED.vol_percentile)
"""

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


def _bar_times(frame: pd.DataFrame) -> pd.DatetimeIndex:
    if "timestamp" in frame.columns:
        raw: Any = frame["timestamp"]
    elif isinstance(frame.index, pd.DatetimeIndex):
        raw = frame.index
    else:
        raise ValueError("frame: needs a DatetimeIndex or a 'timestamp' column")
    try:
        times = pd.DatetimeIndex(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"frame: timestamps are not datetimes ({exc})") from exc
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    if times.hasnans:
        raise ValueError("frame: timestamps contain NaT")
    if times.has_duplicates:
        raise ValueError("frame: duplicate timestamps")
    return times


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    try:
        return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"frame[{column!r}]: must be numeric ({exc})") from exc


def regime_rows(frame: pd.DataFrame) -> tuple[list[datetime], list[str], list[float], list[float]]:
    """The classified bars of a classify_regimes frame, validated, as column lists in time order.

    Bars without a regime (not enough history yet) are skipped; every other bar must be whole.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame: must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in REGIME_HISTORY_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"frame: lacks column(s) {missing}; pass classify_regimes' output")
    times = _bar_times(frame)
    labels = frame["regime"].to_numpy(dtype=object)
    keep = ~pd.isna(labels)
    unknown = sorted({str(label) for label in labels[keep] if label not in check.REGIMES})
    if unknown:
        raise ValueError(
            f"frame['regime']: unknown label(s) {unknown}; valid regimes are "
            f"{', '.join(check.REGIMES)} (None for an unclassified bar)"
        )
    vol = _numbers(frame, "realized_vol")[keep]
    percentile = _numbers(frame, "vol_percentile")[keep]
    bad_vol = int(np.count_nonzero(~np.isfinite(vol) | (vol < 0.0)))
    if bad_vol:
        raise ValueError(
            f"frame['realized_vol']: {bad_vol} classified bar(s) with a negative, NaN or "
            "infinite value"
        )
    bad_pct = int(np.count_nonzero(~np.isfinite(percentile) | (percentile < 0) | (percentile > 1)))
    if bad_pct:
        raise ValueError(
            f"frame['vol_percentile']: {bad_pct} classified bar(s) outside [0, 1] or NaN"
        )
    # Time order gives concurrent writers of one symbol the same lock order (no deadlock).
    order = np.argsort(times.asi8[keep], kind="stable")
    return (
        [stamp.to_pydatetime() for stamp in times[keep][order]],
        [str(label) for label in labels[keep][order]],
        vol[order].tolist(),
        percentile[order].tolist(),
    )


def _history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    index = pd.DatetimeIndex([_utc(row["bar_time"]) for row in rows], name="timestamp")
    if not rows:
        index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "realized_vol": np.array([row["realized_vol"] for row in rows], dtype=np.float64),
            "vol_percentile": np.array([row["vol_percentile"] for row in rows], dtype=np.float64),
            "regime": pd.Series([row["regime"] for row in rows], index=index, dtype=object),
        },
        index=index,
    )


class RegimesMixin(StoreBase):
    def store_regimes(self, symbol: str, frame: pd.DataFrame) -> int:
        """Upsert the classified bars of ``frame`` (classify_regimes' output) for ``symbol``.

        Bars without a regime are skipped; a bar stored before is overwritten with the new
        values. Returns the number of classified bars stored. Validated before any SQL, and one
        statement, so a bad frame writes nothing.
        """
        symbol = check.symbol(symbol)
        times, labels, vol, percentile = regime_rows(frame)
        if not times:
            return 0
        with self.transaction() as conn:
            conn.execute(_UPSERT, (symbol, times, labels, vol, percentile))
        return len(times)

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
            _REGIME_SCORES, {"symbol": check.symbol(symbol), "regimes": list(check.REGIMES)}
        )
        return self._frame(rows, REGIME_SCORE_COLUMNS)
