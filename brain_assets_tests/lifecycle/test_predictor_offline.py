"""The engine keeps trading through a Brain outage: the predictor cache, and ``brain export``'s
bundles loaded without a database.

The outage is real: one test runs the Brain on a throwaway embedded server of its own and stops
it mid-session (the session's shared server stays up for the other tests); the others point the
DSN at a closed port.
"""

from __future__ import annotations

import argparse
import json
import logging
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from brain_assets.calendar import periods_per_year
from brain_assets.cli import predict_command
from brain_assets.cli.main import main
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.errors import ArtifactIntegrityError
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.predictor import (
    Predictor,
    StandAside,
    load_predictor,
    load_predictor_from_bundle,
)
from brain_assets.lifecycle.predictor_cache import (
    CACHE_ENV,
    PRUNE_AFTER_S,
    PredictorCache,
    PredictorCacheError,
)
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import build_dataset_table
from brain_assets.pipeline.evaluation import evaluate_symbol
from brain_assets.pipeline.registration import register_symbol
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import TrainedArtifact, train_symbol
from brain_assets.store.embedded import start_embedded
from brain_assets_tests.settings import NO_FLOOR_POLICY as NO_FLOOR

SYMBOL = "BTC/USDT"
SETTINGS = RetrainSettings(model_types=("ridge", "random_forest"))
UNREACHABLE_DSN = "postgresql://trader:s3cr3t-pw@127.0.0.1:1/brain"


@dataclass(frozen=True)
class Trained:
    bars: pd.DataFrame
    artifacts: list[TrainedArtifact]
    metrics: dict[str, Any]
    ppy: float


@pytest.fixture(scope="module")
def trained() -> Trained:
    bars = signal_market(1200, momentum=0.3, seed=3)
    table = build_dataset_table(bars, SETTINGS.horizon).table
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(SYMBOL, table, SETTINGS)
    evaluations = evaluate_symbol(SYMBOL, table, artifacts, SETTINGS, ppy)
    return Trained(bars, artifacts, {e.model_type: e.metrics for e in evaluations}, ppy)


def register(
    brain: BrainLibrary, trained: Trained, policy: DecisionPolicy = NO_FLOOR
) -> dict[str, str]:
    return register_symbol(
        brain, SYMBOL, trained.artifacts, trained.metrics, trained.ppy, policy=policy
    ).model_ids


def offline_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        dict(getattr(r, "fields", {}))
        for r in caplog.records
        if getattr(r, "event", None) == "predictor_offline"
    ]


def same_predictions(first: Predictor, second: Predictor, bars: pd.DataFrame) -> None:
    """Both predictors give the same value and position on several recent bars."""
    for end in (len(bars), len(bars) - 7, len(bars) - 40):
        window = bars.iloc[:end]
        a, b = first.predict(window), second.predict(window)
        assert (a.model_id, a.version, a.bar_time, a.position) == (
            b.model_id,
            b.version,
            b.bar_time,
            b.position,
        )
        assert a.value == b.value


def run_predict(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="brain")
    commands = parser.add_subparsers(dest="command", required=True)
    predict_command.register(commands)
    args = parser.parse_args(list(argv))
    return int(args.handler(args))


@pytest.fixture
def throwaway_brain(tmp_path: Path) -> Iterator[tuple[Any, BrainLibrary]]:
    """A Brain on an embedded server of its own, which the test may stop."""
    server = start_embedded(tmp_path / "pgdata")
    brain = BrainLibrary(server.ensure_database("brain"))
    try:
        yield server, brain
    finally:
        brain.close()
        server.release()


