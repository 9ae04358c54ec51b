"""Synthetic OHLCV bars that look enough like crypto to exercise every pipeline stage.

The generator is deterministic per (symbol, seed): the random generator's seed comes from a
sha256 of both, not from Python's ``hash()``, which is salted per process for strings.

What the bars contain, and why:

* a four-state Markov chain of volatility regimes (low, normal, high, extreme) with persistent
  states, so that regime-aware evaluation and feature drift both have something to find;
* Student-t innovations (fat tails), because models and metrics must survive outliers;
* a weak AR(1) momentum in returns whose strength depends on the regime, so that a model can
  learn a little, and more in some regimes than in others;
* volume that rises with the absolute return, as on real exchanges;
* consistent candles: ``open_t = close_{t-1}``, ``high >= max(open, close)``,
  ``low <= min(open, close)``, every price positive.

Regime persistence is set per bar, not per unit of time: a regime lasts about as many bars at
any bar size, which keeps the four regimes visible in short daily series too.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.calendar import frequency_label
from brain_assets.market_data.base import (
    MAX_BAR_SECONDS,
    MIN_BAR_SECONDS,
    MarketData,
    check_symbol,
)
from brain_assets.regimes.classify import REGIMES

# Per-bar volatility of each regime for one-hour bars; other bar sizes scale by sqrt(time).
_HOURLY_VOL = np.array([0.0018, 0.0045, 0.011, 0.028])

# Row i: the chance to move from regime i to each regime at the next bar. The diagonal gives
# runs of roughly 30 to 60 bars; the extreme regime is entered rarely and left quickly.
_TRANSITIONS = np.array(
    [
        [0.980, 0.016, 0.003, 0.001],
        [0.010, 0.980, 0.008, 0.002],
        [0.004, 0.020, 0.970, 0.006],
        [0.000, 0.015, 0.035, 0.950],
    ]
)

# AR(1) coefficient of returns per regime: momentum is clearest in calm markets and nearly
# drowned in noise in extreme ones, so that a model's skill differs by regime.
_MOMENTUM = np.array([0.15, 0.10, 0.06, 0.02])

# Degrees of freedom of the Student-t innovations: fat tails with a finite variance.
_T_DOF = 4.0

EDGE_MARKETS: dict[str, float] = {"BNB/USDT": 0.2}
"""Synthetic symbols whose bars carry a real edge, known by construction: an AR(1) momentum of
this strength with a constant 1% volatility per hour (:func:`signal_market`) instead of the
regime-switching bars, whose momentum is too weak to pay a 0.1% fee. The demo universe holds one
of them so that the honest gate has skill to find and trade; their metadata says so (``edge``).
Every other symbol's synthetic market has no edge net of costs, and the Brain stands it aside."""


def bar_to_seconds(bar: str) -> float:
    """Seconds in a bar such as ``'1min'``, ``'15min'``, ``'1h'`` or ``'1d'``.

    Raises ValueError naming ``bar`` when it is unreadable or outside one minute to one day.
    """
    try:
        seconds = pd.Timedelta(bar).total_seconds()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bar: cannot read {bar!r} as a bar size such as '1h' or '15min'") from exc
    if not MIN_BAR_SECONDS <= seconds <= MAX_BAR_SECONDS:
        raise ValueError(f"bar: {bar!r} is outside the supported range of 1min to 1d")
    return seconds


