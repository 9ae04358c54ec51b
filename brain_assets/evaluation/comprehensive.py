"""Evaluate a model's forecasts and the long/short strategy that trades them, net of fees.

Conventions (all bar-level, on crypto's 24/7 calendar):

* ``predictions[t]`` is the model's forecast of the forward return for bar t, ``actuals[t]`` the
  realised target and ``returns[t]`` the return a position held over bar t earns (for a one-bar
  horizon the same series as ``actuals``).
* The default strategy holds ``sign(predictions[t])`` over bar t; ``trades`` replaces it with any
  positions in [-1, 1].
* Trading ``|position[t] - position[t-1]|`` units at bar t costs ``fee_bps / 1e4`` per unit, with
  ``position[-1] = 0`` so opening the first position pays a fee and a long->short flip pays two.
* Annualisation uses ``periods_per_year``, given or inferred from a timestamp index (8760 for 1h
  bars, 365 for daily ones; never 252).

The metric definitions live in :mod:`brain_assets.evaluation.metrics`; undefined metrics come back
as ``None`` so that a result can go straight to the Brain Library, which rejects NaN and inf.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol

import numpy as np
import pandas as pd

import brain_assets.evaluation.inputs as check
import brain_assets.evaluation.metrics as m
from brain_assets.defaults import FEE_BPS
from brain_assets.evaluation.inputs import MIN_OBSERVATIONS, ArrayInput, IndexInput
from brain_assets.evaluation.metrics import FloatArray
from brain_assets.evaluation.report import METRIC_GROUPS, generate_evaluation_report

METRIC_KEYS: tuple[str, ...] = tuple(key for _, keys in METRIC_GROUPS for key in keys)
"""Every key evaluate_model returns, in the order it returns them."""

P = ParamSpec("P")


class MetricsStore(Protocol):
    """What store_evaluation needs from its ``brain``: a BrainStore-style
    ``store_model_metrics(model_id, symbol, metrics, *, evaluation_date, regime,
    periods_per_year)`` (the project's BrainStore fits)."""

    @property
    def store_model_metrics(self) -> Callable[..., object]: ...


@dataclass(frozen=True)
class _Prepared:
    """Validated inputs, all of one length."""

    predictions: FloatArray
    returns: FloatArray
    positions: FloatArray
    index: pd.Index | None


def _prepare(
    predictions: ArrayInput,
    returns: ArrayInput,
    trades: ArrayInput | None,
    *,
    fee_bps: float,
    index: IndexInput | None,
    extra: Mapping[str, ArrayInput] | None = None,
    minimum: int = 1,
) -> tuple[_Prepared, dict[str, FloatArray], float]:
    fee = check.fee(fee_bps)
    named: dict[str, object] = {"predictions": predictions, **(extra or {}), "returns": returns}
    if trades is not None:
        named["trades"] = trades
    arrays = {name: check.float_array(name, value) for name, value in named.items()}
    n = check.same_length({name: int(array.size) for name, array in arrays.items()})
    if n < minimum:
        raise ValueError(f"{', '.join(arrays)}: need at least {minimum} observations, got {n}")
    check.series_alignment(named)
    prepared = _Prepared(
        predictions=arrays["predictions"],
        returns=arrays["returns"],
        positions=check.positions(arrays["predictions"], trades),
        index=check.bar_index(index, predictions, n),
    )
    return prepared, arrays, fee


# --- public functions ---------------------------------------------------------------------------


def strategy_returns(
    predictions: ArrayInput,
    returns: ArrayInput,
    trades: ArrayInput | None = None,
    *,
    fee_bps: float = FEE_BPS,
    index: IndexInput | None = None,
) -> pd.Series:
    """The strategy's per-bar return net of fees, aligned to ``index`` (or the Series' index)."""
    prepared, _, fee = _prepare(predictions, returns, trades, fee_bps=fee_bps, index=index)
    net = m.net_returns(prepared.positions, prepared.returns, fee)
    return pd.Series(net, index=prepared.index, name="strategy_return")


def _compounded(net: Callable[P, pd.Series]) -> Callable[P, pd.Series]:
    # The equity curve takes exactly strategy_returns' arguments: declared once, they cannot
    # drift apart.
    def equity_curve(*args: P.args, **kwargs: P.kwargs) -> pd.Series:
        """Compounded net equity (1 + r).cumprod() of :func:`strategy_returns` (same arguments),
        starting from 1 before the first bar.

        This is the curve max_drawdown is measured on, so a plot of it shows the reported drawdown.
        """
        returns = net(*args, **kwargs)
        return pd.Series(m.equity(returns.to_numpy()), index=returns.index, name="equity")

    equity_curve.__signature__ = inspect.signature(net)  # type: ignore[attr-defined]
    equity_curve.__qualname__ = equity_curve.__name__  # importable by name, as pickle expects
    return equity_curve


equity_curve = _compounded(strategy_returns)


def evaluate_model(
    predictions: ArrayInput,
    actuals: ArrayInput,
    returns: ArrayInput,
    trades: ArrayInput | None = None,
    *,
    periods_per_year: float | None = None,
    fee_bps: float = FEE_BPS,
    index: IndexInput | None = None,
    min_annualised_days: float = m.MIN_ANNUALISED_DAYS,
) -> dict[str, float | None]:
    """Forecast-quality and net-of-fee strategy metrics, keyed as in :data:`METRIC_KEYS`.

    Every value is a finite float, or None where the metric is undefined for the data (constant
    predictions leave the IC undefined, no losing bar leaves the profit factor undefined, ...).
    The annualised growth (``annualized_return``, ``calmar_ratio``) is None for a sample shorter
    than ``min_annualised_days`` calendar days (``sample_days`` says how long it was); the
    Sharpe-type ratios are annualised whatever the length, with their standard errors elsewhere.

    Raises:
        ValueError: inputs of different lengths, NaN/inf values, fewer than 3 observations, a
            negative fee, trades outside [-1, 1], a non-positive periods_per_year, or no
            periods_per_year and no timestamp index to infer it from. The message names the
            offending argument.
    """
    prepared, arrays, fee = _prepare(
        predictions,
        returns,
        trades,
        fee_bps=fee_bps,
        index=index,
        extra={"actuals": actuals},
        minimum=MIN_OBSERVATIONS,
    )
    ppy = check.periods_per_year(periods_per_year, prepared.index)
    pred = prepared.predictions
    actual = arrays["actuals"]
    positions = prepared.positions
    net = m.net_returns(positions, prepared.returns, fee)
    n = int(pred.size)

    forecast = _forecast_metrics(pred, actual)
    days = m.sample_days(n, ppy)
    cagr = m.annualized_return(net, ppy) if days >= min_annualised_days else None
    drawdown = m.max_drawdown(net, include_start=True)
    sharpe = m.sharpe_ratio(net, ppy)
    strategy_total = m.total_return(net)
    annual_turnover = m.turnover(positions) * ppy
    results: dict[str, float | None] = {
        **forecast,
        "total_return": strategy_total,
        "annualized_return": cagr,
        "annualized_volatility": m.annualized_volatility(net, ppy),
        "sharpe_ratio": sharpe,
        "sortino_ratio": m.sortino_ratio(net, ppy),
        "calmar_ratio": m.calmar_ratio(cagr, drawdown),
        "max_drawdown": drawdown,
        "win_rate": m.win_rate(net, positions),
        "profit_factor": m.profit_factor(net),
        "num_trades": m.num_trades(positions),
        "turnover": m.turnover(positions),
        "exposure": m.exposure(positions),
        "annual_turnover": annual_turnover,
        "annual_cost": annual_turnover * fee / 1e4,
        **_versus_hold(net, prepared.returns, fee, ppy, strategy_total),
        "composite_score": m.composite_score(
            sharpe, forecast["information_coefficient"], forecast["directional_accuracy"], drawdown
        ),
        "n_observations": float(n),
        "periods_per_year": ppy,
        "sample_days": days,
    }
    # The metric functions already return None for undefined values; this last pass guards the
    # contract (never NaN/inf) against an overflow nobody anticipated.
    return {
        key: (float(value) if value is not None and math.isfinite(value) else None)
        for key, value in results.items()
    }


def _forecast_metrics(pred: FloatArray, actual: FloatArray) -> dict[str, float | None]:
    """How well the predictions track the actuals, before any trading."""
    ic = m.information_coefficient(pred, actual)
    return {
        "rmse": m.rmse(pred, actual),
        "mae": m.mae(pred, actual),
        "r2": m.r2(pred, actual),
        "directional_accuracy": m.directional_accuracy(pred, actual),
        "information_coefficient": ic,
        "information_coefficient_tstat": m.information_coefficient_tstat(ic, int(pred.size)),
    }


def _versus_hold(
    net: FloatArray,
    returns: FloatArray,
    fee: float,
    ppy: float,
    strategy_total: float | None,
) -> dict[str, float | None]:
    """The strategy's net returns ``net`` against holding the symbol over the same bars."""
    # Holding: long every bar, the one entry paid. Standing aside earns 0, so the strategy's own
    # total return and Sharpe ratio are its excess and information ratio against it.
    hold = m.hold_returns(returns, fee)
    hold_total = m.total_return(hold)
    beta, residual = m.residual_to_benchmark(net, hold)
    return {
        "hold_total_return": hold_total,
        "hold_sharpe_ratio": m.sharpe_ratio(hold, ppy),
        "excess_return_vs_hold": None
        if hold_total is None or strategy_total is None
        else strategy_total - hold_total,
        "information_ratio_vs_hold": m.sharpe_ratio(net - hold, ppy),
        "beta_to_hold": beta,
        "appraisal_ratio": m.sharpe_ratio(residual, ppy),
    }


def storable_metrics(metrics: Mapping[str, object]) -> dict[str, float]:
    """The finite numeric entries of ``metrics`` as floats: what the Brain Library accepts.

    None (undefined) and non-finite values are dropped rather than stored as 0, which would be
    indistinguishable from a real zero; booleans and strings are not metrics and are dropped too.
    """
    stored: dict[str, float] = {}
    for key, value in metrics.items():
        if value is None or isinstance(value, bool | np.bool_):
            continue
        if not isinstance(value, int | float | np.integer | np.floating):
            continue
        number = float(value)
        if math.isfinite(number):
            stored[str(key)] = number
    return stored


class ComprehensiveEvaluation:
    """Evaluates models and, given a ``brain``, records the results in the Brain Library.

    ``brain`` is anything with a BrainStore-style ``store_model_metrics``; it is only needed by
    :meth:`store_evaluation`, so evaluation alone works without a database.
    """

    def __init__(self, brain: MetricsStore | None = None) -> None:
        self.brain = brain

    # The module's functions, so that one object serves a caller that evaluates and stores.
    evaluate_model = staticmethod(evaluate_model)
    equity_curve = staticmethod(equity_curve)
    generate_evaluation_report = staticmethod(generate_evaluation_report)

    def store_evaluation(
        self,
        model_id: str,
        symbol: str,
        metrics: Mapping[str, float | None],
        *,
        evaluation_date: Any = None,
        regime: str | None = None,
    ) -> dict[str, float]:
        """Store the finite metrics (n_observations and periods_per_year included) in the brain.

        Undefined (None) and non-finite values are left out, because the Brain Library rejects
        them. ``periods_per_year`` is also forwarded on its own so the library knows how the
        ratios were annualised. Returns the dict that was stored.

        Raises:
            ValueError: no brain was given, or nothing storable is left in ``metrics``.
        """
        if self.brain is None:
            raise ValueError(
                "brain: store_evaluation needs a brain; create "
                "ComprehensiveEvaluation(brain=BrainLibrary(...))"
            )
        stored = storable_metrics(metrics)
        if not stored:
            raise ValueError("metrics: no finite numeric value to store")
        self.brain.store_model_metrics(
            model_id,
            symbol,
            dict(stored),
            evaluation_date=evaluation_date,
            regime=regime,
            periods_per_year=stored.get("periods_per_year"),
        )
        return stored
