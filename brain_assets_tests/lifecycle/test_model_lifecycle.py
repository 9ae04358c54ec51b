"""The decision rules applied to the registry: floor, fair promotion, rollback, stand aside."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from brain_assets.calendar import periods_per_year
from brain_assets.decisions.policy import (
    SELECTION_TRIALS,
    SHARPE_SE,
    DecisionPolicy,
    floor_verdict,
)
from brain_assets.defs.resources import DecisionResource, MarketDataResource, RetrainResource
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.selection import ModelSelector
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import make_dataset
from brain_assets.pipeline.evaluation import evaluate_symbol
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol
from brain_assets_tests.dagster_helpers import run_assets

SYMBOL = "BTC/USDT"
HOURLY = 8760.0
TEST_BARS = pd.date_range("2024-03-01", periods=400, freq="h", tz="UTC")


def write_bars(folder: Path, frame: pd.DataFrame) -> None:
    out = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.to_csv(folder / "BTC-USDT.csv", index=False)


def metrics(sharpe: float, composite: float = 0.4, se: float = 3.0) -> dict[str, float]:
    return {
        "sharpe_ratio": sharpe,
        "composite_score": composite,
        SHARPE_SE: se,
        SELECTION_TRIALS: 1.0,
        "periods_per_year": HOURLY,
    }


def register(
    versioning: ModelVersioning,
    tag: str,
    values: Mapping[str, float],
    *,
    returns: pd.Series | None = None,
    champion: pd.Series | None = None,
    horizon: int = 1,
    as_of: str = "2024-03-17T16:00:00Z",
) -> str:
    return versioning.register_version(
        SYMBOL,
        "ridge",
        tag.encode(),
        metrics=values,
        bar_returns=returns,
        champion_returns=None if champion is None else (lambda _active: champion),
        horizon=horizon,
        as_of=as_of,
    )


def noise(seed: int, shift: float = 0.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(shift, 0.01, len(TEST_BARS)), index=TEST_BARS)


def last_decision(brain: BrainLibrary, model_id: str) -> dict[str, Any]:
    history = brain.get_activation_history(SYMBOL)
    return history[history["model_id"] == model_id].iloc[-1].to_dict()


def test_a_losing_first_version_never_trades_and_everyone_says_stand_aside(
    brain: BrainLibrary,
) -> None:
    versioning = ModelVersioning(brain)
    loser = register(versioning, "a", metrics(sharpe=-0.4, composite=-0.37))
    assert brain.get_active_model(SYMBOL) is None
    assert brain.get_model(loser).credible is False
    decision = last_decision(brain, loser)
    assert decision["action"] == "kept_inactive" and decision["reason"] == "below_floor"
    assert brain.get_best_model(SYMBOL) is None
    status = brain.trading_status(SYMBOL)
    assert status.stand_aside and "activation floor" in status.reason
    choice = ModelSelector(brain).select_model_for_symbol(SYMBOL, "normal")
    assert choice is not None and choice["stand_aside"] and choice["model_id"] is None
    # A credible version then trades at once: nothing is active to compare it with.
    good = register(versioning, "b", metrics(sharpe=9.0))
    assert brain.get_active_model(SYMBOL).model_id == good
    assert brain.get_best_model(SYMBOL).model_id == good
    assert not brain.trading_status(SYMBOL).stand_aside


def test_a_challenger_replaces_the_champion_only_on_significant_evidence(
    brain: BrainLibrary,
) -> None:
    versioning = ModelVersioning(brain)
    champion_returns = noise(0)
    champion = register(versioning, "a", metrics(sharpe=9.0))
    # A higher score but the same bars' returns plus noise: no evidence, no promotion (the seed
    # rule would have promoted it on score alone).
    lucky = register(
        versioning,
        "b",
        metrics(sharpe=12.0, composite=0.6),
        returns=champion_returns + noise(1) * 0.1,
        champion=champion_returns,
    )
    assert brain.get_active_model(SYMBOL).model_id == champion
    kept = last_decision(brain, lucky)
    assert kept["action"] == "kept_inactive" and kept["reason"] == "challenger"
    assert kept["details"]["p_value"] >= 0.05 and kept["details"]["common_bars"] == 400
    # Clearly better on the same bars: promoted, with the test's numbers on record.
    better = register(
        versioning,
        "c",
        metrics(sharpe=10.0, composite=0.5),
        returns=champion_returns + 0.002,
        champion=champion_returns,
    )
    assert brain.get_active_model(SYMBOL).model_id == better
    promoted = last_decision(brain, better)
    assert promoted["reason"] == "promotion" and promoted["details"]["p_value"] < 0.05
    # Without per-bar returns there is no fair comparison: the challenger waits.
    blind = register(versioning, "d", metrics(sharpe=20.0, composite=0.9))
    assert last_decision(brain, blind)["action"] == "kept_inactive"


def test_versions_of_another_horizon_never_compete(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain)
    hourly = register(versioning, "a", metrics(sharpe=9.0), horizon=1)
    other = register(
        versioning,
        "b",
        metrics(sharpe=30.0, composite=0.9),
        horizon=4,
        returns=noise(0) + 0.01,
        champion=noise(0),
    )
    assert brain.get_active_model(SYMBOL).model_id == hourly
    assert "horizon" in last_decision(brain, other)["details"]["rule"]
    assert brain.get_best_model(SYMBOL).model_id == hourly
    assert brain.get_best_model(SYMBOL, horizon=4).model_id == other


LIVE_CRASH = {
    "sharpe_ratio": -15.0,
    "composite_score": -0.5,
    SHARPE_SE: 7.0,
    "periods_per_year": HOURLY,
}
LIVE_DIP = {"sharpe_ratio": 7.0, "composite_score": 0.3, SHARPE_SE: 7.0, "periods_per_year": HOURLY}
LIVE_GOOD = {
    "sharpe_ratio": 9.0,
    "composite_score": 0.4,
    SHARPE_SE: 3.0,
    "periods_per_year": HOURLY,
}
"""An earlier version credibly good on the same recent bars: a rollback may return to it."""


def two_versions(versioning: ModelVersioning) -> tuple[str, str]:
    """v1 trades first, v2 replaces it on evidence (as_of a week later)."""
    first = register(versioning, "a", metrics(sharpe=9.0), as_of="2024-03-10T00:00:00Z")
    second = register(
        versioning,
        "b",
        metrics(sharpe=10.0),
        returns=noise(0) + 0.002,
        champion=noise(0),
        as_of="2024-03-17T00:00:00Z",
    )
    return first, second


def test_rollback_ignores_noise_and_acts_on_a_significant_regression(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain)
    first, second = two_versions(versioning)
    week_later = "2024-03-24T00:00:00Z"
    # Live Sharpe 7 against a baseline of 10: 30% lower, far inside a week's noise.
    assert not versioning.check_and_rollback(second, SYMBOL, LIVE_DIP, as_of=week_later)
    seed = ModelVersioning(brain, policy=DecisionPolicy.seed())
    assert seed.assess(second, LIVE_DIP).regressed  # the seed's rule would roll back on this dip
    # It goes back to the earlier version only because that one is credibly good on the same
    # recent bars; without that evidence the symbol would stand aside.
    assert versioning.check_and_rollback(
        second, SYMBOL, LIVE_CRASH, as_of=week_later, candidates={first: LIVE_GOOD}
    )
    assert brain.get_active_model(SYMBOL).model_id == first
    # The regressed version is no longer "best", whatever its score.
    assert brain.get_best_model(SYMBOL).model_id == first


def test_cooldown_defers_a_rollback_right_after_a_change(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy(cooldown_bars=168))
    _, second = two_versions(versioning)
    # Three days after the promotion (72 bars < 168): recorded, not acted on.
    assert not versioning.check_and_rollback(
        second, SYMBOL, LIVE_CRASH, as_of="2024-03-20T00:00:00Z"
    )
    assert brain.get_active_model(SYMBOL).model_id == second
    deferred = last_decision(brain, second)
    assert deferred["reason"] == "rollback_deferred" and "72 bars" in deferred["details"]["message"]
    assert versioning.check_and_rollback(second, SYMBOL, LIVE_CRASH, as_of="2024-03-25T00:00:00Z")


def test_no_fit_version_to_return_to_means_standing_aside(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain)
    first, second = two_versions(versioning)
    # The earlier version fails on the same recent bars too: it is passed over.
    assert versioning.check_and_rollback(
        second,
        SYMBOL,
        LIVE_CRASH,
        as_of="2024-03-25T00:00:00Z",
        candidates={first: LIVE_CRASH},
    )
    assert brain.get_active_model(SYMBOL) is None
    stood = brain.get_activation_history(SYMBOL).iloc[-1]
    assert stood["action"] == "deactivated" and stood["details"]["stand_aside"]
    assert stood["details"]["skipped"][0]["model_id"] == first
    status = brain.trading_status(SYMBOL)
    assert status.stand_aside and "stand aside" in status.reason
    # The seed's rules keep a regressed model trading when there is nowhere to go.
    seed = ModelVersioning(brain, policy=DecisionPolicy.seed())
    only = seed.register_version("ETH/USDT", "ridge", b"e", metrics={"sharpe_ratio": 2.0})
    assert not seed.check_and_rollback(only, "ETH/USDT", {"sharpe_ratio": -1.0})
    assert brain.get_active_model("ETH/USDT").model_id == only


def test_never_back_onto_a_version_rolled_back_for_a_regression(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain)
    first, second = two_versions(versioning)
    assert versioning.check_and_rollback(
        second, SYMBOL, LIVE_CRASH, as_of="2024-03-25T00:00", candidates={first: LIVE_GOOD}
    )
    # v1 regresses as well, a week later: v2 was rolled back for a regression, so the symbol
    # stands aside instead of going back to it.
    assert versioning.check_and_rollback(first, SYMBOL, LIVE_CRASH, as_of="2024-04-02T00:00")
    assert brain.get_active_model(SYMBOL) is None
    assert brain.get_best_model(SYMBOL) is None
    with pytest.raises(ValueError, match="no earlier version"):
        versioning.rollback(SYMBOL)


@pytest.mark.slow
def test_the_retrain_assets_apply_the_floor_and_the_paired_test(
    brain_dsn: str, tmp_path: Path
) -> None:
    frame = signal_market(2400, momentum=0.3, seed=5)
    market = MarketDataResource(source="files", folder=str(tmp_path))
    retrain = RetrainResource(model_types=["ridge", "random_forest"], fee_bps=5.0)
    policy = DecisionResource()
    with dg.instance_for_test() as instance:
        for bars in (2000, 2168):  # a first day, then a week of new bars
            write_bars(tmp_path, frame.head(bars))
            result = run_assets(
                instance, brain_dsn, [SYMBOL], market=market, retrain=retrain, decisions=policy
            )
            assert result.success
    with BrainLibrary(brain_dsn) as brain:
        models = brain.list_models(SYMBOL)
        history = brain.get_activation_history(SYMBOL)
        active = brain.get_active_model(SYMBOL)
    assert len(models) == 4
    # Every version was judged by the floor on its stored out-of-sample figures, and the
    # verdict kept; day two's versions count day one's tries too.
    for model in models.to_dict("records"):
        assert model["credible"] == floor_verdict(model["metrics"], DecisionPolicy()).passed
        tries = 2.0 if model["version"] <= 2 else 4.0
        assert SHARPE_SE in model["metrics"] and model["metrics"][SELECTION_TRIALS] == tries
    assert active is not None and active.credible is True
    # Day two's versions were compared with the champion on the bars it never trained on.
    day_two = history[history["version"] > 2]
    assert len(day_two) >= 2
    for details in day_two["details"]:
        if details.get("floor", {}).get("passed"):
            assert details["common_bars"] >= 48 and 0.0 <= details["p_value"] <= 1.0


CONCURRENT_RUN = """
import sys
import dagster as dg
from brain_assets.defs.resources import DecisionResource, MarketDataResource, RetrainResource
from brain_assets_tests.dagster_helpers import run_assets
dsn, folder, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
result = run_assets(
    dg.DagsterInstance.ephemeral(), dsn, ["BTC/USDT"],
    market=MarketDataResource(source="files", folder=folder),
    retrain=RetrainResource(model_types=["ridge", "random_forest"], fee_bps=5.0, seed=seed),
    decisions=DecisionResource(floor_min_composite=None, floor_confidence=None),
)
sys.exit(0 if result.success else 1)
"""


@pytest.mark.slow
def test_two_concurrent_retrains_of_one_symbol_keep_their_own_values(
    brain_dsn: str, tmp_path: Path
) -> None:
    """Two runs of one symbol at once (different seeds: different forests): each version's
    stored metrics are those of its own artifact, and one version is active."""
    import subprocess
    import sys

    frame = signal_market(1500, momentum=0.3, seed=9)
    write_bars(tmp_path, frame)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_RUN, brain_dsn, str(tmp_path), str(seed)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for seed in (1, 2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err.decode()[-2000:]
    table = make_dataset(frame, 1)
    ppy = periods_per_year(table.index)
    # Each run's walk-forward evaluation, recomputed for its seed: every stored version must be
    # its own run's, not the other's (the forests of the two seeds differ).
    scores: dict[tuple[str, int], float | None] = {}
    for seed in (1, 2):
        settings = RetrainSettings(model_types=("ridge", "random_forest"), fee_bps=5.0, seed=seed)
        artifacts = train_symbol(SYMBOL, table, settings)
        for e in evaluate_symbol(SYMBOL, table, artifacts, settings, ppy):
            scores[(e.model_type, seed)] = e.metrics["composite_score"]
    assert scores[("random_forest", 1)] != scores[("random_forest", 2)]
    with BrainLibrary(brain_dsn) as brain:
        models = brain.list_models(SYMBOL)
        # The seed is part of each version's fingerprint: both runs registered both types.
        assert sorted(models["model_type"]) == ["random_forest"] * 2 + ["ridge"] * 2
        assert models["run_id"].nunique() == 2
        assert int(models["is_active"].sum()) == 1
        forests = models[models["model_type"] == "random_forest"]
        matched = sorted(
            seed
            for score in forests["composite_score"]
            for seed in (1, 2)
            if score == pytest.approx(scores[("random_forest", seed)])
        )
        assert matched == [1, 2]
        for model in models.to_dict("records"):
            run_seeds = [
                seed
                for seed in (1, 2)
                if model["composite_score"] == pytest.approx(scores[(model["model_type"], seed)])
            ]
            assert run_seeds, model


def test_the_lifecycle_checks_judge_age_and_regression() -> None:
    from brain_assets.defs.retrain.checks import BY_NAME
    from brain_assets.pipeline.settings import RetrainSettings as Settings

    fresh, regressed = BY_NAME["active_model_fresh"], BY_NAME["active_not_regressed"]
    assert fresh.evaluate is not None and regressed.evaluate is not None
    settings = Settings()
    entry = {"active_model_id": "m", "latest_bar": "2024-06-30T00:00:00+00:00"}
    assert fresh.evaluate(
        {**entry, "active_data_end": "2024-06-20T00:00:00+00:00"}, settings
    ).passed
    old = fresh.evaluate({**entry, "active_data_end": "2024-05-01T00:00:00+00:00"}, settings)
    assert not old.passed and old.severity == "WARN" and "60 days" in old.message
    assert fresh.evaluate({"active_model_id": None}, settings).passed  # standing aside
    verdict = {"model_id": "m", "assessment": {"regressed": True, "rule": "p=0.01"}}
    outcome = regressed.evaluate(verdict, settings)
    assert not outcome.passed and outcome.message == "p=0.01"
    assert regressed.evaluate({"model_id": None}, settings).passed
