"""Where the platform finds its database and its working folder (environment variables)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

DATABASE_DSN_ENV = "DATABASE_DSN"
BRAIN_HOME_ENV = "BRAIN_HOME"
LEGACY_HOME = ".brain"
"""Where versions before 0.2 kept the embedded server: the current directory's ``.brain``."""


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
