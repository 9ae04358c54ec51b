"""Where the platform finds its database and its working folder (environment variables)."""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_DSN_ENV = "DATABASE_DSN"
BRAIN_HOME_ENV = "BRAIN_HOME"
DEFAULT_HOME = ".brain"


def brain_home() -> Path:
    """The project-local folder for the embedded database: ``$BRAIN_HOME`` or ``./.brain``."""
    raw = os.environ.get(BRAIN_HOME_ENV, "").strip()
    return Path(raw).expanduser().resolve() if raw else (Path.cwd() / DEFAULT_HOME).resolve()


def configured_dsn() -> str | None:
    """``$DATABASE_DSN`` when set and not blank, else None (meaning: use the embedded server)."""
    raw = os.environ.get(DATABASE_DSN_ENV, "").strip()
    return raw or None
