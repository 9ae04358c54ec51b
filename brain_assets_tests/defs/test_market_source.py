"""The market source is a deployment setting: the bar store by default when it holds the bars."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from brain_assets.defs.resources import MarketDataResource, market_resource
from brain_assets.errors import MissingBarsError
from brain_assets.library import BrainLibrary
from brain_assets.market_data.synthetic import signal_market
from brain_assets_tests.dagster_helpers import FAST_RETRAIN, run_assets

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
FIRST_BAR = pd.Timestamp("2023-06-01", tz="UTC")


def bars(seed: int, n: int = 1400) -> pd.DataFrame:
    frame = signal_market(n, momentum=0.2, seed=seed, start="2023-06-01")
    return frame


def test_auto_reads_the_store_when_it_holds_the_symbol(brain: BrainLibrary) -> None:
    brain.store_bars("fakex", "BTC/USDT", "1h", bars(1))
    market = MarketDataResource()  # source "auto"
    stored = market.load("BTC/USDT", brain)
    assert stored.source == "store:fakex" and len(stored.frame) == 1400
    assert stored.frame["timestamp"].iloc[0] == FIRST_BAR
    # Not in the store: a clear refusal, never made-up bars in their place.
    with pytest.raises(MissingBarsError, match=r"ETH/USDT: the bar store holds no 1h bars"):
        market.load("ETH/USDT", brain)
    with pytest.raises(MissingBarsError, match=r"ETH/USDT: the bar store holds no 1h bars"):
        MarketDataResource(source="store").load("ETH/USDT", brain)
    # Two exchanges' prints are never mixed: the deployment must pick one.
    brain.store_bars("otherx", "BTC/USDT", "1h", bars(2))
    with pytest.raises(ValueError, match="several sources hold 1h bars"):
        market.load("BTC/USDT", brain)
    picked = MarketDataResource(store_source="otherx").load("BTC/USDT", brain)
    assert picked.source == "store:otherx"
    with pytest.raises(ValueError, match="not one of auto, store, files, synthetic"):
        MarketDataResource(source="exchange").load("BTC/USDT", brain)


@pytest.mark.slow
def test_the_retrain_reads_the_store_set_only_in_the_deployment_environment(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed, symbol in enumerate(SYMBOLS):
        brain.store_bars("fakex", symbol, "1h", bars(seed))
    monkeypatch.setenv("BRAIN_MARKET_SOURCE", "store")
    monkeypatch.setenv("BRAIN_BAR_SOURCE", "fakex")
    market = market_resource()  # what definitions.py builds: EnvVar fields, no run config
    assert isinstance(market.source, dg.EnvVar) or market.source == "store"
    with dg.instance_for_test() as instance:
        for symbol in SYMBOLS:
            result = run_assets(instance, brain_dsn, [symbol], market=market, retrain=FAST_RETRAIN)
            assert result.success
            [event] = [
                e
                for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() == "market_data"
            ]
            metadata = event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
            assert "store:fakex" in str(metadata)
    for symbol in SYMBOLS:
        models = brain.list_models(symbol)
        assert not models.empty
        assert set(models["bar_source"]) == {"store:fakex"}
        assert set(models["bar_timeframe"]) == {"1h"}
        assert not models["synthetic_bars"].any()
        # Trained on the stored bars (June 2023), not on the synthetic default (2024).
        assert pd.Timestamp(models["data_start"].iloc[0]).year == 2023


@pytest.mark.slow
def test_brain_demo_runs_on_a_folder_of_csv_files(tmp_path: Path) -> None:
    folder = tmp_path / "bars"
    folder.mkdir()
    for seed, symbol in enumerate(SYMBOLS):
        frame = bars(seed, 1200)
        frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
            folder / f"{symbol.replace('/', '-')}.csv", index=False
        )
    env = {
        "BRAIN_HOME": str(tmp_path / "home"),
        "BRAIN_LOG_DIR": str(tmp_path / "logs"),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "brain_assets.cli", "demo", "--source", "files"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--source files needs --folder" in done.stderr
    command = [sys.executable, "-m", "brain_assets.cli", "demo", "--source", "files"]
    done = subprocess.run(
        [*command, "--folder", str(folder)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Every symbol of the folder, and only those, one run each.
    for symbol in SYMBOLS:
        assert f" {symbol} succeeded" in done.stdout
    assert "SOL/USDT" not in done.stdout
