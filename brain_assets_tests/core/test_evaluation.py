"""Tests of brain_assets.evaluation against hand computations on small fixed arrays.

The expected numbers are worked out by hand in the comments (or with plain arithmetic in the test),
never by calling the functions under test, so a wrong formula cannot agree with itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brain_assets.evaluation import (
    COMPOSITE_WEIGHTS,
    METRIC_KEYS,
    ComprehensiveEvaluation,
    composite_score,
    equity_curve,
    evaluate_model,
    generate_evaluation_report,
    strategy_returns,
)
from brain_assets.evaluation import metrics as m

# A five-bar sample. Positions = sign(predictions) = [+1, -1, +1, +1, -1], so with no fee the
# strategy's returns are position * return = [0.02, 0.01, -0.03, 0.04, -0.01].
PREDICTIONS = [0.01, -0.02, 0.03, 0.01, -0.01]
ACTUALS = [0.02, -0.01, -0.03, 0.04, 0.01]
NET = [0.02, 0.01, -0.03, 0.04, -0.01]
# mean = 0.03 / 5 = 0.006; deviations 0.014, 0.004, -0.036, 0.034, -0.016;
# squared: 0.000196 + 0.000016 + 0.001296 + 0.001156 + 0.000256 = 0.00292; / (5 - 1) = 0.00073.
MEAN = 0.006
SAMPLE_VARIANCE = 0.00073
# Downside: min(r, 0)^2 = 0.0009 and 0.0001 on the two losing bars, 0 elsewhere; mean over ALL
# five bars = 0.001 / 5 = 0.0002.
DOWNSIDE_MEAN_SQUARE = 0.0002
GROWTH = 1.02 * 1.01 * 0.97 * 1.04 * 0.99
# Equity 1.02, 1.0302, 0.999294, 1.03926576, 1.0288731...: the worst fall from a running peak is
# the -3 % bar (0.999294 / 1.0302 - 1 = -0.03); the final -1 % bar only falls 1 % from its peak.
MAX_DRAWDOWN = -0.03


def daily_index(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC")


def hourly_index(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")


def evaluate_sample(**kwargs: Any) -> dict[str, float | None]:
    kwargs.setdefault("fee_bps", 0.0)
    return ComprehensiveEvaluation().evaluate_model(PREDICTIONS, ACTUALS, ACTUALS, **kwargs)


# --- strategy metrics -----------------------------------------------------------------------------


def test_sharpe_uses_sample_std_and_sqrt_365_for_daily_bars() -> None:
    result = evaluate_sample(index=daily_index(5))

    assert result["periods_per_year"] == pytest.approx(365.0)
    expected = MEAN / math.sqrt(SAMPLE_VARIANCE) * math.sqrt(365)
    assert result["sharpe_ratio"] == pytest.approx(expected, rel=1e-12)
    assert result["annualized_volatility"] == pytest.approx(
        math.sqrt(SAMPLE_VARIANCE) * math.sqrt(365), rel=1e-12
    )


def test_sharpe_uses_sqrt_8760_for_hourly_bars_inferred_from_a_series_index() -> None:
    index = hourly_index(5)
    predictions = pd.Series(PREDICTIONS, index=index)
    actuals = pd.Series(ACTUALS, index=index)

    result = evaluate_model(predictions, actuals, actuals, fee_bps=0.0)

    assert result["periods_per_year"] == pytest.approx(8760.0)
    expected = MEAN / math.sqrt(SAMPLE_VARIANCE) * math.sqrt(8760)
    assert result["sharpe_ratio"] == pytest.approx(expected, rel=1e-12)


def test_explicit_periods_per_year_wins_over_the_index() -> None:
    result = evaluate_sample(index=hourly_index(5), periods_per_year=52)

    assert result["periods_per_year"] == 52.0
    expected = MEAN / math.sqrt(SAMPLE_VARIANCE) * math.sqrt(52)
    assert result["sharpe_ratio"] == pytest.approx(expected, rel=1e-12)


def test_sortino_downside_deviation_averages_over_all_observations() -> None:
    result = evaluate_sample(periods_per_year=365)

    expected = MEAN / math.sqrt(DOWNSIDE_MEAN_SQUARE) * math.sqrt(365)
    assert result["sortino_ratio"] == pytest.approx(expected, rel=1e-12)
    # Averaging over the two losing bars only would give a larger deviation and a smaller ratio.
    losers_only = MEAN / math.sqrt(0.001 / 2) * math.sqrt(365)
    assert result["sortino_ratio"] != pytest.approx(losers_only)


def test_total_return_cagr_drawdown_and_calmar() -> None:
    result = evaluate_sample(periods_per_year=365, min_annualised_days=0)

    assert result["total_return"] == pytest.approx(GROWTH - 1.0, rel=1e-12)
    cagr = GROWTH ** (365 / 5) - 1.0  # years = n / periods_per_year = 5 / 365
    assert result["annualized_return"] == pytest.approx(cagr, rel=1e-9)
    assert result["max_drawdown"] == pytest.approx(MAX_DRAWDOWN, rel=1e-12)
    assert result["max_drawdown"] is not None
    assert result["max_drawdown"] < 0
    assert result["calmar_ratio"] == pytest.approx(cagr / 0.03, rel=1e-9)


def test_max_drawdown_compounds_rather_than_summing_returns() -> None:
    # Two -50 % bars after a gain: compounded equity 1.1, 0.55, 0.275 falls 75 % from its peak;
    # summing returns would claim a 100 % loss.
    result = evaluate_model(
        [1, 1, 1], [0.1, -0.5, -0.5], [0.1, -0.5, -0.5], periods_per_year=365, fee_bps=0.0
    )

    assert result["max_drawdown"] == pytest.approx(0.275 / 1.1 - 1.0)
    assert result["max_drawdown"] == pytest.approx(-0.75)


def test_max_drawdown_has_no_starting_point_before_the_first_bar() -> None:
    # Equity 0.9, 0.945, 0.9261: the first bar's loss has no earlier peak, so the worst fall is
    # 0.9261 / 0.945 - 1 = -0.02. Prepending a starting equity of 1 would report -0.1 instead.
    net = np.array([-0.1, 0.05, -0.02])

    assert m.max_drawdown(net) == pytest.approx(0.9261 / 0.945 - 1.0)
    assert m.max_drawdown(net, include_start=True) == pytest.approx(-0.1)


def test_win_rate_profit_factor_and_trade_counts() -> None:
    result = evaluate_sample(periods_per_year=365)

    assert result["win_rate"] == pytest.approx(3 / 5)  # 0.02, 0.01, 0.04 win
    assert result["profit_factor"] == pytest.approx(0.07 / 0.04)
    # Positions 0 -> +1 -> -1 -> +1 -> +1 -> -1: four changes, |changes| 1 + 2 + 2 + 0 + 2 = 7.
    assert result["num_trades"] == 4.0
    assert result["turnover"] == pytest.approx(7 / 5)
    assert result["exposure"] == 1.0
    assert result["n_observations"] == 5.0


def test_fee_charges_each_unit_traded_and_a_flip_pays_twice() -> None:
    # Positions +1, -1, -1, 0 on zero returns: the strategy only pays fees. Units traded per bar
    # are 1 (entry), 2 (flip), 0 (hold) and 1 (exit), at 10 bps = 0.001 per unit.
    predictions = [0.5, -0.5, -0.2, 0.0]
    zeros = [0.0, 0.0, 0.0, 0.0]

    net = strategy_returns(predictions, zeros, fee_bps=10.0)
    result = evaluate_model(predictions, zeros, zeros, periods_per_year=365, fee_bps=10.0)

    assert net.tolist() == pytest.approx([-0.001, -0.002, 0.0, -0.001])
    assert result["total_return"] == pytest.approx(0.999 * 0.998 * 1.0 * 0.999 - 1.0)
    assert result["num_trades"] == 3.0
    assert result["turnover"] == pytest.approx(4 / 4)
    assert result["exposure"] == pytest.approx(3 / 4)


def test_fee_reduces_the_sample_returns() -> None:
    # Same five bars at 10 bps: units traded 1, 2, 2, 0, 2.
    net = strategy_returns(PREDICTIONS, ACTUALS, fee_bps=10.0)

    assert net.tolist() == pytest.approx([0.019, 0.008, -0.032, 0.04, -0.012])


def test_trades_override_the_sign_strategy() -> None:
    # Positions 0.5, 0.5, -0.25, 0 trade 0.5, 0, 0.75 and 0.25 units; at 10 bps the net returns are
    # 0.01 - 0.0005, -0.005, -0.01 - 0.00075 and -0.00025.
    returns = [0.02, -0.01, 0.04, 0.03]
    trades = [0.5, 0.5, -0.25, 0.0]

    net = strategy_returns([9.0, 9.0, 9.0, 9.0], returns, trades, fee_bps=10.0)
    result = evaluate_model(
        [0.01, 0.02, 0.03, 0.04], returns, returns, trades, periods_per_year=365, fee_bps=10.0
    )

    assert net.tolist() == pytest.approx([0.0095, -0.005, -0.01075, -0.00025])
    assert result["num_trades"] == 3.0
    assert result["turnover"] == pytest.approx(1.5 / 4)
    assert result["exposure"] == pytest.approx(3 / 4)
    assert result["win_rate"] == pytest.approx(1 / 3)  # of the three bars in the market


def test_equity_curve_is_compounded_and_aligned_to_the_index() -> None:
    index = daily_index(5)

    curve = equity_curve(PREDICTIONS, ACTUALS, fee_bps=0.0, index=index)

    assert isinstance(curve, pd.Series)
    assert curve.index.equals(index)
    assert curve.tolist() == pytest.approx([1.02, 1.0302, 0.999294, 1.03926576, GROWTH])


# --- prediction quality ---------------------------------------------------------------------------


def test_prediction_errors_r2_and_directional_accuracy() -> None:
    result = evaluate_sample(periods_per_year=365)

    # Errors prediction - actual: -0.01, -0.01, 0.06, -0.03, -0.02.
    assert result["rmse"] == pytest.approx(math.sqrt(0.0051 / 5))
    assert result["mae"] == pytest.approx(0.13 / 5)
    # SS_res = 0.0051; the actuals have mean 0.006 and SS_tot = 0.00292.
    assert result["r2"] == pytest.approx(1.0 - 0.0051 / 0.00292)
    # Signs agree on bars 1, 2 and 4 of 5.
    assert result["directional_accuracy"] == pytest.approx(3 / 5)


def test_directional_accuracy_ignores_bars_without_a_move() -> None:
    result = evaluate_model(
        [0.1, -0.1, 0.1, 0.0], [0.2, 0.0, -0.1, 0.3], [0.2, 0.0, -0.1, 0.3], periods_per_year=365
    )

    # Bars with a move: 0 (hit), 2 (miss), 3 (a flat forecast calls nothing: miss).
    assert result["directional_accuracy"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("predictions", "actuals"),
    [
        (PREDICTIONS, ACTUALS),
        ([1.0, 2.0, 2.0, 3.0, 5.0, 4.0], [0.3, 0.1, 0.1, 0.2, 0.9, -0.4]),  # ties on both sides
    ],
)
def test_information_coefficient_equals_scipy_spearman(
    predictions: list[float], actuals: list[float]
) -> None:
    result = evaluate_model(predictions, actuals, actuals, periods_per_year=365)

    expected = float(stats.spearmanr(predictions, actuals).statistic)
    n = len(predictions)
    assert result["information_coefficient"] == pytest.approx(expected, rel=1e-12)
    assert result["information_coefficient_tstat"] == pytest.approx(
        expected * math.sqrt((n - 2) / (1 - expected**2)), rel=1e-12
    )


# --- undefined metrics ----------------------------------------------------------------------------


def assert_clean(result: dict[str, float | None]) -> None:
    """Every value is None or a finite Python float, and the keys are the documented ones."""
    assert tuple(result) == METRIC_KEYS
    for key, value in result.items():
        assert value is None or (type(value) is float and math.isfinite(value)), key


def test_constant_predictions_leave_the_ic_undefined() -> None:
    result = evaluate_model([0.01] * 5, ACTUALS, ACTUALS, periods_per_year=365, fee_bps=0.0)

    assert_clean(result)
    assert result["information_coefficient"] is None
    assert result["information_coefficient_tstat"] is None
    assert result["r2"] is not None


def test_a_perfect_rank_correlation_has_no_finite_tstat() -> None:
    result = evaluate_model(
        [1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], [0.1, -0.2, 0.3, 0.4], periods_per_year=365
    )

    assert result["information_coefficient"] == pytest.approx(1.0)
    assert result["information_coefficient_tstat"] is None


def test_no_losing_bar_leaves_profit_factor_sortino_and_calmar_undefined() -> None:
    rising = [0.01, 0.02, 0.03, 0.01]

    result = evaluate_model([1, 1, 1, 1], rising, rising, periods_per_year=365, fee_bps=0.0)

    assert_clean(result)
    assert result["profit_factor"] is None
    assert result["sortino_ratio"] is None
    assert result["max_drawdown"] == 0.0
    assert result["calmar_ratio"] is None
    assert result["sharpe_ratio"] is not None


def test_constant_net_returns_leave_the_sharpe_undefined() -> None:
    flat = [0.1, 0.1, 0.1, 0.1]  # std of a constant series: exactly 0, not ~1e-17

    result = evaluate_model([1, 1, 1, 1], flat, flat, periods_per_year=365, fee_bps=0.0)

    assert_clean(result)
    assert result["sharpe_ratio"] is None
    assert result["annualized_volatility"] == 0.0
    assert result["r2"] is None  # constant actuals: SS_tot = 0


def test_never_trading_leaves_ratios_undefined_but_the_score_finite() -> None:
    result = evaluate_model([0.0] * 4, ACTUALS[:4], ACTUALS[:4], periods_per_year=365)

    assert_clean(result)
    for key in (
        "sharpe_ratio",
        "sortino_ratio",
        "calmar_ratio",
        "win_rate",
        "profit_factor",
        "information_coefficient",
    ):
        assert result[key] is None, key
    assert result["total_return"] == 0.0
    assert result["num_trades"] == 0.0
    assert result["exposure"] == 0.0
    assert result["directional_accuracy"] == 0.0
    assert result["composite_score"] == pytest.approx(0.20 * math.tanh(-1 / 0.1))


def test_no_moves_leave_directional_accuracy_undefined() -> None:
    zeros = [0.0] * 4

    result = evaluate_model([0.1, -0.1, 0.2, 0.3], zeros, zeros, periods_per_year=365)

    assert_clean(result)
    assert result["directional_accuracy"] is None


def test_growth_is_annualised_only_from_a_sample_that_can_carry_it() -> None:
    """A month of hourly bars at +0.05% a bar is +43% in the month and would be +7,800% a year:
    no CAGR or Calmar from fewer than 90 days, and the report says why."""
    n = 24 * 30
    returns = [0.0005, 0.0004, -0.0003] * (n // 3)
    result = evaluate_model([1] * n, returns, returns, index=hourly_index(n), fee_bps=0.0)
    assert result["sample_days"] == pytest.approx(30.0, rel=1e-3)
    assert result["total_return"] is not None and result["sharpe_ratio"] is not None
    assert result["annualized_return"] is None and result["calmar_ratio"] is None
    report = generate_evaluation_report(result)
    assert "| `annualized_return` | — (30 days, under 90) |" in report
    assert "| `calmar_ratio` | — (30 days, under 90) |" in report
    # A quarter of the same bars is enough.
    n = 24 * 91
    returns = [0.0005, 0.0004, -0.0003] * (n // 3)
    longer = evaluate_model([1] * n, returns, returns, index=hourly_index(n), fee_bps=0.0)
    assert longer["sample_days"] is not None and longer["sample_days"] >= 90
    growth = math.prod(1 + r for r in returns)
    ppy = longer["periods_per_year"]
    assert ppy is not None
    expected = growth ** (ppy / n) - 1
    assert longer["annualized_return"] == pytest.approx(expected, rel=1e-6)


def test_an_annualisation_overflow_is_none_not_inf() -> None:
    # Compounding three hours of +10..30 % over 8760 hours overflows a float.
    returns = [0.1, 0.2, 0.3]

    result = evaluate_model(
        [1, 1, 1], returns, returns, index=hourly_index(3), fee_bps=0.0, min_annualised_days=0
    )

    assert_clean(result)
    assert result["annualized_return"] is None
    assert result["calmar_ratio"] is None


# --- composite score ------------------------------------------------------------------------------


def test_composite_score_is_higher_for_a_perfect_predictor_than_a_random_one() -> None:
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, 500)
    noise = rng.normal(0.0, 0.01, 500)
    index = hourly_index(500)

    perfect = evaluate_model(returns, returns, returns, index=index)
    random = evaluate_model(noise, returns, returns, index=index)

    assert perfect["composite_score"] is not None
    assert random["composite_score"] is not None
    assert -1.0 <= random["composite_score"] < perfect["composite_score"] <= 1.0
    assert perfect["composite_score"] > 0.75  # near the 0.85 ceiling


def test_composite_score_stays_bounded_and_finite() -> None:
    assert sum(COMPOSITE_WEIGHTS.values()) == pytest.approx(1.0)
    assert composite_score(1e12, 1.0, 1.0, 0.0) <= 1.0
    assert composite_score(-1e12, -1.0, 0.0, -1.0) == pytest.approx(-1.0)
    assert composite_score(None, None, None, None) == 0.0
    assert math.isfinite(composite_score(math.inf, math.nan, None, -math.inf))


# --- validation -----------------------------------------------------------------------------------


def test_mismatched_lengths_name_the_arguments() -> None:
    with pytest.raises(ValueError, match=r"predictions=5.*actuals=4"):
        evaluate_model(PREDICTIONS, ACTUALS[:4], ACTUALS, periods_per_year=365)
    with pytest.raises(ValueError, match=r"trades=3"):
        evaluate_model(PREDICTIONS, ACTUALS, ACTUALS, [1, 0, 1], periods_per_year=365)


@pytest.mark.parametrize("argument", ["predictions", "actuals", "returns", "trades"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_name_the_argument(argument: str, bad: float) -> None:
    inputs: dict[str, list[float]] = {
        "predictions": list(PREDICTIONS),
        "actuals": list(ACTUALS),
        "returns": list(ACTUALS),
        "trades": [1.0, -1.0, 0.0, 1.0, 0.5],
    }
    inputs[argument][2] = bad

    with pytest.raises(ValueError, match=rf"^{argument}: .*NaN or infinite"):
        evaluate_model(
            inputs["predictions"],
            inputs["actuals"],
            inputs["returns"],
            inputs["trades"],
            periods_per_year=365,
        )


def test_fewer_than_three_observations_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 3 observations"):
        evaluate_model([0.1, 0.2], [0.1, 0.2], [0.1, 0.2], periods_per_year=365)


def test_a_negative_fee_is_refused() -> None:
    with pytest.raises(ValueError, match="fee_bps"):
        evaluate_sample(periods_per_year=365, fee_bps=-1.0)


@pytest.mark.parametrize("trades", [[1.5, 0, 0, 0, 0], [0, 0, -1.01, 0, 0]])
def test_trades_outside_the_unit_interval_are_refused(trades: list[float]) -> None:
    with pytest.raises(ValueError, match=r"trades: .*\[-1, 1\]"):
        evaluate_model(PREDICTIONS, ACTUALS, ACTUALS, trades, periods_per_year=365)


@pytest.mark.parametrize("periods", [0, -365, math.nan, math.inf])
def test_a_non_positive_periods_per_year_is_refused(periods: float) -> None:
    with pytest.raises(ValueError, match="periods_per_year"):
        evaluate_sample(periods_per_year=periods)


def test_periods_per_year_or_a_timestamp_index_is_required() -> None:
    with pytest.raises(ValueError, match="periods_per_year or a timestamp index is needed"):
        evaluate_sample()
    with pytest.raises(ValueError, match="periods_per_year or a timestamp index is needed"):
        evaluate_sample(index=[10, 11, 12, 13, 14])


def test_an_index_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="index: has 4 entries"):
        evaluate_sample(index=daily_index(4))


def test_series_with_different_indexes_are_refused() -> None:
    predictions = pd.Series(PREDICTIONS, index=daily_index(5))
    actuals = pd.Series(ACTUALS, index=daily_index(6)[1:])

    with pytest.raises(ValueError, match="predictions and actuals"):
        evaluate_model(predictions, actuals, ACTUALS)


def test_numpy_lists_and_series_give_the_same_metrics() -> None:
    index = daily_index(5)
    from_lists = evaluate_model(PREDICTIONS, ACTUALS, ACTUALS, index=index)
    from_arrays = evaluate_model(
        np.array(PREDICTIONS), np.array(ACTUALS), np.array(ACTUALS), index=list(index.astype(str))
    )
    from_series = evaluate_model(
        pd.Series(PREDICTIONS, index=index),
        pd.Series(ACTUALS, index=index),
        pd.Series(ACTUALS, index=index),
    )

    assert from_lists == from_arrays == from_series


# --- storing --------------------------------------------------------------------------------------


class RecordingBrain:
    """A collaborator that keeps what store_model_metrics was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def store_model_metrics(
        self,
        model_id: str,
        symbol: str,
        metrics: dict[str, float],
        evaluation_date: Any = None,
        regime: str | None = None,
        periods_per_year: float | None = None,
    ) -> None:
        self.calls.append(
            {
                "model_id": model_id,
                "symbol": symbol,
                "metrics": metrics,
                "evaluation_date": evaluation_date,
                "regime": regime,
                "periods_per_year": periods_per_year,
            }
        )


