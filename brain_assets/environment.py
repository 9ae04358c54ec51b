"""The environment variables the platform reads: where its database and working folder are,
how many symbols run side by side, and where the deployment's bars come from.

(The retrain's own settings are ``pipeline.settings.RetrainSettings``.)"""

from __future__ import annotations

import logging
import os
from pathlib import Path

DATABASE_DSN_ENV = "DATABASE_DSN"
WORKERS_ENV = "BRAIN_WORKERS"
BRAIN_HOME_ENV = "BRAIN_HOME"
LEGACY_HOME = ".brain"
"""Where versions before 0.2 kept the embedded server: the current directory's ``.brain``."""

MARKET_ENV = {
    "source": "BRAIN_MARKET_SOURCE",
    "folder": "BRAIN_MARKET_FOLDER",
    "store_source": "BRAIN_BAR_SOURCE",
    "timeframe": "BRAIN_TIMEFRAME",
}
"""The deployment's market settings (fields of ``defs.resources.MarketDataResource``), read from
these environment variables when set."""
MARKET_SOURCES = ("auto", "store", "files", "synthetic")
EXCHANGE_ENV = {
    "exchange": "BRAIN_EXCHANGE",
    "timeframe": MARKET_ENV["timeframe"],
    "since": "BRAIN_FETCH_SINCE",
}
"""The exchange the deployment fetches from (fields of ``defs.market.resources.ExchangeResource``):
one timeframe for the bars fetched and the bars the retrain reads."""
DEFAULT_TIMEFRAME = "1h"
"""The bar length the market source, the exchange fetch and the bar store use when
``BRAIN_TIMEFRAME`` (or the command's ``--timeframe``) is not set."""


def default_home() -> Path:
    """``$XDG_DATA_HOME/brain-assets``, else ``~/.local/share/brain-assets``: the same folder
    whatever directory ``brain`` runs from."""
    data = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(data).expanduser() if data else Path.home() / ".local" / "share"
    return (base / "brain-assets").resolve()


def brain_home() -> Path:
    """The folder of the embedded database and of ``brain dev``'s Dagster home: ``$BRAIN_HOME``,
    else :func:`default_home`. A Brain left in ``./.brain`` by an older version is not opened
    silently: a warning says how to keep using it."""
    raw = os.environ.get(BRAIN_HOME_ENV, "").strip()
    if raw:
        return Path(raw).expanduser().resolve()
    legacy = Path.cwd() / LEGACY_HOME / "pgdata"
    if legacy.is_dir():
        from brain_assets.events import log_event

        log_event(
            "legacy_brain_home",
            logging.WARNING,
            found=str(legacy.parent),
            using=str(default_home()),
            message=f"set BRAIN_HOME={legacy.parent} to keep using the Brain found there",
        )
    return default_home()


def configured_dsn() -> str | None:
    """``$DATABASE_DSN`` when set and not blank, else None (meaning: use the embedded server)."""
    raw = os.environ.get(DATABASE_DSN_ENV, "").strip()
    return raw or None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def worker_count(requested: int | None = None) -> int:
    """How many symbols run side by side: ``requested``, else ``$BRAIN_WORKERS``, else every
    available core. Each run is single-threaded in its hot loops (``n_jobs=1``), so one per core
    keeps every core busy without oversubscribing them."""
    if requested is None:
        raw = os.environ.get(WORKERS_ENV, "").strip()
        if not raw:
            return available_cores()
        try:
            requested = int(raw)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV} must be a whole number >= 1, got {raw!r}") from None
        source = WORKERS_ENV
    else:
        source = "workers"
    if isinstance(requested, bool) or requested < 1:
        raise ValueError(f"{source} must be a whole number >= 1, got {requested!r}")
    return requested
