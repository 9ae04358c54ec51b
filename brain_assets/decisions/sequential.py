"""Is a live record credibly losing money? A test that stays valid however often it is asked.

Monitoring looks at the active version's record every hour or every day, for as long as it
trades. A fixed-sample test at 5% repeated at every look alarms almost surely in the end, even
for a version that earns exactly nothing; judging only the last two weeks each time forgets the
weeks before, so a version that loses a little every week is never "significantly" bad in any of
them. A confidence sequence avoids both: its bound holds simultaneously at every look (Howard,
Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences"), so the record can grow from the activation on and be checked at will.

The bound is Robbins' normal mixture. For increments with mean 0 and standard deviation sigma,
S_n = x_1 + ... + x_n stays above -sigma * b(n), with

    b(n) = sqrt((n + rho) * ln((n + rho) / (rho * alpha^2)))

at every n at once, except with probability at most alpha (Ville's inequality applied to the
mixture martingale; the two-sided bound, of which only the lower side is used, so the one-sided
rate is lower still). An alarm is a record whose sum falls below it: its mean net return is
credibly below zero, what standing aside earns. ``rho`` only sets where the bound is tightest;
any value keeps the guarantee. sigma is the record's own sample standard deviation, a plug-in
that makes the guarantee approximate for short records: ``brain_assets_tests`` measures the
false-alarm rate by simulation, fat tails and flat stretches included.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from scipy import optimize

TUNED_BARS = 500
"""The record length at which the bound is made tightest: three weeks of hourly bars."""
MIN_RECORD_BARS = 120
"""Fewest bars a record is judged on: below that the plug-in standard deviation is too rough."""


def mixture_boundary(n: float, alpha: float, rho: float) -> float:
    """b(n) of the module docstring, in units of the increments' standard deviation."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not (n >= 0 and rho > 0):
        raise ValueError(f"n must be >= 0 and rho > 0, got n={n}, rho={rho}")
    return math.sqrt((n + rho) * math.log((n + rho) / (rho * alpha * alpha)))


@functools.lru_cache(maxsize=16)
def tuned_rho(bars: int, alpha: float) -> float:
    """The rho that makes b(bars) smallest: the bound is then tightest around ``bars``."""
    result = optimize.minimize_scalar(
        lambda log_rho: mixture_boundary(bars, alpha, math.exp(log_rho)),
        bounds=(math.log(1e-3 * bars), math.log(1e3 * bars)),
        method="bounded",
    )
    return float(math.exp(result.x))


@dataclass(frozen=True)
class CumulativeTest:
    """The verdict on a record of per-bar net returns since the version's activation."""

    bars: int
    mean: float
    """Mean net return per bar."""
    upper_bound: float | None
    """Time-uniform upper confidence bound of the mean per bar (None: not judged yet)."""
    alarm: bool
    """The upper bound is below zero: the record credibly loses against standing aside."""
    confidence: float
    reason: str


def cumulative_loss_test(
    bars: int, total: float, std: float, *, confidence: float, tuned_bars: int = TUNED_BARS
) -> CumulativeTest:
    """Judge a record of ``bars`` per-bar net returns summing to ``total`` with sample standard
    deviation ``std``: alarm when its mean is credibly below zero at ``confidence`` over every
    look (see the module)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 0:
        raise ValueError(f"bars must be an integer >= 0, got {bars!r}")
    if not (math.isfinite(total) and math.isfinite(std) and std >= 0):
        raise ValueError(f"total and std must be finite, std >= 0; got {total}, {std}")
    mean = total / bars if bars else 0.0
    if bars < MIN_RECORD_BARS:
        return CumulativeTest(
            bars, mean, None, False, confidence, f"{bars} bars, fewer than {MIN_RECORD_BARS}"
        )
    if std == 0.0:
        return CumulativeTest(bars, mean, mean, False, confidence, "the record never varied")
    alpha = 1.0 - confidence
    margin = std * mixture_boundary(bars, alpha, tuned_rho(tuned_bars, alpha))
    upper = (total + margin) / bars
    alarm = upper < 0.0
    reason = (
        f"mean net return {mean * 1e4:.2f} bps per bar over {bars} bars; its time-uniform "
        f"{confidence:.0%} upper bound {upper * 1e4:.2f} bps is "
        + ("below 0: credible losses" if alarm else "not below 0")
    )
    return CumulativeTest(bars, mean, upper, alarm, confidence, reason)
