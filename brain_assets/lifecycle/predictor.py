"""One call for the engine: the model the Brain recommends for a symbol, ready to predict.

``load_predictor(brain, "BTC/USDT")`` picks the symbol's active version (or, given a volatility
regime, ``ModelSelector``'s pick), loads its artifact (sha256 verified) and returns a
:class:`Predictor`. ``predictor.predict(bars)`` takes recent raw OHLCV bars, computes the features
of the rows the model reads (:func:`brain_assets.features.latest.latest_features`: the numbers the
retrain's :func:`brain_assets.features.technical.compute_features` gives for those rows, in a
fraction of its time) and predicts the forward return of the latest bar, which is the last row of
``bars``: the engine passes closed bars only.

A symbol without an active version raises :class:`StandAside` with the Brain's reason: the engine
should hold no position. An active version whose artifact cannot be loaded is taken out with an
alert and the previous good version is loaded instead (see :func:`load_predictor`). Bars the model
cannot read faithfully raise ``ValueError`` naming the problem (too few, unsorted or duplicated,
missing or non-positive values, another bar frequency than the model's, a gap in the bars the
prediction reads, missing columns).

How many bars: the feature warm-up (:data:`~brain_assets.features.technical.WARMUP_BARS`) plus a
sequence model's context rows plus the bar predicted is the minimum. The EMA-based features (MACD,
EMA ratios) remember every earlier bar with fading weights, so a short history gives slightly
other values than the long one the model was trained on: the EMA(48) still carries 13% of its
starting point after 48 bars, 0.2% after 150 and 1e-9 after 500. Pass a few hundred bars.

Importing this module loads no scikit-learn, skops or TensorFlow; they load with the first model.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import psycopg

from brain_assets.calendar import SECONDS_PER_YEAR, frequency_label
from brain_assets.defaults import BAND_MARGIN, FEE_BPS, MAX_GAP_BARS
from brain_assets.errors import (
    ArtifactIntegrityError,
    BrainConnectionError,
    BrainError,
    EmbeddedServerError,
    StoreError,
    SyntheticBarsRefusedError,
)
from brain_assets.evaluation.positions import PositionRule
from brain_assets.events import log_event
from brain_assets.features.latest import latest_features
from brain_assets.features.technical import FEATURES, WARMUP_BARS
from brain_assets.lifecycle.predictor_cache import PredictorCache, PredictorCacheError, read_bundle
from brain_assets.market_data.base import OHLCV_COLUMNS, PRICE_COLUMNS, require_ohlcv
from brain_assets.provenance import refused_here, refused_synthetic, synthetic_bars_allowed
from brain_assets.records import ModelVersion
from brain_assets.regimes.classify import REGIMES
from brain_assets.training.fast_predict import OneRow, OneRowModel, compile_one_row

if TYPE_CHECKING:
    from brain_assets.decisions.policy import DecisionPolicy
    from brain_assets.store.library import BrainStore

__all__ = [
    "Prediction",
    "Predictor",
    "PredictorCacheError",
    "PredictorSource",
    "StandAside",
    "load_predictor",
    "load_predictor_from_bundle",
]

PredictorSource = Literal["brain", "cache", "bundle"]

# Relative difference between the bars' median spacing and the model's that still counts as the
# same frequency (periods_per_year goes through a float division on its way to the registry).
_FREQUENCY_RTOL = 1e-6

# The features' names, as the models were fitted on them. The Index is built once: building one
# for each prediction's one-row frame costs more than the rest of the frame.
_FEATURE_NAMES = tuple(FEATURES)
_FEATURE_COLUMNS = pd.Index(_FEATURE_NAMES)

# What a missing timestamp (NaT) reads as in int64 nanoseconds.
_NAT = np.iinfo(np.int64).min


class StandAside(BrainError):  # noqa: N818 (the engine's verb, not an error in the Brain)
    """The symbol has no version the Brain lets trade: hold no position in it.

    ``reason`` is ``BrainStore.trading_status(symbol).reason``: no version passed the
    activation floor, or the last one was taken out and no earlier one qualified.
    ``cached_at`` is None when the Brain said so now; when it did not answer, it is when the
    Brain last gave this decision, read back from the predictor cache.
    """

    def __init__(self, symbol: str, reason: str, *, cached_at: datetime | None = None) -> None:
        super().__init__(f"{symbol}: stand aside: {reason}")
        self.symbol = symbol
        self.reason = reason
        self.cached_at = cached_at


@dataclass(frozen=True)
class Prediction:
    """One model's prediction for the latest bar of the bars it was given."""

    symbol: str
    model_id: str
    version: int
    model_type: str
    horizon: int | None
    """Bars ahead the value looks (None for a version registered without one)."""
    bar_time: pd.Timestamp
    """Open time of the latest (closed) bar: the row the features and the prediction are for."""
    value: float
    """Predicted forward return ``close[t + horizon] / close[t] - 1``."""
    position: int
    """The position to hold from this bar: +1 long, -1 short, 0 flat, by the no-trade band the
    version was evaluated with (evaluation.positions), from the position the engine holds."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (``bar_time`` as ISO-8601)."""
        values = asdict(self)
        values["bar_time"] = self.bar_time.isoformat()
        return values


