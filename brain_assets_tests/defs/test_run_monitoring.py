"""Run monitoring with the project's launcher: a run whose worker process died is failed within
one monitoring pass (freeing its slots) and marked for automatic re-execution, under the
run_launcher, run_monitoring and run_retries sections of the root dagster.yaml."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.events import EngineEventData
from dagster._core.execution.retries import auto_reexecution_should_retry_run
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from brain_assets.defs.run_launcher import (
    RUN_WORKER_ENV,
    WatchedRunLauncher,
    run_worker_mode,
    worker_status,
)
from brain_assets_tests.paths import REPO

ROOT_CONFIG = REPO / "dagster.yaml"
SECTIONS = ("run_launcher", "run_monitoring", "run_retries")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    config = yaml.safe_load(ROOT_CONFIG.read_text(encoding="utf-8"))
    with dg.instance_for_test(overrides={key: config[key] for key in SECTIONS}) as test_instance:
        yield test_instance


def started_run(instance: dg.DagsterInstance, pid: int) -> DagsterRun:
    run = instance.add_run(
        DagsterRun(
            job_name="daily_retrain", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
        )
    )
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    return run


def run_record(instance: dg.DagsterInstance, run_id: str) -> Any:
    [record] = instance.get_run_records(filters=RunsFilter(run_ids=[run_id]))
    return record


def test_the_root_config_installs_the_watched_launcher(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, WatchedRunLauncher)
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert not instance.run_retries_retry_on_asset_or_op_failure


def test_a_dead_worker_fails_its_run_which_is_then_retried(instance: dg.DagsterInstance) -> None:
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run = started_run(instance, worker.pid)
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.RUNNING, health.msg
        monitor_started_run(instance, None, run_record(instance, run.run_id), logging.getLogger())  # type: ignore[arg-type]
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED  # type: ignore[union-attr]
    finally:
        worker.kill()
        worker.wait()

    health = instance.run_launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and str(worker.pid) in health.msg
    monitor_started_run(instance, None, run_record(instance, run.run_id), logging.getLogger())  # type: ignore[arg-type]
    failed = instance.get_run_by_id(run.run_id)
    assert failed is not None and failed.status == DagsterRunStatus.FAILURE
    # A crashed worker is not a step failure: the re-execution daemon takes it.
    assert auto_reexecution_should_retry_run(instance, failed, None)


def test_a_run_without_a_recorded_pid_is_left_to_the_runtime_limit(
    instance: dg.DagsterInstance,
) -> None:
    run = instance.add_run(
        DagsterRun(
            job_name="daily_retrain", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
        )
    )
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING


def test_a_reused_pid_is_not_taken_for_the_worker() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # The event that named this pid is older than the process that now has it.
        status, message = worker_status(other.pid, time.time() - 600)
        assert status == WorkerStatus.FAILED and "reused" in message
        assert worker_status(other.pid, time.time())[0] == WorkerStatus.RUNNING
    finally:
        other.kill()
        other.wait()


def test_the_run_worker_mode_is_warm_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RUN_WORKER_ENV, raising=False)
    assert run_worker_mode() == "warm"
    monkeypatch.setenv(RUN_WORKER_ENV, "fork")
    assert run_worker_mode() == "fork"
    monkeypatch.setenv(RUN_WORKER_ENV, " Spawn ")
    assert run_worker_mode() == "spawn"
    monkeypatch.setenv(RUN_WORKER_ENV, "thread")
    with pytest.raises(ValueError, match="BRAIN_RUN_WORKER: expected one of"):
        run_worker_mode()
