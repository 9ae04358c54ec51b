"""Replay the daily loop over history: how a decision policy would have traded a symbol.

At each step the bars up to that time are published; then, as in production and through the
same functions the Dagster assets call:

1. live monitoring judges the active model on the bars it has not seen (``live_model_metrics``),
2. the rollback acts on that verdict (``model_registry_state``, the sensor's job),
3. the retrain cleans the bars, builds the features, fits and evaluates every model type and
   registers the new versions through the promotion rules (``market_data`` .. ``registry_entries``;
   feature importance and per-regime scores are left out: they decide nothing).

The replay keeps the engine's account as a user's capital would see it: the position it holds
from bar to bar through the active version's no-trade band, kept from one step to the next and
closed when the symbol stands aside, every fee paid. It records per step the version that trades
next, what the account earned on the step's new bars (zero while standing aside), what holding
the symbol earned on the same bars, the live verdict and every activation decision, in the Brain
(``replay_runs``, ``replay_steps``); the summary sets the account against standing aside and
holding, overall and per calendar year. The models it
registers go to the Brain it is given, which should be a scratch database: ``brain replay``
uses its own.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.calendar import periods_per_year
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.defaults import ROLLBACK_THRESHOLD
from brain_assets.evaluation.metrics import net_returns, position_changes
from brain_assets.evaluation.positions import PositionRule
from brain_assets.events import log_event
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.pipeline.bars import prepare_bars
from brain_assets.pipeline.dataset import (
    build_dataset_table,
    make_dataset,
    recent_rows,
    split_columns,
)
from brain_assets.pipeline.evaluation import SymbolEvaluation, evaluate_symbol
from brain_assets.pipeline.monitoring import (
    DEFAULT_LIVE_WINDOW_BARS,
    evaluate_active_model,
)
from brain_assets.pipeline.promotion import model_predictions
from brain_assets.pipeline.registration import register_evaluation
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol
from brain_assets.records import ModelVersion
from brain_assets.store import validation as check


@dataclass(frozen=True)
class ReplayPlan:
    """Where the replay starts, how far each step moves, and how monitoring judges."""

    start_bars: int
    """Bars published before the first step."""
    step_bars: int = 168
    """New bars per step (a week of hourly bars)."""
    steps: int = 26
    rollback_threshold: float = ROLLBACK_THRESHOLD
    min_live_bars: int = 120
    """Fewest unseen bars monitoring judges on: five days, so that a version registered at one
    weekly step is judged at the next (a week of new bars less the embargo)."""
    live_window_bars: int = DEFAULT_LIVE_WINDOW_BARS

    def __post_init__(self) -> None:
        for name in ("start_bars", "step_bars", "steps", "min_live_bars", "live_window_bars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def bars_needed(self) -> int:
        return self.start_bars + self.steps * self.step_bars


@dataclass
class ReplayResult:
    replay_id: str
    symbol: str
    timeline: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    bars: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per bar traded: the managed net return, holding's return and the position held."""


Progress = Callable[[int, int, dict[str, Any]], None]


