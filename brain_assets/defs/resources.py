"""Resources: the Brain store, the market-data source, the retrain settings and the decision
policy.

Every default of the retrain and decision resources is read from the core dataclass it fills in
(``RetrainSettings``, ``LSTMSettings``, ``CleaningPolicy``, ``DecisionPolicy``), so that the two
cannot drift apart; the Dagster UI still shows each default in the config schema."""

import os
from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.defaults import ROLLBACK_THRESHOLD
from brain_assets.environment import (
    DATABASE_DSN_ENV,
    DEFAULT_TIMEFRAME,
    MARKET_ENV,
    MARKET_SOURCES,
)
from brain_assets.library import BrainLibrary
from brain_assets.market_data.base import MarketData
from brain_assets.market_data.deployment import DeploymentMarket
from brain_assets.pipeline.settings import LSTMSettings, RetrainSettings
from brain_assets.provenance import BarProvenance
from brain_assets.quality.cleaning import CleaningPolicy

__all__ = [
    "MARKET_ENV",
    "MARKET_SOURCES",
    "BrainResource",
    "CleaningConfig",
    "DecisionResource",
    "LSTMConfig",
    "MarketDataResource",
    "RetrainResource",
    "brain_resource",
    "market_resource",
]


class BrainResource(dg.ConfigurableResource):
    """The Brain store. An empty ``dsn`` means ``$DATABASE_DSN`` or the embedded server."""

    dsn: str = ""
    _brain: BrainLibrary | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._brain = BrainLibrary(self.dsn or None)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._brain is not None:
            self._brain.close()
            self._brain = None

    @property
    def library(self) -> BrainLibrary:
        if self._brain is None:  # used outside a run (tests calling an asset directly)
            self._brain = BrainLibrary(self.dsn or None)
        return self._brain


def brain_resource() -> BrainResource:
    # The secret stays in the environment: EnvVar is resolved in the run, never logged.
    if os.environ.get(DATABASE_DSN_ENV, "").strip():
        return BrainResource(dsn=dg.EnvVar(DATABASE_DSN_ENV))
    return BrainResource()


class MarketDataResource(dg.ConfigurableResource):
    """Where OHLCV bars come from, set once per deployment (see ``market_resource``).

    ``auto`` (default) and ``store``: the bar store; a symbol it lacks fails with its name
    (MissingBarsError) rather than training on made-up bars. ``files``: one file per symbol in
    ``folder``. ``synthetic``: generated bars (``seed``, ``n_bars``, ``bar``), chosen on purpose
    (the demo does): only such a deployment lets versions trained on synthetic bars trade."""

    source: str = Field(default="auto", description="auto, store, files or synthetic")
    folder: str = ""
    store_source: str = Field(
        default="", description="bar store source (exchange id or 'files'); empty: the only one"
    )
    timeframe: str = DEFAULT_TIMEFRAME
    seed: int = 7
    n_bars: int = 3000
    bar: str = "1h"

    def deployment(self) -> DeploymentMarket:
        """The same settings as the Dagster-free core reads them (market_data.deployment)."""
        return DeploymentMarket(**self.model_dump())

    def load(self, symbol: str, brain: BrainLibrary | None = None) -> MarketData:
        """``symbol``'s bars; ``brain`` is the store the ``auto`` and ``store`` sources read."""
        return self.deployment().load(symbol, brain)

    def provenance(
        self, symbol: str, brain: BrainLibrary | None, stamps: Sequence[object] | pd.Index
    ) -> BarProvenance:
        """Where ``load`` takes ``symbol``'s bars from (see DeploymentMarket.provenance)."""
        return self.deployment().provenance(symbol, brain, stamps)


def market_resource() -> MarketDataResource:
    """The market source of this deployment: every variable of MARKET_ENV that is set becomes
    the matching field through dg.EnvVar (read in the run, so schedules, sensors and backfills
    follow it without any run config); the rest keep their defaults."""
    settings: dict[str, Any] = {
        field: dg.EnvVar(variable)
        for field, variable in MARKET_ENV.items()
        if os.environ.get(variable, "").strip()
    }
    return MarketDataResource(**settings)


_LSTM = LSTMSettings()


class LSTMConfig(dg.Config):
    """The ``lstm`` model type's settings (see LSTMSettings); defaults are demo-sized."""

    units: int = _LSTM.units
    layers: int = _LSTM.layers
    sequence_length: int = _LSTM.sequence_length
    epochs: int = _LSTM.epochs
    batch_size: int = _LSTM.batch_size
    patience: int = _LSTM.patience
    learning_rate: float = _LSTM.learning_rate
    dropout: float = _LSTM.dropout
    bidirectional: bool = _LSTM.bidirectional
    shap_rows: int = _LSTM.shap_rows
    shap_samples: int = _LSTM.shap_samples

    def settings(self) -> LSTMSettings:
        return LSTMSettings(**self.model_dump())


