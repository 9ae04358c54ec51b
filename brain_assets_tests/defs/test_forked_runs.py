"""Run workers forked from the launcher's warm forkserver: a run succeeds in its own process, sees
the launching process's environment of now, a terminate cancels it, and a run after the code
changed is spawned so that it runs the code as it is."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from brain_assets.defs import run_launcher
from brain_assets.defs.run_launcher import (
    FORKED,
    RUN_WORKER_ENV,
    SPAWNED_AFTER_EDIT,
    WatchedRunLauncher,
)

MARK_ENV = "BRAIN_FORK_TEST_MARK"


@dg.op
def write_mark() -> None:
    Path(os.environ[MARK_ENV]).write_text(f"{os.getpid()}\n")


@dg.op
def wait_long() -> None:
    for _ in range(600):
        time.sleep(0.1)


@dg.job
def mark_job() -> None:
    write_mark()


@dg.job
def slow_job() -> None:
    wait_long()


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    monkeypatch.delenv(RUN_WORKER_ENV, raising=False)
    overrides = {"run_launcher": {"module": "brain_assets.defs.run_launcher",
                                  "class": "WatchedRunLauncher"}}  # fmt: skip
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster"), overrides=overrides) as test:
        assert isinstance(test.run_launcher, WatchedRunLauncher)
        yield test


def launch(instance: dg.DagsterInstance, job: dg.JobDefinition) -> DagsterRun:
    origin = dg.reconstructable(job).get_python_origin()
    run = instance.create_run_for_job(job_def=job, job_code_origin=origin)
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return run


def wait_for_status(
    instance: dg.DagsterInstance, run_id: str, wanted: set[DagsterRunStatus], seconds: float
) -> DagsterRunStatus:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in wanted:
            return run.status
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not reach {wanted} in {seconds} s")


def test_a_forked_run_succeeds_in_its_own_process_with_todays_environment(
    instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tmp_path / "mark.txt"
    # Set after any forkserver started: the worker must still see it.
    monkeypatch.setenv(MARK_ENV, str(mark))
    run = launch(instance, mark_job)
    status = wait_for_status(instance, run.run_id, {DagsterRunStatus.SUCCESS,
                                                    DagsterRunStatus.FAILURE}, 120)  # fmt: skip
    assert status == DagsterRunStatus.SUCCESS
    assert int(mark.read_text()) != os.getpid()
    messages = [record.message for record in instance.all_logs(run.run_id)]
    assert any(FORKED in message for message in messages), messages


def test_terminate_cancels_a_forked_run(instance: dg.DagsterInstance) -> None:
    run = launch(instance, slow_job)
    wait_for_status(instance, run.run_id, {DagsterRunStatus.STARTED}, 120)
    time.sleep(1.0)  # inside the step
    assert instance.run_launcher.terminate(run.run_id)
    status = wait_for_status(instance, run.run_id, {DagsterRunStatus.CANCELED,
                                                    DagsterRunStatus.FAILURE}, 60)  # fmt: skip
    assert status == DagsterRunStatus.CANCELED


def test_a_run_after_the_code_changed_is_spawned_with_todays_code(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[str] = []

    def spawn(launcher: DefaultRunLauncher, context: LaunchRunContext) -> None:
        spawned.append(context.dagster_run.run_id)

    monkeypatch.setattr(DefaultRunLauncher, "launch_run", spawn)
    run_launcher._forkserver()  # the warm process has imported the code as it was
    monkeypatch.setattr(run_launcher, "code_fingerprint", lambda: -1)  # edited since
    run = launch(instance, mark_job)
    assert spawned == [run.run_id]
    messages = [record.message for record in instance.all_logs(run.run_id)]
    assert any(SPAWNED_AFTER_EDIT in m for m in messages)
    assert not any(FORKED in m for m in messages)
