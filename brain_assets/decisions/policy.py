"""The rules that decide which model trades a symbol: numbers in, verdicts out (no SQL).

Three decisions, each with the evidence it needs written next to the verdict:

* **Activation floor.** A version may trade only when its out-of-sample skill net of costs is
  credibly positive: composite score above ``floor_min_composite``, enough bars in the market to
  judge (``floor_min_bars_in_market``) and the one-sided lower confidence bound of its
  *deflated* Sharpe ratio above zero. The Sharpe ratio is that of the walk-forward record, the
  positions through the no-trade band; deflated means minus the best Sharpe ratio that
  ``selection_trials`` skill-less models would reach by chance on the same bars (Bailey & López
  de Prado's expected maximum), and ``selection_trials`` counts every version ever tried for the
  symbol: each weekly retrain is another draw, and a fixed bar is cleared by luck in the end when
  the draws are not counted. Standing aside (0) and holding, on the same bars net of costs, are
  the benchmarks written into every verdict.
* **Fair promotion.** A challenger is compared with the champion on the same bars: the
  challenger's test segment, restricted to bars after the champion's training window, so that
  neither model was fitted on them. The per-bar net strategy returns are compared with the paired
  HAC test (Diebold-Mariano with the Harvey-Leybourne-Newbold correction). The challenger wins
  only when the one-sided p-value is below ``(1 - promotion_confidence) / n_challengers``
  (Bonferroni over the models tried in one retrain). The champion was selected on some of those
  bars, which favours it: a challenger has to beat it clearly, never the other way round.
* **Noise-aware rollback.** A live model is taken out when its record since activation credibly
  loses money (a time-uniform confidence sequence at ``monitor_confidence``, valid however often
  it is checked: decisions.sequential), or, for sudden breaks, when its live window's Sharpe ratio
  is both materially (more than the rollback threshold, 5% by default) and significantly
  (one-sided p-value below ``1 - rollback_confidence``) below its honest baseline, the deflated
  out-of-sample Sharpe ratio, or, with ``drift_action="stand_aside"``, when its inputs drifted
  beyond ``drift_psi_threshold`` (features.drift). It returns to an earlier version only when
  that one is credibly good on the same recent bars; otherwise the symbol stands aside.

``DecisionPolicy.seed()`` turns all three off: promotion by composite score alone, every version
allowed to trade, rollback on a bare 5% drop of any monitored metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from brain_assets.decisions import statistics
from brain_assets.decisions.sequential import cumulative_loss_test
from brain_assets.decisions.statistics import expected_max_sharpe, paired_test
from brain_assets.defaults import ROLLBACK_THRESHOLD
from brain_assets.features.drift import DEFAULT_PSI_THRESHOLD

HIGHER_IS_BETTER = frozenset(
    {
        "composite_score",
        "sharpe_ratio",
        "sortino_ratio",
        "calmar_ratio",
        "directional_accuracy",
        "information_coefficient",
        "total_return",
        "annualized_return",
        "win_rate",
        "profit_factor",
        "r2",
    }
)
LOWER_IS_BETTER = frozenset({"rmse", "mae", "annualized_volatility", "max_drawdown"})
"""max_drawdown is stored as a negative fraction; its magnitude is what must stay small."""
FLOORS: dict[str, float] = {
    "sharpe_ratio": 0.5,
    "sortino_ratio": 0.5,
    "calmar_ratio": 0.5,
    "profit_factor": 0.1,
    "composite_score": 0.1,
}
"""Scales below which a baseline counts as zero when a relative change is taken, in each metric's
units: a baseline Sharpe ratio of 0.01 must not turn a drop to 0 into a 100% degradation."""
DEFAULT_FLOOR = 0.01
DEFAULT_MONITORED = ("composite_score", "sharpe_ratio")
"""Directional accuracy is left out by default: it sits near 0.5, where a relative change says
little; add it (or any metric of known direction) through ``monitored``."""

SHARPE_SE = "sharpe_standard_error"
"""Metric key: the annualised Mertens standard error of the Sharpe ratio over the same bars."""
APPRAISAL_SE = "appraisal_ratio_standard_error"
"""Metric key: the annualised standard error of the appraisal ratio (the Sharpe ratio of the
strategy's returns less their beta to holding)."""
SELECTION_TRIALS = "selection_trials"
"""Metric key: how many versions had been tried for the symbol when this one was registered (its
own retrain's included): the N of the deflated Sharpe ratio."""
RECORD_BARS = "record_bars"
RECORD_SUM = "record_sum"
RECORD_STD = "record_std"
"""Live metric keys: the per-bar net returns since the version's activation (count, sum and
sample standard deviation), what the cumulative test judges."""
INPUT_MAX_PSI = "input_max_psi"
INPUT_DRIFTED = "input_drifted_features"
"""Live metric keys: the largest Population Stability Index of the live window's features, and
how many features exceed the drift threshold."""
DRIFT_ACTIONS = ("flag", "stand_aside")

TRIGGERS = ("metric_regression", "cumulative_loss", "input_drift")
"""Why monitoring takes a version out: its live window broke down, its record since activation
credibly loses, or its inputs drifted (``details.trigger`` of the deactivation row)."""


@dataclass(frozen=True)
class DecisionPolicy:
    """Confidence levels and limits of the three decisions; None switches a rule off."""

    promotion_confidence: float | None = 0.99
    """One-sided confidence that the challenger beats the champion on common bars; None: the
    seed's rule (the higher composite score wins, within ``tolerance``). 0.99 because the test
    is repeated at every retrain: at 0.95 with two challengers a week, the replay of a market
    that never changes promoted a lucky challenger in one of five half-years and rolled it back
    two weeks later (bench/replay_bench.py)."""
    min_compare_bars: int = 48
    """Fewest common bars on which champion and challenger can be compared at all."""
    floor_min_composite: float | None = 0.0
    """A version trades only with a composite score above this; None: no score floor."""
    floor_confidence: float | None = 0.95
    """Confidence of the deflated Sharpe ratio's lower bound that must exceed 0; None: off.

    With every try counted and the walk-forward record (thousands of bars), 0.95 is within reach
    of a real edge: on 2,200 hourly out-of-sample bars the first retrain's two models need an
    annualised Sharpe ratio above about 4.5 net of costs, which the strong-edge replay clears and
    a random walk does not. At 0.9, in a development run with four folds, real daily BTC let a
    forest trade in 2015 on 437 out-of-sample bars, one fold of them the 2013 bubble, and it
    lost 14% in six weeks (bench/README.md, "Real exchange histories")."""
    floor_beyond_hold: bool = True
    """Also require credible skill beyond holding: the appraisal ratio (the Sharpe ratio of the
    strategy's returns less their beta to holding the symbol), deflated and bounded like the
    Sharpe ratio. A model long a rising market half the time beats standing aside without any
    timing skill; on crypto's trending histories that beta passed for skill and lost it all in
    the next bear market."""
    floor_min_bars_in_market: int = 100
    """Fewest out-of-sample bars with a position for the Sharpe ratio test to count: a Sharpe
    ratio from a handful of trades says nothing, whatever its standard error claims."""
    rollback_confidence: float | None = 0.99
    """One-sided confidence that the live window's Sharpe ratio is below the baseline (the window
    test, for sudden breaks); None: the seed's rule (any monitored metric worse than its
    activation figure by more than the threshold). 0.99 because the test is repeated every check
    on two weeks alone: at 0.95 a strong-edge model was stood aside for three weeks after one bad
    fortnight, nine weeks into a record that was credibly good (bench/replay_bench.py). Slow
    losses are the cumulative test's to find; a market that really turned is still taken out
    within a step or two."""
    monitor_confidence: float | None = 0.9
    """Confidence of the cumulative test: a version whose record since activation earns exactly
    nothing is taken out with probability at most 1 - this over its whole life (measured: about
    a quarter of that), one with skill less often still; None: no cumulative test. A false alarm
    costs little (standing aside also earns nothing); a loser kept costs its losses."""
    cooldown_bars: int = 168
    """Bars after an automatic activation change during which the window test takes no version
    out (a week of hourly bars): the model just chosen gets a fair hearing. The cumulative test
    needs none: it is valid at every look."""
    drift_psi_threshold: float = DEFAULT_PSI_THRESHOLD
    """A feature whose Population Stability Index over the live window exceeds this has drifted
    (0.25: a large shift by the usual convention)."""
    drift_action: str = "flag"
    """``flag``: a drifted version is reported (warning check, alert) and keeps trading until a
    retrain; ``stand_aside``: it is taken out like a regressed one."""
    tolerance: float = 0.0
    """The seed's promotion tolerance, used only when ``promotion_confidence`` is None."""

    def __post_init__(self) -> None:
        for name in (
            "promotion_confidence",
            "floor_confidence",
            "rollback_confidence",
            "monitor_confidence",
        ):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, float | int) and 0 < value < 1):
                raise ValueError(f"{name} must be in (0, 1) or None, got {value!r}")
        for name in ("min_compare_bars", "cooldown_bars", "floor_min_bars_in_market"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.min_compare_bars < 3:
            raise ValueError(f"min_compare_bars must be at least 3, got {self.min_compare_bars}")
        if self.floor_min_composite is not None and not math.isfinite(self.floor_min_composite):
            raise ValueError("floor_min_composite must be finite or None")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        threshold = self.drift_psi_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValueError(f"drift_psi_threshold must be a number, got {threshold!r}")
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"drift_psi_threshold must be > 0, got {threshold!r}")
        if self.drift_action not in DRIFT_ACTIONS:
            raise ValueError(
                f"drift_action must be one of {', '.join(DRIFT_ACTIONS)}, got {self.drift_action!r}"
            )

    @classmethod
    def seed(cls, *, tolerance: float = 0.0) -> DecisionPolicy:
        """The platform's original rules: score comparison, no floor, no significance."""
        return cls(
            promotion_confidence=None,
            floor_min_composite=None,
            floor_confidence=None,
            floor_min_bars_in_market=0,
            rollback_confidence=None,
            monitor_confidence=None,
            cooldown_bars=0,
            tolerance=tolerance,
        )

    @property
    def has_floor(self) -> bool:
        return self.floor_min_composite is not None or self.floor_confidence is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """A decision and the numbers behind it (what the activation history records)."""

    passed: bool
    rule: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "rule": self.rule, **self.details}


