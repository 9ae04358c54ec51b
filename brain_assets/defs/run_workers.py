"""Run workers that serve several runs each, for the daemon's launcher.

A run worker forked per run starts in milliseconds but cold: it imports the code location,
builds the definitions and traces the LSTM's training graph again, about 2.5 s of one core per
run on top of its model work (measured: 10.8 s for a symbol's first run in a process, 8.2 s for
its later ones). Here a worker, forked from the warm forkserver, takes one run at a time over
its pipe and stays for the next, until it has served ``RUNS_PER_WORKER`` runs (TensorFlow keeps
memory for every model it fitted, and nothing frees it but the process's end) or sat idle for
``IDLE_S`` seconds. Each run is still executed as ``dagster api execute_run`` does it, in a
process of its own apart from the daemon: a crash takes down the run it held and no other.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

RUNS_PER_WORKER = 10
"""Runs a worker serves before it exits and a fresh fork takes its place."""
IDLE_S = 60.0
"""Seconds an idle worker waits for another run before it is sent home (it holds hundreds of
megabytes of models and graphs)."""
FINISHING_WAIT_S = 5.0
"""How long a launch waits for a worker whose run has ended to say so, rather than start a
cold one: the daemon frees the run's queue slot from the run's status, a moment before the
worker is back for more."""
STOP_GRACE_S = 10.0
"""How long a listener waits for its exited worker to be reaped."""


def describe_exit(exitcode: int | None) -> str:
    """``killed by SIGKILL`` for a worker a signal ended, else its exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


@contextmanager
def storage_connections_held(instance: Any) -> Iterator[None]:
    """Let ``instance``'s run and event-log storage keep their PostgreSQL connections while
    the block runs (a run), as Dagster's webserver does, and close them after it.

    dagster-postgres opens a new connection for each write by default: a daily_retrain run
    writes about 400 events, so it started about 400 PostgreSQL backends (a process each), and a
    run took 8.9 s instead of 7.7 s (median of four each, alternated in one process). No
    statement timeout is set: a run's writes must not be cut short. Disposing the instance
    leaves its engines' connections open until the garbage collector finds them, so they are
    closed here."""
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)
    try:
        yield
    finally:
        for storage in (
            instance.run_storage,
            instance.event_log_storage,
            instance.schedule_storage,
        ):
            engine = getattr(storage, "_engine", None)  # dagster-postgres' storages have one
            if engine is not None:
                engine.dispose()


Execute = Callable[[str, str, dict[str, str], str], bool | None]
"""``execute(run_id, instance_ref, environ, cwd)``: one run in the worker; False when the
worker must not take another (its run was interrupted: what that left behind is unknown)."""


def serve_runs(conn: Connection, execute: Execute) -> None:
    """A worker's loop: run what the launcher sends until None, answering each with ``done``
    and whether it stays. A run that raised past Dagster's own handling, or that ``execute``
    says was interrupted, ends the worker after saying so: what it left behind in this
    process is unknown."""
    from brain_assets.store.embedded import release_process_handles

    try:
        while True:
            try:
                job = conn.recv()
            except (EOFError, KeyboardInterrupt):
                return  # the launcher went away, or an interrupt came after its run ended
            if job is None:
                return
            try:
                stay = execute(*job) is not False
            except BaseException as error:  # the launcher must hear of it, whatever it is
                conn.send(("raised", "".join(traceback.format_exception(error))))
                return
            conn.send(("done", stay))
            if not stay:
                return
    finally:
        # The worker ends with os._exit (the forkserver's way), which runs no exit handler.
        release_process_handles()


RESERVED = ""
"""A worker's ``run_id`` between a launch taking it and the run being sent."""


@dataclass
class _Worker:
    process: Any
    conn: Connection
    key: tuple[str, ...]
    run_id: str | None = None
    runs: int = 0
    retiring: bool = False
    idle_since: float = 0.0


@dataclass
class Launched:
    """Where a run went: the worker's pid, and whether that worker had served runs before."""

    pid: int
    reused: bool


