"""The cleaning budget applies to the bars a model uses: bad prints of long ago leave the
recent clean stretch to train on (and the quality log says what was left out), a feed that is
bad now stays blocked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brain_assets.market_data.files import FileSource
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.bars import prepare_bars
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.quality.cleaning import CleaningPolicy
from brain_assets_tests.paths import REAL_HISTORIES

REAL = REAL_HISTORIES
SETTINGS = RetrainSettings()


def with_bad_prints(positions: np.ndarray, n: int = 2000) -> pd.DataFrame:
    """Daily bars whose open lies above the high at ``positions`` (an illiquid market's
    prints, as in Poloniex's early LTC history)."""
    frame = signal_market(n, momentum=0.0, seed=3, start="2016-01-01", bar="1D")
    frame.loc[positions, "open"] = frame.loc[positions, "high"] * 1.05
    return frame


def test_old_bad_prints_leave_the_recent_stretch_to_train_on() -> None:
    raw = with_bad_prints(np.arange(0, 300, 3))  # 100 bad bars (5%), all in the first 300 days
    prepared = prepare_bars("LTC/USDT", raw, SETTINGS)
    assert prepared.usable
    stretch = prepared.left_out
    assert stretch is not None
    # The longest recent stretch that keeps the 1% budget: it starts after the bad print at
    # 246 and keeps the last 17 (17 of 1,753 bars); from the one at 243 on, 18 of 1,756 would
    # break it.
    assert stretch.start == raw["timestamp"].iloc[247]
    assert stretch.left_out_rows == 247 and stretch.left_out_affected == 83
    assert prepared.cleaning.affected == 17 and not prepared.cleaning.too_much
    assert prepared.frame["timestamp"].iloc[0] == stretch.start
    assert len(prepared.frame) == 2000 - 247 - 17
    record = prepared.cleaning_record("run-1")
    assert record["severity"] == "WARN" and record["passed"]
    assert record["details"]["left_out"]["left_out_rows"] == 247
    assert "247 raw bars before 2016-09-04" in record["details"]["message"]
    assert prepared.health()["left_out"]["start"].startswith("2016-09-04")


def test_a_feed_that_is_bad_now_stays_blocked() -> None:
    raw = with_bad_prints(np.arange(1900, 2000, 2))  # 50 bad bars among the last 100
    prepared = prepare_bars("LTC/USDT", raw, SETTINGS)
    assert not prepared.usable and prepared.left_out is None
    assert "the feed looks broken" in prepared.valid.message
    assert prepared.cleaning_record(None)["severity"] == "ERROR"


def test_too_short_a_clean_stretch_blocks_and_the_policy_can_refuse_stretches() -> None:
    # Clean only over the last 400 bars: fewer than min_rows (500) to train on.
    raw = with_bad_prints(np.arange(0, 1600, 16))
    assert not prepare_bars("LTC/USDT", raw, SETTINGS).usable
    strict = RetrainSettings(cleaning=CleaningPolicy(recent_stretch=False))
    assert not prepare_bars("LTC/USDT", with_bad_prints(np.arange(0, 300, 3)), strict).usable
    with pytest.raises(ValueError, match=r"cleaning\.recent_stretch must be true or false"):
        CleaningPolicy(recent_stretch="yes")  # type: ignore[arg-type]


def test_the_real_ltc_history_trains_on_its_clean_years() -> None:
    raw = FileSource(folder=str(REAL)).load("LTC/USD").frame
    whole = prepare_bars(
        "LTC/USD", raw, RetrainSettings(cleaning=CleaningPolicy(recent_stretch=False))
    )
    assert not whole.usable  # 177 inconsistent candles of 2,022: 8.75% of the whole history
    prepared = prepare_bars("LTC/USD", raw, SETTINGS)
    assert prepared.usable and prepared.left_out is not None
    assert prepared.left_out.start.year == 2016
    assert prepared.frame["timestamp"].iloc[-1] == raw["timestamp"].max()
