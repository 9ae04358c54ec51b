"""The no-trade band on hand examples, against a bar-by-bar reference, and where it is applied."""

from __future__ import annotations

import numpy as np
import pytest

from brain_assets.evaluation.comprehensive import evaluate_model
from brain_assets.evaluation.positions import PositionRule

# Fee 10 bps, margin 0.5: the entry threshold is 2 * 0.001 * 1.5 = 0.003.
RULE = PositionRule(fee_bps=10.0, margin=0.5)


def reference(rule: PositionRule, forecasts: np.ndarray, start: int) -> np.ndarray:
    held, path = start, []
    for forecast in forecasts:
        held = rule.next_position(float(forecast), held)
        path.append(held)
    return np.asarray(path, dtype=float)


def test_entry_threshold_is_the_round_trip_cost_with_its_margin() -> None:
    assert RULE.entry_threshold == pytest.approx(0.003)
    assert PositionRule(fee_bps=0.0, margin=3.0).entry_threshold == 0.0


def test_band_on_a_hand_example() -> None:
    forecasts = [0.001, 0.004, 0.002, 0.0, -0.001, 0.001, -0.005, -0.0029, 0.0001, 0.0031]
    # flat: 0.001 is below the cost; 0.004 opens long; 0.002 and 0.0 hold it; -0.001 points
    # against it: flat; 0.001 opens nothing; -0.005 opens short; -0.0029 holds; 0.0001 points
    # against the short: flat; 0.0031 opens long.
    expected = [0, 1, 1, 1, 0, 0, -1, -1, 0, 1]
    assert RULE.positions(forecasts).tolist() == expected
    assert reference(RULE, np.asarray(forecasts), 0).tolist() == expected


def test_band_starts_from_the_position_held() -> None:
    # Long already: a small positive forecast keeps it, a small negative one closes it.
    assert RULE.positions([0.001, 0.0005], start=1).tolist() == [1, 1]
    assert RULE.positions([-0.0005], start=1).tolist() == [0]
    assert RULE.positions([-0.004], start=1).tolist() == [-1]
    assert RULE.next_position(0.001, 1) == 1 and RULE.next_position(0.001, 0) == 0


def test_vectorised_band_matches_the_bar_by_bar_rule() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        forecasts = rng.normal(0.0, 0.003, int(rng.integers(1, 80)))
        start = int(rng.integers(-1, 2))
        assert np.array_equal(RULE.positions(forecasts, start), reference(RULE, forecasts, start))


def test_without_fees_the_band_is_the_sign_rule() -> None:
    rng = np.random.default_rng(1)
    forecasts = rng.normal(0.0, 0.01, 500)
    assert np.array_equal(PositionRule(fee_bps=0.0).positions(forecasts), np.sign(forecasts))


def test_band_trades_less_and_loses_less_on_noise_than_the_sign_rule() -> None:
    # Forecasts with no skill hovering around zero: the sign rule pays a fee on every flip.
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.01, 5000)
    forecasts = rng.normal(0.0, 0.0015, 5000)
    band = evaluate_model(
        forecasts, returns, returns, RULE.positions(forecasts), fee_bps=10.0, periods_per_year=8760
    )
    sign = evaluate_model(forecasts, returns, returns, fee_bps=10.0, periods_per_year=8760)
    assert band["turnover"] < sign["turnover"] / 10
    assert band["annual_cost"] < sign["annual_cost"] / 10
    assert band["total_return"] > sign["total_return"]


def test_bad_input_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="fee_bps"):
        PositionRule(fee_bps=-1.0)
    with pytest.raises(ValueError, match="margin"):
        PositionRule(margin=float("nan"))
    with pytest.raises(ValueError, match="start"):
        RULE.positions([0.1], start=2)
    with pytest.raises(ValueError, match="current"):
        RULE.next_position(0.1, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="forecasts"):
        RULE.positions([0.1, float("nan")])
    assert RULE.positions([]).size == 0