class RunWorkerPool:
    """Workers forked from ``context`` (a forkserver), each serving up to ``runs_per_worker``
    runs one at a time; thread-safe (the daemon launches from several threads)."""

    def __init__(
        self,
        context: Any,
        execute: Execute,
        *,
        runs_per_worker: int = RUNS_PER_WORKER,
        idle_s: float = IDLE_S,
        finished: Callable[[str], bool] = lambda _run_id: False,
        orphaned: Callable[[str, int, str], None] = lambda _run_id, _pid, _how: None,
    ) -> None:
        if isinstance(runs_per_worker, bool) or runs_per_worker < 1:
            raise ValueError(
                f"runs_per_worker must be a whole number >= 1, got {runs_per_worker!r}"
            )
        self._context = context
        self._execute = execute
        self._runs_per_worker = runs_per_worker
        self._idle_s = idle_s
        self._finished = finished
        self._orphaned = orphaned
        self._workers: list[_Worker] = []
        self._changed = threading.Condition()
        self._janitor: threading.Thread | None = None

    def launch(self, run_id: str, instance_ref: str, environ: dict[str, str], cwd: str) -> Launched:
        """Hand the run to an idle worker started with the same environment and folder (the
        code location reads the environment when first imported), else to a fresh one."""
        key = (cwd, *sorted(f"{name}={value}" for name, value in environ.items()))
        worker = self._reserve_idle(key)
        with self._changed:
            reused = worker is not None
            if worker is None:
                worker = self._start(key)
            try:
                worker.conn.send((run_id, instance_ref, environ, cwd))
            except OSError:
                # It died idle since it last answered: the run has not reached it.
                self._forget(worker)
                worker, reused = self._start(key), False
                worker.conn.send((run_id, instance_ref, environ, cwd))
            worker.run_id = run_id
            worker.runs += 1
            self._ensure_janitor()
            return Launched(int(worker.process.pid), reused)

    def _reserve_idle(self, key: tuple[str, ...]) -> _Worker | None:
        """An idle worker of ``key``, marked as taken; or None. While none is idle
        but a busy one's run has ended in the database, wait for it to say so (up to
        ``FINISHING_WAIT_S``): it will be free at once. The database is asked without the lock,
        so that listeners can free workers meanwhile."""
        deadline = time.monotonic() + FINISHING_WAIT_S
        while True:
            with self._changed:
                idle = [w for w in self._workers if w.run_id is None and w.key == key]
                if idle:
                    worker = max(idle, key=lambda w: w.runs)  # the warmest first
                    worker.run_id = RESERVED  # taken, though no run has reached it yet
                    return worker
                busy = [
                    w.run_id for w in self._workers
                    if w.key == key and not w.retiring and w.runs < self._runs_per_worker
                    and w.run_id is not None
                ]  # fmt: skip
            if time.monotonic() >= deadline or not any(self._finished(r) for r in busy if r):
                return None
            with self._changed:
                self._changed.wait(timeout=0.1)

    def pid_of(self, run_id: str) -> int | None:
        """The pid of the worker running ``run_id``, if a worker of this pool holds it."""
        with self._changed:
            for worker in self._workers:
                if worker.run_id == run_id and worker.process.is_alive():
                    return int(worker.process.pid)
        return None

    def interrupt(self, run_id: str) -> bool:
        """SIGINT the worker holding ``run_id`` (Dagster's worker turns it into a cancel), and
        retire that worker when it answers. False when no live worker holds it."""
        with self._changed:
            for worker in self._workers:
                if worker.run_id == run_id and worker.process.is_alive():
                    worker.retiring = True
                    os.kill(int(worker.process.pid), signal.SIGINT)
                    return True
        return False

    def retire_idle(self) -> None:
        """Send every idle worker home (the code they imported changed)."""
        with self._changed:
            for worker in [w for w in self._workers if w.run_id is None]:
                self._send_home(worker)

    def close(self) -> None:
        """Send every worker home; the ones running finish their run first."""
        with self._changed:
            for worker in list(self._workers):
                if worker.run_id is None:
                    self._send_home(worker)
                else:
                    worker.retiring = True

    def live_pids(self) -> list[int]:
        with self._changed:
            return [int(w.process.pid) for w in self._workers if w.process.is_alive()]

    def _start(self, key: tuple[str, ...]) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=serve_runs, args=(child, self._execute), name="dagster-run-worker"
        )
        process.start()
        child.close()  # so that the worker's death reads as EOF here
        worker = _Worker(process, parent, key)
        self._workers.append(worker)
        threading.Thread(
            target=self._listen, args=(worker,), name=f"run-worker-{process.pid}", daemon=True
        ).start()
        return worker

    def _listen(self, worker: _Worker) -> None:
        """Follow one worker: free it when its run is done, forget it when it exits."""
        while True:
            try:
                kind, payload = worker.conn.recv()
            except (EOFError, OSError):
                with self._changed:
                    self._forget(worker)
                    held = worker.run_id
                    worker.conn.close()
                    # Reaped under the lock: Process.start() polls every child too, and two
                    # readers of one exit status leave one of them a wrong exit code.
                    worker.process.join(timeout=STOP_GRACE_S)
                    how = describe_exit(worker.process.exitcode)
                if held:
                    # It died holding a run, perhaps before the run could record its start.
                    self._orphaned(held, int(worker.process.pid), how)
                return
            with self._changed:
                held, worker.run_id = worker.run_id, None
                worker.idle_since = time.monotonic()
                leaving = kind != "done" or payload is False  # it says it will not stay
                if leaving or worker.retiring or worker.runs >= self._runs_per_worker:
                    self._send_home(worker)
                self._changed.notify_all()
            if kind == "raised" and held:
                # Dagster's run body raised past its own handling: the run may not have
                # recorded its end. The worker leaves (see serve_runs).
                last = str(payload).strip().splitlines()[-1:] or ["an error"]
                self._orphaned(held, int(worker.process.pid), f"raised {last[0]}")

    def _send_home(self, worker: _Worker) -> None:
        try:
            worker.conn.send(None)
        except OSError:
            pass  # it has already gone
        self._forget(worker)

    def _forget(self, worker: _Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        self._changed.notify_all()

    def _ensure_janitor(self) -> None:
        if self._janitor is None or not self._janitor.is_alive():
            self._janitor = threading.Thread(
                target=self._sweep, name="run-worker-janitor", daemon=True
            )
            self._janitor.start()

    def _sweep(self) -> None:
        """Send home the workers idle for ``idle_s``; ends when no worker is left."""
        while True:
            time.sleep(min(self._idle_s, 5.0))
            with self._changed:
                now = time.monotonic()
                for worker in [w for w in self._workers if w.run_id is None]:
                    if now - worker.idle_since >= self._idle_s:
                        self._send_home(worker)
                if not self._workers:
                    self._janitor = None
                    return