@dataclass(frozen=True)
class Assessment:
    """Whether a live version regressed, and the numbers behind it (rollback_assessment)."""

    regressed: bool
    threshold: float
    comparisons: list[dict[str, Any]]
    """Each monitored metric: ``metric``, ``baseline``, ``new``, ``relative_degradation``."""
    worst: dict[str, Any] | None = None
    trigger: str | None = None
    """One of :data:`TRIGGERS` when it regressed (None when it did not)."""
    rule: str | None = None
    p_value: float | None = None
    window: dict[str, Any] = field(default_factory=dict)
    """The window test's figures: ``baseline_sharpe``, ``live_sharpe``, their errors,
    ``material``, ``significant``, ``z_stat``, ``confidence``."""
    cumulative: dict[str, Any] | None = None
    """The record since activation under the time-uniform test (None without a record)."""
    drift: dict[str, Any] | None = None
    """The inputs' drift (None when monitoring did not measure it)."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Assessment:
        named = {f.name for f in fields(cls)} - {"window"}
        return cls(
            **{k: v for k, v in values.items() if k in named},
            window={k: v for k, v in values.items() if k not in named},
        )

    def to_json(self) -> dict[str, Any]:
        """One flat document, as activation rows and asset metadata record it."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "window"}
        return {**flat, **self.window}


