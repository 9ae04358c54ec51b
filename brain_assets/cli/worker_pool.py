"""One daily_retrain run per symbol in worker processes, surviving a worker that dies.

``concurrent.futures.ProcessPoolExecutor`` answers a dead worker (``kill -9``, the OOM killer)
with ``BrokenProcessPool`` for every run in flight, without saying whose worker died, and takes
no more work. Here each worker has its own pipe, so the parent always knows which symbol's run a
worker holds: when one dies, only that run is affected. Its Dagster run, left STARTED by the
dead process, is marked failed (else it would hold its symbol's partition slot in the daemon's
queue for hours), and the run is tried again in a fresh worker, as many times as the daemon's
``run_retries`` allow for a crashed run worker (dagster.yaml). Registration is idempotent (a
version's fingerprint), so a run tried again registers nothing twice.

Workers are forked from a forkserver that imported Dagster, scikit-learn, skops and TensorFlow
once, so a fresh worker costs milliseconds instead of a five-second import. That makes it cheap
to replace a worker after ``RUNS_PER_WORKER`` runs: TensorFlow keeps about 25 MB for every model
it has traced, which no call frees, and a worker that ran fifty LSTM fits held more than a
gigabyte it would never use again.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from brain_assets.defs.run_workers import RUNS_PER_WORKER, describe_exit
from brain_assets.errors import BrainError
from brain_assets.events import log_event
from brain_assets.forkserver import warm_context

Task = Callable[[str, str, dict[str, str]], dict[str, Any]]
"""``task(symbol, run_id, tags)``: one run in the worker, returning a picklable summary with
``symbol``, ``run_id``, ``success`` and ``failures``."""

MAX_RETRIES_TAG = "dagster/max_retries"
"""Dagster's per-run override of ``run_retries.max_retries``: 0 on these runs, whose retries
this command makes itself (the daemon, if one runs, would otherwise re-execute them too)."""
WILL_RETRY_TAG = "dagster/will_retry"
"""Where Dagster records, when a run fails, whether its daemon is to re-execute it."""
TRY_TAG = "brain/try"
RETRY_OF_TAG = "brain/retry_of"


STOP_GRACE_S = 10.0
"""Seconds a stopped worker gets to exit on SIGTERM before it is killed."""


class WorkerStartError(BrainError):
    """Run workers keep dying before they can take a run (their initialiser fails)."""


def run_retries() -> int:
    """The instance's ``run_retries.max_retries`` (dagster.yaml; 0 when run retries are off):
    the daemon re-executes a run whose worker crashed that many times, and so do we."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return instance.run_retries_max_retries if instance.run_retries_enabled else 0


class _ParentFd:
    """One of the parent's file descriptors, handed to a worker as the worker is started (the
    forkserver passes it over its socket). A worker forked by the forkserver would otherwise
    write to the forkserver's stdout and stderr instead of the command's."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        from multiprocessing import reduction

        return (_detach, (reduction.DupFd(self.fd),))


def _detach(handle: Any) -> int:
    return int(handle.detach())


def _serve(
    conn: Connection,
    stdio: tuple[int, int],
    environ: dict[str, str],
    cwd: str,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    task: Task,
) -> None:
    """A worker: take the parent's stdout and stderr, environment and folder, start as the
    pool's workers do, then run what the parent sends until None."""
    for target, fd in zip((1, 2), stdio, strict=True):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    # A command started under nohup, or in the background of a script, ignores SIGTERM, and a
    # worker could inherit that: the pool's terminate would then never end it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    initializer(*initargs)
    conn.send(("ready", None))
    try:
        _take_runs(conn, task)
    finally:
        # The worker ends with os._exit (the forkserver's way), which runs no exit handler.
        from brain_assets.store.embedded import release_process_handles

        release_process_handles()


def _take_runs(conn: Connection, task: Task) -> None:
    """Run what the parent sends until None."""
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            reply: tuple[str, Any] = ("done", task(*job))
        except BaseException as error:
            reply = ("raised", error)
        try:
            conn.send(reply)
        except Exception as unsent:
            # What does not pickle still reaches the parent, as text (pickling happens before
            # anything is written, so the pipe is intact).
            cause = reply[1] if reply[0] == "raised" else unsent
            text = "".join(traceback.format_exception(cause))
            conn.send(("raised", RuntimeError(f"the run worker raised:\n{text}")))


