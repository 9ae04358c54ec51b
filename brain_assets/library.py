"""BrainLibrary: the Brain's Python API, the store with the lifecycle's calls on top.

It sits above both: the store (brain_assets.store) knows nothing of models being loaded, and the
lifecycle (brain_assets.lifecycle) takes a store.
"""

from __future__ import annotations

from brain_assets.lifecycle.predictor import Predictor, load_predictor
from brain_assets.store.library import BrainStore


class BrainLibrary(BrainStore):
    """Models, metrics, feature importance and data-quality logs of every trading symbol.

    ``BrainLibrary(dsn)`` connects to ``dsn``; with no argument it uses ``$DATABASE_DSN`` and,
    when that is unset, starts the embedded PostgreSQL under ``$BRAIN_HOME`` (default
    ``~/.local/share/brain-assets``). The schema is migrated on first use. One instance is safe
    to share between threads (a connection pool); every method is one transaction, and
    ``transaction()`` groups several calls into one.
    """

    def load_predictor(self, symbol: str, regime: str | None = None) -> Predictor:
        """The model the Brain recommends for ``symbol`` (the active version, or the selector's
        pick for ``regime``), loaded with its sha256 verified, ready to ``predict(bars)``.
        Raises ``StandAside`` when the symbol has no version to trade."""
        return load_predictor(self, symbol, regime)