def test_the_engine_keeps_its_model_when_the_server_stops(
    throwaway_brain: tuple[Any, BrainLibrary],
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, brain = throwaway_brain
    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["ridge"])
    cache_dir = tmp_path / "cache"
    live = load_predictor(brain, SYMBOL, cache_dir=cache_dir)
    assert (live.source, live.cached_at, live.model_id) == ("brain", None, ids["ridge"])

    # The decision and the artifact are on disk, readable by this user only.
    cache = PredictorCache(cache_dir)
    entry = cache.entry_path(SYMBOL, None)
    decision = json.loads(entry.read_text())
    assert decision["model"]["model_id"] == ids["ridge"]
    assert decision["stand_aside"] is False and decision["activated_at"]
    artifact = cache.artifact_path(decision["model"]["artifact_sha256"], "skops")
    for path in (entry, artifact):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert not list(cache_dir.rglob("*.tmp"))

    bars = trained.bars.iloc[-400:].reset_index(drop=True)
    before = live.predict(bars)

    server.release()  # the Brain goes away mid-session

    # The predictor in hand never needed the database.
    assert live.predict(bars) == before

    # Loading again serves the cached decision at once, not after the pool's 30 s wait.
    caplog.set_level(logging.WARNING, logger="brain_assets")
    started = time.monotonic()
    offline = load_predictor(brain, SYMBOL, cache_dir=cache_dir)
    assert time.monotonic() - started < 10
    assert offline.source == "cache"
    assert isinstance(offline.cached_at, datetime)
    assert (offline.model_id, offline.version, offline.rule) == (
        live.model_id,
        live.version,
        live.rule,
    )
    assert offline.bar_seconds == live.bar_seconds and offline.reason == live.reason
    same_predictions(live, offline, bars)
    [event] = offline_events(caplog)
    assert event["symbol"] == SYMBOL and event["model_id"] == ids["ridge"]
    assert event["stand_aside"] is False and 0 <= event["age_s"] < 60
    assert "cannot connect" in event["error"]

    # A process that starts during the outage (no library of its own) gets the same model, and
    # `brain predict` says on stderr that it used the cache.
    dsn = brain.dsn
    monkeypatch.setenv("DATABASE_DSN", dsn)
    monkeypatch.setenv(CACHE_ENV, str(cache_dir))
    assert load_predictor(None, SYMBOL).model_id == ids["ridge"]
    csv = tmp_path / "bars.csv"
    bars.to_csv(csv, index=False)
    capsys.readouterr()
    assert run_predict("predict", SYMBOL, "--file", str(csv), "--json") == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["source"] == "cache" and result["cached_at"]
    assert result["value"] == before.value and result["model_id"] == ids["ridge"]
    [warning] = [line for line in captured.err.splitlines() if "warning" in line]
    assert "the Brain is unreachable" in warning and SYMBOL in warning
    assert f"ridge v{live.version} ({ids['ridge']})" in warning

    # A cached artifact that changed is refused, naming the symbol and the file: nothing loads.
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(PredictorCacheError, match="fails its integrity check") as caught:
        load_predictor(brain, SYMBOL, cache_dir=cache_dir)
    assert SYMBOL in str(caught.value) and str(artifact) in str(caught.value)
    assert isinstance(caught.value.__cause__, ArtifactIntegrityError)

    # A symbol never loaded while the Brain answered has nothing to fall back to.
    with pytest.raises(PredictorCacheError, match="no decision of it is cached") as missing:
        load_predictor(brain, "ETH/USDT", cache_dir=cache_dir)
    assert "ETH/USDT" in str(missing.value) and "unreachable" in str(missing.value)
    with pytest.raises(PredictorCacheError, match="no decision of it is cached"):
        load_predictor(brain, SYMBOL, regime="high", cache_dir=cache_dir)


def test_a_cached_stand_aside_is_honoured_and_follows_the_brain(
    brain: BrainLibrary,
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_dir = tmp_path / "cache"
    ids = register(brain, trained, DecisionPolicy(floor_min_composite=1.0, floor_confidence=None))
    with pytest.raises(StandAside) as live:
        load_predictor(brain, SYMBOL, cache_dir=cache_dir)
    assert live.value.cached_at is None

    monkeypatch.setenv("DATABASE_DSN", UNREACHABLE_DSN)
    caplog.set_level(logging.WARNING, logger="brain_assets")
    with pytest.raises(StandAside) as cached:
        load_predictor(None, SYMBOL, cache_dir=cache_dir)
    assert cached.value.reason == live.value.reason
    assert cached.value.cached_at is not None
    [event] = offline_events(caplog)
    assert event["stand_aside"] is True and event["model_id"] is None
    assert "s3cr3t-pw" not in caplog.text

    # Once the Brain activates a version, the cache holds that decision instead.
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["random_forest"])
    live_forest = load_predictor(brain, SYMBOL, cache_dir=cache_dir)
    offline = load_predictor(None, SYMBOL, cache_dir=cache_dir)
    assert (offline.source, offline.model_id) == ("cache", ids["random_forest"])
    same_predictions(live_forest, offline, trained.bars.iloc[-300:])

    # A regime's pick is cached apart from the active version.
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["ridge"])
    assert load_predictor(brain, SYMBOL, regime="low", cache_dir=cache_dir).model_id == ids["ridge"]
    assert load_predictor(None, SYMBOL, cache_dir=cache_dir).model_id == ids["random_forest"]
    assert load_predictor(None, SYMBOL, regime="low", cache_dir=cache_dir).model_id == ids["ridge"]

    # The forest's artifact is still named by a decision; once the active decision moves on,
    # it goes after the grace period, never before.
    load_predictor(brain, SYMBOL, cache_dir=cache_dir)
    cache = PredictorCache(cache_dir)
    assert len(list(cache.artifacts.iterdir())) == 2
    assert cache.prune() == []
    [pruned] = cache.prune(now=time.time() + PRUNE_AFTER_S + 1)
    forest = brain.get_model(ids["random_forest"])
    assert forest is not None and pruned.name.startswith(forest.artifact_sha256)
    assert load_predictor(None, SYMBOL, cache_dir=cache_dir).model_id == ids["ridge"]


