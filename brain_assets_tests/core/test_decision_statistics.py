"""Tests of brain_assets.decisions.statistics against known answers.

Expected values come from hand arithmetic, from textbook closed forms (Lo's Sharpe variance, the
long-run variance of an AR(1), the classic paired t-test) or from Monte Carlo with a seeded rng;
never from the function under test itself. Simulation bands are chosen from the binomial error of
the simulation plus the known finite-sample bias of the method, and each is explained in place.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy import signal, stats

from brain_assets.decisions.statistics import (
    EULER_GAMMA,
    CusumResult,
    PairedTest,
    SharpeDifferenceTest,
    cusum_alarm,
    default_newey_west_lags,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    newey_west_variance,
    paired_test,
    probabilistic_sharpe_ratio,
    sharpe_difference_test,
    sharpe_lower_bound,
    sharpe_standard_error,
)

HOURS_PER_YEAR = 8760


def _sample_sharpe(x: np.ndarray) -> float:
    return float(np.mean(x) / np.std(x, ddof=1))


def _mertens_by_hand(x: np.ndarray) -> float:
    """Mertens (2002) SE via scipy's moments, an independent path from the module's own."""
    sr = _sample_sharpe(x)
    skew = float(stats.skew(x, bias=True))
    kurt = float(stats.kurtosis(x, fisher=False, bias=True))
    return math.sqrt((1 + sr**2 / 2 - skew * sr + (kurt - 3) / 4 * sr**2) / x.size)


@pytest.fixture
def skewed_returns() -> np.ndarray:
    # Positive Sharpe, visibly skewed and fat-tailed, so the Mertens terms matter.
    rng = np.random.default_rng(7)
    return rng.exponential(1.0, 300) - 0.85


# --- Sharpe standard error ----------------------------------------------------------------------


def test_standard_error_matches_lo_for_iid_normal_returns() -> None:
    rng = np.random.default_rng(11)
    returns = rng.normal(0.05, 1.0, 200_000)
    sr = _sample_sharpe(returns)
    lo = math.sqrt((1 + sr**2 / 2) / returns.size)  # Lo (2002), i.i.d. normal
    # Sample skew and excess kurtosis are within ~0.01 of 0 at this T, and they enter multiplied by
    # SR ~ 0.05, so Mertens and Lo agree to far better than 1 %.
    assert sharpe_standard_error(returns) == pytest.approx(lo, rel=1e-2)


def test_standard_error_matches_monte_carlo_for_skewed_returns() -> None:
    # Exponential(1) - 0.8: mean 0.2, std 1, skewness 2, kurtosis 9, so SR = 0.2 and
    # T·Var(SR^) = 1 + 0.02 - 2·0.2 + 6/4·0.04 = 0.68 (Mertens), against 1.02 for Lo.
    rng = np.random.default_rng(3)
    t = 500
    draws = rng.exponential(1.0, (4000, t)) - 0.8
    spread = float(np.std(draws.mean(axis=1) / draws.std(axis=1, ddof=1), ddof=1))
    # Estimate the population SE from one long sample, rescaled to T bars.
    long = rng.exponential(1.0, 1_000_000) - 0.8
    mertens = sharpe_standard_error(long) * math.sqrt(long.size / t)
    assert mertens == pytest.approx(math.sqrt(0.68 / t), rel=0.02)
    # 4000 draws give the Monte Carlo spread to ~1.1 %; Mertens is an asymptotic formula, ~3 % low
    # here at T = 500. Lo's normal-theory value is ~19 % too high, far outside the band.
    assert mertens == pytest.approx(spread, rel=0.06)
    assert abs(math.sqrt(1.02 / t) / spread - 1) > 0.12


def test_standard_error_by_hand_and_annualised(skewed_returns: np.ndarray) -> None:
    per_bar = sharpe_standard_error(skewed_returns)
    assert per_bar == pytest.approx(_mertens_by_hand(skewed_returns), rel=1e-12)
    annual = sharpe_standard_error(skewed_returns, periods_per_year=HOURS_PER_YEAR)
    assert annual == pytest.approx(per_bar * math.sqrt(HOURS_PER_YEAR), rel=1e-12)


def test_standard_error_of_a_month_of_hourly_bars_is_huge() -> None:
    # The note's example: 720 hourly bars, SR near 0 -> SE ~ sqrt(1/720)·sqrt(8760) ~ 3.5 a year.
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0, 0.01, 720)
    se = sharpe_standard_error(returns, periods_per_year=HOURS_PER_YEAR)
    assert 3.2 < se < 3.8


# --- Probabilistic and deflated Sharpe ratio ----------------------------------------------------


def test_psr_is_one_half_at_the_sample_sharpe(skewed_returns: np.ndarray) -> None:
    sr = _sample_sharpe(skewed_returns)
    assert probabilistic_sharpe_ratio(skewed_returns, sr) == pytest.approx(0.5, abs=1e-12)


def test_psr_by_hand(skewed_returns: np.ndarray) -> None:
    x = skewed_returns
    sr = _sample_sharpe(x)
    skew = float(stats.skew(x, bias=True))
    kurt = float(stats.kurtosis(x, fisher=False, bias=True))
    benchmark = 0.02
    z = (sr - benchmark) * math.sqrt(x.size - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert probabilistic_sharpe_ratio(x, benchmark) == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    # A benchmark above the estimate gives less than even odds.
    assert probabilistic_sharpe_ratio(x, sr + 0.05) < 0.5


def test_psr_rises_with_sample_length_at_a_fixed_positive_sharpe() -> None:
    # Repeating one sample keeps its mean and its moments (ddof=0) unchanged, so the Sharpe ratio
    # stays essentially fixed while T grows: more bars, more certainty.
    base = np.array([0.012, -0.004, 0.007, -0.010, 0.003, 0.015, -0.006, 0.002, -0.001, 0.009])
    psrs = [probabilistic_sharpe_ratio(np.tile(base, reps)) for reps in (1, 4, 16, 64)]
    assert all(later > earlier for earlier, later in itertools.pairwise(psrs))
    assert psrs[0] < 0.95 < psrs[-1]


def test_expected_max_sharpe_known_values() -> None:
    assert expected_max_sharpe(1, 1.0) == 0.0
    assert expected_max_sharpe(50, 0.0) == 0.0
    # N = 10, V = 1 by hand: Φ⁻¹(0.9) = 1.2815516, Φ⁻¹(1 - 1/(10e)) = Φ⁻¹(0.9632121) = 1.7892418;
    # 0.4227843 · 1.2815516 + 0.5772157 · 1.7892418 = 0.5418196 + 1.0327787 = 1.5745983.
    assert expected_max_sharpe(10, 1.0) == pytest.approx(1.5745983, abs=1e-6)
    # It scales with the standard deviation of the trials' Sharpe ratios.
    assert expected_max_sharpe(10, 0.04) == pytest.approx(0.2 * 1.5745983, abs=1e-6)
    # The exact mean of the largest of 10 standard normals is 1.5387527; the approximation is close.
    assert expected_max_sharpe(10, 1.0) == pytest.approx(1.5387527, rel=0.03)
    assert EULER_GAMMA == pytest.approx(np.euler_gamma, abs=1e-15)


def test_expected_max_sharpe_increases_with_trials() -> None:
    values = [expected_max_sharpe(n, 0.01) for n in (1, 2, 5, 10, 100, 1000)]
    assert all(later > earlier for earlier, later in itertools.pairwise(values))


def test_deflated_sharpe_ratio(skewed_returns: np.ndarray) -> None:
    x = skewed_returns
    # One trial: nothing was selected, so the DSR is the PSR against zero.
    assert deflated_sharpe_ratio(x, 1) == pytest.approx(probabilistic_sharpe_ratio(x), rel=1e-12)
    # The default trial variance is the series' own Mertens variance.
    own_variance = _mertens_by_hand(x) ** 2
    assert deflated_sharpe_ratio(x, 20) == pytest.approx(
        deflated_sharpe_ratio(x, 20, own_variance), rel=1e-9
    )
    # Benchmark by hand for N = 20 from the formula, then the PSR against it.
    benchmark = math.sqrt(own_variance) * (
        (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / 20)
        + EULER_GAMMA * stats.norm.ppf(1 - 1 / (20 * math.e))
    )
    assert deflated_sharpe_ratio(x, 20) == pytest.approx(
        probabilistic_sharpe_ratio(x, benchmark), rel=1e-9
    )
    # The more models were tried, the less the best one's Sharpe ratio proves.
    dsrs = [deflated_sharpe_ratio(x, n) for n in (1, 10, 100, 1000)]
    assert all(later < earlier for earlier, later in itertools.pairwise(dsrs))


# --- lower bound and the live-versus-baseline test ----------------------------------------------


def test_lower_bound_is_below_the_estimate_and_widens(skewed_returns: np.ndarray) -> None:
    x = skewed_returns
    sr = _sample_sharpe(x)
    se = _mertens_by_hand(x)
    # z = 0 at 50 %: the bound is the point estimate itself.
    assert sharpe_lower_bound(x, 0.5) == pytest.approx(sr, rel=1e-12)
    # Φ⁻¹(0.95) = 1.6448536.
    assert sharpe_lower_bound(x) == pytest.approx(sr - 1.6448536 * se, rel=1e-6)
    bounds = [sharpe_lower_bound(x, c) for c in (0.6, 0.8, 0.9, 0.95, 0.99)]
    assert all(b < sr for b in bounds)
    assert all(later < earlier for earlier, later in itertools.pairwise(bounds))
    annual = sharpe_lower_bound(x, 0.9, periods_per_year=365)
    assert annual == pytest.approx(sharpe_lower_bound(x, 0.9) * math.sqrt(365), rel=1e-12)


def test_sharpe_difference_by_hand(skewed_returns: np.ndarray) -> None:
    x = skewed_returns
    sr = _sample_sharpe(x)
    se = _mertens_by_hand(x)
    result = sharpe_difference_test(x, 0.3)
    assert isinstance(result, SharpeDifferenceTest)
    assert result.n == x.size
    assert result.live_sharpe == pytest.approx(sr, rel=1e-12)
    assert result.z_stat == pytest.approx((0.3 - sr) / se, rel=1e-9)
    assert result.p_value == pytest.approx(stats.norm.sf((0.3 - sr) / se), rel=1e-9)
    # At the live Sharpe itself there is no evidence either way.
    assert sharpe_difference_test(x, sr).p_value == pytest.approx(0.5, abs=1e-12)


def test_sharpe_difference_units_follow_periods_per_year(skewed_returns: np.ndarray) -> None:
    x = skewed_returns
    scale = math.sqrt(HOURS_PER_YEAR)
    per_bar = sharpe_difference_test(x, 0.3)
    annual = sharpe_difference_test(x, 0.3 * scale, periods_per_year=HOURS_PER_YEAR)
    assert annual.live_sharpe == pytest.approx(per_bar.live_sharpe * scale, rel=1e-12)
    assert annual.standard_error == pytest.approx(per_bar.standard_error * scale, rel=1e-12)
    assert annual.baseline_sharpe == pytest.approx(0.3 * scale, rel=1e-12)
    assert annual.z_stat == pytest.approx(per_bar.z_stat, rel=1e-9)
    assert annual.p_value == pytest.approx(per_bar.p_value, rel=1e-9)


def test_sharpe_difference_flags_a_degraded_model_only() -> None:
    rng = np.random.default_rng(17)
    # Baseline SR 0.3 a bar; the live model has lost its edge (true SR 0): SE ~ 0.032 at T = 1000.
    degraded = rng.normal(0.0, 1.0, 1000)
    assert sharpe_difference_test(degraded, 0.3).p_value < 0.001
    # A live model whose true Sharpe equals the baseline is not flagged at 5 % (seeded draw).
    healthy = rng.normal(0.3, 1.0, 1000)
    assert sharpe_difference_test(healthy, 0.3).p_value > 0.05


# --- Newey–West ---------------------------------------------------------------------------------


def test_newey_west_with_no_lags_is_the_ddof0_variance(skewed_returns: np.ndarray) -> None:
    assert newey_west_variance(skewed_returns, lags=0) == pytest.approx(
        float(np.var(skewed_returns, ddof=0)), rel=1e-12
    )


def test_newey_west_by_hand_with_one_lag() -> None:
    # x = 1..4, centred -1.5, -0.5, 0.5, 1.5: γ0 = 5/4 = 1.25, γ1 = (0.75 - 0.25 + 0.75)/4 = 0.3125,
    # Bartlett weight 1 - 1/2 = 0.5, so LRV = 1.25 + 2·0.5·0.3125 = 1.5625.
    assert newey_west_variance([1.0, 2.0, 3.0, 4.0], lags=1) == pytest.approx(1.5625, abs=1e-12)


def test_newey_west_recovers_the_long_run_variance_of_an_ar1() -> None:
    # AR(1) with φ = 0.5 and unit innovations: LRV = 1 / (1 - φ)² = 4, while the plain variance is
    # 1 / (1 - φ²) = 1.33. The Bartlett kernel at the default 18 lags is biased down by a few %.
    rng = np.random.default_rng(23)
    x = signal.lfilter([1.0], [1.0, -0.5], rng.standard_normal(100_000))
    assert newey_west_variance(x) == pytest.approx(4.0, rel=0.08)
    assert newey_west_variance(x, lags=0) == pytest.approx(4.0 / 3.0, rel=0.05)


def test_default_lag_rule() -> None:
    # floor(4 · (T/100)^(2/9)): T = 100 -> 4; T = 500 -> floor(5.72) = 5; T = 8760 -> floor(10.8).
    assert default_newey_west_lags(100) == 4
    assert default_newey_west_lags(500) == 5
    assert default_newey_west_lags(8760) == 10
    assert default_newey_west_lags(3) == 1  # capped at T - 2


# --- paired test --------------------------------------------------------------------------------


def test_paired_test_on_identical_series_has_no_evidence(skewed_returns: np.ndarray) -> None:
    result = paired_test(skewed_returns, skewed_returns.copy())
    assert isinstance(result, PairedTest)
    assert (result.mean_difference, result.t_stat, result.p_value) == (0.0, 0.0, 0.5)
    assert result.n == skewed_returns.size
    assert result.lags == default_newey_west_lags(skewed_returns.size)


def test_paired_test_with_no_lags_is_the_classic_paired_t_test() -> None:
    # With h = 1 the HLN factor is sqrt((T - 1)/T), which turns the ddof=0 variance into the ddof=1
    # one: exactly the textbook paired t-test.
    rng = np.random.default_rng(29)
    a = rng.normal(0.1, 1.0, 40)
    b = rng.normal(0.0, 1.0, 40)
    expected = stats.ttest_rel(a, b, alternative="greater")
    result = paired_test(a, b, lags=0)
    assert result.t_stat == pytest.approx(float(expected.statistic), rel=1e-10)
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-10)
    assert result.mean_difference == pytest.approx(float(np.mean(a - b)), rel=1e-12)


def test_paired_test_hln_correction_by_hand() -> None:
    # d = a - b = [1, 2, 3, 4] with lags = 1: LRV = 1.5625 (see above), mean 2.5, T = 4, h = 2;
    # DM = 2.5 / sqrt(1.5625/4) = 4; HLN factor sqrt((4 + 1 - 4 + 2/4)/4) = sqrt(0.375).
    result = paired_test([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], lags=1)
    t_expected = 4.0 * math.sqrt(0.375)
    assert result.t_stat == pytest.approx(t_expected, rel=1e-12)
    assert result.p_value == pytest.approx(float(stats.t.sf(t_expected, df=3)), rel=1e-12)
    assert result.lags == 1


def test_paired_test_detects_a_clearly_better_series() -> None:
    rng = np.random.default_rng(31)
    b = rng.normal(0.0, 1.0, 500)
    a = b + 0.3 + rng.normal(0.0, 1.0, 500)  # edge 0.3 per bar against noise 1: t ~ 6.7
    assert paired_test(a, b).p_value < 0.01
    # The same comparison the other way round is nowhere near significant.
    assert paired_test(b, a).p_value > 0.99


def test_paired_test_constant_difference() -> None:
    result = paired_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert result.t_stat == math.inf
    assert result.p_value == 0.0


def test_paired_test_false_positive_rate_under_ar1_noise() -> None:
    # 2000 null pairs: a and b are independent AR(1) (φ = 0.3) series of 500 bars with equal means,
    # so d = a - b is AR(1) with mean 0 and a long-run variance 1.86 times its plain variance.
    rng = np.random.default_rng(20240601)
    noise = signal.lfilter([1.0], [1.0, -0.3], rng.standard_normal((2, 2000, 500)), axis=-1)
    hac = np.mean([paired_test(noise[0, i], noise[1, i]).p_value < 0.05 for i in range(2000)])
    naive = np.mean(
        [paired_test(noise[0, i], noise[1, i], lags=0).p_value < 0.05 for i in range(2000)]
    )
    # Band 0.02-0.09: the binomial error of 2000 runs at 5 % is 0.005, and the Bartlett estimate at
    # 5 lags underestimates the long-run variance a little, so a correct test lands near 0.05-0.07;
    # a test that ignored autocorrelation lands near 0.11 (theory: Φ(-1.645 / sqrt(1.86))).
    assert 0.02 <= hac <= 0.09
    assert naive > 0.09
    assert naive > hac + 0.03


# --- CUSUM --------------------------------------------------------------------------------------


def test_cusum_by_hand() -> None:
    # Increments target - x - k with target 0, k 0.5: [-0.5, 0.5, 1.5, -1.5, 2.5], so
    # S = [0, 0.5, 2.0, 0.5, 3.0]. S_2 = 2.0 is not > h = 2; the alarm is at index 4.
    result = cusum_alarm([0.0, -1.0, -2.0, 1.0, -3.0], target_mean=0.0, k=0.5, h=2.0)
    assert isinstance(result, CusumResult)
    np.testing.assert_allclose(result.statistic, [0.0, 0.5, 2.0, 0.5, 3.0], atol=1e-12)
    assert result.alarm is True
    assert result.alarm_index == 4
    with pytest.raises(ValueError, match="read-only"):
        result.statistic[0] = 1.0


def test_cusum_without_alarm() -> None:
    result = cusum_alarm([1.0, 0.0, 1.0], target_mean=0.5, k=0.0, h=1.0)
    # Increments [-0.5, 0.5, -0.5] -> S = [0, 0.5, 0].
    np.testing.assert_allclose(result.statistic, [0.0, 0.5, 0.0], atol=1e-12)
    assert result.alarm is False
    assert result.alarm_index is None


def test_cusum_alarms_soon_after_a_drop() -> None:
    # Unit-noise bars whose mean drops by 1 at bar 200; k = δ/2 = 0.5, h = 8. Siegmund's
    # approximation of the mean delay, (h + 1.166) / (δ - k), is ~18 bars.
    rng = np.random.default_rng(37)
    delays = []
    for _ in range(300):
        x = rng.standard_normal(400)
        x[200:] -= 1.0
        result = cusum_alarm(x, target_mean=0.0, k=0.5, h=8.0)
        delays.append(result.alarm_index - 200 if result.alarm_index is not None else 10**6)
    delay = np.array(delays)
    # Alarms before the drop must be rare (the no-change run length at these settings is ~19,000
    # bars, see the next test), and the drop must be caught, almost always within 60 bars.
    assert np.mean(delay < 0) < 0.03
    assert np.mean((delay >= 0) & (delay <= 60)) > 0.95
    assert 5 <= float(np.median(delay)) <= 30


def test_cusum_rarely_alarms_on_a_stable_series() -> None:
    # Same settings, no change: Siegmund's average run length is ~19,000 bars, so a 250-bar window
    # alarms ~1-2 % of the time. Fewer than 5 % of 500 seeded windows may alarm.
    rng = np.random.default_rng(41)
    alarms = [
        cusum_alarm(rng.standard_normal(250), target_mean=0.0, k=0.5, h=8.0).alarm
        for _ in range(500)
    ]
    assert np.mean(alarms) < 0.05


# --- bad input ----------------------------------------------------------------------------------

GOOD = [0.01, -0.02, 0.03, 0.005, -0.01]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: sharpe_standard_error([0.1, 0.2]), "returns"),
        (lambda: sharpe_standard_error([0.1, math.nan, 0.2, 0.3]), "returns"),
        (lambda: sharpe_standard_error([0.1, math.inf, 0.2, 0.3]), "returns"),
        (lambda: sharpe_standard_error([0.1, 0.1, 0.1, 0.1]), "returns"),
        (lambda: sharpe_standard_error([[0.1, 0.2], [0.3, 0.4]]), "returns"),  # type: ignore[list-item]
        (lambda: sharpe_standard_error(["a", "b", "c"]), "returns"),  # type: ignore[list-item]
        (lambda: sharpe_standard_error(GOOD, periods_per_year=0), "periods_per_year"),
        (lambda: sharpe_standard_error(GOOD, periods_per_year=math.nan), "periods_per_year"),
        (lambda: probabilistic_sharpe_ratio(GOOD, math.inf), "benchmark_sharpe"),
        (lambda: probabilistic_sharpe_ratio([1.0], 0.0), "returns"),
        (lambda: expected_max_sharpe(0, 1.0), "n_trials"),
        (lambda: expected_max_sharpe(2.5, 1.0), "n_trials"),  # type: ignore[arg-type]
        (lambda: expected_max_sharpe(10, -1.0), "sharpe_variance"),
        (lambda: deflated_sharpe_ratio(GOOD, 10, -0.1), "trial_sharpe_variance"),
        (lambda: deflated_sharpe_ratio(GOOD, 0), "n_trials"),
        (lambda: sharpe_lower_bound(GOOD, 0.0), "confidence"),
        (lambda: sharpe_lower_bound(GOOD, 1.0), "confidence"),
        (lambda: sharpe_lower_bound(GOOD, 1.5), "confidence"),
        (lambda: sharpe_lower_bound(GOOD, math.nan), "confidence"),
        (lambda: sharpe_difference_test([0.1, 0.2], 0.0), "live"),
        (lambda: sharpe_difference_test(GOOD, math.nan), "baseline_sharpe"),
        (lambda: newey_west_variance([0.1, 0.2]), "x"),
        (lambda: newey_west_variance(GOOD, lags=-1), "lags"),
        (lambda: newey_west_variance(GOOD, lags=5), "lags"),
        (lambda: paired_test(GOOD, GOOD[:4]), "a and b"),
        (lambda: paired_test([0.1, math.nan, 0.2], [0.1, 0.2, 0.3]), "a"),
        (lambda: paired_test([0.1, 0.2, 0.3], [0.1, 0.2, math.inf]), "b"),
        (lambda: paired_test(GOOD, GOOD, lags=4), "lags"),
        (lambda: cusum_alarm([], target_mean=0.0, k=0.5, h=4.0), "x"),
        (lambda: cusum_alarm(GOOD, target_mean=math.nan, k=0.5, h=4.0), "target_mean"),
        (lambda: cusum_alarm(GOOD, target_mean=0.0, k=-0.1, h=4.0), "k"),
        (lambda: cusum_alarm(GOOD, target_mean=0.0, k=0.5, h=0.0), "h"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call: Any, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
