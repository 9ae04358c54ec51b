"""BrainStore: every table of the Brain behind one object (no Dagster, no model code inside).

Users import :class:`brain_assets.BrainLibrary`, which is this store plus the lifecycle's calls
(``load_predictor``); code below the lifecycle takes a BrainStore."""

from __future__ import annotations

from brain_assets.store.asset_values import AssetValuesMixin
from brain_assets.store.bars import BarsMixin
from brain_assets.store.drift import DriftMixin
from brain_assets.store.importance import ImportanceMixin
from brain_assets.store.metrics import MetricsMixin
from brain_assets.store.outbox import OutboxMixin
from brain_assets.store.quality import QualityMixin
from brain_assets.store.regimes import RegimesMixin
from brain_assets.store.registry import RegistryMixin
from brain_assets.store.replays import ReplaysMixin


class BrainStore(
    RegistryMixin,
    MetricsMixin,
    ImportanceMixin,
    QualityMixin,
    AssetValuesMixin,
    RegimesMixin,
    ReplaysMixin,
    BarsMixin,
    OutboxMixin,
    DriftMixin,
):
    """Models, metrics, feature importance and data-quality logs of every trading symbol.

    ``BrainStore(dsn)`` connects to ``dsn``; with no argument it uses ``$DATABASE_DSN`` and,
    when that is unset, starts the embedded PostgreSQL under ``$BRAIN_HOME`` (default
    ``~/.local/share/brain-assets``). The schema is migrated on first use. One instance is safe
    to share between threads (a connection pool); every method is one transaction, and
    ``transaction()`` groups several calls into one.
    """
