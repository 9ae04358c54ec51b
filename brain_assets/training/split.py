"""Chronological train / validation / test split with an embargo between segments.

A target that is the forward return over ``horizon`` bars at row ``t`` is computed from prices up
to ``t + horizon``. If the last training row sat right before the first validation row, its target
would be built from prices inside the validation period and the validation score would leak.
Dropping ``embargo >= horizon`` bars between segments means the last target of a segment ends
strictly before the first bar of the next one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd

SEGMENTS = ("train", "validation", "test")


@dataclass(frozen=True)
class WalkForwardSplit:
    """Positions of the three segments, usable with ``.iloc`` and numpy indexing alike.

    ``train``, ``validation`` and ``test`` are slices of row positions (step 1). The ``*_period``
    fields are the first and last timestamps (inclusive) of each segment when the split was made
    from an index, otherwise ``None``.
    """

    n_rows: int
    embargo: int
    train: slice
    validation: slice
    test: slice
    train_period: tuple[pd.Timestamp, pd.Timestamp] | None = None
    validation_period: tuple[pd.Timestamp, pd.Timestamp] | None = None
    test_period: tuple[pd.Timestamp, pd.Timestamp] | None = None

    def positions(self, segment: str) -> np.ndarray:
        """Integer row positions of ``segment`` (one of ``SEGMENTS``)."""
        if segment not in SEGMENTS:
            raise ValueError(f"segment must be one of {', '.join(SEGMENTS)}; got {segment!r}")
        part: slice = getattr(self, segment)
        return np.arange(part.start, part.stop, dtype=np.int64)

    def sizes(self) -> dict[str, int]:
        """Number of rows in each segment (embargoed rows belong to none)."""
        return {name: getattr(self, name).stop - getattr(self, name).start for name in SEGMENTS}


def _check_fraction(name: str, value: object) -> float:
    # bool is an int subclass; True as a fraction is a caller bug, not 1.0
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number in (0, 1); got {value!r}")
    number = float(value)
    if not 0.0 < number < 1.0:  # also rejects NaN, whose comparisons are all False
        raise ValueError(f"{name} must be in (0, 1); got {value!r}")
    return number


def _row_count(index_or_n: int | pd.Index) -> tuple[int, pd.Index | None]:
    if isinstance(index_or_n, bool):
        raise ValueError(f"index_or_n must be a row count or a pandas Index; got {index_or_n!r}")
    if isinstance(index_or_n, (int, np.integer)):
        if index_or_n < 0:
            raise ValueError(f"index_or_n must be >= 0 rows; got {index_or_n}")
        return int(index_or_n), None
    if isinstance(index_or_n, pd.Index):
        # A walk-forward split is only honest on time-ordered rows: an unsorted index would put
        # future bars into the training segment.
        if not index_or_n.is_monotonic_increasing:
            raise ValueError("index_or_n must be sorted in increasing (chronological) order")
        return len(index_or_n), index_or_n
    raise ValueError(
        f"index_or_n must be a row count or a pandas Index; got {type(index_or_n).__name__}"
    )


def walk_forward_split(
    index_or_n: int | pd.Index,
    *,
    train_frac: float = 0.6,
    val_frac: float = 0.2,
    embargo: int = 1,
) -> WalkForwardSplit:
    """Split ``n`` time-ordered rows into train, validation and test segments.

    The cut points sit at ``floor(n * train_frac)`` and ``floor(n * (train_frac + val_frac))``;
    the ``embargo`` bars right after each cut are dropped (they belong to no segment), so the
    validation and test segments are each ``embargo`` rows shorter than their fraction. Pass the
    target horizon (or more) as ``embargo``.

    Raises ``ValueError`` naming the offending argument for bad fractions or embargo, and naming
    the row count when a segment would be empty.
    """
    train_share = _check_fraction("train_frac", train_frac)
    val_share = _check_fraction("val_frac", val_frac)
    if train_share + val_share >= 1.0:
        raise ValueError(
            f"train_frac + val_frac must be < 1 to leave a test segment; "
            f"got {train_frac} + {val_frac}"
        )
    if isinstance(embargo, bool) or not isinstance(embargo, (int, np.integer)) or embargo < 0:
        raise ValueError(f"embargo must be an integer >= 0; got {embargo!r}")
    embargo = int(embargo)
    n_rows, index = _row_count(index_or_n)

    train_end = math.floor(n_rows * train_share)
    val_end = math.floor(n_rows * (train_share + val_share))
    train = slice(0, train_end)
    validation = slice(min(train_end + embargo, val_end), val_end)
    test = slice(min(val_end + embargo, n_rows), n_rows)

    for name, part in zip(SEGMENTS, (train, validation, test), strict=True):
        if part.stop <= part.start:
            raise ValueError(
                f"the {name} segment is empty: index_or_n has {n_rows} rows, too few for "
                f"train_frac={train_frac}, val_frac={val_frac}, embargo={embargo}"
            )

    periods: list[tuple[pd.Timestamp, pd.Timestamp] | None] = [None, None, None]
    if index is not None:
        periods = [(index[part.start], index[part.stop - 1]) for part in (train, validation, test)]
    return WalkForwardSplit(
        n_rows=n_rows,
        embargo=embargo,
        train=train,
        validation=validation,
        test=test,
        train_period=periods[0],
        validation_period=periods[1],
        test_period=periods[2],
    )
