"""Gaps in a bar series, and the modelling rows whose windows straddle one.

Real exchange histories miss bars: an outage drops a few hours, a delisting drops days. Nothing
in the features notices: the 1-bar return at the first bar after a hole silently spans the whole
hole, rolling windows mix bars from both sides, and the target of the last bar before the hole
is a return over far more than ``horizon`` bars. Such rows mean something else than the rows a
model learns from, so the dataset drops them.

A *gap* is a spacing between consecutive bars longer than ``max_gap_bars`` median spacings
(the same rule as the ``ohlcv_gaps`` data-quality check). The median ignores the holes
themselves, so a few gaps do not change the inferred bar size.

Row ``t`` of the modelling table reads bars ``t - lookback .. t`` for its features and bars
``t .. t + max(horizon, 1)`` for its target and next return. A gap between bars ``j - 1`` and
``j`` therefore affects the feature rows ``j .. j + lookback - 1`` and the target rows
``j - max(horizon, 1) .. j - 1``.

Recursive EMAs (MACD, the EMA ratios) remember every earlier bar, with weights that fade
geometrically; after ``WARMUP_BARS`` bars the pre-gap part is small, which is why the default
look-back is the longest window rather than the whole history.

Dagster-free: the pipeline and the tests use it directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.features.technical import WARMUP_BARS

# A report lists only a few gaps: enough to find them in the data, small enough for metadata.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class GapReport:
    """What the gaps of one bar series cost the modelling table."""

    gaps: int
    """Spacings between consecutive bars longer than ``max_gap_bars`` bar spacings."""
    rows_excluded: int
    """Modelling rows dropped because their look-back or target window spans a gap."""
    largest_gap_bars: float
    """The longest spacing in bar units (1.0 when there are fewer than 2 bars)."""
    max_gap_bars: float
    examples: list[dict[str, Any]] = field(default_factory=list)
    """At most :data:`MAX_EXAMPLES` gaps: ``{"after": ISO, "before": ISO, "bars": float}``."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (plain ints, floats, strings and lists)."""
        return asdict(self)

    def summary(self) -> str:
        """One line such as ``2 gap(s) over 3 bars (largest 4.0 bars); 101 row(s) excluded``."""
        return (
            f"{self.gaps} gap(s) over {self.max_gap_bars:g} bars "
            f"(largest {self.largest_gap_bars:.1f} bars); {self.rows_excluded} row(s) excluded"
        )


def _check_max_gap_bars(max_gap_bars: float) -> float:
    """``max_gap_bars`` as a float when it is a finite number > 1; a ValueError otherwise."""
    # One bar spacing or less would call every regular bar a gap; NaN compares false and is
    # rejected by the same test.
    if (
        isinstance(max_gap_bars, bool)
        or not isinstance(max_gap_bars, int | float | np.integer | np.floating)
        or not max_gap_bars > 1
        or not np.isfinite(max_gap_bars)
    ):
        raise ValueError(f"max_gap_bars: expected a number > 1, got {max_gap_bars!r}")
    return float(max_gap_bars)


def _check_count(name: str, value: int) -> int:
    """``value`` when it is an integer >= 0; a ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def _sorted_index(timestamps: pd.DatetimeIndex | pd.Series) -> pd.DatetimeIndex:
    """The timestamps as a UTC index; a ValueError unless they are present, sorted and unique.

    Cleaning upstream guarantees the order; sorting here instead would silently misalign the
    mask with the rows it describes.
    """
    index = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps), utc=True))
    if index.hasnans:
        raise ValueError("timestamps: contain missing values (NaT)")
    if len(index) > 1 and not bool((np.diff(index.asi8) > 0).all()):
        raise ValueError("timestamps: must be sorted in increasing order without duplicates")
    return index


def _spacings_in_bars(index: pd.DatetimeIndex) -> np.ndarray:
    """Spacing ``j - 1 -> j`` for j = 1..n-1, in median spacings (empty below 2 bars)."""
    steps = np.diff(index.asi8).astype(float)
    if steps.size == 0:
        return steps
    return steps / float(np.median(steps))


def find_gaps(timestamps: pd.DatetimeIndex | pd.Series, max_gap_bars: float) -> np.ndarray:
    """Positions ``j`` of the first bar after each gap (``t[j] - t[j-1]`` > the limit).

    Positions index the timestamps as given (they must be sorted and unique). A spacing of
    exactly ``max_gap_bars`` median spacings is not a gap, as in the ``ohlcv_gaps`` check.
    """
    limit = _check_max_gap_bars(max_gap_bars)
    spacings = _spacings_in_bars(_sorted_index(timestamps))
    return np.flatnonzero(spacings > limit) + 1


def gap_affected_rows(
    timestamps: pd.DatetimeIndex | pd.Series,
    *,
    horizon: int,
    max_gap_bars: float,
    lookback: int = WARMUP_BARS,
) -> tuple[np.ndarray, GapReport]:
    """A boolean per bar (True: the row's windows span a gap) and the report of the gaps.

    Row ``t`` is flagged when its features (bars ``t - lookback .. t``) or its target and next
    return (bars ``t .. t + max(horizon, 1)``) span a gap. The report's ``rows_excluded``
    counts only the flagged rows that would otherwise be modelling rows, i.e. whose look-back
    and target windows both lie inside the series: warm-up and tail rows are dropped anyway.
    """
    limit = _check_max_gap_bars(max_gap_bars)
    horizon = _check_count("horizon", horizon)
    lookback = _check_count("lookback", lookback)
    index = _sorted_index(timestamps)
    n = len(index)
    spacings = _spacings_in_bars(index)
    starts = np.flatnonzero(spacings > limit) + 1
    ahead = max(horizon, 1)

    # Mark each affected interval with +1/-1 at its ends; a running sum > 0 is inside one.
    # Linear in bars plus gaps, whatever the overlap between neighbouring gaps.
    marks = np.zeros(n + 1, dtype=np.int64)
    for j in starts.tolist():
        for first, stop in ((j, j + lookback), (j - ahead, j)):
            first, stop = max(first, 0), min(stop, n)
            if first < stop:
                marks[first] += 1
                marks[stop] -= 1
    mask = np.cumsum(marks[:n]) > 0

    modelling = np.zeros(n, dtype=bool)
    modelling[lookback : max(n - ahead, lookback)] = True
    examples = [
        {
            "after": index[j - 1].isoformat(),
            "before": index[j].isoformat(),
            "bars": float(spacings[j - 1]),
        }
        for j in starts[:MAX_EXAMPLES].tolist()
    ]
    report = GapReport(
        gaps=int(starts.size),
        rows_excluded=int((mask & modelling).sum()),
        largest_gap_bars=float(spacings.max()) if spacings.size else 1.0,
        max_gap_bars=limit,
        examples=examples,
    )
    return mask, report
