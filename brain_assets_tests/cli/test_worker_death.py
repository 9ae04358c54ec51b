"""A run worker killed mid-step (kill -9, the OOM killer): `brain retrain` names the symbol,
tries its run again in a fresh worker, and the retry registers nothing twice.

The workers run the real ``_demo_retrain`` on cheap settings; a fault injected in the worker
(through the task the test hands the pool) kills it with SIGKILL inside a step of its run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from brain_assets.cli import run_commands
from brain_assets.cli.main import main
from brain_assets.cli.worker_pool import MAX_RETRIES_TAG, RETRY_OF_TAG, TRY_TAG, WILL_RETRY_TAG
from brain_assets.defs.resources import RetrainResource
from brain_assets.library import BrainLibrary
from brain_assets_tests.conftest import count_rows

pytestmark = pytest.mark.slow

DEATHS_ENV = "BRAIN_TEST_WORKER_DEATHS"
"""Test only: ``{"folder": ..., "plan": {symbol: [function of retrain.assets, times]}}``."""
FAST = RetrainResource(
    min_rows=500,
    importance_sample=200,
    include_lstm=False,
    model_types=["ridge", "hist_gradient_boosting"],
)


def _cheap_definitions(dsn: str) -> dg.Definitions:
    from brain_assets.defs.jobs import daily_retrain
    from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
    from brain_assets_tests.dagster_helpers import resources

    return dg.Definitions(
        assets=DAILY_RETRAIN_ASSETS, jobs=[daily_retrain], resources=resources(dsn, retrain=FAST)
    )


def retrain_with_faults(
    symbol: str, run_id: str | None = None, tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """The pool's task, in the worker: the real ``_demo_retrain`` on small bars and two cheap
    models, whose ``function`` kills this worker (SIGKILL) the first ``times`` times it is
    called for ``symbol`` (one marker file per death, shared by all workers)."""
    import brain_assets.definitions as definitions
    from brain_assets.cli import retrain_commands
    from brain_assets.defs.retrain import assets

    setup = json.loads(os.environ[DEATHS_ENV])
    folder = Path(setup["folder"])
    definitions.defs = _cheap_definitions(os.environ["DATABASE_DSN"])
    if symbol not in setup["plan"]:
        return retrain_commands._demo_retrain(symbol, run_id, tags)
    function, times = setup["plan"][symbol]
    original = getattr(assets, function)
    stem = symbol.replace("/", "-")

    def dying(*args: Any, **kwargs: Any) -> Any:
        deaths = len(list(folder.glob(f"{stem}.*")))
        if deaths < times:
            (folder / f"{stem}.{deaths + 1}").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(assets, function, dying)
    try:
        return retrain_commands._demo_retrain(symbol, run_id, tags)
    finally:
        setattr(assets, function, original)


@pytest.fixture
def brain_env(brain_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`brain retrain` on the test database, its workers running ``retrain_with_faults``."""
    monkeypatch.setenv("DATABASE_DSN", brain_dsn)
    monkeypatch.setenv("BRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BRAIN_LOG_DIR", str(tmp_path / "logs"))
    # Set here so that the test undoes what `brain retrain` writes into the environment.
    for name in ("DAGSTER_HOME", "DAGSTER_PG_URL", "BRAIN_MAX_CONCURRENT_RUNS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(run_commands, "_demo_retrain", retrain_with_faults)
    deaths = tmp_path / "deaths"
    deaths.mkdir()
    return deaths


def plan_deaths(monkeypatch: pytest.MonkeyPatch, folder: Path, plan: dict[str, Any]) -> None:
    monkeypatch.setenv(DEATHS_ENV, json.dumps({"folder": str(folder), "plan": plan}))


def events(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    lines = (tmp_path / "logs" / "brain.log").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record.get("event") == name]


def test_a_worker_killed_after_registering_is_retried_and_registers_nothing_twice(
    brain_env: Path,
    brain_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # registry_markdown runs inside registry_entries after the versions were registered: the
    # worker dies with its registration committed and its step unfinished.
    plan_deaths(monkeypatch, brain_env, {"BTC/USDT": ["registry_markdown", 1]})
    code = main(["retrain", "BTC/USDT", "ETH/USDT", "--workers", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    assert "BTC/USDT's run" in err and "died (killed by SIGKILL)" in err
    assert "try 2 of 3" in err
    assert "ETH/USDT's run" not in err
    rows = {row["symbol"]: row for row in json.loads(out)}
    assert rows["BTC/USDT"]["success"] and rows["BTC/USDT"]["tries"] == 2
    # The other symbol's run went on undisturbed in its own worker.
    assert rows["ETH/USDT"]["success"] and rows["ETH/USDT"]["tries"] == 1

    with dg.DagsterInstance.get() as instance:
        retry = instance.get_run_by_id(rows["BTC/USDT"]["run_id"])
        assert retry is not None and retry.tags[TRY_TAG] == "2"
        dead = instance.get_run_by_id(retry.tags[RETRY_OF_TAG])
        # Not left STARTED (holding its partition's slot in the daemon's queue), and not for
        # the daemon to retry a second time.
        assert dead is not None and dead.status == dg.DagsterRunStatus.FAILURE
        assert dead.tags[MAX_RETRIES_TAG] == "0" and dead.tags[WILL_RETRY_TAG] == "false"
    with BrainLibrary(brain_dsn) as brain:
        for symbol in ("BTC/USDT", "ETH/USDT"):
            models = brain.list_models(symbol)
            assert len(models) == 2, models
            assert models["fingerprint"].is_unique
            assert brain.get_active_model(symbol) is not None
        # The versions are the dead run's: the retry found them by fingerprint.
        assert set(brain.list_models("BTC/USDT")["run_id"]) == {dead.run_id}
    assert count_rows(brain_dsn, "model_registry") == 4
    [died] = events(tmp_path, "run_worker_died")
    assert died["fields"]["symbol"] == "BTC/USDT" and died["fields"]["retrying"] is True


def test_a_run_whose_worker_dies_every_time_fails_after_the_daemons_retries(
    brain_env: Path,
    brain_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan_deaths(monkeypatch, brain_env, {"ETH/USDT": ["train_symbol_models", 99]})
    code = main(["retrain", "ETH/USDT", "--workers", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "Traceback" not in err
    # dagster.yaml's run_retries.max_retries (2) retries after the first try.
    assert "ETH/USDT failed after 3 tries" in err
    assert len(list(brain_env.iterdir())) == 3
    [row] = json.loads(out)
    assert row["success"] is False and row["tries"] == 3
    assert "killed by SIGKILL" in row["failures"][0]
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="daily_retrain"))
    assert len(runs) == 3
    assert {run.status for run in runs} == {dg.DagsterRunStatus.FAILURE}
    assert sorted(run.tags[TRY_TAG] for run in runs) == ["1", "2", "3"]
    assert count_rows(brain_dsn, "model_registry") == 0
    died = events(tmp_path, "run_worker_died")
    assert [record["fields"]["retrying"] for record in died] == [True, True, False]


def test_brain_demo_retries_a_dead_worker_too(
    brain_env: Path,
    brain_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from brain_assets.cli import retrain_commands

    monkeypatch.setattr(retrain_commands, "_demo_retrain", retrain_with_faults)
    plan_deaths(monkeypatch, brain_env, {"BTC/USDT": ["train_symbol_models", 1]})
    code = main(["demo", "--symbols", "BTC/USDT", "--workers", "1"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "brain demo: the worker running BTC/USDT's run" in err and "try 2 of 3" in err
    assert "BTC/USDT succeeded after 2 tries" in out
    assert count_rows(brain_dsn, "model_registry") == 2


def _quiet_start() -> None:
    """A worker initialiser that does nothing."""


def _die_at_start() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _refuse(symbol: str, run_id: str, tags: dict[str, str]) -> dict[str, Any]:
    raise ValueError(f"no bars for {symbol}")


def test_an_error_the_run_raises_reaches_the_command_and_no_worker_is_left() -> None:
    import multiprocessing

    run_a_refused_symbol()
    assert multiprocessing.active_children() == []


def run_a_refused_symbol() -> None:
    """One run whose task raises: the error reaches the command and the pool stops."""
    from brain_assets.cli.worker_pool import run_per_symbol

    with pytest.raises(ValueError, match="no bars for BTC/USDT"):
        run_per_symbol(
            ["BTC/USDT"],
            _refuse,
            workers=1,
            initializer=_quiet_start,
            initargs=(),
            command="retrain",
            max_tries=3,
        )


def test_workers_that_die_while_starting_end_the_command_with_a_clear_error() -> None:
    from brain_assets.cli.worker_pool import WorkerStartError, run_per_symbol

    with pytest.raises(WorkerStartError, match=r"died while starting \(2 times, last killed by"):
        run_per_symbol(
            ["BTC/USDT"],
            _refuse,
            workers=1,
            initializer=_die_at_start,
            initargs=(),
            command="retrain",
            max_tries=2,
        )


def _refuse_soon_or_wait(symbol: str, run_id: str, tags: dict[str, str]) -> dict[str, Any]:
    if symbol == "BTC/USDT":
        time.sleep(1.0)  # ETH/USDT's run is under way by then
        raise ValueError(f"no bars for {symbol}")
    time.sleep(120)
    return {"symbol": symbol, "run_id": run_id, "success": True, "failures": []}


def test_runs_still_in_flight_when_the_command_stops_are_marked_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brain_assets.cli import worker_pool

    failed: list[tuple[str, str]] = []
    monkeypatch.setattr(
        worker_pool, "fail_abandoned_run", lambda run_id, message: failed.append((run_id, message))
    )
    with pytest.raises(ValueError, match="no bars for BTC/USDT"):
        worker_pool.run_per_symbol(
            ["BTC/USDT", "ETH/USDT"],
            _refuse_soon_or_wait,
            workers=2,
            initializer=_quiet_start,
            initargs=(),
            command="retrain",
            max_tries=3,
        )
    # The other symbol's run was stopped with the command: left STARTED, it would hold its
    # partition slot in the daemon's queue.
    assert len(failed) == 1 and "ETH/USDT's run was running" in failed[0][1]


def test_workers_of_a_command_that_ignores_sigterm_still_stop() -> None:
    # Under nohup, or in a script's background, the command ignores SIGTERM and so would the
    # spawned workers it stops with one.
    import multiprocessing

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    started = time.monotonic()
    try:
        run_a_refused_symbol()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert multiprocessing.active_children() == []
    assert time.monotonic() - started < 8.0  # ended by SIGTERM, not by the kill after the grace
