"""The bar store: upserts, reads, inventory, validation, folder imports and `brain data`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from brain_assets.cli.main import main
from brain_assets.library import BrainLibrary
from brain_assets.market_data.store_import import import_folder
from brain_assets.store.bars import TIMEFRAME_SECONDS, BarBatch
from brain_assets_tests.conftest import count_rows
from brain_assets_tests.import_fixtures import bars as make_bars

SYMBOL = "BTC/USDT"
START = pd.Timestamp("2024-01-01", tz="UTC")


def stored(dsn: str) -> tuple[int, int]:
    return count_rows(dsn, "bars"), count_rows(dsn, "bar_batches")


def test_upsert_is_idempotent(brain: BrainLibrary, brain_dsn: str) -> None:
    frame = make_bars(48)
    first = brain.store_bars("binance", SYMBOL, "1h", frame, details={"request": "since=0"})
    assert (first.received, first.new, first.changed) == (48, 48, 0)
    assert first.first_bar == START and first.last_bar == START + pd.Timedelta(hours=47)
    second = brain.store_bars("binance", SYMBOL, "1h", frame)
    assert (second.received, second.new, second.changed, second.unchanged) == (48, 0, 0, 48)
    assert second.batch_id is not None and first.batch_id is not None
    assert second.batch_id > first.batch_id
    assert stored(brain_dsn) == (48, 2)
    with psycopg.connect(brain_dsn) as conn:
        rows = conn.execute(
            "SELECT rows_received, rows_new, rows_changed, details->>'request' FROM bar_batches "
            "ORDER BY batch_id"
        ).fetchall()
        # An unchanged bar is not rewritten: it still names the batch that brought it.
        batches = conn.execute("SELECT DISTINCT batch_id FROM bars").fetchall()
    assert rows == [(48, 48, 0, "since=0"), (48, 0, 0, None)]
    assert batches == [(first.batch_id,)]


def test_changed_bar_is_counted_and_overwritten(brain: BrainLibrary, brain_dsn: str) -> None:
    frame = make_bars(24)
    brain.store_bars("binance", SYMBOL, "1h", frame)
    update = pd.concat([frame, make_bars(26).iloc[24:]], ignore_index=True)
    update.loc[5, "close"] = 123.456
    update = update.iloc[::-1]  # order does not matter
    batch = brain.store_bars("binance", SYMBOL, "1h", update)
    assert (batch.received, batch.new, batch.changed, batch.unchanged) == (26, 2, 1, 23)
    loaded = brain.load_bars("binance", SYMBOL, "1h")
    expected = update.iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected.astype({"timestamp": "datetime64[ns, UTC]"}))
    assert loaded.loc[5, "close"] == 123.456
    with psycopg.connect(brain_dsn) as conn:
        row = conn.execute(
            "SELECT batch_id FROM bars WHERE open_time = %s", (START + pd.Timedelta(hours=5),)
        ).fetchone()
    assert row == (batch.batch_id,)


def test_range_reads_round_trip_exactly(brain: BrainLibrary) -> None:
    frame = make_bars(100, seed=3)
    brain.store_bars("binance", SYMBOL, "1h", frame.sample(frac=1, random_state=1))
    loaded = brain.load_bars("binance", SYMBOL, "1h")
    assert list(loaded.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert str(loaded["timestamp"].dtype) == "datetime64[ns, UTC]"
    pd.testing.assert_frame_equal(loaded, frame.astype({"timestamp": "datetime64[ns, UTC]"}))
    start, end = START + pd.Timedelta(hours=10), START + pd.Timedelta(hours=20)
    window = brain.load_bars("binance", SYMBOL, "1h", start=start, end=end)
    assert window["timestamp"].tolist() == list(pd.date_range(start, end, freq="1h"))
    assert len(brain.load_bars("binance", SYMBOL, "1h", start=end)) == 80
    assert len(brain.load_bars("binance", SYMBOL, "1h", end="2024-01-01T05:00:00")) == 6
    for empty in (
        brain.load_bars("binance", "ETH/USDT", "1h"),
        brain.load_bars("okx", SYMBOL, "1h"),
        brain.load_bars("binance", SYMBOL, "4h"),
        brain.load_bars("binance", SYMBOL, "1h", start="2030-01-01"),
    ):
        assert empty.empty
        assert list(empty.columns) == list(loaded.columns)
        assert str(empty["timestamp"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(ValueError, match="start must not be after end"):
        brain.load_bars("binance", SYMBOL, "1h", start=end, end=start)


def test_last_bar_time_and_sources(brain: BrainLibrary) -> None:
    assert brain.last_bar_time("binance", SYMBOL, "1h") is None
    assert brain.bar_sources(SYMBOL, "1h") == []
    brain.store_bars("binance", SYMBOL, "1h", make_bars(30))
    brain.store_bars("files", SYMBOL, "1h", make_bars(10))
    brain.store_bars("okx", SYMBOL, "1d", make_bars(5, freq="1D"))
    assert brain.last_bar_time("binance", SYMBOL, "1h") == START + pd.Timedelta(hours=29)
    assert brain.last_bar_time("files", SYMBOL, "1h") == START + pd.Timedelta(hours=9)
    assert brain.last_bar_time("okx", SYMBOL, "1h") is None
    assert brain.bar_sources(SYMBOL, "1h") == ["binance", "files"]
    assert brain.bar_sources(SYMBOL, "1d") == ["okx"]
    assert brain.bar_sources("ETH/USDT", "1h") == []


def test_inventory_counts_gaps_and_missing_bars(brain: BrainLibrary) -> None:
    frame = make_bars(40)
    # Two gaps: bars 10-12 (3 missing) and bar 30 (1 missing).
    holey = frame.drop(index=[10, 11, 12, 30])
    brain.store_bars("binance", SYMBOL, "1h", holey)
    brain.store_bars("binance", "ETH/USDT", "1d", make_bars(7, freq="1D"))
    inventory = brain.bar_inventory()
    assert inventory[["source", "symbol", "timeframe", "bars", "gaps", "missing_bars"]].to_dict(
        "records"
    ) == [
        {"source": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "bars": 36, "gaps": 2,
         "missing_bars": 4},
        {"source": "binance", "symbol": "ETH/USDT", "timeframe": "1d", "bars": 7, "gaps": 0,
         "missing_bars": 0},
    ]  # fmt: skip
    btc = inventory.iloc[0]
    assert btc["first_bar"] == START and btc["last_bar"] == START + pd.Timedelta(hours=39)
    assert btc["last_batch_at"] is not pd.NaT and btc["last_batch_at"].tzinfo is not None
    # Filling the gaps fills the inventory.
    brain.store_bars("binance", SYMBOL, "1h", frame)
    only = brain.bar_inventory(SYMBOL)
    assert only[["bars", "gaps", "missing_bars"]].values.tolist() == [[40, 0, 0]]
    assert only["last_batch_at"].iloc[0] > btc["last_batch_at"]
    assert brain.bar_inventory("NOPE/USDT").empty


def test_bad_prints_are_kept(brain: BrainLibrary) -> None:
    frame = make_bars(5)
    frame.loc[1, ["open", "high", "low"]] = 0.0
    frame.loc[2, "high"] = frame.loc[2, "low"] - 1.0
    frame.loc[3, "volume"] = -1.0
    batch = brain.store_bars("binance", SYMBOL, "1h", frame)
    assert batch.new == 5
    loaded = brain.load_bars("binance", SYMBOL, "1h")
    pd.testing.assert_frame_equal(loaded, frame.astype({"timestamp": "datetime64[ns, UTC]"}))


def test_empty_frame_writes_nothing(brain: BrainLibrary, brain_dsn: str) -> None:
    batch = brain.store_bars("binance", SYMBOL, "1h", make_bars(0))
    assert batch == BarBatch(None, "binance", SYMBOL, "1h", 0, 0, 0, None, None)
    assert stored(brain_dsn) == (0, 0)


def _misaligned(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[3, "timestamp"] += pd.Timedelta(minutes=30)
    return frame


def _duplicate(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[4, "timestamp"] = frame.loc[2, "timestamp"]
    return frame


def _nan(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[6, "close"] = np.nan
    return frame


def _infinite(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[7, "volume"] = np.inf
    return frame


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    frame["high"] = frame["high"].astype(object)
    frame.loc[1, "high"] = "n/a"
    return frame


def _no_time(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[2, "timestamp"] = pd.NaT
    return frame


@pytest.mark.parametrize(
    ("timeframe", "spoil", "message"),
    [
        ("1h", _misaligned, r"timestamp at row 3 \(2024-01-01 03:30:00\+00:00\) is not aligned"),
        ("1h", _duplicate, r"timestamp 2024-01-01 02:00:00\+00:00 appears more than once"),
        ("1h", _nan, r"close at row 6 .* is nan"),
        ("1h", _infinite, r"volume at row 7 .* is inf"),
        ("1h", _text, r"column 'high' is not numeric"),
        ("1h", _no_time, r"timestamp is missing at row 2"),
        ("7m", lambda frame: frame, r"timeframe must be one of 1m, 3m, .* got '7m'"),
        ("1d", lambda frame: frame, r"not aligned to the 1d timeframe .*00:00 UTC"),
        ("1h", lambda frame: frame.drop(columns="volume"), r"missing column\(s\) \['volume'\]"),
    ],
)
def test_bad_frames_are_refused_before_any_write(
    brain: BrainLibrary,
    brain_dsn: str,
    timeframe: str,
    spoil: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
) -> None:
    frame = spoil(make_bars(10))
    with pytest.raises(ValueError, match=message) as raised:
        brain.store_bars("binance", SYMBOL, timeframe, frame)
    if "timeframe must be" not in message:
        assert "'BTC/USDT'" in str(raised.value)
    assert stored(brain_dsn) == (0, 0)


@pytest.mark.parametrize(
    ("source", "symbol", "message"),
    [("binance", " ", "symbol must not be empty"), ("", SYMBOL, "source must not be empty")],
)
def test_bad_names_are_refused(brain: BrainLibrary, source: str, symbol: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        brain.store_bars(source, symbol, "1h", make_bars(3))


def test_daily_and_minute_alignment(brain: BrainLibrary) -> None:
    assert brain.store_bars("binance", SYMBOL, "1d", make_bars(3, freq="1D")).new == 3
    assert brain.store_bars("binance", SYMBOL, "15m", make_bars(8, freq="15min")).new == 8
    assert set(TIMEFRAME_SECONDS) >= {"1m", "1h", "1d"}


def test_several_batches_in_one_transaction(brain: BrainLibrary, brain_dsn: str) -> None:
    with brain.transaction():
        brain.store_bars("binance", SYMBOL, "1h", make_bars(10))
        brain.store_bars("binance", "ETH/USDT", "1h", make_bars(10))
    assert stored(brain_dsn) == (20, 2)
    with pytest.raises(ValueError, match="boom"), brain.transaction():
        brain.store_bars("binance", "SOL/USDT", "1h", make_bars(10))
        raise ValueError("boom")
    assert stored(brain_dsn) == (20, 2)


# Folder imports ---------------------------------------------------------------------------


def write_folder(folder: Path) -> Path:
    """BTC-USDT.csv (ISO text) and ETH-USDT.parquet, hourly, and a README the import skips."""
    folder.mkdir(parents=True, exist_ok=True)
    btc = make_bars(50, seed=1)
    btc.assign(timestamp=btc["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        folder / "BTC-USDT.csv", index=False
    )
    make_bars(30, seed=2).to_parquet(folder / "ETH-USDT.parquet", index=False)
    (folder / "README.txt").write_text("not bars")
    return folder


def test_import_folder(brain: BrainLibrary, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "ohlcv")
    seen: list[str] = []
    batches = import_folder(brain, folder, progress=lambda path, batch: seen.append(path.name))
    assert seen == ["BTC-USDT.csv", "ETH-USDT.parquet"]
    assert [(b.symbol, b.timeframe, b.source, b.new) for b in batches] == [
        ("BTC/USDT", "1h", "files", 50),
        ("ETH/USDT", "1h", "files", 30),
    ]
    loaded = brain.load_bars("files", SYMBOL, "1h")
    pd.testing.assert_frame_equal(
        loaded, make_bars(50, seed=1).astype({"timestamp": "datetime64[ns, UTC]"})
    )
    again = import_folder(brain, folder, timeframe="1h", source="files", symbols=["ETH/USDT"])
    assert [(b.symbol, b.received, b.new, b.changed) for b in again] == [("ETH/USDT", 30, 0, 0)]
    with psycopg.connect(brain.dsn) as conn:
        files = conn.execute(
            "SELECT details->>'file' FROM bar_batches ORDER BY batch_id"
        ).fetchall()
    assert files[0] == (str(folder / "BTC-USDT.csv"),)
    with pytest.raises(ValueError, match="the timeframe given is 4h"):
        import_folder(brain, folder, timeframe="4h")
    with pytest.raises(ValueError, match="no data file"):
        import_folder(brain, folder, symbols=["SOL/USDT"])


def test_import_refuses_unknown_spacing_naming_the_file(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path
) -> None:
    make_bars(20, freq="10min").to_csv(tmp_path / "XRP-USDT.csv", index=False)
    with pytest.raises(ValueError, match=r"XRP-USDT\.csv.*10min .*not a known timeframe"):
        import_folder(brain, tmp_path)
    make_bars(1).to_csv(tmp_path / "XRP-USDT.csv", index=False)
    with pytest.raises(ValueError, match=r"XRP-USDT\.csv.*too few to infer the timeframe"):
        import_folder(brain, tmp_path)
    make_bars(5).to_parquet(tmp_path / "XRP-USDT.parquet", index=False)
    with pytest.raises(ValueError, match=r"ambiguous data files .*XRP-USDT\.csv and .*parquet"):
        import_folder(brain, tmp_path, timeframe="1h")
    assert stored(brain_dsn) == (0, 0)


def test_cli_data_import_and_list(
    brain: BrainLibrary,
    brain_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    folder = write_folder(tmp_path / "ohlcv")
    assert main(["data", "import", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("BTC/USDT  1h  received 50  new 50  changed 0  2024-01-01 00:00")
    assert out[1].startswith("ETH/USDT  1h  received 30  new 30  changed 0")
    assert "2 file(s) stored as source 'files'" in out[2]
    assert main(["data", "import", str(folder), "--source", "vendor", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["symbol"], r["source"], r["new"]) for r in records] == [
        ("BTC/USDT", "vendor", 50),
        ("ETH/USDT", "vendor", 30),
    ]
    assert main(["data", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(r["source"], r["symbol"], r["bars"], r["gaps"]) for r in listing] == [
        ("files", "BTC/USDT", 50, 0),
        ("vendor", "BTC/USDT", 50, 0),
        ("files", "ETH/USDT", 30, 0),
        ("vendor", "ETH/USDT", 30, 0),
    ]
    assert listing[0]["first_bar"] == "2024-01-01T00:00:00+00:00"
    assert main(["data", "list", "--symbol", "ETH/USDT"]) == 0
    table = capsys.readouterr().out
    assert "ETH/USDT" in table and "BTC/USDT" not in table and "missing_bars" in table


def test_cli_bad_file_names_it_and_keeps_earlier_files(
    brain: BrainLibrary,
    brain_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    make_bars(20).to_csv(tmp_path / "AAA-USDT.csv", index=False)
    bad = make_bars(20)
    bad.loc[7, "timestamp"] += pd.Timedelta(minutes=1)
    bad.to_csv(tmp_path / "BBB-USDT.csv", index=False)
    make_bars(20).to_csv(tmp_path / "CCC-USDT.csv", index=False)
    assert main(["data", "import", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith("AAA/USDT  1h  received 20")
    assert f"file {tmp_path / 'BBB-USDT.csv'}" in captured.err
    assert "row 7" in captured.err and "not aligned" in captured.err
    assert "1 file(s) before it were stored" in captured.err
    assert brain.bar_inventory()["symbol"].tolist() == ["AAA/USDT"]
    assert stored(brain_dsn) == (20, 1)
    # A missing column is named with the file too.
    pd.DataFrame({"timestamp": [1, 2]}).to_csv(tmp_path / "AAA-USDT.csv", index=False)
    assert main(["data", "import", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "AAA-USDT.csv" in captured.err and "missing column" in captured.err