@dataclass
class _Try:
    symbol: str
    number: int
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    retry_of: str | None = None

    def tags(self) -> dict[str, str]:
        tags = {TRY_TAG: str(self.number), MAX_RETRIES_TAG: "0"}
        if self.retry_of is not None:
            tags[RETRY_OF_TAG] = self.retry_of
        return tags


@dataclass
class _Worker:
    process: Any
    conn: Connection
    running: _Try | None = None
    ready: bool = False
    runs: int = 0


def _tries(count: int) -> str:
    return "1 try" if count == 1 else f"{count} tries"


def fail_abandoned_run(run_id: str, message: str) -> bool:
    """Mark the Dagster run of a dead worker failed. False when the worker died before the run
    was created or after it ended."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        instance.report_run_failed(run, message)
    return True


@dataclass
class _Pool:
    """The workers and the runs of one run_per_symbol call."""

    task: Task
    initializer: Callable[..., None]
    initargs: tuple[Any, ...]
    command: str
    tries_allowed: int
    queue: deque[_Try]
    runs_per_worker: int = RUNS_PER_WORKER
    # A forkserver, not fork: a child forked from this process would share its open database
    # connections.
    context: Any = field(default_factory=warm_context)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    live: list[_Worker] = field(default_factory=list)
    # Workers sent home after their share of runs, joined at the end rather than waited for.
    retired: list[Any] = field(default_factory=list)
    # Deaths before a worker could take any run: its initialiser fails, nothing to retry.
    start_deaths: int = 0

    def run(self, workers: int) -> None:
        """Run the queue to its end, ``workers`` at a time, starting workers as runs need them."""
        while self.queue or any(worker.running is not None for worker in self.live):
            busy = sum(worker.running is not None for worker in self.live)
            while len(self.live) < min(workers, busy + len(self.queue)):
                self.start()
            by_conn = {worker.conn: worker for worker in self.live}
            for conn in wait(list(by_conn)):
                self.receive(by_conn[conn])  # type: ignore[index]

    def start(self) -> None:
        parent, child = self.context.Pipe()
        # Not a daemon: a run under BRAIN_EXECUTOR=multiprocess starts processes of its own.
        process = self.context.Process(
            target=_serve,
            args=(
                child,
                (_ParentFd(1), _ParentFd(2)),
                dict(os.environ),
                os.getcwd(),
                self.initializer,
                self.initargs,
                self.task,
            ),
        )
        process.start()
        # The parent's copy of the child's end closed, the child's death reads as EOF here.
        child.close()
        self.live.append(_Worker(process, parent))

    def receive(self, worker: _Worker) -> None:
        """Take what ``worker`` sent (or its death), then give it the next run."""
        try:
            kind, payload = worker.conn.recv()
        except EOFError:
            self.buried(worker)
            return
        if kind == "raised":
            worker.running = None  # its own error, not a stop, ended it
            raise payload
        if kind == "done":
            assert worker.running is not None
            self.results[worker.running.symbol] = {**payload, "tries": worker.running.number}
            worker.running = None
        worker.ready = True
        self.assign(worker)

    def assign(self, worker: _Worker) -> None:
        if not self.queue or worker.runs >= self.runs_per_worker:
            self.retire(worker)
            return
        run = self.queue.popleft()
        try:
            worker.conn.send((run.symbol, run.run_id, run.tags()))
        except OSError:
            # It died since it last answered, before this run reached it: the run has not
            # started, so it goes back untried, and a fresh worker takes it.
            self.queue.appendleft(run)
            self.buried(worker)
            return
        worker.running = run
        worker.runs += 1

    def retire(self, worker: _Worker) -> None:
        """Send an idle worker home; the loop starts a fresh one if runs are still queued."""
        self.live.remove(worker)
        try:
            worker.conn.send(None)
        except OSError:
            pass  # it died idle, its work done: there is nothing to stop
        worker.conn.close()
        self.retired.append(worker.process)

    def buried(self, worker: _Worker) -> None:
        worker.process.join()
        worker.conn.close()
        self.live.remove(worker)
        how = describe_exit(worker.process.exitcode)
        if worker.running is not None:
            self._run_orphaned(worker.running, how)
        elif not worker.ready:
            self._start_failed(how)
        # else it died idle, holding no run: the loop starts another if needed

    def _start_failed(self, how: str) -> None:
        self.start_deaths += 1
        log_event("run_worker_died", logging.INFO, symbol=None, exit=how, starting=True)
        if self.start_deaths >= self.tries_allowed:
            raise WorkerStartError(
                f"run workers died while starting ({self.start_deaths} times, last {how}); "
                "see the native log for their messages"
            )

    def _run_orphaned(self, run: _Try, how: str) -> None:
        """The worker holding ``run`` died: fail its Dagster run, then try it again or give up."""
        message = f"the run worker for {run.symbol} died ({how}) during try {run.number}"
        fail_abandoned_run(run.run_id, message)
        retrying = run.number < self.tries_allowed
        log_event(
            "run_worker_died",
            logging.INFO,
            symbol=run.symbol,
            run_id=run.run_id,
            exit=how,
            attempt=run.number,
            max_tries=self.tries_allowed,
            retrying=retrying,
        )
        died = f"brain {self.command}: the worker running {run.symbol}'s run {run.run_id[:8]} died"
        if retrying:
            print(
                f"{died} ({how}); trying it again in a fresh worker "
                f"(try {run.number + 1} of {self.tries_allowed})",
                file=sys.stderr,
                flush=True,
            )
            self.queue.appendleft(_Try(run.symbol, run.number + 1, retry_of=run.run_id))
            return
        print(
            f"{died} ({how}); {run.symbol} failed after {_tries(run.number)}",
            file=sys.stderr,
            flush=True,
        )
        self.results[run.symbol] = {
            "symbol": run.symbol,
            "run_id": run.run_id,
            "success": False,
            "failures": [f"its run worker died ({how}) on its {_tries(run.number)}"],
            "tries": run.number,
        }

    def stop(self) -> None:
        """End every worker still alive (the running ones first: after Ctrl-C they must not
        wait on the ones sent home); the Dagster run of one stopped mid-run is failed."""
        self._end_live()
        for process in self.retired:
            process.join(timeout=STOP_GRACE_S)
            if process.is_alive():
                process.kill()
                process.join()

    def _end_live(self) -> None:
        for worker in self.live:
            if worker.process.is_alive():
                worker.process.terminate()
            worker.process.join(timeout=STOP_GRACE_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
            if worker.running is not None:
                # Stopped mid-run (another run raised, or Ctrl-C): its Dagster run would stay
                # STARTED and hold the symbol's slot in the daemon's queue.
                run = worker.running
                try:
                    fail_abandoned_run(
                        run.run_id,
                        f"brain {self.command} stopped while {run.symbol}'s run was running",
                    )
                except Exception as exc:  # the error on its way out matters more than this one
                    log_event(
                        "run_not_marked_failed",
                        logging.WARNING,
                        symbol=run.symbol,
                        run_id=run.run_id,
                        error=str(exc),
                    )


def run_per_symbol(
    symbols: Sequence[str],
    task: Task,
    *,
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    command: str,
    max_tries: int | None = None,
    runs_per_worker: int = RUNS_PER_WORKER,
) -> list[dict[str, Any]]:
    """``task`` for every symbol, ``workers`` at a time in worker processes (each started with
    ``initializer(*initargs)`` and reused for up to ``runs_per_worker`` runs); the summaries in
    ``symbols``' order, each with ``tries`` added. A run whose worker dies is tried again in a
    fresh worker, up to ``max_tries`` tries in all (default: 1 + the daemon's run retries); one
    line on stderr says so, naming the symbol. An exception the task raised is raised here."""
    if isinstance(runs_per_worker, bool) or runs_per_worker < 1:
        raise ValueError(f"runs_per_worker must be a whole number >= 1, got {runs_per_worker!r}")
    pool = _Pool(
        task,
        initializer,
        initargs,
        command,
        tries_allowed=1 + run_retries() if max_tries is None else max_tries,
        queue=deque(_Try(symbol, 1) for symbol in symbols),
        runs_per_worker=runs_per_worker,
    )
    try:
        pool.run(workers)
    finally:
        pool.stop()
    return [pool.results[symbol] for symbol in symbols]
