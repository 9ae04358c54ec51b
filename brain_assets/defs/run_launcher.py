"""Run workers forked from a warm process, plus a health check that lets run monitoring free a
dead worker.

Dagster's default launcher asks the code server to spawn each run worker: a fresh interpreter
that imports Dagster, the code location, scikit-learn and, for the LSTM, TensorFlow (5 to 8 s of
one core per run, as long as a symbol's models take to train). This launcher keeps one
forkserver per launching process (the daemon, or the webserver), started once with those modules
imported, and forks run workers from it: a worker is still a process of its own (a crash
takes one run down), but starts in milliseconds, and serves up to ten runs one after the other
(``run_workers``), so that the code location's import and the LSTM's compiled graph are paid
once per worker rather than once per run. ``BRAIN_RUN_WORKER=fork`` forks a worker per run;
``spawn`` goes back to Dagster's way.

The default launcher starts each run worker as a local process but cannot tell the run-monitoring
daemon whether that process still lives, so a worker killed by the OOM killer or ``kill -9``
leaves its run STARTED, holding a queue slot and its symbol's partition slot, until
``max_runtime_seconds``. The worker's pid is in the run's event log ("Started process for run"),
and the daemon runs on the same host as the workers it launched (that is what this launcher
does), so a pid check answers the question within one monitoring poll.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from dagster._core.errors import DagsterLaunchFailedError
from dagster._core.events import DagsterEventType
from dagster._core.launcher import (
    CheckRunHealthResult,
    DefaultRunLauncher,
    LaunchRunContext,
    WorkerStatus,
)
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._serdes.config_class import ConfigurableClassData

from brain_assets.defs import run_workers
from brain_assets.defs.run_workers import RunWorkerPool
from brain_assets.forkserver import warm_context

if TYPE_CHECKING:
    from dagster import DagsterInstance

WORKER_STARTED = "Started process for run"
# A pid is reused only after the process that had it ended: one created more than this many
# seconds after the event that named it is someone else.
PID_REUSE_SLACK_S = 5.0


ENDED_BY_ITSELF = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE})
FORKED = "Run worker forked from the warm forkserver"
REUSED = "Run given to a warm run worker"
RUN_WORKER_ENV = "BRAIN_RUN_WORKER"
RUN_WORKER_MODES = ("warm", "fork", "spawn")


def run_worker_mode() -> str:
    """``warm`` (default: forked workers serving several runs each), ``fork`` (a forked worker
    per run) or ``spawn``, from BRAIN_RUN_WORKER; a ValueError naming it else."""
    mode = os.environ.get(RUN_WORKER_ENV, "warm").strip().lower() or "warm"
    if mode not in RUN_WORKER_MODES:
        raise ValueError(f"{RUN_WORKER_ENV}: expected one of {RUN_WORKER_MODES}, got {mode!r}")
    return mode


_FORKSERVER: multiprocessing.context.ForkServerContext | None = None
_FORKSERVER_CODE: int | None = None
_FORKSERVER_LOCK = threading.Lock()
SPAWNED_AFTER_EDIT = (
    "brain_assets changed since the warm forkserver imported it: this run's worker was spawned "
    "so that it runs the code as it is now (restart brain dev to fork workers again)"
)


def code_fingerprint() -> int:
    """The newest modification time (ns) of brain_assets' modules: a worker forked from a
    forkserver that imported older code would run that code."""
    package = Path(__file__).resolve().parents[1]
    return max(path.stat().st_mtime_ns for path in package.rglob("*.py"))


def _forkserver() -> tuple[multiprocessing.context.ForkServerContext, int]:
    """This process's forkserver context, its preload set on first use, and the code
    fingerprint of when it was set."""
    global _FORKSERVER, _FORKSERVER_CODE
    with _FORKSERVER_LOCK:
        if _FORKSERVER is None or _FORKSERVER_CODE is None:
            _FORKSERVER, _FORKSERVER_CODE = warm_context(), code_fingerprint()
        return _FORKSERVER, _FORKSERVER_CODE


def execute_run(run_id: str, instance_ref: str, environ: dict[str, str], cwd: str) -> bool:
    """The run worker's body (in the forked process), as ``dagster api execute_run`` runs it;
    whether the worker may take another run: only after a run that ended by itself (succeeded
    or failed), not one that was canceled or interrupted.

    The forkserver's environment is the one it started with; a worker gets the launching
    process's environment and folder of now, as a spawned one would."""
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.instance import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from dagster._utils.interrupts import capture_interrupts
    from dagster_shared.serdes import deserialize_value

    # As the CLI's worker does: a SIGINT (terminate) is held until the run reaches a point
    # where it can stop cleanly and record that it was canceled.
    with (
        capture_interrupts(),
        DagsterInstance.from_ref(deserialize_value(instance_ref, InstanceRef)) as instance,
        run_workers.storage_connections_held(instance),
    ):
        _execute_run_command_body(run_id, instance, lambda _event: None, False)
        run = instance.get_run_by_id(run_id)
        return run is not None and run.status in ENDED_BY_ITSELF


