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

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from brain_assets.calendar import periods_per_year as infer_periods_per_year
from brain_assets.evaluation import metrics as m
from brain_assets.evaluation.metrics import FloatArray
from brain_assets.evaluation.report import generate_evaluation_report

ArrayInput = Sequence[float] | np.ndarray | pd.Series
IndexInput = Sequence[Any] | pd.Index | pd.Series

MIN_OBSERVATIONS = 3
"""Fewest bars evaluate_model accepts: the sample std (ddof=1) and the IC t-stat need n > 2."""

METRIC_KEYS: tuple[str, ...] = (
    "rmse",
    "mae",
    "r2",
    "directional_accuracy",
    "information_coefficient",
    "information_coefficient_tstat",
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
    "composite_score",
    "n_observations",
    "periods_per_year",
)
"""Every key evaluate_model returns, in the order it returns them."""


class MetricsStore(Protocol):
    """What store_evaluation needs from its ``brain`` (the project's BrainLibrary fits)."""

    def store_model_metrics(
        self,
        model_id: str,
        symbol: str,
        metrics: dict[str, float],
        *,
        evaluation_date: Any = None,
        regime: str | None = None,
        periods_per_year: float | None = None,
    ) -> object: ...


@dataclass(frozen=True)
class _Prepared:
    """Validated inputs, all of one length."""

    predictions: FloatArray
    returns: FloatArray
    positions: FloatArray
    index: pd.Index | None


# --- validation ---------------------------------------------------------------------------------


def _as_float_array(name: str, values: object) -> FloatArray:
    """A 1-D float copy of ``values``, or a ValueError that names the argument."""
    if values is None:
        raise ValueError(f"{name}: is required, got None")
    try:
        if isinstance(values, pd.Series | pd.Index):
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: must be numeric ({exc})") from exc
    if array.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional, got shape {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    return np.array(array, dtype=np.float64)


def _check_lengths(arrays: Mapping[str, FloatArray], minimum: int) -> int:
    lengths = {name: int(array.size) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={size}" for name, size in lengths.items())
        raise ValueError(f"length mismatch: {described}; all must have the same length")
    n = next(iter(lengths.values()))
    if n < minimum:
        names = ", ".join(lengths)
        raise ValueError(f"{names}: need at least {minimum} observations, got {n}")
    return n


def _check_series_alignment(named: Mapping[str, object]) -> None:
    """Refuse Series whose indexes differ: the arrays are paired by position, not by label.

    Two Series with different labels (say actuals already shifted by one bar) would otherwise be
    paired silently in a way the caller probably did not mean.
    """
    series = [(name, value) for name, value in named.items() if isinstance(value, pd.Series)]
    for (first_name, first), (name, other) in itertools.pairwise(series):
        if len(first) == len(other) and not first.index.equals(other.index):
            raise ValueError(
                f"{first_name} and {name}: pandas Series with different indexes; "
                "align them first (values are paired by position)"
            )


def _check_fee(fee_bps: float) -> float:
    try:
        fee = float(fee_bps)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fee_bps: must be a number, got {fee_bps!r}") from exc
    if not math.isfinite(fee) or fee < 0.0:
        raise ValueError(f"fee_bps: must be a finite number >= 0, got {fee_bps!r}")
    return fee


def _positions(predictions: FloatArray, trades: object) -> FloatArray:
    if trades is None:
        return m.sign_positions(predictions)
    positions = _as_float_array("trades", trades)
    if positions.size and (positions.min() < -1.0 or positions.max() > 1.0):
        raise ValueError(
            f"trades: positions must lie in [-1, 1], got min {positions.min():g} "
            f"and max {positions.max():g}"
        )
    return positions


def _resolve_index(index: IndexInput | None, predictions: object, n: int) -> pd.Index | None:
    """The timestamps (or labels) of the bars: ``index`` if given, else a Series' own index."""
    if index is None:
        return predictions.index if isinstance(predictions, pd.Series) else None
    resolved = pd.Index(index.to_numpy() if isinstance(index, pd.Series) else index)
    if len(resolved) != n:
        raise ValueError(f"index: has {len(resolved)} entries but the inputs have {n}")
    if not isinstance(resolved, pd.DatetimeIndex) and resolved.dtype == object:
        # Timestamps given as strings or datetime objects: make them a DatetimeIndex so that the
        # bar frequency can be inferred. Labels that are not timestamps stay plain labels (fine
        # for aligning the equity curve when periods_per_year is given explicitly).
        try:
            resolved = pd.DatetimeIndex(pd.to_datetime(resolved, utc=True))
        except (TypeError, ValueError, OverflowError):
            pass
    return resolved


def _resolve_periods_per_year(value: float | None, index: pd.Index | None) -> float:
    if value is not None:
        try:
            ppy = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"periods_per_year: must be a number, got {value!r}") from exc
        if not math.isfinite(ppy) or ppy <= 0.0:
            raise ValueError(f"periods_per_year: must be a finite number > 0, got {value!r}")
        return ppy
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            "periods_per_year or a timestamp index is needed: pass periods_per_year, "
            "index=<timestamps>, or predictions as a pandas Series with a DatetimeIndex"
        )
    try:
        return float(infer_periods_per_year(index))
    except ValueError as exc:
        raise ValueError(f"index: cannot infer periods_per_year ({exc})") from exc


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
    fee = _check_fee(fee_bps)
    named: dict[str, object] = {"predictions": predictions, **(extra or {}), "returns": returns}
    if trades is not None:
        named["trades"] = trades
    arrays = {name: _as_float_array(name, value) for name, value in named.items()}
    n = _check_lengths(arrays, minimum)
    _check_series_alignment(named)
    positions = _positions(arrays["predictions"], trades)
    prepared = _Prepared(
        predictions=arrays["predictions"],
        returns=arrays["returns"],
        positions=positions,
        index=_resolve_index(index, predictions, n),
    )
    return prepared, arrays, fee