# --- the Sharpe ratio's error and the selection haircut -----------------------------------------


def gate_sharpe_error(
    net_returns: Sequence[float] | np.ndarray, periods_per_year: float
) -> float | None:
    """Annualised standard error of the Sharpe ratio of ``net_returns``, or None when it is
    undefined (fewer than 3 bars, or returns that never vary: a model that stays flat has no
    Sharpe ratio to judge).

    The larger of Mertens' (2002) error, skew and kurtosis included, and Lo's (2002) normal one:
    a strategy that is flat most of the time has a few large, positively skewed returns, and
    Mertens' skew term then shrinks the error bar of a handful of lucky trades, an asymptotic
    result that such a sample does not support. The error bar is never narrower than for normal
    returns."""
    returns = np.asarray(net_returns, dtype=np.float64)
    try:
        mertens = statistics.sharpe_standard_error(returns, periods_per_year=periods_per_year)
    except ValueError:
        return None
    sharpe = float(np.mean(returns) / np.std(returns, ddof=1))
    normal = math.sqrt((1.0 + sharpe * sharpe / 2.0) / returns.size * periods_per_year)
    return max(mertens, normal)


def selection_haircut(standard_error: float, n_trials: int) -> float:
    """The Sharpe ratio the best of ``n_trials`` skill-less models reaches by chance (same unit
    as ``standard_error``): what selection alone adds to a winner's test score."""
    return expected_max_sharpe(max(1, int(n_trials)), standard_error**2)


