"""The decision rules on known numbers: activation floor, fair promotion, noise-aware rollback."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brain_assets.decisions.policy import (
    SELECTION_TRIALS,
    SHARPE_SE,
    DecisionPolicy,
    assess_regression,
    deflated_sharpe,
    floor_verdict,
    gate_sharpe_error,
    promotion_verdict,
    rollback_assessment,
    selection_haircut,
)
from brain_assets.decisions.statistics import expected_max_sharpe

HOURLY = 8760.0


def bars(values: np.ndarray) -> pd.Series:
    index = pd.date_range("2024-01-01", periods=len(values), freq="h", tz="UTC")
    return pd.Series(values, index=index)


def test_policy_validates_its_settings() -> None:
    for bad in (
        {"promotion_confidence": 1.0},
        {"floor_confidence": 0.0},
        {"rollback_confidence": -0.5},
        {"min_compare_bars": 2},
        {"cooldown_bars": -1},
        {"tolerance": -0.1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DecisionPolicy(**bad)  # type: ignore[arg-type]
    seed = DecisionPolicy.seed()
    assert seed.promotion_confidence is None and seed.rollback_confidence is None
    assert not seed.has_floor and DecisionPolicy().has_floor


def test_sharpe_error_is_annualised_and_undefined_for_flat_returns() -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0, 0.01, 720)
    se = gate_sharpe_error(returns, HOURLY)
    # Normal returns near SR 0: SE ~ sqrt(1/T) per bar, sqrt(8760/720) ~ 3.5 annualised.
    assert se == pytest.approx(math.sqrt(HOURLY / 720), rel=0.05)
    assert gate_sharpe_error(np.zeros(50), HOURLY) is None
    assert gate_sharpe_error([0.01, 0.02], HOURLY) is None


def test_deflation_subtracts_the_expected_best_of_n_noise_sharpes() -> None:
    metrics = {"sharpe_ratio": 6.0, SHARPE_SE: 2.0, SELECTION_TRIALS: 3.0}
    haircut = expected_max_sharpe(3, 4.0)
    assert selection_haircut(2.0, 3) == pytest.approx(haircut)
    assert 0 < haircut < 2 * 2.0  # the best of three noise draws: about one SE
    assert deflated_sharpe(metrics) == pytest.approx(6.0 - haircut)
    # One model tried: nothing was selected, nothing is deducted.
    assert deflated_sharpe({"sharpe_ratio": 6.0, SHARPE_SE: 2.0}) == pytest.approx(6.0)
    assert deflated_sharpe({"sharpe_ratio": 6.0}) is None


def test_floor_needs_a_positive_score_and_a_deflated_lower_bound_above_zero() -> None:
    policy = DecisionPolicy(floor_confidence=0.9)
    z = stats.norm.ppf(0.9)
    good = {"composite_score": 0.3, "sharpe_ratio": 6.0, SHARPE_SE: 2.0, SELECTION_TRIALS: 1.0}
    verdict = floor_verdict(good, policy)
    assert verdict.passed
    assert verdict.details["sharpe_lower_bound"] == pytest.approx(6.0 - z * 2.0)
    # Same Sharpe, chosen among many models: the haircut pushes the bound below zero.
    many = floor_verdict({**good, SELECTION_TRIALS: 50.0}, policy)
    assert not many.passed and "lower bound" in many.rule
    assert not floor_verdict({**good, "composite_score": 0.0}, policy).passed
    missing = floor_verdict({"composite_score": 0.3, "sharpe_ratio": 6.0}, policy)
    assert not missing.passed and "standard error" in missing.rule
    # The floor switched off lets anything through, as the seed did.
    assert floor_verdict({"composite_score": -0.5}, DecisionPolicy.seed()).passed


def test_promotion_needs_evidence_on_common_bars() -> None:
    rng = np.random.default_rng(1)
    champion = bars(rng.normal(0.0, 0.01, 600))
    policy = DecisionPolicy(promotion_confidence=0.95, min_compare_bars=48)
    same = promotion_verdict(champion, champion, policy)
    assert not same.passed and same.details["p_value"] == pytest.approx(0.5)
    # Better by 20 bps a bar with 10 bps of independent noise: overwhelming evidence.
    better = champion + 0.002 + rng.normal(0.0, 0.001, 600)
    verdict = promotion_verdict(better, champion, policy)
    assert verdict.passed and verdict.details["p_value"] < 1e-6
    assert verdict.details["common_bars"] == 600
    # Only the bars both series cover count; too few of them decide nothing.
    short = promotion_verdict(better.iloc[-40:], champion, policy)
    assert not short.passed and short.details["common_bars"] == 40


def test_promotion_threshold_is_split_over_the_challengers() -> None:
    rng = np.random.default_rng(2)
    champion = bars(rng.normal(0.0, 0.01, 400))
    noise = rng.normal(0.0, 0.001, 400)
    policy = DecisionPolicy(promotion_confidence=0.95)
    # Find an edge whose p-value lies between 0.05 / 4 and 0.05.
    for edge in np.linspace(0.0, 0.0003, 301):
        p = promotion_verdict(champion + edge + noise, champion, policy).details["p_value"]
        if 0.0125 < p < 0.05:
            break
    else:  # pragma: no cover - the scan covers p from 0.5 down to ~0
        pytest.fail("no edge with a p-value between 0.0125 and 0.05")
    challenger = champion + edge + noise
    assert promotion_verdict(challenger, champion, policy, n_challengers=1).passed
    assert not promotion_verdict(challenger, champion, policy, n_challengers=4).passed


def test_seed_rollback_is_the_bare_threshold_rule() -> None:
    registration = {"sharpe_ratio": 2.0, "composite_score": 0.5}
    live = {"sharpe_ratio": 1.8, "composite_score": 0.5}
    seed = rollback_assessment(registration, registration, live, DecisionPolicy.seed())
    assert seed.regressed == assess_regression(registration, live).regressed is True


def test_rollback_needs_a_material_and_significant_drop_below_the_honest_baseline() -> None:
    policy = DecisionPolicy(rollback_confidence=0.95)
    registration = {
        "sharpe_ratio": 8.0,
        "composite_score": 0.6,
        SHARPE_SE: 3.5,
        SELECTION_TRIALS: 2.0,
    }
    baseline = 8.0 - selection_haircut(3.5, 2)
    # A live Sharpe 10% below the deflated baseline: material, but well inside the noise.
    mild = {"sharpe_ratio": 0.9 * baseline, SHARPE_SE: 7.0, "composite_score": 0.5}
    result = rollback_assessment(registration, registration, mild, policy)
    assert result.window["material"] and not result.window["significant"] and not result.regressed
    assert result.window["baseline_sharpe"] == pytest.approx(baseline)
    # The same drop under the seed's rule rolls back.
    assert rollback_assessment(registration, registration, mild, DecisionPolicy.seed()).regressed
    # A live Sharpe of -12 over a week: both.
    crash = {"sharpe_ratio": -12.0, SHARPE_SE: 7.0, "composite_score": -0.4}
    result = rollback_assessment(registration, registration, crash, policy)
    z = (baseline + 12.0) / math.hypot(3.5, 7.0)
    assert result.regressed and result.window["z_stat"] == pytest.approx(z)
    assert result.p_value == pytest.approx(stats.norm.sf(z))
    # Without standard errors (a version registered before they were recorded) there is no
    # test: the seed's rule still protects, and the verdict says which rule decided.
    legacy = {"sharpe_ratio": 8.0}
    blind = rollback_assessment(legacy, legacy, {"sharpe_ratio": -12.0}, policy)
    assert blind.regressed and "standard error" in blind.rule
    assert not rollback_assessment(legacy, legacy, {"sharpe_ratio": 7.9}, policy).regressed
    with pytest.raises(ValueError, match="rollback_threshold"):
        rollback_assessment(registration, registration, crash, policy, threshold=0.0)
