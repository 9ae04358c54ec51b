"""PNG charts for people reading the Dagster UI (matplotlib, imported on first use)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import pandas as pd


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def _png(figure: object) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)
    return buffer.getvalue()


def equity_curves_png(curves: Mapping[str, pd.Series], title: str) -> bytes:
    """One line per model: compounded net equity over the test segment."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    for label, curve in curves.items():
        axis.plot(curve.index, curve.to_numpy(), label=label, linewidth=1.2)
    axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axis.set_title(title)
    axis.set_ylabel("equity (net of fees)")
    axis.legend(loc="best", fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def importance_bars_png(table: pd.DataFrame, title: str, top_n: int = 15) -> bytes:
    """Horizontal bars of the top features (columns feature, importance), strongest on top."""
    plt = _pyplot()
    top = table.sort_values("rank").head(top_n).iloc[::-1]
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(top) + 1.2))
    colours = ["#2b7bba" if value >= 0 else "#d1495b" for value in top["importance"]]
    axis.barh(top["feature"], top["importance"], color=colours)
    axis.set_title(title)
    axis.set_xlabel("importance")
    return _png(figure)


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown embedding a PNG as a data URI (Dagster renders it in the asset's metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