class WatchedRunLauncher(DefaultRunLauncher):
    """Run workers forked from a warm forkserver (see the module), which run monitoring can
    check by pid."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(inst_data=inst_data)
        self._pools: dict[str, RunWorkerPool] = {}
        self._pools_lock = threading.Lock()

    def _pool(self, mode: str) -> RunWorkerPool:
        with self._pools_lock:
            if mode not in self._pools:
                forkserver, _code = _forkserver()
                self._pools[mode] = RunWorkerPool(
                    forkserver,
                    execute_run,
                    runs_per_worker=run_workers.RUNS_PER_WORKER if mode == "warm" else 1,
                    finished=self._run_finished,
                    orphaned=self._fail_orphaned,
                )
            return self._pools[mode]

    def _run_finished(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        return run is None or run.is_finished

    def _fail_orphaned(self, run_id: str, pid: int, how: str) -> None:
        """A worker died holding ``run_id``: end the run now, as run monitoring would at its
        next poll (a run whose worker died before recording its start would otherwise wait for
        the start timeout). A run being canceled (its SIGINT came before the run could take it)
        is recorded canceled, not failed: run retries would re-execute a failed one."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        message = f"run worker (pid {pid}) {how} during the run"
        if run.status == DagsterRunStatus.CANCELING:
            self._instance.report_run_canceled(run, message=message)
        else:
            self._instance.report_run_failed(run, message)

    def launch_run(self, context: LaunchRunContext) -> None:
        mode = run_worker_mode()
        if mode == "spawn":
            super().launch_run(context)
            return
        from dagster_shared.serdes import serialize_value

        run = context.dagster_run
        if run.job_code_origin is None:
            raise DagsterLaunchFailedError(f"run {run.run_id} has no code origin to execute")
        _context, code = _forkserver()
        if code_fingerprint() != code:
            for pool in list(self._pools.values()):
                pool.retire_idle()  # they run the code as it was, too
            self._instance.report_engine_event(SPAWNED_AFTER_EDIT, run, cls=self.__class__)
            super().launch_run(context)
            return
        launched = self._pool(mode).launch(
            run.run_id, serialize_value(self._instance.get_ref()), dict(os.environ), os.getcwd()
        )
        how = REUSED if launched.reused else FORKED
        self._instance.report_engine_event(f"{how} (pid: {launched.pid}).", run, cls=self.__class__)
        self._run_ids.add(run.run_id)

    def terminate(self, run_id: str) -> bool:
        pools = list(self._pools.values())
        held_here = any(pool.pid_of(run_id) is not None for pool in pools)
        started = None if held_here else worker_started(self._instance, run_id)
        if not held_here and (started is None or run_worker_mode() == "spawn"):
            return bool(super().terminate(run_id))
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        if held_here:
            self._instance.report_run_canceling(run)
            # Dagster's worker turns SIGINT into an interrupt of the run, which it records as
            # canceled once a cancel was requested; the worker then leaves the pool.
            return any(pool.interrupt(run_id) for pool in pools)
        # Another process launched it (the UI's cancel runs in the webserver, the runs were
        # launched by the daemon): the worker's pid is in the run's event log, on this host.
        assert started is not None
        pid, at = started
        if worker_status(pid, at)[0] != WorkerStatus.RUNNING:
            return False
        self._instance.report_run_canceling(run)
        os.kill(pid, signal.SIGINT)
        return True

    def dispose(self) -> None:
        for pool in list(self._pools.values()):
            pool.close()
        super().dispose()

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        started = worker_started(self._instance, run.run_id)
        if started is None:
            # The code server records the pid just after the worker starts; until then there is
            # nothing to judge, and max_runtime_seconds still bounds the run.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker pid not recorded yet")
        pid, at = started
        return CheckRunHealthResult(*worker_status(pid, at))


def worker_started(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """``(pid, timestamp)`` of the run worker's start event, newest first (a resumed run has
    more than one)."""
    for record in reversed(instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)):
        event = record.dagster_event
        if event is None or not (event.message or "").startswith(WORKER_STARTED):
            continue
        pid = event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(str(pid.value)), record.timestamp
    return None


def worker_status(pid: int, started_at: float) -> tuple[WorkerStatus, str]:
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        created = process.create_time()
    except psutil.NoSuchProcess:
        return WorkerStatus.FAILED, f"run worker (pid {pid}) is gone"
    if not alive:
        return WorkerStatus.FAILED, f"run worker (pid {pid}) exited without ending its run"
    if created > started_at + PID_REUSE_SLACK_S:
        return WorkerStatus.FAILED, f"run worker (pid {pid}) is gone; its pid was reused"
    return WorkerStatus.RUNNING, f"run worker (pid {pid}) is running"
