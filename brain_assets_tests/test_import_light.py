"""``import brain_assets`` stays light: the Dagster code location and the CLI import it often."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "shap", "dagster", "sklearn", "skops", "matplotlib")


def test_import_brain_assets_loads_no_heavy_library() -> None:
    code = f"import sys, brain_assets\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_public_names_resolve_lazily() -> None:
    import brain_assets

    assert brain_assets.BrainLibrary.__name__ == "BrainLibrary"
    assert issubclass(brain_assets.UnknownModelError, ValueError)
    assert set(brain_assets.__all__) <= set(dir(brain_assets))