def deflated_sharpe(
    metrics: Mapping[str, float], ratio: str = "sharpe_ratio", error: str = SHARPE_SE
) -> float | None:
    """The out-of-sample Sharpe ratio (or another ``ratio`` with its standard ``error``) minus
    its selection haircut for every try counted, or None without the inputs."""
    sharpe, se = metrics.get(ratio), metrics.get(error)
    if sharpe is None or se is None:
        return None
    trials = int(metrics.get(SELECTION_TRIALS, 1) or 1)
    return float(sharpe) - selection_haircut(float(se), trials)


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(confidence))


def live_lower_bound(metrics: Mapping[str, float], confidence: float) -> float | None:
    """The one-sided lower confidence bound of a Sharpe ratio measured on bars the version never
    saw (no selection to deflate for); None without a Sharpe ratio and its standard error."""
    sharpe, se = metrics.get("sharpe_ratio"), metrics.get(SHARPE_SE)
    if sharpe is None or se is None:
        return None
    return float(sharpe) - _z(confidence) * float(se)


# --- the activation floor -----------------------------------------------------------------------


def floor_verdict(metrics: Mapping[str, float], policy: DecisionPolicy) -> Verdict:
    """May a version with these out-of-sample metrics trade at all?"""
    details: dict[str, Any] = {}
    failures: list[str] = []
    if policy.floor_min_composite is not None:
        score = metrics.get("composite_score")
        details["composite_score"] = score
        details["min_composite"] = policy.floor_min_composite
        if score is None or not score > policy.floor_min_composite:
            shown = "undefined" if score is None else f"{score:.3f}"
            failures.append(f"composite score {shown} is not above {policy.floor_min_composite:g}")
    # Judged where the evaluation recorded its exposure (every retrain does).
    if (
        policy.floor_confidence is not None
        and policy.floor_min_bars_in_market
        and "exposure" in metrics
    ):
        exposure, bars = metrics.get("exposure"), metrics.get("n_observations")
        in_market = None if exposure is None or bars is None else round(exposure * bars)
        details["bars_in_market"] = in_market
        details["min_bars_in_market"] = policy.floor_min_bars_in_market
        if in_market is None or in_market < policy.floor_min_bars_in_market:
            failures.append(
                f"{in_market} out-of-sample bars with a position, fewer than the "
                f"{policy.floor_min_bars_in_market} needed to judge skill"
            )
    if policy.floor_confidence is not None:
        deflated = deflated_sharpe(metrics)
        se = metrics.get(SHARPE_SE)
        details["confidence"] = policy.floor_confidence
        if deflated is None or se is None:
            failures.append("no Sharpe ratio with a standard error to judge skill by")
        else:
            bound = deflated - _z(policy.floor_confidence) * float(se)
            details.update(
                sharpe_ratio=metrics.get("sharpe_ratio"),
                deflated_sharpe=deflated,
                sharpe_lower_bound=bound,
                selection_trials=int(metrics.get(SELECTION_TRIALS, 1) or 1),
            )
            if not bound > 0:
                failures.append(
                    f"the deflated Sharpe ratio's {policy.floor_confidence:.0%} lower bound "
                    f"{bound:.2f} is not above 0"
                )
    # Versions registered before the beta to holding was recorded are not judged beyond it.
    if (
        policy.floor_confidence is not None
        and policy.floor_beyond_hold
        and "beta_to_hold" in metrics
    ):
        deflated = deflated_sharpe(metrics, "appraisal_ratio", APPRAISAL_SE)
        se = metrics.get(APPRAISAL_SE)
        if deflated is None or se is None:
            failures.append(
                "no appraisal ratio with a standard error to judge skill beyond holding"
            )
        else:
            bound = deflated - _z(policy.floor_confidence) * float(se)
            details.update(
                beta_to_hold=metrics.get("beta_to_hold"),
                appraisal_ratio=metrics.get("appraisal_ratio"),
                appraisal_lower_bound=bound,
            )
            if not bound > 0:
                failures.append(
                    f"beyond holding (beta {metrics.get('beta_to_hold', 0.0):.2f} removed), the "
                    f"deflated appraisal ratio's {policy.floor_confidence:.0%} lower bound "
                    f"{bound:.2f} is not above 0"
                )
    details["benchmarks"] = benchmarks(metrics)
    if failures:
        return Verdict(False, "; ".join(failures), details)
    rule = "credible out-of-sample skill" if policy.has_floor else "no activation floor"
    return Verdict(True, rule, details)


