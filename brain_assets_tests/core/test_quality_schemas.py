"""Data-quality schemas and their runner: every kind of bad input is caught and reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from brain_assets.features import build_dataset
from brain_assets.market_data import SyntheticSource
from brain_assets.quality import (
    CheckOutcome,
    FeaturesSchema,
    ImportanceSchema,
    MetricsSchema,
    OHLCVGapSchema,
    OHLCVSchema,
    features_checks,
    gap_schema,
    ohlcv_checks,
    run_check,
)

MIN_ROWS = 50


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return SyntheticSource(n_bars=200).load("BTC/USDT").frame


@pytest.fixture(scope="module")
def good_features(good: pd.DataFrame) -> pd.DataFrame:
    X, _ = build_dataset(good)
    return X


def _checks_of(outcome: CheckOutcome) -> set[str]:
    return {str(case["check"]) for case in outcome.failure_cases}


def _assert_json_ready(outcome: CheckOutcome) -> None:
    text = json.dumps(outcome.to_dict())
    assert json.loads(text)["check_name"] == outcome.check_name
    for case in outcome.failure_cases:
        assert set(case) == {"column", "check", "index", "failure_case"}
        assert case["failure_case"] is None or isinstance(case["failure_case"], str)


def test_good_bars_pass(good: pd.DataFrame) -> None:
    valid, gaps = ohlcv_checks(good, min_rows=MIN_ROWS)
    assert valid.passed, valid.message
    assert valid.severity == "ERROR"
    assert valid.failure_count == 0
    assert valid.row_count == len(good)
    assert gaps.passed, gaps.message
    assert gaps.severity == "WARN"


def _with_value(df: pd.DataFrame, column: str, row: int, value: Any) -> pd.DataFrame:
    """``df`` with one cell replaced (through numpy, which keeps the column's dtype)."""
    values = df[column].to_numpy().copy()
    values[row] = value
    df[column] = values
    return df


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    return _with_value(df, "timestamp", 10, df["timestamp"].to_numpy()[9])


def _unsorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[[*range(20), 21, 20, *range(22, len(df))]].reset_index(drop=True)


def _set(column: str, row: int, value: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        return _with_value(df, column, row, value)

    return corrupt


def _high_below_close(df: pd.DataFrame) -> pd.DataFrame:
    return _with_value(df, "high", 30, df["close"].to_numpy()[30] * 0.99)


def _low_above_open(df: pd.DataFrame) -> pd.DataFrame:
    return _with_value(df, "low", 31, df["open"].to_numpy()[31] * 1.01)


BAD_BARS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set[str]]] = {
    "duplicate timestamps": (_duplicate, {"field_uniqueness", "timestamp_strictly_increasing"}),
    "unsorted": (_unsorted, {"timestamp_strictly_increasing"}),
    "high < close": (_high_below_close, {"high_ge_open_close"}),
    "low > open": (_low_above_open, {"low_le_open_close"}),
    "negative volume": (_set("volume", 40, -1.0), {"greater_than_or_equal_to(0)"}),
    "zero price": (_set("close", 41, 0.0), {"greater_than(0)"}),
    "NaN": (_set("open", 42, np.nan), {"not_nullable"}),
    "inf": (_set("high", 43, np.inf), {"finite"}),
}


@pytest.mark.parametrize("case", list(BAD_BARS))
def test_bad_bars_fail_the_error_check(good: pd.DataFrame, case: str) -> None:
    corrupt, expected_checks = BAD_BARS[case]
    bad = corrupt(good.copy())
    valid, _ = ohlcv_checks(bad, min_rows=MIN_ROWS)
    assert not valid.passed, case
    assert valid.severity == "ERROR"
    assert valid.failure_count >= 1
    assert expected_checks <= _checks_of(valid), (case, valid.failure_cases)
    assert valid.check_name in valid.message
    _assert_json_ready(valid)


def test_too_few_rows(good: pd.DataFrame) -> None:
    valid, gaps = ohlcv_checks(good.iloc[:10], min_rows=MIN_ROWS)
    assert not valid.passed
    assert _checks_of(valid) == {"enough_rows"}
    assert valid.row_count == 10
    assert gaps.passed


