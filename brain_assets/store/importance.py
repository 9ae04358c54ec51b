"""Feature-importance analyses: one row per (symbol, model, method, feature) with its rank."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from brain_assets.ranking import rank_importances
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase, copy_rows
from brain_assets.store.metrics import require_model_of_symbol

_COPIED = ("symbol", "model_id", "method", "feature", "importance", "rank")
TOP_FEATURE_COLUMNS = ("feature", "importance", "rank", "method", "analysis_date", "model_id")


@dataclass(frozen=True)
class FeatureImportanceRecord:
    """One feature's place in one stored analysis, and how it moved since the one before.

    ``previous_rank`` is the feature's rank in the previous analysis of the same model by the
    same method (None for a model's first analysis, or a feature absent from it);
    ``rank_change`` is ``previous_rank - rank``: positive when the feature moved up.
    """

    analysis_date: datetime
    symbol: str
    model_id: str
    method: str
    feature: str
    importance: float
    rank: int
    previous_rank: int | None
    rank_change: int | None


class ImportanceMixin(StoreBase):
    def store_feature_importance(
        self,
        symbol: str,
        model_id: str,
        method: str,
        importances: object,
        analysis_date: datetime | None = None,
    ) -> int:
        """Store one analysis (a mapping feature -> importance, a Series, or a DataFrame with
        columns feature and importance); ranks follow |importance|. Returns the rows written."""
        return self.store_feature_importances(
            symbol, model_id, {method: importances}, analysis_date
        )

    def store_feature_importances(
        self,
        symbol: str,
        model_id: str,
        tables: Mapping[str, object],
        analysis_date: datetime | None = None,
    ) -> int:
        """Store several methods' analyses of one model under one analysis_date, in one COPY."""
        symbol = check.symbol(symbol)
        model_id = check.text(model_id, "model_id")
        if not isinstance(tables, Mapping) or not tables:
            raise ValueError("tables must be a non-empty mapping of method -> importances")
        ranked = {
            check.text(method, "method"): rank_importances(
                check.importances(values, f"importances[{method!r}]")
            )
            for method, values in tables.items()
        }
        when = check.optional_timestamp(analysis_date, "analysis_date")
        with self.transaction() as conn:
            if not self._registered_in_transaction(model_id, symbol):
                require_model_of_symbol(conn, model_id, symbol)
            copied = (
                (symbol, model_id, method, feature, value, rank)
                for method, rows in ranked.items()
                for feature, value, rank in rows
            )
            copy_rows(conn, "feature_importance", _COPIED, copied, dated="analysis_date", date=when)
        return sum(len(rows) for rows in ranked.values())

    def get_top_features(
        self,
        symbol: str,
        top_n: int = 20,
        method: str | None = None,
        *,
        model_id: str | None = None,
    ) -> pd.DataFrame:
        """The ``top_n`` features of the symbol's latest analysis, by rank.

        Which analysis: that of ``model_id`` if given, else of the symbol's active model when it
        has one, else of any model; its most recent analysis date; and among the methods stored
        at that date, ``method`` if given, else the first of shap, permutation, correlation
        (then any other, alphabetically). Columns: feature, importance, rank, method,
        analysis_date, model_id. An unknown symbol gives an empty frame.
        """
        symbol = check.symbol(symbol)
        top_n = check.positive_int(top_n, "top_n")
        method = None if method is None else check.text(method, "method")
        model_id = None if model_id is None else check.text(model_id, "model_id")
        params = {
            "symbol": symbol,
            "method": method,
            "model_id": model_id,
            "top_n": top_n,
            "preference": list(METHOD_PREFERENCE),
        }
        rows = self._rows(_TOP_FEATURES_BY_MODEL if model_id else _TOP_FEATURES, params)
        return self._frame(rows, TOP_FEATURE_COLUMNS)

    def get_feature_importance_history(
        self,
        symbol: str,
        feature: str | None = None,
        since: datetime | None = None,
        *,
        method: str | None = None,
    ) -> list[FeatureImportanceRecord]:
        """Every stored analysis of the symbol's models, oldest first (then by method and rank):
        the trend the nightly analysis records, one record per feature and analysis.

        ``feature`` keeps one feature's records; ``since`` (a datetime, naive meaning UTC; an
        ISO-8601 string too, as elsewhere in the store) the analyses from that time on;
        ``method`` one method's. Analyses that retention moved to the archive are included.
        A record's rank change is against the previous analysis of the same model and method,
        even when that one is older than ``since``. An unknown symbol or feature gives [].
        """
        name = check.symbol(symbol)
        params = {
            "symbol": name,
            "feature": None if feature is None else check.text(feature, "feature"),
            "since": check.optional_timestamp(since, "since"),
            "method": None if method is None else check.text(method, "method"),
        }
        records = []
        for row in self._rows(_HISTORY, params):
            previous = None if row["previous_rank"] is None else int(row["previous_rank"])
            rank = int(row["rank"])
            records.append(
                FeatureImportanceRecord(
                    analysis_date=row["analysis_date"],
                    symbol=name,
                    model_id=str(row["model_id"]),
                    method=str(row["method"]),
                    feature=str(row["feature"]),
                    importance=float(row["importance"]),
                    rank=rank,
                    previous_rank=previous,
                    rank_change=None if previous is None else previous - rank,
                )
            )
        return records


METHOD_PREFERENCE = ("shap", "permutation", "correlation")

# Each branch of `pick` is an index scan that stops at its first row; UNION ALL ... LIMIT 1
# only runs the second branch when the active model has no analysis.
_TOP_FEATURES = """
WITH pick AS (
    (SELECT model_id, analysis_date FROM feature_importance
     WHERE symbol = %(symbol)s
       AND model_id = (SELECT model_id FROM model_registry
                       WHERE symbol = %(symbol)s AND is_active)
       AND (%(method)s::text IS NULL OR method = %(method)s)
     ORDER BY analysis_date DESC LIMIT 1)
    UNION ALL
    (SELECT model_id, analysis_date FROM feature_importance
     WHERE symbol = %(symbol)s AND (%(method)s::text IS NULL OR method = %(method)s)
     ORDER BY analysis_date DESC LIMIT 1)
    LIMIT 1
)"""
_TOP_FEATURES_BY_MODEL = """
WITH pick AS (
    SELECT model_id, analysis_date FROM feature_importance
    WHERE symbol = %(symbol)s AND model_id = %(model_id)s
      AND (%(method)s::text IS NULL OR method = %(method)s)
    ORDER BY analysis_date DESC LIMIT 1
)"""
_BATCH = """,
batch AS (
    SELECT fi.feature, fi.importance, fi.rank, fi.method, fi.analysis_date, fi.model_id
    FROM pick JOIN feature_importance fi
      ON fi.symbol = %(symbol)s AND fi.model_id = pick.model_id
     AND fi.analysis_date = pick.analysis_date
    WHERE %(method)s::text IS NULL OR fi.method = %(method)s
),
chosen AS (
    SELECT method FROM batch
    ORDER BY array_position(%(preference)s::text[], method) NULLS LAST, method LIMIT 1
)
SELECT feature, importance, rank, method, analysis_date, model_id FROM batch
WHERE method = (SELECT method FROM chosen)
ORDER BY rank LIMIT %(top_n)s"""
_TOP_FEATURES += _BATCH
_TOP_FEATURES_BY_MODEL += _BATCH

# The previous analysis of a model and method is found among all of the symbol's analyses before
# the feature and since filters apply, so that filtering never changes a record's rank change.
_HISTORY = """
WITH stored AS (
    SELECT model_id, method, feature, importance, rank, analysis_date
    FROM feature_importance WHERE symbol = %(symbol)s
    UNION ALL
    SELECT model_id, method, feature, importance, rank, analysis_date
    FROM feature_importance_archive WHERE symbol = %(symbol)s
),
analyses AS (
    SELECT model_id, method, analysis_date,
           lag(analysis_date) OVER (PARTITION BY model_id, method ORDER BY analysis_date)
               AS previous_date
    FROM (SELECT DISTINCT model_id, method, analysis_date FROM stored) AS distinct_analyses
)
SELECT s.analysis_date, s.model_id, s.method, s.feature, s.importance, s.rank,
       p.rank AS previous_rank
FROM stored s
JOIN analyses a USING (model_id, method, analysis_date)
LEFT JOIN stored p
  ON p.model_id = s.model_id AND p.method = s.method AND p.feature = s.feature
 AND p.analysis_date = a.previous_date
WHERE (%(feature)s::text IS NULL OR s.feature = %(feature)s)
  AND (%(since)s::timestamptz IS NULL OR s.analysis_date >= %(since)s)
  AND (%(method)s::text IS NULL OR s.method = %(method)s)
ORDER BY s.analysis_date, s.method, s.rank, s.feature"""