def replay(
    brain: BrainLibrary,
    symbol: str,
    bars: pd.DataFrame,
    plan: ReplayPlan,
    *,
    settings: RetrainSettings,
    policy: DecisionPolicy,
    record: BrainLibrary | None = None,
    replay_id: str | None = None,
    progress: Progress | None = None,
    parameters: dict[str, Any] | None = None,
) -> ReplayResult:
    """Step ``symbol`` through ``bars`` (raw OHLCV, cleaned at every step like the retrain).

    ``brain`` holds the replay's models; ``record`` (default ``brain``) keeps the timeline.
    Raises ValueError when ``bars`` is shorter than the plan or the symbol already has models
    in ``brain`` (a replay starts from an empty registry).
    """
    symbol = check.symbol(symbol)
    record = record or brain
    _check_replay_input(brain, symbol, bars, plan)
    replay_id = replay_id or uuid.uuid4().hex[:12]
    record.start_replay(
        replay_id,
        symbol,
        {
            "plan": asdict(plan),
            "policy": policy.as_dict(),
            "settings": {
                "horizon": settings.horizon,
                "model_types": list(settings.trained_model_types),
                "fee_bps": settings.fee_bps,
                "train_window_bars": settings.train_window_bars,
            },
            **(parameters or {}),
        },
    )
    stepper = _Stepper(
        brain,
        record,
        symbol,
        bars,
        plan,
        settings,
        policy,
        replay_id,
        ModelVersioning(brain, policy=policy),
        _Account(settings.position_rule),
    )
    rows: list[dict[str, Any]] = []
    for step in range(plan.steps + 1):
        row = stepper.run(step)
        rows.append(row)
        if progress is not None:
            progress(step, plan.steps, row)
        log_event(
            "replay_step",
            logging.INFO,
            replay_id=replay_id,
            symbol=symbol,
            step=step,
            active_version=row["active_version"],
            events=len(row["events"]),
        )
    timeline = pd.DataFrame(rows)
    summary = {**summarize(timeline), **stepper.account.summary()}
    record.finish_replay(replay_id, summary)
    return ReplayResult(replay_id, symbol, timeline, summary, stepper.account.frame())


def _check_replay_input(
    brain: BrainLibrary, symbol: str, bars: pd.DataFrame, plan: ReplayPlan
) -> None:
    if len(bars) < plan.bars_needed():
        raise ValueError(
            f"{symbol}: the replay needs {plan.bars_needed()} bars (start {plan.start_bars} + "
            f"{plan.steps} steps of {plan.step_bars}), the source has {len(bars)}"
        )
    if not brain.list_models(symbol).empty:
        raise ValueError(
            f"{symbol} already has models in {brain.target}: a replay starts from an empty "
            "registry (use a scratch database)"
        )


@dataclass(frozen=True)
class _StepOutcome:
    live: dict[str, Any]
    as_of: pd.Timestamp
    period_return: float = 0.0
    hold_return: float = 0.0


@dataclass
class _Stepper:
    """One replay's steps: each publishes more bars, trades, monitors, retrains and records."""

    brain: BrainLibrary
    record: BrainLibrary
    symbol: str
    bars: pd.DataFrame
    plan: ReplayPlan
    settings: RetrainSettings
    policy: DecisionPolicy
    replay_id: str
    versioning: ModelVersioning
    account: _Account
    last_activation: int = 0
    """The newest activation row already reported as a step's event."""
    previous_as_of: pd.Timestamp | None = None

    def run(self, step: int) -> dict[str, Any]:
        """Runs and records step ``step``; returns its timeline row."""
        started = time.perf_counter()
        plan = self.plan
        published = self.bars.iloc[: plan.start_bars + step * plan.step_bars]
        outcome = self._decide(step, published.reset_index(drop=True))
        events = self._new_events()
        active = self.brain.get_active_model(self.symbol)
        self.record.record_replay_step(
            self.replay_id,
            step,
            as_of=outcome.as_of.isoformat(),
            active=active,
            period_return=outcome.period_return,
            hold_return=outcome.hold_return,
            live=outcome.live,
            events=events,
        )
        self.previous_as_of = outcome.as_of
        return {
            "step": step,
            "as_of": outcome.as_of,
            "active_version": None if active is None else int(active.version),
            "active_type": None if active is None else str(active.model_type),
            "period_return": outcome.period_return,
            "hold_return": outcome.hold_return,
            "live": outcome.live,
            "events": events,
            "seconds": round(time.perf_counter() - started, 2),
        }

    def _decide(self, step: int, published: pd.DataFrame) -> _StepOutcome:
        """Trades the new bars under the version held, then monitors and retrains."""
        brain, symbol, settings = self.brain, self.symbol, self.settings
        held = brain.get_active_model(symbol)
        prepared = prepare_bars(symbol, published, settings)
        if not prepared.usable:
            return _StepOutcome(
                {"blocked": prepared.valid.message}, pd.Timestamp(published["timestamp"].iloc[-1])
            )
        table = make_dataset(prepared.frame, settings.horizon, max_gap_bars=settings.max_gap_bars)
        period_return = hold_return = 0.0
        if self.previous_as_of is not None:
            period_return, hold_return = self.account.trade(
                brain, held, table, table.index[table.index > self.previous_as_of]
            )
        live = _monitor(
            brain, self.versioning, symbol, prepared.frame, self.plan, settings, self.policy
        )
        run_id = f"replay:{self.replay_id}:{step}"
        _retrain(brain, symbol, prepared.frame, settings, self.policy, run_id)
        return _StepOutcome(live, table.index[-1], period_return, hold_return)

    def _new_events(self) -> list[dict[str, Any]]:
        """The activation decisions made since the last step."""
        history = self.brain.get_activation_history(self.symbol)
        new = history[history["activation_id"] > self.last_activation]
        if not history.empty:
            self.last_activation = int(history["activation_id"].max())
        return [_event(row) for row in new.to_dict("records")]


