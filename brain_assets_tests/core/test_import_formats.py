"""`brain data import --format`: CryptoDataDownload CSVs and Binance kline dumps next to the
ccxt layout, recognised per file, read into the files source's frame and stored as any import.

The files are generated into tmp_path by brain_assets_tests/import_fixtures.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from brain_assets.cli.main import main
from brain_assets.library import BrainLibrary
from brain_assets.market_data.import_formats import (
    BINANCE_DUMP,
    CCXT,
    CRYPTODATADOWNLOAD,
    cdd_dates,
    epoch_times,
    read_foreign,
    recognise,
    split_pair,
)
from brain_assets.market_data.store_import import (
    drop_repeated_bars,
    import_bar_files,
    import_folder,
)
from brain_assets_tests.conftest import count_rows
from brain_assets_tests.import_fixtures import (
    START,
    bars,
    repeat_rows,
    write_binance_dump,
    write_ccxt,
    write_cryptodatadownload,
)


def utc(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"timestamp": "datetime64[ns, UTC]"})


def stored(dsn: str) -> tuple[int, int]:
    return count_rows(dsn, "bars"), count_rows(dsn, "bar_batches")


# --- the readers, without a store -------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "symbol"),
    [
        ("BTCUSDT", "BTC/USDT"),
        ("ethbtc", "ETH/BTC"),
        ("BNBFDUSD", "BNB/FDUSD"),
        ("USDTTRY", "USDT/TRY"),
        ("SOLUSDC", "SOL/USDC"),
        ("BTCTUSD", "BTC/TUSD"),
    ],
)
def test_pairs_split_at_the_longest_known_quote(pair: str, symbol: str) -> None:
    assert split_pair(pair, where="here") == symbol


def test_an_unsplittable_pair_is_refused() -> None:
    with pytest.raises(ValueError, match=r"here: cannot split 'FOOBAR' .*USDT"):
        split_pair("FOOBAR", where="here")
    with pytest.raises(ValueError, match="cannot split"):
        split_pair("USDT", where="here")


def test_epoch_units_are_told_apart_by_magnitude() -> None:
    expected = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2025-03-01 01:00"], utc=True))
    for values, unit in (
        ([1_704_067_200, 1_740_790_800], "s"),
        ([1_704_067_200_000, 1_740_790_800_000], "ms"),
        ([1_704_067_200_000_000, 1_740_790_800_000_000], "µs"),
    ):
        stamps, label = epoch_times(pd.Series(values), where="f", column="unix")
        pd.testing.assert_series_equal(stamps, expected, check_names=False)
        assert label == unit
    stamps, label = epoch_times(
        pd.Series([1_740_790_800_000_000, 1_704_067_200_000, None]), where="f", column="unix"
    )
    assert label == "µs+ms"
    assert stamps.iloc[1] == expected.iloc[0] and pd.isna(stamps.iloc[2])
    with pytest.raises(ValueError, match=r"f: column 'unix' holds values that are not whole"):
        epoch_times(pd.Series([1_704_067_200.5]), where="f", column="unix")
    with pytest.raises(ValueError, match=r"f: column 'unix' is not epoch numbers"):
        epoch_times(pd.Series(["soon"]), where="f", column="unix")


def test_cryptodatadownload_dates() -> None:
    raw = pd.Series(
        ["2019-10-17 09-AM", "2019-10-17 12-AM", "2019-10-17 01-PM", "2019-10-17 09:00:00"]
    )
    parsed = cdd_dates(raw, where="f")
    assert [stamp.isoformat() for stamp in parsed] == [
        "2019-10-17T09:00:00+00:00",
        "2019-10-17T00:00:00+00:00",
        "2019-10-17T13:00:00+00:00",
        "2019-10-17T09:00:00+00:00",
    ]
    with pytest.raises(ValueError, match=r"f: cannot parse column 'date'"):
        cdd_dates(pd.Series(["yesterday"]), where="f")


def test_each_layout_is_recognised_and_read_exactly(tmp_path: Path) -> None:
    frame = bars(30)
    cases = [
        (write_binance_dump(tmp_path, frame), BINANCE_DUMP, "BTC/USDT", {"time_unit": "ms"}),
        (
            write_binance_dump(
                tmp_path, frame, name="ETHUSDT-1h-2025-01", unit="us", header=True, zipped=False
            ),
            BINANCE_DUMP,
            "ETH/USDT",
            {"time_unit": "µs", "header": True},
        ),
        (
            write_cryptodatadownload(tmp_path, frame),
            CRYPTODATADOWNLOAD,
            "BTC/USDT",
            {"volume_column": "Volume BTC", "time_column": "unix (s)", "newest_first": True},
        ),
        (
            write_cryptodatadownload(
                tmp_path, frame, name="Binance_ETHBTC_1h", unix="ms", symbol=None, base="ETH",
                quote="BTC", banner=False,
            ),
            CRYPTODATADOWNLOAD,
            "ETH/BTC",
            {"volume_column": "Volume ETH", "time_column": "unix (ms)"},
        ),
        (
            write_cryptodatadownload(
                tmp_path, frame, name="Bitstamp_BTCUSD_1h", unix=None, am_pm=True,
                symbol="BTCUSD", quote="USD",
            ),
            CRYPTODATADOWNLOAD,
            "BTC/USD",
            {"volume_column": "Volume BTC", "time_column": "date"},
        ),
    ]  # fmt: skip
    for path, layout, symbol, notes in cases:
        found = recognise(path)
        assert (found.format, found.symbol) == (layout, symbol), path.name
        assert recognise(path, layout) == found
        table, details = read_foreign(found, where=path.name)
        assert notes.items() <= details.items(), path.name
        # Oldest first, the base-asset volume, every value as generated.
        pd.testing.assert_frame_equal(table, utc(frame), check_dtype=False)
    ccxt = recognise(write_ccxt(tmp_path, frame))
    assert (ccxt.format, ccxt.symbol) == (CCXT, "BTC/USDT")
    assert recognise(tmp_path / "BTCUSDT-1h-2024-01.zip").timeframe == "1h"


def test_a_file_of_no_known_layout_is_refused_naming_it(tmp_path: Path) -> None:
    odd = tmp_path / "prices.csv"
    odd.write_text("day,price\n2024-01-01,100\n")
    with pytest.raises(ValueError, match=r"prices\.csv: not a known bar file layout") as caught:
        recognise(odd)
    message = str(caught.value)
    assert "'day,price'" in message
    assert all(word in message for word in ("timestamp", "CryptoDataDownload", "Binance"))


def test_an_explicit_format_that_does_not_match_is_refused(tmp_path: Path) -> None:
    cdd = write_cryptodatadownload(tmp_path, bars(5))
    dump = write_binance_dump(tmp_path, bars(5), zipped=False)
    ccxt = write_ccxt(tmp_path, bars(5))
    with pytest.raises(ValueError, match=r"Binance_BTCUSDT_1h\.csv: not a binance-dump file"):
        recognise(cdd, BINANCE_DUMP)
    with pytest.raises(ValueError, match="looks like cryptodatadownload: use --format"):
        recognise(cdd, BINANCE_DUMP)
    with pytest.raises(ValueError, match=r"BTCUSDT-1h-2024-01\.csv: not a ccxt file.*binance"):
        recognise(dump, CCXT)
    with pytest.raises(ValueError, match=r"BTC-USDT\.csv: not a cryptodatadownload file"):
        recognise(ccxt, CRYPTODATADOWNLOAD)


def test_symbols_and_volumes_that_cannot_be_told_are_refused(tmp_path: Path) -> None:
    renamed = write_binance_dump(tmp_path, bars(5))
    renamed = renamed.rename(tmp_path / "klines.zip")
    with pytest.raises(ValueError, match=r"klines\.zip: a Binance kline dump's name"):
        recognise(renamed)
    odd_pair = write_binance_dump(tmp_path, bars(5), name="FOOBAR-1h-2024-01")
    with pytest.raises(ValueError, match=r"FOOBAR-1h-2024-01\.zip: cannot split 'FOOBAR'"):
        recognise(odd_pair)
    # A volume column per currency, but none for the symbol's base currency.
    other = write_cryptodatadownload(tmp_path, bars(5), name="Binance_SOLUSDT_1h", symbol=None)
    with pytest.raises(ValueError, match=r"SOLUSDT_1h\.csv: cannot tell which column is the base"):
        recognise(other)
    two = tmp_path / "two.zip"
    import zipfile

    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", "1,2\n")
        archive.writestr("b.csv", "1,2\n")
    with pytest.raises(ValueError, match=r"two\.zip: a zipped dump must hold exactly one"):
        recognise(two)


# --- into the store ---------------------------------------------------------------------------


def test_monthly_dumps_import_and_overlapping_bars_are_stored_once(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path
) -> None:
    january = bars(48)
    # February's dump repeats January's last 8 bars, as overlapping downloads do, in µs.
    february = bars(48, start=START + pd.Timedelta(hours=40), seed=1)
    february.iloc[:8] = january.iloc[40:].to_numpy()
    write_binance_dump(tmp_path, january)
    write_binance_dump(tmp_path, february, name="BTCUSDT-1h-2024-02", unit="us", header=True)
    done = import_bar_files(brain, tmp_path)
    assert [(d.format, d.details["time_unit"]) for d in done] == [
        (BINANCE_DUMP, "ms"),
        (BINANCE_DUMP, "µs"),
    ]
    counts = [(d.batch.symbol, d.batch.received, d.batch.new, d.batch.unchanged) for d in done]
    assert counts == [("BTC/USDT", 48, 48, 0), ("BTC/USDT", 48, 40, 8)]
    loaded = brain.load_bars("files", "BTC/USDT", "1h")
    expected = pd.concat([january, february.iloc[8:]], ignore_index=True)
    pd.testing.assert_frame_equal(loaded, utc(expected))
    # Re-importing stores nothing twice.
    again = import_folder(brain, tmp_path, file_format=BINANCE_DUMP)
    assert [(b.new, b.changed, b.unchanged) for b in again] == [(0, 0, 48), (0, 0, 48)]
    assert stored(brain_dsn) == (88, 4)


def test_cryptodatadownload_files_import_with_the_base_volume(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path
) -> None:
    frame = bars(24, freq="1d")
    write_cryptodatadownload(tmp_path, frame, name="Binance_BTCUSDT_d")
    write_cryptodatadownload(
        tmp_path, frame, name="Bitstamp_ETHUSD_d", unix=None, symbol="ETH/USD", base="ETH",
        quote="USD",
    )  # fmt: skip
    done = import_bar_files(brain, tmp_path, file_format=CRYPTODATADOWNLOAD, source="cdd")
    assert [(d.path.name, d.batch.symbol, d.batch.timeframe, d.batch.new) for d in done] == [
        ("Binance_BTCUSDT_d.csv", "BTC/USDT", "1d", 24),
        ("Bitstamp_ETHUSD_d.csv", "ETH/USD", "1d", 24),
    ]
    assert done[0].details["volume_column"] == "Volume BTC"
    for symbol in ("BTC/USDT", "ETH/USD"):
        pd.testing.assert_frame_equal(brain.load_bars("cdd", symbol, "1d"), utc(frame))
    with brain.transaction() as conn:
        row = conn.execute(
            "SELECT details FROM bar_batches WHERE batch_id = %s", (done[0].batch.batch_id,)
        ).fetchone()
    assert row is not None
    assert row[0]["format"] == CRYPTODATADOWNLOAD and row[0]["volume_column"] == "Volume BTC"
    assert stored(brain_dsn) == (48, 2)


def test_bad_rows_are_handled_as_every_import_handles_them(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path
) -> None:
    # Bad prints (high < low, a negative volume) are kept, as the store keeps them from any
    # source; the cleaning policy deals with them when the retrain reads the bars.
    frame = bars(24)
    frame.loc[3, "high"] = frame.loc[3, "low"] - 1.0
    frame.loc[5, "volume"] = -2.0
    write_binance_dump(tmp_path, frame)
    (done,) = import_bar_files(brain, tmp_path)
    assert done.batch.new == 24
    pd.testing.assert_frame_equal(brain.load_bars("files", "BTC/USDT", "1h"), utc(frame))
    # A bar twice in one file with different values, or off the timeframe's grid, is refused
    # with the file named.
    for broken, problem in (
        (repeat_rows(bars(10), [4], change={"volume": 1.0}), "appear more than once with"),
        (bars(10).assign(timestamp=bars(10)["timestamp"] + pd.Timedelta(minutes=7)), "aligned"),
    ):
        path = write_cryptodatadownload(tmp_path / problem, broken, name="Binance_ETHUSDT_1h",
                                        symbol="ETH/USDT", base="ETH")  # fmt: skip
        with pytest.raises(ValueError, match=rf"file {path}: .*{problem}"):
            import_bar_files(brain, path.parent)
    assert stored(brain_dsn) == (24, 1)


def test_a_refused_file_stores_nothing(brain: BrainLibrary, brain_dsn: str, tmp_path: Path) -> None:
    write_binance_dump(tmp_path, bars(24))
    (tmp_path / "notes.csv").write_text("whatever,this,is\n1,2,3\n")
    with pytest.raises(ValueError, match=r"notes\.csv: not a known bar file layout"):
        import_bar_files(brain, tmp_path)
    # An explicit layout the files do not hold.
    with pytest.raises(ValueError, match=r"BTCUSDT-1h-2024-01\.zip: not a cryptodatadownload"):
        import_bar_files(brain, tmp_path, file_format=CRYPTODATADOWNLOAD)
    # A name that states another interval than the bars have.
    (tmp_path / "notes.csv").unlink()
    write_binance_dump(tmp_path, bars(24, seed=3), name="ETHUSDT-4h-2024-01")
    with pytest.raises(ValueError, match=r"ETHUSDT-4h-2024-01\.zip: bars are 1h apart .*says 4h"):
        import_bar_files(brain, tmp_path, symbols=["ETH/USDT"])
    with pytest.raises(ValueError, match=r"ETHUSDT-4h-2024-01\.zip: the file name says 4h"):
        import_bar_files(brain, tmp_path, symbols=["ETH/USDT"], timeframe="1h")
    with pytest.raises(ValueError, match="symbol 'SOL/USDT': no data file"):
        import_bar_files(brain, tmp_path, symbols=["SOL/USDT"])
    assert stored(brain_dsn) == (0, 0)


# --- a bar listed twice in one file ----------------------------------------------------------


def test_repeated_rows_identical_copies_dropped_differing_ones_refused() -> None:
    frame = utc(bars(6))
    kept, dropped = drop_repeated_bars(utc(repeat_rows(bars(6), [0, 2, 2])), where="f")
    assert dropped == 3
    pd.testing.assert_frame_equal(kept, frame)
    same, none = drop_repeated_bars(frame, where="f")
    assert none == 0 and same is frame
    # A row without a timestamp is left for the store, which refuses it naming its row.
    timeless = frame.iloc[[1, 1]].copy()
    timeless["timestamp"] = pd.NaT
    missing = pd.concat([frame, timeless], ignore_index=True)
    assert drop_repeated_bars(missing, where="f")[1] == 0
    clashing = utc(repeat_rows(bars(6), [5, 1, 2, 3], change={"close": 0.5}))
    with pytest.raises(ValueError, match="f: 4 timestamp") as caught:
        drop_repeated_bars(clashing, where="f")
    message = str(caught.value)
    assert "appear more than once with different values" in message
    # The earliest conflicts, and what differs at the first one.
    shown = ", ".join(str(stamp) for stamp in frame["timestamp"].iloc[1:4])
    assert f"first {shown}, ...;" in message
    close = float(frame["close"].iloc[1])
    assert f"at 2024-01-01 01:00:00+00:00: close {close!r} vs {close + 0.5!r})" in message


def test_identical_repeated_bars_are_dropped_and_counted_in_every_layout(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path
) -> None:
    frame = bars(24)
    # CryptoDataDownload lists bars twice (the copies differ only in the unread tradecount).
    write_cryptodatadownload(tmp_path, repeat_rows(frame, [0, 7, 23]), name="Binance_ETHUSDT_1h",
                             symbol="ETH/USDT", base="ETH")  # fmt: skip
    write_binance_dump(tmp_path, repeat_rows(frame, [3, 4]))
    write_ccxt(tmp_path, repeat_rows(frame, [10]), symbol="SOL/USDT")
    write_binance_dump(tmp_path, frame, name="XRPUSDT-1h-2024-01")
    done = import_bar_files(brain, tmp_path)
    assert [
        (d.path.name, d.batch.received, d.batch.new, d.details["duplicates_dropped"]) for d in done
    ] == [
        ("BTCUSDT-1h-2024-01.zip", 24, 24, 2),
        ("Binance_ETHUSDT_1h.csv", 24, 24, 3),
        ("SOL-USDT.csv", 24, 24, 1),
        ("XRPUSDT-1h-2024-01.zip", 24, 24, 0),
    ]
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"):
        pd.testing.assert_frame_equal(brain.load_bars("files", symbol, "1h"), utc(frame))
    with brain.transaction() as conn:
        rows = conn.execute(
            "SELECT details->>'file', details->'duplicates_dropped' FROM bar_batches "
            "ORDER BY batch_id"
        ).fetchall()
    assert [(Path(name).name, count) for name, count in rows] == [
        ("BTCUSDT-1h-2024-01.zip", 2),
        ("Binance_ETHUSDT_1h.csv", 3),
        ("SOL-USDT.csv", 1),
        ("XRPUSDT-1h-2024-01.zip", 0),
    ]
    assert stored(brain_dsn) == (96, 4)


def test_differing_repeated_bars_refuse_the_file_and_leave_the_store_unchanged(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path
) -> None:
    frame = bars(24)
    write_binance_dump(tmp_path, frame)
    import_bar_files(brain, tmp_path)
    before = brain.load_bars("files", "BTC/USDT", "1h")
    assert stored(brain_dsn) == (24, 1)
    # February's dump repeats two bars with another close; an identical copy beside them.
    february = bars(24, start=START + pd.Timedelta(days=31), seed=4)
    spoilt = repeat_rows(repeat_rows(february, [9, 17], change={"close": 0.25}), [0])
    bad = write_binance_dump(tmp_path / "feb", spoilt, name="BTCUSDT-1h-2024-02")
    stamp = re.escape(str(february.loc[9, "timestamp"]))
    with pytest.raises(ValueError, match=rf"file {bad}: 2 timestamp\(s\) appear more than once"
                       rf" with different values \(first {stamp}, ") as caught:  # fmt: skip
        import_bar_files(brain, bad.parent)
    assert "keep one row per timestamp" in str(caught.value)
    cdd = tmp_path / "cdd"
    write_cryptodatadownload(cdd, repeat_rows(frame, [5], change={"open": -1.0}))
    with pytest.raises(ValueError, match=rf"Binance_BTCUSDT_1h\.csv: 1 timestamp\(s\) .* at "
                       rf"{re.escape(str(frame.loc[5, 'timestamp']))}: open "):  # fmt: skip
        import_bar_files(brain, cdd, file_format=CRYPTODATADOWNLOAD)
    # What was stored before stays as it was; nothing of the refused files was stored.
    assert stored(brain_dsn) == (24, 1)
    pd.testing.assert_frame_equal(brain.load_bars("files", "BTC/USDT", "1h"), before)


# --- the command, end to end ------------------------------------------------------------------


def test_cli_imports_every_layout_and_says_which(
    brain: BrainLibrary,
    brain_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    write_binance_dump(tmp_path, bars(24), unit="us")
    write_cryptodatadownload(tmp_path, bars(24, seed=2), name="Binance_ETHUSDT_1h",
                             symbol="ETH/USDT", base="ETH")  # fmt: skip
    write_ccxt(tmp_path, bars(24, seed=3), symbol="SOL/USDT")
    assert main(["data", "import", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("BTC/USDT  1h  received 24  new 24")
    assert out[0].endswith("(BTCUSDT-1h-2024-01.zip: binance-dump, open times in µs)")
    assert out[1].startswith("ETH/USDT  1h  received 24  new 24")
    assert out[1].endswith(
        "(Binance_ETHUSDT_1h.csv: cryptodatadownload, volume from 'Volume ETH', "
        "times from unix (s))"
    )
    assert out[2].startswith("SOL/USDT  1h  received 24")
    assert out[2].endswith("(SOL-USDT.csv: ccxt)")
    assert "3 file(s) stored as source 'files'" in out[3]
    assert main(["data", "import", str(tmp_path), "--json", "--format", "auto"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["symbol"], r["format"], r["unchanged"]) for r in records] == [
        ("BTC/USDT", BINANCE_DUMP, 24),
        ("ETH/USDT", CRYPTODATADOWNLOAD, 24),
        ("SOL/USDT", CCXT, 24),
    ]
    assert records[0]["time_unit"] == "µs" and records[1]["volume_column"] == "Volume ETH"
    assert stored(brain_dsn) == (72, 6)


def test_cli_reports_the_repeated_rows_it_dropped(
    brain: BrainLibrary,
    brain_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    write_cryptodatadownload(tmp_path, repeat_rows(bars(24), [2, 3]))
    assert main(["data", "import", str(tmp_path)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("BTC/USDT  1h  received 24  new 24")
    assert line.endswith("times from unix (s), 2 repeated identical row(s) dropped)")
    assert main(["data", "import", str(tmp_path), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert (record["duplicates_dropped"], record["unchanged"]) == (2, 24)
    write_binance_dump(tmp_path, repeat_rows(bars(24), [6], change={"high": 1.0}))
    assert main(["data", "import", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "BTCUSDT-1h-2024-01.zip: 1 timestamp(s) appear more than once" in captured.err
    assert "2024-01-01 06:00:00+00:00" in captured.err
    assert stored(brain_dsn) == (24, 2)


def test_cli_refuses_a_file_naming_it_and_stores_nothing(
    brain: BrainLibrary,
    brain_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    write_binance_dump(tmp_path, bars(24))
    assert main(["data", "import", str(tmp_path), "--format", "cryptodatadownload"]) == 2
    err = capsys.readouterr().err
    assert f"file {tmp_path / 'BTCUSDT-1h-2024-01.zip'}: not a cryptodatadownload file" in err
    assert "use --format binance-dump or auto" in err
    (tmp_path / "ZZZ.csv").write_text("a;b;c\n1;2;3\n")
    assert main(["data", "import", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "ZZZ.csv: not a known bar file layout" in captured.err
    assert stored(brain_dsn) == (0, 0)
    with pytest.raises(SystemExit) as exited:
        main(["data", "import", str(tmp_path), "--format", "nonsense"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