@dataclass(frozen=True)
class Predictor:
    """A registered version, deserialised and ready to predict from raw bars.

    Build it with :func:`load_predictor` (or :func:`load_predictor_from_bundle`); it holds no
    connection and may be shared between threads (prediction only reads the fitted model).
    """

    symbol: str
    model_id: str
    version: int
    model_type: str
    horizon: int | None
    feature_names: tuple[str, ...]
    bar_seconds: float | None
    """Seconds between the bars the model was trained on (from ``periods_per_year`` in its
    registry metrics); None when not recorded, and then the frequency is not checked."""
    context_rows: int
    """Rows before the predicted one that the model reads (a sequence model's window - 1)."""
    reason: str
    """Why the Brain recommends this version (activation, or the regime selector's choice)."""
    regime: str | None = None
    """The volatility regime it was selected for; None: the symbol's active version."""
    max_gap_bars: float = MAX_GAP_BARS
    """Bar spacings longer than this many bars are gaps, as in the retrain's gap rule."""
    rule: PositionRule = field(default_factory=PositionRule)
    """The no-trade band the version was evaluated with (its fee and margin)."""
    _estimator: Any = field(default=None, repr=False, compare=False)
    source: PredictorSource = "brain"
    """Where this decision came from: ``brain`` (the registry answered now), ``cache`` (the
    Brain did not answer; the last decision it gave, from the predictor cache) or ``bundle``
    (a file written by ``brain export``)."""
    cached_at: datetime | None = None
    """When the Brain last gave this decision (``cache``) or when it was exported (``bundle``,
    None for an export that did not record it); None for ``brain``."""
    one_row: Callable[[np.ndarray], float] | None = field(default=None, repr=False, compare=False)
    """The estimator's prediction for one feature row without scikit-learn's per-call overhead
    (:func:`brain_assets.training.fast_predict.compile_one_row`, the same numbers); None: the
    estimator's own ``predict``."""
    estimator_source: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    """Reads the estimator when it is first asked for: a version registered with its one-row
    model predicts without it, and the engine does not import scikit-learn."""

    @property
    def estimator(self) -> Any:
        """The fitted model (scikit-learn's, or the StandardizedLSTM), read on first use where
        the Predictor was built from the version's one-row model."""
        if self._estimator is None and self.estimator_source is not None:
            object.__setattr__(self, "_estimator", self.estimator_source())
        return self._estimator

    @property
    def ready(self) -> bool:
        """Whether :meth:`predict` can answer without waiting: False while an LSTM's network is
        still being read in the background (see :func:`load_predictor`)."""
        if self._estimator is not None or self.estimator_source is None:
            return True
        done = getattr(self.estimator_source, "done", None)
        return done is None or bool(done())

    @property
    def min_bars(self) -> int:
        """The fewest bars :meth:`predict` accepts: warm-up, context rows and the bar itself."""
        return WARMUP_BARS + self.context_rows + 1

    def predict(self, bars: pd.DataFrame, position: int = 0) -> Prediction:
        """The model's prediction for the last bar of ``bars``, and the position to hold.

        ``position`` is what the engine holds now (-1, 0 or 1): the band keeps it unless the
        forecast clears the round-trip cost, or goes flat when the forecast turns against it,
        exactly as the evaluation that let the version trade did.

        ``bars`` has columns ``timestamp, open, high, low, close, volume`` (others are ignored),
        one row per closed bar, oldest first, at the model's bar frequency. The features are those
        of the retrain's modelling table, computed from these bars only; a sequence model gets the
        rows before the last as its context.

        Raises:
            ValueError: naming the problem: missing columns, too few bars (and how many are
                needed), a missing, unsorted or duplicated timestamp, a missing, infinite or
                non-positive price, a negative volume, another bar frequency than the model's,
                a gap within the bars the prediction reads, or a position other than -1, 0, 1.
        """
        if isinstance(position, bool) or position not in (-1, 0, 1):
            raise ValueError(f"position: -1 (short), 0 (flat) or 1 (long), got {position!r}")
        stamps, columns = self._check_bars(bars)
        if tuple(self.feature_names) != _FEATURE_NAMES:
            raise ValueError(
                f"{self._label()} was trained on features {list(self.feature_names)}, but the "
                f"feature code computes {list(_FEATURE_NAMES)}"
            )
        # Only the rows the model reads: the same numbers as compute_features' last rows, in a
        # fraction of its time (this is the engine's hot call).
        rows = latest_features(*columns, rows=self.context_rows + 1)
        finite = np.isfinite(rows).all(axis=0)
        if not finite.all():
            bad = [name for name, ok in zip(_FEATURE_NAMES, finite, strict=True) if not ok]
            raise ValueError(f"features {bad} of the latest bars are not finite")
        value = self._predict_last(rows, stamps)
        if not math.isfinite(value):
            raise ValueError(f"{self._label()} gave a non-finite prediction ({value})")
        return Prediction(
            symbol=self.symbol,
            model_id=self.model_id,
            version=self.version,
            model_type=self.model_type,
            horizon=self.horizon,
            bar_time=_stamp(stamps[-1]),
            value=value,
            position=self.rule.next_position(value, position),
        )

    def _label(self) -> str:
        return f"{self.symbol} {self.model_type} v{self.version}"

    def _predict_last(self, rows: np.ndarray, stamps: np.ndarray) -> float:
        """The prediction for the last of the feature ``rows``; the rows before it are the
        context. ``stamps`` are the bars' timestamps (int64 ns), the last ones those of ``rows``."""
        if self.one_row is not None:
            # scikit-learn's validation of a one-row frame costs more than its arithmetic.
            return self.one_row(rows[-1])
        # Named columns, as in training: scikit-learn warns about an array without them.
        frame = pd.DataFrame(rows, columns=_FEATURE_COLUMNS)
        if self.context_rows == 0:
            return float(np.asarray(self.estimator.predict(frame), dtype=np.float64)[-1])
        from brain_assets.lstm.context import with_context

        index = pd.to_datetime(stamps[len(stamps) - len(rows) :], unit="ns", utc=True)
        frame.index = pd.DatetimeIndex(index, name="timestamp")
        model = with_context(self.estimator, frame.iloc[:-1])
        return float(np.asarray(model.predict(frame.iloc[-1:]), dtype=np.float64)[-1])

    def _check_bars(self, bars: pd.DataFrame) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """The bars' timestamps (int64 ns, UTC) and their open, high, low, close and volume
        (float64), once checked; a ValueError naming the first problem otherwise."""
        require_ohlcv(bars, "bars")
        if len(bars) < self.min_bars:
            raise ValueError(
                f"bars: {len(bars)} given, {self.min_bars} needed for {self._label()}: "
                f"{WARMUP_BARS} of feature warm-up, {self.context_rows} of model context and the "
                "bar to predict (a few hundred make the EMA-based features match training)"
            )
        stamps = _timestamps(bars["timestamp"])
        columns = _check_values(bars, stamps)
        spacing = _median_spacing(stamps)
        expected = self.bar_seconds
        if expected is not None and not math.isclose(spacing, expected, rel_tol=_FREQUENCY_RTOL):
            raise ValueError(
                f"bars: {frequency_label(spacing)} bars (median spacing {spacing:g} s), but "
                f"{self._label()} was trained on {frequency_label(expected)} bars "
                f"({expected:g} s)"
            )
        self._check_gaps(stamps, spacing)
        return stamps, columns

    def _check_gaps(self, stamps: np.ndarray, spacing: float) -> None:
        """No gap among the bars whose look-back the predicted and context rows read.

        The retrain leaves out every row whose 48-bar look-back spans a gap, so the model never
        saw such a row; predicting one would be a guess."""
        reads = self.min_bars
        recent = stamps[-reads:]
        steps = np.diff(recent) / 1e9 / spacing
        over = np.flatnonzero(steps > self.max_gap_bars)
        if over.size:
            last = int(over[-1])
            before, after = _stamp(recent[last]).isoformat(), _stamp(recent[last + 1]).isoformat()
            raise ValueError(
                f"bars: a gap of {steps[last]:.1f} bars between {before} and {after} lies within "
                f"the last {reads} bars, which the prediction reads; the retrain leaves rows "
                f"spanning a gap (over {self.max_gap_bars:g} bars) out, so the model never saw one"
            )