def test_empty_frame(good: pd.DataFrame) -> None:
    valid, gaps = ohlcv_checks(good.iloc[:0], min_rows=MIN_ROWS)
    assert not valid.passed
    assert "enough_rows" in _checks_of(valid)
    assert valid.row_count == 0
    # Even without a min_rows, empty data never passes vacuously.
    alone = run_check("ohlcv", OHLCVSchema, good.iloc[:0], severity="ERROR")
    assert not alone.passed
    assert _checks_of(alone) == {"enough_rows"}
    assert gaps.passed
    _assert_json_ready(valid)


@pytest.mark.parametrize("column", ["volume", "timestamp"])
def test_missing_column_is_a_failure_not_a_crash(good: pd.DataFrame, column: str) -> None:
    valid, gaps = ohlcv_checks(good.drop(columns=[column]), min_rows=MIN_ROWS)
    assert not valid.passed
    assert valid.failure_cases[0] == {
        "column": column,
        "check": "column_in_dataframe",
        "index": None,
        "failure_case": column,
    }
    assert column in valid.message
    assert gaps.passed is (column != "timestamp")
    # The schema alone reports it as well (pandera's own missing-column check).
    direct = run_check("ohlcv", OHLCVSchema, good.drop(columns=[column]), severity="ERROR")
    assert not direct.passed
    assert "column_in_dataframe" in _checks_of(direct)
    _assert_json_ready(direct)


def test_extra_column_fails_the_strict_schema(good: pd.DataFrame) -> None:
    valid, _ = ohlcv_checks(good.assign(extra=1.0), min_rows=MIN_ROWS)
    assert not valid.passed
    assert "column_in_schema" in _checks_of(valid)


def test_wrong_timestamp_dtype_fails(good: pd.DataFrame) -> None:
    naive = good.assign(timestamp=good["timestamp"].dt.tz_localize(None))
    assert not ohlcv_checks(naive, min_rows=MIN_ROWS)[0].passed


def test_big_gap_is_a_warning_not_an_error(good: pd.DataFrame) -> None:
    gappy = good.drop(index=range(100, 110)).reset_index(drop=True)
    valid, gaps = ohlcv_checks(gappy, min_rows=MIN_ROWS)
    assert valid.passed, valid.message
    assert not gaps.passed
    assert gaps.severity == "WARN"
    assert gaps.failure_count == 1
    assert gaps.failure_cases[0]["check"] == "no_big_gap"
    assert gaps.failure_cases[0]["index"] == 100
    _assert_json_ready(gaps)
    # Three missing bars (a gap of four spacings) is over the default of three...
    small = good.drop(index=range(100, 103)).reset_index(drop=True)
    assert not run_check("gaps", OHLCVGapSchema, small, severity="WARN").passed
    # ...but within a custom threshold of five.
    assert run_check("gaps", gap_schema(5), small, severity="WARN").passed
    assert ohlcv_checks(small, min_rows=MIN_ROWS, max_gap_bars=5)[1].passed
    with pytest.raises(ValueError, match="max_gap_bars"):
        gap_schema(0.5)


def test_failure_cases_are_capped_but_all_counted(good: pd.DataFrame) -> None:
    bad = good.copy()
    bad.loc[:, "volume"] = -1.0
    valid, _ = ohlcv_checks(bad, min_rows=MIN_ROWS)
    assert valid.failure_count == len(bad)
    assert len(valid.failure_cases) == 20
    _assert_json_ready(valid)


def test_row_level_failures_are_merged_per_row(good: pd.DataFrame) -> None:
    bad = _high_below_close(good.copy())
    valid, _ = ohlcv_checks(bad, min_rows=MIN_ROWS)
    assert valid.failure_count == 1
    case = valid.failure_cases[0]
    assert case["index"] == 30
    assert "high=" in str(case["failure_case"])


def test_run_check_validates_its_arguments(good: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="severity"):
        run_check("x", OHLCVSchema, good, severity=cast(Any, "INFO"))
    with pytest.raises(ValueError, match="min_rows"):
        run_check("x", OHLCVSchema, good, severity="ERROR", min_rows=-1)


