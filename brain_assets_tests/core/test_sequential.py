"""The cumulative test: its false-alarm rate over every look, measured by simulation, and how
fast it finds a record that really loses."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from brain_assets.decisions.sequential import (
    MIN_RECORD_BARS,
    cumulative_loss_test,
    mixture_boundary,
    tuned_rho,
)

LOOK_EVERY = 24  # a look a day at hourly bars


Draw = Callable[[np.random.Generator, int], np.ndarray]


def alarm_rate(draw: Draw, confidence: float, paths: int, bars: int, seed: int) -> float:
    """Share of zero-mean paths on which any look, from MIN_RECORD_BARS on, alarms; the test's
    own plug-in standard deviation at each look, as monitoring computes it."""
    rng = np.random.default_rng(seed)
    alpha = 1.0 - confidence
    rho = tuned_rho(500, alpha)
    looks = np.arange(MIN_RECORD_BARS, bars + 1, LOOK_EVERY)
    boundary = np.array([mixture_boundary(n, alpha, rho) for n in looks])
    alarms = 0
    for _ in range(paths):
        x = draw(rng, bars)
        total, squares = np.cumsum(x)[looks - 1], np.cumsum(x * x)[looks - 1]
        variance = (squares - total * total / looks) / (looks - 1)
        alarms += bool(np.any(total < -np.sqrt(np.maximum(variance, 0.0)) * boundary))
    return alarms / paths


def normal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0.0, 0.01, n)


def fat_tailed(rng: np.random.Generator, n: int) -> np.ndarray:
    return 0.01 * rng.standard_t(3, n)


def mostly_flat(rng: np.random.Generator, n: int) -> np.ndarray:
    # The band keeps a version flat most of the time: zeros with rare fat-tailed returns.
    return 0.01 * rng.standard_t(3, n) * (rng.random(n) < 0.1)


@pytest.mark.parametrize("draw", [normal, fat_tailed, mostly_flat])
def test_false_alarm_rate_over_every_look_stays_below_its_budget(draw: Draw) -> None:
    # 600 paths of 3,000 bars (four months of hourly bars), looked at daily. The budget is
    # 1 - confidence = 10%; three standard errors of a 10% rate over 600 paths is 3.7%.
    rate = alarm_rate(draw, confidence=0.9, paths=600, bars=3000, seed=11)
    assert rate < 0.10


def test_the_function_agrees_with_the_simulated_boundary() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(-0.002, 0.01, 2000)  # loses 20 bps a bar: credibly, soon
    verdict = cumulative_loss_test(len(x), float(x.sum()), float(x.std(ddof=1)), confidence=0.9)
    assert verdict.alarm and verdict.upper_bound is not None and verdict.upper_bound < 0
    assert "credible losses" in verdict.reason


def test_a_steady_small_loser_is_found_and_a_winner_is_not() -> None:
    rng = np.random.default_rng(9)
    # A year of hourly bars losing 8 bps a bar at 1% volatility: an annualised Sharpe ratio of
    # about -7, seldom significant in any two weeks alone (t about -1.5).
    loser = rng.normal(-0.0008, 0.01, 8760)

    def first_alarm(x: np.ndarray) -> int | None:
        for n in range(MIN_RECORD_BARS, len(x) + 1, LOOK_EVERY):
            part = x[:n]
            if cumulative_loss_test(
                n, float(part.sum()), float(part.std(ddof=1)), confidence=0.9
            ).alarm:
                return n
        return None

    found = first_alarm(loser)
    assert found is not None and found < 8760
    winner = rng.normal(0.0008, 0.01, 8760)
    assert first_alarm(winner) is None


def test_short_or_flat_records_are_not_judged() -> None:
    short = cumulative_loss_test(MIN_RECORD_BARS - 1, -1.0, 0.01, confidence=0.9)
    assert not short.alarm and short.upper_bound is None
    flat = cumulative_loss_test(500, 0.0, 0.0, confidence=0.9)
    assert not flat.alarm
    with pytest.raises(ValueError, match="confidence"):
        cumulative_loss_test(500, 0.0, 0.01, confidence=1.0)
    with pytest.raises(ValueError, match="bars"):
        cumulative_loss_test(-1, 0.0, 0.01, confidence=0.9)
