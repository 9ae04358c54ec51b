"""Training helpers for the daily retrain: chronological splits, model building, safe serialisation.

Import the submodules directly (``brain_assets.training.split`` and friends); this package itself
imports nothing heavy so that ``import brain_assets`` stays light.
"""

from __future__ import annotations
