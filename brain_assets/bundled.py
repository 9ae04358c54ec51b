"""Run-time files of the package: the migrations and the Dagster YAML files.

In a checkout (and an editable install) they live at the repository's top level; a wheel carries
copies in ``brain_assets/_bundled/`` (see setup.py). Either way ``bundled_path`` finds them, so
``brain`` works from any directory.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLE = PACKAGE / "_bundled"
CHECKOUT = PACKAGE.parent
NAMES = ("sql", "dagster.yaml", "workspace.yaml")


def bundled_path(name: str) -> Path:
    """Where ``name`` (``sql``, ``dagster.yaml`` or ``workspace.yaml``) is: the wheel's copy, else
    the checkout's. A missing file is a FileNotFoundError saying where it was looked for."""
    if name not in NAMES:
        raise ValueError(f"{name!r} is not a bundled file; bundled are {', '.join(NAMES)}")
    for root in (BUNDLE, CHECKOUT):
        candidate = root / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"{name} is neither in {BUNDLE} (an installed wheel) nor in {CHECKOUT} (a checkout); "
        "reinstall brain-assets"
    )
