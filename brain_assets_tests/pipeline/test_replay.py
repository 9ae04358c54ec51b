"""``brain replay``: the daily loop stepped through history, on a market whose truth is known."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from brain_assets.cli.main import main
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.library import BrainLibrary
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.replay import ReplayPlan, replay

pytestmark = pytest.mark.slow

SYMBOL = "BTC/USDT"
PLAN = ReplayPlan(start_bars=1200, step_bars=168, steps=4)
SETTINGS = RetrainSettings(model_types=("ridge",), fee_bps=2.0)
FLIPPED = 2
"""The first step whose new bars come from the flipped market."""


def test_signal_market_flips_at_the_bar_it_is_told() -> None:
    bars = signal_market(3000, momentum=0.3, flip_at=1500, seed=1)
    returns = bars["close"].pct_change()
    before = returns.iloc[1:1500].autocorr()
    after = returns.iloc[1500:].autocorr()
    assert before > 0.2 and after < -0.2
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    with pytest.raises(ValueError, match="flip_at"):
        signal_market(100, flip_at=100)


def test_a_flipped_signal_takes_the_stale_model_out_within_two_steps(
    brain: BrainLibrary,
) -> None:
    flip_bar = PLAN.start_bars + (FLIPPED - 1) * PLAN.step_bars
    bars = signal_market(PLAN.bars_needed(), momentum=0.3, flip_at=flip_bar, seed=0)
    result = replay(brain, SYMBOL, bars, PLAN, settings=SETTINGS, policy=DecisionPolicy())
    timeline = result.timeline
    assert timeline["step"].tolist() == [0, 1, 2, 3, 4]
    first = timeline.iloc[0]
    assert [e["reason"] for e in first["events"]] == ["promotion"]
    stale = int(first["active_version"])
    # The version trading into the flip is gone (rolled back or stood aside) within 2 steps.
    gone = [
        int(row.step)
        for row in timeline.itertuples()
        if row.step >= FLIPPED and (pd.isna(row.active_version) or int(row.active_version) != stale)
    ]
    assert gone and gone[0] <= FLIPPED + 2
    assert result.summary["rollbacks"] >= 1 or result.summary["promotions"] >= 2
    # While it traded the flipped bars it lost money: the timeline shows it.
    assert timeline.loc[timeline["step"] == FLIPPED, "period_return"].iloc[0] < 0
    # The account held the stale version's position across steps and paid every fee; holding
    # is measured on the same bars.
    assert result.bars.index.is_unique and set(result.bars["position"]) <= {-1.0, 0.0, 1.0}
    assert result.summary["hold_total_return"] == pytest.approx(
        (1 + timeline["hold_return"]).prod() - 1
    )
    assert result.summary["steps_trading"] >= FLIPPED
    stored = brain.get_replay_timeline(result.replay_id)
    assert stored["step"].tolist() == timeline["step"].tolist()
    assert stored["active_version"].iloc[0] == stale
    assert stored["hold_return"].tolist() == pytest.approx(timeline["hold_return"].tolist())
    replays = brain.list_replays(SYMBOL)
    assert replays["summary"].iloc[0]["rollbacks"] == result.summary["rollbacks"]
    # A replay starts from an empty registry.
    with pytest.raises(ValueError, match="already has models"):
        replay(brain, SYMBOL, bars, PLAN, settings=SETTINGS, policy=DecisionPolicy())


def test_replay_refuses_too_short_a_history(brain: BrainLibrary) -> None:
    with pytest.raises(ValueError, match=f"needs {PLAN.bars_needed()} bars"):
        replay(brain, SYMBOL, signal_market(1500), PLAN, settings=SETTINGS, policy=DecisionPolicy())


def test_brain_replay_command_prints_stores_and_draws(
    brain_dsn: str,
    empty_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    base = ["replay", SYMBOL, "--steps", "2", "--start-bars", "1200", "--model-types", "ridge"]
    # The scratch database is emptied: it can never be the Brain's own.
    assert main([*base, "--scratch-dsn", brain_dsn]) == 2
    assert "must not be the Brain" in capsys.readouterr().err
    assert main(base) == 2
    assert "--scratch-dsn" in capsys.readouterr().err
    assert main([*base, "--scratch-dsn", empty_dsn, "--compare", "seed"]) == 2
    assert "--compare needs a scratch database per policy" in capsys.readouterr().err
    code = main([*base, "--scratch-dsn", empty_dsn, "--out", str(tmp_path), "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    summary = document["default"]
    assert summary["steps"] == 2
    # Judged against standing aside and holding over the same bars, per calendar year too.
    assert summary["stand_aside_total_return"] == 0.0
    assert set(summary["by_year"]) == {"2024"} and "hold" in summary["by_year"]["2024"]
    png = Path(document["png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_csv(document["csv"])) == 3
    with BrainLibrary(brain_dsn) as brain:
        assert brain.list_replays(SYMBOL)["replay_id"].tolist() == [summary["replay_id"]]
        # The replay's models live in the scratch database, not in the Brain.
        assert brain.list_models(SYMBOL).empty


def test_compare_replays_two_policies_on_the_same_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No DATABASE_DSN: each policy replays in its own database of the embedded server.
    code = main(
        [
            "replay",
            SYMBOL,
            "--steps",
            "1",
            "--start-bars",
            "1200",
            "--model-types",
            "ridge",
            "--compare",
            "seed",
            "--live-window-bars",
            "200",
            "--cooldown-bars",
            "24",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"default", "seed", "png", "csv"}
    # Both policies replayed the very same bars: holding earned the same.
    assert document["default"]["hold_total_return"] == document["seed"]["hold_total_return"]
    assert len(list(tmp_path.glob("replay-*.png"))) == 1
    with BrainLibrary() as brain:
        parameters = brain.list_replays(SYMBOL)["parameters"]
    plans = [p["plan"] for p in parameters]
    assert {p["live_window_bars"] for p in plans} == {200}
    assert [p["policy"]["cooldown_bars"] for p in parameters] == [24, 24]
