"""Are the live inputs like the training rows? The Population Stability Index per feature.

A version learnt its features' joint behaviour from its training rows; live bars whose features
fall where the training rows never were (a volatility the model never saw, a volume regime of
another market) are predicted by extrapolation. The Population Stability Index compares, over the
bins of the training distribution, the share of live rows with the share of training rows:

    PSI = sum over bins of (p_live - p_train) * ln(p_live / p_train)

By convention below 0.1 is stable, 0.1 to 0.25 some shift and above 0.25 a large shift (the
figures of the credit-scoring literature, where the index comes from). The bins
are the training rows' deciles, so that each holds about a tenth of them; an empty bin counts as
:data:`EMPTY_SHARE`, the usual floor that keeps the logarithm finite. With few live rows the
index is noisy: roughly (bins - 1) / live rows when nothing changed (0.03 over 336 rows).

The profile is stored with each version at registration (``feature_profile``); monitoring
computes the index over its live window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

BINS = 10
EMPTY_SHARE = 1e-4
"""The share an empty bin counts as, on either side."""
DEFAULT_PSI_THRESHOLD = 0.25


def feature_profile(rows: pd.DataFrame, bins: int = BINS) -> dict[str, Any]:
    """Per feature, the interior bin edges (the training rows' quantiles, ties merged) and the
    share of rows in each bin: what :func:`population_stability` compares live rows with."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    if rows.empty:
        raise ValueError("rows: a profile needs at least one training row")
    features: dict[str, dict[str, list[float]]] = {}
    for name in rows.columns:
        values = rows[name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        features[str(name)] = {
            "edges": [float(e) for e in edges],
            "shares": [float(c) / values.size for c in counts],
        }
    return {"bins": bins, "rows": len(rows), "features": features}


def population_stability(profile: Mapping[str, Any], rows: pd.DataFrame) -> dict[str, float]:
    """The PSI of each profiled feature of ``rows`` against ``profile`` (a feature missing from
    ``rows`` is an error: the version was trained on it)."""
    features = profile.get("features")
    if not isinstance(features, Mapping) or not features:
        raise ValueError("profile: no features (was it made by feature_profile?)")
    missing = [name for name in features if name not in rows.columns]
    if missing:
        raise ValueError(f"rows: missing feature(s) {missing} of the profile")
    if rows.empty:
        raise ValueError("rows: no live row to compare")
    result: dict[str, float] = {}
    for name, entry in features.items():
        edges = np.asarray(entry["edges"], dtype=np.float64)
        train = np.maximum(np.asarray(entry["shares"], dtype=np.float64), EMPTY_SHARE)
        values = rows[name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        live = np.maximum(counts / values.size, EMPTY_SHARE)
        # Each term is >= 0, and both shares are floored: always finite.
        result[str(name)] = float(np.sum((live - train) * np.log(live / train)))
    return result
