"""Pure numpy metrics for a model's forecasts and for the strategy that trades them.

Every function takes already validated 1-D float arrays (finite values, at least 3 of them; see
:mod:`brain_assets.evaluation.comprehensive`) and returns a plain Python ``float`` or ``None``.
``None`` means "undefined for this data" (a zero denominator, a constant series): the Brain
Library rejects NaN and inf, and a ``None`` is dropped before storing, whereas a NaN would either
be rejected or silently poison a ranking.

Composite score
---------------
``composite_score`` ranks models with one bounded, higher-is-better number::

    score = 0.40 * tanh(sharpe / 2.0)
          + 0.25 * tanh(ic / 0.10)
          + 0.20 * tanh((2 * directional_accuracy - 1) / 0.10)
          + 0.15 * max_drawdown              # max_drawdown is in [-1, 0]

The weights (:data:`COMPOSITE_WEIGHTS`) sum to 1 and every term lies in [-1, 1], so the score lies
in [-1, 1] (in fact in [-1, 0.85], since the drawdown term can only subtract). A ``None`` input
counts as 0, i.e. "no evidence either way". The scales (:data:`COMPOSITE_SCALES`) put a
good-but-realistic value at tanh(1) ~ 0.76 of a term's range: an annualised Sharpe of 2, an IC of
0.10 and a 55 % hit rate are each strong for a bar-level crypto model, and squashing stops one
extreme metric (a Sharpe of 40 on a short sample) from dominating the blend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

COMPOSITE_WEIGHTS: Final[Mapping[str, float]] = {
    "sharpe_ratio": 0.40,
    "information_coefficient": 0.25,
    "directional_accuracy": 0.20,
    "max_drawdown": 0.15,
}
"""Weight of each term of :func:`composite_score`; they sum to 1 so the score stays in [-1, 1]."""

COMPOSITE_SCALES: Final[Mapping[str, float]] = {
    "sharpe_ratio": 2.0,
    "information_coefficient": 0.10,
    "directional_accuracy": 0.10,
}
"""The value of each squashed input that maps to tanh(1) ~ 0.76 of its term's range."""


