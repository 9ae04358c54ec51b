"""Gaps in the bars: found exactly, and no modelling row keeps a window that spans one.

Expected row counts are worked out by hand from the rule in :mod:`brain_assets.features.gaps`:
a gap before bar ``j`` (``j`` counted after the hole is removed) affects the feature rows
``j .. j + 47`` and the target rows ``j - max(horizon, 1) .. j - 1``; only rows that are
modelling rows anyway (``48 .. n - 1 - horizon``) count as excluded.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from brain_assets.features.gaps import GapReport, find_gaps, gap_affected_rows
from brain_assets.features.technical import WARMUP_BARS, build_dataset
from brain_assets.market_data import SyntheticSource
from brain_assets.pipeline.dataset import (
    NEXT_RETURN,
    TARGET,
    Dataset,
    build_dataset_table,
    make_dataset,
)
from brain_assets.quality.schemas import DEFAULT_MAX_GAP_BARS


def _bars(n: int, bar: str = "1h") -> pd.DataFrame:
    return SyntheticSource(n_bars=n, bar=bar).load("BTC/USDT").frame


def _drop(bars: pd.DataFrame, *ranges: range) -> pd.DataFrame:
    """``bars`` without the rows at the given original positions (the holes)."""
    holes = [i for r in ranges for i in r]
    return bars.drop(index=bars.index[holes]).reset_index(drop=True)


def _old_make_dataset(ohlcv: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The modelling table as it was built before gaps were handled (the reference)."""
    X, y = build_dataset(ohlcv, horizon)
    timestamps = pd.DatetimeIndex(pd.to_datetime(ohlcv["timestamp"], utc=True))
    close = pd.Series(ohlcv["close"].to_numpy(), index=timestamps)
    next_return = (close.shift(-1) / close - 1.0).reindex(X.index)
    table = X.copy()
    table[TARGET] = y
    table[NEXT_RETURN] = next_return
    return table.dropna(subset=[NEXT_RETURN])


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return _bars(400)


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return _bars(300, bar="1d")


@pytest.mark.parametrize(("horizon", "expected_excluded"), [(1, 48 + 1), (3, 48 + 3)])
def test_hourly_five_bar_hole(hourly: pd.DataFrame, horizon: int, expected_excluded: int) -> None:
    # Bars 200..204 missing: 5 bars, so bar 199 and bar 205 are 6 hours apart; after removal,
    # bar 205 sits at position 200 and n = 395. Feature rows 200..247 (48) and target rows
    # 200 - horizon .. 199 are all inside the modelling rows 48 .. 394 - horizon.
    bars = _drop(hourly, range(200, 205))
    assert len(bars) == 395
    np.testing.assert_array_equal(find_gaps(bars["timestamp"], DEFAULT_MAX_GAP_BARS), [200])

    mask, report = gap_affected_rows(
        bars["timestamp"], horizon=horizon, max_gap_bars=DEFAULT_MAX_GAP_BARS
    )
    expected_mask = np.zeros(395, dtype=bool)
    expected_mask[200 - horizon : 200 + 48] = True
    np.testing.assert_array_equal(mask, expected_mask)
    assert report.gaps == 1
    assert report.rows_excluded == expected_excluded
    assert report.largest_gap_bars == 6.0
    assert report.max_gap_bars == 3.0
    assert report.examples == [
        {
            "after": "2024-01-09T07:00:00+00:00",  # 199 hours after 2024-01-01 00:00
            "before": "2024-01-09T13:00:00+00:00",  # 205 hours after
            "bars": 6.0,
        }
    ]
    assert report.examples[0]["after"] == hourly["timestamp"].iloc[199].isoformat()
    assert report.examples[0]["before"] == hourly["timestamp"].iloc[205].isoformat()

    dataset = build_dataset_table(bars, horizon)
    assert isinstance(dataset, Dataset)
    assert dataset.gaps == report
    # Without the gap rule the table would hold rows 48 .. 394 - horizon.
    assert len(dataset.table) == (395 - horizon - 48) - expected_excluded
    assert_frame_equal(make_dataset(bars, horizon), dataset.table)


@pytest.mark.parametrize(("horizon", "expected_excluded"), [(1, 48 + 1), (3, 48 + 3)])
def test_daily_three_day_hole(daily: pd.DataFrame, horizon: int, expected_excluded: int) -> None:
    # Days 150..152 missing: day 149 and day 153 are 4 days apart (4 > 3: a gap). After
    # removal day 153 sits at position 150, n = 297; every affected row is a modelling row.
    bars = _drop(daily, range(150, 153))
    dataset = build_dataset_table(bars, horizon)
    report = dataset.gaps
    assert report.gaps == 1
    assert report.rows_excluded == expected_excluded
    assert report.largest_gap_bars == 4.0
    assert report.examples == [
        {
            "after": daily["timestamp"].iloc[149].isoformat(),
            "before": daily["timestamp"].iloc[153].isoformat(),
            "bars": 4.0,
        }
    ]
    assert report.examples[0]["after"] == "2024-05-29T00:00:00+00:00"
    assert len(dataset.table) == (297 - horizon - 48) - expected_excluded
    kept = dataset.table.index
    assert not kept.isin(bars["timestamp"].iloc[150 - horizon : 150 + 48]).any()


