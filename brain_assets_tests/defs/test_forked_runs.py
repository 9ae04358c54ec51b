"""Run workers forked from the launcher's warm forkserver: a run succeeds in its own process, sees
the launching process's environment of now, a terminate cancels it, and a run after the code
changed is spawned so that it runs the code as it is. A worker serves several runs, one at a
time, and leaves after its share, when told to stop a run, or when idle."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from brain_assets.defs import run_launcher, run_workers
from brain_assets.defs.run_launcher import (
    FORKED,
    REUSED,
    RUN_WORKER_ENV,
    SPAWNED_AFTER_EDIT,
    WatchedRunLauncher,
)
from brain_assets.defs.run_workers import RunWorkerPool

MARK_ENV = "BRAIN_FORK_TEST_MARK"


@dg.op
def write_mark() -> None:
    with Path(os.environ[MARK_ENV]).open("a") as mark:
        mark.write(f"{os.getpid()}\n")


@dg.op
def wait_long() -> None:
    for _ in range(600):
        time.sleep(0.1)


@dg.job(executor_def=dg.in_process_executor)
def mark_job() -> None:
    write_mark()


@dg.job(executor_def=dg.in_process_executor)
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


@pytest.fixture
def mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file ``mark_job`` appends its worker's pid to."""
    path = tmp_path / "mark.txt"
    monkeypatch.setenv(MARK_ENV, str(path))
    return path


def run_marks(
    instance: dg.DagsterInstance, mark: Path, count: int
) -> tuple[list[int], list[list[str]]]:
    """Launch ``mark_job`` ``count`` times, one after the other: the pid each ran in, and the
    launcher's messages about each."""
    messages = []
    for _ in range(count):
        run = launch(instance, mark_job)
        done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE}
        assert wait_for_status(instance, run.run_id, done, 120) == DagsterRunStatus.SUCCESS
        messages.append(
            [r.message for r in instance.all_logs(run.run_id) if FORKED in r.message
             or REUSED in r.message]
        )  # fmt: skip
    return [int(line) for line in mark.read_text().split()], messages


def test_a_warm_worker_serves_runs_one_after_the_other_then_leaves_after_its_share(
    instance: dg.DagsterInstance, mark: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_workers, "RUNS_PER_WORKER", 2)
    pids, messages = run_marks(instance, mark, 3)
    assert pids[0] == pids[1] != pids[2]
    assert os.getpid() not in pids
    assert [FORKED in m[0] for m in messages] == [True, False, True], messages
    assert REUSED in messages[1][0]


def test_fork_mode_gives_every_run_a_fresh_worker(
    instance: dg.DagsterInstance, mark: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RUN_WORKER_ENV, "fork")
    pids, _ = run_marks(instance, mark, 2)
    assert pids[0] != pids[1]