def _finite_or_none(value: float) -> float | None:
    """The value as a float, or None when it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None


def _is_constant(values: FloatArray) -> bool:
    # An exact comparison rather than std == 0: the std of [0.1, 0.1, 0.1] is ~1e-17 after
    # rounding in the mean, which would turn "undefined" into an absurdly large ratio.
    return bool(np.all(values == values[0]))


# --- prediction quality -------------------------------------------------------------------------


def rmse(predictions: FloatArray, actuals: FloatArray) -> float:
    """Root mean squared error of the predictions."""
    return float(np.sqrt(np.mean((predictions - actuals) ** 2)))


def mae(predictions: FloatArray, actuals: FloatArray) -> float:
    """Mean absolute error of the predictions."""
    return float(np.mean(np.abs(predictions - actuals)))


def r2(predictions: FloatArray, actuals: FloatArray) -> float | None:
    """Coefficient of determination 1 - SS_res / SS_tot, as scikit-learn defines it.

    None when the actuals are constant: SS_tot is then 0 and the ratio is undefined (scikit-learn
    papers over this with 0.0 or 1.0, which would look like real evidence in a ranking).
    """
    if _is_constant(actuals):
        return None
    ss_res = float(np.sum((actuals - predictions) ** 2))
    ss_tot = float(np.sum((actuals - np.mean(actuals)) ** 2))
    return _finite_or_none(1.0 - ss_res / ss_tot)


def directional_accuracy(predictions: FloatArray, actuals: FloatArray) -> float | None:
    """Share of bars with a non-zero actual whose predicted sign matches the actual sign.

    Bars where the actual is exactly 0 have no direction to get right, so they are left out; a
    prediction of exactly 0 calls no direction and counts as a miss. None when every actual is 0.
    """
    moved = actuals != 0
    if not np.any(moved):
        return None
    hits = np.sign(predictions[moved]) == np.sign(actuals[moved])
    return float(np.mean(hits))


def average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks with ties given the mean of the ranks they span (as Spearman needs)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Start of each run of equal values in sorted order, and the run each element belongs to.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]
    run_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks start+1 .. end
    run_of_element = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = run_rank[run_of_element]
    return ranks


def information_coefficient(predictions: FloatArray, actuals: FloatArray) -> float | None:
    """Spearman rank correlation between predictions and actuals.

    None when either side is constant: its ranks have no spread, so there is no correlation.
    """
    if _is_constant(predictions) or _is_constant(actuals):
        return None
    rp = average_ranks(predictions)
    ra = average_ranks(actuals)
    rp -= rp.mean()
    ra -= ra.mean()
    denominator = math.sqrt(float(np.sum(rp * rp)) * float(np.sum(ra * ra)))
    if denominator == 0.0:
        return None
    # Clip so float rounding cannot push a perfect correlation past 1 (and its t-stat to NaN).
    return _finite_or_none(min(1.0, max(-1.0, float(np.sum(rp * ra)) / denominator)))


def information_coefficient_tstat(ic: float | None, n: int) -> float | None:
    """t-statistic ic * sqrt((n - 2) / (1 - ic^2)) of a rank correlation over n observations.

    None when the IC is undefined, when |ic| == 1 (the statistic is infinite) or when n <= 2.
    """
    if ic is None or n <= 2 or abs(ic) >= 1.0:
        return None
    return _finite_or_none(ic * math.sqrt((n - 2) / (1.0 - ic * ic)))


# --- positions, fees and the strategy's net returns ---------------------------------------------


def sign_positions(predictions: FloatArray) -> FloatArray:
    """The default strategy: long on a positive forecast, short on a negative one, flat on 0."""
    return np.sign(predictions).astype(np.float64)


def position_changes(positions: FloatArray, held: float = 0.0) -> FloatArray:
    """|position_t - position_{t-1}| with position_{-1} = ``held`` (0: opening the first trade
    counts)."""
    return np.abs(np.diff(positions, prepend=held))


def net_returns(
    positions: FloatArray, returns: FloatArray, fee_bps: float, held: float = 0.0
) -> FloatArray:
    """position_t * returns_t minus fee_bps / 1e4 per unit of position traded at bar t, from
    the position ``held`` before the first bar.

    A flip from +1 to -1 trades 2 units and so pays the fee twice, as closing and reopening would.
    """
    fees = (fee_bps / 1e4) * position_changes(positions, held)
    return positions * returns - fees


def hold_returns(returns: FloatArray, fee_bps: float) -> FloatArray:
    """Holding the market: long every bar, the one entry paid at the first bar."""
    return net_returns(np.ones(returns.size), returns, fee_bps)


def equity(strategy_returns: FloatArray) -> FloatArray:
    """Compounded equity (1 + r).cumprod(), starting from 1 before the first bar."""
    return np.cumprod(1.0 + strategy_returns, dtype=np.float64)


# --- strategy performance -----------------------------------------------------------------------


def total_return(strategy_returns: FloatArray) -> float | None:
    """Compounded return prod(1 + r) - 1 over the whole sample."""
    return _finite_or_none(float(np.prod(1.0 + strategy_returns)) - 1.0)


MIN_ANNUALISED_DAYS: Final = 90.0
"""Shortest sample, in calendar days, whose compound growth is annualised (CAGR, Calmar): a
week of +5% compounds to about +1,200% a year, which no reader takes for information."""


def sample_days(n_bars: int, periods_per_year: float) -> float:
    """Calendar days that ``n_bars`` bars span at ``periods_per_year`` (365.25-day years)."""
    return n_bars * 365.25 / periods_per_year


def annualized_return(strategy_returns: FloatArray, periods_per_year: float) -> float | None:
    """Compound annual growth rate, with years = n / periods_per_year.

    A final equity at or below 0 (possible when a short meets a return above +100 %) is a total
    loss, reported as -1.0 since a real power of a negative number does not exist. None when
    extrapolating a short sample to a year overflows a float.
    """
    growth = float(np.prod(1.0 + strategy_returns))
    if not math.isfinite(growth):
        return None
    if growth <= 0.0:
        return -1.0
    exponent = math.log(growth) * periods_per_year / strategy_returns.size
    try:
        return _finite_or_none(math.expm1(exponent))
    except OverflowError:
        return None


def annualized_volatility(strategy_returns: FloatArray, periods_per_year: float) -> float:
    """Sample standard deviation (ddof=1) scaled by sqrt(periods_per_year)."""
    if _is_constant(strategy_returns):
        return 0.0
    return float(np.std(strategy_returns, ddof=1) * math.sqrt(periods_per_year))


def sharpe_ratio(strategy_returns: FloatArray, periods_per_year: float) -> float | None:
    """mean / std (ddof=1) * sqrt(periods_per_year), risk-free rate 0. None if std is 0."""
    if _is_constant(strategy_returns):
        return None
    std = float(np.std(strategy_returns, ddof=1))
    if std == 0.0:
        return None
    return _finite_or_none(float(np.mean(strategy_returns)) / std * math.sqrt(periods_per_year))


def sortino_ratio(strategy_returns: FloatArray, periods_per_year: float) -> float | None:
    """mean / downside deviation * sqrt(periods_per_year), target return 0.

    The downside deviation is sqrt(mean(min(r, 0)^2)) over ALL observations, not only the losing
    ones: averaging over losers alone would make rare losses look as bad as frequent ones.
    None when no bar loses money (zero downside).
    """
    downside = math.sqrt(float(np.mean(np.minimum(strategy_returns, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return _finite_or_none(
        float(np.mean(strategy_returns)) / downside * math.sqrt(periods_per_year)
    )


def max_drawdown(strategy_returns: FloatArray, *, include_start: bool = False) -> float:
    """Worst fall of the compounded equity from its running peak, a fraction in [-1, 0].

    The equity is (1 + r).cumprod() and, by default, the running maximum is taken over those
    equity values only: no starting value of 1 is prepended, so a loss on the very first bar is
    not a drawdown (there is no earlier peak to fall from). This matches the equity curve that
    ``equity_curve`` returns for plotting. Note that empyrical releases since 0.5 (and
    empyrical-reloaded) do prepend a starting value, so they also count a first-bar loss; pass
    ``include_start=True`` for that behaviour.

    The value is clipped at -1: equity below 0 (a short against a > 100 % move) is a total loss.
    """
    curve = equity(strategy_returns)
    if include_start:
        curve = np.r_[1.0, curve]
    peaks = np.maximum.accumulate(curve)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdowns = np.where(peaks > 0.0, curve / peaks - 1.0, -1.0)
    worst = float(np.min(drawdowns))
    if not math.isfinite(worst):
        return -1.0
    return max(-1.0, min(0.0, worst))


def calmar_ratio(cagr: float | None, drawdown: float) -> float | None:
    """CAGR / |max drawdown|. None when there is no drawdown or the CAGR is undefined."""
    if cagr is None or drawdown == 0.0:
        return None
    return _finite_or_none(cagr / abs(drawdown))


def win_rate(strategy_returns: FloatArray, positions: FloatArray) -> float | None:
    """Share of bars holding a position whose net return is > 0. None if never in the market.

    Flat bars are left out: they neither win nor lose, and counting them would reward a model for
    sitting out.
    """
    active = positions != 0
    if not np.any(active):
        return None
    return float(np.mean(strategy_returns[active] > 0.0))


def profit_factor(strategy_returns: FloatArray) -> float | None:
    """Sum of winning net returns / |sum of losing net returns|. None with no losing bar."""
    losses = -float(np.sum(strategy_returns[strategy_returns < 0.0]))
    if losses == 0.0:
        return None
    gains = float(np.sum(strategy_returns[strategy_returns > 0.0]))
    return _finite_or_none(gains / losses)


def num_trades(positions: FloatArray) -> float:
    """Number of bars at which the position changes, the entry from flat included."""
    return float(np.count_nonzero(position_changes(positions)))


def turnover(positions: FloatArray) -> float:
    """Average |position change| per bar: sum |delta position| / n (a flip counts 2)."""
    return float(np.sum(position_changes(positions)) / positions.size)


def exposure(positions: FloatArray) -> float:
    """Share of bars with a non-zero position."""
    return float(np.mean(positions != 0))


def residual_to_benchmark(
    strategy_returns: FloatArray, benchmark_returns: FloatArray
) -> tuple[float, FloatArray]:
    """(beta, residual): the least-squares beta of the strategy's returns on the benchmark's,
    and the strategy's returns less beta times the benchmark's (alpha plus noise).

    A strategy that is long a rising market half the time earns half the market without any
    timing skill; its residual keeps only what the beta does not explain (Treynor & Black's
    appraisal ratio is the residual's Sharpe ratio). A constant benchmark gives beta 0.
    """
    if _is_constant(benchmark_returns):
        return 0.0, strategy_returns.copy()
    centred = benchmark_returns - benchmark_returns.mean()
    beta = float(
        np.dot(centred, strategy_returns - strategy_returns.mean()) / np.dot(centred, centred)
    )
    return beta, strategy_returns - beta * benchmark_returns


# --- ranking ------------------------------------------------------------------------------------


def _squash(value: float | None, scale: float) -> float:
    if value is None or not math.isfinite(value):
        return 0.0
    return math.tanh(value / scale)


def composite_score(
    sharpe: float | None,
    ic: float | None,
    hit_rate: float | None,
    drawdown: float | None,
) -> float:
    """The bounded blend of Sharpe, IC, directional edge and drawdown (see the module docstring).

    Always finite and within [-1, 1]; a None or non-finite input counts as 0.
    """
    edge = None if hit_rate is None else 2.0 * hit_rate - 1.0
    if drawdown is None or not math.isfinite(drawdown):
        drawdown_term = 0.0
    else:
        drawdown_term = max(-1.0, min(0.0, drawdown))
    score = (
        COMPOSITE_WEIGHTS["sharpe_ratio"] * _squash(sharpe, COMPOSITE_SCALES["sharpe_ratio"])
        + COMPOSITE_WEIGHTS["information_coefficient"]
        * _squash(ic, COMPOSITE_SCALES["information_coefficient"])
        + COMPOSITE_WEIGHTS["directional_accuracy"]
        * _squash(edge, COMPOSITE_SCALES["directional_accuracy"])
        + COMPOSITE_WEIGHTS["max_drawdown"] * drawdown_term
    )
    return max(-1.0, min(1.0, score))
