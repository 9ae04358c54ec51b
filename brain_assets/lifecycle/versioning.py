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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from brain_assets.alerts import AlertBatch, transaction_with_alerts
from brain_assets.calendar import SECONDS_PER_YEAR
from brain_assets.decisions.policy import (
    DEFAULT_FLOOR,
    DEFAULT_MONITORED,
    FLOORS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    Assessment,
    DecisionPolicy,
    Verdict,
    assess_regression,
    benchmarks,
    floor_verdict,
    live_lower_bound,
    promotion_verdict,
    relative_degradation,
    rollback_assessment,
    rollback_threshold,
    score_verdict,
)
from brain_assets.defaults import ROLLBACK_THRESHOLD
from brain_assets.events import log_event
from brain_assets.provenance import refused_synthetic, synthetic_bars_allowed
from brain_assets.records import ModelVersion, Transition, TransitionAction
from brain_assets.store import validation as check
from brain_assets.store.library import BrainStore
from brain_assets.store.registry import UNLOADABLE_TRIGGER
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

ChampionScorer = Callable[[ModelVersion], "pd.Series | None"]
"""Given the active version's registry row, its per-bar net returns on the challenger's test
bars that it was not trained on (None when it cannot be scored). A scorer that raises
UnloadableArtifactError for the active version has it taken out before the challenger is
judged (see ModelVersioning.fall_back_from_unloadable)."""

MAX_ROLLBACK_CANDIDATES = 5
"""Earlier versions a rollback considers, most recently active first."""


def _regression_details(
    model_id: str,
    assessment: Assessment,
    threshold: float,
    values: Mapping[str, float],
    stamp: str | None,
) -> dict[str, Any]:
    """What a regression's activation or warning row records."""
    worst = assessment.worst or {}
    # "baseline" on an activation row is the activated model's own baseline, so the
    # regressed model's numbers go under their own names.
    return {
        "trigger": str(assessment.trigger or "metric_regression"),
        "regressed_model_id": model_id,
        "metric": worst.get("metric"),
        "metric_baseline": worst.get("baseline"),
        "new_value": worst.get("new"),
        "relative_degradation": worst.get("relative_degradation"),
        "threshold": threshold,
        "rule": assessment.rule,
        "p_value": assessment.p_value,
        "comparisons": assessment.comparisons,
        "cumulative": assessment.cumulative,
        "drift": assessment.drift,
        # The live window against standing aside and holding over the same bars.
        "benchmarks": benchmarks(values),
        "as_of": stamp,
    }