def test_a_worker_is_not_reused_under_another_environment(
    instance: dg.DagsterInstance, mark: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The code location reads the environment when it is first imported in a worker.
    first, _ = run_marks(instance, mark, 1)
    monkeypatch.setenv("BRAIN_FORK_TEST_OTHER", "1")
    second, _ = run_marks(instance, mark, 1)
    assert second[1] != first[0]


def test_a_worker_told_to_stop_a_run_leaves_and_a_worker_killed_idle_is_replaced(
    instance: dg.DagsterInstance, mark: Path
) -> None:
    slow, canceled_pid = started_slow_run(instance)
    assert instance.run_launcher.terminate(slow.run_id)
    wait_for_status(instance, slow.run_id, {DagsterRunStatus.CANCELED}, 60)
    pids, _ = run_marks(instance, mark, 1)
    assert pids[0] != canceled_pid
    os.kill(pids[0], signal.SIGKILL)  # idle, between runs
    wait_until_gone(pids[0])
    pids, _ = run_marks(instance, mark, 1)
    assert pids[1] != pids[0]


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


def test_a_worker_that_dies_holding_a_run_fails_that_run_at_once(
    instance: dg.DagsterInstance,
) -> None:
    run, pid = started_slow_run(instance)
    os.kill(pid, signal.SIGKILL)
    # Well within run monitoring's poll: the launcher hears of it from the worker's pipe.
    assert wait_for_status(instance, run.run_id, {DagsterRunStatus.FAILURE}, 10)
    failure = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    assert f"run worker (pid {pid}) killed by SIGKILL" in (failure[-1].message or "")


def started_slow_run(instance: dg.DagsterInstance) -> tuple[DagsterRun, int]:
    """``slow_job`` launched and inside its step, and the pid of the worker running it."""
    run = launch(instance, slow_job)
    wait_for_status(instance, run.run_id, {DagsterRunStatus.STARTED}, 120)
    time.sleep(1.0)
    return run, run_launcher_pid(instance, run.run_id)


def run_launcher_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    launcher = instance.run_launcher
    assert isinstance(launcher, WatchedRunLauncher)
    pid = launcher._pool("warm").pid_of(run_id)
    assert pid is not None
    return pid


def note_pid(path: str, seconds: str, _environ: dict[str, str], _cwd: str) -> None:
    """A run worker's body for the pool alone: note this process, then take some time."""
    with Path(path).open("a") as mark:
        mark.write(f"{os.getpid()}\n")
    time.sleep(float(seconds))


def test_a_launch_waits_for_a_worker_finishing_its_run_and_idle_workers_leave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    mark = tmp_path / "mark.txt"
    # Long enough for a cold first worker on a loaded machine: the wait ends when it answers.
    monkeypatch.setattr(run_workers, "FINISHING_WAIT_S", 60.0)
    context = multiprocessing.get_context("forkserver")
    pool = RunWorkerPool(context, note_pid, idle_s=0.5, finished=lambda _run: True)
    try:
        first = pool.launch(str(mark), "0.5", {}, str(tmp_path))
        # The run's status says it ended: the launch waits for its worker, not a fresh one.
        second = pool.launch(str(mark), "0", {}, str(tmp_path))
        assert second.pid == first.pid and second.reused and not first.reused
        deadline = time.monotonic() + 30
        while pool.live_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.live_pids() == []
        assert [int(p) for p in mark.read_text().split()] == [first.pid, first.pid]
    finally:
        pool.close()


def test_a_pool_refuses_a_share_below_one_run() -> None:
    with pytest.raises(ValueError, match="runs_per_worker"):
        RunWorkerPool(None, note_pid, runs_per_worker=0)


def raise_outside(_run_id: str, _ref: str, _environ: dict[str, str], _cwd: str) -> None:
    raise RuntimeError("the run body broke")


def test_a_worker_whose_run_body_raised_leaves_and_its_run_is_reported(tmp_path: Path) -> None:
    import multiprocessing

    reported: list[tuple[str, int, str]] = []
    context = multiprocessing.get_context("forkserver")
    pool = RunWorkerPool(context, raise_outside, orphaned=lambda *args: reported.append(args))
    try:
        launched = pool.launch("run-1", "", {}, str(tmp_path))
        deadline = time.monotonic() + 30
        while (not reported or pool.live_pids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reported == [("run-1", launched.pid, "raised RuntimeError: the run body broke")]
        assert pool.live_pids() == []
    finally:
        pool.close()


def test_a_run_launched_elsewhere_is_canceled_by_its_recorded_pid(
    instance: dg.DagsterInstance, mark: Path
) -> None:
    # The UI's cancel runs in the webserver, whose launcher holds none of the daemon's workers.
    run, worker = started_slow_run(instance)
    elsewhere = WatchedRunLauncher()
    elsewhere.register_instance(instance)
    assert elsewhere.terminate(run.run_id)
    assert wait_for_status(instance, run.run_id, {DagsterRunStatus.CANCELED}, 60)
    wait_until_gone(worker)  # an interrupted run's worker takes no other
    pids, _ = run_marks(instance, mark, 1)
    assert pids[0] != worker


def test_a_worker_dying_while_its_run_is_being_canceled_leaves_it_canceled(
    instance: dg.DagsterInstance,
) -> None:
    # A failed run would be re-executed by run retries; a canceled one must not be.
    run, pid = started_slow_run(instance)
    started = instance.get_run_by_id(run.run_id)
    assert started is not None
    instance.report_run_canceling(started)
    os.kill(pid, signal.SIGKILL)
    assert wait_for_status(instance, run.run_id, {DagsterRunStatus.CANCELED}, 10)
