"""Replays of the daily loop: what a decision policy did at each step of history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from brain_assets.records import ModelVersion
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase

STEP_COLUMNS = (
    "step",
    "as_of",
    "active_model_id",
    "active_version",
    "active_type",
    "period_return",
    "hold_return",
    "live",
    "events",
)
REPLAY_COLUMNS = ("replay_id", "symbol", "created_at", "parameters", "summary")


class ReplaysMixin(StoreBase):
    def start_replay(self, replay_id: str, symbol: str, parameters: Mapping[str, Any]) -> None:
        """Record a new replay (its id must be new)."""
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO replay_runs (replay_id, symbol, parameters)
                   VALUES (%s, %s, %s::jsonb)""",
                (
                    check.text(replay_id, "replay_id"),
                    check.symbol(symbol),
                    check.json_document(parameters, "parameters"),
                ),
            )

    def record_replay_step(
        self,
        replay_id: str,
        step: int,
        *,
        as_of: datetime | str,
        active: ModelVersion | None,
        period_return: float,
        live: Mapping[str, Any],
        events: Sequence[Mapping[str, Any]],
        hold_return: float = 0.0,
    ) -> None:
        """One step of a replay: the active version after the step's decisions, the return the
        version held during the step earned (net of fees), what holding the symbol earned over
        the same bars, the live verdict and the decisions taken."""
        when = check.optional_timestamp(as_of, "as_of")
        if when is None:
            raise ValueError("as_of is required")
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO replay_steps (replay_id, step, as_of, active_model_id,
                       active_version, active_type, period_return, hold_return, live, events)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)""",
                (
                    check.text(replay_id, "replay_id"),
                    int(step),
                    when,
                    None if active is None else str(active.model_id),
                    None if active is None else int(active.version),
                    None if active is None else str(active.model_type),
                    check.finite(period_return, "period_return"),
                    check.finite(hold_return, "hold_return"),
                    check.json_document(live, "live"),
                    _json_list(events, "events"),
                ),
            )

    def finish_replay(self, replay_id: str, summary: Mapping[str, Any]) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE replay_runs SET summary = %s::jsonb WHERE replay_id = %s",
                (check.json_document(summary, "summary"), check.text(replay_id, "replay_id")),
            )

    def get_replay_timeline(self, replay_id: str) -> pd.DataFrame:
        """The steps of a replay, in order."""
        rows = self._rows(
            f"SELECT {', '.join(STEP_COLUMNS)} FROM replay_steps "  # noqa: S608 (constant)
            "WHERE replay_id = %s ORDER BY step",
            (check.text(replay_id, "replay_id"),),
        )
        return self._frame(rows, STEP_COLUMNS)

    def list_replays(self, symbol: str | None = None) -> pd.DataFrame:
        """Recorded replays, newest first."""
        rows = self._rows(
            f"SELECT {', '.join(REPLAY_COLUMNS)} FROM replay_runs "  # noqa: S608 (constant)
            "WHERE %(symbol)s::text IS NULL OR symbol = %(symbol)s ORDER BY created_at DESC",
            {"symbol": None if symbol is None else check.symbol(symbol)},
        )
        return self._frame(rows, REPLAY_COLUMNS)


def _json_list(values: Sequence[Mapping[str, Any]], field: str) -> str:
    # Each entry through json_document: the same rules (mappings, no NaN) as every jsonb column.
    return "[" + ", ".join(check.json_document(v, f"{field} entry") for v in values) + "]"
