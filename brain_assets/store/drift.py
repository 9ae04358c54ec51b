"""Input drift: one row per monitoring check of a version's live inputs (migration 011)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from brain_assets.features.drift import drifted
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase
from brain_assets.store.metrics import require_model_of_symbol

DRIFT_COLUMNS = (
    "checked_at",
    "symbol",
    "model_id",
    "window_start",
    "window_end",
    "bars",
    "max_psi",
    "drifted_features",
    "threshold",
    "flagged",
    "psi",
    "ceilings",
)


class DriftMixin(StoreBase):
    def record_input_drift(
        self,
        symbol: str,
        model_id: str,
        psi: Mapping[str, float],
        *,
        window_start: datetime | str,
        window_end: datetime | str,
        bars: int,
        threshold: float,
        ceilings: Mapping[str, float] | None = None,
    ) -> bool:
        """Store one check of ``model_id``'s live inputs: the Population Stability Index of
        each feature over the window, and each feature's ceiling (the largest index a window of
        the same length reached within the training rows); returns whether it is flagged: some
        feature above both ``threshold`` and its ceiling (features.drift.drifted)."""
        symbol = check.symbol(symbol)
        model_id = check.text(model_id, "model_id")
        values = check.metrics(psi, "psi")
        if not values:
            raise ValueError("psi: no feature to record")
        if any(value < 0 for value in values.values()):
            raise ValueError("psi: a Population Stability Index is never negative")
        limit = check.finite(threshold, "threshold")
        if limit <= 0:
            raise ValueError(f"threshold must be positive, got {limit}")
        rows = check.positive_int(bars, "bars")
        start = check.optional_timestamp(window_start, "window_start")
        end = check.optional_timestamp(window_end, "window_end")
        if start is None or end is None or start > end:
            raise ValueError("window_start and window_end must bound the checked bars")
        tops = check.metrics(ceilings or {}, "ceilings") if ceilings else {}
        count = len(drifted(values, tops, limit))
        worst = max(values.values())
        with self.transaction() as conn:
            require_model_of_symbol(conn, model_id, symbol)
            conn.execute(
                """INSERT INTO input_drift (symbol, model_id, window_start, window_end, bars,
                       max_psi, drifted_features, threshold, flagged, psi, ceilings)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)""",
                (
                    symbol,
                    model_id,
                    start,
                    end,
                    rows,
                    worst,
                    count,
                    limit,
                    count > 0,
                    check.json_document(values, "psi"),
                    check.json_document(tops, "ceilings"),
                ),
            )
        return count > 0

    def get_input_drift(self, symbol: str, *, limit: int = 100) -> pd.DataFrame:
        """The latest input-drift checks of ``symbol``, newest first (``psi``: feature -> PSI)."""
        rows = self._rows(
            f"SELECT {', '.join(DRIFT_COLUMNS)} FROM input_drift"  # noqa: S608 (constants)
            " WHERE symbol = %s ORDER BY checked_at DESC, id DESC LIMIT %s",
            (check.symbol(symbol), check.positive_int(limit, "limit")),
        )
        return self._frame(rows, DRIFT_COLUMNS)