def test_a_cache_that_cannot_be_written_does_not_fail_the_load(
    brain: BrainLibrary,
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register(brain, trained)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    caplog.set_level(logging.WARNING, logger="brain_assets")
    assert load_predictor(brain, SYMBOL, cache_dir=blocked).source == "brain"
    [failed] = [r for r in caplog.records if getattr(r, "event", None) == "predictor_cache_failed"]
    assert failed.fields["symbol"] == SYMBOL  # type: ignore[attr-defined]

    # By default the cache lives under BRAIN_HOME.
    home = tmp_path / "home"
    monkeypatch.setenv("BRAIN_HOME", str(home))
    load_predictor(brain, SYMBOL)
    assert PredictorCache(home / "predictor-cache").entry_path(SYMBOL, None).exists()

    # Turned off: nothing is written, and an outage is a clear error.
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setenv("BRAIN_HOME", str(tmp_path / "other-home"))
    load_predictor(brain, SYMBOL)
    assert not (tmp_path / "other-home").exists()
    monkeypatch.setenv("DATABASE_DSN", UNREACHABLE_DSN)
    with pytest.raises(PredictorCacheError, match="cache is off") as off:
        load_predictor(None, SYMBOL)
    assert SYMBOL in str(off.value) and "s3cr3t-pw" not in str(off.value)


def test_an_exported_bundle_predicts_like_the_live_predictor(
    brain: BrainLibrary,
    brain_dsn: str,
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = register(brain, trained)
    ModelVersioning(brain, policy=NO_FLOOR).promote(ids["random_forest"])
    live = load_predictor(brain, SYMBOL, cache_dir=tmp_path / "cache")
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    assert main(["export", ids["random_forest"], str(tmp_path), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    path = Path(exported["path"])
    sidecar = json.loads(Path(exported["sidecar"]).read_text())
    assert sidecar["bundle_format"] == 1 and sidecar["exported_at"]

    bundle = load_predictor_from_bundle(path)
    assert (bundle.source, bundle.model_id, bundle.rule) == ("bundle", live.model_id, live.rule)
    assert isinstance(bundle.cached_at, datetime)
    assert bundle.bar_seconds == live.bar_seconds and bundle.horizon == live.horizon
    same_predictions(live, bundle, trained.bars.iloc[-300:])
    # The sidecar names the same bundle.
    assert load_predictor_from_bundle(exported["sidecar"]).model_id == live.model_id

    # A changed artifact, or a sidecar missing what a prediction needs, is refused by name.
    changed = tmp_path / "changed.skops"
    changed.write_bytes(path.read_bytes() + b"\x00")
    Path(f"{changed}.json").write_text(json.dumps(sidecar))
    with pytest.raises(ArtifactIntegrityError, match=r"changed\.skops"):
        load_predictor_from_bundle(changed)
    partial = tmp_path / "partial.skops"
    partial.write_bytes(path.read_bytes())
    Path(f"{partial}.json").write_text(
        json.dumps({k: v for k, v in sidecar.items() if k != "feature_names"})
    )
    with pytest.raises(ValueError, match=r"partial\.skops\.json: field 'feature_names'"):
        load_predictor_from_bundle(partial)
    with pytest.raises(ValueError, match="no metadata sidecar"):
        load_predictor_from_bundle(tmp_path / "missing.skops")
