"""Bad market data: a failed blocking check or a clear error, a quality-log row, no model, and
nothing changed for the other symbols."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from brain_assets.defs.resources import CleaningConfig, MarketDataResource, RetrainResource
from brain_assets.library import BrainLibrary
from brain_assets.market_data.synthetic import generate_ohlcv
from brain_assets.store.embedded import EmbeddedServer
from brain_assets_tests.conftest import TEMPLATE
from brain_assets_tests.dagster_helpers import check_results, run_assets

pytestmark = pytest.mark.slow

GOOD = "BTC/USDT"


def good_frame(symbol: str = GOOD, n_bars: int = 900) -> pd.DataFrame:
    frame, _ = generate_ohlcv(symbol, seed=7, n_bars=n_bars, bar="1h", start="2024-01-01")
    return frame


def write_csv(folder: Path, symbol: str, frame: pd.DataFrame) -> None:
    out = frame.copy()
    if "timestamp" in out:
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(folder / f"{symbol.replace('/', '-')}.csv", index=False)


def duplicated(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[100, "timestamp"] = frame.loc[99, "timestamp"]
    return frame


def unsorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[np.r_[0:50, 60:900, 50:60]].reset_index(drop=True)


def all_nan_close(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(close=np.nan)


def high_below_close(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[10, "high"] = frame.loc[10, "close"] * 0.5
    return frame


# Defects the default cleaning policy repairs or drops (a few bars of 900): the symbol trains.
# With cleaning disabled the blocking check sees them raw and refuses them.
REPAIRABLE: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "duplicate_timestamps": (duplicated, "duplicate_conflicting"),
    "unsorted": (unsorted, "unsorted"),
    "inconsistent_ohlc": (high_below_close, "inconsistent_ohlc"),
}
# Defects no policy can make usable.
BAD_DATA: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "all_nan_column": all_nan_close,
    "too_few_rows": lambda frame: frame.head(120),
    "empty": lambda frame: frame.head(0),
    **{name: make for name, (make, _) in REPAIRABLE.items()},
}
RAW = RetrainResource(
    min_rows=500, importance_sample=250, include_lstm=False, cleaning=CleaningConfig(enabled=False)
)


@pytest.fixture
def store(pg_server: EmbeddedServer, tmp_path: Path) -> tuple[str, Path]:
    dsn = pg_server.ensure_database(f"b_{uuid.uuid4().hex[:12]}", template=TEMPLATE)
    folder = tmp_path / "ohlcv"
    folder.mkdir()
    write_csv(folder, GOOD, good_frame())
    return dsn, folder


def retrain(
    dsn: str, folder: Path, symbol: str, retrain: RetrainResource | None = None
) -> dg.ExecuteInProcessResult:
    options = {} if retrain is None else {"retrain": retrain}
    return run_assets(
        dg.DagsterInstance.ephemeral(),
        dsn,
        [symbol],
        market=MarketDataResource(source="files", folder=str(folder)),
        **options,
    )


@pytest.mark.parametrize("case", sorted(REPAIRABLE))
def test_a_few_bad_bars_are_cleaned_and_the_symbol_trains(
    store: tuple[str, Path], case: str
) -> None:
    dsn, folder = store
    make, rule = REPAIRABLE[case]
    bad = "BAD/USDT"
    write_csv(folder, bad, make(good_frame(bad)))
    result = retrain(dsn, folder, bad)
    assert result.success
    with BrainLibrary(dsn) as brain:
        assert brain.get_active_model(bad) is not None
        logs = brain.get_data_quality_logs(bad)
    cleaning = logs[logs["check_name"] == "bar_cleaning"].iloc[0]["details"]["cleaning"]
    assert rule in cleaning["counts"]


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_fails_the_blocking_check(store: tuple[str, Path], case: str) -> None:
    dsn, folder = store
    assert retrain(dsn, folder, GOOD).success
    with BrainLibrary(dsn) as brain:
        good_models = brain.list_models(GOOD)
    bad = "BAD/USDT"
    write_csv(folder, bad, BAD_DATA[case](good_frame(bad)))
    result = retrain(dsn, folder, bad, RAW if case in REPAIRABLE else None)
    assert not result.success
    assert check_results(result)["ohlcv_valid"] is False
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # The blocking check stopped everything downstream; the data health is still recorded.
    assert materialised == {"market_data", "data_quality"}
    with BrainLibrary(dsn) as brain:
        logs = brain.get_data_quality_logs(bad, failed_only=True)
        assert "ohlcv_valid" in set(logs["check_name"])
        row = logs[logs["check_name"] == "ohlcv_valid"].iloc[0]
        assert row["severity"] == "ERROR"
        assert row["failure_count"] >= 1
        assert row["details"]["failure_cases"]
        assert brain.get_best_model(bad) is None
        pd.testing.assert_frame_equal(brain.list_models(GOOD), good_models)


@pytest.mark.parametrize(
    ("case", "message"),
    [("no_file", "no data file"), ("missing_column", "volume")],
)
def test_unloadable_data_fails_with_a_clear_error(
    store: tuple[str, Path], case: str, message: str
) -> None:
    dsn, folder = store
    bad = "BAD/USDT"
    if case == "missing_column":
        write_csv(folder, bad, good_frame(bad).drop(columns=["volume"]))
    result = retrain(dsn, folder, bad)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert "BAD/USDT" in text
    assert message in text.lower()
    assert "BAD-USDT" in text  # the file it looked for
    with BrainLibrary(dsn) as brain:
        logs = brain.get_data_quality_logs(bad, failed_only=True)
        assert logs["check_name"].tolist() == ["market_data_load"]
        assert brain.get_best_model(bad) is None


def test_symbols_that_are_prefixes_do_not_collide(store: tuple[str, Path]) -> None:
    dsn, folder = store
    write_csv(folder, "BTC", good_frame("BTC"))
    market = MarketDataResource(source="files", folder=str(folder))
    instance = dg.DagsterInstance.ephemeral()
    from brain_assets.defs.retrain.assets import market_data

    for symbol in ("BTC", GOOD):
        assert run_assets(instance, dsn, [symbol], assets=[market_data], market=market).success
    with BrainLibrary(dsn) as brain:
        values = brain.get_asset_values("market_data", ["BTC", GOOD])
    assert len(values["BTC"]) == len(values[GOOD]) == 900
    assert not values["BTC"]["close"].equals(values[GOOD]["close"])


def test_an_unreachable_store_fails_the_run_fast_with_one_clear_message() -> None:
    import time

    dsn = "postgresql://trader:s3cret@127.0.0.1:1/huracan"
    started = time.monotonic()
    result = run_assets(dg.DagsterInstance.ephemeral(), dsn, [GOOD])
    assert not result.success
    assert time.monotonic() - started < 30
    failures = [e for e in result.all_events if e.is_failure]
    text = " ".join(str(e.event_specific_data) for e in failures)
    assert "cannot connect to PostgreSQL at host=127.0.0.1, port=1, database=huracan" in text
    assert "s3cret" not in text
