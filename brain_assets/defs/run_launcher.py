"""Dagster's default launcher, plus a health check that lets run monitoring free a dead worker.

The default launcher starts each run worker as a local process but cannot tell the run-monitoring
daemon whether that process still lives, so a worker killed by the OOM killer or ``kill -9``
leaves its run STARTED, holding a queue slot and its symbol's partition slot, until
``max_runtime_seconds``. The worker's pid is in the run's event log ("Started process for run"),
and the daemon runs on the same host as the workers it launched (that is what this launcher
does), so a pid check answers the question within one monitoring poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psutil
from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

if TYPE_CHECKING:
    from dagster import DagsterInstance

WORKER_STARTED = "Started process for run"
# A pid is reused only after the process that had it ended: one created more than this many
# seconds after the event that named it is someone else.
PID_REUSE_SLACK_S = 5.0


class WatchedRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers run monitoring can check by pid."""

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
