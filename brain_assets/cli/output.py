"""Printing results: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        return value.item()
    return value


def to_json(value: Any) -> str:
    if isinstance(value, pd.DataFrame):
        value = value.to_dict("records")
    return json.dumps(value, default=_plain, indent=2, sort_keys=False)


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)[:60]
    return str(value)


def table(rows: Sequence[Mapping[str, Any]] | pd.DataFrame, columns: Sequence[str]) -> str:
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    cells = [[_cell(row.get(c)) for c in columns] for row in records]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def emit(args: Any, value: Any, render: str) -> None:
    """Print ``value`` as JSON when --json was given, else the human rendering."""
    print(to_json(value) if getattr(args, "json", False) else render)


def emit_rows(args: Any, rows: pd.DataFrame, columns: Sequence[str], empty: str) -> None:
    """``rows`` as JSON or as a table of ``columns``; ``empty`` for people when there are none."""
    emit(args, rows, table(rows, columns) if not rows.empty else empty)