class _Account:
    """The engine's capital through the replay: the position it holds from bar to bar (through
    the active version's band, kept across steps, closed when the symbol stands aside), net of
    every fee, beside holding the symbol over the same bars."""

    def __init__(self, rule: PositionRule) -> None:
        self.rule = rule
        self.position = 0.0
        self.bars: list[pd.DataFrame] = []

    def trade(
        self,
        brain: BrainLibrary,
        held: ModelVersion | None,
        table: pd.DataFrame,
        rows: pd.Index,
    ) -> tuple[float, float]:
        """The compounded net return of ``rows`` under ``held`` (None: standing aside), and of
        holding the symbol over them; the first period pays holding's one entry."""
        if len(rows) == 0:
            return 0.0, 0.0
        _, _, next_return = split_columns(table)
        returns = next_return.loc[rows].to_numpy(dtype=np.float64)
        if held is None:
            positions = np.zeros(len(rows))
        else:
            predictions = model_predictions(brain, held, table, rows).to_numpy()
            positions = self.rule.positions(predictions, start=int(self.position))
        net = net_returns(positions, returns, self.rule.fee_bps, held=self.position)
        # Holding pays its one entry with the first bars the replay trades.
        hold = net_returns(
            np.ones(len(rows)), returns, self.rule.fee_bps, held=float(bool(self.bars))
        )
        self.position = float(positions[-1])
        self.bars.append(
            pd.DataFrame({"managed": net, "hold": hold, "position": positions}, index=rows)
        )
        return float(np.prod(1.0 + net) - 1.0), float(np.prod(1.0 + hold) - 1.0)

    def frame(self) -> pd.DataFrame:
        """Per bar: the managed net return, holding's return and the position held."""
        if not self.bars:
            return pd.DataFrame(columns=["managed", "hold", "position"])
        return pd.concat(self.bars)

    def summary(self) -> dict[str, Any]:
        """Managed capital against standing aside (0) and holding, overall and per calendar
        year, with the fees paid and the share of bars in the market."""
        bars = self.frame()
        if bars.empty:
            return {"hold_total_return": 0.0, "stand_aside_total_return": 0.0, "by_year": {}}
        growth = (1.0 + bars[["managed", "hold"]]).prod() - 1.0
        stamps = pd.DatetimeIndex(bars.index)
        years = (1.0 + bars[["managed", "hold"]]).groupby(stamps.year).prod() - 1.0
        traded = position_changes(bars["position"].to_numpy()).sum()
        return {
            "hold_total_return": float(growth["hold"]),
            "stand_aside_total_return": 0.0,
            "excess_return_vs_hold": float(growth["managed"] - growth["hold"]),
            "bars_in_market": int((bars["position"] != 0).sum()),
            "fees_paid": float(traded * self.rule.fee_bps / 1e4),
            "by_year": {
                str(year): {"managed": float(row["managed"]), "hold": float(row["hold"])}
                for year, row in years.iterrows()
            },
            "worst_year_return": float(years["managed"].min()),
        }


