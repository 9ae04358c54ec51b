"""Standard statistics for deciding between models on noisy data.

The platform promotes a challenger, keeps a model above an activation floor and rolls back a live
model on the strength of short, noisy return series. A Sharpe ratio from a few hundred bars is
very uncertain (hourly bars, SR near 0: one standard error over 720 bars is about 3.5 in
annualised units), and the best of N models' test scores is biased upwards. The functions here put
an error bar, a probability or a p-value on such a comparison so that a decision can require
evidence rather than a bare difference of point estimates.

Conventions
-----------
* Inputs are 1-D sequences or numpy arrays of floats; bad input raises ``ValueError`` naming the
  argument (too few observations, NaN or inf, mismatched lengths, confidence outside (0, 1)).
* The Sharpe ratio is mean / sample standard deviation (ddof=1), risk-free rate 0, as in
  :func:`brain_assets.evaluation.metrics.sharpe_ratio`. Functions work in **per-period** units
  (per bar) unless they take ``periods_per_year``; then the Sharpe ratio and its standard error
  are both multiplied by sqrt(periods_per_year) (crypto trades 24/7: 8760 hourly or 365 daily
  bars a year).
* Skewness and kurtosis are the moments of the sample itself (divided by T, not bias-corrected),
  kurtosis *not* in excess (3 for a normal). With those moments the Mertens variance below is
  never negative, because every distribution, the empirical one included, has
  kurtosis >= 1 + skewness².
* The Sharpe-ratio functions assume serially uncorrelated returns; Lo (2002) gives the correction
  for autocorrelated ones. The paired test is the tool that allows for autocorrelation (HAC).

Which tool answers which question
---------------------------------
* "How sure is this Sharpe ratio?": :func:`sharpe_standard_error`, :func:`sharpe_lower_bound`.
* "Is there skill above a benchmark?": :func:`probabilistic_sharpe_ratio`, and
  :func:`deflated_sharpe_ratio` when the model was the best of N tried on the same data.
* "Is model A better than model B on the same bars?": :func:`paired_test` on per-bar strategy
  returns (higher is better), or on negated losses.
* "Has the live model degraded?": :func:`sharpe_difference_test` for one window against a fixed
  baseline, :func:`cusum_alarm` for a sequential test with an explicit false-alarm trade-off.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from brain_assets.evaluation.inputs import MIN_OBSERVATIONS, float_array

FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")
Series = Sequence[float] | npt.NDArray[Any]
"""What the functions accept as a series: a sequence of floats or a 1-D numpy array."""

__all__ = [
    "EULER_GAMMA",
    "MIN_OBSERVATIONS",
    "CusumResult",
    "PairedTest",
    "SharpeDifferenceTest",
    "cusum_alarm",
    "default_newey_west_lags",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "newey_west_variance",
    "paired_test",
    "probabilistic_sharpe_ratio",
    "sharpe_difference_test",
    "sharpe_lower_bound",
    "sharpe_standard_error",
]

EULER_GAMMA: Final[float] = 0.5772156649015329
"""The Euler–Mascheroni constant, used by the expected maximum of N Sharpe estimates."""


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedTest:
    """One-sided test that series a beats series b on the same bars (H1: mean(a - b) > 0).

    ``p_value`` is small when a is credibly better; ``lags`` is the Newey–West truncation used.
    """

    mean_difference: float
    t_stat: float
    p_value: float
    n: int
    lags: int


@dataclass(frozen=True)
class SharpeDifferenceTest:
    """One-sided test that a live window's Sharpe ratio is below a baseline Sharpe ratio.

    ``live_sharpe``, ``baseline_sharpe`` and ``standard_error`` share one unit: per period, or
    annualised when ``periods_per_year`` was given. ``z_stat`` = (baseline - live) / standard
    error, so a large positive z (small ``p_value``) reads "the live model is worse".
    """

    live_sharpe: float
    baseline_sharpe: float
    standard_error: float
    z_stat: float
    p_value: float
    n: int


# eq=False: the generated __eq__ would compare numpy arrays element-wise and raise on bool().
@dataclass(frozen=True, eq=False)
class CusumResult:
    """The lower CUSUM path and its first alarm.

    ``statistic[t]`` is S_t after bar t (a read-only array as long as the input);
    ``alarm_index`` is the 0-based index of the first bar with S_t > h, or None.
    """

    alarm: bool
    alarm_index: int | None
    statistic: FloatArray


# --- input checks -------------------------------------------------------------------------------


def _series(values: Series, name: str, *, minimum: int = MIN_OBSERVATIONS) -> FloatArray:
    """``values`` as a 1-D float64 array of finite numbers with at least ``minimum`` entries."""
    array = float_array(name, values)
    if array.size < minimum:
        raise ValueError(f"{name} needs at least {minimum} observations, got {array.size}")
    return array


def _converted(value: Any, name: str, kind: str, convert: Callable[[Any], T]) -> T:
    """``convert(value)``, or a ValueError naming ``name``; a bool is refused, not read as 0/1."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {kind}, got a bool")
    try:
        return convert(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be {kind}, got {value!r}") from exc


def _number(value: float, name: str) -> float:
    """``value`` as a finite float."""
    number = _converted(value, name, "a number", float)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def _integer(value: int, name: str) -> int:
    """``value`` as a Python int (numpy integers accepted; floats and bools refused)."""
    return _converted(value, name, "an integer", operator.index)


def _periods_per_year(value: float | None) -> float | None:
    if value is None:
        return None
    number = _number(value, "periods_per_year")
    if number <= 0.0:
        raise ValueError(f"periods_per_year must be positive, got {number}")
    return number


def _confidence(value: float) -> float:
    number = _number(value, "confidence")
    if not 0.0 < number < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {number}")
    return number


# --- the Sharpe ratio and its sampling error ----------------------------------------------------


@dataclass(frozen=True)
class _SharpeSample:
    sharpe: float  # per period, sample std with ddof=1
    skewness: float
    kurtosis: float  # not in excess: 3 for a normal
    n: int


def _sharpe_sample(returns: Series, name: str) -> _SharpeSample:
    array = _series(returns, name)
    # An exact test rather than std == 0: rounding in the mean leaves a std of ~1e-17 for a
    # constant series, which would turn "undefined" into an absurd Sharpe ratio.
    if bool(np.all(array == array[0])):
        raise ValueError(f"{name} is constant: its Sharpe ratio is undefined")
    mean = float(np.mean(array))
    sharpe = mean / float(np.std(array, ddof=1))
    centred = array - mean
    m2 = float(np.mean(centred**2))
    skewness = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    if not all(math.isfinite(v) for v in (sharpe, skewness, kurtosis)):
        raise ValueError(f"{name} is too close to constant for its moments to be computed")
    return _SharpeSample(sharpe=sharpe, skewness=skewness, kurtosis=kurtosis, n=int(array.size))


def _mertens_numerator(sample: _SharpeSample, name: str) -> float:
    """T times the asymptotic variance of the per-period Sharpe estimate.

    Mertens (2002): Var(SR^) ~ (1 + SR²/2 - γ3·SR + (γ4 - 3)/4 · SR²) / T, γ3 the skewness, γ4 the
    kurtosis. Collecting the SR² terms gives 1 - γ3·SR + (γ4 - 1)/4 · SR², the very denominator of
    the Probabilistic Sharpe Ratio (Bailey & López de Prado 2012), so the two agree by design.
    For normal returns (γ3 = 0, γ4 = 3) it is Lo's (2002) 1 + SR²/2.
    """
    sr = sample.sharpe
    value = 1.0 - sample.skewness * sr + (sample.kurtosis - 1.0) / 4.0 * sr * sr
    # Non-negative in theory (kurtosis >= 1 + skewness² makes the discriminant <= 0); it is 0 only
    # for a two-valued sample at one particular Sharpe ratio, where no error bar exists.
    if not value > 0.0:
        raise ValueError(f"{name} has a degenerate distribution: the Sharpe variance is 0")
    return value


def sharpe_standard_error(returns: Series, *, periods_per_year: float | None = None) -> float:
    """Standard error of the Sharpe ratio of ``returns`` (Mertens 2002), skew and kurtosis included.

    Per period by default; with ``periods_per_year`` it is annualised like the Sharpe ratio
    itself, by sqrt(periods_per_year). Assumes serially uncorrelated returns.
    """
    ppy = _periods_per_year(periods_per_year)
    sample = _sharpe_sample(returns, "returns")
    se = math.sqrt(_mertens_numerator(sample, "returns") / sample.n)
    return se if ppy is None else se * math.sqrt(ppy)


def probabilistic_sharpe_ratio(returns: Series, benchmark_sharpe: float = 0.0) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe`` (per-period units).

    Bailey & López de Prado (2012):
    PSR(SR*) = Φ((SR^ - SR*) · sqrt(T - 1) / sqrt(1 - γ3·SR^ + (γ4 - 1)/4 · SR^²)).
    PSR(0) >= 0.95 reads "skill above zero at 95 %". An annualised benchmark must first be divided
    by sqrt(periods_per_year).
    """
    benchmark = _number(benchmark_sharpe, "benchmark_sharpe")
    sample = _sharpe_sample(returns, "returns")
    denominator = math.sqrt(_mertens_numerator(sample, "returns"))
    z = (sample.sharpe - benchmark) * math.sqrt(sample.n - 1) / denominator
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe estimates of strategies with no skill.

    Bailey & López de Prado (2014), from the extreme-value approximation of the maximum of N
    normals: E[max SR_n] ~ sqrt(V) · ((1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N·e))), with γ the
    Euler–Mascheroni constant and V the variance of the trials' (per-period) Sharpe estimates.
    One trial involves no selection, so its expected maximum is the unskilled mean, 0 (the formula
    itself is undefined there, since Φ⁻¹(0) = -inf).
    """
    trials = _integer(n_trials, "n_trials")
    if trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {trials}")
    variance = _number(sharpe_variance, "sharpe_variance")
    if variance < 0.0:
        raise ValueError(f"sharpe_variance must be >= 0, got {variance}")
    if trials == 1:
        return 0.0
    quantiles = (1.0 - EULER_GAMMA) * float(stats.norm.ppf(1.0 - 1.0 / trials)) + (
        EULER_GAMMA * float(stats.norm.ppf(1.0 - 1.0 / (trials * math.e)))
    )
    return math.sqrt(variance) * quantiles


def deflated_sharpe_ratio(
    returns: Series, n_trials: int, trial_sharpe_variance: float | None = None
) -> float:
    """PSR of ``returns`` against the best Sharpe ratio that ``n_trials`` unskilled tries reach.

    Bailey & López de Prado (2014): the Deflated Sharpe Ratio corrects for having picked the best
    of N models (or hyper-parameter sets) on one test segment. ``trial_sharpe_variance`` is the
    variance of the trials' per-period Sharpe ratios (divide an annualised variance by
    periods_per_year). When it is not given, the Mertens variance of this series' own Sharpe
    estimate stands in: for unskilled trials on the same number of bars, the spread of their
    Sharpe estimates is this sampling variance.
    """
    sample = _sharpe_sample(returns, "returns")
    if trial_sharpe_variance is None:
        variance = _mertens_numerator(sample, "returns") / sample.n
    else:
        variance = _number(trial_sharpe_variance, "trial_sharpe_variance")
        if variance < 0.0:
            raise ValueError(f"trial_sharpe_variance must be >= 0, got {variance}")
    benchmark = expected_max_sharpe(n_trials, variance)
    return probabilistic_sharpe_ratio(returns, benchmark)


def sharpe_lower_bound(
    returns: Series, confidence: float = 0.95, *, periods_per_year: float | None = None
) -> float:
    """One-sided lower confidence bound SR^ - z · SE of the Sharpe ratio, z = Φ⁻¹(confidence).

    SE is the Mertens (2002) standard error (see :func:`sharpe_standard_error`); a normal
    approximation to the Sharpe estimate's distribution, as in Lo (2002). Per period by default,
    annualised (bound times sqrt(periods_per_year)) when ``periods_per_year`` is given.
    """
    level = _confidence(confidence)
    ppy = _periods_per_year(periods_per_year)
    sample = _sharpe_sample(returns, "returns")
    se = math.sqrt(_mertens_numerator(sample, "returns") / sample.n)
    bound = sample.sharpe - float(stats.norm.ppf(level)) * se
    return bound if ppy is None else bound * math.sqrt(ppy)


def sharpe_difference_test(
    live: Series, baseline_sharpe: float, *, periods_per_year: float | None = None
) -> SharpeDifferenceTest:
    """Is the live window's Sharpe ratio significantly below ``baseline_sharpe``?

    z = (baseline - SR_live) / SE(SR_live) with the Mertens (2002) standard error, and the
    one-sided p-value 1 - Φ(z) (normal approximation, Lo 2002). ``baseline_sharpe`` is per period,
    or annualised when ``periods_per_year`` is given, and the result is in the same unit (z and p
    do not depend on the unit). The baseline is treated as known: if it was itself estimated on a
    short backtest, its own error is ignored and the test alarms too readily.
    """
    baseline = _number(baseline_sharpe, "baseline_sharpe")
    ppy = _periods_per_year(periods_per_year)
    sample = _sharpe_sample(live, "live")
    scale = 1.0 if ppy is None else math.sqrt(ppy)
    live_sharpe = sample.sharpe * scale
    se = math.sqrt(_mertens_numerator(sample, "live") / sample.n) * scale
    z = (baseline - live_sharpe) / se
    return SharpeDifferenceTest(
        live_sharpe=live_sharpe,
        baseline_sharpe=baseline,
        standard_error=se,
        z_stat=z,
        p_value=float(stats.norm.sf(z)),
        n=sample.n,
    )


# --- paired comparison with serial dependence ---------------------------------------------------


def default_newey_west_lags(n: int) -> int:
    """floor(4 · (n / 100)^(2/9)), the Newey–West (1994) rule of thumb for the Bartlett kernel.

    About 4 lags at 100 bars, 5 at 500, 6 at 720, 7 at 2,000 and 10 at 8,760; capped at n - 2
    so that the paired test's small-sample factor stays positive.
    """
    count = _integer(n, "n")
    if count < MIN_OBSERVATIONS:
        raise ValueError(f"n must be at least {MIN_OBSERVATIONS}, got {count}")
    return min(math.floor(4.0 * (count / 100.0) ** (2.0 / 9.0)), count - 2)


def _checked_lags(lags: int | None, n: int, *, most: int) -> int:
    if lags is None:
        return default_newey_west_lags(n)
    value = _integer(lags, "lags")
    if not 0 <= value <= most:
        raise ValueError(f"lags must lie in [0, {most}] for {n} observations, got {value}")
    return value


def _bartlett_long_run_variance(x: FloatArray, lags: int) -> float:
    """γ0 + 2 Σ_{j=1..L} (1 - j/(L+1)) γj, autocovariances γj divided by T (Newey & West 1987).

    Dividing by T rather than T - j, and the Bartlett weights, keep the estimate non-negative.
    """
    centred = x - float(np.mean(x))
    n = centred.size
    variance = float(np.dot(centred, centred)) / n
    for j in range(1, lags + 1):
        weight = 1.0 - j / (lags + 1.0)
        variance += 2.0 * weight * float(np.dot(centred[j:], centred[:-j])) / n
    return max(variance, 0.0)


def newey_west_variance(x: Series, lags: int | None = None) -> float:
    """HAC long-run variance of ``x``: T · Var(mean(x)) allowing for autocorrelation.

    Newey & West (1987) with the Bartlett kernel and autocovariances divided by T; with
    ``lags=0`` it is the sample variance with ddof=0. ``lags=None`` uses
    :func:`default_newey_west_lags`, floor(4 · (T/100)^(2/9)) (Newey & West 1994). Divide by T for
    the variance of the sample mean.
    """
    array = _series(x, "x")
    return _bartlett_long_run_variance(array, _checked_lags(lags, array.size, most=array.size - 1))


def paired_test(a: Series, b: Series, *, lags: int | None = None) -> PairedTest:
    """One-sided test that ``a`` beats ``b`` on the same bars (higher is better).

    d = a - b; the Diebold–Mariano (1995) statistic mean(d) / sqrt(LRV / T), with LRV the
    Newey–West long-run variance of d (:func:`newey_west_variance`), times the Harvey, Leybourne &
    Newbold (1997) small-sample factor sqrt((T + 1 - 2h + h(h - 1)/T) / T), compared with a
    Student t with T - 1 degrees of freedom (also their recommendation). HLN derive the factor
    for h-step forecasts whose loss differences carry h - 1 lags; here h = lags + 1.

    For losses (lower is better) pass the negated losses. Identical series give t = 0 and
    p = 0.5 (no evidence either way); a difference that is a non-zero constant has no noise at
    all, and gives t = ±inf with p = 0 or 1.
    """
    first = _series(a, "a")
    second = _series(b, "b")
    if first.size != second.size:
        raise ValueError(f"a and b must have the same length, got {first.size} and {second.size}")
    n = int(first.size)
    used_lags = _checked_lags(lags, n, most=n - 2)
    d = first - second
    mean_difference = float(np.mean(d))
    long_run_variance = (
        0.0 if bool(np.all(d == d[0])) else _bartlett_long_run_variance(d, used_lags)
    )
    if long_run_variance == 0.0:
        if mean_difference == 0.0:
            t_stat, p_value = 0.0, 0.5
        else:
            t_stat = math.copysign(math.inf, mean_difference)
            p_value = 0.0 if mean_difference > 0.0 else 1.0
        return PairedTest(mean_difference, t_stat, p_value, n, used_lags)
    h = used_lags + 1
    correction = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    t_stat = mean_difference / math.sqrt(long_run_variance / n) * correction
    p_value = float(stats.t.sf(t_stat, df=n - 1))
    return PairedTest(mean_difference, t_stat, p_value, n, used_lags)


# --- sequential change detection ----------------------------------------------------------------


def cusum_alarm(x: Series, *, target_mean: float, k: float, h: float) -> CusumResult:
    """One-sided lower CUSUM (Page 1954) for a drop of the mean of ``x`` below ``target_mean``.

    S_0 = 0, S_t = max(0, S_{t-1} + (target_mean - x_t - k)); the alarm is the first t with
    S_t > h. The reference value k (often half the drop to detect) and the threshold h set the
    trade-off between the average run length without a change (false alarms) and the delay after
    a change; measure both for the chosen (k, h) by replay or simulation.
    """
    array = _series(x, "x", minimum=1)
    target = _number(target_mean, "target_mean")
    reference = _number(k, "k")
    if reference < 0.0:
        raise ValueError(f"k must be >= 0, got {reference}")
    threshold = _number(h, "h")
    if threshold <= 0.0:
        raise ValueError(f"h must be > 0, got {threshold}")
    # The recursion unrolled (Lindley's recursion): with C_t the running sum of the increments and
    # C_0 = 0, S_t = C_t - min(C_0, ..., C_t). One vectorised pass instead of a Python loop.
    running = np.cumsum(target - array - reference)
    statistic = running - np.minimum(np.minimum.accumulate(running), 0.0)
    # Rounding in the subtraction can leave -1e-17 where the recursion gives exactly 0.
    statistic = np.maximum(statistic, 0.0)
    statistic.setflags(write=False)
    above = np.flatnonzero(statistic > threshold)
    alarm_index = int(above[0]) if above.size else None
    return CusumResult(alarm=alarm_index is not None, alarm_index=alarm_index, statistic=statistic)