def test_run_check_does_not_swallow_other_errors(good: pd.DataFrame) -> None:
    class Broken:
        @staticmethod
        def validate(df: pd.DataFrame, lazy: bool = False) -> pd.DataFrame:
            raise RuntimeError("a bug, not bad data")

    with pytest.raises(RuntimeError, match="a bug"):
        run_check("x", cast(Any, Broken), good, severity="ERROR")


# --- features -------------------------------------------------------------------------------


def test_good_features_pass(good_features: pd.DataFrame) -> None:
    (outcome,) = features_checks(good_features)
    assert outcome.passed, outcome.message
    assert outcome.check_name == "features_valid"


def _feature_nan(df: pd.DataFrame) -> pd.DataFrame:
    df.iloc[5, 3] = np.nan
    return df


def _feature_inf(df: pd.DataFrame) -> pd.DataFrame:
    df.iloc[6, 4] = -np.inf
    return df


def _feature_duplicate_index(df: pd.DataFrame) -> pd.DataFrame:
    stamps = df.index.to_numpy().copy()
    stamps[8] = stamps[7]
    df.index = pd.DatetimeIndex(stamps, name="timestamp")
    return df


def _feature_unsorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[[*range(10), 11, 10, *range(12, len(df))]]


def _feature_int_column(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(bucket=1)


def _feature_index_name(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename_axis("time")


BAD_FEATURES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "NaN": (_feature_nan, "not_nullable"),
    "inf": (_feature_inf, "finite"),
    "duplicate index": (_feature_duplicate_index, "field_uniqueness"),
    "unsorted index": (_feature_unsorted, "index_strictly_increasing"),
    "integer column": (_feature_int_column, "dtype('float64')"),
    "index name": (_feature_index_name, "field_name('timestamp')"),
}


@pytest.mark.parametrize("case", list(BAD_FEATURES))
def test_bad_features_fail(good_features: pd.DataFrame, case: str) -> None:
    corrupt, expected = BAD_FEATURES[case]
    (outcome,) = features_checks(corrupt(good_features.copy()))
    assert not outcome.passed, case
    assert expected in _checks_of(outcome), (case, outcome.failure_cases)
    _assert_json_ready(outcome)


def test_empty_features_fail(good_features: pd.DataFrame) -> None:
    (outcome,) = features_checks(good_features.iloc[:0])
    assert not outcome.passed
    assert "enough_rows" in _checks_of(outcome)


def test_features_schema_directly(good_features: pd.DataFrame) -> None:
    validated = FeaturesSchema.validate(good_features, lazy=True)  # raises on any failure
    pd.testing.assert_frame_equal(validated, good_features)


# --- importance and metrics -----------------------------------------------------------------


def _importance() -> pd.DataFrame:
    return pd.DataFrame(
        {"feature": ["ret_1", "vol_24", "rsi_14"], "importance": [0.5, 0.3, 0.2], "rank": [1, 2, 3]}
    )


def test_importance_schema() -> None:
    assert run_check("importance", ImportanceSchema, _importance(), severity="ERROR").passed
    duplicate = _importance().assign(feature=["ret_1", "ret_1", "rsi_14"])
    zero_rank = _importance().assign(rank=[0, 1, 2])
    infinite = _importance().assign(importance=[np.inf, 0.3, 0.2])
    for bad, check in (
        (duplicate, "field_uniqueness"),
        (zero_rank, "greater_than_or_equal_to(1)"),
        (infinite, "finite"),
    ):
        outcome = run_check("importance", ImportanceSchema, bad, severity="ERROR")
        assert not outcome.passed
        assert check in _checks_of(outcome)
        _assert_json_ready(outcome)


def test_metrics_schema() -> None:
    metrics = pd.DataFrame({"metric": ["rmse", "mae", "sharpe"], "value": [0.01, 0.008, 1.2]})
    assert run_check("metrics", MetricsSchema, metrics, severity="ERROR").passed
    for value, check in ((np.inf, "finite"), (np.nan, "not_nullable")):
        bad = metrics.assign(value=[0.01, value, 1.2])
        outcome = run_check("metrics", MetricsSchema, bad, severity="WARN")
        assert not outcome.passed
        assert outcome.severity == "WARN"
        assert check in _checks_of(outcome)
        _assert_json_ready(outcome)