def derive_seed(symbol: str, seed: int) -> int:
    """A 64-bit generator seed that depends only on ``symbol`` and ``seed``."""
    digest = hashlib.sha256(f"{symbol}\x00{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _stationary(transitions: np.ndarray) -> np.ndarray:
    """The stationary distribution of a Markov chain (left eigenvector for eigenvalue 1)."""
    values, vectors = np.linalg.eig(transitions.T)
    vector = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return np.asarray(vector / vector.sum(), dtype=float)


def _simulate_regimes(rng: np.random.Generator, n_bars: int) -> np.ndarray:
    """A path of regime indices drawn from the persistent Markov chain."""
    cumulative = np.cumsum(_TRANSITIONS, axis=1)
    draws = rng.random(n_bars)
    start = _stationary(_TRANSITIONS)
    regimes = np.empty(n_bars, dtype=np.int64)
    state = int(np.searchsorted(np.cumsum(start), draws[0], side="right"))
    state = min(state, len(REGIMES) - 1)
    regimes[0] = state
    for i in range(1, n_bars):
        state = int(np.searchsorted(cumulative[state], draws[i], side="right"))
        # Guard against the last cumulative entry being a hair below 1.0 in floating point.
        state = min(state, len(REGIMES) - 1)
        regimes[i] = state
    return regimes


def generate_ohlcv(
    symbol: str,
    *,
    seed: int = 7,
    n_bars: int = 4000,
    bar: str = "1h",
    start: str = "2024-01-01",
) -> tuple[pd.DataFrame, np.ndarray]:
    """The synthetic OHLCV frame of ``symbol`` and the regime index of each bar."""
    check_symbol(symbol)
    if isinstance(n_bars, bool) or not isinstance(n_bars, int) or n_bars < 1:
        raise ValueError(f"n_bars: expected a positive integer, got {n_bars!r}")
    seconds = bar_to_seconds(bar)
    try:
        first = pd.Timestamp(start)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"start: cannot read {start!r} as a timestamp") from exc
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")

    rng = np.random.default_rng(derive_seed(symbol, seed))
    regimes = _simulate_regimes(rng, n_bars)
    scale = np.sqrt(seconds / 3600.0)
    sigma = _HOURLY_VOL[regimes] * scale
    # Unit-variance Student-t, so that sigma really is the per-bar standard deviation.
    shocks = rng.standard_t(_T_DOF, size=n_bars) / np.sqrt(_T_DOF / (_T_DOF - 2.0))
    phi = _MOMENTUM[regimes]

    returns = np.empty(n_bars)
    previous = 0.0
    # A loop because the AR coefficient changes with the regime at every bar.
    steps = zip(phi.tolist(), sigma.tolist(), shocks.tolist(), strict=True)
    for i, (coef, sig, shock) in enumerate(steps):
        previous = coef * previous + sig * shock
        returns[i] = previous

    start_price = float(10 ** rng.uniform(0.0, 4.5))
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.empty(n_bars)
    open_[0] = start_price
    open_[1:] = close[:-1]

    wick_up = np.abs(rng.standard_normal(n_bars)) * 0.5 * sigma
    wick_down = np.abs(rng.standard_normal(n_bars)) * 0.5 * sigma
    high = np.maximum(open_, close) * np.exp(wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_down)

    base_volume = float(10 ** rng.uniform(2.0, 5.0))
    normal_sigma = _HOURLY_VOL[1] * scale
    noise = np.exp(0.6 * rng.standard_normal(n_bars))
    volume = base_volume * noise * (1.0 + 1.0 * np.abs(returns) / normal_sigma)

    timestamps = pd.date_range(first, periods=n_bars, freq=pd.Timedelta(seconds=seconds))
    return _ohlcv_frame(timestamps, open_, high, low, close, volume), regimes


