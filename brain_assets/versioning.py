"""Champion/challenger promotion, the activation floor and metric-driven rollback, per symbol.

The rules themselves live in :mod:`brain_assets.decisions.policy` (numbers in, verdicts out);
this module applies them to the registry under the symbol's advisory lock, and writes every
decision (promotion, challenger kept inactive, rollback, stand aside, rollback deferred or
impossible) as rows of ``model_activations`` carrying the verdict's numbers, in the same
transaction as the change.

Each automatic decision records ``as_of``, the last bar it saw, so that the rollback cooldown is
counted in bars of market time, which a replay of history runs through in minutes.

A version whose artifact cannot be loaded (integrity check, allowlist refusal, TensorFlow missing
for an ``lstm``) is taken out by :meth:`ModelVersioning.fall_back_from_unloadable`: the previous
good version a regression rollback would pick, provided its own artifact loads, trades instead,
or the symbol stands aside; an alert is queued with the change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import psycopg

from brain_assets.alerts import QueuedAlert, dispatch_alert, queue_alert
from brain_assets.calendar import SECONDS_PER_YEAR
from brain_assets.decisions.policy import (
    DEFAULT_FLOOR,
    DEFAULT_MONITORED,
    FLOORS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    DecisionPolicy,
    Verdict,
    assess_regression,
    floor_verdict,
    promotion_verdict,
    relative_degradation,
    rollback_assessment,
    rollback_threshold,
    score_verdict,
)
from brain_assets.errors import UnknownModelError
from brain_assets.events import log_event
from brain_assets.store import validation as check
from brain_assets.store.library import BrainLibrary
from brain_assets.store.registry import UNLOADABLE_TRIGGER, withdrawn
from brain_assets.training.serialization import UnloadableArtifactError, load_registered_model

__all__ = [
    "DEFAULT_FLOOR",
    "DEFAULT_MONITORED",
    "FLOORS",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "UNLOADABLE_TRIGGER",
    "ChampionScorer",
    "DecisionPolicy",
    "ModelVersioning",
    "assess_regression",
    "relative_degradation",
]

ChampionScorer = Callable[[Mapping[str, Any]], "pd.Series | None"]
"""Given the active version's registry row, its per-bar net returns on the challenger's test
bars that it was not trained on (None when it cannot be scored). A scorer that raises
UnloadableArtifactError for the active version has it taken out before the challenger is
judged (see ModelVersioning.fall_back_from_unloadable)."""

MAX_ROLLBACK_CANDIDATES = 5
"""Earlier versions a rollback considers, most recently active first."""


def _threshold(value: object) -> float:
    return rollback_threshold(value)


def _as_of(value: object) -> str | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    # Naive times are UTC, as everywhere in the Brain; comparing them needs one convention.
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


MAX_ERROR_CHARS = 1000


def _error_text(reason: object) -> str:
    """An exception's message as one line of bounded length: it goes into the activation row
    and the alert, and a deserialiser's message can span lines or quote a whole document."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"reason must be a non-blank string, got {reason!r}")
    flat = " ".join(reason.split())
    return flat if len(flat) <= MAX_ERROR_CHARS else flat[: MAX_ERROR_CHARS - 3] + "..."