def test_store_evaluation_passes_only_finite_numbers_and_the_annualisation() -> None:
    brain = RecordingBrain()
    evaluation = ComprehensiveEvaluation(brain=brain)
    result = evaluation.evaluate_model([0.01] * 5, ACTUALS, ACTUALS, index=daily_index(5))
    assert result["information_coefficient"] is None  # so there is something to drop

    stored = evaluation.store_evaluation(
        "lstm-1", "BTCUSDT", result, evaluation_date="2024-01-06", regime="high"
    )

    assert len(brain.calls) == 1
    call = brain.calls[0]
    assert call["model_id"] == "lstm-1"
    assert call["symbol"] == "BTCUSDT"
    assert call["evaluation_date"] == "2024-01-06"
    assert call["regime"] == "high"
    assert call["periods_per_year"] == pytest.approx(365.0)
    sent = call["metrics"]
    assert sent == stored
    assert all(type(value) is float and math.isfinite(value) for value in sent.values())
    assert "information_coefficient" not in sent
    assert sent["n_observations"] == 5.0
    assert sent["periods_per_year"] == pytest.approx(365.0)
    assert set(sent) == {key for key, value in result.items() if value is not None}


def test_store_evaluation_without_a_brain_is_refused() -> None:
    result = evaluate_sample(periods_per_year=365)

    with pytest.raises(ValueError, match="brain"):
        ComprehensiveEvaluation().store_evaluation("m", "BTCUSDT", result)


