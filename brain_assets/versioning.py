"""Champion/challenger promotion and metric-driven rollback, per symbol, with a history.

Relative change
---------------
A metric's degradation is measured against the baseline recorded when the model was promoted:

    higher is better (Sharpe, composite score, ...):  (baseline - new) / max(|baseline|, floor)
    lower is better (RMSE, |max drawdown|, ...):      (new - baseline) / max(|baseline|, floor)

Positive means worse. Dividing by |baseline| keeps the sign right for a negative baseline (a
Sharpe of -0.5 falling to -0.8 is a 60% degradation, not an improvement), and the floor keeps a
baseline at or near zero from turning noise into an infinite change. Floors are per metric in
the metric's own units (``FLOORS``; 0.1 for ratios such as Sharpe, 0.01 otherwise).

A rollback happens when any monitored metric degrades by more than the threshold (default 5%).
Every decision (promotion, challenger kept inactive, rollback, rollback impossible) is one row
or pair of rows in ``model_activations`` carrying the numbers behind it, written in the same
transaction as the change, under the symbol's advisory lock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import psycopg

from brain_assets.alerts import send_alert
from brain_assets.errors import UnknownModelError
from brain_assets.events import log_event
from brain_assets.store import validation as check
from brain_assets.store.library import BrainLibrary
from brain_assets.store.registry import rolled_back_for_regression

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
"""Scales below which a baseline counts as zero, in each metric's units: an annualised Sharpe
ratio moves by more than 0.5 between two weeks of hourly bars by chance alone, and the composite
score lives in [-1, 1] with typical values near 0.1."""
DEFAULT_FLOOR = 0.01
DEFAULT_MONITORED = ("composite_score", "sharpe_ratio")
"""Directional accuracy is left out by default: it sits near 0.5, where a relative change says
little; add it (or any metric of known direction) through ``monitored``."""


def relative_degradation(metric: str, baseline: float, new: float) -> float:
    """How much worse ``new`` is than ``baseline`` as a fraction (negative: better)."""
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
    threshold: float = 0.05,
    monitored: Sequence[str] = DEFAULT_MONITORED,
) -> dict[str, Any]:
    """Compare monitored metrics present in both; ``regressed`` when any degrades > threshold."""
    threshold = _threshold(threshold)
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


def _threshold(value: object) -> float:
    number = check.finite(value, "rollback_threshold")
    if not 0 < number <= 1:
        raise ValueError(f"rollback_threshold must be in (0, 1], got {number}")
    return number


class ModelVersioning:
    """Versions of each symbol's model: which one trades, and why it changed."""

    def __init__(self, brain: BrainLibrary, *, tolerance: float = 0.0) -> None:
        self.brain = brain
        self.tolerance = check.finite(tolerance, "tolerance")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")

    # -- registration -------------------------------------------------------------------------

    def register_version(
        self,
        symbol: str,
        model_type: str,
        artifact: bytes,
        *,
        metrics: Mapping[str, float],
        **details: Any,
    ) -> str:
        """Register a version; it becomes active if it is the symbol's first, or if its composite
        score is not worse than the active version's beyond the tolerance. Otherwise it stays an
        inactive challenger. Extra keyword arguments go to BrainLibrary.register_model. With a
        ``fingerprint`` that the symbol already has, the existing version's model_id is returned
        and nothing is written or decided."""
        with self.brain.transaction() as conn:
            fingerprint = details.get("fingerprint")
            if fingerprint is not None:
                # The same training registered again is the same version: no copy, no decision.
                self.brain.lock_symbol(symbol)
                existing = self.brain.find_model_by_fingerprint(symbol, fingerprint)
                if existing is not None:
                    return existing
            model_id = self.brain.register_model(
                symbol, model_type, artifact, metrics=metrics, **details
            )
            self.brain._lock_symbol(conn, symbol)
            model = self.brain._require_model(conn, model_id)
            active = self._active(conn, model["symbol"])
            decision = self._promotion_decision(model, active)
            if decision["promote"]:
                self._activate(conn, model, reason="promotion", details=decision)
            else:
                self.brain.record_activation_event(
                    conn,
                    model["symbol"],
                    model_id,
                    model["version"],
                    action="kept_inactive",
                    reason="challenger",
                    details=decision,
                )
        return model_id

    def _promotion_decision(
        self, model: Mapping[str, Any], active: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        score = model["composite_score"]
        if active is None:
            return {
                "promote": True,
                "rule": "first version of the symbol",
                "candidate_score": score,
            }
        active_score = active["composite_score"]
        if active_score is None:
            promote, rule = score is not None, "the active version has no score"
        elif score is None:
            promote, rule = False, "the candidate has no composite score"
        else:
            margin = self.tolerance * max(abs(active_score), DEFAULT_FLOOR)
            promote = score >= active_score - margin
            rule = "candidate score >= active score - tolerance * max(|active score|, floor)"
        return {
            "promote": promote,
            "rule": rule,
            "candidate_score": score,
            "active_model_id": active["model_id"],
            "active_version": active["version"],
            "active_score": active_score,
            "tolerance": self.tolerance,
        }

    # -- operators ----------------------------------------------------------------------------

    def promote(self, model_id: str, *, reason: str = "manual") -> dict[str, Any]:
        """Make ``model_id`` active now, whatever its score (an operator's decision)."""
        model_id = check.text(model_id, "model_id")
        with self.brain.transaction() as conn:
            model = self.brain._require_model(conn, model_id)
            self.brain._lock_symbol(conn, model["symbol"])
            self._activate(conn, model, reason=reason, details={"requested": "promote"})
        result = self.brain.get_model(model_id)
        assert result is not None
        return result

    def rollback(self, symbol: str, to_version: int | None = None) -> dict[str, Any]:
        """Reactivate ``to_version``, or the previous good version; ValueError if there is none."""
        symbol = check.symbol(symbol)
        with self.brain.transaction() as conn:
            self.brain._lock_symbol(conn, symbol)
            active = self._active(conn, symbol)
            if to_version is not None:
                version = check.positive_int(to_version, "to_version")
                row = conn.execute(
                    "SELECT model_id FROM model_registry WHERE symbol = %s AND version = %s",
                    (symbol, version),
                ).fetchone()
                if row is None:
                    raise ValueError(f"{symbol} has no version {version}")
                target = self.brain._require_model(conn, row[0])
            else:
                previous = self._previous_good(conn, symbol, active)
                if previous is None:
                    raise ValueError(f"{symbol} has no earlier version to roll back to")
                target = previous
            details = {
                "requested": "rollback",
                "to_version": target["version"],
                "from_version": None if active is None else active["version"],
            }
            self._activate(conn, target, reason="rollback", details=details)
        send_alert(
            "model_rollback",
            {
                "symbol": symbol,
                "model_id": target["model_id"],
                "version": target["version"],
                "trigger": "operator",
            },
        )
        result = self.brain.get_model(target["model_id"])
        assert result is not None
        return result

    def history(self, symbol: str) -> pd.DataFrame:
        return self.brain.get_activation_history(symbol)

    def baseline(self, model_id: str) -> dict[str, float]:
        """The metrics a model was last activated with: what its live metrics are judged by."""
        with self.brain.transaction() as conn:
            return self._baseline(
                conn, self.brain._require_model(conn, check.text(model_id, "model_id"))
            )

    # -- automatic rollback -------------------------------------------------------------------

    def check_and_rollback(
        self,
        model_id: str,
        symbol: str,
        new_metrics: Mapping[str, float],
        rollback_threshold: float = 0.05,
        *,
        monitored: Sequence[str] = DEFAULT_MONITORED,
    ) -> bool:
        """Roll ``symbol`` back to its previous good version when the active ``model_id``'s
        ``new_metrics`` regress beyond the threshold against its promotion baseline.

        Returns True when a rollback happened. A model that is no longer active (already rolled
        back, or replaced) is left alone: the same check run twice rolls back once.
        """
        threshold = _threshold(rollback_threshold)
        model_id = check.text(model_id, "model_id")
        symbol = check.symbol(symbol)
        values = check.metrics(new_metrics, "new_metrics")
        for metric in monitored:
            relative_degradation(metric, 0.0, 0.0)  # unknown direction -> ValueError up front
        with self.brain.transaction() as conn:
            model = self.brain._require_model(conn, model_id)
            if model["symbol"] != symbol:
                raise UnknownModelError(
                    f"model {model_id} belongs to symbol {model['symbol']!r}, not {symbol!r}"
                )
            self.brain._lock_symbol(conn, symbol)
            active = self._active(conn, symbol)
            if active is None or active["model_id"] != model_id:
                return False
            assessment = assess_regression(
                self._baseline(conn, model), values, threshold=threshold, monitored=monitored
            )
            if not assessment["regressed"]:
                return False
            worst = assessment["worst"]
            # "baseline" on an activation row is the activated model's own baseline, so the
            # regressed model's numbers go under their own names.
            details = {
                "trigger": "metric_regression",
                "regressed_model_id": model_id,
                "metric": worst["metric"],
                "metric_baseline": worst["baseline"],
                "new_value": worst["new"],
                "relative_degradation": worst["relative_degradation"],
                "threshold": threshold,
                "comparisons": assessment["comparisons"],
            }
            previous = self._previous_good(conn, symbol, model)
            if previous is None:
                self.brain.record_activation_event(
                    conn,
                    symbol,
                    model_id,
                    model["version"],
                    action="warning",
                    reason="rollback_unavailable",
                    details={**details, "message": "no earlier version to roll back to"},
                )
                outcome = False
            else:
                details["rolled_back_to"] = previous["model_id"]
                self._activate(conn, previous, reason="rollback", details=details)
                outcome = True
        # After the commit: the webhook may be slow or down, and must not hold the symbol's lock.
        send_alert(
            "model_rollback" if outcome else "model_rollback_unavailable",
            {
                "symbol": symbol,
                "regressed_model_id": model_id,
                "rolled_back_to": details.get("rolled_back_to"),
                "metric": worst["metric"],
                "baseline": worst["baseline"],
                "new": worst["new"],
                "relative_degradation": round(worst["relative_degradation"], 4),
                "threshold": threshold,
                "trigger": "metric_regression",
            },
        )
        return outcome

    # -- internals ----------------------------------------------------------------------------

    def _active(self, conn: psycopg.Connection, symbol: str) -> dict[str, Any] | None:
        row = conn.execute(
            "SELECT model_id FROM model_registry WHERE symbol = %s AND is_active", (symbol,)
        ).fetchone()
        return None if row is None else self.brain._require_model(conn, row[0])

    def _activate(
        self,
        conn: psycopg.Connection,
        model: Mapping[str, Any],
        *,
        reason: str,
        details: Mapping[str, Any],
    ) -> None:
        baseline = self._latest_metrics(conn, model)
        self.brain._switch_active(
            conn,
            model["symbol"],
            model["model_id"],
            reason=reason,
            details={**details, "baseline": baseline},
        )
        if reason == "promotion":
            log_event(
                "model_promoted",
                symbol=model["symbol"],
                model_id=model["model_id"],
                version=model["version"],
                composite_score=model["composite_score"],
            )

    @staticmethod
    def _latest_metrics(conn: psycopg.Connection, model: Mapping[str, Any]) -> dict[str, float]:
        rows = conn.execute(
            """SELECT DISTINCT ON (metric) metric, value FROM model_metrics
               WHERE model_id = %s AND regime IS NULL
               ORDER BY metric, evaluation_date DESC, id DESC""",
            (model["model_id"],),
        ).fetchall()
        return {metric: value for metric, value in rows if math.isfinite(value)}

    def _baseline(self, conn: psycopg.Connection, model: Mapping[str, Any]) -> dict[str, float]:
        """The metrics recorded when the model was last activated (its registration metrics
        for a model activated before baselines were recorded)."""
        row = conn.execute(
            """SELECT details -> 'baseline' FROM model_activations
               WHERE model_id = %s AND action = 'activated'
               ORDER BY created_at DESC, activation_id DESC LIMIT 1""",
            (model["model_id"],),
        ).fetchone()
        baseline = row[0] if row and row[0] else model["metrics"]
        return {k: float(v) for k, v in baseline.items() if isinstance(v, int | float)}

    def _previous_good(
        self, conn: psycopg.Connection, symbol: str, current: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """The most recently active other version not since rolled back for a regression."""
        row = conn.execute(
            "SELECT a.model_id FROM model_activations a"  # noqa: S608 (fixed SQL only)
            " WHERE a.symbol = %(symbol)s AND a.action = 'activated'"
            " AND a.model_id IS DISTINCT FROM %(current)s"
            f" AND NOT {rolled_back_for_regression('a')}"
            " ORDER BY a.created_at DESC, a.activation_id DESC LIMIT 1",
            {"symbol": symbol, "current": None if current is None else current["model_id"]},
        ).fetchone()
        return None if row is None else self.brain._require_model(conn, row[0])
