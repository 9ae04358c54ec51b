"""Walk-forward folds: most of the history becomes out-of-sample, block after block.

One test segment of a few hundred bars cannot tell skill from luck: the annualised Sharpe
ratio's standard error over 600 hourly bars is about 3.8. Walk-forward evaluation refits on the
past and tests on the next block, block after block, so that the last ``test_frac`` of the rows
is all out-of-sample (Lopez de Prado 2018, "Advances in Financial Machine Learning", ch. 7).

Each fold trains on rows strictly before its test block, less a purge of ``embargo`` rows: the
target of row ``t`` is the return over the next ``horizon`` bars, so with ``embargo >= horizon``
the last training target ends before the first test bar. No fold ever trains on rows after its
test block, so the embargo *after* a test block that cross-validation needs has nothing to do
here. ``window="expanding"`` trains each fold on every earlier row; ``"rolling"`` on as many rows
as the first fold had, the most recent ones.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd

WINDOWS = ("expanding", "rolling")


@dataclass(frozen=True)
class Fold:
    """Row positions (``.iloc`` slices) of one fold's training rows and test block."""

    number: int
    train: slice
    test: slice

    def sizes(self) -> dict[str, int]:
        return {
            "train": self.train.stop - self.train.start,
            "test": self.test.stop - self.test.start,
        }


@dataclass(frozen=True)
class WalkForward:
    """The folds of one modelling table, oldest test block first."""

    n_rows: int
    embargo: int
    window: str
    folds: tuple[Fold, ...]

    @property
    def test(self) -> slice:
        """Every out-of-sample row: the test blocks, which are contiguous."""
        return slice(self.folds[0].test.start, self.folds[-1].test.stop)

    def describe(self, index: pd.Index | None = None) -> list[dict[str, object]]:
        """Each fold's sizes and, given the table's index, its first and last timestamps."""
        described: list[dict[str, object]] = []
        for fold in self.folds:
            entry: dict[str, object] = {"fold": fold.number, **fold.sizes()}
            if index is not None:
                for name in ("train", "test"):
                    part: slice = getattr(fold, name)
                    entry[f"{name}_period"] = [str(index[part.start]), str(index[part.stop - 1])]
            described.append(entry)
        return described


def _fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number in (0, 1); got {value!r}")
    return float(value)


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def walk_forward_folds(
    index_or_n: int | pd.Index,
    *,
    folds: int = 4,
    test_frac: float = 0.5,
    embargo: int = 1,
    window: str = "expanding",
) -> WalkForward:
    """Split ``n`` time-ordered rows into ``folds`` walk-forward folds.

    The last ``floor(n * test_frac)`` rows are cut into ``folds`` contiguous test blocks of
    near-equal size; fold ``k`` trains on the rows before its block less the ``embargo`` rows
    right before it (all of them with ``window="expanding"``, the most recent ``n -
    floor(n * test_frac) - embargo`` with ``"rolling"``).

    Raises ``ValueError`` naming the argument for a bad setting, and naming the row count when a
    fold's training rows or test block would be empty.
    """
    count = _count("folds", folds, 1)
    share = _fraction("test_frac", test_frac)
    purge = _count("embargo", embargo, 0)
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}; got {window!r}")
    if isinstance(index_or_n, pd.Index):
        if not index_or_n.is_monotonic_increasing or not index_or_n.is_unique:
            raise ValueError("index_or_n must be sorted in increasing (chronological) order")
        n_rows = len(index_or_n)
    else:
        n_rows = _count("index_or_n", index_or_n, 0)
    first_test = n_rows - math.floor(n_rows * share)
    first_train = first_test - purge
    tested = n_rows - first_test
    if first_train < 1 or tested < count:
        raise ValueError(
            f"{n_rows} rows are too few for {count} walk-forward fold(s) over the last "
            f"{share:.0%} with an embargo of {purge}: each fold needs training rows and a test "
            "block"
        )
    bounds = first_test + np.cumsum(
        [0, *[len(b) for b in np.array_split(np.arange(tested), count)]]
    )
    built = []
    for number, (start, stop) in enumerate(itertools.pairwise(bounds)):
        end = int(start) - purge
        begin = 0 if window == "expanding" else max(0, end - first_train)
        built.append(Fold(number, slice(begin, end), slice(int(start), int(stop))))
    return WalkForward(n_rows=n_rows, embargo=purge, window=window, folds=tuple(built))
