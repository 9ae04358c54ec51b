"""Markdown tables and charts that the retrain assets attach for people in the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


METRICS_SHOWN = (
    "composite_score",
    "sharpe_ratio",
    "sortino_ratio",
    "annualized_return",
    "max_drawdown",
    "calmar_ratio",
    "directional_accuracy",
    "information_coefficient",
    "rmse",
    "num_trades",
)
