"""Printing results: tables for people (rich on a terminal, aligned text through a pipe), JSON
for scripts."""

from __future__ import annotations

import io
import json
import math
import sys
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


def stdout_is_terminal() -> bool:
    return sys.stdout is not None and sys.stdout.isatty()


def table(rows: Sequence[Mapping[str, Any]] | pd.DataFrame, columns: Sequence[str]) -> str:
    """``rows`` as a table of ``columns``: drawn by rich when stdout is a terminal, else plain
    aligned text (what pipes, logs and tests read)."""
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    cells = [[_cell(row.get(c)) for c in columns] for row in records]
    if stdout_is_terminal():
        return rich_table(cells, columns)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("%"))
    except ValueError:
        return text == "-"
    return True


def rich_table(cells: Sequence[Sequence[str]], columns: Sequence[str]) -> str:
    """``cells`` under ``columns`` drawn by rich for the terminal (numbers to the right)."""
    import shutil

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False)
    for i, column in enumerate(columns):
        numeric = bool(cells) and all(_numeric(row[i]) for row in cells)
        grid.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in cells:
        grid.add_row(*(Text(value) for value in row))
    buffer = io.StringIO()
    width = shutil.get_terminal_size().columns
    Console(file=buffer, force_terminal=True, width=width).print(grid)
    return buffer.getvalue().rstrip("\n")


def emit(args: Any, value: Any, render: str) -> None:
    """Print ``value`` as JSON when --json was given, else the human rendering."""
    print(to_json(value) if getattr(args, "json", False) else render)


def emit_rows(args: Any, rows: pd.DataFrame, columns: Sequence[str], empty: str) -> None:
    """``rows`` as JSON or as a table of ``columns``; ``empty`` for people when there are none."""
    emit(args, rows, table(rows, columns) if not rows.empty else empty)