_CLEANING = CleaningPolicy()


class CleaningConfig(dg.Config):
    """The bar-cleaning policy (see CleaningPolicy): what happens to bad bars before the checks."""

    enabled: bool = _CLEANING.enabled
    inconsistent_ohlc: str = Field(
        default=_CLEANING.inconsistent_ohlc,
        description="drop or widen candles whose open or close lies outside [low, high]",
    )
    duplicates: str = Field(
        default=_CLEANING.duplicates,
        description="bars sharing a timestamp with different values: drop, keep_last, keep_first",
    )
    max_affected_fraction: float = Field(
        default=_CLEANING.max_affected_fraction,
        description="ohlcv_valid fails (nothing trains) above this fraction of dropped or "
        "repaired bars",
    )
    recent_stretch: bool = Field(
        default=_CLEANING.recent_stretch,
        description="over the fraction, train on the longest recent stretch that keeps it "
        "(older bars left out and logged) instead of blocking the symbol",
    )

    def policy(self) -> CleaningPolicy:
        return CleaningPolicy(**self.model_dump())


_RETRAIN = RetrainSettings()


class RetrainResource(dg.ConfigurableResource):
    """The daily retrain's settings (see RetrainSettings)."""

    horizon: int = _RETRAIN.horizon
    model_types: list[str] = Field(default_factory=lambda: list(_RETRAIN.model_types))
    train_frac: float = _RETRAIN.train_frac
    val_frac: float = _RETRAIN.val_frac
    min_rows: int = _RETRAIN.min_rows
    train_window_bars: int | None = _RETRAIN.train_window_bars
    max_gap_bars: float = _RETRAIN.max_gap_bars
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    fee_bps: float = _RETRAIN.fee_bps
    band_margin: float = Field(
        default=_RETRAIN.band_margin,
        description="the no-trade band: a forecast must clear the round-trip cost by this "
        "fraction of it to open or reverse a position",
    )
    walk_forward_folds: int = _RETRAIN.walk_forward_folds
    walk_forward_test_frac: float = _RETRAIN.walk_forward_test_frac
    walk_forward_window: str = Field(
        default=_RETRAIN.walk_forward_window, description="expanding or rolling"
    )
    importance_methods: list[str] = Field(default_factory=lambda: list(_RETRAIN.importance_methods))
    importance_sample: int = _RETRAIN.importance_sample
    seed: int = _RETRAIN.seed
    include_lstm: bool = _RETRAIN.include_lstm
    lstm_config: LSTMConfig = Field(default_factory=LSTMConfig)

    def settings(self) -> RetrainSettings:
        # Config lists become the dataclass's tuples; the nested configs build their own.
        plain: dict[str, Any] = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in self.model_dump(exclude={"cleaning", "lstm_config"}).items()
        }
        return RetrainSettings(
            **plain, cleaning=self.cleaning.policy(), lstm_config=self.lstm_config.settings()
        )


_POLICY = DecisionPolicy()


class DecisionResource(dg.ConfigurableResource):
    """Which model trades: the activation floor (every try counted, skill beyond holding), fair
    promotion, and monitoring (the record since activation, the window, drifted inputs); see
    decisions.policy. A confidence of null switches its rule off; all off (``seed: true`` does
    that) is the platform's original behaviour."""

    seed: bool = Field(
        default=False,
        description="the original rules: score promotion, no floor, rollback on any drop "
        "beyond rollback_threshold",
    )
    rollback_threshold: float = Field(
        default=ROLLBACK_THRESHOLD,
        description="the smallest relative degradation of a monitored metric that matters, in "
        "(0, 1]; the default policy also needs the live record to be significantly worse",
    )
    promotion_confidence: float | None = _POLICY.promotion_confidence
    min_compare_bars: int = _POLICY.min_compare_bars
    floor_min_composite: float | None = _POLICY.floor_min_composite
    floor_confidence: float | None = _POLICY.floor_confidence
    floor_beyond_hold: bool = _POLICY.floor_beyond_hold
    floor_min_bars_in_market: int = _POLICY.floor_min_bars_in_market
    rollback_confidence: float | None = _POLICY.rollback_confidence
    monitor_confidence: float | None = Field(
        default=_POLICY.monitor_confidence,
        description="the cumulative test: a version whose record since activation credibly "
        "loses at this confidence, over every look, is taken out; null: off",
    )
    cooldown_bars: int = _POLICY.cooldown_bars
    drift_psi_threshold: float = _POLICY.drift_psi_threshold
    drift_action: str = Field(
        default=_POLICY.drift_action,
        description="flag: report drifted inputs (warning check, alert); stand_aside: take the "
        "version out",
    )

    def policy(self) -> DecisionPolicy:
        if self.seed:
            return DecisionPolicy.seed()
        return DecisionPolicy(**self.model_dump(exclude={"seed", "rollback_threshold"}))