def _timestamps(raw: pd.Series) -> np.ndarray:
    """The bars' timestamps as int64 nanoseconds since the epoch, UTC (naive ones read as UTC);
    a ValueError unless present, sorted and unique."""
    try:
        # pd.to_datetime costs a quarter of a millisecond even on a datetime column: only text
        # and numbers go through it. A datetime's int64 is already UTC, whatever its zone.
        if not pd.api.types.is_datetime64_any_dtype(raw.dtype):
            raw = pd.to_datetime(raw, utc=True)
        stamps = raw.to_numpy(dtype="datetime64[ns]").view(np.int64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"bars: column 'timestamp' cannot be read as timestamps: {exc}") from exc
    missing = stamps == _NAT
    if missing.any():
        where = int(np.flatnonzero(missing)[0])
        raise ValueError(f"bars: missing timestamp in row {where}")
    steps = np.diff(stamps)
    if (steps < 0).any():
        where = int(np.flatnonzero(steps < 0)[0]) + 1
        raise ValueError(
            f"bars: not sorted by time: row {where} ({_stamp(stamps[where]).isoformat()}) comes "
            f"after {_stamp(stamps[where - 1]).isoformat()}; pass the bars oldest first"
        )
    if (steps == 0).any():
        where = int(np.flatnonzero(steps == 0)[0]) + 1
        raise ValueError(
            f"bars: duplicated timestamp {_stamp(stamps[where]).isoformat()} (row {where})"
        )
    return stamps