def benchmarks(metrics: Mapping[str, float]) -> dict[str, float | None]:
    """The strategy against standing aside and against holding, on the same out-of-sample bars
    net of costs (standing aside earns 0: its excess and information ratio are the strategy's
    own total return and Sharpe ratio)."""
    return {
        "strategy_total_return": metrics.get("total_return"),
        "stand_aside_total_return": 0.0,
        "hold_total_return": metrics.get("hold_total_return"),
        "excess_return_vs_stand_aside": metrics.get("total_return"),
        "excess_return_vs_hold": metrics.get("excess_return_vs_hold"),
        "information_ratio_vs_stand_aside": metrics.get("sharpe_ratio"),
        "information_ratio_vs_hold": metrics.get("information_ratio_vs_hold"),
        "annual_cost": metrics.get("annual_cost"),
    }


# --- promotion ----------------------------------------------------------------------------------


def promotion_verdict(
    challenger: pd.Series,
    champion: pd.Series,
    policy: DecisionPolicy,
    *,
    n_challengers: int = 1,
) -> Verdict:
    """Does the challenger's per-bar net return beat the champion's on their common bars?

    Both series are indexed by bar time; only bars present in both are compared.
    """
    if policy.promotion_confidence is None:
        raise ValueError("promotion_verdict needs promotion_confidence; the seed rule has none")
    common = challenger.index.intersection(champion.index)
    n = len(common)
    details: dict[str, Any] = {"common_bars": n, "confidence": policy.promotion_confidence}
    if n < policy.min_compare_bars:
        return Verdict(
            False,
            f"only {n} bars on which neither model was trained; {policy.min_compare_bars} "
            "are needed to compare them",
            details,
        )
    a = challenger.loc[common].to_numpy(dtype=np.float64)
    b = champion.loc[common].to_numpy(dtype=np.float64)
    test = paired_test(a, b)
    alpha = (1.0 - policy.promotion_confidence) / max(1, n_challengers)
    details.update(
        window=[str(common[0]), str(common[-1])],
        mean_difference_bps=test.mean_difference * 1e4,
        t_stat=_finite(test.t_stat),
        p_value=test.p_value,
        alpha=alpha,
        n_challengers=n_challengers,
        challenger_mean_bps=float(a.mean()) * 1e4,
        champion_mean_bps=float(b.mean()) * 1e4,
    )
    passed = test.p_value < alpha
    rule = (
        f"challenger beats champion on {n} common bars (paired HAC test, p={test.p_value:.3g} "
        f"{'<' if passed else '>='} {alpha:.3g})"
    )
    return Verdict(passed, rule, details)


def score_verdict(
    candidate_score: float | None, active_score: float | None, tolerance: float
) -> Verdict:
    """The seed's rule: the candidate's composite score against the active one's."""
    details = {
        "candidate_score": candidate_score,
        "active_score": active_score,
        "tolerance": tolerance,
    }
    if active_score is None:
        return Verdict(candidate_score is not None, "the active version has no score", details)
    if candidate_score is None:
        return Verdict(False, "the candidate has no composite score", details)
    margin = tolerance * max(abs(active_score), DEFAULT_FLOOR)
    return Verdict(
        candidate_score >= active_score - margin,
        "candidate score >= active score - tolerance * max(|active score|, floor)",
        details,
    )


# --- rollback -----------------------------------------------------------------------------------