# --- report ---------------------------------------------------------------------------------------


def test_report_lists_every_metric_with_percentages_and_na() -> None:
    result = evaluate_model([0.01] * 5, ACTUALS, ACTUALS, periods_per_year=365, fee_bps=0.0)
    assert result["information_coefficient"] is None

    report = generate_evaluation_report(result, title="BTCUSDT lstm-1")

    assert report.startswith("# BTCUSDT lstm-1")
    for key in METRIC_KEYS:
        assert f"`{key}`" in report, key
    assert "—" in report
    # Always long: total return = prod(1 + actuals) - 1.
    total = 1.02 * 0.99 * 0.97 * 1.04 * 1.01 - 1.0
    assert f"| `total_return` | {total * 100:.2f}% |" in report
    assert "| `num_trades` | 1 |" in report
    for heading in ("Prediction quality", "Strategy (net of fees)", "Score"):
        assert heading in report


def test_report_puts_regimes_in_volatility_order() -> None:
    overall = evaluate_sample(periods_per_year=365)
    per_regime: dict[str, dict[str, float | None]] = {
        "extreme": {"sharpe_ratio": -0.5, "max_drawdown": -0.2},
        "low": {"sharpe_ratio": 1.25, "max_drawdown": -0.01},
        "high": {"sharpe_ratio": None, "max_drawdown": -0.1},
    }

    report = ComprehensiveEvaluation().generate_evaluation_report(overall, per_regime=per_regime)

    assert "| Metric | low | high | extreme |" in report
    assert "| `sharpe_ratio` | 1.2500 | — | -0.5000 |" in report
    assert "| `max_drawdown` | -1.00% | -10.00% | -20.00% |" in report


def test_the_package_exports_the_evaluator_lazily() -> None:
    import brain_assets

    assert brain_assets.ComprehensiveEvaluation is ComprehensiveEvaluation