# --- public functions ---------------------------------------------------------------------------


def strategy_returns(
    predictions: ArrayInput,
    returns: ArrayInput,
    trades: ArrayInput | None = None,
    *,
    fee_bps: float = 10.0,
    index: IndexInput | None = None,
) -> pd.Series:
    """The strategy's per-bar return net of fees, aligned to ``index`` (or the Series' index)."""
    prepared, _, fee = _prepare(predictions, returns, trades, fee_bps=fee_bps, index=index)
    net = m.net_returns(prepared.positions, prepared.returns, fee)
    return pd.Series(net, index=prepared.index, name="strategy_return")


def equity_curve(
    predictions: ArrayInput,
    returns: ArrayInput,
    trades: ArrayInput | None = None,
    *,
    fee_bps: float = 10.0,
    index: IndexInput | None = None,
) -> pd.Series:
    """Compounded net equity (1 + r).cumprod(), starting from 1 before the first bar.

    This is the curve max_drawdown is measured on, so a plot of it shows the reported drawdown.
    """
    net = strategy_returns(predictions, returns, trades, fee_bps=fee_bps, index=index)
    return pd.Series(m.equity(net.to_numpy()), index=net.index, name="equity")


def evaluate_model(
    predictions: ArrayInput,
    actuals: ArrayInput,
    returns: ArrayInput,
    trades: ArrayInput | None = None,
    *,
    periods_per_year: float | None = None,
    fee_bps: float = 10.0,
    index: IndexInput | None = None,
) -> dict[str, float | None]:
    """Forecast-quality and net-of-fee strategy metrics, keyed as in :data:`METRIC_KEYS`.

    Every value is a finite float, or None where the metric is undefined for the data (constant
    predictions leave the IC undefined, no losing bar leaves the profit factor undefined, ...).

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
    ppy = _resolve_periods_per_year(periods_per_year, prepared.index)
    pred = prepared.predictions
    actual = arrays["actuals"]
    positions = prepared.positions
    net = m.net_returns(positions, prepared.returns, fee)
    n = int(pred.size)

    ic = m.information_coefficient(pred, actual)
    hit_rate = m.directional_accuracy(pred, actual)
    cagr = m.annualized_return(net, ppy)
    drawdown = m.max_drawdown(net, include_start=True)
    sharpe = m.sharpe_ratio(net, ppy)
    results: dict[str, float | None] = {
        "rmse": m.rmse(pred, actual),
        "mae": m.mae(pred, actual),
        "r2": m.r2(pred, actual),
        "directional_accuracy": hit_rate,
        "information_coefficient": ic,
        "information_coefficient_tstat": m.information_coefficient_tstat(ic, n),
        "total_return": m.total_return(net),
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
        "composite_score": m.composite_score(sharpe, ic, hit_rate, drawdown),
        "n_observations": float(n),
        "periods_per_year": ppy,
    }
    # The metric functions already return None for undefined values; this last pass guards the
    # contract (never NaN/inf) against an overflow nobody anticipated.
    return {
        key: (float(value) if value is not None and math.isfinite(value) else None)
        for key, value in results.items()
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

    ``brain`` is anything with a BrainLibrary-style ``store_model_metrics``; it is only needed by
    :meth:`store_evaluation`, so evaluation alone works without a database.
    """

    def __init__(self, brain: MetricsStore | None = None) -> None:
        self.brain = brain

    def evaluate_model(
        self,
        predictions: ArrayInput,
        actuals: ArrayInput,
        returns: ArrayInput,
        trades: ArrayInput | None = None,
        *,
        periods_per_year: float | None = None,
        fee_bps: float = 10.0,
        index: IndexInput | None = None,
    ) -> dict[str, float | None]:
        """See :func:`brain_assets.evaluation.comprehensive.evaluate_model`."""
        return evaluate_model(
            predictions,
            actuals,
            returns,
            trades,
            periods_per_year=periods_per_year,
            fee_bps=fee_bps,
            index=index,
        )

    def equity_curve(
        self,
        predictions: ArrayInput,
        returns: ArrayInput,
        trades: ArrayInput | None = None,
        *,
        fee_bps: float = 10.0,
        index: IndexInput | None = None,
    ) -> pd.Series:
        """See :func:`brain_assets.evaluation.comprehensive.equity_curve`."""
        return equity_curve(predictions, returns, trades, fee_bps=fee_bps, index=index)

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

    def generate_evaluation_report(
        self,
        metrics: Mapping[str, float | None],
        *,
        title: str | None = None,
        per_regime: Mapping[str, Mapping[str, float | None]] | None = None,
    ) -> str:
        """See :func:`brain_assets.evaluation.report.generate_evaluation_report`."""
        return generate_evaluation_report(metrics, title=title, per_regime=per_regime)