def rollback_threshold(value: object) -> float:
    """``value`` as a rollback threshold: a finite fraction in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"rollback_threshold must be a finite number, got {value!r}")
    if not 0 < value <= 1:
        raise ValueError(f"rollback_threshold must be in (0, 1], got {value}")
    return float(value)


def relative_degradation(metric: str, baseline: float, new: float) -> float:
    """How much worse ``new`` is than ``baseline`` as a fraction (negative: better).

    higher is better: (baseline - new) / max(|baseline|, floor); lower is better: (new -
    baseline) / max(|baseline|, floor). Dividing by |baseline| keeps the sign right for a
    negative baseline; the floor keeps a baseline near zero from making noise infinite.
    """
    floor = FLOORS.get(metric, DEFAULT_FLOOR)
    if metric in LOWER_IS_BETTER:
        if metric == "max_drawdown":
            baseline, new = abs(baseline), abs(new)
        return (new - baseline) / max(abs(baseline), floor)
    if metric in HIGHER_IS_BETTER:
        return (baseline - new) / max(abs(baseline), floor)
    raise ValueError(
        f"metric {metric!r} has no known direction; monitor one of "
        f"{sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)}"
    )


def assess_regression(
    baseline: Mapping[str, float],
    new_metrics: Mapping[str, float],
    *,
    threshold: float = ROLLBACK_THRESHOLD,
    monitored: Sequence[str] = DEFAULT_MONITORED,
) -> Assessment:
    """The seed's rule: ``regressed`` when any monitored metric degrades by more than threshold."""
    return Assessment.from_dict(
        _seed_comparison(baseline, new_metrics, threshold=threshold, monitored=monitored)
    )


def _seed_comparison(
    baseline: Mapping[str, float],
    new_metrics: Mapping[str, float],
    *,
    threshold: float,
    monitored: Sequence[str],
) -> dict[str, Any]:
    threshold = rollback_threshold(threshold)
    comparisons: list[dict[str, Any]] = []
    for metric in monitored:
        if metric in baseline and metric in new_metrics:
            change = relative_degradation(metric, float(baseline[metric]), new_metrics[metric])
            comparisons.append(
                {
                    "metric": metric,
                    "baseline": float(baseline[metric]),
                    "new": float(new_metrics[metric]),
                    "relative_degradation": change,
                }
            )
    worst = max(comparisons, key=lambda c: c["relative_degradation"], default=None)
    return {
        "regressed": bool(worst and worst["relative_degradation"] > threshold),
        "threshold": threshold,
        "worst": worst,
        "comparisons": comparisons,
    }


def rollback_assessment(
    registration: Mapping[str, float],
    activation_baseline: Mapping[str, float],
    live: Mapping[str, float],
    policy: DecisionPolicy,
    *,
    threshold: float = ROLLBACK_THRESHOLD,
    monitored: Sequence[str] = DEFAULT_MONITORED,
) -> Assessment:
    """Has the live model regressed, and why (``trigger``, one of :data:`TRIGGERS`)?

    ``registration`` holds the version's out-of-sample figures from its retrain (with the
    Sharpe ratio's standard error and the number of tries it was chosen among);
    ``activation_baseline`` the figures recorded when it was last activated (the seed's
    baseline); ``live`` the live window's metrics, with its own standard error, the record since
    activation (:data:`RECORD_BARS`, :data:`RECORD_SUM`, :data:`RECORD_STD`) and the inputs'
    drift (:data:`INPUT_MAX_PSI`, :data:`INPUT_DRIFTED`) when monitoring measured them.

    Under the seed's rules (``rollback_confidence`` None) only the seed's window rule applies.
    Otherwise the version regressed when its record credibly loses (``monitor_confidence``),
    when its window broke down (material and significant), or when its inputs drifted and
    ``drift_action`` is ``stand_aside``; the cumulative verdict is reported first.
    """
    if policy.rollback_confidence is None:
        seed = _seed_comparison(activation_baseline, live, threshold=threshold, monitored=monitored)
        return Assessment.from_dict(
            {
                **seed,
                "trigger": "metric_regression",
                "rule": "seed: any monitored metric worse than its baseline by > threshold",
            }
        )
    result = _window_assessment(
        registration, activation_baseline, live, policy, threshold=threshold, monitored=monitored
    )
    result["trigger"] = "metric_regression" if result["regressed"] else None
    cumulative = _cumulative_assessment(live, policy)
    if cumulative is not None:
        result["cumulative"] = cumulative
        if cumulative["alarm"]:
            result.update(regressed=True, trigger="cumulative_loss", rule=cumulative["rule"])
    drift = _drift_assessment(live, policy)
    if drift is not None:
        result["drift"] = drift
        if drift["flagged"] and policy.drift_action == "stand_aside" and not result["regressed"]:
            result.update(regressed=True, trigger="input_drift", rule=drift["rule"])
    return Assessment.from_dict(result)


