"""The rules that decide which model trades a symbol: numbers in, verdicts out (no SQL).

Three decisions, each with the evidence it needs written next to the verdict:

* **Activation floor.** A version may trade only when its out-of-sample skill is credibly
  positive: composite score above ``floor_min_composite`` and the one-sided lower confidence
  bound of its *deflated* Sharpe ratio above zero. Deflated means the test-segment Sharpe ratio
  minus the best Sharpe ratio that ``selection_trials`` skill-less models would reach by chance
  on the same bars (Bailey & López de Prado's expected maximum): the retrain keeps the best of
  several models, and that choice alone lifts the winner's test score.
* **Fair promotion.** A challenger is compared with the champion on the same bars: the
  challenger's test segment, restricted to bars after the champion's training window, so that
  neither model was fitted on them. The per-bar net strategy returns are compared with the paired
  HAC test (Diebold-Mariano with the Harvey-Leybourne-Newbold correction). The challenger wins
  only when the one-sided p-value is below ``(1 - promotion_confidence) / n_challengers``
  (Bonferroni over the models tried in one retrain). The champion was selected on some of those
  bars, which favours it: a challenger has to beat it clearly, never the other way round.
* **Noise-aware rollback.** A live model is rolled back only when its live Sharpe ratio is both
  materially (more than the rollback threshold, 5% by default) and significantly (one-sided
  p-value below ``1 - rollback_confidence``) below its honest baseline, the deflated test-segment
  Sharpe ratio, with the sampling error of both the live window and the baseline in the test.

``DecisionPolicy.seed()`` turns all three off: promotion by composite score alone, every version
allowed to trade, rollback on a bare 5% drop of any monitored metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from brain_assets.decisions import statistics
from brain_assets.decisions.statistics import expected_max_sharpe, paired_test
from brain_assets.defaults import ROLLBACK_THRESHOLD

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
SELECTION_TRIALS = "selection_trials"
"""Metric key: how many models the version was chosen among on its test segment."""


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
    floor_confidence: float | None = 0.5
    """Confidence of the deflated Sharpe ratio's lower bound that must exceed 0; None: off.

    0.5 asks that the Sharpe ratio beat, as a point estimate, the best that the retrain's
    skill-less models would reach by chance (a Deflated Sharpe Ratio of at least one half).
    The textbook 0.9-0.95 is out of reach of a few hundred test bars: on 600 hourly bars with
    three models it needs an annualised Sharpe ratio above about 8."""
    rollback_confidence: float | None = 0.95
    """One-sided confidence that the live Sharpe ratio is below the baseline; None: the seed's
    rule (any monitored metric worse than its activation figure by more than the threshold)."""
    cooldown_bars: int = 168
    """Bars after an automatic activation change during which no automatic rollback happens
    (a week of hourly bars): the model just chosen gets a fair hearing."""
    tolerance: float = 0.0
    """The seed's promotion tolerance, used only when ``promotion_confidence`` is None."""

    def __post_init__(self) -> None:
        for name in ("promotion_confidence", "floor_confidence", "rollback_confidence"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, float | int) and 0 < value < 1):
                raise ValueError(f"{name} must be in (0, 1) or None, got {value!r}")
        for name in ("min_compare_bars", "cooldown_bars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.min_compare_bars < 3:
            raise ValueError(f"min_compare_bars must be at least 3, got {self.min_compare_bars}")
        if self.floor_min_composite is not None and not math.isfinite(self.floor_min_composite):
            raise ValueError("floor_min_composite must be finite or None")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")

    @classmethod
    def seed(cls, *, tolerance: float = 0.0) -> DecisionPolicy:
        """The platform's original rules: score comparison, no floor, no significance."""
        return cls(
            promotion_confidence=None,
            floor_min_composite=None,
            floor_confidence=None,
            rollback_confidence=None,
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


# --- the Sharpe ratio's error and the selection haircut -----------------------------------------


def sharpe_standard_error(
    net_returns: Sequence[float] | np.ndarray, periods_per_year: float
) -> float | None:
    """Annualised standard error of the Sharpe ratio of ``net_returns`` (Mertens 2002), or None
    when it is undefined (fewer than 3 bars, or returns that never vary: a model that stays flat
    has no Sharpe ratio to judge)."""
    try:
        return statistics.sharpe_standard_error(
            np.asarray(net_returns, dtype=np.float64), periods_per_year=periods_per_year
        )
    except ValueError:
        return None


def selection_haircut(standard_error: float, n_trials: int) -> float:
    """The Sharpe ratio the best of ``n_trials`` skill-less models reaches by chance (same unit
    as ``standard_error``): what selection alone adds to a winner's test score."""
    return expected_max_sharpe(max(1, int(n_trials)), standard_error**2)


def deflated_sharpe(metrics: Mapping[str, float]) -> float | None:
    """The test-segment Sharpe ratio minus its selection haircut, or None without the inputs."""
    sharpe, se = metrics.get("sharpe_ratio"), metrics.get(SHARPE_SE)
    if sharpe is None or se is None:
        return None
    trials = int(metrics.get(SELECTION_TRIALS, 1) or 1)
    return float(sharpe) - selection_haircut(float(se), trials)


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(confidence))


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
            failures.append(f"composite score {score} is not above {policy.floor_min_composite}")
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
    if failures:
        return Verdict(False, "; ".join(failures), details)
    rule = "credible out-of-sample skill" if policy.has_floor else "no activation floor"
    return Verdict(True, rule, details)


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
) -> dict[str, Any]:
    """The seed's rule: ``regressed`` when any monitored metric degrades by more than threshold."""
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
) -> dict[str, Any]:
    """Has the live model regressed? The seed's assessment plus, with ``rollback_confidence``
    set, the significance test that must also pass.

    ``registration`` holds the version's out-of-sample figures from its retrain (with the
    Sharpe ratio's standard error and the number of models it was chosen among);
    ``activation_baseline`` the figures recorded when it was last activated (the seed's
    baseline); ``live`` the live window's metrics, with its own standard error.
    """
    if policy.rollback_confidence is None:
        seed = assess_regression(
            activation_baseline, live, threshold=threshold, monitored=monitored
        )
        return {**seed, "rule": "seed: any monitored metric worse than its baseline by > threshold"}
    baseline = deflated_sharpe(registration)
    base_se = registration.get(SHARPE_SE)
    live_sharpe, live_se = live.get("sharpe_ratio"), live.get(SHARPE_SE)
    display = dict(registration)
    if baseline is not None:
        display["sharpe_ratio"] = baseline
    seed_view = assess_regression(display, live, threshold=threshold, monitored=monitored)
    result: dict[str, Any] = {
        **seed_view,
        "regressed": False,
        "confidence": policy.rollback_confidence,
        "baseline_sharpe": baseline,
        "baseline_se": base_se,
        "live_sharpe": live_sharpe,
        "live_se": live_se,
    }
    if baseline is None or base_se is None or live_sharpe is None or live_se is None:
        # A version registered before standard errors were recorded keeps the seed's
        # protection rather than none.
        seed = assess_regression(
            activation_baseline, live, threshold=threshold, monitored=monitored
        )
        return {
            **seed,
            "rule": "no Sharpe ratio with a standard error on both sides: the seed's rule "
            "(any monitored metric worse than its baseline by > threshold)",
        }
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
            "live Sharpe below the deflated test Sharpe by more than the threshold and "
            f"significantly (z={z:.2f}, p={p_value:.3g}, needs < "
            f"{1 - policy.rollback_confidence:.3g})"
        ),
    )
    return result


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
