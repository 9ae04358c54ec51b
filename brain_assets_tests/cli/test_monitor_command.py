"""`brain monitor --act` on a regressed symbol: the operator's path to a rollback without the
daemon. The Brain holds a good version and, live, a broken one that loses on the new bars."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from brain_assets.defs.resources import DecisionResource, MarketDataResource, RetrainResource
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.market_data.synthetic import signal_market
from brain_assets_tests.dagster_helpers import run_assets
from brain_assets_tests.reversed_model import SYMBOL, register_reversed_model, write

pytestmark = pytest.mark.slow


def test_monitor_act_rolls_a_regressed_symbol_back(brain_dsn: str, tmp_path: Path) -> None:
    frame = signal_market(2400, momentum=0.2, seed=3)
    bars = tmp_path / "bars"
    bars.mkdir()
    write(bars, frame.head(2000))
    with dg.instance_for_test() as instance:
        day_one = run_assets(
            instance,
            brain_dsn,
            [SYMBOL],
            market=MarketDataResource(source="files", folder=str(bars)),
            retrain=RetrainResource(model_types=["ridge", "random_forest"], fee_bps=10.0),
            decisions=DecisionResource(),
        )
        assert day_one.success
    with BrainLibrary(brain_dsn) as brain:
        previous = brain.get_active_model(SYMBOL)
        assert previous is not None, brain.trading_status(SYMBOL).reason
        broken = register_reversed_model(brain, frame.head(2000), previous)
        ModelVersioning(brain).promote(broken, reason="test: operator")
    # Two weeks of new bars (the live window), on which the broken version loses.
    write(bars, frame.head(2336))

    # A subprocess, as an operator runs it: the definitions read the market source from the
    # environment when they are imported.
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_DSN": brain_dsn,
        "BRAIN_HOME": str(tmp_path / "home"),
        "BRAIN_LOG_DIR": str(tmp_path / "logs"),
        "BRAIN_MARKET_SOURCE": "files",
        "BRAIN_MARKET_FOLDER": str(bars),
    }

    def brain(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "brain_assets.cli", *argv],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        return done

    # Without --act the verdict is reported and the rollback left to the sensor.
    [seen] = json.loads(brain("monitor", SYMBOL, "--json").stdout)
    assert seen["verdict"] == "regressed" and seen["rollback_pending"] is True, seen
    assert seen["rollback"] is None
    with BrainLibrary(brain_dsn) as store:
        assert store.get_active_model(SYMBOL).model_id == broken

    [acted] = json.loads(brain("monitor", SYMBOL, "--act", "--json").stdout)
    assert acted["verdict"] == "regressed", acted
    assert acted["rollback"]["success"] is True and acted["rollback"]["rolled_back"], acted
    assert acted["rollback_pending"] is False
    assert acted["active_model_id"] == previous.model_id, acted["reason"]
    with BrainLibrary(brain_dsn) as store:
        active = store.get_active_model(SYMBOL)
        history = store.get_activation_history(SYMBOL)
    assert active is not None and active.model_id == previous.model_id
    assert history.iloc[-1]["details"]["regressed_model_id"] == broken

    # The table form says what happened, in words.
    text = brain("monitor", SYMBOL).stdout
    assert f"{SYMBOL}: " in text and f"v{active.version}" in text
