"""The `brain` command as operators use it (in process through main(), or as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from brain_assets.cli.main import main
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ModelVersioning

SYMBOL = "BTC/USDT"


@pytest.fixture
def seeded(brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    # The platform's original rules: these bare metrics carry no standard error to judge by.
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    first = versioning.register_version(
        SYMBOL,
        "ridge",
        b"a",
        metrics={"composite_score": 0.2, "sharpe_ratio": 1.0},
        training_start="2024-01-01",
        training_end="2024-02-01",
    )
    second = versioning.register_version(
        SYMBOL, "random_forest", b"b", metrics={"composite_score": 0.4, "sharpe_ratio": 1.5}
    )
    brain.store_model_metrics(
        second, SYMBOL, {"composite_score": -0.1, "n_bars": 80.0}, regime="high"
    )
    brain.store_feature_importances(
        SYMBOL, second, {"shap": {"ret_1": 0.5, "rsi_14": 0.2}, "correlation": {"ret_1": -0.3}}
    )
    brain.log_data_quality(SYMBOL, "ohlcv_valid", "ERROR", False, 3)
    return {"first": first, "second": second}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_query_commands(seeded: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    top = run_json(capsys, "top-features", SYMBOL, "-n", "1")
    assert [(r["feature"], r["method"]) for r in top] == [("ret_1", "shap")]  # type: ignore[union-attr]
    corr = run_json(capsys, "top-features", SYMBOL, "--method", "correlation")
    assert corr[0]["importance"] == -0.3
    best = run_json(capsys, "best-model", SYMBOL)
    assert best["best"]["model_id"] == seeded["second"]
    assert best["active"]["model_id"] == seeded["second"]
    metrics = run_json(capsys, "metrics", seeded["second"])
    assert metrics["metrics"]["composite_score"] == 0.4
    assert metrics["by_regime"]["high"]["composite_score"] == -0.1
    history = run_json(capsys, "history", SYMBOL)
    assert [r["action"] for r in history] == ["activated", "deactivated", "activated"]  # type: ignore[union-attr]
    quality = run_json(capsys, "quality-summary", "--since", "1d")
    assert [(r["check_name"], r["failed"]) for r in quality] == [("ohlcv_valid", 1)]  # type: ignore[union-attr]
    # The same commands for people print tables.
    assert main(["top-features", SYMBOL]) == 0
    assert "ret_1" in capsys.readouterr().out
    assert main(["best-model", "NOPE/USDT"]) == 0
    assert "no model has been registered" in capsys.readouterr().out


def test_rollback_command(seeded: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "rollback", SYMBOL)
    assert result["model_id"] == seeded["first"]
    result = run_json(capsys, "rollback", SYMBOL, "--to", "2")
    assert result["model_id"] == seeded["second"]
    assert main(["rollback", SYMBOL, "--to", "7"]) == 2
    assert "no version 7" in capsys.readouterr().err


def test_bad_input_is_one_clear_line(
    seeded: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["metrics", "no-such-model"]) == 2
    assert "unknown model_id" in capsys.readouterr().err
    assert main(["quality-summary", "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
    # A duration past year 1 is a bad argument too, not a traceback.
    assert main(["quality-summary", "--since", "999999999d"]) == 2
    err = capsys.readouterr().err
    assert "--since '999999999d'" in err and "Traceback" not in err


def test_a_database_that_does_not_answer_is_a_failure_not_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_DSN", "postgresql://brain:secret@127.0.0.1:1/brain")
    assert main(["top-features", SYMBOL]) == 1
    err = capsys.readouterr().err
    assert "\nbrain top-features: cannot connect" in "\n" + err and "secret" not in err


def test_maintenance_backup_restore(
    seeded: dict[str, str],
    empty_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moved = run_json(capsys, "maintenance", "--retention-days", "30")
    assert moved["archived_now"] == {
        "model_metrics": 0,
        "feature_importance": 0,
        "data_quality_logs": 0,
        "input_drift": 0,
        "asset_values_pruned": 0,
        "alert_outbox_pruned": 0,
    }
    dump = tmp_path / "brain.dump"
    info = run_json(capsys, "backup", str(dump))
    assert dump.stat().st_size == info["bytes"] > 0
    monkeypatch.setenv("DATABASE_DSN", empty_dsn)
    restored = run_json(capsys, "restore", str(dump))
    assert restored["row_counts"]["model_registry"] == 2
    assert main(["restore", str(dump)]) == 2  # the target holds data now: --force decides
    assert "refus" in capsys.readouterr().err.lower()
    with BrainLibrary(empty_dsn) as copy:
        assert copy.load_model_artifact(seeded["second"]) == b"b"


@pytest.mark.slow
def test_verify_passes_and_fails_fast(
    seeded: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = run_json(capsys, "verify")
    assert report["ok"] is True
    assert {c["check"] for c in report["checks"]} >= {
        "imports",
        "database connection",
        "schema version",
        "LSTM availability",
    }
    monkeypatch.setenv("DATABASE_DSN", "postgresql://ops:hunter2@127.0.0.1:1/huracan")
    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "❌ database connection" in out and "port=1" in out
    assert "✅ evaluation service" in out  # what needs no store keeps working
    assert "hunter2" not in out


@pytest.mark.slow
def test_symbols_and_psql_as_a_subprocess(tmp_path: Path) -> None:
    env = {
        "BRAIN_HOME": str(tmp_path / "home"),
        "BRAIN_LOG_DIR": str(tmp_path / "logs"),
        "PATH": "/usr/bin:/bin",
    }
    brain = [sys.executable, "-m", "brain_assets.cli"]

    def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*brain, *argv], env=env, capture_output=True, text=True, input=stdin, timeout=120
        )

    assert run("symbols", "add", "BTC/USDT", "ETH/USDT").returncode == 0
    listed = run("symbols", "list", "--json")
    assert json.loads(listed.stdout) == ["BTC/USDT", "ETH/USDT"]
    bad = run("symbols", "add", "BAD...X")
    assert bad.returncode == 2 and "partition syntax" in bad.stderr
    assert run("symbols", "remove", "ETH/USDT").returncode == 0
    assert json.loads(run("symbols", "list", "--json").stdout) == ["BTC/USDT"]
    psql = run("psql", stdin="SELECT 40 + 2 AS answer;\n")
    assert psql.returncode == 0, psql.stderr
    assert "42" in psql.stdout
    assert run("best-model", "BTC/USDT").returncode == 0
    lines = (tmp_path / "logs" / "brain.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert "brain_library_initialized" in events


@pytest.mark.slow
def test_demo_as_a_subprocess(tmp_path: Path) -> None:
    # BNB/USDT's synthetic market carries a real edge (market_data.synthetic.EDGE_MARKETS): a
    # version passes the activation floor, so the summary has its numbers and top features.
    # No BRAIN_LOG_DIR: the default ./logs, as after `make demo` on a fresh clone.
    env = {"BRAIN_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "brain_assets.cli", "demo", "--symbols", "BNB/USDT"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BNB/USDT: its synthetic market carries a real edge" in done.stdout
    assert "BNB/USDT: active v1" in done.stdout and "(holding" in done.stdout
    assert "top 5 features" in done.stdout
    assert "quality: every check passed" in done.stdout
    assert "brain dev" in done.stdout
    assert "feature_importance  1/1 BNB/USDT" in done.stdout
    # Every process writes the same JSON log, the run workers' events included.
    records = [
        json.loads(line) for line in (tmp_path / "logs" / "brain.log").read_text().splitlines()
    ]
    events = [r["event"] for r in records]
    registered = [r for r in records if r["event"] == "model_version_registered"]
    versions = {r["fields"]["model_id"] for r in registered}
    assert len(registered) == len(versions) >= 3
    assert {r["fields"]["symbol"] for r in registered} == {"BNB/USDT"}
    assert events.count("model_promoted") >= 1
    assert events.count("feature_importance_analyzed") >= 1
    assert "brain_library_initialized" in events and "retrain_progress" in events