@pytest.mark.parametrize(("horizon", "expected_excluded"), [(1, 68 + 1), (3, 68 + 3)])
def test_overlapping_gaps_count_each_row_once(
    hourly: pd.DataFrame, horizon: int, expected_excluded: int
) -> None:
    # Holes at 150..153 and 174..177: after removal the gaps start at positions 150 and 170.
    # Feature rows 150..197 and 170..217 join into 150..217 (68 rows); the target rows of the
    # second gap (170 - horizon .. 169) lie inside them, those of the first add `horizon`.
    bars = _drop(hourly, range(150, 154), range(174, 178))
    np.testing.assert_array_equal(find_gaps(bars["timestamp"], 3.0), [150, 170])
    mask, report = gap_affected_rows(bars["timestamp"], horizon=horizon, max_gap_bars=3.0)
    assert np.flatnonzero(mask).tolist() == list(range(150 - horizon, 218))
    assert report.gaps == 2
    assert report.rows_excluded == expected_excluded
    assert report.largest_gap_bars == 5.0
    assert build_dataset_table(bars, horizon).gaps.rows_excluded == expected_excluded
    assert report.summary() == (
        f"2 gap(s) over 3 bars (largest 5.0 bars); {expected_excluded} row(s) excluded"
    )


@pytest.mark.parametrize("horizon", [1, 3])
def test_only_modelling_rows_count_as_excluded(hourly: pd.DataFrame, horizon: int) -> None:
    # Near the start: holes at 20..23 -> gap at position 20; feature rows 20..67 of which
    # 48..67 (20 rows) are modelling rows; the target rows 20 - horizon .. 19 are warm-up.
    # Near the end: holes at 390..393 -> n = 392 and the second gap at position 386; modelling
    # rows end at 391 - horizon, so its feature rows add 386..391 - horizon (6 - horizon rows)
    # and its target rows 386 - horizon .. 385 add `horizon`: 6 in all.
    bars = _drop(hourly, range(20, 24), range(390, 394))
    assert len(bars) == 392
    mask, report = gap_affected_rows(bars["timestamp"], horizon=horizon, max_gap_bars=3.0)
    assert report.gaps == 2
    assert report.rows_excluded == 20 + 6
    assert mask[20:68].all() and mask[386 - horizon :].all()
    dataset = build_dataset_table(bars, horizon)
    assert dataset.gaps.rows_excluded == 20 + 6
    assert len(dataset.table) == (392 - horizon - 48) - 26


def test_spacing_of_exactly_max_gap_bars_is_not_a_gap(hourly: pd.DataFrame) -> None:
    # Two bars missing: a spacing of exactly 3 bars.
    bars = _drop(hourly, range(200, 202))
    assert find_gaps(bars["timestamp"], 3.0).size == 0
    mask, report = gap_affected_rows(bars["timestamp"], horizon=1, max_gap_bars=3.0)
    assert not mask.any()
    assert report.gaps == 0
    assert report.rows_excluded == 0
    assert report.examples == []
    # The longest spacing is still reported, even below the threshold.
    assert report.largest_gap_bars == 3.0
    assert_frame_equal(make_dataset(bars, 1), _old_make_dataset(bars, 1))
    # A lower threshold turns the same spacing into a gap.
    np.testing.assert_array_equal(find_gaps(bars["timestamp"], 2.5), [200])


@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("bar", ["1h", "1d"])
def test_no_gaps_gives_the_old_table(bar: str, horizon: int) -> None:
    bars = _bars(300, bar=bar)
    dataset = build_dataset_table(bars, horizon)
    assert_frame_equal(dataset.table, _old_make_dataset(bars, horizon))
    assert_frame_equal(make_dataset(bars, horizon), _old_make_dataset(bars, horizon))
    assert dataset.gaps == GapReport(
        gaps=0, rows_excluded=0, largest_gap_bars=1.0, max_gap_bars=3.0, examples=[]
    )
    assert dataset.gaps.summary() == "0 gap(s) over 3 bars (largest 1.0 bars); 0 row(s) excluded"


