"""The run workers of `brain retrain` and `brain demo`: forked from a warm forkserver, each
replaced by a fresh one after its share of runs, and each given the command's environment and
folder of now (the forkserver keeps those it started with)."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from brain_assets.cli.worker_pool import run_per_symbol
from brain_assets.forkserver import PRELOAD

MARK_ENV = "BRAIN_TEST_POOL_MARK"


def _quiet_start() -> None:
    """A worker initialiser that does nothing."""


def _who(symbol: str, run_id: str, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "run_id": run_id,
        "success": True,
        "failures": [],
        "pid": os.getpid(),
        "mark": os.environ.get(MARK_ENV),
        "cwd": os.getcwd(),
        "preloaded": [name for name in PRELOAD if name in sys.modules],
    }


def _pool(symbols: list[str], runs_per_worker: int, workers: int = 1) -> list[dict[str, Any]]:
    return run_per_symbol(
        symbols,
        _who,
        workers=workers,
        initializer=_quiet_start,
        initargs=(),
        command="retrain",
        max_tries=1,
        runs_per_worker=runs_per_worker,
    )


def test_a_worker_is_replaced_after_its_share_of_runs() -> None:
    symbols = [f"S{n}/USDT" for n in range(5)]
    results = _pool(symbols, runs_per_worker=2)
    assert [result["symbol"] for result in results] == symbols
    runs_per_pid = Counter(result["pid"] for result in results)
    assert sorted(runs_per_pid.values()) == [1, 2, 2]
    assert os.getpid() not in runs_per_pid


def test_workers_come_warm_from_the_forkserver() -> None:
    [result] = _pool(["BTC/USDT"], runs_per_worker=1)
    # Imported by the forkserver before the fork, not by the worker: the task imports nothing.
    assert result["preloaded"] == list(PRELOAD)


def test_each_command_gives_its_workers_its_own_environment_and_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The forkserver outlives a command within one process (a test session, a notebook); the
    # second command's workers must still see the second command's settings.
    seen = []
    for mark in ("first", "second"):
        folder = tmp_path / mark
        folder.mkdir()
        monkeypatch.setenv(MARK_ENV, mark)
        monkeypatch.chdir(folder)
        [result] = _pool(["BTC/USDT"], runs_per_worker=1)
        seen.append((result["mark"], Path(result["cwd"]).name))
    assert seen == [("first", "first"), ("second", "second")]


def test_two_workers_share_the_runs() -> None:
    symbols = [f"S{n}/USDT" for n in range(6)]
    results = _pool(symbols, runs_per_worker=3, workers=2)
    assert [result["symbol"] for result in results] == symbols
    assert all(count <= 3 for count in Counter(r["pid"] for r in results).values())


STARTS_WITH_A_LOG = """
import sys
from brain_assets.forkserver import start_forkserver
start_forkserver(stderr_to=sys.argv[1])
sys.stderr.write("the command's own line\\n")
from brain_assets_tests.cli.test_worker_pool import _pool
[result] = _pool(["BTC/USDT"], runs_per_worker=1)
print(result["preloaded"])
"""


def test_what_the_forkserver_imports_writes_to_the_native_log(tmp_path: Path) -> None:
    # TensorFlow announces itself on stderr when imported; a command's terminal shows only its
    # own lines, as when each worker imported it after sending its stderr to the native log.
    import subprocess

    from brain_assets.lstm.network import lstm_extra_missing

    log = tmp_path / "native-stderr.log"
    done = subprocess.run(
        [sys.executable, "-c", STARTS_WITH_A_LOG, str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "the command's own line\n"
    assert "brain_assets.pipeline.training" in done.stdout
    if lstm_extra_missing() is None:
        assert "tensorflow" in log.read_text().lower() or "oneDNN" in log.read_text()


def _speak(symbol: str, run_id: str, tags: dict[str, str]) -> dict[str, Any]:
    print(f"out {symbol}", flush=True)
    print(f"err {symbol}", file=sys.stderr, flush=True)
    return {"symbol": symbol, "run_id": run_id, "success": True, "failures": []}


SPEAKS = """
from brain_assets.cli.worker_pool import run_per_symbol
from brain_assets_tests.cli.test_worker_pool import _quiet_start, _speak
run_per_symbol(["BTC/USDT", "ETH/USDT"], _speak, workers=2, initializer=_quiet_start,
               initargs=(), command="retrain", max_tries=1)
"""


def test_workers_write_to_the_commands_own_stdout_and_stderr() -> None:
    # Forked by the forkserver, a worker would write where the forkserver does; it is handed
    # the command's own descriptors instead, as a spawned worker inherits them.
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", SPEAKS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["out BTC/USDT", "out ETH/USDT"]
    assert {"err BTC/USDT", "err ETH/USDT"} <= set(done.stderr.splitlines())


def test_a_worker_must_take_at_least_one_run() -> None:
    with pytest.raises(ValueError, match="runs_per_worker must be a whole number >= 1, got 0"):
        _pool(["BTC/USDT"], runs_per_worker=0)