def _window_assessment(
    registration: Mapping[str, float],
    activation_baseline: Mapping[str, float],
    live: Mapping[str, float],
    policy: DecisionPolicy,
    *,
    threshold: float,
    monitored: Sequence[str],
) -> dict[str, Any]:
    """The window test: the live window's Sharpe ratio against the deflated baseline."""
    assert policy.rollback_confidence is not None
    baseline = deflated_sharpe(registration)
    base_se = registration.get(SHARPE_SE)
    live_sharpe, live_se = live.get("sharpe_ratio"), live.get(SHARPE_SE)
    display = dict(registration)
    if baseline is not None:
        display["sharpe_ratio"] = baseline
    seed_view = _seed_comparison(display, live, threshold=threshold, monitored=monitored)
    result: dict[str, Any] = {
        **seed_view,
        "regressed": False,
        "confidence": policy.rollback_confidence,
        "baseline_sharpe": baseline,
        "baseline_se": base_se,
        "live_sharpe": live_sharpe,
        "live_se": live_se,
    }
    if baseline is None or base_se is None:
        # A version registered before standard errors were recorded keeps the seed's
        # protection rather than none.
        seed = _seed_comparison(activation_baseline, live, threshold=threshold, monitored=monitored)
        return {
            **seed,
            "rule": "no Sharpe ratio with a standard error at registration: the seed's rule "
            "(any monitored metric worse than its baseline by > threshold)",
        }
    if live_sharpe is None or live_se is None:
        # Net returns that never varied: the band kept the version flat (or one position
        # without a trade) over the window; it lost nothing there to judge.
        return {**result, "rule": "no position changes over the live window: nothing to judge"}
    material = relative_degradation("sharpe_ratio", baseline, float(live_sharpe)) > threshold
    error = math.hypot(float(base_se), float(live_se))
    z = (baseline - float(live_sharpe)) / error if error > 0 else 0.0
    p_value = float(stats.norm.sf(z))
    significant = p_value < 1.0 - policy.rollback_confidence
    worst = {
        "metric": "sharpe_ratio",
        "baseline": baseline,
        "new": float(live_sharpe),
        "relative_degradation": relative_degradation("sharpe_ratio", baseline, float(live_sharpe)),
    }
    result.update(
        regressed=bool(material and significant),
        material=bool(material),
        significant=bool(significant),
        z_stat=z,
        p_value=p_value,
        worst=worst,
        rule=(
            "live Sharpe below the deflated out-of-sample Sharpe by more than the threshold "
            f"and significantly (z={z:.2f}, p={p_value:.3g}, needs < "
            f"{1 - policy.rollback_confidence:.3g})"
        ),
    )
    return result


def _cumulative_assessment(
    live: Mapping[str, float], policy: DecisionPolicy
) -> dict[str, Any] | None:
    """The record since activation, judged by the time-uniform test; None without a record."""
    if policy.monitor_confidence is None or RECORD_BARS not in live:
        return None
    test = cumulative_loss_test(
        int(live[RECORD_BARS]),
        float(live.get(RECORD_SUM, 0.0)),
        float(live.get(RECORD_STD, 0.0)),
        confidence=policy.monitor_confidence,
    )
    return {
        "bars": test.bars,
        "mean_bps": test.mean * 1e4,
        "upper_bound_bps": None if test.upper_bound is None else test.upper_bound * 1e4,
        "confidence": test.confidence,
        "alarm": test.alarm,
        "rule": f"record since activation: {test.reason}",
    }


def _drift_assessment(live: Mapping[str, float], policy: DecisionPolicy) -> dict[str, Any] | None:
    if INPUT_MAX_PSI not in live:
        return None
    worst, drifted = float(live[INPUT_MAX_PSI]), int(live.get(INPUT_DRIFTED, 0))
    return {
        "max_psi": worst,
        "drifted_features": drifted,
        "threshold": policy.drift_psi_threshold,
        "flagged": drifted > 0,
        "action": policy.drift_action,
        "rule": f"inputs drifted: {drifted} feature(s) with a PSI above "
        f"{policy.drift_psi_threshold:g} (largest {worst:.2f})",
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