class ModelVersioning:
    """Versions of each symbol's model: which one trades, and why it changed."""

    def __init__(
        self,
        brain: BrainLibrary,
        *,
        tolerance: float = 0.0,
        policy: DecisionPolicy | None = None,
    ) -> None:
        self.brain = brain
        tolerance = check.finite(tolerance, "tolerance")
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        if policy is not None and tolerance:
            raise ValueError("give the tolerance inside the policy: DecisionPolicy(tolerance=...)")
        self.policy = policy if policy is not None else DecisionPolicy(tolerance=tolerance)
        self.tolerance = self.policy.tolerance

    # -- registration -------------------------------------------------------------------------

    def register_version(
        self,
        symbol: str,
        model_type: str,
        artifact: bytes,
        *,
        metrics: Mapping[str, float],
        bar_returns: pd.Series | None = None,
        champion_returns: ChampionScorer | None = None,
        n_challengers: int = 1,
        as_of: object = None,
        **details: Any,
    ) -> str:
        """Register a version and decide whether it trades.

        It becomes active when it passes the activation floor and either the symbol has no
        active version of its horizon, or it beats the active one: with the default policy on
        a paired test of ``bar_returns`` (its per-bar net returns on its test segment, indexed
        by bar time) against ``champion_returns(active)`` on their common bars; with
        ``promotion_confidence=None`` by composite score. Otherwise it stays an inactive
        challenger and the reason is recorded. Extra keyword arguments go to
        BrainLibrary.register_model. With a ``fingerprint`` that the symbol already has, the
        existing version's model_id is returned and nothing is written or decided."""
        with self.brain.transaction() as conn:
            fingerprint = details.get("fingerprint")
            if fingerprint is not None:
                # The same training registered again is the same version: no copy, no decision.
                self.brain.lock_symbol(symbol)
                existing = self.brain.find_model_by_fingerprint(symbol, fingerprint)
                if existing is not None:
                    return existing
            floor = floor_verdict(metrics, self.policy)
            credible = floor.passed if self.policy.has_floor else None
            model_id = self.brain.register_model(
                symbol, model_type, artifact, metrics=metrics, credible=credible, **details
            )
            self.brain._lock_symbol(conn, symbol)
            model = self.brain._require_model(conn, model_id)
            active = self._active(conn, model["symbol"])
            alerts: list[QueuedAlert] = []
            try:
                decision = self._promotion_decision(
                    model, active, floor, bar_returns, champion_returns, n_challengers
                )
            except UnloadableArtifactError as exc:
                if active is None or exc.model_id != active["model_id"]:
                    raise
                # A champion that cannot be loaded cannot trade either: it is taken out here,
                # in this transaction, and the challenger faces whatever trades after that.
                withdrawal = self._withdraw_unloadable(conn, active, _error_text(exc.error))
                if withdrawal is not None:
                    alerts.append(withdrawal)
                active = self._active(conn, model["symbol"])
                decision = self._promotion_decision(
                    model, active, floor, bar_returns, champion_returns, n_challengers
                )
            record = {**decision.to_json(), "floor": floor.to_json(), "as_of": _as_of(as_of)}
            if decision.passed:
                self._activate(conn, model, reason="promotion", details=record)
            else:
                self.brain.record_activation_event(
                    conn,
                    model["symbol"],
                    model_id,
                    model["version"],
                    action="kept_inactive",
                    reason="below_floor" if not floor.passed else "challenger",
                    details=record,
                )
        # After the commit (inside a caller's transaction the outbox sensor sends them later).
        for alert in alerts:
            dispatch_alert(self.brain, alert)
        return model_id

    def _promotion_decision(
        self,
        model: Mapping[str, Any],
        active: Mapping[str, Any] | None,
        floor: Verdict,
        bar_returns: pd.Series | None,
        champion_returns: ChampionScorer | None,
        n_challengers: int,
    ) -> Verdict:
        if not floor.passed:
            return Verdict(False, f"below the activation floor: {floor.rule}")
        if active is None:
            return Verdict(True, "no active version: the first credible one trades")
        against = {
            "active_model_id": active["model_id"],
            "active_version": active["version"],
            "active_score": active["composite_score"],
            "candidate_score": model["composite_score"],
        }
        if (
            active["horizon"] is not None
            and model["horizon"] is not None
            and active["horizon"] != model["horizon"]
        ):
            return Verdict(
                False,
                f"horizon {model['horizon']} differs from the active version's "
                f"{active['horizon']}: versions of different horizons do not compete (an "
                "operator promotes across horizons)",
                against,
            )
        if self.policy.promotion_confidence is None:
            seed = score_verdict(
                model["composite_score"], active["composite_score"], self.tolerance
            )
            return Verdict(seed.passed, seed.rule, {**seed.details, **against})
        if bar_returns is None or champion_returns is None:
            return Verdict(
                False,
                "no per-bar returns to compare the challenger with the champion on common bars",
                against,
            )
        champion = champion_returns(active)
        if champion is None:
            # A champion that cannot be scored (its artifact or features no longer fit) must
            # not block every challenger forever: fall back to the scores, and say so.
            seed = score_verdict(model["composite_score"], active["composite_score"], 0.0)
            return Verdict(
                seed.passed,
                "the champion could not be scored on the challenger's test bars; compared by "
                f"composite score instead: {seed.rule}",
                {**seed.details, **against},
            )
        verdict = promotion_verdict(bar_returns, champion, self.policy, n_challengers=n_challengers)
        return Verdict(verdict.passed, verdict.rule, {**verdict.details, **against})

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
                previous, _ = self._rollback_target(conn, symbol, active, operator=True)
                if previous is None:
                    raise ValueError(
                        f"{symbol} has no earlier version to roll back to (one of the same "
                        "horizon, above the activation floor and not rolled back for a "
                        "regression); name one with to_version"
                    )
                target = previous
            details = {
                "requested": "rollback",
                "to_version": target["version"],
                "from_version": None if active is None else active["version"],
            }
            self._activate(conn, target, reason="rollback", details=details)
            # In the rollback's transaction: the alert commits with it, or neither does.
            alert = queue_alert(
                self.brain,
                "model_rollback",
                {
                    "symbol": symbol,
                    "model_id": target["model_id"],
                    "version": target["version"],
                    "trigger": "operator",
                },
            )
        # After the commit: the webhook may be slow or down, and must not hold the symbol's lock.
        dispatch_alert(self.brain, alert)
        result = self.brain.get_model(target["model_id"])
        assert result is not None
        return result

    def history(self, symbol: str) -> pd.DataFrame:
        return self.brain.get_activation_history(symbol)

    def baseline(self, model_id: str) -> dict[str, float]:
        """The metrics a model was last activated with: the seed's rollback baseline."""
        with self.brain.transaction() as conn:
            return self._baseline(
                conn, self.brain._require_model(conn, check.text(model_id, "model_id"))
            )

    def assess(
        self,
        model_id: str,
        new_metrics: Mapping[str, float],
        rollback_threshold: float = 0.05,
        *,
        monitored: Sequence[str] = DEFAULT_MONITORED,
    ) -> dict[str, Any]:
        """The rollback assessment of ``model_id``'s live metrics under this policy (no writes)."""
        threshold = _threshold(rollback_threshold)
        with self.brain.transaction() as conn:
            model = self.brain._require_model(conn, check.text(model_id, "model_id"))
            return self._assess(conn, model, new_metrics, threshold, monitored)

    def _assess(
        self,
        conn: psycopg.Connection,
        model: Mapping[str, Any],
        live: Mapping[str, float],
        threshold: float,
        monitored: Sequence[str],
    ) -> dict[str, Any]:
        registration = {
            k: float(v) for k, v in (model["metrics"] or {}).items() if isinstance(v, int | float)
        }
        return rollback_assessment(
            registration,
            self._baseline(conn, model),
            live,
            self.policy,
            threshold=threshold,
            monitored=monitored,
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
        as_of: object = None,
        candidates: Mapping[str, Mapping[str, float]] | None = None,
    ) -> bool:
        """Roll ``symbol`` back when the active ``model_id``'s live ``new_metrics`` regressed.

        With the default policy a regression is a live Sharpe ratio more than the threshold
        (5%) below the version's deflated test Sharpe ratio AND significantly below it (see
        decisions.policy); with ``rollback_confidence=None`` it is the seed's rule, any
        monitored metric more than the threshold below the activation baseline.

        No automatic rollback happens within ``cooldown_bars`` of the symbol's last automatic
        activation change (``as_of``: the last bar of the live window). The target is the most
        recently active earlier version of the same horizon that is above the activation floor,
        was not itself rolled back for a regression, and, when ``candidates`` carries its live
        metrics on the same recent bars, has not regressed there too. When none qualifies the
        symbol stands aside (no active version) under the default policy, and keeps its model
        with a warning under the seed's.

        Returns True when the active model was taken out. A model that is no longer active
        (already rolled back, or replaced) is left alone: the same check run twice acts once.
        """
        threshold = _threshold(rollback_threshold)
        model_id = check.text(model_id, "model_id")
        symbol = check.symbol(symbol)
        values = check.metrics(new_metrics, "new_metrics")
        for metric in monitored:
            relative_degradation(metric, 0.0, 0.0)  # unknown direction -> ValueError up front
        stamp = _as_of(as_of)
        with self.brain.transaction() as conn:
            model = self._locked_model(conn, symbol, model_id)
            active = self._active(conn, symbol)
            if active is None or active["model_id"] != model_id:
                return False
            assessment = self._assess(conn, model, values, threshold, monitored)
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
                "rule": assessment.get("rule"),
                "p_value": assessment.get("p_value"),
                "comparisons": assessment["comparisons"],
                "as_of": stamp,
            }

            def warn(reason: str, message: str) -> None:
                self.brain.record_activation_event(
                    conn,
                    symbol,
                    model_id,
                    model["version"],
                    action="warning",
                    reason=reason,
                    details={**details, "message": message},
                )

            waited = self._bars_since_last_change(conn, symbol, stamp, values)
            if (
                self.policy.cooldown_bars
                and waited is not None
                and waited < self.policy.cooldown_bars
            ):
                warn(
                    "rollback_deferred",
                    f"regressed, but only {waited:.0f} bars since the last automatic change; "
                    f"the cooldown is {self.policy.cooldown_bars} bars",
                )
                return False
            target, skipped = self._rollback_target(conn, symbol, model, candidates, threshold)
            details["skipped"] = skipped
            if target is not None:
                details["rolled_back_to"] = target["model_id"]
                self._activate(conn, target, reason="rollback", details=details)
                event = "model_rollback"
            elif self.policy.rollback_confidence is not None:
                self.brain._deactivate(
                    conn,
                    symbol,
                    reason="rollback",
                    details={**details, "stand_aside": True},
                )
                event = "model_stand_aside"
            else:
                warn("rollback_unavailable", "no earlier version to roll back to")
                event = "model_rollback_unavailable"
            # In the rollback's transaction, so that a crash right after the commit cannot lose
            # the alert: the outbox keeps it until it is delivered.
            alert = queue_alert(
                self.brain,
                event,
                {
                    "symbol": symbol,
                    "regressed_model_id": model_id,
                    "rolled_back_to": details.get("rolled_back_to"),
                    "metric": worst["metric"],
                    "baseline": worst["baseline"],
                    "new": worst["new"],
                    "relative_degradation": round(worst["relative_degradation"], 4),
                    "threshold": threshold,
                    "p_value": assessment.get("p_value"),
                    "trigger": "metric_regression",
                },
            )
        # After the commit: the webhook may be slow or down, and must not hold the symbol's lock.
        dispatch_alert(self.brain, alert)
        return event != "model_rollback_unavailable"

    # -- unloadable artifacts -----------------------------------------------------------------

    def fall_back_from_unloadable(
        self, symbol: str, model_id: str, reason: str
    ) -> dict[str, Any] | None:
        """Take out ``model_id``, whose artifact cannot be loaded (``reason`` says why), and
        return the version that trades now (None: the symbol stands aside).

        When it is the active version, the target is the one a regression rollback would pick
        (the most recently active earlier version of the same horizon, above the activation
        floor, not itself withdrawn) whose own artifact loads and verifies; candidates that do
        not load are marked too and listed in the alert. With no such version the symbol stands
        aside, under every policy: keeping a model that cannot predict is not an option. When
        ``model_id`` is not active (a regime pick, a rollback candidate) it is only marked, so
        that neither the selector nor a rollback returns to it.

        One transaction under the symbol's lock: the mark, the activation change and the alert
        (``model_rollback``, ``model_stand_aside`` or ``model_artifact_unloadable``, trigger
        ``artifact_unloadable``) commit together; the alert is dispatched after the commit. A
        version already marked is left alone: racing callers act once, and alert once.
        """
        symbol = check.symbol(symbol)
        model_id = check.text(model_id, "model_id")
        reason = _error_text(reason)
        with self.brain.transaction() as conn:
            model = self._locked_model(conn, symbol, model_id)
            alert = self._withdraw_unloadable(conn, model, reason)
            active = self._active(conn, symbol)
        if alert is not None:
            dispatch_alert(self.brain, alert)
        return active

    def _withdraw_unloadable(
        self, conn: psycopg.Connection, model: Mapping[str, Any], error: str
    ) -> QueuedAlert | None:
        """Mark ``model`` unloadable and, if it is active, fall back (see
        fall_back_from_unloadable); returns the queued alert, or None when it was marked
        already. The caller holds the symbol's lock inside the transaction."""
        symbol, model_id = str(model["symbol"]), str(model["model_id"])
        if self.brain._is_withdrawn(conn, model_id):
            return None
        active = self._active(conn, symbol)
        details: dict[str, Any] = {
            "trigger": UNLOADABLE_TRIGGER,
            "unloadable_model_id": model_id,
            "unloadable_version": model["version"],
            "error": error,
        }
        target: dict[str, Any] | None = None
        if active is None or active["model_id"] != model_id:
            self._mark_unloadable(conn, model, details)
            event = "model_artifact_unloadable"
        else:
            target, skipped = self._rollback_target(conn, symbol, model, loadable=self._load_error)
            for entry in skipped:
                if entry.get("unloadable"):
                    broken = self.brain._require_model(conn, entry["model_id"])
                    self._mark_unloadable(
                        conn,
                        broken,
                        {
                            **details,
                            "unloadable_model_id": entry["model_id"],
                            "unloadable_version": entry["version"],
                            "error": entry["why"],
                        },
                    )
            details["skipped"] = skipped
            if target is not None:
                details["rolled_back_to"] = target["model_id"]
                self._activate(conn, target, reason="rollback", details=details)
                event = "model_rollback"
            else:
                self.brain._deactivate(
                    conn, symbol, reason="rollback", details={**details, "stand_aside": True}
                )
                event = "model_stand_aside"
        # In the change's transaction, so that the alert commits with it or not at all.
        return queue_alert(
            self.brain,
            event,
            {
                "symbol": symbol,
                "trigger": UNLOADABLE_TRIGGER,
                "unloadable_model_id": model_id,
                "unloadable_version": model["version"],
                "model_type": model["model_type"],
                "error": error,
                "was_active": event != "model_artifact_unloadable",
                "rolled_back_to": None if target is None else target["model_id"],
                "rolled_back_to_version": None if target is None else target["version"],
                "stand_aside": event == "model_stand_aside",
                "skipped": [
                    {"model_id": e["model_id"], "version": e["version"], "why": e["why"]}
                    for e in details.get("skipped", [])
                ],
            },
        )

    def _mark_unloadable(
        self, conn: psycopg.Connection, model: Mapping[str, Any], details: Mapping[str, Any]
    ) -> None:
        # A warning row with the trigger is the mark for a version that is not active: the
        # withdrawn() filter reads it like the deactivation row of an active one.
        self.brain.record_activation_event(
            conn,
            model["symbol"],
            model["model_id"],
            model["version"],
            action="warning",
            reason=UNLOADABLE_TRIGGER,
            details=details,
        )

    def _load_error(self, model: Mapping[str, Any]) -> str | None:
        """Why ``model``'s artifact cannot be loaded here, or None when it loads and verifies.

        Runs inside the fallback's transaction (the reads join it) and under the symbol's lock;
        at most MAX_ROLLBACK_CANDIDATES artifacts, on a path that runs once per broken version.
        """
        try:
            load_registered_model(self.brain, model)
        except UnloadableArtifactError as exc:
            return _error_text(exc.error)
        return None

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

    @staticmethod
    def _bars_since_last_change(
        conn: psycopg.Connection, symbol: str, as_of: str | None, live: Mapping[str, float]
    ) -> float | None:
        """Bars between the symbol's last automatic activation change and ``as_of``."""
        ppy = live.get("periods_per_year")
        if as_of is None or not ppy:
            return None
        row = conn.execute(
            """SELECT details ->> 'as_of' FROM model_activations
               WHERE symbol = %s AND action IN ('activated', 'deactivated')
                 AND details ->> 'as_of' IS NOT NULL
               ORDER BY activation_id DESC LIMIT 1""",
            (symbol,),
        ).fetchone()
        if row is None:
            return None
        seconds = (pd.Timestamp(as_of) - pd.Timestamp(row[0])).total_seconds()
        return seconds / (SECONDS_PER_YEAR / float(ppy))

    def _locked_model(self, conn: psycopg.Connection, symbol: str, model_id: str) -> dict[str, Any]:
        """``model_id``'s row, after checking it belongs to ``symbol``, with the symbol locked."""
        model = self.brain._require_model(conn, model_id)
        if model["symbol"] != symbol:
            raise UnknownModelError(
                f"model {model_id} belongs to symbol {model['symbol']!r}, not {symbol!r}"
            )
        self.brain._lock_symbol(conn, symbol)
        return model

    def rollback_candidates(self, symbol: str) -> list[dict[str, Any]]:
        """Earlier versions a rollback of ``symbol`` would consider, most recently active first
        (before the eligibility checks that need their live metrics)."""
        symbol = check.symbol(symbol)
        with self.brain.transaction() as conn:
            active = self._active(conn, symbol)
            return [
                self.brain._require_model(conn, model_id)
                for model_id in self._candidate_ids(conn, symbol, active)
            ]

    @staticmethod
    def _candidate_ids(
        conn: psycopg.Connection, symbol: str, current: Mapping[str, Any] | None
    ) -> list[str]:
        rows = conn.execute(
            "SELECT a.model_id, max(a.activation_id) AS last FROM model_activations a"  # noqa: S608
            " WHERE a.symbol = %(symbol)s AND a.action = 'activated'"
            " AND a.model_id IS DISTINCT FROM %(current)s"
            f" AND NOT {withdrawn('a')}"
            " GROUP BY a.model_id ORDER BY last DESC LIMIT %(limit)s",
            {
                "symbol": symbol,
                "current": None if current is None else current["model_id"],
                "limit": MAX_ROLLBACK_CANDIDATES,
            },
        ).fetchall()
        return [str(row[0]) for row in rows]

    def _rollback_target(
        self,
        conn: psycopg.Connection,
        symbol: str,
        current: Mapping[str, Any] | None,
        candidates: Mapping[str, Mapping[str, float]] | None = None,
        threshold: float = 0.05,
        *,
        operator: bool = False,
        loadable: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The most recently active other version that may trade again, and why the ones
        before it were passed over. With ``loadable`` (the reason a version's artifact cannot
        be loaded, or None) an eligible version must also load; one that does not is skipped
        with ``unloadable: True``."""
        skipped: list[dict[str, Any]] = []
        for model_id in self._candidate_ids(conn, symbol, current):
            candidate = self.brain._require_model(conn, model_id)
            why = self._not_eligible(conn, candidate, current, candidates, threshold, operator)
            if why is None and loadable is not None and (error := loadable(candidate)):
                skipped.append(
                    {
                        "model_id": model_id,
                        "version": candidate["version"],
                        "why": error,
                        "unloadable": True,
                    }
                )
                continue
            if why is None:
                return candidate, skipped
            skipped.append({"model_id": model_id, "version": candidate["version"], "why": why})
        return None, skipped

    def _not_eligible(
        self,
        conn: psycopg.Connection,
        candidate: Mapping[str, Any],
        current: Mapping[str, Any] | None,
        candidates: Mapping[str, Mapping[str, float]] | None,
        threshold: float,
        operator: bool = False,
    ) -> str | None:
        if (
            current is not None
            and current["horizon"] is not None
            and candidate["horizon"] is not None
            and candidate["horizon"] != current["horizon"]
        ):
            return f"horizon {candidate['horizon']} differs from {current['horizon']}"
        if candidate["credible"] is False:
            return "below the activation floor"
        # A version never judged (registered before the floor, or under the seed's rules) is
        # judged now for an automatic rollback; an operator asked for it and gets it.
        if candidate["credible"] is None and self.policy.has_floor and not operator:
            floor = floor_verdict(candidate["metrics"] or {}, self.policy)
            if not floor.passed:
                return f"below the activation floor: {floor.rule}"
        live = (candidates or {}).get(str(candidate["model_id"]))
        # The seed's rule took the most recent earlier version whatever it did since.
        if live is not None and self.policy.rollback_confidence is not None:
            assessment = self._assess(
                conn, candidate, check.metrics(live, "candidates"), threshold, DEFAULT_MONITORED
            )
            if assessment["regressed"]:
                return f"regressed on the same recent bars too ({assessment.get('rule')})"
        return None
