"""A markdown report of evaluate_model's metrics, overall and optionally per volatility regime.

Markdown because it renders in Dagster's asset metadata, in GitHub and in a terminal alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from brain_assets.evaluation.metrics import MIN_ANNUALISED_DAYS
from brain_assets.regimes.classify import REGIMES

METRIC_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Prediction quality",
        (
            "rmse",
            "mae",
            "r2",
            "directional_accuracy",
            "information_coefficient",
            "information_coefficient_tstat",
        ),
    ),
    (
        "Strategy (net of fees)",
        (
            "total_return",
            "annualized_return",
            "annualized_volatility",
            "sharpe_ratio",
            "sortino_ratio",
            "calmar_ratio",
            "max_drawdown",
            "win_rate",
            "profit_factor",
            "num_trades",
            "turnover",
            "exposure",
        ),
    ),
    ("Costs", ("annual_turnover", "annual_cost")),
    (
        "Benchmarks on the same bars",
        (
            "hold_total_return",
            "hold_sharpe_ratio",
            "excess_return_vs_hold",
            "information_ratio_vs_hold",
            "beta_to_hold",
            "appraisal_ratio",
        ),
    ),
    ("Score", ("composite_score",)),
    ("Sample", ("n_observations", "periods_per_year", "sample_days")),
)
"""Sections of the report and the metrics each lists, in display order."""

PERCENT_KEYS = frozenset(
    {
        "directional_accuracy",
        "total_return",
        "annualized_return",
        "annualized_volatility",
        "max_drawdown",
        "win_rate",
        "exposure",
        "annual_cost",
        "hold_total_return",
        "excess_return_vs_hold",
    }
)
"""Fractions that read better as percentages (0.0123 -> 1.23%)."""

COUNT_KEYS = frozenset({"num_trades", "n_observations"})
ERROR_KEYS = frozenset({"rmse", "mae"})

MISSING = "—"
ANNUALISED_KEYS = frozenset({"annualized_return", "calmar_ratio"})
"""Undefined, in the report, for a sample too short to annualise (see its cell)."""


def format_metric(key: str, value: object) -> str:
    """One metric value as report text: percentages for returns, '—' when undefined."""
    if value is None or isinstance(value, bool):
        return MISSING
    try:
        number = float(value)  # type: ignore[arg-type]  # numpy scalars and Decimals too
    except (TypeError, ValueError):
        return _escape(str(value))
    if not math.isfinite(number):
        return MISSING
    if key in PERCENT_KEYS:
        return f"{number * 100:.2f}%"
    if key in COUNT_KEYS:
        return f"{number:.0f}"
    if key == "periods_per_year":
        return f"{number:g}"
    if key == "sample_days":
        return f"{number:.1f}"
    if key in ERROR_KEYS:
        # Errors of bar returns are often ~1e-3; a fixed 4 decimals would print 0.0012 or 0.0000.
        return f"{number:.4g}"
    return f"{number:.4f}"


def _cell(key: str, metrics: Mapping[str, object]) -> str:
    """``format_metric``, and for an annualised figure left undefined by a short sample, why."""
    text = format_metric(key, metrics.get(key))
    days = metrics.get("sample_days")
    if (
        text == MISSING
        and key in ANNUALISED_KEYS
        and isinstance(days, int | float)
        and days < MIN_ANNUALISED_DAYS
    ):
        return f"{MISSING} ({days:.0f} days, under {MIN_ANNUALISED_DAYS:.0f})"
    return text


def _escape(text: str) -> str:
    """Keep a pipe in a name or value from splitting a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _grouped_keys(keys: set[str]) -> list[tuple[str, list[str]]]:
    """The report's sections restricted to ``keys``, with unknown keys in an 'Other' section."""
    known: set[str] = set()
    sections: list[tuple[str, list[str]]] = []
    for heading, group in METRIC_GROUPS:
        known.update(group)
        present = [key for key in group if key in keys]
        if present:
            sections.append((heading, present))
    others = sorted(keys - known)
    if others:
        sections.append(("Other", others))
    return sections


def _ordered_regimes(regimes: Mapping[str, object]) -> list[str]:
    names = list(regimes)
    # From calm to wild; any other regime names follow in the order given.
    ordered = [name for name in REGIMES if name in regimes]
    return ordered + [name for name in names if name not in REGIMES]


def _metrics_table(metrics: Mapping[str, object]) -> list[str]:
    lines = ["| Metric | Value |", "| --- | ---: |"]
    for heading, keys in _grouped_keys(set(map(str, metrics))):
        lines.append(f"| **{heading}** | |")
        for key in keys:
            lines.append(f"| `{_escape(key)}` | {_cell(key, metrics)} |")
    return lines


def _regime_table(per_regime: Mapping[str, Mapping[str, object]]) -> list[str]:
    regimes = _ordered_regimes(per_regime)
    all_keys: set[str] = set()
    for name in regimes:
        all_keys.update(map(str, per_regime[name]))
    header = "| Metric | " + " | ".join(_escape(str(name)) for name in regimes) + " |"
    rule = "| --- | " + " | ".join("---:" for _ in regimes) + " |"
    lines = [header, rule]
    for heading, keys in _grouped_keys(all_keys):
        lines.append(f"| **{heading}** |" + " |" * len(regimes))
        for key in keys:
            cells = [_cell(key, per_regime[name]) for name in regimes]
            lines.append(f"| `{_escape(key)}` | " + " | ".join(cells) + " |")
    return lines


def generate_evaluation_report(
    metrics: Mapping[str, object],
    *,
    title: str | None = None,
    per_regime: Mapping[str, Mapping[str, object]] | None = None,
) -> str:
    """Markdown with the metrics grouped into prediction quality, strategy, score and sample.

    Returns are shown as percentages and undefined metrics as '—' (with the reason, for an
    annualised figure of a short sample). With ``per_regime`` (regime name -> metrics) a second
    table follows with one column per regime: low, normal, high, extreme in that order when
    present, then any other regimes as given.
    """
    lines = [f"# {_escape(title) if title else 'Model evaluation'}", ""]
    lines += _metrics_table(metrics)
    if per_regime:
        lines += ["", "## By volatility regime", ""]
        lines += _regime_table(per_regime)
    lines.append("")
    return "\n".join(lines)
