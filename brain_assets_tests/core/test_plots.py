"""Charts stay cheap at a year of minute bars: lines are thinned to what a reader can see."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from brain_assets.plots import MAX_POINTS, equity_curves_png, thinned


def minute_series(n: int) -> pd.Series:
    index = pd.date_range("2025-01-01", periods=n, freq="min", tz="UTC")
    return pd.Series(np.cumprod(1 + np.random.default_rng(0).normal(0, 1e-4, n)), index=index)


@pytest.mark.parametrize("n", [10, MAX_POINTS, MAX_POINTS + 1, 525_600])
def test_thinned_keeps_the_ends_and_at_most_max_points(n: int) -> None:
    series = minute_series(n)
    shown = thinned(series)
    assert len(shown) <= MAX_POINTS
    assert shown.index[0] == series.index[0] and shown.index[-1] == series.index[-1]
    assert shown.iloc[-1] == series.iloc[-1]
    assert shown.index.is_monotonic_increasing and shown.index.is_unique
    if n <= MAX_POINTS:
        assert shown is series


def test_equity_chart_of_a_year_of_minute_bars_is_a_png() -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    curve = minute_series(525_600)
    labels = np.where(np.arange(len(curve)) // 997 % 3 == 0, "high", "normal")
    regimes = pd.Series(labels, index=curve.index)
    png = equity_curves_png({"ridge": curve, "lstm": curve * 1.01}, "year", regimes=regimes)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 400
