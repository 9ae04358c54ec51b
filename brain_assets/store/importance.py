"""Feature-importance analyses: one row per (symbol, model, method, feature) with its rank."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd

from brain_assets.ranking import rank_importances
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase
from brain_assets.store.metrics import require_model_of_symbol

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
        when = check.optional_timestamp(analysis_date, "analysis_date") or datetime.now(UTC)
        with self.transaction() as conn:
            require_model_of_symbol(conn, model_id, symbol)
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY feature_importance (symbol, model_id, method, feature, importance, rank, "
                    "analysis_date) FROM STDIN"
                ) as copy,
            ):
                for method, rows in ranked.items():
                    for feature, value, rank in rows:
                        copy.write_row((symbol, model_id, method, feature, value, rank, when))
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

        "Latest analysis" is the most recent stored (model, method, analysis_date) batch among the
        symbol's rows, narrowed to ``method`` and ``model_id`` when they are given. Columns:
        feature, importance, rank, method, analysis_date, model_id. Unknown symbol: empty frame.
        """
        symbol = check.symbol(symbol)
        top_n = check.positive_int(top_n, "top_n")
        method = None if method is None else check.text(method, "method")
        model_id = None if model_id is None else check.text(model_id, "model_id")
        # Only fixed fragments are joined; values always travel as parameters.
        conditions = ["symbol = %(symbol)s"]
        if method is not None:
            conditions.append("method = %(method)s")
        if model_id is not None:
            conditions.append("model_id = %(model_id)s")
        latest = (
            "SELECT model_id, method, analysis_date FROM feature_importance WHERE "  # noqa: S608
            + " AND ".join(conditions)
            + " ORDER BY analysis_date DESC LIMIT 1"
        )
        rows = self._rows(
            f"""WITH latest AS ({latest})
                SELECT fi.feature, fi.importance, fi.rank, fi.method, fi.analysis_date, fi.model_id
                FROM latest JOIN feature_importance fi
                  ON fi.symbol = %(symbol)s AND fi.model_id = latest.model_id
                 AND fi.method = latest.method AND fi.analysis_date = latest.analysis_date
                ORDER BY fi.rank LIMIT %(top_n)s""",  # noqa: S608 (fixed SQL fragments only)
            {"symbol": symbol, "method": method, "model_id": model_id, "top_n": top_n},
        )
        return self._frame(rows, TOP_FEATURE_COLUMNS)
