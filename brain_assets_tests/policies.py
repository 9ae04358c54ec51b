"""Decision policies the tests share."""

from __future__ import annotations

from brain_assets.decisions.policy import DecisionPolicy

NO_FLOOR_POLICY = DecisionPolicy(floor_min_composite=None, floor_confidence=None)
"""The default policy without the activation floor: the first version of a symbol trades, so that
tests of loading, predicting and rolling back have a model to work with."""