@pytest.mark.parametrize("horizon", [1, 3])
def test_kept_rows_never_span_a_gap(hourly: pd.DataFrame, horizon: int) -> None:
    bars = _drop(hourly, range(100, 105), range(160, 163), range(300, 310))
    table = make_dataset(bars, horizon)
    stamps = pd.DatetimeIndex(bars["timestamp"])
    limit = pd.Timedelta(hours=3)
    position = stamps.get_indexer(table.index)
    assert (position >= 0).all()
    # ret_1 of each kept row spans one spacing, never more than max_gap_bars bars.
    assert ((stamps[position] - stamps[position - 1]) <= limit).all()
    # Neither does any spacing inside the look-back and target windows.
    steps = pd.Series(stamps).diff().dt.total_seconds().to_numpy()
    for t in position:
        assert (steps[t - WARMUP_BARS + 1 : t + 1] <= 3 * 3600).all()
        assert (steps[t + 1 : t + horizon + 1] <= 3 * 3600).all()
    # The kept rows are untouched: the same values as the old table on those rows.
    assert_frame_equal(table, _old_make_dataset(bars, horizon).loc[table.index])


def test_report_is_json_friendly(hourly: pd.DataFrame) -> None:
    holes = [range(40 + 20 * k, 44 + 20 * k) for k in range(7)]
    bars = _drop(hourly, *holes)
    report = build_dataset_table(bars, 1).gaps
    assert report.gaps == 7
    # Only the first five gaps are listed.
    assert len(report.examples) == 5
    assert report.examples[0]["after"] == hourly["timestamp"].iloc[39].isoformat()
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"gaps", "rows_excluded", "largest_gap_bars", "max_gap_bars", "examples"}


def test_fewer_than_two_bars(hourly: pd.DataFrame) -> None:
    stamps = hourly["timestamp"].iloc[:1]
    assert find_gaps(stamps, 3.0).size == 0
    mask, report = gap_affected_rows(stamps, horizon=1, max_gap_bars=3.0)
    assert mask.tolist() == [False]
    assert report.largest_gap_bars == 1.0
    assert report.gaps == 0 and report.rows_excluded == 0
    empty = gap_affected_rows(hourly["timestamp"].iloc[:0], horizon=1, max_gap_bars=3.0)
    assert empty[0].size == 0


@pytest.mark.parametrize("bad", [1, 1.0, 0.5, 0, -2.0, float("nan"), float("inf"), "3", True])
def test_bad_max_gap_bars(hourly: pd.DataFrame, bad: object) -> None:
    stamps = hourly["timestamp"]
    with pytest.raises(ValueError, match="max_gap_bars"):
        find_gaps(stamps, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_gap_bars"):
        gap_affected_rows(stamps, horizon=1, max_gap_bars=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_gap_bars"):
        build_dataset_table(hourly, 1, max_gap_bars=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True, None])
def test_bad_horizon_and_lookback(hourly: pd.DataFrame, bad: object) -> None:
    stamps = hourly["timestamp"]
    with pytest.raises(ValueError, match="horizon"):
        gap_affected_rows(stamps, horizon=bad, max_gap_bars=3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lookback"):
        gap_affected_rows(
            stamps,
            horizon=1,
            max_gap_bars=3.0,
            lookback=bad,  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="horizon"):
        make_dataset(hourly, bad)  # type: ignore[arg-type]


def test_unsorted_or_duplicate_timestamps_raise(hourly: pd.DataFrame) -> None:
    shuffled = hourly.iloc[[*range(100), 150, *range(100, 150), *range(151, 400)]]
    with pytest.raises(ValueError, match="sorted"):
        find_gaps(shuffled["timestamp"], 3.0)
    with pytest.raises(ValueError, match="sorted"):
        gap_affected_rows(shuffled["timestamp"], horizon=1, max_gap_bars=3.0)
    with pytest.raises(ValueError, match="sorted"):
        make_dataset(shuffled.reset_index(drop=True), 1)
    duplicated = pd.concat([hourly.iloc[:200], hourly.iloc[199:]], ignore_index=True)
    with pytest.raises(ValueError, match="duplicates"):
        find_gaps(duplicated["timestamp"], 3.0)
    with_nat = pd.Series(
        [pd.Timestamp("2024-01-01", tz="UTC"), pd.NaT, pd.Timestamp("2024-01-03", tz="UTC")]
    )
    with pytest.raises(ValueError, match="NaT"):
        find_gaps(with_nat, 3.0)


def test_accepts_a_datetime_index(hourly: pd.DataFrame) -> None:
    bars = _drop(hourly, range(200, 205))
    index = pd.DatetimeIndex(bars["timestamp"])
    np.testing.assert_array_equal(find_gaps(index, 3.0), [200])
    mask, _ = gap_affected_rows(index, horizon=1, max_gap_bars=3.0)
    assert mask.sum() == 49
