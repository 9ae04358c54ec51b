"""One ranking rule for feature importances, shared by the analyzer and the store.

Importances can be signed (a correlation, a permutation score that went negative), so features
rank by absolute importance, largest first; ties break by feature name so a rank is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable


def rank_importances(items: Iterable[tuple[str, float]]) -> list[tuple[str, float, int]]:
    """``[(feature, importance)]`` -> ``[(feature, importance, rank)]``, rank 1 the strongest."""
    ordered = sorted(items, key=lambda item: (-abs(item[1]), item[0]))
    return [(feature, value, position) for position, (feature, value) in enumerate(ordered, 1)]