def _stamp(nanoseconds: np.integer | int) -> pd.Timestamp:
    """One of :func:`_timestamps`' values as a UTC Timestamp."""
    return pd.Timestamp(int(nanoseconds), unit="ns", tz="UTC")


def _median_spacing(stamps: np.ndarray) -> float:
    """``calendar.bar_seconds`` of timestamps already checked sorted and unique (int64 ns),
    without its second parse of them (a quarter of a millisecond)."""
    return float(np.median(np.diff(stamps) / 1e9))


def _check_values(bars: pd.DataFrame, stamps: np.ndarray) -> tuple[np.ndarray, ...]:
    """The open, high, low, close and volume columns as float64, checked: finite prices > 0 and
    finite volumes >= 0, as the features' logarithms need them."""
    columns = []
    for name in OHLCV_COLUMNS[1:]:
        try:
            values = bars[name].to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bars: column {name!r} is not numeric: {exc}") from exc
        bad = ~np.isfinite(values)
        what = "missing or infinite"
        if not bad.any():
            bad = values <= 0 if name in PRICE_COLUMNS else values < 0
            what = "non-positive" if name in PRICE_COLUMNS else "negative"
        if bad.any():
            where = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"bars: {int(bad.sum())} {what} value(s) in column {name!r}, the first at "
                f"{_stamp(stamps[where]).isoformat()}; clean the bars first (the retrain drops "
                "such bars)"
            )
        columns.append(values)
    return tuple(columns)


def _model_bar_seconds(metrics: object) -> float | None:
    """Bar spacing of a version's training data, from the annualisation stored with it."""
    if not isinstance(metrics, dict):
        return None
    value = metrics.get("periods_per_year")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (math.isfinite(value) and value > 0):
        return None
    return SECONDS_PER_YEAR / float(value)


def _position_rule(metrics: object) -> PositionRule:
    """The band a version was evaluated with; the deployment defaults for a version registered
    before the band was recorded (it was judged by the sign of its forecasts then)."""
    values = metrics if isinstance(metrics, dict) else {}
    fee, margin = values.get("fee_bps", FEE_BPS), values.get("band_margin", BAND_MARGIN)
    return PositionRule(fee_bps=float(fee), margin=float(margin))


def _stand_aside(brain: BrainStore, symbol: str) -> StandAside:
    """StandAside with the Brain's reason, or a ValueError for a symbol without any model."""
    if brain.list_models(symbol).empty:
        raise ValueError(f"unknown symbol {symbol!r}: no model has been registered for it")
    return StandAside(symbol, brain.trading_status(symbol).reason)


