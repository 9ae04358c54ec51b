"""Are the live inputs like the training rows? The Population Stability Index per feature.

A version learnt its features' joint behaviour from its training rows; live bars whose features
fall where the training rows never were (a volatility the model never saw, a volume regime of
another market) are predicted by extrapolation. The Population Stability Index compares, over the
bins of the training distribution, the share of live rows with the share of training rows:

    PSI = sum over bins of (p_live - p_train) * ln(p_live / p_train)

By convention below 0.1 is stable, 0.1 to 0.25 some shift and above 0.25 a large shift (the
figures of the credit-scoring literature, where the index comes from). The bins
are the training rows' deciles, so that each holds about a tenth of them; an empty bin counts as
:data:`EMPTY_SHARE`, the usual floor that keeps the logarithm finite.

The convention assumes many independent rows. A live window is neither: with few rows the index
is noisy (about (bins - 1) / rows when nothing changed: 0.26 over 35 daily bars), and a slow
feature (a 48-bar volatility, an EMA ratio) wanders from window to window within the training
rows themselves. So a feature counts as drifted only when its index is above the threshold *and*
above :func:`window_ceilings`: the largest index of any window of the same length within the
training rows. Live inputs are then unlike anything the version was trained on, not merely unlike
its average.

The profile is stored with each version at registration (``feature_profile``); monitoring
computes the index over its live window, and the ceilings over the training rows.
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


def _psi(live: np.ndarray, train: np.ndarray) -> np.ndarray:
    """The index of each row of ``live`` shares (windows x bins) against ``train`` shares."""
    live = np.maximum(live, EMPTY_SHARE)
    train = np.maximum(train, EMPTY_SHARE)
    # Each term is >= 0, and both shares are floored: always finite.
    return np.asarray(np.sum((live - train) * np.log(live / train), axis=-1))


def window_ceilings(
    profile: Mapping[str, Any], rows: pd.DataFrame, window: int, max_windows: int = 200
) -> dict[str, float]:
    """Per feature, the largest index that a window of ``window`` consecutive ``rows`` (the
    training rows) reaches against ``profile``: how far the training period itself strayed
    from its own distribution at that length. Windows overlap (a quarter-window apart, at most
    ``max_windows`` of them); a feature with fewer rows than one window gets 0."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    features = profile.get("features") or {}
    ceilings: dict[str, float] = {}
    for name, entry in features.items():
        if name not in rows.columns:
            continue
        values = rows[name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        edges = np.asarray(entry["edges"], dtype=np.float64)
        if values.size < window:
            ceilings[str(name)] = 0.0
            continue
        bins = np.searchsorted(edges, values, side="right")
        onehot = np.zeros((values.size + 1, edges.size + 1))
        onehot[np.arange(1, values.size + 1), bins] = 1.0
        counts = np.cumsum(onehot, axis=0)
        stride = max(1, window // 4, (values.size - window) // max_windows)
        starts = np.arange(0, values.size - window + 1, stride)
        shares = (counts[starts + window] - counts[starts]) / window
        train = np.asarray(entry["shares"], dtype=np.float64)
        ceilings[str(name)] = float(_psi(shares, train).max())
    return ceilings


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
        train = np.asarray(entry["shares"], dtype=np.float64)
        values = rows[name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        result[str(name)] = float(_psi(counts / values.size, train))
    return result


def drifted(psi: Mapping[str, float], ceilings: Mapping[str, float], threshold: float) -> list[str]:
    """The features whose index is above both ``threshold`` and their window ceiling."""
    return sorted(
        name for name, value in psi.items() if value > threshold and value > ceilings.get(name, 0.0)
    )
