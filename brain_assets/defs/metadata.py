"""Markdown tables and charts that the retrain assets attach for people in the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from brain_assets.library import BrainLibrary


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


METRICS_SHOWN = (
    "composite_score",
    "sharpe_ratio",
    "sharpe_standard_error",
    "total_return",
    "hold_total_return",
    "appraisal_ratio",
    "beta_to_hold",
    "max_drawdown",
    "annual_cost",
    "exposure",
    "directional_accuracy",
    "information_coefficient",
    "n_observations",
)
"""The evaluation table's columns: skill net of costs with its error bar, against standing aside
(the return itself) and holding (its return, and the skill left once its beta is removed), the
costs and the evidence (bars). The full list is in the report below the table."""


def registry_markdown(brain: BrainLibrary, symbol: str) -> str:
    """Active version, challengers and latest activations of a symbol as markdown tables."""
    from brain_assets.pipeline.registration import registry_summary

    summary = registry_summary(brain, symbol)
    model_columns = [
        "version",
        "model_type",
        "horizon",
        "composite_score",
        "credible",
        "bars",
        "created_at",
        "model_id",
    ]
    activation_columns = ["created_at", "version", "action", "reason", "rule"]
    for row in summary["activations"]:
        # The verdict's one-line reason (floor, paired test, significance) next to the action.
        row["rule"] = (row.get("details") or {}).get("rule")
    status = brain.trading_status(symbol)
    active = (
        markdown_table(summary["active"], model_columns)
        if summary["active"]
        else f"none: **stand aside** ({status.reason})"
    )
    return (
        f"### {symbol}\n\n**Active**\n\n{active}\n\n"
        f"**Challengers**\n\n{markdown_table(summary['challengers'], model_columns)}\n\n"
        f"**Latest activations**\n\n"
        f"{markdown_table(summary['activations'], activation_columns)}"
    )


def chart_line(path: Path, title: str) -> str:
    """A markdown line naming a chart file. The UI cannot show the image itself: its webserver
    serves no local files (and browsers refuse ``file://`` images in an http page), and image
    bytes in metadata would fill the event log; the same path is also a ``chart_path``."""
    return f"**{title}**: chart file `{path}`"


def chart_path(path: Path) -> Any:
    """A chart file as typed metadata (``dg.MetadataValue.path``): the UI shows it with a copy
    button."""
    import dagster as dg

    return dg.MetadataValue.path(str(path))


def row_count(rows: int) -> dict[str, Any]:
    """Dagster's standard row-count entry, which the UI shows in the asset's overview and plots
    across materialisations. The key is spelled out: Dagster 1.13 keeps ``TableMetadataSet``
    (whose ``row_count`` it is) out of its public ``dagster`` namespace."""
    import dagster as dg

    return {"dagster/row_count": dg.MetadataValue.int(rows)}


def column_schema(frame: Any) -> Any:
    """``dagster/column_schema`` of a frame: the UI's column list with each column's dtype."""
    import dagster as dg

    return dg.MetadataValue.table_schema(
        dg.TableSchema(
            columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
        )
    )


def partition_numbers(values: Mapping[str, Any]) -> dict[str, Any]:
    """Numeric metadata of one partition, typed so that the UI plots each across
    materialisations (None values are left out: a missing point, not a zero)."""
    import dagster as dg

    numbers: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            numbers[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            numbers[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            numbers[key] = dg.MetadataValue.float(value)
        else:
            numbers[key] = dg.MetadataValue.text(str(value))
    return numbers
