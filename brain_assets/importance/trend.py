"""How a model's feature ranking moved between two analyses."""

from __future__ import annotations

from typing import Any

import pandas as pd


def compare_rankings(
    previous: pd.DataFrame | None, current: pd.DataFrame, top_n: int = 20
) -> dict[str, Any]:
    """Rank changes of the current top ``top_n`` and the features entering or leaving it.

    Both frames have columns feature and rank. ``rank_change`` is previous rank minus current
    rank (positive: the feature moved up); a feature absent before has ``None``.
    """
    now = current.sort_values("rank").head(top_n)
    if previous is None or previous.empty:
        return {
            "previous_available": False,
            "entered": now["feature"].tolist(),
            "left": [],
            "changes": [
                {"feature": f, "rank": int(r), "previous_rank": None, "rank_change": None}
                for f, r in zip(now["feature"], now["rank"], strict=True)
            ],
        }
    before = dict(zip(previous["feature"], previous["rank"], strict=True))
    top_before = set(previous.sort_values("rank").head(top_n)["feature"])
    top_now = set(now["feature"])
    changes = []
    for feature, rank in zip(now["feature"], now["rank"], strict=True):
        old = before.get(feature)
        changes.append(
            {
                "feature": feature,
                "rank": int(rank),
                "previous_rank": None if old is None else int(old),
                "rank_change": None if old is None else int(old) - int(rank),
            }
        )
    return {
        "previous_available": True,
        "entered": sorted(
            top_now - top_before, key=lambda f: now.set_index("feature").loc[f, "rank"]
        ),
        "left": sorted(top_before - top_now),
        "changes": changes,
    }