def load_predictor(
    brain: BrainStore | None,
    symbol: str,
    regime: str | None = None,
    *,
    policy: DecisionPolicy | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Predictor:
    """The model the Brain recommends for ``symbol``, loaded and ready to predict.

    With ``regime`` None the symbol's active version; with a volatility regime (low, normal,
    high, extreme) the pick of ``ModelSelector(brain).select_model_for_symbol(symbol, regime)``
    (the best tradable version in that regime, else the active one). The artifact's sha256 is
    verified before it is deserialised. ``brain`` None opens the configured Brain
    (``$DATABASE_DSN``, else the embedded server) for this call only.

    An ``lstm`` version's artifact is verified and screened here, and its network read on a
    thread of its own (importing TensorFlow takes seconds in a fresh process): the call returns
    at once, ``Predictor.ready`` says whether the read is done, and the first ``predict`` waits
    for it. A read that fails there raises from ``predict``, naming the version, as reading a
    scikit-learn version's estimator later does.

    A version whose artifact cannot be loaded (it fails its sha256, the allowlists refuse it,
    or TensorFlow cannot be imported for an ``lstm``) is never skipped silently: it is taken out
    through ``ModelVersioning(brain, policy=policy).fall_back_from_unloadable``, which alerts,
    and the recommendation is made once more by the same rule, so the engine gets the previous
    good version, or StandAside when none loads. ``policy`` is the decision policy that picks
    the fallback (default: ``DecisionPolicy()``).

    Every answer of the Brain (the version loaded, or stand aside) is recorded in the predictor
    cache: ``cache_dir``, else ``$BRAIN_PREDICTOR_CACHE`` (``off``: none), else
    ``<BRAIN_HOME>/predictor-cache``. When the database does not answer (it cannot be reached, or
    a statement fails on the way), the cached decision is served instead, its artifact checked
    against its sha256, with a ``predictor_offline`` warning naming the symbol, the version and
    the decision's age: the Predictor has ``source='cache'`` and ``cached_at``, a cached
    stand-aside raises StandAside with ``cached_at``. A failure to write the cache does not fail
    the load: it is logged as ``predictor_cache_failed``.

    Raises:
        StandAside: the symbol has models but none may trade; ``reason`` says why.
        ValueError: a symbol without any model (named), an unknown regime, a blank symbol, or a
            version whose features cannot be used.
        UnloadableArtifactError: the version recommended after a fallback cannot be loaded
            either (the fallback verified it, so something changed it in between).
        ArtifactEnvironmentError: this process cannot read a version that verified (keras
            without TensorFlow, a full temporary disk); the registry is left as it was.
        PredictorCacheError: the Brain did not answer and no usable decision is cached (none, the
            cache is off, or its files are unreadable or fail their sha256); nothing is loaded.
    """
    from brain_assets.store.validation import symbol as check_symbol

    symbol = check_symbol(symbol)
    if regime is not None and regime not in REGIMES:
        raise ValueError(
            f"regime: {regime!r} is not a regime; valid regimes are {', '.join(REGIMES)}"
        )
    cache = PredictorCache.configured(cache_dir)
    try:
        if brain is None:
            from brain_assets.store.library import BrainStore

            with BrainStore() as own:
                return _load_live(own, symbol, regime, policy, cache)
        # The pool waits up to its 30 s checkout timeout for a stopped server; one connection of
        # its own tells within the connect timeout, before the engine is kept waiting.
        from brain_assets.store.connection import check_reachable

        check_reachable(brain.dsn, brain.timeouts)
        return _load_live(brain, symbol, regime, policy, cache)
    except (BrainConnectionError, EmbeddedServerError, StoreError, psycopg.OperationalError) as exc:
        if isinstance(exc, StoreError) and not isinstance(exc.__cause__, psycopg.OperationalError):
            raise  # a refused statement: the Brain answered
        unreachable: Exception = exc
    return _load_cached(cache, symbol, regime, _describe(unreachable, brain))


def _describe(error: Exception, brain: BrainStore | None) -> str:
    """The connection error in one line, without the DSN's secrets."""
    from brain_assets.dsn import scrub
    from brain_assets.environment import configured_dsn

    text = " ".join(str(error).split()) or type(error).__name__
    dsn = brain.dsn if brain is not None else configured_dsn()
    return scrub(text, dsn) if dsn else text


def _load_live(
    brain: BrainStore,
    symbol: str,
    regime: str | None,
    policy: DecisionPolicy | None,
    cache: PredictorCache | None,
) -> Predictor:
    """load_predictor with the Brain answering; its decision goes to ``cache``."""
    try:
        model, predictor = _load_recommended(brain, symbol, regime, policy)
    except StandAside as aside:
        if cache is not None:
            reason = aside.reason
            _remember(cache, symbol, lambda: cache.remember_stand_aside(symbol, regime, reason))
        raise
    if cache is not None:
        model_id = predictor.model_id
        activated_at = brain.activated_at(model_id)
        _remember(
            cache,
            symbol,
            lambda: cache.remember_version(
                symbol,
                regime,
                model,
                reason=predictor.reason,
                activated_at=activated_at,
                fetch=lambda: brain.load_model_artifact(model_id),
            ),
        )
    return predictor


def _remember(cache: PredictorCache, symbol: str, write: Callable[[], Path]) -> None:
    """Run a cache write. A disk that refuses it leaves the engine a good model now and no
    fallback later: worth a warning, never worth failing the load."""
    try:
        write()
    except OSError as exc:
        log_event(
            "predictor_cache_failed",
            logging.WARNING,
            symbol=symbol,
            cache=str(cache.folder),
            error=f"{type(exc).__name__}: {exc}",
        )


def _load_recommended(
    brain: BrainStore, symbol: str, regime: str | None, policy: DecisionPolicy | None
) -> tuple[ModelVersion, Predictor]:
    """The version the Brain recommends and its Predictor (see load_predictor)."""
    from brain_assets.training.serialization import UnloadableArtifactError

    model, reason = _recommended(brain, symbol, regime)
    try:
        return model, _predictor(brain, model, reason=reason, regime=regime)
    except UnloadableArtifactError as exc:
        # Imported here: the decision policy loads scipy.stats (a third of a second), which the
        # engine's load needs only when a version has to be taken out.
        from brain_assets.lifecycle.versioning import ModelVersioning

        ModelVersioning(brain, policy=policy).fall_back_from_unloadable(
            model.symbol, exc.model_id, exc.error
        )
    # The broken version is marked now: neither the active version nor the selector's pick can
    # be it again. Once only: the fallback loaded the version it chose.
    model, reason = _recommended(brain, symbol, regime)
    return model, _predictor(brain, model, reason=reason, regime=regime)


def _load_cached(
    cache: PredictorCache | None, symbol: str, regime: str | None, why: str
) -> Predictor:
    """The decision the Brain gave last for (symbol, regime), from the cache."""
    if cache is None:
        what = symbol if regime is None else f"{symbol} in the {regime} regime"
        raise PredictorCacheError(
            symbol,
            f"{what}: the Brain is unreachable ({why}) and the predictor cache is off "
            "(BRAIN_PREDICTOR_CACHE=off): nothing to trade with",
        )
    decision = cache.recall(symbol, regime, why=why)
    age_s = round(decision.age_s(), 1)
    if decision.model is None:
        log_event(
            "predictor_offline",
            logging.WARNING,
            symbol=symbol,
            regime=regime,
            stand_aside=True,
            model_id=None,
            cached_at=decision.cached_at.isoformat(),
            age_s=age_s,
            error=why,
        )
        raise StandAside(symbol, decision.reason, cached_at=decision.cached_at)
    model = decision.model
    data = cache.artifact(decision, why=why)

    def refused(exc: ValueError) -> Exception:
        return PredictorCacheError(
            symbol,
            f"{symbol} {model.label} ({model.model_id}): the "
            f"Brain is unreachable ({why}) and the cached artifact cannot be loaded: {exc}",
        )

    predictor = _offline_predictor(
        model,
        data,
        refused,
        reason=decision.reason,
        regime=regime,
        source="cache",
        cached_at=decision.cached_at,
    )
    log_event(
        "predictor_offline",
        logging.WARNING,
        symbol=symbol,
        regime=regime,
        stand_aside=False,
        model_id=predictor.model_id,
        version=predictor.version,
        model_type=predictor.model_type,
        cached_at=decision.cached_at.isoformat(),
        age_s=age_s,
        activated_at=decision.activated_at,
        error=why,
    )
    return predictor


def load_predictor_from_bundle(
    path: str | os.PathLike[str], *, allow_synthetic: bool | None = None
) -> Predictor:
    """The version ``brain export`` wrote to ``path`` (the ``.skops``/``.keras`` file, or its
    ``.json`` sidecar), ready to predict, without any database: for an engine that ships its
    model. The artifact is checked against the sidecar's sha256 before it is deserialised. The
    Predictor has ``source='bundle'`` and ``cached_at`` the export's time. A version trained on
    synthetic bars is refused (SyntheticBarsRefusedError) unless ``allow_synthetic`` (default:
    the deployment's market source is 'synthetic', as for the registry's activations).

    Raises:
        ValueError: a missing or unreadable file, a sidecar without a field a Predictor needs, or
            an artifact the allowlists refuse (each named), or features this version of
            brain_assets does not compute.
        ArtifactIntegrityError: the artifact does not match the sidecar's sha256.
        ArtifactEnvironmentError: this process cannot read the artifact (keras without
            TensorFlow).
    """
    bundle = read_bundle(Path(path))
    model = bundle.model
    where = bundle.artifact_path
    allowed = synthetic_bars_allowed() if allow_synthetic is None else allow_synthetic
    if model.synthetic_bars and not allowed:
        raise SyntheticBarsRefusedError(
            f"bundle {where}: {refused_synthetic(model.version, model.symbol)}"
        )

    def refused(exc: ValueError) -> Exception:
        return ValueError(f"bundle {where}: {exc}")

    return _offline_predictor(
        model,
        bundle.data,
        refused,
        reason=f"{model.label} from the bundle {where}",
        regime=None,
        source="bundle",
        cached_at=bundle.exported_at,
    )


def _offline_predictor(
    model: ModelVersion,
    data: bytes,
    refused: Callable[[ValueError], Exception],
    *,
    reason: str,
    regime: str | None,
    source: PredictorSource,
    cached_at: datetime | None,
) -> Predictor:
    """A Predictor from verified bytes read from disk; ``refused`` makes the error for bytes
    the allowlists refuse."""
    from brain_assets.training import serialization

    try:
        estimator = serialization.deserialize_model(data, model.artifact_format)
    except ValueError as exc:
        raise refused(exc) from exc
    except (ImportError, OSError) as exc:
        raise serialization.ArtifactEnvironmentError(model, exc) from exc
    return _build(
        model, estimator, reason=reason, regime=regime, source=source, cached_at=cached_at
    )


def _recommended(brain: BrainStore, symbol: str, regime: str | None) -> tuple[ModelVersion, str]:
    """The version load_predictor loads, and why it is the one."""
    if regime is None:
        model = brain.get_active_model(symbol)
        if model is None or refused_here(model):
            raise _stand_aside(brain, symbol)
        return model, f"{model.label} is the active version"
    from brain_assets.lifecycle.selection import ModelSelector

    pick = ModelSelector(brain).select_model_for_symbol(symbol, regime)
    if pick is None:
        raise ValueError(f"unknown symbol {symbol!r}: no model has been registered for it")
    if pick.get("stand_aside") or pick.get("model_id") is None:
        raise _stand_aside(brain, symbol)
    chosen = brain.get_model(str(pick["model_id"]))
    if chosen is None:
        raise ValueError(f"{symbol}: the selected model {pick['model_id']} no longer exists")
    return chosen, str(pick["reason"])


def _predictor(
    brain: BrainStore, model: ModelVersion, *, reason: str, regime: str | None
) -> Predictor:
    from brain_assets.training import serialization

    if model.artifact_format == serialization.KERAS_FORMAT:
        return _lstm_predictor(brain, model, reason=reason, regime=regime)
    one_row = _stored_one_row(brain, model)
    if one_row is None:
        estimator = serialization.load_registered_model(brain, model)
        return _build(
            model, estimator, reason=reason, regime=regime, source="brain", cached_at=None
        )
    # The artifact is fetched, verified and screened now, as for any version (one that would be
    # refused is taken out the same way); only reading it into scikit-learn (a second's import
    # in a fresh process) waits until someone asks for the estimator.
    data = serialization.screened_artifact(brain, model)
    read = functools.partial(_read_estimator, model, data)
    return _build_unread(model, reason=reason, regime=regime, one_row=one_row, source=read)


def _lstm_predictor(
    brain: BrainStore, model: ModelVersion, *, reason: str, regime: str | None
) -> Predictor:
    """An LSTM version's Predictor, its network read in the background.

    The artifact is fetched, verified against its sha256 and screened now (archive, allowlist,
    the ``lstm`` extra), so a version that would be refused is taken out as any other; what
    remains, importing TensorFlow and reading the network (seconds in a fresh process), runs
    on a thread while the engine goes on, and the first ``predict`` waits for it."""
    from brain_assets.lstm.model import sequence_length_of
    from brain_assets.training import serialization

    data = serialization.verified_artifact(brain, model)
    try:
        context = sequence_length_of(serialization.screen_keras(data)) - 1
    except ValueError as exc:
        raise serialization.UnloadableArtifactError(model, exc) from exc
    except ImportError as exc:  # the lstm extra is missing here
        raise serialization.ArtifactEnvironmentError(model, exc) from exc
    read = BackgroundRead(model, data)
    predictor = _build_unread(model, reason=reason, regime=regime, context=context, source=read)
    read.start()  # once the Predictor stands: nothing is left reading for a refused version
    return predictor


def _build_unread(
    model: ModelVersion,
    *,
    reason: str,
    regime: str | None,
    source: Callable[[], Any],
    one_row: OneRow | None = None,
    context: int | None = None,
) -> Predictor:
    """The Brain's Predictor of a version whose estimator ``source`` reads when asked for."""
    return _build(
        model,
        None,
        reason=reason,
        regime=regime,
        source="brain",
        cached_at=None,
        one_row=one_row,
        context=context,
        estimator_source=source,
    )


class BackgroundRead:
    """An artifact read into its estimator on a thread of its own (from ``start``); calling it
    waits for the estimator, or raises what the read raised (logged as
    ``predictor_read_failed``)."""

    def __init__(self, model: ModelVersion, data: bytes) -> None:
        import concurrent.futures

        self._future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._model, self._data = model, data

    def start(self) -> None:
        import threading

        # Not a daemon: an interpreter that exits meanwhile waits for the read, rather than
        # stopping it inside TensorFlow's import.
        threading.Thread(target=self._read, name=f"read {self._model.model_id}").start()

    def _read(self) -> None:
        try:
            self._future.set_result(_read_estimator(self._model, self._data))
        except BaseException as exc:  # handed to whoever waits for the estimator
            _warn_about_version("predictor_read_failed", self._model, exc)
            self._future.set_exception(exc)

    def done(self) -> bool:
        return self._future.done()

    def __call__(self) -> Any:
        return self._future.result()


def _read_estimator(model: ModelVersion, data: bytes) -> Any:
    """The estimator of screened artifact bytes, or the errors a load raises, naming the
    version: ArtifactEnvironmentError for a host that cannot read them, UnloadableArtifactError
    for bytes that passed the screen but do not make a model (monitoring takes such a version
    out when it loads it)."""
    from brain_assets.training import serialization

    try:
        return serialization.deserialize_model(data, model.artifact_format)
    except ValueError as exc:
        raise serialization.UnloadableArtifactError(model, exc) from exc
    except (ImportError, OSError) as exc:
        raise serialization.ArtifactEnvironmentError(model, exc) from exc


def _stored_one_row(brain: BrainStore, model: ModelVersion) -> OneRow | None:
    """The version's one-row model from the registry, or None: it has none, or it fails its
    check (said in a warning; the artifact, the model of record, is then used)."""
    # Only scikit-learn's models (skops artifacts) have one; the LSTM's is a .keras file.
    if model.artifact_format != "skops" or not model.feature_names:
        return None
    try:
        data = brain.load_one_row(model.model_id)
        return None if data is None else OneRowModel.from_bytes(data).function()
    except (ArtifactIntegrityError, ValueError) as exc:
        _warn_about_version("one_row_refused", model, exc)
        return None


def _warn_about_version(event: str, model: ModelVersion, error: BaseException) -> None:
    log_event(
        event,
        logging.WARNING,
        symbol=model.symbol,
        model_id=model.model_id,
        version=model.version,
        error=f"{type(error).__name__}: {error}",
    )


def _build(
    model: ModelVersion,
    estimator: Any,
    *,
    reason: str,
    regime: str | None,
    source: PredictorSource,
    cached_at: datetime | None,
    one_row: OneRow | None = None,
    estimator_source: Callable[[], Any] | None = None,
    context: int | None = None,
) -> Predictor:
    """The Predictor of ``model``: from its ``estimator``, or from its stored ``one_row``
    model (or, for a sequence model, its ``context`` rows) with ``estimator_source`` to read
    the estimator when it is asked for."""

    label = f"{model.symbol} {model.label}"
    names = [str(name) for name in model.feature_names]
    if not names:
        names = [str(name) for name in getattr(estimator, "feature_names_in_", [])]
    if names != list(FEATURES):
        raise ValueError(
            f"{label} was trained on features {names or '(not recorded)'}, not the "
            f"{len(FEATURES)} features this version of brain_assets computes; retrain it"
        )
    if context is None and one_row is None:
        # scikit-learn is loaded already when the estimator was read.
        from brain_assets.lstm.context import context_rows

        context = context_rows(estimator)
        # A sequence model reads context rows: only a row-wise model predicts from one row.
        if context == 0:
            one_row = compile_one_row(estimator, feature_names=names)
    context = context or 0
    return Predictor(
        symbol=model.symbol,
        model_id=model.model_id,
        version=int(model.version),
        model_type=model.model_type,
        horizon=None if model.horizon is None else int(model.horizon),
        feature_names=tuple(names),
        bar_seconds=_model_bar_seconds(model.metrics),
        context_rows=context,
        reason=reason,
        regime=regime,
        max_gap_bars=float(MAX_GAP_BARS),
        rule=_position_rule(model.metrics),
        _estimator=estimator,
        source=source,
        cached_at=cached_at,
        one_row=one_row,
        estimator_source=estimator_source,
    )
