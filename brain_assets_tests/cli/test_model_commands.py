"""brain models/select/promote/export, and brain retrain + monitor as a subprocess."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from brain_assets.cli.main import main
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.training.serialization import deserialize_model, serialize_model

SYMBOL = "ETH/USDT"
FEATURES = ["ret_1", "rsi_14", "vol_24"]


def _ridge(alpha: float) -> bytes:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    model = Ridge(alpha=alpha).fit(X, X[:, 0] + rng.normal(scale=0.1, size=40))
    data, fmt = serialize_model(model)
    assert fmt == "skops"
    return data


@pytest.fixture
def versions(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    first = versioning.register_version(
        SYMBOL,
        "ridge",
        _ridge(1.0),
        metrics={"composite_score": 0.3, "sharpe_ratio": 1.2},
        artifact_format="skops",
        feature_names=FEATURES,
        horizon=1,
        training_start="2024-01-01",
        training_end="2024-02-01",
        data_start="2024-01-01",
        data_end="2024-02-15",
    )
    second = versioning.register_version(
        SYMBOL,
        "ridge",
        _ridge(5.0),
        metrics={"composite_score": 0.1, "sharpe_ratio": 0.4},
        artifact_format="skops",
        feature_names=FEATURES,
        horizon=1,
    )
    return {"first": first, "second": second}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_models_select_promote(
    versions: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    listed = run_json(capsys, "models", SYMBOL)
    rows = listed["versions"]
    assert [r["version"] for r in rows] == [2, 1]  # newest first
    assert [r["is_active"] for r in rows] == [False, True]  # the lower score stays a challenger
    assert listed["trading_status"]["stand_aside"] is False
    assert main(["models", SYMBOL]) == 0
    out = capsys.readouterr().out
    assert versions["second"] in out and f"{SYMBOL}: trading: ridge v1 is active" in out

    picked = run_json(capsys, "select", SYMBOL, "--regime", "high")
    assert picked["model_id"] == versions["first"]
    assert picked["stand_aside"] is False
    assert "fell back to the active model" in picked["reason"]
    assert main(["select", SYMBOL, "--regime", "stormy"]) == 2
    assert "not a regime" in capsys.readouterr().err

    promoted = run_json(capsys, "promote", versions["second"], "--reason", "desk override")
    assert promoted["version"] == 2
    assert main(["promote", versions["first"]]) == 0
    assert "floor was not applied" in capsys.readouterr().out
    history = run_json(capsys, "history", SYMBOL)
    assert "desk override" in [r["reason"] for r in history]  # type: ignore[union-attr]

    assert main(["models", "NOPE/USDT"]) == 0
    assert "no model has been registered" in capsys.readouterr().out
    assert main(["select", "NOPE/USDT", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) is None


def test_export_writes_a_loadable_verified_artifact(
    versions: dict[str, str],
    brain: BrainLibrary,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model_id = versions["first"]
    row = brain.get_model(model_id)
    assert row is not None
    result = run_json(capsys, "export", model_id, str(tmp_path))
    target = tmp_path / "ETH-USDT_v1_ridge.skops"
    assert result["path"] == str(target)
    data = target.read_bytes()
    assert hashlib.sha256(data).hexdigest() == row.artifact_sha256
    assert isinstance(deserialize_model(data, "skops"), Ridge)
    sidecar = json.loads((tmp_path / "ETH-USDT_v1_ridge.skops.json").read_text())
    assert sidecar["model_id"] == model_id and sidecar["symbol"] == SYMBOL
    assert sidecar["feature_names"] == FEATURES and sidecar["horizon"] == 1
    assert sidecar["artifact_sha256"] == row.artifact_sha256
    assert sidecar["metrics"]["sharpe_ratio"] == 1.2
    assert sidecar["training_start"].startswith("2024-01-01")
    assert sidecar["data_end"].startswith("2024-02-15")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    # An existing file is kept unless --force.
    assert main(["export", model_id, str(tmp_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    named = tmp_path / "ridge.skops"
    assert main(["export", versions["second"], str(named)]) == 0
    capsys.readouterr()
    assert main(["export", model_id, str(named)]) == 2
    capsys.readouterr()
    assert main(["export", model_id, str(named), "--force"]) == 0
    capsys.readouterr()
    assert hashlib.sha256(named.read_bytes()).hexdigest() == row.artifact_sha256

    # A skops artifact goes to a .skops file; an unknown model is named in one line.
    assert main(["export", model_id, str(tmp_path / "model.keras")]) == 2
    assert ".skops" in capsys.readouterr().err
    assert main(["export", "no-such-model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no-such-model" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_retrain_then_monitor_as_a_subprocess(tmp_path: Path) -> None:
    env = {
        "BRAIN_HOME": str(tmp_path / "home"),
        "BRAIN_LOG_DIR": str(tmp_path / "logs"),
        "BRAIN_MARKET_SOURCE": "synthetic",
        "PATH": "/usr/bin:/bin",
    }

    def brain(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "brain_assets.cli", *argv],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    retrain = brain("retrain", "BTC/USDT", "--json")
    assert retrain.returncode == 0, retrain.stdout + retrain.stderr
    [row] = json.loads(retrain.stdout)
    assert row["symbol"] == "BTC/USDT" and row["success"] is True and row["run_id"]
    assert "feature_importance  1/1 BTC/USDT" in retrain.stderr  # progress, off stdout
    monitor = brain("monitor", "BTC/USDT")
    # Right after the retrain the active model has seen every bar: no verdict, not a failure.
    assert monitor.returncode == 0, monitor.stdout + monitor.stderr
    if row["stand_aside"]:
        assert "nothing to monitor: stand aside" in monitor.stdout
    else:
        assert "BTC/USDT: no verdict yet" in monitor.stdout
        assert "bars after the active model's data window" in monitor.stdout
        assert f"active v{row['active_version']}" in monitor.stdout
    assert "Traceback" not in monitor.stdout + monitor.stderr
