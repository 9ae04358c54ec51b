"""The nightly feature analysis, without Dagster: each symbol's current model re-analysed on its
most recent bars, stored, and compared with the previous analysis of the same model.

The scheduled ``feature_importance_trend`` asset and ``brain analyze`` both call
:func:`run_nightly_feature_analysis`; the stored analyses are the trend, read back with
``BrainLibrary.get_feature_importance_history``.

Which model is "current": the symbol's active version; a symbol standing aside (no active
version) has its latest registered version analysed instead (``model_choice="latest"``), since
that is what the most recent retrain produced from the most recent bars, and why it was kept
out of trading is what an operator looks at its features for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from brain_assets.events import log_event
from brain_assets.records import ModelVersion
from brain_assets.store import validation as check

if TYPE_CHECKING:
    from brain_assets.library import BrainLibrary
    from brain_assets.market_data.base import MarketData
    from brain_assets.pipeline.settings import RetrainSettings

TREND_TOP_N = 20
"""The ranks the trend follows: features entering or leaving this top, and their rank changes."""
STAGE = "feature_importance_trend"
"""The stage name of the per-symbol progress events (the asset's name)."""
# The previous ranking is read whole, however many features the model has.
_PREVIOUS_ROWS = 1000

AnalysisStatus = Literal["analysed", "no_model", "failed"]
ModelChoice = Literal["active", "latest"]
CHOICE_REASONS: Mapping[str, str] = {
    "active": "the active version",
    "latest": "the latest registered version: the symbol stands aside (no active version)",
}


class BarLoader(Protocol):
    """Where a symbol's bars come from: ``DeploymentMarket`` or the Dagster market resource."""

    def load(self, symbol: str, brain: BrainLibrary | None = None) -> MarketData: ...


@dataclass(frozen=True)
class NightlyAnalysis:
    """What the nightly analysis did for one symbol.

    ``status``: ``analysed`` (at least one method's table stored), ``no_model`` (the symbol has
    no registered version; nothing to do) or ``failed`` (``reason`` says why; ``error`` is the
    exception, when one was raised). ``model_choice`` says which version was analysed: the
    ``active`` one, or the ``latest`` registered one of a symbol standing aside.
    ``method_failures`` maps a method that failed while others were stored to its error;
    ``trend`` maps each stored method to its rank moves against the model's previous analysis
    (see :func:`brain_assets.importance.trend.compare_rankings`).
    """

    symbol: str
    status: AnalysisStatus
    reason: str = ""
    model_id: str | None = None
    version: int | None = None
    model_type: str | None = None
    model_choice: ModelChoice | None = None
    analysis_date: datetime | None = None
    rows: int = 0
    methods: tuple[str, ...] = ()
    method_failures: Mapping[str, str] = field(default_factory=dict)
    trend: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    error: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the asset's value per symbol, ``brain analyze --json``)."""
        return {
            "symbol": self.symbol,
            "status": self.status,
            "reason": self.reason,
            "model_id": self.model_id,
            "version": self.version,
            "model_type": self.model_type,
            "model_choice": self.model_choice,
            "analysis_date": None if self.analysis_date is None else self.analysis_date.isoformat(),
            "rows": self.rows,
            "methods": list(self.methods),
            "failures": dict(self.method_failures),
            "trend": {method: dict(moves) for method, moves in self.trend.items()},
            "seconds": round(self.seconds, 3),
        }


def current_model(
    brain: BrainLibrary, symbol: str
) -> tuple[ModelVersion, ModelChoice] | tuple[None, None]:
    """The version the nightly analysis looks at: the active one, else the latest registered
    one (a symbol standing aside); ``(None, None)`` when the symbol has no version."""
    active = brain.get_active_model(symbol)
    if active is not None:
        return active, "active"
    versions = brain.list_models(symbol)
    if versions.empty:
        return None, None
    latest = brain.get_model_version(symbol, int(versions["version"].max()))
    if latest is None:  # deleted between the two reads
        return None, None
    return latest, "latest"


def run_nightly_feature_analysis(
    settings: RetrainSettings,
    symbols: Iterable[str],
    *,
    brain: BrainLibrary | None = None,
    market: BarLoader | None = None,
    on_symbol: Callable[[NightlyAnalysis, int, int], None] | None = None,
    top_n: int = TREND_TOP_N,
) -> list[NightlyAnalysis]:
    """Analyse each symbol's current model (see the module docstring) on its latest bars with
    ``settings.importance_methods``, store the analysis, and return one result per symbol, in
    order (each symbol once).

    ``brain``: the store (default: ``BrainLibrary()``, closed on return); ``market``: where bars
    come from (default: the deployment's, :class:`DeploymentMarket` from the environment);
    ``on_symbol(result, done, total)`` is called as each symbol finishes. One symbol's failure
    is recorded in its result and logged; the others still run. A bad symbol name or setting
    raises ValueError before anything is analysed.
    """
    from brain_assets.pipeline.settings import RetrainSettings

    if not isinstance(settings, RetrainSettings):
        raise ValueError(f"settings must be a RetrainSettings, got {type(settings).__name__}")
    if isinstance(symbols, str):
        raise ValueError("symbols must be a list of symbols, not one string")
    names = list(dict.fromkeys(check.symbol(symbol) for symbol in symbols))
    top_n = check.positive_int(top_n, "top_n")
    if market is None:
        from brain_assets.market_data.deployment import DeploymentMarket

        market = DeploymentMarket.from_environment()
    if brain is None:
        from brain_assets.library import BrainLibrary

        with BrainLibrary() as own:
            return _run(settings, names, own, market, on_symbol, top_n)
    return _run(settings, names, brain, market, on_symbol, top_n)


def _run(
    settings: RetrainSettings,
    symbols: list[str],
    brain: BrainLibrary,
    market: BarLoader,
    on_symbol: Callable[[NightlyAnalysis, int, int], None] | None,
    top_n: int,
) -> list[NightlyAnalysis]:
    results = []
    for done, symbol in enumerate(symbols, 1):
        started = time.perf_counter()
        try:
            result = _analyse(settings, symbol, brain, market, top_n)
        except Exception as error:  # one symbol's failure must not cost the others theirs
            result = NightlyAnalysis(
                symbol=symbol,
                status="failed",
                reason=f"{type(error).__name__}: {error}",
                error=error,
            )
        seconds = time.perf_counter() - started
        result = replace(result, seconds=seconds)
        log_event(
            "nightly_feature_analysis",
            logging.ERROR if result.failed else logging.INFO,
            symbol=symbol,
            status=result.status,
            model_id=result.model_id,
            model_choice=result.model_choice,
            methods=list(result.methods),
            failed_methods=list(result.method_failures),
            reason=result.reason,
            seconds=round(seconds, 3),
        )
        log_event(
            "retrain_progress",
            stage=STAGE,
            symbol=symbol,
            done=done,
            total=len(symbols),
            seconds=round(seconds, 3),
        )
        results.append(result)
        if on_symbol is not None:
            on_symbol(result, done, len(symbols))
    return results


def _analyse(
    settings: RetrainSettings, symbol: str, brain: BrainLibrary, market: BarLoader, top_n: int
) -> NightlyAnalysis:
    model_row, choice = current_model(brain, symbol)
    if model_row is None:
        return NightlyAnalysis(
            symbol=symbol, status="no_model", reason="no version has been registered"
        )
    chosen = NightlyAnalysis(
        symbol=symbol,
        status="failed",
        model_id=str(model_row.model_id),
        version=int(model_row.version),
        model_type=str(model_row.model_type),
        model_choice=choice,
    )
    try:
        return _analyse_model(settings, chosen, model_row, brain, market, top_n)
    except Exception as error:  # reported with the version it concerns; see _run
        return replace(chosen, reason=f"{type(error).__name__}: {error}", error=error)


def _analyse_model(
    settings: RetrainSettings,
    chosen: NightlyAnalysis,
    model_row: ModelVersion,
    brain: BrainLibrary,
    market: BarLoader,
    top_n: int,
) -> NightlyAnalysis:
    # Loaded here: the analysis pulls in scikit-learn (and TensorFlow for a lstm), which a
    # caller that only reads results must not pay for.
    from brain_assets.importance.trend import compare_rankings
    from brain_assets.pipeline.bars import prepare_bars
    from brain_assets.pipeline.dataset import make_dataset, split_columns
    from brain_assets.pipeline.importance import analyze_model, analyzer_for
    from brain_assets.training.serialization import load_registered_model

    symbol, model_id = chosen.symbol, str(chosen.model_id)
    model = load_registered_model(brain, model_row)
    bars = prepare_bars(symbol, market.load(symbol, brain).frame, settings)
    if not bars.usable:
        return replace(chosen, reason=f"bars failed ohlcv_valid ({bars.valid.message})")
    # The target the model was trained for: its own horizon, when its row records one.
    horizon = int(model_row.horizon or settings.horizon)
    table = make_dataset(bars.frame, horizon, max_gap_bars=settings.max_gap_bars)
    X, y, _ = split_columns(table)
    expected = [str(name) for name in model_row.feature_names or []]
    if expected:
        missing = [name for name in expected if name not in X.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            return replace(
                chosen,
                reason=f"the bars give no {shown}: {len(missing)} of the model's features",
            )
        X = X[expected]
    previous = {
        method: brain.get_top_features(
            symbol, top_n=_PREVIOUS_ROWS, method=method, model_id=model_id
        )
        for method in settings.importance_methods
    }
    analysis = analyze_model(
        analyzer_for(str(chosen.model_type), settings, brain),
        symbol,
        model,
        X,
        y,
        settings,
        model_id=model_id,
    )
    if not analysis.stored:
        failures = "; ".join(f"{method}: {error}" for method, error in analysis.failures.items())
        return replace(
            chosen,
            reason=f"no method produced an importance table ({failures or 'none ran'})",
            rows=analysis.rows_used,
            method_failures=dict(analysis.failures),
        )
    return replace(
        chosen,
        status="analysed",
        reason=CHOICE_REASONS[chosen.model_choice or "active"],
        analysis_date=analysis.analysis_date,
        rows=analysis.rows_used,
        methods=tuple(analysis.stored),
        method_failures=dict(analysis.failures),
        trend={
            method: compare_rankings(previous.get(method), ranking, top_n)
            for method, ranking in analysis.tables.items()
        },
    )
