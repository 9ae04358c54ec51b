"""Pick the model of a symbol that has done best in the current volatility regime.

A model's standing in a regime is its per-regime ``composite_score`` from its latest evaluation
(:func:`brain_assets.pipeline.regimes.store_regime_metrics`). Scores measured on fewer than
``min_bars`` bars of the regime are not trusted; when no model has enough bars there, the
selector keeps to the symbol's active model (chosen by champion/challenger on all bars) and says
so, instead of switching on noise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from brain_assets.provenance import refused_here
from brain_assets.records import ModelVersion
from brain_assets.regimes.classify import REGIMES
from brain_assets.regimes.evaluation import MIN_REGIME_BARS
from brain_assets.store import validation as check

if TYPE_CHECKING:
    from brain_assets.store.library import BrainStore


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _choice(
    model: ModelVersion | pd.Series | None,
    regime: str | None,
    reason: str,
    *,
    score: float | None = None,
    n_bars: int = 0,
    fallback: bool,
) -> dict[str, Any]:
    """What select_model_for_symbol answers; no ``model`` means: stand aside."""
    identity: tuple[Any, Any, Any] = (None, None, None)
    if isinstance(model, ModelVersion):
        identity = (model.model_id, model.version, model.model_type)
    elif model is not None:
        identity = (str(model["model_id"]), int(model["version"]), str(model["model_type"]))
    return {
        "model_id": identity[0],
        "version": identity[1],
        "model_type": identity[2],
        "regime": regime,
        "score": score,
        "n_bars": n_bars,
        "reason": reason,
        "fallback": fallback,
        "stand_aside": model is None,
    }


class ModelSelector:
    """Chooses a symbol's model for a volatility regime from the Brain Library's metrics."""

    def __init__(self, brain: BrainStore, *, min_bars: int = MIN_REGIME_BARS) -> None:
        if isinstance(min_bars, bool | np.bool_) or not isinstance(min_bars, int | np.integer):
            raise ValueError(f"min_bars: must be an integer, got {min_bars!r}")
        if min_bars < 1:
            raise ValueError(f"min_bars: must be at least 1, got {min_bars}")
        self.brain = brain
        self.min_bars = int(min_bars)

    def select_model_for_symbol(
        self, symbol: str, volatility_regime: str | None = None
    ) -> dict[str, Any] | None:
        """The model to trade ``symbol`` with in ``volatility_regime``.

        ``volatility_regime`` is one of low, normal, high, extreme; None means the symbol's
        current regime as stored by ``brain.store_regimes``. Returns ``{'model_id', 'version',
        'model_type', 'regime', 'score', 'n_bars', 'reason', 'fallback'}``: ``score`` and
        ``n_bars`` are the model's composite score and bar count in that regime (None and 0 when
        it was never evaluated there), ``fallback`` is True when the regime-based choice was not
        possible and the active model was taken. Only versions that may trade compete (above
        the activation floor, not rolled back for a regression, the active one's horizon). When
        the symbol has versions but none is active (it stands aside), ``model_id`` is None and
        ``stand_aside`` True: the engine should hold no position. Returns None for a symbol
        without models.

        Raises:
            ValueError: an unknown regime (the message lists the valid ones) or a blank symbol.
        """
        symbol = check.symbol(symbol)
        if volatility_regime is not None and volatility_regime not in REGIMES:
            raise ValueError(
                f"volatility_regime: {volatility_regime!r} is not a regime; valid regimes are "
                f"{', '.join(REGIMES)} (or None for the symbol's current regime)"
            )
        if self.brain.get_active_model(symbol) is None:
            # Standing aside (or no model at all): no regime choice brings a version back.
            return self._fallback(symbol, volatility_regime, pd.DataFrame(), "no version is active")
        regime = volatility_regime
        if regime is None:
            current = self.brain.get_current_regime(symbol)
            if current is None:
                return self._fallback(
                    symbol,
                    None,
                    pd.DataFrame(),
                    "no volatility regime is stored for the symbol, so the regime is unknown",
                )
            regime = str(current["regime"])

        scores = self.brain.get_regime_scores(symbol)
        # Only versions that may trade compete: above the activation floor, not rolled back for
        # a regression, of one horizon (see BrainStore.get_best_model).
        tradable = set(self.brain.tradable_model_ids(symbol))
        in_regime = scores[
            (scores["regime"] == regime) & scores["model_id"].astype(str).isin(tradable)
        ].copy()
        # A column of NULLs arrives as object dtype, on which comparisons would raise.
        for column in ("composite_score", "n_bars"):
            in_regime[column] = pd.to_numeric(in_regime[column], errors="coerce")
        eligible = in_regime[
            (in_regime["n_bars"] >= self.min_bars) & in_regime["composite_score"].notna()
        ]
        if eligible.empty:
            return self._fallback(
                symbol,
                regime,
                in_regime,
                f"no model has a composite score over at least {self.min_bars} bars of the "
                f"{regime} regime",
            )
        ranked = eligible.sort_values(["composite_score", "version"], ascending=[False, False])
        best = ranked.iloc[0]
        score = float(best["composite_score"])
        n_bars = int(best["n_bars"])
        reason = (
            f"{best['model_type']} v{int(best['version'])} has the best composite score in the "
            f"{regime} regime ({score:.4g} over {n_bars} bars) of the {len(eligible)} model(s) "
            f"evaluated on at least {self.min_bars} bars of it"
        )
        if len(ranked) > 1:
            runner_up = ranked.iloc[1]
            reason += (
                f"; next is {runner_up['model_type']} v{int(runner_up['version'])} at "
                f"{float(runner_up['composite_score']):.4g}"
            )
        return _choice(best, regime, reason, score=score, n_bars=n_bars, fallback=False)

    def _fallback(
        self, symbol: str, regime: str | None, in_regime: pd.DataFrame, why: str
    ) -> dict[str, Any] | None:
        model = self.brain.get_active_model(symbol)
        which = "the active model"
        if model is None or refused_here(model):
            # No active version: none passed the floor, or the last one was taken out and no
            # earlier one works. A regime choice must not bring a model back through the side.
            status = self.brain.trading_status(symbol)
            if self.brain.list_models(symbol).empty:
                return None
            return _choice(None, regime, f"stand aside: {status.reason}", fallback=True)
        score: float | None = None
        n_bars = 0
        if not in_regime.empty:
            own = in_regime[in_regime["model_id"] == model.model_id]
            if not own.empty:
                score = _number(own.iloc[0]["composite_score"])
                bars = _number(own.iloc[0]["n_bars"])
                n_bars = 0 if bars is None else int(bars)
        reason = f"fell back to {which}, {model.model_type} v{int(model.version)}: {why}"
        return _choice(model, regime, reason, score=score, n_bars=n_bars, fallback=True)
