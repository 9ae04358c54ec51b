"""Feature-importance analyses: one row per (symbol, model, method, feature) with its rank."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from brain_assets.ranking import rank_importances
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase, copy_rows
from brain_assets.store.metrics import require_model_of_symbol

_COPIED = ("symbol", "model_id", "method", "feature", "importance", "rank")
TOP_FEATURE_COLUMNS = ("feature", "importance", "rank", "method", "analysis_date", "model_id")


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