def _ohlcv_frame(
    timestamps: pd.DatetimeIndex,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> pd.DataFrame:
    """The conventional OHLCV frame (see market_data.base) of generated columns."""
    return pd.DataFrame(
        {
            "timestamp": pd.Series(timestamps).astype("datetime64[ns, UTC]"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


class SyntheticSource:
    """Deterministic synthetic bars for any symbol (see the module docstring)."""

    name = "synthetic"

    def __init__(
        self,
        seed: int = 7,
        n_bars: int = 4000,
        bar: str = "1h",
        start: str = "2024-01-01",
    ) -> None:
        if isinstance(n_bars, bool) or not isinstance(n_bars, int) or n_bars < 1:
            raise ValueError(f"n_bars: expected a positive integer, got {n_bars!r}")
        # Validate eagerly so a misconfigured source fails at construction, not at first load.
        self.bar_seconds = bar_to_seconds(bar)
        self.seed = int(seed)
        self.n_bars = n_bars
        self.bar = bar
        self.start = start

    def __repr__(self) -> str:
        return (
            f"SyntheticSource(seed={self.seed}, n_bars={self.n_bars}, "
            f"bar={self.bar!r}, start={self.start!r})"
        )

    def load(self, symbol: str) -> MarketData:
        """The synthetic bars of ``symbol``; the same symbol and seed always give the same bars.

        A symbol of :data:`EDGE_MARKETS` gets a market with a known edge, and its metadata's
        ``edge`` says so."""
        check_symbol(symbol)
        extra: dict[str, Any]
        if symbol in EDGE_MARKETS:
            momentum = EDGE_MARKETS[symbol]
            volatility = 0.01 * float(np.sqrt(self.bar_seconds / 3600.0))
            frame = signal_market(
                self.n_bars,
                momentum=momentum,
                volatility=volatility,
                seed=derive_seed(symbol, self.seed),
                start=self.start,
                bar=self.bar,
            )
            extra = {
                "edge": f"AR(1) momentum {momentum:g} with {volatility:.2%} volatility per bar: "
                "a real edge by construction"
            }
        else:
            frame, regimes = generate_ohlcv(
                symbol, seed=self.seed, n_bars=self.n_bars, bar=self.bar, start=self.start
            )
            counts = np.bincount(regimes, minlength=len(REGIMES))
            extra = {
                "regime_counts": {
                    name: int(count) for name, count in zip(REGIMES, counts.tolist(), strict=True)
                }
            }
        metadata: dict[str, Any] = {
            "source": self.name,
            "synthetic": True,
            "seed": self.seed,
            "rng_seed": derive_seed(symbol, self.seed),
            "n_bars": self.n_bars,
            "bar": self.bar,
            "start": self.start,
            **extra,
        }
        return MarketData(
            symbol=symbol,
            frame=frame,
            source=self.name,
            metadata=metadata,
            bar_seconds=self.bar_seconds,
            frequency=frequency_label(self.bar_seconds),
        )


def signal_market(
    n_bars: int,
    *,
    momentum: float = 0.15,
    flip_at: int | None = None,
    volatility: float = 0.01,
    seed: int = 0,
    start: str = "2024-01-01",
    bar: str = "1h",
) -> pd.DataFrame:
    """Bars whose statistics never change, or change once at a known bar: the test bench of a
    decision policy (``brain replay``).

    Returns follow an AR(1) with coefficient ``momentum`` and Gaussian shocks of standard
    deviation ``volatility`` per bar; from bar ``flip_at`` on the coefficient is ``-momentum``
    (momentum turns into reversal, so a model that learnt the old sign loses). Everything else,
    volatility included, stays the same, so any change of the policy's verdict before the flip
    is noise. Candles are consistent (open = previous close, wicks outside the body).
    """
    if isinstance(n_bars, bool) or not isinstance(n_bars, int) or n_bars < 2:
        raise ValueError(f"n_bars: expected an integer >= 2, got {n_bars!r}")
    if not -1 < momentum < 1:
        raise ValueError(f"momentum: must be in (-1, 1), got {momentum}")
    if not volatility > 0:
        raise ValueError(f"volatility: must be positive, got {volatility}")
    if flip_at is not None and not 0 < flip_at < n_bars:
        raise ValueError(f"flip_at: must be a bar inside (0, {n_bars}), got {flip_at}")
    rng = np.random.default_rng(seed)
    coefficient = np.full(n_bars, momentum)
    if flip_at is not None:
        coefficient[flip_at:] = -momentum
    shocks = rng.normal(0.0, volatility, n_bars)
    returns = np.empty(n_bars)
    previous = 0.0
    for i in range(n_bars):
        previous = coefficient[i] * previous + shocks[i]
        returns[i] = previous
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.3 * volatility, n_bars)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.3 * volatility, n_bars)))
    volume = 1000.0 * np.exp(0.5 * rng.standard_normal(n_bars)) * (1 + np.abs(returns) / volatility)
    first = pd.Timestamp(start, tz="UTC")
    timestamps = pd.date_range(
        first, periods=n_bars, freq=pd.Timedelta(seconds=bar_to_seconds(bar))
    )
    return _ohlcv_frame(timestamps, open_, high, low, close, volume)