def _regression_alert(
    symbol: str,
    model_id: str,
    assessment: Assessment,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """The alert payload of a regression's rollback, stand-aside or warning."""
    worst = assessment.worst or {}
    return {
        "symbol": symbol,
        "regressed_model_id": model_id,
        "rolled_back_to": details.get("rolled_back_to"),
        "metric": worst.get("metric"),
        "baseline": worst.get("baseline"),
        "new": worst.get("new"),
        "relative_degradation": None
        if worst.get("relative_degradation") is None
        else round(worst["relative_degradation"], 4),
        "threshold": details["threshold"],
        "p_value": assessment.p_value,
        "trigger": details["trigger"],
        "rule": assessment.rule,
    }


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


def _kept_inactive_reason(model: ModelVersion, floor: Verdict, synthetic_allowed: bool) -> str:
    if model.synthetic_bars and not synthetic_allowed:
        return "synthetic_bars"
    return "below_floor" if not floor.passed else "challenger"


class ModelVersioning:
    """Versions of each symbol's model: which one trades, and why it changed.

    The decisions are made here; every read and state switch they need is a BrainStore call
    that joins the one transaction each public method opens, under the symbol's lock."""

    def __init__(
        self,
        brain: BrainStore,
        *,
        tolerance: float = 0.0,
        policy: DecisionPolicy | None = None,
        synthetic_allowed: bool | None = None,
    ) -> None:
        """``synthetic_allowed``: whether versions trained on synthetic bars may trade (by
        default only where the deployment's market source is 'synthetic')."""
        self.brain = brain
        self.synthetic_allowed = (
            synthetic_bars_allowed() if synthetic_allowed is None else bool(synthetic_allowed)
        )
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
        BrainStore.register_model. With a ``fingerprint`` that the symbol already has, the
        existing version's model_id is returned and nothing is written or decided."""
        with transaction_with_alerts(self.brain) as alerts:
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
            model = self.brain.lock_model(model_id)
            active = self.brain.get_active_model(model.symbol)
            if active is not None and active.synthetic_bars and not self.synthetic_allowed:
                # Activated where synthetic bars were chosen (the demo's) on this Brain: here it
                # never trades, so it is taken out and the new version judged without it.
                rule = refused_synthetic(active.version, model.symbol)
                self._apply("stand_aside", active, "synthetic_bars", {"rule": rule}, active)
                active = None
            try:
                decision = self._promotion_decision(
                    model, active, floor, bar_returns, champion_returns, n_challengers
                )
            except UnloadableArtifactError as exc:
                if active is None or exc.model_id != active.model_id:
                    raise
                # A champion that cannot be loaded cannot trade either: it is taken out here,
                # in this transaction, and the challenger faces whatever trades after that.
                self._withdraw_unloadable(alerts, active, _error_text(exc.error))
                active = self.brain.get_active_model(model.symbol)
                decision = self._promotion_decision(
                    model, active, floor, bar_returns, champion_returns, n_challengers
                )
            if model.synthetic_bars and not self.synthetic_allowed:
                decision = Verdict(
                    False, refused_synthetic(model.version, model.symbol), decision.details
                )
            record = {**decision.to_json(), "floor": floor.to_json(), "as_of": _as_of(as_of)}
            if decision.passed:
                self._apply("activate", model, "promotion", record, active)
            else:
                why = _kept_inactive_reason(model, floor, self.synthetic_allowed)
                self._apply("keep_inactive", model, why, record, active)
        return model_id

    def _promotion_decision(
        self,
        model: ModelVersion,
        active: ModelVersion | None,
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
            "active_model_id": active.model_id,
            "active_version": active.version,
            "active_score": active.composite_score,
            "candidate_score": model.composite_score,
        }
        if (
            active.horizon is not None
            and model.horizon is not None
            and active.horizon != model.horizon
        ):
            return Verdict(
                False,
                f"horizon {model.horizon} differs from the active version's "
                f"{active.horizon}: versions of different horizons do not compete (an "
                "operator promotes across horizons)",
                against,
            )
        if self.policy.promotion_confidence is None:
            seed = score_verdict(model.composite_score, active.composite_score, self.tolerance)
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
            seed = score_verdict(model.composite_score, active.composite_score, 0.0)
            return Verdict(
                seed.passed,
                "the champion could not be scored on the challenger's test bars; compared by "
                f"composite score instead: {seed.rule}",
                {**seed.details, **against},
            )
        verdict = promotion_verdict(bar_returns, champion, self.policy, n_challengers=n_challengers)
        return Verdict(verdict.passed, verdict.rule, {**verdict.details, **against})

    # -- operators ----------------------------------------------------------------------------

    def promote(self, model_id: str, *, reason: str = "manual") -> ModelVersion:
        """Make ``model_id`` active now, whatever its score (an operator's decision)."""
        model_id = check.text(model_id, "model_id")
        with self.brain.transaction():
            model = self.brain.lock_model(model_id)
            self._apply("activate", model, reason, {"requested": "promote"}, None, checked=False)
        result = self.brain.get_model(model_id)
        assert result is not None
        return result

    def rollback(self, symbol: str, to_version: int | None = None) -> ModelVersion:
        """Reactivate ``to_version``, or the previous good version; ValueError if there is none."""
        symbol = check.symbol(symbol)
        with transaction_with_alerts(self.brain) as alerts:
            self.brain.lock_symbol(symbol)
            active = self.brain.get_active_model(symbol)
            if to_version is not None:
                version = check.positive_int(to_version, "to_version")
                target = self.brain.get_model_version(symbol, version)
                if target is None:
                    raise ValueError(f"{symbol} has no version {version}")
            else:
                target, _ = self._rollback_target(symbol, active, operator=True)
                if target is None:
                    raise ValueError(
                        f"{symbol} has no earlier version to roll back to (one of the same "
                        "horizon, above the activation floor and not rolled back for a "
                        "regression); name one with to_version"
                    )
            details = {
                "requested": "rollback",
                "to_version": target.version,
                "from_version": None if active is None else active.version,
            }
            self._apply("activate", target, "rollback", details, active)
            alerts.queue(
                "model_rollback",
                {
                    "symbol": symbol,
                    "model_id": target.model_id,
                    "version": target.version,
                    "trigger": "operator",
                },
            )
        result = self.brain.get_model(target.model_id)
        assert result is not None
        return result

    def history(self, symbol: str) -> pd.DataFrame:
        return self.brain.get_activation_history(symbol)

    def baseline(self, model_id: str) -> dict[str, float]:
        """The metrics a model was last activated with: the seed's rollback baseline."""
        with self.brain.transaction():
            return self._baseline(self.brain.require_model(check.text(model_id, "model_id")))

    def assess(
        self,
        model_id: str,
        new_metrics: Mapping[str, float],
        rollback_threshold: float = ROLLBACK_THRESHOLD,
        *,
        monitored: Sequence[str] = DEFAULT_MONITORED,
    ) -> Assessment:
        """The rollback assessment of ``model_id``'s live metrics under this policy (no writes)."""
        threshold = _threshold(rollback_threshold)
        with self.brain.transaction():
            model = self.brain.require_model(check.text(model_id, "model_id"))
            return self._assess(model, new_metrics, threshold, monitored)

    def _assess(
        self,
        model: ModelVersion,
        live: Mapping[str, float],
        threshold: float,
        monitored: Sequence[str],
    ) -> Assessment:
        registration = {
            k: float(v) for k, v in (model.metrics or {}).items() if isinstance(v, int | float)
        }
        return rollback_assessment(
            registration,
            self._baseline(model),
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
        rollback_threshold: float = ROLLBACK_THRESHOLD,
        *,
        monitored: Sequence[str] = DEFAULT_MONITORED,
        as_of: object = None,
        candidates: Mapping[str, Mapping[str, float]] | None = None,
    ) -> bool:
        """Roll ``symbol`` back when the active ``model_id``'s live ``new_metrics`` regressed.

        With the default policy a regression is a live Sharpe ratio more than the threshold
        (by default ROLLBACK_THRESHOLD) below the version's deflated test Sharpe ratio AND
        significantly below it (see decisions.policy); with ``rollback_confidence=None`` it is
        the seed's rule, any monitored metric more than the threshold below the activation
        baseline.

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
        # The outbox row commits with the rollback, so that a crash right after the commit
        # cannot lose the alert.
        with transaction_with_alerts(self.brain) as alerts:
            model = self.brain.lock_model(model_id, symbol=symbol)
            active = self.brain.get_active_model(symbol)
            if active is None or active.model_id != model_id:
                return False
            assessment = self._assess(model, values, threshold, monitored)
            if not assessment.regressed:
                return False
            details = _regression_details(model_id, assessment, threshold, values, stamp)
            if self._deferred_by_cooldown(symbol, model, details, values, stamp):
                return False
            event = self._take_out_regressed(symbol, model, details, candidates, threshold)
            alerts.queue(event, _regression_alert(symbol, model_id, assessment, details))
        return event != "model_rollback_unavailable"

    def _warn_regressed(
        self,
        symbol: str,
        model: ModelVersion,
        details: Mapping[str, Any],
        reason: str,
        message: str,
    ) -> None:
        self._apply("warn", model, reason, {**details, "message": message}, model)

    def _deferred_by_cooldown(
        self,
        symbol: str,
        model: ModelVersion,
        details: Mapping[str, Any],
        values: Mapping[str, float],
        stamp: str | None,
    ) -> bool:
        """True (and a warning recorded) when the rollback waits for the cooldown to pass."""
        waited = self._bars_since_last_change(symbol, stamp, values)
        # The cooldown protects a version just chosen from the window test's noise; the
        # cumulative test is valid at every look and needs none.
        if (
            details["trigger"] == "metric_regression"
            and self.policy.cooldown_bars
            and waited is not None
            and waited < self.policy.cooldown_bars
        ):
            self._warn_regressed(
                symbol,
                model,
                details,
                "rollback_deferred",
                f"regressed, but only {waited:.0f} bars since the last automatic change; "
                f"the cooldown is {self.policy.cooldown_bars} bars",
            )
            return True
        return False

    def _take_out_regressed(
        self,
        symbol: str,
        model: ModelVersion,
        details: dict[str, Any],
        candidates: Mapping[str, Mapping[str, float]] | None,
        threshold: float,
    ) -> str:
        """Roll back, stand aside or (seed policy, no target) warn; returns the alert's event."""
        target, skipped = self._rollback_target(
            symbol, model, candidates, threshold, on_recent_bars=True
        )
        details["skipped"] = skipped
        if target is not None:
            details["rolled_back_to"] = target.model_id
            self._apply("activate", target, "rollback", details, model)
            return "model_rollback"
        if self.policy.rollback_confidence is not None:
            self._apply("stand_aside", model, "rollback", {**details, "stand_aside": True}, model)
            return "model_stand_aside"
        self._warn_regressed(
            symbol, model, details, "rollback_unavailable", "no earlier version to roll back to"
        )
        return "model_rollback_unavailable"

    # -- unloadable artifacts -----------------------------------------------------------------

    def fall_back_from_unloadable(
        self, symbol: str, model_id: str, reason: str
    ) -> ModelVersion | None:
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
        with transaction_with_alerts(self.brain) as alerts:
            model = self.brain.lock_model(model_id, symbol=symbol)
            self._withdraw_unloadable(alerts, model, reason)
            active = self.brain.get_active_model(symbol)
        return active

    def _withdraw_unloadable(self, alerts: AlertBatch, model: ModelVersion, error: str) -> None:
        """Mark ``model`` unloadable and, if it is active, fall back (see
        fall_back_from_unloadable), queueing the alert; nothing when it was marked already.
        The caller holds the symbol's lock inside the transaction."""
        symbol, model_id = str(model.symbol), str(model.model_id)
        if self.brain.is_withdrawn(model_id):
            return
        active = self.brain.get_active_model(symbol)
        details: dict[str, Any] = {
            "trigger": UNLOADABLE_TRIGGER,
            "unloadable_model_id": model_id,
            "unloadable_version": model.version,
            "error": error,
        }
        target: ModelVersion | None = None
        if active is None or active.model_id != model_id:
            self._mark_unloadable(model, details)
            event = "model_artifact_unloadable"
        else:
            target, skipped = self._rollback_target(symbol, model, loadable=self._load_error)
            for entry in skipped:
                if entry.get("unloadable"):
                    self._mark_unloadable(
                        self.brain.require_model(entry["model_id"]),
                        {
                            **details,
                            "unloadable_model_id": entry["model_id"],
                            "unloadable_version": entry["version"],
                            "error": entry["why"],
                        },
                    )
            details["skipped"] = skipped
            if target is not None:
                details["rolled_back_to"] = target.model_id
                self._apply("activate", target, "rollback", details, model)
                event = "model_rollback"
            else:
                aside = {**details, "stand_aside": True}
                self._apply("stand_aside", model, "rollback", aside, model)
                event = "model_stand_aside"
        alerts.queue(
            event,
            {
                "symbol": symbol,
                "trigger": UNLOADABLE_TRIGGER,
                "unloadable_model_id": model_id,
                "unloadable_version": model.version,
                "model_type": model.model_type,
                "error": error,
                "was_active": event != "model_artifact_unloadable",
                "rolled_back_to": None if target is None else target.model_id,
                "rolled_back_to_version": None if target is None else target.version,
                "stand_aside": event == "model_stand_aside",
                "skipped": [
                    {"model_id": e["model_id"], "version": e["version"], "why": e["why"]}
                    for e in details.get("skipped", [])
                ],
            },
        )

    def _mark_unloadable(self, model: ModelVersion, details: Mapping[str, Any]) -> None:
        # A warning row with the trigger is the mark for a version that is not active: the
        # withdrawn() filter reads it like the deactivation row of an active one.
        self._apply("warn", model, UNLOADABLE_TRIGGER, details, None, checked=False)

    def _load_error(self, model: ModelVersion) -> str | None:
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

    def _apply(
        self,
        action: TransitionAction,
        model: ModelVersion,
        reason: str,
        details: Mapping[str, Any],
        active: ModelVersion | None,
        *,
        checked: bool = True,
    ) -> None:
        """Have the store carry out the decision about ``model`` made with ``active`` trading
        (see BrainStore.apply_transition); ``checked=False`` for an operator's choice and for
        marks that switch nothing."""
        change = Transition(
            action,
            model.symbol,
            model.model_id,
            reason,
            details,
            expected_active=None if active is None else active.model_id,
            check_active=checked,
        )
        self.brain.apply_transition(change, synthetic_allowed=self.synthetic_allowed)
        if action == "activate" and reason == "promotion":
            log_event(
                "model_promoted",
                symbol=model.symbol,
                model_id=model.model_id,
                version=model.version,
                composite_score=model.composite_score,
            )

    def _baseline(self, model: ModelVersion) -> dict[str, float]:
        """The metrics recorded when the model was last activated (its registration metrics
        for a model activated before baselines were recorded)."""
        baseline = self.brain.activation_baseline(model.model_id) or model.metrics
        return {k: float(v) for k, v in baseline.items() if isinstance(v, int | float)}

    def _bars_since_last_change(
        self, symbol: str, as_of: str | None, live: Mapping[str, float]
    ) -> float | None:
        """Bars between the symbol's last automatic activation change and ``as_of``."""
        ppy = live.get("periods_per_year")
        if as_of is None or not ppy:
            return None
        last = self.brain.last_automatic_change(symbol)
        if last is None:
            return None
        seconds = (pd.Timestamp(as_of) - pd.Timestamp(last)).total_seconds()
        return seconds / (SECONDS_PER_YEAR / float(ppy))

    def rollback_candidates(self, symbol: str) -> list[ModelVersion]:
        """Earlier versions a rollback of ``symbol`` would consider, most recently active first
        (before the eligibility checks that need their live metrics)."""
        symbol = check.symbol(symbol)
        with self.brain.transaction():
            return self._candidates(symbol, self.brain.get_active_model(symbol))

    def _candidates(self, symbol: str, current: ModelVersion | None) -> list[ModelVersion]:
        return self.brain.previously_active(
            symbol,
            excluding=None if current is None else str(current.model_id),
            limit=MAX_ROLLBACK_CANDIDATES,
        )

    def _rollback_target(
        self,
        symbol: str,
        current: ModelVersion | None,
        candidates: Mapping[str, Mapping[str, float]] | None = None,
        threshold: float = ROLLBACK_THRESHOLD,
        *,
        operator: bool = False,
        loadable: Callable[[ModelVersion], str | None] | None = None,
        on_recent_bars: bool = False,
    ) -> tuple[ModelVersion | None, list[dict[str, Any]]]:
        """The most recently active other version that may trade again, and why the ones
        before it were passed over. With ``loadable`` (the reason a version's artifact cannot
        be loaded, or None) an eligible version must also load; one that does not is skipped
        with ``unloadable: True``."""
        skipped: list[dict[str, Any]] = []
        for candidate in self._candidates(symbol, current):
            model_id = str(candidate.model_id)
            why = self._not_eligible(
                candidate, current, candidates, threshold, operator, on_recent_bars
            )
            if why is None and loadable is not None and (error := loadable(candidate)):
                skipped.append(
                    {
                        "model_id": model_id,
                        "version": candidate.version,
                        "why": error,
                        "unloadable": True,
                    }
                )
                continue
            if why is None:
                return candidate, skipped
            skipped.append({"model_id": model_id, "version": candidate.version, "why": why})
        return None, skipped

    def _not_eligible(
        self,
        candidate: ModelVersion,
        current: ModelVersion | None,
        candidates: Mapping[str, Mapping[str, float]] | None,
        threshold: float,
        operator: bool = False,
        on_recent_bars: bool = False,
    ) -> str | None:
        """Why ``candidate`` may not trade again, or None. With ``on_recent_bars`` (a rollback
        for a live regression, under the default policy) it must also be credibly good on the
        recent bars that ``candidates`` scored it on: returning to a version that merely did not
        regress would hand the engine another unproven model."""
        if (
            current is not None
            and current.horizon is not None
            and candidate.horizon is not None
            and candidate.horizon != current.horizon
        ):
            return f"horizon {candidate.horizon} differs from {current.horizon}"
        if candidate.synthetic_bars and not self.synthetic_allowed:
            return "trained on synthetic bars; this deployment's bars are real"
        if candidate.credible is False:
            return "below the activation floor"
        # A version never judged (registered before the floor, or under the seed's rules) is
        # judged now for an automatic rollback; an operator asked for it and gets it.
        if candidate.credible is None and self.policy.has_floor and not operator:
            floor = floor_verdict(candidate.metrics or {}, self.policy)
            if not floor.passed:
                return f"below the activation floor: {floor.rule}"
        # The seed's rule took the most recent earlier version whatever it did since; an
        # operator's choice is theirs; an unloadable artifact's fallback is not about skill.
        if self.policy.rollback_confidence is None or operator:
            return None
        live = (candidates or {}).get(str(candidate.model_id))
        if live is None:
            if on_recent_bars:
                return "not scored on the recent bars, so not credibly good on them"
            return None
        values = check.metrics(live, "candidates")
        confidence = self.policy.floor_confidence or self.policy.rollback_confidence
        bound = live_lower_bound(values, confidence)
        if on_recent_bars and (bound is None or not bound > 0):
            shown = "undefined" if bound is None else f"{bound:.2f}"
            return (
                f"not credibly good on the same recent bars (Sharpe ratio "
                f"{values.get('sharpe_ratio', float('nan')):.2f}, {confidence:.0%} lower bound "
                f"{shown})"
            )
        assessment = self._assess(candidate, values, threshold, DEFAULT_MONITORED)
        if assessment.regressed:
            return f"regressed on the same recent bars too ({assessment.rule})"
        return None