def _monitor(
    brain: BrainLibrary,
    versioning: ModelVersioning,
    symbol: str,
    frame: pd.DataFrame,
    plan: ReplayPlan,
    settings: RetrainSettings,
    policy: DecisionPolicy,
) -> dict[str, Any]:
    try:
        live = evaluate_active_model(
            brain,
            symbol,
            frame,
            settings,
            rollback_threshold=plan.rollback_threshold,
            min_bars=plan.min_live_bars,
            window_bars=plan.live_window_bars,
            policy=policy,
        )
    except ValueError as exc:
        return {"skipped": str(exc)}
    if live is None:
        return {"skipped": "no active model"}
    rolled_back = versioning.check_and_rollback(
        live.model_id,
        symbol,
        live.metrics,
        plan.rollback_threshold,
        as_of=live.as_of,
        candidates=live.candidates,
    )
    assessment = live.assessment
    return {
        "version": live.version,
        "bars": live.n_bars,
        "sharpe_ratio": live.metrics.get("sharpe_ratio"),
        "composite_score": live.metrics.get("composite_score"),
        "baseline_sharpe": assessment.window.get("baseline_sharpe"),
        "p_value": assessment.p_value,
        "regressed": bool(assessment.regressed),
        "rolled_back": rolled_back,
    }


def _retrain(
    brain: BrainLibrary,
    symbol: str,
    frame: pd.DataFrame,
    settings: RetrainSettings,
    policy: DecisionPolicy,
    run_id: str,
) -> None:
    dataset = build_dataset_table(frame, settings.horizon, max_gap_bars=settings.max_gap_bars)
    table = recent_rows(dataset.table, settings.train_window_bars)
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(symbol, table, settings)
    evaluation = SymbolEvaluation(
        evaluate_symbol(symbol, table, artifacts, settings, ppy), {}, pd.Series(dtype=object), ppy
    )
    register_evaluation(
        brain,
        symbol,
        table,
        artifacts,
        evaluation.to_json(),
        settings,
        policy=policy,
        run_id=run_id,
    )


def _event(row: dict[Any, Any]) -> dict[str, Any]:
    details = row.get("details") or {}
    return {
        "action": row["action"],
        "reason": row["reason"],
        "version": int(row["version"]),
        "rule": details.get("rule") or details.get("message"),
        "p_value": details.get("p_value"),
    }


def summarize(timeline: pd.DataFrame) -> dict[str, Any]:
    """Counts a policy is judged by: rollbacks, promotions, active changes, time standing aside
    and the compounded return of the versions that traded."""

    def count(action: str, reason: str) -> int:
        return sum(
            1
            for events in timeline["events"]
            for e in events
            if e["action"] == action and e["reason"] == reason
        )

    versions = [None if pd.isna(v) else int(v) for v in timeline["active_version"]]
    changes = sum(1 for a, b in itertools.pairwise(versions) if a != b)
    returns = timeline["period_return"].to_numpy(dtype=float)
    # The version decided at step k trades the bars of step k + 1.
    trading = [v for v in versions[:-1] if v is not None]
    return {
        "steps": int(len(timeline) - 1),
        "steps_trading": len(trading),
        "versions_in_charge": len(set(trading)),
        "rollbacks": count("deactivated", "rollback"),
        "promotions": count("activated", "promotion"),
        "active_changes": int(changes),
        "steps_standing_aside": int(sum(v is None for v in versions)),
        "total_return": float(np.prod(1.0 + returns) - 1.0),
        "rollback_steps": [
            int(r["step"])
            for r in timeline.to_dict("records")
            if any(e["action"] == "deactivated" and e["reason"] == "rollback" for e in r["events"])
        ],
        "promotion_steps": [
            int(r["step"])
            for r in timeline.to_dict("records")
            if any(e["action"] == "activated" and e["reason"] == "promotion" for e in r["events"])
        ],
    }
