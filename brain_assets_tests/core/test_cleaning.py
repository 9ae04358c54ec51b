"""The bar-cleaning policy: each rule's exact effect, their order, the report, and the samples."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from brain_assets.market_data.base import OHLCV_COLUMNS, empty_ohlcv
from brain_assets.market_data.files import FileSource
from brain_assets.quality.cleaning import (
    CLEANING_RULES,
    CleaningPolicy,
    CleaningReport,
    clean_bars,
)
from brain_assets.quality.run import ohlcv_checks
from brain_assets_tests.paths import TEST_DATA

DATA = TEST_DATA
SAMPLES = ("BTC/USD", "ETH/USD", "LTC/USD", "BROKEN/USD")

Row = tuple[str | None, float, float, float, float, float]


def _stamp(day: int) -> str:
    return f"2024-01-{day:02d}"


def _iso(day: int) -> str:
    return f"2024-01-{day:02d}T00:00:00+00:00"


def _good(day: int, close: float = 100.5, volume: float = 10.0) -> Row:
    return (_stamp(day), 100.0, 101.0, 99.0, close, volume)


def _frame(rows: list[Row]) -> pd.DataFrame:
    """Bars in the market-data convention, in the given order."""
    frame = pd.DataFrame(rows, columns=list(OHLCV_COLUMNS))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    for name in OHLCV_COLUMNS[1:]:
        frame[name] = frame[name].astype("float64")
    return frame


def _days(frame: pd.DataFrame) -> list[int]:
    return [int(stamp.day) for stamp in frame["timestamp"]]


def _only_action(report: CleaningReport) -> Any:
    assert len(report.actions) == 1, report.actions
    return report.actions[0]


def _assert_convention(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(OHLCV_COLUMNS)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    for name in OHLCV_COLUMNS[1:]:
        assert frame[name].dtype == np.float64, name
    assert isinstance(frame.index, pd.RangeIndex)
    assert list(frame.index) == list(range(len(frame)))


# ---------------------------------------------------------------- rules one at a time


def test_rule_names_in_order() -> None:
    assert CLEANING_RULES == (
        "missing_value",
        "non_positive_price",
        "negative_volume",
        "inconsistent_ohlc",
        "unsorted",
        "duplicate_identical",
        "duplicate_conflicting",
    )


def test_clean_frame_comes_back_equal() -> None:
    frame = _frame([_good(day, close=100.0 + day / 10) for day in range(1, 11)])
    cleaned, report = clean_bars(frame)
    pd.testing.assert_frame_equal(cleaned, frame)
    assert cleaned is not frame
    assert report.actions == ()
    assert (report.raw_rows, report.clean_rows) == (10, 10)
    assert report.affected == 0
    assert not report.too_much
    assert report.summary() == (
        "10 raw bars, 10 kept: nothing to clean; 0.00% affected (limit 1.00%)"
    )


def test_missing_values_are_dropped() -> None:
    frame = _frame(
        [
            _good(1),
            (_stamp(2), 100.0, 101.0, 99.0, 100.5, float("nan")),
            (_stamp(3), 100.0, 101.0, 99.0, float("inf"), 10.0),
            (None, 100.0, 101.0, 99.0, 100.5, 10.0),
            _good(5),
        ]
    )
    cleaned, report = clean_bars(frame)
    action = _only_action(report)
    assert (action.rule, action.action, action.count) == ("missing_value", "dropped", 3)
    assert action.examples == [
        {
            "timestamp": _iso(2),
            "values": "open=100.0; high=101.0; low=99.0; close=100.5; volume=nan",
        },
        {
            "timestamp": _iso(3),
            "values": "open=100.0; high=101.0; low=99.0; close=inf; volume=10.0",
        },
        {"timestamp": None, "values": "open=100.0; high=101.0; low=99.0; close=100.5; volume=10.0"},
    ]
    assert _days(cleaned) == [1, 5]
    assert report.dropped == 3


def test_non_positive_prices_are_dropped() -> None:
    frame = _frame(
        [
            _good(1),
            (_stamp(2), 0.0, 0.0, 0.0, 123.4, 5.0),
            (_stamp(3), 100.0, 101.0, -1.0, 100.5, 10.0),
            (_stamp(4), 100.0, 101.0, 99.0, 0.0, 10.0),
            _good(5),
        ]
    )
    cleaned, report = clean_bars(frame)
    action = _only_action(report)
    assert (action.rule, action.action, action.count) == ("non_positive_price", "dropped", 3)
    assert action.examples[0] == {
        "timestamp": _iso(2),
        "values": "open=0.0; high=0.0; low=0.0; close=123.4; volume=5.0",
    }
    assert [example["timestamp"] for example in action.examples] == [_iso(2), _iso(3), _iso(4)]
    assert _days(cleaned) == [1, 5]


def test_negative_volume_is_dropped_but_zero_volume_kept() -> None:
    frame = _frame([_good(1), _good(2, volume=-5.0), _good(3, volume=0.0), _good(4, volume=-0.5)])
    cleaned, report = clean_bars(frame)
    action = _only_action(report)
    assert (action.rule, action.action, action.count) == ("negative_volume", "dropped", 2)
    assert [example["timestamp"] for example in action.examples] == [_iso(2), _iso(4)]
    assert _days(cleaned) == [1, 3]
    assert cleaned["volume"].tolist() == [10.0, 0.0]


def _inconsistent() -> pd.DataFrame:
    return _frame(
        [
            _good(1),
            (_stamp(2), 102.0, 101.0, 99.0, 100.5, 10.0),  # open above high
            (_stamp(3), 100.0, 101.0, 99.0, 98.0, 10.0),  # close below low
            (_stamp(4), 98.5, 98.0, 99.0, 98.5, 10.0),  # high below low
            (_stamp(5), 101.0, 101.0, 99.0, 99.0, 10.0),  # on the edges: consistent
        ]
    )


def test_inconsistent_ohlc_dropped_by_default() -> None:
    cleaned, report = clean_bars(_inconsistent())
    action = _only_action(report)
    assert (action.rule, action.action, action.count) == ("inconsistent_ohlc", "dropped", 3)
    assert action.examples[0]["values"] == (
        "open=102.0; high=101.0; low=99.0; close=100.5; volume=10.0"
    )
    assert _days(cleaned) == [1, 5]
    assert (report.dropped, report.repaired) == (3, 0)


def test_inconsistent_ohlc_widened() -> None:
    frame = _inconsistent()
    cleaned, report = clean_bars(frame, CleaningPolicy(inconsistent_ohlc="widen"))
    action = _only_action(report)
    assert (action.rule, action.action, action.count) == ("inconsistent_ohlc", "widened", 3)
    # The example shows the bar before the repair.
    assert action.examples[2]["values"] == "open=98.5; high=98.0; low=99.0; close=98.5; volume=10.0"
    assert _days(cleaned) == [1, 2, 3, 4, 5]
    assert cleaned[["high", "low"]].values.tolist() == [
        [101.0, 99.0],
        [102.0, 99.0],
        [101.0, 98.0],
        [99.0, 98.0],
        [101.0, 99.0],
    ]
    # Only the range moves; the traded prices stay as printed.
    pd.testing.assert_frame_equal(
        cleaned[["open", "close", "volume"]], frame[["open", "close", "volume"]]
    )
    assert (report.dropped, report.repaired, report.affected) == (0, 3, 3)
    assert ohlcv_checks(cleaned, min_rows=1)[0].passed


@pytest.mark.parametrize(
    ("order", "out_of_order"),
    [
        ([1, 3, 2, 4], [2]),  # one swapped pair counts 1
        ([2, 3, 4, 5, 6, 1], [1]),  # one row far from home counts 1, not 6
        ([3, 2, 1], [2, 1]),  # fully reversed: every row below its predecessor
    ],
)
def test_unsorted_rows_are_sorted(order: list[int], out_of_order: list[int]) -> None:
    cleaned, report = clean_bars(_frame([_good(day) for day in order]))
    action = _only_action(report)
    assert (action.rule, action.action) == ("unsorted", "sorted")
    assert action.count == len(out_of_order)
    assert [example["timestamp"] for example in action.examples] == [
        _iso(day) for day in out_of_order
    ]
    assert _days(cleaned) == sorted(order)
    # Moving rows loses nothing.
    assert (report.dropped, report.affected, report.clean_rows) == (0, 0, len(order))


def test_identical_duplicates_collapse_to_one() -> None:
    frame = _frame([_good(1), _good(2), _good(2), _good(2), _good(3)])
    cleaned, report = clean_bars(frame)
    action = _only_action(report)
    assert (action.rule, action.action, action.count) == ("duplicate_identical", "collapsed", 2)
    assert [example["timestamp"] for example in action.examples] == [_iso(2), _iso(2)]
    assert _days(cleaned) == [1, 2, 3]
    assert (report.dropped, report.affected, report.affected_fraction) == (0, 0, 0.0)


@pytest.mark.parametrize(
    ("mode", "action_name", "removed", "closes"),
    [
        ("drop", "dropped", 2, [100.5, 100.5]),
        ("keep_first", "kept_first", 1, [100.5, 100.6, 100.5]),
        ("keep_last", "kept_last", 1, [100.5, 100.7, 100.5]),
    ],
)
def test_conflicting_duplicates_follow_the_policy(
    mode: str, action_name: str, removed: int, closes: list[float]
) -> None:
    frame = _frame([_good(1), _good(2, close=100.6), _good(2, close=100.7), _good(3)])
    cleaned, report = clean_bars(frame, CleaningPolicy(duplicates=mode))
    action = _only_action(report)
    assert (action.rule, action.action, action.count) == (
        "duplicate_conflicting",
        action_name,
        removed,
    )
    assert cleaned["close"].tolist() == closes
    assert cleaned["timestamp"].is_unique
    assert report.dropped == removed


@pytest.mark.parametrize("mode", ["keep_first", "keep_last"])
def test_identical_copies_do_not_move_the_last_copy(mode: str) -> None:
    # A, B, A: the first and the last copy in file order are both A.
    frame = _frame([_good(1, close=100.6), _good(1, close=100.7), _good(1, close=100.6)])
    cleaned, report = clean_bars(frame, CleaningPolicy(duplicates=mode))
    assert cleaned["close"].tolist() == [100.6]
    assert report.counts() == {"duplicate_identical": 1, "duplicate_conflicting": 1}


def test_sorting_keeps_file_order_among_copies() -> None:
    frame = _frame([_good(2, close=100.6), _good(1), _good(2, close=100.7)])
    cleaned, report = clean_bars(frame, CleaningPolicy(duplicates="keep_last"))
    assert report.counts() == {"unsorted": 1, "duplicate_conflicting": 1}
    assert _days(cleaned) == [1, 2]
    assert cleaned["close"].tolist() == [100.5, 100.7]


# ---------------------------------------------------------------- order and counting


def test_duplicated_bad_print_counted_once() -> None:
    bad = (_stamp(2), 0.0, 0.0, 0.0, 123.4, 5.0)
    frame = _frame([_good(1), bad, bad, _good(3)])
    cleaned, report = clean_bars(frame)
    assert report.counts() == {"non_positive_price": 2}
    assert report.dropped == 2
    assert _days(cleaned) == [1, 3]


def test_bad_copy_of_a_good_bar_is_not_a_conflict() -> None:
    frame = _frame([_good(1), (_stamp(2), 0.0, 0.0, 0.0, 100.5, 10.0), _good(2), _good(3)])
    cleaned, report = clean_bars(frame)
    assert report.counts() == {"non_positive_price": 1}
    assert _days(cleaned) == [1, 2, 3]
    assert cleaned["open"].tolist() == [100.0, 100.0, 100.0]


def test_first_matching_rule_takes_the_bar() -> None:
    frame = _frame(
        [
            _good(1),
            (_stamp(2), 0.0, 101.0, 99.0, 100.5, float("nan")),  # missing and non-positive
            (_stamp(3), -1.0, 101.0, 99.0, 100.5, -3.0),  # non-positive and negative volume
            (_stamp(4), 105.0, 101.0, 99.0, 100.5, -3.0),  # negative volume and inconsistent
        ]
    )
    _, report = clean_bars(frame, CleaningPolicy(inconsistent_ohlc="widen"))
    assert report.counts() == {"missing_value": 1, "non_positive_price": 1, "negative_volume": 1}
    assert [item.rule for item in report.actions] == [
        "missing_value",
        "non_positive_price",
        "negative_volume",
    ]


def test_examples_are_capped_at_five() -> None:
    frame = _frame([(_stamp(day), 0.0, 0.0, 0.0, 1.0, 1.0) for day in range(1, 9)] + [_good(9)])
    _, report = clean_bars(frame)
    action = _only_action(report)
    assert action.count == 8
    assert [example["timestamp"] for example in action.examples] == [
        _iso(day) for day in range(1, 6)
    ]


# ---------------------------------------------------------------- the report


def test_report_figures_summary_and_json() -> None:
    frame = _frame([_good(1), _good(2), _good(2), (_stamp(3), 0.0, 0.0, 0.0, 1.0, 1.0), _good(4)])
    cleaned, report = clean_bars(frame)
    assert len(cleaned) == 3
    assert (report.raw_rows, report.clean_rows) == (5, 3)
    assert (report.dropped, report.repaired, report.affected) == (1, 0, 1)
    assert report.affected_fraction == pytest.approx(0.2)
    assert report.too_much
    assert report.summary() == (
        "5 raw bars, 3 kept: dropped 1 (non_positive_price 1), "
        "collapsed 1 (duplicate_identical 1); 20.00% affected (limit 1.00%): "
        "too much, the feed looks broken"
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["counts"] == {"non_positive_price": 1, "duplicate_identical": 1}
    assert data["affected"] == 1
    assert data["too_much"] is True
    assert data["enabled"] is True
    assert data["max_affected_fraction"] == 0.01
    assert data["actions"][0]["rule"] == "non_positive_price"
    assert data["summary"] == report.summary()


def test_widened_bars_count_as_repaired_in_the_summary() -> None:
    _, report = clean_bars(_inconsistent(), CleaningPolicy(inconsistent_ohlc="widen"))
    assert report.summary() == (
        "5 raw bars, 5 kept: widened 3 (inconsistent_ohlc 3); "
        "60.00% affected (limit 1.00%): too much, the feed looks broken"
    )


@pytest.mark.parametrize(("bad_bars", "too_much"), [(0, False), (1, False), (2, True)])
def test_too_much_is_strictly_above_the_limit(bad_bars: int, too_much: bool) -> None:
    frame = _frame([_good(1)] * 100)
    frame["timestamp"] = pd.date_range("2024-01-01", periods=100, freq="h", tz="UTC")
    frame.loc[frame.index[:bad_bars], "open"] = 0.0
    _, report = clean_bars(frame, CleaningPolicy(max_affected_fraction=0.01))
    assert report.affected == bad_bars
    assert report.too_much is too_much


def test_empty_frame() -> None:
    cleaned, report = clean_bars(empty_ohlcv())
    pd.testing.assert_frame_equal(cleaned, empty_ohlcv())
    assert (report.raw_rows, report.clean_rows, report.actions) == (0, 0, ())
    assert report.affected_fraction == 0.0
    assert not report.too_much


# ---------------------------------------------------------------- policy and inputs


def test_disabled_policy_passes_bars_through() -> None:
    frame = _frame([_good(2), _good(1), (_stamp(3), 0.0, 0.0, 0.0, 1.0, 1.0), _good(1)])
    cleaned, report = clean_bars(frame, CleaningPolicy(enabled=False))
    pd.testing.assert_frame_equal(cleaned, frame)
    assert cleaned is not frame
    assert report.enabled is False
    assert report.actions == ()
    assert (report.raw_rows, report.clean_rows, report.affected) == (4, 4, 0)
    assert not report.too_much
    assert "disabled" in report.summary()
    assert report.to_dict()["enabled"] is False
    cleaned.loc[0, "open"] = 1.0
    assert frame.loc[0, "open"] == 100.0


@pytest.mark.parametrize(
    "policy",
    [
        CleaningPolicy(),
        CleaningPolicy(inconsistent_ohlc="widen", duplicates="keep_last"),
        CleaningPolicy(duplicates="keep_first"),
    ],
)
def test_input_is_never_mutated(policy: CleaningPolicy) -> None:
    frame = _frame(
        [
            _good(3),
            (_stamp(1), 102.0, 101.0, 99.0, 100.5, 10.0),
            _good(2, close=100.6),
            _good(2, close=100.7),
            _good(4),
            _good(4),
            (_stamp(5), 0.0, 0.0, 0.0, 1.0, float("nan")),
        ]
    )
    frame.index = pd.Index(range(10, 17))
    before = frame.copy(deep=True)
    cleaned, _ = clean_bars(frame, policy)
    pd.testing.assert_frame_equal(frame, before)
    _assert_convention(cleaned)
    assert cleaned["timestamp"].is_monotonic_increasing
    assert cleaned["timestamp"].is_unique


def test_output_follows_the_convention() -> None:
    frame = _frame([_good(1), _good(2)])
    frame["note"] = ["a", "b"]
    frame = frame[["note", "close", "volume", "timestamp", "open", "high", "low"]]
    cleaned, _ = clean_bars(frame)
    _assert_convention(cleaned)
    assert _days(cleaned) == [1, 2]


def test_missing_columns_are_named() -> None:
    frame = _frame([_good(1)]).drop(columns=["low", "volume"])
    with pytest.raises(ValueError, match=re.escape("missing column(s) ['low', 'volume']")):
        clean_bars(frame)


def test_non_datetime_timestamps_are_rejected() -> None:
    frame = _frame([_good(1)])
    frame["timestamp"] = ["2024-01-01"]
    with pytest.raises(ValueError, match="'timestamp' must hold datetimes"):
        clean_bars(frame)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"duplicates": "x"}, "cleaning.duplicates"),
        ({"duplicates": "last"}, "cleaning.duplicates"),
        ({"inconsistent_ohlc": "fix"}, "cleaning.inconsistent_ohlc"),
        ({"inconsistent_ohlc": None}, "cleaning.inconsistent_ohlc"),
        ({"max_affected_fraction": -0.1}, "cleaning.max_affected_fraction"),
        ({"max_affected_fraction": 1.5}, "cleaning.max_affected_fraction"),
        ({"max_affected_fraction": float("nan")}, "cleaning.max_affected_fraction"),
        ({"max_affected_fraction": "0.1"}, "cleaning.max_affected_fraction"),
        ({"max_affected_fraction": True}, "cleaning.max_affected_fraction"),
        ({"enabled": "yes"}, "cleaning.enabled"),
    ],
)
def test_bad_policy_values_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        CleaningPolicy(**options)


def test_policy_error_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=re.escape("got 'x'")) as caught:
        CleaningPolicy(duplicates="x")
    assert "'drop', 'keep_last', 'keep_first'" in str(caught.value)


def test_policy_accepts_the_edges() -> None:
    assert CleaningPolicy(max_affected_fraction=0).max_affected_fraction == 0.0
    assert isinstance(CleaningPolicy(max_affected_fraction=0).max_affected_fraction, float)
    assert CleaningPolicy(max_affected_fraction=1).max_affected_fraction == 1.0


def test_a_year_of_minute_bars_with_an_appended_overlap() -> None:
    rows = 500_000
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, rows)))
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=rows, freq="min", tz="UTC"),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.random(rows),
        }
    )
    frame.loc[::1000, "open"] = 0.0
    frame.loc[7::1000, "open"] *= 1.01
    # An overlapping second download appended at the end: 100 identical copies, out of order.
    frame = pd.concat([frame, frame.iloc[3::5000]], ignore_index=True)
    cleaned, report = clean_bars(frame)
    assert report.counts() == {
        "non_positive_price": 500,
        "inconsistent_ohlc": 500,
        "unsorted": 1,
        "duplicate_identical": 100,
    }
    assert len(cleaned) == rows - 1000


# ---------------------------------------------------------------- the committed samples


@pytest.fixture(scope="module")
def samples() -> dict[str, pd.DataFrame]:
    source = FileSource(DATA)
    return {symbol: source.load(symbol).frame for symbol in SAMPLES}


def _at(frame: pd.DataFrame, day: str) -> pd.DataFrame:
    return frame.loc[frame["timestamp"] == pd.Timestamp(day, tz="UTC")]


def test_btc_sample(samples: dict[str, pd.DataFrame]) -> None:
    raw = samples["BTC/USD"]
    assert not ohlcv_checks(raw, min_rows=500)[0].passed
    cleaned, report = clean_bars(raw)
    assert report.counts() == {"non_positive_price": 3, "unsorted": 1, "duplicate_identical": 1}
    assert (report.raw_rows, report.clean_rows) == (1001, 997)
    assert report.affected == 3
    assert report.affected_fraction < 0.01
    assert not report.too_much
    examples = {
        item.rule: [ex["timestamp"][:10] for ex in item.examples] for item in report.actions
    }
    assert examples == {
        "non_positive_price": ["2019-06-14", "2020-03-13", "2021-02-08"],
        "unsorted": ["2021-05-03"],
        "duplicate_identical": ["2020-07-21"],
    }
    # The three missing days stay missing: nothing is filled in.
    assert len(_at(cleaned, "2019-11-05")) == 0
    after_gap = _at(cleaned, "2019-11-08").index[0]
    assert cleaned.loc[after_gap - 1, "timestamp"] == pd.Timestamp("2019-11-04", tz="UTC")
    valid, gaps = ohlcv_checks(cleaned, min_rows=500)
    assert valid.passed, valid.message
    assert not gaps.passed


@pytest.mark.parametrize(
    ("policy", "clean_rows", "counts", "close_on_conflict"),
    [
        (CleaningPolicy(), 995, {"inconsistent_ohlc": 4, "duplicate_conflicting": 2}, None),
        (
            CleaningPolicy(duplicates="keep_first"),
            996,
            {"inconsistent_ohlc": 4, "duplicate_conflicting": 1},
            79.34,
        ),
        (
            CleaningPolicy(duplicates="keep_last"),
            996,
            {"inconsistent_ohlc": 4, "duplicate_conflicting": 1},
            80.069,
        ),
        (
            CleaningPolicy(inconsistent_ohlc="widen"),
            999,
            {"inconsistent_ohlc": 4, "duplicate_conflicting": 2},
            None,
        ),
    ],
)
def test_ltc_sample(
    samples: dict[str, pd.DataFrame],
    policy: CleaningPolicy,
    clean_rows: int,
    counts: dict[str, int],
    close_on_conflict: float | None,
) -> None:
    cleaned, report = clean_bars(samples["LTC/USD"], policy)
    assert report.counts() == counts
    assert (report.raw_rows, report.clean_rows) == (1001, clean_rows)
    assert report.affected == sum(counts.values())
    assert not report.too_much
    days = [ex["timestamp"][:10] for ex in report.actions[0].examples]
    assert days == ["2019-04-02", "2019-09-17", "2020-05-28", "2021-03-11"]
    conflict = _at(cleaned, "2020-10-06")
    if close_on_conflict is None:
        assert conflict.empty
    else:
        assert conflict["close"].tolist() == [close_on_conflict]
    assert ohlcv_checks(cleaned, min_rows=500)[0].passed


def test_eth_sample_is_untouched(samples: dict[str, pd.DataFrame]) -> None:
    raw = samples["ETH/USD"]
    cleaned, report = clean_bars(raw)
    pd.testing.assert_frame_equal(cleaned, raw)
    assert report.actions == ()
    assert len(raw) == 1000


def test_broken_sample_is_too_much(samples: dict[str, pd.DataFrame]) -> None:
    cleaned, report = clean_bars(samples["BROKEN/USD"])
    assert report.counts() == {"non_positive_price": 50}
    assert report.affected_fraction == pytest.approx(0.05)
    assert report.too_much
    # The survivors are valid bars: only the budget tells that the feed is broken.
    assert ohlcv_checks(cleaned, min_rows=500)[0].passed
    assert "too much" in report.summary()


@pytest.mark.parametrize("symbol", ["BTC/USD", "LTC/USD", "ETH/USD"])
def test_cleaned_samples_pass_the_blocking_check(
    samples: dict[str, pd.DataFrame], symbol: str
) -> None:
    cleaned, report = clean_bars(samples[symbol])
    valid = ohlcv_checks(cleaned, min_rows=500)[0]
    assert valid.passed, valid.message
    assert not report.too_much


def _generator(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", DATA / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclass resolves annotations through sys.modules, so the module must be there.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_samples_match_their_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = _generator(monkeypatch).write_samples(tmp_path)
    assert sorted(path.name for path in written) == sorted(
        f"{symbol.replace('/', '-')}.csv" for symbol in SAMPLES
    )
    for path in written:
        committed = DATA / path.name
        assert path.read_bytes() == committed.read_bytes(), path.name
        assert committed.stat().st_size < 80_000
